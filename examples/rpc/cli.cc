// weft-cli: talk to a weft::msg server from a shell — the settings service of examples/rpc
// (get, put, list, watch) and any method or topic of any weft::msg server (call, publish,
// subscribe, ping). Built on weft::client::BlockingClient.
//
// Run `weft-cli --help` for the commands. Exit codes (for scripts):
//   0 ok   1 the server answered with an ERROR   2 usage   3 cannot connect / connection lost
//   4 timed out
#include <unistd.h>

#include <cerrno>
#include <cinttypes>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <weft/base/log.h>
#include <weft/client/blocking.h>
#include <weft/client/error.h>
#include <weft/msg/error.h>
#include <weft/msg/pb_codec.h>
#include <weft/msg/server.h>
#include <weft/platform/error.h>

#include "settings.pb.h"
#include "settings.weft.h"
#include "settings_service.h"

namespace {

using weft::Result;
namespace msg = weft::msg;
namespace client = weft::client;
namespace ex = weft::examples;

enum Exit : int { kOk = 0, kRemote = 1, kUsage = 2, kConnect = 3, kTimeout = 4 };

constexpr const char* kHelp =
    "usage: weft-cli [options] COMMAND [ARGS]\n"
    "\n"
    "Talks to a weft::msg server (docs/protocol.md section 6): the settings service of\n"
    "examples/rpc, or any method and topic of any weft::msg server.\n"
    "\n"
    "Settings service (weft-settings):\n"
    "  get KEY               print KEY's value and version\n"
    "  put KEY VALUE         set KEY (1..64 bytes) to VALUE (0..256 bytes); prints the version\n"
    "  list [PREFIX]         the keys starting with PREFIX, one per line\n"
    "  watch [KEY]           print every change (of KEY only, when given) as it happens\n"
    "\n"
    "Any server:\n"
    "  call METHOD [PAYLOAD] call METHOD (\"package.Service/Method\", or its id as a number,\n"
    "                        e.g. 0x95fbb2e0) with PAYLOAD's bytes; prints the response\n"
    "  publish TOPIC PAYLOAD publish PAYLOAD on TOPIC\n"
    "  subscribe TOPIC       print the events of TOPIC as they arrive\n"
    "  ping                  measure the round trip\n"
    "\n"
    "weft-demo:\n"
    "  top                   a live view of a running weft-demo (its \"metrics\" topic):\n"
    "                        requests/s, connections, streams, allocations, per worker;\n"
    "                        a full-screen view on a terminal, one line per second otherwise\n"
    "\n"
    "Options:\n"
    "  --addr HOST:PORT      server address (default 127.0.0.1:7100)\n"
    "  --unix PATH           connect to a Unix socket instead\n"
    "  --timeout MS          deadline of a call, or how long watch/subscribe wait in total\n"
    "                        (default 5000; 0 with watch/subscribe: until interrupted)\n"
    "  --count N             watch/subscribe/ping: stop after N events (or pings)\n"
    "  --hex                 call/publish: PAYLOAD is hex (\"0a03 6b6579\"), and payloads are\n"
    "                        printed as hex\n"
    "  --idempotent          call: send an idempotency key (safe to retry), with --retries N\n"
    "  --retries N           call: extra attempts for an idempotent call (default 2)\n"
    "  --json                one JSON object per result line, for scripts\n"
    "  -h, --help            this text\n"
    "\n"
    "Exit status: 0 ok, 1 the server answered with an ERROR, 2 usage, 3 cannot connect or\n"
    "the connection was lost, 4 timed out.\n"
    "\n"
    "Examples:\n"
    "  weft-cli put wifi.ssid lab && weft-cli get wifi.ssid\n"
    "  weft-cli --json watch wifi.ssid --count 1\n"
    "  weft-cli call weft.examples.Settings/List --hex ''\n"
    "  weft-cli top --count 5 --timeout 0\n";

struct Args {
  std::string addr = "127.0.0.1:7100";
  std::string unix_path;
  std::uint32_t timeout_ms = 5000;
  std::uint64_t count = 0;  // 0: unbounded
  bool hex = false;
  bool json = false;
  bool idempotent = false;
  std::uint32_t retries = 2;
  std::vector<std::string> words;  // the command and its arguments
};

int usage_error(const char* what, const char* arg = "") {
  std::fprintf(stderr, "weft-cli: %s%s\nRun 'weft-cli --help' for the commands.\n", what, arg);
  return kUsage;
}

bool parse_u64(const char* s, std::uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 0);
  if (end == s || *end != '\0' || errno != 0) {
    return false;
  }
  out = v;
  return true;
}

// ---- output ----------------------------------------------------------------------------

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);  // UTF-8 passes through
        }
    }
  }
  out += '"';
  return out;
}

std::string to_hex(std::span<const std::byte> b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(b.size() * 2);
  for (const std::byte x : b) {
    out += kDigits[std::to_integer<unsigned>(x) >> 4];
    out += kDigits[std::to_integer<unsigned>(x) & 15];
  }
  return out;
}

bool from_hex(std::string_view s, std::vector<std::byte>& out) {
  int hi = -1;
  for (const char ch : s) {
    if (ch == ' ' || ch == ':') {
      continue;
    }
    int v = -1;
    if (ch >= '0' && ch <= '9') {
      v = ch - '0';
    } else if (ch >= 'a' && ch <= 'f') {
      v = ch - 'a' + 10;
    } else if (ch >= 'A' && ch <= 'F') {
      v = ch - 'A' + 10;
    } else {
      return false;
    }
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<std::byte>(hi << 4 | v));
      hi = -1;
    }
  }
  return hi < 0;
}

std::string_view text_of(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
std::span<const std::byte> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// A payload as the user asked to see it: hex, or text.
std::string shown(const Args& a, std::span<const std::byte> b) {
  return a.hex ? to_hex(b) : std::string(text_of(b));
}

// Prints an error and returns the exit status it maps to.
int report(const Args& a, const char* what, std::error_code e) {
  int code = kConnect;
  std::string kind = "connection";
  if (e.category() == msg::protocol_category()) {
    code = kRemote;
    kind = "remote";
  } else if (e == make_error_code(weft::platform::platform_errc::timed_out)) {
    code = kTimeout;
    kind = "timeout";
  }
  if (a.json) {
    std::printf("{\"ok\":false,\"op\":%s,\"error\":%s,\"kind\":%s,\"code\":%d}\n",
                json_string(what).c_str(), json_string(e.message()).c_str(),
                json_string(kind).c_str(), e.value());
  } else {
    std::fprintf(stderr, "weft-cli: %s: %s (%s %s)\n", what, e.message().c_str(),
                 e.category().name(), kind.c_str());
  }
  return code;
}

// ---- commands --------------------------------------------------------------------------

template <class Traits>
int typed_call(const Args& a, client::BlockingClient& c, const typename Traits::Request& rq,
               typename Traits::Response& rs, bool retry_safe) {
  std::string wire;
  if (!rq.SerializeToString(&wire)) {
    return usage_error("request does not serialize");
  }
  client::CallOptions o;
  o.deadline_ms = a.timeout_ms;
  o.idempotent = retry_safe || a.idempotent;
  o.retries = o.idempotent ? a.retries : 0;
  auto r = c.call(Traits::id, bytes_of(wire), o);
  if (!r) {
    return report(a, std::string(Traits::name).c_str(), r.error());
  }
  if (!rs.ParseFromArray(r->data(), static_cast<int>(r->size()))) {
    std::fprintf(stderr, "weft-cli: %s: the response does not decode\n",
                 std::string(Traits::name).c_str());
    return kRemote;
  }
  return kOk;
}

int cmd_get(const Args& a, client::BlockingClient& c) {
  if (a.words.size() != 2) {
    return usage_error("get takes KEY");
  }
  ex::GetRequest rq;
  rq.set_key(a.words[1]);
  ex::GetReply rs;
  if (int e = typed_call<ex::SettingsRpc::Get>(a, c, rq, rs, true); e != kOk) {
    return e;
  }
  if (a.json) {
    std::printf("{\"ok\":true,\"key\":%s,\"found\":%s,\"value\":%s,\"version\":%" PRIu64 "}\n",
                json_string(a.words[1]).c_str(), rs.found() ? "true" : "false",
                rs.found() ? json_string(rs.value()).c_str() : "null", rs.version());
  } else if (rs.found()) {
    std::printf("%s = %s  (version %" PRIu64 ")\n", a.words[1].c_str(), rs.value().c_str(),
                rs.version());
  } else {
    std::printf("%s is not set\n", a.words[1].c_str());
  }
  return kOk;
}

int cmd_put(const Args& a, client::BlockingClient& c) {
  if (a.words.size() != 3) {
    return usage_error("put takes KEY VALUE");
  }
  ex::PutRequest rq;
  rq.set_key(a.words[1]);
  rq.set_value(a.words[2]);
  ex::PutReply rs;
  // Put is not idempotent by itself (each write is a new version): retried only on request.
  if (int e = typed_call<ex::SettingsRpc::Put>(a, c, rq, rs, false); e != kOk) {
    return e;
  }
  if (a.json) {
    std::printf("{\"ok\":true,\"key\":%s,\"version\":%" PRIu64 "}\n",
                json_string(a.words[1]).c_str(), rs.version());
  } else {
    std::printf("%s set (version %" PRIu64 ")\n", a.words[1].c_str(), rs.version());
  }
  return kOk;
}

int cmd_list(const Args& a, client::BlockingClient& c) {
  if (a.words.size() > 2) {
    return usage_error("list takes at most PREFIX");
  }
  ex::ListRequest rq;
  rq.set_prefix(a.words.size() == 2 ? a.words[1] : "");
  ex::ListReply rs;
  if (int e = typed_call<ex::SettingsRpc::List>(a, c, rq, rs, true); e != kOk) {
    return e;
  }
  if (a.json) {
    std::string keys;
    for (const std::string& k : rs.keys()) {
      if (!keys.empty()) {
        keys += ',';
      }
      keys += json_string(k);
    }
    std::printf("{\"ok\":true,\"keys\":[%s]}\n", keys.c_str());
  } else {
    for (const std::string& k : rs.keys()) {
      std::printf("%s\n", k.c_str());
    }
  }
  return kOk;
}

int cmd_call(const Args& a, client::BlockingClient& c) {
  if (a.words.size() < 2 || a.words.size() > 3) {
    return usage_error("call takes METHOD [PAYLOAD]");
  }
  const std::string& m = a.words[1];
  std::uint64_t id = 0;
  if (m.find('/') != std::string::npos) {
    id = msg::method_id(m);
  } else if (!parse_u64(m.c_str(), id) || id == 0 || id > 0xffffffffu) {
    return usage_error("METHOD is package.Service/Method or a 32-bit id: ", m.c_str());
  }
  std::vector<std::byte> payload;
  if (a.words.size() == 3) {
    if (a.hex) {
      if (!from_hex(a.words[2], payload)) {
        return usage_error("PAYLOAD is not hex: ", a.words[2].c_str());
      }
    } else {
      const auto b = bytes_of(a.words[2]);
      payload.assign(b.begin(), b.end());
    }
  }
  client::CallOptions o;
  o.deadline_ms = a.timeout_ms;
  o.idempotent = a.idempotent;
  o.retries = a.idempotent ? a.retries : 0;
  auto r = c.call(static_cast<std::uint32_t>(id), payload, o);
  if (!r) {
    return report(a, m.c_str(), r.error());
  }
  if (a.json) {
    std::printf("{\"ok\":true,\"method\":%s,\"id\":%" PRIu64
                ",\"bytes\":%zu,\"payload_hex\":\"%s\"}\n",
                json_string(m).c_str(), id, r->size(), to_hex(*r).c_str());
  } else {
    std::printf("%s\n", shown(a, *r).c_str());
  }
  return kOk;
}

int cmd_publish(const Args& a, client::BlockingClient& c) {
  if (a.words.size() != 3) {
    return usage_error("publish takes TOPIC PAYLOAD");
  }
  std::vector<std::byte> payload;
  if (a.hex) {
    if (!from_hex(a.words[2], payload)) {
      return usage_error("PAYLOAD is not hex: ", a.words[2].c_str());
    }
  } else {
    const auto b = bytes_of(a.words[2]);
    payload.assign(b.begin(), b.end());
  }
  auto r = c.publish(bytes_of(a.words[1]), payload);
  if (!r) {
    return report(a, "publish", r.error());
  }
  // PUBLISH has no answer; a PING round trip makes sure the server has read it (and would
  // have reported a failure, which the client counts) before the process exits.
  (void)c.ping(a.timeout_ms);
  if (a.json) {
    std::printf("{\"ok\":true,\"topic\":%s,\"bytes\":%zu}\n", json_string(a.words[1]).c_str(),
                payload.size());
  }
  return kOk;
}

// Prints events of `topic` until count, the timeout, or an error. decode_change: the
// payload is a settings Change.
int follow(const Args& a, client::BlockingClient& c, const std::string& topic, bool decode_change) {
  if (auto r = c.subscribe(bytes_of(topic)); !r) {
    return report(a, "subscribe", r.error());
  }
  (void)c.ping(a.timeout_ms == 0 ? 5000 : a.timeout_ms);  // the subscription is in place
  if (!a.json) {
    std::fprintf(stderr, "weft-cli: watching %s%s\n", topic.c_str(),
                 a.count != 0 ? "" : " (Ctrl-C to stop)");
  }
  using Clock = std::chrono::steady_clock;
  const auto end = Clock::now() + std::chrono::milliseconds(a.timeout_ms);
  std::uint64_t seen = 0;
  while (a.count == 0 || seen < a.count) {
    std::uint32_t wait = 1000;
    if (a.timeout_ms != 0) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
      if (left <= 0) {
        return a.count != 0
                   ? report(a, "watch", make_error_code(weft::platform::platform_errc::timed_out))
                   : kOk;
      }
      wait = static_cast<std::uint32_t>(std::min<long long>(left, 1000));
    }
    auto ev = c.next_event(wait);
    if (!ev) {
      if (ev.error() == make_error_code(weft::platform::platform_errc::timed_out)) {
        continue;
      }
      return report(a, "watch", ev.error());
    }
    ++seen;
    if (decode_change) {
      ex::Change ch;
      if (!ch.ParseFromArray(ev->payload.data(), static_cast<int>(ev->payload.size()))) {
        std::fprintf(stderr, "weft-cli: an event on %s does not decode as a Change\n",
                     ev->topic.c_str());
        continue;
      }
      if (a.json) {
        std::printf("{\"topic\":%s,\"key\":%s,\"value\":%s,\"version\":%" PRIu64 "}\n",
                    json_string(ev->topic).c_str(), json_string(ch.key()).c_str(),
                    json_string(ch.value()).c_str(), ch.version());
      } else {
        std::printf("%s = %s  (version %" PRIu64 ")\n", ch.key().c_str(), ch.value().c_str(),
                    ch.version());
      }
    } else if (a.json) {
      std::printf("{\"topic\":%s,\"bytes\":%zu,\"payload_hex\":\"%s\"}\n",
                  json_string(ev->topic).c_str(), ev->payload.size(), to_hex(ev->payload).c_str());
    } else {
      std::printf("%s: %s\n", ev->topic.c_str(), shown(a, ev->payload).c_str());
    }
    std::fflush(stdout);
  }
  return kOk;
}

// A number field of a flat JSON object ("key":123.4), or -1 when absent.
double json_number(std::string_view json, std::string_view key, std::size_t from = 0) {
  const std::string k = "\"" + std::string(key) + "\":";
  const std::size_t p = json.find(k, from);
  if (p == std::string_view::npos) {
    return -1;
  }
  return std::strtod(std::string(json.substr(p + k.size(), 32)).c_str(), nullptr);
}

std::string json_text(std::string_view json, std::string_view key) {
  const std::string k = "\"" + std::string(key) + "\":\"";
  const std::size_t p = json.find(k);
  if (p == std::string_view::npos) {
    return {};
  }
  const std::size_t e = json.find('"', p + k.size());
  return std::string(json.substr(p + k.size(), e - p - k.size()));
}

// weft-demo's metrics, live: its "metrics" topic carries one JSON object a second.
int cmd_top(const Args& a, client::BlockingClient& c) {
  if (auto r = c.subscribe(bytes_of("metrics")); !r) {
    return report(a, "subscribe", r.error());
  }
  const bool tty = isatty(STDOUT_FILENO) != 0 && !a.json;
  using Clock = std::chrono::steady_clock;
  const auto end = Clock::now() + std::chrono::milliseconds(a.timeout_ms);
  std::uint64_t seen = 0;
  while (a.count == 0 || seen < a.count) {
    std::uint32_t wait = 2000;
    if (a.timeout_ms != 0) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
      if (left <= 0) {
        return report(a, "top", make_error_code(weft::platform::platform_errc::timed_out));
      }
      wait = static_cast<std::uint32_t>(std::min<long long>(left, 2000));
    }
    auto ev = c.next_event(wait);
    if (!ev) {
      if (ev.error() == make_error_code(weft::platform::platform_errc::timed_out)) {
        continue;
      }
      return report(a, "top", ev.error());
    }
    ++seen;
    const std::string_view m(reinterpret_cast<const char*>(ev->payload.data()), ev->payload.size());
    if (a.json) {
      std::printf("%.*s\n", static_cast<int>(m.size()), m.data());
      std::fflush(stdout);
      continue;
    }
    const double after = json_number(m, "allocations_after_warmup");
    char allocs[32];
    if (after < 0) {
      std::snprintf(allocs, sizeof allocs, "warming up");
    } else {
      std::snprintf(allocs, sizeof allocs, "%.0f", after);
    }
    if (!tty) {
      std::printf(
          "uptime %.0fs  req/s %.1f  requests %.0f  conns %.0f  streams %.0f  "
          "dropped %.0f  allocs-after-warmup %s  rpc %.0f  backend %s\n",
          json_number(m, "uptime_s"), json_number(m, "requests_per_s"),
          json_number(m, "requests_total"), json_number(m, "connections"),
          json_number(m, "sse_subscribers"), json_number(m, "dropped_events"), allocs,
          json_number(m, "rpc_calls"), json_text(m, "backend").c_str());
      std::fflush(stdout);
      continue;
    }
    std::printf("\033[H\033[2J");
    std::printf("weft-demo at %s — up %.0f s — backend %s%s%s\n\n", a.addr.c_str(),
                json_number(m, "uptime_s"), json_text(m, "backend").c_str(),
                json_text(m, "backend_reason").empty() ? "" : " — ",
                json_text(m, "backend_reason").c_str());
    std::printf("  requests/s   %10.1f      requests   %12.0f\n", json_number(m, "requests_per_s"),
                json_number(m, "requests_total"));
    std::printf("  connections  %10.0f      SSE streams %11.0f\n", json_number(m, "connections"),
                json_number(m, "sse_subscribers"));
    std::printf("  dropped      %10.0f      RPC calls  %12.0f\n", json_number(m, "dropped_events"),
                json_number(m, "rpc_calls"));
    std::printf("  allocations after warm-up: %s   (since start: %.0f)\n", allocs,
                json_number(m, "allocations_since_start"));
    std::printf("  jobs running %10.0f\n\n", json_number(m, "jobs_running"));
    std::printf("  worker  cpu   requests/s  connections\n");
    std::size_t at = m.find("\"workers\":[");
    while (at != std::string_view::npos) {
      const std::size_t w = m.find("{\"index\":", at);
      const std::size_t close = m.find(']', at);
      if (w == std::string_view::npos || w > close) {
        break;
      }
      const double cpu = json_number(m, "cpu", w);
      char cpu_text[16];
      std::snprintf(cpu_text, sizeof cpu_text, cpu < 0 ? "-" : "%.0f", cpu);
      std::printf("  %6.0f  %4s  %11.1f  %11.0f\n", json_number(m, "index", w), cpu_text,
                  json_number(m, "requests_per_s", w), json_number(m, "connections", w));
      at = w + 1;
    }
    std::printf("\n  (Ctrl-C to quit)\n");
    std::fflush(stdout);
  }
  return kOk;
}

int cmd_ping(const Args& a, client::BlockingClient& c) {
  const std::uint64_t n = a.count != 0 ? a.count : 1;
  for (std::uint64_t i = 0; i < n; ++i) {
    auto r = c.ping(a.timeout_ms);
    if (!r) {
      return report(a, "ping", r.error());
    }
    if (a.json) {
      std::printf("{\"ok\":true,\"rtt_ms\":%" PRIu64 "}\n", *r);
    } else {
      std::printf("pong in %" PRIu64 " ms\n", *r);
    }
  }
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  // The loop's start-up lines are noise in a command's output (WEFT_LOG=info shows them).
  if (std::getenv("WEFT_LOG") == nullptr) {
    weft::set_log_level(weft::LogLevel::warn);
  }
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view w = argv[i];
    const auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::exit(usage_error("missing value for ", name));
      }
      return argv[++i];
    };
    std::uint64_t n = 0;
    if (w == "-h" || w == "--help") {
      std::fputs(kHelp, stdout);
      return kOk;
    } else if (w == "--addr") {
      a.addr = value("--addr");
    } else if (w == "--unix") {
      a.unix_path = value("--unix");
    } else if (w == "--timeout") {
      if (!parse_u64(value("--timeout"), n) || n > 0xffffffffu) {
        return usage_error("--timeout takes milliseconds");
      }
      a.timeout_ms = static_cast<std::uint32_t>(n);
    } else if (w == "--count") {
      if (!parse_u64(value("--count"), a.count)) {
        return usage_error("--count takes a number");
      }
    } else if (w == "--retries") {
      if (!parse_u64(value("--retries"), n) || n > 100) {
        return usage_error("--retries takes 0..100");
      }
      a.retries = static_cast<std::uint32_t>(n);
    } else if (w == "--hex") {
      a.hex = true;
    } else if (w == "--json") {
      a.json = true;
    } else if (w == "--idempotent") {
      a.idempotent = true;
    } else if (w.size() > 1 && w[0] == '-' && w != "-") {
      return usage_error("unknown option ", argv[i]);
    } else {
      a.words.emplace_back(w);
    }
  }
  if (a.words.empty()) {
    std::fputs(kHelp, stderr);
    return kUsage;
  }
  const std::string& cmd = a.words[0];
  static constexpr const char* kCommands[] = {"get",     "put",       "list", "watch", "call",
                                              "publish", "subscribe", "ping", "top"};
  bool known = false;
  for (const char* k : kCommands) {
    known = known || cmd == k;
  }
  if (!known) {
    return usage_error("unknown command ", cmd.c_str());
  }
  auto addr = weft::platform::Address::parse(a.unix_path.empty() ? a.addr : "unix:" + a.unix_path);
  if (!addr) {
    return usage_error("bad address ", (a.unix_path.empty() ? a.addr : a.unix_path).c_str());
  }
  client::BlockingOptions bo;
  bo.connect_timeout_ms = a.timeout_ms == 0 ? 5000 : a.timeout_ms;
  bo.call_timeout_ms = a.timeout_ms == 0 ? 5000 : a.timeout_ms;
  bo.client.reconnect =
      cmd == "watch" || cmd == "subscribe" || cmd == "top";  // a stream outlives restarts
  auto c = client::BlockingClient::connect(addr.value(), bo);
  if (!c) {
    report(a, "connect", c.error());
    return kConnect;  // whatever the reason (refused, no answer), the server is not reachable
  }
  client::BlockingClient& cl = **c;
  if (cmd == "get") {
    return cmd_get(a, cl);
  }
  if (cmd == "put") {
    return cmd_put(a, cl);
  }
  if (cmd == "list") {
    return cmd_list(a, cl);
  }
  if (cmd == "watch") {
    if (a.words.size() > 2) {
      return usage_error("watch takes at most KEY");
    }
    const std::string topic = a.words.size() == 2 ? std::string(ex::kKeyTopicPrefix) + a.words[1]
                                                  : std::string(ex::kAllChanges);
    return follow(a, cl, topic, true);
  }
  if (cmd == "call") {
    return cmd_call(a, cl);
  }
  if (cmd == "publish") {
    return cmd_publish(a, cl);
  }
  if (cmd == "subscribe") {
    if (a.words.size() != 2) {
      return usage_error("subscribe takes TOPIC");
    }
    return follow(a, cl, a.words[1], false);
  }
  if (cmd == "top") {
    return cmd_top(a, cl);
  }
  return cmd_ping(a, cl);
}
