// weft::mqtt::Session against a scripted broker: connect/connack, keep-alive timing, QoS 1
// publish and ack, the queue-full policies, reconnect with DUP resend and resubscribe,
// incoming QoS 1, refusals, and the backoff's bounds.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <weft/mqtt/session.h>

#include "broker_sim.h"
#include "util.h"

namespace weft::mqtt {
namespace {

using test::as_bytes;
using test::BrokerSim;

SessionConfig config(Version v) {
  SessionConfig c;
  c.version = v;
  c.client_id = "dev-1";
  c.keep_alive_s = 10;
  c.ping_timeout_ms = 2000;
  c.connack_timeout_ms = 3000;
  c.queue_slots = 4;
  c.max_message_bytes = 64;
  c.max_inflight = 2;
  return c;
}

// Connects `s` through `b` at time `now`; returns the CONNECT the Session wrote.
Packet connect(Session& s, BrokerSim& b, std::uint64_t now, bool present = false) {
  EXPECT_TRUE(s.connect(now).ok());
  auto out = b.drain(s, now);
  EXPECT_EQ(out.size(), 1u);
  auto ev = b.connack(s, present, now);
  EXPECT_TRUE(ev.ok());
  EXPECT_EQ(ev->kind, EventKind::connected);
  EXPECT_EQ(s.state(), SessionState::connected);
  return out.empty() ? Packet{} : out[0];
}

class SessionTest : public ::testing::TestWithParam<Version> {};

TEST_P(SessionTest, ConnectWritesConnectThenWaitsForConnack) {
  const Version v = GetParam();
  SessionConfig c = config(v);
  c.clean_start = false;
  c.session_expiry_s = 600;
  c.has_will = true;
  c.will.topic = "dev/1/status";
  c.will.payload = as_bytes("gone");
  c.will.qos = 1;
  c.has_username = true;
  c.username = "u";
  Session s(c);
  BrokerSim b(v);
  EXPECT_EQ(s.feed(Packet{}, 0).error(), mqtt_errc::bad_state);
  ASSERT_TRUE(s.connect(100).ok());
  EXPECT_EQ(s.connect(100).error(), mqtt_errc::bad_state);
  EXPECT_TRUE(s.poll(100).send);
  auto out = b.drain(s, 100);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].type, PacketType::connect);
  const Connect& cn = out[0].connect;
  EXPECT_EQ(cn.version, v);
  EXPECT_EQ(cn.client_id, "dev-1");
  EXPECT_FALSE(cn.clean_start);
  EXPECT_EQ(cn.keep_alive, 10);
  EXPECT_TRUE(cn.has_will);
  EXPECT_EQ(cn.will.topic, "dev/1/status");
  EXPECT_EQ(cn.will.qos, 1);
  EXPECT_EQ(cn.username, "u");
  if (v == Version::v5) {
    EXPECT_EQ(cn.props.session_expiry, 600u);
    EXPECT_EQ(cn.props.receive_maximum, 32);
  }
  // Nothing else goes out before CONNACK, even a queued QoS 1 message.
  ASSERT_TRUE(s.publish("t", as_bytes("x"), 1).ok());
  EXPECT_TRUE(b.drain(s, 100).empty());
  // No CONNACK in time: dead.
  EXPECT_FALSE(s.poll(3099).dead);
  EXPECT_TRUE(s.poll(3100).dead);
  s.connection_lost(3100);
  EXPECT_EQ(s.state(), SessionState::disconnected);
  // Second try: accepted, then the queued message flows.
  ASSERT_TRUE(s.connect(4000).ok());
  ASSERT_EQ(b.drain(s, 4000).size(), 1u);
  auto ev = b.connack(s, false, 4000);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->kind, EventKind::connected);
  out = b.drain(s, 4000);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, PacketType::publish);
}

TEST_P(SessionTest, RefusedConnackDisconnects) {
  Session s(config(GetParam()));
  BrokerSim b(GetParam());
  ASSERT_TRUE(s.connect(0).ok());
  b.drain(s, 0);
  auto ev = b.connack(s, false, 0, GetParam() == Version::v5 ? 0x87 : 5);
  EXPECT_EQ(ev.error(), mqtt_errc::connection_refused);
  EXPECT_EQ(s.state(), SessionState::disconnected);
  EXPECT_TRUE(b.drain(s, 0).empty());  // the broker closes: no DISCONNECT
}

TEST_P(SessionTest, KeepAliveTiming) {
  Session s(config(GetParam()));
  BrokerSim b(GetParam());
  connect(s, b, 1000);
  PollResult r = s.poll(1000);
  EXPECT_FALSE(r.send);
  EXPECT_EQ(r.next_ms, 11000u);  // keep_alive 10 s after the CONNECT was written
  EXPECT_FALSE(s.poll(10999).send);
  // Traffic moves the deadline: a publish at 5000.
  ASSERT_TRUE(s.publish("t", as_bytes("x"), 0).ok());
  ASSERT_EQ(b.drain(s, 5000).size(), 1u);
  EXPECT_FALSE(s.poll(14999).send);
  r = s.poll(15000);
  EXPECT_TRUE(r.send);
  auto out = b.drain(s, 15000);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, PacketType::pingreq);
  EXPECT_EQ(s.stats().pings, 1u);
  // PINGRESP within ping_timeout keeps it alive; the next PINGREQ comes 10 s later.
  Packet pong;
  pong.type = PacketType::pingresp;
  ASSERT_TRUE(b.deliver(s, pong, 16000).ok());
  EXPECT_FALSE(s.poll(24999).send);
  EXPECT_TRUE(s.poll(25000).send);
  ASSERT_EQ(b.drain(s, 25000).size(), 1u);
  // No PINGRESP: dead exactly at ping_timeout.
  EXPECT_FALSE(s.poll(26999).dead);
  EXPECT_TRUE(s.poll(27000).dead);
}

TEST_P(SessionTest, Qos1PublishAckAndInflightWindow) {
  Session s(config(GetParam()));
  BrokerSim b(GetParam());
  connect(s, b, 0);
  std::vector<std::uint16_t> ids;
  for (int i = 0; i < 3; ++i) {
    auto id = s.publish("fleet/t", as_bytes("m" + std::to_string(i)), 1);
    ASSERT_TRUE(id.ok());
    EXPECT_NE(id.value(), 0);
    ids.push_back(id.value());
  }
  EXPECT_EQ(std::set<std::uint16_t>(ids.begin(), ids.end()).size(), 3u);
  auto out = b.drain(s, 0);
  ASSERT_EQ(out.size(), 2u);  // max_inflight 2
  EXPECT_EQ(out[0].publish.packet_id, ids[0]);
  EXPECT_EQ(out[0].publish.qos, 1);
  EXPECT_FALSE(out[0].publish.dup);
  EXPECT_FALSE(out[0].publish.retain);
  EXPECT_EQ(out[0].publish.topic, "fleet/t");
  EXPECT_EQ(test::str(out[1].publish.payload), "m1");
  EXPECT_EQ(s.inflight(), 2u);
  auto ev = b.ack(s, PacketType::puback, ids[0], 0);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->kind, EventKind::published);
  EXPECT_EQ(ev->packet_id, ids[0]);
  out = b.drain(s, 0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(test::str(out[0].publish.payload), "m2");
  // A duplicate PUBACK is nothing.
  ev = b.ack(s, PacketType::puback, ids[0], 0);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->kind, EventKind::none);
  ASSERT_TRUE(b.ack(s, PacketType::puback, ids[1], 0).ok());
  ASSERT_TRUE(b.ack(s, PacketType::puback, ids[2], 0).ok());
  EXPECT_EQ(s.queued(), 0u);
  EXPECT_EQ(s.inflight(), 0u);
}

TEST_P(SessionTest, RetainedQos0) {
  Session s(config(GetParam()));
  BrokerSim b(GetParam());
  connect(s, b, 0);
  auto id = s.publish("dev/1/state", as_bytes("on"), 0, /*retain=*/true);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id.value(), 0);
  auto out = b.drain(s, 0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].publish.retain);
  EXPECT_EQ(out[0].publish.qos, 0);
  EXPECT_EQ(out[0].publish.packet_id, 0);
  EXPECT_EQ(test::str(out[0].publish.payload), "on");
  EXPECT_EQ(s.queued(), 0u);
}

TEST_P(SessionTest, QueueFullRefuseNew) {
  Session s(config(GetParam()));
  BrokerSim b(GetParam());
  connect(s, b, 0);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(s.publish("t", as_bytes("x"), i % 2).ok());
  }
  EXPECT_EQ(s.publish("t", as_bytes("x"), 0).error(), mqtt_errc::would_block);
  EXPECT_EQ(s.publish("t", as_bytes("x"), 1).error(), mqtt_errc::would_block);
  EXPECT_EQ(s.publish("t", std::vector<std::byte>(64), 1).error(), mqtt_errc::message_too_large);
  EXPECT_EQ(s.publish("a/+", as_bytes("x"), 1).error(), mqtt_errc::bad_topic_name);
  EXPECT_EQ(s.publish("t", as_bytes("x"), 2).error(), mqtt_errc::bad_argument);
  // Writing frees the QoS 0 slots; QoS 1 keep theirs until PUBACK.
  b.drain(s, 0);
  EXPECT_EQ(s.queued(), 2u);
  EXPECT_TRUE(s.publish("t", as_bytes("x"), 0).ok());
}

TEST_P(SessionTest, QueueFullDropOldestQos0) {
  SessionConfig c = config(GetParam());
  c.when_full = QueuePolicy::drop_oldest_qos0;
  c.queue_qos0_offline = true;
  Session s(c);
  BrokerSim b(GetParam());
  // Disconnected: everything queues (queue_qos0_offline).
  ASSERT_TRUE(s.publish("t", as_bytes("q0-a"), 0).ok());
  ASSERT_TRUE(s.publish("t", as_bytes("q1-a"), 1).ok());
  ASSERT_TRUE(s.publish("t", as_bytes("q0-b"), 0).ok());
  ASSERT_TRUE(s.publish("t", as_bytes("q1-b"), 1).ok());
  ASSERT_TRUE(s.publish("t", as_bytes("q1-c"), 1).ok());  // drops q0-a
  ASSERT_TRUE(s.publish("t", as_bytes("q1-d"), 1).ok());  // drops q0-b
  EXPECT_EQ(s.stats().dropped_qos0_full, 2u);
  EXPECT_EQ(s.publish("t", as_bytes("q1-e"), 1).error(), mqtt_errc::would_block);
  connect(s, b, 0);
  c.max_inflight = 4;
  auto out = b.drain(s, 0);
  ASSERT_EQ(out.size(), 2u);  // window 2; order kept
  EXPECT_EQ(test::str(out[0].publish.payload), "q1-a");
  EXPECT_EQ(test::str(out[1].publish.payload), "q1-b");
}

TEST_P(SessionTest, Qos0WhileDisconnectedIsRefusedByDefault) {
  Session s(config(GetParam()));
  EXPECT_EQ(s.publish("t", as_bytes("x"), 0).error(), mqtt_errc::not_connected);
  EXPECT_TRUE(s.publish("t", as_bytes("x"), 1).ok());
}

TEST_P(SessionTest, ReconnectResendsUnackedWithDupAndResubscribes) {
  SessionConfig c = config(GetParam());
  c.max_inflight = 4;
  Session s(c);
  BrokerSim b(GetParam());
  connect(s, b, 0);
  auto sub_a = s.subscribe("cmd/#", 1);
  auto sub_b = s.subscribe("cfg/+", 0);
  ASSERT_TRUE(sub_a.ok() && sub_b.ok());
  EXPECT_EQ(s.subscribe("a/#/b", 1).error(), mqtt_errc::bad_topic_filter);
  EXPECT_EQ(s.subscribe("x", 2).error(), mqtt_errc::bad_argument);
  auto out = b.drain(s, 0);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].type, PacketType::subscribe);
  ASSERT_TRUE(b.ack(s, PacketType::suback, sub_a.value(), 0).ok());
  ASSERT_TRUE(b.ack(s, PacketType::suback, sub_b.value(), 0).ok());
  EXPECT_EQ(s.subscriptions(), 2u);

  auto m1 = s.publish("t", as_bytes("one"), 1);
  auto m2 = s.publish("t", as_bytes("two"), 1);
  auto m3 = s.publish("t", as_bytes("three"), 1);
  ASSERT_TRUE(m1.ok() && m2.ok() && m3.ok());
  out = b.drain(s, 0);
  ASSERT_EQ(out.size(), 3u);
  ASSERT_TRUE(b.ack(s, PacketType::puback, m2.value(), 0).ok());  // only "two" acknowledged
  s.connection_lost(10);
  EXPECT_EQ(s.state(), SessionState::disconnected);
  EXPECT_TRUE(b.drain(s, 10).empty());
  auto m4 = s.publish("t", as_bytes("four"), 1);  // queued while away
  ASSERT_TRUE(m4.ok());

  // Broker lost the session: resubscribe everything, resend unacked with DUP, in order.
  connect(s, b, 500, /*present=*/false);
  out = b.drain(s, 500);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0].type, PacketType::subscribe);
  EXPECT_EQ(out[1].type, PacketType::subscribe);
  std::set<std::string_view> filters;
  for (int i = 0; i < 2; ++i) {
    std::size_t off = 0;
    Subscription sub;
    ASSERT_TRUE(out[i].subscribe.list.next(off, sub));
    filters.insert(sub.filter);
    ASSERT_TRUE(b.ack(s, PacketType::suback, out[i].subscribe.packet_id, 500).ok());
  }
  EXPECT_EQ(filters, (std::set<std::string_view>{"cmd/#", "cfg/+"}));
  EXPECT_EQ(test::str(out[2].publish.payload), "one");
  EXPECT_TRUE(out[2].publish.dup);
  EXPECT_EQ(out[2].publish.packet_id, m1.value());
  EXPECT_EQ(test::str(out[3].publish.payload), "three");
  EXPECT_TRUE(out[3].publish.dup);
  EXPECT_EQ(test::str(out[4].publish.payload), "four");
  EXPECT_FALSE(out[4].publish.dup);
  EXPECT_EQ(s.stats().resent, 2u);

  // Session present: no resubscription, still the resend.
  s.connection_lost(600);
  connect(s, b, 700, /*present=*/true);
  out = b.drain(s, 700);
  ASSERT_EQ(out.size(), 3u);
  for (const Packet& p : out) {
    EXPECT_EQ(p.type, PacketType::publish);
    EXPECT_TRUE(p.publish.dup);
  }
  for (const Packet& p : out) {
    ASSERT_TRUE(b.ack(s, PacketType::puback, p.publish.packet_id, 700).ok());
  }
  EXPECT_EQ(s.queued(), 0u);
  // Unsubscribe forgets the filter: not resubscribed after the next reconnect.
  auto un = s.unsubscribe("cfg/+");
  ASSERT_TRUE(un.ok());
  out = b.drain(s, 700);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, PacketType::unsubscribe);
  auto ev = b.ack(s, PacketType::unsuback, un.value(), 700);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->kind, EventKind::unsubscribed);
  EXPECT_EQ(s.subscriptions(), 1u);
  s.connection_lost(800);
  connect(s, b, 900);
  out = b.drain(s, 900);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, PacketType::subscribe);
}

TEST_P(SessionTest, RefusedSubscriptionIsForgottenAndQos0DroppedOnLoss) {
  SessionConfig c = config(GetParam());
  c.queue_qos0_offline = false;
  Session s(c);
  BrokerSim b(GetParam());
  connect(s, b, 0);
  auto ok = s.subscribe("ok/#", 1);
  auto no = s.subscribe("no/#", 1);
  ASSERT_TRUE(ok.ok() && no.ok());
  ASSERT_EQ(b.drain(s, 0).size(), 2u);
  ASSERT_TRUE(b.ack(s, PacketType::suback, ok.value(), 0).ok());
  Packet refused;
  refused.type = PacketType::suback;
  refused.suback.packet_id = no.value();
  static const std::uint8_t kFailure[1] = {0x80};
  refused.suback.reasons = kFailure;
  auto ev = b.deliver(s, refused, 0);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->kind, EventKind::subscribed);
  EXPECT_EQ(ev->reason, 0x80);
  EXPECT_EQ(s.subscriptions(), 1u);
  EXPECT_EQ(s.unsubscribe("no/#").error(), mqtt_errc::bad_argument);
  // QoS 0 written before the loss is gone; QoS 0 still queued is dropped and counted.
  ASSERT_TRUE(s.publish("t", as_bytes("a"), 1).ok());
  ASSERT_TRUE(s.publish("t", as_bytes("b"), 1).ok());
  ASSERT_TRUE(s.publish("t", as_bytes("c"), 1).ok());  // waits for the window (2)
  ASSERT_TRUE(s.publish("t", as_bytes("d"), 0).ok());  // behind it
  ASSERT_EQ(b.drain(s, 0).size(), 2u);
  s.connection_lost(1);
  EXPECT_EQ(s.stats().dropped_qos0_offline, 1u);
  EXPECT_EQ(s.queued(), 3u);
  connect(s, b, 2);
  auto out = b.drain(s, 2);
  ASSERT_EQ(out.size(), 3u);  // only "ok/#" again, then the two unacknowledged
  EXPECT_EQ(out[0].type, PacketType::subscribe);
  std::size_t off = 0;
  Subscription sub;
  ASSERT_TRUE(out[0].subscribe.list.next(off, sub));
  EXPECT_EQ(sub.filter, "ok/#");
  EXPECT_EQ(test::str(out[1].publish.payload), "a");
  EXPECT_EQ(test::str(out[2].publish.payload), "b");
}

TEST_P(SessionTest, IncomingQos1GetsPubackAfterDelivery) {
  Session s(config(GetParam()));
  BrokerSim b(GetParam());
  connect(s, b, 0);
  Packet p;
  p.type = PacketType::publish;
  p.publish.topic = "cmd/reboot";
  p.publish.qos = 1;
  p.publish.packet_id = 77;
  p.publish.payload = as_bytes("now");
  auto ev = b.deliver(s, p, 0);
  ASSERT_TRUE(ev.ok());
  ASSERT_EQ(ev->kind, EventKind::message);
  ASSERT_NE(ev->message, nullptr);
  EXPECT_EQ(ev->message->topic, "cmd/reboot");
  EXPECT_EQ(test::str(ev->message->payload), "now");
  auto out = b.drain(s, 0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, PacketType::puback);
  EXPECT_EQ(out[0].ack.packet_id, 77);
  // QoS 0: no ack.
  p.publish.qos = 0;
  p.publish.packet_id = 0;
  ASSERT_TRUE(b.deliver(s, p, 0).ok());
  EXPECT_TRUE(b.drain(s, 0).empty());
  // QoS 2 is refused (never subscribed above 1): connection-fatal.
  p.publish.qos = 2;
  p.publish.packet_id = 5;
  EXPECT_EQ(b.deliver(s, p, 0).error(), mqtt_errc::protocol_error);
  EXPECT_EQ(s.state(), SessionState::disconnected);
}

TEST_P(SessionTest, ReceiveMaximumAndForbiddenPackets) {
  SessionConfig c = config(GetParam());
  c.receive_maximum = 2;
  Session s(c);
  BrokerSim b(GetParam());
  connect(s, b, 0);
  Packet p;
  p.type = PacketType::publish;
  p.publish.topic = "t";
  p.publish.qos = 1;
  for (std::uint16_t id = 1; id <= 2; ++id) {
    p.publish.packet_id = id;
    ASSERT_TRUE(b.deliver(s, p, 0).ok());
  }
  p.publish.packet_id = 3;
  // Back-pressure: refused without a change until the owed PUBACKs are written.
  EXPECT_EQ(b.deliver(s, p, 0).error(), mqtt_errc::would_block);
  EXPECT_EQ(s.state(), SessionState::connected);
  auto out = b.drain(s, 0);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].ack.packet_id, 1);
  EXPECT_EQ(out[1].ack.packet_id, 2);
  auto ev = s.feed(b.last, 0);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->kind, EventKind::message);
  out = b.drain(s, 0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ack.packet_id, 3);
  s.connection_lost(5);
  connect(s, b, 10);
  Packet sub;
  sub.type = PacketType::pingreq;
  EXPECT_EQ(b.deliver(s, sub, 10).error(), mqtt_errc::protocol_error);
  auto bye = b.drain(s, 10);  // v5: DISCONNECT 0x82; 3.1.1 just closes
  if (GetParam() == Version::v5) {
    ASSERT_EQ(bye.size(), 1u);
    EXPECT_EQ(bye[0].disconnect.reason, 0x82);
  } else {
    EXPECT_TRUE(bye.empty());
  }
  if (GetParam() == Version::v5) {
    connect(s, b, 20);
    Packet auth;
    auth.type = PacketType::auth;
    auth.disconnect.reason = 0x18;
    auto r = b.deliver(s, auth, 20);
    EXPECT_EQ(r.error(), mqtt_errc::auth_unsupported);
    EXPECT_EQ(reason_code(r.error()), 0x8C);
    // Refused politely: one DISCONNECT with the reason, then nothing.
    EXPECT_TRUE(s.wants_write());
    auto auth_bye = b.drain(s, 20);
    ASSERT_EQ(auth_bye.size(), 1u);
    EXPECT_EQ(auth_bye[0].type, PacketType::disconnect);
    EXPECT_EQ(auth_bye[0].disconnect.reason, 0x8C);
    EXPECT_FALSE(s.wants_write());
    connect(s, b, 30);
    Packet d;
    d.type = PacketType::disconnect;
    d.disconnect.reason = 0x8B;  // server shutting down
    auto dev = b.deliver(s, d, 30);
    ASSERT_TRUE(dev.ok());
    EXPECT_EQ(dev->kind, EventKind::server_disconnect);
    EXPECT_EQ(dev->reason, 0x8B);
    EXPECT_EQ(s.state(), SessionState::disconnected);
  }
}

TEST(MqttSessionV5, BrokerLimitsApply) {
  SessionConfig c = config(Version::v5);
  c.max_inflight = 4;
  Session s(c);
  BrokerSim b(Version::v5);
  ASSERT_TRUE(s.connect(0).ok());
  b.drain(s, 0);
  Packet ca;
  ca.type = PacketType::connack;
  ca.connack.props.has_receive_maximum = true;
  ca.connack.props.receive_maximum = 1;
  ca.connack.props.has_maximum_packet_size = true;
  ca.connack.props.maximum_packet_size = 20;
  ca.connack.props.has_server_keep_alive = true;
  ca.connack.props.server_keep_alive = 5;
  ASSERT_TRUE(b.deliver(s, ca, 0).ok());
  ASSERT_TRUE(s.publish("t", std::vector<std::byte>(40), 1).ok());  // > 20 bytes: dropped
  ASSERT_TRUE(s.publish("t", as_bytes("a"), 1).ok());
  ASSERT_TRUE(s.publish("t", as_bytes("b"), 1).ok());
  auto out = b.drain(s, 0);
  ASSERT_EQ(out.size(), 1u);  // Receive Maximum 1
  EXPECT_EQ(test::str(out[0].publish.payload), "a");
  EXPECT_EQ(s.stats().dropped_too_large, 1u);
  EXPECT_TRUE(s.poll(5000).send);  // Server Keep Alive 5 s wins over 10
}

TEST_P(SessionTest, GracefulDisconnect) {
  Session s(config(GetParam()));
  BrokerSim b(GetParam());
  EXPECT_EQ(s.disconnect().error(), mqtt_errc::not_connected);
  connect(s, b, 0);
  ASSERT_TRUE(s.disconnect().ok());
  auto out = b.drain(s, 0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, PacketType::disconnect);
  EXPECT_EQ(s.state(), SessionState::disconnected);
}

INSTANTIATE_TEST_SUITE_P(Versions, SessionTest, ::testing::Values(Version::v311, Version::v5),
                         [](const auto& param_info) {
                           return param_info.param == Version::v5 ? std::string("v5")
                                                                  : std::string("v311");
                         });

TEST(MqttBackoff, ExponentialCappedFullJitterDeterministic) {
  Backoff a(100, 5000, 42);
  Backoff b(100, 5000, 42);
  Backoff c(100, 5000, 43);
  bool differs = false;
  std::uint32_t max_seen = 0;
  for (std::uint32_t i = 0; i < 200; ++i) {
    const std::uint32_t ceiling = a.ceiling();
    EXPECT_EQ(ceiling, std::min<std::uint64_t>(5000, std::uint64_t{100} << std::min(i, 32u)));
    const std::uint32_t d = a.next();
    EXPECT_LE(d, ceiling);
    EXPECT_EQ(d, b.next());
    differs = differs || d != c.next();
    max_seen = std::max(max_seen, d);
  }
  EXPECT_TRUE(differs);
  EXPECT_GT(max_seen, 2500u);  // jitter spreads over the capped range
  EXPECT_EQ(a.attempt(), 200u);
  a.reset();
  EXPECT_EQ(a.ceiling(), 100u);
  EXPECT_LE(a.next(), 100u);
}

}  // namespace
}  // namespace weft::mqtt
