// Frame header encoders: the write side of LengthPrefixDecoder.
//
// Two length prefixes, both counting payload bytes only (the prefix is not included):
//
//   PrefixKind::u32_be  4 bytes, big-endian (network order). 0x0000012c = 300.
//   PrefixKind::varint  LEB128 as in protobuf: 7 bits per byte, least significant group
//                       first, high bit set on every byte but the last; 1 to 5 bytes for a
//                       uint32_t. 300 = ac 02.
//
// These are pure functions on caller-provided storage: no allocation, no state, usable in
// constant expressions. The fixed-extent overloads cannot fail; the dynamic-extent ones
// check the room they are given and return frame_errc::buffer_too_small instead of writing
// past it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include <weft/base/result.h>
#include <weft/frame/error.h>

namespace weft::frame {

enum class PrefixKind : std::uint8_t {
  u32_be = 0,  // 4-byte big-endian length
  varint,      // LEB128 length, at most kMaxVarintSize bytes
};

inline constexpr std::size_t kU32HeaderSize = 4;
inline constexpr std::size_t kMaxVarintSize = 5;  // ceil(32 / 7)
inline constexpr std::size_t kMaxHeaderSize = 5;  // the larger of the two

// Writes `len` big-endian into out[0..4).
constexpr void encode_u32_header(std::span<std::byte, kU32HeaderSize> out,
                                 std::uint32_t len) noexcept;

// Bytes the minimal LEB128 encoding of v takes (1..5).
[[nodiscard]] constexpr std::size_t varint_size(std::uint32_t v) noexcept;

// Writes the minimal LEB128 encoding of v at out[0..n) and returns n (1..5).
constexpr std::size_t encode_varint(std::span<std::byte, kMaxVarintSize> out,
                                    std::uint32_t v) noexcept;

// Size of the prefix for a payload of `len` bytes (4 for u32_be, 1..5 for varint).
[[nodiscard]] constexpr std::size_t header_size(PrefixKind kind, std::uint32_t len) noexcept;

// Writes the prefix for a payload of `len` bytes at out[0..n) and returns n. Errors:
// buffer_too_small when out.size() < header_size(kind, len) (nothing is written).
[[nodiscard]] Result<std::size_t> encode_header(PrefixKind kind, std::uint32_t len,
                                                std::span<std::byte> out) noexcept;

// Writes prefix + payload at out[0..n) and returns n: a convenience for small control
// frames (big payloads should be sent as their own iovec after a header). Errors: oversize
// when the payload is larger than 2^32 - 1 bytes, buffer_too_small when out cannot hold the
// whole frame (nothing is written).
[[nodiscard]] Result<std::size_t> encode_frame(PrefixKind kind, std::span<const std::byte> payload,
                                               std::span<std::byte> out) noexcept;

// ---- inline definitions ---------------------------------------------------------------

constexpr void encode_u32_header(std::span<std::byte, kU32HeaderSize> out,
                                 std::uint32_t len) noexcept {
  out[0] = static_cast<std::byte>(len >> 24);
  out[1] = static_cast<std::byte>(len >> 16);
  out[2] = static_cast<std::byte>(len >> 8);
  out[3] = static_cast<std::byte>(len);
}

constexpr std::size_t varint_size(std::uint32_t v) noexcept {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

constexpr std::size_t encode_varint(std::span<std::byte, kMaxVarintSize> out,
                                    std::uint32_t v) noexcept {
  std::size_t n = 0;
  while (v >= 0x80) {
    out[n++] = static_cast<std::byte>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out[n++] = static_cast<std::byte>(v);
  return n;
}

constexpr std::size_t header_size(PrefixKind kind, std::uint32_t len) noexcept {
  return kind == PrefixKind::u32_be ? kU32HeaderSize : varint_size(len);
}

}  // namespace weft::frame
