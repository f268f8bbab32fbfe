// SharedBuffers — a runtime-wide pool of preallocated buffers that any worker may queue.
//
// For fan-out: a publisher encodes one event once into a shared buffer and every worker
// queues that same buffer on its subscribers' connections (Conn::send_shared), with zero
// copy. The buffer returns to the pool when the last reference — the publisher's SharedRef
// and every queued segment on every worker — is dropped.
//
// Layout: one mmap'ed region of `count` buffers of `size` bytes, allocated once by init();
// an atomic reference count per buffer and a lock-free free list (a Treiber stack whose head
// carries a 32-bit tag against ABA). Nothing grows: acquire() reports exhaustion and the
// publisher applies its own policy (drop, retry later).
//
// Threading: every member may be called from any thread, except init() and destruction
// (before and after all use). Buffer contents: written by the acquirer before it shares the
// buffer; readers only read. The release/acquire pair on the reference count (and on the
// hand-off through a post ring) orders the writes before any send.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>

#include <weft/base/result.h>

namespace weft::platform {

class SharedBuffers;

// One counted reference to a shared buffer (move-only; share() makes another).
struct SharedRef {
  SharedRef() noexcept = default;
  SharedRef(SharedRef&& o) noexcept
      : pool_(o.pool_), id_(std::exchange(o.id_, kNone)), length_(o.length_) {}
  SharedRef& operator=(SharedRef&& o) noexcept;
  SharedRef(const SharedRef&) = delete;
  SharedRef& operator=(const SharedRef&) = delete;
  ~SharedRef() { reset(); }

  [[nodiscard]] bool valid() const noexcept { return id_ != kNone; }
  [[nodiscard]] std::uint32_t id() const noexcept { return id_; }
  [[nodiscard]] SharedBuffers* pool() const noexcept { return pool_; }
  // The whole buffer, for the acquirer to write into.
  [[nodiscard]] std::span<std::byte> buffer() const noexcept;
  // The bytes written so far (set_length by the writer; what send_shared sends by default).
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept;
  void set_length(std::size_t n) noexcept { length_ = static_cast<std::uint32_t>(n); }
  [[nodiscard]] SharedRef share() const noexcept;
  void reset() noexcept;
  // Gives up ownership without dropping the reference and returns the id (call on a valid
  // ref), so that a Post can carry it to another worker, which adopts it (SharedBuffers::adopt).
  [[nodiscard]] std::uint32_t release() noexcept { return std::exchange(id_, kNone); }

 private:
  friend class SharedBuffers;
  static constexpr std::uint32_t kNone = 0xffffffffu;
  SharedRef(SharedBuffers* pool, std::uint32_t id) noexcept : pool_(pool), id_(id) {}
  SharedBuffers* pool_ = nullptr;
  std::uint32_t id_ = kNone;
  std::uint32_t length_ = 0;
};

class SharedBuffers {
 public:
  SharedBuffers() noexcept = default;
  ~SharedBuffers();
  SharedBuffers(const SharedBuffers&) = delete;
  SharedBuffers& operator=(const SharedBuffers&) = delete;

  // count buffers (1 .. 2^24) of size bytes (a multiple of 64, >= 64).
  // Errors: invalid_argument, ENOMEM (mmap).
  [[nodiscard]] Result<void> init(std::uint32_t count, std::uint32_t size) noexcept;

  // A free buffer with one reference, or an invalid SharedRef when none is free.
  [[nodiscard]] SharedRef acquire() noexcept;
  // Takes over one reference to buffer `id` that is already counted (SharedRef::release(),
  // or ref()), with `length` bytes written: how a worker that received a buffer id in a Post
  // gets the SharedRef that Conn::send_shared needs. No count changes.
  [[nodiscard]] SharedRef adopt(std::uint32_t id, std::size_t length) noexcept {
    SharedRef r(this, id);
    r.set_length(length);
    return r;
  }

  [[nodiscard]] std::uint32_t count() const noexcept { return count_; }
  [[nodiscard]] std::uint32_t buffer_size() const noexcept { return size_; }
  [[nodiscard]] std::byte* data(std::uint32_t id) const noexcept {
    return region_ + static_cast<std::size_t>(id) * size_;
  }
  // Approximate under concurrency.
  [[nodiscard]] std::uint32_t free_count() const noexcept {
    return free_n_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint32_t refcount(std::uint32_t id) const noexcept {
    return refs_[id].load(std::memory_order_relaxed);
  }

  // Raw counting, for the core's queues (which hold ids, not SharedRefs).
  void ref(std::uint32_t id) noexcept { refs_[id].fetch_add(1, std::memory_order_relaxed); }
  void unref(std::uint32_t id) noexcept;

 private:
  void push_free(std::uint32_t id) noexcept;

  std::byte* region_ = nullptr;
  std::size_t region_bytes_ = 0;
  std::uint32_t count_ = 0;
  std::uint32_t size_ = 0;
  std::unique_ptr<std::atomic<std::uint32_t>[]> refs_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> next_;  // free-list links
  std::atomic<std::uint64_t> head_{0};                  // [tag:32 | id + 1:32], 0 = empty
  std::atomic<std::uint32_t> free_n_{0};
};

inline std::span<std::byte> SharedRef::buffer() const noexcept {
  return {pool_->data(id_), pool_->buffer_size()};
}
inline std::span<const std::byte> SharedRef::bytes() const noexcept {
  return {pool_->data(id_), length_};
}

}  // namespace weft::platform
