// Server-Sent Events through weft::http::Server over loopback, both backends: the response
// head, ordering and ids, exact Last-Event-ID resume, the ring-overflow marker, heartbeats,
// 2,000 concurrent subscribers receiving every event, and a subscriber that stops reading
// not delaying the others.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <weft/http/server.h>
#include <weft/http/streams.h>
#include <weft/pubsub/hub.h>

#include "http_server_test.h"

namespace weft::test {
namespace {

using http::Exchange;
using http::Method;

http::sse::Streams* g_streams = nullptr;

void events(void* ctx, Exchange& ex) noexcept {
  (void)ctx;
  (void)ex.events(ex.param("topic"));
}

// POST /publish/{topic}: the body is one event; answers 202 with the id.
void publish(void*, Exchange& ex) noexcept {
  auto r = g_streams->publish(ex.loop(), ex.param("topic"), {}, ex.body());
  if (!r) {
    (void)ex.respond(500, "text/plain", r.error().message());
    return;
  }
  (void)ex.respond(202, "text/plain", r.value().id_view());
}

class HttpSse : public HttpServerTest {
 protected:
  void start_sse(std::uint32_t workers, http::sse::StreamLimits sl = {},
                 std::uint32_t heartbeat_ms = 15000, std::uint32_t max_conns = 32) {
    platform::Config cfg = config(workers);
    cfg.max_connections = max_conns;
    cfg.recv_buffers = max_conns > 256 ? 1024 : 64;  // a power of two
    cfg.send_buffers = std::max<std::uint32_t>(64, max_conns);
    cfg.shared_buffers = 256;
    cfg.shared_buffer_size = 4096;
    pubsub::Limits pl;
    pl.max_subscriptions = max_conns;
    pl.max_queued_bytes = 300 * 1024;
    ASSERT_TRUE(hub_.init(pl, cfg));
    ASSERT_TRUE(streams_.init(sl));
    ASSERT_TRUE(streams_.attach_hub(hub_));
    g_streams = &streams_;
    http::ServerConfig sc = server_config();
    sc.streams = &streams_;
    sc.sse_heartbeat_ms = heartbeat_ms;
    sc.setup = [](http::Router& r, platform::Loop&) {
      ASSERT_TRUE(r.add(Method::get, "/events/{topic}", &events, nullptr));
      ASSERT_TRUE(r.add(Method::post, "/publish/{topic}", &publish, nullptr));
    };
    start_with(cfg, std::move(sc));
    ASSERT_TRUE(rt_ != nullptr);
  }
  // Publishes `data` on topic over HTTP; returns the event id.
  std::string post(const std::string& topic, const std::string& data) {
    auto r = once("POST /publish/" + topic + " HTTP/1.1\r\nHost: a\r\nContent-Length: " +
                  std::to_string(data.size()) + "\r\n\r\n" + data);
    EXPECT_TRUE(r.has_value());
    EXPECT_EQ(r ? r->status : 0, 202);
    return r ? r->body : std::string();
  }
  // Opens a stream; returns the client after the response head.
  std::unique_ptr<HttpClient> subscribe(const std::string& topic, const std::string& last = {}) {
    auto c = client();
    std::string req = "GET /events/" + topic + " HTTP/1.1\r\nHost: a\r\n";
    if (!last.empty()) {
      req += "Last-Event-ID: " + last + "\r\n";
    }
    EXPECT_TRUE(c->send(req + "\r\n"));
    EXPECT_TRUE(c->read_until("\r\n\r\n"));
    const std::string head = c->buffered().substr(0, c->buffered().find("\r\n\r\n") + 4);
    c->buffered().erase(0, head.size());
    EXPECT_NE(head.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << head;
    EXPECT_NE(head.find("Content-Type: text/event-stream\r\n"), std::string::npos) << head;
    EXPECT_NE(head.find("Cache-Control: no-cache\r\n"), std::string::npos) << head;
    EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
    return c;
  }
  // Reads `n` events (blocks separated by a blank line, comments skipped) from c.
  static std::vector<std::string> events_of(HttpClient& c, std::size_t n) {
    std::vector<std::string> out;
    while (out.size() < n) {
      std::string& b = c.buffered();
      const std::size_t end = b.find("\n\n");
      if (end == std::string::npos) {
        if (!c.read_until("\n\n")) {
          break;
        }
        continue;
      }
      std::string ev = b.substr(0, end + 2);
      b.erase(0, end + 2);
      if (ev[0] != ':') {
        out.push_back(ev);
      }
    }
    return out;
  }
  static std::string field(const std::string& ev, const std::string& name) {
    const std::size_t p = ev.find(name + ": ");
    if (p == std::string::npos) {
      return {};
    }
    const std::size_t e = ev.find('\n', p);
    return ev.substr(p + name.size() + 2, e - p - name.size() - 2);
  }

  pubsub::Hub hub_;
  http::sse::Streams streams_;
};

TEST_P(HttpSse, EventsArriveInOrderWithIds) {
  start_sse(1);
  auto c = subscribe("t");
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(post("t", "event " + std::to_string(i) + "\nsecond line"));
  }
  const auto evs = events_of(*c, 5);
  ASSERT_EQ(evs.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(field(evs[i], "id"), ids[i]);
    EXPECT_NE(evs[i].find("data: event " + std::to_string(i) + "\ndata: second line\n"),
              std::string::npos)
        << evs[i];
  }
}

TEST_P(HttpSse, LastEventIdResumesExactly) {
  start_sse(2);
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    ids.push_back(post("r", std::to_string(i)));
  }
  auto c = subscribe("r", ids[3]);
  const auto evs = events_of(*c, 6);
  ASSERT_EQ(evs.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(field(evs[i], "id"), ids[4 + i]);
    EXPECT_EQ(field(evs[i], "data"), std::to_string(4 + i));
  }
  // Live events continue after the replay, no duplicate, no gap.
  const std::string next = post("r", "live");
  const auto live = events_of(*c, 1);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(field(live[0], "id"), next);
}

TEST_P(HttpSse, RingOverflowSendsAMarkerWithTheMissedCount) {
  http::sse::StreamLimits sl;
  sl.ring_events = 4;
  start_sse(1, sl);
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    ids.push_back(post("o", std::to_string(i)));
  }
  auto c = subscribe("o", ids[1]);  // events 2..5 were evicted; 6..9 are in the ring
  const auto evs = events_of(*c, 5);
  ASSERT_EQ(evs.size(), 5u);
  EXPECT_EQ(field(evs[0], "event"), "weft.gap");
  EXPECT_NE(evs[0].find("\"reason\":\"ring_overflow\""), std::string::npos) << evs[0];
  EXPECT_NE(evs[0].find("\"missed\":4"), std::string::npos) << evs[0];
  EXPECT_EQ(field(evs[0], "id"), "") << "a marker must not move the client's last id";
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(field(evs[1 + i], "id"), ids[6 + i]);
  }
  // An id from another server run: the marker says so, then the whole ring.
  auto u = subscribe("o", "00000000-5");
  const auto all = events_of(*u, 5);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_NE(all[0].find("\"reason\":\"unknown_id\""), std::string::npos) << all[0];
  EXPECT_EQ(field(all[1], "id"), ids[6]);
}

TEST_P(HttpSse, HeartbeatCommentsKeepTheStreamAlive) {
  start_sse(1, {}, 100);
  auto c = subscribe("h");
  ASSERT_TRUE(c->read_until(":\n\n"));
}

TEST_P(HttpSse, TwoThousandSubscribersReceiveEveryEvent) {
  constexpr int kSubs = 2000;
  // Both ends live in this process: 4,000 descriptors and more.
  rlimit rl{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur < 4500) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 8192);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
  }
  if (rl.rlim_cur < 4500) {
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << rl.rlim_max << " < 4500";
  }
  start_sse(2, {}, 15000, 2200);
  ASSERT_FALSE(HasFatalFailure());
  std::vector<int> fds;
  fds.reserve(kSubs);
  const std::string req = "GET /events/many HTTP/1.1\r\nHost: a\r\n\r\n";
  for (int i = 0; i < kSubs; ++i) {
    const int fd = connect_to(addr_);
    ASSERT_GE(fd, 0) << i;
    ASSERT_TRUE(write_all(fd, req.data(), req.size()));
    fds.push_back(fd);
  }
  ASSERT_TRUE(
      eventually([&] { return server_->stats().streams_open == kSubs; }, std::chrono::seconds(30)))
      << server_->stats().streams_open;
  constexpr int kEvents = 3;
  for (int e = 0; e < kEvents; ++e) {
    post("many", "payload " + std::to_string(e));
  }
  // Every subscriber: the head, then the three events in order.
  int complete = 0;
  std::string got;
  char buf[8192];
  for (const int fd : fds) {
    got.clear();
    set_timeouts(fd, 10000);
    while (got.find("data: payload 2\n\n") == std::string::npos) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        break;
      }
      got.append(buf, static_cast<std::size_t>(n));
    }
    const std::size_t a = got.find("data: payload 0\n");
    const std::size_t b = got.find("data: payload 1\n");
    const std::size_t c = got.find("data: payload 2\n");
    complete += a != std::string::npos && a < b && b < c && c != std::string::npos ? 1 : 0;
    ::close(fd);
  }
  EXPECT_EQ(complete, kSubs);
}

TEST_P(HttpSse, AStalledSubscriberDoesNotDelayTheOthers) {
  http::sse::StreamLimits sl;
  sl.max_queued_bytes = 64 * 1024;
  start_sse(1, sl);
  // The stalled one: a tiny receive buffer, never read.
  const int stalled = connect_to(addr_, 5000, 4096);
  ASSERT_GE(stalled, 0);
  const std::string req = "GET /events/s HTTP/1.1\r\nHost: a\r\n\r\n";
  ASSERT_TRUE(write_all(stalled, req.data(), req.size()));
  auto fast = subscribe("s");
  ASSERT_TRUE(eventually([&] { return server_->stats().streams_open == 2; }));
  // Fill the stalled subscriber's path (the kernel's socket buffers first, then weft's queue
  // up to its cap): 3 KB events until it drops some, a bounded number of them.
  const std::string big(3000, 'x');
  for (int i = 0; i < 4000 && streams_.stats().dropped == 0; ++i) {
    post("s", big);
    ASSERT_EQ(events_of(*fast, 1).size(), 1u) << i;
  }
  EXPECT_GT(streams_.stats().dropped, 0u) << "the stalled subscriber never hit its cap";
  // The fast subscriber's publish-to-receive time stays small while the other is stalled.
  std::vector<double> ms;
  for (int i = 0; i < 50; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    post("s", "tick");
    ASSERT_EQ(events_of(*fast, 1).size(), 1u);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  EXPECT_LT(ms[ms.size() / 2], 50.0) << "median publish-to-receive with a stalled peer";
  ::close(stalled);
}

INSTANTIATE_TEST_SUITE_P(Backends, HttpSse,
                         ::testing::Values(platform::BackendKind::uring,
                                           platform::BackendKind::epoll),
                         BackendName());

}  // namespace
}  // namespace weft::test
