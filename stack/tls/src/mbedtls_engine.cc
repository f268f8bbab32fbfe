// The mbedTLS 2.28 backend: TLS 1.2 only (2.28's TLS 1.3 is experimental and off in Debian's
// build). mbedTLS pulls ciphertext through a recv callback and pushes it through a send
// callback; both work on fixed buffers inside EngineImpl. A RecordTracker watches the record
// headers of both streams, because mbedTLS does not say which alert it got or sent, whether
// a session was resumed, or that a renegotiation was refused.
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <new>

#include <weft/tls/ktls.h>
#include <weft/tls/tls.h>

#include "backend.h"

namespace weft::tls {
inline namespace WEFT_TLS_NS {
namespace detail {
namespace {

// ECDHE + AEAD only, TLS 1.2.
constexpr std::array<int, 7> kSuites = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};
constexpr std::size_t kMaxName = 255;
// One full record as mbedTLS writes it: 5-byte header + 2^14 + AEAD expansion (8 + 16), with
// slack. write() and the handshake only run with this much room in the output buffer, so the
// send callback never has to refuse a record.
constexpr std::size_t kRecordRoom = 5 + 16384 + 256;
constexpr std::size_t kOutCapacity = 2 * kRecordRoom;
// RFC 5246 §6.2.3: TLSCiphertext.length <= 2^14 + 2048.
constexpr std::size_t kMaxRecordLen = 16384 + 2048;

// TLS alert descriptions (RFC 5246 §7.2, RFC 7301, RFC 8446).
constexpr std::uint8_t kAlertBadRecordMac = 20;
constexpr std::uint8_t kAlertRecordOverflow = 22;
constexpr std::uint8_t kAlertNoRenegotiation = 100;
constexpr std::uint8_t kAlertCertificateRequired = 116;
constexpr std::uint8_t kAlertNoApplicationProtocol = 120;

// Follows one direction's record stream by its 5-byte headers.
struct RecordTracker {
  std::array<std::uint8_t, 5> header{};
  std::size_t header_got = 0;
  std::size_t body_left = 0;
  std::size_t body_pos = 0;
  std::uint8_t type = 0;
  bool ccs_seen = false;   // ChangeCipherSpec passed: later records are encrypted
  bool oversized = false;  // a record longer than kMaxRecordLen
  std::uint8_t alert = 0;  // description of the last plaintext fatal alert
  std::uint32_t handshake_records_after_ccs = 0;
  std::uint32_t alert_records = 0;

  void on_bytes(const unsigned char* p, std::size_t n) noexcept {
    while (n > 0) {
      if (header_got < header.size()) {
        header[header_got++] = *p++;
        --n;
        if (header_got == header.size()) {
          type = header[0];
          body_left = (std::size_t{header[3]} << 8) | header[4];
          body_pos = 0;
          if (body_left > kMaxRecordLen) {
            oversized = true;
          }
          if (type == 21) {
            ++alert_records;
          }
          if (type == 20) {
            ccs_seen = true;
          } else if (type == 22 && ccs_seen) {
            ++handshake_records_after_ccs;
          }
          if (body_left == 0) {
            header_got = 0;
          }
        }
        continue;
      }
      const std::size_t take = std::min(n, body_left);
      // A plaintext alert is level, description; remember the description of a fatal one.
      if (type == 21 && !ccs_seen) {
        for (std::size_t i = 0; i < take; ++i) {
          if (body_pos + i == 1) {
            alert = p[i];
          }
        }
      }
      body_pos += take;
      body_left -= take;
      p += take;
      n -= take;
      if (body_left == 0) {
        header_got = 0;
      }
    }
  }
};

}  // namespace

struct ContextImpl {
  Role role = Role::server;
  ClientAuth client_auth = ClientAuth::none;
  bool tickets = true;
  mbedtls_ssl_config conf;
  mbedtls_x509_crt chain;
  mbedtls_x509_crt ca;
  mbedtls_pk_context key;
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_ssl_ticket_context ticket;
  std::array<std::array<char, 256>, kMaxAlpn> alpn{};
  std::array<const char*, kMaxAlpn + 1> alpn_list{};
  // Client session cache: the most recent session and the name it was made for.
  std::mutex mutex;
  mbedtls_ssl_session session;
  bool has_session = false;
  std::array<char, kMaxName + 1> session_name{};

  ContextImpl() noexcept {
    mbedtls_ssl_config_init(&conf);
    mbedtls_x509_crt_init(&chain);
    mbedtls_x509_crt_init(&ca);
    mbedtls_pk_init(&key);
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_ssl_ticket_init(&ticket);
    mbedtls_ssl_session_init(&session);
  }
  ContextImpl(const ContextImpl&) = delete;
  ContextImpl& operator=(const ContextImpl&) = delete;
  ~ContextImpl() {
    mbedtls_ssl_session_free(&session);
    mbedtls_ssl_ticket_free(&ticket);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&ca);
    mbedtls_x509_crt_free(&chain);
    mbedtls_ssl_config_free(&conf);
  }
};

struct EngineImpl {
  ContextImpl* ctx = nullptr;
  mbedtls_ssl_context ssl;
  State state = State::handshaking;
  std::error_code error;
  bool peer_closed = false;
  bool close_sent = false;
  bool own_ccs_first = false;  // this side sent ChangeCipherSpec before the peer did
  bool resumed = false;
  std::array<char, kMaxName + 1> name{};  // client: SNI sent; server: SNI received
  RecordTracker in_track;
  RecordTracker out_track;
  // Ciphertext fed but not yet pulled by mbedTLS: [in_begin, in_end).
  std::array<unsigned char, kMaxBufferedIn> in{};
  std::size_t in_begin = 0;
  std::size_t in_end = 0;
  // Ciphertext mbedTLS wrote and take() has not copied out: [out_begin, out_end).
  std::array<unsigned char, kOutCapacity> out{};
  std::size_t out_begin = 0;
  std::size_t out_end = 0;

  EngineImpl() noexcept { mbedtls_ssl_init(&ssl); }
  EngineImpl(const EngineImpl&) = delete;
  EngineImpl& operator=(const EngineImpl&) = delete;
  ~EngineImpl() { mbedtls_ssl_free(&ssl); }

  [[nodiscard]] std::size_t out_room() const noexcept { return out.size() - out_end; }
};

namespace {

int on_send(void* p, const unsigned char* buf, size_t len) {
  auto* e = static_cast<EngineImpl*>(p);
  if (e->out_begin == e->out_end) {
    e->out_begin = e->out_end = 0;
  }
  if (e->out_begin > 0 && e->out_room() < len) {
    std::memmove(e->out.data(), e->out.data() + e->out_begin, e->out_end - e->out_begin);
    e->out_end -= e->out_begin;
    e->out_begin = 0;
  }
  const std::size_t n = std::min(len, e->out_room());
  if (n == 0) {
    return MBEDTLS_ERR_SSL_WANT_WRITE;
  }
  if (buf[0] == 20 && e->out_track.header_got == 0 && !e->in_track.ccs_seen &&
      !e->out_track.ccs_seen) {
    e->own_ccs_first = true;
  }
  std::memcpy(e->out.data() + e->out_end, buf, n);
  e->out_end += n;
  e->out_track.on_bytes(buf, n);
  return static_cast<int>(n);
}

int on_recv(void* p, unsigned char* buf, size_t len) {
  auto* e = static_cast<EngineImpl*>(p);
  const std::size_t n = std::min(len, e->in_end - e->in_begin);
  if (n == 0) {
    return MBEDTLS_ERR_SSL_WANT_READ;
  }
  std::memcpy(buf, e->in.data() + e->in_begin, n);
  e->in_begin += n;
  e->in_track.on_bytes(buf, n);
  return static_cast<int>(n);
}

int on_sni(void* /*unused*/, mbedtls_ssl_context* ssl, const unsigned char* name, size_t len) {
  auto* e = static_cast<EngineImpl*>(ssl->p_bio);
  const std::size_t n = std::min(len, kMaxName);
  std::memcpy(e->name.data(), name, n);
  e->name[n] = '\0';
  return 0;  // one certificate for every name
}

tls_errc from_alert(std::uint8_t alert, bool handshaking) noexcept {
  switch (alert) {
    case kAlertNoApplicationProtocol:
      return tls_errc::alpn_mismatch;
    case kAlertCertificateRequired:
      return tls_errc::peer_cert_required;
    case 42:  // bad_certificate
    case 43:  // unsupported_certificate
    case 44:  // certificate_revoked
    case 45:  // certificate_expired
    case 46:  // certificate_unknown
    case 48:  // unknown_ca
      return tls_errc::cert_invalid;
    case kAlertNoRenegotiation:
      return tls_errc::renegotiation_refused;
    case kAlertRecordOverflow:
      return tls_errc::record_overflow;
    case kAlertBadRecordMac:
      return tls_errc::bad_record;
    default:
      return handshaking ? tls_errc::handshake_failed : tls_errc::bad_record;
  }
}

tls_errc classify(EngineImpl& e, int ret) noexcept {
  const bool hs = e.state == State::handshaking;
  if (e.in_track.oversized) {
    return tls_errc::record_overflow;
  }
  switch (ret) {
    case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
    case MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE:
      return tls_errc::cert_invalid;
    case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE:
      return tls_errc::peer_cert_required;
    case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE:
      return from_alert(e.in_track.alert, hs);
    default:
      break;
  }
  // What we told the peer says why (mbedTLS returns a generic code for ALPN).
  if (e.out_track.alert == kAlertNoApplicationProtocol) {
    return tls_errc::alpn_mismatch;
  }
  if (ret == MBEDTLS_ERR_SSL_INVALID_MAC || ret == MBEDTLS_ERR_SSL_INVALID_RECORD) {
    return hs ? tls_errc::handshake_failed : tls_errc::bad_record;
  }
  return hs ? tls_errc::handshake_failed : tls_errc::bad_record;
}

Result<std::size_t> fail(EngineImpl& e, tls_errc code) noexcept {
  // mbedTLS sends an alert for most failures but not all (a missing client certificate):
  // make sure the peer hears one, so it fails now rather than at its timeout.
  if (e.out_track.alert_records == 0 && e.out_room() >= 64) {
    std::uint8_t desc = MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE;
    if (code == tls_errc::cert_invalid) {
      desc = MBEDTLS_SSL_ALERT_MSG_BAD_CERT;
    } else if (code == tls_errc::bad_record) {
      desc = MBEDTLS_SSL_ALERT_MSG_BAD_RECORD_MAC;
    } else if (code == tls_errc::record_overflow) {
      desc = MBEDTLS_SSL_ALERT_MSG_RECORD_OVERFLOW;
    } else if (code == tls_errc::renegotiation_refused) {
      desc = MBEDTLS_SSL_ALERT_MSG_NO_RENEGOTIATION;
    }
    (void)mbedtls_ssl_send_alert_message(&e.ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL, desc);
  }
  e.state = State::failed;
  e.error = make_error_code(code);
  return weft::fail(code);
}

void remember_session(EngineImpl& e) noexcept {
  ContextImpl& c = *e.ctx;
  if (c.role != Role::client || !c.tickets) {
    return;
  }
  std::lock_guard<std::mutex> lock(c.mutex);
  mbedtls_ssl_session_free(&c.session);
  mbedtls_ssl_session_init(&c.session);
  c.has_session = mbedtls_ssl_get_session(&e.ssl, &c.session) == 0;
  c.session_name = e.name;
}

// Runs the handshake one step at a time while there is room for a record. ok(0) = running
// or done.
Result<std::size_t> drive(EngineImpl& e) noexcept {
  while (e.state == State::handshaking) {
    if (e.out_begin == e.out_end) {
      e.out_begin = e.out_end = 0;
    }
    if (e.out_room() < kRecordRoom) {
      return std::size_t{0};
    }
    if (e.ssl.state == MBEDTLS_SSL_HANDSHAKE_OVER) {
      break;
    }
    const int r = mbedtls_ssl_handshake_step(&e.ssl);
    if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) {
      return std::size_t{0};
    }
    if (r != 0) {
      return fail(e, classify(e, r));
    }
  }
  if (e.state == State::handshaking) {
    e.state = State::established;
    // TLS 1.2 (RFC 5246 §7.3): in an abbreviated handshake the server's ChangeCipherSpec
    // comes first; in a full one the client's does.
    e.resumed = e.ctx->role == Role::server ? e.own_ccs_first : !e.own_ccs_first;
    // VERIFY_OPTIONAL lets a bad client certificate through: refuse it here.
    if (e.ctx->role == Role::server && e.ctx->client_auth == ClientAuth::optional &&
        mbedtls_ssl_get_peer_cert(&e.ssl) != nullptr &&
        mbedtls_ssl_get_verify_result(&e.ssl) != 0) {
      return fail(e, tls_errc::cert_invalid);
    }
    remember_session(e);
  }
  return std::size_t{0};
}

// A handshake record after the handshake (TLS 1.2: HelloRequest or ClientHello) is a
// renegotiation attempt; mbedTLS answers no_renegotiation and carries on, we close.
bool renegotiation_seen(const EngineImpl& e) noexcept {
  return e.state != State::handshaking && e.in_track.handshake_records_after_ccs > 1;
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
  return Backend::mbedtls;
}

Result<Context> Context::create(const Config& config) noexcept {
  auto* impl = new (std::nothrow) ContextImpl;
  if (impl == nullptr) {
    return fail(tls_errc::no_memory);
  }
  Context result(impl);  // frees impl on every error return below
  const bool server = config.role == Role::server;
  impl->role = config.role;
  impl->client_auth = config.client_auth;
  impl->tickets = config.session_tickets;
  // mbedTLS 2.28 always answers a failed ALPN match with no_application_protocol.
  if (config.alpn.size() > kMaxAlpn || (server && !config.alpn.empty() && !config.alpn_strict)) {
    return fail(config.alpn_strict ? tls_errc::bad_config : tls_errc::unsupported);
  }
  for (std::size_t i = 0; i < config.alpn.size(); ++i) {
    const std::string_view p = config.alpn[i];
    if (p.empty() || p.size() > 255) {
      return fail(tls_errc::bad_config);
    }
    std::memcpy(impl->alpn[i].data(), p.data(), p.size());
    impl->alpn_list[i] = impl->alpn[i].data();
  }
  static constexpr unsigned char kPersonal[] = "weft.tls";
  mbedtls_ssl_config& conf = impl->conf;
  if (mbedtls_ctr_drbg_seed(&impl->drbg, mbedtls_entropy_func, &impl->entropy, kPersonal,
                            sizeof kPersonal - 1) != 0 ||
      mbedtls_ssl_config_defaults(&conf, server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                  MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT) != 0) {
    return fail(tls_errc::internal);
  }
  mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &impl->drbg);
  mbedtls_ssl_conf_min_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_max_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_ciphersuites(&conf, detail::kSuites.data());
  mbedtls_ssl_conf_renegotiation(&conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
  if (config.cert_chain_file != nullptr || config.key_file != nullptr) {
    if (config.cert_chain_file == nullptr || config.key_file == nullptr ||
        mbedtls_x509_crt_parse_file(&impl->chain, config.cert_chain_file) != 0 ||
        mbedtls_pk_parse_keyfile(&impl->key, config.key_file, nullptr) != 0 ||
        mbedtls_pk_check_pair(&impl->chain.pk, &impl->key) != 0 ||
        mbedtls_ssl_conf_own_cert(&conf, &impl->chain, &impl->key) != 0) {
      return fail(tls_errc::bad_config);
    }
  } else if (server) {
    return fail(tls_errc::bad_config);
  }
  if (config.ca_file != nullptr) {
    if (mbedtls_x509_crt_parse_file(&impl->ca, config.ca_file) != 0) {
      return fail(tls_errc::bad_config);
    }
    mbedtls_ssl_conf_ca_chain(&conf, &impl->ca, nullptr);
  }
  if (server) {
    int mode = MBEDTLS_SSL_VERIFY_NONE;
    if (config.client_auth != ClientAuth::none) {
      if (config.ca_file == nullptr) {
        return fail(tls_errc::bad_config);
      }
      mode = config.client_auth == ClientAuth::required ? MBEDTLS_SSL_VERIFY_REQUIRED
                                                        : MBEDTLS_SSL_VERIFY_OPTIONAL;
    }
    mbedtls_ssl_conf_authmode(&conf, mode);
    mbedtls_ssl_conf_sni(&conf, detail::on_sni, nullptr);
    if (config.session_tickets) {
      if (mbedtls_ssl_ticket_setup(&impl->ticket, mbedtls_ctr_drbg_random, &impl->drbg,
                                   MBEDTLS_CIPHER_AES_256_GCM, 86400) != 0) {
        return fail(tls_errc::internal);
      }
      mbedtls_ssl_conf_session_tickets_cb(&conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse,
                                          &impl->ticket);
    }
  } else {
    if (config.verify_peer && config.ca_file == nullptr) {
      return fail(tls_errc::bad_config);
    }
    mbedtls_ssl_conf_authmode(
        &conf, config.verify_peer ? MBEDTLS_SSL_VERIFY_REQUIRED : MBEDTLS_SSL_VERIFY_NONE);
    mbedtls_ssl_conf_session_tickets(&conf, config.session_tickets
                                                ? MBEDTLS_SSL_SESSION_TICKETS_ENABLED
                                                : MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
  }
  if (!config.alpn.empty() && mbedtls_ssl_conf_alpn_protocols(&conf, impl->alpn_list.data()) != 0) {
    return fail(tls_errc::bad_config);
  }
  return result;
}

Role Context::role() const noexcept {
  return impl_->role;
}

Result<Engine> Context::engine(const char* server_name) const noexcept {
  auto* e = new (std::nothrow) EngineImpl;
  if (e == nullptr) {
    return fail(tls_errc::no_memory);
  }
  Engine result(e);
  e->ctx = impl_;
  if (mbedtls_ssl_setup(&e->ssl, &impl_->conf) != 0) {
    return fail(tls_errc::no_memory);
  }
  mbedtls_ssl_set_bio(&e->ssl, e, detail::on_send, detail::on_recv, nullptr);
  if (impl_->role == Role::server) {
    return result;
  }
  if (server_name != nullptr) {
    const std::size_t n = std::strlen(server_name);
    if (n == 0 || n > detail::kMaxName) {
      return fail(tls_errc::bad_config);
    }
    std::memcpy(e->name.data(), server_name, n);
    if (mbedtls_ssl_set_hostname(&e->ssl, server_name) != 0) {
      return fail(tls_errc::internal);
    }
  }
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->tickets && impl_->has_session && impl_->session_name == e->name) {
      (void)mbedtls_ssl_set_session(&e->ssl, &impl_->session);  // a failure = full handshake
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
  if (e.in_begin > 0) {
    std::memmove(e.in.data(), e.in.data() + e.in_begin, e.in_end - e.in_begin);
    e.in_end -= e.in_begin;
    e.in_begin = 0;
  }
  const std::size_t n = std::min(ciphertext.size(), e.in.size() - e.in_end);
  if (n > 0) {
    std::memcpy(e.in.data() + e.in_end, ciphertext.data(), n);
    e.in_end += n;
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
  Result<std::size_t> d = detail::drive(e);
  if (!d) {
    return d;
  }
  if (e.state == State::handshaking || e.peer_closed || out.empty()) {
    return std::size_t{0};
  }
  // mbedtls_ssl_read() may answer an alert (no_renegotiation); keep room for it.
  if (e.out_room() < 64) {
    return std::size_t{0};
  }
  const int r = mbedtls_ssl_read(&e.ssl, reinterpret_cast<unsigned char*>(out.data()), out.size());
  if (detail::renegotiation_seen(e)) {
    return detail::fail(e, tls_errc::renegotiation_refused);
  }
  if (r > 0) {
    return static_cast<std::size_t>(r);
  }
  if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) {
    return std::size_t{0};
  }
  if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
    e.peer_closed = true;
    e.state = State::closed;
    return std::size_t{0};
  }
  return detail::fail(e, detail::classify(e, r));
}

Result<std::size_t> Engine::write(std::span<const std::byte> plaintext) noexcept {
  EngineImpl& e = *impl_;
  if (e.state == State::failed) {
    return weft::fail(e.error);
  }
  if (e.close_sent || e.peer_closed) {
    return weft::fail(tls_errc::closed);
  }
  Result<std::size_t> d = detail::drive(e);
  if (!d) {
    return d;
  }
  if (e.state != State::established) {
    return std::size_t{0};
  }
  std::size_t done = 0;
  while (done < plaintext.size()) {
    if (e.out_begin == e.out_end) {
      e.out_begin = e.out_end = 0;
    }
    if (e.out_room() < detail::kRecordRoom) {
      break;  // back-pressure: take() first
    }
    const std::size_t chunk = std::min<std::size_t>(plaintext.size() - done, 16384);
    const int r = mbedtls_ssl_write(
        &e.ssl, reinterpret_cast<const unsigned char*>(plaintext.data() + done), chunk);
    if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) {
      break;
    }
    if (r < 0) {
      return detail::fail(e, detail::classify(e, r));
    }
    done += static_cast<std::size_t>(r);
  }
  return done;
}

std::size_t Engine::take(std::span<std::byte> out) noexcept {
  EngineImpl& e = *impl_;
  const std::size_t n = std::min(out.size(), e.out_end - e.out_begin);
  std::memcpy(out.data(), e.out.data() + e.out_begin, n);
  e.out_begin += n;
  if (e.out_begin == e.out_end) {
    e.out_begin = e.out_end = 0;
  }
  return n;
}

std::size_t Engine::pending() const noexcept {
  return impl_->out_end - impl_->out_begin;
}

void Engine::close() noexcept {
  EngineImpl& e = *impl_;
  if (e.close_sent || e.state == State::failed || e.state == State::handshaking) {
    e.close_sent = true;
    return;
  }
  (void)mbedtls_ssl_close_notify(&e.ssl);
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
  const char* p = mbedtls_ssl_get_alpn_protocol(&impl_->ssl);
  return p == nullptr ? std::string_view() : std::string_view(p);
}

std::string_view Engine::server_name() const noexcept {
  return impl_->name.data();
}

bool Engine::peer_verified() const noexcept {
  if (!handshake_done() || impl_->ssl.conf->authmode == MBEDTLS_SSL_VERIFY_NONE) {
    return false;
  }
  return mbedtls_ssl_get_peer_cert(&impl_->ssl) != nullptr &&
         mbedtls_ssl_get_verify_result(&impl_->ssl) == 0;
}

std::size_t Engine::peer_subject(std::span<char> out) const noexcept {
  const mbedtls_x509_crt* cert = mbedtls_ssl_get_peer_cert(&impl_->ssl);
  if (out.empty() || cert == nullptr) {
    return 0;
  }
  const int n = mbedtls_x509_dn_gets(out.data(), out.size(), &cert->subject);
  if (n < 0) {  // MBEDTLS_ERR_X509_BUFFER_TOO_SMALL: keep what fitted (it NUL-terminates)
    return std::strlen(out.data());
  }
  return static_cast<std::size_t>(n);
}

bool Engine::resumed() const noexcept {
  return handshake_done() && impl_->resumed;
}
Version Engine::version() const noexcept {
  return Version::tls12;
}

const char* Engine::cipher() const noexcept {
  const char* c = mbedtls_ssl_get_ciphersuite(&impl_->ssl);
  return c == nullptr ? "" : c;
}

Result<KtlsKeys> ktls_keys(const Engine& engine, Direction /*dir*/) noexcept {
  if (engine.state() != State::established) {
    return fail(tls_errc::not_ready);
  }
  // mbedTLS 2.28 exposes the key block only through the export-keys callback at handshake
  // time; this step does not capture it (docs/tls.md).
  return fail(tls_errc::unsupported);
}

}  // namespace WEFT_TLS_NS
}  // namespace weft::tls
