// weft-cni: the CNI plugin the container runtime execs for every pod attachment.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cni-plugin/commands.h"

int main() {
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
