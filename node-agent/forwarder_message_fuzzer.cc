// libFuzzer target: the agent <-> relay forwarder messages. The same bytes as a request
// (what a forwarder is asked: a Start's options, a proxy's peer) and as a reply (what an
// agent believes: the state, the proxy WireGuard would be pointed at). What passes is
// safe: a proxy is 127.0.0.1 with a port, a relay and a peer are unicast with a port.
#include <cstddef>
#include <cstdint>

#include "node-agent/forwarder_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace weft;
  v1::ForwarderRequest q;
  if (q.ParseFromArray(data, static_cast<int>(size))) {
    if (q.has_start()) {
      if (auto o = agent::StartOptionsOf(q.start()); o.ok()) {
        if (o->server.port == 0 || o->wg_port == 0 || o->username.size() > 512 || o->lifetime_s > 3600) __builtin_trap();
        // What the agent sends is what the forwarder reads back.
        auto again = agent::StartOptionsOf(agent::StartOf(*o));
        if (!again.ok() || again->server != o->server || again->password != o->password) __builtin_trap();
      }
    }
    if (q.op_case() == v1::ForwarderRequest::kProxyFor) {
      if (auto p = agent::PeerOf(q.proxy_for()); p.ok() && (p->port == 0 || !p->ip.is_v4())) __builtin_trap();
    }
  }
  v1::ForwarderReply r;
  if (r.ParseFromArray(data, static_cast<int>(size))) {
    if (auto s = agent::StateOf(r); s.ok() && s->allocated && (s->relayed.port == 0 || s->server.port == 0)) {
      __builtin_trap();
    }
    if (auto p = agent::ProxyOf(r); p.ok() && (p->port == 0 || *p != net::LoopbackV4(p->port))) __builtin_trap();
    (void)agent::ErrorReply(absl::InvalidArgumentError(r.error()));
  }
  return 0;
}
