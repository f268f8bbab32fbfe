// weft::client::BlockingClient from ordinary threads against the scripted fake server on a
// Runtime (its own thread), on both backends: concurrent calls from several threads, events,
// ping, one-way frames, deadlines, and a connect that finds nobody. Run under TSan in CI.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <weft/client/blocking.h>
#include <weft/platform/error.h>

#include "fake_server.h"
#include "test_net.h"

namespace weft::client {
namespace {

using msg::FrameType;
using platform::BackendKind;
using platform::Conn;
using test::bytes_of;
using test::FakeScript;
using test::Seen;

std::string text(const std::vector<std::byte>& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

class BlockingTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
    // The script runs on the server's thread only; the test reads nothing of it.
    script_.on_frame = [](Conn& c, const Seen& s) {
      if (s.type == FrameType::request && s.method == 1) {
        test::send(c, msg::make_response(s.id, bytes_of("re:" + s.payload)));
      } else if (s.type == FrameType::subscribe || s.type == FrameType::message) {
        test::send(c, msg::make_event(bytes_of(s.type == FrameType::message ? "msg" : s.topic),
                                      bytes_of("ev:" + s.payload)));
      }  // method 2: never answered
    };
    std::vector<platform::Service> services;
    services.push_back({platform::Address::loopback_v4(0), [this](platform::Loop&) {
                          return std::make_unique<test::FakeFactory>(&script_);
                        }});
    auto r = server_.start(test::one_worker_config(GetParam()), std::move(services));
    ASSERT_TRUE(r.ok()) << r.error().message();
    opts_.config.backend = GetParam();
  }

  FakeScript script_;
  platform::Runtime server_;
  BlockingOptions opts_;
};

TEST_P(BlockingTest, CallsFromSeveralThreadsShareOneConnection) {
  auto bc = BlockingClient::connect(server_.local_address(0), opts_);
  ASSERT_TRUE(bc.ok()) << bc.error().message();
  BlockingClient& c = *bc.value();
  EXPECT_TRUE(c.ready());
  constexpr int kThreads = 4;
  constexpr int kCalls = 50;
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const std::string p = std::to_string(t) + "/" + std::to_string(i);
        auto r = c.call(1, bytes_of(p));
        if (r.ok() && text(r.value()) == "re:" + p) {
          good.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(good.load(), kThreads * kCalls);
  const ClientStats st = c.stats();
  EXPECT_EQ(st.responses, static_cast<std::uint64_t>(kThreads * kCalls));
  EXPECT_EQ(st.connects, 1u);
}

TEST_P(BlockingTest, EventsPingAndOneWayFrames) {
  auto bc = BlockingClient::connect(server_.local_address(0), opts_);
  ASSERT_TRUE(bc.ok()) << bc.error().message();
  BlockingClient& c = *bc.value();
  ASSERT_TRUE(c.subscribe(bytes_of("news")).ok());
  auto e = c.next_event(5000);
  ASSERT_TRUE(e.ok()) << e.error().message();
  EXPECT_EQ(e->topic, "news");
  ASSERT_TRUE(c.subscribe(bytes_of("msg")).ok());
  ASSERT_TRUE(c.next_event(5000).ok());  // the SUBSCRIBE's own event
  ASSERT_TRUE(c.message(9, bytes_of("hi")).ok());
  auto m = c.next_event(5000);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->topic, "msg");
  EXPECT_EQ(text(m->payload), "ev:hi");
  EXPECT_EQ(c.next_event(20).error(), platform::platform_errc::timed_out);
  auto rtt = c.ping(2000);
  ASSERT_TRUE(rtt.ok()) << rtt.error().message();
  EXPECT_LT(rtt.value(), 2000u);
  EXPECT_TRUE(c.publish(bytes_of("news"), bytes_of("x")).ok());
  EXPECT_TRUE(c.unsubscribe(bytes_of("news")).ok());
}

TEST_P(BlockingTest, UnansweredCallEndsAtItsDeadline) {
  auto bc = BlockingClient::connect(server_.local_address(0), opts_);
  ASSERT_TRUE(bc.ok()) << bc.error().message();
  CallOptions co;
  co.deadline_ms = 100;
  auto r = bc.value()->call(2, bytes_of("void"), co);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), platform::platform_errc::timed_out);
  auto again = bc.value()->call(1, bytes_of("after"));  // the connection still serves
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(text(again.value()), "re:after");
}

TEST_P(BlockingTest, ConnectToNobodyTimesOut) {
  auto fd = platform::listen_socket(platform::Address::loopback_v4(0), false, 1);
  ASSERT_TRUE(fd.ok());
  auto addr = platform::Address::local_of(fd.value());
  ASSERT_TRUE(addr.ok());
  ::close(fd.value());  // nothing listens there now: every connect is refused
  opts_.connect_timeout_ms = 300;
  auto bc = BlockingClient::connect(addr.value(), opts_);
  ASSERT_FALSE(bc.ok());
  EXPECT_EQ(bc.error(), platform::platform_errc::timed_out);
}

INSTANTIATE_TEST_SUITE_P(Backends, BlockingTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::client
