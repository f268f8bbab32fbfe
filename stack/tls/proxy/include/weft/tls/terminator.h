// weft::tls_proxy — a TLS-terminating service on weft's event loop (issue 19, the sidecar
// step): it accepts TLS connections on a weft listener and forwards the plaintext, both
// ways, to an upstream address (TCP, usually on loopback, or a Unix socket).
//
//   client --TLS--> [listener: Engine] --plaintext--> upstream (Loop::connect)
//   client <--TLS-- [Engine.write/take] <--plaintext-- upstream
//
// This is a proxy hop, not TLS inside every platform::Conn: the upstream is an ordinary
// plaintext service (often in the same Runtime, on 127.0.0.1 or a Unix socket).
//
// Per accepted connection the terminator takes one Pair from a per-worker pool built when
// the worker starts: the two Handlers (client side, upstream side) and their state. The
// Engine itself cannot be pooled (weft::tls has no Engine reset): it is made by
// Context::engine() when the connection is accepted and freed when the Pair is released,
// and the TLS backend allocates during the handshake (docs/tls.md, "Allocations").
//
// Behaviour:
//   - Handshake timeout: the client side has a read timeout of handshake_timeout_ms until the
//     handshake is done (a stalled or silent client is aborted with timed_out).
//   - Routing: after the handshake the upstream is chosen by the negotiated ALPN protocol
//     (routes[i].alpn == Engine::alpn()), else the route with an empty alpn (the default).
//     The Context's Config::alpn lists what the server offers; the terminator only routes.
//   - Back-pressure: plaintext is moved from the Engine to the upstream only while the
//     upstream's queue is below Config::high_watermark, ciphertext is produced only while the
//     client's queue is; the side whose peer is full stops being read (pause_reading) and is
//     resumed when that peer's queue drains (on_writable). Per connection and direction at
//     most high_watermark + one pool buffer is queued, plus the Engine's own buffers
//     (kMaxBufferedIn and the backend's record buffers) and one held receive buffer.
//   - Close propagation: the client's close_notify or FIN closes the upstream gracefully
//     (queued plaintext is delivered first); the upstream's FIN or a failed connect sends
//     close_notify to the client after the last bytes and closes. A failed Engine (garbage,
//     bad certificate, ...) flushes its alert and closes the client; the upstream is closed.
//     There is no half-close: Conn::close() stops input, so once one side ends, the other's
//     later bytes are dropped.
//   - Limits: the pool holds min(max_connections or Config::max_connections,
//     Config::outbound_connections) Pairs per worker (every TLS connection needs one outbound
//     slot); a connection beyond that is refused (closed at once, counted in refused).
//   - After the handshake the client side has no idle timeout of its own: the upstream's
//     policy decides (its FIN closes the client); write timeouts stay.
//   - kTLS: make_terminator() calls ktls_probe() once and logs why kTLS is not used (this
//     step always uses the user-space path).
//
// Threading: make_terminator() on any thread; the Service's factories and handlers run on
// their worker. The Context is shared by all workers (immutable) and must outlive the
// Runtime; so must stats and the runtime named in a Route.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <weft/platform/address.h>
#include <weft/platform/runtime.h>
#include <weft/tls/tls.h>

namespace weft::tls {
inline namespace WEFT_TLS_NS {

// One upstream, chosen by ALPN. With runtime set, the address is that runtime's service
// `service` as it was bound (read when each worker starts, so a port 0 resolves): the
// terminator can front a listener of its own Runtime.
struct Route {
  std::string_view alpn;  // "" = the default route; copied by make_terminator()
  platform::Address address;
  const platform::Runtime* runtime = nullptr;
  std::size_t service = 0;
};

// Counters, summed over workers (relaxed atomics: any thread may read them).
struct TerminatorStats {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> refused{0};             // no free Pair (the limit above)
  std::atomic<std::uint64_t> handshakes{0};          // completed
  std::atomic<std::uint64_t> handshake_failures{0};  // the Engine failed before completing
  std::atomic<std::uint64_t> handshake_timeouts{0};
  std::atomic<std::uint64_t> peers_verified{0};     // a client certificate that verified
  std::atomic<std::uint64_t> upstream_failures{0};  // connect refused, timed out, reset
  std::atomic<std::uint64_t> bytes_up{0};           // plaintext client -> upstream
  std::atomic<std::uint64_t> bytes_down{0};         // plaintext upstream -> client
  std::atomic<std::uint64_t> max_queued{0};         // largest queue seen on either side (bytes)
};

// Called on the worker after each completed handshake: the negotiated ALPN ("" = none) and
// the peer's certificate subject ("" = none sent; verified says whether it verified). Views
// valid during the call only.
using PeerFn = void (*)(void* ctx, std::string_view alpn, std::string_view subject,
                        bool verified) noexcept;

struct TerminatorOptions {
  // The default upstream is make_terminator's `upstream`; routes add ALPN choices (at most
  // kMaxRoutes, the default included). Copied.
  std::span<const Route> routes{};
  std::uint32_t handshake_timeout_ms = 10'000;  // exceeded -> aborted (timed_out)
  std::uint32_t max_connections = 0;            // per worker; 0: Config::max_connections
  TerminatorStats* stats = nullptr;             // optional, caller-owned
  PeerFn on_peer = nullptr;                     // optional
  void* on_peer_ctx = nullptr;
  const char* name = "tls";  // in logs (static text)
};

inline constexpr std::size_t kMaxRoutes = 8;

// The Service: listen on `listen`, terminate TLS with `context` (a server Context), forward
// to `upstream` (or the ALPN route). Logs the kTLS probe's verdict once. Errors (logged,
// the Service is still returned and refuses every connection): a client Context, more than
// kMaxRoutes routes. Never allocates per connection (see above for the Engine).
[[nodiscard]] platform::Service make_terminator(const platform::Address& listen,
                                                const Context& context,
                                                const platform::Address& upstream,
                                                const TerminatorOptions& options = {});

}  // namespace WEFT_TLS_NS
}  // namespace weft::tls
