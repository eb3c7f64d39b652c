#include "lib/wireguard/genl_wireguard.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "lib/net/nl_attr.h"
#include "lib/status/errno_status.h"
#include "lib/status/status_macros.h"

namespace weft::wireguard {
namespace {

std::unique_ptr<net::NlRequest> StartMessage(uint16_t family_id, const std::string& ifname) {
  auto req = std::make_unique<net::NlRequest>(family_id, 0);
  auto* g = req->PutExtraHeader<genlmsghdr>();
  g->cmd = WG_CMD_SET_DEVICE;
  g->version = WG_GENL_VERSION;
  mnl_attr_put_strz(req->header(), WGDEVICE_A_IFNAME, ifname.c_str());
  return req;
}

void EncodeEndpoint(const net::Endpoint& e, std::vector<uint8_t>& out) {
  sockaddr_storage sa;
  const socklen_t len = net::ToSockaddr(e, &sa);
  out.assign(reinterpret_cast<uint8_t*>(&sa), reinterpret_cast<uint8_t*>(&sa) + len);
}

// Puts a peer's fixed part (key, flags, endpoint, keepalive, psk). False if it does not fit.
bool PutPeerHead(nlmsghdr* nlh, size_t max, const PeerConfig& p, bool first_part) {
  uint32_t flags = 0;
  if (p.remove) flags |= WGPEER_F_REMOVE_ME;
  if (p.replace_allowed_ips && first_part) flags |= WGPEER_F_REPLACE_ALLOWEDIPS;
  if (!mnl_attr_put_check(nlh, max, WGPEER_A_PUBLIC_KEY, 32, p.public_key.bytes.data())) return false;
  if (flags && !mnl_attr_put_u32_check(nlh, max, WGPEER_A_FLAGS, flags)) return false;
  if (!first_part || p.remove) return true;
  if (p.preshared_key && !mnl_attr_put_check(nlh, max, WGPEER_A_PRESHARED_KEY, 32, p.preshared_key->bytes.data())) return false;
  if (p.endpoint) {
    std::vector<uint8_t> sa;
    EncodeEndpoint(*p.endpoint, sa);
    if (!mnl_attr_put_check(nlh, max, WGPEER_A_ENDPOINT, sa.size(), sa.data())) return false;
  }
  if (p.persistent_keepalive &&
      !mnl_attr_put_u16_check(nlh, max, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, static_cast<uint16_t>(*p.persistent_keepalive))) {
    return false;
  }
  return true;
}

bool PutAllowedIp(nlmsghdr* nlh, size_t max, const net::IpPrefix& ip) {
  nlattr* nest = mnl_attr_nest_start_check(nlh, max, 0);
  if (nest == nullptr) return false;
  if (!mnl_attr_put_u16_check(nlh, max, WGALLOWEDIP_A_FAMILY, static_cast<uint16_t>(ip.address.af())) ||
      !mnl_attr_put_check(nlh, max, WGALLOWEDIP_A_IPADDR, ip.address.byte_length(), ip.address.bytes()) ||
      !mnl_attr_put_u8_check(nlh, max, WGALLOWEDIP_A_CIDR_MASK, static_cast<uint8_t>(ip.length))) {
    mnl_attr_nest_cancel(nlh, nest);
    return false;
  }
  mnl_attr_nest_end(nlh, nest);
  return true;
}

absl::StatusOr<net::Endpoint> DecodeEndpoint(const nlattr* a) {
  if (auto e = net::FromSockaddr(mnl_attr_get_payload(a), mnl_attr_get_payload_len(a))) return *e;
  return absl::InvalidArgumentError("WGPEER_A_ENDPOINT: unknown address");
}

absl::StatusOr<Key> KeyAttr(const nlattr* a) {
  if (mnl_attr_get_payload_len(a) != 32) return absl::InvalidArgumentError("WireGuard key attribute is not 32 bytes");
  Key k;
  std::memcpy(k.bytes.data(), mnl_attr_get_payload(a), 32);
  return k;
}

absl::Status ParseAllowedIp(const nlattr* nest, std::vector<net::IpPrefix>& out) {
  uint16_t family = 0;
  const nlattr* addr = nullptr;
  int cidr = -1;
  net::ForEachNested(nest, [&](const nlattr* a) {
    switch (mnl_attr_get_type(a)) {
      case WGALLOWEDIP_A_FAMILY:
        if (mnl_attr_get_payload_len(a) == 2) family = mnl_attr_get_u16(a);
        break;
      case WGALLOWEDIP_A_IPADDR: addr = a; break;
      case WGALLOWEDIP_A_CIDR_MASK:
        if (mnl_attr_get_payload_len(a) == 1) cidr = mnl_attr_get_u8(a);
        break;
    }
  });
  const size_t want = family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
  if (want == 0 || addr == nullptr || mnl_attr_get_payload_len(addr) != want || cidr < 0 ||
      cidr > static_cast<int>(want * 8)) {
    return absl::InvalidArgumentError("malformed WGALLOWEDIP");
  }
  out.push_back({net::IpAddress::FromBytes(want == 4 ? net::Family::kV4 : net::Family::kV6,
                                           static_cast<const uint8_t*>(mnl_attr_get_payload(addr))),
                 cidr});
  return absl::OkStatus();
}

absl::Status ParsePeer(const nlattr* nest, DeviceStatus& status) {
  PeerStatus p;
  bool has_key = false;
  absl::Status err;
  net::ForEachNested(nest, [&](const nlattr* a) {
    if (!err.ok()) return;
    switch (mnl_attr_get_type(a)) {
      case WGPEER_A_PUBLIC_KEY:
        if (auto k = KeyAttr(a); k.ok()) {
          p.public_key = *k;
          has_key = true;
        } else {
          err = k.status();
        }
        break;
      case WGPEER_A_ENDPOINT:
        if (auto e = DecodeEndpoint(a); e.ok()) p.endpoint = *e; else err = e.status();
        break;
      case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
        if (mnl_attr_get_payload_len(a) == 2) p.persistent_keepalive = mnl_attr_get_u16(a);
        break;
      case WGPEER_A_LAST_HANDSHAKE_TIME:
        if (mnl_attr_get_payload_len(a) == sizeof(__kernel_timespec)) {
          __kernel_timespec ts;
          std::memcpy(&ts, mnl_attr_get_payload(a), sizeof(ts));
          if (ts.tv_sec != 0 || ts.tv_nsec != 0) {
            p.last_handshake = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
          }
        }
        break;
      case WGPEER_A_RX_BYTES:
        if (mnl_attr_get_payload_len(a) == 8) p.rx_bytes = mnl_attr_get_u64(a);
        break;
      case WGPEER_A_TX_BYTES:
        if (mnl_attr_get_payload_len(a) == 8) p.tx_bytes = mnl_attr_get_u64(a);
        break;
      case WGPEER_A_ALLOWEDIPS:
        net::ForEachNested(a, [&](const nlattr* ip) {
          if (err.ok()) err = ParseAllowedIp(ip, p.allowed_ips);
        });
        break;
    }
  });
  RETURN_IF_ERROR(err);
  if (!has_key) return absl::InvalidArgumentError("WireGuard peer without a public key");
  // A peer whose allowed IPs did not fit continues in the next message.
  if (!status.peers.empty() && status.peers.back().public_key == p.public_key) {
    auto& last = status.peers.back();
    last.allowed_ips.insert(last.allowed_ips.end(), p.allowed_ips.begin(), p.allowed_ips.end());
    return absl::OkStatus();
  }
  status.peers.push_back(std::move(p));
  return absl::OkStatus();
}

}  // namespace

std::vector<std::unique_ptr<net::NlRequest>> BuildSetDevice(uint16_t family_id, const std::string& ifname,
                                                            const DeviceConfig& c, size_t max_bytes) {
  std::vector<std::unique_ptr<net::NlRequest>> out;
  auto req = StartMessage(family_id, ifname);
  max_bytes = std::min(max_bytes, req->capacity());
  nlmsghdr* nlh = req->header();
  if (c.private_key) mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, 32, c.private_key->bytes.data());
  if (c.listen_port) mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, *c.listen_port);
  if (c.fwmark) mnl_attr_put_u32(nlh, WGDEVICE_A_FWMARK, *c.fwmark);
  if (c.replace_peers) mnl_attr_put_u32(nlh, WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS);

  size_t peer = 0, ip = 0;  // where the next message resumes
  bool peer_started = false;
  while (peer < c.peers.size()) {
    const size_t resume_peer = peer, resume_ip = ip;
    const bool resume_started = peer_started;
    nlattr* peers = mnl_attr_nest_start_check(nlh, max_bytes, WGDEVICE_A_PEERS);
    bool full = peers == nullptr;
    while (!full && peer < c.peers.size()) {
      const PeerConfig& p = c.peers[peer];
      nlattr* pn = mnl_attr_nest_start_check(nlh, max_bytes, 0);
      if (pn == nullptr || !PutPeerHead(nlh, max_bytes, p, !peer_started)) {
        if (pn) mnl_attr_nest_cancel(nlh, pn);
        full = true;
        break;
      }
      peer_started = true;
      if (!p.remove && ip < p.allowed_ips.size()) {
        nlattr* ips = mnl_attr_nest_start_check(nlh, max_bytes, WGPEER_A_ALLOWEDIPS);
        if (ips == nullptr) full = true;
        while (!full && ip < p.allowed_ips.size()) {
          if (!PutAllowedIp(nlh, max_bytes, p.allowed_ips[ip])) {
            full = true;
            break;
          }
          ++ip;
        }
        if (ips) mnl_attr_nest_end(nlh, ips);
      }
      mnl_attr_nest_end(nlh, pn);
      if (full) break;
      ++peer;
      ip = 0;
      peer_started = false;
    }
    if (peers) mnl_attr_nest_end(nlh, peers);
    // A fresh message that takes nothing means max_bytes is too small for one peer.
    if (peer == resume_peer && ip == resume_ip && peer_started == resume_started) break;
    if (peer < c.peers.size()) {
      out.push_back(std::move(req));
      req = StartMessage(family_id, ifname);
      nlh = req->header();
    }
  }
  out.push_back(std::move(req));
  return out;
}

absl::Status ParseGetDevicePart(const nlmsghdr* nlh, DeviceStatus& status) {
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(genlmsghdr)) {
    return absl::InvalidArgumentError("WireGuard reply: truncated genlmsghdr");
  }
  absl::Status err;
  net::ForEachAttr(nlh, sizeof(genlmsghdr), [&](const nlattr* a) {
    if (!err.ok()) return;
    switch (mnl_attr_get_type(a)) {
      case WGDEVICE_A_PRIVATE_KEY:
        if (auto k = KeyAttr(a); k.ok()) status.private_key = *k; else err = k.status();
        break;
      case WGDEVICE_A_PUBLIC_KEY:
        if (auto k = KeyAttr(a); k.ok()) status.public_key = *k; else err = k.status();
        break;
      case WGDEVICE_A_LISTEN_PORT:
        if (mnl_attr_get_payload_len(a) == 2) status.listen_port = mnl_attr_get_u16(a);
        break;
      case WGDEVICE_A_FWMARK:
        if (mnl_attr_get_payload_len(a) == 4) status.fwmark = mnl_attr_get_u32(a);
        break;
      case WGDEVICE_A_PEERS:
        net::ForEachNested(a, [&](const nlattr* p) {
          if (err.ok()) err = ParsePeer(p, status);
        });
        break;
    }
  });
  return err;
}

absl::StatusOr<std::unique_ptr<KernelDevice>> KernelDevice::Open(const std::string& ifname) {
  ASSIGN_OR_RETURN(net::NlSocket sock, net::NlSocket::Open(NETLINK_GENERIC));
  net::NlRequest req(GENL_ID_CTRL, 0);
  auto* g = req.PutExtraHeader<genlmsghdr>();
  g->cmd = CTRL_CMD_GETFAMILY;
  g->version = 1;
  mnl_attr_put_strz(req.header(), CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
  uint16_t family = 0;
  absl::Status s = sock.Transact(req, [&](const nlmsghdr* nlh) {
    net::ForEachAttr(nlh, sizeof(genlmsghdr), [&](const nlattr* a) {
      if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID && mnl_attr_get_payload_len(a) == 2) family = mnl_attr_get_u16(a);
    });
    return absl::OkStatus();
  });
  if (absl::IsNotFound(s) || (s.ok() && family == 0)) {
    return absl::NotFoundError("the kernel has no WireGuard (generic netlink family \"wireguard\")");
  }
  RETURN_IF_ERROR(s);
  return std::unique_ptr<KernelDevice>(new KernelDevice(std::move(sock), family, ifname));
}

absl::Status KernelDevice::Set(const DeviceConfig& config) {
  for (auto& req : BuildSetDevice(family_, ifname_, config)) {
    RETURN_IF_ERROR(Annotate(sock_.Transact(*req), absl::StrCat("WG_CMD_SET_DEVICE ", ifname_)));
  }
  return absl::OkStatus();
}

absl::StatusOr<DeviceStatus> KernelDevice::Get() {
  net::NlRequest req(family_, NLM_F_DUMP);
  auto* g = req.PutExtraHeader<genlmsghdr>();
  g->cmd = WG_CMD_GET_DEVICE;
  g->version = WG_GENL_VERSION;
  mnl_attr_put_strz(req.header(), WGDEVICE_A_IFNAME, ifname_.c_str());
  DeviceStatus status;
  uint32_t seq = 0;
  RETURN_IF_ERROR(sock_.Transact(req, [&](const nlmsghdr* nlh) {
    // A dump interrupted by a concurrent change is retried with a new sequence number:
    // start over rather than merge two snapshots.
    if (nlh->nlmsg_seq != seq) {
      seq = nlh->nlmsg_seq;
      status = DeviceStatus();
    }
    return ParseGetDevicePart(nlh, status);
  }));
  return status;
}

}  // namespace weft::wireguard
