// weft::http::Server — connections, requests, responses (server.h).
#include "server_impl.h"

#include <time.h>

#include <algorithm>
#include <cstring>

#include <weft/base/log.h>
#include <weft/platform/error.h>
#include <weft/platform/shared_buffers.h>

namespace weft::http {

using platform::BufView;
using platform::Conn;
using platform::Loop;
using platform::platform_errc;

namespace {

std::span<const std::byte> bytes_of(std::string_view s) noexcept {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

bool clean(std::string_view s) noexcept {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// Bounded text writer into a fixed buffer; `ok` turns false on overflow.
struct Writer {
  char* p;
  std::size_t cap;
  std::size_t n = 0;
  bool ok = true;
  void put(std::string_view s) noexcept {
    if (!ok || s.size() > cap - n) {
      ok = false;
      return;
    }
    std::memcpy(p + n, s.data(), s.size());
    n += s.size();
  }
  void num(std::uint64_t v) noexcept {
    char tmp[24];
    std::size_t k = 0;
    do {
      tmp[k++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (k != 0 && ok) {
      if (n == cap) {
        ok = false;
        return;
      }
      p[n++] = tmp[--k];
    }
  }
  [[nodiscard]] std::string_view view() const noexcept { return {p, n}; }
};

// The 503 an overflow handler answers with: static, sent by reference.
constexpr std::string_view k503 =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n"
    "Retry-After: 1\r\nConnection: close\r\n\r\nserver overloaded\r\n\r\n";
constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace

// ---- counters ----------------------------------------------------------------------------

void HttpCounters::count_status(std::uint16_t status) noexcept {
  const unsigned cls = status / 100;
  if (cls >= 1 && cls <= 5) {
    responses[cls].add();
  }
  switch (status) {
    case 400:
      s400.add();
      break;
    case 404:
      s404.add();
      break;
    case 408:
      s408.add();
      break;
    case 413:
      s413.add();
      break;
    case 431:
      s431.add();
      break;
    case 503:
      s503.add();
      break;
    default:
      break;
  }
}

void HttpCounters::add_to(ServerStats& s) const noexcept {
  s.connections += connections.get();
  s.requests += requests.get();
  for (int i = 0; i < 6; ++i) {
    s.responses[i] += responses[i].get();
  }
  s.status_400 += s400.get();
  s.status_404 += s404.get();
  s.status_408 += s408.get();
  s.status_413 += s413.get();
  s.status_431 += s431.get();
  s.status_503 += s503.get();
  s.bytes_in += bytes_in.get();
  s.bytes_out += bytes_out.get();
  s.deferred += deferred.get();
  s.late_responses += late.get();
  s.streams_opened += streams_opened.get();
  s.streams_open += streams_open.get();
  s.open += open.get();
}

// ---- Server ----------------------------------------------------------------------------

struct Server::Workers {
  mutable std::mutex mu;
  std::vector<HttpWorker*> live;
  ServerStats retired;
};

Server::Server(ServerConfig config) : config_(std::move(config)), workers_(new Workers) {
  if (config_.streams != nullptr) {
    config_.streams->set_subscriber_lookup(&HttpWorker::subscriber_of, nullptr);
  }
}
Server::~Server() = default;

void Server::attach(HttpWorker* w) noexcept {
  const std::lock_guard<std::mutex> lock(workers_->mu);
  workers_->live.push_back(w);  // start-up, not the hot path
}

void Server::detach(HttpWorker* w) noexcept {
  const std::lock_guard<std::mutex> lock(workers_->mu);
  auto& v = workers_->live;
  v.erase(std::remove(v.begin(), v.end(), w), v.end());
  w->counters().add_to(workers_->retired);
  workers_->retired.streams_open = 0;
  workers_->retired.open = 0;
}

ServerStats Server::stats() const noexcept {
  const std::lock_guard<std::mutex> lock(workers_->mu);
  ServerStats s = workers_->retired;
  for (const HttpWorker* w : workers_->live) {
    w->counters().add_to(s);
  }
  return s;
}

ServerStats Server::worker_stats(std::uint32_t worker) const noexcept {
  const std::lock_guard<std::mutex> lock(workers_->mu);
  ServerStats s;
  for (const HttpWorker* w : workers_->live) {
    if (w->loop().index() == worker) {
      w->counters().add_to(s);
    }
  }
  return s;
}

platform::Service Server::service(const platform::Address& address) {
  return platform::Service{address,
                           [this](Loop& loop) -> std::unique_ptr<platform::HandlerFactory> {
                             return std::make_unique<HttpWorker>(*this, loop);
                           }};
}

// ---- HttpWorker --------------------------------------------------------------------------

HttpWorker::HttpWorker(Server& server, Loop& loop)
    : server_(server),
      loop_(loop),
      cfg_(server.config()),
      limit_(cfg_.connections != 0 ? cfg_.connections : loop.config().max_connections),
      scratch_(assembly_size(cfg_.parser)),
      pool_(limit_ + cfg_.overload_reserve, this),
      assembly_size_(assembly_size(cfg_.parser)) {
  assembly_.resize(assembly_size_ * cfg_.assembly_slots);
  for (std::uint32_t i = cfg_.assembly_slots; i-- > 0;) {
    assembly_free_.push_back(static_cast<std::int32_t>(i));
  }
  bodies_.reset(new char[cfg_.parser.max_body_size * cfg_.body_slots]);
  for (std::uint32_t i = cfg_.body_slots; i-- > 0;) {
    body_free_.push_back(static_cast<std::int32_t>(i));
  }
  heartbeat_.fn = &HttpWorker::on_heartbeat;
  heartbeat_.ctx = this;
  if (cfg_.streams != nullptr && cfg_.streams->hub() != nullptr) {
    if (Result<void> r = cfg_.streams->hub()->attach(loop); !r) {
      log(LogLevel::error, "http: worker %u: event streams unavailable: %s", loop.index(),
          r.error().message().c_str());
    }
  }
  if (cfg_.setup) {
    cfg_.setup(router_, loop);
  }
  server_.attach(this);
}

HttpWorker::~HttpWorker() {
  loop_.timers().cancel(heartbeat_);
  server_.detach(this);
}

platform::Handler* HttpWorker::create(Conn& c) noexcept {
  HttpConn* h = static_cast<HttpConn*>(pool_.create(c));
  if (h != nullptr && pool_.in_use() > limit_) {
    h->mark_refused();
  }
  return h;
}

void HttpWorker::destroy(platform::Handler* h) noexcept {
  pool_.destroy(h);
}

std::int32_t HttpWorker::take_assembly() noexcept {
  if (assembly_free_.empty()) {
    return -1;
  }
  const std::int32_t i = assembly_free_.back();
  assembly_free_.pop_back();
  return i;
}

void HttpWorker::give_assembly(std::int32_t i) noexcept {
  assembly_free_.push_back(i);  // capacity reserved: never reallocates
}

std::span<char> HttpWorker::assembly(std::int32_t i) noexcept {
  return {assembly_.data() + static_cast<std::size_t>(i) * assembly_size_, assembly_size_};
}

std::int32_t HttpWorker::take_body() noexcept {
  if (body_free_.empty()) {
    return -1;
  }
  const std::int32_t i = body_free_.back();
  body_free_.pop_back();
  return i;
}

void HttpWorker::give_body(std::int32_t i) noexcept {
  body_free_.push_back(i);
}

char* HttpWorker::body(std::int32_t i) noexcept {
  return bodies_.get() + static_cast<std::size_t>(i) * cfg_.parser.max_body_size;
}

int HttpWorker::cors_index(const Request& r) const noexcept {
  if (cfg_.cors_origins.empty()) {
    return -1;
  }
  const Header* o = find_header(r.headers, "origin");
  if (o == nullptr) {
    return -1;
  }
  for (std::size_t i = 0; i < cfg_.cors_origins.size(); ++i) {
    const std::string& allowed = cfg_.cors_origins[i];
    if (allowed == "*" || allowed == o->value) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

namespace {

// "Date: ...\r\n" of the current second, per thread.
std::string_view date_line() noexcept {
  thread_local char line[64];
  thread_local std::size_t len = 0;
  thread_local std::int64_t sec = -1;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec != sec) {
    sec = ts.tv_sec;
    tm t{};
    gmtime_r(&ts.tv_sec, &t);
    len = strftime(line, sizeof line, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &t);
  }
  return {line, len};
}

}  // namespace

std::string_view write_head(const ServerConfig& cfg, const HeadSpec& h,
                            std::span<char> out) noexcept {
  Writer w{out.data(), out.size()};
  w.put("HTTP/1.1 ");
  w.num(h.status);
  w.put(" ");
  w.put(reason_phrase(h.status));
  w.put("\r\n");
  if (!cfg.server_name.empty()) {
    w.put("Server: ");
    w.put(cfg.server_name);
    w.put("\r\n");
  }
  w.put(date_line());
  if (!h.content_type.empty()) {
    w.put("Content-Type: ");
    w.put(h.content_type);
    w.put("\r\n");
  }
  if (h.stream) {
    w.put("Cache-Control: no-cache\r\n");
  } else if (h.chunked) {
    w.put("Transfer-Encoding: chunked\r\n");
  } else if (h.no_length) {
    // close-delimited
  } else if (h.status >= 200 && h.status != 204 && h.status != 304) {
    w.put("Content-Length: ");
    w.num(h.length);
    w.put("\r\n");
  }
  if (h.after == After::close || h.stream) {
    w.put("Connection: close\r\n");
  } else if (h.http10) {
    w.put("Connection: keep-alive\r\n");
  }
  if (h.cors >= 0 && static_cast<std::size_t>(h.cors) < cfg.cors_origins.size()) {
    const std::string& origin = cfg.cors_origins[static_cast<std::size_t>(h.cors)];
    w.put("Access-Control-Allow-Origin: ");
    w.put(origin);
    w.put(origin == "*" ? "\r\n" : "\r\nVary: Origin\r\n");
  }
  for (const ResponseHeader& x : h.extra) {
    w.put(x.name);
    w.put(": ");
    w.put(x.value);
    w.put("\r\n");
  }
  w.put("\r\n");
  return w.ok ? w.view() : std::string_view{};
}

void HttpWorker::add_stream(HttpConn& h) noexcept {
  h.stream_prev = nullptr;
  h.stream_next = streams_head_;
  if (streams_head_ != nullptr) {
    streams_head_->stream_prev = &h;
  }
  streams_head_ = &h;
  counters_.streams_opened.add();
  counters_.streams_open.add();
  if (cfg_.sse_heartbeat_ms != 0 && !heartbeat_.scheduled()) {
    loop_.timers().schedule(heartbeat_, loop_.now_ms() + cfg_.sse_heartbeat_ms);
  }
}

void HttpWorker::remove_stream(HttpConn& h) noexcept {
  if (h.stream_prev != nullptr) {
    h.stream_prev->stream_next = h.stream_next;
  } else if (streams_head_ == &h) {
    streams_head_ = h.stream_next;
  }
  if (h.stream_next != nullptr) {
    h.stream_next->stream_prev = h.stream_prev;
  }
  h.stream_prev = h.stream_next = nullptr;
  counters_.streams_open.set(counters_.streams_open.get() - 1);
}

void HttpWorker::on_heartbeat(platform::TimerNode* n) noexcept {
  auto* w = static_cast<HttpWorker*>(n->ctx);
  static constexpr std::string_view kBeat = ":\n\n";
  for (HttpConn* h = w->streams_head_; h != nullptr; h = h->stream_next) {
    Conn* c = w->loop_.find(h->id);
    if (c != nullptr && c->queued_bytes() == 0) {
      (void)c->send_static(bytes_of(kBeat));
    }
  }
  if (w->streams_head_ != nullptr) {
    w->loop_.timers().schedule(w->heartbeat_, w->loop_.now_ms() + w->cfg_.sse_heartbeat_ms);
  }
}

// ---- HttpConn ----------------------------------------------------------------------------

HttpConn::HttpConn(HttpWorker* w)
    : w_(w), parser_(w->config().parser), headers_(new Header[w->config().parser.max_headers]) {
  (void)parser_.set_storage({headers_.get(), w->config().parser.max_headers},
                            w->scratch_assembly());
}

void HttpConn::reset(Conn& c) noexcept {
  id = c.id();
  state_ = State::reading;
  refused_ = head_done_ = close_after_ = eof_ = draining_ = false;
  seq_ = served_ = 0;
  parser_.reset();
  release_request();
  rest_buf_.reset();
  rest_off_ = rest_len_ = 0;
  stream_prev = stream_next = nullptr;
}

void HttpConn::on_open(Conn& c) noexcept {
  HttpCounters& k = w_->counters();
  k.connections.add();
  k.open.add();
  if (refused_) {
    k.count_status(503);
    k.bytes_out.add(k503.size());
    (void)c.send_static(bytes_of(k503));
    state_ = State::closing;
    c.close();
    return;
  }
  const ServerConfig& cfg = w_->config();
  c.set_timeouts({cfg.idle_timeout_ms, cfg.header_timeout_ms, cfg.write_timeout_ms});
}

void HttpConn::on_data(Conn& c, BufView in) noexcept {
  switch (state_) {
    case State::reading:
      process(c, in.bytes, &in);
      return;
    case State::deferred:
      // A pipelined request behind a deferred response: hold it, stop reading.
      hold_rest(c, in.bytes, &in);
      return;
    case State::streaming:
    case State::closing:
      return;  // an event stream takes no more requests; a closing one reads nothing
  }
}

void HttpConn::hold_rest(Conn& c, std::span<const std::byte> rest, const BufView* view) noexcept {
  if (rest.empty()) {
    return;
  }
  if (rest_buf_.valid() || view == nullptr) {
    // Already holding input (cannot happen: reading pauses): refuse rather than lose it.
    state_ = State::closing;
    c.abort(make_error_code(platform_errc::queue_full));
    return;
  }
  rest_buf_ = view->ref();
  rest_off_ = static_cast<std::uint32_t>(rest.data() - view->pool->data(view->buf));
  rest_len_ = static_cast<std::uint32_t>(rest.size());
  c.pause_reading();
}

void HttpConn::process(Conn& c, std::span<const std::byte> in, const BufView* view) noexcept {
  std::span<const std::byte> rest = in;
  while (true) {
    const Decoded d = parser_.feed(rest);
    switch (d.state) {
      case DecodeState::need_more:
        w_->counters().bytes_in.add(d.consumed);
        if (parser_.assembling() && asm_slot_ < 0 && !take_assembly()) {
          refuse(c, 503);
          return;
        }
        if (head_done_) {
          // The body continues in a later read: a zero-copy body so far moves to a slot,
          // and the head's receive buffer is kept (request() views it).
          if (body_view_ != nullptr && !to_slot()) {
            refuse(c, 503);
            return;
          }
          if (!parser_.assembling() && !head_buf_.valid() && view != nullptr) {
            head_buf_ = view->ref();
          }
        }
        c.set_mid_message(parser_.mid_message() && !head_done_);
        return;
      case DecodeState::head:
        w_->counters().bytes_in.add(d.consumed);
        rest = rest.subspan(d.consumed);
        if (!on_head(c)) {
          return;
        }
        break;
      case DecodeState::body: {
        w_->counters().bytes_in.add(d.consumed);
        const std::string_view piece = parser_.body();
        rest = rest.subspan(d.consumed);
        if (!on_body(c, piece)) {
          return;
        }
        break;
      }
      case DecodeState::complete:
        rest = rest.subspan(d.consumed);
        c.set_mid_message(false);
        if (!dispatch(c)) {
          if (state_ == State::deferred) {
            hold_rest(c, rest, view);
          }
          return;
        }
        break;
      case DecodeState::error:
        w_->counters().bytes_in.add(d.consumed);
        refuse(c, status(parser_.error()));
        return;
    }
  }
}

bool HttpConn::on_head(Conn& c) noexcept {
  head_done_ = true;
  ++seq_;
  const Request& r = parser_.request();
  const ServerConfig& cfg = w_->config();
  match_ = w_->router().match(r.method, r.path);
  body_max_ = cfg.parser.max_body_size;
  if (match_.route != nullptr && match_.route->options.max_body != 0) {
    body_max_ = std::min(body_max_, match_.route->options.max_body);
  }
  if (r.body == BodyKind::length && r.content_length > body_max_) {
    refuse(c, 413);
    return false;
  }
  if (r.expect_continue && r.body != BodyKind::none) {
    if (match_.route == nullptr) {
      refuse(c, match_.status);  // a final status instead of 100 (RFC 9110 §10.1.1)
      return false;
    }
    w_->counters().count_status(100);
    (void)c.send_static(bytes_of(k100));
  }
  body_len_ = 0;
  body_view_ = nullptr;
  return true;
}

bool HttpConn::to_slot() noexcept {
  body_slot_ = w_->take_body();
  if (body_slot_ < 0) {
    return false;
  }
  if (body_len_ != 0) {
    std::memcpy(w_->body(body_slot_), body_view_, body_len_);
  }
  body_view_ = nullptr;
  return true;
}

bool HttpConn::on_body(Conn& c, std::string_view piece) noexcept {
  if (body_len_ + piece.size() > body_max_) {
    refuse(c, 413);  // cut off at the limit: nothing after it is read
    return false;
  }
  if (body_slot_ < 0) {
    if (body_len_ == 0) {
      body_view_ = piece.data();
      body_len_ = piece.size();
      return true;
    }
    if (body_view_ != nullptr && body_view_ + body_len_ == piece.data()) {
      body_len_ += piece.size();
      return true;
    }
    if (!to_slot()) {
      refuse(c, 503);
      return false;
    }
  }
  std::memcpy(w_->body(body_slot_) + body_len_, piece.data(), piece.size());
  body_len_ += piece.size();
  return true;
}

bool HttpConn::take_assembly() noexcept {
  asm_slot_ = w_->take_assembly();
  if (asm_slot_ < 0) {
    return false;
  }
  (void)parser_.set_assembly(w_->assembly(asm_slot_));
  return true;
}

void HttpConn::give_back_assembly() noexcept {
  if (asm_slot_ >= 0) {
    (void)parser_.set_assembly(w_->scratch_assembly());
    w_->give_assembly(asm_slot_);
    asm_slot_ = -1;
  }
}

void HttpConn::release_request() noexcept {
  if (!parser_.assembling()) {
    give_back_assembly();
  }
  if (body_slot_ >= 0) {
    w_->give_body(body_slot_);
    body_slot_ = -1;
  }
  body_view_ = nullptr;
  body_len_ = 0;
  head_done_ = false;
  head_buf_.reset();
}

bool HttpConn::dispatch(Conn& c) noexcept {
  HttpCounters& k = w_->counters();
  k.requests.add();
  const Request& r = parser_.request();
  const ServerConfig& cfg = w_->config();
  close_after_ = !r.keep_alive || draining_ || eof_ ||
                 (cfg.max_requests_per_connection != 0 && seq_ >= cfg.max_requests_per_connection);
  const std::string_view body = body_slot_ >= 0 ? std::string_view(w_->body(body_slot_), body_len_)
                                                : std::string_view(body_view_, body_len_);
  Exchange ex(*this, c, r, body, match_);
  if (match_.route != nullptr) {
    match_.route->fn(match_.route->ctx, ex);
    if (!ex.answered_ && state_ == State::reading) {
      (void)ex.respond(500, "text/plain", "handler did not answer\n");
    }
  } else if (r.method == Method::options && w_->cors_index(r) >= 0 &&
             find_header(r.headers, "access-control-request-method") != nullptr &&
             match_.allow != 0) {
    // CORS preflight for a path that exists.
    char allow[96];
    const std::size_t n = format_allow(match_.allow, allow);
    char age[16];
    const int an = std::snprintf(age, sizeof age, "%u", cfg.cors_max_age_s);
    const ResponseHeader h[] = {{"Access-Control-Allow-Methods", {allow, n}},
                                {"Access-Control-Allow-Headers", cfg.cors_allow_headers},
                                {"Access-Control-Max-Age", {age, static_cast<std::size_t>(an)}}};
    for (const ResponseHeader& x : h) {
      (void)ex.add_header(x.name, x.value);
    }
    (void)ex.respond(204, {}, {});
  } else {
    if (match_.status == 405) {
      char allow[96];
      const std::size_t n = format_allow(match_.allow, allow);
      (void)ex.add_header("Allow", {allow, n});
      (void)ex.respond(405, "text/plain", "method not allowed\n");
    } else {
      (void)ex.respond(404, "text/plain", "not found\n");
    }
  }
  release_request();
  return state_ == State::reading;
}

void HttpConn::refuse(Conn& c, std::uint16_t status) noexcept {
  HttpCounters& k = w_->counters();
  k.count_status(status);
  char body[64];
  const int bn =
      std::snprintf(body, sizeof body, "%u %.*s\n", status,
                    static_cast<int>(reason_phrase(status).size()), reason_phrase(status).data());
  ResponseHeader extra[1];
  std::size_t n_extra = 0;
  char retry[16];
  if (status == 503) {
    const int rn = std::snprintf(retry, sizeof retry, "%u", w_->config().retry_after_s);
    extra[n_extra++] = {"Retry-After", {retry, static_cast<std::size_t>(rn)}};
  }
  HeadSpec hs;
  hs.status = status;
  hs.content_type = "text/plain";
  hs.length = static_cast<std::size_t>(bn);
  hs.after = After::close;
  hs.extra = {extra, n_extra};
  const std::string_view head = w_->head(hs);
  k.bytes_out.add(head.size() + static_cast<std::size_t>(bn));
  (void)c.send_copy(bytes_of(head), bytes_of({body, static_cast<std::size_t>(bn)}));
  release_request();
  give_back_assembly();
  state_ = State::closing;
  c.set_mid_message(false);
  c.close();
}

bool HttpConn::on_timeout(Conn& c, platform::Timeout t) noexcept {
  if (t == platform::Timeout::read && state_ == State::reading && !head_done_) {
    refuse(c, 408);  // slowloris: the head did not complete in time
    return true;
  }
  return false;
}

void HttpConn::on_eof(Conn& c) noexcept {
  // A client that closes its side is done: a deferred response has nobody to go to, a
  // request cut short is dropped; queued responses are still delivered.
  eof_ = true;
  if (state_ != State::closing) {
    state_ = State::closing;
    c.close();
  }
}

void HttpConn::on_drain(Conn& c) noexcept {
  draining_ = true;
  if (state_ == State::streaming ||
      (state_ == State::reading && !parser_.mid_message() && !head_done_)) {
    state_ = State::closing;
    c.close();
  }
  // Otherwise the request in progress is answered with "Connection: close".
}

void HttpConn::on_close(Conn& c, std::error_code) noexcept {
  if (state_ == State::streaming) {
    end_stream(c);
  }
  state_ = State::closing;
  release_request();
  give_back_assembly();
  rest_buf_.reset();
  w_->counters().open.set(w_->counters().open.get() - 1);
}

Result<void> HttpConn::after_response(Conn& c) noexcept {
  ++served_;
  if (close_after_) {
    state_ = State::closing;
    c.close();
  }
  return {};
}

void HttpConn::finish_deferred(Conn& c) noexcept {
  const ServerConfig& cfg = w_->config();
  state_ = State::reading;
  c.set_timeouts({cfg.idle_timeout_ms, cfg.header_timeout_ms, cfg.write_timeout_ms});
  (void)after_response(c);
  if (state_ != State::reading) {
    return;
  }
  if (rest_buf_.valid()) {
    platform::BufRef held = std::move(rest_buf_);
    const BufView view{std::span<const std::byte>(held.data() + rest_off_, rest_len_), held.id(),
                       held.pool()};
    process(c, view.bytes, &view);
  }
  if (state_ == State::reading) {
    c.resume_reading();
  }
}

// ---- Exchange ----------------------------------------------------------------------------

std::string_view Exchange::param(std::string_view name) const noexcept {
  for (std::uint8_t i = 0; i < match_->n_params; ++i) {
    if (match_->params[i].name == name) {
      return match_->params[i].value;
    }
  }
  return {};
}

Result<void> Exchange::add_header(std::string_view name, std::string_view value) noexcept {
  if (name.empty() || !clean(name) || !clean(value) ||
      name.find_first_of(" :\t") != std::string_view::npos) {
    return fail(http_errc::bad_header);
  }
  if (n_extra_ == std::size(extra_)) {
    return fail(std::make_error_code(std::errc::no_space_on_device));
  }
  extra_[n_extra_++] = {name, value};
  return {};
}

Result<void> Exchange::send(std::uint16_t status, std::string_view content_type,
                            std::string_view body, bool by_ref) noexcept {
  if (answered_) {
    return fail(http_errc::gone);
  }
  if (!clean(content_type)) {
    return fail(http_errc::bad_header);
  }
  answered_ = true;
  HttpWorker& w = *h_->w_;
  const bool head_only = req_->method == Method::head;
  HeadSpec hs = head_spec(status, content_type);
  hs.length = body.size();
  const std::string_view head = w.head(hs);
  if (head.empty()) {
    conn_->abort(make_error_code(platform_errc::no_buffers));
    return fail(platform_errc::no_buffers);
  }
  const std::string_view out = head_only ? std::string_view{} : body;
  Result<void> r =
      by_ref ? conn_->send_copy(bytes_of(head)) : conn_->send_copy(bytes_of(head), bytes_of(out));
  if (r && by_ref && !out.empty()) {
    r = conn_->send_static(bytes_of(out));
  }
  if (!r) {
    h_->state_ = HttpConn::State::closing;
    conn_->abort(r.error());
    return r;
  }
  HttpCounters& k = w.counters();
  k.count_status(status);
  k.bytes_out.add(head.size() + out.size());
  return h_->after_response(*conn_);
}

HeadSpec Exchange::head_spec(std::uint16_t status, std::string_view content_type) const noexcept {
  HeadSpec hs;
  hs.status = status;
  hs.content_type = content_type;
  hs.after = h_->close_after_ ? After::close : After::keep;
  hs.http10 = req_->version == Version::http10;
  hs.cors = h_->w_->cors_index(*req_);
  hs.extra = {extra_, n_extra_};
  return hs;
}

Result<void> Exchange::respond(std::uint16_t status, std::string_view content_type,
                               std::string_view body) noexcept {
  return send(status, content_type, body, false);
}

Result<void> Exchange::respond_static(std::uint16_t status, std::string_view content_type,
                                      std::string_view body) noexcept {
  return send(status, content_type, body, true);
}

Result<void> Exchange::respond_chunked(std::uint16_t status, std::string_view content_type,
                                       std::span<const std::string_view> pieces) noexcept {
  if (answered_) {
    return fail(http_errc::gone);
  }
  if (!clean(content_type)) {
    return fail(http_errc::bad_header);
  }
  answered_ = true;
  HttpWorker& w = *h_->w_;
  const bool http10 = req_->version == Version::http10;
  if (http10) {
    h_->close_after_ = true;  // close-delimited
  }
  HeadSpec hs = head_spec(status, content_type);
  hs.chunked = !http10;
  hs.no_length = http10;
  const std::string_view head = w.head(hs);
  if (head.empty()) {
    conn_->abort(make_error_code(platform_errc::no_buffers));
    return fail(platform_errc::no_buffers);
  }
  Result<void> r = conn_->send_copy(bytes_of(head));
  std::uint64_t out = head.size();
  const bool body = req_->method != Method::head;
  for (const std::string_view p : pieces) {
    if (!r || !body || p.empty()) {
      continue;
    }
    if (http10) {
      r = conn_->send_copy(bytes_of(p));
      out += p.size();
      continue;
    }
    char size_line[24];
    const int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", p.size());
    r = conn_->send_copy(bytes_of({size_line, static_cast<std::size_t>(n)}), bytes_of(p));
    if (r) {
      r = conn_->send_static(bytes_of("\r\n"));
    }
    out += static_cast<std::size_t>(n) + p.size() + 2;
  }
  if (r && body && !http10) {
    r = conn_->send_static(bytes_of("0\r\n\r\n"));
    out += 5;
  }
  if (!r) {
    h_->state_ = HttpConn::State::closing;
    conn_->abort(r.error());
    return r;
  }
  HttpCounters& k = w.counters();
  k.count_status(status);
  k.bytes_out.add(out);
  return h_->after_response(*conn_);
}

Deferred Exchange::defer() noexcept {
  Deferred d;
  if (answered_) {
    return d;
  }
  answered_ = true;
  HttpConn& h = *h_;
  h.state_ = HttpConn::State::deferred;
  h.w_->counters().deferred.add();
  const ServerConfig& cfg = h.w_->config();
  conn_->set_timeouts({0, 0, cfg.write_timeout_ms});
  d.conn = conn_->id();
  d.seq = h.seq_;
  d.owner = h.w_;
  d.head_only = req_->method == Method::head;
  d.keep_alive = !h.close_after_;
  d.http10 = req_->version == Version::http10;
  d.cors = static_cast<std::int16_t>(h.w_->cors_index(*req_));
  return d;
}

// ---- deferred responses ------------------------------------------------------------------

namespace {

// Shared buffer layout of a posted response: u32 length, u8 close flag, 3 pad, then bytes.
constexpr std::size_t kPostHead = 8;

HeadSpec deferred_head(const Deferred& d, std::uint16_t status, std::string_view content_type,
                       std::size_t length, std::span<const ResponseHeader> headers) noexcept {
  HeadSpec hs;
  hs.status = status;
  hs.content_type = content_type;
  hs.length = length;
  hs.after = d.keep_alive ? After::keep : After::close;
  hs.http10 = d.http10;
  hs.cors = d.cors;
  hs.extra = headers;
  return hs;
}

struct ResponsePost {
  // ptr = the owner HttpWorker, a = conn slot | gen << 32, b = shared id | seq << 32.
  static void run(Loop& target, const platform::Post& p) noexcept {
    auto* w = static_cast<HttpWorker*>(p.ptr);
    platform::SharedBuffers* shared = target.shared();
    const auto id = static_cast<std::uint32_t>(p.b);
    const std::byte* base = shared->data(id);
    std::uint32_t len = 0;
    std::memcpy(&len, base, sizeof len);
    platform::SharedRef ref = shared->adopt(id, kPostHead + len);
    platform::ConnId cid;
    cid.slot = static_cast<std::uint32_t>(p.a);
    cid.gen = static_cast<std::uint32_t>(p.a >> 32);
    cid.worker = target.index();
    Conn* c = target.find(cid);
    auto* h = c != nullptr ? static_cast<HttpConn*>(c->handler()) : nullptr;
    if (h == nullptr || !h->waiting(static_cast<std::uint32_t>(p.b >> 32))) {
      w->counters().late.add();
      return;
    }
    const Result<void> r = c->send_shared(ref, ref.bytes().subspan(kPostHead));
    if (!r) {
      c->abort(r.error());
      return;
    }
    HttpCounters& k = w->counters();
    k.bytes_out.add(len);
    const auto status = static_cast<std::uint16_t>(std::to_integer<unsigned>(base[5]) << 8 |
                                                   std::to_integer<unsigned>(base[6]));
    k.count_status(status);
    h->finish_deferred(*c);
  }
};

}  // namespace

Result<void> respond(Loop& here, const Deferred& d, std::uint16_t status,
                     std::string_view content_type, std::string_view body,
                     std::span<const ResponseHeader> headers) noexcept {
  if (d.owner == nullptr) {
    return fail(http_errc::gone);
  }
  if (!clean(content_type)) {
    return fail(http_errc::bad_header);
  }
  for (const ResponseHeader& h : headers) {
    if (h.name.empty() || !clean(h.name) || !clean(h.value)) {
      return fail(http_errc::bad_header);
    }
  }
  HttpWorker& owner = *d.owner;
  if (&here == &owner.loop()) {
    Conn* c = here.find(d.conn);
    auto* h = c != nullptr ? static_cast<HttpConn*>(c->handler()) : nullptr;
    if (h == nullptr || !h->waiting(d.seq)) {
      owner.counters().late.add();
      return fail(http_errc::gone);
    }
    const std::string_view head =
        owner.head(deferred_head(d, status, content_type, body.size(), headers));
    const std::string_view b = d.head_only ? std::string_view{} : body;
    const Result<void> r =
        head.empty() ? fail(platform_errc::no_buffers) : c->send_copy(bytes_of(head), bytes_of(b));
    if (!r) {
      c->abort(r.error());
      return r;
    }
    HttpCounters& k = owner.counters();
    k.count_status(status);
    k.bytes_out.add(head.size() + b.size());
    h->finish_deferred(*c);
    return {};
  }
  // Another worker: encode here (with this worker's head buffer) and post it to the owner.
  platform::SharedBuffers* shared = here.shared();
  if (shared == nullptr) {
    return fail(platform_errc::no_buffers);
  }
  platform::SharedRef ref = shared->acquire();
  if (!ref.valid()) {
    return fail(platform_errc::no_buffers);
  }
  const std::span<std::byte> buf = ref.buffer();
  char* const out = reinterpret_cast<char*>(buf.data()) + kPostHead;
  const std::size_t room = buf.size() > kPostHead ? buf.size() - kPostHead : 0;
  // The owner's config is immutable while it runs: formatting from here is safe.
  const std::string_view head = write_head(
      owner.config(), deferred_head(d, status, content_type, body.size(), headers), {out, room});
  const std::string_view b = d.head_only ? std::string_view{} : body;
  if (head.empty() || head.size() + b.size() > room) {
    return fail(std::make_error_code(std::errc::message_size));
  }
  if (!b.empty()) {
    std::memcpy(out + head.size(), b.data(), b.size());
  }
  const std::size_t n = head.size() + b.size();
  const auto len = static_cast<std::uint32_t>(n);
  std::memcpy(buf.data(), &len, sizeof len);
  buf[4] = std::byte{d.keep_alive ? std::uint8_t{0} : std::uint8_t{1}};
  buf[5] = static_cast<std::byte>(status >> 8);
  buf[6] = static_cast<std::byte>(status & 0xff);
  ref.set_length(kPostHead + n);
  platform::Post p;
  p.fn = &ResponsePost::run;
  p.ptr = d.owner;
  p.a = (static_cast<std::uint64_t>(d.conn.gen) << 32) | d.conn.slot;
  p.b = (static_cast<std::uint64_t>(d.seq) << 32) | ref.id();
  Result<void> r = here.post(d.conn.worker, p);
  if (r) {
    (void)ref.release();  // the post carries the reference now
  }
  return r;
}

}  // namespace weft::http
