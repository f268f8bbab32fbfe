#include "demo_app.h"

#include <time.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include <weft/base/alloc_counter.h>
#include <weft/base/log.h>
#include <weft/http/query.h>

#include "example_args.h"

namespace weft::examples {

using http::Exchange;
using http::Method;

namespace {

bool parse_u64(std::string_view s, std::uint64_t& out) noexcept {
  if (s.empty() || s.size() > 18) {
    return false;
  }
  std::uint64_t v = 0;
  for (const char ch : s) {
    if (ch < '0' || ch > '9') {
      return false;
    }
    v = v * 10 + static_cast<std::uint64_t>(ch - '0');
  }
  out = v;
  return true;
}

// {"duration_ms": N} (whitespace allowed; other keys ignored). Empty body: the default.
bool parse_duration(std::string_view body, std::uint64_t& out) noexcept {
  std::size_t i = 0;
  while (i < body.size() &&
         (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t')) {
    ++i;
  }
  if (i == body.size()) {
    return true;
  }
  if (body[i] != '{' || body.back() != '}') {
    return false;
  }
  const std::size_t k = body.find("\"duration_ms\"");
  if (k == std::string_view::npos) {
    return true;  // an object without the key: the default
  }
  i = k + 13;
  while (i < body.size() && (body[i] == ' ' || body[i] == '\t')) {
    ++i;
  }
  if (i == body.size() || body[i] != ':') {
    return false;
  }
  ++i;
  while (i < body.size() && (body[i] == ' ' || body[i] == '\t')) {
    ++i;
  }
  std::size_t j = i;
  while (j < body.size() && body[j] >= '0' && body[j] <= '9') {
    ++j;
  }
  return parse_u64(body.substr(i, j - i), out);
}

// The topic of a path parameter, percent-decoded into out.
bool topic_of(std::string_view raw, std::span<char> out, std::string_view& topic) noexcept {
  auto d = http::percent_decode(raw, out, http::PlusIs::literal);
  if (!d || d.value().empty()) {
    return false;
  }
  topic = d.value();
  return true;
}

std::string_view job_topic(std::uint64_t id, std::span<char> out) noexcept {
  const int n = std::snprintf(out.data(), out.size(), "jobs/%" PRIu64, id);
  return {out.data(), static_cast<std::size_t>(n)};
}

}  // namespace

struct DemoApp::Waiter {
  platform::TimerNode timer;
  http::Deferred d;
  std::uint64_t job = 0;
  std::uint64_t until_ms = 0;  // CLOCK_MONOTONIC: the end of the wait
  DemoApp::Worker* w = nullptr;
  Waiter* next_free = nullptr;
};

struct JobTick {
  platform::TimerNode timer;
  DemoApp::Worker* w = nullptr;
  std::uint64_t job = 0;
};

struct DemoApp::Worker {
  DemoApp* app = nullptr;
  platform::Loop* loop = nullptr;
  Waiter waiters[kWaiters];
  Waiter* free = nullptr;
  JobTick ticks[kJobs];
  platform::TimerNode metrics;
  char json[512];
  char text[32 * 1024];
  char topic[256];
};

struct DemoRoutes {
  static DemoApp& app(void* ctx) { return *static_cast<DemoApp*>(ctx); }
  static DemoApp::Worker& worker(DemoApp& a, Exchange& ex) {
    return *a.workers_[ex.loop().index()];
  }

  static void plaintext(void*, Exchange& ex) noexcept {
    (void)ex.respond_static(200, "text/plain", "Hello, World!");
  }

  static void echo(void*, Exchange& ex) noexcept {
    (void)ex.respond(200, "application/octet-stream", ex.body());
  }

  static void events(void* ctx, Exchange& ex) noexcept {
    DemoApp::Worker& w = worker(app(ctx), ex);
    std::string_view topic;
    if (!topic_of(ex.param("topic"), w.topic, topic)) {
      (void)ex.respond(400, "text/plain", "bad topic\n");
      return;
    }
    (void)ex.events(topic);
  }

  static void publish(void* ctx, Exchange& ex) noexcept {
    DemoApp& a = app(ctx);
    DemoApp::Worker& w = worker(a, ex);
    std::string_view topic;
    if (!topic_of(ex.param("topic"), w.topic, topic)) {
      (void)ex.respond(400, "text/plain", "bad topic\n");
      return;
    }
    auto r = a.streams_.publish(ex.loop(), topic, {}, ex.body());
    if (r && a.opt_.mqtt != nullptr) {
      a.opt_.mqtt->forward(ex.loop(), topic, std::as_bytes(std::span(ex.body())));
    }
    if (!r) {
      const bool big =
          r.error() == std::errc::message_size ||
          std::string_view(r.error().message()).find("large") != std::string_view::npos;
      (void)ex.respond(big ? 413 : 400, "text/plain", r.error().message());
      return;
    }
    const int n =
        std::snprintf(w.json, sizeof w.json, "{\"id\":\"%.*s\",\"delivered\":%u}",
                      static_cast<int>(r.value().id_len), r.value().id, r.value().hub.delivered);
    (void)ex.respond(202, "application/json", {w.json, static_cast<std::size_t>(n)});
  }

  static void job_create(void* ctx, Exchange& ex) noexcept {
    DemoApp& a = app(ctx);
    DemoApp::Worker& w = worker(a, ex);
    std::uint64_t ms = a.opt_.default_job_ms;
    if (!parse_duration(ex.body(), ms) || ms > a.opt_.max_job_ms) {
      (void)ex.respond(400, "text/plain", "body: {\"duration_ms\": 0..600000}\n");
      return;
    }
    const std::uint64_t id = a.add_job(static_cast<std::uint32_t>(ms));
    JobTick& t = w.ticks[id % DemoApp::kJobs];
    t.job = id;
    ex.loop().timers().cancel(t.timer);
    ex.loop().timers().schedule(t.timer, ex.loop().now_ms() + a.opt_.job_tick_ms);
    char loc[48];
    const int ln = std::snprintf(loc, sizeof loc, "/jobs/%" PRIu64, id);
    (void)ex.add_header("Location", {loc, static_cast<std::size_t>(ln)});
    const int n = std::snprintf(w.json, sizeof w.json, "{\"id\":\"%" PRIu64 "\"}", id);
    (void)ex.respond(202, "application/json", {w.json, static_cast<std::size_t>(n)});
  }

  static bool job_of(DemoApp& a, Exchange& ex, DemoApp::Job& j) {
    std::uint64_t id = 0;
    if (!parse_u64(ex.param("id"), id) || !a.find_job(id, j)) {
      (void)ex.respond(404, "application/json", "{\"error\":\"no such job\"}");
      return false;
    }
    return true;
  }

  static void job_get(void* ctx, Exchange& ex) noexcept {
    DemoApp& a = app(ctx);
    DemoApp::Worker& w = worker(a, ex);
    DemoApp::Job j;
    if (!job_of(a, ex, j)) {
      return;
    }
    const std::uint64_t now = DemoApp::now_ms();
    std::uint64_t wait_s = 0;
    if (auto q = ex.query().find("wait"); q && !parse_u64(*q, wait_s)) {
      (void)ex.respond(400, "text/plain", "wait: seconds\n");
      return;
    }
    const std::uint64_t end = j.start_ms + j.duration_ms;
    if (wait_s != 0 && now < end && w.free != nullptr) {
      // Long poll: answered when the job ends or the wait is over, whichever is first.
      DemoApp::Waiter* wt = w.free;
      w.free = wt->next_free;
      wt->d = ex.defer();
      wt->job = j.id;
      wt->until_ms = now + std::min<std::uint64_t>(wait_s, a.opt_.max_wait_s) * 1000;
      const std::uint64_t left =
          std::min(end - now, std::min<std::uint64_t>(wait_s, a.opt_.max_wait_s) * 1000);
      ex.loop().timers().schedule(wt->timer, ex.loop().now_ms() + left);
      return;
    }
    const std::size_t n = a.job_json(j, now, w.json);
    (void)ex.respond(200, "application/json", {w.json, n});
  }

  static void job_events(void* ctx, Exchange& ex) noexcept {
    DemoApp& a = app(ctx);
    DemoApp::Worker& w = worker(a, ex);
    DemoApp::Job j;
    if (!job_of(a, ex, j)) {
      return;
    }
    const std::uint64_t now = DemoApp::now_ms();
    if (now >= j.start_ms + j.duration_ms) {
      // Over already: the final event, and the stream ends.
      char json[160];
      const std::size_t jn = a.job_json(j, now, json);
      const int n = std::snprintf(w.text, sizeof w.text, "event: progress\ndata: %.*s\n\n",
                                  static_cast<int>(jn), json);
      (void)ex.respond(200, "text/event-stream", {w.text, static_cast<std::size_t>(n)});
      return;
    }
    (void)ex.events(job_topic(j.id, w.topic));
  }

  static void metrics(void* ctx, Exchange& ex) noexcept {
    DemoApp& a = app(ctx);
    DemoApp::Worker& w = worker(a, ex);
    const std::size_t n = a.prometheus(w.text);
    (void)ex.respond(200, "text/plain; version=0.0.4", {w.text, n});
  }

  static void asset(void* ctx, Exchange& ex) noexcept {
    const auto* as = static_cast<const Asset*>(ctx);
    (void)ex.add_header("Cache-Control", "no-cache");
    (void)ex.respond_static(200, as->content_type, as->body);
  }
};

DemoApp::DemoApp(DemoOptions options, http::sse::Streams& streams)
    : opt_(std::move(options)), streams_(streams), prev_(new MetricsPrev), start_ms_(now_ms()) {}

DemoApp::~DemoApp() = default;

std::uint64_t DemoApp::now_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

std::uint32_t DemoApp::progress(const Job& j, std::uint64_t now) noexcept {
  if (now >= j.start_ms + j.duration_ms || j.duration_ms == 0) {
    return 100;
  }
  return static_cast<std::uint32_t>((now - j.start_ms) * 100 / j.duration_ms);
}

std::uint64_t DemoApp::add_job(std::uint32_t duration_ms) noexcept {
  const std::lock_guard<std::mutex> lock(jobs_mu_);
  const std::uint64_t id = next_job_++;
  jobs_[id % kJobs] = Job{id, now_ms(), duration_ms};
  return id;
}

bool DemoApp::find_job(std::uint64_t id, Job& out) const noexcept {
  const std::lock_guard<std::mutex> lock(jobs_mu_);
  const Job& j = jobs_[id % kJobs];
  if (j.id != id || id == 0) {
    return false;
  }
  out = j;
  return true;
}

std::size_t DemoApp::job_json(const Job& j, std::uint64_t now, std::span<char> out) const noexcept {
  const std::uint32_t p = progress(j, now);
  const int n = std::snprintf(out.data(), out.size(),
                              "{\"id\":\"%" PRIu64 "\",\"status\":\"%s\",\"progress\":%u}", j.id,
                              p >= 100 ? "done" : "running", p);
  return n > 0 ? std::min(static_cast<std::size_t>(n), out.size() - 1) : 0;
}

void DemoApp::on_job_tick(platform::TimerNode* n) noexcept {
  auto* t = static_cast<JobTick*>(n->ctx);
  Worker& w = *t->w;
  DemoApp& a = *w.app;
  Job j;
  if (!a.find_job(t->job, j)) {
    return;  // forgotten (the table wrapped)
  }
  const std::uint64_t now = now_ms();
  const std::size_t len = a.job_json(j, now, w.json);
  char topic[32];
  (void)a.streams_.publish(*w.loop, job_topic(j.id, topic), "progress", {w.json, len});
  const std::uint64_t end = j.start_ms + j.duration_ms;
  if (now < end) {
    w.loop->timers().schedule(
        t->timer, w.loop->now_ms() + std::min<std::uint64_t>(a.opt_.job_tick_ms, end - now));
  }
}

void DemoApp::on_waiter(platform::TimerNode* n) noexcept {
  auto* wt = static_cast<Waiter*>(n->ctx);
  Worker& w = *wt->w;
  DemoApp& a = *w.app;
  Job j;
  const std::uint64_t now = now_ms();
  const bool found = a.find_job(wt->job, j);
  if (found && now < j.start_ms + j.duration_ms && now < wt->until_ms) {
    // The loop's timers may fire a little early against this clock: wait the rest.
    const std::uint64_t left = std::min(j.start_ms + j.duration_ms, wt->until_ms) - now;
    w.loop->timers().schedule(wt->timer, w.loop->now_ms() + std::max<std::uint64_t>(left, 1));
    return;
  }
  if (found) {
    const std::size_t len = a.job_json(j, now, w.json);
    (void)http::respond(*w.loop, wt->d, 200, "application/json", {w.json, len});
  } else {
    (void)http::respond(*w.loop, wt->d, 404, "application/json", "{\"error\":\"no such job\"}");
  }
  wt->next_free = w.free;
  w.free = wt;
}

void DemoApp::setup(http::Router& r, platform::Loop& loop) {
  auto w = std::make_unique<Worker>();
  w->app = this;
  w->loop = &loop;
  for (std::uint32_t i = kWaiters; i-- > 0;) {
    Waiter& wt = w->waiters[i];
    wt.timer.fn = &DemoApp::on_waiter;
    wt.timer.ctx = &wt;
    wt.w = w.get();
    wt.next_free = w->free;
    w->free = &wt;
  }
  for (JobTick& t : w->ticks) {
    t.timer.fn = &DemoApp::on_job_tick;
    t.timer.ctx = &t;
    t.w = w.get();
  }
  w->metrics.fn = &DemoApp::on_metrics;
  w->metrics.ctx = w.get();
  if (loop.index() == 0 && opt_.metrics_interval_ms != 0) {
    loop.timers().schedule(w->metrics, loop.now_ms() + opt_.metrics_interval_ms);
  }
  using R = DemoRoutes;
  const auto must = [](Result<void> x, const char* what) {
    if (!x) {
      std::fprintf(stderr, "weft-demo: route %s: %s\n", what, x.error().message().c_str());
      std::abort();
    }
  };
  must(r.add(Method::get, "/plaintext", &R::plaintext, this), "/plaintext");
  must(r.add(Method::post, "/echo", &R::echo, this, {.max_body = opt_.echo_max}), "/echo");
  must(r.add(Method::get, "/events/{topic}", &R::events, this), "/events");
  must(r.add(Method::post, "/publish/{topic}", &R::publish, this, {.max_body = opt_.publish_max}),
       "/publish");
  must(r.add(Method::post, "/jobs", &R::job_create, this, {.max_body = 1024}), "/jobs");
  must(r.add(Method::get, "/jobs/{id}", &R::job_get, this), "/jobs/{id}");
  must(r.add(Method::get, "/jobs/{id}/events", &R::job_events, this), "/jobs/{id}/events");
  must(r.add(Method::get, "/metrics", &R::metrics, this), "/metrics");
  for (const Asset& as : opt_.assets) {
    must(r.add(Method::get, as.path, &R::asset, const_cast<Asset*>(&as)), "asset");
  }
  const std::lock_guard<std::mutex> lock(workers_mu_);
  if (workers_.size() <= loop.index()) {
    workers_.resize(loop.index() + 1);
  }
  workers_[loop.index()] = std::move(w);
}

void DemoApp::started(platform::Runtime& rt, http::Server& server, pubsub::Hub* hub,
                      std::function<std::uint64_t()> rpc_calls) {
  server_ = &server;
  hub_ = hub;
  rpc_calls_ = std::move(rpc_calls);
  rt_.store(&rt, std::memory_order_release);
}

std::size_t DemoApp::metrics_json(std::span<char> out) noexcept {
  platform::Runtime* rt = rt_.load(std::memory_order_acquire);
  if (rt == nullptr || server_ == nullptr) {
    return 0;
  }
  MetricsPrev& prev = *prev_;  // worker 0's timer only
  const std::uint64_t now = now_ms();
  const double dt = prev.t != 0 ? static_cast<double>(now - prev.t) / 1000.0 : 0.0;
  const http::ServerStats s = server_->stats();
  const std::uint64_t allocs = alloc::count();
  if ((now - start_ms_) / 1000 >= opt_.warmup_s &&
      warm_allocs_.load(std::memory_order_relaxed) == ~0ull) {
    warm_allocs_.store(allocs, std::memory_order_relaxed);
  }
  const std::uint64_t warm = warm_allocs_.load(std::memory_order_relaxed);
  timespec wall{};
  clock_gettime(CLOCK_REALTIME, &wall);
  std::uint64_t dropped = 0;
  std::uint64_t subscribers = s.streams_open;
  if (hub_ != nullptr) {
    dropped = hub_->total().dropped;
  }
  dropped += streams_.stats().dropped;
  TextBuffer text{out};
  const char* backend = rt->backend_kind() == platform::BackendKind::uring ? "io_uring" : "epoll";
  text.put("{\"t\":%" PRIu64 ",\"uptime_s\":%" PRIu64
           ",\"backend\":\"%s\",\"backend_reason\":\"%s\"",
           static_cast<std::uint64_t>(wall.tv_sec) * 1000 +
               static_cast<std::uint64_t>(wall.tv_nsec) / 1'000'000,
           (now - start_ms_) / 1000, backend, opt_.backend_reason.c_str());
  text.put(",\"workers\":[");
  for (std::size_t i = 0; i < rt->worker_count() && i < 64; ++i) {
    const http::ServerStats ws = server_->worker_stats(static_cast<std::uint32_t>(i));
    const double rps = dt > 0 ? static_cast<double>(ws.requests - prev.per_worker[i]) / dt : 0.0;
    prev.per_worker[i] = ws.requests;
    const long cpu = i < opt_.cpus.size() ? opt_.cpus[i] : -1;
    text.put("%s{\"index\":%zu,\"cpu\":%ld,\"requests\":%" PRIu64
             ",\"requests_per_s\":%.1f,\"connections\":%" PRIu64 "}",
             i == 0 ? "" : ",", i, cpu, ws.requests, rps, ws.open);
  }
  const double rps = dt > 0 ? static_cast<double>(s.requests - prev.requests) / dt : 0.0;
  std::uint32_t running = 0;
  {
    const std::lock_guard<std::mutex> lock(jobs_mu_);
    for (const Job& j : jobs_) {
      running += j.id != 0 && now < j.start_ms + j.duration_ms ? 1 : 0;
    }
  }
  text.put("],\"requests_total\":%" PRIu64 ",\"requests_per_s\":%.1f,\"connections\":%" PRIu64
           ",\"sse_subscribers\":%" PRIu64 ",\"dropped_events\":%" PRIu64
           ",\"allocations_since_start\":%" PRIu64 ",\"allocations_after_warmup\":%" PRId64
           ",\"alloc_counting\":%s,\"rpc_calls\":%" PRIu64 ",\"jobs_running\":%u}",
           s.requests, rps, s.open, subscribers, dropped, allocs,
           warm == ~0ull ? static_cast<std::int64_t>(-1) : static_cast<std::int64_t>(allocs - warm),
           alloc::enabled() ? "true" : "false", rpc_calls_ ? rpc_calls_() : 0, running);
  prev.t = now;
  prev.requests = s.requests;
  return text.size();
}

void DemoApp::on_metrics(platform::TimerNode* n) noexcept {
  auto* w = static_cast<Worker*>(n->ctx);
  DemoApp& a = *w->app;
  const std::size_t len = a.metrics_json(w->text);
  if (len != 0) {
    (void)a.streams_.publish(*w->loop, "metrics", "metrics", {w->text, len});
  }
  w->loop->timers().schedule(w->metrics, w->loop->now_ms() + a.opt_.metrics_interval_ms);
}

std::size_t DemoApp::prometheus(std::span<char> out) const noexcept {
  platform::Runtime* rt = rt_.load(std::memory_order_acquire);
  if (rt == nullptr || server_ == nullptr) {
    return 0;
  }
  const http::ServerStats s = server_->stats();
  const platform::StatsSnapshot ps = rt->stats();
  TextBuffer text{out};
  const auto metric = [&text](const char* name, const char* type, const char* help,
                              std::uint64_t v) {
    text.put("# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name, v);
  };
  metric("weft_http_connections_open", "gauge", "HTTP connections open now.", s.open);
  metric("weft_http_connections_total", "counter", "HTTP connections accepted.", s.connections);
  metric("weft_http_requests_total", "counter", "HTTP requests parsed.", s.requests);
  text.put(
      "# HELP weft_http_responses_total HTTP responses by status class.\n"
      "# TYPE weft_http_responses_total counter\n");
  for (int c = 1; c <= 5; ++c) {
    text.put("weft_http_responses_total{class=\"%dxx\"} %" PRIu64 "\n", c, s.responses[c]);
  }
  text.put(
      "# HELP weft_http_responses_status_total HTTP error responses by status.\n"
      "# TYPE weft_http_responses_status_total counter\n");
  const std::pair<int, std::uint64_t> codes[] = {{400, s.status_400}, {404, s.status_404},
                                                 {408, s.status_408}, {413, s.status_413},
                                                 {431, s.status_431}, {503, s.status_503}};
  for (const auto& [code, v] : codes) {
    text.put("weft_http_responses_status_total{code=\"%d\"} %" PRIu64 "\n", code, v);
  }
  metric("weft_http_request_bytes_total", "counter", "Request bytes parsed.", s.bytes_in);
  metric("weft_http_response_bytes_total", "counter", "Response bytes queued.", s.bytes_out);
  metric("weft_http_deferred_total", "counter", "Responses deferred (long polls).", s.deferred);
  metric("weft_sse_subscribers", "gauge", "Event streams open now.", s.streams_open);
  metric("weft_sse_streams_total", "counter", "Event streams opened.", s.streams_opened);
  const http::sse::StreamStats ss = streams_.stats();
  metric("weft_sse_events_published_total", "counter", "Events recorded.", ss.published);
  metric("weft_sse_events_replayed_total", "counter", "Events replayed on resume.", ss.replayed);
  metric("weft_sse_dropped_events_total", "counter", "Events dropped for slow subscribers.",
         ss.dropped);
  if (hub_ != nullptr) {
    const pubsub::HubStats hs = hub_->total();
    metric("weft_pubsub_delivered_total", "counter", "Events queued to subscribers.", hs.delivered);
    metric("weft_pubsub_dropped_total", "counter", "Events dropped (slow consumers).", hs.dropped);
  }
  metric("weft_net_bytes_in_total", "counter", "Bytes received.", ps.bytes_in);
  metric("weft_net_bytes_out_total", "counter", "Bytes sent.", ps.bytes_out);
  metric("weft_pool_recv_buffers_in_use", "gauge", "Receive buffers held now.", ps.recv_in_use);
  metric("weft_pool_recv_buffers_pinned", "gauge", "Receive buffers pinned by output.",
         ps.pinned_recv);
  if (platform::SharedBuffers* sb = rt->shared()) {
    metric("weft_pool_shared_buffers_in_use", "gauge", "Shared (fan-out) buffers in use.",
           sb->count() - sb->free_count());
  }
  if (opt_.mqtt != nullptr) {
    const DemoMqtt::Metrics m = opt_.mqtt->metrics();
    metric("weft_mqtt_connected", "gauge", "1 while the MQTT broker connection is up.",
           m.connected);
    metric("weft_mqtt_connects_total", "counter", "MQTT connections accepted (CONNACK).",
           m.connects);
    metric("weft_mqtt_queued", "gauge", "Messages in the MQTT outbound queue.", m.queued);
    metric("weft_mqtt_bridge_out_total", "counter", "Local messages sent to the broker.", m.out);
    metric("weft_mqtt_bridge_out_dropped_total", "counter",
           "Local messages the bridge could not queue.", m.out_dropped);
    metric("weft_mqtt_bridge_in_total", "counter", "Broker messages delivered locally.", m.in);
    metric("weft_mqtt_bridge_echo_suppressed_total", "counter",
           "Broker messages not sent back out (loop prevention).", m.echo_suppressed);
  }
  metric("weft_allocations_total", "counter", "Heap allocations since start-up (0 if not counted).",
         alloc::count());
  const std::uint64_t warm = warm_allocs_.load(std::memory_order_relaxed);
  metric("weft_allocations_after_warmup_total", "counter",
         "Heap allocations after the warm-up (steady state).",
         warm == ~0ull ? 0 : alloc::count() - warm);
  return text.size();
}

// ---- --mqtt ---------------------------------------------------------------------------

struct DemoMqtt::Slot {
  bool used = false;
  std::size_t topic_len = 0;
  std::size_t len = 0;
  char topic[kMaxTopic];
  std::byte payload[kMaxPayload];
};

DemoMqtt::DemoMqtt(platform::Address broker, std::string device_id, mqtt::BridgeConfig rules,
                   http::sse::Streams& streams)
    : broker_(broker),
      device_(std::move(device_id)),
      client_id_("weft-demo-" + device_),
      rules_(std::move(rules)),
      streams_(streams),
      slots_(new Slot[kSlots]) {}

DemoMqtt::~DemoMqtt() = default;

bool DemoMqtt::start(platform::Runtime& rt) {
  return rt.worker(0).inject(platform::Post{&DemoMqtt::on_start, this, 0, 0}).ok();
}

void DemoMqtt::shutdown() noexcept {
  if (loop_ != nullptr) {
    loop_->timers().cancel(tick_);
  }
  bridge_.reset();
  client_.reset();
}

void DemoMqtt::on_start(platform::Loop& l, const platform::Post& p) noexcept {
  auto& self = *static_cast<DemoMqtt*>(p.ptr);
  self.loop_ = &l;
  mqtt::ClientConfig cc;
  cc.session.version = mqtt::Version::v5;
  cc.session.client_id = self.client_id_;
  cc.session.clean_start = false;  // QoS 1 survives a broker restart (persistent session)
  cc.session.session_expiry_s = 3600;
  cc.session.keep_alive_s = 30;
  cc.session.queue_slots = 64;
  cc.session.max_message_bytes = kMaxTopic + kMaxPayload;
  cc.session.max_packet_size = 64 * 1024;
  mqtt::apply(self.rules_, cc.session);
  self.client_ = std::make_unique<mqtt::Client>(l, cc);
  self.bridge_ = std::make_unique<mqtt::Bridge>(*self.client_, self.rules_, self.device_);
  self.bridge_->on_local(&DemoMqtt::on_local, &self);
  self.client_->on_state(&DemoMqtt::on_state, &self);
  if (Result<void> r = self.bridge_->start(); !r) {
    log(LogLevel::error, "weft-demo: mqtt bridge: %s", r.error().message().c_str());
    return;
  }
  if (Result<void> r = self.client_->start(self.broker_); !r) {
    log(LogLevel::error, "weft-demo: mqtt client: %s", r.error().message().c_str());
  }
  self.tick_.fn = &DemoMqtt::on_tick;
  self.tick_.ctx = &self;
  l.timers().schedule(self.tick_, l.now_ms() + 1000);
}

void DemoMqtt::on_tick(platform::TimerNode* n) noexcept {
  auto& self = *static_cast<DemoMqtt*>(n->ctx);
  const mqtt::BridgeStats& b = self.bridge_->stats();
  const std::uint64_t v[7] = {self.client_->state() == mqtt::ClientState::connected ? 1u : 0u,
                              self.client_->stats().connected,
                              self.client_->session().queued(),
                              b.out,
                              b.out_dropped + self.dropped_.load(std::memory_order_relaxed),
                              b.in,
                              b.echo_suppressed};
  for (std::size_t i = 0; i < 7; ++i) {
    self.m_[i].store(v[i], std::memory_order_relaxed);
  }
  self.loop_->timers().schedule(self.tick_, self.loop_->now_ms() + 1000);
}

DemoMqtt::Metrics DemoMqtt::metrics() const noexcept {
  const auto at = [this](std::size_t i) { return m_[i].load(std::memory_order_relaxed); };
  return Metrics{at(0), at(1), at(2), at(3), at(4), at(5), at(6)};
}

void DemoMqtt::on_state(void*, mqtt::ClientState s, std::error_code why) noexcept {
  log(LogLevel::info, "weft-demo: mqtt %s%s%s", mqtt::to_string(s), why ? ": " : "",
      why ? why.message().c_str() : "");
}

void DemoMqtt::on_local(void* ctx, std::string_view topic,
                        std::span<const std::byte> payload) noexcept {
  auto& self = *static_cast<DemoMqtt*>(ctx);
  auto r = self.streams_.publish(*self.loop_, topic, {},
                                 {reinterpret_cast<const char*>(payload.data()), payload.size()});
  if (!r) {
    log(LogLevel::warn, "weft-demo: mqtt -> %.*s: %s", static_cast<int>(topic.size()), topic.data(),
        r.error().message().c_str());
  }
}

void DemoMqtt::forward(platform::Loop& here, std::string_view topic,
                       std::span<const std::byte> payload) noexcept {
  if (here.index() == 0) {
    if (bridge_ != nullptr) {
      (void)bridge_->local(topic, payload);  // refusals are counted in the bridge's stats
    }
    return;
  }
  if (topic.size() > kMaxTopic || payload.size() > kMaxPayload) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::size_t i = 0;
  {
    const std::lock_guard<std::mutex> lock(slots_mu_);
    while (i < kSlots && slots_[i].used) {
      ++i;
    }
    if (i == kSlots) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    slots_[i].used = true;
  }
  Slot& s = slots_[i];
  std::memcpy(s.topic, topic.data(), topic.size());
  s.topic_len = topic.size();
  std::memcpy(s.payload, payload.data(), payload.size());
  s.len = payload.size();
  if (!here.post(0, platform::Post{&DemoMqtt::on_forward, this, i, 0})) {
    const std::lock_guard<std::mutex> lock(slots_mu_);
    s.used = false;
    dropped_.fetch_add(1, std::memory_order_relaxed);
  }
}

void DemoMqtt::on_forward(platform::Loop& l, const platform::Post& p) noexcept {
  auto& self = *static_cast<DemoMqtt*>(p.ptr);
  Slot& s = self.slots_[p.a];
  self.forward(l, {s.topic, s.topic_len}, {s.payload, s.len});
  const std::lock_guard<std::mutex> lock(self.slots_mu_);
  s.used = false;
}

}  // namespace weft::examples
