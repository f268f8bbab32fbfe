// weft::client::Upstream against real weft::msg::Server instances in this process (on
// 127.0.0.1:0 and on unix sockets), on both backends: round robin spreads evenly,
// least_outstanding avoids an endpoint with slow calls pending, a server stopped mid-traffic
// (idempotent calls move, non-idempotent ones in flight fail with connection_lost and ran
// once), ejection and readmission after a restart on the same path, all endpoints down ->
// unavailable, deadlines travel to the server.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <weft/client/upstream.h>
#include <weft/msg/server.h>
#include <weft/platform/error.h>
#include <weft/platform/runtime.h>

#include "fake_server.h"
#include "temp_dir.h"
#include "test_net.h"

namespace weft::client {
namespace {

using namespace std::chrono_literals;
using msg::method_id;
using platform::BackendKind;
using test::bytes_of;
using test::text_of;

constexpr std::uint32_t kEcho = method_id("weft.test.Up/Echo");  // counts; returns the name
constexpr std::uint32_t kHold = method_id("weft.test.Up/Hold");  // records the body; no answer
constexpr std::uint32_t kSlow = method_id("weft.test.Up/Slow");  // held on a slow server
constexpr std::uint32_t kDeadline = method_id("weft.test.Up/Deadline");  // "1": had a deadline
constexpr std::uint32_t kCount = method_id("weft.test.Up/Count");        // records the body; name
constexpr std::uint32_t kBusy = method_id("weft.test.Up/Busy");          // slow server: overloaded

// Executions per request body, over every server (the test thread reads it after joins or
// under the lock).
struct Ledger {
  std::mutex mu;
  std::map<std::string, int> runs;
  int count(const std::string& body) {
    std::lock_guard<std::mutex> g(mu);
    auto it = runs.find(body);
    return it == runs.end() ? 0 : it->second;
  }
  int total() {
    std::lock_guard<std::mutex> g(mu);
    int n = 0;
    for (auto& [k, v] : runs) {
      n += v;
    }
    return n;
  }
};

struct ServerState {
  std::string name;
  bool slow = false;
  Ledger* ledger = nullptr;
  std::atomic<int> echoes{0};
  msg::Deferred held[64];  // the worker's only
  int n_held = 0;
};

void echo(void* ctx, msg::Call& c, std::span<const std::byte>) noexcept {
  auto* st = static_cast<ServerState*>(ctx);
  st->echoes.fetch_add(1, std::memory_order_relaxed);
  (void)c.reply(bytes_of(st->name));
}
void hold(void* ctx, msg::Call& c, std::span<const std::byte> p) noexcept {
  auto* st = static_cast<ServerState*>(ctx);
  {
    std::lock_guard<std::mutex> g(st->ledger->mu);
    ++st->ledger->runs[text_of(p)];
  }
  st->held[st->n_held++ % 64] = c.defer();
}
void slow(void* ctx, msg::Call& c, std::span<const std::byte>) noexcept {
  auto* st = static_cast<ServerState*>(ctx);
  if (st->slow) {
    st->held[st->n_held++ % 64] = c.defer();
    return;
  }
  (void)c.reply(bytes_of(st->name));
}
void count(void* ctx, msg::Call& c, std::span<const std::byte> p) noexcept {
  auto* st = static_cast<ServerState*>(ctx);
  {
    std::lock_guard<std::mutex> g(st->ledger->mu);
    ++st->ledger->runs[text_of(p)];
  }
  (void)c.reply(bytes_of(st->name));
}
void busy(void* ctx, msg::Call& c, std::span<const std::byte>) noexcept {
  auto* st = static_cast<ServerState*>(ctx);
  if (st->slow) {
    (void)c.fail(msg::ProtocolError::overloaded);
    return;
  }
  (void)c.reply(bytes_of(st->name));
}
void deadline(void*, msg::Call& c, std::span<const std::byte>) noexcept {
  (void)c.reply(bytes_of(c.deadline() != 0 ? "1" : "0"));
}

// One server on its own one-worker Runtime; may be stopped and started again.
class TestServer {
 public:
  TestServer(std::string name, Ledger* ledger, BackendKind kind, bool slow = false) {
    st_.name = std::move(name);
    st_.ledger = ledger;
    st_.slow = slow;
    cfg_ = test::one_worker_config(kind);
  }
  ~TestServer() { stop(); }

  bool start(const platform::Address& at) {
    if (at.is_unix()) {
      char buf[128];
      at.format(buf, sizeof buf);
      ::unlink(buf + 5);  // "unix:" + path: a stale socket file from the last run
    }
    msg::Options o;
    o.max_frame = 4096;
    o.max_inflight = 64;
    o.setup = [this](msg::Registry& r, platform::Loop&) {
      EXPECT_TRUE(r.add({kEcho, "weft.test.Up/Echo", &echo, &st_}));
      EXPECT_TRUE(r.add({kHold, "weft.test.Up/Hold", &hold, &st_}));
      EXPECT_TRUE(r.add({kSlow, "weft.test.Up/Slow", &slow, &st_}));
      EXPECT_TRUE(r.add({kDeadline, "weft.test.Up/Deadline", &deadline, &st_}));
      EXPECT_TRUE(r.add({kCount, "weft.test.Up/Count", &count, &st_}));
      EXPECT_TRUE(r.add({kBusy, "weft.test.Up/Busy", &busy, &st_}));
    };
    server_ = std::make_unique<msg::Server>(std::move(o));
    rt_ = std::make_unique<platform::Runtime>();
    std::vector<platform::Service> services;
    services.push_back(server_->service(at));
    if (!rt_->start(cfg_, std::move(services)).ok()) {
      return false;
    }
    addr_ = rt_->local_address(0);
    return true;
  }
  // Stops at once (no drain): its connections close under the calls they hold.
  void stop() {
    if (rt_) {
      rt_->stop();
      rt_->wait();
      rt_.reset();
      st_.n_held = 0;
    }
    server_.reset();
  }
  [[nodiscard]] const platform::Address& addr() const { return addr_; }
  [[nodiscard]] int echoes() const { return st_.echoes.load(); }

 private:
  ServerState st_;
  platform::Config cfg_;
  std::unique_ptr<msg::Server> server_;
  std::unique_ptr<platform::Runtime> rt_;
  platform::Address addr_;
};

struct Outcome {
  int calls = 0;
  int endpoint = -2;
  std::error_code error;
  std::string payload;
};
void record(void* ctx, Result<std::span<const std::byte>> r, int endpoint) noexcept {
  auto* o = static_cast<Outcome*>(ctx);
  ++o->calls;
  o->endpoint = endpoint;
  if (r.ok()) {
    o->payload = text_of(r.value());
  } else {
    o->error = r.error();
  }
}

// Keeps `depth` calls in flight until `left` runs out; counts outcomes.
struct Driver {
  Upstream* up = nullptr;
  std::uint32_t method = kEcho;
  bool idempotent = true;
  int left = 0;
  int done = 0;
  int ok = 0;
  int failed = 0;
  std::error_code last_error;
  int by_endpoint[2] = {0, 0};
  static void on_answer(void* ctx, Result<std::span<const std::byte>> r, int ep) noexcept {
    auto* d = static_cast<Driver*>(ctx);
    ++d->done;
    if (r.ok()) {
      ++d->ok;
      if (ep == 0 || ep == 1) {
        ++d->by_endpoint[ep];
      }
    } else {
      ++d->failed;
      d->last_error = r.error();
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
    c.idempotent = idempotent;
    if (!up->call(method, bytes_of("x"), c, &on_answer, this)) {
      ++done;
      ++failed;
    }
  }
};

class UpstreamTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
    ASSERT_TRUE(dir_.ok());
    platform::Config cfg = test::one_worker_config(GetParam());
    cfg.send_buffers = 128;
    cfg.recv_buffers = 64;
    auto l = platform::Loop::create(cfg, 1);
    ASSERT_TRUE(l.ok()) << l.error().message();
    loop_ = std::move(l.value());
    opts_.pool.max_size = 2;
    opts_.pool.min_idle = 1;
    opts_.pool.health_interval_ms = 200;
    opts_.pool.health_timeout_ms = 500;
    opts_.pool.client.max_calls = 64;
    opts_.pool.client.connect_timeout_ms = 500;
    opts_.pool.client.reconnect_min_ms = 10;
    opts_.pool.client.reconnect_max_ms = 50;
    opts_.max_inflight = 64;
    opts_.max_payload = 256;
    opts_.probe_min_ms = 10;
    opts_.probe_max_ms = 100;
  }
  void TearDown() override {
    if (up_) {
      up_->close();
      spin([&] { return up_->idle(); }, 5s);
      EXPECT_TRUE(up_->idle());
      up_.reset();
    }
  }

  template <class P>
  bool spin(P pred, std::chrono::milliseconds limit = 10s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > end) {
        return false;
      }
      loop_->run_once(1);
    }
    return true;
  }

  void make(std::vector<platform::Address> eps) {
    auto u = Upstream::create(*loop_, "test", eps, opts_);
    ASSERT_TRUE(u.ok()) << u.error().message();
    up_ = std::move(u.value());
  }

  // Until an Echo was answered by every endpoint (their pools are connected).
  void warm() {
    for (std::size_t i = 0; i < up_->size(); ++i) {
      ASSERT_TRUE(spin([&] {
        Outcome o;
        UpstreamCall c;
        c.deadline_ms = 1000;
        if (!up_->call(kEcho, bytes_of("warm"), c, &record, &o)) {
          return false;
        }
        spin([&] { return o.calls != 0; });
        return o.calls == 1 && !o.error && o.endpoint == static_cast<int>(i);
      })) << "endpoint "
          << i << " never answered";
    }
  }

  platform::Address unix_addr(const char* name) {
    auto a = platform::Address::parse("unix:" + dir_.file(name));
    EXPECT_TRUE(a.ok());
    return a.value();
  }

  test::TempDir dir_;
  Ledger ledger_;
  std::unique_ptr<platform::Loop> loop_;
  UpstreamOptions opts_;
  std::unique_ptr<Upstream> up_;
};

TEST_P(UpstreamTest, RoundRobinSpreadsEvenly) {
  TestServer a("A", &ledger_, GetParam()), b("B", &ledger_, GetParam());
  ASSERT_TRUE(a.start(platform::Address::loopback_v4(0)));
  ASSERT_TRUE(b.start(unix_addr("b.sock")));
  make({a.addr(), b.addr()});
  warm();
  const int a0 = a.echoes(), b0 = b.echoes();
  Driver d;
  d.up = up_.get();
  d.left = 1000;
  for (int i = 0; i < 16; ++i) {
    d.next();
  }
  ASSERT_TRUE(spin([&] { return d.done == 1000; }));
  EXPECT_EQ(d.ok, 1000) << d.last_error.message();
  const int na = a.echoes() - a0, nb = b.echoes() - b0;
  EXPECT_EQ(na + nb, 1000);
  EXPECT_NEAR(na, 500, 25);
  EXPECT_NEAR(nb, 500, 25);
  EXPECT_EQ(d.by_endpoint[0], na);
  EXPECT_EQ(up_->endpoint(0).outstanding, 0u);
  EXPECT_TRUE(up_->endpoint(0).admitted);
}

TEST_P(UpstreamTest, LeastOutstandingPrefersTheIdleEndpoint) {
  TestServer a("A", &ledger_, GetParam(), /*slow=*/true), b("B", &ledger_, GetParam());
  ASSERT_TRUE(a.start(platform::Address::loopback_v4(0)));
  ASSERT_TRUE(b.start(platform::Address::loopback_v4(0)));
  opts_.balance = Balance::least_outstanding;
  make({a.addr(), b.addr()});
  warm();
  // Slow calls: A holds its share, B answers at once; A is left with calls pending.
  Outcome slow_calls[4];
  for (Outcome& o : slow_calls) {
    ASSERT_TRUE(up_->call(kSlow, bytes_of("s"), {}, &record, &o).ok());
  }
  ASSERT_TRUE(spin([&] { return up_->endpoint(1).outstanding == 0; }));
  ASSERT_GE(up_->endpoint(0).outstanding, 1u);
  const int a0 = a.echoes(), b0 = b.echoes();
  for (int i = 0; i < 100; ++i) {
    Outcome o;
    ASSERT_TRUE(up_->call(kEcho, bytes_of("e"), {}, &record, &o).ok());
    ASSERT_TRUE(spin([&] { return o.calls != 0; }));
    EXPECT_EQ(o.endpoint, 1);
    EXPECT_EQ(o.payload, "B");
  }
  EXPECT_EQ(a.echoes() - a0, 0);
  EXPECT_EQ(b.echoes() - b0, 100);
}

TEST_P(UpstreamTest, StoppedServerIsEjectedThenReadmitted) {
  TestServer a("A", &ledger_, GetParam()), b("B", &ledger_, GetParam());
  ASSERT_TRUE(a.start(platform::Address::loopback_v4(0)));
  const platform::Address b_at = unix_addr("b.sock");
  ASSERT_TRUE(b.start(b_at));
  make({a.addr(), b.addr()});
  warm();

  // Non-idempotent calls held by both servers (round robin: half on each).
  Outcome held[8];
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(up_->call(kHold, bytes_of("n" + std::to_string(i)), {}, &record, &held[i]).ok());
  }
  ASSERT_TRUE(spin([&] { return ledger_.total() == 8; }));

  // Idempotent traffic; B stops in the middle of it.
  Driver d;
  d.up = up_.get();
  d.left = 400;
  for (int i = 0; i < 8; ++i) {
    d.next();
  }
  ASSERT_TRUE(spin([&] { return d.done >= 100; }));
  b.stop();
  ASSERT_TRUE(spin([&] { return d.done == 400; }));
  EXPECT_EQ(d.ok, 400) << d.last_error.message();

  // B's held calls may or may not have run: connection_lost, never resent elsewhere.
  ASSERT_TRUE(spin([&] { return !up_->endpoint(1).admitted; }));
  int lost = 0;
  for (int i = 0; i < 8; ++i) {
    if (held[i].endpoint == 1) {
      ASSERT_TRUE(spin([&] { return held[i].calls != 0; }));
      EXPECT_EQ(held[i].error, client_errc::connection_lost) << held[i].error.message();
      ++lost;
    }
    EXPECT_EQ(ledger_.count("n" + std::to_string(i)), 1) << "n" << i;
  }
  EXPECT_EQ(lost, 4);
  EXPECT_GE(up_->endpoint(1).ejections, 1u);
  EXPECT_GE(up_->endpoint(1).failures, 1u);

  // While B is out, everything goes to A, non-idempotent calls too.
  const int a0 = a.echoes();
  for (int i = 0; i < 10; ++i) {
    Outcome o;
    UpstreamCall c;
    c.idempotent = (i % 2) == 0;
    ASSERT_TRUE(up_->call(kEcho, bytes_of("e"), c, &record, &o).ok());
    ASSERT_TRUE(spin([&] { return o.calls != 0; }));
    EXPECT_EQ(o.endpoint, 0);
    EXPECT_FALSE(o.error) << o.error.message();
  }
  EXPECT_EQ(a.echoes() - a0, 10);

  // Restarted on the same path: a probe readmits it, and it gets calls again.
  ASSERT_TRUE(b.start(b_at));
  ASSERT_TRUE(spin([&] { return up_->endpoint(1).admitted; }));
  EXPECT_GE(up_->endpoint(1).readmissions, 1u);
  ASSERT_TRUE(spin([&] {
    Outcome o;
    if (!up_->call(kEcho, bytes_of("e"), {}, &record, &o)) {
      return false;
    }
    spin([&] { return o.calls != 0; });
    return o.endpoint == 1 && o.payload == "B";
  }));
}

TEST_P(UpstreamTest, AllEndpointsDownIsUnavailable) {
  TestServer a("A", &ledger_, GetParam()), b("B", &ledger_, GetParam());
  ASSERT_TRUE(a.start(platform::Address::loopback_v4(0)));
  ASSERT_TRUE(b.start(unix_addr("b.sock")));
  make({a.addr(), b.addr()});
  warm();
  a.stop();
  b.stop();
  ASSERT_TRUE(spin([&] { return !up_->endpoint(0).admitted && !up_->endpoint(1).admitted; }));
  Outcome o;
  auto r = up_->call(kEcho, bytes_of("e"), {}, &record, &o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), client_errc::unavailable);
  loop_->run_once(1);
  EXPECT_EQ(o.calls, 0);
}

TEST_P(UpstreamTest, NeverReachableEndpointIsEjectedAtOnce) {
  TestServer a("A", &ledger_, GetParam());
  ASSERT_TRUE(a.start(platform::Address::loopback_v4(0)));
  make({unix_addr("nobody.sock"), a.addr()});
  ASSERT_TRUE(spin([&] { return !up_->endpoint(0).admitted; }));
  for (int i = 0; i < 4; ++i) {
    Outcome o;
    ASSERT_TRUE(up_->call(kEcho, bytes_of("e"), {}, &record, &o).ok());
    ASSERT_TRUE(spin([&] { return o.calls != 0; }));
    EXPECT_EQ(o.endpoint, 1);
    EXPECT_EQ(o.payload, "A");
  }
}

TEST_P(UpstreamTest, DeadlineTravelsToTheServer) {
  TestServer a("A", &ledger_, GetParam());
  ASSERT_TRUE(a.start(platform::Address::loopback_v4(0)));
  make({a.addr()});
  warm();
  Outcome with, without;
  UpstreamCall c;
  c.deadline_ms = 2000;
  ASSERT_TRUE(up_->call(kDeadline, {}, c, &record, &with).ok());
  ASSERT_TRUE(up_->call(kDeadline, {}, {}, &record, &without).ok());
  ASSERT_TRUE(spin([&] { return with.calls != 0 && without.calls != 0; }));
  EXPECT_EQ(with.payload, "1");
  EXPECT_EQ(without.payload, "0");
}

TEST_P(UpstreamTest, CallerKeyIsSentOnEveryAttempt) {
  TestServer a("A", &ledger_, GetParam());
  ASSERT_TRUE(a.start(platform::Address::loopback_v4(0)));
  make({a.addr()});
  warm();
  // The same key twice: the server's idempotency table runs the handler once.
  UpstreamCall c;
  c.idempotent = true;
  c.idempotency_key = 0x1234'5678'9abc'def0ull;
  Outcome first, second, fresh;
  ASSERT_TRUE(up_->call(kCount, bytes_of("k"), c, &record, &first).ok());
  ASSERT_TRUE(spin([&] { return first.calls != 0; }));
  ASSERT_TRUE(up_->call(kCount, bytes_of("k"), c, &record, &second).ok());
  ASSERT_TRUE(spin([&] { return second.calls != 0; }));
  EXPECT_EQ(first.payload, "A");
  EXPECT_EQ(second.payload, "A");
  EXPECT_EQ(ledger_.count("k"), 1);
  // Key 0: a fresh one per call, so it runs again.
  c.idempotency_key = 0;
  ASSERT_TRUE(up_->call(kCount, bytes_of("k"), c, &record, &fresh).ok());
  ASSERT_TRUE(spin([&] { return fresh.calls != 0; }));
  EXPECT_EQ(ledger_.count("k"), 2);
}

TEST_P(UpstreamTest, OverloadedMovesIdempotentCallsOnly) {
  TestServer a("A", &ledger_, GetParam(), /*slow=*/true), b("B", &ledger_, GetParam());
  ASSERT_TRUE(a.start(platform::Address::loopback_v4(0)));
  ASSERT_TRUE(b.start(platform::Address::loopback_v4(0)));
  make({a.addr(), b.addr()});
  warm();
  for (int i = 0; i < 4; ++i) {
    UpstreamCall c;
    c.idempotent = true;
    Outcome idem;
    ASSERT_TRUE(up_->call(kBusy, bytes_of("b"), c, &record, &idem).ok());
    ASSERT_TRUE(spin([&] { return idem.calls != 0; }));
    EXPECT_EQ(idem.payload, "B") << idem.error.message();  // moved from A if it started there
    EXPECT_EQ(idem.endpoint, 1);
  }
  int refused = 0;
  for (int i = 0; i < 4; ++i) {  // round robin: half of them start on A
    Outcome plain;
    ASSERT_TRUE(up_->call(kBusy, bytes_of("b"), {}, &record, &plain).ok());
    ASSERT_TRUE(spin([&] { return plain.calls != 0; }));
    if (plain.endpoint == 0) {
      EXPECT_EQ(plain.error, msg::ProtocolError::overloaded);  // returned as is
      ++refused;
    } else {
      EXPECT_EQ(plain.payload, "B");
    }
  }
  EXPECT_EQ(refused, 2);
  EXPECT_TRUE(up_->endpoint(0).admitted);  // an ERROR is not a transport failure
}

TEST_P(UpstreamTest, LimitsAreRefusedAtOnce) {
  TestServer a("A", &ledger_, GetParam(), /*slow=*/true);
  ASSERT_TRUE(a.start(platform::Address::loopback_v4(0)));
  opts_.max_inflight = 2;
  opts_.max_payload = 8;
  make({a.addr()});
  warm();
  Outcome o1, o2, o3;
  EXPECT_EQ(up_->call(kSlow, bytes_of("123456789"), {}, &record, &o1).error(),
            msg::msg_errc::too_large);
  ASSERT_TRUE(up_->call(kSlow, bytes_of("s"), {}, &record, &o1).ok());
  ASSERT_TRUE(up_->call(kSlow, bytes_of("s"), {}, &record, &o2).ok());
  EXPECT_EQ(up_->call(kSlow, bytes_of("s"), {}, &record, &o3).error(), client_errc::overloaded);
  EXPECT_EQ(up_->endpoint(0).outstanding, 2u);
}

INSTANTIATE_TEST_SUITE_P(Backends, UpstreamTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::client
