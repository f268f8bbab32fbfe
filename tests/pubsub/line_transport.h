// A tiny line-based transport over weft::pubsub for the tests (not a protocol of weft's).
//
// Client -> server, one command per line:
//   SUB <topic>             -> "OK\n", or "ERR <pubsub_errc value>\n"
//   UNS <topic>             -> "OK\n" (was subscribed) or "NO\n"
//   PUB <topic> <payload>   -> "K\n", or "ERR <value>\n"
//   WHO                     -> "W<worker index>\n"
//   STAT <topic>            -> "S <delivered> <dropped>\n" (this connection's subscription)
// Server -> subscriber, the test format's event: "EVT <topic> <payload>\n".
//
// The handler keeps an unfinished line in a fixed buffer and allocates nothing: the
// zero-allocation test uses it as is. Replies are copied (send_copy); a reply that cannot be
// queued aborts the connection, which the tests would notice.
#pragma once

#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

#include <weft/platform/handler_pool.h>
#include <weft/platform/loop.h>
#include <weft/pubsub/hub.h>

namespace weft::test {

inline std::span<const std::byte> as_span(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// The test format: "EVT <topic> <payload>\n".
inline std::size_t encode_line_event(void*, std::span<const std::byte> topic,
                                     std::span<const std::byte> payload,
                                     std::span<std::byte> out) noexcept {
  const std::size_t n = 4 + topic.size() + 1 + payload.size() + 1;
  if (n > out.size()) {
    return n;
  }
  std::byte* p = out.data();
  std::memcpy(p, "EVT ", 4);
  std::memcpy(p + 4, topic.data(), topic.size());
  p[4 + topic.size()] = std::byte{' '};
  std::memcpy(p + 5 + topic.size(), payload.data(), payload.size());
  p[n - 1] = std::byte{'\n'};
  return n;
}

struct LineEnv {
  pubsub::Hub* hub = nullptr;
  pubsub::Format format = 0;
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
      r ? reply(c, "K\n") : error(c, r.error());
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
