// The files a node agent keeps: its WireGuard key, its pod CIDRs, the CNI conflist.
#ifndef WEFT_NODE_AGENT_NODE_FILES_H_
#define WEFT_NODE_AGENT_NODE_FILES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/wireguard/key.h"

namespace weft::agent {

// Writes `content` to `path` atomically (temporary file, fsync, rename) with `mode`.
absl::Status WriteFileAtomically(const std::string& path, const std::string& content, int mode);
// NotFound if the file does not exist.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// The node's WireGuard private key: generated once, kept in `path` (0600, base64).
absl::StatusOr<wireguard::Key> LoadOrCreateKey(const std::string& path);

// The conflist weft-cni reads (then the reference portmap plugin, chained).
std::string CniConflist(const std::vector<std::string>& pod_cidrs, int mtu, const std::string& data_dir);

}  // namespace weft::agent

#endif  // WEFT_NODE_AGENT_NODE_FILES_H_
