// Frame header encoders and the weft.frame error category.
#include <weft/frame/encode.h>
#include <weft/frame/error.h>
#include <weft/frame/length_prefix.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "decode_driver.h"

namespace weft::frame {
namespace {

using test::as_bytes;
using test::as_string;

std::vector<int> ints(std::span<const std::byte> b) {
  std::vector<int> v;
  for (std::byte x : b) {
    v.push_back(std::to_integer<int>(x));
  }
  return v;
}

// The encoders are usable in constant expressions.
constexpr std::array<std::byte, 4> u32_of(std::uint32_t v) {
  std::array<std::byte, 4> out{};
  encode_u32_header(out, v);
  return out;
}
static_assert(u32_of(0x01020304)[0] == std::byte{1} && u32_of(0x01020304)[3] == std::byte{4});
static_assert(varint_size(0) == 1 && varint_size(127) == 1 && varint_size(128) == 2 &&
              varint_size(0xffffffff) == kMaxVarintSize);
static_assert(header_size(PrefixKind::u32_be, 0) == 4 && header_size(PrefixKind::varint, 300) == 2);

TEST(EncodeU32, BigEndian) {
  std::array<std::byte, 4> out{};
  encode_u32_header(out, 300);
  EXPECT_EQ(ints(out), (std::vector<int>{0, 0, 1, 0x2c}));
  encode_u32_header(out, 0xdeadbeef);
  EXPECT_EQ(ints(out), (std::vector<int>{0xde, 0xad, 0xbe, 0xef}));
}

TEST(EncodeVarint, KnownEncodings) {
  struct Case {
    std::uint32_t value;
    std::vector<int> bytes;
  };
  const Case cases[] = {
      {0, {0x00}},
      {1, {0x01}},
      {127, {0x7f}},
      {128, {0x80, 0x01}},
      {300, {0xac, 0x02}},
      {16383, {0xff, 0x7f}},
      {16384, {0x80, 0x80, 0x01}},
      {2097151, {0xff, 0xff, 0x7f}},
      {2097152, {0x80, 0x80, 0x80, 0x01}},
      {268435455, {0xff, 0xff, 0xff, 0x7f}},
      {268435456, {0x80, 0x80, 0x80, 0x80, 0x01}},
      {0xffffffff, {0xff, 0xff, 0xff, 0xff, 0x0f}},
  };
  for (const Case& c : cases) {
    std::array<std::byte, kMaxVarintSize> out{};
    const std::size_t n = encode_varint(out, c.value);
    EXPECT_EQ(n, c.bytes.size()) << c.value;
    EXPECT_EQ(n, varint_size(c.value));
    EXPECT_EQ(ints(std::span<const std::byte>(out.data(), n)), c.bytes) << c.value;
  }
}

TEST(EncodeHeader, ChecksRoom) {
  std::array<std::byte, 5> buf{};
  EXPECT_EQ(encode_header(PrefixKind::u32_be, 7, std::span(buf).first(3)).error(),
            frame_errc::buffer_too_small);
  EXPECT_EQ(encode_header(PrefixKind::u32_be, 7, std::span(buf).first(4)).value(), 4u);
  EXPECT_EQ(encode_header(PrefixKind::varint, 300, std::span(buf).first(1)).error(),
            frame_errc::buffer_too_small);
  // Exactly the room the value needs is enough (no 5-byte scratch demanded of the caller).
  std::array<std::byte, 2> two{};
  EXPECT_EQ(encode_header(PrefixKind::varint, 300, two).value(), 2u);
  EXPECT_EQ(ints(two), (std::vector<int>{0xac, 0x02}));
}

TEST(EncodeFrame, RoundTripsThroughTheDecoder) {
  for (PrefixKind kind : {PrefixKind::u32_be, PrefixKind::varint}) {
    const std::string payload(200, 'p');
    std::vector<std::byte> out(300);
    const Result<std::size_t> n = encode_frame(kind, as_bytes(payload), out);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(n.value(), header_size(kind, 200) + 200);
    LengthPrefixDecoder dec({kind, 1024});
    const Decoded d = dec.feed(std::span<const std::byte>(out.data(), n.value()));
    ASSERT_EQ(d.state, DecodeState::ready);
    EXPECT_EQ(d.consumed, n.value());
    EXPECT_EQ(as_string(dec.frame()), payload);
  }
}

TEST(EncodeFrame, ChecksRoomForTheWholeFrame) {
  const std::string payload(10, 'p');
  std::vector<std::byte> out(13, std::byte{0x77});
  EXPECT_EQ(encode_frame(PrefixKind::u32_be, as_bytes(payload), out).error(),
            frame_errc::buffer_too_small);
  for (std::byte b : out) {
    EXPECT_EQ(b, std::byte{0x77}) << "nothing is written on failure";
  }
  EXPECT_EQ(encode_frame(PrefixKind::varint, as_bytes(payload), out).value(), 11u);
  EXPECT_EQ(encode_frame(PrefixKind::varint, {}, std::span(out).first(1)).value(), 1u);
}

TEST(FrameError, Category) {
  const std::error_code ec = frame_errc::oversize;
  EXPECT_STREQ(ec.category().name(), "weft.frame");
  EXPECT_EQ(&ec.category(), &frame_category());
  EXPECT_EQ(ec, frame_errc::oversize);
  EXPECT_NE(ec, frame_errc::truncated);
  EXPECT_EQ(ec.value(), 1);
  EXPECT_FALSE(ec.message().empty());
  EXPECT_NE(ec, std::error_code(1, std::generic_category()));
}

TEST(FrameError, EveryCodeHasText) {
  for (frame_errc e : {frame_errc::oversize, frame_errc::bad_varint, frame_errc::truncated,
                       frame_errc::no_assembly, frame_errc::buffer_too_small}) {
    EXPECT_STRNE(to_string(e), "unknown weft.frame error") << static_cast<int>(e);
    EXPECT_EQ(make_error_code(e).message(), to_string(e));
  }
  EXPECT_STREQ(to_string(static_cast<frame_errc>(999)), "unknown weft.frame error");
}

TEST(FrameError, WorksWithResult) {
  const Result<int> r = weft::fail(frame_errc::bad_varint);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error(), frame_errc::bad_varint);
}

}  // namespace
}  // namespace weft::frame
