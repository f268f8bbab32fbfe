// Fuzz target: LengthPrefixDecoder and LengthPrefixScanner (u32 big-endian and varint
// prefixes). The scanner must find the same frames, the same error at the same offset and
// the same partial tail as the reference, whatever the chunking.
//
// Config byte: bit 0 picks the prefix (0 u32_be, 1 varint); bits 1..3 pick max_frame_size
// from kMaxSizes. The stream is decoded by an independent whole-buffer reference parser,
// then by the decoder in one piece and in fuzzer-chosen chunks; check_decode() compares.
#include <weft/frame/length_prefix.h>
#include <weft/frame/scanner.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_common.h"

namespace {

using weft::frame::frame_errc;
using weft::frame::LengthPrefixConfig;
using weft::frame::LengthPrefixDecoder;
using weft::frame::LengthPrefixScanner;
using weft::frame::PrefixKind;
using weft::fuzz::Expected;

constexpr std::uint32_t kMaxSizes[8] = {0, 1, 2, 5, 16, 127, 128, 1000};

// The whole stream at once, written as plainly as possible (and independently of the
// decoder): prefix, limit check, payload; stop at the first error or at a partial frame.
Expected reference(PrefixKind kind, std::uint32_t max, std::span<const std::byte> s) {
  Expected e;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::uint64_t len = 0;
    if (kind == PrefixKind::u32_be) {
      if (s.size() - pos < 4) {
        e.partial = true;
        return e;
      }
      for (int i = 0; i < 4; ++i) {
        len = (len << 8) | std::to_integer<std::uint64_t>(s[pos++]);
      }
    } else {
      for (int i = 0;; ++i) {
        if (pos == s.size()) {
          e.partial = true;
          return e;
        }
        const auto b = std::to_integer<std::uint64_t>(s[pos++]);
        len |= (b & 0x7f) << (7 * i);
        if (i == 4 && b > 0x0f) {  // a sixth byte, or bits beyond 2^32 - 1
          e.error = frame_errc::bad_varint;
          e.error_offset = pos;
          return e;
        }
        if ((b & 0x80) == 0) {
          break;
        }
      }
    }
    if (len > max) {
      e.error = frame_errc::oversize;
      e.error_offset = pos;
      return e;
    }
    if (s.size() - pos < len) {
      e.partial = true;
      return e;
    }
    e.frame_start.push_back(pos);
    e.frames.emplace_back(s.begin() + static_cast<std::ptrdiff_t>(pos),
                          s.begin() + static_cast<std::ptrdiff_t>(pos + len));
    pos += len;
  }
  return e;
}

// The scanner over the stream in the input's chunk sizes (or one piece).
void check_scan(const LengthPrefixConfig& config, const weft::fuzz::Input& in, const Expected& want,
                bool one_shot) {
  using weft::frame::DecodeState;
  LengthPrefixScanner scan(config);
  // Chunk sizes of only zeros would never advance: feed in one piece then.
  one_shot = one_shot || std::all_of(in.chunk_sizes.begin(), in.chunk_sizes.end(),
                                     [](std::size_t c) { return c == 0; });
  std::size_t frames = 0;
  std::size_t from = 0;
  std::size_t k = 0;
  bool failed = false;
  while (from < in.stream.size() || (from == 0 && in.stream.empty() && k == 0)) {
    const std::size_t len =
        one_shot ? in.stream.size()
                 : std::min(in.chunk_sizes[k++ % in.chunk_sizes.size()], in.stream.size() - from);
    const weft::fuzz::Chunk chunk(in.stream, from, len);
    const weft::frame::Decoded d = scan.feed(chunk.span());
    frames += scan.frames();
    if (d.state == DecodeState::error) {
      FUZZ_CHECK(scan.error() == want.error);
      FUZZ_CHECK(from + d.consumed == want.error_offset);
      failed = true;
      break;
    }
    FUZZ_CHECK(d.consumed == len);
    FUZZ_CHECK((d.state == DecodeState::need_more) == scan.mid_frame());
    from += len;
    if (in.stream.empty()) {
      break;
    }
  }
  FUZZ_CHECK(frames == want.frames.size());
  if (!failed) {
    FUZZ_CHECK(!want.error);
    FUZZ_CHECK(scan.mid_frame() == want.partial);
    FUZZ_CHECK(static_cast<bool>(scan.finish()) == want.partial);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  weft::fuzz::Input in;
  if (!weft::fuzz::parse_input(data, size, in)) {
    return 0;
  }
  const LengthPrefixConfig config{(in.config & 1) != 0 ? PrefixKind::varint : PrefixKind::u32_be,
                                  kMaxSizes[(in.config >> 1) & 7]};
  const Expected want = reference(config.prefix, config.max_frame_size, in.stream);
  // Assembly storage of exactly max_frame_size bytes on the heap: ASan flags any write past.
  std::vector<std::byte> storage(config.max_frame_size);
  for (bool one_shot : {true, false}) {
    LengthPrefixDecoder dec(config);
    FUZZ_CHECK(dec.set_assembly(storage).ok());
    weft::fuzz::check_decode(dec, storage, in, want, one_shot);
    // reset() must give a decoder that behaves like a new one.
    dec.reset();
    FUZZ_CHECK(!dec.error() && !dec.mid_frame());
    weft::fuzz::check_decode(dec, storage, in, want, one_shot);
    check_scan(config, in, want, one_shot);
  }
  return 0;
}
