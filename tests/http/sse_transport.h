// A tiny line transport over sse::Streams for the tests (not a protocol of weft's): a
// connection takes commands until it sends SUB, after which it is an SSE stream. The handler
// allocates nothing (fixed line buffer, snprintf into the stack, send_copy): the
// zero-allocation test uses it as is. Replies that cannot be queued abort the connection.
#pragma once

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <span>
#include <string_view>
#include <thread>

#include <weft/http/streams.h>
#include <weft/platform/conn.h>
#include <weft/platform/loop.h>
#include <weft/pubsub/hub.h>

namespace weft::test {

using http::sse::Published;
using http::sse::SlowPolicy;
using http::sse::Streams;
using http::sse::Subscriber;
using platform::Conn;

inline std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

struct Env {
  Streams* streams = nullptr;
  pubsub::Hub* hub = nullptr;
};

// Client -> server, one command per line (a connection that sent SUB is an SSE stream):
//   WHO                          -> "W<worker>\n"
//   SUB <topic> <last-id|-> [drop|close]
//                                -> the replay, then the comment ": ok <replayed> <marker>"
//                                   (": err <value>" on an error)
//   PUB <topic> <data>           -> "K <id>\n" (or "ERR <value>\n")
//   PUBN <topic> <n> <pad> <us>  -> n publishes of "<i>" plus pad 'x's, us microseconds apart,
//                                   then "K <last id>\n"
//   HPUB <topic> <data>          -> hub.publish directly (not through Streams): "K\n"
class SseHandler final : public platform::Handler {
 public:
  explicit SseHandler(const Env& env) : env_(env) {}
  void reset(Conn&) noexcept {
    n_ = 0;
    sub_ = {};
    subscribed_ = false;
  }
  void on_data(Conn& c, platform::BufView in) noexcept override {
    for (const std::byte b : in.bytes) {
      if (b == std::byte{'\n'}) {
        command(c, std::string_view(line_, n_));
        n_ = 0;
      } else if (n_ < sizeof line_) {
        line_[n_++] = static_cast<char>(b);
      }
    }
  }
  void on_close(Conn& c, std::error_code) noexcept override { env_.hub->closed(c); }

  static Subscriber* lookup(void*, Conn& c) noexcept {
    auto* h = static_cast<SseHandler*>(c.handler());
    return h != nullptr && h->subscribed_ ? &h->sub_ : nullptr;
  }

 private:
  void reply(Conn& c, std::string_view s) noexcept {
    if (!c.send_copy(bytes_of(s)).ok()) {
      c.abort(std::error_code(ENOBUFS, std::system_category()));
    }
  }
  void command(Conn& c, std::string_view l) noexcept {
    char b[96];
    const auto word = [&l]() {
      const std::size_t sp = l.find(' ');
      const std::string_view w = l.substr(0, sp);
      l = sp == std::string_view::npos ? std::string_view() : l.substr(sp + 1);
      return w;
    };
    const std::string_view cmd = word();
    if (cmd == "WHO") {
      const int n = std::snprintf(b, sizeof b, "W%u\n", c.loop().index());
      reply(c, std::string_view(b, static_cast<std::size_t>(n)));
    } else if (cmd == "SUB") {
      const std::string_view topic = word();
      std::string_view last = word();
      const std::string_view policy = word();
      last = last == "-" ? std::string_view() : last;
      sub_.policy = policy == "close" ? SlowPolicy::close : SlowPolicy::drop;
      subscribed_ = true;
      auto r = env_.streams->subscribe(c, topic, last, sub_);
      const int n = r ? std::snprintf(b, sizeof b, ": ok %u %d\n\n", r->replayed, r->marker ? 1 : 0)
                      : std::snprintf(b, sizeof b, ": err %d\n\n", r.error().value());
      reply(c, std::string_view(b, static_cast<std::size_t>(n)));
    } else if (cmd == "PUB") {
      const std::string_view topic = word();
      auto r = env_.streams->publish(c.loop(), topic, {}, l);
      if (!r) {
        const int n = std::snprintf(b, sizeof b, "ERR %d\n", r.error().value());
        reply(c, std::string_view(b, static_cast<std::size_t>(n)));
        return;
      }
      const int n = std::snprintf(b, sizeof b, "K %.*s\n", static_cast<int>(r->id_len), r->id);
      reply(c, std::string_view(b, static_cast<std::size_t>(n)));
    } else if (cmd == "PUBN") {
      const std::string_view topic = word();
      const std::string_view ns = word();
      const std::string_view pads = word();
      const std::string_view uss = word();
      int count = 0, pad = 0, us = 0;
      std::from_chars(ns.data(), ns.data() + ns.size(), count);
      std::from_chars(pads.data(), pads.data() + pads.size(), pad);
      std::from_chars(uss.data(), uss.data() + uss.size(), us);
      char data[4096];
      Result<Published> r = fail(http::sse::sse_errc::invalid_argument);
      for (int i = 0; i < count; ++i) {
        const std::size_t dn =
            static_cast<std::size_t>(std::to_chars(data, data + 32, i).ptr - data);
        std::memset(data + dn, 'x', static_cast<std::size_t>(pad));
        r = env_.streams->publish(c.loop(), topic, {},
                                  std::string_view(data, dn + static_cast<std::size_t>(pad)));
        if (!r || r->hub_error) {
          break;
        }
        if (us != 0) {
          std::this_thread::sleep_for(std::chrono::microseconds(us));
        }
      }
      const int n = !r || r->hub_error ? std::snprintf(b, sizeof b, "ERR\n")
                                       : std::snprintf(b, sizeof b, "K %.*s\n",
                                                       static_cast<int>(r->id_len), r->id);
      reply(c, std::string_view(b, static_cast<std::size_t>(n)));
    } else if (cmd == "HPUB") {
      const std::string_view topic = word();
      auto r = env_.hub->publish(c.loop(), bytes_of(topic), bytes_of(l));
      reply(c, r ? "K\n" : "ERR\n");
    } else {
      reply(c, "?\n");
    }
  }

  Env env_;
  char line_[512];
  std::size_t n_ = 0;
  Subscriber sub_;
  bool subscribed_ = false;
};

}  // namespace weft::test
