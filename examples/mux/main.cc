// weft-mux: one appliance connection carrying a firmware upload, a telemetry stream and
// interactive control at once, on weft::mux channels (examples/mux/mux_app.h).
//
// Common: --window-kib N and --conn-window-kib N set the receive windows this side grants
// (per channel, per connection; defaults 64 and 256): the bytes in flight ahead of a small
// message, so the latency/throughput trade-off (docs/performance.md §13).
//
//   weft-mux serve [--listen ADDR] [--workers N] [--backend B]
//       the appliance side; ADDR is host:port or unix:/path (default 127.0.0.1:7300)
//   weft-mux run --connect ADDR [--image-mib N] [--bulk K] [--telemetry-ms M] [--json]
//       the client side against a running `serve`
//   weft-mux demo [--image-mib N] [--bulk K] [--telemetry-ms M] [--backend B] [--json]
//       both in one process (the server on 127.0.0.1, an ephemeral port)
//
// run/demo print the upload rate, whether every image's checksum matched, telemetry
// samples and their largest gap, and the Control round trip on an idle connection beside
// its round trip during the upload (p50/p99). Exit status: 0 all checks passed, 1 a check
// failed or the run could not finish, 2 bad arguments.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <weft/base/log.h>
#include <weft/mux/endpoint.h>
#include <weft/platform/runtime.h>

#include "example_args.h"
#include "mux_app.h"

namespace {

using namespace weft;
namespace md = weft::examples::mux_demo;

void usage() {
  std::fprintf(stderr,
               "usage: weft-mux serve [--listen ADDR] [--workers N] [--backend auto|uring|epoll]\n"
               "       weft-mux run --connect ADDR [--image-mib N] [--bulk K] [--telemetry-ms M]"
               " [--json]\n"
               "       weft-mux demo [--image-mib N] [--bulk K] [--telemetry-ms M]"
               " [--backend B] [--json]\n"
               "       common: [--window-kib N] [--conn-window-kib N]\n");
}

int report(const md::DemoResult& r, const md::DemoOptions& o, bool json) {
  if (json) {
    std::printf(
        "{\"ok\":%s,\"bulk\":%u,\"image_bytes\":%llu,\"upload_s\":%.3f,\"upload_mib_s\":%.1f,"
        "\"images_ok\":%u,\"samples\":%llu,\"max_sample_gap_ms\":%.2f,\"idle_pings\":%llu,"
        "\"busy_pings\":%llu,\"idle_p50_us\":%.1f,\"idle_p99_us\":%.1f,\"busy_p50_us\":%.1f,"
        "\"busy_p99_us\":%.1f,\"error\":\"%s\"}\n",
        r.ok ? "true" : "false", o.bulk, static_cast<unsigned long long>(o.image_bytes), r.upload_s,
        r.upload_mib_s, r.images_ok, static_cast<unsigned long long>(r.samples),
        r.max_sample_gap_ms, static_cast<unsigned long long>(r.idle_pings),
        static_cast<unsigned long long>(r.busy_pings), r.idle_p50_us, r.idle_p99_us, r.busy_p50_us,
        r.busy_p99_us, r.error.c_str());
  } else {
    std::printf("firmware   %u channel(s) x %.1f MiB in %.2f s: %.1f MiB/s, checksums %u/%u ok\n",
                o.bulk, static_cast<double>(o.image_bytes) / (1024.0 * 1024.0), r.upload_s,
                r.upload_mib_s, r.images_ok, o.bulk);
    std::printf("telemetry  %llu samples every %u ms during the upload, largest gap %.1f ms\n",
                static_cast<unsigned long long>(r.samples), o.telemetry_ms, r.max_sample_gap_ms);
    std::printf(
        "control    round trip idle p50 %.0f us p99 %.0f us (%llu calls); during the "
        "upload p50 %.0f us p99 %.0f us (%llu calls)\n",
        r.idle_p50_us, r.idle_p99_us, static_cast<unsigned long long>(r.idle_pings), r.busy_p50_us,
        r.busy_p99_us, static_cast<unsigned long long>(r.busy_pings));
    std::printf("%s%s\n", r.ok ? "ok" : "FAILED: ", r.error.c_str());
  }
  std::fflush(stdout);
  return r.ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  const std::string mode = argv[1];
  if (mode == "-h" || mode == "--help") {
    usage();
    return 0;
  }
  if (mode != "serve" && mode != "run" && mode != "demo") {
    usage();
    return 2;
  }
  platform::block_termination_signals();
  platform::Config cfg;
  cfg.workers = 1;
  md::DemoOptions demo;
  std::string listen = "127.0.0.1:7300";
  std::string connect;
  bool json = false;
  for (int i = 2; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    const auto need = [&]() {
      if (v == nullptr) {
        std::fprintf(stderr, "weft-mux: %s needs a value\n", a);
        std::exit(2);
      }
      ++i;
      return v;
    };
    bool ok = true;
    std::uint32_t n = 0;
    if (!std::strcmp(a, "--listen")) {
      listen = need();
    } else if (!std::strcmp(a, "--connect")) {
      connect = need();
    } else if (!std::strcmp(a, "--workers")) {
      ok = examples::parse_u32(need(), cfg.workers) && cfg.workers > 0;
    } else if (!std::strcmp(a, "--backend")) {
      ok = examples::parse_backend(need(), cfg.backend);
    } else if (!std::strcmp(a, "--image-mib")) {
      ok = examples::parse_u32(need(), n) && n > 0 && n <= 4096;
      demo.image_bytes = static_cast<std::uint64_t>(n) << 20;
    } else if (!std::strcmp(a, "--bulk")) {
      ok = examples::parse_u32(need(), demo.bulk) && demo.bulk > 0 && demo.bulk <= 32;
    } else if (!std::strcmp(a, "--telemetry-ms")) {
      ok = examples::parse_u32(need(), demo.telemetry_ms) && demo.telemetry_ms > 0;
    } else if (!std::strcmp(a, "--window-kib")) {
      ok = examples::parse_u32(need(), n) && n > 0 && n <= 1024 * 1024;
      demo.endpoint.limits.channel_window = n * 1024;
    } else if (!std::strcmp(a, "--conn-window-kib")) {
      ok = examples::parse_u32(need(), n) && n > 0 && n <= 1024 * 1024;
      demo.endpoint.limits.conn_window = n * 1024;
    } else if (!std::strcmp(a, "--json")) {
      json = true;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "weft-mux: bad argument: %s%s%s\n", a, v ? " " : "", v ? v : "");
      usage();
      return 2;
    }
  }
  // A board-sized pool: 64 KiB windows need a few buffers per channel.
  cfg.buffer_size = 16 * 1024;
  cfg.recv_buffers = 256;
  cfg.send_buffers = 256;

  if (mode == "run") {
    auto addr = platform::Address::parse(connect);
    if (connect.empty() || !addr) {
      std::fprintf(stderr, "weft-mux: run needs --connect host:port or unix:/path\n");
      return 2;
    }
    auto loop = platform::Loop::create(cfg, 0);
    if (!loop) {
      std::fprintf(stderr, "weft-mux: %s\n", loop.error().message().c_str());
      return 1;
    }
    return report(md::run_demo(**loop, *addr, demo), demo, json);
  }

  auto addr = platform::Address::parse(mode == "demo" ? "127.0.0.1:0" : listen);
  if (!addr) {
    std::fprintf(stderr, "weft-mux: bad address %s\n", listen.c_str());
    return 2;
  }
  platform::Runtime rt;
  std::vector<platform::Service> services;
  services.push_back(mux::make_service(*addr, demo.endpoint, [](platform::Loop& loop) {
    return md::make_acceptor(loop, md::ServerOptions{});
  }));
  if (auto r = rt.start(cfg, std::move(services)); !r) {
    std::fprintf(stderr, "weft-mux: cannot start: %s\n", r.error().message().c_str());
    return 1;
  }
  char where[128];
  rt.local_address(0).format(where, sizeof where);
  if (mode == "serve") {
    std::printf("weft-mux serving on %s (%zu worker(s), %s): firmware, telemetry, control\n", where,
                rt.worker_count(), platform::to_string(rt.backend_kind()));
    std::fflush(stdout);
    const int sig = platform::wait_for_termination_signal();
    log(LogLevel::info, "signal %d: draining", sig);
    rt.stop();
    rt.wait();
    return 0;
  }
  if (!json) {
    std::printf("weft-mux demo: appliance on %s (%s); one connection, three kinds of channel\n",
                where, platform::to_string(rt.backend_kind()));
  }
  auto loop = platform::Loop::create(cfg, 1);
  if (!loop) {
    std::fprintf(stderr, "weft-mux: %s\n", loop.error().message().c_str());
    return 1;
  }
  const int rc = report(md::run_demo(**loop, rt.local_address(0), demo), demo, json);
  rt.stop();
  rt.wait();
  return rc;
}
