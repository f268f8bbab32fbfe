// The OpenSSL backend's per-context and per-connection state (private to weft_tls_openssl).
#pragma once

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <mutex>
#include <system_error>

#include <weft/tls/ktls.h>
#include <weft/tls/tls.h>

namespace weft::tls {
inline namespace WEFT_TLS_NS {
namespace detail {

// TLS 1.2: ECDHE with AEAD only; TLS 1.3: every suite is AEAD (CCM left out).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
// Past this much unsent ciphertext write() takes nothing (back-pressure, not an error).
constexpr std::size_t kMaxPendingOut = 64 * 1024;
constexpr std::size_t kMaxName = 255;

struct ContextImpl {
  SSL_CTX* ctx = nullptr;
  Role role = Role::server;
  bool alpn_strict = true;
  std::array<unsigned char, kMaxAlpn * 256> alpn{};  // wire format: len-prefixed names
  unsigned alpn_len = 0;
  // Client session cache: the most recent session and the name it was made for.
  std::mutex mutex;
  SSL_SESSION* session = nullptr;
  std::array<char, kMaxName + 1> session_name{};

  ~ContextImpl() {
    SSL_SESSION_free(session);
    SSL_CTX_free(ctx);
  }
};

struct EngineImpl {
  ContextImpl* ctx = nullptr;
  SSL* ssl = nullptr;
  BIO* rbio = nullptr;
  BIO* wbio = nullptr;
  State state = State::handshaking;
  std::error_code error;
  bool peer_closed = false;
  bool close_sent = false;
  bool alpn_failed = false;
  bool renegotiation = false;
  std::array<char, kMaxName + 1> name{};  // client: SNI it sent
  // kTLS: records since the current keys of each direction took effect, and the TLS 1.3
  // application traffic secrets (from the keylog callback).
  std::uint64_t tx_seq = 0;
  std::uint64_t rx_seq = 0;
  std::array<unsigned char, EVP_MAX_MD_SIZE> client_secret{};
  std::array<unsigned char, EVP_MAX_MD_SIZE> server_secret{};
  std::size_t secret_len = 0;
  // take() follows the outgoing records: TLS 1.2 AES-GCM sends an explicit nonce, which
  // OpenSSL counts up from a random start; the kernel must go on from the last one.
  std::array<unsigned char, 5> out_header{};
  std::size_t out_header_got = 0;
  std::size_t out_body_left = 0;
  std::size_t out_body_pos = 0;
  bool out_encrypted = false;  // own ChangeCipherSpec sent: records carry explicit nonces
  std::array<unsigned char, 8> out_nonce{};
  std::array<unsigned char, 8> last_out_nonce{};
  bool have_out_nonce = false;

  void on_sent(const unsigned char* p, std::size_t n) noexcept;

  ~EngineImpl() {
    // OpenSSL marks the session of a connection freed without close_notify not resumable;
    // RFC 5246 §7.2.1 no longer asks for that, and sockets are often just closed. A failed
    // connection keeps OpenSSL's rule.
    if (ssl != nullptr && state != State::failed && SSL_is_init_finished(ssl) != 0) {
      SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }
    SSL_free(ssl);  // frees both BIOs
    OPENSSL_cleanse(client_secret.data(), client_secret.size());
    OPENSSL_cleanse(server_secret.data(), server_secret.size());
  }
};

inline void EngineImpl::on_sent(const unsigned char* p, std::size_t n) noexcept {
  while (n > 0) {
    if (out_header_got < out_header.size()) {
      out_header[out_header_got++] = *p++;
      --n;
      if (out_header_got == out_header.size()) {
        out_body_left = (std::size_t{out_header[3]} << 8) | out_header[4];
        out_body_pos = 0;
        if (out_body_left == 0) {
          out_header_got = 0;
        }
      }
      continue;
    }
    const std::size_t take = std::min(n, out_body_left);
    if (out_encrypted) {
      for (std::size_t i = 0; i < take && out_body_pos + i < out_nonce.size(); ++i) {
        out_nonce[out_body_pos + i] = p[i];
      }
      if (out_body_pos < out_nonce.size() && out_body_pos + take >= out_nonce.size()) {
        last_out_nonce = out_nonce;
        have_out_nonce = true;
      }
    }
    out_body_pos += take;
    out_body_left -= take;
    p += take;
    n -= take;
    if (out_body_left == 0) {
      out_header_got = 0;
      if (out_header[0] == SSL3_RT_CHANGE_CIPHER_SPEC) {
        out_encrypted = true;
      }
    }
  }
}

}  // namespace detail
}  // namespace WEFT_TLS_NS
}  // namespace weft::tls
