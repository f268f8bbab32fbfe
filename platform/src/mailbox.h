// detail::Mailbox — a loop's posts: rings to and from the other workers, the inject queue of
// foreign threads, deferred posts to itself, and the eventfd wake-up with its coalescing.
//
// Wake-up protocol (issue #13: a post could sleep until an unrelated wake):
//   producer: push into the ring (release)  -> if !pending.exchange(true, acq_rel): write eventfd
//   consumer: pending.exchange(false, acq_rel) -> read the rings
// Both sides use read-modify-writes on the same flag, which are totally ordered. If the
// producer's exchange comes second it reads `false` and writes the eventfd. If the
// consumer's comes second it reads the producer's `true`, synchronizes with it, and so sees
// the push when it reads the ring. The old consumer cleared the flag with a plain release
// store, which synchronizes with nothing: it could miss the push while the producer saw
// `true` and skipped the write. (No fences: ThreadSanitizer does not model them.)
//
// Room notification: a producer whose push failed sets its bit in the target's `waiting_`
// (fetch_or) and re-checks the ring; the target, after popping from that producer's ring,
// clears the bit (fetch_and) and, if it was set, sets its own bit in the producer's
// `room_` and wakes it; the producer's loop then calls the room handler. The same RMW
// pairing keeps either side from missing the other.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>

#include <weft/base/result.h>
#include <weft/platform/loop.h>
#include <weft/platform/post.h>

namespace weft::platform::detail {

class Mailbox {
 public:
  explicit Mailbox(Loop& loop) noexcept : loop_(loop) {}
  ~Mailbox();
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // Creates the eventfd. Errors: errno.
  [[nodiscard]] Result<void> init() noexcept;
  [[nodiscard]] int wake_fd() const noexcept { return wake_fd_; }

  void connect(std::span<Loop* const> loops, std::span<PostRing* const> ring_to,
               std::span<PostRing* const> ring_from) noexcept;
  [[nodiscard]] Loop* peer(std::uint32_t i) const noexcept {
    return i < n_loops_ ? loops_[i] : nullptr;
  }

  [[nodiscard]] Result<void> post(std::uint32_t target, const Post& p) noexcept;
  [[nodiscard]] Result<void> defer(const Post& p) noexcept;
  [[nodiscard]] Result<void> inject(const Post& p) noexcept;  // any thread
  void set_room_handler(Loop::PostRoomFn fn, void* ctx) noexcept {
    room_fn_ = fn;
    room_ctx_ = ctx;
  }

  // The eventfd's read completed: clear the pending flag (before reading the rings).
  void on_wake() noexcept;
  // Runs injected posts, ring posts, room notifications and the deferred posts queued
  // before this call. Returns how many posts ran.
  std::size_t process() noexcept;
  // End of iteration: one eventfd write per target posted to.
  void flush_wakes() noexcept;
  // Work that must not wait for a completion (wait with timeout 0).
  [[nodiscard]] bool has_local_work() const noexcept {
    return defer_n_ != 0 || inject_any_.load(std::memory_order_relaxed);
  }
  // Any thread: signals the eventfd.
  void wake() noexcept;
  // The loop stopped: later posts to it fail with closed.
  void close() noexcept { closed_.store(true, std::memory_order_release); }
  [[nodiscard]] bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  std::size_t discard() noexcept;

 private:
  static constexpr std::uint32_t kWords = 4;  // bitmasks of up to 256 workers
  static constexpr std::size_t kBatch = 16;
  std::size_t run_batch(const Post* batch, std::size_t n) noexcept;
  void notify_room(std::uint32_t producer) noexcept;

  Loop& loop_;
  int wake_fd_ = -1;
  Loop* const* loops_ = nullptr;
  PostRing* const* ring_to_ = nullptr;
  PostRing* const* ring_from_ = nullptr;
  std::uint32_t n_loops_ = 0;
  std::uint64_t wake_mask_[kWords] = {};  // targets to wake at the end of this iteration

  alignas(64) std::atomic<bool> wake_pending_{false};
  std::atomic<bool> closed_{false};
  std::atomic<std::uint64_t> waiting_[kWords] = {};  // producers waiting for room in my ring
  std::atomic<std::uint64_t> room_[kWords] = {};     // targets whose ring has room for me
  Loop::PostRoomFn room_fn_ = nullptr;
  void* room_ctx_ = nullptr;

  std::mutex inject_mu_;
  Post inject_[Loop::kInjectCapacity];
  std::uint32_t inject_head_ = 0;
  std::uint32_t inject_n_ = 0;
  std::atomic<bool> inject_any_{false};

  Post defer_[kDeferCapacity];
  std::uint32_t defer_head_ = 0;
  std::uint32_t defer_n_ = 0;
};

}  // namespace weft::platform::detail
