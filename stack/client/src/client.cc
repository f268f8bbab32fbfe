#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include <weft/base/log.h>
#include <weft/platform/error.h>

#include "client_impl.h"

namespace weft::client {

namespace detail {

// Control frames (HELLO, CANCEL, PING, SUBSCRIBE, ...) are a few hundred bytes at most:
// encoded on the stack and copied; larger one-way frames go through one pool buffer.
constexpr std::size_t kSmallFrame = 512;

Result<void> send_frame(Conn& c, const Frame& f) noexcept {
  const std::size_t n = msg::encoded_size(f);
  if (n <= kSmallFrame) {
    std::byte b[kSmallFrame];
    if (auto e = msg::encode(f, {b, n}); !e) {
      return fail(e.error());
    }
    return c.send_copy({b, n});
  }
  platform::BufferPool& pool = c.loop().pool();
  if (n > pool.buffer_size()) {
    return fail(msg::msg_errc::too_large);
  }
  const platform::BufId id = pool.acquire();
  if (id == platform::kNoBuf) {
    return fail(platform_errc::no_buffers);
  }
  BufRef ref(&pool, id);
  if (auto e = msg::encode(f, pool.span(id)); !e) {
    return fail(e.error());
  }
  return c.send_ref(ref, {ref.data(), n});
}

}  // namespace detail

namespace {

std::error_code protocol_error(std::uint16_t code) noexcept {
  // §6.5: unknown codes are read as internal.
  if (code < static_cast<std::uint16_t>(ProtocolError::bad_frame) ||
      code > static_cast<std::uint16_t>(ProtocolError::permission_denied)) {
    code = static_cast<std::uint16_t>(ProtocolError::internal);
  }
  return msg::make_error_code(static_cast<ProtocolError>(code));
}

}  // namespace

// ---- Link: the Handler of one connection ----------------------------------------------------

void Link::on_open(Conn& c) noexcept {
  // Health is the owner's business (ping(), the pool's checks): an idle client connection is
  // normal, so only the read and write deadlines of the Config stay.
  platform::Timeouts t = c.timeouts();
  t.idle_ms = 0;
  c.set_timeouts(t);
  state = State::hello;
  msg::Hello h;
  h.max_frame = client->opts_.max_frame;
  // This client serves no methods (a server REQUEST gets unknown_method), but announces room
  // for one so that a server which checks the limits does not refuse the HELLO.
  h.max_inflight = 1;
  if (!send_frame(c, msg::make_hello(h))) {
    c.abort(make_error_code(platform_errc::no_buffers));
    return;
  }
  client->loop_.timers().schedule(hello_timer,
                                  client->loop_.now_ms() + client->opts_.connect_timeout_ms);
}

void Link::on_data(Conn& c, platform::BufView in) noexcept {
  std::span<const std::byte> bytes = in.bytes;
  while (!bytes.empty() && c.open()) {
    const frame::Decoded d = dec.feed(bytes);
    if (d.state == frame::DecodeState::error) {
      c.abort(dec.error());  // oversize: the server ignored our max_frame
      return;
    }
    bytes = bytes.subspan(d.consumed);
    if (d.state == frame::DecodeState::ready) {
      client->link_frame(*this, c, dec.frame());
    }
  }
  c.set_mid_message(dec.mid_frame());
}

void Link::on_writable(Conn& c) noexcept {
  if (subs_pending && state == State::ready) {
    client->send_subs(*this);
  }
  (void)c;
  client->pump();
}

void Link::on_drain(Conn& c) noexcept {
  // The loop is shutting down: nothing will reconnect.
  client->close();
  c.close();
}

void Link::on_close(Conn&, std::error_code why) noexcept {
  client->link_closed(*this, why);
}

// ---- creation --------------------------------------------------------------------------------

Client::Client(platform::Loop& loop, const Options& options) noexcept
    : loop_(loop), opts_(options) {}

Client::~Client() {
  // The Loop must have let go of the links (idle(), or the loop stopped): only timers remain.
  platform::TimerWheel& w = loop_.timers();
  w.cancel(reconnect_timer_);
  w.cancel(ping_timer_);
  if (links_) {
    for (std::uint32_t i = 0; i < kLinks; ++i) {
      w.cancel(links_[i].hello_timer);
    }
  }
  if (slots_) {
    for (std::uint32_t i = 0; i < cap_; ++i) {
      w.cancel(slots_[i].deadline_timer);
      w.cancel(slots_[i].retry_timer);
    }
  }
}

Result<std::unique_ptr<Client>> Client::create(platform::Loop& loop,
                                               const Options& options) noexcept {
  if (options.max_calls == 0 || options.max_calls > 65536 || options.max_frame < 64 ||
      options.reconnect_min_ms == 0 || options.reconnect_min_ms > options.reconnect_max_ms ||
      options.retry_min_ms == 0 || options.retry_min_ms > options.retry_max_ms ||
      options.max_subscriptions > 4096 || options.connect_timeout_ms == 0) {
    return fail(platform_errc::invalid_argument);
  }
  std::unique_ptr<Client> c(new (std::nothrow) Client(loop, options));
  if (!c) {
    return fail_errno(ENOMEM);
  }
  if (auto r = c->init(); !r) {
    return fail(r.error());
  }
  return c;
}

Result<void> Client::init() noexcept {
  cap_ = 1;
  while (cap_ < opts_.max_calls) {
    cap_ <<= 1;
  }
  links_.reset(new (std::nothrow) Link[kLinks]);
  slots_.reset(new (std::nothrow) Slot[cap_]);
  subs_.reset(new (std::nothrow) Sub[std::max<std::uint32_t>(opts_.max_subscriptions, 1)]);
  if (!links_ || !slots_ || !subs_) {
    return fail_errno(ENOMEM);
  }
  for (std::uint32_t i = 0; i < kLinks; ++i) {
    Link& l = links_[i];
    l.client = this;
    l.index = static_cast<std::uint8_t>(i);
    l.dec = frame::LengthPrefixDecoder({frame::PrefixKind::u32_be, opts_.max_frame});
    l.assembly.reset(new (std::nothrow) std::byte[opts_.max_frame]);
    if (!l.assembly) {
      return fail_errno(ENOMEM);
    }
    (void)l.dec.set_assembly({l.assembly.get(), opts_.max_frame});
    l.hello_timer.ctx = &l;
    l.hello_timer.fn = [](TimerNode* n) noexcept {
      Link& link = *static_cast<Link*>(n->ctx);
      if (Conn* c = link.client->loop_.find(link.conn)) {
        c->abort(make_error_code(platform_errc::timed_out));
      }
    };
  }
  for (std::uint32_t i = 0; i < cap_; ++i) {
    Slot& s = slots_[i];
    s.client = this;
    s.index = i;
    s.next = i + 1 < cap_ ? i + 1 : kNil;
    s.deadline_timer.ctx = &s;
    s.deadline_timer.fn = &Client::on_call_timer;
    s.retry_timer.ctx = &s;
    s.retry_timer.fn = &Client::on_call_timer;
  }
  free_head_ = 0;
  queue_head_ = queue_tail_ = kNil;
  reconnect_timer_.ctx = this;
  reconnect_timer_.fn = &Client::on_reconnect_timer;
  ping_timer_.ctx = this;
  ping_timer_.fn = &Client::on_ping_timer;
  rng_ = opts_.seed;
  if (rng_ == 0 && ::getrandom(&rng_, sizeof rng_, 0) != static_cast<ssize_t>(sizeof rng_)) {
    return fail_errno(errno);
  }
  return {};
}

platform::Handler* Client::create(Conn& c) noexcept {
  return c.context<Link>();
}

// ---- connections -------------------------------------------------------------------------------

Result<void> Client::connect(const platform::Address& addr) noexcept {
  if (closing_) {
    if (!idle()) {
      return fail(client_errc::closed);
    }
    closing_ = false;  // closed and idle: may start again (a pool reopening a member)
    started_ = false;
  }
  if (started_) {
    return fail(platform_errc::invalid_argument);
  }
  started_ = true;
  addr_ = addr;
  Link& l = links_[0];
  platform::ConnectOptions co;
  co.timeout_ms = opts_.connect_timeout_ms;
  co.context = platform::Context::of(&l);
  auto id = loop_.connect(addr_, *this, co);
  if (!id) {
    if (!opts_.reconnect) {
      started_ = false;
      return fail(id.error());
    }
    notify_failure(id.error(), false);
    schedule_reconnect();
    return {};
  }
  l.conn = id.value();
  l.state = Link::State::connecting;
  return {};
}

void Client::start_link() noexcept {
  if (closing_ || !started_) {
    return;
  }
  Link* l = nullptr;
  for (std::uint32_t i = 0; i < kLinks; ++i) {
    const Link::State st = links_[i].state;
    if (st == Link::State::connecting || st == Link::State::hello || st == Link::State::ready) {
      return;  // one is on its way or serving already
    }
    if (st == Link::State::idle && l == nullptr) {
      l = &links_[i];
    }
  }
  if (l == nullptr) {
    return;  // both links busy draining: the first to close starts the next
  }
  l->dec.reset();
  l->inflight = 0;
  l->last_id = 0;
  l->subs_pending = false;
  platform::ConnectOptions co;
  co.timeout_ms = opts_.connect_timeout_ms;
  co.context = platform::Context::of(l);
  auto id = loop_.connect(addr_, *this, co);
  if (!id) {
    if (id.error() == platform_errc::shutting_down) {
      close();
      return;
    }
    // Category and value, not message(): no string is built on a path a dead server repeats.
    log(LogLevel::debug, "client: connect failed: %s:%d", id.error().category().name(),
        id.error().value());
    notify_failure(id.error(), false);
    schedule_reconnect();
    return;
  }
  l->conn = id.value();
  l->state = Link::State::connecting;
}

void Client::schedule_reconnect() noexcept {
  if (closing_ || !opts_.reconnect || reconnect_timer_.scheduled()) {
    return;
  }
  const std::uint64_t wait =
      jitter(opts_.reconnect_min_ms, opts_.reconnect_max_ms, reconnect_attempt_);
  ++reconnect_attempt_;
  loop_.timers().schedule(reconnect_timer_, loop_.now_ms() + wait);
}

void Client::on_reconnect_timer(TimerNode* n) noexcept {
  static_cast<Client*>(n->ctx)->start_link();
}

void Client::link_ready(Link& l) noexcept {
  l.state = Link::State::ready;
  known_max_frame_ = l.peer_max_frame;
  reconnect_attempt_ = 0;
  ++stats_.connects;
  send_subs(l);
  notify_state();
  pump();
}

void Client::link_closed(Link& l, std::error_code why) noexcept {
  const bool served = l.state == Link::State::ready || l.state == Link::State::draining;
  loop_.timers().cancel(l.hello_timer);
  l.state = Link::State::idle;
  l.conn = {};
  l.inflight = 0;
  if (served) {
    ++stats_.disconnects;
  }
  if (why) {
    log(LogLevel::debug, "client: connection closed: %s:%d", why.category().name(), why.value());
  }
  for (std::uint32_t i = 0; i < cap_; ++i) {
    Slot& s = slots_[i];
    if (s.link != l.index) {
      continue;
    }
    if (s.state == Slot::State::cancelled) {
      free_slot(s);
    } else if (s.state == Slot::State::sent) {
      attempt_failed(s, make_error_code(client_errc::connection_lost));
    }
  }
  if (ping_fn_ != nullptr && ping_link_ == l.index) {
    ping_done(fail(client_errc::connection_lost));
  }
  notify_state();
  if (closing_) {
    return;
  }
  if (why != client_errc::connection_lost) {  // reset() aborts with connection_lost
    notify_failure(why ? why : make_error_code(client_errc::connection_lost), served);
  }
  if (closing_) {
    return;  // the failure hook closed us
  }
  if (opts_.reconnect) {
    if (active() == nullptr) {
      if (served) {
        start_link();  // at once after a working connection; backoff after a failed one
      } else {
        schedule_reconnect();
      }
    }
    return;
  }
  if (!ready()) {
    // No reconnection: what waits for a connection would wait forever.
    while (queue_head_ != kNil) {
      Slot& s = slots_[queue_head_];
      unqueue(s);
      complete(s, fail(client_errc::not_connected));
    }
  }
}

Link* Client::active() noexcept {
  for (std::uint32_t i = 0; i < kLinks; ++i) {
    if (links_[i].state == Link::State::ready) {
      return &links_[i];
    }
  }
  return nullptr;
}

bool Client::ready() const noexcept {
  for (std::uint32_t i = 0; i < kLinks; ++i) {
    if (links_[i].state == Link::State::ready) {
      return true;
    }
  }
  return false;
}

bool Client::idle() const noexcept {
  for (std::uint32_t i = 0; i < kLinks; ++i) {
    if (links_[i].live()) {
      return false;
    }
  }
  return pending_ == 0;
}

void Client::notify_state() noexcept {
  const bool r = ready();
  if (r != was_ready_) {
    was_ready_ = r;
    if (opts_.on_state != nullptr) {
      opts_.on_state(opts_.state_ctx, r);
    }
  }
}

void Client::notify_failure(std::error_code why, bool was_ready) noexcept {
  if (opts_.on_failure != nullptr) {
    opts_.on_failure(opts_.state_ctx, why, was_ready);
  }
}

void Client::close() noexcept {
  if (closing_) {
    return;
  }
  closing_ = true;
  loop_.timers().cancel(reconnect_timer_);
  queue_head_ = queue_tail_ = kNil;
  for (std::uint32_t i = 0; i < cap_; ++i) {
    Slot& s = slots_[i];
    if (s.state == Slot::State::cancelled) {
      free_slot(s);
    } else if (s.state != Slot::State::free) {
      complete(s, fail(client_errc::closed));
    }
  }
  if (ping_fn_ != nullptr) {
    ping_done(fail(client_errc::closed));
  }
  for (std::uint32_t i = 0; i < kLinks; ++i) {
    if (Conn* c = loop_.find(links_[i].conn)) {
      c->close();
    }
  }
  notify_state();
}

void Client::reset() noexcept {
  for (std::uint32_t i = 0; i < kLinks; ++i) {
    if (Conn* c = loop_.find(links_[i].conn)) {
      c->abort(make_error_code(client_errc::connection_lost));
    }
  }
}

// ---- received frames -------------------------------------------------------------------------

void Client::hello_ack(Link& l, Conn& c, std::span<const std::byte> raw) noexcept {
  Result<Frame> f = msg::parse(raw);
  if (f && f->type == FrameType::error && f->id == 0) {
    c.abort(protocol_error(f->code));  // unsupported_version, or the server refused us
    return;
  }
  // §6.4: the server answers with the version it chose, min(ours, its highest); we speak
  // only version 1, so anything else (or no usable limits) ends the connection.
  if (!f || f->type != FrameType::hello_ack || f->hello.version != msg::kProtocolVersion ||
      f->hello.max_inflight == 0 || f->hello.max_frame < msg::kHeaderSize + 16) {
    c.abort(make_error_code(client_errc::bad_hello));
    return;
  }
  loop_.timers().cancel(l.hello_timer);
  l.peer_max_frame = f->hello.max_frame;
  l.peer_max_inflight = f->hello.max_inflight;
  link_ready(l);
}

void Client::link_frame(Link& l, Conn& c, std::span<const std::byte> raw) noexcept {
  if (l.state == Link::State::hello) {
    hello_ack(l, c, raw);
    return;
  }
  Result<Frame> parsed = msg::parse(raw);
  if (!parsed) {
    (void)send_frame(c, msg::make_error(0, ProtocolError::bad_frame));
    c.close();
    return;
  }
  const Frame& f = parsed.value();
  switch (f.type) {
    case FrameType::response:
      answered(l, f.id, {}, f.payload);
      return;
    case FrameType::error:
      if (f.id == 0) {
        const std::error_code e = protocol_error(f.code);
        if (msg::is_connection_fatal(static_cast<ProtocolError>(e.value()))) {
          c.abort(e);  // §6.5: the server closes too
        } else {
          // §6.9: a MESSAGE, SUBSCRIBE, UNSUBSCRIBE or PUBLISH failed; the connection stays.
          ++stats_.stream_errors;
          log(LogLevel::debug, "client: server reported %s for a one-way frame",
              msg::to_string(static_cast<ProtocolError>(e.value())));
        }
      } else {
        answered(l, f.id, protocol_error(f.code), {});
      }
      return;
    case FrameType::event:
      if (Sub* s = find_sub(f.topic); s != nullptr && s->fn != nullptr) {
        ++stats_.events;
        s->fn(s->ctx, f.topic, f.payload);
      }
      return;
    case FrameType::ping:
      (void)send_frame(c, msg::make_pong(f.id, f.payload));
      return;
    case FrameType::pong:
      if (ping_fn_ != nullptr && f.id == ping_id_ && ping_link_ == l.index) {
        ping_done(loop_.now_ms() - ping_sent_);
      }
      return;
    case FrameType::goaway:
      goaway(l, f.last_id);
      return;
    case FrameType::request:
      (void)send_frame(c, msg::make_error(f.id, ProtocolError::unknown_method));
      return;
    case FrameType::message:  // no methods are served here: dropped (§6.3)
    case FrameType::cancel:   // of a request we never got
      return;
    default:  // HELLO again, or a client-only frame from the server
      (void)send_frame(c, msg::make_error(0, ProtocolError::bad_frame));
      c.close();
      return;
  }
}

void Client::goaway(Link& l, std::uint32_t last_id) noexcept {
  if (l.state != Link::State::ready) {
    return;
  }
  l.state = Link::State::draining;
  // §6.3: REQUESTs above last_id were not run.
  for (std::uint32_t i = 0; i < cap_; ++i) {
    Slot& s = slots_[i];
    if (s.link == l.index && s.state != Slot::State::free && s.state != Slot::State::queued &&
        s.state != Slot::State::backoff && s.id > last_id) {
      --l.inflight;
      if (s.state == Slot::State::cancelled) {
        free_slot(s);
      } else {
        attempt_failed(s, msg::make_error_code(ProtocolError::shutting_down));
      }
    }
  }
  notify_state();
  start_link();  // new calls go to a new connection
  if (l.inflight == 0) {
    if (Conn* c = loop_.find(l.conn)) {
      c->close();
    }
  }
}

// ---- randomness ------------------------------------------------------------------------------

std::uint64_t Client::random() noexcept {
  // splitmix64: a bijection of a counter, so the keys of one client never repeat within 2^64
  // calls; the getrandom() seed makes them unpredictable and distinct between clients.
  std::uint64_t z = (rng_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::uint64_t Client::jitter(std::uint32_t min_ms, std::uint32_t max_ms,
                             std::uint32_t attempt) noexcept {
  // Exponential backoff with "equal jitter": uniform in [d/2, d], so clients that lost the
  // same server spread out but none retries at once.
  std::uint64_t d = static_cast<std::uint64_t>(min_ms) << std::min<std::uint32_t>(attempt, 20);
  d = std::min<std::uint64_t>(d, max_ms);
  const std::uint64_t half = d / 2;
  return half + random() % (d - half + 1);
}

}  // namespace weft::client
