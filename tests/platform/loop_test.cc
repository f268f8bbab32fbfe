// Unit tests of the Loop API driven by run_once() on the test thread: outbound connects,
// stale handles, refused connects, posts between loops.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include <weft/platform/error.h>
#include <weft/platform/handler_pool.h>
#include <weft/platform/loop.h>
#include <weft/platform/runtime.h>

#include "echo_service.h"
#include "test_net.h"

namespace weft::platform {
namespace {

struct ClientState {
  std::string received;
  std::error_code closed_with;
  bool opened = false;
  bool closed = false;
  ConnId id;
};

// Sends one framed "hello" on open and records what comes back.
class HelloClient final : public Handler {
 public:
  explicit HelloClient(ClientState* s) : s_(s) {}
  void reset(Conn& c) noexcept { s_->id = c.id(); }
  void on_open(Conn& c) noexcept override {
    s_->opened = true;
    const std::uint8_t frame[] = {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
    EXPECT_TRUE(c.send_copy(std::as_bytes(std::span(frame))).ok());
  }
  void on_data(Conn&, BufView in) noexcept override {
    s_->received.append(reinterpret_cast<const char*>(in.bytes.data()), in.bytes.size());
  }
  void on_close(Conn&, std::error_code reason) noexcept override {
    s_->closed = true;
    s_->closed_with = reason;
  }

 private:
  ClientState* s_;
};

class LoopTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
    cfg_.backend = GetParam();
    cfg_.max_connections = 16;
    cfg_.recv_buffers = 16;
    cfg_.send_buffers = 16;
    cfg_.buffer_size = 4096;
    auto l = Loop::create(cfg_, 0);
    ASSERT_TRUE(l.ok()) << l.error().message();
    loop_ = std::move(l.value());
  }

  template <class F>
  bool spin(F done, int max_iterations = 2000) {
    for (int i = 0; i < max_iterations && !done(); ++i) {
      loop_->run_once(10);
    }
    return done();
  }

  Config cfg_;
  std::unique_ptr<Loop> loop_;
};

TEST_P(LoopTest, OutboundConnectEchoAndStaleHandle) {
  auto listen = listen_socket(Address::loopback_v4(0), false, 16);
  ASSERT_TRUE(listen.ok());
  auto local = Address::local_of(listen.value());
  ASSERT_TRUE(local.ok());
  auto echo = examples::make_echo_factory(*loop_, {});
  ASSERT_TRUE(loop_->add_listener(listen.value(), *echo).ok());

  ClientState st;
  HandlerPool<HelloClient> clients(1, &st);
  auto id = loop_->connect(local.value(), clients);
  ASSERT_TRUE(id.ok()) << id.error().message();
  ASSERT_TRUE(spin([&] { return st.received.size() == 9; }));
  EXPECT_TRUE(st.opened);
  EXPECT_EQ(st.received.substr(4), "hello");
  EXPECT_EQ(loop_->stats().snapshot().connected, 1u);

  Conn* c = loop_->find(id.value());
  ASSERT_NE(c, nullptr);
  c->close();
  ASSERT_TRUE(spin([&] { return st.closed; }));
  EXPECT_FALSE(st.closed_with) << st.closed_with.message();
  EXPECT_EQ(loop_->find(id.value()), nullptr);  // the handle is stale now
  // The slot is reused with a new generation: the old id still finds nothing.
  ClientState st2;
  HandlerPool<HelloClient> clients2(1, &st2);
  auto id2 = loop_->connect(local.value(), clients2);
  ASSERT_TRUE(id2.ok());
  ASSERT_TRUE(spin([&] { return st2.received.size() == 9; }));
  EXPECT_EQ(loop_->find(id.value()), nullptr);
  EXPECT_NE(loop_->find(id2.value()), nullptr);
}

TEST_P(LoopTest, RefusedConnectReportsTheError) {
  // A port that was just bound and closed: nothing listens there.
  auto s = listen_socket(Address::loopback_v4(0), false, 1);
  ASSERT_TRUE(s.ok());
  auto local = Address::local_of(s.value());
  ::close(s.value());
  ClientState st;
  HandlerPool<HelloClient> clients(1, &st);
  auto id = loop_->connect(local.value(), clients);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(spin([&] { return st.closed; }));
  EXPECT_FALSE(st.opened);
  EXPECT_EQ(st.closed_with, std::error_code(ECONNREFUSED, std::system_category()));
  EXPECT_EQ(loop_->active_connections(), 0u);
}

TEST_P(LoopTest, ConnectionLimitIsAnError) {
  auto listen = listen_socket(Address::loopback_v4(0), false, 64);
  ASSERT_TRUE(listen.ok());
  auto local = Address::local_of(listen.value());
  ClientState st[17];
  std::vector<std::unique_ptr<HandlerPool<HelloClient>>> pools;
  for (int i = 0; i < 16; ++i) {
    pools.push_back(std::make_unique<HandlerPool<HelloClient>>(1, &st[i]));
    ASSERT_TRUE(loop_->connect(local.value(), *pools.back()).ok());
  }
  HandlerPool<HelloClient> extra(1, &st[16]);
  auto r = loop_->connect(local.value(), extra);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), make_error_code(platform_errc::connection_limit));
  ::close(listen.value());
}

TEST_P(LoopTest, BadConfigIsRejected) {
  Config bad = cfg_;
  bad.recv_buffers = 100;  // not a power of two
  auto l = Loop::create(bad, 0);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error(), make_error_code(platform_errc::invalid_argument));
  bad = cfg_;
  bad.low_watermark = bad.high_watermark;
  EXPECT_FALSE(Loop::create(bad, 0).ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, LoopTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

// Posts between two runtime workers: a counter bounced back and forth 10,000 times.
struct PingPong {
  std::atomic<std::uint64_t> count{0};
  std::atomic<bool> done{false};
  Loop* loops[2] = {};
};

void bounce(Loop& self, const Post& p) {
  auto* pp = static_cast<PingPong*>(p.ptr);
  pp->count.fetch_add(1);
  if (p.a == 10000) {
    pp->done.store(true);
    return;
  }
  Loop& other = *pp->loops[self.index() ^ 1];
  EXPECT_TRUE(self.post(other, Post{&bounce, pp, p.a + 1, 0}).ok());
}

TEST(RuntimeTest, PostsBetweenWorkers) {
  Config cfg;
  cfg.workers = 2;
  cfg.max_connections = 4;
  cfg.recv_buffers = 8;
  cfg.send_buffers = 8;
  Runtime rt;
  ASSERT_TRUE(rt.start(cfg, {}).ok());
  PingPong pp;
  pp.loops[0] = &rt.worker(0);
  pp.loops[1] = &rt.worker(1);
  // inject() is the control-plane entry from a foreign thread; the workers then bounce the
  // counter to each other through their SPSC rings.
  ASSERT_TRUE(rt.worker(0).inject(Post{&bounce, &pp, 0, 0}).ok());
  EXPECT_TRUE(test::eventually([&] { return pp.done.load(); }));
  EXPECT_EQ(pp.count.load(), 10001u);
  const auto s0 = rt.worker(0).stats().snapshot();
  const auto s1 = rt.worker(1).stats().snapshot();
  EXPECT_EQ(s0.posts + s1.posts, 10001u);
  rt.stop(10);
  rt.wait();
}

}  // namespace
}  // namespace weft::platform
