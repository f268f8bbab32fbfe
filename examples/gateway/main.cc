// weft-gateway: a sidecar that serves HTTP/SSE on the network side and forwards to local
// daemons over the binary protocol (Unix sockets or TCP), with upstream pools, balancing,
// health checks and ejection. The configuration format is in gateway.h.
//
//   weft-gateway --config FILE [--listen ADDR] [--workers N] [--cpus LIST]
//                [--backend auto|uring|epoll]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <weft/base/log.h>
#include <weft/platform/runtime.h>

#include <weft/pubsub/hub.h>
#include "example_args.h"

#include "gateway.h"

namespace {

using namespace weft;

constexpr const char* kHelp =
    "usage: weft-gateway --config FILE [--listen ADDR] [--workers N] [--cpus LIST]\n"
    "                    [--backend auto|uring|epoll]\n"
    "\n"
    "Serves HTTP and Server-Sent Events and forwards to local daemons over weft's binary\n"
    "protocol. FILE, one directive per line (# comments):\n"
    "\n"
    "  listen 127.0.0.1:8080\n"
    "  upstream settings round_robin unix:/run/settings-a.sock unix:/run/settings-b.sock\n"
    "  rpc POST /settings/get settings weft.examples.Settings/Get idempotent timeout_ms=1000\n"
    "  rpc POST /settings/put settings weft.examples.Settings/Put\n"
    "  events /events/ settings settings demo\n"
    "\n"
    "  upstream NAME [round_robin|least_outstanding] ADDR...   endpoints (unix:/path,\n"
    "                        unix:@name or host:port), each with a connection pool, checked\n"
    "                        by PING, ejected when failing and readmitted after a probe\n"
    "  rpc METHOD PATH UPSTREAM RPC [idempotent] [timeout_ms=N] [type=CONTENT-TYPE]\n"
    "                        the HTTP body is the RPC payload; the answer's payload is the\n"
    "                        response body. Only idempotent routes (or requests with an\n"
    "                        Idempotency-Key header) are retried on another endpoint.\n"
    "  events PREFIX UPSTREAM TOPIC...   GET PREFIX<topic>: the topic as an SSE stream\n"
    "\n"
    "Clients may shorten a route's deadline with X-Timeout-Ms: N. Failures: 502 (upstream\n"
    "failed, or lost mid-call), 503 + Retry-After (no endpoint, overloaded), 504 (deadline).\n"
    "GET /metrics: per-endpoint calls and admission. SIGINT/SIGTERM drain and exit 0.\n";

}  // namespace

int main(int argc, char** argv) {
  platform::block_termination_signals();
  platform::Config cfg;
  cfg.max_connections = 1024;
  cfg.outbound_connections = 256;
  cfg.shared_buffers = 256;
  cfg.shared_buffer_size = 16 * 1024 + 512;
  std::string config_path;
  std::string listen;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (!std::strcmp(a, "--help") || !std::strcmp(a, "-h")) {
      std::fputs(kHelp, stdout);
      return 0;
    }
    const char* v = i + 1 < argc ? argv[++i] : nullptr;
    bool ok = v != nullptr;
    if (!ok) {
    } else if (!std::strcmp(a, "--config")) {
      config_path = v;
    } else if (!std::strcmp(a, "--listen")) {
      listen = v;
    } else if (!std::strcmp(a, "--workers")) {
      ok = examples::parse_u32(v, cfg.workers) && cfg.workers >= 1 && cfg.workers <= 64;
    } else if (!std::strcmp(a, "--cpus")) {
      cfg.cpus = v;
    } else if (!std::strcmp(a, "--backend")) {
      ok = examples::parse_backend(v, cfg.backend);
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "weft-gateway: bad argument %s%s%s\n\n%s", a, v ? " " : "", v ? v : "",
                   kHelp);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "weft-gateway: --config FILE is required\n\n%s", kHelp);
    return 2;
  }
  std::ifstream in(config_path);
  if (!in) {
    std::fprintf(stderr, "weft-gateway: cannot read %s\n", config_path.c_str());
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string error;
  auto parsed = examples::GatewayConfig::parse(text.str(), error);
  if (!parsed) {
    std::fprintf(stderr, "weft-gateway: %s: %s\n", config_path.c_str(), error.c_str());
    return 2;
  }
  examples::GatewayConfig gc = std::move(parsed.value());
  if (!listen.empty()) {
    gc.listen = listen;
  }
  auto addr = platform::Address::parse(gc.listen);
  if (!addr) {
    std::fprintf(stderr, "weft-gateway: bad listen address %s\n", gc.listen.c_str());
    return 2;
  }

  pubsub::Hub hub;
  pubsub::Limits limits;
  limits.max_queued_bytes = 260 * 1024;
  http::sse::Streams streams;
  if (!hub.init(limits, cfg) || !streams.init({}) || !streams.attach_hub(hub)) {
    std::fprintf(stderr, "weft-gateway: pub/sub setup failed\n");
    return 1;
  }
  examples::Gateway gateway(std::move(gc), &streams);
  http::ServerConfig hc;
  hc.parser.max_body_size = 16 * 1024;
  hc.streams = &streams;
  hc.setup = [&](http::Router& r, platform::Loop& loop) { gateway.setup(r, loop); };
  http::Server server(std::move(hc));
  std::vector<platform::Service> services;
  services.push_back(server.service(addr.value()));
  platform::Runtime rt;
  if (Result<void> r = rt.start(cfg, std::move(services)); !r) {
    std::fprintf(stderr, "weft-gateway: %s\n", r.error().message().c_str());
    return 1;
  }
  char where[128];
  rt.local_address(0).format(where, sizeof where);
  std::printf("weft-gateway: serving http://%s/ (%zu worker(s), %s)\n", where, rt.worker_count(),
              platform::to_string(rt.backend_kind()));
  for (const auto& u : gateway.config().upstreams) {
    std::printf("weft-gateway: upstream %s:", u.name.c_str());
    for (const platform::Address& a : u.endpoints) {
      a.format(where, sizeof where);
      std::printf(" %s", where);
    }
    std::printf("\n");
  }
  std::fflush(stdout);
  const int sig = platform::wait_for_termination_signal();
  log(LogLevel::info, "weft-gateway: signal %d, draining", sig);
  rt.stop();
  rt.wait();
  const http::ServerStats s = server.stats();
  std::printf("weft-gateway: stopped; requests %llu, 5xx %llu\n",
              static_cast<unsigned long long>(s.requests),
              static_cast<unsigned long long>(s.responses[5]));
  return 0;
}
