// Proof of "zero allocation in the steady state": this binary replaces the global allocator
// (malloc family and every operator new) with counting versions, runs framed echo traffic
// over 32 loopback connections with 16 frames in flight each, and asserts that after the
// warm-up not one allocation happened in the whole process — server worker and client alike.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

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

INSTANTIATE_TEST_SUITE_P(Backends, ZeroAllocTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::platform
