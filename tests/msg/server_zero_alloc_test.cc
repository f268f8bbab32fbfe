// "Zero allocation" for the msg server, proved: this binary links weft::alloc_counter (the
// process's allocator is replaced by a counting one) and asserts that after a warm-up the
// whole process — two server workers and the test's own client — allocates nothing while
// it serves unary calls (answered at once, 64-byte request and response, 16 in flight on
// each of 4 connections), idempotent replays, errors, PINGs and answers handed to the other
// worker (shared buffer + post). The client below writes pre-encoded frames and reads into a
// fixed buffer, so anything counted is the server's.
#include <weft/msg/server.h>

#include <gtest/gtest.h>

#include <array>
#include <cstring>

#include <weft/base/alloc_counter.h>
#include <weft/platform/runtime.h>

#include "msg_server_test.h"
#include "msg_wire.h"
#include "test_net.h"

namespace weft::msg {
namespace {

using platform::BackendKind;

constexpr std::uint32_t kEcho = method_id("weft.test.Alloc/Echo");
constexpr std::uint32_t kOther = method_id("weft.test.Alloc/OtherWorker");
constexpr std::size_t kPayload = 64;
constexpr int kInflight = 16;
constexpr int kConns = 4;

void echo(void*, Call& c, std::span<const std::byte> p) noexcept {
  (void)c.reply(p);
}

// One Deferred per connection slot would need a table; the test sends one such call at a
// time per round, so one static handle suffices.
Deferred g_other;
void other_worker(void*, Call& c, std::span<const std::byte>) noexcept {
  g_other = c.defer();
  platform::Post p;
  p.fn = [](platform::Loop& here, const platform::Post&) noexcept {
    static constexpr std::byte kReply[8] = {};
    (void)answer(here, g_other, kReply);
  };
  if (!c.loop().post((c.loop().index() + 1) % c.loop().worker_count(), p)) {
    (void)answer_error(c.loop(), g_other, ProtocolError::internal);
  }
}

class ServerZeroAllocTest : public ::testing::TestWithParam<BackendKind> {};

TEST_P(ServerZeroAllocTest, SteadyStateCallsAllocateNothing) {
  if (!alloc::enabled()) {
    GTEST_SKIP() << "the counting allocator is not installed (sanitizer build)";
  }
  std::string why;
  if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
    GTEST_SKIP() << "io_uring unavailable here: " << why;
  }
  Options o;
  o.max_frame = 4096;
  o.max_inflight = 64;
  o.max_calls = 256;
  o.setup = [](Registry& r, platform::Loop&) {
    EXPECT_TRUE(r.add({kEcho, "weft.test.Alloc/Echo", &echo, nullptr}));
    EXPECT_TRUE(r.add({kOther, "weft.test.Alloc/OtherWorker", &other_worker, nullptr}));
  };
  Server server(std::move(o));
  platform::Config cfg = test::one_worker_config(GetParam());
  cfg.workers = 2;
  cfg.shared_buffers = 8;
  cfg.shared_buffer_size = 4096;
  cfg.accept_mode = platform::AcceptMode::round_robin;
  platform::Runtime rt;
  std::vector<platform::Service> services;
  services.push_back(server.service(platform::Address::parse("127.0.0.1:0").value()));
  ASSERT_TRUE(rt.start(cfg, std::move(services)).ok());

  std::vector<std::unique_ptr<test::WireClient>> conns;
  for (int i = 0; i < kConns; ++i) {
    conns.push_back(std::make_unique<test::WireClient>(rt.local_address(0)));
    ASSERT_TRUE(conns.back()->hello(4096, 64).has_value());
  }
  // One round per connection: 16 echo calls, an idempotent call with a fixed key (a replay
  // after the first round), an unknown method, a PING, and (connection 0) a call answered by
  // the other worker. All pre-encoded.
  std::array<std::byte, kPayload> payload{};
  std::vector<std::byte> round;
  for (int i = 0; i < kInflight; ++i) {
    auto f = test::WireClient::encode(
        make_request(static_cast<std::uint32_t>(i + 1), kEcho, 0, payload));
    round.insert(round.end(), f.begin(), f.end());
  }
  for (const Frame& f :
       {make_request(100, kEcho, 1000, payload, true, 0xabcdef), make_request(101, 777, 0, payload),
        make_ping(102, std::span<const std::byte>(payload).first(8))}) {
    auto b = test::WireClient::encode(f);
    round.insert(round.end(), b.begin(), b.end());
  }
  std::vector<std::byte> round0 = round;
  {
    auto b = test::WireClient::encode(make_request(103, kOther, 0, {}));
    round0.insert(round0.end(), b.begin(), b.end());
  }
  const int per_round = kInflight + 3;
  std::array<std::byte, 4096> buf{};
  auto run_round = [&]() -> bool {
    for (int i = 0; i < kConns; ++i) {
      const auto& r = i == 0 ? round0 : round;
      if (!test::write_all(conns[i]->fd(), r.data(), r.size())) {
        return false;
      }
    }
    for (int i = 0; i < kConns; ++i) {
      const int expect = per_round + (i == 0 ? 1 : 0);
      for (int k = 0; k < expect; ++k) {
        Frame f;
        if (!test::read_frame(conns[i]->fd(), buf, f)) {
          return false;
        }
        const bool ok =
            (f.type == FrameType::response && (f.id <= 16 || f.id == 100 || f.id == 103)) ||
            (f.type == FrameType::error && f.id == 101) ||
            (f.type == FrameType::pong && f.id == 102);
        if (!ok) {
          ADD_FAILURE() << "unexpected frame type " << static_cast<int>(f.type) << " id " << f.id;
          return false;
        }
      }
    }
    return true;
  };
  for (int r = 0; r < 50; ++r) {  // warm-up: pools touched, lazy state built
    ASSERT_TRUE(run_round());
  }
  const std::uint64_t before = alloc::count();
  for (int r = 0; r < 300; ++r) {
    ASSERT_TRUE(run_round());
  }
  const std::uint64_t after = alloc::count();
  EXPECT_EQ(after - before, 0u) << "allocations during " << 300 * kConns * per_round << " frames";
  const ServerStats st = server.stats();
  EXPECT_GE(st.idempotent_replays, 349u * kConns - 3);  // every round after the first
  EXPECT_GE(st.requests, 350u * kConns * kInflight);
  rt.stop();
  rt.wait();
}

INSTANTIATE_TEST_SUITE_P(Backends, ServerZeroAllocTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::msg
