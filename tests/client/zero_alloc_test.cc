// "No allocation per call", proved: this binary links weft::alloc_counter (the process's
// allocator is replaced by a counting one) and asserts that after a warm-up the whole process
// — the real msg::Server on its worker and the Client on the test thread's Loop — allocates
// nothing while the client keeps 16 calls in flight (plain and idempotent, with deadlines),
// PINGs, and sends MESSAGEs. (Under sanitizers, which own malloc, it skips with a reason.)
#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include <weft/base/alloc_counter.h>
#include <weft/client/client.h>
#include <weft/msg/server.h>
#include <weft/platform/runtime.h>

#include "test_net.h"

namespace weft::client {
namespace {

using platform::BackendKind;

constexpr std::uint32_t kEcho = msg::method_id("weft.test.ClientAlloc/Echo");
constexpr std::uint32_t kNote = msg::method_id("weft.test.ClientAlloc/Note");
constexpr int kInflight = 16;

void echo(void*, msg::Call& c, std::span<const std::byte> p) noexcept {
  (void)c.reply(p);
}
void note(void*, msg::Call&, std::span<const std::byte>) noexcept {}

// Keeps kInflight calls going: each answer starts the next call until `left` runs out.
struct Driver {
  Client* client = nullptr;
  int left = 0;
  int done = 0;
  int failed = 0;
  std::uint64_t n = 0;
  std::byte payload[64] = {};
  static void on_answer(void* ctx, Result<std::span<const std::byte>> r) noexcept {
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
    CallOptions o;
    o.deadline_ms = 5000;
    o.idempotent = (++n % 2) == 0;
    o.retries = 1;
    if (!client->call(kEcho, payload, o, &on_answer, this)) {
      ++failed;
    }
  }
};

class ClientZeroAllocTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    if (!alloc::enabled()) {
      GTEST_SKIP() << "allocation counting is off in this build (sanitizers own malloc)";
    }
    std::string why;
    if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
  }
};

TEST_P(ClientZeroAllocTest, SteadyStateCallsAllocateNothing) {
  platform::Config cfg = test::one_worker_config(GetParam());
  cfg.send_buffers = 64;
  msg::Options so;
  so.max_frame = 4096;
  so.max_inflight = kInflight;
  so.setup = [](msg::Registry& r, platform::Loop&) {
    EXPECT_TRUE(r.add({kEcho, "weft.test.ClientAlloc/Echo", &echo, nullptr}));
    EXPECT_TRUE(r.add({kNote, "weft.test.ClientAlloc/Note", &note, nullptr}));
  };
  msg::Server server(std::move(so));
  platform::Runtime rt;
  std::vector<platform::Service> services;
  services.push_back(server.service(platform::Address::loopback_v4(0)));
  ASSERT_TRUE(rt.start(cfg, std::move(services)).ok());

  auto loop = platform::Loop::create(cfg, 1);
  ASSERT_TRUE(loop.ok());
  Options co;
  co.max_calls = kInflight;
  co.seed = 1;
  auto client = Client::create(*loop.value(), co);
  ASSERT_TRUE(client.ok());
  Client& c = *client.value();
  ASSERT_TRUE(c.connect(rt.local_address(0)).ok());

  Driver d;
  d.client = &c;
  std::uint64_t pings = 0;
  auto round = [&](int calls) {
    d.left = calls;
    d.done = 0;
    for (int i = 0; i < kInflight; ++i) {
      d.next();
    }
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (d.done < calls && std::chrono::steady_clock::now() < end) {
      loop.value()->run_once(1);
      if (c.ping(
              1000,
              [](void* ctx, Result<std::uint64_t> r) noexcept {
                *static_cast<std::uint64_t*>(ctx) += r.ok() ? 1 : 0;
              },
              &pings)) {
        (void)c.message(kNote, d.payload);
      }
    }
  };
  const auto wait_ready = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!c.ready() && std::chrono::steady_clock::now() < wait_ready) {
    loop.value()->run_once(1);
  }
  ASSERT_TRUE(c.ready());
  round(2000);  // warm-up: pools, rings, first-use paths
  ASSERT_EQ(d.done, 2000);
  const std::uint64_t before = alloc::count();
  round(5000);
  const std::uint64_t after = alloc::count();
  EXPECT_EQ(d.done, 5000);
  EXPECT_EQ(d.failed, 0);
  EXPECT_GT(pings, 0u);
  EXPECT_EQ(after - before, 0u) << "allocations during 5000 calls";

  c.close();
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!c.idle() && std::chrono::steady_clock::now() < end) {
    loop.value()->run_once(1);
  }
  client.value().reset();
  rt.stop();
  rt.wait();
}

INSTANTIATE_TEST_SUITE_P(Backends, ClientZeroAllocTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::client
