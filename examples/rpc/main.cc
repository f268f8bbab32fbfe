// weft-settings: the settings service of examples/rpc over weft's binary message protocol.
//
//   weft-settings [--port N] [--host ADDR] [--unix PATH] [--workers N] [--cpus LIST]
//                 [--backend auto|uring|epoll]
//
// Listens on 127.0.0.1:7100 by default (and on a Unix socket with --unix). Methods: Get,
// Put, List (settings.proto); every Put is published on the topics "settings" and
// "settings/<key>" (SUBSCRIBE to watch). Try it with weft-cli:
//   weft-cli put wifi.ssid lab; weft-cli get wifi.ssid; weft-cli watch wifi.ssid
// SIGINT/SIGTERM: GOAWAY to every client, in-flight calls answered, exit 0.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <weft/base/log.h>
#include <weft/msg/pubsub_topics.h>
#include <weft/platform/runtime.h>

#include "example_args.h"

#include "settings_service.h"

namespace {

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: weft-settings [--port N] [--host ADDR] [--unix PATH] [--workers N]\n"
               "                     [--cpus LIST] [--backend auto|uring|epoll]\n"
               "Serves the settings service (Get, Put, List; changes on topics \"settings\"\n"
               "and \"settings/<key>\") on 127.0.0.1:7100 by default.\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace weft;
  platform::block_termination_signals();
  platform::Config cfg;
  cfg.shared_buffers = 256;  // events fan out from these
  cfg.shared_buffer_size = 1024;
  std::string host = "127.0.0.1";
  std::string unix_path;
  std::uint32_t port = 7100;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (!std::strcmp(a, "--help") || !std::strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (v == nullptr) {
      std::fprintf(stderr, "weft-settings: %s needs a value\n", a);
      usage(stderr);
      return 2;
    }
    ++i;
    bool ok = true;
    if (!std::strcmp(a, "--port")) {
      ok = examples::parse_u32(v, port) && port <= 65535;
    } else if (!std::strcmp(a, "--host")) {
      host = v;
    } else if (!std::strcmp(a, "--unix")) {
      unix_path = v;
    } else if (!std::strcmp(a, "--workers")) {
      ok = examples::parse_u32(v, cfg.workers) && cfg.workers >= 1;
    } else if (!std::strcmp(a, "--cpus")) {
      cfg.cpus = v;
    } else if (!std::strcmp(a, "--backend")) {
      ok = examples::parse_backend(v, cfg.backend);
    } else {
      std::fprintf(stderr, "weft-settings: unknown option %s\n", a);
      usage(stderr);
      return 2;
    }
    if (!ok) {
      std::fprintf(stderr, "weft-settings: bad value for %s: %s\n", a, v);
      return 2;
    }
  }

  pubsub::Hub hub;
  if (Result<void> r = hub.init(pubsub::Limits{}, cfg); !r) {
    std::fprintf(stderr, "weft-settings: pub/sub: %s\n", r.error().message().c_str());
    return 1;
  }
  msg::HubTopics topics(hub);
  if (Result<void> r = topics.init(); !r) {
    std::fprintf(stderr, "weft-settings: pub/sub format: %s\n", r.error().message().c_str());
    return 1;
  }
  examples::SettingsStore store;
  examples::SettingsHost settings(store, &topics);
  msg::Options options;
  options.setup = [&](msg::Registry& registry, platform::Loop&) { settings.setup(registry); };
  options.topics = [&](platform::Loop& loop) { return topics.attach(loop); };
  msg::Server server(std::move(options));

  std::vector<platform::Service> services;
  auto addr = platform::Address::parse(host + ":" + std::to_string(port));
  if (!addr) {
    std::fprintf(stderr, "weft-settings: bad address %s:%u\n", host.c_str(), port);
    return 2;
  }
  services.push_back(server.service(addr.value()));
  if (!unix_path.empty()) {
    auto ua = platform::Address::parse("unix:" + unix_path);
    if (!ua) {
      std::fprintf(stderr, "weft-settings: bad unix path %s\n", unix_path.c_str());
      return 2;
    }
    services.push_back(server.service(ua.value()));
  }
  platform::Runtime rt;
  if (Result<void> r = rt.start(cfg, std::move(services)); !r) {
    std::fprintf(stderr, "weft-settings: %s\n", r.error().message().c_str());
    return 1;
  }
  std::printf("weft-settings: serving on %s:%u%s%s\n", host.c_str(), rt.local_address(0).port(),
              unix_path.empty() ? "" : " and unix:", unix_path.c_str());
  std::fflush(stdout);
  const int sig = platform::wait_for_termination_signal();
  log(LogLevel::info, "settings: signal %d, draining", sig);
  rt.stop();
  rt.wait();
  const msg::ServerStats st = server.stats();
  log(LogLevel::info, "settings: %llu requests, %llu responses, %llu errors",
      static_cast<unsigned long long>(st.requests), static_cast<unsigned long long>(st.responses),
      static_cast<unsigned long long>(st.errors_sent));
  return 0;
}
