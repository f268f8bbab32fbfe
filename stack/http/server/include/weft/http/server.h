// weft::http::Server — the HTTP/1.1 subset on the event core: keep-alive, pipelining, bodies
// both ways, limits that answer with their status, a router, deferred responses.
//
// Per connection: requests are parsed in place by RequestParser (parser.h) and answered in
// order. A request reaches its route's handler once it is complete (head and whole body);
// the handler answers at once (Exchange::respond), or takes Exchange::defer() and answers
// later from a timer, an event or another worker (http::respond with the Deferred), or turns
// the connection into an event stream (Exchange::events, SSE). While a response is deferred,
// the connection keeps reading so that a client that leaves is noticed (the connection is
// closed and the late answer dropped); bytes of a pipelined next request are held, and
// reading pauses, until the deferred response is out.
//
// Errors answer with their status and close, without reading further requests: the parser's
// (400, 413, 414, 417, 431, 501, 505; error.h), 408 when a head is not complete within
// ServerConfig::header_timeout_ms (slowloris), 404 / 405 with Allow from the router, 413 when
// a body crosses its route's limit (the body is cut off there: the rest is not read), 503
// with Retry-After when the worker is out of connections (ServerConfig::overload_reserve
// handlers answer it) or of body space. The connection is closed after
// max_requests_per_connection requests, after an idle keep-alive of idle_timeout_ms, and
// when the request says so (HTTP/1.1 "Connection: close", HTTP/1.0 without "keep-alive").
//
// Memory: every structure is allocated when the worker starts: the connection handlers
// (each with its parser state and header array), `body_slots` request-body buffers of
// parser.max_body_size bytes, `assembly_slots` buffers for request heads that arrive split
// across reads, the route table. A request whose head and body arrive in one read is served
// from the receive buffer without a copy. Responses are copied once into the worker's pool
// buffers (or sent by reference: respond_static). Steady state allocates nothing.
//
// Threading: a Server connection, its Exchange and the Router belong to one worker. A
// Deferred may travel to any worker: respond() there posts the encoded response (one of the
// runtime's shared buffers, Config::shared_buffers > 0) to the owner.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <weft/base/result.h>
#include <weft/http/parser.h>
#include <weft/http/query.h>
#include <weft/http/request.h>
#include <weft/platform/conn.h>
#include <weft/platform/runtime.h>

namespace weft::http {

class Exchange;
class HttpConn;
class HttpWorker;
struct HeadSpec;

namespace sse {
class Streams;
}

// A route handler. The Exchange is valid during the call only; answer through it before
// returning, or take ex.defer() / ex.events(). A handler that does neither gets 500.
using HandlerFn = void (*)(void* ctx, Exchange& ex) noexcept;

struct RouteOptions {
  // Largest request body this route takes; 0: ServerConfig::parser.max_body_size. A larger
  // Content-Length is answered 413 before the body is read; a chunked body is cut off with
  // 413 at the byte that crosses it.
  std::uint64_t max_body = 0;
};

// Method + path pattern -> handler. Patterns are literal segments and parameters:
// "/jobs/{id}/events"; a parameter matches one non-empty segment. Literal segments win over
// parameters where both match. Patterns (and parameter names) are views: keep them alive as
// long as the server (string literals). HEAD is served by the GET route (body not sent).
class Router {
 public:
  static constexpr std::size_t kMaxRoutes = 64;
  static constexpr std::size_t kMaxParams = 4;
  static constexpr std::size_t kMaxSegments = 16;

  // Errors: invalid_argument (pattern not starting with '/', an empty or unclosed {param},
  // too many segments or params, no fn), already_exists (same method and pattern), no_space.
  [[nodiscard]] Result<void> add(Method m, std::string_view pattern, HandlerFn fn, void* ctx,
                                 RouteOptions options = {}) noexcept;
  // Any object with `void operator()(Exchange&) noexcept`; it must outlive the server.
  template <class F>
  [[nodiscard]] Result<void> add(Method m, std::string_view pattern, F* obj,
                                 RouteOptions options = {}) noexcept {
    return add(
        m, pattern, [](void* ctx, Exchange& ex) noexcept { (*static_cast<F*>(ctx))(ex); }, obj,
        options);
  }

  struct Param {
    std::string_view name;
    std::string_view value;  // still percent-encoded
  };
  struct Route {
    Method method = Method::other;
    std::string_view pattern;
    HandlerFn fn = nullptr;
    void* ctx = nullptr;
    RouteOptions options;
    std::uint8_t segments = 0;
    std::string_view seg[kMaxSegments];  // literal text, or the param name for a param
    std::uint32_t param_mask = 0;        // bit i: segment i is a parameter
  };
  struct Match {
    const Route* route = nullptr;  // null: no route for (method, path)
    std::uint16_t status = 404;    // when route is null: 404, or 405 (path known)
    std::uint16_t allow = 0;       // 405: bit per Method of the routes of that path
    Param params[kMaxParams];
    std::uint8_t n_params = 0;
  };
  // `path` is the request's path (still encoded); HEAD matches GET.
  [[nodiscard]] Match match(Method m, std::string_view path) const noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return n_; }

 private:
  Route routes_[kMaxRoutes];
  std::size_t n_ = 0;
};

// Writes "GET, HEAD, POST" for an allow mask into out; returns the length.
std::size_t format_allow(std::uint16_t allow, std::span<char> out) noexcept;

// A response that will be completed later, possibly on another worker. A plain value; a
// stale one (the client left, or the response was already sent) is detected and dropped.
struct Deferred {
  platform::ConnId conn;
  std::uint32_t seq = 0;        // the request's number on its connection
  HttpWorker* owner = nullptr;  // the owning worker's server state
  bool head_only = false;       // HEAD: send no body
  bool keep_alive = true;       // the connection may serve another request after it
  bool http10 = false;
  std::int16_t cors = -1;  // the allowed origin (ServerConfig::cors_origins index)
};

// An extra response header (name and value without CR/LF; copied).
struct ResponseHeader {
  std::string_view name;
  std::string_view value;
};

// Completes a deferred response from the worker `here` (any worker of the runtime): on the
// owner it is sent at once; from another worker the whole response is encoded into one of
// the runtime's shared buffers and posted to the owner. Every Deferred should be answered
// once; one whose connection has gone is dropped (gone). Errors: gone (detected on the
// owner only), too_large (does not fit a shared buffer), no_buffers, queue_full (post ring
// full: retry), invalid_argument (a header with CR/LF).
Result<void> respond(platform::Loop& here, const Deferred& d, std::uint16_t status,
                     std::string_view content_type, std::string_view body,
                     std::span<const ResponseHeader> headers = {}) noexcept;

// One request being answered, during its handler.
class Exchange {
 public:
  [[nodiscard]] const Request& request() const noexcept { return *req_; }
  [[nodiscard]] Method method() const noexcept { return req_->method; }
  // The whole request body (empty without one). Valid during the handler.
  [[nodiscard]] std::string_view body() const noexcept { return body_; }
  // A path parameter of the route ("" when the route has none of that name), still encoded.
  [[nodiscard]] std::string_view param(std::string_view name) const noexcept;
  [[nodiscard]] QueryParams query() const noexcept { return QueryParams(req_->query); }
  [[nodiscard]] const Header* header(std::string_view name) const noexcept {
    return find_header(req_->headers, name);
  }
  [[nodiscard]] platform::Conn& conn() const noexcept { return *conn_; }
  [[nodiscard]] platform::Loop& loop() const noexcept { return conn_->loop(); }

  // Adds a header to the response (up to 8, copied; names and values without CR/LF).
  // Errors: invalid_argument, no_space.
  Result<void> add_header(std::string_view name, std::string_view value) noexcept;
  // The response, body copied. A HEAD request gets the headers (Content-Length included)
  // without the body. Errors: closed, no_buffers (the connection is then aborted).
  Result<void> respond(std::uint16_t status, std::string_view content_type,
                       std::string_view body) noexcept;
  // The same, body sent by reference: it must have static storage duration.
  Result<void> respond_static(std::uint16_t status, std::string_view content_type,
                              std::string_view body) noexcept;
  // The response with a chunked body (Transfer-Encoding: chunked), one chunk per non-empty
  // piece, then the last chunk; to an HTTP/1.0 client the pieces are sent close-delimited
  // (1.0 has no chunked coding) and the connection is closed after them.
  Result<void> respond_chunked(std::uint16_t status, std::string_view content_type,
                               std::span<const std::string_view> pieces) noexcept;
  // Keeps the request open past the handler: answer with http::respond(loop, d, ...).
  // While deferred, the connection's idle timeout is off.
  [[nodiscard]] Deferred defer() noexcept;
  // Turns the connection into a Server-Sent Events stream of `topic` of the server's
  // sse::Streams (ServerConfig::streams): subscribes first, then sends the response head
  // (200, text/event-stream, no-cache, no length: the stream ends when the connection
  // closes), then the events missed since the request's Last-Event-ID (and a weft.gap
  // marker when some were lost), then every new event; comment heartbeats keep proxies
  // from timing it out. Errors: unavailable (no streams configured: answered 503), the
  // Streams' errors (answered 503 / 400).
  Result<void> events(std::string_view topic) noexcept;

 private:
  friend class HttpConn;
  Result<void> send(std::uint16_t status, std::string_view content_type, std::string_view body,
                    bool by_ref) noexcept;
  // The response head's fields this request decides: connection, version, CORS, extra headers.
  [[nodiscard]] HeadSpec head_spec(std::uint16_t status,
                                   std::string_view content_type) const noexcept;
  Exchange(HttpConn& h, platform::Conn& c, const Request& r, std::string_view body,
           const Router::Match& m) noexcept
      : h_(&h), conn_(&c), req_(&r), body_(body), match_(&m) {}
  HttpConn* h_;
  platform::Conn* conn_;
  const Request* req_;
  std::string_view body_;
  const Router::Match* match_;
  ResponseHeader extra_[8];
  std::uint8_t n_extra_ = 0;
  bool answered_ = false;
  std::uint16_t extra_bytes_ = 0;
};

struct ServerConfig {
  // Parser limits: request line (414), header bytes and count (431), the largest body any
  // route takes (413), leniency flags. Defaults: parser.h's Config.
  Config parser;
  std::uint32_t connections = 0;             // handlers per worker; 0: Config::max_connections
  std::uint32_t overload_reserve = 16;       // extra handlers that only answer 503 when full
  std::uint32_t retry_after_s = 1;           // Retry-After of a 503
  std::uint32_t header_timeout_ms = 10'000;  // a head must complete within it: else 408
  std::uint32_t idle_timeout_ms = 60'000;    // keep-alive connection without a request
  std::uint32_t write_timeout_ms = 30'000;   // queued output without progress: closed
  std::uint32_t max_requests_per_connection = 10'000;  // then "Connection: close"; 0: no limit
  std::uint32_t body_slots = 8;       // request bodies being received at once, per worker
  std::uint32_t assembly_slots = 16;  // request heads split across reads at once, per worker
  // CORS: allowed origins ("*": any). Empty: no CORS headers, OPTIONS preflights get 404/405.
  std::vector<std::string> cors_origins;
  std::string cors_allow_headers = "Content-Type, Last-Event-ID";
  std::uint32_t cors_max_age_s = 600;
  std::uint32_t sse_heartbeat_ms = 15'000;  // comment line on every event stream; 0: none
  std::string server_name = "weft";         // the Server header; empty: none
  // Event streams for Exchange::events (must outlive the runtime); null: none.
  sse::Streams* streams = nullptr;
  // Called once per worker and listener (each service() on each worker has its own router),
  // on the worker's thread, before it serves: fill the router. State made here must not be
  // replaced by a later call for the same worker (a second listener): keep one per call.
  std::function<void(Router&, platform::Loop&)> setup;
};

struct ServerStats {
  std::uint64_t connections = 0;    // accepted
  std::uint64_t requests = 0;       // requests parsed completely (handled or refused)
  std::uint64_t responses[6] = {};  // by class: [1] 1xx ... [5] 5xx
  std::uint64_t status_400 = 0, status_404 = 0, status_408 = 0, status_413 = 0, status_431 = 0,
                status_503 = 0;
  std::uint64_t bytes_in = 0;        // request bytes parsed
  std::uint64_t bytes_out = 0;       // response bytes queued (heads and bodies)
  std::uint64_t deferred = 0;        // responses deferred
  std::uint64_t late_responses = 0;  // deferred responses dropped: the client had gone
  std::uint64_t streams_opened = 0;  // event streams started
  std::uint64_t streams_open = 0;    // gauge: event streams open now
  std::uint64_t open = 0;            // gauge: connections open now
};

class Server {
 public:
  explicit Server(ServerConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // A platform::Service serving HTTP on `address` (add it to Runtime::start).
  [[nodiscard]] platform::Service service(const platform::Address& address);
  [[nodiscard]] const ServerConfig& config() const noexcept { return config_; }
  // Any thread: the sum over workers (relaxed counters).
  [[nodiscard]] ServerStats stats() const noexcept;
  // Any thread: the counters of the worker with loop index `worker` (zeros when it has none).
  [[nodiscard]] ServerStats worker_stats(std::uint32_t worker) const noexcept;

 private:
  friend class HttpWorker;
  void attach(HttpWorker* w) noexcept;
  void detach(HttpWorker* w) noexcept;
  ServerConfig config_;
  struct Workers;
  std::unique_ptr<Workers> workers_;
};

// The reason phrase of a status ("" for an unknown one).
std::string_view reason_phrase(std::uint16_t status) noexcept;

}  // namespace weft::http
