#include <weft/tls/error.h>

#include <weft/base/error_category.h>

namespace weft::tls {

const char* to_string(tls_errc e) noexcept {
  switch (e) {
    case tls_errc::handshake_failed:
      return "TLS handshake failed";
    case tls_errc::bad_record:
      return "bad TLS record";
    case tls_errc::record_overflow:
      return "TLS record too long";
    case tls_errc::cert_invalid:
      return "peer certificate did not verify";
    case tls_errc::peer_cert_required:
      return "client certificate required";
    case tls_errc::alpn_mismatch:
      return "no ALPN protocol in common";
    case tls_errc::renegotiation_refused:
      return "TLS renegotiation refused";
    case tls_errc::closed:
      return "TLS connection closed";
    case tls_errc::bad_config:
      return "bad TLS configuration";
    case tls_errc::no_memory:
      return "TLS backend out of memory";
    case tls_errc::unsupported:
      return "not supported by this TLS backend";
    case tls_errc::not_ready:
      return "TLS handshake not finished";
    case tls_errc::internal:
      return "TLS backend error";
    case tls_errc::ktls_unavailable:
      return "kernel TLS unavailable";
  }
  return "unknown weft.tls error";
}

const std::error_category& tls_category() noexcept {
  // Constant-initialised (ErrorCategory's constructor is constexpr): safe from any thread.
  static const ErrorCategory<tls_errc> category("weft.tls", &to_string);
  return category;
}

}  // namespace weft::tls
