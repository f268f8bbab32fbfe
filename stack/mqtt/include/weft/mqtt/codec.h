// weft::mqtt codec — encode() and the incremental, zero-copy Decoder for every MQTT 3.1.1 and
// 5.0 control packet.
//
// Decoder contract (STYLE point 6): feed(bytes) -> Decoded{consumed, state}; state is
// need_more, ready or error. At most one packet is decoded per call: after `ready`, feed the
// rest (bytes.subspan(consumed)) again. `consumed` is meaningful on every state. Errors are
// sticky until reset(); error() says which (an mqtt_errc, reason_code() maps it to v5).
//
// Memory: the Decoder is constructed over a caller-provided assembly buffer (std::span) that it
// never frees or resizes; nothing allocates, ever. The maximum packet size it accepts is
// min(DecoderLimits::max_packet_size, buffer size + 5): a packet whose Remaining Length says
// it is larger is refused with packet_too_large as soon as the length is known, before its
// body arrives. When a packet's whole body lies in one feed() span, packet()'s views point
// into that span (zero-copy; valid as long as the caller keeps those bytes). When the body is
// split across feeds, it is copied into the assembly buffer and the views point there (valid
// until the next feed() or reset()).
//
// Validation (both versions): reserved fixed-header flags, reserved type 0 (and AUTH in 3.1.1),
// Remaining Length of at most 4 bytes (minimal encoding), fixed lengths (PINGREQ 0, 3.1.1 acks
// 2), QoS 3, DUP on QoS 0, packet id 0 where one is required, UTF-8 well-formed without U+0000
// or surrogates, topic names without wildcards, topic filters' wildcard rules, SUBSCRIBE
// options' reserved bits, CONNECT's protocol name/level/flags, and in v5 each property's id
// (allowed in that packet), repetition (only User Property and PUBLISH's Subscription
// Identifier repeat) and value range. Nothing is left over: trailing bytes are malformed.
//
// Threading: a Decoder is owned by one thread. encode() is a pure function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

#include <weft/base/result.h>
#include <weft/mqtt/error.h>
#include <weft/mqtt/packet.h>

namespace weft::mqtt {

// Encodes `p` (the struct named by p.type) for `v` into `out`. Returns the bytes written.
// Errors: buffer_too_small (out too short: nothing useful written), packet_too_large (above
// 268,435,455 bytes of Remaining Length), bad_argument (a field the wire cannot carry: a
// string over 65,535 bytes, QoS > 2, packet id 0 with QoS > 0, AUTH in 3.1.1, an empty list).
// encode() does not validate UTF-8 or topics: that is the sender's job (topic.h has the checks).
[[nodiscard]] Result<std::size_t> encode(const Packet& p, Version v,
                                         std::span<std::byte> out) noexcept;

// The size encode() would write (same errors but buffer_too_small).
[[nodiscard]] Result<std::size_t> encoded_size(const Packet& p, Version v) noexcept;

// Variable Byte Integer (Remaining Length) helpers. encode_varint writes 1-4 bytes (value at
// most 268,435,455) and returns how many, 0 when `out` is too short or the value too large.
std::size_t encode_varint(std::uint32_t value, std::span<std::byte> out) noexcept;
// Bytes of the encoding of `value` (1-4; 0 above 268,435,455).
[[nodiscard]] std::size_t varint_size(std::uint32_t value) noexcept;

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF) without
// U+0000 — the MQTT rules for every UTF-8 string (3.1.1 §1.5.3, 5.0 §1.5.4).
[[nodiscard]] bool valid_utf8(std::string_view s) noexcept;

// One v5 property read by PropertyCursor: its id and, by type, the number, string or bytes.
struct Property {
  PropertyId id{};
  std::uint32_t number = 0;           // byte, two-byte, four-byte and varint properties
  std::string_view string;            // UTF-8 string properties; User Property's name
  std::string_view value;             // User Property's value
  std::span<const std::byte> binary;  // Correlation Data, Authentication Data
};

// Walks a property block the Decoder validated (Properties::raw).
class PropertyCursor {
 public:
  explicit PropertyCursor(std::span<const std::byte> raw) noexcept : raw_(raw) {}
  // The next property, false at the end.
  bool next(Property& out) noexcept;

 private:
  std::span<const std::byte> raw_;
  std::size_t pos_ = 0;
};

struct DecoderLimits {
  // The largest packet accepted (fixed header included). Larger -> packet_too_large (v5
  // 0x95). Capped at the assembly buffer's size + 5.
  std::uint32_t max_packet_size = 64 * 1024;
  // The version non-CONNECT packets are decoded as (CONNECT carries its own level).
  Version version = Version::v311;
};

enum class DecodeState : std::uint8_t { need_more, ready, error };

struct Decoded {
  std::size_t consumed = 0;
  DecodeState state = DecodeState::need_more;
};

class Decoder {
 public:
  // `assembly` must outlive the Decoder; see "Memory" above.
  Decoder(DecoderLimits limits, std::span<std::byte> assembly) noexcept;

  // Consumes bytes of `in` (any split, even empty) up to the end of one packet.
  Decoded feed(std::span<const std::byte> in) noexcept;

  // The packet of the last `ready` (see "Memory" for its views' lifetime).
  [[nodiscard]] const Packet& packet() const noexcept { return packet_; }

  // The sticky error (mqtt_errc) after `error`; empty otherwise.
  [[nodiscard]] std::error_code error() const noexcept { return error_; }

  // Switches the version for the next packet (e.g. after CONNACK, or a server after CONNECT).
  void set_version(Version v) noexcept { limits_.version = v; }
  [[nodiscard]] Version version() const noexcept { return limits_.version; }

  // Forgets any partial packet and the sticky error.
  void reset() noexcept;

 private:
  Decoded fail(mqtt_errc e, std::size_t consumed) noexcept;
  Decoded finish(std::span<const std::byte> body, std::size_t consumed) noexcept;

  DecoderLimits limits_;
  std::span<std::byte> assembly_;
  std::byte header_[5]{};
  std::size_t header_len_ = 0;
  bool header_done_ = false;
  std::uint32_t remaining_ = 0;  // Remaining Length of the current packet
  std::size_t have_ = 0;         // body bytes in assembly_
  std::error_code error_;
  Packet packet_;
};

// Decodes one complete packet's body: `first` is the fixed header's first byte, `body` the
// Remaining Length bytes after it. What Decoder::feed() calls; exposed for tests and tools.
[[nodiscard]] Result<Packet> decode_body(std::byte first, std::span<const std::byte> body,
                                         Version v) noexcept;

}  // namespace weft::mqtt
