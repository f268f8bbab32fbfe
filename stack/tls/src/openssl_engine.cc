// The OpenSSL 3 backend: one SSL per Engine over two memory BIOs (rbio: ciphertext fed in,
// wbio: ciphertext to take out). OpenSSL's error queue is thread-local, so every entry point
// clears it first and classifies what the failing call left there.
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>

#include "backend.h"
#include "openssl_impl.h"

namespace weft::tls {
inline namespace WEFT_TLS_NS {
namespace detail {

namespace {

EngineImpl* engine_of(const SSL* ssl) noexcept {
  return static_cast<EngineImpl*>(SSL_get_app_data(ssl));
}

bool is_tls12(const SSL* ssl) noexcept {
  return SSL_version(ssl) == TLS1_2_VERSION;
}

// Record headers in both directions: counts records for kTLS sequence numbers and spots a
// TLS 1.2 renegotiation (a handshake record after the handshake; TLS 1.3 hides the type).
void on_message(int write_p, int /*version*/, int content_type, const void* buf, size_t len,
                SSL* ssl, void* /*arg*/) {
  EngineImpl* e = engine_of(ssl);
  if (e == nullptr || content_type != SSL3_RT_HEADER || len < 1) {
    return;
  }
  const auto type = static_cast<const unsigned char*>(buf)[0];
  std::uint64_t& seq = write_p != 0 ? e->tx_seq : e->rx_seq;
  if (type == SSL3_RT_CHANGE_CIPHER_SPEC) {
    seq = 0;  // TLS 1.2: the next record is the first of the new epoch
    return;
  }
  ++seq;
  if (write_p == 0 && type == SSL3_RT_HANDSHAKE && SSL_is_init_finished(ssl) != 0 &&
      is_tls12(ssl)) {
    e->renegotiation = true;
  }
}

bool hex_to(std::string_view hex, unsigned char* out, std::size_t cap, std::size_t& n) {
  if (hex.size() % 2 != 0 || hex.size() / 2 > cap) {
    return false;
  }
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
    }
    return -1;
  };
  for (std::size_t i = 0; i < hex.size() / 2; ++i) {
    int hi = nib(hex[2 * i]);
    int lo = nib(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  n = hex.size() / 2;
  return true;
}

// TLS 1.3 application traffic secrets arrive only through the keylog line (NSS format:
// "LABEL <client_random> <secret>"). Taking a new write (read) key restarts that
// direction's sequence numbers (RFC 8446 §5.3).
void on_keylog(const SSL* ssl, const char* line) {
  EngineImpl* e = engine_of(ssl);
  if (e == nullptr) {
    return;
  }
  std::string_view s(line);
  std::size_t sp1 = s.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : s.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    return;
  }
  std::string_view label = s.substr(0, sp1);
  std::string_view secret = s.substr(sp2 + 1);
  const bool server = SSL_is_server(const_cast<SSL*>(ssl)) != 0;
  if (label == "CLIENT_TRAFFIC_SECRET_0") {
    hex_to(secret, e->client_secret.data(), e->client_secret.size(), e->secret_len);
    if (!server) {
      e->tx_seq = 0;
    }
  } else if (label == "SERVER_TRAFFIC_SECRET_0") {
    hex_to(secret, e->server_secret.data(), e->server_secret.size(), e->secret_len);
    if (server) {
      e->tx_seq = 0;
    } else {
      e->rx_seq = 0;
    }
  }
}

int on_alpn_select(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                   const unsigned char* in, unsigned int inlen, void* arg) {
  auto* ctx = static_cast<ContextImpl*>(arg);
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, ctx->alpn.data(), ctx->alpn_len, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
  }
  if (!ctx->alpn_strict) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  if (EngineImpl* e = engine_of(ssl)) {
    e->alpn_failed = true;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

int on_new_session(SSL* ssl, SSL_SESSION* session) {
  EngineImpl* e = engine_of(ssl);
  if (e == nullptr) {
    return 0;
  }
  std::lock_guard<std::mutex> lock(e->ctx->mutex);
  SSL_SESSION_free(e->ctx->session);
  e->ctx->session = session;
  e->ctx->session_name = e->name;
  return 1;  // we keep the reference
}

tls_errc classify(EngineImpl& e) noexcept {
  if (e.alpn_failed) {
    return tls_errc::alpn_mismatch;
  }
  if (e.renegotiation) {
    return tls_errc::renegotiation_refused;
  }
  const unsigned long err = ERR_peek_last_error();
  if (ERR_GET_LIB(err) == ERR_LIB_SSL) {
    switch (ERR_GET_REASON(err)) {
      case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return tls_errc::peer_cert_required;
      case SSL_R_CERTIFICATE_VERIFY_FAILED:
      case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
      case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
        return tls_errc::cert_invalid;
      case SSL_R_NO_APPLICATION_PROTOCOL:
      case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
        return tls_errc::alpn_mismatch;
      case SSL_R_NO_RENEGOTIATION:
        return tls_errc::renegotiation_refused;
      case SSL_R_PACKET_LENGTH_TOO_LONG:
      case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
      case SSL_R_DATA_LENGTH_TOO_LONG:
      case SSL_R_RECORD_LENGTH_MISMATCH:
      case SSL_R_TLSV1_ALERT_RECORD_OVERFLOW:
        return tls_errc::record_overflow;
      case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
      case SSL_R_SSLV3_ALERT_BAD_RECORD_MAC:
      case SSL_R_WRONG_VERSION_NUMBER:
      case SSL_R_UNEXPECTED_RECORD:
        return e.state == State::handshaking ? tls_errc::handshake_failed : tls_errc::bad_record;
      default:
        break;
    }
  }
  return e.state == State::handshaking ? tls_errc::handshake_failed : tls_errc::bad_record;
}

Result<std::size_t> fail(EngineImpl& e, tls_errc code) noexcept {
  e.state = State::failed;
  e.error = make_error_code(code);
  ERR_clear_error();
  return weft::fail(code);
}

// Runs the handshake as far as the buffered bytes allow. ok(0) = running or done.
Result<std::size_t> drive(EngineImpl& e) noexcept {
  if (e.state != State::handshaking) {
    return std::size_t{0};
  }
  const int r = SSL_do_handshake(e.ssl);
  if (r == 1) {
    e.state = State::established;
    // TLS 1.3 server: the client's Finished was the last record under the handshake keys.
    if (SSL_is_server(e.ssl) != 0 && SSL_version(e.ssl) == TLS1_3_VERSION) {
      e.rx_seq = 0;
    }
    return std::size_t{0};
  }
  const int code = SSL_get_error(e.ssl, r);
  if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
    return std::size_t{0};
  }
  return fail(e, classify(e));
}

bool read_pem_ok(const char* path) noexcept {
  BIO* b = BIO_new_file(path, "r");
  if (b == nullptr) {
    return false;
  }
  BIO_free(b);
  return true;
}

}  // namespace
}  // namespace detail

using detail::ContextImpl;
using detail::EngineImpl;

void detail::destroy(ContextImpl* impl) noexcept {
  delete impl;
}
void detail::destroy(EngineImpl* impl) noexcept {
  delete impl;
}

Backend backend() noexcept {
  return Backend::openssl;
}

Result<Context> Context::create(const Config& config) noexcept {
  ERR_clear_error();
  auto* impl = new (std::nothrow) ContextImpl;
  if (impl == nullptr) {
    return fail(tls_errc::no_memory);
  }
  Context result(impl);  // frees impl on every error return below
  impl->role = config.role;
  impl->alpn_strict = config.alpn_strict;
  if (config.alpn.size() > kMaxAlpn) {
    return fail(tls_errc::bad_config);
  }
  for (std::string_view p : config.alpn) {
    if (p.empty() || p.size() > 255) {
      return fail(tls_errc::bad_config);
    }
    impl->alpn[impl->alpn_len++] = static_cast<unsigned char>(p.size());
    std::memcpy(impl->alpn.data() + impl->alpn_len, p.data(), p.size());
    impl->alpn_len += static_cast<unsigned>(p.size());
  }
  const bool server = config.role == Role::server;
  impl->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (impl->ctx == nullptr) {
    return fail(tls_errc::no_memory);
  }
  SSL_CTX* ctx = impl->ctx;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(
      ctx, config.max_version == Version::tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
  if (SSL_CTX_set_cipher_list(ctx, detail::kTls12Ciphers) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, detail::kTls13Suites) != 1) {
    return fail(tls_errc::internal);
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE |
                               (config.session_tickets ? 0 : SSL_OP_NO_TICKET));
  SSL_CTX_set_keylog_callback(ctx, detail::on_keylog);
  if (config.cert_chain_file != nullptr || config.key_file != nullptr) {
    if (config.cert_chain_file == nullptr || config.key_file == nullptr ||
        SSL_CTX_use_certificate_chain_file(ctx, config.cert_chain_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, config.key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      return fail(tls_errc::bad_config);
    }
  } else if (server) {
    return fail(tls_errc::bad_config);
  }
  if (config.ca_file != nullptr &&
      (!detail::read_pem_ok(config.ca_file) ||
       SSL_CTX_load_verify_locations(ctx, config.ca_file, nullptr) != 1)) {
    return fail(tls_errc::bad_config);
  }
  if (server) {
    static constexpr unsigned char kSidContext[] = "weft.tls";
    SSL_CTX_set_session_id_context(ctx, kSidContext, sizeof kSidContext - 1);
    if (config.client_auth != ClientAuth::none) {
      if (config.ca_file == nullptr) {
        return fail(tls_errc::bad_config);
      }
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.ca_file);
      if (names != nullptr) {
        SSL_CTX_set_client_CA_list(ctx, names);
      }
      SSL_CTX_set_verify(
          ctx,
          SSL_VERIFY_PEER |
              (config.client_auth == ClientAuth::required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
          nullptr);
    }
    if (impl->alpn_len > 0) {
      SSL_CTX_set_alpn_select_cb(ctx, detail::on_alpn_select, impl);
    }
  } else {
    if (config.verify_peer) {
      if (config.ca_file == nullptr) {
        return fail(tls_errc::bad_config);
      }
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    // Returns 0 on success (unlike most of the API).
    if (impl->alpn_len > 0 &&
        SSL_CTX_set_alpn_protos(ctx, impl->alpn.data(), impl->alpn_len) != 0) {
      return fail(tls_errc::internal);
    }
    if (config.session_tickets) {
      SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
      SSL_CTX_sess_set_new_cb(ctx, detail::on_new_session);
    }
  }
  return result;
}

Role Context::role() const noexcept {
  return impl_->role;
}

Result<Engine> Context::engine(const char* server_name) const noexcept {
  ERR_clear_error();
  auto* e = new (std::nothrow) EngineImpl;
  if (e == nullptr) {
    return fail(tls_errc::no_memory);
  }
  Engine result(e);
  e->ctx = impl_;
  e->ssl = SSL_new(impl_->ctx);
  e->rbio = BIO_new(BIO_s_mem());
  e->wbio = BIO_new(BIO_s_mem());
  if (e->ssl == nullptr || e->rbio == nullptr || e->wbio == nullptr) {
    BIO_free(e->rbio);
    BIO_free(e->wbio);
    e->rbio = e->wbio = nullptr;
    return fail(tls_errc::no_memory);
  }
  // An empty rbio means "retry later", not EOF.
  BIO_set_mem_eof_return(e->rbio, -1);
  BIO_set_mem_eof_return(e->wbio, -1);
  SSL_set_bio(e->ssl, e->rbio, e->wbio);
  SSL_set_app_data(e->ssl, e);
  SSL_set_msg_callback(e->ssl, detail::on_message);
  if (impl_->role == Role::server) {
    SSL_set_accept_state(e->ssl);
    return result;
  }
  SSL_set_connect_state(e->ssl);
  if (server_name != nullptr) {
    const std::size_t n = std::strlen(server_name);
    if (n == 0 || n > detail::kMaxName) {
      return fail(tls_errc::bad_config);
    }
    std::memcpy(e->name.data(), server_name, n);
    if (SSL_set_tlsext_host_name(e->ssl, server_name) != 1 ||
        SSL_set1_host(e->ssl, server_name) != 1) {
      return fail(tls_errc::internal);
    }
  }
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->session != nullptr && impl_->session_name == e->name) {
      SSL_set_session(e->ssl, impl_->session);
    }
  }
  // The ClientHello is ready to take() before anything is fed.
  if (!detail::drive(*e)) {
    return fail(e->error);
  }
  return result;
}

Result<std::size_t> Engine::feed(std::span<const std::byte> ciphertext) noexcept {
  EngineImpl& e = *impl_;
  if (e.state == State::failed) {
    return weft::fail(e.error);
  }
  ERR_clear_error();
  const std::size_t buffered = BIO_ctrl_pending(e.rbio);
  const std::size_t n =
      std::min(ciphertext.size(), kMaxBufferedIn > buffered ? kMaxBufferedIn - buffered : 0);
  if (n > 0 && BIO_write(e.rbio, ciphertext.data(), static_cast<int>(n)) != static_cast<int>(n)) {
    return detail::fail(e, tls_errc::no_memory);
  }
  Result<std::size_t> d = detail::drive(e);
  if (!d) {
    return d;
  }
  return n;
}

Result<std::size_t> Engine::read(std::span<std::byte> out) noexcept {
  EngineImpl& e = *impl_;
  if (e.state == State::failed) {
    return weft::fail(e.error);
  }
  ERR_clear_error();
  Result<std::size_t> d = detail::drive(e);
  if (!d) {
    return d;
  }
  if (e.state == State::handshaking || e.peer_closed || out.empty()) {
    return std::size_t{0};
  }
  std::size_t got = 0;
  const int r = SSL_read_ex(e.ssl, out.data(), out.size(), &got);
  if (e.renegotiation) {
    return detail::fail(e, tls_errc::renegotiation_refused);
  }
  if (r == 1) {
    return got;
  }
  switch (SSL_get_error(e.ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return std::size_t{0};
    case SSL_ERROR_ZERO_RETURN:
      e.peer_closed = true;
      e.state = State::closed;
      return std::size_t{0};
    default:
      return detail::fail(e, detail::classify(e));
  }
}

Result<std::size_t> Engine::write(std::span<const std::byte> plaintext) noexcept {
  EngineImpl& e = *impl_;
  if (e.state == State::failed) {
    return weft::fail(e.error);
  }
  if (e.close_sent || e.peer_closed) {
    return weft::fail(tls_errc::closed);
  }
  ERR_clear_error();
  Result<std::size_t> d = detail::drive(e);
  if (!d) {
    return d;
  }
  if (e.state != State::established || plaintext.empty() ||
      BIO_ctrl_pending(e.wbio) >= detail::kMaxPendingOut) {
    return std::size_t{0};
  }
  // At most kMaxPendingOut per call, so the memory BIO never holds much more than that.
  std::size_t written = 0;
  const int r = SSL_write_ex(e.ssl, plaintext.data(),
                             std::min(plaintext.size(), detail::kMaxPendingOut), &written);
  if (r == 1) {
    return written;
  }
  const int code = SSL_get_error(e.ssl, r);
  if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
    return std::size_t{0};
  }
  return detail::fail(e, detail::classify(e));
}

std::size_t Engine::take(std::span<std::byte> out) noexcept {
  if (out.empty()) {
    return 0;
  }
  const int n = BIO_read(impl_->wbio, out.data(),
                         static_cast<int>(std::min<std::size_t>(out.size(), 1U << 30)));
  if (n <= 0) {
    return 0;
  }
  impl_->on_sent(reinterpret_cast<const unsigned char*>(out.data()), static_cast<std::size_t>(n));
  return static_cast<std::size_t>(n);
}

std::size_t Engine::pending() const noexcept {
  return BIO_ctrl_pending(impl_->wbio);
}

void Engine::close() noexcept {
  EngineImpl& e = *impl_;
  if (e.close_sent || e.state == State::failed || e.state == State::handshaking) {
    e.close_sent = true;
    return;
  }
  ERR_clear_error();
  SSL_shutdown(e.ssl);  // queues close_notify in wbio; we do not wait for the peer's
  ERR_clear_error();
  e.close_sent = true;
  e.state = State::closed;
}

State Engine::state() const noexcept {
  return impl_->state;
}
std::error_code Engine::error() const noexcept {
  return impl_->error;
}
bool Engine::peer_closed() const noexcept {
  return impl_->peer_closed;
}
Role Engine::role() const noexcept {
  return impl_->ctx->role;
}

std::string_view Engine::alpn() const noexcept {
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(impl_->ssl, &p, &len);
  return p == nullptr ? std::string_view()
                      : std::string_view(reinterpret_cast<const char*>(p), len);
}

std::string_view Engine::server_name() const noexcept {
  if (impl_->ctx->role == Role::client) {
    return impl_->name.data();
  }
  const char* n = SSL_get_servername(impl_->ssl, TLSEXT_NAMETYPE_host_name);
  return n == nullptr ? std::string_view() : std::string_view(n);
}

bool Engine::peer_verified() const noexcept {
  if (!handshake_done() || (SSL_get_verify_mode(impl_->ssl) & SSL_VERIFY_PEER) == 0) {
    return false;
  }
  X509* cert = SSL_get0_peer_certificate(impl_->ssl);
  return cert != nullptr && SSL_get_verify_result(impl_->ssl) == X509_V_OK;
}

std::size_t Engine::peer_subject(std::span<char> out) const noexcept {
  X509* cert = SSL_get0_peer_certificate(impl_->ssl);
  if (out.empty() || cert == nullptr) {
    return 0;
  }
  // X509_NAME_oneline gives up (empty) rather than truncate when a component does not fit:
  // format into a local buffer, then copy what fits.
  std::array<char, 1024> line{};
  if (X509_NAME_oneline(X509_get_subject_name(cert), line.data(), static_cast<int>(line.size())) ==
      nullptr) {
    out[0] = '\0';
    return 0;
  }
  const std::size_t n = std::min(std::strlen(line.data()), out.size() - 1);
  std::memcpy(out.data(), line.data(), n);
  out[n] = '\0';
  return n;
}

bool Engine::resumed() const noexcept {
  return SSL_session_reused(impl_->ssl) == 1;
}

Version Engine::version() const noexcept {
  return SSL_version(impl_->ssl) == TLS1_3_VERSION ? Version::tls13 : Version::tls12;
}

const char* Engine::cipher() const noexcept {
  const SSL_CIPHER* c = SSL_get_current_cipher(impl_->ssl);
  return c == nullptr ? "" : SSL_CIPHER_standard_name(c);
}

}  // namespace WEFT_TLS_NS
}  // namespace weft::tls
