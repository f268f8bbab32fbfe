// weft::client::Pool against the scripted fake server, on both backends: the wait queue at its
// bound (served in order, timeouts reported, overflow refused at once), min_idle and the idle
// timeout, and PING health checks that replace a connection that stopped answering.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <weft/client/pool.h>
#include <weft/platform/error.h>

#include "fake_server.h"
#include "test_net.h"

namespace weft::client {
namespace {

using namespace std::chrono_literals;
using msg::FrameType;
using platform::BackendKind;
using platform::Conn;
using test::FakeScript;
using test::Seen;

struct Lease {
  int calls = 0;
  Client* client = nullptr;
  std::error_code error;
  int order = 0;  // when it was served, among all leases of the test
};
void on_lease(void* ctx, Result<Client*> r) noexcept {
  auto* l = static_cast<Lease*>(ctx);
  ++l->calls;
  l->order = ++test::Outcome::completed;
  if (r.ok()) {
    l->client = r.value();
  } else {
    l->error = r.error();
  }
}

class PoolTest : public test::LoopPairTest {
 protected:
  void TearDown() override {
    if (pool_) {
      pool_->close();
      spin([&] { return pool_->idle(); }, 5s);
      pool_.reset();
    }
  }
  void make_pool(PoolOptions o) {
    o.client.seed = 7;
    auto p = Pool::create(*loop_, server_->addr(), o);
    ASSERT_TRUE(p.ok()) << p.error().message();
    pool_ = std::move(p.value());
  }
  std::unique_ptr<Pool> pool_;
};

TEST_P(PoolTest, WaitQueueAtItsLimitServesInOrderAndReportsTimeouts) {
  PoolOptions o;
  o.max_size = 1;
  o.min_idle = 0;
  o.max_waiters = 4;
  o.health_interval_ms = 0;
  make_pool(o);
  Lease first;
  ASSERT_TRUE(pool_->acquire(5000, &on_lease, &first).ok());
  EXPECT_EQ(first.calls, 0);  // never inside acquire()
  ASSERT_TRUE(spin([&] { return first.calls == 1; }));
  ASSERT_NE(first.client, nullptr);
  EXPECT_TRUE(first.client->ready());
  // The one connection is lent: the next callers wait, in order, up to their deadlines.
  Lease b, c, d, e;
  ASSERT_TRUE(pool_->acquire(5000, &on_lease, &b).ok());
  ASSERT_TRUE(pool_->acquire(60, &on_lease, &c).ok());  // will time out in the queue
  ASSERT_TRUE(pool_->acquire(5000, &on_lease, &d).ok());
  ASSERT_TRUE(pool_->acquire(5000, &on_lease, &e).ok());
  Lease refused;
  EXPECT_EQ(pool_->acquire(5000, &on_lease, &refused).error(), client_errc::overloaded);
  EXPECT_EQ(pool_->waiting(), 4u);
  ASSERT_TRUE(spin([&] { return c.calls == 1; }));
  EXPECT_EQ(c.error, platform::platform_errc::timed_out);
  EXPECT_EQ(b.calls + d.calls + e.calls, 0);  // no second connection was opened for them
  EXPECT_EQ(pool_->size(), 1u);
  pool_->release(first.client);
  ASSERT_TRUE(spin([&] { return b.calls == 1; }));
  EXPECT_EQ(b.client, first.client);
  pool_->release(b.client);
  ASSERT_TRUE(spin([&] { return d.calls == 1; }));
  pool_->release(d.client);
  ASSERT_TRUE(spin([&] { return e.calls == 1; }));
  EXPECT_LT(b.order, d.order);
  EXPECT_LT(d.order, e.order);
  EXPECT_EQ(refused.calls, 0);
  EXPECT_EQ(script_.accepted, 1);
  EXPECT_EQ(pool_->stats().wait_timeouts, 1u);
  EXPECT_EQ(pool_->stats().refused, 1u);
  pool_->release(e.client);
}

TEST_P(PoolTest, KeepsMinIdleAndClosesConnectionsIdlePastTheTimeout) {
  PoolOptions o;
  o.max_size = 3;
  o.min_idle = 1;
  o.idle_timeout_ms = 100;
  o.health_interval_ms = 0;
  make_pool(o);
  ASSERT_TRUE(spin([&] { return pool_->available() == 1; }));  // min_idle from the start
  Lease l[3];
  for (Lease& x : l) {
    ASSERT_TRUE(pool_->acquire(5000, &on_lease, &x).ok());
  }
  ASSERT_TRUE(spin([&] { return l[0].calls + l[1].calls + l[2].calls == 3; }));
  EXPECT_EQ(script_.accepted, 3);
  EXPECT_NE(l[0].client, l[1].client);
  for (Lease& x : l) {
    pool_->release(x.client);
  }
  EXPECT_EQ(pool_->available(), 3u);
  // Two of them go after the idle timeout; min_idle keeps one.
  ASSERT_TRUE(spin([&] { return script_.closed == 2; }));
  spin([&] { return false; }, 150ms);
  EXPECT_EQ(pool_->available(), 1u);
  EXPECT_EQ(script_.closed, 2);
  EXPECT_EQ(pool_->stats().idle_closed, 2u);
  // And they open again on demand.
  Lease m[2];
  for (Lease& x : m) {
    ASSERT_TRUE(pool_->acquire(5000, &on_lease, &x).ok());
  }
  ASSERT_TRUE(spin([&] { return m[0].calls + m[1].calls == 2; }));
  ASSERT_NE(m[0].client, nullptr);
  ASSERT_NE(m[1].client, nullptr);
  pool_->release(m[0].client);
  pool_->release(m[1].client);
}

TEST_P(PoolTest, HealthCheckReplacesAConnectionThatStoppedAnswering) {
  script_.answer_ping = false;  // PINGs reach on_frame: only the second connection answers
  script_.on_frame = [&](Conn& c, const Seen& s) {
    if (s.type == FrameType::ping && s.conn >= 2) {
      test::send(c, msg::make_pong(s.id, test::bytes_of(s.payload)));
    }
  };
  PoolOptions o;
  o.max_size = 1;
  o.min_idle = 1;
  o.health_interval_ms = 40;
  o.health_timeout_ms = 250;  // generous: a slow CI machine must not fail a good connection
  o.client.reconnect_min_ms = 5;
  o.client.reconnect_max_ms = 20;
  make_pool(o);
  ASSERT_TRUE(spin([&] { return pool_->stats().health_failures == 1; }));
  ASSERT_TRUE(spin([&] { return script_.accepted == 2 && pool_->available() == 1; }));
  // The new connection answers its checks: no further failures.
  spin([&] { return false; }, 200ms);
  EXPECT_EQ(pool_->stats().health_failures, 1u);
  EXPECT_EQ(script_.accepted, 2);
  Lease l;
  ASSERT_TRUE(pool_->acquire(1000, &on_lease, &l).ok());
  ASSERT_TRUE(spin([&] { return l.calls == 1; }));
  ASSERT_NE(l.client, nullptr);
  pool_->release(l.client);
}

INSTANTIATE_TEST_SUITE_P(Backends, PoolTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::client
