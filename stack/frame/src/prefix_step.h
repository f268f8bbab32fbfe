// Private: one byte of a length prefix, shared by LengthPrefixDecoder and LengthPrefixScanner
// so that both accept exactly the same prefixes.
#pragma once

#include <cstdint>

#include <weft/frame/encode.h>

namespace weft::frame::detail {

// Outcome of feeding one prefix byte.
enum class Step : std::uint8_t { more, done, bad };

// The fifth varint byte carries bits 28..31: anything above 0x0f either sets bits past 31
// (overflow) or the continuation bit (a sixth byte). Both are bad_varint.
inline constexpr std::uint8_t kLastVarintByteMax = 0x0f;

// Adds prefix byte b to length (have: prefix bytes seen before b). Non-minimal varints are
// accepted, as protobuf does.
inline Step prefix_step(PrefixKind kind, std::uint32_t& length, std::uint8_t& have,
                        std::uint8_t b) noexcept {
  if (kind == PrefixKind::u32_be) {
    length = (length << 8) | b;
    return ++have == kU32HeaderSize ? Step::done : Step::more;
  }
  if (have == kMaxVarintSize - 1) {
    if (b > kLastVarintByteMax) {
      return Step::bad;
    }
    length |= std::uint32_t{b} << (7 * have);
    return Step::done;
  }
  length |= std::uint32_t{b & 0x7fu} << (7 * have);
  ++have;
  return (b & 0x80) != 0 ? Step::more : Step::done;
}

}  // namespace weft::frame::detail
