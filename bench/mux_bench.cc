// weft-mux-bench: weft::mux channels on loopback, one process (a server Runtime worker and a
// client Loop on the calling thread). Every run is bounded by --seconds (and --mib).
//
//   weft-mux-bench bulk  [--mib N] [--seconds S]   one channel uploads N MiB; MiB/s
//   weft-mux-bench raw   [--mib N] [--seconds S]   the same bytes as u32-framed messages of
//                                                  16 KiB on a plain weft connection (no
//                                                  mux): the baseline bulk is judged by
//   weft-mux-bench fair  [--bulk K] [--seconds S]  64-byte ping-pong on one channel, first on
//                                                  an idle connection, then while K channels
//                                                  upload as fast as the windows let them;
//                                                  p50/p99 of both and the bulk MiB/s
//   weft-mux-bench openclose [--seconds S]         open + 1 byte + FIN + the peer's FIN, 64
//                                                  channels in flight: channels per second
// Common: --backend auto|uring|epoll, --window-kib N, --conn-window-kib N, --high-kib N (the
// core's output high watermark, where the Endpoint stops emitting; low = high / 4), --json.
// The sink side consumes without looking at the bytes (no checksum): this measures the
// transport, not an application.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <weft/frame/length_prefix.h>
#include <weft/mux/endpoint.h>
#include <weft/platform/runtime.h>

namespace {

using namespace weft;
using mux::ChannelError;
using mux::Endpoint;
using platform::BufView;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kChunk = 16 * 1024;
alignas(64) std::byte g_block[kChunk + 4] = {};

struct Args {
  std::string mode;
  std::uint64_t bytes = 1024ull << 20;
  double seconds = 10;
  std::uint32_t bulk = 8;
  bool json = false;
  std::uint32_t high_kib = 0;  // 0: Config's default high watermark
  platform::BackendKind backend = platform::BackendKind::automatic;
  mux::EndpointOptions ep;
};

// ---- server ------------------------------------------------------------------------------

struct Sink final : mux::ChannelHandler {
  bool busy = false;
  std::size_t on_data(Endpoint& ep, std::uint16_t ch, BufView d, bool fin) noexcept override {
    if (fin) {
      (void)ep.close(ch);
    }
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override { busy = false; }
};

struct Echo final : mux::ChannelHandler {
  bool busy = false;
  std::size_t on_data(Endpoint& ep, std::uint16_t ch, BufView d, bool fin) noexcept override {
    if (!d.bytes.empty() && !ep.write_all(ch, d.bytes)) {
      (void)ep.reset(ch, ChannelError::internal);
    }
    if (fin) {
      (void)ep.close(ch);
    }
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override { busy = false; }
};

struct BenchAcceptor final : mux::Acceptor {
  std::vector<Sink> sinks{64};
  std::vector<Echo> echoes{8};
  template <class H>
  static H* take(std::vector<H>& v) noexcept {
    for (H& h : v) {
      if (!h.busy) {
        h.busy = true;
        return &h;
      }
    }
    return nullptr;
  }
  mux::ChannelHandler* on_open(Endpoint&, std::uint16_t, std::string_view name) noexcept override {
    if (name == "sink") {
      return take(sinks);
    }
    if (name == "echo") {
      return take(echoes);
    }
    return nullptr;
  }
};

// The raw baseline's server: u32-framed messages, parsed and dropped.
struct RawSink final : platform::Handler {
  frame::LengthPrefixDecoder dec{
      {.prefix = frame::PrefixKind::u32_be, .max_frame_size = static_cast<std::uint32_t>(kChunk)}};
  std::vector<std::byte> assembly = std::vector<std::byte>(kChunk);
  RawSink() { (void)dec.set_assembly(assembly); }
  void reset(platform::Conn&) noexcept { dec.reset(); }
  void on_data(platform::Conn& c, BufView in) noexcept override {
    std::span<const std::byte> p = in.bytes;
    while (!p.empty()) {
      const frame::Decoded d = dec.feed(p);
      if (d.state == frame::DecodeState::error) {
        c.abort(dec.error());
        return;
      }
      p = p.subspan(d.consumed);
    }
  }
};

// ---- client ------------------------------------------------------------------------------

struct Ready final : mux::Acceptor {
  bool ready = false, gone = false;
  void on_ready(Endpoint&) noexcept override { ready = true; }
  mux::ChannelHandler* on_open(Endpoint&, std::uint16_t, std::string_view) noexcept override {
    return nullptr;
  }
  void on_disconnect(Endpoint&, std::error_code) noexcept override { gone = true; }
};

struct Pusher final : mux::ChannelHandler {
  std::uint16_t ch = 0;
  std::uint64_t limit = 0, sent = 0;
  bool accepted = false, closed = false, stop = false;
  void pump(Endpoint& ep) noexcept {
    while (accepted && !stop && sent < limit) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, limit - sent));
      Result<std::size_t> w = ep.write(ch, {g_block, n});
      if (!w) {
        return;
      }
      sent += *w;
    }
  }
  void finish(Endpoint& ep) noexcept {
    stop = true;
    (void)ep.close(ch);
  }
  void on_accepted(Endpoint& ep, std::uint16_t) noexcept override {
    accepted = true;
    pump(ep);
  }
  void on_writable(Endpoint& ep, std::uint16_t) noexcept override { pump(ep); }
  std::size_t on_data(Endpoint&, std::uint16_t, BufView d, bool) noexcept override {
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override { closed = true; }
};

struct Pinger final : mux::ChannelHandler {
  std::uint16_t ch = 0;
  bool accepted = false, waiting = false, go = false;
  std::uint64_t got = 0;
  Clock::time_point t0;
  std::vector<double>* out = nullptr;
  void send(Endpoint& ep) noexcept {
    static const std::byte msg[64] = {};
    t0 = Clock::now();
    got = 0;
    waiting = ep.write_all(ch, msg).ok();
  }
  void on_accepted(Endpoint&, std::uint16_t) noexcept override { accepted = true; }
  std::size_t on_data(Endpoint& ep, std::uint16_t, BufView d, bool) noexcept override {
    got += d.bytes.size();
    if (waiting && got >= 64) {
      waiting = false;
      if (out != nullptr && out->size() < out->capacity()) {
        out->push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      if (go) {
        send(ep);
      }
    }
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override {}
};

struct Closer final : mux::ChannelHandler {
  bool closed = false;
  std::size_t on_data(Endpoint&, std::uint16_t, BufView d, bool) noexcept override {
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override { closed = true; }
};

// Raw client: u32-framed 16 KiB messages copied into pool buffers (send_copy), as a framed
// protocol without channels would write them.
struct RawPusher final : platform::Handler {
  std::uint64_t limit = 0, sent = 0;
  bool open = false, closed = false;
  void pump(platform::Conn& c) noexcept {
    const std::uint32_t high = c.loop().config().high_watermark;
    while (sent < limit && c.queued_bytes() < high) {
      const std::uint32_t n =
          static_cast<std::uint32_t>(std::min<std::uint64_t>(kChunk, limit - sent));
      const std::byte head[4] = {static_cast<std::byte>(n >> 24), static_cast<std::byte>(n >> 16),
                                 static_cast<std::byte>(n >> 8), static_cast<std::byte>(n)};
      if (!c.send_copy(head, {g_block, n})) {
        return;  // on_writable continues
      }
      sent += n;
    }
    if (sent == limit) {
      c.close();
    }
  }
  void on_open(platform::Conn& c) noexcept override {
    open = true;
    pump(c);
  }
  void on_data(platform::Conn&, BufView) noexcept override {}
  void on_writable(platform::Conn& c) noexcept override { pump(c); }
  void on_close(platform::Conn&, std::error_code) noexcept override { closed = true; }
};

struct OneFactory final : platform::HandlerFactory {
  platform::Handler* h = nullptr;
  platform::Handler* create(platform::Conn&) noexcept override { return h; }
  void destroy(platform::Handler*) noexcept override {}
};

double pct(std::vector<double> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

platform::Config config(const Args& a) {
  platform::Config cfg;
  cfg.backend = a.backend;
  cfg.workers = 1;
  cfg.buffer_size = 16 * 1024;
  cfg.recv_buffers = 256;
  cfg.send_buffers = 512;
  cfg.max_connections = 16;
  if (a.high_kib != 0) {
    cfg.high_watermark = a.high_kib * 1024;
    cfg.low_watermark = cfg.high_watermark / 4;
  }
  return cfg;
}

int run(const Args& a) {
  const platform::Config cfg = config(a);
  platform::Runtime rt;
  std::vector<platform::Service> services;
  const bool raw = a.mode == "raw";
  if (raw) {
    services.push_back({platform::Address::loopback_v4(0), [](platform::Loop&) {
                          return std::unique_ptr<platform::HandlerFactory>(
                              new platform::HandlerPool<RawSink>(4));
                        }});
  } else {
    services.push_back(mux::make_service(
        platform::Address::loopback_v4(0), a.ep,
        [](platform::Loop&) { return std::make_unique<BenchAcceptor>(); }, 4));
  }
  if (auto r = rt.start(cfg, std::move(services)); !r) {
    std::fprintf(stderr, "weft-mux-bench: %s\n", r.error().message().c_str());
    return 1;
  }
  auto lp = platform::Loop::create(cfg, 1);
  if (!lp) {
    std::fprintf(stderr, "weft-mux-bench: %s\n", lp.error().message().c_str());
    return 1;
  }
  platform::Loop& loop = **lp;
  const auto end = Clock::now() + std::chrono::duration<double>(a.seconds);
  const auto spin = [&](auto done) {
    while (!done() && Clock::now() < end) {
      loop.run_once(1);
    }
    return done();
  };
  const char* backend = platform::to_string(rt.backend_kind());

  if (raw) {
    RawPusher p;
    p.limit = a.bytes;
    OneFactory f;
    f.h = &p;
    const auto t0 = Clock::now();
    if (!loop.connect(rt.local_address(0), f)) {
      return 1;
    }
    spin([&] { return p.closed; });
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    const double mib_s = static_cast<double>(p.sent) / (1 << 20) / s;
    std::printf(a.json ? "{\"mode\":\"raw\",\"backend\":\"%s\",\"mib\":%.0f,\"mib_s\":%.1f}\n"
                       : "raw framed TCP (%s): %.0f MiB in %.2f s: %.1f MiB/s\n",
                backend, static_cast<double>(p.sent) / (1 << 20), a.json ? mib_s : s, mib_s);
    rt.stop(0);
    rt.wait();
    return p.sent == a.bytes ? 0 : 1;
  }

  mux::Connector connector(loop, a.ep, 1);
  Ready ready;
  auto id = connector.connect(rt.local_address(0), &ready);
  if (!id || !spin([&] { return ready.ready; })) {
    std::fprintf(stderr, "weft-mux-bench: no connection\n");
    return 1;
  }
  Endpoint& ep = *static_cast<Endpoint*>(loop.find(*id)->handler());
  int rc = 0;
  if (a.mode == "bulk") {
    Pusher p;
    p.limit = a.bytes;
    auto ch = ep.open("sink", &p);
    if (!ch) {
      return 1;
    }
    p.ch = *ch;
    const auto t0 = Clock::now();
    spin([&] { return p.sent == p.limit; });
    (void)ep.close(p.ch);
    spin([&] { return p.closed; });
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    const double mib_s = static_cast<double>(p.sent) / (1 << 20) / s;
    std::printf(a.json ? "{\"mode\":\"bulk\",\"backend\":\"%s\",\"mib\":%.0f,\"mib_s\":%.1f}\n"
                       : "mux, one channel (%s): %.0f MiB in %.2f s: %.1f MiB/s\n",
                backend, static_cast<double>(p.sent) / (1 << 20), a.json ? mib_s : s, mib_s);
    rc = p.closed && p.sent == a.bytes ? 0 : 1;
  } else if (a.mode == "fair") {
    Pinger ping;
    std::vector<double> idle, busy;
    idle.reserve(100000);
    busy.reserve(100000);
    auto pc = ep.open("echo", &ping);
    if (!pc || !spin([&] { return ping.accepted; })) {
      return 1;
    }
    ping.ch = *pc;
    const double phase = a.seconds / 3;
    ping.out = &idle;
    ping.go = true;
    ping.send(ep);
    const auto idle_end = Clock::now() + std::chrono::duration<double>(phase);
    while (Clock::now() < idle_end) {
      loop.run_once(1);
    }
    std::vector<Pusher> bulk(a.bulk);
    for (Pusher& p : bulk) {
      p.limit = ~0ull;
      auto ch = ep.open("sink", &p);
      if (!ch) {
        return 1;
      }
      p.ch = *ch;
    }
    // Let the bulk channels reach full speed, then measure.
    const auto ramp = Clock::now() + std::chrono::milliseconds(200);
    while (Clock::now() < ramp) {
      loop.run_once(1);
    }
    std::uint64_t sent0 = 0;
    for (const Pusher& p : bulk) {
      sent0 += p.sent;
    }
    ping.out = &busy;
    const auto t0 = Clock::now();
    const auto busy_end = t0 + std::chrono::duration<double>(phase);
    while (Clock::now() < busy_end) {
      loop.run_once(1);
    }
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    ping.out = nullptr;
    ping.go = false;
    std::uint64_t sent1 = 0;
    for (Pusher& p : bulk) {
      sent1 += p.sent;
      p.finish(ep);
    }
    const double mib_s = static_cast<double>(sent1 - sent0) / (1 << 20) / s;
    const double i50 = pct(idle, 0.5), i99 = pct(idle, 0.99);
    const double b50 = pct(busy, 0.5), b99 = pct(busy, 0.99);
    if (a.json) {
      std::printf(
          "{\"mode\":\"fair\",\"backend\":\"%s\",\"bulk\":%u,\"bulk_mib_s\":%.1f,"
          "\"idle_n\":%zu,\"idle_p50_us\":%.1f,\"idle_p99_us\":%.1f,\"busy_n\":%zu,"
          "\"busy_p50_us\":%.1f,\"busy_p99_us\":%.1f,\"p99_ratio\":%.2f}\n",
          backend, a.bulk, mib_s, idle.size(), i50, i99, busy.size(), b50, b99,
          b99 / std::max(i99, 1e-9));
    } else {
      std::printf(
          "fairness (%s): ping idle p50 %.0f us p99 %.0f us (%zu); with %u bulk channels "
          "at %.1f MiB/s: p50 %.0f us p99 %.0f us (%zu); p99 ratio %.2f\n",
          backend, i50, i99, idle.size(), a.bulk, mib_s, b50, b99, busy.size(),
          b99 / std::max(i99, 1e-9));
    }
    rc = busy.empty() ? 1 : 0;
  } else if (a.mode == "openclose") {
    // 64 channels in flight, each opened, given one byte and closed in one go (the OPEN,
    // DATA and FIN leave together once the OPEN_ACK is in); a completed one is replaced at
    // once. Ends at 30,000 channels (a connection has 32,767 client ids) or --seconds.
    constexpr int kInFlight = 64;
    constexpr std::uint64_t kMax = 30000;
    std::vector<Closer> slots(kInFlight);
    std::vector<bool> busy(kInFlight, false);
    std::uint64_t started = 0, n = 0;
    const std::byte one[1] = {};
    const auto t0 = Clock::now();
    while (n < kMax && Clock::now() < end && rc == 0) {
      for (int i = 0; i < kInFlight; ++i) {
        if (busy[i] && slots[i].closed) {
          busy[i] = false;
          ++n;
        }
        if (!busy[i] && started < kMax) {
          slots[i] = Closer{};
          auto ch = ep.open("sink", &slots[i]);
          if (!ch || !ep.write(*ch, one) || !ep.close(*ch)) {
            rc = 1;
            break;
          }
          busy[i] = true;
          ++started;
        }
      }
      loop.run_once(0);
    }
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf(a.json ? "{\"mode\":\"openclose\",\"backend\":\"%s\",\"channels\":%llu,"
                         "\"per_s\":%.0f,\"us_each\":%.2f}\n"
                       : "open/close, 64 in flight (%s): %llu channels, %.0f per s, %.2f us each\n",
                backend, static_cast<unsigned long long>(n), static_cast<double>(n) / s,
                s * 1e6 / static_cast<double>(std::max<std::uint64_t>(n, 1)));
  } else {
    std::fprintf(stderr, "weft-mux-bench: unknown mode %s\n", a.mode.c_str());
    return 2;
  }
  ep.shutdown();
  rt.stop(0);
  rt.wait();
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: weft-mux-bench bulk|raw|fair|openclose [--mib N] [--seconds S] "
                 "[--bulk K] [--backend B] [--window-kib N] [--conn-window-kib N] [--high-kib N] "
                 "[--json]\n");
    return 2;
  }
  a.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string k = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (k == "--json") {
      a.json = true;
      continue;
    }
    ++i;
    if (k == "--mib") {
      a.bytes = std::strtoull(v, nullptr, 10) << 20;
    } else if (k == "--seconds") {
      a.seconds = std::strtod(v, nullptr);
    } else if (k == "--bulk") {
      a.bulk = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10));
    } else if (k == "--window-kib") {
      a.ep.limits.channel_window = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10)) * 1024;
    } else if (k == "--conn-window-kib") {
      a.ep.limits.conn_window = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10)) * 1024;
    } else if (k == "--high-kib") {
      a.high_kib = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10));
    } else if (k == "--backend") {
      const std::string b = v;
      a.backend = b == "epoll"   ? platform::BackendKind::epoll
                  : b == "uring" ? platform::BackendKind::uring
                                 : platform::BackendKind::automatic;
    } else {
      std::fprintf(stderr, "weft-mux-bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (a.mode == "openclose") {
    // Measure the channel machinery, not the flood guard (1000 OPENs/s by default).
    a.ep.limits.max_opens_per_sec = 10'000'000;
  }
  if (a.seconds <= 0 || a.seconds > 600 || a.bytes == 0 || a.bulk == 0 || a.bulk > 60) {
    std::fprintf(stderr, "weft-mux-bench: out of range (seconds 0..600, bulk 1..60)\n");
    return 2;
  }
  return run(a);
}
