// Test hosts as network namespaces, and weft-cni run inside them as a runtime would.
//
// Every namespace is named "weftt-<pid>-<n>-<label>" and deleted by its destructor; the
// ctest fixture netns_cleanup removes any that a crashed test left behind.
#ifndef WEFT_TESTS_NETNS_NETNS_HARNESS_H_
#define WEFT_TESTS_NETNS_NETNS_HARNESS_H_

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "nlohmann/json.hpp"

namespace weft::testing {

// A named network namespace (as `ip netns add` makes), with loopback up.
class TestNetns {
 public:
  explicit TestNetns(const std::string& label);
  ~TestNetns();
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;

  const std::string& name() const { return name_; }
  std::string path() const { return "/var/run/netns/" + name_; }
  // Runs `sh -c cmd` inside the namespace; returns its exit code, stdout in `out`.
  int Exec(const std::string& cmd, std::string* out = nullptr) const;
  // Deletes the namespace now (as when a sandbox disappears before DEL).
  void Destroy();

 private:
  std::string name_;
  bool alive_ = true;
};

struct CniCall {
  std::string command;
  std::string container_id;
  std::string netns;  // path
  std::string ifname = "eth0";
  std::string args;   // CNI_ARGS
  std::string config;
  // SIGKILL the plugin this long after it starts (crash tests).
  std::optional<std::chrono::microseconds> kill_after;
  // The plugin to exec (default: weft-cni) and CNI_PATH for its delegates.
  std::string binary;
  std::string cni_path = "/usr/lib/cni";
};

struct CniOutcome {
  int exit_code = -1;
  bool killed = false;
  std::string out;
  std::string err;
  nlohmann::json json() const;  // stdout parsed; discarded on invalid JSON
};

// Execs the weft-cni binary inside `node`'s namespace with the CNI_* environment.
CniOutcome RunCni(const TestNetns& node, const CniCall& call);

// The weft-cni binary under test.
std::string WeftCniPath();
bool IsRoot();
// Why a root test cannot run here: "" when it can, else "needs root" or
// "not installed: <the tools of `tools` (space-separated) that are missing>".
std::string MissingForRootTest(const std::string& tools);

// Shell-quotes `s` for sh -c.
std::string ShellQuote(const std::string& s);

}  // namespace weft::testing

#endif  // WEFT_TESTS_NETNS_NETNS_HARNESS_H_
