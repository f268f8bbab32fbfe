// A TLS peer written directly against OpenSSL (memory BIOs), with the Engine's call shapes so
// pump() drives it: the "other implementation" for cross-backend tests, and the client that
// attempts a renegotiation (SSL_renegotiate), which the Engine API cannot do on purpose.
#pragma once

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstddef>
#include <span>
#include <string>

#include <weft/base/result.h>
#include <weft/tls/error.h>

namespace weft::tls::test {

class RawPeer {
 public:
  // server: cert/key required; client: ca verifies the server when non-empty.
  RawPeer(bool server, const std::string& cert, const std::string& key, const std::string& ca,
          int max_version = TLS1_2_VERSION) {
    ctx_ = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx_, max_version);
    if (!cert.empty()) {
      SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str());
      SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM);
    }
    if (!ca.empty()) {
      SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr);
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    }
    ssl_ = SSL_new(ctx_);
    BIO* r = BIO_new(BIO_s_mem());
    BIO* w = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(r, -1);
    BIO_set_mem_eof_return(w, -1);
    SSL_set_bio(ssl_, r, w);
    rbio_ = r;
    wbio_ = w;
    if (server) {
      SSL_set_accept_state(ssl_);
    } else {
      SSL_set_connect_state(ssl_);
      SSL_set_tlsext_host_name(ssl_, "localhost");
      SSL_do_handshake(ssl_);  // queue the ClientHello
    }
  }
  ~RawPeer() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  RawPeer(const RawPeer&) = delete;
  RawPeer& operator=(const RawPeer&) = delete;

  std::size_t take(std::span<std::byte> out) {
    int n = BIO_read(wbio_, out.data(), static_cast<int>(out.size()));
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  Result<std::size_t> feed(std::span<const std::byte> in) {
    BIO_write(rbio_, in.data(), static_cast<int>(in.size()));
    if (SSL_is_init_finished(ssl_) == 0 || renegotiating_) {
      int r = SSL_do_handshake(ssl_);
      if (r != 1 && !retry(r)) {
        return fail(tls_errc::handshake_failed);
      }
      if (r == 1) {
        renegotiating_ = false;
      }
    }
    return in.size();
  }
  Result<std::size_t> read(std::span<std::byte> out) {
    if (SSL_is_init_finished(ssl_) == 0) {
      return std::size_t{0};
    }
    std::size_t got = 0;
    int r = SSL_read_ex(ssl_, out.data(), out.size(), &got);
    if (r == 1) {
      return got;
    }
    if (retry(r) || SSL_get_error(ssl_, r) == SSL_ERROR_ZERO_RETURN) {
      return std::size_t{0};
    }
    return fail(tls_errc::bad_record);
  }
  Result<std::size_t> write(std::span<const std::byte> in) {
    std::size_t n = 0;
    if (SSL_write_ex(ssl_, in.data(), in.size(), &n) != 1) {
      return fail(tls_errc::bad_record);
    }
    return n;
  }
  // TLS 1.2 only: start a renegotiation (queues a new ClientHello).
  bool renegotiate() {
    renegotiating_ = true;
    return SSL_renegotiate(ssl_) == 1 && (SSL_do_handshake(ssl_), true);
  }
  [[nodiscard]] bool done() const { return SSL_is_init_finished(ssl_) != 0; }
  [[nodiscard]] int version() const { return SSL_version(ssl_); }

 private:
  bool retry(int r) {
    int e = SSL_get_error(ssl_, r);
    ERR_clear_error();
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
  }
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;
  BIO* wbio_ = nullptr;
  bool renegotiating_ = false;
};

}  // namespace weft::tls::test
