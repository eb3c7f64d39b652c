// libFuzzer target: what an admitted (or not yet admitted) agent sends the controller.
// Bytes become an AgentMessage; every check the controller runs before keeping
// anything of it must hold up, and what passes must be within the documented bounds.
#include <cstddef>
#include <cstdint>

#include "controller/agent_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  weft::v1::AgentMessage m;
  if (!m.ParseFromArray(data, static_cast<int>(size))) return 0;
  switch (m.msg_case()) {
    case weft::v1::AgentMessage::kHello:
      (void)weft::controller::CheckHello(m.hello());
      break;
    case weft::v1::AgentMessage::kNode:
      if (weft::controller::CheckNodeInfo(m.node()).ok() &&
          static_cast<size_t>(m.node().candidates_size()) > weft::controller::kMaxCandidates) {
        __builtin_trap();
      }
      break;
    case weft::v1::AgentMessage::kHealth: {
      size_t dropped = 0;
      auto clean = weft::controller::CleanHealth(
          m.health(), [](const std::string& p) { return p.size() < 4; }, &dropped);
      if (static_cast<size_t>(clean.peers_size()) + dropped != static_cast<size_t>(m.health().peers_size())) {
        __builtin_trap();
      }
      break;
    }
    default:
      break;
  }
  return 0;
}
