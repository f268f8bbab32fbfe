// Zero allocations in steady state on real connections (STYLE point 8): a server Runtime and a
// client Loop in this process, 100 channels open on one connection, each carrying messages
// both ways (the server echoes), counted over every thread by weft::alloc_counter. Also
// reports what an open idle channel costs (the Session's per-slot bytes, no allocation).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <vector>

#include <weft/base/alloc_counter.h>
#include <weft/mux/endpoint.h>
#include <weft/mux/stream.h>
#include <weft/platform/runtime.h>

#include "test_net.h"

namespace weft::mux {
namespace {

using platform::BackendKind;
using platform::BufView;

constexpr int kChannels = 100;

// Server: echoes every chunk whole (small messages: the queue always has room).
struct EchoBack final : ChannelHandler {
  bool busy = false;
  std::size_t on_data(Endpoint& ep, std::uint16_t ch, BufView d, bool fin) noexcept override {
    if (!d.bytes.empty() && !ep.write_all(ch, d.bytes)) {
      (void)ep.reset(ch, ChannelError::internal);
    }
    if (fin) {
      (void)ep.close(ch);
    }
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override { busy = false; }
};

struct EchoAcceptor final : Acceptor {
  std::vector<EchoBack> pool{128};
  ChannelHandler* on_open(Endpoint&, std::uint16_t, std::string_view) noexcept override {
    for (EchoBack& e : pool) {
      if (!e.busy) {
        e.busy = true;
        return &e;
      }
    }
    return nullptr;
  }
};

struct Counter final : ChannelHandler {
  std::uint64_t got = 0;
  bool accepted = false;
  void on_accepted(Endpoint&, std::uint16_t) noexcept override { accepted = true; }
  std::size_t on_data(Endpoint&, std::uint16_t, BufView d, bool) noexcept override {
    got += d.bytes.size();
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override {}
};

struct Ready final : Acceptor {
  bool ready = false;
  void on_ready(Endpoint&) noexcept override { ready = true; }
  ChannelHandler* on_open(Endpoint&, std::uint16_t, std::string_view) noexcept override {
    return nullptr;
  }
};

class EndpointZeroAlloc : public ::testing::TestWithParam<BackendKind> {};

TEST_P(EndpointZeroAlloc, HundredChannelsSteadyState) {
  if (!alloc::enabled()) {
    GTEST_SKIP() << "allocation counting is off in this build (sanitizers own malloc)";
  }
  std::string why;
  if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
    GTEST_SKIP() << "io_uring unavailable here: " << why;
  }
  platform::Config cfg = test::one_worker_config(GetParam());
  cfg.buffer_size = 16 * 1024;
  cfg.recv_buffers = 64;
  cfg.send_buffers = 128;
  EndpointOptions opt;
  opt.limits.max_channels = 128;
  opt.limits.queue_per_channel = 1024;
  opt.limits.queue_per_conn = 128 * 1024;
  platform::Runtime rt;
  std::vector<platform::Service> services;
  services.push_back(make_service(
      platform::Address::loopback_v4(0), opt,
      [](platform::Loop&) { return std::make_unique<EchoAcceptor>(); }, 4));
  ASSERT_TRUE(rt.start(cfg, std::move(services)).ok());
  auto loop = platform::Loop::create(cfg, 1);
  ASSERT_TRUE(loop.ok());
  Connector connector(**loop, opt, 1);
  Ready ready;
  auto id = connector.connect(rt.local_address(0), &ready);
  ASSERT_TRUE(id.ok());
  const auto spin = [&](auto done) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done() && std::chrono::steady_clock::now() < end) {
      (*loop)->run_once(1);
    }
    return done();
  };
  ASSERT_TRUE(spin([&] { return ready.ready; }));
  auto& ep = *static_cast<Endpoint*>((*loop)->find(*id)->handler());
  std::vector<Counter> cs(kChannels);
  std::vector<std::uint16_t> ids;
  for (Counter& c : cs) {
    auto ch = ep.open("echo", &c);
    ASSERT_TRUE(ch.ok()) << ch.error().message();
    ids.push_back(*ch);
  }
  ASSERT_TRUE(spin([&] {
    for (const Counter& c : cs) {
      if (!c.accepted) {
        return false;
      }
    }
    return true;
  }));
  const std::byte msg[64] = {};
  std::uint64_t want = 0;
  const auto rounds = [&](int n) {
    for (int r = 0; r < n; ++r) {
      for (std::uint16_t ch : ids) {
        if (!ep.write_all(ch, msg)) {
          return false;
        }
      }
      want += sizeof msg;
      if (!spin([&] {
            for (const Counter& c : cs) {
              if (c.got < want) {
                return false;
              }
            }
            return true;
          })) {
        return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(rounds(50));  // warm-up: pools, timers, the kernel's paths
  const std::uint64_t before = alloc::count();
  ASSERT_TRUE(rounds(300));
  const std::uint64_t during = alloc::count() - before;
  EXPECT_EQ(during, 0u) << "allocations in steady state with " << kChannels << " channels";
  EXPECT_EQ(ep.session().live_channels(), static_cast<std::size_t>(kChannels));
  // What an open idle channel holds: its slot plus its share of the id table and the free
  // stack; the send ring (queue_per_channel) is reserved per slot at construction.
  std::printf("channel slot %zu B (+ id table and free stack ~6 B), send ring %u B per slot\n",
              sizeof(detail::Slot), opt.limits.queue_per_channel);
  EXPECT_LE(sizeof(detail::Slot) + 6, 128u);
  // Graceful end: every channel closes (the server closes its side at our FIN), then the
  // GOAWAY'd connection closes by itself.
  for (std::uint16_t ch : ids) {
    ASSERT_TRUE(ep.close(ch).ok());
  }
  ep.shutdown();
  EXPECT_TRUE(spin([&] { return (*loop)->find(*id) == nullptr; }));
  rt.stop(0);
  rt.wait();
}

INSTANTIATE_TEST_SUITE_P(Backends, EndpointZeroAlloc,
                         ::testing::Values(BackendKind::epoll, BackendKind::uring),
                         test::BackendName());

}  // namespace
}  // namespace weft::mux
