// The Loop: creation, dispatch of completions, connection life cycle and the iteration.
// The other units: conn.cc (API), out_queue.cc, acceptor.cc, mailbox.cc, deadlines.cc.
#include <weft/base/assert.h>
#include <weft/base/log.h>
#include <weft/platform/error.h>
#include <weft/platform/loop.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <new>

#include "acceptor.h"
#include "backend.h"
#include "conn_table.h"
#include "mailbox.h"

namespace weft::platform {
namespace {

// Completions harvested per wait: large enough that one iteration serves 64 busy
// connections with room for their sends, small enough to stay in L1 (256 x 24 bytes).
constexpr std::size_t kBatch = 256;

std::error_code sys_error(int neg) {
  return {neg < 0 ? -neg : neg, std::system_category()};
}

Timeouts timeouts_of(const Config& cfg) {
  return {cfg.idle_timeout_ms, cfg.read_timeout_ms, cfg.write_timeout_ms};
}

}  // namespace

// ---- creation

Loop::Loop(const Config& cfg, std::uint32_t index, SharedBuffers* shared) noexcept
    : cfg_(cfg), index_(index), shared_(shared) {}

Result<std::unique_ptr<Loop>> Loop::create(const Config& cfg, std::uint32_t index,
                                           SharedBuffers* shared) noexcept {
  if (auto v = cfg.validate(); !v) {
    return fail(v.error());
  }
  std::unique_ptr<Loop> loop(new (std::nothrow) Loop(cfg, index, shared));
  if (!loop) {
    return fail_errno(ENOMEM);
  }
  if (auto r = loop->init(); !r) {
    return fail(r.error());
  }
  return loop;
}

Result<void> Loop::init() noexcept {
  if (auto r =
          pool_.init(cfg_.recv_buffers + cfg_.send_buffers, cfg_.buffer_size, cfg_.recv_buffers);
      !r) {
    return r;
  }
  const std::uint32_t slots = cfg_.slots();
  if (auto r = segments_.init(cfg_.out_queues != 0 ? cfg_.out_queues : slots, cfg_.max_out_iov,
                              cfg_.pinned_recv_limit(), &pool_, shared_);
      !r) {
    return r;
  }
  detail::BackendOptions bo;
  bo.kind = cfg_.backend;
  bo.uring_entries = cfg_.uring_entries;
  bo.max_slots = slots + kMaxListeners + 1;
  bo.pool = &pool_;
  bo.recv_incremental = cfg_.recv_incremental;
  auto choice = detail::make_backend(bo);
  if (!choice) {
    return fail(choice.error());
  }
  backend_ = std::move(choice.value().backend);
  backend_kind_ = backend_->kind();
  flush_early_ = backend_kind_ == BackendKind::epoll;
  if (choice.value().fallback_reason[0] != '\0') {
    log(index_ == 0 ? LogLevel::info : LogLevel::debug,
        "worker %u: backend epoll (io_uring not used: %s)", index_, choice.value().fallback_reason);
  } else {
    log(index_ == 0 ? LogLevel::info : LogLevel::debug, "worker %u: backend %s%s", index_,
        to_string(backend_kind_), backend_->incremental() ? " (incremental receive buffers)" : "");
  }

  conns_.reset(new (std::nothrow) detail::ConnTable);
  acceptor_.reset(new (std::nothrow) detail::Acceptor(*this));
  mailbox_.reset(new (std::nothrow) detail::Mailbox(*this));
  completions_.reset(new (std::nothrow) detail::Completion[kBatch]);
  const std::uint32_t stash_nodes = cfg_.recv_buffers + 4 * kBatch;
  stash_nodes_.reset(new (std::nothrow) StashNode[stash_nodes]);
  if (stash_nodes_) {
    for (std::uint32_t i = stash_nodes; i-- > 0;) {
      stash_nodes_[i].next = stash_free_;
      stash_free_ = i;
    }
  }
  if (!conns_ || !acceptor_ || !mailbox_ || !completions_ || !stash_nodes_ ||
      !conns_->init(this, cfg_.max_connections, cfg_.outbound_connections)) {
    return fail_errno(ENOMEM);
  }
  // Outbound peers' addresses (the backend reads them until the connect completes): mapped,
  // so only slots that ever connected out touch their page.
  connect_addr_bytes_ = static_cast<std::size_t>(slots) * sizeof(Address);
  void* mem = ::mmap(nullptr, connect_addr_bytes_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    return fail_errno(errno);
  }
  connect_addr_ = static_cast<Address*>(mem);
  for (std::uint32_t i = 0; i < slots; ++i) {
    Conn& c = conns_->at(i);
    c.timer_.ctx = &c;
    c.timer_.fn = [](TimerNode* n) {
      Conn* conn = static_cast<Conn*>(n->ctx);
      conn->loop_->on_conn_timer(*conn);
    };
  }
  drain_timer_.ctx = this;
  drain_timer_.fn = [](TimerNode* n) {
    static_cast<Loop*>(n->ctx)->abort_all(make_error_code(platform_errc::shutting_down));
  };
  if (auto r = mailbox_->init(); !r) {
    return r;
  }
  backend_->watch(mailbox_->wake_fd(), detail::pack_user_data(detail::Op::wake, 0, wake_slot()));
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  start_ns_ = static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull +
              static_cast<std::uint64_t>(ts.tv_nsec);
  now_ = 0;
  return {};
}

Loop::~Loop() {
  // Normal shutdown finalizes every connection before run() returns; this covers loops
  // destroyed without running (start-up failures) or tests that stop mid-way.
  if (conns_) {
    for (std::uint32_t i = 0; i < conns_->size(); ++i) {
      Conn& c = conns_->at(i);
      if (c.state_ != Conn::State::free && c.fd_ >= 0) {
        ::close(c.fd_);
      }
    }
  }
  if (acceptor_) {
    acceptor_->close_fds();
  }
  backend_.reset();  // before the pool: the io_uring buffer ring points into it
  if (connect_addr_ != nullptr) {
    ::munmap(connect_addr_, connect_addr_bytes_);
  }
}

std::uint32_t Loop::wake_slot() const noexcept {
  return cfg_.slots() + kMaxListeners;
}

// ---- services, connections, posts

Result<std::uint32_t> Loop::add_listener(int fd, HandlerFactory& factory, bool hand_off) noexcept {
  return acceptor_->add_listener(fd, factory, hand_off);
}

Result<std::uint32_t> Loop::add_service(HandlerFactory& factory) noexcept {
  return acceptor_->add_service(factory);
}

void Loop::set_accept_targets(std::span<Loop* const> targets) noexcept {
  acceptor_->set_targets(targets);
}

std::uint32_t Loop::active_connections() const noexcept {
  return conns_->active();
}

Conn* Loop::find(ConnId id) noexcept {
  if (id.worker != index_) {
    return nullptr;
  }
  return conns_->find(id.slot, id.gen);
}

Loop* Loop::peer(std::uint32_t i) const noexcept {
  if (n_loops_ == 0) {
    return i == 0 ? const_cast<Loop*>(this) : nullptr;
  }
  return mailbox_->peer(i);
}

void Loop::connect_rings(std::span<Loop* const> loops, std::span<PostRing* const> ring_to,
                         std::span<PostRing* const> ring_from) noexcept {
  n_loops_ = static_cast<std::uint32_t>(loops.size());
  mailbox_->connect(loops, ring_to, ring_from);
}

Result<void> Loop::post(std::uint32_t target, const Post& p) noexcept {
  return mailbox_->post(target, p);
}

Result<void> Loop::defer(const Post& p) noexcept {
  return mailbox_->defer(p);
}

Result<void> Loop::inject(const Post& p) noexcept {
  return mailbox_->inject(p);
}

void Loop::set_post_room_handler(PostRoomFn fn, void* ctx) noexcept {
  mailbox_->set_room_handler(fn, ctx);
}

std::size_t Loop::discard_posts() noexcept {
  draining_ = true;  // hand-offs found now are refused (closed and counted)
  return mailbox_->discard();
}

void Loop::open_accepted(int fd, std::uint32_t service) noexcept {
  HandlerFactory* factory = acceptor_->service(service);
  Conn* c = draining_ || factory == nullptr ? nullptr : conns_->alloc(false);
  if (c == nullptr) {
    // Over Config::max_connections (or draining): accepted and closed at once, so the
    // backlog keeps moving and established connections are not disturbed.
    ::close(fd);
    stats_.rejected.add();
    return;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly on AF_UNIX
  c->fd_ = fd;
  c->state_ = Conn::State::open;
  c->factory_ = factory;
  c->timeouts_ = timeouts_of(cfg_);
  c->handler_ = factory->create(*c);
  if (c->handler_ == nullptr) {
    ::close(fd);
    conns_->release(*c);
    stats_.rejected.add();
    return;
  }
  stats_.accepted.add();
  start_conn(*c);
}

void Loop::start_conn(Conn& c) noexcept {
  c.last_activity_ = c.send_progress_ = c.mid_since_ = now_;
  if (c.timeouts_.idle_ms != 0) {
    arm_deadline(c, now_ + c.timeouts_.idle_ms);
  }
  c.handler_->on_open(c);
  update_reading(c);
}

Result<ConnId> Loop::connect(const Address& addr, HandlerFactory& factory,
                             const ConnectOptions& options) noexcept {
  if (draining_) {
    return fail(platform_errc::shutting_down);
  }
  Conn* c = conns_->alloc(true);
  if (c == nullptr) {
    return fail(platform_errc::connection_limit);
  }
  const int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const int e = errno;
    conns_->release(*c);
    return fail_errno(e);
  }
  c->fd_ = fd;
  c->state_ = Conn::State::connecting;
  c->factory_ = &factory;
  c->context_ = options.context;
  c->timeouts_ = timeouts_of(cfg_);
  c->handler_ = factory.create(*c);
  if (c->handler_ == nullptr) {
    ::close(fd);
    conns_->release(*c);
    return fail(platform_errc::closed);
  }
  if (!addr.is_unix()) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  Address* peer = &connect_addr_[c->slot_];
  std::memcpy(static_cast<void*>(peer), &addr, sizeof addr);
  ++c->inflight_;
  backend_->connect(fd, peer, detail::pack_user_data(detail::Op::connect, c->gen_, c->slot_));
  const std::uint32_t timeout =
      options.timeout_ms != 0 ? options.timeout_ms : cfg_.connect_timeout_ms;
  if (timeout != 0) {
    c->close_deadline_ = now_ + timeout;
    arm_deadline(*c, c->close_deadline_);
  }
  return c->id();
}

// ---- reading, writing

void Loop::update_reading(Conn& c) noexcept {
  bool want = false;
  if (c.state_ == Conn::State::open) {
    // Held input goes first: no new receive while any is stashed (deliver_stash re-arms),
    // so what arrives after a pause is bounded by one batch of completions.
    want = !c.has(Conn::kEof | Conn::kPausedUser | Conn::kPausedWatermark | Conn::kParked) &&
           c.stash_head_ == kNoStash;
  } else if (c.state_ == Conn::State::closing) {
    want = !c.has(Conn::kEof | Conn::kParked);  // lingering: read and discard until the FIN
  }
  if (want && !c.has(Conn::kRecvArmed)) {
    c.set(Conn::kRecvArmed);
    ++c.inflight_;
    backend_->recv(c.fd_, detail::pack_user_data(detail::Op::recv, c.gen_, c.slot_));
  } else if (!want && c.has(Conn::kRecvArmed) && !c.has(Conn::kRecvCancelling)) {
    c.set(Conn::kRecvCancelling);
    backend_->cancel(c.fd_, detail::pack_user_data(detail::Op::recv, c.gen_, c.slot_));
  }
}

void Loop::watermark_reached(Conn& c) noexcept {
  if (c.has(Conn::kNoWatermarkPause)) {
    c.set(Conn::kAboveHigh);  // reading goes on; on_writable below the low watermark
    return;
  }
  c.set(Conn::kPausedWatermark);
  update_reading(c);
}

void Loop::clear_parked(Conn& c) noexcept {
  c.clear(Conn::kParked);
  --parked_n_;
}

void Loop::unpaused(Conn& c) noexcept {
  update_reading(c);  // arms nothing while input is held: deliver_stash re-arms
  if (c.stash_head_ != kNoStash || c.has(Conn::kEofPending)) {
    resume_.push(c);  // at the end of the iteration
  }
}

void Loop::no_room(Conn& c) noexcept {
  stats_.room_waits.add();
  want_room(c);
}

void Loop::want_room(Conn& c) noexcept {
  c.set(Conn::kWantRoom);
  room_.push(c);
}

void Loop::flush(Conn& c) noexcept {
  if (c.has(Conn::kSendInflight) || c.out_.empty() ||
      (c.state_ != Conn::State::open && c.state_ != Conn::State::closing)) {
    return;
  }
  const msghdr* msg = c.out_.begin_send(segments_);
  c.set(Conn::kSendInflight);
  ++c.inflight_;
  stats_.sends.add();
  backend_->send(c.fd_, msg, detail::pack_user_data(detail::Op::send, c.gen_, c.slot_));
}

void Loop::continue_close(Conn& c) noexcept {
  // Graceful close, step by step: flush -> FIN -> wait for the peer's FIN (or linger) -> done.
  if (c.state_ != Conn::State::closing) {
    return;
  }
  if (!c.has(Conn::kShutWr) && c.out_.empty() && !c.has(Conn::kSendInflight)) {
    ::shutdown(c.fd_, SHUT_WR);
    c.set(Conn::kShutWr);
    c.close_deadline_ = now_ + cfg_.linger_ms;
    arm_deadline(c, c.close_deadline_);
  }
  if (c.has(Conn::kShutWr) && c.has(Conn::kEof)) {
    begin_abort(c, c.reason_);  // both directions done: a clean close (or the reason set)
    return;
  }
  update_reading(c);
}

// ---- completions

void Loop::dispatch(const detail::Completion& cq) noexcept {
  const detail::Op op = detail::user_data_op(cq.user_data);
  const std::uint32_t slot = detail::user_data_slot(cq.user_data);
  switch (op) {
    case detail::Op::accept:
      acceptor_->on_accept(slot - cfg_.slots(), cq);
      return;
    case detail::Op::wake:
      on_wake();
      return;
    case detail::Op::recv:
    case detail::Op::send:
    case detail::Op::connect:
      break;
    default:
      return;
  }
  if (slot >= conns_->size()) {
    return;
  }
  Conn& c = conns_->at(slot);
  if ((c.gen_ & 0xffffffu) != detail::user_data_gen(cq.user_data) ||
      c.state_ == Conn::State::free) {
    // A completion for an earlier occupant of the slot: drop it (its buffer goes back).
    if (cq.buf != kNoBuf) {
      pool_.unref(cq.buf);
    }
    return;
  }
  if (op == detail::Op::recv) {
    on_recv(c, cq);
  } else if (op == detail::Op::send) {
    on_send(c, cq);
  } else {
    on_connect(c, cq);
  }
  maybe_finalize(c);
}

void Loop::on_recv(Conn& c, const detail::Completion& cq) noexcept {
  if (cq.result > 0) {
    stats_.bytes_in.add(static_cast<std::uint64_t>(cq.result));
    stats_.recv_completions.add();
    c.last_activity_ = now_;
    if (c.state_ == Conn::State::open) {
      if (c.has(Conn::kPausedUser) || c.stash_head_ != kNoStash) {
        // Arrived after pause_reading(): hold it (the core's reference), in order.
        if (!stash(c, cq.buf, cq.offset, static_cast<std::uint32_t>(cq.result))) {
          // No stash node left: the input cannot be kept in order, so the connection goes.
          begin_abort(c, sys_error(ENOBUFS));
        }
      } else {
        c.handler_->on_data(
            c, BufView{{pool_.data(cq.buf) + cq.offset, static_cast<std::size_t>(cq.result)},
                       cq.buf,
                       &pool_});
        pool_.unref(cq.buf);  // the core's reference; the handler took its own if it kept any
      }
    } else {
      pool_.unref(cq.buf);  // closing: read and discard
    }
  }
  if (cq.more) {
    return;
  }
  c.clear(Conn::kRecvArmed | Conn::kRecvCancelling);
  --c.inflight_;
  if (cq.result == 0) {
    c.set(Conn::kEof);
    if (c.state_ == Conn::State::open && (c.has(Conn::kPausedUser) || c.stash_head_ != kNoStash)) {
      c.set(Conn::kEofPending);  // delivered after the held data
    } else if (c.state_ == Conn::State::open) {
      c.handler_->on_eof(c);
    } else if (c.state_ == Conn::State::closing) {
      continue_close(c);
    }
  } else if (cq.result == -ENOBUFS) {
    // Every receive buffer is in use. Nothing was lost: the bytes wait in the socket and
    // TCP pushes back on the peer. Re-armed when half the partition is free again.
    c.set(Conn::kParked);
    ++parked_n_;  // clear_parked() undoes both
    stats_.recv_parked.add();
    parked_.push(c);
  } else if (cq.result < 0 && cq.result != -ECANCELED) {
    begin_abort(c, sys_error(cq.result));
  }
  update_reading(c);
}

void Loop::on_send(Conn& c, const detail::Completion& cq) noexcept {
  c.clear(Conn::kSendInflight);
  --c.inflight_;
  if (cq.result < 0) {
    c.out_.end_send(segments_, 0);
    begin_abort(c, sys_error(cq.result));
    return;
  }
  const auto n = static_cast<std::size_t>(cq.result);
  stats_.bytes_out.add(n);
  c.out_.end_send(segments_, n);
  if (n != 0) {
    c.send_progress_ = now_;
    c.last_activity_ = now_;
  }
  if (!c.out_.empty()) {
    dirty_.push(c);
  }
  if (c.has(Conn::kPausedWatermark | Conn::kAboveHigh) && c.out_.bytes() <= cfg_.low_watermark) {
    if (c.has(Conn::kPausedWatermark)) {
      c.clear(Conn::kPausedWatermark);
      unpaused(c);
    }
    c.clear(Conn::kAboveHigh);
    if (c.state_ == Conn::State::open) {
      want_room(c);  // on_writable at the end of the iteration, as promised
    }
  }
  if (c.state_ == Conn::State::closing) {
    continue_close(c);
  }
}

void Loop::on_connect(Conn& c, const detail::Completion& cq) noexcept {
  --c.inflight_;
  if (c.state_ != Conn::State::connecting) {
    return;
  }
  if (cq.result < 0) {
    begin_abort(c, sys_error(cq.result));
    return;
  }
  c.state_ = Conn::State::open;
  c.close_deadline_ = 0;
  timers_.cancel(c.timer_);
  stats_.connected.add();
  start_conn(c);
}

void Loop::on_wake() noexcept {
  mailbox_->on_wake();
  backend_->watch(mailbox_->wake_fd(), detail::pack_user_data(detail::Op::wake, 0, wake_slot()));
  check_control();
}

void Loop::check_control() noexcept {
  if (stop_requested_.load(std::memory_order_acquire) && !stopping_) {
    stopping_ = true;
    start_drain(0);
    abort_all(make_error_code(platform_errc::shutting_down));
  }
  const std::uint32_t drain = drain_requested_ms_.load(std::memory_order_acquire);
  if (drain != 0 && !draining_) {
    start_drain(drain - 1);
  }
}

// ---- closing

void Loop::begin_abort(Conn& c, std::error_code reason) noexcept {
  if (c.state_ == Conn::State::closed || c.state_ == Conn::State::free) {
    return;
  }
  c.state_ = Conn::State::closed;
  c.reason_ = reason;
  if (c.fd_ >= 0) {
    backend_->cancel_all(c.fd_, c.slot_);  // each operation in flight completes, then finalize
  }
  timers_.cancel(c.timer_);
  maybe_finalize(c);
}

void Loop::maybe_finalize(Conn& c) noexcept {
  if (c.state_ == Conn::State::closed && c.inflight_ == 0) {
    final_.push(c);
  }
}

void Loop::finalize(Conn& c) noexcept {
  if (c.has(Conn::kParked)) {
    clear_parked(c);
  }
  drop_stash(c);
  c.out_.clear(segments_);
  ::close(c.fd_);
  c.fd_ = -1;
  timers_.cancel(c.timer_);
  stats_.closed.add();
  if (c.reason_) {
    if (c.reason_ == make_error_code(platform_errc::timed_out)) {
      stats_.timeouts.add();
    } else {
      stats_.errors.add();
    }
  }
  Handler* h = c.handler_;
  c.handler_ = nullptr;
  h->on_close(c, c.reason_);
  c.factory_->destroy(h);
  conns_->release(c);
}

void Loop::abort_all(std::error_code reason) noexcept {
  for (std::uint32_t i = 0; i < conns_->size(); ++i) {
    Conn& c = conns_->at(i);
    if (c.state_ != Conn::State::free && c.state_ != Conn::State::closed) {
      begin_abort(c, reason);
    }
  }
}

// ---- drain and stop

void Loop::start_drain(std::uint32_t drain_ms) noexcept {
  if (draining_) {
    return;
  }
  draining_ = true;
  acceptor_->close_listeners();
  timers_.schedule(drain_timer_, now_ + drain_ms);
  for (std::uint32_t i = 0; i < conns_->size(); ++i) {
    Conn& c = conns_->at(i);
    if (c.state_ == Conn::State::connecting) {
      begin_abort(c, make_error_code(platform_errc::shutting_down));
    } else if (c.state_ == Conn::State::open && !c.has(Conn::kDrained)) {
      c.set(Conn::kDrained);
      c.handler_->on_drain(c);
    }
  }
}

void Loop::request_stop() noexcept {
  stop_requested_.store(true, std::memory_order_release);
  mailbox_->wake();
}

void Loop::request_drain(std::uint32_t drain_ms) noexcept {
  drain_requested_ms_.store(drain_ms + 1, std::memory_order_release);
  mailbox_->wake();
}

// ---- the iteration

bool Loop::stash(Conn& c, BufId buf, std::uint32_t off, std::uint32_t len) noexcept {
  // Held input pins receive buffers like queued output does. No receive is armed while input
  // is held (update_reading), so what a paused connection holds is what had already
  // completed when it paused: with epoll one receive (kReadBudget = 1), with a multishot
  // receive the rest of that connection's completions in the batch, which can be most of
  // the receive partition. So (issue #13, section 2):
  // - a piece that continues the last one in the same buffer (incremental buffers) extends it;
  // - past the connection's pin limit (shared by its output queue and its held input), a
  //   piece is copied into a general buffer (appended to the last one while it has room)
  //   instead of pinning a receive buffer, as long as more than half the general buffers are
  //   free: the rest stay for output, which the handler needs to make room (send_copy);
  //   held input that took them all would wait on itself. Without one it stays pinned.
  // The tail is only meaningful while the stash is non-empty (delivery leaves it stale).
  StashNode* const last = c.stash_head_ != kNoStash ? &stash_nodes_[c.stash_tail_] : nullptr;
  if (last != nullptr && last->buf == buf && last->off + last->len == off) {
    last->len += len;
    pool_.unref(buf);  // the tail node already holds a reference to this buffer
    return true;
  }
  if (pool_.is_recv(buf) && c.stash_pins_ + c.out_.pinned() >= cfg_.pinned_recv_limit()) {
    if (last != nullptr && !pool_.is_recv(last->buf) &&
        last->off + last->len + len <= pool_.buffer_size()) {
      std::memcpy(pool_.data(last->buf) + last->off + last->len, pool_.data(buf) + off, len);
      last->len += len;
      pool_.unref(buf);
      ++stash_copies_;
      return true;
    }
    const BufId copy =
        pool_.free_general() > (pool_.count() - pool_.recv_count()) / 2 ? pool_.acquire() : kNoBuf;
    if (copy != kNoBuf) {
      std::memcpy(pool_.data(copy), pool_.data(buf) + off, len);
      pool_.unref(buf);
      ++stash_copies_;
      buf = copy;
      off = 0;
    }
  }
  const std::uint32_t n = stash_free_;
  if (n == kNoStash) {
    pool_.unref(buf);
    return false;
  }
  stash_free_ = stash_nodes_[n].next;
  stash_nodes_[n] = StashNode{buf, off, len, kNoStash};
  if (c.stash_head_ == kNoStash) {
    c.stash_head_ = n;
  } else {
    stash_nodes_[c.stash_tail_].next = n;
  }
  c.stash_tail_ = n;
  c.stash_pins_ += pool_.is_recv(buf) ? 1 : 0;
  if (hoarding(c)) {
    arm_deadline(c, now_ + kHoardStallMs);  // on_conn_timer: closed if others starve
  }
  return true;
}

void Loop::drop_stash(Conn& c) noexcept {
  while (c.stash_head_ != kNoStash) {
    const std::uint32_t n = c.stash_head_;
    c.stash_head_ = stash_nodes_[n].next;
    c.stash_pins_ -= pool_.is_recv(stash_nodes_[n].buf) ? 1 : 0;
    pool_.unref(stash_nodes_[n].buf);
    stash_nodes_[n].next = stash_free_;
    stash_free_ = n;
  }
}

void Loop::deliver_stash(Conn& c) noexcept {
  // Delivering held input is reading: it stops at either pause, like a receive would.
  while (c.stash_head_ != kNoStash && c.state_ == Conn::State::open &&
         !c.has(Conn::kPausedUser | Conn::kPausedWatermark)) {
    const std::uint32_t n = c.stash_head_;
    const StashNode node = stash_nodes_[n];
    c.stash_head_ = node.next;
    c.stash_pins_ -= pool_.is_recv(node.buf) ? 1 : 0;
    stash_nodes_[n].next = stash_free_;
    stash_free_ = n;
    c.handler_->on_data(c, BufView{{pool_.data(node.buf) + node.off, node.len}, node.buf, &pool_});
    pool_.unref(node.buf);
  }
  if (c.stash_head_ == kNoStash && c.has(Conn::kEofPending) && c.state_ == Conn::State::open &&
      !c.has(Conn::kPausedUser)) {
    c.clear(Conn::kEofPending);
    c.handler_->on_eof(c);
  }
  update_reading(c);  // the stash is empty, or a pause holds the rest
}

std::uint32_t Loop::park_threshold() const noexcept {
  // Half the receive partition, and at least one buffer (recv_buffers = 1 would otherwise
  // re-arm parked receives with nothing free: a busy loop).
  return std::max<std::uint32_t>(1, pool_.recv_count() / 2);
}

void Loop::update_clock() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  const std::uint64_t ns = static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull +
                           static_cast<std::uint64_t>(ts.tv_nsec);
  const std::uint64_t ms = ns > start_ns_ ? (ns - start_ns_) / 1000000ull : 0;
  if (ms > now_) {
    now_ = ms;
  }
}

void Loop::update_gauges() noexcept {
  stats_.recv_in_use.set(pool_.recv_count() - pool_.free_recv() - backend_->kernel_held());
  stats_.pinned_recv.set(segments_.pinned_total());
  stats_.pin_copies.set(segments_.pin_copies() + stash_copies_);
  stats_.active.set(conns_->active());
}

void Loop::end_iteration() noexcept {
  stats_.posts.add(mailbox_->process());
  for (detail::WorkList list = resume_.take(); Conn* c = list.pop();) {
    deliver_stash(*c);
  }
  // Connections whose send failed for lack of room, or whose output fell below the low
  // watermark: on_writable when there may be room. Those without room wait for a later
  // iteration (a send completion or a freed buffer comes first).
  for (detail::WorkList list = room_.take(); Conn* c = list.pop();) {
    if (!c->has(Conn::kWantRoom) || c->state_ != Conn::State::open) {
      c->clear(Conn::kWantRoom);
    } else if (c->out_.has_room(segments_)) {
      c->clear(Conn::kWantRoom);
      c->handler_->on_writable(*c);
    } else {
      room_.push(*c);
    }
  }
  // After held input was delivered and sends completed: buffers may be back.
  if (!parked_.empty() && pool_.free_recv() >= park_threshold()) {
    for (detail::WorkList list = parked_.take(); Conn* c = list.pop();) {
      if (c->has(Conn::kParked)) {
        clear_parked(*c);
        update_reading(*c);
      }
    }
  }
  while (Conn* c = dirty_.pop()) {
    flush(*c);
  }
  // Finalize after every callback of this iteration has run (never inside a slot's own).
  for (detail::WorkList list = final_.take(); Conn* c = list.pop();) {
    finalize(*c);
  }
  mailbox_->flush_wakes();
  if (draining_ && conns_->active() == 0 && !acceptor_->any_open()) {
    stopped_.store(true, std::memory_order_release);
    mailbox_->close();
  }
  update_gauges();
  stats_.loop_iterations.add();
}

bool Loop::run_once(int timeout_ms) noexcept {
  if (stopped()) {
    return false;
  }
  int wait_ms = -1;
  if (!dirty_.empty() || !final_.empty() || !resume_.empty() || mailbox_->has_local_work() ||
      (!parked_.empty() && pool_.free_recv() >= park_threshold())) {
    wait_ms = 0;
  } else {
    const std::uint64_t t = timers_.next_tick();
    if (t != TimerWheel::kNever) {
      // The coarse clock lags by up to a jiffy; +1 keeps a wake-up from landing just early.
      wait_ms = t <= now_ ? 0 : static_cast<int>(std::min<std::uint64_t>(t - now_ + 1, INT_MAX));
    }
  }
  if (timeout_ms >= 0 && (wait_ms < 0 || wait_ms > timeout_ms)) {
    wait_ms = timeout_ms;
  }
  const std::size_t n = backend_->wait({completions_.get(), kBatch}, wait_ms);
  update_clock();
  for (std::size_t i = 0; i < n; ++i) {
    const detail::Completion& cq = completions_[i];
    dispatch(cq);
    // epoll: the last receive of a connection in this batch sends its answers now rather
    // than after the whole batch (the backend writes at once), which keeps p99 close to a
    // plain epoll server's. io_uring submits with the next wait either way.
    if (flush_early_ && detail::user_data_op(cq.user_data) == detail::Op::recv &&
        (i + 1 == n || completions_[i + 1].user_data != cq.user_data)) {
      const std::uint32_t slot = detail::user_data_slot(cq.user_data);
      if (slot < conns_->size()) {
        flush(conns_->at(slot));
      }
    }
  }
  timers_.advance(now_);
  end_iteration();
  return !stopped();
}

void Loop::run() noexcept {
  check_control();
  while (run_once(-1)) {
  }
}

}  // namespace weft::platform
