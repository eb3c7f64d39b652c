// Runs Debian's wireguard-go (userspace WireGuard) for one interface. Its log goes to
// /dev/null unless WEFT_WG_DEBUG is set in the environment (then to our stdout; add
// LOG_LEVEL=verbose for wireguard-go's handshake-level log).
#ifndef WEFT_LIB_WIREGUARD_WIREGUARD_GO_H_
#define WEFT_LIB_WIREGUARD_WIREGUARD_GO_H_

#include <sys/types.h>

#include <chrono>
#include <string>

#include "absl/status/statusor.h"

namespace weft::wireguard {

class WireGuardGo {
 public:
  struct Options {
    std::string binary = "wireguard-go";
    int netns_fd = -1;  // create the interface in this netns (-1: the caller's)
    std::string socket_dir = "/var/run/wireguard";
    std::chrono::milliseconds ready_timeout{5000};
    // Kill wireguard-go if the thread that started it dies (tests: nothing may outlive
    // a crashed test). Off for the agent, which may start it from a short-lived thread.
    bool die_with_parent = false;
  };
  // Starts `wireguard-go -f <name>` and waits (bounded) until its UAPI socket answers.
  // Unavailable if the process exits or the socket does not appear in time.
  static absl::StatusOr<WireGuardGo> Start(const std::string& name, const Options& opts);

  WireGuardGo(WireGuardGo&& other) noexcept;
  WireGuardGo& operator=(WireGuardGo&&) = delete;
  WireGuardGo(const WireGuardGo&) = delete;
  // Stops the process (SIGTERM, then SIGKILL after 2 s); it removes its interface.
  ~WireGuardGo();

  pid_t pid() const { return pid_; }
  // Leaves the process running when this object goes away (an agent that restarts
  // adopts its device, so the data plane outlives it).
  void Detach() { pid_ = -1; }
  const std::string& name() const { return name_; }

 private:
  WireGuardGo(pid_t pid, std::string name, std::string socket) : pid_(pid), name_(std::move(name)), socket_(std::move(socket)) {}
  pid_t pid_ = -1;
  std::string name_;
  std::string socket_;
};

}  // namespace weft::wireguard

#endif  // WEFT_LIB_WIREGUARD_WIREGUARD_GO_H_
