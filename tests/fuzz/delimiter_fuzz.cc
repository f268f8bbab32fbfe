// Fuzz target: DelimiterDecoder (LF and CRLF modes, several delimiters).
//
// Config byte: bit 0 CRLF mode; bits 1..2 pick the delimiter from kDelimiters; bits 3..5
// pick max_frame_size from kMaxSizes. The stream is decoded by an independent byte-at-a-time
// reference, then by the decoder in one piece and in fuzzer-chosen chunks; check_decode()
// compares.
#include <weft/frame/delimiter.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_common.h"

namespace {

using weft::frame::DelimiterConfig;
using weft::frame::DelimiterDecoder;
using weft::frame::frame_errc;
using weft::fuzz::Expected;

constexpr std::byte kDelimiters[4] = {std::byte{'\n'}, std::byte{'\0'}, std::byte{';'},
                                      std::byte{'\r'}};
constexpr std::uint32_t kMaxSizes[8] = {0, 1, 2, 3, 8, 16, 64, 1000};

// Byte at a time: `committed` frame bytes so far, plus (CRLF mode) whether the last byte
// was a '\r' that may yet be stripped. A line is oversize at the first byte that makes the
// committed length exceed max.
Expected reference(const DelimiterConfig& c, std::span<const std::byte> s) {
  Expected e;
  std::size_t start = 0;
  std::size_t committed = 0;
  bool cr = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const std::byte b = s[i];
    if (b == c.delimiter) {
      e.frame_start.push_back(start);
      e.frames.emplace_back(s.begin() + static_cast<std::ptrdiff_t>(start),
                            s.begin() + static_cast<std::ptrdiff_t>(start + committed));
      start = i + 1;
      committed = 0;
      cr = false;
      continue;
    }
    if (cr) {  // the held '\r' was not followed by the delimiter: it is content
      cr = false;
      if (++committed > c.max_frame_size) {
        e.error = frame_errc::oversize;
        e.error_offset = i + 1;
        return e;
      }
    }
    if (c.crlf && b == std::byte{'\r'}) {
      cr = true;
      continue;
    }
    if (++committed > c.max_frame_size) {
      e.error = frame_errc::oversize;
      e.error_offset = i + 1;
      return e;
    }
  }
  e.partial = committed != 0 || cr;
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  weft::fuzz::Input in;
  if (!weft::fuzz::parse_input(data, size, in)) {
    return 0;
  }
  const DelimiterConfig config{kDelimiters[(in.config >> 1) & 3], (in.config & 1) != 0,
                               kMaxSizes[(in.config >> 3) & 7]};
  const Expected want = reference(config, in.stream);
  std::vector<std::byte> storage(config.max_frame_size);
  for (bool one_shot : {true, false}) {
    DelimiterDecoder dec(config);
    FUZZ_CHECK(dec.set_assembly(storage).ok());
    weft::fuzz::check_decode(dec, storage, in, want, one_shot);
    dec.reset();
    FUZZ_CHECK(!dec.error() && !dec.mid_frame());
    weft::fuzz::check_decode(dec, storage, in, want, one_shot);
  }
  return 0;
}
