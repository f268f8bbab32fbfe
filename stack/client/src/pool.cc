#include <algorithm>
#include <cerrno>
#include <new>

#include <weft/client/pool.h>
#include <weft/platform/error.h>

namespace weft::client {

using platform::platform_errc;
using platform::TimerNode;

namespace detail {

inline constexpr std::uint32_t kNoWaiter = 0xffffffffu;

struct Member {
  enum class State : std::uint8_t { empty, opening, idle, lent, closing };
  Pool* pool = nullptr;
  std::unique_ptr<Client> client;
  State state = State::empty;
  bool ready = false;
  bool pinging = false;
  std::uint64_t idle_since = 0;
  std::uint64_t checked = 0;  // last good health check (or when it became idle)
};

struct Waiter {
  Pool* pool = nullptr;
  std::uint32_t index = 0;
  std::uint32_t next = kNoWaiter;
  std::uint32_t prev = kNoWaiter;
  bool used = false;
  AcquireFn fn = nullptr;
  void* ctx = nullptr;
  TimerNode timer;
};

}  // namespace detail

using detail::kNoWaiter;
using detail::Member;
using detail::Waiter;

Pool::Pool(platform::Loop& loop, const platform::Address& addr, const PoolOptions& o) noexcept
    : loop_(loop), addr_(addr), opts_(o) {}

Pool::~Pool() {
  loop_.timers().cancel(tick_);
  if (waiters_) {
    for (std::uint32_t i = 0; i < opts_.max_waiters; ++i) {
      loop_.timers().cancel(waiters_[i].timer);
    }
  }
}

Result<std::unique_ptr<Pool>> Pool::create(platform::Loop& loop, const platform::Address& addr,
                                           const PoolOptions& options) noexcept {
  if (options.max_size == 0 || options.min_idle > options.max_size || options.max_waiters == 0 ||
      (options.health_interval_ms != 0 && options.health_timeout_ms == 0)) {
    return fail(platform_errc::invalid_argument);
  }
  std::unique_ptr<Pool> p(new (std::nothrow) Pool(loop, addr, options));
  if (!p) {
    return fail_errno(ENOMEM);
  }
  if (auto r = p->init(); !r) {
    return fail(r.error());
  }
  return p;
}

Result<void> Pool::init() noexcept {
  members_.reset(new (std::nothrow) Member[opts_.max_size]);
  waiters_.reset(new (std::nothrow) Waiter[opts_.max_waiters]);
  if (!members_ || !waiters_) {
    return fail_errno(ENOMEM);
  }
  for (std::uint32_t i = 0; i < opts_.max_size; ++i) {
    Member& m = members_[i];
    m.pool = this;
    Options o = opts_.client;
    o.on_state = &Pool::on_member_state;
    o.on_failure = &Pool::on_member_failure;
    o.state_ctx = &m;
    auto c = Client::create(loop_, o);
    if (!c) {
      return fail(c.error());
    }
    m.client = std::move(c.value());
  }
  for (std::uint32_t i = 0; i < opts_.max_waiters; ++i) {
    Waiter& w = waiters_[i];
    w.pool = this;
    w.index = i;
    w.next = i + 1 < opts_.max_waiters ? i + 1 : kNoWaiter;
    w.timer.ctx = &w;
    w.timer.fn = &Pool::on_waiter_timer;
  }
  free_waiter_ = 0;
  head_ = tail_ = kNoWaiter;
  // Upkeep often enough for the finest of the intervals it serves, at most once a second.
  std::uint64_t t = 1000;
  if (opts_.health_interval_ms != 0) {
    t = std::min<std::uint64_t>(t, opts_.health_interval_ms);
  }
  if (opts_.idle_timeout_ms != 0) {
    t = std::min<std::uint64_t>(t, opts_.idle_timeout_ms);
  }
  tick_ms_ = std::max<std::uint64_t>(t / 2, 5);
  tick_.ctx = this;
  tick_.fn = &Pool::on_tick;
  loop_.timers().schedule(tick_, loop_.now_ms() + tick_ms_);
  upkeep();  // min_idle connections from the start
  return {};
}

// ---- lending ---------------------------------------------------------------------------------

Result<void> Pool::acquire(std::uint32_t deadline_ms, AcquireFn fn, void* ctx) noexcept {
  if (closing_) {
    return fail(client_errc::closed);
  }
  if (free_waiter_ == kNoWaiter) {
    ++stats_.refused;
    return fail(client_errc::overloaded);
  }
  Waiter& w = waiters_[free_waiter_];
  free_waiter_ = w.next;
  w.used = true;
  w.fn = fn;
  w.ctx = ctx;
  w.next = kNoWaiter;
  w.prev = tail_;
  if (tail_ != kNoWaiter) {
    waiters_[tail_].next = w.index;
  } else {
    head_ = w.index;
  }
  tail_ = w.index;
  ++waiting_;
  if (deadline_ms != 0) {
    loop_.timers().schedule(w.timer, loop_.now_ms() + deadline_ms);
  }
  if (available() == 0) {
    ++stats_.waited;
  }
  kick();
  return {};
}

void Pool::unlink(Waiter& w) noexcept {
  if (w.prev != kNoWaiter) {
    waiters_[w.prev].next = w.next;
  } else {
    head_ = w.next;
  }
  if (w.next != kNoWaiter) {
    waiters_[w.next].prev = w.prev;
  } else {
    tail_ = w.prev;
  }
  loop_.timers().cancel(w.timer);
  w.used = false;
  w.prev = kNoWaiter;
  w.next = free_waiter_;
  free_waiter_ = w.index;
  --waiting_;
}

void Pool::kick() noexcept {
  if (kicked_) {
    return;
  }
  platform::Post p;
  p.fn = [](platform::Loop&, const platform::Post& post) {
    Pool& pool = *static_cast<Pool*>(post.ptr);
    pool.kicked_ = false;
    pool.serve();
  };
  p.ptr = this;
  // When the defer queue is full the next member state change or upkeep tick serves instead.
  kicked_ = loop_.defer(p).ok();
}

void Pool::serve() noexcept {
  while (head_ != kNoWaiter) {
    Member* free = nullptr;
    for (std::uint32_t i = 0; i < opts_.max_size && free == nullptr; ++i) {
      if (members_[i].state == Member::State::idle && members_[i].ready) {
        free = &members_[i];
      }
    }
    if (free == nullptr) {
      break;
    }
    Waiter& w = waiters_[head_];
    const AcquireFn fn = w.fn;
    void* const ctx = w.ctx;
    unlink(w);
    free->state = Member::State::lent;
    ++stats_.lent;
    fn(ctx, free->client.get());
  }
  // Open a connection for each caller no connection on its way will serve.
  std::uint32_t opening = 0;
  for (std::uint32_t i = 0; i < opts_.max_size; ++i) {
    if (members_[i].state == Member::State::opening) {
      ++opening;
    }
  }
  while (!closing_ && waiting_ > opening && open_one()) {
    ++opening;
  }
}

void Pool::release(Client* c) noexcept {
  for (std::uint32_t i = 0; i < opts_.max_size; ++i) {
    Member& m = members_[i];
    if (m.client.get() == c && m.state == Member::State::lent) {
      if (closing_) {
        m.state = Member::State::closing;
        c->close();
        return;
      }
      // A broken one waits for its reconnection (on_member_state) before it is lent again.
      m.state = m.ready ? Member::State::idle : Member::State::opening;
      m.idle_since = m.checked = loop_.now_ms();
      kick();
      return;
    }
  }
}

void Pool::on_waiter_timer(TimerNode* n) noexcept {
  Waiter& w = *static_cast<Waiter*>(n->ctx);
  Pool& p = *w.pool;
  const AcquireFn fn = w.fn;
  void* const ctx = w.ctx;
  p.unlink(w);
  ++p.stats_.wait_timeouts;
  fn(ctx, fail(platform_errc::timed_out));
}

// ---- members -----------------------------------------------------------------------------------

bool Pool::open_one() noexcept {
  for (std::uint32_t i = 0; i < opts_.max_size; ++i) {
    Member& m = members_[i];
    if (m.state == Member::State::empty) {
      if (!m.client->connect(addr_)) {
        return false;  // without reconnection a refused connect is final: try at the next tick
      }
      m.state = Member::State::opening;
      ++stats_.opened;
      return true;
    }
  }
  return false;
}

void Pool::on_member_state(void* ctx, bool ready) noexcept {
  Member& m = *static_cast<Member*>(ctx);
  Pool& p = *m.pool;
  m.ready = ready;
  if (ready && m.state == Member::State::opening) {
    m.state = Member::State::idle;
    m.idle_since = m.checked = p.loop_.now_ms();
  } else if (!ready && m.state == Member::State::idle) {
    m.state = Member::State::opening;  // its Client reconnects
  }
  if (ready) {
    p.kick();
    if (p.opts_.on_event != nullptr) {
      p.opts_.on_event(p.opts_.event_ctx, PoolEvent::ready, {});
    }
  }
}

void Pool::on_member_failure(void* ctx, std::error_code why, bool was_ready) noexcept {
  Pool& p = *static_cast<Member*>(ctx)->pool;
  if (!p.closing_ && p.opts_.on_event != nullptr) {
    p.opts_.on_event(p.opts_.event_ctx, was_ready ? PoolEvent::lost : PoolEvent::connect_failed,
                     why);
  }
}

void Pool::fail_queued() noexcept {
  for (std::uint32_t i = 0; i < opts_.max_size; ++i) {
    members_[i].client->fail_queued();
  }
}

Client* Pool::pick() noexcept {
  if (closing_) {
    return nullptr;
  }
  Member* best = nullptr;
  for (std::uint32_t i = 0; i < opts_.max_size; ++i) {
    Member& m = members_[i];
    if (m.state == Member::State::idle && m.ready && m.client->ready() &&
        (best == nullptr || m.client->pending() < best->client->pending())) {
      best = &m;
    }
  }
  if (best == nullptr || best->client->pending() > opts_.client.max_calls / 2) {
    bool opening = false;
    for (std::uint32_t i = 0; i < opts_.max_size && !opening; ++i) {
      opening = members_[i].state == Member::State::opening;
    }
    if (!opening) {
      (void)open_one();
    }
  }
  return best != nullptr ? best->client.get() : nullptr;
}

void Pool::on_health(void* ctx, Result<std::uint64_t> rtt) noexcept {
  Member& m = *static_cast<Member*>(ctx);
  m.pinging = false;
  if (rtt.ok()) {
    m.checked = m.pool->loop_.now_ms();
    return;
  }
  if (rtt.error() == platform_errc::timed_out) {
    ++m.pool->stats_.health_failures;
    if (m.pool->opts_.on_event != nullptr) {
      m.pool->opts_.on_event(m.pool->opts_.event_ctx, PoolEvent::health_failed, rtt.error());
    }
    m.client->reset();  // replaced by its reconnection
  }
}

void Pool::on_tick(TimerNode* n) noexcept {
  Pool& p = *static_cast<Pool*>(n->ctx);
  p.upkeep();
  if (!p.closing_) {
    p.loop_.timers().schedule(p.tick_, p.loop_.now_ms() + p.tick_ms_);
  }
}

void Pool::upkeep() noexcept {
  const std::uint64_t now = loop_.now_ms();
  std::uint32_t idle_n = available();
  for (std::uint32_t i = 0; i < opts_.max_size; ++i) {
    Member& m = members_[i];
    if (m.state == Member::State::closing && m.client->idle()) {
      m.state = Member::State::empty;
      continue;
    }
    if (m.state != Member::State::idle || !m.ready) {
      continue;
    }
    // Shared through pick(), an unlent member may still have calls pending: not idle then.
    if (opts_.idle_timeout_ms != 0 && idle_n > opts_.min_idle && m.client->pending() == 0 &&
        now - m.idle_since >= opts_.idle_timeout_ms) {
      m.state = Member::State::closing;
      m.ready = false;
      --idle_n;
      ++stats_.idle_closed;
      m.client->close();
      continue;
    }
    if (opts_.health_interval_ms != 0 && !m.pinging &&
        now - m.checked >= opts_.health_interval_ms) {
      if (m.client->ping(opts_.health_timeout_ms, &Pool::on_health, &m)) {
        m.pinging = true;
      }
    }
  }
  std::uint32_t opening = 0;
  for (std::uint32_t i = 0; i < opts_.max_size; ++i) {
    if (members_[i].state == Member::State::opening) {
      ++opening;
    }
  }
  while (!closing_ && idle_n + opening < opts_.min_idle && open_one()) {
    ++opening;
  }
  if (head_ != kNoWaiter) {
    serve();
  }
}

void Pool::close() noexcept {
  if (closing_) {
    return;
  }
  closing_ = true;
  loop_.timers().cancel(tick_);
  while (head_ != kNoWaiter) {
    Waiter& w = waiters_[head_];
    const AcquireFn fn = w.fn;
    void* const ctx = w.ctx;
    unlink(w);
    fn(ctx, fail(client_errc::closed));
  }
  for (std::uint32_t i = 0; i < opts_.max_size; ++i) {
    Member& m = members_[i];
    if (m.state != Member::State::lent) {  // lent ones close when they come back
      m.state = Member::State::closing;
      m.client->close();
    }
  }
}

bool Pool::idle() const noexcept {
  for (std::uint32_t i = 0; i < opts_.max_size; ++i) {
    if (!members_[i].client->idle()) {
      return false;
    }
  }
  return true;
}

std::uint32_t Pool::size() const noexcept {
  std::uint32_t n = 0;
  for (std::uint32_t i = 0; i < opts_.max_size; ++i) {
    const Member::State s = members_[i].state;
    if (s == Member::State::opening || s == Member::State::idle || s == Member::State::lent) {
      ++n;
    }
  }
  return n;
}

std::uint32_t Pool::available() const noexcept {
  std::uint32_t n = 0;
  for (std::uint32_t i = 0; i < opts_.max_size; ++i) {
    if (members_[i].state == Member::State::idle && members_[i].ready) {
      ++n;
    }
  }
  return n;
}

}  // namespace weft::client
