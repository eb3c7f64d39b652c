#include "lib/turn/turn_server.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lib/turn/channel_data.h"
#include "lib/turn/turn_credentials.h"

namespace weft::turn {
namespace {

constexpr uint8_t kUdp = 17;
// RFC 8656 narrowed channels to 0x4000-0x4FFF; RFC 5766 clients (coturn's among them)
// still use up to 0x7FFF, which ChannelData's framing allows: accept both.
constexpr uint16_t kFirstChannel = 0x4000, kLastChannel = 0x7FFF;


// Attributes a request may carry that this server understands (RFC 8489 section 14:
// an unknown comprehension-required one, below 0x8000, gets a 420).
bool Understood(uint16_t type) {
  switch (type) {
    case stun::kUsername:
    case stun::kMessageIntegrity:
    case stun::kMessageIntegritySha256:
    case stun::kRealm:
    case stun::kNonce:
    case stun::kLifetime:
    case stun::kRequestedTransport:
    case stun::kDontFragment:
    case stun::kXorPeerAddress:
    case stun::kDataAttr:
    case stun::kChannelNumber:
    case stun::kRequestedAddressFamily:
    case stun::kChangeRequest:
    case stun::kEvenPort:  // an even port; the R bit (reserve the next one) is not honoured
      return true;
    default:
      return type >= 0x8000;
  }
}

}  // namespace

std::string TurnServer::Nonce(const Client& client, int64_t now_ms) const {
  // Bound to the whole 5-tuple (transport, address, port) and to the time: a request
  // captured on the way is no good from anywhere else, nor after nonce_lifetime_s.
  const std::string stamp = absl::StrCat(absl::Hex(now_ms / 1000, absl::kZeroPad8));
  const std::string msg = absl::StrCat(stamp, "/", client.transport == Transport::kTcp ? "tcp/" : "udp/",
                                       client.address.ToString());
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha1(), opts_.nonce_key.data(), static_cast<int>(opts_.nonce_key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
  return absl::StrCat(stamp, absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(mac), 8)));
}

bool TurnServer::NonceValid(const Client& client, absl::string_view nonce, int64_t now_ms) const {
  if (nonce.size() != 24) return false;
  int64_t stamp = 0;
  if (!absl::SimpleHexAtoi(nonce.substr(0, 8), &stamp)) return false;
  if (now_ms / 1000 - stamp > opts_.nonce_lifetime_s || stamp > now_ms / 1000 + 5) return false;
  return Nonce(client, stamp * 1000) == nonce;
}

void TurnServer::Error(const Client& client, const stun::Message& m, int code, absl::string_view reason,
                       const std::vector<uint8_t>& key, std::vector<Send>& out) {
  if (code != 403 && code != 508 && code != 486) ++counters_.refused;
  stun::Builder b(m.method(), stun::Class::kError, m.tx_id());
  b.AddErrorCode(code, reason);
  b.AddString(stun::kSoftware, opts_.software);
  b.AddIntegrity(key);
  out.push_back({0, client.address, b.Finish(), client.transport});
}

void TurnServer::ErrorUnauthenticated(const Client& client, const stun::Message& m, size_t request_size, int code,
                                      absl::Span<const uint8_t> unknown, std::vector<Send>& out) {
  stun::Builder b(m.method(), stun::Class::kError, m.tx_id());
  b.AddErrorCode(code, "");
  if (!unknown.empty()) b.AddRaw(stun::kUnknownAttributes, unknown);
  std::vector<uint8_t> answer = b.Finish(false);
  if (answer.size() > request_size) {
    ++counters_.not_answered;  // no amplification for whoever forged the source address
    return;
  }
  out.push_back({0, client.address, std::move(answer), client.transport});
}

absl::Status TurnServer::PeerAllowed(const net::Endpoint& peer) const {
  if (by_relayed_.contains(peer)) return absl::OkStatus();  // a pair on this relay
  return policy_.Check(peer);
}

TurnServer::Auth TurnServer::Authenticate(const Client& client, const stun::Message& m, size_t request_size, int64_t now_ms,
                                          std::vector<Send>& out) {
  Auth a;
  // The challenge RFC 8489 section 9.2 requires, and no more: ERROR-CODE without a reason
  // phrase, REALM and NONCE (it may be larger than a minimal request: 64 bytes).
  auto challenge = [&](int code) {
    ++counters_.unauthenticated;
    stun::Builder b(m.method(), stun::Class::kError, m.tx_id());
    b.AddErrorCode(code, "");
    b.AddString(stun::kRealm, opts_.realm);
    b.AddString(stun::kNonce, Nonce(client, now_ms));
    out.push_back({0, client.address, b.Finish(false), client.transport});
  };
  if (!m.Find(stun::kMessageIntegrity) && !m.Find(stun::kMessageIntegritySha256)) {
    challenge(401);
    return a;
  }
  auto username = m.GetString(stun::kUsername);
  auto realm = m.GetString(stun::kRealm);
  auto nonce = m.GetString(stun::kNonce);
  if (!username.ok() || !realm.ok() || !nonce.ok()) {
    ++counters_.malformed;
    ErrorUnauthenticated(client, m, request_size, 400, {}, out);
    return a;
  }
  if (!NonceValid(client, *nonce, now_ms)) {
    challenge(438);
    return a;
  }
  auto expiry = ExpiryOf(*username);
  if (*realm != opts_.realm || !expiry.ok() || *expiry * 1000 < now_ms ||
      *expiry * 1000 > now_ms + opts_.max_credential_lifetime_s * 1000) {
    challenge(401);
    return a;
  }
  for (const std::string& secret : secrets_) {
    std::vector<uint8_t> key = stun::LongTermKey(*username, opts_.realm, PasswordFor(secret, *username));
    if (m.CheckIntegrity(key).ok()) {
      a.ok = true;
      a.key = std::move(key);
      a.username = *username;
      return a;
    }
  }
  challenge(401);
  return a;
}

TurnServer::Allocation* TurnServer::ByClient(const Client& client) {
  auto it = by_client_.find(client);
  if (it == by_client_.end()) return nullptr;
  return &allocations_.at(it->second);
}

void TurnServer::Remove(uint64_t id) {
  auto it = allocations_.find(id);
  if (it == allocations_.end()) return;
  ports_.Close(id);
  by_client_.erase(it->second.client);
  by_relayed_.erase(it->second.relayed);
  if (auto u = per_user_.find(it->second.username); u != per_user_.end() && --u->second == 0) per_user_.erase(u);
  allocations_.erase(it);
}

void TurnServer::ClientGone(const Client& client) {
  if (auto it = by_client_.find(client); it != by_client_.end()) Remove(it->second);
}

bool TurnServer::Spend(Allocation& a, size_t bytes, int64_t now_ms) {
  if (opts_.max_bytes_per_second == 0) return true;
  const double rate = static_cast<double>(opts_.max_bytes_per_second);
  a.tokens = std::min(rate, a.tokens + rate * static_cast<double>(now_ms - a.tokens_at_ms) / 1000.0);
  a.tokens_at_ms = now_ms;
  if (a.tokens < static_cast<double>(bytes)) {
    ++counters_.rate_limited;
    return false;
  }
  a.tokens -= static_cast<double>(bytes);
  return true;
}

void TurnServer::Allocate(const Client& client, const stun::Message& m, const Auth& auth, int64_t now_ms,
                          std::vector<Send>& out) {
  if (ByClient(client) != nullptr) {
    Error(client, m, 437, "Allocation Mismatch", auth.key, out);
    return;
  }
  auto transport = m.GetU32(stun::kRequestedTransport);
  if (!transport.ok()) {
    Error(client, m, 400, "Bad Request: no REQUESTED-TRANSPORT", auth.key, out);
    return;
  }
  if ((*transport >> 24) != kUdp) {
    Error(client, m, 442, "Unsupported Transport Protocol", auth.key, out);
    return;
  }
  if (auto family = m.GetU32(stun::kRequestedAddressFamily); family.ok() && (*family >> 24) != 0x01) {
    Error(client, m, 440, "Address Family not Supported", auth.key, out);
    return;
  }
  if (per_user_[auth.username] >= opts_.max_allocations_per_user) {
    ++counters_.quota;
    Error(client, m, 486, "Allocation Quota Reached", auth.key, out);
    return;
  }
  if (allocations_.size() >= opts_.max_allocations) {
    ++counters_.quota;
    Error(client, m, 508, "Insufficient Capacity", auth.key, out);
    return;
  }
  const uint64_t id = next_id_++;
  auto relayed = ports_.Open(id, m.Find(stun::kEvenPort).has_value());
  if (!relayed.ok()) {
    ++counters_.quota;
    Error(client, m, 508, "Insufficient Capacity: no relay port", auth.key, out);
    return;
  }
  uint32_t lifetime = opts_.default_lifetime_s;
  if (auto l = m.GetU32(stun::kLifetime); l.ok()) lifetime = std::min(std::max(*l, 1u), opts_.max_lifetime_s);
  Allocation a;
  a.id = id;
  a.client = client;
  a.username = auth.username;
  a.key = auth.key;
  a.relayed = *relayed;
  a.expiry_ms = now_ms + int64_t{lifetime} * 1000;
  a.tokens = static_cast<double>(opts_.max_bytes_per_second);
  a.tokens_at_ms = now_ms;
  allocations_[id] = std::move(a);
  by_client_[client] = id;
  by_relayed_[*relayed] = id;
  ++per_user_[auth.username];
  stun::Builder b(stun::kAllocate, stun::Class::kSuccess, m.tx_id());
  b.AddXorAddress(stun::kXorRelayedAddress, *relayed)
      .AddU32(stun::kLifetime, lifetime)
      .AddXorAddress(stun::kXorMappedAddress, client.address)
      .AddString(stun::kSoftware, opts_.software)
      .AddIntegrity(auth.key);
  out.push_back({0, client.address, b.Finish(), client.transport});
}

void TurnServer::OnRequest(const Client& client, const stun::Message& m, size_t request_size, int64_t now_ms,
                           std::vector<Send>& out) {
  if (m.method() == stun::kBinding) {
    // The one answer STUN gives anyone: 32 bytes for IPv4 (a request is 20 or more).
    ++counters_.binding;
    stun::Builder b(stun::kBinding, stun::Class::kSuccess, m.tx_id());
    b.AddXorAddress(stun::kXorMappedAddress, client.address);
    out.push_back({0, client.address, b.Finish(false), client.transport});
    return;
  }
  if (m.method() != stun::kAllocate && m.method() != stun::kRefresh && m.method() != stun::kCreatePermission &&
      m.method() != stun::kChannelBind) {
    ++counters_.malformed;
    ErrorUnauthenticated(client, m, request_size, 400, {}, out);
    return;
  }
  std::vector<uint8_t> unknown;
  for (const auto& attr : m.attributes()) {
    if (!Understood(attr.type) && unknown.size() < 32) {
      unknown.push_back(static_cast<uint8_t>(attr.type >> 8));
      unknown.push_back(static_cast<uint8_t>(attr.type));
    }
  }
  if (!unknown.empty()) {
    ++counters_.unknown_attribute;
    ErrorUnauthenticated(client, m, request_size, 420, unknown, out);
    return;
  }
  const Auth auth = Authenticate(client, m, request_size, now_ms, out);
  if (!auth.ok) return;
  if (m.method() == stun::kAllocate) {
    Allocate(client, m, auth, now_ms, out);
    return;
  }
  Allocation* a = ByClient(client);
  if (a == nullptr) {  // counted as refused (Error), like every other error answer
    Error(client, m, 437, "Allocation Mismatch: no allocation for this 5-tuple", auth.key, out);
    return;
  }
  if (a->username != auth.username) {
    Error(client, m, 441, "Wrong Credentials", auth.key, out);
    return;
  }
  stun::Builder b(m.method(), stun::Class::kSuccess, m.tx_id());
  if (m.method() == stun::kRefresh) {
    uint32_t lifetime = opts_.default_lifetime_s;
    if (auto l = m.GetU32(stun::kLifetime); l.ok()) lifetime = std::min(*l, opts_.max_lifetime_s);
    b.AddU32(stun::kLifetime, lifetime).AddString(stun::kSoftware, opts_.software).AddIntegrity(auth.key);
    if (lifetime == 0) Remove(a->id);
    else a->expiry_ms = now_ms + int64_t{lifetime} * 1000;
    out.push_back({0, client.address, b.Finish(), client.transport});
    return;
  }
  auto peer = m.GetXorAddress(stun::kXorPeerAddress);
  if (!peer.ok()) {
    Error(client, m, 400, "Bad Request: no XOR-PEER-ADDRESS", auth.key, out);
    return;
  }
  if (peer->ip.is_v4() != a->relayed.ip.is_v4()) {
    Error(client, m, 443, "Peer Address Family Mismatch", auth.key, out);
    return;
  }
  if (absl::Status allowed = PeerAllowed(*peer); !allowed.ok()) {
    ++counters_.forbidden;
    Error(client, m, 403, allowed.message(), auth.key, out);
    return;
  }
  if (!a->permissions.contains(peer->ip) && a->permissions.size() >= opts_.max_permissions) {
    ++counters_.quota;
    Error(client, m, 508, "Insufficient Capacity: too many permissions", auth.key, out);
    return;
  }
  if (m.method() == stun::kChannelBind) {
    auto number = m.GetU32(stun::kChannelNumber);
    const uint16_t ch = number.ok() ? static_cast<uint16_t>(*number >> 16) : 0;
    if (ch < kFirstChannel || ch > kLastChannel) {
      Error(client, m, 400, "Bad Request: CHANNEL-NUMBER out of range", auth.key, out);
      return;
    }
    auto bound = a->channels.find(ch);
    auto of = a->channel_of.find(*peer);
    if ((bound != a->channels.end() && bound->second.peer != *peer) || (of != a->channel_of.end() && of->second != ch)) {
      Error(client, m, 400, "Bad Request: channel or peer bound otherwise", auth.key, out);
      return;
    }
    a->channels[ch] = {*peer, now_ms + int64_t{opts_.channel_lifetime_s} * 1000};
    a->channel_of[*peer] = ch;
  }
  a->permissions[peer->ip] = now_ms + int64_t{opts_.permission_lifetime_s} * 1000;
  b.AddString(stun::kSoftware, opts_.software).AddIntegrity(auth.key);
  out.push_back({0, client.address, b.Finish(), client.transport});
}

void TurnServer::OnClient(const Client& client, absl::Span<const uint8_t> pkt, int64_t now_ms, std::vector<Send>& out) {
  if (IsChannelData(pkt)) {
    const std::optional<ChannelData> cd = ParseChannelData(pkt);
    if (!cd || cd->channel < kFirstChannel || cd->channel > kLastChannel) {
      ++counters_.malformed;
      return;
    }
    const uint16_t ch = cd->channel;
    Allocation* a = ByClient(client);
    if (a == nullptr) {
      ++counters_.no_allocation;
      return;
    }
    auto c = a->channels.find(ch);
    if (c == a->channels.end() || c->second.expiry_ms < now_ms) {
      ++counters_.no_channel;
      return;
    }
    auto perm = a->permissions.find(c->second.peer.ip);
    if (perm == a->permissions.end() || perm->second < now_ms) {
      ++counters_.no_permission;
      return;
    }
    if (!Spend(*a, cd->data.size(), now_ms)) return;
    ++counters_.to_peers;
    out.push_back({a->id, c->second.peer, std::vector<uint8_t>(cd->data.begin(), cd->data.end())});
    return;
  }
  auto m = stun::Message::Parse(pkt);
  if (!m.ok()) {
    ++counters_.malformed;
    return;
  }
  if (m->message_class() == stun::Class::kRequest) {
    OnRequest(client, *m, pkt.size(), now_ms, out);
    return;
  }
  if (m->message_class() == stun::Class::kIndication && m->method() == stun::kSend) {
    Allocation* a = ByClient(client);
    auto peer = m->GetXorAddress(stun::kXorPeerAddress);
    auto data = m->Find(stun::kDataAttr);
    if (a == nullptr) {
      ++counters_.no_allocation;
      return;
    }
    if (!peer.ok() || !data) {
      ++counters_.malformed;
      return;
    }
    auto perm = a->permissions.find(peer->ip);
    if (perm == a->permissions.end() || perm->second < now_ms) {
      ++counters_.no_permission;
      return;
    }
    if (!PeerAllowed(*peer).ok()) {  // the IP is permitted, but not every port of it is
      ++counters_.forbidden;
      return;
    }
    if (!Spend(*a, data->value.size(), now_ms)) return;
    ++counters_.to_peers;
    out.push_back({a->id, *peer, std::vector<uint8_t>(data->value.begin(), data->value.end())});
    return;
  }
  ++counters_.malformed;  // responses and other indications are not for a server
}

void TurnServer::OnPeer(uint64_t id, const net::Endpoint& peer, absl::Span<const uint8_t> pkt, int64_t now_ms,
                        std::vector<Send>& out) {
  auto it = allocations_.find(id);
  if (it == allocations_.end()) {
    ++counters_.no_allocation;
    return;
  }
  Allocation& a = it->second;
  auto perm = a.permissions.find(peer.ip);
  if (perm == a.permissions.end() || perm->second < now_ms) {
    ++counters_.no_permission;
    return;
  }
  if (pkt.size() > 65535 - 4 || !Spend(a, pkt.size(), now_ms)) return;
  ++counters_.to_clients;
  if (auto c = a.channel_of.find(peer); c != a.channel_of.end() && a.channels[c->second].expiry_ms >= now_ms) {
    std::vector<uint8_t> d(kChannelDataHeader + pkt.size());
    WriteChannelDataHeader(d.data(), c->second, pkt.size());
    std::memcpy(d.data() + kChannelDataHeader, pkt.data(), pkt.size());
    out.push_back({0, a.client.address, std::move(d), a.client.transport});
    return;
  }
  stun::TxId tx{};
  const uint64_t n = ++data_seq_;
  std::memcpy(tx.data(), &n, sizeof(n));
  stun::Builder b(stun::kData, stun::Class::kIndication, tx);
  b.AddXorAddress(stun::kXorPeerAddress, peer).AddRaw(stun::kDataAttr, pkt);
  out.push_back({0, a.client.address, b.Finish(false), a.client.transport});
}

void TurnServer::Expire(int64_t now_ms) {
  std::vector<uint64_t> gone;
  for (auto& [id, a] : allocations_) {
    if (a.expiry_ms < now_ms) {
      gone.push_back(id);
      continue;
    }
    std::erase_if(a.permissions, [&](const auto& p) { return p.second < now_ms; });
    for (auto c = a.channels.begin(); c != a.channels.end();) {
      if (c->second.expiry_ms < now_ms) {
        a.channel_of.erase(c->second.peer);
        c = a.channels.erase(c);
      } else {
        ++c;
      }
    }
  }
  for (uint64_t id : gone) Remove(id);
}

}  // namespace weft::turn
