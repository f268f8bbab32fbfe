// LengthPrefixScanner — finds where length-prefixed frames end, without assembling them.
//
// For relays and echo: code that forwards bytes by reference and only needs to know that
// every prefix is valid and where frames end. feed() walks any number of frames in one call
// (a receive of 16 small frames costs one call and a few instructions per frame), never
// copies a byte and holds no storage: a frame may span any number of feed() calls.
//
// It accepts exactly the prefixes LengthPrefixDecoder accepts (same limits, same errors, same
// error offsets): oversize on a prefix announcing more than max_frame_size, bad_varint on a
// varint longer than 5 bytes or above 2^32 - 1. Errors are sticky until reset().
//
// Contract of feed(in): returns {consumed, state}.
//   - need_more: all of `in` consumed; the stream ends inside a frame (prefix or payload).
//   - ready:     all of `in` consumed; the stream ends exactly at a frame boundary.
//   - error:     consumed is the offset just past the byte that made the error (the prefix's
//                last byte); nothing after it was looked at.
// frames() is the number of frames that ended inside the last feed() (before the error).
// Threading: one owner thread; no shared state. Never allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

#include <weft/frame/decoder.h>
#include <weft/frame/encode.h>
#include <weft/frame/error.h>
#include <weft/frame/length_prefix.h>

namespace weft::frame {

class LengthPrefixScanner {
 public:
  explicit LengthPrefixScanner(LengthPrefixConfig config = {}) noexcept : config_(config) {}

  [[nodiscard]] Decoded feed(std::span<const std::byte> in) noexcept;
  [[nodiscard]] std::uint32_t frames() const noexcept { return frames_; }
  // Bytes of a prefix seen so far when the last feed() ended inside one (0 otherwise, and 0
  // when only the payload is unfinished). Relays hold these few bytes back until the prefix
  // is complete and valid.
  [[nodiscard]] std::uint32_t prefix_have() const noexcept { return header_have_; }
  // True while inside a frame (part of a prefix or payload seen).
  [[nodiscard]] bool mid_frame() const noexcept { return header_have_ != 0 || remaining_ != 0; }
  // The sticky error, or an empty std::error_code.
  [[nodiscard]] std::error_code error() const noexcept {
    return failed_ ? make_error_code(error_) : std::error_code();
  }
  // The peer closed the stream: ok at a boundary; inside a frame -> truncated (sticky).
  [[nodiscard]] std::error_code finish() noexcept;
  void reset() noexcept;

 private:
  Decoded fail_at(frame_errc e, std::size_t consumed) noexcept;

  LengthPrefixConfig config_;
  std::uint32_t remaining_ = 0;  // payload bytes of the current frame still to come
  std::uint32_t length_ = 0;     // prefix value being accumulated
  std::uint32_t frames_ = 0;
  std::uint8_t header_have_ = 0;
  bool failed_ = false;
  frame_errc error_ = frame_errc{};
};

}  // namespace weft::frame
