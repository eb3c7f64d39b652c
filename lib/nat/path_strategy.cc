#include "lib/nat/path_strategy.h"

#include "absl/strings/str_cat.h"

namespace weft::nat {
namespace {

enum class Class { kPublic, kEasy, kHard, kBlocked };

Class ClassOf(const Verdict& v) {
  if (v.udp_blocked) return Class::kBlocked;
  switch (v.mapping) {
    case Mapping::kNone: return Class::kPublic;
    case Mapping::kEndpointDependent: return Class::kHard;
    // Not yet known: plan as easy; a failed punch falls back to relay anyway.
    case Mapping::kEndpointIndependent:
    case Mapping::kUnknown: return Class::kEasy;
  }
  return Class::kEasy;
}

// Lets in packets from an address it has sent to, whatever their source port.
bool FiltersByAddressOnly(const Verdict& v) {
  return v.filtering == Filtering::kEndpointIndependent || v.filtering == Filtering::kAddressDependent;
}

PathDecision Direct(Initiator who, std::string reason) { return {PathKind::kDirect, who, false, std::move(reason)}; }
PathDecision Relay(PathKind how, std::string reason) { return {how, Initiator::kNone, false, std::move(reason)}; }

// The decision for a ≤ b in (public, easy, hard) order; DecidePath swaps the result
// back when it had to reorder.
PathDecision Ordered(const NodeNat& a, Class ca, const NodeNat& b, Class cb) {
  if (ca == Class::kPublic && cb == Class::kPublic) return Direct(Initiator::kEither, "direct: both nodes have public addresses");
  if (ca == Class::kPublic && cb == Class::kEasy) {
    return Direct(Initiator::kBoth, absl::StrCat("direct: ", a.name, " is public, ", b.name, " is behind an easy NAT"));
  }
  if (ca == Class::kPublic && cb == Class::kHard) {
    return Direct(Initiator::kB, absl::StrCat("direct, ", b.name, " initiates: its NAT maps per destination, ", a.name,
                                              " is public and learns the port from the handshake"));
  }
  if (ca == Class::kEasy && cb == Class::kEasy) {
    return Direct(Initiator::kBoth, "direct: both behind easy NAT, simultaneous punch");
  }
  if (ca == Class::kEasy && cb == Class::kHard) {
    if (FiltersByAddressOnly(a.nat)) {
      return Direct(Initiator::kBoth, absl::StrCat("direct: ", b.name, " maps per destination, but ", a.name,
                                                   "'s NAT filters by address only, so ", b.name, "'s packets get in"));
    }
    return Relay(PathKind::kRelayUdp, absl::StrCat("relayed: ", b.name, " is behind endpoint-dependent NAT and ", a.name,
                                                  "'s NAT filters by address and port"));
  }
  return Relay(PathKind::kRelayUdp, "relayed: both nodes behind endpoint-dependent NAT");
}

Initiator Swap(Initiator i) {
  return i == Initiator::kA ? Initiator::kB : i == Initiator::kB ? Initiator::kA : i;
}

// "both nodes", or the one of them for which `f` holds (one does).
std::string Who(const NodeNat& a, bool fa, const NodeNat& b, bool fb) {
  return fa && fb ? "both nodes" : fa ? a.name : b.name;
}

PathDecision DecidePathV4(const NodeNat& a, const NodeNat& b) {
  if (a.nat.no_route || b.nat.no_route) {  // IPv4's verdict: no IPv4 at all
    // Only a relay both can reach could carry them: over IPv6 to the relay (not built:
    // relays are IPv4).
    return Relay(PathKind::kRelayUdp,
                 absl::StrCat("no IPv4 path: ", Who(a, a.nat.no_route, b, b.nat.no_route), " without IPv4"));
  }
  const Class ca = ClassOf(a.nat), cb = ClassOf(b.nat);
  if (ca == Class::kBlocked || cb == Class::kBlocked) {
    return Relay(PathKind::kRelayTcp, absl::StrCat("relayed over TCP: UDP is blocked at ",
                                                   Who(a, ca == Class::kBlocked, b, cb == Class::kBlocked)));
  }
  // Behind one NAT (same public address): the site's own network connects them.
  if (ca != Class::kPublic && cb != Class::kPublic && a.public_ip && a.public_ip == b.public_ip) {
    return {PathKind::kDirect, Initiator::kEither, true,
            absl::StrCat("direct over the local network: both behind the NAT at ", a.public_ip->ToString())};
  }
  if (ca <= cb) return Ordered(a, ca, b, cb);
  PathDecision d = Ordered(b, cb, a, ca);
  d.initiator = Swap(d.initiator);
  return d;
}

}  // namespace

absl::string_view PathKindName(PathKind k) {
  switch (k) {
    case PathKind::kDirect: return "direct";
    case PathKind::kRelayUdp: return "relay";
    case PathKind::kRelayTcp: return "relay-tcp";
  }
  return "?";
}

absl::string_view InitiatorName(Initiator i) {
  switch (i) {
    case Initiator::kEither: return "either";
    case Initiator::kBoth: return "both";
    case Initiator::kA: return "a";
    case Initiator::kB: return "b";
    case Initiator::kNone: return "none";
  }
  return "?";
}

PathDecision DecidePath(const NodeNat& a, const NodeNat& b) {
  PathDecision v4 = DecidePathV4(a, b);
  if (v4.path == PathKind::kDirect || !a.global_ipv6 || !b.global_ipv6) return v4;
  // The same words whichever side asks (a changed reason is a changed decision).
  const NodeNat& first = a.name <= b.name ? a : b;
  const NodeNat& second = a.name <= b.name ? b : a;
  PathDecision d{PathKind::kDirect, Initiator::kBoth, false,
                 absl::StrCat("direct over IPv6, both send first: both nodes have global IPv6 (", first.name, " ",
                              first.global_ipv6->ToString(), ", ", second.name, " ", second.global_ipv6->ToString(),
                              "), which a stateful firewall opens to each side's own first packets; over IPv4: ",
                              v4.reason),
                 /*ipv6=*/true};
  return d;
}

}  // namespace weft::nat
