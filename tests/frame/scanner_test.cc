// LengthPrefixScanner: the same frames, errors and error offsets as LengthPrefixDecoder, at
// every split point and one byte at a time, without assembling anything.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <weft/frame/encode.h>
#include <weft/frame/length_prefix.h>
#include <weft/frame/scanner.h>

#include "guard_page.h"

namespace weft::frame {
namespace {

std::vector<std::byte> frames_of(PrefixKind kind, const std::vector<std::uint32_t>& sizes) {
  std::vector<std::byte> out;
  std::uint8_t fill = 1;
  for (std::uint32_t n : sizes) {
    std::byte hdr[kMaxHeaderSize];
    const auto h = encode_header(kind, n, hdr);
    EXPECT_TRUE(h.ok());
    out.insert(out.end(), hdr, hdr + h.value());
    for (std::uint32_t i = 0; i < n; ++i) {
      out.push_back(static_cast<std::byte>(fill++));
    }
  }
  return out;
}

struct Scan {
  std::size_t frames = 0;
  std::error_code error;
  std::size_t error_offset = 0;
  bool mid = false;
};

// Feeds `s` in pieces of `step` bytes (0: all at once), each piece ending at a guard page.
Scan run(LengthPrefixConfig cfg, const std::vector<std::byte>& s, std::size_t step) {
  LengthPrefixScanner scan(cfg);
  test::GuardPage guard(s.size());
  Scan r;
  std::size_t pos = 0;
  while (pos < s.size()) {
    const std::size_t n = step == 0 ? s.size() : std::min(step, s.size() - pos);
    const Decoded d = scan.feed(guard.place({s.data() + pos, n}));
    r.frames += scan.frames();
    if (d.state == DecodeState::error) {
      r.error = scan.error();
      r.error_offset = pos + d.consumed;
      return r;
    }
    EXPECT_EQ(d.consumed, n);
    EXPECT_EQ(d.state == DecodeState::need_more, scan.mid_frame());
    pos += n;
  }
  r.mid = scan.mid_frame();
  return r;
}

class ScannerTest : public ::testing::TestWithParam<PrefixKind> {};

TEST_P(ScannerTest, CountsFramesAtEverySplit) {
  const std::vector<std::uint32_t> sizes = {0, 1, 5, 127, 128, 300, 0, 64, 1000};
  const auto s = frames_of(GetParam(), sizes);
  const LengthPrefixConfig cfg{GetParam(), 1000};
  for (std::size_t step : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{3},
                           std::size_t{7}, std::size_t{64}, std::size_t{129}}) {
    const Scan r = run(cfg, s, step);
    EXPECT_EQ(r.frames, sizes.size()) << "step " << step;
    EXPECT_FALSE(r.error) << "step " << step;
    EXPECT_FALSE(r.mid) << "step " << step;
  }
  // Two pieces, split at every byte.
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    LengthPrefixScanner scan(cfg);
    std::size_t frames = 0;
    (void)scan.feed({s.data(), cut});
    frames += scan.frames();
    (void)scan.feed({s.data() + cut, s.size() - cut});
    frames += scan.frames();
    EXPECT_EQ(frames, sizes.size()) << "cut " << cut;
    EXPECT_FALSE(scan.mid_frame());
    EXPECT_FALSE(scan.finish());
  }
}

TEST_P(ScannerTest, OversizeAtTheSameOffsetAsTheDecoder) {
  auto s = frames_of(GetParam(), {3, 200, 2});
  const LengthPrefixConfig cfg{GetParam(), 100};
  LengthPrefixDecoder dec(cfg);
  std::vector<std::byte> storage(100);
  ASSERT_TRUE(dec.set_assembly(storage).ok());
  std::size_t pos = 0;
  std::size_t dec_frames = 0;
  for (;;) {
    const Decoded d = dec.feed({s.data() + pos, s.size() - pos});
    pos += d.consumed;
    if (d.state != DecodeState::ready) {
      ASSERT_EQ(d.state, DecodeState::error);
      break;
    }
    ++dec_frames;
  }
  for (std::size_t step : {std::size_t{0}, std::size_t{1}, std::size_t{5}}) {
    const Scan r = run(cfg, s, step);
    EXPECT_EQ(r.error, make_error_code(frame_errc::oversize));
    EXPECT_EQ(r.error_offset, pos) << "step " << step;
    EXPECT_EQ(r.frames, dec_frames);
  }
}

TEST_P(ScannerTest, TruncatedStreamIsMidFrameAndFinishSaysSo) {
  auto s = frames_of(GetParam(), {10, 10});
  s.pop_back();
  LengthPrefixScanner scan({GetParam(), 100});
  (void)scan.feed(s);
  EXPECT_EQ(scan.frames(), 1u);
  EXPECT_TRUE(scan.mid_frame());
  EXPECT_EQ(scan.finish(), make_error_code(frame_errc::truncated));
  // Sticky until reset.
  EXPECT_EQ(scan.feed(s).state, DecodeState::error);
  scan.reset();
  EXPECT_EQ(scan.feed(s).state, DecodeState::need_more);
}

TEST_P(ScannerTest, PrefixHaveCountsAnUnfinishedPrefix) {
  const auto s = frames_of(GetParam(), {200});
  const std::size_t hdr = header_size(GetParam(), 200);
  LengthPrefixScanner scan({GetParam(), 1000});
  if (hdr > 1) {
    (void)scan.feed({s.data(), 1});
    EXPECT_EQ(scan.prefix_have(), 1u);
    (void)scan.feed({s.data() + 1, hdr - 1});
  } else {
    (void)scan.feed({s.data(), 1});
  }
  EXPECT_EQ(scan.prefix_have(), 0u);  // complete: only payload is pending
  EXPECT_TRUE(scan.mid_frame());
}

INSTANTIATE_TEST_SUITE_P(Prefixes, ScannerTest,
                         ::testing::Values(PrefixKind::u32_be, PrefixKind::varint),
                         [](const auto& p) {
                           return p.param == PrefixKind::u32_be ? "u32" : "varint";
                         });

TEST(ScannerVarint, SixthByteIsBadVarint) {
  const std::vector<std::byte> s = {std::byte{0x80}, std::byte{0x80}, std::byte{0x80},
                                    std::byte{0x80}, std::byte{0x80}, std::byte{0x01}};
  for (std::size_t step : {std::size_t{0}, std::size_t{1}}) {
    const Scan r = run({PrefixKind::varint, 100}, s, step);
    EXPECT_EQ(r.error, make_error_code(frame_errc::bad_varint));
    EXPECT_EQ(r.error_offset, 5u);
  }
}

}  // namespace
}  // namespace weft::frame
