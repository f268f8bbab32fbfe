// Test driver for FrameDecoders: feeds a stream in given chunks, checks the decoder contract
// of decoder.h on every call, and collects what came out (frames copied, since views die
// at the next feed). Used by every frame decoder test to attack split points.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <weft/frame/decoder.h>
#include "guard_page.h"

namespace weft::frame {
// Readable names in gtest failure messages.
inline void PrintTo(DecodeState s, std::ostream* os) {
  *os << (s == DecodeState::need_more ? "need_more" : s == DecodeState::ready ? "ready" : "error");
}
}  // namespace weft::frame

namespace weft::test {

inline std::span<const std::byte> as_bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

inline std::string as_string(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// Everything one run over a stream produced.
struct Outcome {
  std::vector<std::string> frames;
  std::error_code error;         // the sticky error, if feed() reported one
  std::size_t error_offset = 0;  // stream offset just past the offending byte
  std::error_code finish_error;  // what finish() said at the end (only if no error)
  std::size_t in_place = 0;      // frames whose view pointed into the chunk fed
  std::size_t assembled = 0;     // non-empty frames viewed elsewhere (assembly storage)
};

template <frame::FrameDecoder D>
class Driver {
 public:
  explicit Driver(D& dec) : dec_(dec) {}

  // Feeds one chunk completely (several feed() calls when it holds several frames).
  void feed(std::span<const std::byte> chunk) {
    std::span<const std::byte> rest = chunk;
    while (true) {
      const frame::Decoded r = dec_.feed(rest);
      if (out_.error) {  // sticky: nothing more comes out
        EXPECT_EQ(r.state, frame::DecodeState::error);
        EXPECT_EQ(r.consumed, 0u);
        EXPECT_EQ(dec_.error(), out_.error);
        return;
      }
      ASSERT_LE(r.consumed, rest.size());
      switch (r.state) {
        case frame::DecodeState::need_more:
          EXPECT_EQ(r.consumed, rest.size()) << "need_more must absorb all input";
          EXPECT_TRUE(dec_.frame().empty());
          EXPECT_FALSE(dec_.error());
          offset_ += r.consumed;
          return;
        case frame::DecodeState::ready: {
          EXPECT_GE(r.consumed, 1u) << "ready must make progress";
          EXPECT_FALSE(dec_.error());
          EXPECT_FALSE(dec_.mid_frame());
          const std::span<const std::byte> f = dec_.frame();
          EXPECT_LE(f.size(), dec_.max_frame_size());
          if (!f.empty()) {
            const bool inside =
                f.data() >= chunk.data() && f.data() + f.size() <= chunk.data() + chunk.size();
            ++(inside ? out_.in_place : out_.assembled);
          }
          out_.frames.push_back(as_string(f));
          offset_ += r.consumed;
          rest = rest.subspan(r.consumed);
          if (rest.empty()) {
            return;
          }
          break;
        }
        case frame::DecodeState::error:
          EXPECT_TRUE(dec_.error()) << "error state without an error code";
          EXPECT_TRUE(dec_.frame().empty());
          out_.error = dec_.error();
          out_.error_offset = offset_ + r.consumed;
          return;
      }
    }
  }

  // Ends the stream; records finish()'s verdict and returns everything collected.
  Outcome finish() {
    const Result<void> fin = dec_.finish();
    if (out_.error) {
      EXPECT_EQ(fin.error(), out_.error) << "finish() must repeat the sticky error";
    } else {
      out_.finish_error = fin.error();
      if (!fin.ok()) {
        EXPECT_EQ(dec_.error(), fin.error()) << "truncated must become the sticky error";
      }
    }
    return out_;
  }

 private:
  D& dec_;
  Outcome out_;
  std::size_t offset_ = 0;
};

// Decodes `stream` cut at the given (sorted) offsets; optionally every chunk is placed so
// that it ends at a guard page.
template <frame::FrameDecoder D>
Outcome decode_split(D& dec, std::span<const std::byte> stream,
                     const std::vector<std::size_t>& cuts, GuardPage* guard = nullptr) {
  Driver<D> drv(dec);
  std::size_t from = 0;
  auto feed = [&](std::size_t to) {
    std::span<const std::byte> chunk = stream.subspan(from, to - from);
    drv.feed(guard != nullptr ? guard->place(chunk) : chunk);
    from = to;
  };
  for (std::size_t cut : cuts) {
    feed(cut);
  }
  feed(stream.size());
  return drv.finish();
}

// Decodes `stream` one byte at a time (each byte alone at a guard page, if given).
template <frame::FrameDecoder D>
Outcome decode_bytewise(D& dec, std::span<const std::byte> stream, GuardPage* guard = nullptr) {
  Driver<D> drv(dec);
  for (std::size_t i = 0; i < stream.size(); ++i) {
    std::span<const std::byte> one = stream.subspan(i, 1);
    drv.feed(guard != nullptr ? guard->place(one) : one);
  }
  return drv.finish();
}

// Frames and errors must not depend on where the reads were cut.
inline void expect_same(const Outcome& got, const Outcome& want, const std::string& where) {
  EXPECT_EQ(got.frames, want.frames) << where;
  EXPECT_EQ(got.error, want.error) << where;
  EXPECT_EQ(got.error_offset, want.error_offset) << where;
  EXPECT_EQ(got.finish_error, want.finish_error) << where;
}

}  // namespace weft::test
