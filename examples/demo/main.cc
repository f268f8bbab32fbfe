// weft-demo: a small appliance showing every part of weft working together.
//
//   weft-demo [--port 8080] [--rpc-port 7100] [--host 127.0.0.1] [--workers 1] [--cpus LIST]
//             [--backend auto|uring|epoll] [--mqtt HOST:PORT [--device-id ID] [--mqtt-rules FILE]]
//             [--tls-cert FILE --tls-key FILE [--tls-port 8443] [--tls-ca FILE
//              --tls-require-client-cert]]
//
// HTTP on --port: the dashboard (GET /), the demo endpoints (demo_app.h), /metrics.
// The binary protocol on --rpc-port: the settings service (examples/rpc: Get/Put/List, watch
// by SUBSCRIBE) and pub/sub bridged to SSE — a PUBLISH from `weft-cli publish demo hi`
// reaches every browser on /events/demo, and a POST /publish/demo reaches every binary
// subscriber. Board-sized defaults: one worker, small pools. SIGINT/SIGTERM drain and exit 0.
// HTTPS on --tls-port: weft::tls_proxy's terminator in the same Runtime, forwarding to the HTTP
// listener on 127.0.0.1 (ALPN `weft`: to the binary protocol port).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <weft/base/log.h>
#include <weft/http/server.h>
#include <weft/http/streams.h>
#include <weft/msg/pubsub_topics.h>
#include <weft/platform/cpu_list.h>
#include <weft/platform/runtime.h>
#ifdef WEFT_DEMO_TLS
#include <weft/tls/terminator.h>
#endif

#include "example_args.h"

#include "demo_app.h"
#include "demo_assets.h"
#include "settings_service.h"

namespace {

using namespace weft;

void usage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: weft-demo [--port N] [--rpc-port N] [--rpc-unix PATH] [--host ADDR] [--workers N]\n"
      "                 [--cpus LIST] [--backend auto|uring|epoll]\n"
      "\n"
      "A small appliance on weft: open the dashboard in a browser, call the HTTP\n"
      "endpoints with curl, talk to the binary protocol with weft-cli.\n"
      "  --port N         HTTP port (default 8080; 0 picks a free one)\n"
      "  --rpc-port N     binary protocol port (default 7100; 0 picks one)\n"
      "  --host ADDR      address to bind (default 127.0.0.1)\n"
      "  --rpc-unix PATH  also serve the binary protocol on a Unix socket (PATH, or\n"
      "                   @name for an abstract one)\n"
      "  --workers N      event loops, one per core (default 1)\n"
      "  --cpus LIST      pin workers to these cpus, e.g. 0-3 or 2,3\n"
      "  --backend B      auto (io_uring, else epoll), uring or epoll\n"
      "  --tls-cert FILE  also serve HTTPS (PEM chain; with --tls-key; needs a TLS build). Make a\n"
      "                   self-signed pair with scripts/make-self-signed.sh DIR, then\n"
      "                   curl --cacert DIR/cert.pem https://127.0.0.1:8443/plaintext\n"
      "  --tls-key FILE   the certificate's private key (PEM)\n"
      "  --tls-port N     HTTPS port (default 8443; 0 picks one). ALPN http/1.1 (or none)\n"
      "                   goes to the HTTP listener, ALPN weft to the binary protocol\n"
      "  --tls-ca FILE    CA that verifies client certificates (mutual TLS)\n"
      "  --tls-require-client-cert  refuse clients without a certificate from --tls-ca\n"
      "  --mqtt ADDR      bridge pub/sub to an MQTT broker (HOST:PORT or unix:/path; off by\n"
      "                   default): local topic demo -> fleet/ID/demo, local/# ->\n"
      "                   fleet/ID/local/#, fleet/ID/cmd/# -> local cmd/#\n"
      "  --device-id ID   the device id of the bridge's topics (default: demo)\n"
      "  --mqtt-rules F   bridge rules file (docs/mqtt.md: out/in lines, device, queue)\n");
}

// Binary-protocol topics bridged to SSE: a PUBLISH is recorded in the topic's replay ring
// and fanned out to both formats (EVENT frames and SSE) through the Streams.
class BridgeTopics final : public msg::Topics {
 public:
  BridgeTopics(msg::HubTopics& inner, http::sse::Streams& streams, examples::DemoMqtt* mqtt)
      : inner_(inner), streams_(streams), mqtt_(mqtt) {}
  Result<void> subscribe(platform::Conn& c, std::span<const std::byte> t) noexcept override {
    return inner_.subscribe(c, t);
  }
  Result<void> unsubscribe(platform::Conn& c, std::span<const std::byte> t) noexcept override {
    return inner_.unsubscribe(c, t);
  }
  Result<void> publish(platform::Conn& c, std::span<const std::byte> t,
                       std::span<const std::byte> payload) noexcept override {
    auto r = streams_.publish(c.loop(), {reinterpret_cast<const char*>(t.data()), t.size()}, {},
                              {reinterpret_cast<const char*>(payload.data()), payload.size()});
    if (!r) {
      return fail(r.error());
    }
    if (mqtt_ != nullptr) {
      mqtt_->forward(c.loop(), {reinterpret_cast<const char*>(t.data()), t.size()}, payload);
    }
    return {};
  }
  void closed(platform::Conn& c) noexcept override { inner_.closed(c); }

 private:
  msg::HubTopics& inner_;
  http::sse::Streams& streams_;
  examples::DemoMqtt* mqtt_;
};

// Why the backend in use was chosen: empty when io_uring runs; else the reason.
std::string backend_reason(platform::BackendKind asked) {
  if (asked == platform::BackendKind::epoll) {
    return "epoll asked for (--backend epoll)";
  }
  if (const char* env = std::getenv("WEFT_BACKEND"); env != nullptr && *env != '\0') {
    if (std::strcmp(env, "epoll") == 0) {
      return "WEFT_BACKEND=epoll";
    }
  }
  platform::Config probe;
  probe.backend = platform::BackendKind::uring;
  probe.max_connections = 4;
  probe.recv_buffers = 8;
  probe.send_buffers = 8;
  auto loop = platform::Loop::create(probe, 0);
  if (!loop) {
    return "io_uring unavailable: " + loop.error().message();
  }
  return {};
}

#ifdef WEFT_DEMO_TLS
// GET /metrics/tls: the terminator's counters (Prometheus text), summed over workers.
void tls_metrics(void* ctx, http::Exchange& ex) noexcept {
  const auto& s = *static_cast<const tls::TerminatorStats*>(ctx);
  char text[1024];
  const int n = std::snprintf(
      text, sizeof text,
      "# TYPE weft_tls_accepted_total counter\nweft_tls_accepted_total %llu\n"
      "# TYPE weft_tls_handshakes_total counter\nweft_tls_handshakes_total %llu\n"
      "# TYPE weft_tls_handshake_failures_total counter\nweft_tls_handshake_failures_total %llu\n"
      "# TYPE weft_tls_handshake_timeouts_total counter\nweft_tls_handshake_timeouts_total %llu\n"
      "# TYPE weft_tls_peers_verified_total counter\nweft_tls_peers_verified_total %llu\n"
      "# TYPE weft_tls_upstream_failures_total counter\nweft_tls_upstream_failures_total %llu\n"
      "# TYPE weft_tls_refused_total counter\nweft_tls_refused_total %llu\n",
      static_cast<unsigned long long>(s.accepted.load(std::memory_order_relaxed)),
      static_cast<unsigned long long>(s.handshakes.load(std::memory_order_relaxed)),
      static_cast<unsigned long long>(s.handshake_failures.load(std::memory_order_relaxed)),
      static_cast<unsigned long long>(s.handshake_timeouts.load(std::memory_order_relaxed)),
      static_cast<unsigned long long>(s.peers_verified.load(std::memory_order_relaxed)),
      static_cast<unsigned long long>(s.upstream_failures.load(std::memory_order_relaxed)),
      static_cast<unsigned long long>(s.refused.load(std::memory_order_relaxed)));
  (void)ex.respond(200, "text/plain; version=0.0.4",
                   {text, n > 0 ? std::min(static_cast<std::size_t>(n), sizeof text - 1) : 0});
}
#endif

}  // namespace

int main(int argc, char** argv) {
  platform::block_termination_signals();
  platform::Config cfg;
  cfg.workers = 1;
  cfg.max_connections = 256;
  cfg.buffer_size = 16 * 1024;
  cfg.recv_buffers = 128;
  cfg.send_buffers = 256;
  cfg.shared_buffers = 256;  // fan-out events and cross-worker answers
  cfg.shared_buffer_size = 16 * 1024 + 512;
  std::string host = "127.0.0.1";
  std::uint32_t port = 8080;
  std::uint32_t rpc_port = 7100;
  std::string rpc_unix;
  std::string http_listen;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  bool tls_require_client_cert = false;
  std::uint32_t tls_port = 8443;
  std::string mqtt_addr;
  std::string device_id;
  std::string mqtt_rules;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (!std::strcmp(a, "--help") || !std::strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (!std::strcmp(a, "--tls-require-client-cert")) {
      tls_require_client_cert = true;
      continue;
    }
    if (v == nullptr) {
      std::fprintf(stderr, "weft-demo: %s needs a value\n", a);
      usage(stderr);
      return 2;
    }
    ++i;
    bool ok = true;
    if (!std::strcmp(a, "--port")) {
      ok = examples::parse_u32(v, port) && port <= 65535;
    } else if (!std::strcmp(a, "--rpc-port")) {
      ok = examples::parse_u32(v, rpc_port) && rpc_port <= 65535;
    } else if (!std::strcmp(a, "--host")) {
      host = v;
    } else if (!std::strcmp(a, "--rpc-unix")) {
      rpc_unix = v;
    } else if (!std::strcmp(a, "--listen")) {
      http_listen = v;
    } else if (!std::strcmp(a, "--workers")) {
      ok = examples::parse_u32(v, cfg.workers) && cfg.workers >= 1 && cfg.workers <= 64;
    } else if (!std::strcmp(a, "--cpus")) {
      cfg.cpus = v;
    } else if (!std::strcmp(a, "--backend")) {
      ok = examples::parse_backend(v, cfg.backend);
    } else if (!std::strcmp(a, "--tls-cert")) {
      tls_cert = v;
    } else if (!std::strcmp(a, "--tls-key")) {
      tls_key = v;
    } else if (!std::strcmp(a, "--tls-ca")) {
      tls_ca = v;
    } else if (!std::strcmp(a, "--tls-port")) {
      ok = examples::parse_u32(v, tls_port) && tls_port <= 65535;
    } else if (!std::strcmp(a, "--mqtt")) {
      mqtt_addr = v;
    } else if (!std::strcmp(a, "--device-id")) {
      device_id = v;
    } else if (!std::strcmp(a, "--mqtt-rules")) {
      mqtt_rules = v;
    } else {
      std::fprintf(stderr, "weft-demo: unknown option %s\n", a);
      usage(stderr);
      return 2;
    }
    if (!ok) {
      std::fprintf(stderr, "weft-demo: bad value for %s: %s\n", a, v);
      return 2;
    }
  }

  const bool tls = !tls_cert.empty() || !tls_key.empty();
  if (tls && (tls_cert.empty() || tls_key.empty())) {
    std::fprintf(stderr, "weft-demo: --tls-cert and --tls-key go together\n");
    return 2;
  }
  if (tls_require_client_cert && tls_ca.empty()) {
    std::fprintf(stderr, "weft-demo: --tls-require-client-cert needs --tls-ca\n");
    return 2;
  }
  if (tls) {
    // Each HTTPS connection holds one outbound connection to the HTTP listener (before the
    // hub is sized from cfg).
    cfg.outbound_connections = cfg.max_connections;
  }
#ifndef WEFT_DEMO_TLS
  if (tls) {
    std::fprintf(stderr, "weft-demo: built without TLS (WEFT_TLS=OFF)\n");
    return 2;
  }
#endif

  // Pub/sub: one hub, two formats (binary EVENT frames, SSE), replay rings for SSE.
  pubsub::Hub hub;
  pubsub::Limits limits;
  limits.max_queued_bytes = 260 * 1024;  // above the streams' cap (256 KiB) plus a marker
  if (Result<void> r = hub.init(limits, cfg); !r) {
    std::fprintf(stderr, "weft-demo: pub/sub: %s\n", r.error().message().c_str());
    return 1;
  }
  msg::HubTopics hub_topics(hub);
  http::sse::Streams streams;
  if (Result<void> r = hub_topics.init(); !r) {
    std::fprintf(stderr, "weft-demo: pub/sub format: %s\n", r.error().message().c_str());
    return 1;
  }
  if (Result<void> r = streams.init({}); !r) {
    std::fprintf(stderr, "weft-demo: event streams: %s\n", r.error().message().c_str());
    return 1;
  }
  if (auto r = streams.attach_hub(hub); !r) {
    std::fprintf(stderr, "weft-demo: event streams: %s\n", r.error().message().c_str());
    return 1;
  }
  // --mqtt: the fleet bridge (examples/demo/demo_app.h DemoMqtt), off by default.
  std::unique_ptr<examples::DemoMqtt> mqtt;
  if (!mqtt_addr.empty()) {
    auto broker = platform::Address::parse(mqtt_addr);
    if (!broker) {
      std::fprintf(stderr, "weft-demo: bad --mqtt address %s\n", mqtt_addr.c_str());
      return 2;
    }
    mqtt::BridgeConfig rules = mqtt::default_bridge_config();
    rules.rules.insert(rules.rules.begin(),
                       {mqtt::Direction::out, "demo", "fleet/{device}/demo", 1, false});
    if (!mqtt_rules.empty()) {
      std::ifstream f(mqtt_rules);
      const std::string text{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
      auto parsed = mqtt::parse_bridge_config(text);
      if (!f || !parsed) {
        std::fprintf(stderr, "weft-demo: bad --mqtt-rules file %s\n", mqtt_rules.c_str());
        return 2;
      }
      rules = std::move(parsed.value());
    }
    if (device_id.empty()) {
      device_id = rules.device_id.empty() ? "demo" : rules.device_id;
    }
    mqtt =
        std::make_unique<examples::DemoMqtt>(broker.value(), device_id, std::move(rules), streams);
  }
  BridgeTopics bridge(hub_topics, streams, mqtt.get());

  // HTTP.
  examples::DemoOptions dopt;
  dopt.assets = {examples::kAssets, examples::kAssetCount};
  dopt.backend_reason = backend_reason(cfg.backend);
  if (!cfg.cpus.empty()) {
    if (auto cpus = platform::parse_cpu_list(cfg.cpus)) {
      dopt.cpus = std::move(cpus.value());
    }
  }
  dopt.mqtt = mqtt.get();
  examples::DemoApp app(dopt, streams);
  http::ServerConfig hc;
  hc.parser.max_body_size = 256 * 1024;
  hc.body_slots = 4;
  hc.assembly_slots = 8;
  hc.streams = &streams;
  hc.cors_origins = {"*"};
#ifdef WEFT_DEMO_TLS
  tls::TerminatorStats tls_stats;  // before the routes that read it
#endif
  hc.setup = [&](http::Router& r, platform::Loop& loop) {
    app.setup(r, loop);
#ifdef WEFT_DEMO_TLS
    if (tls) {
      (void)r.add(http::Method::get, "/metrics/tls", &tls_metrics, &tls_stats);
    }
#endif
  };
  http::Server http_server(std::move(hc));

  // The binary protocol: the settings service, topics bridged to SSE.
  examples::SettingsStore store;
  examples::SettingsHost settings(store, &hub_topics);
  msg::Options mo;
  mo.setup = [&](msg::Registry& registry, platform::Loop&) { settings.setup(registry); };
  mo.topics = [&](platform::Loop& loop) -> msg::Topics* {
    return hub_topics.attach(loop) != nullptr ? &bridge : nullptr;
  };
  msg::Server rpc_server(std::move(mo));

  auto http_addr = platform::Address::parse(http_listen.empty() ? host + ":" + std::to_string(port)
                                                                : http_listen);
  auto rpc_addr = platform::Address::parse(host + ":" + std::to_string(rpc_port));
  if (!http_addr || !rpc_addr) {
    std::fprintf(stderr, "weft-demo: bad address %s\n", host.c_str());
    return 2;
  }
  std::vector<platform::Service> services;
  services.push_back(http_server.service(http_addr.value()));
  services.push_back(rpc_server.service(rpc_addr.value()));
  if (!rpc_unix.empty()) {
    auto ua = platform::Address::parse("unix:" + rpc_unix);
    if (!ua) {
      std::fprintf(stderr, "weft-demo: bad unix socket %s\n", rpc_unix.c_str());
      return 2;
    }
    services.push_back(rpc_server.service(ua.value()));
  }
  platform::Runtime rt;
#ifdef WEFT_DEMO_TLS
  // HTTPS: the terminator forwards to this Runtime's own HTTP listener (service 0) and, for
  // ALPN `weft`, to the binary protocol (service 1); a TLS connection takes one outbound slot.
  std::optional<tls::Context> tls_ctx;
  std::size_t tls_service = 0;
  if (tls) {
    static constexpr std::string_view kAlpn[] = {"http/1.1", "weft"};
    tls::Config tc;
    tc.cert_chain_file = tls_cert.c_str();
    tc.key_file = tls_key.c_str();
    tc.ca_file = tls_ca.empty() ? nullptr : tls_ca.c_str();
    tc.client_auth = tls_ca.empty()            ? tls::ClientAuth::none
                     : tls_require_client_cert ? tls::ClientAuth::required
                                               : tls::ClientAuth::optional;
    tc.alpn = kAlpn;
    auto ctx = tls::Context::create(tc);
    if (!ctx) {
      std::fprintf(stderr, "weft-demo: TLS: %s (check --tls-cert/--tls-key/--tls-ca)\n",
                   ctx.error().message().c_str());
      return 1;
    }
    tls_ctx.emplace(std::move(ctx.value()));
    auto tls_addr = platform::Address::parse(host + ":" + std::to_string(tls_port));
    if (!tls_addr || http_addr.value().is_unix()) {
      std::fprintf(stderr, "weft-demo: HTTPS needs a TCP --host and HTTP listener\n");
      return 2;
    }
    const tls::Route routes[] = {{"", {}, &rt, 0}, {"weft", {}, &rt, 1}};
    tls::TerminatorOptions to;
    to.routes = routes;
    to.stats = &tls_stats;
    to.name = "https";
    tls_service = services.size();
    services.push_back(tls::make_terminator(tls_addr.value(), *tls_ctx, {}, to));
  }
#endif
  if (Result<void> r = rt.start(cfg, std::move(services)); !r) {
    std::fprintf(stderr, "weft-demo: %s\n", r.error().message().c_str());
    return 1;
  }
  app.started(rt, http_server, &hub, [&rpc_server] {
    const msg::ServerStats s = rpc_server.stats();
    return s.requests + s.messages;
  });

  if (mqtt != nullptr && !mqtt->start(rt)) {
    std::fprintf(stderr, "weft-demo: mqtt: could not reach worker 0\n");
  }

  const std::uint32_t rp = rt.local_address(1).port();
  const bool uring = rt.backend_kind() == platform::BackendKind::uring;
  if (rt.local_address(0).is_unix()) {
    char where[128];
    rt.local_address(0).format(where, sizeof where);
    std::printf("weft-demo: dashboard   %s (HTTP on a Unix socket)\n", where);
    std::printf("weft-demo: endpoints   curl --unix-socket %s http://localhost/plaintext\n",
                http_listen.c_str() + 5);
  } else {
    char where[128];
    rt.local_address(0).format(where, sizeof where);
    std::printf("weft-demo: dashboard   http://%s/\n", where);
    std::printf(
        "weft-demo: endpoints   curl http://%s/plaintext   (also /echo /events/demo "
        "/publish/demo /jobs /metrics)\n",
        where);
  }
  std::printf(
      "weft-demo: rpc         %s:%u  (try: weft-cli --addr %s:%u put wifi.ssid lab; "
      "weft-cli --addr %s:%u publish demo hello)\n",
      host.c_str(), rp, host.c_str(), rp, host.c_str(), rp);
  if (!rpc_unix.empty()) {
    std::printf("weft-demo: rpc         unix:%s  (weft-cli --unix %s ...)\n", rpc_unix.c_str(),
                rpc_unix.c_str());
  }
#ifdef WEFT_DEMO_TLS
  if (tls) {
    char where[128];
    rt.local_address(tls_service).format(where, sizeof where);
    std::printf(
        "weft-demo: https       https://%s/  (TLS %s%s; try: curl --cacert %s "
        "https://%s/plaintext)\n",
        where, tls::backend() == tls::Backend::openssl ? "OpenSSL" : "mbedTLS",
        tls_require_client_cert ? ", client certificate required"
        : tls_ca.empty()        ? ""
                                : ", client certificate optional",
        tls_cert.c_str(), where);
  }
#endif
  std::printf("weft-demo: backend     %s%s%s\n", uring ? "io_uring" : "epoll",
              dopt.backend_reason.empty() ? "" : " — ", dopt.backend_reason.c_str());
  std::printf("weft-demo: workers     %u%s%s\n", cfg.workers,
              cfg.cpus.empty() ? " (not pinned)" : " on cpus ", cfg.cpus.c_str());
  if (mqtt != nullptr) {
    std::printf("weft-demo: mqtt        %s as device %s (try: mosquitto_sub -t 'fleet/%s/#')\n",
                mqtt_addr.c_str(), device_id.c_str(), device_id.c_str());
  }
  std::printf("weft-demo: Ctrl-C drains and exits\n");
  std::fflush(stdout);

  const int sig = platform::wait_for_termination_signal();
  log(LogLevel::info, "weft-demo: signal %d, draining", sig);
  rt.stop();
  rt.wait();
  if (mqtt != nullptr) {
    mqtt->shutdown();  // the Client's timer is on worker 0's loop: before the runtime goes
  }
  std::printf("weft-demo: stopped\n");
  return 0;
}
