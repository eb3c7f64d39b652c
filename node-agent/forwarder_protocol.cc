#include "node-agent/forwarder_protocol.h"

#include "absl/strings/str_cat.h"
#include "lib/status/status_macros.h"

namespace weft::agent {
namespace {

constexpr size_t kMaxCredential = 512;

// An endpoint someone may be reached at: a port, and an address that is unicast (the
// loopback too: a relay on this host, in tests and benches).
absl::StatusOr<net::Endpoint> ReachableEndpoint(absl::string_view what, const std::string& text) {
  auto e = net::Endpoint::Parse(text);
  if (!e.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", e.status().message()));
  if (!e->ip.is_v4()) return absl::InvalidArgumentError(absl::StrCat(what, " ", text, ": IPv4 only"));
  if (e->port == 0) return absl::InvalidArgumentError(absl::StrCat(what, " ", text, ": port 0"));
  if (absl::string_view kind = net::NonUnicastKind(e->ip); !kind.empty() && kind != "loopback") {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", text, ": ", kind, " address"));
  }
  return *e;
}

absl::Status CheckCredential(absl::string_view what, const std::string& s) {
  if (s.size() > kMaxCredential) return absl::InvalidArgumentError(absl::StrCat(what, ": longer than 512 bytes"));
  if (s.find('\0') != std::string::npos) return absl::InvalidArgumentError(absl::StrCat(what, ": a NUL byte"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RelayClient::Options> StartOptionsOf(const v1::ForwarderStart& s) {
  RelayClient::Options o;
  ASSIGN_OR_RETURN(o.server, ReachableEndpoint("relay", s.server()));
  RETURN_IF_ERROR(CheckCredential("username", s.username()));
  RETURN_IF_ERROR(CheckCredential("password", s.password()));
  if (s.wg_port() == 0 || s.wg_port() > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("WireGuard port ", s.wg_port(), " out of range"));
  }
  if (s.lifetime_s() > 3600) return absl::InvalidArgumentError(absl::StrCat("lifetime ", s.lifetime_s(), " s: over an hour"));
  o.username = s.username();
  o.password = s.password();
  o.wg_port = static_cast<uint16_t>(s.wg_port());
  o.tcp = s.tcp();
  o.lifetime_s = s.lifetime_s() == 0 ? 600 : s.lifetime_s();
  return o;
}

v1::ForwarderStart StartOf(const RelayClient::Options& o) {
  v1::ForwarderStart s;
  s.set_server(o.server.ToString());
  s.set_username(o.username);
  s.set_password(o.password);
  s.set_wg_port(o.wg_port);
  s.set_tcp(o.tcp);
  s.set_lifetime_s(o.lifetime_s);
  return s;
}

absl::StatusOr<net::Endpoint> PeerOf(const std::string& text) { return ReachableEndpoint("peer", text); }

absl::StatusOr<ForwarderState> StateOf(const v1::ForwarderReply& r) {
  if (r.error_code() != 0) {
    const int code = r.error_code();
    const auto c = code > 0 && code <= static_cast<int>(absl::StatusCode::kUnauthenticated)
                       ? static_cast<absl::StatusCode>(code)
                       : absl::StatusCode::kUnknown;
    return absl::Status(c, absl::StrCat("relay forwarder: ", r.error().substr(0, 512)));
  }
  if (!r.ok()) return absl::InvalidArgumentError("relay forwarder: a reply neither ok nor an error");
  ForwarderState s;
  s.allocated = r.allocated();
  if (s.allocated) {
    ASSIGN_OR_RETURN(s.relayed, ReachableEndpoint("relayed address", r.relayed()));
    ASSIGN_OR_RETURN(s.server, ReachableEndpoint("relay", r.server()));
  }
  s.tcp = r.tcp();
  s.alive = s.allocated && r.alive();
  s.persistent = r.persistent();
  s.stats = {r.to_relay(), r.from_relay(), r.dropped()};
  return s;
}

absl::StatusOr<net::Endpoint> ProxyOf(const v1::ForwarderReply& r) {
  RETURN_IF_ERROR(StateOf(r).status());
  auto e = net::Endpoint::Parse(r.proxy());
  if (!e.ok() || e->ip != net::LoopbackV4(0).ip || e->port == 0) {
    return absl::InvalidArgumentError(absl::StrCat("relay forwarder: proxy \"", r.proxy().substr(0, 64),
                                                   "\" is not 127.0.0.1:PORT"));
  }
  return *e;
}

v1::ForwarderReply ErrorReply(const absl::Status& s) {
  v1::ForwarderReply r;
  r.set_error_code(static_cast<int>(s.code() == absl::StatusCode::kOk ? absl::StatusCode::kUnknown : s.code()));
  r.set_error(std::string(s.message()));
  return r;
}

v1::ForwarderReply ReplyOf(const ForwarderState& s) {
  v1::ForwarderReply r;
  r.set_ok(true);
  r.set_allocated(s.allocated);
  if (s.allocated) {
    r.set_relayed(s.relayed.ToString());
    r.set_server(s.server.ToString());
  }
  r.set_tcp(s.tcp);
  r.set_alive(s.alive);
  r.set_persistent(s.persistent);
  r.set_to_relay(s.stats.to_relay);
  r.set_from_relay(s.stats.from_relay);
  r.set_dropped(s.stats.dropped);
  return r;
}

}  // namespace weft::agent
