// weft::mqtt codec: round trips of every packet in both versions, the specs' byte vectors,
// every split of a stream, and a table of malformed packets with the error each maps to.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <weft/mqtt/codec.h>
#include <weft/mqtt/error.h>

#include "util.h"

namespace weft::mqtt {
namespace {

using test::as_bytes;
using test::bytes;
using test::encode_vec;

const std::array<StringPair, 2> kUser = {{{"k", "v"}, {"k", "v2"}}};
const std::array<Subscription, 3> kSubs = {{{"a/b", 1}, {"sport/#", 0}, {"+/x", 2}}};
const std::array<Subscription, 1> kSubsV5 = {{{"c/+/d", 0x2D}}};  // QoS 1, RAP, RH 2
const std::array<std::string_view, 2> kFilters = {"a/b", "#"};
const std::array<std::uint8_t, 3> kGranted = {0, 1, 0x80};
const std::array<std::uint8_t, 2> kUnsubReasons = {0, 0x11};

std::vector<Packet> samples(Version v) {
  const bool v5 = v == Version::v5;
  std::vector<Packet> out;
  Packet p;
  p.type = PacketType::connect;
  p.connect.version = v;
  p.connect.clean_start = false;
  p.connect.keep_alive = 30;
  p.connect.client_id = "dev-1";
  p.connect.has_will = true;
  p.connect.will.topic = "dev/1/status";
  p.connect.will.payload = as_bytes("offline");
  p.connect.will.qos = 1;
  p.connect.will.retain = true;
  p.connect.has_username = true;
  p.connect.username = "user";
  p.connect.has_password = true;
  p.connect.password = as_bytes("pw\x01\xff");
  if (v5) {
    p.connect.props.has_session_expiry = true;
    p.connect.props.session_expiry = 3600;
    p.connect.props.has_receive_maximum = true;
    p.connect.props.receive_maximum = 20;
    p.connect.props.has_maximum_packet_size = true;
    p.connect.props.maximum_packet_size = 65536;
    p.connect.props.has_topic_alias_maximum = true;
    p.connect.props.topic_alias_maximum = 5;
    p.connect.props.user = kUser;
    p.connect.will.props.has_will_delay = true;
    p.connect.will.props.will_delay = 10;
    p.connect.will.props.content_type = "text/plain";
  }
  out.push_back(p);
  p = Packet{};  // minimal CONNECT
  p.type = PacketType::connect;
  p.connect.version = v;
  out.push_back(p);
  p = Packet{};
  p.type = PacketType::connack;
  p.connack.session_present = true;
  if (v5) {
    p.connack.props.has_receive_maximum = true;
    p.connack.props.receive_maximum = 10;
    p.connack.props.has_maximum_qos = true;
    p.connack.props.maximum_qos = 1;
    p.connack.props.has_server_keep_alive = true;
    p.connack.props.server_keep_alive = 20;
    p.connack.props.assigned_client_identifier = "auto-1";
    p.connack.props.reason_string = "ok";
  }
  out.push_back(p);
  for (std::uint8_t qos = 0; qos < 3; ++qos) {
    p = Packet{};
    p.type = PacketType::publish;
    p.publish.topic = "fleet/d1/temp";
    p.publish.qos = qos;
    p.publish.dup = qos > 0;
    p.publish.retain = qos == 1;
    p.publish.packet_id = qos > 0 ? 0x1234 : 0;
    p.publish.payload = as_bytes(qos == 2 ? "" : "21.5");
    if (v5) {
      p.publish.props.has_payload_format = true;
      p.publish.props.payload_format = 1;
      p.publish.props.has_message_expiry = qos == 1;
      p.publish.props.message_expiry = 60;
      p.publish.props.response_topic = "r/1";
      p.publish.props.correlation_data = as_bytes("c\x00rr");
      p.publish.props.user = kUser;
    }
    out.push_back(p);
  }
  for (PacketType t :
       {PacketType::puback, PacketType::pubrec, PacketType::pubrel, PacketType::pubcomp}) {
    p = Packet{};
    p.type = t;
    p.ack.packet_id = 7;
    out.push_back(p);
    if (v5) {
      p.ack.reason = (t == PacketType::pubrel || t == PacketType::pubcomp) ? 0x92 : 0x10;
      p.ack.props.reason_string = "why";
      out.push_back(p);
    }
  }
  p = Packet{};
  p.type = PacketType::subscribe;
  p.subscribe.packet_id = 10;
  p.subscribe.items = v5 ? std::span<const Subscription>(kSubsV5) : kSubs;
  if (v5) {
    p.subscribe.props.subscription_identifier = 300;
  }
  out.push_back(p);
  p = Packet{};
  p.type = PacketType::suback;
  p.suback.packet_id = 10;
  p.suback.reasons = kGranted;
  out.push_back(p);
  p = Packet{};
  p.type = PacketType::unsubscribe;
  p.unsubscribe.packet_id = 11;
  p.unsubscribe.filters = kFilters;
  out.push_back(p);
  p = Packet{};
  p.type = PacketType::unsuback;
  p.suback.packet_id = 11;
  if (v5) {
    p.suback.reasons = kUnsubReasons;
  }
  out.push_back(p);
  p = Packet{};
  p.type = PacketType::pingreq;
  out.push_back(p);
  p.type = PacketType::pingresp;
  out.push_back(p);
  p.type = PacketType::disconnect;
  out.push_back(p);
  if (v5) {
    p.disconnect.reason = 0x8E;
    p.disconnect.props.has_session_expiry = true;
    p.disconnect.props.session_expiry = 0;
    out.push_back(p);
    p = Packet{};
    p.type = PacketType::auth;
    p.disconnect.reason = 0x18;
    p.disconnect.props.authentication_method = "SCRAM";
    p.disconnect.props.authentication_data = as_bytes("xyz");
    out.push_back(p);
  }
  return out;
}

std::vector<std::byte> stream(Version v) {
  std::vector<std::byte> s;
  for (const Packet& p : samples(v)) {
    auto e = encode_vec(p, v);
    s.insert(s.end(), e.begin(), e.end());
  }
  return s;
}

// Decodes everything in `in`, fed in pieces of at most `step` bytes (0: all at once), and
// re-encodes each packet; returns the concatenation (== `in` when the codec is right).
std::vector<std::byte> decode_reencode(std::span<const std::byte> in, Version v, std::size_t step,
                                       std::size_t split = 0) {
  std::vector<std::byte> buf(4096);
  Decoder d({.max_packet_size = 4096, .version = v}, buf);
  test::Reencoder re;
  std::vector<std::byte> out;
  std::size_t pos = 0;
  while (pos < in.size()) {
    std::size_t len = step == 0 ? in.size() - pos : std::min(step, in.size() - pos);
    if (split != 0 && pos < split) {
      len = std::min(len, split - pos);
    }
    auto piece = in.subspan(pos, len);
    while (!piece.empty()) {
      Decoded r = d.feed(piece);
      EXPECT_NE(r.state, DecodeState::error) << d.error().message();
      if (r.state == DecodeState::error) {
        return out;
      }
      if (r.state == DecodeState::ready) {
        auto e = re(d.packet(), v);
        out.insert(out.end(), e.begin(), e.end());
      }
      piece = piece.subspan(r.consumed);
    }
    pos += len;
  }
  return out;
}

class Codec : public ::testing::TestWithParam<Version> {};

TEST_P(Codec, EveryPacketRoundTrips) {
  const Version v = GetParam();
  for (const Packet& p : samples(v)) {
    auto wire = encode_vec(p, v);
    ASSERT_FALSE(wire.empty()) << static_cast<int>(p.type);
    EXPECT_EQ(decode_reencode(wire, v, 0), wire) << "type " << static_cast<int>(p.type);
  }
}

TEST_P(Codec, FieldsSurviveTheRoundTrip) {
  const Version v = GetParam();
  const auto all = samples(v);
  auto wire = encode_vec(all[0], v);
  std::vector<std::byte> buf(256);
  Decoder d({.max_packet_size = 256, .version = v}, buf);
  ASSERT_EQ(d.feed(wire).state, DecodeState::ready);
  const Connect& c = d.packet().connect;
  EXPECT_EQ(c.version, v);
  EXPECT_FALSE(c.clean_start);
  EXPECT_EQ(c.keep_alive, 30);
  EXPECT_EQ(c.client_id, "dev-1");
  EXPECT_TRUE(c.has_will);
  EXPECT_EQ(c.will.topic, "dev/1/status");
  EXPECT_EQ(test::str(c.will.payload), "offline");
  EXPECT_EQ(c.will.qos, 1);
  EXPECT_TRUE(c.will.retain);
  EXPECT_EQ(c.username, "user");
  EXPECT_EQ(test::str(c.password), std::string("pw\x01\xff"));
  // Zero-copy: the views point into the fed bytes.
  EXPECT_GE(reinterpret_cast<const std::byte*>(c.client_id.data()), wire.data());
  EXPECT_LT(reinterpret_cast<const std::byte*>(c.client_id.data()), wire.data() + wire.size());
  if (v == Version::v5) {
    EXPECT_EQ(c.props.session_expiry, 3600u);
    EXPECT_EQ(c.props.receive_maximum, 20);
    EXPECT_EQ(c.props.maximum_packet_size, 65536u);
    EXPECT_EQ(c.props.topic_alias_maximum, 5);
    EXPECT_EQ(c.will.props.will_delay, 10u);
    int users = 0;
    PropertyCursor cur(c.props.raw);
    Property prop;
    while (cur.next(prop)) {
      users += prop.id == PropertyId::user_property ? 1 : 0;
    }
    EXPECT_EQ(users, 2);
  }
  wire = encode_vec(all[4], v);  // PUBLISH QoS 1
  ASSERT_EQ(d.feed(wire).state, DecodeState::ready);
  const Publish& m = d.packet().publish;
  EXPECT_EQ(m.topic, "fleet/d1/temp");
  EXPECT_EQ(m.qos, 1);
  EXPECT_TRUE(m.dup);
  EXPECT_TRUE(m.retain);
  EXPECT_EQ(m.packet_id, 0x1234);
  EXPECT_EQ(test::str(m.payload), "21.5");
}

// STYLE point 15: every packet, and every prefix of it, placed so that its last byte is the
// last readable byte before a PROT_NONE page — a read past the end faults. A prefix of a
// valid packet is always need_more; the whole packet is ready.
TEST_P(Codec, InputsEndingAtAGuardPage) {
  const Version v = GetParam();
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* map = ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(map, MAP_FAILED);
  ASSERT_EQ(::mprotect(static_cast<std::byte*>(map) + page, page, PROT_NONE), 0);
  std::byte* const end = static_cast<std::byte*>(map) + page;
  std::vector<std::byte> buf(4096);
  for (const Packet& p : samples(v)) {
    const auto wire = encode_vec(p, v);
    ASSERT_LT(wire.size(), page);
    for (std::size_t len = 0; len <= wire.size(); ++len) {
      std::byte* at = end - len;
      std::copy(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(len), at);
      Decoder d({.max_packet_size = 4096, .version = v}, buf);
      const Decoded r = d.feed(std::span<const std::byte>(at, len));
      EXPECT_EQ(r.consumed, len);
      EXPECT_EQ(r.state, len == wire.size() ? DecodeState::ready : DecodeState::need_more)
          << "type " << static_cast<int>(p.type) << " prefix " << len;
    }
    // Byte by byte, each byte the last one before the guard.
    Decoder d({.max_packet_size = 4096, .version = v}, buf);
    DecodeState st = DecodeState::need_more;
    for (std::size_t i = 0; i < wire.size(); ++i) {
      end[-1] = wire[i];
      st = d.feed(std::span<const std::byte>(end - 1, 1)).state;
    }
    EXPECT_EQ(st, DecodeState::ready);
  }
  ::munmap(map, 2 * page);
}

TEST_P(Codec, EverySplitOfAStream) {
  const Version v = GetParam();
  const auto s = stream(v);
  ASSERT_GT(s.size(), 100u);
  EXPECT_EQ(decode_reencode(s, v, 1), s);  // byte by byte
  for (std::size_t split = 1; split < s.size(); ++split) {
    ASSERT_EQ(decode_reencode(s, v, 0, split), s) << "split at " << split;
  }
  for (std::size_t step = 2; step < 40; ++step) {
    ASSERT_EQ(decode_reencode(s, v, step), s) << "step " << step;
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, Codec, ::testing::Values(Version::v311, Version::v5),
                         [](const auto& param_info) {
                           return param_info.param == Version::v5 ? std::string("v5")
                                                                  : std::string("v311");
                         });

// MQTT 3.1.1 §2.2.3 / 5.0 §1.5.5, Table 2.2: the Remaining Length boundaries.
TEST(MqttVarint, SpecBoundaries) {
  struct Case {
    std::uint32_t value;
    std::vector<std::byte> wire;
  };
  const Case cases[] = {
      {0, bytes({0x00})},
      {127, bytes({0x7F})},
      {128, bytes({0x80, 0x01})},
      {16383, bytes({0xFF, 0x7F})},
      {16384, bytes({0x80, 0x80, 0x01})},
      {2097151, bytes({0xFF, 0xFF, 0x7F})},
      {2097152, bytes({0x80, 0x80, 0x80, 0x01})},
      {268435455, bytes({0xFF, 0xFF, 0xFF, 0x7F})},
  };
  for (const Case& c : cases) {
    std::array<std::byte, 4> out{};
    const std::size_t n = encode_varint(c.value, out);
    ASSERT_EQ(n, c.wire.size()) << c.value;
    EXPECT_TRUE(std::equal(c.wire.begin(), c.wire.end(), out.begin())) << c.value;
    EXPECT_EQ(varint_size(c.value), c.wire.size());
    // The decoder reads the same length: fed the header alone, it waits for exactly
    // `value` body bytes (or refuses a packet above its limit as soon as it knows).
    std::vector<std::byte> buf(3 * 1024 * 1024);
    Decoder d({.max_packet_size = 0xffffffff}, buf);
    std::vector<std::byte> head = bytes({0x30});
    head.insert(head.end(), c.wire.begin(), c.wire.end());
    Decoded r = d.feed(head);
    if (c.value + head.size() > buf.size() + 5) {
      EXPECT_EQ(r.state, DecodeState::error);
      EXPECT_EQ(d.error(), mqtt_errc::packet_too_large);
      continue;
    }
    EXPECT_EQ(r.state, c.value == 0 ? DecodeState::error : DecodeState::need_more) << c.value;
    EXPECT_EQ(r.consumed, head.size());
    if (c.value >= 3) {
      // Complete it as PUBLISH "a" with a payload: the body is exactly `value` bytes.
      std::vector<std::byte> body(c.value, std::byte{'x'});
      body[0] = std::byte{0};
      body[1] = std::byte{1};
      body[2] = std::byte{'a'};
      r = d.feed(body);
      ASSERT_EQ(r.state, DecodeState::ready) << c.value << " " << d.error().message();
      EXPECT_EQ(r.consumed, body.size());
      EXPECT_EQ(d.packet().publish.payload.size(), c.value - 3);
    }
  }
  std::array<std::byte, 4> out{};
  EXPECT_EQ(encode_varint(268435456, out), 0u);
}

// Hand-written packets as the specs lay them out.
TEST(MqttVectors, SpecPackets) {
  struct Case {
    Version v;
    std::vector<std::byte> wire;
    PacketType type;
  };
  const Case cases[] = {
      // 3.1.1 §3.1: CONNECT "MQTT" level 4, clean session, keep-alive 60, client id "abc".
      {Version::v311,
       bytes({0x10, 0x0F, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x03, 'a',
              'b', 'c'}),
       PacketType::connect},
      {Version::v311, bytes({0x20, 0x02, 0x00, 0x00}), PacketType::connack},
      {Version::v5, bytes({0x20, 0x03, 0x00, 0x00, 0x00}), PacketType::connack},
      {Version::v311, bytes({0x40, 0x02, 0x00, 0x01}), PacketType::puback},
      {Version::v5, bytes({0x40, 0x02, 0x00, 0x01}), PacketType::puback},  // reason omitted
      {Version::v311, bytes({0x62, 0x02, 0x00, 0x01}), PacketType::pubrel},
      {Version::v311, bytes({0x82, 0x08, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01}),
       PacketType::subscribe},
      {Version::v311, bytes({0x90, 0x03, 0x00, 0x0A, 0x01}), PacketType::suback},
      {Version::v311, bytes({0xB0, 0x02, 0x00, 0x0A}), PacketType::unsuback},
      {Version::v311, bytes({0xC0, 0x00}), PacketType::pingreq},
      {Version::v311, bytes({0xD0, 0x00}), PacketType::pingresp},
      {Version::v311, bytes({0xE0, 0x00}), PacketType::disconnect},
      {Version::v5, bytes({0xE0, 0x00}), PacketType::disconnect},
      {Version::v5, bytes({0xF0, 0x00}), PacketType::auth},
      // PUBLISH QoS 0 "a/b" payload "hi" (3.1.1 §3.3).
      {Version::v311, bytes({0x30, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'}),
       PacketType::publish},
  };
  for (const Case& c : cases) {
    std::vector<std::byte> buf(64);
    Decoder d({.max_packet_size = 64, .version = c.v}, buf);
    const Decoded r = d.feed(c.wire);
    ASSERT_EQ(r.state, DecodeState::ready) << d.error().message();
    EXPECT_EQ(r.consumed, c.wire.size());
    EXPECT_EQ(d.packet().type, c.type);
    test::Reencoder re;
    EXPECT_EQ(re(d.packet(), c.v), c.wire) << static_cast<int>(c.type);
  }
}

struct Bad {
  Version v;
  std::vector<std::byte> wire;
  mqtt_errc want;
  const char* what;
};

TEST(MqttMalformed, EachRefusedWithTheRightReason) {
  using V = Version;
  using E = mqtt_errc;
  const Bad cases[] = {
      {V::v311, bytes({0x00, 0x00}), E::malformed_packet, "reserved type 0"},
      {V::v311, bytes({0xF0, 0x00}), E::malformed_packet, "AUTH in 3.1.1"},
      {V::v311, bytes({0xC1, 0x00}), E::malformed_packet, "PINGREQ flags"},
      {V::v311, bytes({0xC0, 0x01, 0x00}), E::malformed_packet, "PINGREQ with a body"},
      {V::v311, bytes({0x60, 0x02, 0x00, 0x01}), E::malformed_packet, "PUBREL flags 0"},
      {V::v311, bytes({0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00}), E::malformed_packet,
       "SUBSCRIBE flags 0"},
      {V::v311, bytes({0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01}), E::malformed_packet, "QoS 3"},
      {V::v311, bytes({0x38, 0x03, 0x00, 0x01, 'a'}), E::malformed_packet, "DUP on QoS 0"},
      {V::v311, bytes({0x32, 0x05, 0x00, 0x01, 'a', 0x00, 0x00}), E::protocol_error,
       "PUBLISH QoS 1 packet id 0"},
      {V::v311, bytes({0x30, 0x03, 0x00, 0x01, '+'}), E::bad_topic_name, "wildcard in a name"},
      {V::v311, bytes({0x30, 0x02, 0x00, 0x00}), E::bad_topic_name, "empty topic name"},
      {V::v311, bytes({0x30, 0x03, 0x00, 0x01, 0x00}), E::malformed_packet, "U+0000"},
      {V::v311, bytes({0x30, 0x04, 0x00, 0x02, 0xC0, 0x80}), E::malformed_packet, "overlong UTF-8"},
      {V::v311, bytes({0x30, 0x05, 0x00, 0x03, 0xED, 0xA0, 0x80}), E::malformed_packet,
       "UTF-16 surrogate"},
      {V::v311, bytes({0x30, 0x03, 0x00, 0x05, 'a'}), E::malformed_packet, "string past the end"},
      {V::v311, bytes({0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00}), E::protocol_error,
       "SUBSCRIBE packet id 0"},
      {V::v311, bytes({0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03}), E::malformed_packet,
       "SUBSCRIBE QoS 3"},
      {V::v311, bytes({0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x04}), E::malformed_packet,
       "SUBSCRIBE reserved option bits (3.1.1)"},
      {V::v5, bytes({0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x30}), E::malformed_packet,
       "Retain Handling 3"},
      {V::v311, bytes({0x82, 0x07, 0x00, 0x01, 0x00, 0x02, 'a', '#', 0x00}), E::bad_topic_filter,
       "filter a#"},
      {V::v311, bytes({0x82, 0x08, 0x00, 0x01, 0x00, 0x03, '#', '/', 'a', 0x00}),
       E::bad_topic_filter, "filter #/a"},
      {V::v311, bytes({0x82, 0x02, 0x00, 0x01}), E::protocol_error, "SUBSCRIBE without filters"},
      {V::v311, bytes({0xA2, 0x02, 0x00, 0x01}), E::protocol_error, "UNSUBSCRIBE without filters"},
      {V::v311, bytes({0x20, 0x02, 0x02, 0x00}), E::malformed_packet, "CONNACK reserved flags"},
      {V::v311, bytes({0x20, 0x02, 0x01, 0x05}), E::protocol_error, "session present on a refusal"},
      {V::v311, bytes({0x20, 0x02, 0x00, 0x06}), E::protocol_error, "return code 6"},
      {V::v311, bytes({0x20, 0x03, 0x00, 0x00, 0x00}), E::malformed_packet, "trailing byte"},
      {V::v311, bytes({0x90, 0x03, 0x00, 0x01, 0x03}), E::protocol_error, "SUBACK code 3"},
      {V::v311, bytes({0x40, 0x03, 0x00, 0x01, 0x00}), E::malformed_packet, "3.1.1 PUBACK of 3"},
      {V::v311, bytes({0x40, 0x02, 0x00, 0x00}), E::protocol_error, "PUBACK packet id 0"},
      {V::v311, bytes({0xB0, 0x03, 0x00, 0x01, 0x00}), E::malformed_packet,
       "3.1.1 UNSUBACK with reasons"},
      {V::v311, bytes({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}), E::malformed_packet,
       "fifth Remaining Length byte"},
      {V::v311, bytes({0xC0, 0x80, 0x00}), E::malformed_packet, "non-minimal Remaining Length"},
      {V::v311,
       bytes({0x10, 0x0F, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x03, 0x02, 0x00, 0x3C, 0x00, 0x03, 'a',
              'b', 'c'}),
       E::unsupported_version, "protocol level 3"},
      {V::v311,
       bytes({0x10, 0x0F, 0x00, 0x04, 'M', 'Q', 'T', 'X', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x03, 'a',
              'b', 'c'}),
       E::unsupported_version, "protocol name MQTX"},
      {V::v311,
       bytes({0x10, 0x0F, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x03, 0x00, 0x3C, 0x00, 0x03, 'a',
              'b', 'c'}),
       E::malformed_packet, "CONNECT reserved flag"},
      {V::v311,
       bytes({0x10, 0x0F, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x0A, 0x00, 0x3C, 0x00, 0x03, 'a',
              'b', 'c'}),
       E::malformed_packet, "will QoS without a will"},
      {V::v311,
       bytes({0x10, 0x0F, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x42, 0x00, 0x3C, 0x00, 0x03, 'a',
              'b', 'c'}),
       E::malformed_packet, "3.1.1 password without user name"},
      {V::v5, bytes({0x30, 0x09, 0x00, 0x01, 'a', 0x05, 0x11, 0x00, 0x00, 0x00, 0x00}),
       E::bad_property, "Session Expiry in PUBLISH"},
      {V::v5, bytes({0x30, 0x06, 0x00, 0x01, 'a', 0x02, 0x7F, 0x00}), E::bad_property,
       "unknown property 0x7F"},
      {V::v5, bytes({0x30, 0x08, 0x00, 0x01, 'a', 0x04, 0x01, 0x00, 0x01, 0x00}), E::protocol_error,
       "Payload Format twice"},
      {V::v5, bytes({0x30, 0x07, 0x00, 0x01, 'a', 0x02, 0x01, 0x02, 'x'}), E::protocol_error,
       "Payload Format 2"},
      {V::v5, bytes({0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00}), E::protocol_error,
       "Receive Maximum 0"},
      {V::v5, bytes({0x20, 0x08, 0x00, 0x00, 0x05, 0x27, 0x00, 0x00, 0x00, 0x00}),
       E::protocol_error, "Maximum Packet Size 0"},
      {V::v5, bytes({0x30, 0x07, 0x00, 0x01, 'a', 0x03, 0x23, 0x00, 0x00}), E::topic_alias_invalid,
       "Topic Alias 0"},
      {V::v5, bytes({0x30, 0x04, 0x00, 0x01, 'a', 0x05}), E::malformed_packet,
       "property length past the end"},
      {V::v5, bytes({0x30, 0x03, 0x00, 0x00, 0x00}), E::bad_topic_name,
       "v5 empty topic without an alias"},
      {V::v5, bytes({0xF0, 0x01, 0x05}), E::protocol_error, "AUTH reason 5"},
      {V::v5, bytes({0x40, 0x03, 0x00, 0x01, 0x05}), E::protocol_error, "PUBACK reason 5"},
      {V::v5, bytes({0x20, 0x07, 0x00, 0x00, 0x04, 0x24, 0x02, 0x24, 0x01}), E::protocol_error,
       "Maximum QoS 2"},
  };
  for (const Bad& c : cases) {
    std::vector<std::byte> buf(64);
    Decoder d({.max_packet_size = 64, .version = c.v}, buf);
    const Decoded r = d.feed(c.wire);
    ASSERT_EQ(r.state, DecodeState::error) << c.what;
    EXPECT_EQ(d.error(), c.want) << c.what << ": got " << d.error().message();
    // Sticky until reset().
    EXPECT_EQ(d.feed(c.wire).state, DecodeState::error) << c.what;
    EXPECT_EQ(d.feed(c.wire).consumed, 0u) << c.what;
    // The same bytes split byte by byte give the same error.
    Decoder d1({.max_packet_size = 64, .version = c.v}, buf);
    DecodeState st = DecodeState::need_more;
    for (std::size_t i = 0; i < c.wire.size() && st == DecodeState::need_more; ++i) {
      st = d1.feed(std::span(c.wire).subspan(i, 1)).state;
    }
    EXPECT_EQ(st, DecodeState::error) << c.what;
    EXPECT_EQ(d1.error(), c.want) << c.what;
  }
}

TEST(MqttDecoder, PacketTooLargeBeforeTheBody) {
  std::vector<std::byte> buf(16);
  Decoder d({.max_packet_size = 1000}, buf);  // capped at 16 + 5 by the buffer
  auto wire = bytes({0x30, 0x64});            // Remaining Length 100
  const Decoded r = d.feed(wire);
  EXPECT_EQ(r.state, DecodeState::error);
  EXPECT_EQ(r.consumed, 2u);
  EXPECT_EQ(d.error(), mqtt_errc::packet_too_large);
  EXPECT_EQ(reason_code(d.error()), 0x95);
  d.reset();
  auto ok = bytes({0x30, 0x03, 0x00, 0x01, 'a'});
  EXPECT_EQ(d.feed(ok).state, DecodeState::ready);
  // The limit itself: 21 bytes accepted, 22 refused.
  std::vector<std::byte> big(21, std::byte{'x'});
  big[0] = std::byte{0x30};
  big[1] = std::byte{19};
  big[2] = std::byte{0};
  big[3] = std::byte{1};
  EXPECT_EQ(d.feed(big).state, DecodeState::ready);
  big.push_back(std::byte{'x'});
  big[1] = std::byte{20};
  EXPECT_EQ(d.feed(big).state, DecodeState::error);
}

TEST(MqttDecoder, SplitPacketIsAssembledInTheCallersBuffer) {
  std::vector<std::byte> buf(64);
  Decoder d({.max_packet_size = 64}, buf);
  auto wire = bytes({0x30, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'});
  EXPECT_EQ(d.feed(std::span(wire).first(5)).state, DecodeState::need_more);
  const Decoded r = d.feed(std::span(wire).subspan(5));
  ASSERT_EQ(r.state, DecodeState::ready);
  EXPECT_EQ(r.consumed, 4u);
  EXPECT_EQ(d.packet().publish.topic, "a/b");
  EXPECT_EQ(reinterpret_cast<const std::byte*>(d.packet().publish.topic.data()), buf.data() + 2);
}

TEST(MqttEncode, Errors) {
  Packet p;
  p.type = PacketType::publish;
  p.publish.topic = "a";
  p.publish.qos = 1;  // packet id 0
  std::array<std::byte, 16> out{};
  EXPECT_EQ(encode(p, Version::v311, out).error(), mqtt_errc::bad_argument);
  p.publish.packet_id = 1;
  p.publish.payload = std::as_bytes(std::span(out));
  std::array<std::byte, 8> small{};
  EXPECT_EQ(encode(p, Version::v311, small).error(), mqtt_errc::buffer_too_small);
  p = Packet{};
  p.type = PacketType::auth;
  EXPECT_EQ(encode(p, Version::v311, out).error(), mqtt_errc::bad_argument);
  EXPECT_EQ(reason_code(mqtt_errc::malformed_packet), 0x81);
  EXPECT_EQ(reason_code(mqtt_errc::protocol_error), 0x82);
  EXPECT_STREQ(mqtt_category().name(), "weft.mqtt");
}

TEST(MqttUtf8, Rules) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("a/b"));
  EXPECT_TRUE(valid_utf8("\xC3\xA9t\xC3\xA9"));  // été
  EXPECT_TRUE(valid_utf8("\xF0\x9F\x98\x80"));   // U+1F600
  EXPECT_FALSE(valid_utf8(std::string_view("a\0b", 3)));
  EXPECT_FALSE(valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xED\xBF\xBF"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(valid_utf8("\xFF"));
}

}  // namespace
}  // namespace weft::mqtt
