// A tiny line-based transport over weft::pubsub for the tests (not a protocol of weft's).
//
// Client -> server, one command per line:
//   SUB <topic>             -> "OK\n", or "ERR <pubsub_errc value>\n"
//   UNS <topic>             -> "OK\n" (was subscribed) or "NO\n"
//   SUBX <topic>            -> as SUB, in the second format (LineEnv::alt)
//   PUB <topic> <payload>   -> "K\n" (every worker with subscribers reached), "M\n" (some
//                              could not be posted to: Published::missed), or "ERR <value>\n"
//   NAP <ms>                -> holds the worker's thread until the test sets g_wake (at most
//                              ms; g_napping is set meanwhile), then "Z\n": meanwhile the
//                              post rings to that worker fill up
//   WHO                     -> "W<worker index>\n"
//   STAT <topic>            -> "S <delivered> <dropped>\n" (this connection's subscription)
// Server -> subscriber: "EVT <topic> <payload>\n", or "ALT ..." in the second format.
//
// The handler keeps an unfinished line in a fixed buffer and allocates nothing: the
// zero-allocation test uses it as is. Replies are copied (send_copy); a reply that cannot be
// queued aborts the connection, which the tests would notice.
#pragma once

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <thread>

#include <weft/platform/handler_pool.h>
#include <weft/platform/loop.h>
#include <weft/pubsub/hub.h>

namespace weft::test {

inline std::span<const std::byte> as_span(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// The test formats: "<tag> <topic> <payload>\n", tag the 3 letters ctx points to ("EVT" when
// ctx is null), so that two registered formats are told apart on the wire.
inline std::size_t encode_line_event(void* ctx, std::span<const std::byte> topic,
                                     std::span<const std::byte> payload,
                                     std::span<std::byte> out) noexcept {
  const char* tag = ctx != nullptr ? static_cast<const char*>(ctx) : "EVT";
  const std::size_t n = 4 + topic.size() + 1 + payload.size() + 1;
  if (n > out.size()) {
    return n;
  }
  std::byte* p = out.data();
  std::memcpy(p, tag, 3);
  p[3] = std::byte{' '};
  std::memcpy(p + 4, topic.data(), topic.size());
  p[4 + topic.size()] = std::byte{' '};
  std::memcpy(p + 5 + topic.size(), payload.data(), payload.size());
  p[n - 1] = std::byte{'\n'};
  return n;
}

// Set by NAP while it holds its worker, for a test to publish meanwhile; the test ends the
// nap by setting g_wake (or the nap's time runs out).
inline std::atomic<int> g_napping{0};
inline std::atomic<int> g_wake{0};

struct LineEnv {
  pubsub::Hub* hub = nullptr;
  pubsub::Format format = 0;  // SUB
  pubsub::Format alt = 0;     // SUBX
};

class LineHandler final : public platform::Handler {
 public:
  static constexpr std::size_t kMaxLine = 8192;

  explicit LineHandler(const LineEnv& env) : env_(env) {}
  void reset(platform::Conn&) noexcept { n_ = 0; }

  void on_data(platform::Conn& c, platform::BufView in) noexcept override {
    for (const std::byte b : in.bytes) {
      if (b == std::byte{'\n'}) {
        command(c, std::string_view(line_, n_));
        n_ = 0;
      } else if (n_ < kMaxLine) {
        line_[n_++] = static_cast<char>(b);
      }
    }
  }
  void on_close(platform::Conn& c, std::error_code) noexcept override { env_.hub->closed(c); }

 private:
  void reply(platform::Conn& c, std::string_view s) noexcept {
    if (!c.send_copy(as_span(s)).ok()) {
      c.abort(std::error_code(ENOBUFS, std::system_category()));
    }
  }
  void error(platform::Conn& c, std::error_code e) noexcept {
    char b[32];
    const int n = std::snprintf(b, sizeof b, "ERR %d\n", e.value());
    reply(c, std::string_view(b, static_cast<std::size_t>(n)));
  }
  void command(platform::Conn& c, std::string_view l) noexcept {
    pubsub::Hub& hub = *env_.hub;
    char b[64];
    if (l.starts_with("SUB ")) {
      auto r = hub.subscribe(c, as_span(l.substr(4)), env_.format);
      r ? reply(c, "OK\n") : error(c, r.error());
    } else if (l.starts_with("SUBX ")) {
      auto r = hub.subscribe(c, as_span(l.substr(5)), env_.alt);
      r ? reply(c, "OK\n") : error(c, r.error());
    } else if (l.starts_with("UNS ")) {
      auto r = hub.unsubscribe(c, as_span(l.substr(4)));
      !r ? error(c, r.error()) : reply(c, *r ? "OK\n" : "NO\n");
    } else if (l.starts_with("PUB ")) {
      const std::string_view rest = l.substr(4);
      const std::size_t sp = rest.find(' ');
      const std::string_view topic = rest.substr(0, sp);
      const std::string_view payload =
          sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
      auto r = hub.publish(c.loop(), as_span(topic), as_span(payload));
      !r ? error(c, r.error()) : reply(c, r->missed == 0 ? "K\n" : "M\n");
    } else if (l.starts_with("NAP ")) {
      int ms = 0;
      std::from_chars(l.data() + 4, l.data() + l.size(), ms);
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
      g_napping.store(1);
      while (g_wake.exchange(0) == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      g_napping.store(0);
      reply(c, "Z\n");
    } else if (l == "WHO") {
      const int n = std::snprintf(b, sizeof b, "W%u\n", c.loop().index());
      reply(c, std::string_view(b, static_cast<std::size_t>(n)));
    } else if (l.starts_with("STAT ")) {
      auto r = hub.subscription(c, as_span(l.substr(5)));
      if (!r) {
        error(c, r.error());
        return;
      }
      const int n =
          std::snprintf(b, sizeof b, "S %llu %llu\n", static_cast<unsigned long long>(r->delivered),
                        static_cast<unsigned long long>(r->dropped));
      reply(c, std::string_view(b, static_cast<std::size_t>(n)));
    } else {
      reply(c, "?\n");
    }
  }

  LineEnv env_;
  char line_[kMaxLine];
  std::size_t n_ = 0;
};

// The Service factory: attaches the worker to the hub, then a pool of line handlers.
inline std::unique_ptr<platform::HandlerFactory> make_line_factory(platform::Loop& loop,
                                                                   const LineEnv& env) {
  if (!env.hub->attach(loop).ok()) {
    // Must not return null (Service's contract): the subscribe/publish calls on this worker
    // then fail with not_attached, which every test sees in its replies.
    std::fprintf(stderr, "pubsub test: attach failed on worker %u\n", loop.index());
  }
  return std::make_unique<platform::HandlerPool<LineHandler>>(loop.config().max_connections, env);
}

}  // namespace weft::test
