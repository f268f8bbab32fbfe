// Zero allocations in the loop Client's steady state (STYLE point 8): a Client connected to
// a real mosquitto, subscribed to its own topic, publishing QoS 1 and QoS 0 and receiving
// them back (PUBLISH, PUBACK both ways, the decoder, the pool buffers, the timer wheel) —
// counted by weft::alloc_counter over thousands of messages, on both backends. The broker is
// another process: its allocations do not count.
#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <string>

#include <weft/base/alloc_counter.h>
#include <weft/mqtt/bridge.h>
#include <weft/mqtt/client.h>
#include <weft/platform/loop.h>

#include "mosquitto.h"
#include "test_net.h"

namespace weft::mqtt {
namespace {

using platform::BackendKind;

struct Counts {
  std::uint64_t in = 0;
  std::uint64_t acked = 0;
  std::uint64_t local = 0;
  static void on_msg(void* ctx, const Message&) noexcept { ++static_cast<Counts*>(ctx)->in; }
  static void on_ack(void* ctx, std::uint16_t) noexcept { ++static_cast<Counts*>(ctx)->acked; }
  static void on_local(void* ctx, std::string_view, std::span<const std::byte>) noexcept {
    ++static_cast<Counts*>(ctx)->local;
  }
};

class MqttClientZeroAlloc : public ::testing::TestWithParam<BackendKind> {};

TEST_P(MqttClientZeroAlloc, PublishReceiveAndAckSteadyState) {
  if (!alloc::enabled()) {
    GTEST_SKIP() << "counting allocator not installed (sanitizer build or non-glibc)";
  }
  std::string why;
  if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
    GTEST_SKIP() << "io_uring unavailable here: " << why;
  }
  const std::string exe = find_exe("mosquitto");
  ASSERT_FALSE(exe.empty()) << "mosquitto not installed: run scripts/deps.sh";
  Broker b(exe);
  ASSERT_TRUE(b.start()) << b.log();
  auto loop = platform::Loop::create(test::one_worker_config(GetParam()), 0);
  ASSERT_TRUE(loop);
  platform::Loop& l = *loop.value();
  for (const Version v : {Version::v311, Version::v5}) {
    ClientConfig cc;
    cc.backoff_base_ms = 50;
    cc.backoff_cap_ms = 200;
    cc.session.clean_start = false;  // the subscription survives the broker's restart
    cc.session.session_expiry_s = 3600;
    cc.session.version = v;
    cc.session.client_id = v == Version::v5 ? "weft-za5" : "weft-za";
    cc.session.queue_slots = 64;
    BridgeConfig bc = default_bridge_config();
    bc.rules.push_back({Direction::in, "fleet/{device}/local/#", "echo/#", 1, false});
    Client c(l, cc);
    Bridge br(c, bc, "za");
    Counts n;
    br.on_local(&Counts::on_local, &n);
    c.on_ack(&Counts::on_ack, &n);
    ASSERT_TRUE(br.start());
    ASSERT_TRUE(c.start(platform::Address::loopback_v4(static_cast<std::uint16_t>(b.port()))));
    const std::uint64_t end = now_ms() + 5000;
    while (c.state() != ClientState::connected && now_ms() < end) {
      l.run_once(10);
    }
    ASSERT_EQ(c.state(), ClientState::connected);
    const char payload[] = "temperature=21.5";
    const auto body = std::as_bytes(std::span<const char>(payload, sizeof payload - 1));
    // local/t -> fleet/za/local/t (bridge out) -> broker -> fleet/za/local/t (bridge in,
    // subscribed) -> echo/t locally. QoS 1 both ways; every 4th on a QoS 0 client publish.
    auto cycles = [&](int count, std::uint64_t limit_ms) {
      const std::uint64_t stop = now_ms() + limit_ms;
      const std::uint64_t want = n.local + static_cast<std::uint64_t>(count);
      int sent = 0;
      while (n.local < want && now_ms() < stop) {
        if (sent < count && c.session().queued() < 32) {
          if (br.local("local/t", body).ok()) {
            ++sent;
          }
          if (sent % 4 == 0) {
            (void)c.publish("other/t", body, 0);
          }
        }
        l.run_once(sent < count ? 0 : 5);
      }
      return n.local >= want;
    };
    ASSERT_TRUE(cycles(300, 10000)) << "warm-up: " << n.local;  // subscription settled
    const std::uint64_t before = alloc::count();
    const bool ok = cycles(3000, 30000);
    const std::uint64_t after = alloc::count();
    ASSERT_TRUE(ok) << "received " << n.local;
    EXPECT_EQ(after - before, 0u) << "allocations in the steady state";
    EXPECT_GE(n.acked, 3000u);

    // Reconnect: the broker goes away and comes back (the test's own process handling is
    // not counted: only the loop iterations and the bridge's calls are). Losing the
    // connection, the backoff timer, Loop::connect, CONNECT, resubscribing and resending
    // queued QoS 1 allocate nothing either.
    std::uint64_t reconnect_allocs = 0;
    auto counted_run = [&](auto done, std::uint64_t limit_ms) {
      const std::uint64_t stop = now_ms() + limit_ms;
      while (!done() && now_ms() < stop) {
        const std::uint64_t b0 = alloc::count();
        l.run_once(10);
        reconnect_allocs += alloc::count() - b0;
      }
      return done();
    };
    b.stop();
    ASSERT_TRUE(counted_run([&] { return c.state() == ClientState::waiting; }, 5000));
    std::uint64_t b0 = alloc::count();
    const bool queued = br.local("local/t", body).ok();  // QoS 1 waits in the queue
    reconnect_allocs += alloc::count() - b0;
    EXPECT_TRUE(queued);
    ASSERT_TRUE(b.start()) << b.log();
    const std::uint64_t local_before = n.local;
    ASSERT_TRUE(counted_run(
        [&] { return c.state() == ClientState::connected && n.local > local_before; }, 10000))
        << "state " << to_string(c.state()) << ", delivered " << n.local - local_before;
    EXPECT_EQ(reconnect_allocs, 0u) << "allocations while reconnecting";
    EXPECT_GE(c.stats().connected, 2u);
    c.stop();
    const std::uint64_t end2 = now_ms() + 3000;
    while (c.state() != ClientState::stopped && now_ms() < end2) {
      l.run_once(10);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, MqttClientZeroAlloc,
                         ::testing::Values(BackendKind::epoll, BackendKind::uring),
                         test::BackendName());

}  // namespace
}  // namespace weft::mqtt
