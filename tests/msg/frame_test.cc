// weft::msg frame parse/encode: round trips for every type, every validation error with a
// minimal bad input, the boundaries of every length rule, and — every parse below runs on a
// copy that ends at a PROT_NONE page — proof that parse() never reads past its input.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <weft/frame/length_prefix.h>
#include <weft/msg/error.h>
#include <weft/msg/frame.h>

#include "../frame/guard_page.h"

namespace weft::msg {
namespace {

using Bytes = std::vector<std::byte>;

Bytes bytes(std::initializer_list<unsigned> v) {
  Bytes out;
  for (unsigned b : v) {
    out.push_back(static_cast<std::byte>(b));
  }
  return out;
}

Bytes filled(std::size_t n, unsigned char c = 'x') {
  return Bytes(n, static_cast<std::byte>(c));
}

Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A header (after the prefix) for a hand-built frame.
Bytes header(unsigned type, unsigned flags, unsigned channel, std::uint32_t id) {
  return bytes({type, flags, channel >> 8, channel & 0xff, id >> 24, (id >> 16) & 0xff,
                (id >> 8) & 0xff, id & 0xff});
}

// parse() on a copy of `after_prefix` whose last byte is the last readable byte before a
// PROT_NONE page: one byte of over-read is a SIGSEGV in every build (and ASan sees the rest).
Result<Frame> parse_guarded(const Bytes& after_prefix) {
  static test::GuardPage guard(1 << 16);
  return parse(guard.place(after_prefix));
}

std::error_code parse_error(const Bytes& after_prefix) {
  return parse_guarded(after_prefix).error();
}

// encode() into an exact-size buffer; returns the whole frame (prefix included).
Bytes encoded(const Frame& f) {
  Bytes out(encoded_size(f));
  auto n = encode(f, out);
  EXPECT_TRUE(n.ok()) << n.error().message();
  if (!n.ok()) {
    return {};
  }
  EXPECT_EQ(n.value(), out.size());
  return out;
}

Bytes after_prefix(const Bytes& frame) {
  return {frame.begin() + kPrefixSize, frame.end()};
}

bool same(std::span<const std::byte> a, std::span<const std::byte> b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

// encode -> prefix check -> parse (guarded) -> every field equal -> re-encode identical.
void round_trip(const Frame& f) {
  const Bytes wire = encoded(f);
  ASSERT_GE(wire.size(), kPrefixSize + kHeaderSize);
  const std::uint32_t len = (std::to_integer<std::uint32_t>(wire[0]) << 24) |
                            (std::to_integer<std::uint32_t>(wire[1]) << 16) |
                            (std::to_integer<std::uint32_t>(wire[2]) << 8) |
                            std::to_integer<std::uint32_t>(wire[3]);
  EXPECT_EQ(len, wire.size() - kPrefixSize);
  auto got = parse_guarded(after_prefix(wire));
  ASSERT_TRUE(got.ok()) << got.error().message();
  const Frame& g = got.value();
  EXPECT_EQ(g.type, f.type);
  EXPECT_EQ(g.flags, f.flags);
  EXPECT_EQ(g.channel, 0);
  EXPECT_EQ(g.id, f.id);
  EXPECT_EQ(g.hello.version, f.hello.version);
  EXPECT_EQ(g.hello.max_frame, f.hello.max_frame);
  EXPECT_EQ(g.hello.max_inflight, f.hello.max_inflight);
  EXPECT_EQ(g.hello.features, f.hello.features);
  EXPECT_EQ(g.method, f.method);
  EXPECT_EQ(g.deadline_ms, f.deadline_ms);
  EXPECT_EQ(g.idempotency_key, f.idempotency_key);
  EXPECT_EQ(g.code, f.code);
  EXPECT_EQ(g.last_id, f.last_id);
  EXPECT_TRUE(same(g.topic, f.topic));
  EXPECT_TRUE(same(g.detail, f.detail));
  EXPECT_TRUE(same(g.payload, f.payload));
  EXPECT_EQ(encoded(g), wire);
}

const Bytes kTopic = bytes({'t', '/', '1'});
const Bytes kPayload = bytes({0x0a, 0x02, 'h', 'i'});
const Bytes kOpaque = bytes({1, 2, 3, 4, 5, 6, 7, 8});
const Bytes kDetail = bytes({'o', 'o', 'p', 's'});

TEST(MsgFrame, RoundTripEveryType) {
  const Hello h{1, 65536, 16, 0x0102030405060708ull};
  round_trip(make_hello(h));
  round_trip(make_hello_ack(h));
  round_trip(make_request(7, 42, 250, kPayload));
  round_trip(make_request(0xffffffff, 1, 0, {}));
  round_trip(make_request(8, 42, 0, kPayload, true, 0xdeadbeefcafef00dull));
  round_trip(make_response(7, kPayload));
  round_trip(make_response(7, {}));
  round_trip(make_error(7, ProtocolError::unknown_method, kDetail));
  round_trip(make_error(0, ProtocolError::bad_frame));
  round_trip(make_message(9, kPayload));
  round_trip(make_subscribe(kTopic));
  round_trip(make_unsubscribe(kTopic));
  round_trip(make_publish(kTopic, kPayload));
  round_trip(make_event(kTopic, {}));
  round_trip(make_ping(0, kOpaque));
  round_trip(make_pong(123, kOpaque));
  round_trip(make_goaway(41, ProtocolError::shutting_down, kDetail));
  round_trip(make_goaway(0, ProtocolError::shutting_down));
  round_trip(make_cancel(7));
}

TEST(MsgFrame, EncodedBytesAreTheSpec) {
  // docs/protocol.md §6: REQUEST id 1, method 2, no deadline, payload "hi".
  EXPECT_EQ(encoded(make_request(1, 2, 0, bytes({'h', 'i'}))),
            bytes({0, 0, 0, 18, 0x03, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 'h', 'i'}));
  EXPECT_EQ(encoded(make_cancel(5)), bytes({0, 0, 0, 8, 0x0e, 0, 0, 0, 0, 0, 0, 5}));
  static_assert(encoded_size(make_cancel(1)) == 12);
  static_assert(encoded_size(make_hello({})) == 32);
  static_assert(encoded_size(make_ping(0, {})) == 20);
}

TEST(MsgFrame, FramesAreFoundByTheU32Decoder) {
  // The prefix is weft::frame's u32_be prefix: two frames back to back come out whole.
  Bytes stream = cat(encoded(make_ping(3, kOpaque)), encoded(make_publish(kTopic, kPayload)));
  frame::LengthPrefixDecoder dec({frame::PrefixKind::u32_be, 1024});
  std::span<const std::byte> in(stream);
  std::vector<FrameType> types;
  while (!in.empty()) {
    const frame::Decoded d = dec.feed(in);
    ASSERT_EQ(d.state, frame::DecodeState::ready);
    auto f = parse(dec.frame());
    ASSERT_TRUE(f.ok());
    types.push_back(f->type);
    in = in.subspan(d.consumed);
  }
  EXPECT_EQ(types, (std::vector<FrameType>{FrameType::ping, FrameType::publish}));
}

TEST(MsgFrame, HeaderErrors) {
  // L < 8: every length from 0 to 7.
  const Bytes cancel = header(0x0e, 0, 0, 1);
  for (std::size_t n = 0; n < kHeaderSize; ++n) {
    EXPECT_EQ(parse_error(Bytes(cancel.begin(), cancel.begin() + static_cast<std::ptrdiff_t>(n))),
              msg_errc::bad_length)
        << n;
  }
  // L == 8 is the smallest frame: a CANCEL.
  EXPECT_TRUE(parse_guarded(header(0x0e, 0, 0, 1)).ok());
  EXPECT_EQ(parse_error(header(0x00, 0, 0, 0)), msg_errc::unknown_type);
  EXPECT_EQ(parse_error(header(0x0f, 0, 0, 0)), msg_errc::unknown_type);
  EXPECT_EQ(parse_error(header(0xff, 0, 0, 0)), msg_errc::unknown_type);
  // Reserved flags: every bit but IDEMPOTENT on REQUEST, and IDEMPOTENT anywhere else.
  for (unsigned bit = 1; bit < 8; ++bit) {
    EXPECT_EQ(parse_error(cat(header(0x03, 1u << bit, 0, 1), filled(8))), msg_errc::reserved_flags);
  }
  for (unsigned t = 0x01; t <= 0x0e; ++t) {
    if (t != 0x03) {
      EXPECT_EQ(parse_error(header(t, 0x01, 0, 1)), msg_errc::reserved_flags) << t;
    }
  }
  EXPECT_EQ(parse_error(cat(header(0x0b, 0, 1, 0), kOpaque)), msg_errc::bad_channel);
  EXPECT_EQ(parse_error(cat(header(0x0b, 0, 0x8000, 0), kOpaque)), msg_errc::bad_channel);
}

TEST(MsgFrame, IdRules) {
  // REQUEST, RESPONSE, CANCEL: non-zero.
  EXPECT_EQ(parse_error(cat(header(0x03, 0, 0, 0), filled(8))), msg_errc::bad_id);
  EXPECT_EQ(parse_error(header(0x04, 0, 0, 0)), msg_errc::bad_id);
  EXPECT_EQ(parse_error(header(0x0e, 0, 0, 0)), msg_errc::bad_id);
  // ERROR, PING, PONG: anything.
  EXPECT_TRUE(parse_guarded(cat(header(0x05, 0, 0, 0), bytes({0, 1, 0, 0}))).ok());
  EXPECT_TRUE(parse_guarded(cat(header(0x05, 0, 0, 9), bytes({0, 1, 0, 0}))).ok());
  EXPECT_TRUE(parse_guarded(cat(header(0x0b, 0, 0, 0), kOpaque)).ok());
  EXPECT_TRUE(parse_guarded(cat(header(0x0c, 0, 0, 0xffffffff), kOpaque)).ok());
  // Everyone else: zero.
  for (unsigned t : {0x01u, 0x02u, 0x06u, 0x07u, 0x08u, 0x09u, 0x0au, 0x0du}) {
    EXPECT_EQ(parse_error(header(t, 0, 0, 1)), msg_errc::bad_id) << t;
  }
  // encode() applies the same rules.
  Bytes out(64);
  EXPECT_EQ(encode(make_request(0, 1, 0, {}), out).error(), msg_errc::bad_id);
  EXPECT_EQ(encode(make_response(0, {}), out).error(), msg_errc::bad_id);
  EXPECT_EQ(encode(make_cancel(0), out).error(), msg_errc::bad_id);
  Frame m = make_message(1, {});
  m.id = 3;
  EXPECT_EQ(encode(m, out).error(), msg_errc::bad_id);
}

TEST(MsgFrame, BodyErrors) {
  const Bytes hello_body = bytes({0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0});
  ASSERT_TRUE(parse_guarded(cat(header(0x01, 0, 0, 0), hello_body)).ok());
  // HELLO: 19 bytes truncated, 21 bytes bad_length, reserved != 0 bad_field.
  EXPECT_EQ(
      parse_error(cat(header(0x01, 0, 0, 0), Bytes(hello_body.begin(), hello_body.end() - 1))),
      msg_errc::truncated_body);
  EXPECT_EQ(parse_error(cat(header(0x02, 0, 0, 0), cat(hello_body, bytes({0})))),
            msg_errc::bad_length);
  Bytes reserved = hello_body;
  reserved[3] = std::byte{1};
  EXPECT_EQ(parse_error(cat(header(0x01, 0, 0, 0), reserved)), msg_errc::bad_field);
  // A version this code does not speak still parses (negotiation is the caller's).
  Bytes v2 = hello_body;
  v2[1] = std::byte{2};
  auto hv2 = parse_guarded(cat(header(0x01, 0, 0, 0), v2));
  ASSERT_TRUE(hv2.ok());
  EXPECT_EQ(hv2->hello.version, 2);
  // REQUEST: 7 bytes truncated; 8 ok; IDEMPOTENT needs 16.
  EXPECT_EQ(parse_error(cat(header(0x03, 0, 0, 1), filled(7))), msg_errc::truncated_body);
  EXPECT_TRUE(parse_guarded(cat(header(0x03, 0, 0, 1), filled(8))).ok());
  EXPECT_EQ(parse_error(cat(header(0x03, 1, 0, 1), filled(15))), msg_errc::truncated_body);
  auto idem = parse_guarded(cat(header(0x03, 1, 0, 1), filled(16)));
  ASSERT_TRUE(idem.ok());
  EXPECT_EQ(idem->idempotency_key, 0x7878787878787878ull);
  EXPECT_TRUE(idem->payload.empty());
  // MESSAGE: 3 bytes truncated.
  EXPECT_EQ(parse_error(cat(header(0x06, 0, 0, 0), filled(3))), msg_errc::truncated_body);
  // ERROR: fixed 4; detail_len 257 bad_field; detail short truncated; a byte after bad_length.
  EXPECT_EQ(parse_error(cat(header(0x05, 0, 0, 0), bytes({0, 1, 0}))), msg_errc::truncated_body);
  EXPECT_EQ(parse_error(cat(header(0x05, 0, 0, 0), bytes({0, 1, 1, 1}))), msg_errc::bad_field);
  EXPECT_EQ(parse_error(cat(header(0x05, 0, 0, 0), bytes({0, 1, 0, 2, 'a'}))),
            msg_errc::truncated_body);
  EXPECT_EQ(parse_error(cat(header(0x05, 0, 0, 0), bytes({0, 1, 0, 0, 'a'}))),
            msg_errc::bad_length);
  // GOAWAY: fixed 8.
  EXPECT_EQ(parse_error(cat(header(0x0d, 0, 0, 0), filled(7, 0))), msg_errc::truncated_body);
  EXPECT_EQ(parse_error(cat(header(0x0d, 0, 0, 0), bytes({0, 0, 0, 0, 0, 8, 1, 1}))),
            msg_errc::bad_field);
  EXPECT_EQ(parse_error(cat(header(0x0d, 0, 0, 0), bytes({0, 0, 0, 0, 0, 8, 0, 0, 0}))),
            msg_errc::bad_length);
  // Topics: length field missing or short, 0, body short, bytes after.
  EXPECT_EQ(parse_error(header(0x07, 0, 0, 0)), msg_errc::truncated_body);
  EXPECT_EQ(parse_error(cat(header(0x07, 0, 0, 0), bytes({0}))), msg_errc::truncated_body);
  EXPECT_EQ(parse_error(cat(header(0x07, 0, 0, 0), bytes({0, 0}))), msg_errc::bad_field);
  EXPECT_EQ(parse_error(cat(header(0x08, 0, 0, 0), bytes({0, 2, 'a'}))), msg_errc::truncated_body);
  EXPECT_EQ(parse_error(cat(header(0x08, 0, 0, 0), bytes({0, 1, 'a', 'b'}))), msg_errc::bad_length);
  EXPECT_EQ(parse_error(cat(header(0x09, 0, 0, 0), bytes({0, 0}))), msg_errc::bad_field);
  EXPECT_EQ(parse_error(cat(header(0x0a, 0, 0, 0), bytes({0, 3, 'a'}))), msg_errc::truncated_body);
  // PING/PONG: exactly 8 (short: truncated_body, long: bad_length).
  EXPECT_EQ(parse_error(cat(header(0x0b, 0, 0, 0), filled(7))), msg_errc::truncated_body);
  EXPECT_EQ(parse_error(cat(header(0x0c, 0, 0, 0), filled(9))), msg_errc::bad_length);
  EXPECT_EQ(parse_error(header(0x0b, 0, 0, 0)), msg_errc::truncated_body);
  // CANCEL: empty.
  EXPECT_EQ(parse_error(cat(header(0x0e, 0, 0, 1), filled(1))), msg_errc::bad_length);
}

TEST(MsgFrame, TopicAndDetailBoundaries) {
  const Bytes t255 = filled(kMaxTopicSize, 't');
  const Bytes t256 = filled(kMaxTopicSize + 1, 't');
  const Bytes d256 = filled(kMaxDetailSize, 'd');
  const Bytes d257 = filled(kMaxDetailSize + 1, 'd');
  round_trip(make_subscribe(t255));
  round_trip(make_publish(t255, kPayload));
  round_trip(make_error(1, ProtocolError::internal, d256));
  round_trip(make_goaway(1, ProtocolError::shutting_down, d256));
  // Hand-built frames one past the limit, with the bytes present: bad_field, not truncated.
  EXPECT_EQ(parse_error(cat(cat(header(0x07, 0, 0, 0), bytes({1, 0})), t256)), msg_errc::bad_field);
  EXPECT_EQ(parse_error(cat(cat(header(0x05, 0, 0, 0), bytes({0, 9, 1, 1})), d257)),
            msg_errc::bad_field);
  EXPECT_EQ(parse_error(cat(cat(header(0x0d, 0, 0, 0), bytes({0, 0, 0, 0, 0, 8, 1, 1})), d257)),
            msg_errc::bad_field);
  // encode() refuses the same.
  Bytes out(1024);
  EXPECT_EQ(encode(make_subscribe(t256), out).error(), msg_errc::bad_field);
  EXPECT_EQ(encode(make_event({}, kPayload), out).error(), msg_errc::bad_field);
  EXPECT_EQ(encode(make_error(1, ProtocolError::internal, d257), out).error(), msg_errc::bad_field);
  EXPECT_EQ(encode(make_goaway(1, ProtocolError::internal, d257), out).error(),
            msg_errc::bad_field);
}

TEST(MsgFrame, EncodeRefusesWhatParseRefuses) {
  Bytes out(64);
  Frame bad_type = make_cancel(1);
  bad_type.type = static_cast<FrameType>(0x0f);
  EXPECT_EQ(encode(bad_type, out).error(), msg_errc::unknown_type);
  Frame flags = make_response(1, {});
  flags.flags = kFlagIdempotent;
  EXPECT_EQ(encode(flags, out).error(), msg_errc::reserved_flags);
  Frame reserved = make_request(1, 1, 0, {});
  reserved.flags = 0x80;
  EXPECT_EQ(encode(reserved, out).error(), msg_errc::reserved_flags);
  Frame chan = make_cancel(1);
  chan.channel = 1;
  EXPECT_EQ(encode(chan, out).error(), msg_errc::bad_channel);
  EXPECT_EQ(encode(make_ping(1, filled(7)), out).error(), msg_errc::bad_length);
  EXPECT_EQ(encode(make_pong(1, filled(9)), out).error(), msg_errc::bad_length);
}

TEST(MsgFrame, EncodeChecksRoomAndWritesNothingOnError) {
  const Frame f = make_publish(kTopic, kPayload);
  const std::size_t need = encoded_size(f);
  for (std::size_t room = 0; room < need; ++room) {
    test::GuardPage guard(need);
    std::span<std::byte> out = guard.tail(room);
    std::fill(out.begin(), out.end(), std::byte{0x5a});
    EXPECT_EQ(encode(f, out).error(), msg_errc::buffer_too_small) << room;
    for (std::byte b : out) {
      EXPECT_EQ(b, std::byte{0x5a});
    }
  }
  test::GuardPage guard(need);
  auto n = encode(f, guard.tail(need));  // ends at the guard page: no write past
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), need);
}

TEST(MsgFrame, ParseViewsItsInput) {
  const Bytes wire = after_prefix(encoded(make_publish(kTopic, kPayload)));
  auto f = parse(wire);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->topic.data(), wire.data() + kHeaderSize + 2);
  EXPECT_EQ(f->payload.data(), wire.data() + kHeaderSize + 2 + kTopic.size());
  EXPECT_EQ(f->payload.data() + f->payload.size(), wire.data() + wire.size());
}

TEST(MsgFrame, EveryTruncationOfEveryTypeIsAnErrorInsideTheInput) {
  // Each valid frame cut short at every length: an error or a valid shorter frame, never a
  // read past the end (the guard page) — and for the fixed-size types, always an error.
  const Hello h{1, 4096, 4, 1};
  const std::vector<Frame> frames = {make_hello(h),
                                     make_hello_ack(h),
                                     make_request(1, 2, 3, kPayload, true, 4),
                                     make_response(1, kPayload),
                                     make_error(1, ProtocolError::cancelled, kDetail),
                                     make_message(1, kPayload),
                                     make_subscribe(kTopic),
                                     make_unsubscribe(kTopic),
                                     make_publish(kTopic, kPayload),
                                     make_event(kTopic, kPayload),
                                     make_ping(1, kOpaque),
                                     make_pong(1, kOpaque),
                                     make_goaway(1, ProtocolError::overloaded, kDetail),
                                     make_cancel(1)};
  for (const Frame& f : frames) {
    const Bytes wire = after_prefix(encoded(f));
    for (std::size_t n = 0; n < wire.size(); ++n) {
      const Bytes cut(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(n));
      auto r = parse_guarded(cut);
      if (r.ok()) {
        // Only the types whose body ends with a free payload may be cut and stay valid.
        EXPECT_TRUE(f.type == FrameType::request || f.type == FrameType::response ||
                    f.type == FrameType::message || f.type == FrameType::publish ||
                    f.type == FrameType::event)
            << static_cast<int>(f.type) << " cut at " << n;
      }
    }
  }
}

TEST(MsgFrame, ErrorCategory) {
  const std::error_code ec = msg_errc::truncated_body;
  EXPECT_STREQ(ec.category().name(), "weft.msg");
  EXPECT_EQ(ec.value(), 6);
  EXPECT_EQ(ec.message(), "message body ends inside a field");
  EXPECT_STREQ(to_string(static_cast<msg_errc>(99)), "unknown weft.msg error");
  EXPECT_TRUE(is_connection_fatal(ProtocolError::bad_frame));
  EXPECT_TRUE(is_connection_fatal(ProtocolError::unsupported_version));
  EXPECT_FALSE(is_connection_fatal(ProtocolError::overloaded));
  EXPECT_STREQ(to_string(ProtocolError::bad_payload), "bad_payload");
  EXPECT_EQ(static_cast<int>(ProtocolError::bad_payload), 10);
  EXPECT_STREQ(to_string(ProtocolError::permission_denied), "permission_denied");
  EXPECT_EQ(static_cast<int>(ProtocolError::permission_denied), 11);
  EXPECT_FALSE(is_connection_fatal(ProtocolError::permission_denied));
}

}  // namespace
}  // namespace weft::msg
