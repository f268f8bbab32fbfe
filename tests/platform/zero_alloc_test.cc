// Proof of "zero allocation in the steady state": this binary replaces the global allocator
// (malloc family and every operator new) with counting versions and asserts that after the
// warm-up not one allocation happened in the whole process — server workers and client
// alike: under framed echo traffic over 32 loopback connections with 16 frames in flight
// each, and through every other steady-state path with two workers (see the second test).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include <fcntl.h>
#include <poll.h>

#include <weft/platform/error.h>
#include <weft/platform/handler_pool.h>
#include <weft/platform/runtime.h>

#include "echo_service.h"
#include "test_net.h"

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

namespace {
std::atomic<bool> g_counting{false};
std::atomic<std::uint64_t> g_allocations{0};
inline void count() {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
  }
}
}  // namespace

#if !defined(WEFT_SANITIZED)
extern "C" {
void* malloc(std::size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(std::size_t a, std::size_t b) {
  count();
  return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
  count();
  return __libc_realloc(p, n);
}
void free(void* p) {
  __libc_free(p);
}
void* memalign(std::size_t al, std::size_t n) {
  count();
  return __libc_memalign(al, n);
}
void* aligned_alloc(std::size_t al, std::size_t n) {
  count();
  return __libc_memalign(al, n);
}
int posix_memalign(void** out, std::size_t al, std::size_t n) {
  count();
  void* p = __libc_memalign(al, n);
  if (p == nullptr) {
    return ENOMEM;
  }
  *out = p;
  return 0;
}
}  // extern "C"

void* operator new(std::size_t n) {
  count();
  void* p = __libc_malloc(n == 0 ? 1 : n);
  if (p == nullptr) {
    throw std::bad_alloc();
  }
  return p;
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  count();
  return __libc_malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
  return operator new(n, t);
}
void* operator new(std::size_t n, std::align_val_t al) {
  count();
  void* p = __libc_memalign(static_cast<std::size_t>(al), n == 0 ? 1 : n);
  if (p == nullptr) {
    throw std::bad_alloc();
  }
  return p;
}
void* operator new[](std::size_t n, std::align_val_t al) {
  return operator new(n, al);
}
void operator delete(void* p) noexcept {
  __libc_free(p);
}
void operator delete[](void* p) noexcept {
  __libc_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  __libc_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  __libc_free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  __libc_free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  __libc_free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  __libc_free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  __libc_free(p);
}
#endif

namespace weft::platform {
namespace {

constexpr int kConns = 32;
constexpr int kInFlight = 16;
constexpr std::uint32_t kPayload = 64;
constexpr int kWarmupRounds = 100;
constexpr int kSteadyRounds = 400;  // 32 x 16 x 400 = 204,800 echoed frames

class ZeroAllocTest : public ::testing::TestWithParam<BackendKind> {};

TEST_P(ZeroAllocTest, SteadyStateEchoAllocatesNothing) {
#if defined(WEFT_SANITIZED)
  GTEST_SKIP() << "sanitizer runtimes own malloc; the counting allocator is not installed";
#endif
  std::string why;
  if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
    GTEST_SKIP() << "io_uring unavailable here: " << why;
  }
  Config cfg;
  cfg.backend = GetParam();
  cfg.max_connections = 64;
  Runtime rt;
  std::vector<Service> services;
  services.push_back(
      {Address::loopback_v4(0), [](Loop& loop) { return examples::make_echo_factory(loop, {}); }});
  ASSERT_TRUE(rt.start(cfg, std::move(services)).ok());

  int fds[kConns];
  for (int& fd : fds) {
    fd = test::connect_to(rt.local_address(0));
    ASSERT_GE(fd, 0);
  }
  // One batch per connection: 16 frames written with one send, like a pipelining client.
  constexpr std::size_t kFrame = 4 + kPayload;
  static std::uint8_t out[kConns][kInFlight * kFrame];
  static std::uint8_t in[kInFlight * kFrame];
  for (int c = 0; c < kConns; ++c) {
    for (int f = 0; f < kInFlight; ++f) {
      auto frame = test::make_frame(kPayload, static_cast<std::uint8_t>(c * 16 + f));
      std::memcpy(out[c] + f * kFrame, frame.data(), kFrame);
    }
  }
  bool all_ok = true;
  std::uint64_t frames = 0;
  const auto round = [&] {
    for (int c = 0; c < kConns; ++c) {
      all_ok &= test::write_all(fds[c], out[c], sizeof out[c]);
    }
    for (int c = 0; c < kConns; ++c) {
      all_ok &= test::read_exact(fds[c], in, sizeof in);
      all_ok &= std::memcmp(in, out[c], sizeof in) == 0;
      frames += kInFlight;
    }
  };
  for (int r = 0; r < kWarmupRounds; ++r) {
    round();
  }
  ASSERT_TRUE(all_ok);
  frames = 0;
  g_allocations.store(0);
  g_counting.store(true);
  for (int r = 0; r < kSteadyRounds; ++r) {
    round();
  }
  g_counting.store(false);
  const std::uint64_t allocations = g_allocations.load();
  EXPECT_TRUE(all_ok);
  EXPECT_EQ(frames, static_cast<std::uint64_t>(kConns) * kInFlight * kSteadyRounds);
  EXPECT_EQ(allocations, 0u) << "allocations during " << frames << " echoed frames";
  // The counter works: an allocation in the window would have been seen.
  g_counting.store(true);
  void* volatile probe = std::malloc(16);
  g_counting.store(false);
  std::free(probe);
#if !defined(WEFT_SANITIZED)
  EXPECT_EQ(g_allocations.load(), 1u);
#endif
  for (int fd : fds) {
    ::close(fd);
  }
}

// ---- every path, two workers ----------------------------------------------------------------
//
// One run of a scenario that goes through every path of the core that a steady state uses:
// the echo service (send_ref; send_copy of split prefixes; frames larger than a buffer split
// across receives; prefixes written byte by byte; queue_full and on_writable; parking with 4
// receive buffers), a "misc" service (pause_reading with a resume bounced through the other
// worker and Loop::defer, so input is stashed meanwhile; a flood of send_copy until the queue
// is full, then on_writable; a per-connection idle timeout that closes), connection churn,
// outbound connects (Loop::connect, started by inject), round-robin hand-offs (posts), and
// finally a drain (Runtime::stop + wait). The scenario runs once to warm up, then again with
// the counter on, and the drain ends the counted window.

constexpr int kStreams = 6;
constexpr std::size_t kStreamBytes = 96 * 1024;
std::uint8_t g_out[kStreams][kStreamBytes];
std::uint8_t g_in[kStreams][kStreamBytes];
std::size_t g_len[kStreams];
std::uint8_t g_misc_payload[200];
std::uint8_t g_misc_in[64 * 1024];
std::uint8_t g_split_frame[4 + 9000];
std::uint8_t g_split_in[4 + 9000];
std::uint8_t g_out_frame[4 + 3000];

struct Shared {
  Loop* loops[2] = {};
  std::atomic<int> resumed{0};
  std::atomic<int> writables{0};
  std::atomic<int> out_done{0};
  std::atomic<int> out_failed{0};
  Address echo_addr;
  HandlerFactory* out_factory[2] = {};
};
Shared g_shared;

// ---- misc service
void resume_now(Loop& loop, const Post& p) {
  const ConnId id{static_cast<std::uint32_t>(p.a), static_cast<std::uint32_t>(p.b >> 32),
                  static_cast<std::uint32_t>(p.b)};
  if (Conn* c = loop.find(id)) {
    c->resume_reading();
    g_shared.resumed.fetch_add(1);
  }
}
void resume_later(Loop& loop, const Post& p) {
  // Back on the connection's worker: resume after this iteration's callbacks (defer).
  if (!loop.defer(Post{&resume_now, nullptr, p.a, p.b}).ok()) {
    resume_now(loop, p);
  }
}
void bounce(Loop& loop, const Post& p) {
  const auto origin = static_cast<std::uint32_t>(p.b);
  if (!loop.post(origin, Post{&resume_later, nullptr, p.a, p.b}).ok()) {
    ADD_FAILURE() << "post back failed";
  }
}

class Misc final : public Handler {
 public:
  void reset(Conn&) noexcept {
    flooding_ = false;
    commanded_ = false;
  }
  void on_data(Conn& c, BufView in) noexcept override {
    // The first byte of a connection is its command; everything after it is echoed (a
    // payload split at a byte that reads as a command must not be taken for one).
    const char cmd = commanded_ ? '\0' : static_cast<char>(in.bytes[0]);
    commanded_ = true;
    if (cmd == 'P') {
      // Pause, and resume only after a round trip through the other worker: what the client
      // sends meanwhile is held by the core (the stash).
      c.pause_reading();
      const ConnId id = c.id();
      const Post p{&bounce, nullptr, id.slot, (std::uint64_t{id.gen} << 32) | id.worker};
      if (!c.loop().post(id.worker ^ 1u, p).ok()) {
        c.resume_reading();
      }
      in.bytes = in.bytes.subspan(1);
    } else if (cmd == 'F') {
      static const std::byte chunk[1000] = {};
      while (c.send_copy(chunk).ok()) {
      }
      flooding_ = true;  // queue_full or no_buffers: on_writable follows
      return;
    } else if (cmd == 'I') {
      c.set_timeouts({50, 0, 0});  // idle for 50 ms: closed by the timer
      return;
    }
    if (!in.bytes.empty() && !c.send_copy(in.bytes).ok()) {
      c.abort(make_error_code(platform_errc::no_buffers));
    }
  }
  void on_writable(Conn& c) noexcept override {
    if (flooding_) {
      flooding_ = false;
      static const std::byte bang[1] = {std::byte{'!'}};
      if (c.send_copy(bang).ok()) {
        g_shared.writables.fetch_add(1);
      }
    }
  }

 private:
  bool flooding_ = false;
  bool commanded_ = false;
};

// ---- outbound client: sends one frame, checks its echo, closes
class OutClient final : public Handler {
 public:
  void reset(Conn&) noexcept { got_ = 0; }
  void on_open(Conn& c) noexcept override {
    if (!c.send_copy(std::as_bytes(std::span(g_out_frame))).ok()) {
      c.abort(make_error_code(platform_errc::no_buffers));
    }
  }
  void on_data(Conn& c, BufView in) noexcept override {
    if (got_ + in.bytes.size() > sizeof g_out_frame ||
        std::memcmp(g_out_frame + got_, in.bytes.data(), in.bytes.size()) != 0) {
      c.abort(make_error_code(platform_errc::invalid_argument));
      return;
    }
    got_ += in.bytes.size();
    if (got_ == sizeof g_out_frame) {
      c.close();
    }
  }
  void on_close(Conn&, std::error_code reason) noexcept override {
    (!reason && got_ == sizeof g_out_frame ? g_shared.out_done : g_shared.out_failed).fetch_add(1);
  }

 private:
  std::size_t got_ = 0;
};

void start_outbound(Loop& loop, const Post&) {
  if (!loop.connect(g_shared.echo_addr, *g_shared.out_factory[loop.index()]).ok()) {
    g_shared.out_failed.fetch_add(1);
  }
}

// ---- client side, without allocating: non-blocking sockets and poll.
bool set_nonblocking(int fd) {
  return ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) == 0;
}

// Writes every stream's output and reads its echo, all at once. A stream reads only after
// its writes stalled (EAGAIN) or finished: the server's output backs up, runs out of room
// and must resume from on_writable.
bool pump(const int* fds, int n, int timeout_ms = 20000) {
  std::size_t sent[kStreams] = {};
  std::size_t got[kStreams] = {};
  bool stalled[kStreams] = {};
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    pollfd p[kStreams];
    bool all = true;
    for (int i = 0; i < n; ++i) {
      p[i] = {fds[i], 0, 0};
      if (sent[i] < g_len[i]) {
        p[i].events |= POLLOUT;
      }
      if (got[i] < g_len[i] && (stalled[i] || sent[i] == g_len[i])) {
        p[i].events |= POLLIN;
      }
      all = all && got[i] == g_len[i];
    }
    if (all) {
      for (int i = 0; i < n; ++i) {
        if (std::memcmp(g_in[i], g_out[i], g_len[i]) != 0) {
          return false;
        }
      }
      return true;
    }
    if (::poll(p, static_cast<nfds_t>(n), 100) < 0 && errno != EINTR) {
      return false;
    }
    for (int i = 0; i < n; ++i) {
      if ((p[i].revents & (POLLERR | POLLHUP)) != 0 && (p[i].revents & POLLIN) == 0) {
        return false;
      }
      if ((p[i].revents & POLLOUT) != 0) {
        const ssize_t w = ::send(fds[i], g_out[i] + sent[i],
                                 std::min<std::size_t>(g_len[i] - sent[i], 16384), MSG_NOSIGNAL);
        if (w > 0) {
          sent[i] += static_cast<std::size_t>(w);
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
          return false;
        } else {
          stalled[i] = true;
        }
      }
      if ((p[i].revents & POLLIN) != 0) {
        const ssize_t r = ::recv(fds[i], g_in[i] + got[i], g_len[i] - got[i], 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
          return false;
        }
        if (r > 0) {
          got[i] += static_cast<std::size_t>(r);
          stalled[i] = false;
        }
      }
    }
  }
  return false;
}

// Reads until `want` bytes arrived or the peer closed; returns the count.
std::size_t read_some(int fd, std::uint8_t* buf, std::size_t want, int timeout_ms = 5000) {
  std::size_t got = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (got < want && std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) {
      continue;
    }
    const ssize_t r = ::recv(fd, buf + got, want - got, MSG_DONTWAIT);
    if (r == 0) {
      break;
    }
    if (r > 0) {
      got += static_cast<std::size_t>(r);
    }
  }
  return got;
}

struct Scenario {
  Runtime* rt = nullptr;
  Address echo;
  Address misc;
  int kept[2] = {-1, -1};  // left open for the drain

  // Returns the name of the first step that failed, or nullptr.
  const char* run() {
    // Echo: streams that write faster than they read, frames up to 9 KiB (split across
    // receives of 4 KiB), all at once with 4 receive buffers per worker: parking.
    int fds[kStreams];
    for (int i = 0; i < kStreams; ++i) {
      fds[i] = test::connect_to(echo, 5000, 16 * 1024);
      if (fds[i] < 0 || !set_nonblocking(fds[i])) {
        return "echo connect";
      }
    }
    const bool echoed = pump(fds, kStreams);
    for (int fd : fds) {
      ::close(fd);
    }
    if (!echoed) {
      return "echo streams";
    }
    // Prefixes written one byte at a time, then a payload larger than a buffer.
    int fd = test::connect_to(echo);
    if (fd < 0) {
      return "split connect";
    }
    for (int f = 0; f < 2; ++f) {
      for (int b = 0; b < 4; ++b) {
        if (!test::write_all(fd, g_split_frame + b, 1)) {
          return "split prefix";
        }
        ::poll(nullptr, 0, 2);  // its own segment, most likely its own receive
      }
      if (!test::write_all(fd, g_split_frame + 4, sizeof g_split_frame - 4) ||
          !test::read_exact(fd, g_split_in, sizeof g_split_in) ||
          std::memcmp(g_split_in, g_split_frame, sizeof g_split_in) != 0) {
        return "split echo";
      }
    }
    ::close(fd);
    // Misc: pause + stash + posts + defer.
    for (int k = 0; k < 4; ++k) {
      const int before = g_shared.resumed.load();
      fd = test::connect_to(misc);
      if (fd < 0 || !test::write_all(fd, "P", 1)) {
        return "pause connect";
      }
      ::poll(nullptr, 0, 1);
      // The resume comes back through the other worker; when "P" and the payload arrived in
      // one receive the echo can be back first, so the resume is waited for, not sampled.
      if (!test::write_all(fd, g_misc_payload, sizeof g_misc_payload) ||
          read_some(fd, g_misc_in, sizeof g_misc_payload) != sizeof g_misc_payload ||
          std::memcmp(g_misc_in, g_misc_payload, sizeof g_misc_payload) != 0 ||
          !test::eventually([&] { return g_shared.resumed.load() != before; },
                            std::chrono::milliseconds(2000))) {
        return "pause and resume";
      }
      ::close(fd);
    }
    // Misc: flood until the queue is full, then on_writable sends '!'.
    for (int k = 0; k < 2; ++k) {
      const int before = g_shared.writables.load();
      fd = test::connect_to(misc);
      if (fd < 0 || !test::write_all(fd, "F", 1)) {
        return "flood connect";
      }
      std::size_t total = 0;
      bool bang = false;
      while (!bang) {
        const std::size_t n = read_some(fd, g_misc_in, sizeof g_misc_in, 100);
        if (n == 0) {
          return "flood read";
        }
        bang = g_misc_in[n - 1] == '!';
        total += n;
      }
      ::close(fd);
      if (g_shared.writables.load() == before || total < 2) {
        return "flood on_writable";
      }
    }
    // Misc: idle timeouts close connections (timers firing).
    int idle[4];
    for (int& i : idle) {
      i = test::connect_to(misc);
      if (i < 0 || !test::write_all(i, "I", 1)) {
        return "idle connect";
      }
    }
    for (int i : idle) {
      if (test::wait_closed(i, 5000) != 0) {
        return "idle close";
      }
      ::close(i);
    }
    // Churn: connections opened and closed, each with one round trip.
    for (int k = 0; k < 40; ++k) {
      fd = test::connect_to(echo);
      if (fd < 0 || !test::write_all(fd, g_out_frame, sizeof g_out_frame) ||
          !test::read_exact(fd, g_split_in, sizeof g_out_frame) ||
          std::memcmp(g_split_in, g_out_frame, sizeof g_out_frame) != 0) {
        return "churn";
      }
      ::close(fd);
    }
    // Outbound connects from both workers.
    const int done = g_shared.out_done.load();
    for (int k = 0; k < 8; ++k) {
      if (!rt->worker(k % 2).inject(Post{&start_outbound, nullptr, 0, 0}).ok()) {
        return "inject";
      }
    }
    if (!test::eventually([&] { return g_shared.out_done.load() >= done + 8; })) {
      return "outbound";
    }
    // Two connections left open for the drain.
    for (int& k : kept) {
      if (k >= 0) {
        ::close(k);
      }
      k = test::connect_to(echo);
      if (k < 0) {
        return "kept";
      }
    }
    return nullptr;
  }
};

TEST_P(ZeroAllocTest, EveryPathAllocatesNothingAfterWarmUpWithTwoWorkers) {
#if defined(WEFT_SANITIZED)
  GTEST_SKIP() << "sanitizer runtimes own malloc; the counting allocator is not installed";
#endif
  std::string why;
  if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
    GTEST_SKIP() << "io_uring unavailable here: " << why;
  }
  for (int i = 0; i < kStreams; ++i) {
    std::size_t off = 0;
    for (std::uint64_t f = 0;; ++f) {
      const std::uint32_t len = f % 7 == 6 ? 9000 : static_cast<std::uint32_t>(1 + (f * 37) % 400);
      if (off + 4 + len > kStreamBytes) {
        break;
      }
      auto frame = test::make_frame(len, static_cast<std::uint64_t>(i) * 1'000'000 + f);
      std::memcpy(g_out[i] + off, frame.data(), frame.size());
      off += frame.size();
    }
    g_len[i] = off;
  }
  test::fill_payload(g_misc_payload, sizeof g_misc_payload, 77);
  for (auto& b : g_misc_payload) {
    b = b == 'P' || b == 'F' || b == 'I' ? std::uint8_t{'x'} : b;
  }
  {
    auto f = test::make_frame(9000, 88);
    std::memcpy(g_split_frame, f.data(), f.size());
    auto o = test::make_frame(3000, 99);
    std::memcpy(g_out_frame, o.data(), o.size());
  }

  Config cfg;
  cfg.backend = GetParam();
  cfg.workers = 2;
  cfg.accept_mode = AcceptMode::round_robin;
  cfg.max_connections = 64;
  cfg.recv_buffers = 4;  // parking
  cfg.send_buffers = 16;
  cfg.buffer_size = 4096;
  cfg.max_out_iov = 8;
  cfg.high_watermark = 16 * 1024;
  cfg.low_watermark = 4 * 1024;
  cfg.drain_timeout_ms = 2000;
  Runtime rt;
  HandlerPool<OutClient> out0(8);
  HandlerPool<OutClient> out1(8);
  g_shared.out_factory[0] = &out0;
  g_shared.out_factory[1] = &out1;
  examples::EchoOptions echo;
  echo.max_frame_size = 16 * 1024;
  std::vector<Service> services;
  services.push_back({Address::loopback_v4(0),
                      [echo](Loop& loop) { return examples::make_echo_factory(loop, echo); }});
  services.push_back({Address::loopback_v4(0), [](Loop&) -> std::unique_ptr<HandlerFactory> {
                        return std::make_unique<HandlerPool<Misc>>(64);
                      }});
  auto started = rt.start(cfg, std::move(services));
  ASSERT_TRUE(started.ok()) << started.error().message();
  g_shared.echo_addr = rt.local_address(0);
  Scenario sc{&rt, rt.local_address(0), rt.local_address(1)};

  const char* warm = sc.run();
  ASSERT_EQ(warm, nullptr) << "warm-up step failed: " << warm;
  const StatsSnapshot before = rt.stats();
  g_allocations.store(0);
  g_counting.store(true);
  const char* failed = sc.run();
  rt.stop(2000);  // the drain: the two kept connections are closed by on_drain
  rt.wait();
  g_counting.store(false);
  const std::uint64_t allocations = g_allocations.load();
  EXPECT_EQ(failed, nullptr) << "step failed: " << failed;
  EXPECT_EQ(allocations, 0u) << "allocations after warm-up";
  const StatsSnapshot after = rt.stats();
  // Each path was really taken in the counted window.
  EXPECT_GT(after.recv_parked, before.recv_parked) << "no parking";
  EXPECT_GT(after.timeouts, before.timeouts) << "no timer fired";
  EXPECT_GT(after.posts, before.posts) << "no posts";
  EXPECT_GE(after.connected, before.connected + 8) << "outbound connects";
  EXPECT_GE(after.accepted, before.accepted + 50) << "churn";
  EXPECT_EQ(after.active, 0u) << "the drain left connections open";
  for (int k : sc.kept) {
    ::close(k);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, ZeroAllocTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::platform
