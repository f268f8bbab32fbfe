// weft-http-bench-server: weft::http::Server as the peers harness's http and sse candidate
// (../shared/peers/README.md, "Candidate contract"; bench/run_http_compare.sh runs it).
//
//   GET  /plaintext   200 "Hello, World!" (text/plain, Content-Length; respond_static)
//   POST /echo        200 with the request body
//   GET  /events      SSE: every subscriber gets --rate events/s (default $SSE_RATE or 1000),
//                     each "data: <CLOCK_REALTIME ns>" published from worker 0 through
//                     weft::pubsub (encoded once, zero-copy fan-out)
//
//   weft-http-bench-server [--port N] [--host ADDR] [--workers N] [--cpus LIST]
//                          [--backend auto|uring|epoll] [--max-conns N] [--rate N]
//
// Listens on 127.0.0.1:8080 by default; only loopback addresses are accepted. SIGTERM or
// SIGINT drains and exits 0, printing the server's counters.
#include <time.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <weft/base/log.h>
#include <weft/http/server.h>
#include <weft/http/streams.h>
#include <weft/platform/runtime.h>
#include <weft/pubsub/hub.h>

#include "load_common.h"
#include "msg_bench.h"

namespace {

using namespace weft;

void usage() {
  std::fprintf(stderr,
               "usage: weft-http-bench-server [--port N] [--host ADDR] [--workers N]\n"
               "                              [--cpus LIST] [--backend auto|uring|epoll]\n"
               "                              [--max-conns N] [--rate EVENTS_PER_S]\n");
}

bool parse_u32(const char* s, std::uint32_t& out) {
  std::uint64_t v = 0;
  if (!bench::parse_u64(s, v) || v > 0xffffffffu) {
    return false;
  }
  out = static_cast<std::uint32_t>(v);
  return true;
}

void plaintext(void*, http::Exchange& ex) noexcept {
  (void)ex.respond_static(200, "text/plain", "Hello, World!");
}

void echo(void*, http::Exchange& ex) noexcept {
  (void)ex.respond(200, "application/octet-stream", ex.body());
}

void events(void*, http::Exchange& ex) noexcept {
  (void)ex.events("events");
}

// Worker 0 publishes `rate` events per second: the timer fires every ms and publishes as
// many as are due (whole-ms timers cannot pace more finely).
struct Publisher {
  platform::TimerNode timer;
  platform::Loop* loop = nullptr;
  http::sse::Streams* streams = nullptr;
  std::uint32_t rate = 1000;
  std::uint64_t start_ns = 0;
  std::uint64_t sent = 0;
  static std::uint64_t now_ns(clockid_t c) {
    timespec ts{};
    clock_gettime(c, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
           static_cast<std::uint64_t>(ts.tv_nsec);
  }
  static void fire(platform::TimerNode* n) noexcept {
    auto* p = static_cast<Publisher*>(n->ctx);
    const std::uint64_t mono = now_ns(CLOCK_MONOTONIC);
    if (p->start_ns == 0) {
      p->start_ns = mono;
    }
    const std::uint64_t due = (mono - p->start_ns) * p->rate / 1'000'000'000u + 1;
    char data[32];
    while (p->sent < due) {
      const int len = std::snprintf(data, sizeof data, "%" PRIu64, now_ns(CLOCK_REALTIME));
      (void)p->streams->publish(*p->loop, "events", {}, {data, static_cast<std::size_t>(len)});
      ++p->sent;
    }
    p->loop->timers().schedule(p->timer, p->loop->now_ms() + 1);
  }
};

}  // namespace

int main(int argc, char** argv) {
  platform::block_termination_signals();
  platform::Config cfg;
  cfg.max_connections = 4096;
  cfg.recv_buffers = 1024;
  cfg.send_buffers = 4096;
  cfg.buffer_size = 16 * 1024;
  cfg.shared_buffers = 4096;
  cfg.shared_buffer_size = 1024;
  std::string host = "127.0.0.1";
  std::uint32_t port = 8080;
  std::uint32_t rate = 1000;
  if (const char* env = std::getenv("SSE_RATE"); env != nullptr && *env != '\0') {
    (void)parse_u32(env, rate);
  }
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (!std::strcmp(a, "-h") || !std::strcmp(a, "--help")) {
      usage();
      return 0;
    }
    const char* v = i + 1 < argc ? argv[++i] : nullptr;
    bool ok = v != nullptr;
    if (!ok) {
    } else if (!std::strcmp(a, "--port")) {
      ok = parse_u32(v, port) && port <= 65535;
    } else if (!std::strcmp(a, "--host")) {
      host = v;
    } else if (!std::strcmp(a, "--workers")) {
      ok = parse_u32(v, cfg.workers) && cfg.workers >= 1;
    } else if (!std::strcmp(a, "--cpus")) {
      cfg.cpus = v;
    } else if (!std::strcmp(a, "--backend")) {
      ok = bench::parse_backend(v, cfg.backend);
    } else if (!std::strcmp(a, "--max-conns")) {
      ok = parse_u32(v, cfg.max_connections) && cfg.max_connections >= 1;
    } else if (!std::strcmp(a, "--rate")) {
      ok = parse_u32(v, rate) && rate >= 1 && rate <= 1'000'000;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "weft-http-bench-server: bad argument: %s%s%s\n", a, v ? " " : "",
                   v ? v : "");
      usage();
      return 2;
    }
  }
  const std::string text =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  auto addr = platform::Address::parse(text);
  if (!addr || !bench::is_loopback(addr.value())) {
    std::fprintf(stderr, "weft-http-bench-server: %s is not a loopback address\n", text.c_str());
    return 2;
  }
  pubsub::Hub hub;
  pubsub::Limits limits;
  limits.max_subscriptions = cfg.max_connections;
  limits.max_queued_bytes = 260 * 1024;
  http::sse::Streams streams;
  http::sse::StreamLimits sl;
  sl.max_topics = 4;
  if (!hub.init(limits, cfg) || !streams.init(sl) || !streams.attach_hub(hub)) {
    std::fprintf(stderr, "weft-http-bench-server: pub/sub setup failed\n");
    return 1;
  }
  std::vector<Publisher> publishers(cfg.workers);
  http::ServerConfig sc;
  sc.streams = &streams;
  sc.server_name = {};
  sc.overload_reserve = 16;
  // Load generators keep their connections for the whole run (the harness's http_load counts
  // a server-side close as an error): no per-connection request cap here.
  sc.max_requests_per_connection = 0;
  sc.setup = [&](http::Router& r, platform::Loop& loop) {
    if (!r.add(http::Method::get, "/plaintext", &plaintext, nullptr) ||
        !r.add(http::Method::post, "/echo", &echo, nullptr) ||
        !r.add(http::Method::get, "/events", &events, nullptr)) {
      WEFT_PANIC("routes");
    }
    if (loop.index() == 0) {
      Publisher& p = publishers[0];
      p.timer.fn = &Publisher::fire;
      p.timer.ctx = &p;
      p.loop = &loop;
      p.streams = &streams;
      p.rate = rate;
      loop.timers().schedule(p.timer, loop.now_ms() + 1);
    }
  };
  http::Server server(std::move(sc));
  platform::Runtime rt;
  std::vector<platform::Service> services;
  services.push_back(server.service(addr.value()));
  if (auto r = rt.start(cfg, std::move(services)); !r) {
    std::fprintf(stderr, "weft-http-bench-server: cannot start: %s\n", r.error().message().c_str());
    return 1;
  }
  char where[128];
  rt.local_address(0).format(where, sizeof where);
  std::printf("weft-http-bench-server listening on %s (%zu worker(s), %s, %u events/s)\n", where,
              rt.worker_count(), platform::to_string(rt.backend_kind()), rate);
  std::fflush(stdout);
  const int sig = platform::wait_for_termination_signal();
  log(LogLevel::info, "signal %d: draining", sig);
  rt.stop();
  rt.wait();
  const http::ServerStats s = server.stats();
  std::printf("weft-http-bench-server: stopped; connections %" PRIu64 ", requests %" PRIu64
              ", streams %" PRIu64 ", 4xx %" PRIu64 ", 5xx %" PRIu64 "\n",
              s.connections, s.requests, s.streams_opened, s.responses[4], s.responses[5]);
  return 0;
}
