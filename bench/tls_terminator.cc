// weft-tls-terminator: weft::tls_proxy's terminator as a process of its own, for
// bench/run_https_compare.sh (HTTPS keep-alive through the terminator to
// weft-http-bench-server, beside nginx terminating TLS itself).
//
//   weft-tls-terminator --listen 127.0.0.1:8443 --upstream 127.0.0.1:8080 --cert FILE
//                       --key FILE [--workers N] [--backend auto|uring|epoll]
//                       [--max-version 1.2|1.3] [--max-conns N]
//
// Only loopback listen addresses are accepted. SIGTERM or SIGINT drains and exits 0,
// printing the terminator's counters.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <weft/base/log.h>
#include <weft/platform/runtime.h>
#include <weft/tls/terminator.h>

#include "example_args.h"

int main(int argc, char** argv) {
  using namespace weft;
  using examples::parse_backend;
  using examples::parse_u32;
  platform::block_termination_signals();
  std::string listen = "127.0.0.1:8443";
  std::string upstream = "127.0.0.1:8080";
  std::string cert;
  std::string key;
  tls::Version max_version = tls::Version::tls13;
  platform::Config cfg;
  cfg.workers = 1;
  cfg.max_connections = 1024;
  cfg.outbound_connections = 1024;
  cfg.recv_buffers = 1024;
  cfg.send_buffers = 2048;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char* a = argv[i];
    const char* v = argv[i + 1];
    bool ok = true;
    if (!std::strcmp(a, "--listen")) {
      listen = v;
    } else if (!std::strcmp(a, "--upstream")) {
      upstream = v;
    } else if (!std::strcmp(a, "--cert")) {
      cert = v;
    } else if (!std::strcmp(a, "--key")) {
      key = v;
    } else if (!std::strcmp(a, "--workers")) {
      ok = parse_u32(v, cfg.workers) && cfg.workers >= 1;
    } else if (!std::strcmp(a, "--max-conns")) {
      ok = parse_u32(v, cfg.max_connections);
      cfg.outbound_connections = cfg.max_connections;
    } else if (!std::strcmp(a, "--backend")) {
      ok = parse_backend(v, cfg.backend);
    } else if (!std::strcmp(a, "--max-version")) {
      max_version = !std::strcmp(v, "1.2") ? tls::Version::tls12 : tls::Version::tls13;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "weft-tls-terminator: bad option %s %s\n", a, v);
      return 2;
    }
  }
  auto la = platform::Address::parse(listen);
  auto ua = platform::Address::parse(upstream);
  if (!la || !ua || cert.empty() || key.empty() || listen.rfind("127.", 0) != 0) {
    std::fprintf(stderr,
                 "usage: weft-tls-terminator --listen 127.0.0.1:PORT --upstream ADDR --cert FILE "
                 "--key FILE [--workers N] [--backend B] [--max-version 1.2|1.3]\n");
    return 2;
  }
  static constexpr std::string_view kAlpn[] = {"http/1.1"};
  tls::Config tc;
  tc.cert_chain_file = cert.c_str();
  tc.key_file = key.c_str();
  tc.alpn = kAlpn;
  tc.alpn_strict = tls::backend() != tls::Backend::openssl;
  tc.max_version = max_version;
  auto ctx = tls::Context::create(tc);
  if (!ctx) {
    std::fprintf(stderr, "weft-tls-terminator: %s\n", ctx.error().message().c_str());
    return 1;
  }
  tls::TerminatorStats stats;
  tls::TerminatorOptions to;
  to.stats = &stats;
  std::vector<platform::Service> services;
  services.push_back(tls::make_terminator(la.value(), ctx.value(), ua.value(), to));
  platform::Runtime rt;
  if (Result<void> r = rt.start(cfg, std::move(services)); !r) {
    std::fprintf(stderr, "weft-tls-terminator: %s\n", r.error().message().c_str());
    return 1;
  }
  std::printf("weft-tls-terminator: %s -> %s (%s)\n", listen.c_str(), upstream.c_str(),
              tls::backend() == tls::Backend::openssl ? "OpenSSL" : "mbedTLS");
  std::fflush(stdout);
  (void)platform::wait_for_termination_signal();
  rt.stop();
  rt.wait();
  std::printf("weft-tls-terminator: accepted %" PRIu64 " handshakes %" PRIu64 " failed %" PRIu64
              " bytes up %" PRIu64 " down %" PRIu64 "\n",
              stats.accepted.load(), stats.handshakes.load(), stats.handshake_failures.load(),
              stats.bytes_up.load(), stats.bytes_down.load());
  return 0;
}
