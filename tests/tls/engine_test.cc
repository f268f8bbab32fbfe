// weft::tls Engine against itself, in memory: handshakes, data at many sizes and at every
// split, ALPN, SNI, mutual TLS, bad input, renegotiation, resumption, close_notify. Compiled
// once per backend (weft_tls_openssl_test, weft_tls_mbedtls_test).
#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include <weft/tls/ktls.h>
#include <weft/tls/tls.h>

#if WEFT_TLS_TEST_RAW_OPENSSL
#include "raw_openssl.h"
#endif
#include "tls_test.h"

namespace weft::tls::test {
namespace {

const bool kTls13 = backend() == Backend::openssl;

class TlsEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Certs::get().ok()) {
      GTEST_SKIP() << "scripts/make-test-certs.sh failed (openssl command missing?)";
    }
  }
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  }
  return s;
}

TEST_F(TlsEngine, HandshakeVerifiesTheServer) {
  Pair p(server_context(), client_context());
  auto& [sctx, cctx, s, c] = p;
  EXPECT_EQ(c.state(), State::handshaking);
  EXPECT_GT(c.pending(), 0U);  // the ClientHello is ready before any feed
  ASSERT_FALSE(pump(c, s));
  EXPECT_EQ(c.state(), State::established);
  EXPECT_EQ(s.state(), State::established);
  EXPECT_TRUE(c.peer_verified());
  EXPECT_FALSE(s.peer_verified());  // no client certificate asked for
  std::array<char, 64> none{};
  EXPECT_EQ(s.peer_subject(none), 0u);
  EXPECT_EQ(c.version(), kTls13 ? Version::tls13 : Version::tls12);
  EXPECT_EQ(s.version(), c.version());
  EXPECT_STRNE(c.cipher(), "");
  EXPECT_STREQ(c.cipher(), s.cipher());
  EXPECT_EQ(c.role(), Role::client);
  EXPECT_EQ(s.role(), Role::server);
  EXPECT_FALSE(c.resumed());
}

TEST_F(TlsEngine, Tls12WhenCapped) {
  Pair p(server_context({.max_version = Version::tls12}), client_context());
  auto& [sctx, cctx, s, c] = p;
  ASSERT_FALSE(pump(c, s));
  EXPECT_EQ(s.version(), Version::tls12);
  const std::string cipher = c.cipher();
  EXPECT_TRUE(cipher.find("GCM") != std::string::npos ||
              cipher.find("CHACHA20") != std::string::npos)
      << cipher;
  EXPECT_NE(cipher.find("ECDHE"), std::string::npos) << cipher;
}

TEST_F(TlsEngine, DataBothWaysAtManySizes) {
  Pair p(server_context(), client_context());
  auto& [sctx, cctx, s, c] = p;
  ASSERT_FALSE(pump(c, s));
  for (std::size_t n :
       {1UL, 2UL, 100UL, 1000UL, 16383UL, 16384UL, 16385UL, 65536UL, 100001UL, 1UL << 20}) {
    const std::string data = pattern(n);
    EXPECT_EQ(send_all(c, s, data), data) << "client->server " << n;
    EXPECT_EQ(send_all(s, c, data), data) << "server->client " << n;
  }
}

TEST_F(TlsEngine, HandshakeAndDataOneByteAtATime) {
  Pair p(server_context(), client_context());
  auto& [sctx, cctx, s, c] = p;
  ASSERT_FALSE(pump(c, s, 1));
  ASSERT_TRUE(c.handshake_done());
  ASSERT_TRUE(s.handshake_done());
  EXPECT_EQ(send_all(c, s, "ping over tls, one byte at a time", 1),
            "ping over tls, one byte at a time");
  EXPECT_EQ(send_all(s, c, "pong", 1), "pong");
}

// One record (with a second one behind it), fed at every split point.
TEST_F(TlsEngine, EverySplitOfTheCiphertext) {
  Pair p(server_context(), client_context());
  auto& [sctx, cctx, s, c] = p;
  std::string ignored;
  ASSERT_FALSE(pump(c, s, 1 << 20, &ignored, &ignored));
  const std::string msg = pattern(300);
  std::vector<std::byte> wire(4096);
  std::vector<std::byte> plain(4096);
  for (std::size_t split = 0;; ++split) {
    ASSERT_EQ(s.write(bytes(msg)).value(), msg.size());
    ASSERT_EQ(s.write(bytes("!")).value(), 1U);
    const std::size_t n = s.take(wire);
    ASSERT_GT(n, msg.size() + 1);
    if (split > n) {
      break;
    }
    std::string got;
    auto read_all = [&] {
      for (;;) {
        // p.c, not c: clang 14 cannot capture a structured binding.
        Result<std::size_t> r = p.c.read(plain);
        ASSERT_TRUE(r.ok()) << r.error().message();
        if (r.value() == 0) {
          return;
        }
        got.append(reinterpret_cast<const char*>(plain.data()), r.value());
      }
    };
    ASSERT_EQ(c.feed(std::span<const std::byte>(wire).first(split)).value(), split);
    read_all();
    EXPECT_LE(got.size(), msg.size() + 1);
    ASSERT_EQ(c.feed(std::span<const std::byte>(wire).subspan(split, n - split)).value(),
              n - split);
    read_all();
    ASSERT_EQ(got, msg + "!") << "split " << split;
  }
}

TEST_F(TlsEngine, AlpnServerPreferenceWins) {
  Pair p(server_context({.alpn = {"weft", "http/1.1"}}),
         client_context({.alpn = {"http/1.1", "weft"}}));
  auto& [sctx, cctx, s, c] = p;
  ASSERT_FALSE(pump(c, s));
  EXPECT_EQ(s.alpn(), "weft");
  EXPECT_EQ(c.alpn(), "weft");
}

TEST_F(TlsEngine, AlpnSingleOverlap) {
  Pair p(server_context({.alpn = {"weft", "http/1.1"}}), client_context({.alpn = {"http/1.1"}}));
  auto& [sctx, cctx, s, c] = p;
  ASSERT_FALSE(pump(c, s));
  EXPECT_EQ(s.alpn(), "http/1.1");
  EXPECT_EQ(c.alpn(), "http/1.1");
}

TEST_F(TlsEngine, AlpnNotOfferedMeansNone) {
  Pair p(server_context({.alpn = {"weft", "http/1.1"}}), client_context());
  auto& [sctx, cctx, s, c] = p;
  ASSERT_FALSE(pump(c, s));
  EXPECT_EQ(s.alpn(), "");
  EXPECT_EQ(c.alpn(), "");
}

TEST_F(TlsEngine, AlpnNoOverlapFailsBothSides) {
  Pair p(server_context({.alpn = {"weft", "http/1.1"}}), client_context({.alpn = {"h2"}}));
  auto& [sctx, cctx, s, c] = p;
  std::error_code ec = pump(c, s);
  EXPECT_EQ(ec, tls_errc::alpn_mismatch);
  EXPECT_EQ(s.state(), State::failed);
  EXPECT_EQ(s.error(), tls_errc::alpn_mismatch);
  // The alert reaches the client, which names the same reason.
  (void)pump(c, s);
  EXPECT_EQ(c.state(), State::failed);
  EXPECT_EQ(c.error(), tls_errc::alpn_mismatch);
}

TEST_F(TlsEngine, AlpnNoOverlapLenient) {
  Config c;
  const std::string chain = Certs::get().file("server.pem");
  const std::string key = Certs::get().file("server.key");
  const std::array<std::string_view, 1> alpn = {"weft"};
  c.cert_chain_file = chain.c_str();
  c.key_file = key.c_str();
  c.alpn = alpn;
  c.alpn_strict = false;
  Result<Context> sctx = Context::create(c);
  if (backend() == Backend::mbedtls) {
    ASSERT_FALSE(sctx.ok());
    EXPECT_EQ(sctx.error(), tls_errc::unsupported);
    return;
  }
  ASSERT_TRUE(sctx.ok());
  Context cctx = client_context({.alpn = {"h2"}});
  Engine s = make_engine(sctx.value());
  Engine cl = make_engine(cctx, "localhost");
  ASSERT_FALSE(pump(cl, s));
  EXPECT_EQ(s.alpn(), "");
  EXPECT_EQ(cl.alpn(), "");
}

TEST_F(TlsEngine, SniReachesTheServer) {
  Pair p(server_context(), client_context());
  auto& [sctx, cctx, s, c] = p;
  ASSERT_FALSE(pump(c, s));
  EXPECT_EQ(s.server_name(), "localhost");
  EXPECT_EQ(c.server_name(), "localhost");

  Engine s2 = make_engine(sctx);
  Engine c2 = make_engine(cctx);  // no SNI, no name check
  ASSERT_FALSE(pump(c2, s2));
  EXPECT_EQ(s2.server_name(), "");
}

TEST_F(TlsEngine, WrongServerNameIsCertInvalid) {
  Context sctx = server_context();
  Context cctx = client_context();
  Engine s = make_engine(sctx);
  Engine c = make_engine(cctx, "not-localhost.example");
  (void)pump(c, s);
  EXPECT_EQ(c.state(), State::failed);
  EXPECT_EQ(c.error(), tls_errc::cert_invalid);
  EXPECT_FALSE(s.handshake_done() && c.handshake_done());
}

TEST_F(TlsEngine, UntrustedServerIsCertInvalid) {
  Pair p(server_context(), client_context({.ca = "rogue-ca.pem"}));
  auto& [sctx, cctx, s, c] = p;
  (void)pump(c, s);
  EXPECT_EQ(c.error(), tls_errc::cert_invalid);
  EXPECT_EQ(s.state(), State::failed);  // the client's alert fails the server too
}

TEST_F(TlsEngine, MutualTlsAccepted) {
  Pair p(server_context({.client_auth = ClientAuth::required}), client_context({.cert = "client"}));
  auto& [sctx, cctx, s, c] = p;
  ASSERT_FALSE(pump(c, s));
  EXPECT_TRUE(s.peer_verified());
  EXPECT_TRUE(c.peer_verified());
  // The identity the terminator logs: each side's view of the other's subject.
  std::array<char, 128> subject{};
  const std::size_t n = s.peer_subject(subject);
  EXPECT_EQ(std::string_view(subject.data(), n),
            backend() == Backend::openssl ? "/CN=device-1" : "CN=device-1");
  EXPECT_NE(std::string_view(subject.data(), c.peer_subject(subject)).find("CN=localhost"),
            std::string_view::npos);
  std::array<char, 6> small{};
  EXPECT_EQ(s.peer_subject(small), 5u);  // truncated to fit, NUL-terminated
  EXPECT_EQ(small[5], '\0');
  EXPECT_EQ(s.peer_subject({}), 0u);
  EXPECT_EQ(send_all(c, s, "device-1 here"), "device-1 here");
}

TEST_F(TlsEngine, MutualTlsRefusedWithoutCertificate) {
  Pair p(server_context({.client_auth = ClientAuth::required}), client_context());
  auto& [sctx, cctx, s, c] = p;
  (void)pump(c, s);
  EXPECT_EQ(s.state(), State::failed);
  EXPECT_EQ(s.error(), tls_errc::peer_cert_required);
  // TLS 1.3 clients finish first; either way no data gets through and the client fails.
  if (c.state() != State::failed) {
    (void)c.write(bytes("x"));
    (void)pump(c, s);
  }
  EXPECT_EQ(c.state(), State::failed);
}

TEST_F(TlsEngine, MutualTlsRefusedWithUntrustedCertificate) {
  Pair p(server_context({.client_auth = ClientAuth::required}), client_context({.cert = "rogue"}));
  auto& [sctx, cctx, s, c] = p;
  (void)pump(c, s);
  EXPECT_EQ(s.error(), tls_errc::cert_invalid);
}

TEST_F(TlsEngine, MutualTlsOptional) {
  Context sctx = server_context({.client_auth = ClientAuth::optional});
  Context anon = client_context();
  Engine s = make_engine(sctx);
  Engine c = make_engine(anon, "localhost");
  ASSERT_FALSE(pump(c, s));
  EXPECT_FALSE(s.peer_verified());

  Context device = client_context({.cert = "client"});
  Engine s2 = make_engine(sctx);
  Engine c2 = make_engine(device, "localhost");
  ASSERT_FALSE(pump(c2, s2));
  EXPECT_TRUE(s2.peer_verified());

  Context rogue = client_context({.cert = "rogue"});
  Engine s3 = make_engine(sctx);
  Engine c3 = make_engine(rogue, "localhost");
  (void)pump(c3, s3);
  EXPECT_EQ(s3.error(), tls_errc::cert_invalid);
}

TEST_F(TlsEngine, GarbageInsteadOfClientHello) {
  Context sctx = server_context();
  Engine s = make_engine(sctx);
  Result<std::size_t> r = s.feed(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), tls_errc::handshake_failed);
  EXPECT_EQ(s.state(), State::failed);
  // Sticky: every later call says the same.
  std::array<std::byte, 64> out{};
  EXPECT_EQ(s.read(out).error(), tls_errc::handshake_failed);
  EXPECT_EQ(s.write(bytes("x")).error(), tls_errc::handshake_failed);
  EXPECT_EQ(s.feed(bytes("more")).error(), tls_errc::handshake_failed);
  EXPECT_FALSE(s.handshake_done());
}

TEST_F(TlsEngine, OversizedRecordDuringHandshake) {
  Context sctx = server_context();
  Engine s = make_engine(sctx);
  std::vector<std::byte> rec(5 + 100, std::byte{0});
  rec[0] = std::byte{22};
  rec[1] = std::byte{3};
  rec[2] = std::byte{1};
  rec[3] = std::byte{0xFF};
  rec[4] = std::byte{0xFF};
  Result<std::size_t> r = s.feed(rec);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error() == tls_errc::record_overflow || r.error() == tls_errc::handshake_failed)
      << r.error().message();
}

class Established : public TlsEngine {
 protected:
  void SetUp() override {
    TlsEngine::SetUp();
    if (IsSkipped()) {
      return;
    }
    sctx_.emplace(server_context());
    cctx_.emplace(client_context());
    s_.emplace(make_engine(*sctx_));
    c_.emplace(make_engine(*cctx_, "localhost"));
    std::string ignored;
    ASSERT_FALSE(pump(*c_, *s_, 1 << 20, &ignored, &ignored));
  }
  // One application record from the server, as ciphertext.
  std::vector<std::byte> record(std::string_view text) {
    EXPECT_EQ(s_->write(bytes(text)).value(), text.size());
    std::vector<std::byte> wire(4096);
    wire.resize(s_->take(wire));
    return wire;
  }
  std::optional<Context> sctx_;
  std::optional<Context> cctx_;
  std::optional<Engine> s_;
  std::optional<Engine> c_;
  std::array<std::byte, 4096> plain_{};
};

TEST_F(Established, TruncatedRecordWaitsForTheRest) {
  std::vector<std::byte> wire = record("hello");
  ASSERT_EQ(c_->feed(std::span<const std::byte>(wire).first(wire.size() - 1)).value(),
            wire.size() - 1);
  Result<std::size_t> r = c_->read(plain_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), 0U);  // need more, not an error
  EXPECT_EQ(c_->state(), State::established);
  ASSERT_TRUE(c_->feed(std::span<const std::byte>(wire).last(1)).ok());
  EXPECT_EQ(c_->read(plain_).value(), 5U);
}

TEST_F(Established, TamperedRecordIsBadRecord) {
  std::vector<std::byte> wire = record("hello");
  wire[wire.size() - 3] ^= std::byte{0x40};
  ASSERT_TRUE(c_->feed(wire).ok());
  Result<std::size_t> r = c_->read(plain_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), tls_errc::bad_record);
  EXPECT_EQ(c_->state(), State::failed);
  EXPECT_GT(c_->pending(), 0U);  // the bad_record_mac alert is there to send
}

TEST_F(Established, RecordShorterThanItsTagIsBadRecord) {
  const std::array<std::byte, 8> wire = {std::byte{23}, std::byte{3}, std::byte{3}, std::byte{0},
                                         std::byte{3},  std::byte{1}, std::byte{2}, std::byte{3}};
  ASSERT_TRUE(c_->feed(wire).ok());
  Result<std::size_t> r = c_->read(plain_);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error() == tls_errc::bad_record || r.error() == tls_errc::record_overflow)
      << r.error().message();
}

TEST_F(Established, OversizedRecordIsRecordOverflow) {
  std::vector<std::byte> wire(5 + 1024, std::byte{0x55});
  wire[0] = std::byte{23};
  wire[1] = std::byte{3};
  wire[2] = std::byte{3};
  wire[3] = std::byte{0xFF};  // 65535 > 2^14 + 2048
  wire[4] = std::byte{0xFF};
  Result<std::size_t> f = c_->feed(wire);
  Result<std::size_t> r = f.ok() ? c_->read(plain_) : std::move(f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), tls_errc::record_overflow) << r.error().message();
}

TEST_F(Established, FeedStopsAtTheBufferLimit) {
  std::vector<std::byte> big(kMaxBufferedIn + 1000, std::byte{0});
  // Valid records only: many small ones from the server.
  std::vector<std::byte> wire;
  while (wire.size() < big.size()) {
    std::vector<std::byte> r = record(pattern(1000));
    wire.insert(wire.end(), r.begin(), r.end());
  }
  Result<std::size_t> f = c_->feed(wire);
  ASSERT_TRUE(f.ok());
  EXPECT_LE(f.value(), kMaxBufferedIn);
  EXPECT_LT(f.value(), wire.size());
  std::size_t off = f.value();
  std::size_t got = 0;
  for (int i = 0; i < 1000 && (off < wire.size() || got % 1000 != 0 || got == 0); ++i) {
    Result<std::size_t> r = c_->read(plain_);
    ASSERT_TRUE(r.ok());
    got += r.value();
    if (r.value() == 0) {
      if (off == wire.size()) {
        break;
      }
      Result<std::size_t> g = c_->feed(std::span<const std::byte>(wire).subspan(off));
      ASSERT_TRUE(g.ok());
      off += g.value();
    }
  }
  EXPECT_EQ(off, wire.size());
  EXPECT_EQ(got % 1000, 0U);
  EXPECT_GT(got, 0U);
}

TEST_F(Established, CloseNotify) {
  c_->close();
  EXPECT_EQ(c_->state(), State::closed);
  EXPECT_EQ(c_->write(bytes("late")).error(), tls_errc::closed);
  std::string got;
  std::string ignored;
  ASSERT_FALSE(pump(*c_, *s_, 1 << 20, &ignored, &got));
  EXPECT_TRUE(s_->peer_closed());
  EXPECT_EQ(s_->state(), State::closed);
  EXPECT_EQ(s_->read(plain_).value(), 0U);
  EXPECT_EQ(s_->write(bytes("late")).error(), tls_errc::closed);
}

TEST_F(TlsEngine, SessionResumption) {
  Context sctx = server_context();
  Context cctx = client_context();
  {
    Engine s = make_engine(sctx);
    Engine c = make_engine(cctx, "localhost");
    ASSERT_FALSE(pump(c, s));
    // TLS 1.3 tickets come after the handshake: data both ways lets the client read them.
    EXPECT_EQ(send_all(s, c, "ticket?"), "ticket?");
    EXPECT_EQ(send_all(c, s, "ok"), "ok");
    EXPECT_FALSE(c.resumed());
    EXPECT_FALSE(s.resumed());
  }
  Engine s = make_engine(sctx);
  Engine c = make_engine(cctx, "localhost");
  ASSERT_FALSE(pump(c, s));
  EXPECT_TRUE(c.resumed());
  EXPECT_TRUE(s.resumed());
  EXPECT_EQ(send_all(c, s, "again"), "again");
  // A different name does not reuse that session.
  Engine s3 = make_engine(sctx);
  Engine c3 = make_engine(cctx);
  ASSERT_FALSE(pump(c3, s3));
  EXPECT_FALSE(c3.resumed());
}

TEST_F(TlsEngine, NoResumptionWithoutTickets) {
  Context sctx = server_context({.tickets = false});
  Context cctx = client_context({.tickets = false});
  for (int i = 0; i < 2; ++i) {
    Engine s = make_engine(sctx);
    Engine c = make_engine(cctx, "localhost");
    ASSERT_FALSE(pump(c, s));
    EXPECT_EQ(send_all(s, c, "x"), "x");
    EXPECT_FALSE(c.resumed()) << i;
    EXPECT_FALSE(s.resumed()) << i;
  }
}

#if WEFT_TLS_TEST_RAW_OPENSSL
TEST_F(TlsEngine, RenegotiationRefused) {
  const Certs& certs = Certs::get();
  Context sctx = server_context();
  Engine s = make_engine(sctx);
  RawPeer c(false, "", "", certs.file("ca.pem"), TLS1_2_VERSION);
  ASSERT_FALSE(pump(c, s));
  ASSERT_TRUE(c.done());
  ASSERT_EQ(s.version(), Version::tls12);
  EXPECT_EQ(send_all(c, s, "before"), "before");
  ASSERT_TRUE(c.renegotiate());
  std::error_code ec = pump(c, s);
  EXPECT_EQ(ec, tls_errc::renegotiation_refused);
  EXPECT_EQ(s.state(), State::failed);
  EXPECT_EQ(s.error(), tls_errc::renegotiation_refused);
}
#endif

TEST_F(TlsEngine, BadConfig) {
  Config c;
  c.cert_chain_file = "/nonexistent/chain.pem";
  c.key_file = "/nonexistent/key.pem";
  EXPECT_EQ(Context::create(c).error(), tls_errc::bad_config);
  Config no_cert;  // a server needs a certificate
  EXPECT_EQ(Context::create(no_cert).error(), tls_errc::bad_config);
  // A key that is not the certificate's.
  const std::string chain = Certs::get().file("server.pem");
  const std::string key = Certs::get().file("client.key");
  Config mismatch;
  mismatch.cert_chain_file = chain.c_str();
  mismatch.key_file = key.c_str();
  EXPECT_EQ(Context::create(mismatch).error(), tls_errc::bad_config);
  Config client;  // verify_peer without a CA file
  client.role = Role::client;
  EXPECT_EQ(Context::create(client).error(), tls_errc::bad_config);
  const std::array<std::string_view, 1> empty_name = {""};
  Config alpn;
  alpn.role = Role::client;
  alpn.verify_peer = false;
  alpn.alpn = empty_name;
  EXPECT_EQ(Context::create(alpn).error(), tls_errc::bad_config);
}

TEST_F(TlsEngine, Errors) {
  EXPECT_STREQ(tls_category().name(), "weft.tls");
  EXPECT_EQ(std::error_code(tls_errc::alpn_mismatch).message(), "no ALPN protocol in common");
  EXPECT_TRUE(is_connection_fatal(tls_errc::bad_record));
  EXPECT_FALSE(is_connection_fatal(tls_errc::bad_config));
  EXPECT_STREQ(to_string(static_cast<tls_errc>(999)), "unknown weft.tls error");
}

}  // namespace
}  // namespace weft::tls::test

namespace weft::tls::test {
namespace {

// write() takes a bounded amount per call and nothing while the output is full: the caller
// sees back-pressure, and the Engine's buffered ciphertext stays bounded.
TEST_F(TlsEngine, WriteBackPressure) {
  Pair p(server_context(), client_context());
  auto& [sctx, cctx, s, c] = p;
  std::string ignored;
  ASSERT_FALSE(pump(c, s, 1 << 20, &ignored, &ignored));
  const std::string big(4 << 20, 'b');
  std::size_t taken = 0;
  int zero_writes = 0;
  for (int i = 0; i < 1000 && zero_writes == 0; ++i) {
    Result<std::size_t> w = c.write(bytes(std::string_view(big).substr(taken)));
    ASSERT_TRUE(w.ok());
    taken += w.value();
    zero_writes += w.value() == 0 ? 1 : 0;
    EXPECT_LE(c.pending(), 128U * 1024U);
  }
  EXPECT_EQ(zero_writes, 1) << "write() stops taking while the output is full";
  EXPECT_LT(taken, big.size());
  EXPECT_GT(taken, 0U);
  // Draining the output lets writing go on.
  std::string got;
  ASSERT_FALSE(pump(c, s, 1 << 20, &ignored, &got));
  EXPECT_EQ(got.size(), taken);
  EXPECT_GT(c.write(bytes("more")).value(), 0U);
}

}  // namespace
}  // namespace weft::tls::test

namespace weft::tls::test {
namespace {

// The first flight of each side, fed in two pieces at every split point, each time on a fresh
// pair: the client's ClientHello into the server, then the server's whole first flight
// (ServerHello ... Finished or ServerHelloDone) into the client; with a client that never
// resumes (full handshakes) and one that does (abbreviated ones).
TEST_F(TlsEngine, HandshakeFlightsAtEverySplit) {
  Context sctx = server_context();
  Context full = client_context({.tickets = false});  // every handshake a full one
  Context resuming = client_context();                // resumes after its first
  std::vector<std::byte> wire(64 * 1024);
  for (int flight = 0; flight < 4; ++flight) {
    const Context& cctx = flight < 2 ? full : resuming;
    std::size_t total = 0;
    // The full server flight (certificate and all) costs a full handshake per split: every
    // split within 32 bytes of either end, every 4th in between (mbedTLS debug: ~4 s).
    const bool sparse = flight == 1;
    for (std::size_t split = 0; split == 0 || split <= total;
         split += (sparse && split >= 32 && split + 32 < total) ? 4 : 1) {
      Engine s = make_engine(sctx);
      Engine c = make_engine(cctx, "localhost");
      Engine& from = flight % 2 == 0 ? c : s;
      Engine& to = flight % 2 == 0 ? s : c;
      if (flight % 2 == 1) {  // the ClientHello goes over whole
        const std::size_t n = c.take(wire);
        ASSERT_EQ(s.feed(std::span<const std::byte>(wire).first(n)).value(), n);
      }
      total = from.take(wire);  // varies by a byte or two (ECDSA signature length)
      ASSERT_GT(total, 0U);
      if (split > total) {
        break;
      }
      ASSERT_EQ(to.feed(std::span<const std::byte>(wire).first(split)).value(), split);
      if (split < total) {
        ASSERT_EQ(to.state(), State::handshaking) << "flight " << flight << " split " << split;
      }
      ASSERT_EQ(to.feed(std::span<const std::byte>(wire).subspan(split, total - split)).value(),
                total - split);
      ASSERT_FALSE(pump(c, s)) << "flight " << flight << " split " << split;
      ASSERT_EQ(c.state(), State::established);
      ASSERT_EQ(s.state(), State::established);
    }
  }
}

}  // namespace
}  // namespace weft::tls::test
