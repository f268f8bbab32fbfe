// "Zero allocation" for the HTTP server, proved: this binary links weft::alloc_counter (the
// process's allocator counts) and asserts that after a warm-up the whole process — two
// server workers and the test's own clients — allocates nothing while it serves pipelined
// plaintext, echo bodies (whole in one read, split across reads into a body slot, chunked),
// 404s, deferred responses answered by the other worker, and SSE fan-out of published events
// to subscribers on both workers. The clients write pre-built requests and read exact byte
// counts into fixed buffers (every response has a fixed size: the Date header is fixed-width),
// so anything counted is the server's.
#include <weft/http/server.h>

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <thread>

#include <weft/base/alloc_counter.h>
#include <weft/http/streams.h>
#include <weft/platform/runtime.h>
#include <weft/pubsub/hub.h>

#include "test_net.h"

namespace weft::http {
namespace {

using platform::BackendKind;

void plaintext(void*, Exchange& ex) noexcept {
  (void)ex.respond_static(200, "text/plain", "Hello, World!");
}
void echo(void*, Exchange& ex) noexcept {
  (void)ex.respond(200, "application/octet-stream", ex.body());
}
void events(void*, Exchange& ex) noexcept {
  (void)ex.events("ticks");
}
// One deferred request per worker at a time (each connection sends one per batch).
Deferred g_far[2];
void far(void*, Exchange& ex) noexcept {
  const std::uint32_t me = ex.loop().index();
  g_far[me] = ex.defer();
  platform::Post p;
  p.a = me;
  p.fn = [](platform::Loop& there, const platform::Post& post) noexcept {
    (void)respond(there, g_far[post.a], 200, "text/plain", "far");
  };
  if (!ex.loop().post((me + 1) % ex.loop().worker_count(), p)) {
    (void)respond(ex.loop(), g_far[me], 500, "text/plain", "post");
  }
}

// Publishes one event from worker 0 when the test asks (a post from an injected message).
http::sse::Streams* g_streams = nullptr;
void publish_on(platform::Loop& loop, const platform::Post&) noexcept {
  (void)g_streams->publish(loop, "ticks", {}, "0123456789abcdef");
}

// Reads exactly n bytes into buf (no allocation); false on EOF/timeout.
bool read_n(int fd, char* buf, std::size_t n) {
  return test::read_exact(fd, buf, n);
}

// The byte count of one response whose head ends at the first CRLFCRLF, with the
// Content-Length found there (warm-up only: allocates freely).
std::size_t response_size(const std::string& bytes) {
  const std::size_t end = bytes.find("\r\n\r\n");
  const std::size_t cl = bytes.find("Content-Length: ");
  return end + 4 + std::stoul(bytes.substr(cl + 16));
}

// Reads one whole response the slow way (warm-up), returning its bytes.
std::string read_response(int fd) {
  std::string s;
  char c;
  while (s.find("\r\n\r\n") == std::string::npos) {
    if (!test::read_exact(fd, &c, 1)) {
      return {};
    }
    s += c;
  }
  const std::size_t cl = s.find("Content-Length: ");
  const std::size_t n = std::stoul(s.substr(cl + 16));
  std::string body(n, '\0');
  if (n != 0 && !test::read_exact(fd, body.data(), n)) {
    return {};
  }
  return s + body;
}

class HttpZeroAllocTest : public ::testing::TestWithParam<BackendKind> {};

TEST_P(HttpZeroAllocTest, SteadyStateServingAllocatesNothing) {
  if (!alloc::enabled()) {
    GTEST_SKIP() << "the counting allocator is not installed (sanitizer build)";
  }
  std::string why;
  if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
    GTEST_SKIP() << "io_uring unavailable here: " << why;
  }
  platform::Config cfg = test::one_worker_config(GetParam());
  cfg.workers = 2;
  cfg.shared_buffers = 64;
  cfg.shared_buffer_size = 4096;
  cfg.accept_mode = platform::AcceptMode::round_robin;
  pubsub::Hub hub;
  ASSERT_TRUE(hub.init({}, cfg));
  sse::Streams streams;
  ASSERT_TRUE(streams.init({}));
  ASSERT_TRUE(streams.attach_hub(hub));
  g_streams = &streams;
  ServerConfig sc;
  sc.parser.max_body_size = 16 * 1024;
  sc.body_slots = 4;
  sc.assembly_slots = 4;
  sc.streams = &streams;
  sc.max_requests_per_connection = 0;  // 20,000 requests per connection below
  sc.setup = [](Router& r, platform::Loop&) {
    EXPECT_TRUE(r.add(Method::get, "/plaintext", &plaintext, nullptr));
    EXPECT_TRUE(r.add(Method::post, "/echo", &echo, nullptr));
    EXPECT_TRUE(r.add(Method::get, "/far", &far, nullptr));
    EXPECT_TRUE(r.add(Method::get, "/events", &events, nullptr));
  };
  Server server(std::move(sc));
  platform::Runtime rt;
  std::vector<platform::Service> services;
  services.push_back(server.service(platform::Address::parse("127.0.0.1:0").value()));
  ASSERT_TRUE(rt.start(cfg, std::move(services)).ok());
  const platform::Address addr = rt.local_address(0);

  // Two request connections (one per worker under round-robin accept).
  constexpr int kConns = 2;
  int fds[kConns];
  for (int& fd : fds) {
    fd = test::connect_to(addr);
    ASSERT_GE(fd, 0);
  }
  const std::string body(3000, 'b');
  const std::string plain = "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string by_len =
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3000\r\n\r\n" + body;
  const std::string chunked =
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "bb8\r\n" +
      body + "\r\n0\r\n\r\n";
  const std::string missing = "GET /missing HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string farq = "GET /far HTTP/1.1\r\nHost: a\r\n\r\n";
  std::string batch;
  for (int i = 0; i < 8; ++i) {
    batch += plain;
  }
  batch += by_len + chunked + missing + farq;
  const int per_batch = 12;
  // Sizes of the responses, learnt in the warm-up.
  std::size_t sizes[per_batch] = {};
  {
    ASSERT_TRUE(test::write_all(fds[0], batch.data(), batch.size()));
    for (int k = 0; k < per_batch; ++k) {
      const std::string r = read_response(fds[0]);
      ASSERT_FALSE(r.empty()) << k;
      sizes[k] = response_size(r);
    }
  }
  std::size_t total = 0;
  for (const std::size_t s : sizes) {
    total += s;
  }
  // Event streams: two subscribers (one per worker).
  int subs[2];
  for (int& fd : subs) {
    fd = test::connect_to(addr);
    ASSERT_GE(fd, 0);
    const std::string req = "GET /events HTTP/1.1\r\nHost: a\r\n\r\n";
    ASSERT_TRUE(test::write_all(fd, req.data(), req.size()));
    std::string head;
    char c;
    while (head.find("\r\n\r\n") == std::string::npos) {
      ASSERT_TRUE(test::read_exact(fd, &c, 1));
      head += c;
    }
  }
  ASSERT_TRUE(test::eventually([&] { return server.stats().streams_open == 2; }));
  // One event's size: publish one and read it on the first subscriber.
  std::size_t event_size = 0;
  {
    platform::Post p;
    p.fn = &publish_on;
    ASSERT_TRUE(rt.worker(0).inject(p));
    std::string ev;
    char c;
    for (int fdi = 0; fdi < 2; ++fdi) {
      ev.clear();
      while (ev.size() < 2 || ev.compare(ev.size() - 2, 2, "\n\n") != 0) {
        ASSERT_TRUE(test::read_exact(subs[fdi], &c, 1));
        ev += c;
      }
    }
    event_size = ev.size();
  }
  std::array<char, 64 * 1024> buf{};
  ASSERT_LE(total, buf.size());
  auto round = [&]() -> bool {
    for (int i = 0; i < kConns; ++i) {
      if (!test::write_all(fds[i], batch.data(), batch.size())) {
        return false;
      }
    }
    for (int i = 0; i < kConns; ++i) {
      if (!read_n(fds[i], buf.data(), total) || std::memcmp(buf.data(), "HTTP/1.1 200", 12) != 0) {
        ADD_FAILURE() << "responses on connection " << i << ": "
                      << std::string_view(buf.data(), 64);
        return false;
      }
    }
    // An event to both subscribers. The event id's seq grows a digit at 10, 100, ...: the
    // rounds stay within one digit count (see below).
    platform::Post p;
    p.fn = &publish_on;
    if (!rt.worker(0).inject(p)) {
      ADD_FAILURE() << "inject";
      return false;
    }
    for (const int fd : subs) {
      if (!read_n(fd, buf.data(), event_size) || std::memcmp(buf.data(), "id: ", 4) != 0) {
        ADD_FAILURE() << "event: " << std::string_view(buf.data(), event_size);
        return false;
      }
    }
    return true;
  };
  // Warm-up to seq 99 (events 2..99), then measure 800 rounds (seq 100..899: same size).
  for (int r = 0; r < 98; ++r) {
    if (r == 8) {
      event_size += 1;  // seq 10: one more digit
    }
    ASSERT_TRUE(round()) << r;
  }
  event_size += 1;  // seq 100
  const std::uint64_t before = alloc::count();
  for (int r = 0; r < 800; ++r) {
    ASSERT_TRUE(round()) << r;
  }
  const std::uint64_t after = alloc::count();
  EXPECT_EQ(after - before, 0u) << "allocations during " << 800 * kConns * per_batch
                                << " responses and 1600 event deliveries";
  const ServerStats st = server.stats();
  EXPECT_GE(st.requests, 800u * kConns * per_batch);
  EXPECT_EQ(st.late_responses, 0u);
  for (const int fd : fds) {
    ::close(fd);
  }
  for (const int fd : subs) {
    ::close(fd);
  }
  rt.stop();
  rt.wait();
}

INSTANTIATE_TEST_SUITE_P(Backends, HttpZeroAllocTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::http
