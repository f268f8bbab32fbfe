// The one incremental decoder contract (STYLE point 6), shared by every weft decoder: the
// frame decoders here, and the msg, mux and HTTP decoders built on them.
//
//   Decoded feed(std::span<const std::byte> in) noexcept;
//
// The caller hands over whatever bytes it has: one read, part of a read, or many frames at
// once. No decoder assumes that one read is one message. The result says how far the decoder
// got and in which state it stopped:
//
//   need_more  Every byte was absorbed (consumed == in.size()): into the decoder's own
//              header state or the caller's assembly storage. The caller may release or
//              reuse `in` and calls feed() again when more bytes arrive.
//   ready      Exactly one frame is complete. `consumed` (1 <= consumed <= in.size()) counts
//              the input bytes up to and including that frame's last byte (its delimiter, for
//              line framing). frame() views the frame until the next feed() or reset().
//              The caller handles the frame, then calls feed(in.subspan(consumed)) for the
//              rest — which may well hold further whole frames.
//   error      The stream is invalid (or the decoder is misconfigured); error() says why.
//              `consumed` counts the bytes up to and including the first offending byte, so
//              the stream offset of the fault is known (offset + consumed - 1) whatever the
//              read boundaries were. Errors are sticky: every later feed() returns
//              {0, error} and finish() returns the same error, until reset().
//
// End of stream: finish() tells the decoder the peer closed. Stopping between frames is fine
// (ok); stopping inside one turns into the sticky error frame_errc::truncated.
//
// Ownership: decoders never allocate and never keep a pointer into `in` past the call that
// returned it — except the frame() view of a ready frame, which may point into `in` (the
// zero-copy case) and is then valid only while the caller keeps those bytes alive.
// Threading: a decoder is a plain value owned by one connection on one thread.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

#include <weft/base/result.h>

namespace weft::frame {

enum class DecodeState : std::uint8_t {
  need_more = 0,  // all input absorbed, no complete frame yet
  ready,          // one frame complete: frame() views it
  error,          // sticky until reset(): error() says why
};

// What one feed() call did. `consumed` is meaningful in every state (see above).
struct [[nodiscard]] Decoded {
  std::size_t consumed = 0;
  DecodeState state = DecodeState::need_more;
};

// The shape every incremental decoder has. reset() forgets any partial frame and any error
// (configuration and caller storage are kept); mid_frame() is true when bytes of an
// unfinished frame are held (what a read timeout or finish() cares about).
// (Formatting off: clang-format 14 mangles requires-expressions that use noexcept.)
// clang-format off
template <class D>
concept IncrementalDecoder = requires(D& d, const D& cd, std::span<const std::byte> in) {
  { d.feed(in) } noexcept -> std::same_as<Decoded>;
  { d.finish() } noexcept -> std::same_as<Result<void>>;
  { d.reset() } noexcept;
  { cd.error() } noexcept -> std::same_as<std::error_code>;
  { cd.mid_frame() } noexcept -> std::same_as<bool>;
};

// A decoder that yields raw frames (byte views) no larger than max_frame_size().
template <class D>
concept FrameDecoder = IncrementalDecoder<D> && requires(const D& cd) {
  { cd.frame() } noexcept -> std::same_as<std::span<const std::byte>>;
  { cd.max_frame_size() } noexcept -> std::same_as<std::uint32_t>;
};
// clang-format on

}  // namespace weft::frame
