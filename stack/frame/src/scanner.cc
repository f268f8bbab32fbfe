#include <weft/frame/scanner.h>

#include <bit>
#include <cstring>

#include "prefix_step.h"

namespace weft::frame {
namespace {

std::uint32_t load_be32(const std::byte* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::little) {
    v = __builtin_bswap32(v);
  }
  return v;
}

}  // namespace

Decoded LengthPrefixScanner::fail_at(frame_errc e, std::size_t consumed) noexcept {
  failed_ = true;
  error_ = e;
  return {consumed, DecodeState::error};
}

Decoded LengthPrefixScanner::feed(std::span<const std::byte> in) noexcept {
  frames_ = 0;
  if (failed_) {
    return {0, DecodeState::error};
  }
  // Locals, not members, in the loop: stores through std::byte may alias anything, so
  // members would be reloaded and stored on every frame.
  const std::byte* p = in.data();
  const std::size_t n = in.size();
  const std::uint32_t max = config_.max_frame_size;
  const bool u32 = config_.prefix == PrefixKind::u32_be;
  std::size_t pos = 0;
  std::uint32_t rem = remaining_;
  std::uint32_t frames = 0;
  for (;;) {
    // The rest of the current payload.
    if (rem != 0) {
      if (n - pos < rem) {
        rem -= static_cast<std::uint32_t>(n - pos);
        pos = n;
        break;
      }
      pos += rem;
      rem = 0;
      ++frames;
    }
    if (u32 && header_have_ == 0) {
      // Fast path, the common case of many small frames per read: whole u32 frames, about
      // ten instructions each (one load and a byte swap per prefix).
      while (n - pos >= kU32HeaderSize) {
        const std::uint32_t len = load_be32(p + pos);
        pos += kU32HeaderSize;
        if (len > max) {
          frames_ = frames;
          return fail_at(frame_errc::oversize, pos);
        }
        if (len > n - pos) {
          rem = len;
          break;
        }
        pos += len;
        ++frames;
      }
      if (rem != 0) {
        continue;  // the payload runs past this input
      }
    }
    if (pos == n) {
      break;
    }
    // A prefix split across inputs, or a varint: one byte at a time, resumable anywhere.
    std::uint32_t len;
    {
      detail::Step step = detail::Step::more;
      while (step == detail::Step::more && pos < n) {
        step = detail::prefix_step(config_.prefix, length_, header_have_,
                                   static_cast<std::uint8_t>(p[pos++]));
      }
      if (step == detail::Step::bad) {
        frames_ = frames;
        return fail_at(frame_errc::bad_varint, pos);
      }
      if (step == detail::Step::more) {
        break;  // the input ends inside the prefix
      }
      len = length_;
      length_ = 0;
      header_have_ = 0;
    }
    // The limit is checked on the prefix's last byte, before any payload byte.
    if (len > max) {
      frames_ = frames;
      return fail_at(frame_errc::oversize, pos);
    }
    rem = len;
    frames += len == 0 ? 1 : 0;
  }
  remaining_ = rem;
  frames_ = frames;
  return {n, mid_frame() ? DecodeState::need_more : DecodeState::ready};
}

std::error_code LengthPrefixScanner::finish() noexcept {
  if (!failed_ && mid_frame()) {
    failed_ = true;
    error_ = frame_errc::truncated;
  }
  return error();
}

void LengthPrefixScanner::reset() noexcept {
  remaining_ = 0;
  length_ = 0;
  frames_ = 0;
  header_have_ = 0;
  failed_ = false;
  error_ = frame_errc{};
}

}  // namespace weft::frame
