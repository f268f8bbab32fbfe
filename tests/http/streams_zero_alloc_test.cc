// Steady-state SSE publishing allocates nothing, in the whole process (weft::alloc_counter):
// 2 workers, a publisher on each (Streams::publish: record into the ring, encode once, fan
// out through the hub with the admit hook), 4 subscribers that read everything and one that
// never reads (so the slow-consumer drop path runs too), on both backends. The client side
// uses only static buffers.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <weft/base/alloc_counter.h>
#include <weft/platform/handler_pool.h>
#include <weft/platform/runtime.h>

#include "sse_transport.h"
#include "test_net.h"

namespace weft::http::sse {
namespace {

using platform::BackendKind;

constexpr int kWorkers = 2;
constexpr int kSubs = 4;
constexpr int kPerRound = 16;  // events per publisher per round
constexpr int kWarmupRounds = 30;
constexpr int kSteadyRounds = 200;

char g_buf[1 << 16];

class StreamsZeroAllocTest : public ::testing::TestWithParam<BackendKind> {};

// Reads until `events` more SSE events (blank-line terminated; none of these has an empty
// line inside) have arrived. last: the previous byte read on this fd (carried across calls).
bool read_events(int fd, int events, char& last) {
  while (events > 0) {
    const ssize_t r = ::recv(fd, g_buf, sizeof g_buf, 0);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      return false;
    }
    for (ssize_t i = 0; i < r; ++i) {
      if (g_buf[i] == '\n' && last == '\n') {
        --events;
      }
      last = g_buf[i];
    }
  }
  return events == 0;
}

// Reads one reply line.
bool read_line(int fd) {
  char ch = 0;
  while (ch != '\n') {
    if (!test::read_exact(fd, &ch, 1)) {
      return false;
    }
  }
  return true;
}

TEST_P(StreamsZeroAllocTest, PublishAndFanOutAllocateNothing) {
  if (!alloc::enabled()) {
    GTEST_SKIP() << "counting allocator not installed (sanitizer build or not glibc)";
  }
  std::string why;
  if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
    GTEST_SKIP() << "io_uring unavailable here: " << why;
  }
  platform::Config cfg = test::one_worker_config(GetParam());
  cfg.workers = kWorkers;
  cfg.accept_mode = platform::AcceptMode::round_robin;
  cfg.shared_buffers = 512;
  cfg.shared_buffer_size = 1024;
  cfg.max_out_iov = 128;
  pubsub::Limits hl;
  hl.max_queued_bytes = 64 * 1024;
  pubsub::Hub hub;
  ASSERT_TRUE(hub.init(hl, cfg).ok());
  StreamLimits sl;
  // Above one round's burst (32 x ~250 bytes), and below max_out_iov events: the SSE
  // policy, not the hub's queue_full, refuses the slow subscriber's events.
  sl.max_queued_bytes = 16 * 1024;
  Streams streams;
  ASSERT_TRUE(streams.init(sl).ok());
  ASSERT_TRUE(streams.attach_hub(hub).ok());
  streams.set_subscriber_lookup(&test::SseHandler::lookup, nullptr);
  const test::Env env{&streams, &hub};
  platform::Runtime rt;
  std::vector<platform::Service> services;
  services.push_back({platform::Address::loopback_v4(0), [&](platform::Loop& l) {
                        EXPECT_TRUE(hub.attach(l).ok());
                        return std::make_unique<platform::HandlerPool<test::SseHandler>>(
                            l.config().max_connections, env);
                      }});
  ASSERT_TRUE(rt.start(cfg, std::move(services)).ok());

  int subs[kSubs];
  char last[kSubs] = {};
  for (int i = 0; i < kSubs; ++i) {
    subs[i] = test::connect_to(rt.local_address(0));
    ASSERT_GE(subs[i], 0);
    ASSERT_TRUE(test::write_all(subs[i], "SUB feed -\n", 11));
    ASSERT_TRUE(read_events(subs[i], 1, last[i]));  // the ": ok" comment block
  }
  const int slow = test::connect_to(rt.local_address(0), 5000, 4096);
  ASSERT_GE(slow, 0);
  ASSERT_TRUE(test::write_all(slow, "SUB feed -\n", 11));
  int pubs[kWorkers];
  for (int& p : pubs) {
    p = test::connect_to(rt.local_address(0));
    ASSERT_GE(p, 0);
  }
  static constexpr char kPub[] = "PUBN feed 16 200 0\n";
  bool all_ok = true;
  const auto round = [&] {
    for (const int p : pubs) {
      all_ok &= test::write_all(p, kPub, sizeof kPub - 1);
    }
    for (const int p : pubs) {
      all_ok &= read_line(p);
    }
    for (int i = 0; i < kSubs; ++i) {
      all_ok &= read_events(subs[i], kWorkers * kPerRound, last[i]);
    }
  };
  for (int r = 0; all_ok && (r < kWarmupRounds || streams.stats().dropped == 0); ++r) {
    ASSERT_LT(r, 5000) << "the subscriber that never reads did not drop: hub delivered "
                       << hub.total().delivered << " dropped " << hub.total().dropped << " skipped "
                       << hub.total().skipped << "; published " << streams.stats().published;
    round();
  }
  ASSERT_TRUE(all_ok);
  const StreamStats before = streams.stats();
  const std::uint64_t allocations = alloc::count();
  for (int r = 0; r < kSteadyRounds; ++r) {
    round();
  }
  const std::uint64_t during = alloc::count() - allocations;
  EXPECT_TRUE(all_ok);
  EXPECT_EQ(during, 0u) << "allocations during " << kSteadyRounds << " rounds of publishing";
  const StreamStats after = streams.stats();
  EXPECT_EQ(after.published - before.published,
            std::uint64_t{kWorkers} * kPerRound * kSteadyRounds);
  EXPECT_GT(after.dropped - before.dropped, 0u) << "the drop path ran in the counted window";
  EXPECT_GT(after.evicted_events, 0u) << "the ring wrapped";
  EXPECT_EQ(hub.total().posts_failed, 0u);
  EXPECT_EQ(hub.total().dropped, 0u) << "the hub's own bounds never applied";
  for (const int fd : subs) {
    ::close(fd);
  }
  for (const int fd : pubs) {
    ::close(fd);
  }
  ::close(slow);
  rt.stop();
  rt.wait();
}

INSTANTIATE_TEST_SUITE_P(Backends, StreamsZeroAllocTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::http::sse
