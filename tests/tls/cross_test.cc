// The Engine against a peer written directly on OpenSSL (raw_openssl.h), both directions.
// In weft_tls_mbedtls_test this is the cross-backend test (an OpenSSL client against the
// mbedTLS server and back, TLS 1.2); in weft_tls_openssl_test it checks the Engine against a
// default-configured OpenSSL peer (TLS 1.3 unless capped).
#include <gtest/gtest.h>

#include <string>

#include <weft/tls/tls.h>

#include "raw_openssl.h"
#include "tls_test.h"

namespace weft::tls::test {
namespace {

class Interop : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (!Certs::get().ok()) {
      GTEST_SKIP() << "scripts/make-test-certs.sh failed (openssl command missing?)";
    }
  }
  // The version the pair should agree on.
  [[nodiscard]] Version expected() const {
    return GetParam() == TLS1_3_VERSION && backend() == Backend::openssl ? Version::tls13
                                                                         : Version::tls12;
  }
};

TEST_P(Interop, OpenSslClientToEngineServer) {
  const Certs& certs = Certs::get();
  Context sctx = server_context();
  Engine s = make_engine(sctx);
  RawPeer c(false, "", "", certs.file("ca.pem"), GetParam());
  ASSERT_FALSE(pump(c, s));
  ASSERT_TRUE(c.done());
  EXPECT_EQ(s.version(), expected());
  EXPECT_EQ(s.server_name(), "localhost");
  for (std::size_t n : {1UL, 5000UL, 70000UL}) {
    const std::string data(n, 'q');
    EXPECT_EQ(send_all(c, s, data), data);
    EXPECT_EQ(send_all(s, c, data), data);
  }
}

TEST_P(Interop, EngineClientToOpenSslServer) {
  const Certs& certs = Certs::get();
  RawPeer s(true, certs.file("server.pem"), certs.file("server.key"), "", GetParam());
  Context cctx = client_context();
  Engine c = make_engine(cctx, "localhost");
  ASSERT_FALSE(pump(c, s));
  ASSERT_TRUE(c.handshake_done());
  EXPECT_TRUE(c.peer_verified());
  EXPECT_EQ(c.version(), expected());
  EXPECT_EQ(send_all(c, s, "from the engine"), "from the engine");
  EXPECT_EQ(send_all(s, c, "from openssl"), "from openssl");
}

INSTANTIATE_TEST_SUITE_P(Versions, Interop, ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return i.param == TLS1_2_VERSION ? std::string("Tls12")
                                                            : std::string("Tls13");
                         });

}  // namespace
}  // namespace weft::tls::test
