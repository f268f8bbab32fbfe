// weft::mux::Endpoint on real connections (127.0.0.1), both backends: a server Runtime with
// make_service() and a client Loop driven by the test thread through a Connector.
//   - echo on one channel and on many at once, server-opened channels (even ids);
//   - bulk transfer integrity (FNV-1a over 4 MiB written in odd-sized pieces);
//   - a stalled reader holds only its own channel: the others' round trip stays low while
//     its window is exhausted, and the receiver never sees more than the window it granted;
//   - half-close both ways, refuse, reset mid-transfer (the channel's queue is freed);
//   - raw-socket peers: frames split byte by byte, a peer that overruns a window or never
//     negotiated MUX gets ERROR bad_frame and is closed while another client is served.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <weft/msg/frame.h>
#include <weft/mux/endpoint.h>
#include <weft/mux/frame.h>
#include <weft/platform/runtime.h>

#include "test_net.h"

namespace weft::mux {
namespace {

using namespace std::chrono_literals;
using platform::BackendKind;
using platform::BufView;

std::span<const std::byte> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::uint64_t fnv(std::uint64_t h, std::span<const std::byte> b) {
  for (std::byte x : b) {
    h ^= std::to_integer<std::uint8_t>(x);
    h *= 1099511628211ull;
  }
  return h;
}
constexpr std::uint64_t kFnvSeed = 14695981039346656037ull;

std::byte pattern(std::size_t i) {
  return static_cast<std::byte>((i * 131 + i / 251) & 0xff);
}

// ---- server-side channel handlers -------------------------------------------------------

// Echoes what it gets. Bytes the Session would not take yet stay unconsumed (copied into
// `held`, bounded by the window the client has), so back-pressure reaches the client.
struct Echo final : ChannelHandler {
  std::vector<std::byte> held;
  bool fin = false;
  bool in_use = false;
  std::size_t on_data(Endpoint& ep, std::uint16_t ch, BufView d, bool f) noexcept override {
    fin = fin || f;
    std::size_t taken = 0;
    if (held.empty() && !d.bytes.empty()) {
      Result<std::size_t> n = ep.write(ch, d.bytes);
      taken = n ? *n : 0;
    }
    held.insert(held.end(), d.bytes.begin() + static_cast<std::ptrdiff_t>(taken), d.bytes.end());
    if (held.empty() && fin) {
      (void)ep.close(ch);
    }
    return taken;
  }
  void on_writable(Endpoint& ep, std::uint16_t ch) noexcept override {
    while (!held.empty()) {
      Result<std::size_t> n = ep.write(ch, held);
      if (!n) {
        return;
      }
      held.erase(held.begin(), held.begin() + static_cast<std::ptrdiff_t>(*n));
      (void)ep.consume(ch, *n);
    }
    if (fin) {
      (void)ep.close(ch);
    }
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override {
    held.clear();
    fin = false;
    in_use = false;
  }
};

// Consumes everything; at FIN answers with its byte count and FNV-1a, then closes.
struct Sink final : ChannelHandler {
  std::uint64_t n = 0;
  std::uint64_t h = kFnvSeed;
  bool in_use = false;
  std::size_t on_data(Endpoint& ep, std::uint16_t ch, BufView d, bool fin) noexcept override {
    n += d.bytes.size();
    h = fnv(h, d.bytes);
    if (fin) {
      char line[64];
      const int len =
          std::snprintf(line, sizeof line, "%llu %llx", static_cast<unsigned long long>(n),
                        static_cast<unsigned long long>(h));
      (void)ep.write(ch, bytes_of({line, static_cast<std::size_t>(len)}));
      (void)ep.close(ch);
    }
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override {
    n = 0;
    h = kFnvSeed;
    in_use = false;
  }
};

// Never consumes: the client's window runs out. Records the most it ever held.
struct Stall final : ChannelHandler {
  std::uint64_t held = 0;
  std::uint64_t most = 0;
  std::uint32_t window = 0;
  bool over = false;
  ChannelError closed_with{};
  bool closed = false;
  std::size_t on_data(Endpoint& ep, std::uint16_t, BufView d, bool) noexcept override {
    held += d.bytes.size();
    most = std::max(most, held);
    window = ep.session().limits().channel_window;
    over = over || held > window;
    return 0;
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError code) noexcept override {
    closed = true;
    closed_with = code;
  }
};

// The server's Acceptor: "echo", "sink", "stall"; anything else is refused. On ready it
// opens one channel of its own ("hello-from-server") and writes a greeting on it.
struct ServerShared {
  std::atomic<int> refused{0};
  std::atomic<int> stall_over{0};
  std::atomic<std::uint64_t> stall_most{0};
  std::atomic<int> stall_closed{0};
  std::atomic<int> stall_closed_code{0};
  std::atomic<int> disconnects{0};
};

struct Greeter final : ChannelHandler {
  std::size_t on_data(Endpoint&, std::uint16_t, BufView d, bool) noexcept override {
    return d.bytes.size();
  }
  void on_accepted(Endpoint& ep, std::uint16_t ch) noexcept override {
    (void)ep.write(ch, bytes_of("greetings"));
    (void)ep.close(ch);
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override {}
};

struct TestAcceptor final : Acceptor {
  explicit TestAcceptor(ServerShared* s) : shared(s), echoes(64), sinks(16) {
    for (Echo& e : echoes) {
      e.held.reserve(256 * 1024);
    }
  }
  void on_ready(Endpoint& ep) noexcept override { (void)ep.open("hello-from-server", &greeter); }
  ChannelHandler* on_open(Endpoint&, std::uint16_t, std::string_view name) noexcept override {
    if (name == "echo") {
      for (Echo& e : echoes) {
        if (!e.in_use) {
          e.in_use = true;
          return &e;
        }
      }
    } else if (name == "sink") {
      for (Sink& s : sinks) {
        if (!s.in_use) {
          s.in_use = true;
          return &s;
        }
      }
    } else if (name == "stall") {
      stall = std::make_unique<StallReport>(shared);
      return stall.get();
    }
    shared->refused.fetch_add(1);
    return nullptr;
  }
  void on_disconnect(Endpoint&, std::error_code) noexcept override {
    shared->disconnects.fetch_add(1);
  }
  struct StallReport final : ChannelHandler {
    explicit StallReport(ServerShared* s) : shared(s) {}
    ServerShared* shared;
    Stall st;
    std::size_t on_data(Endpoint& ep, std::uint16_t ch, BufView d, bool fin) noexcept override {
      st.on_data(ep, ch, d, fin);
      shared->stall_most.store(st.most);
      if (st.over) {
        shared->stall_over.store(1);
      }
      return 0;
    }
    void on_closed(Endpoint&, std::uint16_t, ChannelError code) noexcept override {
      shared->stall_closed_code.store(static_cast<int>(code));
      shared->stall_closed.fetch_add(1);
    }
  };
  ServerShared* shared;
  std::vector<Echo> echoes;
  std::vector<Sink> sinks;
  std::unique_ptr<StallReport> stall;
  Greeter greeter;
};

// ---- client side ---------------------------------------------------------------------

// Collects what arrives on one client channel.
struct Collect final : ChannelHandler {
  std::string got;
  bool fin = false;
  bool accepted = false;
  bool closed = false;
  bool writable = false;
  ChannelError code{};
  std::uint64_t h = kFnvSeed;
  bool keep_text = true;
  void on_accepted(Endpoint&, std::uint16_t) noexcept override { accepted = true; }
  std::size_t on_data(Endpoint&, std::uint16_t, BufView d, bool f) noexcept override {
    if (keep_text) {
      got.append(reinterpret_cast<const char*>(d.bytes.data()), d.bytes.size());
    }
    h = fnv(h, d.bytes);
    fin = fin || f;
    return d.bytes.size();
  }
  void on_writable(Endpoint&, std::uint16_t) noexcept override { writable = true; }
  void on_closed(Endpoint&, std::uint16_t, ChannelError c) noexcept override {
    closed = true;
    code = c;
  }
};

struct ClientAcceptor final : Acceptor {
  bool ready = false;
  bool disconnected = false;
  std::error_code reason;
  Collect pushed;  // the server's own channel
  std::string pushed_name;
  void on_ready(Endpoint&) noexcept override { ready = true; }
  ChannelHandler* on_open(Endpoint&, std::uint16_t, std::string_view name) noexcept override {
    pushed_name = std::string(name);
    return &pushed;
  }
  void on_disconnect(Endpoint&, std::error_code r) noexcept override {
    disconnected = true;
    reason = r;
  }
};

class EndpointTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
    cfg_ = test::one_worker_config(GetParam());
    cfg_.buffer_size = 16 * 1024;
    cfg_.recv_buffers = 64;
    cfg_.send_buffers = 128;
    start_server();
    auto l = platform::Loop::create(cfg_, 1);
    ASSERT_TRUE(l.ok()) << l.error().message();
    loop_ = std::move(l.value());
  }
  void TearDown() override {
    connector_.reset();
    loop_.reset();
    if (rt_) {
      rt_->stop(0);
      rt_->wait();
    }
  }
  void start_server(EndpointOptions opt = {}) {
    rt_ = std::make_unique<platform::Runtime>();
    std::vector<platform::Service> services;
    ServerShared* s = &shared_;
    services.push_back(make_service(platform::Address::loopback_v4(0), opt, [s](platform::Loop&) {
      return std::make_unique<TestAcceptor>(s);
    }));
    auto r = rt_->start(cfg_, std::move(services));
    ASSERT_TRUE(r.ok()) << r.error().message();
    addr_ = rt_->local_address(0);
  }
  Endpoint* connect(EndpointOptions opt = {}) {
    connector_ = std::make_unique<Connector>(*loop_, opt, 2);
    auto id = connector_->connect(addr_, &client_);
    EXPECT_TRUE(id.ok());
    if (!id) {
      return nullptr;
    }
    id_ = *id;
    EXPECT_TRUE(spin([&] { return client_.ready; }));
    platform::Conn* c = loop_->find(id_);
    return c == nullptr ? nullptr : static_cast<Endpoint*>(c->handler());
  }
  template <class F>
  bool spin(F done, std::chrono::milliseconds limit = 10s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > end) {
        return done();
      }
      loop_->run_once(2);
    }
    return true;
  }
  // Writes all of `b` on ch, running the loop while the channel would block.
  bool write_all(Endpoint& ep, std::uint16_t ch, std::span<const std::byte> b) {
    const auto end = std::chrono::steady_clock::now() + 20s;
    while (!b.empty()) {
      Result<std::size_t> n = ep.write(ch, b);
      if (n) {
        b = b.subspan(*n);
        continue;
      }
      if (n.error() != make_error_code(mux_errc::would_block) ||
          std::chrono::steady_clock::now() > end) {
        return false;
      }
      loop_->run_once(2);
    }
    return true;
  }

  platform::Config cfg_;
  ServerShared shared_;
  std::unique_ptr<platform::Runtime> rt_;
  platform::Address addr_;
  std::unique_ptr<platform::Loop> loop_;
  std::unique_ptr<Connector> connector_;
  ClientAcceptor client_;
  platform::ConnId id_;
};

TEST_P(EndpointTest, EchoOnOneChannelAndServerOpensItsOwn) {
  Endpoint* ep = connect();
  ASSERT_NE(ep, nullptr);
  Collect c;
  auto ch = ep->open("echo", &c);
  ASSERT_TRUE(ch.ok()) << ch.error().message();
  EXPECT_EQ(*ch % 2, 1);  // the client opens odd ids
  ASSERT_TRUE(ep->write(*ch, bytes_of("hello channel")).ok());
  ASSERT_TRUE(spin([&] { return c.got.size() == 13; }));
  EXPECT_EQ(c.got, "hello channel");
  EXPECT_TRUE(c.accepted);
  ASSERT_TRUE(ep->close(*ch).ok());
  ASSERT_TRUE(spin([&] { return c.closed; }));
  EXPECT_TRUE(c.fin);
  EXPECT_EQ(c.code, ChannelError{});
  // The server's own channel (even id) arrived with its greeting and FIN.
  ASSERT_TRUE(spin([&] { return client_.pushed.fin; }));
  EXPECT_EQ(client_.pushed_name, "hello-from-server");
  EXPECT_EQ(client_.pushed.got, "greetings");
  ASSERT_TRUE(spin([&] { return ep->session().live_channels() == 1; }));  // pushed: ours open
}

TEST_P(EndpointTest, ManyChannelsEchoAtOnce) {
  Endpoint* ep = connect();
  ASSERT_NE(ep, nullptr);
  constexpr int kN = 40;
  std::vector<Collect> cs(kN);
  std::vector<std::uint16_t> ids;
  std::vector<std::string> sent(kN);
  for (int i = 0; i < kN; ++i) {
    auto ch = ep->open("echo", &cs[static_cast<std::size_t>(i)]);
    ASSERT_TRUE(ch.ok()) << ch.error().message();
    ids.push_back(*ch);
  }
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < kN; ++i) {
      const std::string s = "ch" + std::to_string(i) + "-r" + std::to_string(round) + ";";
      sent[static_cast<std::size_t>(i)] += s;
      ASSERT_TRUE(write_all(*ep, ids[static_cast<std::size_t>(i)], bytes_of(s)));
    }
  }
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(ep->close(ids[static_cast<std::size_t>(i)]).ok());
  }
  ASSERT_TRUE(spin([&] {
    for (const Collect& c : cs) {
      if (!c.closed) {
        return false;
      }
    }
    return true;
  }));
  for (int i = 0; i < kN; ++i) {
    EXPECT_EQ(cs[static_cast<std::size_t>(i)].got, sent[static_cast<std::size_t>(i)]) << i;
    EXPECT_EQ(cs[static_cast<std::size_t>(i)].code, ChannelError{});
  }
}

TEST_P(EndpointTest, BulkTransferKeepsEveryByte) {
  Endpoint* ep = connect();
  ASSERT_NE(ep, nullptr);
  Collect c;
  auto ch = ep->open("sink", &c);
  ASSERT_TRUE(ch.ok());
  constexpr std::size_t kTotal = 4u << 20;
  std::vector<std::byte> data(kTotal);
  for (std::size_t i = 0; i < kTotal; ++i) {
    data[i] = pattern(i);
  }
  // Odd piece sizes so that DATA frames, pool buffers and reads all split differently.
  std::size_t off = 0;
  for (std::size_t k = 0; off < kTotal; ++k) {
    const std::size_t piece = std::min(kTotal - off, 1 + (k * 7919) % 40000);
    ASSERT_TRUE(write_all(*ep, *ch, {data.data() + off, piece}));
    off += piece;
  }
  ASSERT_TRUE(ep->close(*ch).ok());
  ASSERT_TRUE(spin([&] { return c.closed; }, 30s));
  char want[64];
  std::snprintf(want, sizeof want, "%zu %llx", kTotal,
                static_cast<unsigned long long>(fnv(kFnvSeed, data)));
  EXPECT_EQ(c.got, want);
  EXPECT_EQ(c.code, ChannelError{});
  EXPECT_GE(ep->stats().bytes_out, kTotal);
}

// Windows far larger than the send queues: the flush must keep going round (emit, wake the
// writer, emit) for as long as there is credit, not stop after a fixed number of rounds
// (it once did after four, which stalled any window above 4 x queue_per_channel).
// A writer driven only by callbacks (on_accepted, on_writable), as an application is.
struct Pump final : ChannelHandler {
  std::uint64_t total = 0, sent = 0, h = kFnvSeed;
  std::uint16_t ch = 0;
  bool closed = false;
  std::string got;
  std::array<std::byte, 20000> chunk{};
  void pump(Endpoint& ep) noexcept {
    while (sent < total) {
      const std::size_t n = std::min<std::uint64_t>(chunk.size(), total - sent);
      for (std::size_t i = 0; i < n; ++i) {
        chunk[i] = pattern(sent + i);
      }
      Result<std::size_t> w = ep.write(ch, {chunk.data(), n});
      if (!w) {
        return;
      }
      h = fnv(h, {chunk.data(), *w});
      sent += *w;
      if (sent == total) {
        (void)ep.close(ch);
      }
    }
  }
  void on_accepted(Endpoint& ep, std::uint16_t) noexcept override { pump(ep); }
  void on_writable(Endpoint& ep, std::uint16_t) noexcept override { pump(ep); }
  std::size_t on_data(Endpoint&, std::uint16_t, BufView d, bool) noexcept override {
    got.append(reinterpret_cast<const char*>(d.bytes.data()), d.bytes.size());
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override { closed = true; }
};

// Windows far larger than the send queues, and a writer that writes only from callbacks:
// the flush must keep going round (emit, wake the writer, emit) for as long as there is
// credit. It once stopped after four rounds, which stalled every window above four times
// queue_per_channel until some input arrived — and none does when the peer owes nothing.
TEST_P(EndpointTest, BulkWithLargeWindows) {
  rt_->stop(0);
  rt_->wait();
  EndpointOptions big;
  big.limits.channel_window = 1u << 20;
  big.limits.conn_window = 4u << 20;
  start_server(big);
  Endpoint* ep = connect(big);
  ASSERT_NE(ep, nullptr);
  Pump p;
  p.total = 16u << 20;
  auto ch = ep->open("sink", &p);
  ASSERT_TRUE(ch.ok());
  p.ch = *ch;
  ASSERT_TRUE(spin([&] { return p.closed; }, 30s)) << "stalled at " << p.sent;
  char want[64];
  std::snprintf(want, sizeof want, "%llu %llx", static_cast<unsigned long long>(p.total),
                static_cast<unsigned long long>(p.h));
  EXPECT_EQ(p.got, want);
}

// The core claim: one reader that stops consuming stops only its own channel.
TEST_P(EndpointTest, StalledChannelDoesNotDelayTheOthers) {
  Endpoint* ep = connect();
  ASSERT_NE(ep, nullptr);
  Collect echo;
  echo.keep_text = false;
  auto e = ep->open("echo", &echo);
  ASSERT_TRUE(e.ok());
  const auto rtt = [&](int n) {
    std::vector<double> us;
    for (int i = 0; i < n; ++i) {
      const std::uint64_t base = ep->stats().bytes_in;
      const auto t0 = std::chrono::steady_clock::now();
      EXPECT_TRUE(ep->write(*e, bytes_of("ping-ping-ping-ping")).ok());
      EXPECT_TRUE(spin([&] { return ep->stats().bytes_in >= base + 19; }));
      us.push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(us.begin(), us.end());
    return us;
  };
  ASSERT_TRUE(spin([&] { return client_.pushed.fin; }));  // nothing else arrives now
  const std::vector<double> idle = rtt(200);

  Collect sc;
  auto s = ep->open("stall", &sc);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(spin([&] { return sc.accepted; }));
  // Fill the stalled channel: the Session queues until the window and the queue are full.
  std::vector<std::byte> chunk(8192, std::byte{0x5a});
  std::size_t pushed = 0;
  for (int i = 0; i < 1000; ++i) {
    Result<std::size_t> n = ep->write(*s, chunk);
    if (!n) {
      ASSERT_EQ(n.error(), make_error_code(mux_errc::would_block));
      break;
    }
    pushed += *n;
    loop_->run_once(0);
  }
  const std::uint32_t window = ep->session().limits().channel_window;
  ASSERT_TRUE(spin([&] { return shared_.stall_most.load() == window; }))
      << shared_.stall_most.load() << " of " << window;
  EXPECT_EQ(ep->session().send_window(*s), 0u);  // no credit left on the stalled channel
  EXPECT_GT(ep->session().queued(*s), 0u);       // and more waiting behind it
  const std::vector<double> stalled = rtt(200);
  const double idle_p50 = idle[idle.size() / 2];
  const double stalled_p50 = stalled[stalled.size() / 2];
  const double stalled_p99 = stalled[stalled.size() * 99 / 100];
  std::printf("echo round trip: idle p50 %.0f us; with a stalled channel p50 %.0f us p99 %.0f us\n",
              idle_p50, stalled_p50, stalled_p99);
  // Generous bounds for a shared 2-core machine; a head-of-line block would never answer.
  EXPECT_LT(stalled_p50, std::max(20.0 * idle_p50, 5000.0));
  EXPECT_EQ(shared_.stall_over.load(), 0) << "the receiver got more than its window";
  EXPECT_GT(pushed, window);
  // Reset mid-transfer: the stalled channel's queued bytes are dropped at once.
  ASSERT_TRUE(ep->reset(*s, ChannelError::cancel).ok());
  EXPECT_TRUE(sc.closed);
  EXPECT_EQ(sc.code, ChannelError::cancel);
  EXPECT_EQ(ep->session().queued(*s), 0u);
  ASSERT_TRUE(spin([&] { return shared_.stall_closed.load() == 1; }));
  EXPECT_EQ(shared_.stall_closed_code.load(), static_cast<int>(ChannelError::cancel));
  // The connection's credit came back: the echo channel still flows.
  const std::vector<double> after = rtt(20);
  EXPECT_EQ(after.size(), 20u);
}

TEST_P(EndpointTest, RefusedNameEndsTheChannel) {
  Endpoint* ep = connect();
  ASSERT_NE(ep, nullptr);
  Collect c;
  auto ch = ep->open("no-such-service", &c);
  ASSERT_TRUE(ch.ok());
  ASSERT_TRUE(spin([&] { return c.closed; }));
  EXPECT_EQ(c.code, ChannelError::refused);
  EXPECT_FALSE(c.accepted);
  EXPECT_EQ(shared_.refused.load(), 1);
}

TEST_P(EndpointTest, HalfCloseBothWays) {
  Endpoint* ep = connect();
  ASSERT_NE(ep, nullptr);
  Collect c;
  auto ch = ep->open("sink", &c);
  ASSERT_TRUE(ch.ok());
  ASSERT_TRUE(ep->write(*ch, bytes_of("abc")).ok());
  ASSERT_TRUE(ep->close(*ch).ok());  // our direction ends; the server still answers
  EXPECT_EQ(ep->write(*ch, bytes_of("x")).error(), make_error_code(mux_errc::closed));
  ASSERT_TRUE(spin([&] { return c.closed; }));
  EXPECT_TRUE(c.fin);
  char want[64];
  std::snprintf(want, sizeof want, "3 %llx",
                static_cast<unsigned long long>(fnv(kFnvSeed, bytes_of("abc"))));
  EXPECT_EQ(c.got, want);
  ASSERT_TRUE(spin([&] { return ep->session().state(*ch) == ChannelState::idle; }));
}

// ---- raw peers ---------------------------------------------------------------------------

std::vector<std::byte> hello(std::uint64_t features) {
  msg::Hello h;
  h.max_frame = 1 << 16;
  h.features = features;
  std::vector<std::byte> out(64);
  auto n = msg::encode(msg::make_hello(h), out);
  out.resize(n ? *n : 0);
  return out;
}

void append(std::vector<std::byte>& out, const Frame& f) {
  std::byte buf[70000];
  auto n = encode(f, buf);
  ASSERT_TRUE(n.ok()) << n.error().message();
  out.insert(out.end(), buf, buf + *n);
}

// Reads frames until one of type `type` arrives (or the connection ends); returns its bytes
// after the prefix, empty on EOF/timeout.
std::vector<std::byte> read_until(int fd, std::uint8_t type) {
  for (int i = 0; i < 1000; ++i) {
    std::byte pfx[4];
    if (!test::read_exact(fd, pfx, 4)) {
      return {};
    }
    const std::uint32_t len = (std::to_integer<std::uint32_t>(pfx[0]) << 24) |
                              (std::to_integer<std::uint32_t>(pfx[1]) << 16) |
                              (std::to_integer<std::uint32_t>(pfx[2]) << 8) |
                              std::to_integer<std::uint32_t>(pfx[3]);
    std::vector<std::byte> body(len);
    if (!test::read_exact(fd, body.data(), len)) {
      return {};
    }
    if (len != 0 && std::to_integer<std::uint8_t>(body[0]) == type) {
      return body;
    }
  }
  return {};
}

TEST_P(EndpointTest, FramesSplitByteByByte) {
  const int fd = test::connect_to(addr_);
  ASSERT_GE(fd, 0);
  std::vector<std::byte> out = hello(1);
  Settings st{1 << 20, 16384, 8};
  append(out, make_settings(st));
  const std::string name = "sink";
  append(out, make_open(1, 1 << 16, bytes_of(name)));
  std::vector<std::byte> payload(3000);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    payload[i] = pattern(i);
  }
  // The OPEN_ACK must arrive before DATA may be sent: send the head, wait for it.
  for (std::byte b : out) {
    ASSERT_TRUE(test::write_all(fd, &b, 1));
  }
  ASSERT_FALSE(read_until(fd, 0x11).empty()) << "no OPEN_ACK";
  std::vector<std::byte> data;
  append(data, make_data(1, {payload.data(), 1000}));
  append(data, make_data(1, {payload.data() + 1000, 2000}, true));
  for (std::byte b : data) {
    ASSERT_TRUE(test::write_all(fd, &b, 1));
  }
  const std::vector<std::byte> reply = read_until(fd, 0x13);
  ASSERT_GT(reply.size(), 8u);
  char want[64];
  std::snprintf(want, sizeof want, "3000 %llx",
                static_cast<unsigned long long>(fnv(kFnvSeed, payload)));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(reply.data() + 8), reply.size() - 8), want);
  ::close(fd);
}

TEST_P(EndpointTest, PeerThatOverrunsTheWindowIsClosedOthersServed) {
  const int fd = test::connect_to(addr_);
  ASSERT_GE(fd, 0);
  std::vector<std::byte> out = hello(1);
  append(out, make_settings(Settings{1 << 20, 16384, 8}));
  append(out, make_open(1, 1 << 16, bytes_of("stall")));
  ASSERT_TRUE(test::write_all(fd, out.data(), out.size()));
  const std::vector<std::byte> ack = read_until(fd, 0x11);
  ASSERT_EQ(ack.size(), 12u);
  const std::uint32_t window = (std::to_integer<std::uint32_t>(ack[8]) << 24) |
                               (std::to_integer<std::uint32_t>(ack[9]) << 16) |
                               (std::to_integer<std::uint32_t>(ack[10]) << 8) |
                               std::to_integer<std::uint32_t>(ack[11]);
  // One byte more than the window the server granted.
  std::vector<std::byte> big(8000, std::byte{1});
  std::vector<std::byte> lie;
  for (std::uint32_t sent = 0; sent <= window;) {
    const std::uint32_t k = std::min<std::uint32_t>(8000, window + 1 - sent);
    append(lie, make_data(1, {big.data(), k}));
    sent += k;
  }
  ASSERT_TRUE(test::write_all(fd, lie.data(), lie.size()));
  const std::vector<std::byte> err = read_until(fd, 0x05);
  ASSERT_GT(err.size(), 12u) << "no ERROR before the close";
  const std::string text(reinterpret_cast<const char*>(err.data() + 12), err.size() - 12);
  EXPECT_NE(text.find("window"), std::string::npos) << text;
  EXPECT_EQ(test::wait_closed(fd), 0);
  ::close(fd);
  EXPECT_EQ(shared_.stall_over.load(), 0);
  // Another client is served.
  Endpoint* ep = connect();
  ASSERT_NE(ep, nullptr);
  Collect c;
  auto ch = ep->open("echo", &c);
  ASSERT_TRUE(ch.ok());
  ASSERT_TRUE(ep->write(*ch, bytes_of("still here")).ok());
  ASSERT_TRUE(spin([&] { return c.got == "still here"; }));
}

TEST_P(EndpointTest, HelloWithoutMuxIsRefused) {
  const int fd = test::connect_to(addr_);
  ASSERT_GE(fd, 0);
  const std::vector<std::byte> out = hello(0);
  ASSERT_TRUE(test::write_all(fd, out.data(), out.size()));
  const std::vector<std::byte> err = read_until(fd, 0x05);
  ASSERT_GT(err.size(), 12u);
  const std::string text(reinterpret_cast<const char*>(err.data() + 12), err.size() - 12);
  EXPECT_NE(text.find("MUX"), std::string::npos) << text;
  EXPECT_EQ(test::wait_closed(fd), 0);
  ::close(fd);
}

TEST_P(EndpointTest, ClientSideLimitOfChannels) {
  Endpoint* ep = connect(EndpointOptions{});
  ASSERT_NE(ep, nullptr);
  // The server announced max_channels 64 (Limits' default) and this side has 64 slots, one
  // of them held by the server's channel (half-closed: we never close our side).
  ASSERT_TRUE(spin([&] { return client_.pushed.fin; }));
  std::vector<Collect> cs(70);
  int opened = 0;
  std::error_code last;
  for (Collect& c : cs) {
    auto ch = ep->open("echo", &c);
    if (!ch) {
      last = ch.error();
      break;
    }
    ++opened;
  }
  EXPECT_EQ(opened, 63);  // 64 slots here, one taken by the server's pushed channel
  EXPECT_EQ(last, make_error_code(mux_errc::channel_limit));
}

INSTANTIATE_TEST_SUITE_P(Backends, EndpointTest,
                         ::testing::Values(BackendKind::epoll, BackendKind::uring),
                         test::BackendName());

}  // namespace
}  // namespace weft::mux
