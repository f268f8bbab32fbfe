// Issue #13 §2: no worker is starved by a few peers. With small pools, K abusive peers fill
// the kernel's buffers on the way back (a tiny SO_RCVBUF, never read) and then send tiny
// frames, one per segment: each echo is a segment that points into its own receive buffer
// and cannot leave. Without a per-connection pin cap, K * max_out_iov receive buffers end up
// pinned, the partition is empty and every connection of the worker parks. With the cap
// (Config::max_pinned_recv), an innocent connection's round trips keep coming back promptly
// and a new connection is served. Both backends. With io_uring an abuser's paused multishot
// batch can also be held; past the cap it is copied out, and an abuser that still hoards
// receive buffers while the innocent one is parked is closed (stats.hoarders_closed).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <weft/platform/runtime.h>

#include "echo_service.h"
#include "test_net.h"

namespace weft::platform {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kAbusers = 4;
constexpr int kRoundTrips = 50;
constexpr auto kRoundTripBound = milliseconds(500);

class StarvationTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
  }
  Runtime rt_;
};

// What one abuser achieved.
struct Abuse {
  int fd = -1;
  std::uint64_t tiny_frames = 0;
  int err = 0;
  bool stuck = false;  // its non-blocking writes stopped being accepted: the worst case
  bool reset = false;  // the server cut it off (ECONNRESET/EPIPE)
};

// Waits for room to write, at most 200 ms; false when there was none (nobody reads).
bool wait_writable(int fd) {
  pollfd p{fd, POLLOUT, 0};
  return ::poll(&p, 1, 200) == 1;
}

// Sends the whole frame on a non-blocking socket; false when it stalled for 200 ms.
bool send_frame(int fd, const std::vector<std::uint8_t>& f) {
  std::size_t off = 0;
  while (off < f.size()) {
    const ssize_t w = ::send(fd, f.data() + off, f.size() - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += static_cast<std::size_t>(w);
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_writable(fd)) {
        return false;
      }
    } else {
      return false;
    }
  }
  return true;
}

// Fills the way back: frames of 1000 bytes until their echo stops leaving the worker, seen
// from outside as bytes received by the worker and not sent back (bytes_in - bytes_out)
// growing by 4 KiB and staying there for 100 ms, or until the server stops reading this peer
// (its writes stall). The kernel absorbs megabytes first, which is why black-box runs did not
// see the problem. True when the writes stalled.
bool fill_way_back(Abuse& a, Loop& worker, std::uint64_t& seq) {
  const auto held = [&] {
    const StatsSnapshot s = worker.stats().snapshot();
    return s.bytes_in - s.bytes_out;
  };
  const std::uint64_t before = held();
  for (int i = 0; i < 20'000; ++i) {
    if (!send_frame(a.fd, test::make_frame(996, seq++))) {
      return true;
    }
    if (i % 8 == 7 &&
        !test::eventually([&] { return held() - before < 4096; }, milliseconds(100))) {
      return false;
    }
  }
  return false;
}

// One abuser, alone (the fill measures the worker's totals): fill the way back, then 5-byte
// frames one per write (one segment each: TCP_NODELAY), and again when the kernel found
// more room, until its writes stall for 200 ms: the server no longer reads it.
void abuse(Abuse& a, Loop& worker, std::uint64_t seed) {
  ::fcntl(a.fd, F_SETFL, ::fcntl(a.fd, F_GETFL) | O_NONBLOCK);
  std::uint64_t seq = seed * 10'000'000;
  const auto end = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < end) {
    if (fill_way_back(a, worker, seq)) {
      a.stuck = true;
      return;
    }
    for (int i = 0; i < 5000; ++i) {
      if (!send_frame(a.fd, test::make_frame(1, seq++))) {
        a.err = errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno;
        a.stuck = a.err == 0;
        // The server may also cut an abuser off: input that arrived while it was paused
        // and over its receive-buffer budget, with no general buffer left to copy it into.
        a.reset = a.err == ECONNRESET || a.err == EPIPE;
        return;
      }
      ++a.tiny_frames;
    }
  }
}

std::string describe(const StatsSnapshot& s) {
  return "recv_in_use " + std::to_string(s.recv_in_use) + ", pinned_recv " +
         std::to_string(s.pinned_recv) + ", recv_parked " + std::to_string(s.recv_parked) +
         ", pin_copies " + std::to_string(s.pin_copies) + ", hoarders_closed " +
         std::to_string(s.hoarders_closed) + ", active " + std::to_string(s.active);
}

TEST_P(StarvationTest, AbusersThatNeverReadCannotStarveAnInnocentConnection) {
  Config cfg;
  cfg.backend = GetParam();
  cfg.workers = 1;
  cfg.max_connections = 16;
  cfg.recv_buffers = 16;
  cfg.send_buffers = 16;
  cfg.max_out_iov = 8;
  cfg.buffer_size = 4096;
  cfg.drain_timeout_ms = 500;
  std::vector<Service> services;
  services.push_back(
      {Address::loopback_v4(0), [](Loop& loop) { return examples::make_echo_factory(loop, {}); }});
  auto r = rt_.start(cfg, std::move(services));
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(rt_.backend_kind(), GetParam());
  const Address& addr = rt_.local_address(0);
  Loop& worker = rt_.worker(0);
  const std::uint64_t pin_limit = cfg.pinned_recv_limit();

  // Sample the pinned-buffer gauge for the whole test (joined on every way out).
  std::atomic<bool> sampling{true};
  std::atomic<std::uint64_t> max_pinned{0};
  struct Joiner {
    std::atomic<bool>& flag;
    std::thread t;
    ~Joiner() {
      flag.store(false);
      t.join();
    }
  } sampler{sampling, std::thread([&] {
              while (sampling.load()) {
                const std::uint64_t p = worker.stats().snapshot().pinned_recv;
                if (p > max_pinned.load()) {
                  max_pinned.store(p);
                }
                std::this_thread::sleep_for(std::chrono::microseconds(200));
              }
            })};

  Abuse abusers[kAbusers];
  for (Abuse& a : abusers) {
    a.fd = test::connect_to(addr, 5000, 1024);
    ASSERT_GE(a.fd, 0);
  }
  int innocent = test::connect_to(addr, 2000);
  ASSERT_GE(innocent, 0);
  for (int i = 0; i < kAbusers; ++i) {
    abuse(abusers[i], worker, static_cast<std::uint64_t>(i) + 1);
  }
  std::uint64_t tiny = 0;
  int stuck = 0;
  for (const Abuse& a : abusers) {
    stuck += a.stuck ? 1 : 0;
    EXPECT_TRUE(a.stuck || a.reset)
        << "an abuser was neither stuck nor cut off: the worst case was not built ("
        << a.tiny_frames << " tiny frames, errno " << a.err << ")";
    tiny += a.tiny_frames;
  }

  // The abusers hold whatever they can; the innocent connection must still be served.
  milliseconds worst{0};
  for (int i = 0; i < kRoundTrips; ++i) {
    const auto f = test::make_frame(100 + static_cast<std::uint32_t>(i), 900'000 + i);
    const auto t0 = Clock::now();
    ASSERT_TRUE(test::write_all(innocent, f.data(), f.size()));
    std::vector<std::uint8_t> in(f.size());
    ASSERT_TRUE(test::read_exact(innocent, in.data(), in.size()))
        << "round trip " << i << ": " << describe(worker.stats().snapshot());
    const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
    worst = std::max(worst, took);
    ASSERT_EQ(in, f);
    EXPECT_LT(took, kRoundTripBound) << "round trip " << i;
  }
  // And a brand-new connection is served.
  int fresh = test::connect_to(addr, 2000);
  ASSERT_GE(fresh, 0);
  const auto f = test::make_frame(3000, 999'999);
  ASSERT_TRUE(test::write_all(fresh, f.data(), f.size()));
  std::vector<std::uint8_t> in(f.size());
  ASSERT_TRUE(test::read_exact(fresh, in.data(), in.size()));
  EXPECT_EQ(in, f);

  sampling.store(false);
  const StatsSnapshot s = worker.stats().snapshot();
  // The abusers, the innocent connection and the fresh one: each pins at most its limit.
  EXPECT_LE(max_pinned.load(), (kAbusers + 2) * pin_limit)
      << "pinned receive buffers (limit " << pin_limit << " per connection)";
  // The cap acted: runs were copied out instead of pinned, or the abusers were paused (their
  // writes stalled while the server kept them open).
  EXPECT_TRUE(s.pin_copies > 0 || stuck == kAbusers) << "the pin cap never acted";
  RecordProperty("tiny_frames", std::to_string(tiny));
  RecordProperty("pin_copies", std::to_string(s.pin_copies));
  RecordProperty("hoarders_closed", std::to_string(s.hoarders_closed));
  RecordProperty("worst_round_trip_ms", std::to_string(worst.count()));
  for (const Abuse& a : abusers) {
    ::close(a.fd);
  }
  ::close(innocent);
  ::close(fresh);
  rt_.stop(100);
  rt_.wait();
}

INSTANTIATE_TEST_SUITE_P(Backends, StarvationTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::platform
