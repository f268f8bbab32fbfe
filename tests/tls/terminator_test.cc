// weft::tls_proxy: the TLS terminator in front of a weft HTTP server and a raw echo
// service, in one Runtime, on both event-loop backends. Real peers (curl, openssl s_client)
// and an in-process client Engine over a socket; every wait is bounded; 127.0.0.1 only.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <weft/http/server.h>
#include <weft/platform/handler_pool.h>
#include <weft/platform/runtime.h>
#include <weft/tls/terminator.h>

#include "test_net.h"
#include "tls_test.h"

namespace weft::tls::test {
namespace {

using platform::BackendKind;
using weft::test::connect_to;
using weft::test::wait_closed;

// The plaintext upstream for the `weft` ALPN route: echoes every byte (by reference; the
// core's watermarks pause it when its output is full).
// It copies (send_copy): echoing receive buffers by reference to a peer that does not read
// would pin them, which the core ends as hoarding. A send that finds no room (queue_full,
// no_buffers) keeps the bytes and pauses reading until on_writable.
class Echo final : public platform::Handler {
 public:
  void reset(platform::Conn&) noexcept { held_.reset(); }
  void on_data(platform::Conn& c, platform::BufView in) noexcept override {
    if (!c.send_copy(in.bytes)) {
      held_ = in.ref();
      bytes_ = in.bytes;
      c.pause_reading();
    }
  }
  void on_writable(platform::Conn& c) noexcept override {
    if (held_.valid() && c.send_copy(bytes_)) {
      held_.reset();
      c.resume_reading();
    }
  }

 private:
  platform::BufRef held_;
  std::span<const std::byte> bytes_;
};

void hello(void* /*ctx*/, http::Exchange& ex) noexcept {
  (void)ex.respond(200, "text/plain", "hello over tls\n");
}

std::string run(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
      out.append(buf, n);
    }
    const int rc = ::pclose(p);
    if (rc != 0) {
      out += "\n[exit " + std::to_string(WEXITSTATUS(rc)) + "]";
    }
  }
  return out;
}

struct PeerLog {
  std::mutex mu;
  std::vector<std::string> subjects;
  std::vector<std::string> alpns;
  static void on_peer(void* ctx, std::string_view alpn, std::string_view subject,
                      bool verified) noexcept {
    auto* l = static_cast<PeerLog*>(ctx);
    const std::lock_guard<std::mutex> lock(l->mu);
    l->subjects.emplace_back(std::string(subject) + (verified ? " +verified" : " -unverified"));
    l->alpns.emplace_back(alpn);
  }
};

// A client Engine over a non-blocking socket, driven with poll() and a deadline.
class TlsClient {
 public:
  // rcvbuf (when not 0): SO_RCVBUF before connecting, which bounds the window offered.
  TlsClient(const Context& ctx, std::uint16_t port, int rcvbuf = 0)
      : engine_(make_engine(ctx, "localhost")),
        fd_(connect_to(platform::Address::loopback_v4(port), 5000, rcvbuf)) {
    if (fd_ >= 0) {
      ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    }
  }
  ~TlsClient() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  [[nodiscard]] bool connected() const { return fd_ >= 0; }
  Engine& engine() { return engine_; }

  bool handshake(int timeout_ms = 10000) {
    return pump_until([&] { return engine_.handshake_done(); }, timeout_ms);
  }

  // Sends `out` while collecting `want` bytes of plaintext back (streamed both ways).
  bool exchange(const std::string& out, std::size_t want, int timeout_ms = 30000) {
    sent_ = 0;
    to_send_ = &out;
    const bool ok = pump_until([&] { return got.size() >= want; }, timeout_ms);
    to_send_ = nullptr;
    return ok;
  }

  // Waits until the server ends the connection; true when it sent close_notify first.
  bool wait_close_notify(int timeout_ms = 10000) {
    (void)pump_until([&] { return eof_ || failed_; }, timeout_ms);
    return engine_.peer_closed();
  }

  // Sends `out` without reading anything until it is all sent or nothing moved for
  // stall_ms (the peers' queues are full); returns the plaintext bytes the Engine took. A
  // later exchange(out, ...) continues from there, reading.
  std::size_t push_without_reading(const std::string& out, int stall_ms = 500) {
    sent_ = 0;
    to_send_ = &out;
    reading_ = false;
    last_progress_ = std::chrono::steady_clock::now();
    (void)pump_until(
        [&] {
          return sent_ == out.size() || std::chrono::steady_clock::now() - last_progress_ >
                                            std::chrono::milliseconds(stall_ms);
        },
        30000);
    reading_ = true;
    return sent_;
  }
  // Continues sending what push_without_reading left, and reads `want` bytes back.
  bool finish(std::size_t want, int timeout_ms = 30000) {
    const bool ok = pump_until([&] { return got.size() >= want; }, timeout_ms);
    to_send_ = nullptr;
    return ok;
  }

  std::string got;

 private:
  template <class Done>
  bool pump_until(Done done, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    std::vector<std::byte> buf(64 * 1024);
    while (!done()) {
      if (failed_ || eof_ || fd_ < 0 || engine_.state() == State::failed) {
        return done();
      }
      if (to_send_ != nullptr && sent_ < to_send_->size() && engine_.handshake_done() &&
          out_.size() < 256 * 1024) {
        const std::size_t n = std::min<std::size_t>(16384, to_send_->size() - sent_);
        Result<std::size_t> w =
            engine_.write(std::as_bytes(std::span(to_send_->data() + sent_, n)));
        if (!w) {
          failed_ = true;
          continue;
        }
        sent_ += *w;
      }
      while (engine_.pending() != 0) {
        const std::size_t n = engine_.take(buf);
        out_.insert(out_.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) {
        return false;
      }
      pollfd p{fd_, static_cast<short>((reading_ ? POLLIN : 0) | (out_.empty() ? 0 : POLLOUT)), 0};
      const bool more = to_send_ != nullptr && sent_ < to_send_->size() && out_.size() < 256 * 1024;
      if (::poll(&p, 1, more ? 0 : static_cast<int>(std::min<long>(left, 50))) < 0) {
        continue;
      }
      if ((p.revents & POLLOUT) != 0 && !out_.empty()) {
        const ssize_t w = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
        if (w > 0) {
          out_.erase(out_.begin(), out_.begin() + w);
          last_progress_ = std::chrono::steady_clock::now();
        } else if (w < 0 && errno != EAGAIN) {
          failed_ = true;
        }
      }
      if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const ssize_t r = ::recv(fd_, buf.data(), buf.size(), 0);
        if (r == 0) {
          eof_ = true;
        } else if (r < 0) {
          if (errno != EAGAIN) {
            failed_ = true;
          }
        } else {
          std::span<const std::byte> in(buf.data(), static_cast<std::size_t>(r));
          std::vector<std::byte> plain(64 * 1024);
          while (!in.empty() && !failed_) {
            Result<std::size_t> f = engine_.feed(in);
            if (!f) {
              failed_ = true;
              break;
            }
            in = in.subspan(*f);
            for (;;) {
              Result<std::size_t> n = engine_.read(plain);
              if (!n || *n == 0) {
                break;
              }
              got.append(reinterpret_cast<const char*>(plain.data()), *n);
            }
          }
        }
      }
    }
    return true;
  }

  Engine engine_;
  int fd_;
  std::vector<std::byte> out_;
  const std::string* to_send_ = nullptr;
  std::size_t sent_ = 0;
  bool eof_ = false;
  bool failed_ = false;
  bool reading_ = true;
  std::chrono::steady_clock::time_point last_progress_{};
};

struct StartOptions {
  ClientAuth client_auth = ClientAuth::none;
  std::uint32_t handshake_timeout_ms = 10000;
  bool upstream_down = false;
  std::uint32_t max_connections = 0;
  bool unix_default = false;  // the default route: the echo service on a Unix socket
  std::uint32_t recv_buffers = 64;
};

class TerminatorTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    if (!Certs::get().ok()) {
      GTEST_SKIP() << "openssl could not make the test certificates";
    }
    if (GetParam() == BackendKind::uring) {
      std::string why;
      if (!weft::test::uring_usable(&why)) {
        GTEST_SKIP() << "io_uring unavailable: " << why;
      }
    }
  }
  void TearDown() override {
    if (rt_) {
      rt_->stop(0);
      rt_->wait();
    }
  }

  void start(const StartOptions& s = {}) {
    ServerOptions so;
    so.client_auth = s.client_auth;
    so.alpn = {"http/1.1", "weft"};
    server_ctx_.emplace(server_context(so));
    http::ServerConfig hc;
    hc.setup = [](http::Router& r, platform::Loop&) {
      ASSERT_TRUE(r.add(http::Method::get, "/", &hello, nullptr).ok());
    };
    http_ = std::make_unique<http::Server>(std::move(hc));
    cfg_ = weft::test::one_worker_config(GetParam());
    cfg_.max_connections = 64;
    cfg_.outbound_connections = 16;
    cfg_.buffer_size = 16 * 1024;
    cfg_.recv_buffers = s.recv_buffers;
    cfg_.send_buffers = 128;
    rt_ = std::make_unique<platform::Runtime>();
    std::vector<platform::Service> services;
    services.push_back(http_->service(platform::Address::loopback_v4(0)));
    platform::Service echo;
    echo.address = platform::Address::loopback_v4(0);
    echo.make_factory = [](platform::Loop&) {
      return std::unique_ptr<platform::HandlerFactory>(new platform::HandlerPool<Echo>(16));
    };
    platform::Service unix_echo;
    unix_echo.address =
        platform::Address::parse("unix:@weft-tls-term-" + std::to_string(::getpid()) + "-" +
                                 std::to_string(++unix_seq_))
            .value();
    unix_echo.make_factory = echo.make_factory;
    services.push_back(std::move(echo));
    services.push_back(std::move(unix_echo));
    routes_[0].alpn = "http/1.1";
    routes_[0].runtime = rt_.get();
    routes_[0].service = 0;
    routes_[1].alpn = "weft";
    routes_[1].runtime = rt_.get();
    routes_[1].service = 1;
    TerminatorOptions to;
    to.stats = &stats_;
    to.on_peer = &PeerLog::on_peer;
    to.on_peer_ctx = &peers_;
    to.handshake_timeout_ms = s.handshake_timeout_ms;
    to.max_connections = s.max_connections;
    platform::Address def = platform::Address::loopback_v4(0);
    if (s.upstream_down) {
      // A port that was just free: nothing listens there.
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      const platform::Address any = platform::Address::loopback_v4(0);
      ASSERT_EQ(::bind(fd, any.sockaddr_ptr(), any.length()), 0);
      def = platform::Address::local_of(fd).value();
      ::close(fd);
      to.routes = {};
    } else {
      to.routes = routes_;
      routes_[0].alpn = "";  // HTTP is also the default (no ALPN offered)
      if (s.unix_default) {
        routes_[0].service = 2;
      }
    }
    services.push_back(make_terminator(platform::Address::loopback_v4(0), *server_ctx_, def, to));
    ASSERT_TRUE(rt_->start(cfg_, std::move(services)).ok());
    port_ = rt_->local_address(3).port();
  }

  // A client Context offering ALPN `weft` (routed to the echo service).
  static Context weft_client() {
    ClientOptions co;
    co.alpn = {"weft"};
    return client_context(co);
  }

  std::string curl(const std::string& extra) {
    const Certs& c = Certs::get();
    return run("curl -sS --max-time 10 --cacert " + c.file("ca.pem") + " " + extra +
               " https://127.0.0.1:" + std::to_string(port_) + "/ 2>&1");
  }

  std::optional<Context> server_ctx_;
  std::unique_ptr<http::Server> http_;
  platform::Config cfg_;
  std::unique_ptr<platform::Runtime> rt_;
  Route routes_[2];
  TerminatorStats stats_;
  PeerLog peers_;
  std::uint16_t port_ = 0;
  static inline int unix_seq_ = 0;
};

TEST_P(TerminatorTest, CurlGetsTheHttpUpstream) {
  start();
  EXPECT_EQ(curl(""), "hello over tls\n");
  // Keep-alive: curl reuses the TLS connection for the second URL.
  const std::string two = curl("-v https://127.0.0.1:" + std::to_string(port_) + "/");
  EXPECT_NE(two.find("Re-using existing connection"), std::string::npos) << two;
  EXPECT_EQ(stats_.handshakes.load(), 2u);
  EXPECT_EQ(stats_.accepted.load(), 2u);
}

TEST_P(TerminatorTest, SClientAlpnHttpAndEngineAlpnWeftPickTheirUpstreams) {
  start();
  const Certs& c = Certs::get();
  const std::string out =
      run("printf 'GET / HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | "
          "timeout 10 openssl s_client -quiet -ign_eof -alpn http/1.1 -connect 127.0.0.1:" +
          std::to_string(port_) + " -CAfile " + c.file("ca.pem") + " 2>/dev/null");
  EXPECT_NE(out.find("hello over tls"), std::string::npos) << out;
  EXPECT_EQ(out.find("[exit"), std::string::npos) << out;  // closed by close_notify + FIN

  const Context cctx = weft_client();
  TlsClient cl(cctx, port_);
  ASSERT_TRUE(cl.connected());
  ASSERT_TRUE(cl.handshake());
  EXPECT_EQ(cl.engine().alpn(), "weft");
  ASSERT_TRUE(cl.exchange("ping weft\n", 10));
  EXPECT_EQ(cl.got, "ping weft\n");  // the echo service, not HTTP
  const std::lock_guard<std::mutex> lock(peers_.mu);
  ASSERT_EQ(peers_.alpns.size(), 2u);
  EXPECT_EQ(peers_.alpns[0], "http/1.1");
  EXPECT_EQ(peers_.alpns[1], "weft");
}

TEST_P(TerminatorTest, MutualTlsAcceptedAndRefused) {
  start({.client_auth = ClientAuth::required});
  const Certs& c = Certs::get();
  EXPECT_EQ(curl("--cert " + c.file("client.pem") + " --key " + c.file("client.key")),
            "hello over tls\n");
  const std::string none = curl("");
  EXPECT_EQ(none.find("hello over tls"), std::string::npos) << none;
  const std::string rogue = curl("--cert " + c.file("rogue.pem") + " --key " + c.file("rogue.key"));
  EXPECT_EQ(rogue.find("hello over tls"), std::string::npos) << rogue;
  EXPECT_EQ(stats_.peers_verified.load(), 1u);
  EXPECT_EQ(stats_.handshakes.load(), 1u);
  EXPECT_TRUE(weft::test::eventually([&] { return stats_.handshake_failures.load() == 2; }));
  const std::lock_guard<std::mutex> lock(peers_.mu);
  ASSERT_EQ(peers_.subjects.size(), 1u);
  EXPECT_NE(peers_.subjects[0].find("device-1"), std::string::npos) << peers_.subjects[0];
  EXPECT_NE(peers_.subjects[0].find("+verified"), std::string::npos) << peers_.subjects[0];
}

TEST_P(TerminatorTest, GarbageInsteadOfClientHelloClosesOnlyThatConnection) {
  start();
  const Context cctx = weft_client();
  TlsClient good(cctx, port_);
  ASSERT_TRUE(good.handshake());
  ASSERT_TRUE(good.exchange("before\n", 7));

  const int bad = connect_to(platform::Address::loopback_v4(port_));
  ASSERT_GE(bad, 0);
  std::string junk(4096, '\0');
  for (std::size_t i = 0; i < junk.size(); ++i) {
    junk[i] = static_cast<char>((i * 131 + 7) & 0xff);
  }
  ASSERT_TRUE(weft::test::write_all(bad, junk.data(), junk.size()));
  EXPECT_LE(wait_closed(bad, 10000), 0);  // closed (an alert, then FIN or reset)
  ::close(bad);

  good.got.clear();
  ASSERT_TRUE(good.exchange("after\n", 6));
  EXPECT_EQ(good.got, "after\n");
  EXPECT_TRUE(weft::test::eventually([&] { return stats_.handshake_failures.load() == 1; }));
}

TEST_P(TerminatorTest, StalledHandshakeIsClosedAtTheTimeout) {
  start({.handshake_timeout_ms = 300});
  const int silent = connect_to(platform::Address::loopback_v4(port_));
  ASSERT_GE(silent, 0);
  // Half a ClientHello record header, then nothing.
  ASSERT_TRUE(weft::test::write_all(silent, "\x16\x03\x01", 3));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_LE(wait_closed(silent, 10000), 0);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_GE(ms, 200);  // not before the timeout (the wheel's tick is coarse)
  ::close(silent);
  EXPECT_TRUE(weft::test::eventually([&] { return stats_.handshake_timeouts.load() == 1; }));
  // Another client is served afterwards.
  EXPECT_EQ(curl(""), "hello over tls\n");
}

TEST_P(TerminatorTest, SeveralMebibytesBothWaysIntactAndQueuesBounded) {
  start();
  const Context cctx = weft_client();
  TlsClient cl(cctx, port_);
  ASSERT_TRUE(cl.handshake());
  std::string body(6 * 1024 * 1024 + 123, '\0');
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  for (char& ch : body) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ch = static_cast<char>(x);
  }
  ASSERT_TRUE(cl.exchange(body, body.size(), 60000)) << cl.got.size();
  EXPECT_TRUE(cl.got == body);
  EXPECT_EQ(stats_.bytes_up.load(), body.size());
  EXPECT_EQ(stats_.bytes_down.load(), body.size());
  // Each queue stops at the high watermark; one buffer's worth may cross it.
  EXPECT_LE(stats_.max_queued.load(), cfg_.high_watermark + cfg_.buffer_size);
  EXPECT_GT(stats_.max_queued.load(), 0u);
}

TEST_P(TerminatorTest, UpstreamDownEndsWithCloseNotify) {
  start({.upstream_down = true});
  const Context cctx = client_context();
  TlsClient cl(cctx, port_);
  ASSERT_TRUE(cl.handshake());
  EXPECT_TRUE(cl.wait_close_notify());
  EXPECT_TRUE(weft::test::eventually([&] { return stats_.upstream_failures.load() == 1; }));
  EXPECT_EQ(curl("").find("hello"), std::string::npos);
}

TEST_P(TerminatorTest, ConnectionsBeyondThePoolAreRefusedAndTheSlotComesBack) {
  start({.max_connections = 2});
  const Context cctx = weft_client();
  auto a = std::make_unique<TlsClient>(cctx, port_);
  TlsClient b(cctx, port_);
  ASSERT_TRUE(a->handshake());
  ASSERT_TRUE(b.handshake());
  const int third = connect_to(platform::Address::loopback_v4(port_));
  ASSERT_GE(third, 0);
  EXPECT_LE(wait_closed(third, 10000), 0);  // refused: closed at once
  ::close(third);
  EXPECT_TRUE(weft::test::eventually([&] { return stats_.refused.load() == 1; }));
  ASSERT_TRUE(b.exchange("still here\n", 11));
  EXPECT_EQ(b.got, "still here\n");
  // Closing one gives its pair back (after both halves closed): a new client is served.
  a.reset();
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {  // the pair returns at the end of an iteration
    TlsClient d(cctx, port_);
    served = d.handshake(2000) && d.exchange("again\n", 6, 2000);
  }
  EXPECT_TRUE(served);
}

TEST_P(TerminatorTest, ClientCloseNotifyEndsTheUpstreamAndComesBack) {
  start();
  const Context cctx = weft_client();
  TlsClient cl(cctx, port_);
  ASSERT_TRUE(cl.handshake());
  ASSERT_TRUE(cl.exchange("bye\n", 4));
  // close_notify: the terminator closes the upstream (FIN); the echo service closes back,
  // and that close comes to the client as close_notify, then FIN.
  cl.engine().close();
  EXPECT_TRUE(cl.wait_close_notify());
  EXPECT_EQ(stats_.upstream_failures.load(), 0u);
}

TEST_P(TerminatorTest, UnixSocketUpstream) {
  start({.unix_default = true});
  const Context cctx = client_context();  // no ALPN: the default route
  TlsClient cl(cctx, port_);
  ASSERT_TRUE(cl.handshake());
  std::string body(300 * 1024, 'u');
  ASSERT_TRUE(cl.exchange(body, body.size()));
  EXPECT_TRUE(cl.got == body);
}

// With a small receive partition (64 or 512 buffers here) the stalled chain (the client
// sends and never reads) pins receive buffers in three paused connections while io_uring's
// multishot receives keep completing; the core then closes one that hoards (no_buffers,
// issue #13's policy; seen on the test's echo service), which is an intended end for such a
// client. Here the partition (2048) holds the stall, so the test sees the terminator's own
// bound and the resumption. It also found the stall fixed by Pair::retry_: an empty general
// partition used to leave a pair waiting for an event that never came.
TEST_P(TerminatorTest, AClientThatDoesNotReadIsHeldWithinTheBound) {
  start({.recv_buffers = 2048});
  const Context cctx = weft_client();
  TlsClient cl(cctx, port_, 16 * 1024);
  ASSERT_TRUE(cl.handshake());
  // 32 MiB towards the echo without reading its answer: the echo's output backs up into the
  // terminator, which stops reading the upstream, then the client; the client stalls.
  std::string body(32 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) {
    body[i] = static_cast<char>((i * 7919) >> 8);
  }
  const std::size_t pushed = cl.push_without_reading(body);
  EXPECT_LT(pushed, body.size());  // held back: the chain is full
  EXPECT_LE(stats_.max_queued.load(), cfg_.high_watermark + cfg_.buffer_size);
  EXPECT_LT(stats_.bytes_down.load(), pushed);  // the rest waits in the chain, not lost
  // Reading resumes everything, in order.
  ASSERT_TRUE(cl.finish(body.size(), 60000))
      << cl.got.size() << " bytes; hoarders closed " << rt_->stats().hoarders_closed;
  EXPECT_TRUE(cl.got == body);
}

INSTANTIATE_TEST_SUITE_P(Backends, TerminatorTest,
                         ::testing::Values(BackendKind::epoll, BackendKind::uring),
                         weft::test::BackendName());

}  // namespace
}  // namespace weft::tls::test
