#include "gateway.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include <weft/base/log.h>
#include <weft/client/error.h>
#include <weft/msg/error.h>
#include <weft/msg/server.h>
#include <weft/platform/error.h>

#include "example_args.h"

namespace weft::examples {

using http::Exchange;

namespace {

std::vector<std::string> words(std::string_view line) {
  std::vector<std::string> out;
  std::istringstream in{std::string(line)};
  std::string w;
  while (in >> w) {
    out.push_back(w);
  }
  return out;
}

bool parse_method(std::string_view s, http::Method& m) {
  static constexpr std::pair<std::string_view, http::Method> kMethods[] = {
      {"GET", http::Method::get},
      {"POST", http::Method::post},
      {"PUT", http::Method::put},
      {"DELETE", http::Method::delete_},
      {"PATCH", http::Method::patch}};
  for (const auto& [name, value] : kMethods) {
    if (s == name) {
      m = value;
      return true;
    }
  }
  return false;
}

bool parse_u32(std::string_view s, std::uint32_t& out) {
  if (s.empty() || s.size() > 9) {
    return false;
  }
  std::uint32_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  out = v;
  return true;
}

std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

}  // namespace

Result<GatewayConfig> GatewayConfig::parse(std::string_view text, std::string& error) {
  GatewayConfig c;
  std::size_t n = 0;
  const auto bad = [&](const std::string& why) {
    error = "line " + std::to_string(n) + ": " + why;
    return fail(platform::platform_errc::invalid_argument);
  };
  const auto find_upstream = [&](const std::string& name) {
    for (const Upstream& u : c.upstreams) {
      if (u.name == name) {
        return true;
      }
    }
    return false;
  };
  while (!text.empty()) {
    ++n;
    const std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    const std::vector<std::string> w = words(line);
    if (w.empty()) {
      continue;
    }
    if (w[0] == "listen") {
      if (w.size() != 2) {
        return bad("listen takes one address");
      }
      c.listen = w[1];
    } else if (w[0] == "upstream") {
      if (w.size() < 3) {
        return bad("upstream takes NAME [balance] ADDR...");
      }
      Upstream u;
      u.name = w[1];
      if (find_upstream(u.name)) {
        return bad("upstream " + u.name + " defined twice");
      }
      std::size_t i = 2;
      if (w[i] == "round_robin" || w[i] == "least_outstanding") {
        u.balance = w[i] == "round_robin" ? client::Balance::round_robin
                                          : client::Balance::least_outstanding;
        ++i;
      }
      for (; i < w.size(); ++i) {
        auto a = platform::Address::parse(w[i]);
        if (!a) {
          return bad("bad address " + w[i] + " (127.0.0.1:7100, unix:/path or unix:@name)");
        }
        u.endpoints.push_back(a.value());
      }
      if (u.endpoints.empty() || u.endpoints.size() > 16) {
        return bad("upstream " + u.name + " needs 1..16 endpoints");
      }
      c.upstreams.push_back(std::move(u));
    } else if (w[0] == "rpc") {
      if (w.size() < 5) {
        return bad("rpc takes METHOD PATH UPSTREAM RPC [idempotent] [timeout_ms=N] [type=T]");
      }
      Rpc r;
      if (!parse_method(w[1], r.method)) {
        return bad("unknown HTTP method " + w[1]);
      }
      r.path = w[2];
      if (r.path.empty() || r.path[0] != '/') {
        return bad("PATH must start with /");
      }
      r.upstream = w[3];
      if (!find_upstream(r.upstream)) {
        return bad("unknown upstream " + r.upstream + " (define it above)");
      }
      r.rpc = w[4];
      if (r.rpc.find('/') == std::string::npos) {
        return bad("RPC is package.Service/Method");
      }
      for (std::size_t i = 5; i < w.size(); ++i) {
        if (w[i] == "idempotent") {
          r.idempotent = true;
        } else if (w[i].rfind("timeout_ms=", 0) == 0) {
          if (!parse_u32(std::string_view(w[i]).substr(11), r.timeout_ms) || r.timeout_ms == 0) {
            return bad("timeout_ms takes 1..999999999");
          }
        } else if (w[i].rfind("type=", 0) == 0) {
          r.content_type = w[i].substr(5);
        } else {
          return bad("unknown rpc option " + w[i]);
        }
      }
      c.rpcs.push_back(std::move(r));
    } else if (w[0] == "events") {
      if (w.size() < 4) {
        return bad("events takes PREFIX UPSTREAM TOPIC...");
      }
      Events e;
      e.prefix = w[1];
      if (e.prefix.empty() || e.prefix.front() != '/' || e.prefix.back() != '/') {
        return bad("events PREFIX is a path ending in /, e.g. /events/");
      }
      e.upstream = w[2];
      if (!find_upstream(e.upstream)) {
        return bad("unknown upstream " + e.upstream);
      }
      e.topics.assign(w.begin() + 3, w.end());
      c.events.push_back(std::move(e));
    } else {
      return bad("unknown directive " + w[0] + " (listen, upstream, rpc, events)");
    }
  }
  if (c.rpcs.empty() && c.events.empty()) {
    n = 0;
    error = "no rpc or events routes: nothing to serve";
    return fail(platform::platform_errc::invalid_argument);
  }
  return c;
}

struct Gateway::Route {
  Gateway* gw = nullptr;
  const GatewayConfig::Rpc* rpc = nullptr;
  const GatewayConfig::Events* events = nullptr;
  std::size_t upstream = 0;  // index in config.upstreams
  std::uint32_t method_id = 0;
  std::string pattern;
};

struct Gateway::Pending {
  http::Deferred d;
  const Route* route = nullptr;
  Worker* w = nullptr;
  Pending* next_free = nullptr;
};

struct Gateway::Worker {
  Gateway* gw = nullptr;
  platform::Loop* loop = nullptr;
  std::vector<std::unique_ptr<client::Upstream>> ups;  // by config index
  std::vector<std::unique_ptr<client::Client>> event_clients;
  Pending pending[kPending];
  Pending* free = nullptr;
  std::uint32_t in_flight = 0;
  char text[8192];
};

struct GatewayRoutes {
  static Gateway::Worker& worker(Gateway& g, Exchange& ex) {
    return *g.workers_[ex.loop().index()];
  }

  // A failure's status and text.
  static std::uint16_t status_of(std::error_code e, const char*& what) {
    using client::client_errc;
    using msg::ProtocolError;
    if (e == client_errc::unavailable) {
      what = "no endpoint available";
      return 503;
    }
    if (e == client_errc::overloaded) {
      what = "too many requests in flight";
      return 503;
    }
    if (e == client_errc::connection_lost) {
      what = "connection lost during the call (it may have run)";
      return 502;
    }
    if (e == platform::platform_errc::timed_out || e == ProtocolError::deadline_exceeded) {
      what = "deadline exceeded";
      return 504;
    }
    if (e == ProtocolError::overloaded || e == ProtocolError::shutting_down) {
      what = "upstream overloaded or shutting down";
      return 503;
    }
    if (e == ProtocolError::bad_payload) {
      what = "the upstream refused the payload";
      return 400;
    }
    if (e == ProtocolError::too_large) {
      what = "request or response too large";
      return 413;
    }
    if (e.category() == msg::protocol_category() && e.value() == 11) {  // permission_denied
      what = "permission denied";
      return 403;
    }
    what = "upstream error";
    return 502;
  }

  static void fail_request(Gateway::Worker& w, const Gateway::Route& r, const http::Deferred& d,
                           std::error_code e) {
    const char* what = "";
    const std::uint16_t st = status_of(e, what);
    const int n =
        std::snprintf(w.text, sizeof w.text, "upstream %s: %s (%s)\n",
                      w.gw->config_.upstreams[r.upstream].name.c_str(), what, e.message().c_str());
    const http::ResponseHeader retry[] = {{"Retry-After", "1"}};
    (void)http::respond(*w.loop, d, st, "text/plain", {w.text, static_cast<std::size_t>(n)},
                        st == 503 ? std::span<const http::ResponseHeader>(retry)
                                  : std::span<const http::ResponseHeader>());
  }

  static void done(void* ctx, Result<std::span<const std::byte>> r, int) noexcept {
    auto* p = static_cast<Gateway::Pending*>(ctx);
    Gateway::Worker& w = *p->w;
    if (r) {
      (void)http::respond(*w.loop, p->d, 200, p->route->rpc->content_type,
                          {reinterpret_cast<const char*>(r.value().data()), r.value().size()});
    } else {
      fail_request(w, *p->route, p->d, r.error());
    }
    p->next_free = w.free;
    w.free = p;
    --w.in_flight;
  }

  static void rpc(void* ctx, Exchange& ex) noexcept {
    const auto& r = *static_cast<const Gateway::Route*>(ctx);
    Gateway::Worker& w = worker(*r.gw, ex);
    if (w.free == nullptr) {
      (void)ex.add_header("Retry-After", "1");
      (void)ex.respond(503, "text/plain", "gateway: too many requests in flight\n");
      return;
    }
    client::UpstreamCall call;
    call.deadline_ms = r.rpc->timeout_ms;
    if (const http::Header* t = ex.header("x-timeout-ms")) {
      std::uint32_t ms = 0;
      if (!parse_u32(t->value, ms) || ms == 0) {
        (void)ex.respond(400, "text/plain", "X-Timeout-Ms: milliseconds (1..)\n");
        return;
      }
      call.deadline_ms = std::min(call.deadline_ms, ms);
    }
    call.idempotent = r.rpc->idempotent;
    if (const http::Header* k = ex.header("idempotency-key")) {
      call.idempotent = true;
      call.idempotency_key = fnv1a64(k->value) | 1;
    }
    Gateway::Pending* p = w.free;
    w.free = p->next_free;
    ++w.in_flight;
    p->route = &r;
    p->d = ex.defer();
    const Result<void> sent =
        w.ups[r.upstream]->call(r.method_id, bytes_of(ex.body()), call, &GatewayRoutes::done, p);
    if (!sent) {
      fail_request(w, r, p->d, sent.error());
      p->next_free = w.free;
      w.free = p;
      --w.in_flight;
    }
  }

  static void events(void* ctx, Exchange& ex) noexcept {
    const auto& r = *static_cast<const Gateway::Route*>(ctx);
    const std::string_view topic = ex.param("topic");
    for (const std::string& t : r.events->topics) {
      if (t == topic) {
        (void)ex.events(topic);
        return;
      }
    }
    (void)ex.respond(404, "text/plain", "no such topic on this gateway\n");
  }

  static void on_event(void* ctx, std::span<const std::byte> topic,
                       std::span<const std::byte> payload) noexcept {
    auto* w = static_cast<Gateway::Worker*>(ctx);
    (void)w->gw->streams_->publish(*w->loop,
                                   {reinterpret_cast<const char*>(topic.data()), topic.size()}, {},
                                   {reinterpret_cast<const char*>(payload.data()), payload.size()});
  }

  static void metrics(void* ctx, Exchange& ex) noexcept {
    Gateway& g = *static_cast<Gateway*>(ctx);
    Gateway::Worker& w = worker(g, ex);
    TextBuffer text{std::span<char>(w.text, sizeof w.text)};
    text.put(
        "# HELP weft_gateway_in_flight Proxied requests waiting for their upstream (this "
        "worker).\n# TYPE weft_gateway_in_flight gauge\nweft_gateway_in_flight{worker=\"%u\"} "
        "%u\n",
        ex.loop().index(), w.in_flight);
    text.put(
        "# HELP weft_gateway_upstream_calls_total Calls per endpoint (this worker).\n"
        "# TYPE weft_gateway_upstream_calls_total counter\n");
    char addr[128];
    for (std::size_t u = 0; u < w.ups.size(); ++u) {
      const GatewayConfig::Upstream& cu = g.config_.upstreams[u];
      for (std::size_t e = 0; e < cu.endpoints.size(); ++e) {
        cu.endpoints[e].format(addr, sizeof addr);
        const client::EndpointStats s = w.ups[u]->endpoint(e);
        text.put(
            "weft_gateway_upstream_calls_total{upstream=\"%s\",endpoint=\"%s\",result=\"ok\"} "
            "%" PRIu64 "\n",
            cu.name.c_str(), addr, s.ok);
        text.put(
            "weft_gateway_upstream_calls_total{upstream=\"%s\",endpoint=\"%s\",result="
            "\"failed\"} %" PRIu64 "\n",
            cu.name.c_str(), addr, s.failures);
        text.put("weft_gateway_upstream_admitted{upstream=\"%s\",endpoint=\"%s\"} %d\n",
                 cu.name.c_str(), addr, s.admitted ? 1 : 0);
      }
    }
    (void)ex.respond(200, "text/plain; version=0.0.4", {w.text, text.size()});
  }
};

Gateway::Gateway(GatewayConfig config, http::sse::Streams* streams)
    : config_(std::move(config)), streams_(streams) {
  for (const GatewayConfig::Rpc& r : config_.rpcs) {
    Route rt;
    rt.gw = this;
    rt.rpc = &r;
    rt.method_id = msg::method_id(r.rpc);
    rt.pattern = r.path;
    for (std::size_t i = 0; i < config_.upstreams.size(); ++i) {
      if (config_.upstreams[i].name == r.upstream) {
        rt.upstream = i;
      }
    }
    routes_.push_back(std::move(rt));
  }
  for (const GatewayConfig::Events& e : config_.events) {
    Route rt;
    rt.gw = this;
    rt.events = &e;
    rt.pattern = e.prefix + "{topic}";
    for (std::size_t i = 0; i < config_.upstreams.size(); ++i) {
      if (config_.upstreams[i].name == e.upstream) {
        rt.upstream = i;
      }
    }
    routes_.push_back(std::move(rt));
  }
}

Gateway::~Gateway() = default;

void Gateway::setup(http::Router& router, platform::Loop& loop) {
  auto w = std::make_unique<Worker>();
  w->gw = this;
  w->loop = &loop;
  for (std::uint32_t i = kPending; i-- > 0;) {
    w->pending[i].w = w.get();
    w->pending[i].next_free = w->free;
    w->free = &w->pending[i];
  }
  for (const GatewayConfig::Upstream& u : config_.upstreams) {
    client::UpstreamOptions o;
    o.balance = u.balance;
    auto up = client::Upstream::create(loop, u.name, u.endpoints, o);
    if (!up) {
      log(LogLevel::error, "gateway: upstream %s: %s", u.name.c_str(),
          up.error().message().c_str());
      std::abort();
    }
    w->ups.push_back(std::move(up.value()));
  }
  const auto must = [](Result<void> r, const std::string& what) {
    if (!r) {
      log(LogLevel::error, "gateway: route %s: %s", what.c_str(), r.error().message().c_str());
      std::abort();
    }
  };
  for (Route& r : routes_) {
    if (r.rpc != nullptr) {
      must(router.add(r.rpc->method, r.pattern, &GatewayRoutes::rpc, &r), r.pattern);
    } else {
      must(router.add(http::Method::get, r.pattern, &GatewayRoutes::events, &r), r.pattern);
    }
  }
  must(router.add(http::Method::get, "/metrics", &GatewayRoutes::metrics, this), "/metrics");
  // Worker 0 subscribes to the bridged topics on each events upstream (its first endpoint)
  // and republishes them to the SSE clients of every worker.
  if (loop.index() == 0 && streams_ != nullptr) {
    for (const Route& r : routes_) {
      if (r.events == nullptr) {
        continue;
      }
      client::Options co;
      co.max_subscriptions = static_cast<std::uint32_t>(r.events->topics.size()) + 1;
      auto c = client::Client::create(loop, co);
      if (!c || !c.value()->connect(config_.upstreams[r.upstream].endpoints[0])) {
        log(LogLevel::error, "gateway: events %s: no client", r.events->prefix.c_str());
        continue;
      }
      for (const std::string& t : r.events->topics) {
        (void)c.value()->subscribe(bytes_of(t), &GatewayRoutes::on_event, w.get());
      }
      w->event_clients.push_back(std::move(c.value()));
    }
  }
  const std::lock_guard<std::mutex> lock(mu_);
  if (workers_.size() <= loop.index()) {
    workers_.resize(loop.index() + 1);
  }
  workers_[loop.index()] = std::move(w);
}

}  // namespace weft::examples
