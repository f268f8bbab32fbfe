#include <algorithm>
#include <cstring>

#include <weft/base/assert.h>
#include <weft/platform/error.h>

#include "client_impl.h"

namespace weft::client {

namespace {

// Offsets in an encoded REQUEST (prefix included): docs/protocol.md §6.1 and §6.3.
constexpr std::size_t kIdOffset = msg::kPrefixSize + 4;
constexpr std::size_t kDeadlineOffset = msg::kPrefixSize + msg::kHeaderSize + 4;

// The next id above `last` whose low bits name `slot`: ids stay strictly increasing on a
// connection and an answer finds its slot as id & mask. 0 when the id space is spent.
std::uint32_t next_id(std::uint32_t last, std::uint32_t slot, std::uint32_t cap) noexcept {
  const std::uint64_t base = last & ~static_cast<std::uint64_t>(cap - 1);
  std::uint64_t id = base | slot;
  if (id <= last) {
    id += cap;
  }
  return id > 0xffffffffu ? 0 : static_cast<std::uint32_t>(id);
}

}  // namespace

// ---- calls -------------------------------------------------------------------------------------

Result<void> Client::call(std::uint32_t method, std::span<const std::byte> payload,
                          const CallOptions& options, CallFn fn, void* ctx) noexcept {
  if (closing_) {
    return fail(client_errc::closed);
  }
  if (free_head_ == kNil) {
    return fail(client_errc::overloaded);
  }
  const bool idem = options.idempotent;
  const std::uint64_t key =
      !idem ? 0 : (options.idempotency_key != 0 ? options.idempotency_key : random());
  // Encoded with id 1 (0 is refused by encode); the real id is patched in when it is sent.
  const Frame f = msg::make_request(1, method, 0, payload, idem, key);
  const std::size_t n = msg::encoded_size(f);
  platform::BufferPool& pool = loop_.pool();
  if (n > pool.buffer_size() ||
      (known_max_frame_ != 0 && n - msg::kPrefixSize > known_max_frame_)) {
    return fail(msg::msg_errc::too_large);
  }
  const platform::BufId buf = pool.acquire();
  if (buf == platform::kNoBuf) {
    return fail(platform_errc::no_buffers);
  }
  BufRef ref(&pool, buf);
  if (auto e = msg::encode(f, pool.span(buf)); !e) {
    return fail(e.error());
  }
  Slot& s = slots_[free_head_];
  free_head_ = s.next;
  s.frame = std::move(ref);
  s.frame_len = static_cast<std::uint32_t>(n);
  s.idempotent = idem;
  s.retries_left = idem ? options.retries : 0;
  s.attempt = 0;
  s.id = 0;
  s.fn = fn;
  s.ctx = ctx;
  s.deadline_at = options.deadline_ms != 0 ? loop_.now_ms() + options.deadline_ms : 0;
  if (s.deadline_at != 0) {
    loop_.timers().schedule(s.deadline_timer, s.deadline_at);
  }
  ++pending_;
  ++stats_.calls;
  enqueue(s);
  pump();
  return {};
}

void Client::fail_queued() noexcept {
  // Only first attempts: a queued retry of an idempotent call was on the wire before.
  std::uint32_t i = queue_head_;
  while (i != kNil) {
    Slot& s = slots_[i];
    i = s.next;
    if (s.attempt == 0) {
      unqueue(s);
      complete(s, fail(client_errc::not_connected));
      i = queue_head_;  // the callback may have queued or completed others: start over
    }
  }
}

void Client::enqueue(Slot& s) noexcept {
  s.state = Slot::State::queued;
  s.next = kNil;
  s.prev = queue_tail_;
  if (queue_tail_ != kNil) {
    slots_[queue_tail_].next = s.index;
  } else {
    queue_head_ = s.index;
  }
  queue_tail_ = s.index;
}

void Client::unqueue(Slot& s) noexcept {
  if (s.prev != kNil) {
    slots_[s.prev].next = s.next;
  } else {
    queue_head_ = s.next;
  }
  if (s.next != kNil) {
    slots_[s.next].prev = s.prev;
  } else {
    queue_tail_ = s.prev;
  }
  s.next = s.prev = kNil;
}

void Client::pump() noexcept {
  Link* l = active();
  if (l == nullptr) {
    return;
  }
  Conn* c = loop_.find(l->conn);
  if (c == nullptr) {
    return;
  }
  platform::BufferPool& pool = loop_.pool();
  while (queue_head_ != kNil && l->inflight < l->peer_max_inflight) {
    Slot& s = slots_[queue_head_];
    WEFT_ASSERT(s.frame.valid());  // only idempotent calls, which keep it, are queued again
    if (s.frame_len - msg::kPrefixSize > l->peer_max_frame) {
      unqueue(s);
      complete(s, fail(msg::msg_errc::too_large));
      continue;
    }
    const std::uint32_t id = next_id(l->last_id, s.index, cap_);
    if (id == 0) {
      // Ids spent on this connection: let it finish like a GOAWAY'd one, continue on another.
      l->state = Link::State::draining;
      notify_state();
      start_link();
      return;
    }
    if (pool.refcount(s.frame.id()) > 1) {
      // A retry while an older connection's queue still points at the bytes: patch a copy.
      const platform::BufId fresh = pool.acquire();
      if (fresh == platform::kNoBuf) {
        return;  // on_writable or the next answer pumps again
      }
      std::memcpy(pool.data(fresh), s.frame.data(), s.frame_len);
      s.frame = BufRef(&pool, fresh);
    }
    std::byte* p = s.frame.data();
    put_u32(p + kIdOffset, id);
    if (s.deadline_at != 0) {
      const std::uint64_t now = loop_.now_ms();
      const std::uint64_t left = s.deadline_at > now ? s.deadline_at - now : 1;
      put_u32(p + kDeadlineOffset,
              static_cast<std::uint32_t>(std::min<std::uint64_t>(left, 0xffffffffu)));
    }
    if (!c->send_ref(s.frame, {p, s.frame_len})) {
      return;  // queue_full / no_buffers: on_writable pumps again; closed: on_close follows
    }
    unqueue(s);
    l->last_id = id;
    ++l->inflight;
    s.id = id;
    s.link = l->index;
    s.state = Slot::State::sent;
    if (!s.idempotent) {
      s.frame.reset();  // never sent again; the queue holds its own reference
    }
  }
}

void Client::answered(Link& l, std::uint32_t id, std::error_code err,
                      std::span<const std::byte> payload) noexcept {
  Slot& s = slots_[id & (cap_ - 1)];
  if ((s.state != Slot::State::sent && s.state != Slot::State::cancelled) || s.id != id ||
      s.link != l.index) {
    return;  // §6.2: crossed a CANCEL or a deadline, or not ours: ignored
  }
  --l.inflight;
  if (s.state == Slot::State::cancelled) {
    free_slot(s);
  } else if (!err) {
    ++stats_.responses;
    complete(s, payload);
  } else {
    ++stats_.errors;
    attempt_failed(s, err);
  }
  if (l.state == Link::State::draining && l.inflight == 0) {
    if (Conn* c = loop_.find(l.conn)) {
      c->close();
    }
  }
  pump();
}

void Client::attempt_failed(Slot& s, std::error_code why) noexcept {
  if (s.idempotent && s.retries_left != 0 && !closing_ && is_retryable(why)) {
    const std::uint64_t wait = jitter(opts_.retry_min_ms, opts_.retry_max_ms, s.attempt);
    const std::uint64_t at = loop_.now_ms() + wait;
    if (s.deadline_at == 0 || at < s.deadline_at) {
      --s.retries_left;
      ++s.attempt;
      ++stats_.retries;
      s.state = Slot::State::backoff;
      s.id = 0;
      loop_.timers().schedule(s.retry_timer, at);
      return;
    }
  }
  complete(s, fail(why));
}

void Client::complete(Slot& s, Result<std::span<const std::byte>> r) noexcept {
  const CallFn fn = s.fn;
  void* const ctx = s.ctx;
  free_slot(s);  // first: the callback may make new calls
  if (fn != nullptr) {
    fn(ctx, std::move(r));
  }
}

void Client::free_slot(Slot& s) noexcept {
  loop_.timers().cancel(s.deadline_timer);
  loop_.timers().cancel(s.retry_timer);
  s.frame.reset();
  s.state = Slot::State::free;
  s.fn = nullptr;
  s.id = 0;
  s.prev = kNil;
  s.next = free_head_;
  free_head_ = s.index;
  --pending_;
}

void Client::on_call_timer(TimerNode* n) noexcept {
  Slot& s = *static_cast<Slot*>(n->ctx);
  Client& cl = *s.client;
  if (n == &s.retry_timer) {
    if (s.state == Slot::State::backoff) {
      cl.enqueue(s);
      if (cl.active() == nullptr) {
        cl.start_link();
      }
      cl.pump();
    }
    return;
  }
  // The call's deadline.
  ++cl.stats_.timeouts;
  switch (s.state) {
    case Slot::State::queued:
      cl.unqueue(s);
      cl.complete(s, fail(platform_errc::timed_out));
      return;
    case Slot::State::backoff:
      cl.complete(s, fail(platform_errc::timed_out));
      return;
    case Slot::State::sent: {
      // The id stays taken until the server answers the CANCEL (it still counts against
      // the server's max_inflight); the caller hears now.
      if (Conn* c = cl.loop_.find(cl.links_[s.link].conn)) {
        (void)send_frame(*c, msg::make_cancel(s.id));
      }
      s.state = Slot::State::cancelled;
      cl.loop_.timers().cancel(s.retry_timer);
      s.frame.reset();
      const CallFn fn = s.fn;
      s.fn = nullptr;
      if (fn != nullptr) {
        fn(s.ctx, fail(platform_errc::timed_out));
      }
      return;
    }
    default:
      return;
  }
}

}  // namespace weft::client
