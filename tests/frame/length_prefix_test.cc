// LengthPrefixDecoder: both prefix kinds fed at every split point, byte by byte, at a guard
// page, many frames per read; limits, malformed prefixes, truncation, sticky errors, and
// the zero-copy promise.
#include <weft/frame/length_prefix.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "decode_driver.h"
#include "guard_page.h"

namespace weft::frame {
namespace {

using test::as_bytes;
using test::as_string;
using test::decode_bytewise;
using test::decode_split;
using test::expect_same;
using test::GuardPage;
using test::Outcome;

std::string header(PrefixKind kind, std::uint32_t len) {
  std::byte h[kMaxHeaderSize];
  const Result<std::size_t> n = encode_header(kind, len, h);
  EXPECT_TRUE(n.ok());
  return as_string(std::span<const std::byte>(h, n.value()));
}

std::string encode_stream(PrefixKind kind, const std::vector<std::string>& frames) {
  std::string out;
  for (const std::string& f : frames) {
    out += header(kind, static_cast<std::uint32_t>(f.size()));
    out += f;
  }
  return out;
}

std::string hex_bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) {
    s.push_back(static_cast<char>(b));
  }
  return s;
}

// A decoder together with assembly storage of exactly max bytes.
struct Rig {
  explicit Rig(PrefixKind kind, std::uint32_t max = 1024)
      : storage(max), dec(LengthPrefixConfig{kind, max}) {
    EXPECT_TRUE(dec.set_assembly(storage).ok());
  }
  std::vector<std::byte> storage;
  LengthPrefixDecoder dec;
};

// Varied sizes: empty, one byte, around the 1- and 2-byte varint boundaries.
const std::vector<std::string> kFrames = {
    "",    "a", "hello", std::string(127, 'x'), "", std::string(128, 'y'), std::string(300, 'z'),
    "tail"};
// Short enough for every pair of split points.
const std::vector<std::string> kSmallFrames = {"ab", "", "cde", std::string(20, 'q'), "f"};

class LengthPrefixTest : public ::testing::TestWithParam<PrefixKind> {
 protected:
  PrefixKind kind() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Kinds, LengthPrefixTest,
                         ::testing::Values(PrefixKind::u32_be, PrefixKind::varint),
                         [](const auto& param_info) {
                           return param_info.param == PrefixKind::u32_be ? "u32" : "varint";
                         });

TEST_P(LengthPrefixTest, OneFeedViewsEveryFrameInPlace) {
  const std::string stream = encode_stream(kind(), kFrames);
  Rig rig(kind());
  const Outcome out = decode_split(rig.dec, as_bytes(stream), {});
  EXPECT_EQ(out.frames, kFrames);
  EXPECT_FALSE(out.error);
  EXPECT_FALSE(out.finish_error);
  EXPECT_EQ(out.assembled, 0u) << "contiguous frames must not be copied";
  EXPECT_EQ(out.in_place, 6u);
}

TEST_P(LengthPrefixTest, FrameViewPointsIntoInput) {
  const std::string stream = encode_stream(kind(), {"abc", "defg"});
  Rig rig(kind());
  std::span<const std::byte> in = as_bytes(stream);
  Decoded d = rig.dec.feed(in);
  ASSERT_EQ(d.state, DecodeState::ready);
  const std::size_t h = header_size(kind(), 3);
  EXPECT_EQ(d.consumed, h + 3);
  EXPECT_EQ(rig.dec.frame().data(), in.data() + h);
  EXPECT_EQ(rig.dec.frame().size(), 3u);
  in = in.subspan(d.consumed);
  d = rig.dec.feed(in);
  ASSERT_EQ(d.state, DecodeState::ready);
  EXPECT_EQ(rig.dec.frame().data(), in.data() + header_size(kind(), 4));
  EXPECT_EQ(d.consumed, in.size());
}

TEST_P(LengthPrefixTest, SplitFrameIsAssembledInStorage) {
  const std::string stream = encode_stream(kind(), {"abcdef"});
  Rig rig(kind());
  const std::span<const std::byte> in = as_bytes(stream);
  const std::size_t cut = in.size() - 2;
  Decoded d = rig.dec.feed(in.first(cut));
  EXPECT_EQ(d.state, DecodeState::need_more);
  EXPECT_EQ(d.consumed, cut);
  EXPECT_TRUE(rig.dec.mid_frame());
  d = rig.dec.feed(in.subspan(cut));
  ASSERT_EQ(d.state, DecodeState::ready);
  EXPECT_EQ(d.consumed, 2u);
  EXPECT_EQ(rig.dec.frame().data(), rig.storage.data());
  EXPECT_EQ(as_string(rig.dec.frame()), "abcdef");
}

TEST_P(LengthPrefixTest, PayloadWholeInSecondFeedIsNotCopied) {
  // The prefix came in one read, the payload whole in the next: still zero copy.
  const std::string stream = encode_stream(kind(), {"payload"});
  Rig rig(kind());
  const std::span<const std::byte> in = as_bytes(stream);
  const std::size_t h = header_size(kind(), 7);
  EXPECT_EQ(rig.dec.feed(in.first(h)).state, DecodeState::need_more);
  const Decoded d = rig.dec.feed(in.subspan(h));
  ASSERT_EQ(d.state, DecodeState::ready);
  EXPECT_EQ(rig.dec.frame().data(), in.data() + h);
}

TEST_P(LengthPrefixTest, EverySplitPoint) {
  const std::string stream = encode_stream(kind(), kFrames);
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    Rig rig(kind());
    const Outcome out = decode_split(rig.dec, as_bytes(stream), {cut});
    EXPECT_EQ(out.frames, kFrames) << "cut at " << cut;
    EXPECT_FALSE(out.error) << "cut at " << cut;
    EXPECT_FALSE(out.finish_error) << "cut at " << cut;
  }
}

TEST_P(LengthPrefixTest, EveryPairOfSplitPoints) {
  const std::string stream = encode_stream(kind(), kSmallFrames);
  for (std::size_t a = 0; a <= stream.size(); ++a) {
    for (std::size_t b = a; b <= stream.size(); ++b) {
      Rig rig(kind());
      const Outcome out = decode_split(rig.dec, as_bytes(stream), {a, b});
      ASSERT_EQ(out.frames, kSmallFrames) << "cuts at " << a << ", " << b;
      ASSERT_FALSE(out.finish_error);
    }
  }
}

TEST_P(LengthPrefixTest, OneByteAtATime) {
  const std::string stream = encode_stream(kind(), kFrames);
  Rig rig(kind());
  const Outcome out = decode_bytewise(rig.dec, as_bytes(stream));
  EXPECT_EQ(out.frames, kFrames);
  EXPECT_FALSE(out.finish_error);
  // A one-byte frame fits in the read that carries it; every longer one is assembled.
  EXPECT_EQ(out.in_place, 1u);
  EXPECT_EQ(out.assembled, 5u);
}

TEST_P(LengthPrefixTest, EverySplitPointAtGuardPage) {
  const std::string stream = encode_stream(kind(), kFrames);
  GuardPage guard(stream.size());
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    Rig rig(kind());
    const Outcome out = decode_split(rig.dec, as_bytes(stream), {cut}, &guard);
    ASSERT_EQ(out.frames, kFrames) << "cut at " << cut;
  }
}

TEST_P(LengthPrefixTest, OneByteAtATimeAtGuardPage) {
  const std::string stream = encode_stream(kind(), kFrames);
  GuardPage guard;
  Rig rig(kind());
  const Outcome out = decode_bytewise(rig.dec, as_bytes(stream), &guard);
  EXPECT_EQ(out.frames, kFrames);
  EXPECT_FALSE(out.finish_error);
}

TEST_P(LengthPrefixTest, PartialPrefixEndingAtGuardPage) {
  // Every proper prefix of a header, alone at the guard page: the fast paths must not
  // peek at bytes that are not there.
  const std::string h = header(kind(), 200);
  for (std::size_t len = 1; len < h.size(); ++len) {
    GuardPage guard;
    Rig rig(kind());
    const Decoded d = rig.dec.feed(guard.place(as_bytes(h).first(len)));
    EXPECT_EQ(d.state, DecodeState::need_more);
    EXPECT_EQ(d.consumed, len);
  }
}

TEST_P(LengthPrefixTest, ManyFramesPerFeed) {
  std::vector<std::string> frames;
  frames.reserve(10000);
  for (int i = 0; i < 10000; ++i) {
    frames.push_back(
        std::string(static_cast<std::size_t>(i % 40), static_cast<char>('a' + i % 26)));
  }
  const std::string stream = encode_stream(kind(), frames);
  Rig rig(kind());
  std::span<const std::byte> in = as_bytes(stream);
  std::size_t i = 0;
  while (!in.empty()) {
    const Decoded d = rig.dec.feed(in);
    ASSERT_EQ(d.state, DecodeState::ready) << "frame " << i;
    ASSERT_EQ(d.consumed,
              header_size(kind(), static_cast<std::uint32_t>(frames[i].size())) + frames[i].size());
    ASSERT_EQ(as_string(rig.dec.frame()), frames[i]);
    in = in.subspan(d.consumed);
    ++i;
  }
  EXPECT_EQ(i, frames.size());
}

TEST_P(LengthPrefixTest, EmptyFeedNeedsMore) {
  Rig rig(kind());
  const Decoded d = rig.dec.feed({});
  EXPECT_EQ(d.state, DecodeState::need_more);
  EXPECT_EQ(d.consumed, 0u);
  EXPECT_FALSE(rig.dec.mid_frame());
  EXPECT_TRUE(rig.dec.finish().ok());
}

TEST_P(LengthPrefixTest, FrameOfExactlyMaxSizeIsAccepted) {
  constexpr std::uint32_t kMax = 100;
  const std::string payload(kMax, 'm');
  const std::string stream = encode_stream(kind(), {payload, "x"});
  // Assembly storage of exactly kMax bytes ending at a guard page: a write past the
  // limit would fault.
  GuardPage storage(kMax);
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    LengthPrefixDecoder dec({kind(), kMax});
    ASSERT_TRUE(dec.set_assembly(storage.tail(kMax)).ok());
    const Outcome out = decode_split(dec, as_bytes(stream), {cut});
    ASSERT_EQ(out.frames, (std::vector<std::string>{payload, "x"})) << "cut at " << cut;
  }
}

TEST_P(LengthPrefixTest, OversizePrefixRejectedBeforeBuffering) {
  constexpr std::uint32_t kMax = 100;
  const std::string h = header(kind(), kMax + 1);
  const std::string stream = h + std::string(kMax + 1, 'o');
  Rig rig(kind(), kMax);
  std::fill(rig.storage.begin(), rig.storage.end(), std::byte{0x5a});
  const Decoded d = rig.dec.feed(as_bytes(stream));
  EXPECT_EQ(d.state, DecodeState::error);
  EXPECT_EQ(d.consumed, h.size()) << "the error is on the prefix's last byte";
  EXPECT_EQ(rig.dec.error(), frame_errc::oversize);
  EXPECT_TRUE(std::all_of(rig.storage.begin(), rig.storage.end(), [](std::byte b) {
    return b == std::byte{0x5a};
  })) << "nothing may be buffered for an oversize frame";
  EXPECT_FALSE(rig.dec.mid_frame());
}

TEST_P(LengthPrefixTest, OversizeOffsetIsIndependentOfSplits) {
  constexpr std::uint32_t kMax = 50;
  const std::string stream =
      encode_stream(kind(), {"ok", std::string(10, 'k')}) + header(kind(), 4000) + "junk";
  const std::size_t want_offset = stream.size() - 4;
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    Rig rig(kind(), kMax);
    const Outcome out = decode_split(rig.dec, as_bytes(stream), {cut});
    EXPECT_EQ(out.frames, (std::vector<std::string>{"ok", std::string(10, 'k')}));
    EXPECT_EQ(out.error, frame_errc::oversize) << "cut at " << cut;
    EXPECT_EQ(out.error_offset, want_offset) << "cut at " << cut;
  }
  Rig rig(kind(), kMax);
  const Outcome out = decode_bytewise(rig.dec, as_bytes(stream));
  EXPECT_EQ(out.error, frame_errc::oversize);
  EXPECT_EQ(out.error_offset, want_offset);
}

TEST_P(LengthPrefixTest, TruncatedAtFinish) {
  const std::string stream = encode_stream(kind(), {"hello", "world!"});
  // Every end point: only the frame boundaries are clean.
  const std::size_t first_end = header_size(kind(), 5) + 5;
  for (std::size_t end = 0; end <= stream.size(); ++end) {
    Rig rig(kind());
    const Outcome out = decode_split(rig.dec, as_bytes(stream).first(end), {});
    const bool clean = end == 0 || end == first_end || end == stream.size();
    if (clean) {
      EXPECT_FALSE(out.finish_error) << "end " << end;
    } else {
      EXPECT_EQ(out.finish_error, frame_errc::truncated) << "end " << end;
      // truncated is sticky like any other error.
      EXPECT_EQ(rig.dec.feed(as_bytes("x")).state, DecodeState::error);
      EXPECT_EQ(rig.dec.error(), frame_errc::truncated);
    }
  }
}

TEST_P(LengthPrefixTest, ErrorsAreStickyUntilReset) {
  constexpr std::uint32_t kMax = 10;
  Rig rig(kind(), kMax);
  const std::string bad = header(kind(), kMax + 1);
  ASSERT_EQ(rig.dec.feed(as_bytes(bad)).state, DecodeState::error);
  const std::string good = encode_stream(kind(), {"fine"});
  for (int i = 0; i < 3; ++i) {
    const Decoded d = rig.dec.feed(as_bytes(good));
    EXPECT_EQ(d.state, DecodeState::error);
    EXPECT_EQ(d.consumed, 0u);
    EXPECT_TRUE(rig.dec.frame().empty());
  }
  EXPECT_EQ(rig.dec.error(), frame_errc::oversize);
  EXPECT_EQ(rig.dec.finish().error(), frame_errc::oversize);
  rig.dec.reset();
  EXPECT_FALSE(rig.dec.error());
  const Decoded d = rig.dec.feed(as_bytes(good));
  ASSERT_EQ(d.state, DecodeState::ready);
  EXPECT_EQ(as_string(rig.dec.frame()), "fine");
  EXPECT_TRUE(rig.dec.finish().ok());
}

TEST_P(LengthPrefixTest, ResetDropsPartialFrame) {
  Rig rig(kind());
  const std::string stream = encode_stream(kind(), {"abcdef"});
  ASSERT_EQ(rig.dec.feed(as_bytes(stream).first(3)).state, DecodeState::need_more);
  EXPECT_TRUE(rig.dec.mid_frame());
  rig.dec.reset();
  EXPECT_FALSE(rig.dec.mid_frame());
  const Outcome out = decode_split(rig.dec, as_bytes(stream), {});
  EXPECT_EQ(out.frames, (std::vector<std::string>{"abcdef"}));
}

TEST_P(LengthPrefixTest, WithoutAssemblyWholeFramesStillDecode) {
  LengthPrefixDecoder dec({kind(), 1024});
  const std::string stream = encode_stream(kind(), {"one", "two"});
  const Outcome out = decode_split(dec, as_bytes(stream), {});
  EXPECT_EQ(out.frames, (std::vector<std::string>{"one", "two"}));
}

TEST_P(LengthPrefixTest, WithoutAssemblySplitFrameIsConfigurationError) {
  LengthPrefixDecoder dec({kind(), 1024});
  const std::string stream = encode_stream(kind(), {"abcdef"});
  const std::size_t h = header_size(kind(), 6);
  const Decoded d = dec.feed(as_bytes(stream).first(h + 2));
  EXPECT_EQ(d.state, DecodeState::error);
  EXPECT_EQ(d.consumed, h) << "the prefix was consumed, the payload was not";
  EXPECT_EQ(dec.error(), frame_errc::no_assembly);
}

TEST_P(LengthPrefixTest, SetAssemblyRejectsSmallStorage) {
  LengthPrefixDecoder dec({kind(), 64});
  std::vector<std::byte> small(63);
  std::vector<std::byte> exact(64);
  EXPECT_EQ(dec.set_assembly(small).error(), frame_errc::buffer_too_small);
  EXPECT_EQ(dec.set_assembly({}).error(), frame_errc::buffer_too_small);
  // The failed call left the decoder without storage.
  const std::string stream = encode_stream(kind(), {"abc"});
  EXPECT_EQ(dec.feed(as_bytes(stream).first(2 + header_size(kind(), 3) - 1)).state,
            DecodeState::error);
  EXPECT_EQ(dec.error(), frame_errc::no_assembly);
  dec.reset();
  EXPECT_TRUE(dec.set_assembly(exact).ok());
  EXPECT_EQ(decode_split(dec, as_bytes(stream), {2}).frames, (std::vector<std::string>{"abc"}));
}

TEST_P(LengthPrefixTest, MaxFrameSizeZeroAllowsOnlyEmptyFrames) {
  LengthPrefixDecoder dec({kind(), 0});
  EXPECT_TRUE(dec.set_assembly({}).ok());
  const std::string stream = encode_stream(kind(), {"", "", "x"});
  const Outcome out = decode_bytewise(dec, as_bytes(stream));
  EXPECT_EQ(out.frames, (std::vector<std::string>{"", ""}));
  EXPECT_EQ(out.error, frame_errc::oversize);
}

TEST_P(LengthPrefixTest, RandomFramesRandomReads) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> frames;
    const int count = static_cast<int>(rng() % 30);
    for (int i = 0; i < count; ++i) {
      // Mostly small, sometimes up to the limit.
      const std::size_t len = rng() % 8 == 0 ? rng() % 1025 : rng() % 20;
      std::string f(len, '\0');
      for (char& c : f) {
        c = static_cast<char>(rng());
      }
      frames.push_back(std::move(f));
    }
    const std::string stream = encode_stream(kind(), frames);
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0; at < stream.size(); at += 1 + rng() % 64) {
      cuts.push_back(at);
    }
    Rig rig(kind(), 1024);
    const Outcome out = decode_split(rig.dec, as_bytes(stream), cuts);
    ASSERT_EQ(out.frames, frames) << "round " << round;
    ASSERT_FALSE(out.error);
    ASSERT_FALSE(out.finish_error);
  }
}

// ---- prefix-specific cases -------------------------------------------------------------

// A prefix value is exact when max = value is accepted and max = value - 1 is oversize.
// Only the prefix is fed, so no assembly (or 4 GiB of it) is needed.
void expect_prefix_value(PrefixKind kind, const std::string& prefix, std::uint32_t value) {
  {
    LengthPrefixDecoder dec({kind, value});
    const Decoded d = dec.feed(as_bytes(prefix));
    EXPECT_EQ(d.state, value == 0 ? DecodeState::ready : DecodeState::need_more) << value;
    EXPECT_EQ(d.consumed, prefix.size());
  }
  if (value != 0) {
    LengthPrefixDecoder dec({kind, value - 1});
    const Decoded d = dec.feed(as_bytes(prefix));
    EXPECT_EQ(d.state, DecodeState::error) << value;
    EXPECT_EQ(dec.error(), frame_errc::oversize);
  }
}

TEST(LengthPrefixU32, PrefixValuesAreBigEndian) {
  expect_prefix_value(PrefixKind::u32_be, hex_bytes({0, 0, 0, 0}), 0);
  expect_prefix_value(PrefixKind::u32_be, hex_bytes({0, 0, 1, 0x2c}), 300);
  expect_prefix_value(PrefixKind::u32_be, hex_bytes({0x01, 0x02, 0x03, 0x04}), 0x01020304);
  expect_prefix_value(PrefixKind::u32_be, hex_bytes({0xff, 0xff, 0xff, 0xff}), 0xffffffff);
}

TEST(LengthPrefixVarint, PrefixValues) {
  const std::uint32_t values[] = {0,         1,          127,        128,       300,
                                  16383,     16384,      2097151,    2097152,   268435455,
                                  268435456, 0x7fffffff, 0xfffffffe, 0xffffffff};
  for (std::uint32_t v : values) {
    expect_prefix_value(PrefixKind::varint, header(PrefixKind::varint, v), v);
  }
  expect_prefix_value(PrefixKind::varint, hex_bytes({0xff, 0xff, 0xff, 0xff, 0x0f}), 0xffffffff);
}

TEST(LengthPrefixVarint, NonMinimalEncodingsAreAccepted) {
  expect_prefix_value(PrefixKind::varint, hex_bytes({0x80, 0x00}), 0);
  expect_prefix_value(PrefixKind::varint, hex_bytes({0x81, 0x80, 0x80, 0x80, 0x00}), 1);
  expect_prefix_value(PrefixKind::varint, hex_bytes({0xac, 0x82, 0x80, 0x00}), 300);
}

TEST(LengthPrefixVarint, SixthByteIsBadVarint) {
  const std::string stream = hex_bytes({0x80, 0x80, 0x80, 0x80, 0x80, 0x00});
  LengthPrefixDecoder dec({PrefixKind::varint, 1024});
  const Decoded d = dec.feed(as_bytes(stream));
  EXPECT_EQ(d.state, DecodeState::error);
  EXPECT_EQ(d.consumed, 5u) << "the fifth byte (continuation bit set) is the offender";
  EXPECT_EQ(dec.error(), frame_errc::bad_varint);
}

TEST(LengthPrefixVarint, ValueAbove32BitsIsBadVarint) {
  for (int last : {0x10, 0x1f, 0x70, 0x7f, 0x8f, 0xff}) {
    const std::string stream = hex_bytes({0xff, 0xff, 0xff, 0xff, last, 0x00});
    LengthPrefixDecoder dec({PrefixKind::varint, std::numeric_limits<std::uint32_t>::max()});
    const Decoded d = dec.feed(as_bytes(stream));
    EXPECT_EQ(d.state, DecodeState::error) << last;
    EXPECT_EQ(d.consumed, 5u);
    EXPECT_EQ(dec.error(), frame_errc::bad_varint) << last;
  }
}

TEST(LengthPrefixVarint, BadVarintOffsetIsIndependentOfSplits) {
  const std::string stream = encode_stream(PrefixKind::varint, {"ok"}) +
                             hex_bytes({0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x02});
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    Rig rig(PrefixKind::varint);
    const Outcome out = decode_split(rig.dec, as_bytes(stream), {cut});
    EXPECT_EQ(out.frames, (std::vector<std::string>{"ok"}));
    EXPECT_EQ(out.error, frame_errc::bad_varint);
    EXPECT_EQ(out.error_offset, 3u + 5u) << "cut at " << cut;
  }
  Rig rig(PrefixKind::varint);
  GuardPage guard;
  const Outcome out = decode_bytewise(rig.dec, as_bytes(stream), &guard);
  EXPECT_EQ(out.error, frame_errc::bad_varint);
  EXPECT_EQ(out.error_offset, 8u);
}

TEST(LengthPrefixVarint, OversizeWinsOverLaterBytes) {
  // A well-formed 5-byte prefix above the limit is oversize, not bad_varint.
  LengthPrefixDecoder dec({PrefixKind::varint, 1000});
  const Decoded d = dec.feed(as_bytes(hex_bytes({0xff, 0xff, 0xff, 0xff, 0x0f})));
  EXPECT_EQ(d.state, DecodeState::error);
  EXPECT_EQ(d.consumed, 5u);
  EXPECT_EQ(dec.error(), frame_errc::oversize);
}

TEST(LengthPrefixConfigDefaults, SmallBoardDefaults) {
  const LengthPrefixConfig config;
  EXPECT_EQ(config.prefix, PrefixKind::u32_be);
  EXPECT_EQ(config.max_frame_size, 64u * 1024u);
  LengthPrefixDecoder dec;
  EXPECT_EQ(dec.max_frame_size(), 64u * 1024u);
}

}  // namespace
}  // namespace weft::frame
