#include <weft/frame/scanner.h>

#include "prefix_step.h"

namespace weft::frame {

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
  const std::byte* p = in.data();
  const std::size_t n = in.size();
  std::size_t pos = 0;
  while (pos < n) {
    if (remaining_ != 0) {
      const std::size_t take = n - pos < remaining_ ? n - pos : remaining_;
      pos += take;
      remaining_ -= static_cast<std::uint32_t>(take);
      frames_ += remaining_ == 0 ? 1 : 0;
      continue;
    }
    // A prefix. Fast path: a whole u32 prefix in this input (many small frames per read).
    if (header_have_ == 0 && config_.prefix == PrefixKind::u32_be && n - pos >= kU32HeaderSize) {
      length_ = (std::uint32_t{static_cast<std::uint8_t>(p[pos])} << 24) |
                (std::uint32_t{static_cast<std::uint8_t>(p[pos + 1])} << 16) |
                (std::uint32_t{static_cast<std::uint8_t>(p[pos + 2])} << 8) |
                std::uint32_t{static_cast<std::uint8_t>(p[pos + 3])};
      pos += kU32HeaderSize;
    } else {
      // Slow path: one byte at a time, resumable at any byte.
      detail::Step step = detail::Step::more;
      while (step == detail::Step::more && pos < n) {
        step = detail::prefix_step(config_.prefix, length_, header_have_,
                                   static_cast<std::uint8_t>(p[pos++]));
      }
      if (step == detail::Step::bad) {
        return fail_at(frame_errc::bad_varint, pos);
      }
      if (step == detail::Step::more) {
        break;  // the input ends inside the prefix
      }
      header_have_ = 0;
    }
    // The limit is checked on the prefix's last byte, before any payload byte.
    if (length_ > config_.max_frame_size) {
      return fail_at(frame_errc::oversize, pos);
    }
    remaining_ = length_;
    length_ = 0;
    frames_ += remaining_ == 0 ? 1 : 0;
  }
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
