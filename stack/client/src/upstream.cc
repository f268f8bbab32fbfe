#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include <weft/base/log.h>
#include <weft/client/upstream.h>
#include <weft/msg/error.h>
#include <weft/platform/error.h>

namespace weft::client {

using platform::platform_errc;
using platform::TimerNode;

namespace detail {

inline constexpr std::uint32_t kNoUpSlot = 0xffffffffu;
inline constexpr std::uint32_t kMaxEndpoints = 16;  // UpSlot::tried is a 16-bit set

struct Endpoint {
  Upstream* up = nullptr;
  std::uint32_t index = 0;
  platform::Address addr;
  std::unique_ptr<Pool> pool;
  std::unique_ptr<Client> probe;  // reconnect off: one connect + PING per probe
  bool admitted = true;
  bool probing = false;
  std::uint32_t consecutive = 0;  // transport failures since the last ready connection
  std::uint32_t probe_attempt = 0;
  EndpointStats stats;
  TimerNode probe_timer;
};

struct UpSlot {
  enum class State : std::uint8_t { free, waiting, sent, between };
  Upstream* up = nullptr;
  State state = State::free;
  bool idempotent = false;
  std::uint16_t tried = 0;  // endpoints attempted (bit i: endpoint i)
  int endpoint = -1;
  std::uint32_t index = 0;
  std::uint32_t next = kNoUpSlot;  // free list or wait FIFO
  std::uint32_t prev = kNoUpSlot;  // wait FIFO
  std::uint32_t method = 0;
  std::uint32_t len = 0;
  std::uint32_t attempts_left = 0;
  std::uint64_t key = 0;
  std::uint64_t deadline_at = 0;  // loop ms; 0: none
  std::byte* payload = nullptr;   // max_payload bytes of Upstream::payloads_
  UpstreamFn fn = nullptr;
  void* ctx = nullptr;
  TimerNode wait_timer;  // the deadline while waiting (the Client keeps it once sent)
};

struct Choice {
  int endpoint = -1;
  Client* client = nullptr;
};

}  // namespace detail

using detail::Choice;
using detail::Endpoint;
using detail::kMaxEndpoints;
using detail::kNoUpSlot;
using detail::UpSlot;

Upstream::Upstream(platform::Loop& loop, const UpstreamOptions& o) noexcept
    : loop_(loop), opts_(o) {}

Upstream::~Upstream() {
  platform::TimerWheel& w = loop_.timers();
  if (slots_) {
    for (std::uint32_t i = 0; i < opts_.max_inflight; ++i) {
      w.cancel(slots_[i].wait_timer);
    }
  }
  if (eps_) {
    for (std::uint32_t i = 0; i < n_; ++i) {
      w.cancel(eps_[i].probe_timer);
    }
  }
}

Result<std::unique_ptr<Upstream>> Upstream::create(platform::Loop& loop, std::string_view name,
                                                   std::span<const platform::Address> endpoints,
                                                   const UpstreamOptions& o) noexcept {
  if (endpoints.empty() || endpoints.size() > kMaxEndpoints || o.max_inflight == 0 ||
      o.attempts == 0 || o.eject_after == 0 || o.probe_min_ms == 0 ||
      o.probe_min_ms > o.probe_max_ms || o.probe_timeout_ms == 0) {
    return fail(platform_errc::invalid_argument);
  }
  std::unique_ptr<Upstream> u(new (std::nothrow) Upstream(loop, o));
  if (!u) {
    return fail_errno(ENOMEM);
  }
  u->name_len_ = std::min(name.size(), sizeof u->name_ - 1);
  std::memcpy(u->name_, name.data(), u->name_len_);
  if (auto r = u->init(endpoints); !r) {
    return fail(r.error());
  }
  return u;
}

Result<void> Upstream::init(std::span<const platform::Address> endpoints) noexcept {
  rng_ = opts_.pool.client.seed;
  if (rng_ == 0 && ::getrandom(&rng_, sizeof rng_, 0) != static_cast<ssize_t>(sizeof rng_)) {
    return fail_errno(errno);
  }
  // Slots first: a pool's first connect may fail (and eject) inside Pool::create.
  const std::size_t bytes = std::size_t{opts_.max_inflight} * opts_.max_payload;
  slots_.reset(new (std::nothrow) UpSlot[opts_.max_inflight]);
  payloads_.reset(new (std::nothrow) std::byte[bytes == 0 ? 1 : bytes]);
  n_ = static_cast<std::uint32_t>(endpoints.size());
  eps_.reset(new (std::nothrow) Endpoint[n_]);
  if (!slots_ || !payloads_ || !eps_) {
    return fail_errno(ENOMEM);
  }
  for (std::uint32_t i = 0; i < opts_.max_inflight; ++i) {
    UpSlot& s = slots_[i];
    s.up = this;
    s.index = i;
    s.next = i + 1 < opts_.max_inflight ? i + 1 : kNoUpSlot;
    s.payload = payloads_.get() + std::size_t{i} * opts_.max_payload;
    s.wait_timer.ctx = &s;
    s.wait_timer.fn = &Upstream::on_wait_timer;
  }
  free_ = 0;
  wait_head_ = wait_tail_ = kNoUpSlot;
  for (std::uint32_t i = 0; i < n_; ++i) {
    Endpoint& e = eps_[i];
    e.up = this;
    e.index = i;
    e.addr = endpoints[i];
    e.stats.admitted = true;
    e.probe_timer.ctx = &e;
    e.probe_timer.fn = &Upstream::on_probe_timer;
    Options po = opts_.pool.client;
    po.reconnect = false;
    po.max_calls = 1;
    po.max_subscriptions = 1;
    po.connect_timeout_ms = opts_.probe_timeout_ms;
    po.on_state = &Upstream::on_probe_state;
    po.on_failure = &Upstream::on_probe_failure;
    po.state_ctx = &e;
    auto probe = Client::create(loop_, po);
    if (!probe) {
      return fail(probe.error());
    }
    e.probe = std::move(probe.value());
  }
  for (std::uint32_t i = 0; i < n_; ++i) {
    PoolOptions o = opts_.pool;
    o.on_event = &Upstream::on_pool_event;
    o.event_ctx = &eps_[i];
    auto p = Pool::create(loop_, eps_[i].addr, o);
    if (!p) {
      return fail(p.error());
    }
    eps_[i].pool = std::move(p.value());
  }
  return {};
}

// ---- calls -------------------------------------------------------------------------------------

Result<void> Upstream::call(std::uint32_t method, std::span<const std::byte> payload,
                            const UpstreamCall& c, UpstreamFn fn, void* ctx) noexcept {
  if (closing_) {
    return fail(client_errc::closed);
  }
  if (payload.size() > opts_.max_payload) {
    return fail(msg::msg_errc::too_large);
  }
  if (!any_admitted()) {
    return fail(client_errc::unavailable);
  }
  if (free_ == kNoUpSlot) {
    return fail(client_errc::overloaded);
  }
  UpSlot& s = slots_[free_];
  free_ = s.next;
  s.next = s.prev = kNoUpSlot;
  ++held_;
  if (!payload.empty()) {
    std::memcpy(s.payload, payload.data(), payload.size());
  }
  s.len = static_cast<std::uint32_t>(payload.size());
  s.method = method;
  s.idempotent = c.idempotent;
  s.key = !c.idempotent ? 0 : (c.idempotency_key != 0 ? c.idempotency_key : random());
  s.attempts_left = c.idempotent ? opts_.attempts : 1;
  s.tried = 0;
  s.endpoint = -1;
  s.fn = fn;
  s.ctx = ctx;
  s.deadline_at = c.deadline_ms != 0 ? loop_.now_ms() + c.deadline_ms : 0;
  s.state = UpSlot::State::between;
  const Choice ch = choose(s);
  if (ch.endpoint >= 0) {
    if (auto r = send(s, ch); !r && r.error() != client_errc::overloaded) {
      // Refused before anything was sent (too large for the server, no buffers): the caller
      // hears it from call(), and fn is never called.
      free_slot(s);
      return fail(r.error());
    } else if (r) {
      return {};
    }
  }
  wait(s);
  return {};
}

Choice Upstream::choose(const UpSlot& s) noexcept {
  // Two passes: endpoints this call has not tried, then (retries) any.
  for (int pass = 0; pass < 2; ++pass) {
    Choice best;
    std::uint32_t best_out = 0;
    for (std::uint32_t k = 0; k < n_; ++k) {
      const std::uint32_t i = (rr_ + k) % n_;
      Endpoint& e = eps_[i];
      if (!e.admitted || (pass == 0 && (s.tried >> i & 1u) != 0)) {
        continue;
      }
      if (best.endpoint >= 0 &&
          (opts_.balance == Balance::round_robin || e.stats.outstanding >= best_out)) {
        continue;  // round robin: the first ready one wins; least: strictly fewer only
      }
      Client* c = e.pool->pick();
      if (c == nullptr) {
        continue;
      }
      best.endpoint = static_cast<int>(i);
      best.client = c;
      best_out = e.stats.outstanding;
    }
    if (best.endpoint >= 0) {
      rr_ = (static_cast<std::uint32_t>(best.endpoint) + 1) % n_;
      return best;
    }
  }
  return {};
}

Result<void> Upstream::send(UpSlot& s, const Choice& ch) noexcept {
  CallOptions co;
  co.idempotent = s.idempotent;
  co.idempotency_key = s.key;
  if (s.deadline_at != 0) {
    const std::uint64_t now = loop_.now_ms();
    // Deadlines travel: the server gets what is left of the whole call.
    co.deadline_ms = s.deadline_at > now ? static_cast<std::uint32_t>(s.deadline_at - now) : 1;
  }
  if (auto r = ch.client->call(s.method, {s.payload, s.len}, co, &Upstream::on_answer, &s); !r) {
    return r;
  }
  Endpoint& e = eps_[ch.endpoint];
  s.state = UpSlot::State::sent;
  s.endpoint = ch.endpoint;
  s.tried = static_cast<std::uint16_t>(s.tried | (1u << ch.endpoint));
  --s.attempts_left;
  ++e.stats.calls;
  ++e.stats.outstanding;
  return {};
}

void Upstream::on_answer(void* ctx, Result<std::span<const std::byte>> r) noexcept {
  UpSlot& s = *static_cast<UpSlot*>(ctx);
  Upstream& u = *s.up;
  Endpoint& e = u.eps_[s.endpoint];
  --e.stats.outstanding;
  s.state = UpSlot::State::between;
  if (r.ok()) {
    ++e.stats.ok;
    u.complete(s, std::move(r));
  } else {
    const std::error_code why = r.error();
    // not_connected: it never left the Client's queue (its endpoint was ejected), so it moves
    // whatever it is, and the attempt does not count.
    const bool unsent = why == client_errc::not_connected;
    if (unsent) {
      ++s.attempts_left;
    }
    const bool movable = unsent || (s.idempotent && (why == client_errc::connection_lost ||
                                                     why == msg::ProtocolError::shutting_down ||
                                                     why == msg::ProtocolError::overloaded));
    const bool time_left = s.deadline_at == 0 || u.loop_.now_ms() < s.deadline_at;
    if (movable && s.attempts_left != 0 && time_left && !u.closing_) {
      u.dispatch(s);  // same key, preferably another endpoint
    } else {
      u.complete(s, fail(why));
    }
  }
  u.serve_waiting();  // a connection has room again
}

void Upstream::dispatch(UpSlot& s) noexcept {
  const Choice ch = choose(s);
  if (ch.endpoint >= 0) {
    auto r = send(s, ch);
    if (r) {
      return;
    }
    if (r.error() != client_errc::overloaded) {
      complete(s, fail(r.error()));
      return;
    }
  }
  if (!any_admitted()) {
    complete(s, fail(client_errc::unavailable));
    return;
  }
  wait(s);
}

void Upstream::wait(UpSlot& s) noexcept {
  s.state = UpSlot::State::waiting;
  s.next = kNoUpSlot;
  s.prev = wait_tail_;
  if (wait_tail_ != kNoUpSlot) {
    slots_[wait_tail_].next = s.index;
  } else {
    wait_head_ = s.index;
  }
  wait_tail_ = s.index;
  if (s.deadline_at != 0) {
    loop_.timers().schedule(s.wait_timer, s.deadline_at);
  }
}

void Upstream::unwait(UpSlot& s) noexcept {
  if (s.prev != kNoUpSlot) {
    slots_[s.prev].next = s.next;
  } else {
    wait_head_ = s.next;
  }
  if (s.next != kNoUpSlot) {
    slots_[s.next].prev = s.prev;
  } else {
    wait_tail_ = s.prev;
  }
  s.next = s.prev = kNoUpSlot;
  s.state = UpSlot::State::between;
  loop_.timers().cancel(s.wait_timer);
}

void Upstream::serve_waiting() noexcept {
  while (wait_head_ != kNoUpSlot && !closing_) {
    UpSlot& s = slots_[wait_head_];
    const Choice ch = choose(s);
    if (ch.endpoint < 0) {
      return;
    }
    unwait(s);
    auto r = send(s, ch);
    if (!r) {
      if (r.error() == client_errc::overloaded) {
        // Its connections are full: back to the head, served when an answer frees room.
        s.state = UpSlot::State::waiting;
        s.next = wait_head_;
        if (wait_head_ != kNoUpSlot) {
          slots_[wait_head_].prev = s.index;
        } else {
          wait_tail_ = s.index;
        }
        wait_head_ = s.index;
        if (s.deadline_at != 0) {
          loop_.timers().schedule(s.wait_timer, s.deadline_at);
        }
        return;
      }
      complete(s, fail(r.error()));
    }
  }
}

void Upstream::fail_waiting(std::error_code why) noexcept {
  while (wait_head_ != kNoUpSlot) {
    UpSlot& s = slots_[wait_head_];
    unwait(s);
    complete(s, fail(why));
  }
}

void Upstream::on_wait_timer(TimerNode* n) noexcept {
  UpSlot& s = *static_cast<UpSlot*>(n->ctx);
  s.up->unwait(s);
  s.up->complete(s, fail(platform_errc::timed_out));
}

void Upstream::complete(UpSlot& s, Result<std::span<const std::byte>> r) noexcept {
  const UpstreamFn fn = s.fn;
  void* const ctx = s.ctx;
  const int ep = s.endpoint;
  free_slot(s);  // first: the callback may make new calls
  fn(ctx, std::move(r), ep);
}

void Upstream::free_slot(UpSlot& s) noexcept {
  loop_.timers().cancel(s.wait_timer);
  s.state = UpSlot::State::free;
  s.fn = nullptr;
  s.prev = kNoUpSlot;
  s.next = free_;
  free_ = s.index;
  --held_;
}

// ---- health ------------------------------------------------------------------------------------

void Upstream::on_pool_event(void* ctx, PoolEvent event, std::error_code why) noexcept {
  Endpoint& e = *static_cast<Endpoint*>(ctx);
  Upstream& u = *e.up;
  if (u.closing_) {
    return;
  }
  if (event == PoolEvent::ready) {
    e.consecutive = 0;
    if (e.admitted) {
      u.serve_waiting();
    }
    return;
  }
  ++e.stats.failures;
  if (!e.admitted) {
    return;  // the probe decides
  }
  ++e.consecutive;
  // A connection attempt that fails while no connection works: the server is not there.
  const bool none_ready = e.pool == nullptr || e.pool->available() == 0;
  if ((event == PoolEvent::connect_failed && none_ready) || e.consecutive >= u.opts_.eject_after) {
    log(LogLevel::info, "upstream %.*s: endpoint %u ejected (%s:%d)", static_cast<int>(u.name_len_),
        u.name_, e.index, why.category().name(), why.value());
    u.eject(e);
  }
}

void Upstream::eject(Endpoint& e) noexcept {
  e.admitted = false;
  e.consecutive = 0;
  e.probe_attempt = 0;
  ++e.stats.ejections;
  schedule_probe(e);
  if (e.pool) {
    e.pool->fail_queued();  // calls waiting in its Clients for a connection move (on_answer)
  }
  if (!any_admitted()) {
    fail_waiting(make_error_code(client_errc::unavailable));
  }
}

void Upstream::schedule_probe(Endpoint& e) noexcept {
  // Exponential backoff with equal jitter, uniform in [d/2, d] (as the Client's reconnects).
  std::uint64_t d = std::uint64_t{opts_.probe_min_ms}
                    << std::min<std::uint32_t>(e.probe_attempt, 20);
  d = std::min<std::uint64_t>(d, opts_.probe_max_ms);
  const std::uint64_t half = d / 2;
  ++e.probe_attempt;
  loop_.timers().schedule(e.probe_timer, loop_.now_ms() + half + random() % (d - half + 1));
}

void Upstream::on_probe_timer(TimerNode* n) noexcept {
  Endpoint& e = *static_cast<Endpoint*>(n->ctx);
  Upstream& u = *e.up;
  if (u.closing_ || e.admitted) {
    return;
  }
  e.probing = true;
  if (!e.probe->connect(e.addr)) {  // refused at once, or the last probe is not closed yet
    u.probe_failed(e);
  }
}

void Upstream::on_probe_state(void* ctx, bool ready) noexcept {
  Endpoint& e = *static_cast<Endpoint*>(ctx);
  if (!ready || !e.probing) {
    return;
  }
  if (!e.probe->ping(e.up->opts_.probe_timeout_ms, &Upstream::on_probe_pong, &e)) {
    e.up->probe_failed(e);
  }
}

void Upstream::on_probe_failure(void* ctx, std::error_code, bool) noexcept {
  Endpoint& e = *static_cast<Endpoint*>(ctx);
  if (e.probing) {
    e.up->probe_failed(e);
  }
}

void Upstream::on_probe_pong(void* ctx, Result<std::uint64_t> rtt) noexcept {
  Endpoint& e = *static_cast<Endpoint*>(ctx);
  Upstream& u = *e.up;
  if (!e.probing) {
    return;
  }
  if (!rtt) {
    u.probe_failed(e);
    return;
  }
  e.probing = false;
  e.probe->close();
  if (u.closing_) {
    return;
  }
  e.admitted = true;
  e.consecutive = 0;
  ++e.stats.readmissions;
  log(LogLevel::info, "upstream %.*s: endpoint %u readmitted", static_cast<int>(u.name_len_),
      u.name_, e.index);
  (void)e.pool->pick();  // have a connection opening if none is
  u.serve_waiting();
}

void Upstream::probe_failed(Endpoint& e) noexcept {
  e.probing = false;
  e.probe->close();
  if (!closing_) {
    schedule_probe(e);
  }
}

// ---- state -------------------------------------------------------------------------------------

bool Upstream::any_admitted() const noexcept {
  for (std::uint32_t i = 0; i < n_; ++i) {
    if (eps_[i].admitted) {
      return true;
    }
  }
  return false;
}

std::uint64_t Upstream::random() noexcept {
  // xorshift64*: keys and jitter, not security (as the Client's).
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 0x2545F4914F6CDD1DULL;
}

EndpointStats Upstream::endpoint(std::size_t i) const noexcept {
  EndpointStats s = eps_[i].stats;
  s.admitted = eps_[i].admitted;
  return s;
}

void Upstream::close() noexcept {
  if (closing_) {
    return;
  }
  closing_ = true;
  fail_waiting(make_error_code(client_errc::closed));
  for (std::uint32_t i = 0; i < n_; ++i) {
    Endpoint& e = eps_[i];
    loop_.timers().cancel(e.probe_timer);
    e.probing = false;
    e.probe->close();
    if (e.pool) {
      e.pool->close();  // calls in flight fail with closed through on_answer
    }
  }
}

bool Upstream::idle() const noexcept {
  if (held_ != 0) {
    return false;
  }
  for (std::uint32_t i = 0; i < n_; ++i) {
    if (!eps_[i].probe->idle() || (eps_[i].pool && !eps_[i].pool->idle())) {
      return false;
    }
  }
  return true;
}

}  // namespace weft::client
