// kTLS: the probe (this machine's kernel may have no tls ULP: then the reason is checked), and
// the OpenSSL backend's key export, proved without the kernel: a record the Engine wrote is
// decrypted with nothing but the exported struct, the way the kernel would (RFC 5288 nonce
// and AAD for TLS 1.2, RFC 8446 §5.3 per-record nonce for TLS 1.3).
#include <openssl/evp.h>

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <weft/tls/ktls.h>
#include <weft/tls/tls.h>

#include "tls_test.h"

namespace weft::tls::test {
namespace {

TEST(Ktls, ProbeGivesAReason) {
  KtlsProbe p = ktls_probe();
  ASSERT_NE(p.reason, nullptr);
  EXPECT_GT(std::strlen(p.reason), 0U);
  std::ifstream f("/proc/sys/net/ipv4/tcp_available_ulp");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string ulps = ss.str();
  std::cout << "ktls_probe: available=" << p.available << " reason=\"" << p.reason
            << "\" tcp_available_ulp=\"" << ulps << "\"\n";
  if (p.available) {
    EXPECT_STREQ(p.reason, "tls ULP available");
  } else {
    EXPECT_STRNE(p.reason, "tls ULP available");
    // When the probe says no, the kernel's own list does not offer tls either (the probe may
    // have loaded the module, so only this direction holds).
    EXPECT_EQ((" " + ulps + " ").find(" tls "), std::string::npos) << ulps;
  }
}

struct Aead {
  const EVP_CIPHER* cipher;
  std::vector<unsigned char> key;
  std::array<unsigned char, 4> salt;
  std::array<unsigned char, 8> iv;
  std::array<unsigned char, 8> seq;
};

Aead aead_of(const KtlsKeys& k) {
  Aead a{};
  if (k.info.cipher_type == TLS_CIPHER_AES_GCM_128) {
    a.cipher = EVP_aes_128_gcm();
    a.key.assign(k.gcm128.key, k.gcm128.key + sizeof k.gcm128.key);
    std::memcpy(a.salt.data(), k.gcm128.salt, 4);
    std::memcpy(a.iv.data(), k.gcm128.iv, 8);
    std::memcpy(a.seq.data(), k.gcm128.rec_seq, 8);
  } else {
    a.cipher = EVP_aes_256_gcm();
    a.key.assign(k.gcm256.key, k.gcm256.key + sizeof k.gcm256.key);
    std::memcpy(a.salt.data(), k.gcm256.salt, 4);
    std::memcpy(a.iv.data(), k.gcm256.iv, 8);
    std::memcpy(a.seq.data(), k.gcm256.rec_seq, 8);
  }
  return a;
}

bool gcm_open(const Aead& a, const unsigned char* nonce, const unsigned char* aad,
              std::size_t aad_len, const unsigned char* ct, std::size_t ct_len,
              const unsigned char* tag, std::string& out) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  out.assign(ct_len, '\0');
  int len = 0;
  bool ok =
      EVP_DecryptInit_ex(ctx, a.cipher, nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) == 1 &&
      EVP_DecryptInit_ex(ctx, nullptr, nullptr, a.key.data(), nonce) == 1 &&
      EVP_DecryptUpdate(ctx, nullptr, &len, aad, static_cast<int>(aad_len)) == 1 &&
      EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len, ct,
                        static_cast<int>(ct_len)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, const_cast<unsigned char*>(tag)) == 1 &&
      EVP_DecryptFinal_ex(ctx, nullptr, &len) == 1;
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

// Decrypts one application-data record with the exported keys, as the kernel would.
std::string open_record(const KtlsKeys& k, const std::vector<std::byte>& rec_bytes) {
  const auto* rec = reinterpret_cast<const unsigned char*>(rec_bytes.data());
  const std::size_t len = (std::size_t{rec[3]} << 8) | rec[4];
  EXPECT_EQ(rec_bytes.size(), 5 + len) << "one record expected";
  const Aead a = aead_of(k);
  std::array<unsigned char, 12> nonce{};
  std::string out;
  if (k.info.version == TLS_1_3_VERSION) {
    std::memcpy(nonce.data(), a.salt.data(), 4);
    std::memcpy(nonce.data() + 4, a.iv.data(), 8);
    for (int i = 0; i < 8; ++i) {
      nonce[4 + i] ^= a.seq[i];
    }
    if (!gcm_open(a, nonce.data(), rec, 5, rec + 5, len - 16, rec + 5 + len - 16, out)) {
      return "<decrypt failed>";
    }
    // TLSInnerPlaintext: content, type, zero padding.
    while (!out.empty() && out.back() == '\0') {
      out.pop_back();
    }
    EXPECT_FALSE(out.empty());
    EXPECT_EQ(out.back(), '\x17');
    out.pop_back();
    return out;
  }
  // TLS 1.2 (RFC 5288): the kernel sends its iv as the next explicit nonce, and so does
  // OpenSSL (its counter goes on from there).
  EXPECT_EQ(std::memcmp(rec + 5, a.iv.data(), 8), 0);
  std::memcpy(nonce.data(), a.salt.data(), 4);
  std::memcpy(nonce.data() + 4, rec + 5, 8);
  const std::size_t plain_len = len - 8 - 16;
  std::array<unsigned char, 13> aad{};
  std::memcpy(aad.data(), a.seq.data(), 8);
  aad[8] = rec[0];
  aad[9] = rec[1];
  aad[10] = rec[2];
  aad[11] = static_cast<unsigned char>(plain_len >> 8);
  aad[12] = static_cast<unsigned char>(plain_len);
  if (!gcm_open(a, nonce.data(), aad.data(), aad.size(), rec + 13, plain_len, rec + 13 + plain_len,
                out)) {
    return "<decrypt failed>";
  }
  return out;
}

class KtlsKeysTest : public ::testing::TestWithParam<Version> {
 protected:
  void SetUp() override {
    if (!Certs::get().ok()) {
      GTEST_SKIP() << "scripts/make-test-certs.sh failed (openssl command missing?)";
    }
  }
};

std::vector<std::byte> take_all(Engine& e) {
  std::vector<std::byte> out(64 * 1024);
  out.resize(e.take(out));
  return out;
}

TEST_P(KtlsKeysTest, ExportedKeysDecryptTheEnginesRecords) {
  Context sctx = server_context({.max_version = GetParam()});
  Context cctx = client_context();
  Engine s = make_engine(sctx);
  Engine c = make_engine(cctx, "localhost");
  EXPECT_EQ(ktls_keys(c, Direction::tx).error(), tls_errc::not_ready);
  ASSERT_FALSE(pump(c, s));
  if (backend() == Backend::mbedtls) {
    EXPECT_EQ(ktls_keys(s, Direction::tx).error(), tls_errc::unsupported);
    return;
  }
  // Some records first, so the sequence numbers are not where they started.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(send_all(s, c, "warm-up"), "warm-up");
    EXPECT_EQ(send_all(c, s, "warm-up"), "warm-up");
  }
  for (Direction d : {Direction::tx, Direction::rx}) {
    Engine& writer = d == Direction::tx ? s : c;
    Engine& reader = d == Direction::tx ? c : s;
    Result<KtlsKeys> wk = ktls_keys(writer, Direction::tx);
    Result<KtlsKeys> rk = ktls_keys(reader, Direction::rx);
    ASSERT_TRUE(wk.ok()) << wk.error().message();
    ASSERT_TRUE(rk.ok()) << rk.error().message();
    EXPECT_EQ(wk->info.version, GetParam() == Version::tls13 ? TLS_1_3_VERSION : TLS_1_2_VERSION);
    ASSERT_EQ(wk->size, rk->size);
    const Aead wa = aead_of(wk.value());
    const Aead ra = aead_of(rk.value());
    EXPECT_EQ(wa.key, ra.key) << "the writer's tx key is the reader's rx key";
    EXPECT_EQ(wa.salt, ra.salt);
    EXPECT_EQ(wa.seq, ra.seq) << "both count the same records";
    EXPECT_NE(wa.seq, (std::array<unsigned char, 8>{})) << "records were counted";
    const std::string text = d == Direction::tx ? "to the kernel" : "from the client";
    ASSERT_EQ(writer.write(bytes(text)).value(), text.size());
    std::vector<std::byte> rec = take_all(writer);
    EXPECT_EQ(open_record(wk.value(), rec), text);
    // The reader still decrypts it too (the Engine is not disturbed by the export).
    ASSERT_TRUE(reader.feed(rec).ok());
    std::array<std::byte, 256> plain{};
    EXPECT_EQ(reader.read(plain).value(), text.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, KtlsKeysTest, ::testing::Values(Version::tls12, Version::tls13),
                         [](const ::testing::TestParamInfo<Version>& i) {
                           return i.param == Version::tls12 ? std::string("Tls12")
                                                            : std::string("Tls13");
                         });

}  // namespace
}  // namespace weft::tls::test
