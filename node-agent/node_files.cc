#include "node-agent/node_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "lib/status/errno_status.h"
#include "lib/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace weft::agent {

absl::Status WriteFileAtomically(const std::string& path, const std::string& content, int mode) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("create ", tmp));
  ssize_t n = write(fd, content.data(), content.size());
  const int e = errno;
  const bool synced = fsync(fd) == 0;
  close(fd);
  if (n != static_cast<ssize_t>(content.size()) || !synced) {
    unlink(tmp.c_str());
    return ErrnoStatus(e ? e : EIO, absl::StrCat("write ", tmp));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const int e2 = errno;
    unlink(tmp.c_str());
    return ErrnoStatus(e2, absl::StrCat("rename to ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path));
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

absl::StatusOr<wireguard::Key> LoadOrCreateKey(const std::string& path) {
  if (auto text = ReadWholeFile(path); text.ok()) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(path, " is readable by others; it must be 0600"));
    }
    return wireguard::Key::FromBase64(absl::StripAsciiWhitespace(*text));
  } else if (!absl::IsNotFound(text.status())) {
    return text.status();
  }
  ASSIGN_OR_RETURN(wireguard::Key k, wireguard::Key::GeneratePrivate());
  RETURN_IF_ERROR(WriteFileAtomically(path, k.ToBase64() + "\n", 0600));
  return k;
}

std::string CniConflist(const std::vector<std::string>& pod_cidrs, int mtu, const std::string& data_dir) {
  nlohmann::json weft = {{"type", "weft"}, {"podCIDRs", pod_cidrs}, {"dataDir", data_dir}};
  if (mtu > 0) weft["mtu"] = mtu;
  nlohmann::json list = {
      // 1.0.0, not 1.1.0: containerd 1.6/1.7 (libcni 1.1) refuse a 1.1.0 result and then
      // cannot even DEL; runtimes that know 1.1 pick it from cniVersions.
      {"cniVersion", "1.0.0"},
      {"cniVersions", {"1.0.0", "1.1.0"}},
      {"name", "weft"},
      {"plugins", {weft, {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}}}}};
  return list.dump(2) + "\n";
}

}  // namespace weft::agent
