// Regression tests for the bugs of issue #13 §1, each on both backends. Every test builds the
// situation in which the old code misbehaved (ad6ea51) and checks the observable outcome:
//   EchoLeak*          echo took a second receive-buffer reference on a repeated no-room retry
//   LostWakeUp*        a post could sleep until an unrelated wake (no full fence, both sides)
//   StoppedWorker*     a hand-off to a stopped loop stayed in the ring with its fd open
//   SingleRecvBuffer*  recv_buffers = 1 re-armed parked receives at once: a busy loop
//   GracefulClose*     write_timeout_ms = 0 left a close towards a non-reader closing forever
//   OnWritable*        on_writable ran inside the send completion, not at the iteration's end
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <weft/platform/error.h>
#include <weft/platform/handler_pool.h>
#include <weft/platform/runtime.h>

#include "echo_factories.h"
#include "echo_service.h"
#include "test_net.h"

namespace weft::platform {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using test::connect_to;
using test::eventually;
using test::make_frame;
using test::read_exact;
using test::write_all;

// Runs f(loop) on the loop's thread (Loop::inject) and waits for it, at most 10 s. On a
// timeout the job is leaked on purpose: the loop may still run it later.
template <class F>
bool on_loop(Loop& loop, F f) {
  struct Job {
    F f;
    std::atomic<bool> done{false};
  };
  auto* job = new Job{std::move(f)};
  const Post p{[](Loop& l, const Post& post) {
                 auto* j = static_cast<Job*>(post.ptr);
                 j->f(l);
                 j->done.store(true, std::memory_order_release);
               },
               job, 0, 0};
  if (!loop.inject(p).ok()) {
    delete job;
    return false;
  }
  if (!eventually([&] { return job->done.load(std::memory_order_acquire); },
                  std::chrono::seconds(10))) {
    return false;
  }
  delete job;
  return true;
}

// Open descriptors of this process.
int count_fds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) {
    return -1;
  }
  while (dirent* e = ::readdir(d)) {
    n += e->d_name[0] != '.';
  }
  ::closedir(d);
  return n - 1;  // the directory stream's own descriptor
}

// Connected (not listening) TCP sockets of this process whose local port is `port`: the
// server side of accepted connections.
int accepted_sockets_on(std::uint16_t port) {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) {
    return -1;
  }
  const int self = ::dirfd(d);
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') {
      continue;
    }
    const int fd = std::atoi(e->d_name);
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int listening = 0;
    socklen_t ll = sizeof listening;
    if (fd == self || ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0 ||
        ss.ss_family != AF_INET ||
        ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) != 0 || listening != 0) {
      continue;
    }
    n += ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port) == port;
  }
  ::closedir(d);
  return n;
}

// 1 on a normal machine; larger under sanitizers or emulation (WEFT_TEST_SLOWDOWN, else a
// cheap probe: an arithmetic loop that takes about 2 ms natively).
int slowdown() {
  if (const char* e = std::getenv("WEFT_TEST_SLOWDOWN")) {
    return std::max(1, std::atoi(e));
  }
  const auto t0 = Clock::now();
  volatile std::uint64_t x = 1;
  for (int i = 0; i < 2'000'000; ++i) {
    x = test::mix64(x + static_cast<std::uint64_t>(i));
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0);
  return us.count() > 20'000 ? 8 : us.count() > 8'000 ? 3 : 1;
}

class RegressionTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
  }

  template <class MakeFactory>
  void start(const Config& cfg, MakeFactory make) {
    std::vector<Service> services;
    services.push_back({Address::loopback_v4(0), make});
    auto r = rt_.start(cfg, std::move(services));
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_EQ(rt_.backend_kind(), GetParam());
  }
  void start_echo(const Config& cfg, examples::EchoOptions echo = {}) {
    start(cfg, [echo](Loop& loop) { return examples::make_echo_factory(loop, echo); });
  }
  const Address& addr() { return rt_.local_address(0); }

  Runtime rt_;
};

// ---- a. echo buffer leak -------------------------------------------------------------------

// Small pools and a tiny output queue, clients that write much faster than they read: the
// echo runs out of room again and again (including a second time from on_writable, where the
// old handler took a second reference to the held receive buffer and leaked it). Afterwards
// every echoed byte must be right and the receive partition whole again.
TEST_P(RegressionTest, EchoLeaksNoReceiveBufferWhenRoomRunsOutRepeatedly) {
  Config cfg = test::one_worker_config(GetParam());
  cfg.recv_buffers = 16;
  cfg.send_buffers = 16;
  cfg.max_out_iov = 2;
  // Watermarks above a buffer: the queue holds more than one receive before reading pauses,
  // so it runs out of segments and pins (queue_full) rather than only pausing.
  cfg.high_watermark = 16 * 1024;
  cfg.low_watermark = 4096;
  examples::EchoOptions echo;
  echo.max_frame_size = 16 * 1024;
  start(cfg,
        [echo](Loop& loop) { return std::make_unique<test::SmallSendBufferEcho>(loop, echo); });
  // The scenario is repeated (up to 5 rounds) until the echo has run out of room at least
  // once: under qemu, slower on every side, one round sometimes never fills the queue.
  for (int round = 0; round < 5 && (round == 0 || rt_.stats().room_waits == 0); ++round) {
    constexpr int kClients = 4;
    const int frames = 600 / slowdown();
    std::atomic<int> ok{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        std::mt19937 rng(1000 + c);
        // A small receive buffer, so the kernel cannot absorb the echo while the client
        // is not reading and the server's queue runs out of room.
        int fd = connect_to(addr(), 10000, 4096);
        if (fd < 0) {
          return;
        }
        std::vector<std::uint8_t> out;
        for (int i = 0; i < frames; ++i) {
          // Mostly small frames, many per receive; now and then one larger than a buffer.
          const std::uint32_t len = i % 50 == 49 ? 5000 + rng() % 6000 : 1 + rng() % 300;
          auto f = make_frame(len, static_cast<std::uint64_t>(c) * 1'000'000 + i);
          out.insert(out.end(), f.begin(), f.end());
        }
        std::atomic<std::size_t> written{0};
        std::thread w([&] {
          std::size_t off = 0;
          while (off < out.size()) {
            const std::size_t n = std::min<std::size_t>(out.size() - off, 8192);
            if (!write_all(fd, out.data() + off, n)) {
              return;
            }
            off += n;
            written.store(off);
          }
        });
        // Read slowly at first, so the server's queue fills while the client keeps writing.
        // (Bounded: under qemu the server may stop reading before half is written.)
        eventually([&] { return written.load() >= out.size() / 2; }, milliseconds(2000));
        std::vector<std::uint8_t> in(out.size());
        std::size_t got = 0;
        bool good = true;
        while (good && got < in.size()) {
          const std::size_t n =
              std::min<std::size_t>(in.size() - got, got < in.size() / 4 ? 97 : 8192);
          good = read_exact(fd, in.data() + got, n);
          got += n;
        }
        w.join();
        if (good && in == out) {
          ok.fetch_add(1);
        }
        ::close(fd);
      });
    }
    for (auto& t : clients) {
      t.join();
    }
    EXPECT_EQ(ok.load(), kClients);
  }
  ASSERT_TRUE(eventually([&] { return rt_.stats().active == 0; }));
  std::uint32_t free_recv = 0;
  std::uint32_t recv_count = 0;
  ASSERT_TRUE(on_loop(rt_.worker(0), [&](Loop& l) {
    free_recv = l.pool().free_recv();
    recv_count = l.pool().recv_count();
  }));
  // With incremental receive buffers the kernel may still be filling one (the ring's head):
  // that one is in the kernel's hands, not leaked; recv_in_use below excludes it.
  EXPECT_GE(free_recv + 1, recv_count) << "receive buffers leaked";
  const StatsSnapshot s = rt_.stats();
  EXPECT_EQ(s.recv_in_use, 0u);
  EXPECT_EQ(s.pinned_recv, 0u);
  // The situation the test is about happened: the echo ran out of room (on x86 about 100
  // times per run; under qemu, slower on every side, a few times).
  EXPECT_GT(s.room_waits, 0u) << "room never ran out";
}

// ---- b. lost wake-up ------------------------------------------------------------------------

// Worker 0 posts bursts to worker 1 after random gaps (timers, and a random spin so the post
// lands anywhere in worker 1's wake-up path); the last post of a burst posts an ack back.
// Nothing else wakes either loop, so a lost wake-up leaves a burst (or its ack) asleep.
struct WakeStress {
  Loop* w0 = nullptr;
  // Worker 0 only.
  std::mt19937 rng{7};
  TimerNode gap;
  std::uint64_t sent = 0;
  std::uint64_t total = 0;
  Clock::time_point burst_at;
  // Worker 1 only.
  std::uint64_t received_on_1 = 0;
  // Any thread.
  std::atomic<std::uint64_t> acked{0};  // bursts acknowledged
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::int64_t> worst_us{0};
  std::atomic<bool> done{false};
  std::atomic<bool> post_failed{false};
};

void stress_item(Loop& self, const Post& p);
void stress_ack(Loop& self, const Post& p);

void stress_burst(WakeStress& s) {
  const std::uint64_t n = std::min<std::uint64_t>(1 + s.rng() % 48, s.total - s.sent);
  for (int spin = static_cast<int>(s.rng() % 2000); spin > 0; --spin) {
    std::atomic_signal_fence(std::memory_order_seq_cst);  // a short, random delay
  }
  s.burst_at = Clock::now();
  for (std::uint64_t k = 0; k < n; ++k) {
    if (!s.w0->post(1, Post{&stress_item, &s, k + 1 == n, 0}).ok()) {
      s.post_failed.store(true);  // the ring (256) holds a whole burst (<= 48)
      s.done.store(true);
      return;
    }
  }
  s.sent += n;
}

void stress_item(Loop& self, const Post& p) {
  auto& s = *static_cast<WakeStress*>(p.ptr);
  ++s.received_on_1;
  s.received.store(s.received_on_1, std::memory_order_relaxed);
  if (p.a != 0 && !self.post(0, Post{&stress_ack, &s, 0, 0}).ok()) {
    s.post_failed.store(true);
    s.done.store(true);
  }
}

void stress_ack(Loop& self, const Post& p) {
  auto& s = *static_cast<WakeStress*>(p.ptr);
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - s.burst_at).count();
  if (us > s.worst_us.load(std::memory_order_relaxed)) {
    s.worst_us.store(us, std::memory_order_relaxed);
  }
  s.acked.fetch_add(1, std::memory_order_release);
  if (s.sent >= s.total) {
    s.done.store(true, std::memory_order_release);
    return;
  }
  // Next burst: at once (a third of the time) or after a 1-2 ms timer, so that worker 1 is
  // sometimes busy, sometimes just going to sleep and sometimes asleep when it comes.
  const std::uint32_t r = s.rng() % 3;
  if (r == 0) {
    stress_burst(s);
  } else {
    self.timers().schedule(s.gap, self.now_ms() + r);
  }
}

TEST_P(RegressionTest, LostWakeUpStressEveryPostIsProcessedPromptly) {
  Config cfg = test::one_worker_config(GetParam());
  cfg.workers = 2;
  cfg.max_connections = 4;
  cfg.recv_buffers = 8;
  cfg.send_buffers = 8;
  ASSERT_TRUE(rt_.start(cfg, {}).ok());
  ASSERT_EQ(rt_.backend_kind(), GetParam());
  WakeStress s;
  s.w0 = &rt_.worker(0);
  s.total = 20'000 / static_cast<std::uint64_t>(slowdown());
  s.gap.ctx = &s;
  s.gap.fn = [](TimerNode* n) { stress_burst(*static_cast<WakeStress*>(n->ctx)); };
  ASSERT_TRUE(on_loop(rt_.worker(0), [&](Loop&) { stress_burst(s); }));
  // Every burst must be acknowledged within 2 s of the previous one (the old code could
  // leave one asleep for good: nothing else would wake the loop), and the whole run is
  // bounded.
  const auto end = Clock::now() + std::chrono::seconds(60);
  std::uint64_t seen = 0;
  while (!s.done.load(std::memory_order_acquire) && Clock::now() < end) {
    const bool moved =
        eventually([&] { return s.done.load() || s.acked.load(std::memory_order_acquire) != seen; },
                   std::chrono::seconds(2));
    ASSERT_TRUE(moved) << "no progress for 2 s after " << seen << " bursts, " << s.received.load()
                       << " posts: a wake-up was lost";
    seen = s.acked.load(std::memory_order_acquire);
  }
  ASSERT_TRUE(s.done.load()) << "not done in 60 s";
  EXPECT_FALSE(s.post_failed.load());
  EXPECT_EQ(s.received.load(), s.total);
  EXPECT_LT(s.worst_us.load(), 2'000'000) << "worst burst round trip";
  rt_.stop(10);
  rt_.wait();
}

// ---- c. hand-off to a stopped worker --------------------------------------------------------

// Round-robin hand-off with worker 1 stopped: every connection is served by worker 0 or
// closed by the server (counted), none hangs, and no accepted socket outlives the runtime.
TEST_P(RegressionTest, StoppedWorkerGetsNoConnectionsAndLeaksNoDescriptor) {
  const int fds_before = count_fds();
  std::uint16_t port = 0;
  {
    Runtime rt;
    Config cfg = test::one_worker_config(GetParam());
    cfg.workers = 2;
    cfg.accept_mode = AcceptMode::round_robin;
    std::vector<Service> services;
    services.push_back({Address::loopback_v4(0),
                        [](Loop& loop) { return examples::make_echo_factory(loop, {}); }});
    ASSERT_TRUE(rt.start(cfg, std::move(services)).ok());
    ASSERT_EQ(rt.backend_kind(), GetParam());
    port = rt.local_address(0).port();
    rt.worker(1).request_stop();
    ASSERT_TRUE(eventually([&] { return rt.worker(1).stopped(); }));

    constexpr int kConns = 10;
    int served = 0;
    int refused = 0;
    std::vector<int> open_fds;
    for (int i = 0; i < kConns; ++i) {
      int fd = connect_to(rt.local_address(0), 3000);
      ASSERT_GE(fd, 0);
      auto f = make_frame(100, static_cast<std::uint64_t>(i) + 1);
      const bool wrote = write_all(fd, f.data(), f.size());
      // Either the echo comes back, or the server closes (EOF or reset): never silence.
      std::vector<std::uint8_t> in(f.size());
      std::size_t got = 0;
      int outcome = test::kNotClosed;
      while (got < in.size()) {
        const ssize_t r = ::recv(fd, in.data() + got, in.size() - got, 0);
        if (r > 0) {
          got += static_cast<std::size_t>(r);
          continue;
        }
        if (r < 0 && errno == EINTR) {
          continue;  // a signal, not an answer
        }
        outcome =
            r == 0 ? 0 : (errno == EAGAIN || errno == EWOULDBLOCK ? test::kNotClosed : -errno);
        break;
      }
      if (got == in.size()) {
        EXPECT_TRUE(wrote);
        EXPECT_EQ(in, f);
        ++served;
        open_fds.push_back(fd);
      } else {
        EXPECT_LE(outcome, 0) << "connection " << i << " neither served nor closed";
        ++refused;
        ::close(fd);
      }
    }
    EXPECT_GE(served, 1);
    EXPECT_GE(refused, 1);  // every other connection was meant for worker 1
    // The socket is closed before the count is taken: give the loop a moment.
    EXPECT_TRUE(eventually(
        [&] {
          const StatsSnapshot s0 = rt.worker(0).stats().snapshot();
          return s0.accepted == static_cast<std::uint64_t>(served) &&
                 s0.handoff_failed + s0.rejected == static_cast<std::uint64_t>(refused);
        },
        std::chrono::seconds(5)));
    const StatsSnapshot s0 = rt.worker(0).stats().snapshot();
    EXPECT_EQ(s0.accepted, static_cast<std::uint64_t>(served));
    EXPECT_EQ(s0.handoff_failed + s0.rejected, static_cast<std::uint64_t>(refused));
    EXPECT_EQ(rt.worker(1).stats().snapshot().accepted, 0u);
    for (int fd : open_fds) {
      ::close(fd);
    }
    EXPECT_TRUE(eventually([&] { return rt.stats().active == 0; }));
    rt.stop(100);
    rt.wait();
    EXPECT_EQ(accepted_sockets_on(port), 0) << "an accepted socket outlived Runtime::wait";
  }
  EXPECT_EQ(count_fds(), fds_before) << "descriptors leaked";
}

// ---- d. recv_buffers = 1 --------------------------------------------------------------------

// Echoes by copy; the first receive of the first connection is held (its only receive
// buffer, with recv_buffers = 1) until the test releases it on the loop thread.
struct HoldState {
  bool hold_next = true;  // loop thread only
  BufRef held;            // loop thread only
};

class HoldingEcho final : public Handler {
 public:
  explicit HoldingEcho(HoldState* s) : s_(s) {}
  void reset(Conn&) noexcept {}
  void on_data(Conn& c, BufView in) noexcept override {
    if (s_->hold_next) {
      s_->hold_next = false;
      s_->held = in.ref();
    }
    if (!c.send_copy(in.bytes).ok()) {
      c.abort(make_error_code(platform_errc::no_buffers));
    }
  }

 private:
  HoldState* s_;
};

TEST_P(RegressionTest, SingleRecvBufferParkedReceiveDoesNotSpin) {
  Config cfg = test::one_worker_config(GetParam());
  cfg.recv_buffers = 1;
  // Whole buffers per receive, so that holding the first receive holds the only buffer.
  // (Incremental buffers would keep filling its tail, and parking would need 16 KiB more.)
  cfg.recv_incremental = false;
  HoldState st;
  start(cfg, [&](Loop&) { return std::make_unique<HandlerPool<HoldingEcho>>(32, &st); });
  Loop& w = rt_.worker(0);
  int a = connect_to(addr());
  ASSERT_GE(a, 0);
  char byte = 'a';
  ASSERT_TRUE(write_all(a, &byte, 1));
  ASSERT_TRUE(read_exact(a, &byte, 1));  // echoed by copy; its receive buffer stays held
  ASSERT_TRUE(eventually([&] { return w.stats().snapshot().recv_in_use == 1; }));
  int b = connect_to(addr());
  ASSERT_GE(b, 0);
  const char hello[] = "hello";
  ASSERT_TRUE(write_all(b, hello, 5));
  ASSERT_TRUE(eventually([&] { return w.stats().snapshot().recv_parked >= 1; }))
      << "the receive never parked: the test proves nothing";
  // Parked: the loop must sleep, not spin re-arming a receive that has no buffer.
  const std::uint64_t it0 = w.stats().snapshot().loop_iterations;
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(milliseconds(300));  // a measuring window, not a wait
  const std::uint64_t iterations = w.stats().snapshot().loop_iterations - it0;
  const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  EXPECT_LT(iterations, 1000u) << "iterations in " << ms << " ms while parked";
  pollfd p{b, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "b was served without a receive buffer";
  // The buffer comes back: b resumes and gets its echo.
  ASSERT_TRUE(on_loop(w, [&](Loop&) { st.held.reset(); }));
  char in[5];
  ASSERT_TRUE(read_exact(b, in, 5));
  EXPECT_EQ(std::memcmp(in, hello, 5), 0);
  ::close(a);
  ::close(b);
  EXPECT_TRUE(eventually([&] { return rt_.stats().active == 0; }));
}

// ---- e. graceful close towards a peer that never reads --------------------------------------

struct CloseState {
  std::atomic<bool> closed{false};
  std::atomic<bool> timed_out{false};
  std::atomic<std::int64_t> close_called_ns{0};
  std::atomic<std::int64_t> on_close_ns{0};
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

alignas(64) const std::byte kBlob[1 << 20] = {};

// On the first bytes: queues 16 MiB (far more than the socket buffers hold), then close().
class FloodThenClose final : public Handler {
 public:
  explicit FloodThenClose(CloseState* s) : s_(s) {}
  void reset(Conn&) noexcept {}
  void on_data(Conn& c, BufView) noexcept override {
    if (!c.open()) {
      return;
    }
    for (int i = 0; i < 16; ++i) {
      if (!c.send_static(kBlob).ok()) {
        break;
      }
    }
    s_->close_called_ns.store(now_ns());
    c.close();
  }
  void on_close(Conn&, std::error_code reason) noexcept override {
    s_->timed_out.store(reason == make_error_code(platform_errc::timed_out));
    s_->on_close_ns.store(now_ns());
    s_->closed.store(true);
  }

 private:
  CloseState* s_;
};

TEST_P(RegressionTest, GracefulCloseWithoutWriteTimeoutGivesUpAfterCloseTimeout) {
  Config cfg = test::one_worker_config(GetParam());
  cfg.write_timeout_ms = 0;
  cfg.close_timeout_ms = 300;
  CloseState st;
  start(cfg, [&](Loop&) { return std::make_unique<HandlerPool<FloodThenClose>>(32, &st); });
  int fd = connect_to(addr());
  ASSERT_GE(fd, 0);
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ASSERT_TRUE(write_all(fd, "x", 1));  // and never read
  ASSERT_TRUE(eventually([&] { return st.closed.load(); }, std::chrono::seconds(5)))
      << "the connection stayed in closing";
  EXPECT_TRUE(st.timed_out.load());
  const auto took_ms = (st.on_close_ns.load() - st.close_called_ns.load()) / 1'000'000;
  EXPECT_GE(took_ms, 250);
  EXPECT_LT(took_ms, 3000);
  EXPECT_EQ(rt_.stats().timeouts, 1u);
  ::close(fd);
}

// ---- f. on_writable at the end of the iteration, once per crossing --------------------------

// Fills its output queue past the high watermark, then waits for on_writable and fills again,
// `rounds` times, then closes. Checked on the loop thread: on_writable is never entered from
// inside another callback; it runs after the iteration's timers (a timer it schedules for
// "now" fires in a later iteration: had it run in the middle of the completions, as the old
// code did from the send completion, the same iteration's timer pass would fire it); the
// queue is at or below the low watermark then; and it comes once per crossing.
struct PumpState {
  int rounds = 0;  // the target
  // Loop thread only; the test reads them on the loop thread after the close.
  int fills = 0;  // crossings of the high watermark
  int writables = 0;
  int send_failures = 0;
  int reentered = 0;
  int probes = 0;
  int mid_iteration = 0;
  int above_low = 0;
  int spurious = 0;
  std::atomic<bool> closed{false};
};

class Pump final : public Handler {
 public:
  explicit Pump(PumpState* s) : s_(s) {
    probe_.ctx = this;
    probe_.fn = [](TimerNode* n) {
      auto* self = static_cast<Pump*>(n->ctx);
      ++self->s_->probes;
      if (iteration(*self->loop_) == self->writable_iteration_) {
        ++self->s_->mid_iteration;
      }
    };
  }
  void reset(Conn& c) noexcept {
    loop_ = &c.loop();
    in_callback_ = false;
    waiting_ = false;
    writable_iteration_ = ~std::uint64_t{0};
  }
  void on_open(Conn& c) noexcept override {
    Enter e(this);
    fill(c);
  }
  void on_data(Conn&, BufView) noexcept override { Enter e(this); }
  void on_writable(Conn& c) noexcept override {
    if (in_callback_) {
      ++s_->reentered;
    }
    Enter e(this);
    writable_iteration_ = iteration(c.loop());
    c.loop().timers().schedule(probe_, c.loop().now_ms());
    ++s_->writables;
    if (!waiting_) {
      ++s_->spurious;
    }
    waiting_ = false;
    if (c.queued_bytes() > c.loop().config().low_watermark) {
      ++s_->above_low;
    }
    if (s_->fills < s_->rounds) {
      fill(c);
    } else {
      c.close();
    }
  }
  void on_close(Conn& c, std::error_code) noexcept override {
    c.loop().timers().cancel(probe_);
    s_->closed.store(true);
  }

 private:
  struct Enter {
    explicit Enter(Pump* p) : p_(p) { p_->in_callback_ = true; }
    ~Enter() { p_->in_callback_ = false; }
    Pump* p_;
  };
  static std::uint64_t iteration(Loop& l) { return l.stats().loop_iterations.get(); }
  void fill(Conn& c) {
    static const std::byte chunk[1024] = {};
    while (c.queued_bytes() < c.loop().config().high_watermark) {
      if (!c.send_copy(chunk).ok()) {
        ++s_->send_failures;  // on_writable follows for this reason instead
        waiting_ = true;
        return;
      }
    }
    ++s_->fills;
    waiting_ = true;
  }
  PumpState* s_;
  Loop* loop_ = nullptr;
  TimerNode probe_;
  bool in_callback_ = false;
  bool waiting_ = false;
  std::uint64_t writable_iteration_ = ~std::uint64_t{0};
};

TEST_P(RegressionTest, OnWritableRunsAtTheEndOfTheIterationOncePerCrossing) {
  Config cfg = test::one_worker_config(GetParam());
  cfg.send_buffers = 64;  // 256 KiB: room for the high watermark and more
  cfg.max_out_iov = 64;
  cfg.high_watermark = 64 * 1024;
  cfg.low_watermark = 16 * 1024;
  PumpState st;
  st.rounds = 200 / slowdown();
  start(cfg, [&](Loop&) { return std::make_unique<HandlerPool<Pump>>(32, &st); });
  int fd = connect_to(addr(), 10000);
  ASSERT_GE(fd, 0);
  std::size_t total = 0;
  std::vector<char> buf(16 * 1024);
  while (true) {
    const ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
    if (r < 0 && errno == EINTR) {
      continue;  // a signal, not an answer (seen once in CI)
    }
    if (r <= 0) {
      EXPECT_EQ(r, 0) << "not a clean close: " << std::strerror(errno);
      break;
    }
    total += static_cast<std::size_t>(r);
  }
  ::close(fd);
  ASSERT_TRUE(eventually([&] { return st.closed.load(); }));
  PumpState copy;
  ASSERT_TRUE(on_loop(rt_.worker(0), [&](Loop&) {
    copy.fills = st.fills;
    copy.writables = st.writables;
    copy.send_failures = st.send_failures;
    copy.reentered = st.reentered;
    copy.probes = st.probes;
    copy.mid_iteration = st.mid_iteration;
    copy.above_low = st.above_low;
    copy.spurious = st.spurious;
  }));
  EXPECT_EQ(copy.fills, st.rounds);
  // The first fill queues the high watermark, each later one at least high - low.
  EXPECT_GE(total, cfg.high_watermark + static_cast<std::size_t>(st.rounds - 1) *
                                            (cfg.high_watermark - cfg.low_watermark));
  EXPECT_EQ(copy.writables, copy.fills + copy.send_failures);
  EXPECT_EQ(copy.spurious, 0);
  EXPECT_EQ(copy.reentered, 0);
  EXPECT_EQ(copy.above_low, 0);
  EXPECT_GE(copy.probes, copy.writables - 1);  // the last one may be cancelled by the close
  EXPECT_EQ(copy.mid_iteration, 0)
      << "on_writable ran before the iteration's timers: in the middle of the completions";
}

INSTANTIATE_TEST_SUITE_P(Backends, RegressionTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::platform
