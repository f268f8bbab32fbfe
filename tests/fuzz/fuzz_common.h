// Shared bits of the frame fuzz targets: an always-on check, input splitting, and a driver
// that decodes a stream in chunks and compares everything with a reference decode.
//
// Input layout (both targets):
//   byte 0      decoder configuration (target-specific bits)
//   byte 1      low 4 bits: k, the number of chunk-size bytes that follow
//   k bytes     chunk sizes (0..255; 0 feeds an empty span), used cyclically
//   the rest    the stream
// libFuzzer mutates the split pattern and the stream together, so read boundaries are as
// hostile as the bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <system_error>
#include <vector>

#include <weft/frame/decoder.h>
#include <weft/frame/error.h>

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "invariant failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

namespace weft::fuzz {

struct Input {
  std::uint8_t config = 0;
  std::vector<std::size_t> chunk_sizes;  // never empty
  std::span<const std::byte> stream;
};

inline bool parse_input(const std::uint8_t* data, std::size_t size, Input& out) {
  if (size < 2) {
    return false;
  }
  out.config = data[0];
  const std::size_t k = data[1] & 0x0f;
  if (size < 2 + k) {
    return false;
  }
  out.chunk_sizes.clear();
  for (std::size_t i = 0; i < k; ++i) {
    out.chunk_sizes.push_back(data[2 + i]);
  }
  if (out.chunk_sizes.empty()) {
    out.chunk_sizes.push_back(7);
  }
  out.stream = std::as_bytes(std::span<const std::uint8_t>(data + 2 + k, size - 2 - k));
  return true;
}

// One chunk of the stream, copied into a heap block of exactly its size so that ASan
// catches a decoder reading past the end of what it was given. An empty chunk is a null,
// zero-length span (the decoder must not touch it).
class Chunk {
 public:
  Chunk(std::span<const std::byte> stream, std::size_t from, std::size_t len) {
    if (len != 0) {
      block_ = std::make_unique<std::byte[]>(len);
      for (std::size_t i = 0; i < len; ++i) {
        block_[i] = stream[from + i];
      }
    }
    span_ = {block_.get(), len};
  }
  [[nodiscard]] std::span<const std::byte> span() const { return span_; }

 private:
  std::unique_ptr<std::byte[]> block_;
  std::span<const std::byte> span_;
};

// What a correct decoder must produce for a stream, computed by a reference decoder that
// sees the whole stream at once.
struct Expected {
  std::vector<std::vector<std::byte>> frames;
  std::vector<std::size_t> frame_start;  // stream offset of each frame's first byte
  std::error_code error;                 // first error, if any
  std::size_t error_offset = 0;          // stream offset just past the offending byte
  bool partial = false;                  // the stream ends inside a frame
};

// Feeds in.stream to `dec` in the chunk sizes of `in` (or in one piece) and checks every
// result against `want`: consumed bounds, frame contents and sizes, where each frame view
// points (in place when the frame started in this chunk, else the assembly storage),
// error code and offset, stickiness, and finish().
template <frame::FrameDecoder D>
void check_decode(D& dec, std::span<const std::byte> assembly, const Input& in,
                  const Expected& want, bool one_shot) {
  const std::span<const std::byte> stream = in.stream;
  std::size_t offset = 0;  // stream offset of the next byte to feed
  std::size_t got = 0;     // frames so far
  std::size_t turn = 0;
  bool last_empty = false;
  while (true) {
    std::size_t len = one_shot ? stream.size() : in.chunk_sizes[turn++ % in.chunk_sizes.size()];
    if (len == 0 && last_empty) {
      len = 1;  // never two empty feeds in a row: the stream must make progress
    }
    len = len < stream.size() - offset ? len : stream.size() - offset;
    last_empty = len == 0;
    const std::size_t chunk_start = offset;
    const Chunk chunk(stream, chunk_start, len);
    std::span<const std::byte> rest = chunk.span();
    while (true) {
      const frame::Decoded r = dec.feed(rest);
      FUZZ_CHECK(r.consumed <= rest.size());
      if (r.state == frame::DecodeState::need_more) {
        FUZZ_CHECK(r.consumed == rest.size());
        FUZZ_CHECK(dec.frame().empty());
        offset += r.consumed;
        break;
      }
      if (r.state == frame::DecodeState::error) {
        FUZZ_CHECK(want.error);
        FUZZ_CHECK(dec.error() == want.error);
        FUZZ_CHECK(offset + r.consumed == want.error_offset);
        FUZZ_CHECK(got == want.frames.size());
        const frame::Decoded again = dec.feed(rest);
        FUZZ_CHECK(again.state == frame::DecodeState::error && again.consumed == 0);
        FUZZ_CHECK(dec.finish().error() == want.error);
        return;
      }
      FUZZ_CHECK(r.consumed >= 1);
      FUZZ_CHECK(got < want.frames.size());
      const std::span<const std::byte> f = dec.frame();
      const std::vector<std::byte>& w = want.frames[got];
      FUZZ_CHECK(f.size() <= dec.max_frame_size());
      FUZZ_CHECK(f.size() == w.size());
      FUZZ_CHECK(f.empty() || std::memcmp(f.data(), w.data(), f.size()) == 0);
      if (!f.empty()) {
        if (want.frame_start[got] >= chunk_start) {
          FUZZ_CHECK(f.data() == chunk.span().data() + (want.frame_start[got] - chunk_start));
        } else {
          FUZZ_CHECK(f.data() == assembly.data());
        }
      }
      ++got;
      offset += r.consumed;
      rest = rest.subspan(r.consumed);
      if (rest.empty()) {
        break;
      }
    }
    if (offset == stream.size()) {
      break;
    }
  }
  FUZZ_CHECK(!want.error);
  FUZZ_CHECK(got == want.frames.size());
  FUZZ_CHECK(dec.mid_frame() == want.partial);
  const Result<void> fin = dec.finish();
  FUZZ_CHECK(fin.ok() == !want.partial);
  FUZZ_CHECK(want.partial == (dec.error() == frame::frame_errc::truncated));
}

}  // namespace weft::fuzz
