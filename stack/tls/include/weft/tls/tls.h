// weft::tls — a sans-IO TLS engine: Context (per listener or client configuration) and
// Engine (one per connection). No sockets, no clock, no threads: the caller moves ciphertext
// between the socket and the Engine and plaintext between the Engine and its protocol.
//
//   socket bytes --feed()--> Engine --read()--> plaintext
//   plaintext   --write()--> Engine --take()--> socket bytes
//
// Backends, chosen at build time (CMake WEFT_TLS=mbedtls|openssl|OFF), same API:
//   - OpenSSL 3 (weft_tls_openssl): TLS 1.2 and 1.3, memory BIOs; kTLS key export.
//   - mbedTLS 2.28 (weft_tls_mbedtls): TLS 1.2 ONLY (2.28 has no production TLS 1.3), no
//     kTLS key export; backend() says which one is linked.
// Both: ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 only (no CBC, no RSA key
// transport, no static DH), TLS 1.2 minimum, renegotiation refused (a TLS 1.2 renegotiation
// attempt fails the connection with renegotiation_refused), session tickets.
//
// Memory: the backends allocate (OpenSSL always; the Debian mbedTLS is built without
// MBEDTLS_MEMORY_BUFFER_ALLOC_C): a Context once, an Engine at create() and during the
// handshake, and in the steady state OpenSSL 2-4 per record, mbedTLS none — docs/tls.md
// lists the measured counts, asserted by tests/tls/alloc_test.cc. Engine::feed() buffers at most
// kMaxBufferedIn bytes of unprocessed ciphertext; take() never needs more than the caller's span.
//
// Threading: a Context is immutable after create() except its client session cache (guarded
// by a mutex), so it may be shared by Engines on several threads. An Engine belongs to one
// thread at a time. The Context must outlive every Engine made from it.
//
// Errors: values (tls_errc, weft/tls/error.h), never exceptions. A connection-fatal error is
// sticky: every later call returns it; take() still yields the alert the backend queued.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

#include <weft/base/result.h>
#include <weft/tls/error.h>

// Each backend library compiles this API into its own inline namespace (WEFT_TLS_NS, a
// public compile definition of weft_tls_openssl / weft_tls_mbedtls), so both libraries can be
// linked into one program (the cross-backend tests) without clashing; callers just write
// weft::tls::Engine.
#ifndef WEFT_TLS_NS
#error "WEFT_TLS_NS is undefined: link weft::tls (or weft::tls_openssl / weft::tls_mbedtls)"
#endif

namespace weft::tls {
inline namespace WEFT_TLS_NS {

namespace detail {
struct ContextImpl;
struct EngineImpl;
}  // namespace detail

enum class Role : std::uint8_t { client, server };
enum class Backend : std::uint8_t { openssl, mbedtls };
enum class Version : std::uint8_t { tls12, tls13 };
// Server: whether a client certificate is asked for. `optional` asks and verifies one if sent.
enum class ClientAuth : std::uint8_t { none, optional, required };

// Most unprocessed ciphertext an Engine holds: one maximal TLS 1.2 record (5 + 2^14 + 2048)
// plus slack, so a caller that feeds whole socket reads always makes progress.
inline constexpr std::size_t kMaxBufferedIn = 5 + 16384 + 2048 + 1024;
// Most ALPN protocols in a Config (each 1..255 bytes).
inline constexpr std::size_t kMaxAlpn = 8;

struct Config {
  Role role = Role::server;
  // PEM files, read once by create(); nullptr = none. A server needs chain + key; a client
  // needs them only for mutual TLS. ca_file: the roots that verify the peer (a client with
  // verify_peer needs one; a server with client_auth != none needs one).
  const char* cert_chain_file = nullptr;
  const char* key_file = nullptr;
  const char* ca_file = nullptr;
  // Client: verify the server's chain against ca_file (and its name against server_name).
  // Off only for tests against throw-away certificates.
  bool verify_peer = true;
  ClientAuth client_auth = ClientAuth::none;
  // ALPN protocols in preference order (the server picks its first one the client offered).
  // Views must stay valid until create() returns (create() copies them).
  std::span<const std::string_view> alpn{};
  // Server: what happens when the client offers ALPN and none matches. true: fail the
  // handshake with alpn_mismatch (RFC 7301 §3.2 no_application_protocol alert); false:
  // continue without ALPN (alpn() is empty) — OpenSSL only: on mbedTLS 2.28, create()
  // returns unsupported for a server with ALPN and alpn_strict = false.
  bool alpn_strict = true;
  Version max_version = Version::tls13;  // clamped to tls12 on mbedTLS
  bool session_tickets = true;           // server issues tickets; client resumes with them
};

class Engine;

class Context {
 public:
  // Builds the backend configuration: reads and checks the PEM files, sets versions, suites,
  // ALPN, tickets. Errors: bad_config (missing/unreadable/mismatched files, bad ALPN names),
  // no_memory, internal.
  [[nodiscard]] static Result<Context> create(const Config& config) noexcept;

  Context(Context&& o) noexcept;
  Context& operator=(Context&& o) noexcept;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context();

  // A new connection. server_name (client only): SNI sent and the name the certificate must
  // match (nullptr: no SNI and no name check). A client Engine resumes the Context's most
  // recent session for the same server_name when tickets are on.
  // Errors: no_memory, internal.
  [[nodiscard]] Result<Engine> engine(const char* server_name = nullptr) const noexcept;

  [[nodiscard]] Role role() const noexcept;

 private:
  explicit Context(detail::ContextImpl* impl) noexcept : impl_(impl) {}
  detail::ContextImpl* impl_ = nullptr;
};

enum class State : std::uint8_t {
  handshaking,  // keep moving bytes: take() what there is, feed() what arrives
  established,  // read()/write() carry application data
  closed,       // close_notify sent or received (or both); take() may still hold bytes
  failed,       // a connection-fatal error (error()); take() may still hold an alert
};

class Engine {
 public:
  Engine(Engine&& o) noexcept;
  Engine& operator=(Engine&& o) noexcept;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  // Hands received ciphertext to the Engine and advances the handshake. Returns how many
  // bytes were taken (fewer than offered when kMaxBufferedIn is reached: read() the
  // plaintext and feed the rest again). Errors: the connection-fatal codes (sticky).
  [[nodiscard]] Result<std::size_t> feed(std::span<const std::byte> ciphertext) noexcept;

  // Copies decrypted application data into out; 0 = nothing buffered now (feed more).
  // After the peer's close_notify: 0 and state() == closed. Errors: connection-fatal codes.
  [[nodiscard]] Result<std::size_t> read(std::span<std::byte> out) noexcept;

  // Encrypts plaintext; returns how much was taken (0 while the handshake is running).
  // The records wait for take(). Errors: closed after close(), connection-fatal codes.
  [[nodiscard]] Result<std::size_t> write(std::span<const std::byte> plaintext) noexcept;

  // Copies pending ciphertext (handshake messages, records, alerts) into out; returns the
  // count (0 = nothing to send). Never fails: on a failed Engine it drains the alert.
  [[nodiscard]] std::size_t take(std::span<std::byte> out) noexcept;
  // Bytes take() would return now (0 = nothing to send).
  [[nodiscard]] std::size_t pending() const noexcept;

  // Queues close_notify (take() it). Idempotent; read() still returns what was buffered.
  void close() noexcept;

  [[nodiscard]] State state() const noexcept;
  [[nodiscard]] bool handshake_done() const noexcept {
    return state() == State::established || state() == State::closed;
  }
  // The sticky error of a failed Engine (empty otherwise).
  [[nodiscard]] std::error_code error() const noexcept;
  // True once the peer's close_notify arrived.
  [[nodiscard]] bool peer_closed() const noexcept;

  // After the handshake: the negotiated ALPN protocol ("" = none), valid as long as the
  // Engine; the SNI name (server: what the client sent, "" = none; client: what it set);
  // whether the peer presented a certificate that verified; whether the session was resumed.
  [[nodiscard]] std::string_view alpn() const noexcept;
  [[nodiscard]] std::string_view server_name() const noexcept;
  [[nodiscard]] bool peer_verified() const noexcept;
  // The subject DN of the peer's certificate as one line ("CN=dev1, O=fleet" on mbedTLS,
  // "/CN=dev1/O=fleet" on OpenSSL), written NUL-terminated into out (truncated to fit);
  // returns its length without the NUL, 0 when the peer sent no certificate (or out is
  // empty). Whether it verified is peer_verified(). No allocation on mbedTLS; OpenSSL's
  // X509_NAME_oneline into the caller's buffer allocates nothing either.
  [[nodiscard]] std::size_t peer_subject(std::span<char> out) const noexcept;
  [[nodiscard]] bool resumed() const noexcept;
  [[nodiscard]] Version version() const noexcept;
  // The backend's name of the cipher suite (static text, "" before the handshake): IANA
  // (TLS_AES_128_GCM_SHA256) on OpenSSL, TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256 on mbedTLS.
  [[nodiscard]] const char* cipher() const noexcept;

  [[nodiscard]] Role role() const noexcept;

  // Backend escape hatch for the kTLS step (weft/tls/ktls.h).
  [[nodiscard]] detail::EngineImpl* impl() const noexcept { return impl_; }

 private:
  friend class Context;
  explicit Engine(detail::EngineImpl* impl) noexcept : impl_(impl) {}
  detail::EngineImpl* impl_ = nullptr;
};

// The backend this library was built with.
[[nodiscard]] Backend backend() noexcept;

}  // namespace WEFT_TLS_NS
}  // namespace weft::tls
