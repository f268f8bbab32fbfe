#include <weft/platform/assert.h>
#include <weft/platform/error.h>
#include <weft/platform/log.h>
#include <weft/platform/loop.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <new>

namespace weft::platform {
namespace {

// Completions harvested per wait: large enough that one iteration serves 64 busy
// connections with room for their sends, small enough to stay in L1 (256 x 24 bytes).
constexpr std::size_t kBatch = 256;
// After our FIN, how long we keep reading (and discarding) while waiting for the peer's:
// closing with unread input would send a RST that can destroy our last response in flight.
constexpr std::uint64_t kLingerMs = 2000;
// Retry delay for accept after EMFILE/ENFILE/ENOMEM.
constexpr std::uint64_t kAcceptRetryMs = 100;
constexpr std::size_t kIovMax = 1024;  // IOV_MAX on Linux

std::error_code sys_error(int neg) {
  return {neg < 0 ? -neg : neg, std::system_category()};
}

}  // namespace

// ---- Conn ----

void Conn::mark_dirty() noexcept {
  if (!dirty_) {
    dirty_ = true;
    next_dirty_ = loop_->dirty_;
    loop_->dirty_ = this;
  }
}

void Conn::queue_segment(BufId buf, std::byte* base, std::size_t len) noexcept {
  iov_[out_n_].iov_base = base;
  iov_[out_n_].iov_len = len;
  iov_buf_[out_n_] = buf;
  ++out_n_;
}

Failure Conn::no_room(platform_errc why) noexcept {
  want_room_ = true;
  if (!in_room_list_) {
    in_room_list_ = true;
    next_room_ = loop_->room_;
    loop_->room_ = this;
  }
  return fail(why);
}

Result<void> Conn::send_ref(BufId buf, std::span<const std::byte> bytes) noexcept {
  if (state_ != State::open) {
    return fail(platform_errc::closed);
  }
  if (bytes.empty()) {
    return {};
  }
  auto* base = const_cast<std::byte*>(bytes.data());  // sendmsg only reads it
  const bool was_empty = out_bytes_ == 0;
  // Contiguous with the last queued segment of the same buffer (not yet in flight): extend
  // it. An echo of 16 pipelined frames from one receive becomes one segment.
  if (out_n_ > out_sending_ && iov_buf_[out_n_ - 1] == buf &&
      static_cast<std::byte*>(iov_[out_n_ - 1].iov_base) + iov_[out_n_ - 1].iov_len == base) {
    iov_[out_n_ - 1].iov_len += bytes.size();
  } else {
    if (out_n_ == loop_->cfg_.max_out_iov) {
      return no_room(platform_errc::queue_full);
    }
    loop_->pool_.ref(buf);
    queue_segment(buf, base, bytes.size());
  }
  out_bytes_ += bytes.size();
  loop_->after_queue(*this, was_empty);
  return {};
}

Result<void> Conn::send_copy(std::span<const std::byte> head,
                             std::span<const std::byte> body) noexcept {
  if (state_ != State::open) {
    return fail(platform_errc::closed);
  }
  const std::size_t total = head.size() + body.size();
  if (total == 0) {
    return {};
  }
  BufferPool& pool = loop_->pool_;
  const std::size_t size = pool.buffer_size();
  // Room left in the last segment's buffer when that buffer is ours alone and not in flight.
  std::size_t tail = 0;
  if (out_n_ > out_sending_) {
    const BufId last = iov_buf_[out_n_ - 1];
    if (!pool.is_recv(last) && pool.refcount(last) == 1) {
      auto* end = static_cast<std::byte*>(iov_[out_n_ - 1].iov_base) + iov_[out_n_ - 1].iov_len;
      tail = static_cast<std::size_t>(pool.data(last) + size - end);
    }
  }
  const std::size_t rest = total - std::min(tail, total);
  const std::size_t need = (rest + size - 1) / size;
  // All or nothing: check every resource before copying a byte.
  if (need > pool.free_general()) {
    return no_room(platform_errc::no_buffers);
  }
  if (out_n_ + need > loop_->cfg_.max_out_iov) {
    return no_room(platform_errc::queue_full);
  }
  const bool was_empty = out_bytes_ == 0;
  std::size_t room = tail;
  std::byte* dst =
      tail != 0 ? static_cast<std::byte*>(iov_[out_n_ - 1].iov_base) + iov_[out_n_ - 1].iov_len
                : nullptr;
  for (std::span<const std::byte> part : {head, body}) {
    while (!part.empty()) {
      if (room == 0) {
        const BufId id = pool.acquire();      // cannot fail: counted above
        queue_segment(id, pool.data(id), 0);  // adopts the acquire() reference
        dst = pool.data(id);
        room = size;
      }
      const std::size_t n = std::min(room, part.size());
      std::memcpy(dst, part.data(), n);
      iov_[out_n_ - 1].iov_len += n;
      dst += n;
      room -= n;
      part = part.subspan(n);
    }
  }
  out_bytes_ += total;
  loop_->after_queue(*this, was_empty);
  return {};
}

void Conn::close() noexcept {
  if (state_ == State::connecting) {
    loop_->begin_abort(*this, make_error_code(platform_errc::closed));
    return;
  }
  if (state_ != State::open) {
    return;
  }
  state_ = State::closing;
  loop_->continue_close(*this);
}

void Conn::abort(std::error_code reason) noexcept {
  loop_->begin_abort(*this, reason ? reason : make_error_code(platform_errc::closed));
}

void Conn::pause_reading() noexcept {
  paused_user_ = true;
  loop_->update_reading(*this);
}

void Conn::resume_reading() noexcept {
  paused_user_ = false;
  loop_->update_reading(*this);
  if ((stash_n_ != 0 || eof_pending_) && !in_resume_list_) {
    in_resume_list_ = true;
    next_resume_ = loop_->resume_;
    loop_->resume_ = this;
  }
}

void Conn::set_mid_message(bool mid) noexcept {
  if (mid && !mid_message_) {
    mid_since_ = loop_->now_;
    if (loop_->cfg_.read_timeout_ms != 0) {
      loop_->arm_deadline(*this, mid_since_ + loop_->cfg_.read_timeout_ms);
    }
  }
  mid_message_ = mid;
}

// ---- Loop: creation ----

Loop::Loop(const Config& cfg, std::uint32_t index) noexcept : cfg_(cfg), index_(index) {}

Result<std::unique_ptr<Loop>> Loop::create(const Config& cfg, std::uint32_t index) noexcept {
  if (auto v = cfg.validate(); !v) {
    return fail(v.error());
  }
  std::unique_ptr<Loop> loop(new (std::nothrow) Loop(cfg, index));
  if (!loop) {
    return fail_errno(ENOMEM);
  }
  if (auto r = loop->init(); !r) {
    return fail(r.error());
  }
  return loop;
}

Result<void> Loop::init() noexcept {
  const std::uint32_t max = cfg_.max_connections;
  if (auto r =
          pool_.init(cfg_.recv_buffers + cfg_.send_buffers, cfg_.buffer_size, cfg_.recv_buffers);
      !r) {
    return r;
  }
  BackendOptions bo;
  bo.kind = cfg_.backend;
  bo.uring_entries = cfg_.uring_entries;
  bo.max_slots = max + kMaxListeners + 1;
  bo.pool = &pool_;
  auto choice = make_backend(bo);
  if (!choice) {
    return fail(choice.error());
  }
  backend_ = std::move(choice.value().backend);
  if (choice.value().fallback_reason[0] != '\0') {
    log(index_ == 0 ? LogLevel::info : LogLevel::debug,
        "worker %u: backend epoll (io_uring not used: %s)", index_, choice.value().fallback_reason);
  } else {
    log(index_ == 0 ? LogLevel::info : LogLevel::debug, "worker %u: backend %s", index_,
        to_string(backend_->kind()));
  }

  conns_.reset(new (std::nothrow) Conn[max]);
  iov_storage_.reset(new (std::nothrow) iovec[static_cast<std::size_t>(max) * cfg_.max_out_iov]);
  iov_buf_storage_.reset(new (std::nothrow)
                             BufId[static_cast<std::size_t>(max) * cfg_.max_out_iov]);
  completions_.reset(new (std::nothrow) Completion[kBatch]);
  if (!conns_ || !iov_storage_ || !iov_buf_storage_ || !completions_) {
    return fail_errno(ENOMEM);
  }
  for (std::uint32_t i = max; i-- > 0;) {
    Conn& c = conns_[i];
    c.loop_ = this;
    c.slot_ = i;
    c.iov_ = &iov_storage_[static_cast<std::size_t>(i) * cfg_.max_out_iov];
    c.iov_buf_ = &iov_buf_storage_[static_cast<std::size_t>(i) * cfg_.max_out_iov];
    c.timer_.ctx = &c;
    c.timer_.fn = [](TimerNode* n) {
      Conn* conn = static_cast<Conn*>(n->ctx);
      conn->loop_->on_conn_timer(*conn);
    };
    c.next_free_ = free_;
    free_ = &c;
  }
  for (std::uint32_t i = 0; i < kMaxListeners; ++i) {
    listeners_[i].retry.ctx = this;
    listeners_[i].retry.fn = [](TimerNode* n) {
      Loop* self = static_cast<Loop*>(n->ctx);
      for (std::uint32_t j = 0; j < kMaxListeners; ++j) {
        if (&self->listeners_[j].retry == n) {
          self->arm_accept(j);
        }
      }
    };
  }
  drain_timer_.ctx = this;
  drain_timer_.fn = [](TimerNode* n) {
    Loop* self = static_cast<Loop*>(n->ctx);
    for (std::uint32_t i = 0; i < self->cfg_.max_connections; ++i) {
      Conn& c = self->conns_[i];
      if (c.state_ != Conn::State::free && c.state_ != Conn::State::closed) {
        self->begin_abort(c, make_error_code(platform_errc::shutting_down));
      }
    }
  };

  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    return fail_errno(errno);
  }
  backend_->watch(wake_fd_, pack_user_data(Op::wake, 0, wake_slot()));
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
    for (std::uint32_t i = 0; i < cfg_.max_connections; ++i) {
      Conn& c = conns_[i];
      if (c.state_ != Conn::State::free && c.fd_ >= 0) {
        ::close(c.fd_);
      }
    }
  }
  for (auto& l : listeners_) {
    if (l.fd >= 0) {
      ::close(l.fd);
    }
  }
  backend_.reset();  // before the pool: the io_uring buffer ring points into it
  if (wake_fd_ >= 0) {
    ::close(wake_fd_);
  }
}

std::uint32_t Loop::wake_slot() const noexcept {
  return cfg_.max_connections + kMaxListeners;
}

// ---- Loop: services and connections ----

Result<std::uint32_t> Loop::add_listener(int fd, HandlerFactory& factory) noexcept {
  if (n_services_ == kMaxListeners) {
    return fail(platform_errc::queue_full);
  }
  const std::uint32_t i = n_services_++;
  services_[i] = &factory;
  listeners_[i].fd = fd;
  arm_accept(i);
  return i;
}

Result<std::uint32_t> Loop::add_service(HandlerFactory& factory) noexcept {
  if (n_services_ == kMaxListeners) {
    return fail(platform_errc::queue_full);
  }
  const std::uint32_t i = n_services_++;
  services_[i] = &factory;
  return i;
}

void Loop::set_accept_targets(std::uint32_t service, std::span<Loop* const> targets) noexcept {
  if (service < kMaxListeners) {
    listeners_[service].targets = targets;
  }
}

void Loop::arm_accept(std::uint32_t li) noexcept {
  Listener& l = listeners_[li];
  if (l.fd < 0 || l.armed || l.closing) {
    return;
  }
  l.armed = true;
  backend_->accept(l.fd, pack_user_data(Op::accept, 0, cfg_.max_connections + li));
}

Conn* Loop::alloc_conn() noexcept {
  Conn* c = free_;
  if (c == nullptr) {
    return nullptr;
  }
  free_ = c->next_free_;
  c->next_free_ = nullptr;
  c->handler_ = nullptr;
  c->factory_ = nullptr;
  c->fd_ = -1;
  c->inflight_ = 0;
  c->recv_armed_ = c->recv_cancelling_ = c->send_inflight_ = false;
  c->paused_user_ = c->paused_watermark_ = c->parked_ = c->eof_ = false;
  c->mid_message_ = c->shut_wr_ = c->drained_ = c->want_room_ = c->eof_pending_ = false;
  c->stash_n_ = 0;
  c->out_n_ = c->out_sending_ = 0;
  c->out_bytes_ = 0;
  c->last_activity_ = c->mid_since_ = c->send_progress_ = now_;
  c->close_deadline_ = 0;
  c->reason_ = {};
  c->user = nullptr;
  ++active_;
  stats_.active.set(active_);
  return c;
}

Conn* Loop::find(ConnId id) noexcept {
  if (id.slot >= cfg_.max_connections) {
    return nullptr;
  }
  Conn& c = conns_[id.slot];
  if (c.gen_ != id.gen || c.state_ == Conn::State::free) {
    return nullptr;
  }
  return &c;
}

void Loop::open_accepted(int fd, std::uint32_t service) noexcept {
  if (draining_ || service >= n_services_) {
    ::close(fd);
    stats_.rejected.add();
    return;
  }
  Conn* c = alloc_conn();
  if (c == nullptr) {
    // Over Config::max_connections: accepted and closed at once, so the backlog keeps
    // moving and established connections are not disturbed.
    ::close(fd);
    stats_.rejected.add();
    return;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly on AF_UNIX
  c->fd_ = fd;
  c->state_ = Conn::State::open;
  c->factory_ = services_[service];
  c->handler_ = c->factory_->create(*c);
  if (c->handler_ == nullptr) {
    c->state_ = Conn::State::free;
    c->fd_ = -1;
    ::close(fd);
    release_slot(*c);
    stats_.rejected.add();
    return;
  }
  stats_.accepted.add();
  start_conn(*c);
}

void Loop::start_conn(Conn& c) noexcept {
  c.last_activity_ = now_;
  if (cfg_.idle_timeout_ms != 0) {
    arm_deadline(c, now_ + cfg_.idle_timeout_ms);
  }
  c.handler_->on_open(c);
  update_reading(c);
}

Result<ConnId> Loop::connect(const Address& addr, HandlerFactory& factory) noexcept {
  if (draining_) {
    return fail(platform_errc::shutting_down);
  }
  if (free_ == nullptr) {
    return fail(platform_errc::connection_limit);
  }
  int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return fail_errno(errno);
  }
  Conn* c = alloc_conn();
  c->fd_ = fd;
  c->state_ = Conn::State::connecting;
  c->factory_ = &factory;
  c->peer_ = addr;
  c->handler_ = factory.create(*c);
  if (c->handler_ == nullptr) {
    c->state_ = Conn::State::free;
    c->fd_ = -1;
    ::close(fd);
    release_slot(*c);
    return fail(platform_errc::closed);
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ++c->inflight_;
  backend_->connect(fd, &c->peer_, pack_user_data(Op::connect, c->gen_, c->slot_));
  if (cfg_.connect_timeout_ms != 0) {
    c->close_deadline_ = now_ + cfg_.connect_timeout_ms;
    arm_deadline(*c, c->close_deadline_);
  }
  return c->id();
}

// ---- Loop: reading, writing ----

void Loop::update_reading(Conn& c) noexcept {
  bool want = false;
  if (c.state_ == Conn::State::open) {
    want = !c.eof_ && !c.paused_user_ && !c.paused_watermark_ && !c.parked_;
  } else if (c.state_ == Conn::State::closing) {
    want = !c.eof_ && !c.parked_;  // lingering: read and discard until the peer's FIN
  }
  const std::uint64_t ud = pack_user_data(Op::recv, c.gen_, c.slot_);
  if (want && !c.recv_armed_) {
    c.recv_armed_ = true;
    ++c.inflight_;
    backend_->recv(c.fd_, ud);
  } else if (!want && c.recv_armed_ && !c.recv_cancelling_) {
    c.recv_cancelling_ = true;
    backend_->cancel(c.fd_, ud);
  }
}

void Loop::after_queue(Conn& c, bool was_empty) noexcept {
  if (was_empty) {
    c.send_progress_ = now_;
    if (cfg_.write_timeout_ms != 0) {
      arm_deadline(c, now_ + cfg_.write_timeout_ms);
    }
  }
  if (!c.paused_watermark_ && c.out_bytes_ >= cfg_.high_watermark) {
    c.paused_watermark_ = true;
    update_reading(c);
  }
  c.mark_dirty();
}

void Loop::flush(Conn& c) noexcept {
  if (c.send_inflight_ || c.out_n_ == 0 ||
      (c.state_ != Conn::State::open && c.state_ != Conn::State::closing)) {
    return;
  }
  c.out_sending_ = static_cast<std::uint32_t>(std::min<std::size_t>(c.out_n_, kIovMax));
  c.msg_ = msghdr{};
  c.msg_.msg_iov = c.iov_;
  c.msg_.msg_iovlen = c.out_sending_;
  c.send_inflight_ = true;
  ++c.inflight_;
  stats_.sends.add();
  backend_->send(c.fd_, &c.msg_, pack_user_data(Op::send, c.gen_, c.slot_));
}

void Loop::consume_sent(Conn& c, std::size_t n) noexcept {
  std::uint32_t i = 0;
  while (i < c.out_sending_ && n >= c.iov_[i].iov_len) {
    n -= c.iov_[i].iov_len;
    c.out_bytes_ -= c.iov_[i].iov_len;
    pool_.unref(c.iov_buf_[i]);
    ++i;
  }
  if (i < c.out_sending_ && n != 0) {
    // Partial write: the rest of this segment goes in the next send.
    c.iov_[i].iov_base = static_cast<std::byte*>(c.iov_[i].iov_base) + n;
    c.iov_[i].iov_len -= n;
    c.out_bytes_ -= n;
  }
  if (i != 0) {
    std::memmove(c.iov_, c.iov_ + i, (c.out_n_ - i) * sizeof(iovec));
    std::memmove(c.iov_buf_, c.iov_buf_ + i, (c.out_n_ - i) * sizeof(BufId));
    c.out_n_ -= i;
  }
  c.out_sending_ = 0;
}

void Loop::continue_close(Conn& c) noexcept {
  // Graceful close, step by step: flush -> FIN -> wait for the peer's FIN (or linger) -> done.
  if (c.state_ != Conn::State::closing) {
    return;
  }
  if (!c.shut_wr_ && c.out_n_ == 0 && !c.send_inflight_) {
    ::shutdown(c.fd_, SHUT_WR);
    c.shut_wr_ = true;
    c.close_deadline_ = now_ + kLingerMs;
    arm_deadline(c, c.close_deadline_);
  }
  if (c.shut_wr_ && c.eof_) {
    begin_abort(c, c.reason_);  // both directions done: a clean close
    return;
  }
  update_reading(c);
}

// ---- Loop: completions ----

void Loop::dispatch(const Completion& cq) noexcept {
  const Op op = user_data_op(cq.user_data);
  const std::uint32_t slot = user_data_slot(cq.user_data);
  switch (op) {
    case Op::accept:
      on_accept(slot - cfg_.max_connections, cq);
      return;
    case Op::wake:
      on_wake();
      return;
    case Op::recv:
    case Op::send:
    case Op::connect:
      break;
    default:
      return;
  }
  if (slot >= cfg_.max_connections) {
    return;
  }
  Conn& c = conns_[slot];
  if ((c.gen_ & 0xffffffu) != user_data_gen(cq.user_data) || c.state_ == Conn::State::free) {
    // A completion for an earlier occupant of the slot: drop it (its buffer goes back).
    if (cq.buf != kNoBuf) {
      pool_.unref(cq.buf);
    }
    return;
  }
  if (op == Op::recv) {
    on_recv(c, cq);
  } else if (op == Op::send) {
    on_send(c, cq);
  } else {
    on_connect(c, cq);
  }
  maybe_finalize(c);
}

void Loop::on_accept(std::uint32_t li, const Completion& cq) noexcept {
  if (li >= kMaxListeners) {
    return;
  }
  Listener& l = listeners_[li];
  if (!cq.more) {
    l.armed = false;
  }
  if (cq.result >= 0) {
    const int fd = cq.result;
    if (l.closing) {
      ::close(fd);
    } else if (!l.targets.empty()) {
      Loop* target = l.targets[l.next_target++ % l.targets.size()];
      if (target == this) {
        open_accepted(fd, li);
      } else if (!post(*target,
                       Post{&Loop::adopt_accepted, nullptr, static_cast<std::uint64_t>(fd), li})) {
        ::close(fd);
        stats_.rejected.add();
      }
    } else {
      open_accepted(fd, li);
    }
  } else if (cq.result != -ECANCELED) {
    log(LogLevel::warn, "worker %u: accept failed: %s", index_, std::strerror(-cq.result));
  }
  if (!l.armed) {
    if (l.closing) {
      ::close(l.fd);
      l.fd = -1;
    } else if (cq.result < 0 && cq.result != -ECANCELED && cq.result != -ECONNABORTED &&
               cq.result != -EINTR) {
      // EMFILE/ENFILE (out of descriptors), ENOMEM, or anything unexpected: back off rather
      // than spin on an accept that fails at once.
      timers_.schedule(l.retry, now_ + kAcceptRetryMs);
    } else {
      arm_accept(li);  // the multishot ended normally (or was interrupted): re-arm
    }
  }
}

void Loop::on_recv(Conn& c, const Completion& cq) noexcept {
  if (cq.result > 0) {
    stats_.bytes_in.add(static_cast<std::uint64_t>(cq.result));
    stats_.recv_completions.add();
    c.last_activity_ = now_;
    const BufView view{{pool_.data(cq.buf), static_cast<std::size_t>(cq.result)}, cq.buf};
    if (c.state_ == Conn::State::open && (c.paused_user_ || c.stash_n_ != 0)) {
      // Arrived after pause_reading(): hold it (the core's reference), in order.
      pool_.length(cq.buf) = static_cast<std::uint32_t>(cq.result);
      pool_.link(cq.buf) = kNoBuf;
      if (c.stash_n_++ == 0) {
        c.stash_head_ = cq.buf;
      } else {
        pool_.link(c.stash_tail_) = cq.buf;
      }
      c.stash_tail_ = cq.buf;
    } else {
      if (c.state_ == Conn::State::open) {
        c.handler_->on_data(c, view);
      }
      pool_.unref(cq.buf);  // the core's reference; the handler took its own if it kept any
    }
  }
  if (cq.more) {
    return;
  }
  c.recv_armed_ = false;
  c.recv_cancelling_ = false;
  --c.inflight_;
  if (cq.result == 0) {
    c.eof_ = true;
    if (c.state_ == Conn::State::open && (c.paused_user_ || c.stash_n_ != 0)) {
      c.eof_pending_ = true;  // delivered after the stashed data
    } else if (c.state_ == Conn::State::open) {
      c.handler_->on_eof(c);
    } else if (c.state_ == Conn::State::closing) {
      continue_close(c);
    }
  } else if (cq.result == -ENOBUFS) {
    // Every receive buffer is in use. Nothing was lost: the bytes wait in the socket and
    // TCP pushes back on the peer. Re-armed when half the partition is free again.
    c.parked_ = true;
    stats_.recv_parked.add();
    if (!c.in_parked_list_) {
      c.in_parked_list_ = true;
      c.next_parked_ = parked_;
      parked_ = &c;
    }
  } else if (cq.result < 0 && cq.result != -ECANCELED) {
    begin_abort(c, sys_error(cq.result));
  }
  update_reading(c);
}

void Loop::on_send(Conn& c, const Completion& cq) noexcept {
  c.send_inflight_ = false;
  --c.inflight_;
  if (cq.result < 0) {
    c.out_sending_ = 0;
    begin_abort(c, sys_error(cq.result));
    return;
  }
  const auto n = static_cast<std::size_t>(cq.result);
  stats_.bytes_out.add(n);
  consume_sent(c, n);
  if (n != 0) {
    c.send_progress_ = now_;
    c.last_activity_ = now_;
  }
  if (c.out_n_ != 0) {
    c.mark_dirty();
  }
  if (c.paused_watermark_ && c.out_bytes_ <= cfg_.low_watermark) {
    c.paused_watermark_ = false;
    update_reading(c);
    if (c.state_ == Conn::State::open) {
      c.handler_->on_writable(c);
    }
  }
  if (c.state_ == Conn::State::closing) {
    continue_close(c);
  }
}

void Loop::on_connect(Conn& c, const Completion& cq) noexcept {
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
  stats_.connected.add();
  start_conn(c);
}

void Loop::on_wake() noexcept {
  wake_pending_.store(false, std::memory_order_release);
  backend_->watch(wake_fd_, pack_user_data(Op::wake, 0, wake_slot()));
  check_control();
}

void Loop::check_control() noexcept {
  if (stop_requested_.load(std::memory_order_acquire) && !stopping_) {
    stopping_ = true;
    start_drain(0);
    drain_timer_.fn(&drain_timer_);  // abort everything now
  }
  const std::uint32_t drain = drain_requested_ms_.load(std::memory_order_acquire);
  if (drain != 0 && !draining_) {
    start_drain(drain - 1);
  }
}

// ---- Loop: closing ----

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
  if (c.state_ == Conn::State::closed && c.inflight_ == 0 && !c.finalizing_) {
    c.finalizing_ = true;
    c.next_final_ = final_;
    final_ = &c;
  }
}

void Loop::finalize(Conn& c) noexcept {
  while (c.stash_n_ != 0) {
    const BufId b = c.stash_head_;
    c.stash_head_ = pool_.link(b);
    --c.stash_n_;
    pool_.unref(b);
  }
  c.eof_pending_ = false;
  for (std::uint32_t i = 0; i < c.out_n_; ++i) {
    pool_.unref(c.iov_buf_[i]);
  }
  c.out_n_ = 0;
  c.out_bytes_ = 0;
  ::close(c.fd_);
  c.fd_ = -1;
  timers_.cancel(c.timer_);
  c.parked_ = false;
  stats_.closed.add();
  if (c.reason_ && c.reason_ != make_error_code(platform_errc::closed)) {
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
  c.finalizing_ = false;
  c.state_ = Conn::State::free;
  release_slot(c);
}

void Loop::release_slot(Conn& c) noexcept {
  ++c.gen_;  // completions and ConnIds of the old occupant no longer match
  c.next_free_ = free_;
  free_ = &c;
  --active_;
  stats_.active.set(active_);
}

// ---- Loop: timers ----

void Loop::arm_deadline(Conn& c, std::uint64_t at) noexcept {
  if (!c.timer_.scheduled() || c.timer_.expiry > at) {
    timers_.schedule(c.timer_, at);
  }
}

void Loop::on_conn_timer(Conn& c) noexcept {
  // Deadlines are kept lazily: activity only moves timestamps, and this callback works out
  // which deadline, if any, has really passed and when to look again.
  const std::uint64_t now = now_;
  std::uint64_t next = TimerWheel::kNever;
  const auto due = [&](std::uint64_t at) {
    if (at <= now) {
      return true;
    }
    next = std::min(next, at);
    return false;
  };
  switch (c.state_) {
    case Conn::State::connecting:
      if (c.close_deadline_ != 0 && due(c.close_deadline_)) {
        begin_abort(c, make_error_code(platform_errc::timed_out));
        return;
      }
      break;
    case Conn::State::closing:
      if (c.shut_wr_ && due(c.close_deadline_)) {
        begin_abort(c, c.reason_);  // the peer never sent FIN: close anyway, nothing is lost
        return;
      }
      [[fallthrough]];
    case Conn::State::open:
      if (cfg_.write_timeout_ms != 0 && c.out_bytes_ != 0 &&
          due(c.send_progress_ + cfg_.write_timeout_ms)) {
        begin_abort(c, make_error_code(platform_errc::timed_out));
        return;
      }
      if (c.state_ == Conn::State::open && cfg_.read_timeout_ms != 0 && c.mid_message_ &&
          due(c.mid_since_ + cfg_.read_timeout_ms)) {
        begin_abort(c, make_error_code(platform_errc::timed_out));
        return;
      }
      if (c.state_ == Conn::State::open && cfg_.idle_timeout_ms != 0 &&
          due(std::max(c.last_activity_, c.send_progress_) + cfg_.idle_timeout_ms)) {
        c.reason_ = make_error_code(platform_errc::timed_out);
        c.close();  // idle: nothing queued, so a graceful FIN
        return;
      }
      break;
    default:
      return;
  }
  if (next != TimerWheel::kNever) {
    timers_.schedule(c.timer_, next);
  }
}

// ---- Loop: drain and stop ----

void Loop::close_listeners() noexcept {
  for (std::uint32_t i = 0; i < kMaxListeners; ++i) {
    Listener& l = listeners_[i];
    if (l.fd < 0 || l.closing) {
      continue;
    }
    l.closing = true;
    timers_.cancel(l.retry);
    if (l.armed) {
      // The fd is closed when the accept's last completion arrives: closing it earlier
      // would leave the kernel's in-flight accept holding the socket open.
      backend_->cancel_all(l.fd, cfg_.max_connections + i);
    } else {
      ::close(l.fd);
      l.fd = -1;
    }
  }
}

void Loop::start_drain(std::uint32_t drain_ms) noexcept {
  if (draining_) {
    return;
  }
  draining_ = true;
  close_listeners();
  drain_timer_.expiry = 0;
  timers_.schedule(drain_timer_, now_ + drain_ms);
  for (std::uint32_t i = 0; i < cfg_.max_connections; ++i) {
    Conn& c = conns_[i];
    if (c.state_ == Conn::State::connecting) {
      begin_abort(c, make_error_code(platform_errc::shutting_down));
    } else if (c.state_ == Conn::State::open && !c.drained_) {
      c.drained_ = true;
      c.handler_->on_drain(c);
    }
  }
}

void Loop::wake() noexcept {
  const std::uint64_t one = 1;
  ssize_t w = ::write(wake_fd_, &one, sizeof one);  // EAGAIN: the counter is already set
  (void)w;
}

void Loop::request_stop() noexcept {
  stop_requested_.store(true, std::memory_order_release);
  wake();
}

void Loop::request_drain(std::uint32_t drain_ms) noexcept {
  drain_requested_ms_.store(drain_ms + 1, std::memory_order_release);
  wake();
}

// ---- Loop: posts ----

void Loop::adopt_accepted(Loop& loop, const Post& p) noexcept {
  loop.open_accepted(static_cast<int>(p.a), static_cast<std::uint32_t>(p.b));
}

void Loop::connect_rings(std::span<Loop* const> loops, std::span<PostRing* const> ring_to,
                         std::span<PostRing* const> ring_from) noexcept {
  loops_ = loops.data();
  ring_to_ = ring_to.data();
  ring_from_ = ring_from.data();
  n_loops_ = static_cast<std::uint32_t>(loops.size());
}

Result<void> Loop::post(Loop& target, const Post& p) noexcept {
  if (target.index_ >= n_loops_ || ring_to_ == nullptr || ring_to_[target.index_] == nullptr) {
    return fail(platform_errc::invalid_argument);
  }
  if (!ring_to_[target.index_]->try_push(p)) {
    return fail(platform_errc::queue_full);
  }
  wake_mask_[target.index_ / 64] |= std::uint64_t{1} << (target.index_ % 64);
  return {};
}

Result<void> Loop::inject(const Post& p) noexcept {
  {
    std::lock_guard<std::mutex> lock(inject_mu_);
    if (inject_n_ == kInjectCapacity) {
      return fail(platform_errc::queue_full);
    }
    inject_[(inject_head_ + inject_n_) % kInjectCapacity] = p;
    ++inject_n_;
    inject_any_.store(true, std::memory_order_release);
  }
  wake();
  return {};
}

void Loop::process_posts() noexcept {
  Post batch[16];
  if (inject_any_.load(std::memory_order_acquire)) {
    std::size_t n = 0;
    {
      std::lock_guard<std::mutex> lock(inject_mu_);
      while (inject_n_ != 0 && n < 16) {
        batch[n++] = inject_[inject_head_];
        inject_head_ = (inject_head_ + 1) % kInjectCapacity;
        --inject_n_;
      }
      inject_any_.store(inject_n_ != 0, std::memory_order_release);
    }
    for (std::size_t k = 0; k < n; ++k) {
      batch[k].fn(*this, batch[k]);  // outside the lock: fn may inject again
    }
    stats_.posts.add(n);
  }
  if (ring_from_ == nullptr) {
    return;
  }
  for (std::uint32_t i = 0; i < n_loops_; ++i) {
    PostRing* r = ring_from_[i];
    if (r == nullptr) {
      continue;
    }
    std::size_t n;
    while ((n = r->pop_batch(batch, 16)) != 0) {
      for (std::size_t k = 0; k < n; ++k) {
        batch[k].fn(*this, batch[k]);
      }
      stats_.posts.add(n);
    }
  }
}

// ---- Loop: the iteration ----

void Loop::deliver_stash(Conn& c) noexcept {
  while (c.stash_n_ != 0 && c.state_ == Conn::State::open && !c.paused_user_) {
    const BufId b = c.stash_head_;
    c.stash_head_ = pool_.link(b);
    --c.stash_n_;
    c.handler_->on_data(c, BufView{{pool_.data(b), pool_.length(b)}, b});
    pool_.unref(b);
  }
  if (c.stash_n_ == 0 && c.eof_pending_ && c.state_ == Conn::State::open && !c.paused_user_) {
    c.eof_pending_ = false;
    c.handler_->on_eof(c);
  }
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

void Loop::end_iteration() noexcept {
  process_posts();
  while (resume_ != nullptr) {
    Conn* c = resume_;
    resume_ = c->next_resume_;
    c->in_resume_list_ = false;
    deliver_stash(*c);
  }
  if (room_ != nullptr) {
    // Connections whose send failed for lack of room: tell them when there may be some.
    // Those that fail again re-queue themselves for a later iteration.
    Conn* list = room_;
    room_ = nullptr;
    while (list != nullptr) {
      Conn* c = list;
      list = c->next_room_;
      c->in_room_list_ = false;
      if (!c->want_room_ || c->state_ != Conn::State::open) {
        c->want_room_ = false;
        continue;
      }
      if (c->out_n_ < cfg_.max_out_iov && pool_.free_general() != 0) {
        c->want_room_ = false;
        c->handler_->on_writable(*c);
      } else {
        c->in_room_list_ = true;
        c->next_room_ = room_;
        room_ = c;
      }
    }
  }
  // After stashed input was delivered and sends completed: buffers may be back.
  if (parked_ != nullptr && pool_.free_recv() >= pool_.recv_count() / 2) {
    Conn* list = parked_;
    parked_ = nullptr;
    while (list != nullptr) {
      Conn* c = list;
      list = c->next_parked_;
      c->in_parked_list_ = false;
      if (c->parked_) {
        c->parked_ = false;
        update_reading(*c);
      }
    }
  }
  while (dirty_ != nullptr) {
    Conn* c = dirty_;
    dirty_ = c->next_dirty_;
    c->dirty_ = false;
    flush(*c);
  }
  // Finalize after every callback of this iteration has run (never inside a slot's own).
  Conn* list = final_;
  final_ = nullptr;
  while (list != nullptr) {
    Conn* c = list;
    list = c->next_final_;
    finalize(*c);
  }
  for (std::uint32_t w = 0; w < 4; ++w) {
    std::uint64_t bits = wake_mask_[w];
    wake_mask_[w] = 0;
    while (bits != 0) {
      const std::uint32_t i = w * 64 + static_cast<std::uint32_t>(__builtin_ctzll(bits));
      bits &= bits - 1;
      Loop* t = loops_[i];
      // One eventfd write per target per iteration, and none while it has one pending.
      if (!t->wake_pending_.exchange(true, std::memory_order_acq_rel)) {
        t->wake();
      }
    }
  }
  if (draining_ && active_ == 0) {
    bool listeners_open = false;
    for (const auto& l : listeners_) {
      listeners_open = listeners_open || l.fd >= 0;
    }
    if (!listeners_open) {
      stopped_ = true;
    }
  }
  stats_.loop_iterations.add();
}

bool Loop::run_once(int timeout_ms) noexcept {
  if (stopped_) {
    return false;
  }
  int wait_ms = -1;
  if (dirty_ != nullptr || final_ != nullptr || resume_ != nullptr ||
      inject_any_.load(std::memory_order_relaxed) ||
      (parked_ != nullptr && pool_.free_recv() >= pool_.recv_count() / 2)) {
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
    dispatch(completions_[i]);
  }
  timers_.advance(now_);
  end_iteration();
  return !stopped_;
}

void Loop::run() noexcept {
  check_control();
  while (run_once(-1)) {
  }
}

}  // namespace weft::platform
