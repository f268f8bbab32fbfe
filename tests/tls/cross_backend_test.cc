// weft's OpenSSL Engine against weft's mbedTLS Engine, both ways, in one program (each backend
// in its own inline namespace; backend_peer.h hides which is which). TLS 1.2, since mbedTLS
// 2.28 has no 1.3: handshake, data, ALPN, SNI, mutual TLS, resumption, refusals.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "backend_peer.h"
#include "pump.h"
#include "temp_dir.h"

namespace weft::tls::cross {
namespace {

using test::pump;
using test::send_all;

class CrossBackend : public ::testing::TestWithParam<bool> {  // true: OpenSSL client
 protected:
  static void SetUpTestSuite() {
    dir_ = new weft::test::TempDir;
    const std::string cmd =
        std::string(WEFT_MAKE_TEST_CERTS) + " " + dir_->path() + " >/dev/null 2>&1";
    certs_ok_ = dir_->ok() && std::system(cmd.c_str()) == 0;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!certs_ok_) {
      GTEST_SKIP() << "scripts/make-test-certs.sh failed";
    }
  }
  static std::string file(const char* name) { return dir_->file(name); }

  std::unique_ptr<Side> server(SideConfig c) {
    c.server = true;
    c.cert = file("server.pem");
    c.key = file("server.key");
    c.ca = file("ca.pem");
    return GetParam() ? make_mbedtls_side(c) : make_openssl_side(c);
  }
  std::unique_ptr<Side> client(SideConfig c) {
    c.server = false;
    c.ca = file("ca.pem");
    return GetParam() ? make_openssl_side(c) : make_mbedtls_side(c);
  }

  static weft::test::TempDir* dir_;
  static bool certs_ok_;
};
weft::test::TempDir* CrossBackend::dir_ = nullptr;
bool CrossBackend::certs_ok_ = false;

TEST_P(CrossBackend, HandshakeDataAlpnSni) {
  auto s_side = server({.alpn = {"weft", "http/1.1"}});
  auto c_side = client({.alpn = {"http/1.1", "weft"}});
  ASSERT_TRUE(s_side && c_side);
  EXPECT_STRNE(s_side->backend(), c_side->backend());
  auto s = s_side->connect(nullptr);
  auto c = c_side->connect("localhost");
  ASSERT_FALSE(pump(*c, *s));
  ASSERT_TRUE(c->established() && s->established());
  EXPECT_FALSE(c->tls13());
  EXPECT_TRUE(c->peer_verified());
  EXPECT_EQ(s->alpn(), "weft");
  EXPECT_EQ(c->alpn(), "weft");
  EXPECT_EQ(s->server_name(), "localhost");
  for (std::size_t n : {1UL, 16384UL, 16385UL, 200000UL}) {
    const std::string data(n, static_cast<char>('a' + n % 26));
    EXPECT_EQ(send_all(*c, *s, data), data) << n;
    EXPECT_EQ(send_all(*s, *c, data), data) << n;
  }
  EXPECT_EQ(send_all(*c, *s, "byte by byte", 1), "byte by byte");
}

TEST_P(CrossBackend, MutualTlsAndResumption) {
  auto s_side = server({.require_client = true});
  auto c_side = client({});
  SideConfig device;
  device.cert = file("client.pem");
  device.key = file("client.key");
  auto d_side = client(device);
  ASSERT_TRUE(s_side && c_side && d_side);
  // Without a certificate: refused.
  auto s0 = s_side->connect(nullptr);
  auto c0 = c_side->connect("localhost");
  (void)pump(*c0, *s0);
  EXPECT_EQ(s0->error(), tls_errc::peer_cert_required);
  EXPECT_FALSE(c0->established());
  // With one: accepted, then resumed.
  for (int i = 0; i < 2; ++i) {
    auto s = s_side->connect(nullptr);
    auto c = d_side->connect("localhost");
    ASSERT_FALSE(pump(*c, *s)) << i;
    EXPECT_TRUE(s->peer_verified()) << i;
    EXPECT_EQ(send_all(*c, *s, "hello"), "hello");
    EXPECT_EQ(c->resumed(), i == 1);
    EXPECT_EQ(s->resumed(), i == 1);
  }
}

TEST_P(CrossBackend, AlpnMismatch) {
  auto s_side = server({.alpn = {"weft"}});
  auto c_side = client({.alpn = {"h2"}});
  ASSERT_TRUE(s_side && c_side);
  auto s = s_side->connect(nullptr);
  auto c = c_side->connect("localhost");
  EXPECT_EQ(pump(*c, *s), tls_errc::alpn_mismatch);
  EXPECT_EQ(s->error(), tls_errc::alpn_mismatch);
  EXPECT_EQ(c->error(), tls_errc::alpn_mismatch);
}

INSTANTIATE_TEST_SUITE_P(Pairs, CrossBackend, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? std::string("OpenSslClientMbedTlsServer")
                                          : std::string("MbedTlsClientOpenSslServer");
                         });

}  // namespace
}  // namespace weft::tls::cross
