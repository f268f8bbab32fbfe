// LengthPrefixDecoder — finds frames of the form [length prefix][payload] in a byte stream.
//
// The prefix is a u32 big-endian or a LEB128 varint (encode.h has the encoders and the byte
// layouts). It counts payload bytes only; frame() views the payload, never the prefix.
//
// Limits (checked before anything is buffered, so a hostile prefix costs nothing):
//   - a prefix announcing more than Config::max_frame_size bytes -> frame_errc::oversize,
//     reported on the prefix's last byte;
//   - a varint prefix longer than 5 bytes, or with a value above 2^32 - 1
//     -> frame_errc::bad_varint, reported on the fifth byte. Non-minimal varints
//     (80 00 for 0) are accepted, as protobuf does: writers that reserve a fixed 5-byte
//     prefix and fill it in later produce them.
//
// Memory (zero copy where possible): when a payload lies whole inside the span given to one
// feed() call, frame() views it there, in the caller's input, and nothing is copied. When a
// payload spans feed() calls, its bytes are copied into caller-provided assembly storage
// (set_assembly(), at least max_frame_size bytes, payload only) and frame() views that.
// Without assembly storage such a frame fails with frame_errc::no_assembly. The decoder
// itself is a few words; it never allocates.
//
// Contract: decoder.h (feed/ready/need_more/error, sticky errors, finish, reset).
// Threading: one owner thread; no shared state.
//
// Example:
//   LengthPrefixDecoder dec({.prefix = PrefixKind::varint, .max_frame_size = 4096});
//   if (!dec.set_assembly(storage)) { ... }  // storage: std::span<std::byte>, >= 4096 bytes
//   while (!in.empty()) {
//     Decoded d = dec.feed(in);
//     if (d.state == DecodeState::error) { close(dec.error()); break; }
//     if (d.state == DecodeState::ready) { handle(dec.frame()); }
//     in = in.subspan(d.consumed);
//   }
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

#include <weft/base/result.h>
#include <weft/frame/decoder.h>
#include <weft/frame/encode.h>
#include <weft/frame/error.h>

namespace weft::frame {

struct LengthPrefixConfig {
  PrefixKind prefix = PrefixKind::u32_be;
  // Largest payload accepted, in bytes (the prefix is not counted). A prefix announcing more
  // -> frame_errc::oversize before any payload byte is read. Assembly storage must be at
  // least this large. Default: 64 KiB, a small board's largest message.
  std::uint32_t max_frame_size = 64 * 1024;
};

class LengthPrefixDecoder {
 public:
  explicit LengthPrefixDecoder(LengthPrefixConfig config = {}) noexcept : config_(config) {}

  // Sets the storage that frames spanning feed() calls are assembled in. The decoder writes
  // into it during feed() and frame() may view it; the caller keeps it alive and untouched
  // for as long as the decoder uses it. Call before the first feed() or right after reset()
  // (never mid_frame()). Errors: buffer_too_small when storage.size() < max_frame_size (the
  // previous storage, if any, is kept).
  [[nodiscard]] Result<void> set_assembly(std::span<std::byte> storage) noexcept;

  // The decoder contract of decoder.h. Errors (sticky): oversize, bad_varint, no_assembly.
  [[nodiscard]] Decoded feed(std::span<const std::byte> in) noexcept;

  // The peer closed the stream. Ok between frames (also right after a ready frame);
  // inside one (a partial prefix or payload) -> truncated, which becomes the sticky error.
  // After an error: that error.
  [[nodiscard]] Result<void> finish() noexcept;

  // Forgets any partial frame and any error; keeps the configuration and assembly storage.
  void reset() noexcept;

  // The payload of the frame the last feed() returned ready for; empty in any other state.
  // Valid until the next feed() or reset(), and — when it views the caller's input (the
  // payload came whole in one feed) — only while those input bytes stay alive.
  [[nodiscard]] std::span<const std::byte> frame() const noexcept;

  // The sticky error, or an empty std::error_code when the decoder is not in error.
  [[nodiscard]] std::error_code error() const noexcept;

  // True while bytes of an unfinished frame (prefix or payload) are held.
  [[nodiscard]] bool mid_frame() const noexcept;

  [[nodiscard]] std::uint32_t max_frame_size() const noexcept { return config_.max_frame_size; }
  [[nodiscard]] const LengthPrefixConfig& config() const noexcept { return config_; }

 private:
  enum class Phase : std::uint8_t { header, payload, ready, error };

  Decoded set_error(frame_errc e, std::size_t consumed) noexcept;

  LengthPrefixConfig config_;
  std::span<std::byte> assembly_;
  bool has_assembly_ = false;
  Phase phase_ = Phase::header;
  std::uint8_t header_have_ = 0;  // prefix bytes seen so far (header phase)
  frame_errc error_ = frame_errc{};
  std::uint32_t length_ = 0;               // prefix value, accumulated while in the header phase
  std::uint32_t payload_have_ = 0;         // payload bytes already in assembly_ (payload phase)
  const std::byte* frame_data_ = nullptr;  // ready: where the payload is
};

static_assert(FrameDecoder<LengthPrefixDecoder>);

}  // namespace weft::frame
