// SpscRing<T, N> — a bounded single-producer/single-consumer queue (N a power of two).
//
// Layout: N slots inline, a producer index and a consumer index on separate cache lines,
// and each side's cached copy of the other's index so that a push or pop touches the shared
// line only when the cached view says the ring looks full or empty.
// Memory ordering: the producer writes the slot, then publishes tail with release; the
// consumer reads tail with acquire before reading the slot, and publishes head with release
// after copying it out, which the producer reads with acquire before reusing the slot.
// Threading: exactly one producer thread and one consumer thread at a time.
// Never allocates; T must be trivially copyable.
#pragma once

#include <atomic>
#include <cstddef>
#include <type_traits>

namespace weft::platform {

inline constexpr std::size_t kCacheLine = 64;

template <class T, std::size_t N>
class SpscRing {
  static_assert(N >= 2 && (N & (N - 1)) == 0, "capacity must be a power of two");
  static_assert(std::is_trivially_copyable_v<T>, "slots are copied with plain stores");

 public:
  static constexpr std::size_t kCapacity = N;

  // Producer side. False when the ring is full (the caller decides: retry later or reject).
  [[nodiscard]] bool try_push(const T& v) noexcept {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_cache_ == N) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (tail - head_cache_ == N) {
        return false;
      }
    }
    slots_[tail & (N - 1)] = v;
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Consumer side. False when the ring is empty.
  [[nodiscard]] bool try_pop(T& out) noexcept {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head == tail_cache_) {
        return false;
      }
    }
    out = slots_[head & (N - 1)];
    head_.store(head + 1, std::memory_order_release);
    return true;
  }

  // Consumer side: pops up to max items into out, publishing head once (batched).
  std::size_t pop_batch(T* out, std::size_t max) noexcept {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    std::size_t avail = tail_cache_ - head;
    if (avail == 0) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      avail = tail_cache_ - head;
    }
    const std::size_t n = avail < max ? avail : max;
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = slots_[(head + i) & (N - 1)];
    }
    if (n != 0) {
      head_.store(head + n, std::memory_order_release);
    }
    return n;
  }

  // Approximate when called concurrently; exact from either side when the other is idle.
  [[nodiscard]] std::size_t size() const noexcept {
    // head first: the consumer published this head only after seeing a tail at least as
    // large, and the acquire makes that tail visible, so the tail loaded next is >= head.
    // (The other order lets a third thread see head overtake an older tail: a wrapped,
    // near-2^64 "size".) The tail may have run ahead while we looked, hence the clamp.
    const std::size_t head = head_.load(std::memory_order_acquire);
    const std::size_t tail = tail_.load(std::memory_order_acquire);
    const std::size_t n = tail - head;
    return n < N ? n : N;
  }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }

 private:
  alignas(kCacheLine) std::atomic<std::size_t> head_{0};  // consumer-owned
  std::size_t tail_cache_ = 0;                            // consumer's view of tail_
  alignas(kCacheLine) std::atomic<std::size_t> tail_{0};  // producer-owned
  std::size_t head_cache_ = 0;                            // producer's view of head_
  // Zeroed once at construction: costs nothing per operation, and keeps g++ -O3 from a
  // -Wmaybe-uninitialized false positive in pop_batch() (a -Werror build break).
  alignas(kCacheLine) T slots_[N]{};
};

}  // namespace weft::platform
