// DelimiterDecoder — splits a byte stream into frames ended by one delimiter byte
// (by default '\n': text lines, NDJSON, line-based control protocols).
//
// frame() views the bytes before the delimiter; the delimiter itself is never part of the
// frame, but it is counted in `consumed`. Empty frames ("\n\n") are frames.
//
// CRLF mode (Config::crlf): one '\r' immediately before the delimiter is stripped as well,
// so "abc\r\n" and "abc\n" both yield "abc". A '\r' anywhere else ("a\rb\n", or the first of
// "\r\r\n") is frame content. The '\r' may arrive in one read and the delimiter in the next;
// the decoder remembers it without storing it, so assembly storage of max_frame_size bytes
// is always enough.
//
// Limit: a frame longer than Config::max_frame_size -> frame_errc::oversize, reported as
// soon as the line grows past the limit with no delimiter in sight — the decoder never
// scans or buffers further, however long the hostile line is. In CRLF mode the limit counts
// the frame after stripping (max_frame_size bytes + "\r\n" is accepted).
//
// Memory (zero copy where possible): a line that starts and ends inside the span given to
// one feed() call is viewed in place, in the caller's input. A line that spans feed() calls
// is copied into caller-provided assembly storage (set_assembly(), at least max_frame_size
// bytes) and frame() views that; without storage it fails with frame_errc::no_assembly.
// The decoder never allocates.
//
// Contract: decoder.h (feed/ready/need_more/error, sticky errors, finish, reset). A last
// line without a delimiter is not a frame: finish() reports it as truncated.
// Threading: one owner thread; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

#include <weft/base/result.h>
#include <weft/frame/decoder.h>
#include <weft/frame/error.h>

namespace weft::frame {

struct DelimiterConfig {
  std::byte delimiter{'\n'};  // ends a frame; not part of it
  // Also strip one '\r' right before the delimiter (line protocols that send CRLF). Off:
  // every byte before the delimiter is frame content.
  bool crlf = false;
  // Largest frame accepted, in bytes, excluding the delimiter (and, in CRLF mode, the
  // stripped '\r'). A line growing past it -> frame_errc::oversize. Assembly storage must be
  // at least this large. Default: 8 KiB, enough for any sane text line on a small board.
  std::uint32_t max_frame_size = 8 * 1024;
};

class DelimiterDecoder {
 public:
  explicit DelimiterDecoder(DelimiterConfig config = {}) noexcept : config_(config) {}

  // Sets the storage that lines spanning feed() calls are assembled in. The decoder writes
  // into it during feed() and frame() may view it; the caller keeps it alive and untouched
  // for as long as the decoder uses it. Call before the first feed() or right after reset()
  // (never mid_frame()). Errors: buffer_too_small when storage.size() < max_frame_size (the
  // previous storage, if any, is kept).
  [[nodiscard]] Result<void> set_assembly(std::span<std::byte> storage) noexcept;

  // The decoder contract of decoder.h. Errors (sticky): oversize, no_assembly.
  [[nodiscard]] Decoded feed(std::span<const std::byte> in) noexcept;

  // The peer closed the stream. Ok between frames; with a partial line held (even a lone
  // '\r' in CRLF mode) -> truncated, which becomes the sticky error. After an error: it.
  [[nodiscard]] Result<void> finish() noexcept;

  // Forgets any partial line and any error; keeps the configuration and assembly storage.
  void reset() noexcept;

  // The frame the last feed() returned ready for (delimiter and stripped '\r' excluded);
  // empty in any other state. Valid until the next feed() or reset(), and — when it views
  // the caller's input (the line came whole in one feed) — only while that input lives.
  [[nodiscard]] std::span<const std::byte> frame() const noexcept;

  // The sticky error, or an empty std::error_code when the decoder is not in error.
  [[nodiscard]] std::error_code error() const noexcept;

  // True while bytes of an unfinished line are held.
  [[nodiscard]] bool mid_frame() const noexcept;

  [[nodiscard]] std::uint32_t max_frame_size() const noexcept { return config_.max_frame_size; }
  [[nodiscard]] const DelimiterConfig& config() const noexcept { return config_; }

 private:
  enum class Phase : std::uint8_t { scan, ready, error };

  Decoded set_error(frame_errc e, std::size_t consumed) noexcept;
  [[nodiscard]] std::size_t oversize_offset(std::span<const std::byte> in, std::size_t pos,
                                            std::size_t room) const noexcept;

  DelimiterConfig config_;
  std::span<std::byte> assembly_;
  bool has_assembly_ = false;
  bool pending_cr_ = false;  // CRLF mode: the last byte seen was '\r' (not stored yet)
  Phase phase_ = Phase::scan;
  frame_errc error_ = frame_errc{};
  std::uint32_t have_ = 0;  // frame bytes already in assembly_
  std::uint32_t frame_size_ = 0;
  const std::byte* frame_data_ = nullptr;
};

static_assert(FrameDecoder<DelimiterDecoder>);

}  // namespace weft::frame
