// Error codes of weft::tls (category "weft.tls").
//
// tls_errc is what Context::create(), Engine's calls and the kTLS helpers return. Two groups:
//   - connection-fatal (the peer, its certificate or its records are unacceptable): the
//     Engine is failed and stays failed (sticky); send what take() still yields (the alert),
//     then close the socket;
//   - local: the caller's error or configuration (the Engine is unchanged).
// A handshake that stalls is not an error of this layer: the Engine has no clock, the caller
// owns the handshake timeout and simply drops the Engine when it fires.
// Converting to std::error_code never allocates; message() builds a std::string from a static
// text only when a caller asks for text (logs). Codes are stable: they appear in logs.
#pragma once

#include <system_error>

namespace weft::tls {

enum class tls_errc : int {
  // Connection-fatal (sticky in the Engine).
  handshake_failed = 1,   // the handshake broke off: no shared version/cipher, a bad
                          // Finished, garbage instead of a ClientHello, an alert from the peer
  bad_record,             // a record that does not decrypt/authenticate, a wrong type or length
  record_overflow,        // a record longer than TLS allows (2^14 + expansion)
  cert_invalid,           // the peer's certificate does not verify (chain, name, dates)
  peer_cert_required,     // the server requires a client certificate and none came
  alpn_mismatch,          // the client offered ALPN and no protocol overlaps (RFC 7301 §3.2)
  renegotiation_refused,  // the peer tried to renegotiate (TLS 1.2): the connection is closed
  closed,                 // read()/write() after close_notify was sent or received
  // Local.
  bad_config,        // Context::create(): a missing/unreadable PEM, a key that does not
                     // match the certificate, an ALPN name outside 1..255 bytes
  no_memory,         // the backend could not allocate its per-connection state
  unsupported,       // asked of a backend that cannot do it (kTLS keys on mbedTLS, TLS 1.3
                     // on mbedTLS 2.28, a cipher kTLS has no struct for)
  not_ready,         // the call needs a finished handshake (ktls_keys(), ...)
  internal,          // a backend call failed in a way this layer does not classify
  ktls_unavailable,  // the kernel has no "tls" ULP (see ktls_probe())
};

// The category object; name() is "weft.tls". Never allocates.
const std::error_category& tls_category() noexcept;

inline std::error_code make_error_code(tls_errc e) noexcept {
  return {static_cast<int>(e), tls_category()};
}

// Static text for a tls_errc (never null; "unknown weft.tls error" for other values).
const char* to_string(tls_errc e) noexcept;

// True for the codes that fail an Engine (the connection must be closed).
[[nodiscard]] constexpr bool is_connection_fatal(tls_errc e) noexcept {
  return e >= tls_errc::handshake_failed && e <= tls_errc::renegotiation_refused;
}

}  // namespace weft::tls

template <>
struct std::is_error_code_enum<weft::tls::tls_errc> : std::true_type {};
