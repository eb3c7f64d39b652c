#include "lib/turn/turn_client.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace weft::turn {
namespace {

constexpr int64_t kRetryMs = 1000;          // an unanswered refresh or bind, again
constexpr int64_t kRebindMs = 240000;       // channels last 10 minutes, permissions 5
constexpr int64_t kProbeMs = 1000;          // liveness
constexpr size_t kMaxPending = 256;         // answers that never come are forgotten

}  // namespace

TurnClient::TurnClient(Options opts) : opts_(std::move(opts)), lifetime_s_(opts_.lifetime_s) {}

stun::TxId TurnClient::NextTx() {
  // A 96-bit ID from the seed and a counter (splitmix64): unique per client, not guessable
  // by anyone who does not know the seed.
  stun::TxId t{};
  uint64_t x = opts_.tx_seed + 0x9E3779B97F4A7C15ull * ++tx_counter_;
  for (int half = 0; half < 2; ++half) {
    uint64_t z = x + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(half + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    std::memcpy(t.data() + half * 6, &z, 6);
  }
  return t;
}

std::vector<uint8_t> TurnClient::Signed(stun::Builder& b) const {
  if (!nonce_.empty()) {
    b.AddString(stun::kUsername, opts_.username).AddString(stun::kRealm, realm_).AddString(stun::kNonce, nonce_);
    b.AddIntegrity(key_);
  }
  return b.Finish();
}

std::vector<uint8_t> TurnClient::Request(uint16_t method, Purpose purpose, uint16_t channel) {
  const stun::TxId tx = NextTx();
  if (pending_.size() >= kMaxPending) pending_.erase(pending_.begin());
  pending_[tx] = {purpose, channel};
  if (purpose == Purpose::kBinding) return stun::BuildBindingRequest(tx);
  stun::Builder b(method, stun::Class::kRequest, tx);
  switch (purpose) {
    case Purpose::kAllocate:
      b.AddU32(stun::kRequestedTransport, 17u << 24).AddU32(stun::kLifetime, lifetime_s_);
      break;
    case Purpose::kRefresh:
      b.AddU32(stun::kLifetime, lifetime_s_);
      break;
    case Purpose::kChannelBind:
      b.AddU32(stun::kChannelNumber, uint32_t{channel} << 16).AddXorAddress(stun::kXorPeerAddress, channels_.at(channel).peer);
      break;
    case Purpose::kBinding:
      break;
  }
  return Signed(b);
}

void TurnClient::Fail(absl::Status why) {
  state_ = State::kFailed;
  failure_ = std::move(why);
}

std::vector<std::vector<uint8_t>> TurnClient::Due(int64_t now_ms) {
  std::vector<std::vector<uint8_t>> out;
  if (state_ == State::kFailed) return out;
  if (state_ == State::kAllocating) {
    if (allocate_sent_ms_ >= 0 && now_ms - allocate_sent_ms_ < kAllocateRetryMs) return out;
    if (allocate_tries_ >= kAllocateTries) {
      Fail(absl::DeadlineExceededError("no answer to Allocate from the relay"));
      return out;
    }
    ++allocate_tries_;
    allocate_sent_ms_ = now_ms;
    out.push_back(Request(stun::kAllocate, Purpose::kAllocate));
    return out;
  }
  for (auto& [ch, c] : channels_) {
    const int64_t every = c.bound ? kRebindMs : kRetryMs;
    if (c.sent_ms >= 0 && now_ms - c.sent_ms < every) continue;
    c.sent_ms = now_ms;
    out.push_back(Request(stun::kChannelBind, Purpose::kChannelBind, ch));
  }
  if (probe_sent_ms_ < 0 || now_ms - probe_sent_ms_ >= kProbeMs) {
    probe_sent_ms_ = now_ms;
    out.push_back(Request(stun::kBinding, Purpose::kBinding));
  }
  // Refresh at half the lifetime, and every second until one succeeds.
  const bool due = refresh_pending_ ? now_ms - refresh_sent_ms_ >= kRetryMs
                                    : now_ms - refreshed_ms_ >= int64_t{lifetime_s_} * 500;
  if (due) {
    refresh_pending_ = true;
    refresh_sent_ms_ = now_ms;
    out.push_back(Request(stun::kRefresh, Purpose::kRefresh));
  }
  return out;
}

void TurnClient::OnMessage(const stun::Message& m, int64_t now_ms) {
  auto it = pending_.find(m.tx_id());
  if (it == pending_.end()) return;  // not ours, or answered already
  const Pending p = it->second;
  pending_.erase(it);
  const bool ok = m.message_class() == stun::Class::kSuccess;
  auto error = m.GetErrorCode();
  if (!ok && error.ok() && (error->code == 401 || error->code == 438)) {
    // The challenge: realm and nonce (first 401, or a stale nonce); sign and ask again.
    if (auto realm = m.GetString(stun::kRealm); realm.ok()) realm_ = *realm;
    if (auto nonce = m.GetString(stun::kNonce); nonce.ok()) nonce_ = *nonce;
    key_ = stun::LongTermKey(opts_.username, realm_, opts_.password);
  }
  switch (p.purpose) {
    case Purpose::kAllocate: {
      if (state_ != State::kAllocating) return;
      if (ok) {
        auto r = m.GetXorAddress(stun::kXorRelayedAddress);
        if (!r.ok()) {
          Fail(absl::DataLossError("Allocate success without XOR-RELAYED-ADDRESS"));
          return;
        }
        relayed_ = *r;
        if (auto l = m.GetU32(stun::kLifetime); l.ok() && *l > 0) lifetime_s_ = *l;
        state_ = State::kAllocated;
        refreshed_ms_ = now_ms;
        return;
      }
      if (!error.ok()) return;
      if (error->code == 438 || (error->code == 401 && ++unauthorized_ < 3)) {
        allocate_sent_ms_ = -1;  // signed again at the next step
        return;
      }
      if (error->code == 401) {
        Fail(absl::PermissionDeniedError("the relay refused our credentials"));
        return;
      }
      Fail(absl::UnavailableError(absl::StrCat("Allocate: ", error->code, " ", error->reason)));
      return;
    }
    case Purpose::kRefresh:
      if (ok) {
        refresh_pending_ = false;
        refreshed_ms_ = now_ms;
        if (auto l = m.GetU32(stun::kLifetime); l.ok() && *l > 0) lifetime_s_ = *l;
      } else if (error.ok() && error->code == 438) {
        refresh_sent_ms_ = -kRetryMs;  // re-signed with the new nonce at the next step
      } else if (error.ok()) {
        // 437: the allocation is gone; 401: the credentials expired.
        Fail(absl::UnavailableError(absl::StrCat("Refresh: ", error->code, " ", error->reason)));
      }
      return;
    case Purpose::kChannelBind: {
      auto c = channels_.find(p.channel);
      if (c == channels_.end()) return;
      if (ok) c->second.bound = true;
      else c->second.sent_ms = -1;  // again at the next step (438: with the new nonce)
      return;
    }
    case Purpose::kBinding:
      return;
  }
}

absl::StatusOr<uint16_t> TurnClient::Channel(const net::Endpoint& peer) {
  if (auto it = by_peer_.find(peer); it != by_peer_.end()) return it->second;
  if (channels_.size() >= kMaxChannels) return absl::ResourceExhaustedError("no channel left");
  const uint16_t ch = static_cast<uint16_t>(kFirstChannel + channels_.size());
  channels_[ch] = {peer, false, -1};
  by_peer_[peer] = ch;
  return ch;
}

bool TurnClient::bound(uint16_t channel) const {
  auto it = channels_.find(channel);
  return it != channels_.end() && it->second.bound;
}

std::optional<net::Endpoint> TurnClient::PeerOf(uint16_t channel) const {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return std::nullopt;
  return it->second.peer;
}

std::optional<uint16_t> TurnClient::ChannelOf(const net::Endpoint& peer) const {
  auto it = by_peer_.find(peer);
  if (it == by_peer_.end()) return std::nullopt;
  return it->second;
}

std::vector<uint8_t> TurnClient::Release() {
  if (state_ != State::kAllocated || nonce_.empty()) return {};
  stun::Builder b(stun::kRefresh, stun::Class::kRequest, NextTx());
  b.AddU32(stun::kLifetime, 0);
  return Signed(b);
}

}  // namespace weft::turn
