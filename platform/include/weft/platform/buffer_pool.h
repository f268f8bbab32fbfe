// BufferPool — the fixed set of I/O buffers one worker owns.
//
// Layout: one mmap'ed region of `count` buffers of `buffer_size` bytes each, allocated once
// by init(). Buffer ids are indices. Ids [0, recv_count) form the receive partition, fed to
// the kernel (io_uring provided-buffer ring) or taken by the epoll backend; the rest form the
// general partition that protocols write output into. Nothing here grows after init():
// exhaustion is reported (kNoBuf) and the caller applies back-pressure.
//
// Sharing: each buffer has a reference count. A received buffer starts at 1 (held by the
// core while the protocol's on_data runs); protocols that keep bytes past the callback, and
// queued sends that point into the buffer, take their own reference. When the count falls
// to zero a general buffer returns to the free list and a receive buffer goes back to the
// recycler (the io_uring buffer ring) or the receive free list. One encoded event can thus be
// queued on thousands of connections and freed when the last send completes.
//
// Threading: a pool belongs to one worker thread; no call is thread-safe. Debug builds
// check double frees (unref at zero) with WEFT_ASSERT.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include <weft/base/assert.h>
#include <weft/base/result.h>

namespace weft::platform {

using BufId = std::uint32_t;
inline constexpr BufId kNoBuf = 0xffffffffu;

class BufferPool {
 public:
  BufferPool() noexcept = default;
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // Allocates the region and bookkeeping. buffer_size must be a multiple of 64 and at least
  // 256; recv_count <= count; count < 2^24. Errors: invalid_argument, or ENOMEM from mmap
  // (also when count * buffer_size does not fit the address space, e.g. >= 4 GiB on armhf).
  [[nodiscard]] Result<void> init(std::uint32_t count, std::uint32_t buffer_size,
                                  std::uint32_t recv_count) noexcept;

  [[nodiscard]] std::uint32_t count() const noexcept { return count_; }
  [[nodiscard]] std::uint32_t recv_count() const noexcept { return recv_count_; }
  [[nodiscard]] std::uint32_t buffer_size() const noexcept { return size_; }
  [[nodiscard]] std::byte* region() const noexcept { return region_; }

  [[nodiscard]] std::byte* data(BufId id) const noexcept {
    return region_ + static_cast<std::size_t>(id) * size_;
  }
  [[nodiscard]] std::span<std::byte> span(BufId id) const noexcept { return {data(id), size_}; }
  // The buffer that contains p, or kNoBuf when p is outside the region.
  [[nodiscard]] BufId id_of(const void* p) const noexcept;
  [[nodiscard]] bool is_recv(BufId id) const noexcept { return id < recv_count_; }

  // General partition: a free buffer with refcount 1, or kNoBuf when none is free.
  [[nodiscard]] BufId acquire() noexcept;
  // Receive partition, epoll style: a free receive buffer with refcount 1, or kNoBuf.
  [[nodiscard]] BufId acquire_recv() noexcept {
    if (free_recv_n_ == 0) {
      return kNoBuf;
    }
    const BufId id = free_recv_[--free_recv_n_];
    WEFT_ASSERT(refs_[id] == 0);
    refs_[id] = 1;
    return id;
  }
  // Receive partition, io_uring style: the kernel picked `id` from the buffer ring; the
  // pool records it as in use with refcount 1.
  void adopt_recv(BufId id) noexcept;
  // When set, receive buffers whose count reaches zero are handed to fn (which gives them
  // back to the kernel) instead of the receive free list. Set once, before use.
  using Recycler = void (*)(void* ctx, BufId id);
  void set_recv_recycler(Recycler fn, void* ctx) noexcept {
    recycler_ = fn;
    recycler_ctx_ = ctx;
  }

  // Inline: a receive and its echo take and drop several references each.
  void ref(BufId id) noexcept {
    WEFT_ASSERT(id < count_ && refs_[id] > 0);
    ++refs_[id];
  }
  // Drops one reference; at zero the buffer is free again.
  void unref(BufId id) noexcept {
    WEFT_ASSERT(id < count_ && refs_[id] > 0);  // a zero count here is a double free
    if (--refs_[id] == 0) {
      release(id);
    }
  }
  [[nodiscard]] std::uint32_t refcount(BufId id) const noexcept { return refs_[id]; }

  // Two scratch words per buffer for whoever holds it to chain buffers into a queue without
  // memory of its own (the core queues receives that arrive while reading is paused).
  // Meaningless once the buffer is free again.
  [[nodiscard]] std::uint32_t& link(BufId id) noexcept { return link_[id]; }
  [[nodiscard]] std::uint32_t& length(BufId id) noexcept { return length_[id]; }

  // Free buffers in each partition (receive: in the ring or on the free list).
  [[nodiscard]] std::uint32_t free_general() const noexcept { return free_general_n_; }
  [[nodiscard]] std::uint32_t free_recv() const noexcept { return free_recv_n_; }

 private:
  void release(BufId id) noexcept;

  std::byte* region_ = nullptr;
  std::size_t region_bytes_ = 0;
  std::uint32_t* refs_ = nullptr;          // per buffer
  std::uint32_t* free_general_ = nullptr;  // stack of ids
  std::uint32_t* free_recv_ = nullptr;     // stack of ids (epoll mode)
  std::uint32_t* link_ = nullptr;          // scratch, per buffer
  std::uint32_t* length_ = nullptr;        // scratch, per buffer
  std::uint32_t free_general_n_ = 0;
  std::uint32_t free_recv_n_ = 0;
  std::uint32_t count_ = 0;
  std::uint32_t recv_count_ = 0;
  std::uint32_t size_ = 0;
  Recycler recycler_ = nullptr;
  void* recycler_ctx_ = nullptr;
};

// A counted reference to a pool buffer (move-only). Destroying it drops the reference.
class BufRef {
 public:
  BufRef() noexcept = default;
  BufRef(BufferPool* pool, BufId id) noexcept : pool_(pool), id_(id) {}  // adopts one ref
  BufRef(BufRef&& o) noexcept : pool_(o.pool_), id_(std::exchange(o.id_, kNoBuf)) {}
  BufRef& operator=(BufRef&& o) noexcept {
    if (this != &o) {
      reset();
      pool_ = o.pool_;
      id_ = std::exchange(o.id_, kNoBuf);
    }
    return *this;
  }
  BufRef(const BufRef&) = delete;
  BufRef& operator=(const BufRef&) = delete;
  ~BufRef() { reset(); }

  // Takes a new reference to the same buffer.
  [[nodiscard]] BufRef share() const noexcept {
    if (id_ != kNoBuf) {
      pool_->ref(id_);
    }
    return BufRef(pool_, id_);
  }
  void reset() noexcept {
    if (id_ != kNoBuf) {
      pool_->unref(std::exchange(id_, kNoBuf));
    }
  }
  // Gives up ownership without dropping the reference.
  [[nodiscard]] BufId release() noexcept { return std::exchange(id_, kNoBuf); }
  [[nodiscard]] BufId id() const noexcept { return id_; }
  [[nodiscard]] bool valid() const noexcept { return id_ != kNoBuf; }
  [[nodiscard]] std::byte* data() const noexcept { return pool_->data(id_); }
  [[nodiscard]] BufferPool* pool() const noexcept { return pool_; }

 private:
  BufferPool* pool_ = nullptr;
  BufId id_ = kNoBuf;
};

}  // namespace weft::platform
