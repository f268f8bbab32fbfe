#include "mailbox.h"

#include "acceptor.h"

#include <weft/platform/error.h>

#include <sys/eventfd.h>
#include <unistd.h>
#include <cerrno>

namespace weft::platform::detail {

Mailbox::~Mailbox() {
  if (wake_fd_ >= 0) {
    ::close(wake_fd_);
  }
}

Result<void> Mailbox::init() noexcept {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    return fail_errno(errno);
  }
  return {};
}

void Mailbox::connect(std::span<Loop* const> loops, std::span<PostRing* const> ring_to,
                      std::span<PostRing* const> ring_from) noexcept {
  loops_ = loops.data();
  ring_to_ = ring_to.data();
  ring_from_ = ring_from.data();
  n_loops_ = static_cast<std::uint32_t>(loops.size());
}

void Mailbox::wake() noexcept {
  const std::uint64_t one = 1;
  const ssize_t w = ::write(wake_fd_, &one, sizeof one);  // EAGAIN: the counter is already set
  (void)w;
}

Result<void> Mailbox::post(std::uint32_t target, const Post& p) noexcept {
  if (target >= n_loops_ || target == loop_.index() || ring_to_[target] == nullptr) {
    return fail(platform_errc::invalid_argument);
  }
  Mailbox& to = *loops_[target]->mailbox_;
  if (to.closed()) {
    return fail(platform_errc::closed);
  }
  if (!ring_to_[target]->try_push(p)) {
    const std::uint32_t me = loop_.index();
    // RMW (acq_rel) against the consumer's fetch_and in process(): whichever comes second in
    // the flag's modification order sees the other's effects (see the header).
    to.waiting_[me / 64].fetch_or(std::uint64_t{1} << (me % 64), std::memory_order_acq_rel);
    if (ring_to_[target]->size() < PostRing::kCapacity) {
      // The target drained the ring between our push and our flag: no one would tell us.
      room_[target / 64].fetch_or(std::uint64_t{1} << (target % 64), std::memory_order_relaxed);
    }
    return fail(platform_errc::queue_full);
  }
  wake_mask_[target / 64] |= std::uint64_t{1} << (target % 64);
  return {};
}

Result<void> Mailbox::defer(const Post& p) noexcept {
  if (defer_n_ == kDeferCapacity) {
    return fail(platform_errc::queue_full);
  }
  defer_[(defer_head_ + defer_n_) % kDeferCapacity] = p;
  ++defer_n_;
  return {};
}

Result<void> Mailbox::inject(const Post& p) noexcept {
  if (closed()) {
    return fail(platform_errc::closed);
  }
  {
    std::lock_guard<std::mutex> lock(inject_mu_);
    if (inject_n_ == Loop::kInjectCapacity) {
      return fail(platform_errc::queue_full);
    }
    inject_[(inject_head_ + inject_n_) % Loop::kInjectCapacity] = p;
    ++inject_n_;
    inject_any_.store(true, std::memory_order_release);
  }
  wake();
  return {};
}

void Mailbox::on_wake() noexcept {
  // An RMW, not a store: it pairs with the producer's exchange in flush_wakes() (see the
  // header). A release store here was the lost wake-up of issue #13.
  wake_pending_.exchange(false, std::memory_order_acq_rel);
}

void Mailbox::flush_wakes() noexcept {
  bool any = false;
  for (std::uint64_t w : wake_mask_) {
    any = any || w != 0;
  }
  if (!any) {
    return;
  }
  for (std::uint32_t w = 0; w < kWords; ++w) {
    std::uint64_t bits = wake_mask_[w];
    wake_mask_[w] = 0;
    while (bits != 0) {
      const std::uint32_t i = w * 64 + static_cast<std::uint32_t>(__builtin_ctzll(bits));
      bits &= bits - 1;
      Mailbox& to = *loops_[i]->mailbox_;
      // One eventfd write per target per iteration, and none while it has one pending.
      if (!to.wake_pending_.exchange(true, std::memory_order_acq_rel)) {
        to.wake();
      }
    }
  }
}

void Mailbox::notify_room(std::uint32_t producer) noexcept {
  Mailbox& p = *loops_[producer]->mailbox_;
  const std::uint32_t me = loop_.index();
  p.room_[me / 64].fetch_or(std::uint64_t{1} << (me % 64), std::memory_order_release);
  p.wake();
}

std::size_t Mailbox::run_batch(const Post* batch, std::size_t n) noexcept {
  for (std::size_t k = 0; k < n; ++k) {
    batch[k].fn(loop_, batch[k]);
  }
  return n;
}

std::size_t Mailbox::process() noexcept {
  std::size_t ran = 0;
  Post batch[kBatch];
  if (inject_any_.load(std::memory_order_acquire)) {
    std::size_t n = 0;
    {
      std::lock_guard<std::mutex> lock(inject_mu_);
      while (inject_n_ != 0 && n < kBatch) {
        batch[n++] = inject_[inject_head_];
        inject_head_ = (inject_head_ + 1) % Loop::kInjectCapacity;
        --inject_n_;
      }
      inject_any_.store(inject_n_ != 0, std::memory_order_release);
    }
    ran += run_batch(batch, n);  // outside the lock: fn may inject again
  }
  if (ring_from_ != nullptr) {
    for (std::uint32_t i = 0; i < n_loops_; ++i) {
      PostRing* r = ring_from_[i];
      if (r == nullptr) {
        continue;
      }
      std::size_t n;
      bool popped = false;
      while ((n = r->pop_batch(batch, kBatch)) != 0) {
        popped = true;
        ran += run_batch(batch, n);
      }
      if (popped) {
        // Always the RMW (see post()): a plain load could miss a producer that just failed.
        const std::uint64_t bit = std::uint64_t{1} << (i % 64);
        if ((waiting_[i / 64].fetch_and(~bit, std::memory_order_acq_rel) & bit) != 0) {
          notify_room(i);
        }
      }
    }
    for (std::uint32_t w = 0; w < kWords; ++w) {
      if (room_[w].load(std::memory_order_relaxed) == 0) {
        continue;
      }
      std::uint64_t bits = room_[w].exchange(0, std::memory_order_acquire);
      while (bits != 0) {
        const std::uint32_t t = w * 64 + static_cast<std::uint32_t>(__builtin_ctzll(bits));
        bits &= bits - 1;
        if (room_fn_ != nullptr) {
          room_fn_(loop_, t, room_ctx_);
        }
      }
    }
  }
  // Deferred posts queued before this point; those they queue run in the next iteration.
  for (std::uint32_t n = defer_n_; n != 0; --n) {
    const Post p = defer_[defer_head_];
    defer_head_ = (defer_head_ + 1) % kDeferCapacity;
    --defer_n_;
    p.fn(loop_, p);
    ++ran;
  }
  return ran;
}

std::size_t Mailbox::discard() noexcept {
  close();
  std::size_t n = 0;
  Post p;
  // Hand-offs carry an accepted socket: run them, and the stopped loop closes and counts
  // it (open_accepted refuses while draining). Other posts would act on a dead loop.
  const auto drop = [&](const Post& q) {
    if (q.fn == &Acceptor::adopt) {
      q.fn(loop_, q);
    }
    ++n;
  };
  if (ring_from_ != nullptr) {
    for (std::uint32_t i = 0; i < n_loops_; ++i) {
      if (ring_from_[i] != nullptr) {
        while (ring_from_[i]->try_pop(p)) {
          drop(p);
        }
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(inject_mu_);
    while (inject_n_ != 0) {
      drop(inject_[inject_head_]);
      inject_head_ = (inject_head_ + 1) % Loop::kInjectCapacity;
      --inject_n_;
    }
    inject_any_.store(false, std::memory_order_relaxed);
  }
  while (defer_n_ != 0) {
    drop(defer_[defer_head_]);
    defer_head_ = (defer_head_ + 1) % kDeferCapacity;
    --defer_n_;
  }
  return n;
}

}  // namespace weft::platform::detail
