// DelimiterDecoder: LF and CRLF modes fed at every split point, byte by byte, at a guard
// page, many lines per read; the line limit (exactly at, one past, no delimiter at all),
// a '\r' split from its '\n', truncation, sticky errors, and the zero-copy promise.
#include <weft/frame/delimiter.h>

#include <gtest/gtest.h>

#include <cstdint>
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
using test::GuardPage;
using test::Outcome;

using Lines = std::vector<std::string>;

struct Rig {
  explicit Rig(bool crlf, std::uint32_t max = 256, char delim = '\n')
      : storage(max), dec(DelimiterConfig{std::byte(delim), crlf, max}) {
    EXPECT_TRUE(dec.set_assembly(storage).ok());
  }
  std::vector<std::byte> storage;
  DelimiterDecoder dec;
};

std::string join(const Lines& lines, bool crlf) {
  std::string out;
  for (const std::string& l : lines) {
    out += l;
    out += crlf ? "\r\n" : "\n";
  }
  return out;
}

Outcome decode_all(bool crlf, const std::string& stream, std::uint32_t max = 256) {
  Rig rig(crlf, max);
  return decode_split(rig.dec, as_bytes(stream), {});
}

// Lines with '\r' in awkward places: in CRLF mode only the one before '\n' is stripped.
const Lines kLines = {"GET / HTTP/1.1", "", "a\rb", "x\r", "\r", std::string(100, 'l'), "", "end"};
const Lines kSmallLines = {"ab", "", "c\r", "d\re", "f"};

class DelimiterTest : public ::testing::TestWithParam<bool> {
 protected:
  bool crlf() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Modes, DelimiterTest, ::testing::Values(false, true),
                         [](const auto& param_info) { return param_info.param ? "crlf" : "lf"; });

TEST_P(DelimiterTest, OneFeedViewsEveryLineInPlace) {
  const std::string stream = join(kLines, crlf());
  const Outcome out = decode_all(crlf(), stream);
  EXPECT_EQ(out.frames, kLines);
  EXPECT_FALSE(out.error);
  EXPECT_FALSE(out.finish_error);
  EXPECT_EQ(out.assembled, 0u);
  EXPECT_EQ(out.in_place, 6u);
}

TEST_P(DelimiterTest, EverySplitPoint) {
  const std::string stream = join(kLines, crlf());
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    Rig rig(crlf());
    const Outcome out = decode_split(rig.dec, as_bytes(stream), {cut});
    EXPECT_EQ(out.frames, kLines) << "cut at " << cut;
    EXPECT_FALSE(out.error) << "cut at " << cut;
    EXPECT_FALSE(out.finish_error) << "cut at " << cut;
  }
}

TEST_P(DelimiterTest, EveryPairOfSplitPoints) {
  const std::string stream = join(kSmallLines, crlf());
  for (std::size_t a = 0; a <= stream.size(); ++a) {
    for (std::size_t b = a; b <= stream.size(); ++b) {
      Rig rig(crlf());
      const Outcome out = decode_split(rig.dec, as_bytes(stream), {a, b});
      ASSERT_EQ(out.frames, kSmallLines) << "cuts at " << a << ", " << b;
      ASSERT_FALSE(out.finish_error);
    }
  }
}

TEST_P(DelimiterTest, OneByteAtATime) {
  const std::string stream = join(kLines, crlf());
  Rig rig(crlf());
  const Outcome out = decode_bytewise(rig.dec, as_bytes(stream));
  EXPECT_EQ(out.frames, kLines);
  EXPECT_FALSE(out.finish_error);
  EXPECT_EQ(out.in_place, 0u) << "no line fits in one byte with its delimiter";
}

TEST_P(DelimiterTest, EverySplitPointAtGuardPage) {
  const std::string stream = join(kLines, crlf());
  GuardPage guard(stream.size());
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    Rig rig(crlf());
    const Outcome out = decode_split(rig.dec, as_bytes(stream), {cut}, &guard);
    ASSERT_EQ(out.frames, kLines) << "cut at " << cut;
  }
}

TEST_P(DelimiterTest, OneByteAtATimeAtGuardPage) {
  const std::string stream = join(kLines, crlf());
  GuardPage guard;
  Rig rig(crlf());
  const Outcome out = decode_bytewise(rig.dec, as_bytes(stream), &guard);
  EXPECT_EQ(out.frames, kLines);
}

TEST_P(DelimiterTest, PartialLinesEndingAtGuardPage) {
  // A line without its delimiter, every length up to past the limit, at the guard page:
  // the scan must stop at the end of the input.
  constexpr std::uint32_t kMax = 40;
  for (std::size_t len = 0; len <= kMax + 3; ++len) {
    GuardPage guard;
    Rig rig(crlf(), kMax);
    const std::string line(len, 'p');
    const Decoded d = rig.dec.feed(guard.place(as_bytes(line)));
    if (len <= kMax) {
      EXPECT_EQ(d.state, DecodeState::need_more) << len;
      EXPECT_EQ(d.consumed, len);
    } else {
      EXPECT_EQ(d.state, DecodeState::error) << len;
      EXPECT_EQ(d.consumed, kMax + 1u);
    }
  }
}

TEST_P(DelimiterTest, ManyLinesPerFeed) {
  Lines lines;
  lines.reserve(10000);
  for (int i = 0; i < 10000; ++i) {
    lines.push_back(std::string(static_cast<std::size_t>(i % 50), static_cast<char>('a' + i % 26)));
  }
  const std::string stream = join(lines, crlf());
  Rig rig(crlf());
  std::span<const std::byte> in = as_bytes(stream);
  std::size_t i = 0;
  while (!in.empty()) {
    const Decoded d = rig.dec.feed(in);
    ASSERT_EQ(d.state, DecodeState::ready) << "line " << i;
    ASSERT_EQ(d.consumed, lines[i].size() + (crlf() ? 2 : 1));
    ASSERT_EQ(as_string(rig.dec.frame()), lines[i]);
    ASSERT_EQ(rig.dec.frame().data(), in.data()) << "in place";
    in = in.subspan(d.consumed);
    ++i;
  }
  EXPECT_EQ(i, lines.size());
}

TEST_P(DelimiterTest, LineOfExactlyMaxSizeIsAccepted) {
  constexpr std::uint32_t kMax = 32;
  const Lines lines = {std::string(kMax, 'm'), "x", std::string(kMax - 1, 'n') + "\r"};
  const std::string stream = join(lines, crlf());
  // Storage of exactly kMax bytes ending at a guard page.
  GuardPage storage(kMax);
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    DelimiterDecoder dec({std::byte{'\n'}, crlf(), kMax});
    ASSERT_TRUE(dec.set_assembly(storage.tail(kMax)).ok());
    const Outcome out = decode_split(dec, as_bytes(stream), {cut});
    ASSERT_EQ(out.frames, lines) << "cut at " << cut;
    ASSERT_FALSE(out.error);
  }
  DelimiterDecoder dec({std::byte{'\n'}, crlf(), kMax});
  ASSERT_TRUE(dec.set_assembly(storage.tail(kMax)).ok());
  EXPECT_EQ(decode_bytewise(dec, as_bytes(stream)).frames, lines);
}

TEST_P(DelimiterTest, OversizeLineOffsetIsIndependentOfSplits) {
  constexpr std::uint32_t kMax = 16;
  const std::string head = join({"ok", ""}, crlf());
  // With and without a delimiter after the long line, the 17th byte is the offender.
  for (const std::string& tail :
       {std::string(40, 'L'), std::string(17, 'L') + "\n", std::string(17, 'L') + "\r\n"}) {
    const std::string stream = head + tail;
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
      Rig rig(crlf(), kMax);
      const Outcome out = decode_split(rig.dec, as_bytes(stream), {cut});
      EXPECT_EQ(out.frames, (Lines{"ok", ""}));
      EXPECT_EQ(out.error, frame_errc::oversize) << "cut at " << cut;
      EXPECT_EQ(out.error_offset, head.size() + kMax + 1) << "cut at " << cut;
    }
    Rig rig(crlf(), kMax);
    const Outcome out = decode_bytewise(rig.dec, as_bytes(stream));
    EXPECT_EQ(out.error, frame_errc::oversize);
    EXPECT_EQ(out.error_offset, head.size() + kMax + 1);
  }
}

TEST_P(DelimiterTest, HugeLineWithoutDelimiterStopsAtTheLimit) {
  constexpr std::uint32_t kMax = 100;
  const std::string flood(1 << 20, 'f');
  Rig rig(crlf(), kMax);
  const Decoded d = rig.dec.feed(as_bytes(flood));
  EXPECT_EQ(d.state, DecodeState::error);
  EXPECT_EQ(d.consumed, kMax + 1u);
  EXPECT_EQ(rig.dec.error(), frame_errc::oversize);
}

TEST_P(DelimiterTest, TruncatedAtFinish) {
  for (const std::string& partial :
       {std::string("abc"), std::string("\r"), std::string("ab\r"), std::string("x\r\r")}) {
    Rig rig(crlf());
    const Outcome out = decode_split(rig.dec, as_bytes("done\n" + partial), {});
    EXPECT_EQ(out.frames, (Lines{"done"}));
    EXPECT_EQ(out.finish_error, frame_errc::truncated) << partial;
    EXPECT_EQ(rig.dec.feed(as_bytes("\n")).state, DecodeState::error);
  }
  Rig rig(crlf());
  EXPECT_TRUE(rig.dec.finish().ok()) << "nothing fed is a clean end";
  const Decoded d = rig.dec.feed(as_bytes("line\n"));
  ASSERT_EQ(d.state, DecodeState::ready);
  EXPECT_TRUE(rig.dec.finish().ok()) << "a delivered line is a clean end";
}

TEST_P(DelimiterTest, ErrorsAreStickyUntilReset) {
  Rig rig(crlf(), 4);
  ASSERT_EQ(rig.dec.feed(as_bytes("toolong\n")).state, DecodeState::error);
  for (int i = 0; i < 3; ++i) {
    const Decoded d = rig.dec.feed(as_bytes("ok\n"));
    EXPECT_EQ(d.state, DecodeState::error);
    EXPECT_EQ(d.consumed, 0u);
  }
  EXPECT_EQ(rig.dec.finish().error(), frame_errc::oversize);
  rig.dec.reset();
  EXPECT_FALSE(rig.dec.error());
  const Decoded d = rig.dec.feed(as_bytes("ok\n"));
  ASSERT_EQ(d.state, DecodeState::ready);
  EXPECT_EQ(as_string(rig.dec.frame()), "ok");
}

TEST_P(DelimiterTest, ResetDropsPartialLine) {
  Rig rig(crlf());
  ASSERT_EQ(rig.dec.feed(as_bytes("stale\r")).state, DecodeState::need_more);
  EXPECT_TRUE(rig.dec.mid_frame());
  rig.dec.reset();
  EXPECT_FALSE(rig.dec.mid_frame());
  EXPECT_EQ(decode_split(rig.dec, as_bytes("\nfresh\n"), {}).frames, (Lines{"", "fresh"}));
}

TEST_P(DelimiterTest, WithoutAssembly) {
  DelimiterDecoder dec({std::byte{'\n'}, crlf(), 64});
  EXPECT_EQ(decode_split(dec, as_bytes("one\ntwo\n"), {}).frames, (Lines{"one", "two"}));
  const Decoded d = dec.feed(as_bytes("par"));
  EXPECT_EQ(d.state, DecodeState::error);
  EXPECT_EQ(d.consumed, 0u);
  EXPECT_EQ(dec.error(), frame_errc::no_assembly);
  std::vector<std::byte> small(63);
  EXPECT_EQ(dec.set_assembly(small).error(), frame_errc::buffer_too_small);
}

TEST_P(DelimiterTest, OtherDelimiters) {
  for (char delim : {'\0', ';', '\xff'}) {
    std::string stream = "a\nb";
    stream.push_back(delim);
    stream.push_back(delim);
    stream += "c";
    stream.push_back(delim);
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
      Rig r(crlf(), 64, delim);
      EXPECT_EQ(decode_split(r.dec, as_bytes(stream), {cut}).frames, (Lines{"a\nb", "", "c"}))
          << int(delim) << " cut " << cut;
    }
  }
}

TEST_P(DelimiterTest, RandomLinesRandomReads) {
  std::mt19937 rng(777);
  const std::string alphabet = crlf() ? "ab\r" : "ab\r\t";
  for (int round = 0; round < 300; ++round) {
    Lines lines;
    const int count = static_cast<int>(rng() % 25);
    for (int i = 0; i < count; ++i) {
      std::size_t len = rng() % 8 == 0 ? rng() % 257 : rng() % 10;
      std::string l;
      for (std::size_t k = 0; k < len; ++k) {
        l.push_back(alphabet[rng() % alphabet.size()]);
      }
      lines.push_back(std::move(l));
    }
    const std::string stream = join(lines, crlf());
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0; at < stream.size(); at += 1 + rng() % 40) {
      cuts.push_back(at);
    }
    Rig rig(crlf(), 256);
    const Outcome out = decode_split(rig.dec, as_bytes(stream), cuts);
    ASSERT_EQ(out.frames, lines) << "round " << round;
    ASSERT_FALSE(out.error);
  }
}

// ---- mode-specific cases ---------------------------------------------------------------

TEST(DelimiterLf, KeepsCarriageReturns) {
  EXPECT_EQ(decode_all(false, "a\r\n\r\nb\rc\n").frames, (Lines{"a\r", "\r", "b\rc"}));
}

TEST(DelimiterCrlf, StripsOneCarriageReturnBeforeTheDelimiter) {
  EXPECT_EQ(decode_all(true, "a\r\n\r\nb\rc\nd\r\r\n").frames, (Lines{"a", "", "b\rc", "d\r"}));
}

TEST(DelimiterCrlf, CarriageReturnSplitFromItsDelimiter) {
  // "\r" at the end of one read: held back, then stripped, kept, or kept and followed.
  struct Case {
    std::string first, second;
    Lines want;
  };
  for (const Case& c :
       {Case{"ab\r", "\nnext\n", {"ab", "next"}}, Case{"ab\r", "x\n", {"ab\rx"}},
        Case{"ab\r", "\r\n", {"ab\r"}}, Case{"\r", "\n", {""}}, Case{"\r", "\r", {}}}) {
    Rig rig(true, 16);
    const Outcome out = decode_split(rig.dec, as_bytes(c.first + c.second), {c.first.size()});
    EXPECT_EQ(out.frames, c.want) << c.first << "|" << c.second;
  }
}

TEST(DelimiterCrlf, PendingCarriageReturnAtTheLimit) {
  constexpr std::uint32_t kMax = 8;
  const std::string full(kMax, 'f');
  {  // max bytes + "\r" | "\n": the '\r' is stripped, the line fits
    Rig rig(true, kMax);
    const Outcome out = decode_split(rig.dec, as_bytes(full + "\r\n"), {kMax + 1});
    EXPECT_EQ(out.frames, (Lines{full}));
  }
  {  // max bytes + "\r" | "x": the '\r' is content, one byte too many; "x" is the offender
    Rig rig(true, kMax);
    const Outcome out = decode_split(rig.dec, as_bytes(full + "\rx\n"), {kMax + 1});
    EXPECT_EQ(out.error, frame_errc::oversize);
    EXPECT_EQ(out.error_offset, kMax + 2u);
  }
  {  // the same in one read
    Rig rig(true, kMax);
    const Outcome out = decode_split(rig.dec, as_bytes(full + "\rx\n"), {});
    EXPECT_EQ(out.error, frame_errc::oversize);
    EXPECT_EQ(out.error_offset, kMax + 2u);
  }
}

TEST(DelimiterLf, CarriageReturnCountsTowardsTheLimit) {
  constexpr std::uint32_t kMax = 8;
  Rig rig(false, kMax);
  const Outcome out = decode_split(rig.dec, as_bytes(std::string(kMax, 'f') + "\r\n"), {});
  EXPECT_EQ(out.error, frame_errc::oversize);
  EXPECT_EQ(out.error_offset, kMax + 1u);
}

TEST(DelimiterConfigDefaults, SmallBoardDefaults) {
  const DelimiterConfig config;
  EXPECT_EQ(config.delimiter, std::byte{'\n'});
  EXPECT_FALSE(config.crlf);
  EXPECT_EQ(config.max_frame_size, 8u * 1024u);
}

}  // namespace
}  // namespace weft::frame
