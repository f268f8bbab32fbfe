// SUBSCRIBE / UNSUBSCRIBE / PUBLISH over the binary protocol (msg::HubTopics on a
// pubsub::Hub), both backends: a publish on one worker reaches subscribers on every worker
// as EVENT frames; failures come back as ERROR id 0 with the codes of protocol.md §6.9.
#include <weft/msg/pubsub_topics.h>

#include <gtest/gtest.h>

#include "msg_server_test.h"
#include "msg_wire.h"

namespace weft::msg {
namespace {

using test::WireClient;

constexpr std::uint32_t kEcho = method_id("weft.test.Topics/Echo");
void echo(void*, Call& c, std::span<const std::byte> p) noexcept {
  (void)c.reply(p);
}

class ServerPubsubTest : public test::MsgServerTest {
 protected:
  // Serves `workers` workers with a hub; SUBSCRIBE/PUBLISH go to it.
  void start_hub(std::uint32_t workers) {
    platform::Config cfg = config(workers);
    cfg.shared_buffer_size = 1024;  // events above 1 KiB are too large
    ASSERT_TRUE(hub_.init(pubsub::Limits{}, cfg).ok());
    ASSERT_TRUE(topics_.init().ok());
    Options o;
    o.setup = [](Registry& r, platform::Loop&) {
      EXPECT_TRUE(r.add({kEcho, "weft.test.Topics/Echo", &echo, nullptr}));
    };
    o.topics = [this](platform::Loop& l) { return topics_.attach(l); };
    start_with(cfg, std::move(o));
  }

  // SUBSCRIBE, then a PING round trip: frames of one connection are handled in order, so
  // the subscription exists once the PONG is back.
  static void subscribe(WireClient& c, std::string_view topic) {
    ASSERT_TRUE(c.send(make_subscribe(test::as_bytes(topic))));
    const std::byte opaque[8] = {};
    ASSERT_TRUE(c.send(make_ping(1, opaque)));
    auto pong = c.read();
    ASSERT_TRUE(pong.has_value());
    ASSERT_EQ(pong->f.type, FrameType::pong);
  }

  static void expect_event(WireClient& c, std::string_view topic, std::string_view payload) {
    auto e = c.read();
    ASSERT_TRUE(e.has_value());
    ASSERT_EQ(e->f.type, FrameType::event);
    EXPECT_EQ(e->topic(), topic);
    EXPECT_EQ(e->payload(), payload);
  }

  pubsub::Hub hub_;
  HubTopics topics_{hub_};
};

TEST_P(ServerPubsubTest, PublishReachesSubscribersOnEveryWorker) {
  start_hub(3);
  std::vector<std::unique_ptr<WireClient>> subs;
  for (int i = 0; i < 3; ++i) {  // round robin: one subscriber per worker
    subs.push_back(client());
    subscribe(*subs.back(), "sensors/temp");
  }
  auto pub = client();  // on worker 0 again
  for (int n = 0; n < 5; ++n) {
    const std::string payload = "reading " + std::to_string(n);
    ASSERT_TRUE(pub->send(make_publish(test::as_bytes("sensors/temp"), test::as_bytes(payload))));
  }
  for (auto& s : subs) {
    for (int n = 0; n < 5; ++n) {
      expect_event(*s, "sensors/temp", "reading " + std::to_string(n));  // in publish order
    }
  }
  // The publisher is not subscribed: its next frame is the answer to its call.
  expect_response(pub->call(9, kEcho, "after"), 9, "after");
  const pubsub::HubStats st = hub_.total();
  EXPECT_EQ(st.delivered, 15u);
  EXPECT_EQ(st.dropped, 0u);
}

TEST_P(ServerPubsubTest, UnsubscribeAndCloseStopDelivery) {
  start_hub(2);
  auto a = client();
  auto b = client();
  subscribe(*a, "t");
  subscribe(*b, "t");
  ASSERT_TRUE(a->send(make_unsubscribe(test::as_bytes("t"))));
  expect_response(a->call(1, kEcho, "sync"), 1, "sync");
  b.reset();  // closed: its subscription goes with it
  auto pub = client();
  ASSERT_TRUE(test::eventually([&] { return hub_.total().subscriptions == 0; }));
  ASSERT_TRUE(pub->send(make_publish(test::as_bytes("t"), test::as_bytes("x"))));
  expect_response(pub->call(2, kEcho, "done"), 2, "done");
  expect_response(a->call(3, kEcho, "nothing before me"), 3, "nothing before me");
  EXPECT_EQ(hub_.total().delivered, 0u);
}

TEST_P(ServerPubsubTest, TooLargeEventIsRefusedWithTheTopic) {
  start_hub(1);
  auto s = client();
  subscribe(*s, "big");
  const std::string payload(2000, 'x');  // a valid frame, but over the 1 KiB event buffers
  ASSERT_TRUE(s->send(make_publish(test::as_bytes("big"), test::as_bytes(payload))));
  auto e = s->read();
  expect_error(e, 0, ProtocolError::too_large);
  EXPECT_EQ(e->detail(), "big");
  expect_response(s->call(1, kEcho, "open"), 1, "open");  // not fatal
}

TEST_P(ServerPubsubTest, WithoutPubsubTopicFramesAreUnknown) {
  start(Options{});
  auto c = client();
  ASSERT_TRUE(c->send(make_subscribe(test::as_bytes("t"))));
  auto e = c->read();
  expect_error(e, 0, ProtocolError::unknown_method);
  EXPECT_EQ(e->detail(), "t");
}

INSTANTIATE_TEST_SUITE_P(Backends, ServerPubsubTest,
                         ::testing::Values(platform::BackendKind::uring,
                                           platform::BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::msg
