#include "mux_app.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <vector>

#include <weft/mux/stream.h>

#include "appliance.pb.h"
#include "appliance.weft.h"

namespace weft::examples::mux_demo {
namespace {

using mux::ChannelError;
using mux::Endpoint;
using platform::BufView;
using Rpc = weft::example::ApplianceRpc;

constexpr std::uint64_t kFnvSeed = 14695981039346656037ull;

std::uint64_t fnv(std::uint64_t h, std::span<const std::byte> b) noexcept {
  for (const std::byte x : b) {
    h ^= std::to_integer<std::uint8_t>(x);
    h *= 1099511628211ull;
  }
  return h;
}

std::span<const std::byte> bytes_of(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::uint64_t now_us() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

// A fixed pool of handlers of one kind (per worker).
template <class H>
class Pool {
 public:
  explicit Pool(std::size_t n) : all_(n) {}
  H* take() noexcept {
    for (H& h : all_) {
      if (!h.busy) {
        h.busy = true;
        return &h;
      }
    }
    return nullptr;
  }

 private:
  std::vector<H> all_;
};

// ---- server ------------------------------------------------------------------------------

struct FirmwareSink final : mux::ChannelHandler {
  bool busy = false;
  std::uint64_t n = 0, h = kFnvSeed, max = 0;
  std::size_t on_data(Endpoint& ep, std::uint16_t ch, BufView d, bool fin) noexcept override {
    n += d.bytes.size();
    h = fnv(h, d.bytes);
    if (n > max) {
      (void)ep.reset(ch, ChannelError::internal);
      return d.bytes.size();
    }
    if (fin) {
      char line[64];
      const int len = std::snprintf(line, sizeof line, "ok %" PRIu64 " %016" PRIx64, n, h);
      (void)ep.write(ch, bytes_of({line, static_cast<std::size_t>(len)}));
      (void)ep.close(ch);
    }
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override {
    busy = false;
    n = 0;
    h = kFnvSeed;
  }
};

struct TelemetryStream final : mux::ChannelHandler {
  bool busy = false;
  Endpoint* ep = nullptr;
  platform::Loop* loop = nullptr;
  std::uint16_t ch = 0;
  std::uint32_t interval = 0, count = 0;
  std::uint64_t seq = 0, dropped = 0;
  std::array<std::byte, 256> in{};
  std::array<std::byte, 64> out{};
  mux::MessageReader reader{in};
  platform::TimerNode timer;
  weft::example::TelemetryRequest req;
  weft::example::Sample sample;

  static void tick(platform::TimerNode* t) noexcept {
    auto* s = static_cast<TelemetryStream*>(t->ctx);
    s->send();
  }
  void send() noexcept {
    sample.set_seq(++seq);
    sample.set_uptime_ms(loop->now_ms());
    sample.set_temperature_mc(static_cast<std::int32_t>(41000 + (seq * 37) % 2000));
    sample.set_channels_open(static_cast<std::uint32_t>(ep->session().live_channels()));
    Result<void> r = mux::write_pb(*ep, ch, sample, out);
    if (!r) {
      ++dropped;  // the channel is backed up: a telemetry sample is worth less than a stall
    }
    if (count != 0 && seq >= count) {
      (void)ep->close(ch);
      return;
    }
    loop->timers().schedule(timer, loop->now_ms() + interval);
  }
  std::size_t on_data(Endpoint& e, std::uint16_t c, BufView d, bool fin) noexcept override {
    ep = &e;
    ch = c;
    Result<void> r = reader.feed(d.bytes, [&](std::span<const std::byte> m) {
      if (interval != 0 || !req.ParseFromArray(m.data(), static_cast<int>(m.size()))) {
        interval = 0;
        return;
      }
      interval = std::max<std::uint32_t>(req.interval_ms(), 1);
      count = req.count();
      timer.fn = &tick;
      timer.ctx = this;
      loop->timers().schedule(timer, loop->now_ms() + interval);
    });
    if (!r || (fin && interval == 0)) {
      (void)e.reset(c, ChannelError::internal);  // no valid request
    }
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override {
    loop->timers().cancel(timer);
    reader.reset();
    busy = false;
    interval = count = 0;
    seq = 0;
  }
};

struct ControlSession final : mux::ChannelHandler {
  bool busy = false;
  std::array<std::byte, 1024> in{};
  std::array<std::byte, 1024> out{};
  mux::MessageReader reader{in};
  weft::example::Command cmd;
  weft::example::Reply reply;
  bool led = false;
  std::size_t on_data(Endpoint& ep, std::uint16_t ch, BufView d, bool fin) noexcept override {
    bool failed = false;
    Result<void> r = reader.feed(d.bytes, [&](std::span<const std::byte> m) {
      if (failed || !cmd.ParseFromArray(m.data(), static_cast<int>(m.size()))) {
        failed = true;
        return;
      }
      if (cmd.op() == "led on") {
        led = true;
      } else if (cmd.op() == "led off") {
        led = false;
      }
      reply.set_seq(cmd.seq());
      reply.set_sent_us(cmd.sent_us());
      reply.set_result(led ? "led=on" : "led=off");
      // One Reply per Command; a caller that sends without reading gets reset.
      failed = !mux::write_pb(ep, ch, reply, out);
    });
    if (!r || failed) {
      (void)ep.reset(ch, ChannelError::internal);
    } else if (fin) {
      (void)ep.close(ch);
    }
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override {
    reader.reset();
    busy = false;
  }
};

class ApplianceAcceptor final : public mux::Acceptor {
 public:
  ApplianceAcceptor(platform::Loop& loop, const ServerOptions& opt)
      : loop_(loop), opt_(opt), sinks_(opt.pool), streams_(opt.pool), controls_(opt.pool) {
    (void)services_.add(kFirmware, &open_firmware, this);
    (void)services_.add(Rpc::Telemetry::channel, &open_telemetry, this);
    (void)services_.add(Rpc::Control::channel, &open_control, this);
  }
  mux::ChannelHandler* on_open(Endpoint& ep, std::uint16_t ch,
                               std::string_view name) noexcept override {
    return services_.on_open(ep, ch, name);
  }

 private:
  static mux::ChannelHandler* open_firmware(void* ctx, Endpoint&, std::uint16_t) noexcept {
    auto* self = static_cast<ApplianceAcceptor*>(ctx);
    FirmwareSink* s = self->sinks_.take();
    if (s != nullptr) {
      s->max = self->opt_.max_image;
    }
    return s;
  }
  static mux::ChannelHandler* open_telemetry(void* ctx, Endpoint&, std::uint16_t) noexcept {
    auto* self = static_cast<ApplianceAcceptor*>(ctx);
    TelemetryStream* s = self->streams_.take();
    if (s != nullptr) {
      s->loop = &self->loop_;
    }
    return s;
  }
  static mux::ChannelHandler* open_control(void* ctx, Endpoint&, std::uint16_t) noexcept {
    return static_cast<ApplianceAcceptor*>(ctx)->controls_.take();
  }

  platform::Loop& loop_;
  ServerOptions opt_;
  mux::Services services_{4};
  Pool<FirmwareSink> sinks_;
  Pool<TelemetryStream> streams_;
  Pool<ControlSession> controls_;
};

// ---- client ------------------------------------------------------------------------------

// The simulated image: byte i is block[i % kPeriod]; the block is longer than the period by
// one chunk so any chunk is one contiguous read.
constexpr std::size_t kPeriod = 65521;
constexpr std::size_t kChunk = 16384;

struct Uploader final : mux::ChannelHandler {
  const std::vector<std::byte>* block = nullptr;
  std::uint64_t size = 0, sent = 0, h = kFnvSeed;
  std::uint16_t ch = 0;
  bool accepted = false, done = false, matched = false;
  std::string answer;
  void pump(Endpoint& ep) noexcept {
    while (accepted && sent < size) {
      const std::size_t at = sent % kPeriod;
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, size - sent));
      Result<std::size_t> w = ep.write(ch, {block->data() + at, n});
      if (!w) {
        return;  // would_block: on_writable continues
      }
      h = fnv(h, {block->data() + at, *w});
      sent += *w;
      if (sent == size) {
        (void)ep.close(ch);
      }
    }
  }
  void on_accepted(Endpoint& ep, std::uint16_t) noexcept override {
    accepted = true;
    pump(ep);
  }
  void on_writable(Endpoint& ep, std::uint16_t) noexcept override { pump(ep); }
  std::size_t on_data(Endpoint&, std::uint16_t, BufView d, bool) noexcept override {
    answer.append(reinterpret_cast<const char*>(d.bytes.data()), d.bytes.size());
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override {
    char want[64];
    std::snprintf(want, sizeof want, "ok %" PRIu64 " %016" PRIx64, size, h);
    matched = sent == size && answer == want;
    done = true;
  }
};

struct TelemetryClient final : mux::ChannelHandler {
  std::array<std::byte, 256> in{};
  mux::MessageReader reader{in};
  std::uint64_t samples = 0, last_us = 0;
  double max_gap_ms = 0;
  bool counting = false, closed = false;
  weft::example::Sample s;
  std::size_t on_data(Endpoint&, std::uint16_t, BufView d, bool) noexcept override {
    (void)reader.feed(d.bytes, [&](std::span<const std::byte> m) {
      if (!s.ParseFromArray(m.data(), static_cast<int>(m.size()))) {
        return;
      }
      const std::uint64_t t = now_us();
      if (counting) {
        ++samples;
        if (last_us != 0) {
          max_gap_ms = std::max(max_gap_ms, static_cast<double>(t - last_us) / 1000.0);
        }
      }
      last_us = t;
    });
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override { closed = true; }
};

struct ControlClient final : mux::ChannelHandler {
  std::array<std::byte, 1024> in{};
  std::array<std::byte, 256> out{};
  mux::MessageReader reader{in};
  std::uint16_t ch = 0;
  std::uint32_t seq = 0;
  bool accepted = false, closed = false, waiting = false, go = false;
  std::vector<double>* rtts = nullptr;  // where round trips go now
  weft::example::Command cmd;
  weft::example::Reply reply;
  void send(Endpoint& ep) noexcept {
    cmd.set_seq(++seq);
    cmd.set_sent_us(now_us());
    cmd.set_op((seq & 1) != 0 ? "led on" : "led off");
    waiting = mux::write_pb(ep, ch, cmd, out).ok();
  }
  void on_accepted(Endpoint&, std::uint16_t) noexcept override { accepted = true; }
  std::size_t on_data(Endpoint& ep, std::uint16_t, BufView d, bool) noexcept override {
    (void)reader.feed(d.bytes, [&](std::span<const std::byte> m) {
      if (!reply.ParseFromArray(m.data(), static_cast<int>(m.size())) || reply.seq() != seq) {
        return;
      }
      waiting = false;
      if (rtts != nullptr && rtts->size() < rtts->capacity()) {
        rtts->push_back(static_cast<double>(now_us() - reply.sent_us()));
      }
    });
    if (go && !waiting) {
      send(ep);
    }
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override { closed = true; }
};

struct ClientAcceptor final : mux::Acceptor {
  bool ready = false, gone = false;
  std::error_code why;
  void on_ready(Endpoint&) noexcept override { ready = true; }
  mux::ChannelHandler* on_open(Endpoint&, std::uint16_t, std::string_view) noexcept override {
    return nullptr;  // the appliance opens nothing towards us in this demo
  }
  void on_disconnect(Endpoint&, std::error_code r) noexcept override {
    gone = true;
    why = r;
  }
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

std::unique_ptr<mux::Acceptor> make_acceptor(platform::Loop& loop, const ServerOptions& opt) {
  return std::make_unique<ApplianceAcceptor>(loop, opt);
}

DemoResult run_demo(platform::Loop& loop, const platform::Address& server, const DemoOptions& opt) {
  DemoResult res;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::milliseconds(opt.limit_ms);
  const auto spin = [&](auto done) {
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return false;
      }
      loop.run_once(1);
    }
    return true;
  };
  mux::Connector connector(loop, opt.endpoint, 1);
  ClientAcceptor acc;
  Result<platform::ConnId> id = connector.connect(server, &acc);
  if (!id) {
    res.error = "connect: " + id.error().message();
    return res;
  }
  if (!spin([&] { return acc.ready || acc.gone; }) || acc.gone) {
    res.error = "no channel handshake: " + (acc.gone ? acc.why.message() : std::string("timeout"));
    return res;
  }
  platform::Conn* conn = loop.find(*id);
  auto& ep = *static_cast<Endpoint*>(conn->handler());

  // 1. Control round trips on an idle connection.
  ControlClient control;
  std::vector<double> idle, busy;
  idle.reserve(opt.idle_pings);
  busy.reserve(1u << 20);
  Result<std::uint16_t> cc = ep.open(Rpc::Control::channel, &control);
  if (!cc) {
    res.error = "open control: " + cc.error().message();
    return res;
  }
  control.ch = *cc;
  if (!spin([&] { return control.accepted || control.closed; }) || control.closed) {
    res.error = "control refused";
    return res;
  }
  control.rtts = &idle;
  control.go = true;
  control.send(ep);
  spin([&] { return idle.size() >= opt.idle_pings || control.closed; });

  // 2. Telemetry and the uploads, while Control keeps going.
  TelemetryClient telemetry;
  std::array<std::byte, 64> req_buf{};
  weft::example::TelemetryRequest req;
  req.set_interval_ms(opt.telemetry_ms);
  Result<std::uint16_t> tc = ep.open(Rpc::Telemetry::channel, &telemetry);
  if (!tc || !mux::write_pb(ep, *tc, req, req_buf) || !ep.close(*tc)) {
    res.error = "telemetry could not start";
    return res;
  }
  std::vector<std::byte> block(kPeriod + kChunk);
  for (std::size_t i = 0; i < block.size(); ++i) {
    block[i] = static_cast<std::byte>((i * 131 + i / 251) & 0xff);
  }
  std::vector<Uploader> ups(opt.bulk);
  spin([&] { return telemetry.last_us != 0 || telemetry.closed; });  // the stream is live
  telemetry.counting = true;
  control.rtts = &busy;
  const auto t0 = std::chrono::steady_clock::now();
  for (Uploader& u : ups) {
    u.block = &block;
    u.size = opt.image_bytes;
    Result<std::uint16_t> uc = ep.open(kFirmware, &u);
    if (!uc) {
      res.error = "open firmware: " + uc.error().message();
      return res;
    }
    u.ch = *uc;
  }
  const bool finished = spin([&] {
    return std::all_of(ups.begin(), ups.end(), [](const Uploader& u) { return u.done; }) ||
           acc.gone;
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  telemetry.counting = false;
  control.go = false;
  control.rtts = nullptr;

  // 3. Wind down: stop the stream, end Control, leave.
  if (!telemetry.closed) {
    (void)ep.reset(*tc, ChannelError::cancel);
  }
  (void)ep.close(control.ch);
  spin([&] { return control.closed || acc.gone; });
  ep.shutdown();
  spin([&] { return acc.gone; });

  for (const Uploader& u : ups) {
    res.images_ok += u.matched ? 1 : 0;
  }
  res.upload_s = secs;
  res.upload_mib_s =
      static_cast<double>(opt.image_bytes) * opt.bulk / (1024.0 * 1024.0) / std::max(secs, 1e-9);
  res.samples = telemetry.samples;
  res.max_sample_gap_ms = telemetry.max_gap_ms;
  res.idle_pings = idle.size();
  res.busy_pings = busy.size();
  res.idle_p50_us = percentile(idle, 0.50);
  res.idle_p99_us = percentile(idle, 0.99);
  res.busy_p50_us = percentile(busy, 0.50);
  res.busy_p99_us = percentile(busy, 0.99);
  if (!finished) {
    res.error = acc.gone ? "connection lost: " + acc.why.message() : "time limit reached";
  } else if (res.images_ok != opt.bulk) {
    res.error = "checksum mismatch on " + std::to_string(opt.bulk - res.images_ok) + " image(s)";
  } else if (res.idle_pings < opt.idle_pings) {
    res.error = "control stalled before the upload";
  } else {
    res.ok = true;
  }
  return res;
}

}  // namespace weft::examples::mux_demo
