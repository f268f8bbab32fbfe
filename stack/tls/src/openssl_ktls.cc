// ktls_keys() for the OpenSSL backend. OpenSSL 3.0 exposes no traffic keys, so they are
// derived here from what it does expose: the TLS 1.2 master secret with both randoms (RFC 5246
// §6.3 key block, RFC 5288 AES-GCM nonce), the TLS 1.3 application traffic secrets from the
// keylog callback (RFC 8446 §7.3 HKDF-Expand-Label "key"/"iv").
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/ssl.h>

#include <array>
#include <cstring>

#include "openssl_impl.h"

namespace weft::tls {
inline namespace WEFT_TLS_NS {
namespace {

struct Suite {
  unsigned key_len = 0;
  const char* digest = nullptr;
};

bool suite_of(const SSL* ssl, Suite& s) noexcept {
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl);
  if (c == nullptr) {
    return false;
  }
  switch (SSL_CIPHER_get_id(c) & 0xFFFF) {
    case 0x1301:  // TLS_AES_128_GCM_SHA256
    case 0xC02B:  // ECDHE-ECDSA-AES128-GCM-SHA256
    case 0xC02F:  // ECDHE-RSA-AES128-GCM-SHA256
      s = {16, "SHA256"};
      return true;
    case 0x1302:  // TLS_AES_256_GCM_SHA384
    case 0xC02C:
    case 0xC030:
      s = {32, "SHA384"};
      return true;
    default:
      return false;
  }
}

bool kdf(const char* name, OSSL_PARAM* params, unsigned char* out, std::size_t len) noexcept {
  EVP_KDF* k = EVP_KDF_fetch(nullptr, name, nullptr);
  if (k == nullptr) {
    return false;
  }
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(k);
  EVP_KDF_free(k);
  if (ctx == nullptr) {
    return false;
  }
  const bool ok = EVP_KDF_derive(ctx, out, len, params) == 1;
  EVP_KDF_CTX_free(ctx);
  return ok;
}

// RFC 8446 §7.1 HKDF-Expand-Label(secret, label, "", len).
bool expand_label(const char* digest, const unsigned char* secret, std::size_t secret_len,
                  const char* label, unsigned char* out, std::size_t len) noexcept {
  std::array<unsigned char, 64> info{};
  const std::size_t label_len = std::strlen(label);
  std::size_t n = 0;
  info[n++] = static_cast<unsigned char>(len >> 8);
  info[n++] = static_cast<unsigned char>(len);
  info[n++] = static_cast<unsigned char>(6 + label_len);
  std::memcpy(info.data() + n, "tls13 ", 6);
  n += 6;
  std::memcpy(info.data() + n, label, label_len);
  n += label_len;
  info[n++] = 0;  // empty context
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  std::array<OSSL_PARAM, 5> params = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<unsigned char*>(secret),
                                        secret_len),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), n),
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode), OSSL_PARAM_construct_end()};
  return kdf("HKDF", params.data(), out, len);
}

void put_seq(unsigned char* out, std::uint64_t seq) noexcept {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<unsigned char>(seq);
    seq >>= 8;
  }
}

// Fills the struct for one direction: key, 4-byte salt, 8-byte iv, 8-byte record sequence.
template <class Info>
void fill(Info& info, unsigned version, unsigned cipher, const unsigned char* key,
          const unsigned char* salt, const unsigned char* iv8, std::uint64_t seq) noexcept {
  info.info.version = static_cast<std::uint16_t>(version);
  info.info.cipher_type = static_cast<std::uint16_t>(cipher);
  std::memcpy(info.key, key, sizeof info.key);
  std::memcpy(info.salt, salt, sizeof info.salt);
  std::memcpy(info.iv, iv8, sizeof info.iv);
  put_seq(info.rec_seq, seq);
}

}  // namespace

Result<KtlsKeys> ktls_keys(const Engine& engine, Direction dir) noexcept {
  detail::EngineImpl& e = *engine.impl();
  // Everything OpenSSL encrypted must have been taken: the kernel continues after it.
  if (e.state != State::established || BIO_ctrl_pending(e.wbio) != 0) {
    return fail(tls_errc::not_ready);
  }
  Suite suite;
  if (!suite_of(e.ssl, suite)) {
    return fail(tls_errc::unsupported);
  }
  const bool server = e.ctx->role == Role::server;
  // Whose write keys: tx is our own side's, rx the peer's.
  const bool client_keys = (dir == Direction::tx) != server;
  const std::uint64_t seq = dir == Direction::tx ? e.tx_seq : e.rx_seq;
  std::array<unsigned char, 32> key{};
  std::array<unsigned char, 12> iv{};
  KtlsKeys out;
  const unsigned cipher = suite.key_len == 16 ? TLS_CIPHER_AES_GCM_128 : TLS_CIPHER_AES_GCM_256;
  unsigned version = TLS_1_2_VERSION;
  if (SSL_version(e.ssl) == TLS1_3_VERSION) {
    version = TLS_1_3_VERSION;
    const unsigned char* secret = client_keys ? e.client_secret.data() : e.server_secret.data();
    if (e.secret_len == 0 ||
        !expand_label(suite.digest, secret, e.secret_len, "key", key.data(), suite.key_len) ||
        !expand_label(suite.digest, secret, e.secret_len, "iv", iv.data(), iv.size())) {
      return fail(tls_errc::internal);
    }
  } else {
    // key_block = PRF(master, "key expansion", server_random + client_random): for AEAD
    // suites client_write_key | server_write_key | client_write_IV[4] | server_write_IV[4].
    std::array<unsigned char, 48> master{};
    std::array<unsigned char, 13 + 2 * SSL3_RANDOM_SIZE> seed{};
    std::memcpy(seed.data(), "key expansion", 13);
    if (SSL_SESSION_get_master_key(SSL_get_session(e.ssl), master.data(), master.size()) !=
            master.size() ||
        SSL_get_server_random(e.ssl, seed.data() + 13, SSL3_RANDOM_SIZE) != SSL3_RANDOM_SIZE ||
        SSL_get_client_random(e.ssl, seed.data() + 13 + SSL3_RANDOM_SIZE, SSL3_RANDOM_SIZE) !=
            SSL3_RANDOM_SIZE) {
      return fail(tls_errc::internal);
    }
    std::array<unsigned char, 2 * 32 + 2 * 4> block{};
    const std::size_t block_len = 2 * suite.key_len + 8;
    std::array<OSSL_PARAM, 4> params = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(suite.digest), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, master.data(), master.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed.data(), seed.size()),
        OSSL_PARAM_construct_end()};
    const bool ok = kdf("TLS1-PRF", params.data(), block.data(), block_len);
    OPENSSL_cleanse(master.data(), master.size());
    if (!ok) {
      return fail(tls_errc::internal);
    }
    const std::size_t k = suite.key_len;
    std::memcpy(key.data(), block.data() + (client_keys ? 0 : k), k);
    std::memcpy(iv.data(), block.data() + 2 * k + (client_keys ? 0 : 4), 4);
    // RFC 5288 §3: the explicit nonce only has to be unique per key. The kernel sends iv as
    // the next one and counts up; OpenSSL counts up from a random start, so tx goes on from
    // the last nonce it sent (rx: the kernel reads each record's own nonce).
    if (dir == Direction::tx && e.have_out_nonce) {
      std::memcpy(iv.data() + 4, e.last_out_nonce.data(), 8);
      for (int i = 11; i >= 4; --i) {
        if (++iv[static_cast<std::size_t>(i)] != 0) {
          break;
        }
      }
    } else {
      put_seq(iv.data() + 4, seq);
    }
    OPENSSL_cleanse(block.data(), block.size());
  }
  if (suite.key_len == 16) {
    fill(out.gcm128, version, cipher, key.data(), iv.data(), iv.data() + 4, seq);
    out.size = sizeof out.gcm128;
  } else {
    fill(out.gcm256, version, cipher, key.data(), iv.data(), iv.data() + 4, seq);
    out.size = sizeof out.gcm256;
  }
  OPENSSL_cleanse(key.data(), key.size());
  OPENSSL_cleanse(iv.data(), iv.size());
  return out;
}

}  // namespace WEFT_TLS_NS
}  // namespace weft::tls
