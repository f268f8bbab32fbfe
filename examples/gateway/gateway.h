// weft-gateway's application: HTTP/SSE on the network side, the binary protocol to local
// daemons (Unix sockets or TCP) through client::Upstream on the other. A library so that
// tests drive the same code as the binary.
//
// Configuration (a text file; `#` starts a comment; one directive per line):
//
//   listen ADDR                          the HTTP side, e.g. 127.0.0.1:8080 (--listen overrides)
//   upstream NAME [round_robin|least_outstanding] ADDR...
//                                        endpoints: unix:/run/app.sock, unix:@name, 127.0.0.1:7100
//   rpc METHOD PATH UPSTREAM RPC [idempotent] [timeout_ms=N] [type=CONTENT-TYPE]
//                                        METHOD PATH (HTTP) -> the RPC "package.Service/Method";
//                                        the request body is the payload, the response payload
//                                        the body (Content-Type `type`, default
//                                        application/octet-stream)
//   events PREFIX UPSTREAM TOPIC...      GET PREFIX<topic> streams the topic as SSE (the
//                                        gateway subscribes to it on the upstream)
//
// Per request: the deadline is the route's timeout_ms (default 5000), or less when the
// client sends `X-Timeout-Ms: N`; it travels to the daemon with the call. Only idempotent
// routes are retried on another endpoint — or a request carrying `Idempotency-Key: K`,
// which is sent on as the call's idempotency key (the daemon runs it once). Failures answer
// with a clear text body: 502 (the upstream failed or the connection was lost mid-call: the
// request may have run), 503 + Retry-After (no endpoint available, or overloaded), 504 (the
// deadline passed), 400/403/413 for the daemon's bad_payload/permission_denied/too_large.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <weft/base/result.h>
#include <weft/client/client.h>
#include <weft/client/upstream.h>
#include <weft/http/server.h>
#include <weft/http/streams.h>
#include <weft/platform/address.h>

namespace weft::examples {

struct GatewayConfig {
  struct Upstream {
    std::string name;
    client::Balance balance = client::Balance::round_robin;
    std::vector<platform::Address> endpoints;
  };
  struct Rpc {
    http::Method method = http::Method::post;
    std::string path;
    std::string upstream;
    std::string rpc;  // "package.Service/Method"
    bool idempotent = false;
    std::uint32_t timeout_ms = 5000;
    std::string content_type = "application/octet-stream";
  };
  struct Events {
    std::string prefix;  // "/events/": GET /events/<topic>
    std::string upstream;
    std::vector<std::string> topics;
  };
  std::string listen = "127.0.0.1:8080";
  std::vector<Upstream> upstreams;
  std::vector<Rpc> rpcs;
  std::vector<Events> events;

  // Parses the configuration text; errors name the line ("line 3: unknown upstream x").
  static Result<GatewayConfig> parse(std::string_view text, std::string& error);
};

class Gateway {
 public:
  static constexpr std::uint32_t kPending = 1024;  // proxied requests in flight per worker

  Gateway(GatewayConfig config, http::sse::Streams* streams);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // For ServerConfig::setup: the routes, and the worker's upstreams (and, on worker 0, the
  // event subscriptions).
  void setup(http::Router& router, platform::Loop& loop);
  // Before Runtime::stop: closes the worker's upstream clients (call on each worker, or
  // let the runtime's stop abort them).
  [[nodiscard]] const GatewayConfig& config() const noexcept { return config_; }

  // Implementation (gateway.cc).
  struct Worker;
  struct Route;
  struct Pending;

 private:
  friend struct GatewayRoutes;
  GatewayConfig config_;
  http::sse::Streams* streams_;
  std::deque<Route> routes_;  // stable addresses: handlers keep pointers
  std::mutex mu_;
  std::vector<std::unique_ptr<Worker>> workers_;  // by loop index
};

}  // namespace weft::examples
