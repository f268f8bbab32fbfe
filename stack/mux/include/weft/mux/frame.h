// weft::mux frames — the wire layer of multiplexed channels (docs/protocol.md §7).
//
// Channel frames share the §6 frame header of weft::msg:
//
//   u32 L | type u8 | flags u8 | channel u16 | id u32 (= 0) | body (L - 8 bytes)   (big-endian)
//
// with types 0x10-0x16. A connection's protocol object reads the type byte of each frame a
// u32 LengthPrefixDecoder finds and hands types 0x01-0x0e to weft::msg::parse() and types
// 0x10-0x16 to weft::mux::parse().
//
// Memory: parse() copies nothing; the name and payload spans of the Frame point into its
// input and are valid only while the caller keeps those bytes alive. encode() writes into a
// caller-provided span. Nothing here allocates, throws or keeps state; any thread may call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include <weft/base/result.h>
#include <weft/mux/error.h>

namespace weft::mux {

enum class FrameType : std::uint8_t {
  open = 0x10,           // open a channel: initial window, name (service/topic)
  open_ack = 0x11,       // accept an OPEN: initial window
  refuse = 0x12,         // refuse an OPEN: code; the channel never opened
  data = 0x13,           // payload; FIN half-closes the sender's direction
  window_update = 0x14,  // credit: increment; channel 0 = the connection window
  reset = 0x15,          // abort a channel in both directions: code
  settings = 0x16,       // MUX_SETTINGS: the sender's connection-level limits (channel 0)
};

inline constexpr std::uint8_t kFlagFin = 0x02;  // DATA only (bit 1; bit 0 is msg's IDEMPOTENT)
inline constexpr std::size_t kPrefixSize = 4;   // the u32 L before every frame
inline constexpr std::size_t kHeaderSize = 8;   // type, flags, channel, id
inline constexpr std::uint32_t kMaxWindow = 0x7fffffff;  // windows and increments: 1..2^31-1
inline constexpr std::size_t kMaxNameSize = 255;         // OPEN name_len: 1..255
inline constexpr std::size_t kSettingsBodySize = 12;
// The largest non-DATA frame, prefix included (an OPEN with a 255-byte name).
inline constexpr std::size_t kMaxControlFrameSize = kPrefixSize + kHeaderSize + 5 + kMaxNameSize;

// MUX_SETTINGS body: what the sender accepts (docs/protocol.md §7.5).
struct Settings {
  std::uint32_t conn_window = 0;   // the sender's initial connection receive window, 1..2^31-1
  std::uint32_t max_data = 0;      // the largest DATA payload the sender accepts, >= 1
  std::uint16_t max_channels = 0;  // channels the receiver may have opened at once (0 = none)
};

// One parsed (or to-be-encoded) frame. Fields a type does not carry are 0 / empty.
struct Frame {
  FrameType type = FrameType::data;
  std::uint8_t flags = 0;              // kFlagFin on DATA, else 0
  std::uint16_t channel = 0;           // non-zero, except MUX_SETTINGS (0) and WINDOW_UPDATE (any)
  std::uint32_t window = 0;            // OPEN, OPEN_ACK: initial window; WINDOW_UPDATE: increment
  std::uint16_t code = 0;              // REFUSE, RESET: a ChannelError value (not validated)
  Settings settings;                   // MUX_SETTINGS
  std::span<const std::byte> name;     // OPEN: 1..255 bytes
  std::span<const std::byte> payload;  // DATA: the rest of the body

  [[nodiscard]] constexpr bool fin() const noexcept { return (flags & kFlagFin) != 0; }
};

// True for the type bytes this layer parses (0x10-0x16).
[[nodiscard]] constexpr bool is_mux_type(std::uint8_t type) noexcept {
  return type >= 0x10 && type <= 0x16;
}

// Parses one frame: `after_prefix` is the L bytes after the u32 length prefix. Checks, in
// this order (the first failure is returned):
//   L < 8 -> bad_length; type -> unknown_type; flags -> reserved_flags; channel rule of the
//   type -> bad_channel; id != 0 -> bad_id; then the body in wire order: ends inside a fixed
//   field or the name -> truncated_body; a window/increment of 0 or > 2^31-1, name_len 0,
//   MUX_SETTINGS conn_window out of 1..2^31-1, max_data 0 or reserved != 0 -> bad_field;
//   bytes after a body that must end -> bad_length; DATA with no payload and no FIN ->
//   bad_length.
[[nodiscard]] Result<Frame> parse(std::span<const std::byte> after_prefix) noexcept;

// Bytes encode() writes for `f`, the u32 prefix included.
[[nodiscard]] constexpr std::size_t encoded_size(const Frame& f) noexcept;

// Writes `f` as one complete frame, prefix included, and returns its size. The frame is
// checked with parse()'s rules first (the same errors), so encode() never writes what parse()
// refuses; buffer_too_small when out is too small. Nothing is written on error.
[[nodiscard]] Result<std::size_t> encode(const Frame& f, std::span<std::byte> out) noexcept;

// ---- builders (they check nothing; encode() does) --------------------------------------
[[nodiscard]] constexpr Frame make_open(std::uint16_t ch, std::uint32_t window,
                                        std::span<const std::byte> name) noexcept;
[[nodiscard]] constexpr Frame make_open_ack(std::uint16_t ch, std::uint32_t window) noexcept;
[[nodiscard]] constexpr Frame make_refuse(std::uint16_t ch, ChannelError code) noexcept;
[[nodiscard]] constexpr Frame make_data(std::uint16_t ch, std::span<const std::byte> payload,
                                        bool fin = false) noexcept;
[[nodiscard]] constexpr Frame make_window_update(std::uint16_t ch,
                                                 std::uint32_t increment) noexcept;
[[nodiscard]] constexpr Frame make_reset(std::uint16_t ch, ChannelError code) noexcept;
[[nodiscard]] constexpr Frame make_settings(const Settings& s) noexcept;

// ---- inline definitions ---------------------------------------------------------------

constexpr std::size_t encoded_size(const Frame& f) noexcept {
  std::size_t body = 0;
  switch (f.type) {
    case FrameType::open:
      body = 5 + f.name.size();
      break;
    case FrameType::open_ack:
    case FrameType::window_update:
      body = 4;
      break;
    case FrameType::refuse:
    case FrameType::reset:
      body = 2;
      break;
    case FrameType::data:
      body = f.payload.size();
      break;
    case FrameType::settings:
      body = kSettingsBodySize;
      break;
  }
  return kPrefixSize + kHeaderSize + body;
}

constexpr Frame make_open(std::uint16_t ch, std::uint32_t window,
                          std::span<const std::byte> name) noexcept {
  Frame f;
  f.type = FrameType::open;
  f.channel = ch;
  f.window = window;
  f.name = name;
  return f;
}
constexpr Frame make_open_ack(std::uint16_t ch, std::uint32_t window) noexcept {
  Frame f;
  f.type = FrameType::open_ack;
  f.channel = ch;
  f.window = window;
  return f;
}
constexpr Frame make_refuse(std::uint16_t ch, ChannelError code) noexcept {
  Frame f;
  f.type = FrameType::refuse;
  f.channel = ch;
  f.code = static_cast<std::uint16_t>(code);
  return f;
}
constexpr Frame make_data(std::uint16_t ch, std::span<const std::byte> payload, bool fin) noexcept {
  Frame f;
  f.type = FrameType::data;
  f.flags = fin ? kFlagFin : 0;
  f.channel = ch;
  f.payload = payload;
  return f;
}
constexpr Frame make_window_update(std::uint16_t ch, std::uint32_t increment) noexcept {
  Frame f;
  f.type = FrameType::window_update;
  f.channel = ch;
  f.window = increment;
  return f;
}
constexpr Frame make_reset(std::uint16_t ch, ChannelError code) noexcept {
  Frame f = make_refuse(ch, code);
  f.type = FrameType::reset;
  return f;
}
constexpr Frame make_settings(const Settings& s) noexcept {
  Frame f;
  f.type = FrameType::settings;
  f.settings = s;
  return f;
}

}  // namespace weft::mux
