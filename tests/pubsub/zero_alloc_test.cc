// Steady-state pub/sub fan-out allocates nothing, in the whole process (weft::alloc_counter):
// 3 workers, a publisher on each, 6 subscribers spread over them that read everything and
// one that never reads (so the slow-consumer drop path runs too), on both backends. After a
// warm-up (until that one drops), rounds of 16 publishes per publisher (48 events, each encoded
// once and posted to the two other workers) are counted; the client side uses only static buffers.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <weft/base/alloc_counter.h>
#include <weft/platform/runtime.h>

#include "line_transport.h"
#include "test_net.h"

namespace weft::pubsub {
namespace {

using platform::BackendKind;

constexpr int kWorkers = 3;
constexpr int kSubs = 6;
constexpr int kPerRound = 16;  // publishes per publisher per round
constexpr int kWarmupRounds = 50;
constexpr int kSteadyRounds = 300;
constexpr std::size_t kPayload = 200;
// "PUB feed <payload>\n" and "EVT feed <payload>\n": the same length.
constexpr std::size_t kLine = 4 + 5 + kPayload + 1;

char g_pub[kWorkers][kPerRound * kLine];
char g_events[kWorkers * kPerRound * kLine];
char g_replies[kPerRound * 2];

class PubSubZeroAllocTest : public ::testing::TestWithParam<BackendKind> {};

bool read_who(int fd, std::uint32_t* worker) {
  char b[3];
  if (!test::write_all(fd, "WHO\n", 4) || !test::read_exact(fd, b, 3) || b[0] != 'W') {
    return false;
  }
  *worker = static_cast<std::uint32_t>(b[1] - '0');
  return b[2] == '\n';
}

TEST_P(PubSubZeroAllocTest, FanOutAcrossWorkersAllocatesNothing) {
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
  cfg.shared_buffer_size = 512;
  cfg.max_out_iov = 128;
  Limits limits;
  limits.max_queued_bytes = 32 * 1024;  // above one round's burst (48 x 210 bytes)
  Hub hub;
  ASSERT_TRUE(hub.init(limits, cfg).ok());
  auto format = hub.add_format(&test::encode_line_event, nullptr);
  ASSERT_TRUE(format.ok());
  const test::LineEnv env{&hub, *format};
  platform::Runtime rt;
  std::vector<platform::Service> services;
  services.push_back({platform::Address::loopback_v4(0),
                      [&env](platform::Loop& l) { return test::make_line_factory(l, env); }});
  ASSERT_TRUE(rt.start(cfg, std::move(services)).ok());

  int subs[kSubs];
  int pubs[kWorkers];
  std::uint32_t on[kWorkers + 1] = {};
  char ok[3];
  for (int& fd : subs) {
    fd = test::connect_to(rt.local_address(0));
    ASSERT_GE(fd, 0);
    std::uint32_t w = kWorkers;
    ASSERT_TRUE(read_who(fd, &w));
    ++on[std::min<std::uint32_t>(w, kWorkers)];
    ASSERT_TRUE(test::write_all(fd, "SUB feed\n", 9) && test::read_exact(fd, ok, 3));
    ASSERT_EQ(std::memcmp(ok, "OK\n", 3), 0);
  }
  EXPECT_EQ(on[0], 2u);
  EXPECT_EQ(on[1], 2u);
  EXPECT_EQ(on[2], 2u);
  const int slow = test::connect_to(rt.local_address(0), 5000, 4096);
  ASSERT_GE(slow, 0);
  ASSERT_TRUE(test::write_all(slow, "SUB feed\n", 9) && test::read_exact(slow, ok, 3));
  for (int p = 0; p < kWorkers; ++p) {
    pubs[p] = test::connect_to(rt.local_address(0));
    ASSERT_GE(pubs[p], 0);
    for (int k = 0; k < kPerRound; ++k) {
      char l[kLine + 1];  // + the NUL snprintf writes
      ASSERT_EQ(std::snprintf(l, sizeof l, "PUB feed p%d-%02d-%0*d\n", p, k,
                              static_cast<int>(kPayload - 6), 0),
                static_cast<int>(kLine));
      std::memcpy(g_pub[p] + k * kLine, l, kLine);
    }
  }
  bool all_ok = true;
  const auto round = [&] {
    for (int p = 0; p < kWorkers; ++p) {
      all_ok &= test::write_all(pubs[p], g_pub[p], sizeof g_pub[p]);
    }
    for (int p = 0; p < kWorkers; ++p) {
      all_ok &= test::read_exact(pubs[p], g_replies, sizeof g_replies);
      all_ok &= g_replies[0] == 'K' && g_replies[sizeof g_replies - 2] == 'K';
    }
    for (const int fd : subs) {
      all_ok &= test::read_exact(fd, g_events, sizeof g_events);
      all_ok &= std::memcmp(g_events, "EVT feed p", 10) == 0;
    }
  };
  // Warm up, and go on until the subscriber that never reads has filled its socket buffers
  // and begun to drop, so that the counted window runs the drop path throughout.
  for (int r = 0; all_ok && (r < kWarmupRounds || hub.total().dropped == 0); ++r) {
    ASSERT_LT(r, 5000) << "the subscriber that never reads did not drop";
    round();
  }
  ASSERT_TRUE(all_ok);
  const HubStats before = hub.total();
  const std::uint64_t allocations = alloc::count();
  for (int r = 0; r < kSteadyRounds; ++r) {
    round();
  }
  const std::uint64_t during = alloc::count() - allocations;
  EXPECT_TRUE(all_ok);
  EXPECT_EQ(during, 0u) << "allocations during " << kSteadyRounds << " rounds of fan-out";
  {  // The counter works: an allocation now is seen.
    void* volatile probe = std::malloc(16);
    EXPECT_GT(alloc::count(), allocations + during);
    std::free(probe);
  }
  const HubStats after = hub.total();
  const std::uint64_t events = std::uint64_t{kWorkers} * kPerRound * kSteadyRounds;
  EXPECT_EQ(after.published - before.published, events);
  EXPECT_EQ(after.encoded - before.encoded, events);
  EXPECT_GE(after.delivered - before.delivered, events * kSubs);
  EXPECT_EQ(after.posts_failed, 0u);
  EXPECT_EQ(after.no_buffers, 0u);
  // The subscriber that never reads went through the drop path in the counted window.
  EXPECT_GT(after.dropped - before.dropped, 0u);
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

INSTANTIATE_TEST_SUITE_P(Backends, PubSubZeroAllocTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::pubsub
