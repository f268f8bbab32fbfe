// weft-echo: a framed echo server (4-byte big-endian length + payload, echoed whole).
//
//   weft-echo [--port N] [--host ADDR] [--unix PATH] [--workers N] [--cpus LIST]
//             [--backend auto|uring|epoll] [--accept reuseport|rr] [--max-conns N]
//             [--max-frame BYTES] [--varint]
//
// Listens on 127.0.0.1:7000 by default. SIGINT/SIGTERM drain gracefully (in-flight frames
// are finished) and exit 0.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <weft/base/log.h>
#include <weft/platform/error.h>
#include <weft/platform/runtime.h>

#include "example_args.h"

#include "echo_service.h"

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: weft-echo [--port N] [--host ADDR] [--unix PATH] [--workers N]\n"
               "                 [--cpus LIST] [--backend auto|uring|epoll]\n"
               "                 [--accept reuseport|rr] [--max-conns N] [--max-frame BYTES]\n"
               "                 [--varint]\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace weft;
  platform::block_termination_signals();
  platform::Config cfg;
  examples::EchoOptions echo;
  std::string host = "127.0.0.1";
  std::string unix_path;
  std::uint32_t port = 7000;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    const auto need = [&]() {
      if (v == nullptr) {
        std::fprintf(stderr, "weft-echo: %s needs a value\n", a);
        std::exit(2);
      }
      ++i;
      return v;
    };
    bool ok = true;
    if (!std::strcmp(a, "--port")) {
      ok = examples::parse_u32(need(), port) && port <= 65535;
    } else if (!std::strcmp(a, "--host")) {
      host = need();
    } else if (!std::strcmp(a, "--unix")) {
      unix_path = need();
    } else if (!std::strcmp(a, "--workers")) {
      ok = examples::parse_u32(need(), cfg.workers);
    } else if (!std::strcmp(a, "--cpus")) {
      cfg.cpus = need();
    } else if (!std::strcmp(a, "--backend")) {
      const char* b = need();
      ok = examples::parse_backend(b, cfg.backend);
    } else if (!std::strcmp(a, "--accept")) {
      const char* m = need();
      if (!std::strcmp(m, "rr")) {
        cfg.accept_mode = platform::AcceptMode::round_robin;
      } else {
        ok = !std::strcmp(m, "reuseport");
      }
    } else if (!std::strcmp(a, "--max-conns")) {
      ok = examples::parse_u32(need(), cfg.max_connections);
    } else if (!std::strcmp(a, "--max-frame")) {
      ok = examples::parse_u32(need(), echo.max_frame_size) && echo.max_frame_size > 0;
    } else if (!std::strcmp(a, "--varint")) {
      echo.prefix = frame::PrefixKind::varint;
    } else if (!std::strcmp(a, "-h") || !std::strcmp(a, "--help")) {
      usage();
      return 0;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "weft-echo: bad argument: %s%s%s\n", a, v ? " " : "", v ? v : "");
      usage();
      return 2;
    }
  }
  std::string text = unix_path.empty()
                         ? (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                               std::to_string(port)
                         : "unix:" + unix_path;
  auto addr = platform::Address::parse(text);
  if (!addr) {
    std::fprintf(stderr, "weft-echo: bad address %s\n", text.c_str());
    return 2;
  }
  platform::Runtime rt;
  std::vector<platform::Service> services;
  services.push_back({addr.value(), [echo](platform::Loop& loop) {
                        return examples::make_echo_factory(loop, echo);
                      }});
  if (auto r = rt.start(cfg, std::move(services)); !r) {
    std::fprintf(stderr, "weft-echo: cannot start: %s\n", r.error().message().c_str());
    return 1;
  }
  char where[128];
  rt.local_address(0).format(where, sizeof where);
  std::printf("weft-echo listening on %s (%zu worker(s), %s)\n", where, rt.worker_count(),
              platform::to_string(rt.backend_kind()));
  std::fflush(stdout);
  const int sig = platform::wait_for_termination_signal();
  log(LogLevel::info, "signal %d: draining", sig);
  rt.stop();
  rt.wait();
  const auto s = rt.stats();
  std::printf(
      "weft-echo: stopped; accepted %llu, rejected %llu, bytes in %llu, out %llu\n",
      static_cast<unsigned long long>(s.accepted), static_cast<unsigned long long>(s.rejected),
      static_cast<unsigned long long>(s.bytes_in), static_cast<unsigned long long>(s.bytes_out));
  return 0;
}
