#include "lib/stun/stun_message.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace weft::stun {
namespace {

constexpr size_t kSha1Len = 20;
constexpr size_t kSha256Len = 32;

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Get32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
void Put16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void Put32(std::vector<uint8_t>& b, uint32_t v) {
  Put16(b, static_cast<uint16_t>(v >> 16));
  Put16(b, static_cast<uint16_t>(v));
}
size_t Padded(size_t n) { return (n + 3) & ~size_t{3}; }

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("STUN: ", why));
}

// RFC 8489 section 5: M11..M7 C1 M6..M4 C0 M3..M0.
uint16_t EncodeType(uint16_t method, Class cls) {
  const uint16_t c = static_cast<uint16_t>(cls);
  return static_cast<uint16_t>((method & 0x000F) | ((method & 0x0070) << 1) |
                               ((method & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7));
}

std::vector<uint8_t> Hmac(absl::Span<const uint8_t> key, absl::Span<const uint8_t> data, bool sha256) {
  std::vector<uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  HMAC(sha256 ? EVP_sha256() : EVP_sha1(), key.data(), static_cast<int>(key.size()), data.data(),
       data.size(), out.data(), &len);
  out.resize(len);
  return out;
}

// The message up to `attr_offset`, with the header's length rewritten to end
// `trailer_len` bytes after it, as MESSAGE-INTEGRITY and FINGERPRINT are computed.
std::vector<uint8_t> PrefixWithLength(absl::Span<const uint8_t> msg, size_t attr_offset,
                                      size_t trailer_len) {
  std::vector<uint8_t> p(msg.begin(), msg.begin() + attr_offset);
  const size_t len = attr_offset + trailer_len - kHeaderSize;
  p[2] = static_cast<uint8_t>(len >> 8);
  p[3] = static_cast<uint8_t>(len);
  return p;
}

absl::StatusOr<SocketAddress> DecodeAddress(absl::Span<const uint8_t> v, const uint8_t* xor_key,
                                            bool xored) {
  if (v.size() < 4) return Bad("address attribute too short");
  const uint8_t family = v[1];
  const size_t len = family == 0x01 ? 4 : family == 0x02 ? 16 : 0;
  if (len == 0) return Bad("address family unknown");
  if (v.size() != 4 + len) return Bad("address attribute has the wrong length");
  uint16_t port = Get16(&v[2]);
  uint8_t ip[16];
  std::memcpy(ip, &v[4], len);
  if (xored) {
    port ^= static_cast<uint16_t>(kMagicCookie >> 16);
    for (size_t i = 0; i < len; ++i) ip[i] ^= xor_key[i];
  }
  return SocketAddress{net::IpAddress::FromBytes(len == 4 ? net::Family::kV4 : net::Family::kV6, ip), port};
}

}  // namespace

uint32_t Crc32(absl::Span<const uint8_t> data) {
  static const auto* table = [] {
    auto* t = new std::array<uint32_t, 256>;
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      (*t)[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (uint8_t b : data) crc = (*table)[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

bool LooksLikeStun(absl::Span<const uint8_t> pkt) {
  if (pkt.size() < kHeaderSize || (pkt[0] & 0xC0) != 0) return false;
  const size_t len = Get16(&pkt[2]);
  return len % 4 == 0 && kHeaderSize + len <= pkt.size() && Get32(&pkt[4]) == kMagicCookie;
}

absl::StatusOr<Message> Message::Parse(absl::Span<const uint8_t> pkt) {
  if (pkt.size() < kHeaderSize) return Bad("shorter than a header");
  if ((pkt[0] & 0xC0) != 0) return Bad("first two bits are not zero");
  if (Get32(&pkt[4]) != kMagicCookie) return Bad("wrong magic cookie");
  const size_t len = Get16(&pkt[2]);
  if (len % 4 != 0) return Bad("length is not a multiple of 4");
  if (kHeaderSize + len != pkt.size()) return Bad("length does not match the datagram");
  Message m;
  m.bytes_ = pkt;
  const uint16_t type = Get16(&pkt[0]);
  m.method_ = static_cast<uint16_t>((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
  m.class_ = static_cast<Class>(((type >> 4) & 1) | ((type >> 7) & 2));
  std::copy(pkt.begin() + 8, pkt.begin() + 20, m.tx_id_.begin());

  bool after_mi = false, after_mi256 = false;
  for (size_t off = kHeaderSize; off < pkt.size();) {
    if (pkt.size() - off < 4) return Bad("truncated attribute header");
    const uint16_t t = Get16(&pkt[off]);
    const size_t alen = Get16(&pkt[off + 2]);
    if (Padded(alen) > pkt.size() - off - 4) return Bad(absl::StrCat("attribute 0x", absl::Hex(t), " overruns the message"));
    if (m.has_fingerprint_) return Bad("attribute after FINGERPRINT");
    if (after_mi256 && t != kFingerprint) return Bad("attribute after MESSAGE-INTEGRITY-SHA256");
    if (after_mi && t != kFingerprint && t != kMessageIntegritySha256) {
      return Bad("attribute after MESSAGE-INTEGRITY");
    }
    Attribute a{t, pkt.subspan(off + 4, alen), off};
    if (t == kFingerprint) {
      if (alen != 4) return Bad("FINGERPRINT has the wrong length");
      std::vector<uint8_t> prefix = PrefixWithLength(pkt, off, 8);
      if ((Crc32(prefix) ^ kFingerprintXor) != Get32(&pkt[off + 4])) return Bad("FINGERPRINT mismatch");
      m.has_fingerprint_ = true;
    } else if (t == kMessageIntegrity) {
      if (alen != kSha1Len) return Bad("MESSAGE-INTEGRITY has the wrong length");
      after_mi = true;
    } else if (t == kMessageIntegritySha256) {
      if (alen < 16 || alen > kSha256Len || alen % 4 != 0) return Bad("MESSAGE-INTEGRITY-SHA256 has the wrong length");
      after_mi256 = true;
    }
    m.attrs_.push_back(a);
    off += 4 + Padded(alen);
  }
  return m;
}

std::optional<Attribute> Message::Find(uint16_t type) const {
  for (const Attribute& a : attrs_) {
    if (a.type == type) return a;
  }
  return std::nullopt;
}

absl::StatusOr<SocketAddress> Message::GetXorAddress(uint16_t type) const {
  auto a = Find(type);
  if (!a) return absl::NotFoundError(absl::StrCat("STUN: no attribute 0x", absl::Hex(type)));
  uint8_t key[16];
  for (int i = 0; i < 4; ++i) key[i] = static_cast<uint8_t>(kMagicCookie >> (24 - 8 * i));
  std::copy(tx_id_.begin(), tx_id_.end(), key + 4);
  return DecodeAddress(a->value, key, true);
}

absl::StatusOr<SocketAddress> Message::GetAddress(uint16_t type) const {
  auto a = Find(type);
  if (!a) return absl::NotFoundError(absl::StrCat("STUN: no attribute 0x", absl::Hex(type)));
  return DecodeAddress(a->value, nullptr, false);
}

absl::StatusOr<std::string> Message::GetString(uint16_t type) const {
  auto a = Find(type);
  if (!a) return absl::NotFoundError(absl::StrCat("STUN: no attribute 0x", absl::Hex(type)));
  return std::string(a->value.begin(), a->value.end());
}

absl::StatusOr<uint32_t> Message::GetU32(uint16_t type) const {
  auto a = Find(type);
  if (!a) return absl::NotFoundError(absl::StrCat("STUN: no attribute 0x", absl::Hex(type)));
  if (a->value.size() != 4) return Bad("32-bit attribute has the wrong length");
  return Get32(a->value.data());
}

absl::StatusOr<Message::ErrorCode> Message::GetErrorCode() const {
  auto a = Find(kErrorCode);
  if (!a) return absl::NotFoundError("STUN: no ERROR-CODE");
  if (a->value.size() < 4) return Bad("ERROR-CODE too short");
  const int cls = a->value[2] & 0x07, number = a->value[3];
  if (cls < 3 || cls > 6 || number > 99) return Bad("ERROR-CODE out of range");
  return ErrorCode{cls * 100 + number, std::string(a->value.begin() + 4, a->value.end())};
}

absl::Status Message::CheckIntegrity(absl::Span<const uint8_t> key) const {
  auto a = Find(kMessageIntegritySha256);
  const bool sha256 = a.has_value();
  if (!a) a = Find(kMessageIntegrity);
  if (!a) return absl::NotFoundError("STUN: no MESSAGE-INTEGRITY");
  std::vector<uint8_t> prefix = PrefixWithLength(bytes_, a->offset, 4 + a->value.size());
  std::vector<uint8_t> mac = Hmac(key, prefix, sha256);
  mac.resize(a->value.size());  // SHA256 may be truncated (RFC 8489 14.6)
  if (CRYPTO_memcmp(mac.data(), a->value.data(), mac.size()) != 0) {
    return absl::PermissionDeniedError("STUN: MESSAGE-INTEGRITY mismatch");
  }
  return absl::OkStatus();
}

Builder::Builder(uint16_t method, Class cls, const TxId& tx) {
  buf_.reserve(256);
  Put16(buf_, EncodeType(method, cls));
  Put16(buf_, 0);
  Put32(buf_, kMagicCookie);
  buf_.insert(buf_.end(), tx.begin(), tx.end());
}

void Builder::PutHeaderLength(size_t body_len) {
  buf_[2] = static_cast<uint8_t>(body_len >> 8);
  buf_[3] = static_cast<uint8_t>(body_len);
}

Builder& Builder::AddRaw(uint16_t type, absl::Span<const uint8_t> value) {
  Put16(buf_, type);
  Put16(buf_, static_cast<uint16_t>(value.size()));
  buf_.insert(buf_.end(), value.begin(), value.end());
  buf_.resize(buf_.size() + (Padded(value.size()) - value.size()), 0);
  PutHeaderLength(buf_.size() - kHeaderSize);
  return *this;
}

Builder& Builder::AddAddress(uint16_t type, const SocketAddress& addr) {
  std::vector<uint8_t> v = {0, static_cast<uint8_t>(addr.ip.is_v4() ? 1 : 2)};
  Put16(v, addr.port);
  v.insert(v.end(), addr.ip.bytes(), addr.ip.bytes() + addr.ip.byte_length());
  return AddRaw(type, v);
}

Builder& Builder::AddXorAddress(uint16_t type, const SocketAddress& addr) {
  std::vector<uint8_t> v = {0, static_cast<uint8_t>(addr.ip.is_v4() ? 1 : 2)};
  Put16(v, static_cast<uint16_t>(addr.port ^ (kMagicCookie >> 16)));
  for (int i = 0; i < addr.ip.byte_length(); ++i) {
    // The cookie, then the transaction ID (bytes 4..19 of the header).
    v.push_back(addr.ip.bytes()[i] ^ buf_[4 + i]);
  }
  return AddRaw(type, v);
}

Builder& Builder::AddString(uint16_t type, absl::string_view s) {
  return AddRaw(type, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

Builder& Builder::AddU32(uint16_t type, uint32_t v) {
  std::vector<uint8_t> b;
  Put32(b, v);
  return AddRaw(type, b);
}

Builder& Builder::AddErrorCode(int code, absl::string_view reason) {
  std::vector<uint8_t> v = {0, 0, static_cast<uint8_t>(code / 100), static_cast<uint8_t>(code % 100)};
  v.insert(v.end(), reason.begin(), reason.end());
  return AddRaw(kErrorCode, v);
}

Builder& Builder::AddIntegrity(absl::Span<const uint8_t> key, bool sha256) {
  const size_t mac_len = sha256 ? kSha256Len : kSha1Len;
  PutHeaderLength(buf_.size() - kHeaderSize + 4 + mac_len);
  std::vector<uint8_t> mac = Hmac(key, buf_, sha256);
  return AddRaw(sha256 ? kMessageIntegritySha256 : kMessageIntegrity, mac);
}

std::vector<uint8_t> Builder::Finish(bool fingerprint) {
  if (fingerprint) {
    PutHeaderLength(buf_.size() - kHeaderSize + 8);
    const uint32_t crc = Crc32(buf_) ^ kFingerprintXor;
    std::vector<uint8_t> v;
    Put32(v, crc);
    AddRaw(kFingerprint, v);
  }
  return buf_;
}

std::vector<uint8_t> LongTermKey(absl::string_view username, absl::string_view realm,
                                 absl::string_view password) {
  const std::string s = absl::StrCat(username, ":", realm, ":", password);
  std::vector<uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), out.data(), &len, EVP_md5(), nullptr);
  out.resize(len);
  return out;
}

std::vector<uint8_t> BuildBindingRequest(const TxId& tx) {
  return Builder(kBinding, Class::kRequest, tx).Finish(/*fingerprint=*/true);
}

absl::StatusOr<BindingResponse> ParseBindingResponse(absl::Span<const uint8_t> pkt) {
  auto m = Message::Parse(pkt);
  if (!m.ok()) return m.status();
  if (m->method() != kBinding || m->message_class() != Class::kSuccess) {
    return Bad("not a Binding success response");
  }
  BindingResponse r;
  r.tx_id = m->tx_id();
  auto mapped = m->GetXorAddress(kXorMappedAddress);
  if (absl::IsNotFound(mapped.status())) mapped = m->GetAddress(kMappedAddress);
  if (!mapped.ok()) return Bad(absl::StrCat("no usable mapped address (", mapped.status().message(), ")"));
  r.mapped = *mapped;
  if (auto o = m->GetAddress(kOtherAddress); o.ok()) r.other_address = *o;
  if (auto o = m->GetAddress(kResponseOrigin); o.ok()) r.response_origin = *o;
  if (auto s = m->GetString(kSoftware); s.ok()) r.software = *s;
  return r;
}

}  // namespace weft::stun
