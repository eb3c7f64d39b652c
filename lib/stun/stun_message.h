// STUN (RFC 8489) and TURN (RFC 8656) messages: pure bytes in, values out. No sockets.
//
// Parse() validates framing only (header, lengths, attribute padding, FINGERPRINT
// placement and value); callers then read typed attributes and, for authenticated
// messages, call CheckIntegrity() with the key. Builder produces messages with
// MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT computed as RFC 8489 section 14 requires.
#ifndef WEFT_LIB_STUN_STUN_MESSAGE_H_
#define WEFT_LIB_STUN_STUN_MESSAGE_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "lib/net/endpoint.h"
#include "lib/net/ip_address.h"

namespace weft::stun {

inline constexpr uint32_t kMagicCookie = 0x2112A442;
inline constexpr size_t kHeaderSize = 20;
// XOR applied to the CRC-32 in FINGERPRINT ("STUN").
inline constexpr uint32_t kFingerprintXor = 0x5354554e;

using TxId = std::array<uint8_t, 12>;

enum class Class : uint8_t { kRequest = 0, kIndication = 1, kSuccess = 2, kError = 3 };

// Methods (RFC 8489 section 18.2, RFC 8656 section 17).
enum Method : uint16_t {
  kBinding = 0x001,
  kAllocate = 0x003,
  kRefresh = 0x004,
  kSend = 0x006,
  kData = 0x007,
  kCreatePermission = 0x008,
  kChannelBind = 0x009,
};

// Attribute types (RFC 8489 section 18.3, RFC 8656 section 18, RFC 5780 section 7).
enum AttrType : uint16_t {
  kMappedAddress = 0x0001,
  kChangeRequest = 0x0003,
  kUsername = 0x0006,
  kMessageIntegrity = 0x0008,
  kErrorCode = 0x0009,
  kUnknownAttributes = 0x000A,
  kChannelNumber = 0x000C,
  kLifetime = 0x000D,
  kXorPeerAddress = 0x0012,
  kDataAttr = 0x0013,
  kRealm = 0x0014,
  kNonce = 0x0015,
  kXorRelayedAddress = 0x0016,
  kRequestedAddressFamily = 0x0017,
  kEvenPort = 0x0018,
  kRequestedTransport = 0x0019,
  kDontFragment = 0x001A,
  kMessageIntegritySha256 = 0x001C,
  kXorMappedAddress = 0x0020,
  kReservationToken = 0x0022,
  kSoftware = 0x8022,
  kFingerprint = 0x8028,
  kResponseOrigin = 0x802B,
  kOtherAddress = 0x802C,
};

using SocketAddress = net::Endpoint;

struct Attribute {
  uint16_t type = 0;
  absl::Span<const uint8_t> value;
  size_t offset = 0;  // of the attribute header, from the start of the message
};

// Whether `pkt` looks like a STUN message (two zero bits, magic cookie, length a
// multiple of 4 that fits): the cheap test a demultiplexer applies before Parse.
bool LooksLikeStun(absl::Span<const uint8_t> pkt);

// A parsed view over a message's bytes; the bytes must outlive it.
class Message {
 public:
  // InvalidArgument on anything malformed: short header, wrong cookie, length not
  // matching, attributes overrunning, FINGERPRINT not last or wrong, attributes after
  // MESSAGE-INTEGRITY other than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT.
  static absl::StatusOr<Message> Parse(absl::Span<const uint8_t> pkt);
  // A Message is a view: parsing a temporary would leave it dangling.
  static absl::StatusOr<Message> Parse(std::vector<uint8_t>&& temporary) = delete;

  uint16_t method() const { return method_; }
  Class message_class() const { return class_; }
  const TxId& tx_id() const { return tx_id_; }
  const std::vector<Attribute>& attributes() const { return attrs_; }
  bool has_fingerprint() const { return has_fingerprint_; }
  absl::Span<const uint8_t> bytes() const { return bytes_; }

  // The first attribute of `type`, if any.
  std::optional<Attribute> Find(uint16_t type) const;

  // Typed readers. NotFound if absent, InvalidArgument if malformed.
  absl::StatusOr<SocketAddress> GetXorAddress(uint16_t type) const;
  absl::StatusOr<SocketAddress> GetAddress(uint16_t type) const;  // MAPPED-ADDRESS style
  absl::StatusOr<std::string> GetString(uint16_t type) const;
  absl::StatusOr<uint32_t> GetU32(uint16_t type) const;
  struct ErrorCode {
    int code = 0;
    std::string reason;
  };
  absl::StatusOr<ErrorCode> GetErrorCode() const;

  // Verifies MESSAGE-INTEGRITY-SHA256 if present, else MESSAGE-INTEGRITY, with `key`
  // (short-term: the password; long-term: MD5(username:realm:password), see
  // LongTermKey). NotFound if the message has neither; PermissionDenied on mismatch.
  absl::Status CheckIntegrity(absl::Span<const uint8_t> key) const;

 private:
  absl::Span<const uint8_t> bytes_;
  uint16_t method_ = 0;
  Class class_ = Class::kRequest;
  TxId tx_id_{};
  std::vector<Attribute> attrs_;
  bool has_fingerprint_ = false;
};

// Builds a message attribute by attribute.
class Builder {
 public:
  Builder(uint16_t method, Class cls, const TxId& tx);

  Builder& AddXorAddress(uint16_t type, const SocketAddress& addr);
  Builder& AddAddress(uint16_t type, const SocketAddress& addr);
  Builder& AddString(uint16_t type, absl::string_view s);
  Builder& AddU32(uint16_t type, uint32_t v);
  Builder& AddErrorCode(int code, absl::string_view reason);
  Builder& AddRaw(uint16_t type, absl::Span<const uint8_t> value);

  // Appends MESSAGE-INTEGRITY (HMAC-SHA1) or, with sha256, MESSAGE-INTEGRITY-SHA256.
  Builder& AddIntegrity(absl::Span<const uint8_t> key, bool sha256 = false);
  // Appends FINGERPRINT and returns the message. Without fingerprint, just returns it.
  std::vector<uint8_t> Finish(bool fingerprint = true);

 private:
  void PutHeaderLength(size_t body_len);
  std::vector<uint8_t> buf_;
};

// The long-term credential key: MD5(username ":" realm ":" password) (RFC 8489 9.2.2).
std::vector<uint8_t> LongTermKey(absl::string_view username, absl::string_view realm,
                                 absl::string_view password);

// CRC-32 (ISO-HDLC, as FINGERPRINT uses).
uint32_t Crc32(absl::Span<const uint8_t> data);

// A Binding request with FINGERPRINT, as the NAT prober sends.
std::vector<uint8_t> BuildBindingRequest(const TxId& tx);

struct BindingResponse {
  TxId tx_id{};
  SocketAddress mapped;                        // XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS
  std::optional<SocketAddress> other_address;  // RFC 5780 OTHER-ADDRESS
  std::optional<SocketAddress> response_origin;
  std::string software;
};
// Parses a Binding success response. InvalidArgument if it is not one or has no
// mapped address.
absl::StatusOr<BindingResponse> ParseBindingResponse(absl::Span<const uint8_t> pkt);

}  // namespace weft::stun

#endif  // WEFT_LIB_STUN_STUN_MESSAGE_H_
