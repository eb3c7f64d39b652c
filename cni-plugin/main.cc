// weft-cni: the CNI plugin the container runtime execs for every pod attachment.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cni-plugin/commands.h"
#include "lib/flags/version.h"

int main(int argc, char** argv) {
  // The runtime never passes arguments; a person may. Like the reference plugins, say what
  // this is when run by hand without CNI_COMMAND.
  if (argc == 2 && std::getenv("CNI_COMMAND") == nullptr) {
    const std::string a = argv[1];
    const char* commit = WEFT_GIT_COMMIT;
    if (a == "--version") {
      std::printf("weft-cni %s%s%s%s\n", WEFT_VERSION, *commit ? " (git " : "", commit, *commit ? ")" : "");
      return 0;
    }
    if (a == "--help") {
      std::printf(
          "weft-cni: Weft's CNI plugin (CNI protocol versions supported: 0.3.1, 0.4.0, 1.0.0, 1.1.0).\n"
          "The container runtime runs it with CNI_COMMAND (ADD, DEL, CHECK, GC, STATUS, VERSION) and\n"
          "the other CNI_* variables set and the network configuration on standard input.\n"
          "  --help     this text\n  --version  the version\n");
      return 0;
    }
  }
  std::string input;
  char buf[65536];
  for (ssize_t n; (n = read(STDIN_FILENO, buf, sizeof(buf))) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // an unreadable stdin parses as invalid JSON and is reported as such
    }
    input.append(buf, static_cast<size_t>(n));
  }
  weft::cni::PluginOutput out =
      weft::cni::RunPlugin([](const char* k) { return std::getenv(k); }, input);
  std::fwrite(out.stdout_text.data(), 1, out.stdout_text.size(), stdout);
  return out.exit_code;
}
