// weft-msg-bench-server: a weft::msg::Server (docs/protocol.md §6) with one method for the
// unary-call benchmarks (bench/run_unary_compare.sh, bench/instructions_per_msg.sh):
// weft.bench.Bench/Unary answers a REQUEST with a RESPONSE holding the same payload bytes
// (Call::reply copies them into the answer, written in the worker's pool buffers). The load
// generator is weft-load --proto msg.
//
//   weft-msg-bench-server [--port N] [--host ADDR] [--workers N] [--cpus LIST]
//                         [--backend auto|uring|epoll] [--max-conns N] [--max-inflight K]
//
// Listens on 127.0.0.1:7100 by default; only loopback addresses are accepted. Server options
// are the defaults (max_frame 16 KiB, 64 requests in flight per connection, 4,096 calls in
// flight per worker) unless given. SIGINT/SIGTERM drain gracefully and exit 0, printing the
// server's counters.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <weft/base/assert.h>
#include <weft/base/log.h>
#include <weft/msg/server.h>
#include <weft/platform/error.h>
#include <weft/platform/runtime.h>

#include "load_common.h"
#include "msg_bench.h"

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: weft-msg-bench-server [--port N] [--host ADDR] [--unix PATH] [--workers N]\n"
               "                             [--cpus LIST] [--backend auto|uring|epoll]\n"
               "                             [--max-conns N] [--max-inflight K]\n");
}

// A number for a u32 option.
bool parse_u32(const char* s, std::uint32_t& out) {
  std::uint64_t v = 0;
  if (!weft::bench::parse_u64(s, v) || v > 0xffffffffu) {
    return false;
  }
  out = static_cast<std::uint32_t>(v);
  return true;
}

// The method: the answer is the request's payload.
void unary(void*, weft::msg::Call& call, std::span<const std::byte> payload) noexcept {
  if (auto r = call.reply(payload); !r) {
    (void)call.fail(weft::msg::ProtocolError::internal, "reply failed");
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace weft;
  platform::block_termination_signals();
  platform::Config cfg;
  msg::Options opts;
  std::string host = "127.0.0.1";
  std::string unix_path;  // --unix PATH: listen there instead of host:port
  std::uint32_t port = 7100;
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
    } else if (!std::strcmp(a, "--unix")) {
      unix_path = v;
    } else if (!std::strcmp(a, "--workers")) {
      ok = parse_u32(v, cfg.workers);
    } else if (!std::strcmp(a, "--cpus")) {
      cfg.cpus = v;
    } else if (!std::strcmp(a, "--backend")) {
      ok = bench::parse_backend(v, cfg.backend);
    } else if (!std::strcmp(a, "--max-conns")) {
      ok = parse_u32(v, cfg.max_connections);
    } else if (!std::strcmp(a, "--max-inflight")) {
      ok = parse_u32(v, opts.max_inflight) && opts.max_inflight > 0;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "weft-msg-bench-server: bad argument: %s%s%s\n", a, v ? " " : "",
                   v ? v : "");
      usage();
      return 2;
    }
  }
  const std::string text = !unix_path.empty()
                               ? "unix:" + unix_path
                               : (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
                                     ":" + std::to_string(port);
  auto addr = platform::Address::parse(text);
  if (!addr || !bench::is_loopback(addr.value())) {
    std::fprintf(stderr, "weft-msg-bench-server: %s is not a loopback address\n", text.c_str());
    return 2;
  }
  opts.setup = [](msg::Registry& r, platform::Loop&) {
    if (!r.add({bench::kUnaryMethod, bench::kUnaryMethodName, &unary, nullptr})) {
      WEFT_PANIC("cannot register the bench method");
    }
  };
  msg::Server server(std::move(opts));
  platform::Runtime rt;
  std::vector<platform::Service> services;
  services.push_back(server.service(addr.value()));
  if (auto r = rt.start(cfg, std::move(services)); !r) {
    std::fprintf(stderr, "weft-msg-bench-server: cannot start: %s\n", r.error().message().c_str());
    return 1;
  }
  char where[128];
  rt.local_address(0).format(where, sizeof where);
  // The same words as weft-echo's line: scripts check the backend in it.
  std::printf("weft-msg-bench-server listening on %s (%zu worker(s), %s)\n", where,
              rt.worker_count(), platform::to_string(rt.backend_kind()));
  std::fflush(stdout);
  const int sig = platform::wait_for_termination_signal();
  log(LogLevel::info, "signal %d: draining", sig);
  rt.stop();
  rt.wait();
  const msg::ServerStats s = server.stats();
  std::printf(
      "weft-msg-bench-server: stopped; requests %llu, responses %llu, errors sent %llu, "
      "overloaded %llu, protocol errors %llu\n",
      static_cast<unsigned long long>(s.requests), static_cast<unsigned long long>(s.responses),
      static_cast<unsigned long long>(s.errors_sent), static_cast<unsigned long long>(s.overloaded),
      static_cast<unsigned long long>(s.protocol_errors));
  return 0;
}
