// weft::msg frames — the wire layer of the binary message protocol (docs/protocol.md §6).
//
// A frame on the stream:
//
//   u32 L | type u8 | flags u8 | channel u16 | id u32 | body (L - 8 bytes)    (big-endian)
//
// The u32 L is the stack/frame u32_be length prefix: a LengthPrefixDecoder (or scanner)
// configured with PrefixKind::u32_be and max_frame_size finds frame boundaries and rejects
// L > max_frame_size (frame_errc::oversize) before anything is buffered. parse() takes what
// that decoder's frame() views: one frame's bytes after the prefix.
//
// Memory: parse() copies nothing. The topic, detail and payload spans of the Frame it returns
// point into its input and are valid only while the caller keeps those bytes alive (for a
// decoder's frame(): until the next feed() or reset()). encode() writes into a caller-provided
// span. Nothing here allocates, throws or keeps state; every function may be called from any
// thread.
//
// Example (receive side):
//   Decoded d = decoder.feed(in);
//   if (d.state == DecodeState::ready) {
//     Result<Frame> f = weft::msg::parse(decoder.frame());
//     if (!f) { send ERROR bad_frame with id 0, then close; }
//     else if (f->type == FrameType::request) { dispatch(f->method, f->payload); }
//   }
// Example (send side):
//   Result<std::size_t> n = encode(make_response(req_id, body), buffer);
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include <weft/base/result.h>
#include <weft/msg/error.h>

namespace weft::msg {

enum class FrameType : std::uint8_t {
  hello = 0x01,        // client -> server: versions and limits; the first frame
  hello_ack = 0x02,    // server -> client: the answer to HELLO
  request = 0x03,      // call method with payload; answered by RESPONSE or ERROR with its id
  response = 0x04,     // the successful answer to the REQUEST with the same id
  error = 0x05,        // a failed REQUEST (id != 0) or a connection-level error (id 0)
  message = 0x06,      // one-way: method + payload, no answer
  subscribe = 0x07,    // start receiving EVENTs of a topic
  unsubscribe = 0x08,  // stop receiving EVENTs of a topic
  publish = 0x09,      // client -> server: a payload for a topic's subscribers
  event = 0x0a,        // server -> client: a payload published on a subscribed topic
  ping = 0x0b,         // keep-alive probe: 8 opaque bytes
  pong = 0x0c,         // the answer to PING: same id and bytes
  goaway = 0x0d,       // the sender is draining: no REQUEST with id > last_id is served
  cancel = 0x0e,       // the sender no longer wants the answer to REQUEST id
};

// Flag bits (the flags byte). Every bit other than these is reserved and must be 0.
inline constexpr std::uint8_t kFlagIdempotent = 0x01;  // REQUEST only: carries idempotency key

inline constexpr std::size_t kPrefixSize = 4;         // the u32 L before every frame
inline constexpr std::size_t kHeaderSize = 8;         // type, flags, channel, id (L >= 8)
inline constexpr std::size_t kHelloBodySize = 20;     // HELLO / HELLO_ACK body, exactly
inline constexpr std::size_t kPingBodySize = 8;       // PING / PONG body, exactly
inline constexpr std::size_t kMaxTopicSize = 255;     // topic_len is 1..255
inline constexpr std::size_t kMaxDetailSize = 256;    // detail_len is 0..256
inline constexpr std::uint16_t kProtocolVersion = 1;  // the version this code speaks

// The HELLO / HELLO_ACK body. parse() accepts any version (negotiation is the caller's:
// docs/protocol.md §6.4); the reserved u16 that follows it on the wire must be 0.
struct Hello {
  std::uint16_t version = kProtocolVersion;
  std::uint32_t max_frame = 0;     // largest L the sender accepts
  std::uint32_t max_inflight = 0;  // most REQUESTs the sender accepts unanswered
  std::uint64_t features = 0;      // feature bits (none defined yet; unknown bits are ignored)
};

// One parsed (or to-be-encoded) frame. Fields a type does not carry are 0 / empty.
struct Frame {
  FrameType type = FrameType::ping;
  std::uint8_t flags = 0;     // kFlagIdempotent on REQUEST, else 0
  std::uint16_t channel = 0;  // always 0 in this version
  std::uint32_t id = 0;       // correlation id (rules per type: docs/protocol.md §6.2)

  Hello hello;                        // HELLO, HELLO_ACK
  std::uint32_t method = 0;           // REQUEST, MESSAGE
  std::uint32_t deadline_ms = 0;      // REQUEST: relative budget in ms, 0 = none
  std::uint64_t idempotency_key = 0;  // REQUEST with kFlagIdempotent
  std::uint16_t code = 0;             // ERROR, GOAWAY: a ProtocolError value (not validated)
  std::uint32_t last_id = 0;          // GOAWAY

  std::span<const std::byte> topic;    // SUBSCRIBE, UNSUBSCRIBE, PUBLISH, EVENT: 1..255 bytes
  std::span<const std::byte> detail;   // ERROR, GOAWAY: 0..256 bytes of UTF-8 (not validated)
  std::span<const std::byte> payload;  // REQUEST, RESPONSE, MESSAGE, PUBLISH, EVENT; PING and
                                       // PONG: their 8 opaque bytes
};

// Parses one frame: `after_prefix` is the L bytes that follow the u32 length prefix (L is
// after_prefix.size()). Reads only inside `after_prefix`; the spans of the result point
// into it. Checks the header, in this order (the first failure is returned):
//   L < 8                                                          -> bad_length
//   type not a FrameType                                           -> unknown_type
//   a reserved flag bit, or IDEMPOTENT on a type other than REQUEST -> reserved_flags
//   channel != 0                                                   -> bad_channel
//   id rule of the type broken                                     -> bad_id
// then the body, field by field in wire order:
//   the body ends inside a fixed field or a declared topic/detail  -> truncated_body
//   topic_len outside 1..255, detail_len > 256, HELLO reserved != 0 -> bad_field
//     (a length field is range-checked before the body is checked to hold its bytes)
//   bytes left after a body that must end there (HELLO, PING, ERROR, SUBSCRIBE, ...)
//                                                                  -> bad_length
[[nodiscard]] Result<Frame> parse(std::span<const std::byte> after_prefix) noexcept;

// Bytes encode() writes for `f`, the u32 prefix included (4 + L). Uses only the fields the
// type carries; for PING/PONG it assumes the 8-byte body encode() requires. An unknown type
// gives kPrefixSize + kHeaderSize.
[[nodiscard]] constexpr std::size_t encoded_size(const Frame& f) noexcept;

// Writes `f` as one complete frame, u32 prefix included, at out[0..n) and returns n
// (== encoded_size(f)). Fields the type does not carry are ignored. The frame is checked
// with parse()'s rules first, so encode() never writes what parse() would refuse:
// unknown_type, reserved_flags, bad_channel, bad_id, bad_field (topic empty or > 255 bytes,
// detail > 256 bytes), bad_length (PING/PONG payload not 8 bytes, or L > 2^32 - 1);
// buffer_too_small when out.size() < encoded_size(f). Nothing is written on error.
[[nodiscard]] Result<std::size_t> encode(const Frame& f, std::span<std::byte> out) noexcept;

// ---- one builder per type: a Frame for encode() ----------------------------------------
// They set only the fields the type carries and check nothing (encode() does).

[[nodiscard]] constexpr Frame make_hello(const Hello& h) noexcept;
[[nodiscard]] constexpr Frame make_hello_ack(const Hello& h) noexcept;
// idempotency_key is sent (and kFlagIdempotent set) only when `idempotent` is true.
[[nodiscard]] constexpr Frame make_request(std::uint32_t id, std::uint32_t method,
                                           std::uint32_t deadline_ms,
                                           std::span<const std::byte> payload,
                                           bool idempotent = false,
                                           std::uint64_t idempotency_key = 0) noexcept;
[[nodiscard]] constexpr Frame make_response(std::uint32_t id,
                                            std::span<const std::byte> payload) noexcept;
// id 0: a connection-level error.
[[nodiscard]] constexpr Frame make_error(std::uint32_t id, ProtocolError code,
                                         std::span<const std::byte> detail = {}) noexcept;
[[nodiscard]] constexpr Frame make_message(std::uint32_t method,
                                           std::span<const std::byte> payload) noexcept;
[[nodiscard]] constexpr Frame make_subscribe(std::span<const std::byte> topic) noexcept;
[[nodiscard]] constexpr Frame make_unsubscribe(std::span<const std::byte> topic) noexcept;
[[nodiscard]] constexpr Frame make_publish(std::span<const std::byte> topic,
                                           std::span<const std::byte> payload) noexcept;
[[nodiscard]] constexpr Frame make_event(std::span<const std::byte> topic,
                                         std::span<const std::byte> payload) noexcept;
// `opaque` must be 8 bytes; a PONG echoes the PING's id and bytes.
[[nodiscard]] constexpr Frame make_ping(std::uint32_t id,
                                        std::span<const std::byte> opaque) noexcept;
[[nodiscard]] constexpr Frame make_pong(std::uint32_t id,
                                        std::span<const std::byte> opaque) noexcept;
[[nodiscard]] constexpr Frame make_goaway(std::uint32_t last_id, ProtocolError code,
                                          std::span<const std::byte> detail = {}) noexcept;
[[nodiscard]] constexpr Frame make_cancel(std::uint32_t id) noexcept;

// ---- inline definitions ---------------------------------------------------------------

constexpr std::size_t encoded_size(const Frame& f) noexcept {
  std::size_t body = 0;
  switch (f.type) {
    case FrameType::hello:
    case FrameType::hello_ack:
      body = kHelloBodySize;
      break;
    case FrameType::request:
      body = 8 + ((f.flags & kFlagIdempotent) != 0 ? 8 : 0) + f.payload.size();
      break;
    case FrameType::response:
      body = f.payload.size();
      break;
    case FrameType::error:
      body = 4 + f.detail.size();
      break;
    case FrameType::message:
      body = 4 + f.payload.size();
      break;
    case FrameType::subscribe:
    case FrameType::unsubscribe:
      body = 2 + f.topic.size();
      break;
    case FrameType::publish:
    case FrameType::event:
      body = 2 + f.topic.size() + f.payload.size();
      break;
    case FrameType::ping:
    case FrameType::pong:
      body = kPingBodySize;
      break;
    case FrameType::goaway:
      body = 8 + f.detail.size();
      break;
    case FrameType::cancel:
      break;
  }
  return kPrefixSize + kHeaderSize + body;
}

constexpr Frame make_hello(const Hello& h) noexcept {
  Frame f;
  f.type = FrameType::hello;
  f.hello = h;
  return f;
}
constexpr Frame make_hello_ack(const Hello& h) noexcept {
  Frame f = make_hello(h);
  f.type = FrameType::hello_ack;
  return f;
}
constexpr Frame make_request(std::uint32_t id, std::uint32_t method, std::uint32_t deadline_ms,
                             std::span<const std::byte> payload, bool idempotent,
                             std::uint64_t idempotency_key) noexcept {
  Frame f;
  f.type = FrameType::request;
  f.flags = idempotent ? kFlagIdempotent : 0;
  f.id = id;
  f.method = method;
  f.deadline_ms = deadline_ms;
  f.idempotency_key = idempotent ? idempotency_key : 0;
  f.payload = payload;
  return f;
}
constexpr Frame make_response(std::uint32_t id, std::span<const std::byte> payload) noexcept {
  Frame f;
  f.type = FrameType::response;
  f.id = id;
  f.payload = payload;
  return f;
}
constexpr Frame make_error(std::uint32_t id, ProtocolError code,
                           std::span<const std::byte> detail) noexcept {
  Frame f;
  f.type = FrameType::error;
  f.id = id;
  f.code = static_cast<std::uint16_t>(code);
  f.detail = detail;
  return f;
}
constexpr Frame make_message(std::uint32_t method, std::span<const std::byte> payload) noexcept {
  Frame f;
  f.type = FrameType::message;
  f.method = method;
  f.payload = payload;
  return f;
}
constexpr Frame make_subscribe(std::span<const std::byte> topic) noexcept {
  Frame f;
  f.type = FrameType::subscribe;
  f.topic = topic;
  return f;
}
constexpr Frame make_unsubscribe(std::span<const std::byte> topic) noexcept {
  Frame f = make_subscribe(topic);
  f.type = FrameType::unsubscribe;
  return f;
}
constexpr Frame make_publish(std::span<const std::byte> topic,
                             std::span<const std::byte> payload) noexcept {
  Frame f;
  f.type = FrameType::publish;
  f.topic = topic;
  f.payload = payload;
  return f;
}
constexpr Frame make_event(std::span<const std::byte> topic,
                           std::span<const std::byte> payload) noexcept {
  Frame f = make_publish(topic, payload);
  f.type = FrameType::event;
  return f;
}
constexpr Frame make_ping(std::uint32_t id, std::span<const std::byte> opaque) noexcept {
  Frame f;
  f.type = FrameType::ping;
  f.id = id;
  f.payload = opaque;
  return f;
}
constexpr Frame make_pong(std::uint32_t id, std::span<const std::byte> opaque) noexcept {
  Frame f = make_ping(id, opaque);
  f.type = FrameType::pong;
  return f;
}
constexpr Frame make_goaway(std::uint32_t last_id, ProtocolError code,
                            std::span<const std::byte> detail) noexcept {
  Frame f;
  f.type = FrameType::goaway;
  f.last_id = last_id;
  f.code = static_cast<std::uint16_t>(code);
  f.detail = detail;
  return f;
}
constexpr Frame make_cancel(std::uint32_t id) noexcept {
  Frame f;
  f.type = FrameType::cancel;
  f.id = id;
  return f;
}

}  // namespace weft::msg
