// SharedBuffers: acquisition, reference counting, a multi-thread stress (run it under TSan:
// the tsan preset builds this test), and fan-out of one buffer to the connections of two
// workers over real loopback sockets, on both backends.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <weft/platform/error.h>
#include <weft/platform/handler_pool.h>
#include <weft/platform/runtime.h>
#include <weft/platform/shared_buffers.h>

#include "test_net.h"

namespace weft::platform {
namespace {

TEST(SharedBuffersTest, InitRejectsBadArguments) {
  const auto invalid = make_error_code(platform_errc::invalid_argument);
  SharedBuffers a;
  EXPECT_EQ(a.init(0, 64).error(), invalid);
  EXPECT_EQ(a.init(4, 63).error(), invalid);
  EXPECT_EQ(a.init(4, 100).error(), invalid);  // not a multiple of 64
  EXPECT_EQ(a.init(1u << 24, 64).error(), invalid);
  ASSERT_TRUE(a.init(4, 128).ok());
  EXPECT_EQ(a.init(4, 128).error(), invalid);  // once
  EXPECT_EQ(a.count(), 4u);
  EXPECT_EQ(a.buffer_size(), 128u);
  EXPECT_EQ(a.free_count(), 4u);
}

TEST(SharedBuffersTest, AcquireUntilExhausted) {
  SharedBuffers sb;
  ASSERT_TRUE(sb.init(4, 64).ok());
  std::vector<SharedRef> held;
  std::set<std::uint32_t> ids;
  for (int i = 0; i < 4; ++i) {
    SharedRef r = sb.acquire();
    ASSERT_TRUE(r.valid());
    EXPECT_EQ(r.pool(), &sb);
    EXPECT_EQ(sb.refcount(r.id()), 1u);
    EXPECT_EQ(r.buffer().size(), 64u);
    EXPECT_EQ(r.buffer().data(), sb.data(r.id()));
    ids.insert(r.id());
    held.push_back(std::move(r));
  }
  EXPECT_EQ(ids.size(), 4u);  // distinct buffers
  EXPECT_EQ(sb.free_count(), 0u);
  SharedRef none = sb.acquire();
  EXPECT_FALSE(none.valid());
  EXPECT_FALSE(none.share().valid());
  none.reset();  // harmless on an invalid ref
  EXPECT_EQ(sb.free_count(), 0u);
  // One back: it is the next one handed out.
  const std::uint32_t back = held[2].id();
  held[2].reset();
  EXPECT_FALSE(held[2].valid());
  EXPECT_EQ(sb.free_count(), 1u);
  EXPECT_EQ(sb.refcount(back), 0u);
  SharedRef again = sb.acquire();
  ASSERT_TRUE(again.valid());
  EXPECT_EQ(again.id(), back);
  EXPECT_EQ(sb.refcount(back), 1u);
  EXPECT_FALSE(sb.acquire().valid());
}

TEST(SharedBuffersTest, ReferencesAreCounted) {
  SharedBuffers sb;
  ASSERT_TRUE(sb.init(2, 64).ok());
  SharedRef a = sb.acquire();
  ASSERT_TRUE(a.valid());
  const std::uint32_t id = a.id();
  std::memcpy(a.buffer().data(), "event", 5);
  a.set_length(5);
  EXPECT_EQ(a.bytes().size(), 5u);
  SharedRef b = a.share();
  ASSERT_TRUE(b.valid());
  EXPECT_EQ(b.id(), id);
  EXPECT_EQ(b.bytes().size(), 5u);  // the length travels with the share
  EXPECT_EQ(std::memcmp(b.bytes().data(), "event", 5), 0);
  EXPECT_EQ(sb.refcount(id), 2u);
  sb.ref(id);  // a raw reference, as a queued segment holds
  EXPECT_EQ(sb.refcount(id), 3u);
  a.reset();
  EXPECT_FALSE(a.valid());
  EXPECT_EQ(sb.refcount(id), 2u);
  EXPECT_EQ(sb.free_count(), 1u);
  // Moving transfers the reference; move-assigning over a valid ref drops the old one.
  SharedRef c = std::move(b);
  EXPECT_FALSE(b.valid());
  EXPECT_EQ(sb.refcount(id), 2u);
  SharedRef other = sb.acquire();
  ASSERT_TRUE(other.valid());
  const std::uint32_t other_id = other.id();
  other = std::move(c);
  EXPECT_EQ(sb.refcount(other_id), 0u);
  EXPECT_EQ(sb.free_count(), 1u);
  EXPECT_EQ(other.id(), id);
  // release() gives the reference up without dropping it; adopt() takes it back.
  const std::uint32_t raw = other.release();
  EXPECT_FALSE(other.valid());
  EXPECT_EQ(raw, id);
  EXPECT_EQ(sb.refcount(id), 2u);
  SharedRef adopted = sb.adopt(raw, 5);
  EXPECT_EQ(sb.refcount(id), 2u);
  EXPECT_EQ(adopted.bytes().size(), 5u);
  adopted.reset();
  EXPECT_EQ(sb.free_count(), 1u);  // the raw reference still holds it
  sb.unref(id);                    // the last reference: back to the pool
  EXPECT_EQ(sb.refcount(id), 0u);
  EXPECT_EQ(sb.free_count(), 2u);
}

// Four threads acquire, write, share and release 100k times, passing every other buffer to
// another thread, which checks it and drops the last reference. A free list that handed one
// buffer to two owners shows up as a torn pattern (and as a data race under TSan).
TEST(SharedBuffersTest, ConcurrentAcquireShareRelease) {
  constexpr int kThreads = 4;
  constexpr int kIterations = 100'000;
  constexpr std::uint32_t kCount = 8;
  constexpr std::uint32_t kNoId = 0xffffffffu;
  SharedBuffers sb;
  ASSERT_TRUE(sb.init(kCount, 64).ok());
  std::atomic<std::uint32_t> slot[2] = {kNoId, kNoId};  // raw references in transit
  std::atomic<std::uint64_t> torn{0};
  std::atomic<std::uint64_t> acquired{0};

  const auto check = [&](std::uint32_t id) {
    const std::byte* p = sb.data(id);
    for (int i = 1; i < 64; ++i) {
      if (p[i] != p[0]) {
        torn.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
  };
  const auto worker = [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t));
    for (int i = 0; i < kIterations; ++i) {
      SharedRef r = sb.acquire();
      if (!r.valid()) {
        continue;  // exhausted for a moment: the others hold them
      }
      acquired.fetch_add(1, std::memory_order_relaxed);
      std::memset(r.buffer().data(), static_cast<int>((t * 31 + i) & 0xff), 64);
      SharedRef s = r.share();
      check(s.id());
      if ((rng() & 1) != 0) {
        r.reset();
      }
      if ((i & 1) == 0) {
        // Hand one reference to whoever takes the slot next; drop what was there.
        sb.ref(s.id());
        const std::uint32_t old = slot[t & 1].exchange(s.id(), std::memory_order_acq_rel);
        if (old != kNoId) {
          check(old);
          sb.unref(old);
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(worker, t);
  }
  for (auto& th : threads) {
    th.join();
  }
  for (auto& s : slot) {
    const std::uint32_t id = s.exchange(kNoId);
    if (id != kNoId) {
      sb.unref(id);
    }
  }
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GT(acquired.load(), static_cast<std::uint64_t>(kIterations));
  EXPECT_EQ(sb.free_count(), sb.count());
  for (std::uint32_t id = 0; id < kCount; ++id) {
    EXPECT_EQ(sb.refcount(id), 0u) << id;
  }
  // Every buffer can be acquired again, once.
  std::set<std::uint32_t> ids;
  std::vector<SharedRef> all;
  for (std::uint32_t i = 0; i < kCount; ++i) {
    all.push_back(sb.acquire());
    ASSERT_TRUE(all.back().valid());
    ids.insert(all.back().id());
  }
  EXPECT_EQ(ids.size(), kCount);
  EXPECT_FALSE(sb.acquire().valid());
}

// ---- fan-out through a Runtime: one shared buffer, queued on every connection of both
// workers (worker 0 publishes and posts the buffer's id to worker 1).

constexpr std::uint32_t kPayload = 3000;

struct Registry {  // one per worker, touched only on that worker's thread
  std::vector<ConnId> conns;
  Registry() { conns.reserve(32); }
};

struct FanOut {
  Registry reg[2];
  std::atomic<int> opened[2] = {0, 0};
  std::atomic<int> sent[2] = {0, 0};
  std::atomic<int> errors{0};
  std::atomic<bool> posted{false};
};

class FanHandler final : public Handler {
 public:
  explicit FanHandler(FanOut* f) : f_(f) {}
  void reset(Conn&) noexcept {}
  void on_open(Conn& c) noexcept override {
    const std::uint32_t w = c.loop().index();
    f_->reg[w].conns.push_back(c.id());
    f_->opened[w].fetch_add(1);
  }
  void on_data(Conn&, BufView) noexcept override {}
  void on_close(Conn& c, std::error_code) noexcept override {
    auto& v = f_->reg[c.loop().index()].conns;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (*it == c.id()) {
        v.erase(it);
        break;
      }
    }
  }

 private:
  FanOut* f_;
};

void send_to_all(Loop& loop, FanOut& f, const SharedRef& ref) {
  for (ConnId id : f.reg[loop.index()].conns) {
    Conn* c = loop.find(id);
    if (c == nullptr || !c->send_shared(ref, ref.bytes()).ok()) {
      f.errors.fetch_add(1);
      continue;
    }
    f.sent[loop.index()].fetch_add(1);
  }
}

void deliver(Loop& loop, const Post& p) {
  auto& f = *static_cast<FanOut*>(p.ptr);
  SharedRef ref = loop.shared()->adopt(static_cast<std::uint32_t>(p.a), p.b);
  send_to_all(loop, f, ref);
}  // ref dropped here: only the queued segments keep the buffer

void publish(Loop& loop, const Post& p) {
  auto& f = *static_cast<FanOut*>(p.ptr);
  SharedBuffers* sb = loop.shared();
  if (sb == nullptr) {
    f.errors.fetch_add(1);
    return;
  }
  SharedRef ref = sb->acquire();
  if (!ref.valid()) {
    f.errors.fetch_add(1);
    return;
  }
  auto buf = ref.buffer();
  for (std::uint32_t i = 0; i < kPayload; ++i) {
    buf[i] = static_cast<std::byte>('A' + i % 23);
  }
  ref.set_length(kPayload);
  send_to_all(loop, f, ref);
  SharedRef other = ref.share();
  const std::uint64_t len = other.bytes().size();
  const std::uint32_t id = other.release();
  if (!loop.post(1, Post{&deliver, &f, id, len}).ok()) {
    sb->unref(id);
    f.errors.fetch_add(1);
    return;
  }
  f.posted.store(true);
}

class SharedFanOutTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
  }
};

TEST_P(SharedFanOutTest, OneBufferReachesEveryConnectionOfBothWorkers) {
  constexpr int kClients = 6;
  Config cfg;
  cfg.backend = GetParam();
  cfg.workers = 2;
  cfg.accept_mode = AcceptMode::round_robin;  // worker 0 hands every other connection to 1
  cfg.max_connections = 16;
  cfg.recv_buffers = 16;
  cfg.send_buffers = 16;
  cfg.buffer_size = 4096;
  cfg.shared_buffers = 8;
  cfg.shared_buffer_size = 4096;
  FanOut f;
  std::vector<Service> services;
  services.push_back({Address::loopback_v4(0),
                      [&f](Loop&) { return std::make_unique<HandlerPool<FanHandler>>(16, &f); }});
  Runtime rt;
  auto started = rt.start(cfg, std::move(services));
  ASSERT_TRUE(started.ok()) << started.error().message();
  ASSERT_EQ(rt.backend_kind(), GetParam());
  ASSERT_NE(rt.shared(), nullptr);
  EXPECT_EQ(rt.shared()->count(), 8u);
  EXPECT_EQ(rt.worker(0).shared(), rt.shared());
  EXPECT_EQ(rt.worker(1).shared(), rt.shared());

  std::vector<int> fds;
  for (int i = 0; i < kClients; ++i) {
    const int fd = test::connect_to(rt.local_address(0));
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
  }
  ASSERT_TRUE(test::eventually([&] { return f.opened[0] + f.opened[1] == kClients; }));
  EXPECT_EQ(f.opened[0].load(), kClients / 2);
  EXPECT_EQ(f.opened[1].load(), kClients / 2);

  ASSERT_TRUE(rt.worker(0).inject(Post{&publish, &f, 0, 0}).ok());
  std::string expect(kPayload, '\0');
  for (std::uint32_t i = 0; i < kPayload; ++i) {
    expect[i] = static_cast<char>('A' + i % 23);
  }
  for (int fd : fds) {
    std::string got(kPayload, '\0');
    ASSERT_TRUE(test::read_exact(fd, got.data(), got.size()));
    EXPECT_EQ(got, expect);
  }
  EXPECT_TRUE(f.posted.load());
  EXPECT_EQ(f.errors.load(), 0);
  EXPECT_EQ(f.sent[0].load(), kClients / 2);
  EXPECT_EQ(f.sent[1].load(), kClients / 2);
  // Every segment released its reference once its bytes were sent: the buffer is back.
  EXPECT_TRUE(test::eventually([&] { return rt.shared()->free_count() == rt.shared()->count(); }));
  for (std::uint32_t id = 0; id < rt.shared()->count(); ++id) {
    EXPECT_EQ(rt.shared()->refcount(id), 0u);
  }
  for (int fd : fds) {
    ::close(fd);
  }
  EXPECT_TRUE(test::eventually([&] { return rt.stats().active == 0; }));
  rt.stop(100);
  rt.wait();
}

INSTANTIATE_TEST_SUITE_P(Backends, SharedFanOutTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::platform
