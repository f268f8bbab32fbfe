// "No allocation per call" for Upstream, proved like the Client's (this binary links
// weft::alloc_counter): two real msg::Servers, one on TCP and one on a unix socket, and an
// Upstream on the test thread's Loop keeping 16 calls in flight (plain and idempotent, with
// deadlines, round robin and least outstanding) allocate nothing after a warm-up.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <weft/base/alloc_counter.h>
#include <weft/client/upstream.h>
#include <weft/msg/server.h>
#include <weft/platform/runtime.h>

#include "temp_dir.h"
#include "test_net.h"

namespace weft::client {
namespace {

using platform::BackendKind;

constexpr std::uint32_t kEcho = msg::method_id("weft.test.UpAlloc/Echo");
constexpr int kInflight = 16;

void echo(void*, msg::Call& c, std::span<const std::byte> p) noexcept {
  (void)c.reply(p);
}

struct Driver {
  Upstream* up = nullptr;
  int left = 0;
  int done = 0;
  int failed = 0;
  std::uint64_t n = 0;
  std::byte payload[64] = {};
  static void on_answer(void* ctx, Result<std::span<const std::byte>> r, int) noexcept {
    auto* d = static_cast<Driver*>(ctx);
    ++d->done;
    if (!r.ok() || r.value().size() != sizeof d->payload) {
      ++d->failed;
    }
    d->next();
  }
  void next() {
    if (left == 0) {
      return;
    }
    --left;
    UpstreamCall c;
    c.deadline_ms = 5000;
    c.idempotent = (++n % 2) == 0;
    c.idempotency_key = (n % 4) == 0 ? n : 0;  // caller-given and fresh keys
    if (!up->call(kEcho, payload, c, &on_answer, this)) {
      ++done;
      ++failed;
    }
  }
};

class UpstreamZeroAllocTest : public ::testing::TestWithParam<std::tuple<BackendKind, Balance>> {
 protected:
  void SetUp() override {
    if (!alloc::enabled()) {
      GTEST_SKIP() << "allocation counting is off in this build (sanitizers own malloc)";
    }
    std::string why;
    if (std::get<0>(GetParam()) == BackendKind::uring && !test::uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
  }
};

TEST_P(UpstreamZeroAllocTest, SteadyStateCallsAllocateNothing) {
  const BackendKind kind = std::get<0>(GetParam());
  test::TempDir dir;
  ASSERT_TRUE(dir.ok());
  platform::Config cfg = test::one_worker_config(kind);
  cfg.send_buffers = 64;
  auto make_server = [] {
    msg::Options so;
    so.max_frame = 4096;
    so.max_inflight = kInflight;
    so.setup = [](msg::Registry& r, platform::Loop&) {
      EXPECT_TRUE(r.add({kEcho, "weft.test.UpAlloc/Echo", &echo, nullptr}));
    };
    return std::make_unique<msg::Server>(std::move(so));
  };
  auto s1 = make_server();
  auto s2 = make_server();
  platform::Runtime rt1, rt2;
  {
    std::vector<platform::Service> services;
    services.push_back(s1->service(platform::Address::loopback_v4(0)));
    ASSERT_TRUE(rt1.start(cfg, std::move(services)).ok());
  }
  {
    auto a = platform::Address::parse("unix:" + dir.file("up.sock"));
    ASSERT_TRUE(a.ok());
    std::vector<platform::Service> services;
    services.push_back(s2->service(a.value()));
    ASSERT_TRUE(rt2.start(cfg, std::move(services)).ok());
  }
  const platform::Address eps[] = {rt1.local_address(0), rt2.local_address(0)};

  auto loop = platform::Loop::create(cfg, 1);
  ASSERT_TRUE(loop.ok());
  UpstreamOptions o;
  o.balance = std::get<1>(GetParam());
  o.max_inflight = kInflight;
  o.max_payload = 256;
  o.pool.max_size = 2;
  o.pool.health_interval_ms = 50;  // health PINGs run during the measurement too
  o.pool.client.max_calls = kInflight;
  o.pool.client.seed = 1;
  auto up = Upstream::create(*loop.value(), "alloc", eps, o);
  ASSERT_TRUE(up.ok());
  Upstream& u = *up.value();

  Driver d;
  d.up = &u;
  auto round = [&](int calls) {
    d.left = calls;
    d.done = 0;
    d.failed = 0;
    for (int i = 0; i < kInflight; ++i) {
      d.next();
    }
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (d.done < calls && std::chrono::steady_clock::now() < end) {
      loop.value()->run_once(1);
    }
  };
  // Both endpoints answering before the warm-up (their pools connect lazily at first).
  const auto wait_ready = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((u.endpoint(0).ok == 0 || u.endpoint(1).ok == 0) &&
         std::chrono::steady_clock::now() < wait_ready) {
    round(kInflight);
  }
  ASSERT_GT(u.endpoint(0).ok, 0u);
  ASSERT_GT(u.endpoint(1).ok, 0u);
  round(2000);  // warm-up: pools, rings, first-use paths
  ASSERT_EQ(d.done, 2000);
  const std::uint64_t before = alloc::count();
  round(5000);
  const std::uint64_t after = alloc::count();
  EXPECT_EQ(d.done, 5000);
  EXPECT_EQ(d.failed, 0);
  EXPECT_EQ(after - before, 0u) << "allocations during 5000 upstream calls";
  EXPECT_GT(u.endpoint(0).calls, 1000u);
  EXPECT_GT(u.endpoint(1).calls, 1000u);

  u.close();
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!u.idle() && std::chrono::steady_clock::now() < end) {
    loop.value()->run_once(1);
  }
  EXPECT_TRUE(u.idle());
  up.value().reset();
  rt1.stop();
  rt2.stop();
  rt1.wait();
  rt2.wait();
}

INSTANTIATE_TEST_SUITE_P(
    Backends, UpstreamZeroAllocTest,
    ::testing::Combine(::testing::Values(BackendKind::uring, BackendKind::epoll),
                       ::testing::Values(Balance::round_robin, Balance::least_outstanding)),
    [](const auto& i) {
      return std::string(std::get<0>(i.param) == BackendKind::uring ? "uring" : "epoll") +
             (std::get<1>(i.param) == Balance::round_robin ? "_round_robin" : "_least_outstanding");
    });

}  // namespace
}  // namespace weft::client
