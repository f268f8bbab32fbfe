// weft::client::Client end to end against the real weft::msg::Server, on both backends: the
// server on a one-worker Runtime, the client's Loop driven by the test thread. Concurrent
// out-of-order calls, a deadline that expires (CANCEL reaches the server), an idempotent call
// whose answer was lost and whose retry runs the handler no second time, GOAWAY draining a
// call in flight, and a server (with the real pub/sub hub) restarted under a subscribed
// client.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <weft/client/client.h>
#include <weft/msg/pubsub_topics.h>
#include <weft/msg/server.h>
#include <weft/platform/error.h>
#include <weft/platform/runtime.h>
#include <weft/pubsub/hub.h>

#include "fake_server.h"
#include "test_net.h"

namespace weft::client {
namespace {

using namespace std::chrono_literals;
using msg::method_id;
using platform::BackendKind;
using test::bytes_of;
using test::Outcome;
using test::record;
using test::text_of;

constexpr std::uint32_t kEcho = method_id("weft.test.E2e/Echo");
constexpr std::uint32_t kDelay = method_id("weft.test.E2e/Delay");  // answers after N ms
constexpr std::uint32_t kHold = method_id("weft.test.E2e/Hold");    // never answers by itself
constexpr std::uint32_t kLostOnce = method_id("weft.test.E2e/LostOnce");

// Server-side state: touched by the server's one worker; counters read by the test thread.
struct State {
  struct Timer {
    platform::TimerNode node;
    msg::Deferred call;
    platform::Loop* loop = nullptr;
    bool used = false;
  };
  Timer timers[16];
  msg::Deferred held[16];
  int n_held = 0;
  std::atomic<int> lost_once_runs{0};
};

void echo(void*, msg::Call& c, std::span<const std::byte> p) noexcept {
  (void)c.reply(p);
}
void delay(void* ctx, msg::Call& c, std::span<const std::byte> p) noexcept {
  auto* st = static_cast<State*>(ctx);
  for (State::Timer& t : st->timers) {
    if (!t.used) {
      t.used = true;
      t.call = c.defer();
      t.loop = &c.loop();
      t.node.ctx = &t;
      t.node.fn = [](platform::TimerNode* n) noexcept {
        auto* tt = static_cast<State::Timer*>(n->ctx);
        tt->used = false;
        (void)msg::answer(*tt->loop, tt->call, bytes_of("late"));
      };
      c.loop().timers().schedule(t.node, c.loop().now_ms() + std::stoul(text_of(p)));
      return;
    }
  }
  (void)c.fail(msg::ProtocolError::overloaded);
}
void hold(void* ctx, msg::Call& c, std::span<const std::byte>) noexcept {
  auto* st = static_cast<State*>(ctx);
  st->held[st->n_held++ % 16] = c.defer();
}
// Runs, answers (the answer is recorded for the key), and the first time loses the answer:
// the connection is aborted with the RESPONSE still queued.
void lost_once(void* ctx, msg::Call& c, std::span<const std::byte>) noexcept {
  auto* st = static_cast<State*>(ctx);
  const int n = st->lost_once_runs.fetch_add(1) + 1;
  (void)c.reply(bytes_of("run-" + std::to_string(n)));
  if (n == 1) {
    c.conn().abort(std::make_error_code(std::errc::connection_reset));
  }
}

class E2eTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
    Outcome::completed = 0;
    cfg_ = test::one_worker_config(GetParam());
    cfg_.shared_buffers = 16;  // the hub's event buffers
    cfg_.shared_buffer_size = 1024;
    start_server(0);
    auto l = platform::Loop::create(cfg_, 1);
    ASSERT_TRUE(l.ok()) << l.error().message();
    loop_ = std::move(l.value());
  }
  void TearDown() override {
    if (client_) {
      client_->close();
      spin([&] { return client_->idle(); }, 5s);
      client_.reset();
    }
    stop_server();
  }

  void start_server(std::uint16_t port) {
    msg::Options o;
    o.max_frame = 4096;
    o.max_inflight = 8;
    o.setup = [this](msg::Registry& r, platform::Loop&) {
      EXPECT_TRUE(r.add({kEcho, "weft.test.E2e/Echo", &echo, &state_}));
      EXPECT_TRUE(r.add({kDelay, "weft.test.E2e/Delay", &delay, &state_}));
      EXPECT_TRUE(r.add({kHold, "weft.test.E2e/Hold", &hold, &state_}));
      EXPECT_TRUE(r.add({kLostOnce, "weft.test.E2e/LostOnce", &lost_once, &state_}));
    };
    // The real pub/sub: a new hub per server (it attaches to one runtime's workers).
    hub_ = std::make_unique<pubsub::Hub>();
    ASSERT_TRUE(hub_->init(pubsub::Limits{}, cfg_).ok());
    topics_ = std::make_unique<msg::HubTopics>(*hub_);
    ASSERT_TRUE(topics_->init().ok());
    o.topics = [this](platform::Loop& l) { return topics_->attach(l); };
    server_ = std::make_unique<msg::Server>(std::move(o));
    rt_ = std::make_unique<platform::Runtime>();
    std::vector<platform::Service> services;
    services.push_back(server_->service(platform::Address::loopback_v4(port)));
    auto r = rt_->start(cfg_, std::move(services));
    ASSERT_TRUE(r.ok()) << r.error().message();
    addr_ = rt_->local_address(0);
  }
  void stop_server(std::uint32_t drain_ms = 0) {
    if (rt_) {
      rt_->stop(drain_ms);
      rt_->wait();
      rt_.reset();
      server_.reset();
      topics_.reset();
      hub_.reset();
    }
  }

  void connect(Options o = {}) {
    o.seed = 99;
    auto c = Client::create(*loop_, o);
    ASSERT_TRUE(c.ok()) << c.error().message();
    client_ = std::move(c.value());
    ASSERT_TRUE(client_->connect(addr_).ok());
    ASSERT_TRUE(spin([&] { return client_->ready(); }));
  }
  template <class F>
  bool spin(F done, std::chrono::milliseconds limit = 10s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > end) {
        return done();
      }
      loop_->run_once(2);
    }
    return true;
  }
  Outcome* call(std::uint32_t method, std::string_view payload, CallOptions o = {}) {
    return calls_.start(*client_, method, payload, o);
  }

  platform::Config cfg_;
  State state_;
  std::unique_ptr<pubsub::Hub> hub_;  // outlives the runtime that serves it
  std::unique_ptr<msg::HubTopics> topics_;
  std::unique_ptr<msg::Server> server_;
  std::unique_ptr<platform::Runtime> rt_;
  platform::Address addr_;
  std::unique_ptr<platform::Loop> loop_;
  std::unique_ptr<Client> client_;
  test::Calls calls_;
};

TEST_P(E2eTest, ConcurrentCallsCompleteOutOfOrder) {
  connect();
  Outcome* slow = call(kDelay, "200");
  Outcome* mid = call(kDelay, "80");
  Outcome* fast = call(kEcho, "now");
  ASSERT_TRUE(spin([&] { return slow->calls + mid->calls + fast->calls == 3; }));
  EXPECT_EQ(fast->payload, "now");
  EXPECT_EQ(mid->payload, "late");
  EXPECT_EQ(slow->payload, "late");
  EXPECT_LT(fast->order, mid->order);
  EXPECT_LT(mid->order, slow->order);
}

TEST_P(E2eTest, ExpiredDeadlineCancelsOnTheServer) {
  connect();
  CallOptions co;
  co.deadline_ms = 60;
  Outcome* o = call(kHold, "", co);
  ASSERT_TRUE(spin([&] { return o->calls == 1; }));
  // Either our timer or the server's deadline_exceeded (it got the same budget) ends it.
  EXPECT_TRUE(o->error == platform::platform_errc::timed_out ||
              o->error == msg::ProtocolError::deadline_exceeded)
      << o->error.message();
  ASSERT_TRUE(spin([&] { return client_->pending() == 0; }));
  const msg::ServerStats st = server_->stats();
  EXPECT_EQ(st.cancelled + st.deadline_exceeded, 1u);
  Outcome* next = call(kEcho, "still");
  ASSERT_TRUE(spin([&] { return next->calls == 1; }));
  EXPECT_EQ(next->payload, "still");
}

TEST_P(E2eTest, RetryAfterALostAnswerDoesNotRunTheHandlerAgain) {
  Options o;
  o.reconnect_min_ms = 5;
  o.reconnect_max_ms = 20;
  connect(o);
  CallOptions co;
  co.idempotent = true;
  co.retries = 3;
  co.deadline_ms = 5000;
  Outcome* r = call(kLostOnce, "", co);
  ASSERT_TRUE(spin([&] { return r->calls == 1; }));
  EXPECT_EQ(r->payload, "run-1");  // the first run's answer, replayed for the same key
  EXPECT_EQ(state_.lost_once_runs.load(), 1);
  EXPECT_EQ(server_->stats().idempotent_replays, 1u);
  EXPECT_EQ(client_->stats().retries, 1u);
  // Not idempotent: the lost answer is reported, and nothing is retried.
  Outcome* plain = call(kLostOnce, "");
  ASSERT_TRUE(spin([&] { return plain->calls == 1; }));
  EXPECT_EQ(plain->payload, "run-2");  // the handler aborts only its first connection
}

TEST_P(E2eTest, GoawayLetsTheCallInFlightFinish) {
  Options o;
  o.reconnect = false;
  connect(o);
  Outcome* inflight = call(kDelay, "150");
  ASSERT_TRUE(spin([&] { return server_->stats().requests == 1; }));
  rt_->stop(3000);  // GOAWAY(last_id = our call), then the answer, then close
  ASSERT_TRUE(spin([&] { return inflight->calls == 1; }));
  EXPECT_EQ(inflight->payload, "late");
  EXPECT_FALSE(client_->ready());  // draining since the GOAWAY; nothing new is sent on it
  // The server closes once nothing is owed.
  ASSERT_TRUE(spin([&] { return client_->stats().disconnects == 1; }));
}

void on_event(void* ctx, std::span<const std::byte> topic,
              std::span<const std::byte> payload) noexcept {
  static_cast<std::vector<std::string>*>(ctx)->push_back(text_of(topic) + "=" + text_of(payload));
}

TEST_P(E2eTest, RestartedServerGetsTheSubscriptionsBack) {
  Options o;
  o.reconnect_min_ms = 10;
  o.reconnect_max_ms = 40;
  connect(o);
  std::vector<std::string> events;
  ASSERT_TRUE(client_->subscribe(bytes_of("alerts"), &on_event, &events).ok());
  ASSERT_TRUE(spin([&] { return hub_->total().subscriptions == 1; }));
  ASSERT_TRUE(client_->publish(bytes_of("alerts"), bytes_of("one")).ok());
  ASSERT_TRUE(spin([&] { return events.size() == 1; }));
  const std::uint16_t port = addr_.port();
  stop_server();
  ASSERT_TRUE(spin([&] { return !client_->ready(); }));
  start_server(port);
  ASSERT_TRUE(spin([&] { return client_->ready() && hub_->total().subscriptions == 1; }));
  ASSERT_TRUE(client_->publish(bytes_of("alerts"), bytes_of("two")).ok());
  ASSERT_TRUE(spin([&] { return events.size() == 2; }));
  EXPECT_EQ(events[0], "alerts=one");
  EXPECT_EQ(events[1], "alerts=two");
}

INSTANTIATE_TEST_SUITE_P(Backends, E2eTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::client
