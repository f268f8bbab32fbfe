// detail::OutQueue — a connection's queue of outbound segments; detail::SegmentPool — the
// worker's store of segment arrays they borrow.
//
// Design: a segment is an iovec plus the id of the buffer it points into (a reference held
// until the bytes are sent). A queue holds no memory of its own while it is empty: on the
// first push it borrows a block of Config::max_out_iov segments (and the msghdr of its send)
// from the worker's SegmentPool, LIFO, and gives it back when it drains. An idle connection
// thus costs a few words here, and a worker touches only as many blocks as it has
// connections with output in flight at once (issue #13: per-connection iovec arrays used to
// cost 1.25 KiB per connection that had ever sent).
//
// Segment buffer ids: an id of the worker's BufferPool; id | kSharedBit for one of the
// runtime's SharedBuffers; kNoBuf for static bytes (nothing to release).
//
// Receive-buffer pinning: segments that point into receive buffers keep them away from the
// kernel. A queue pins at most SegmentPool::max_pinned() of them; past that, push_ref copies
// small byte runs into general buffers and refuses large ones (queue_full), so a few peers
// that never read cannot hold the receive partition (issue #13, section 2).
//
// Not thread-safe: one worker's thread. Unit-tested without sockets (out_queue_test.cc).
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include <weft/base/result.h>
#include <weft/platform/buffer_pool.h>
#include <weft/platform/error.h>

namespace weft::platform {
class SharedBuffers;
}

namespace weft::platform::detail {

inline constexpr BufId kSharedBit = 0x80000000u;
inline constexpr std::uint32_t kNoBlock = 0xffffffffu;
// Linux's IOV_MAX: a queue never has more segments than this in one sendmsg.
inline constexpr std::uint32_t kIovMax = 1024;

class SegmentPool {
 public:
  SegmentPool() noexcept = default;
  ~SegmentPool();
  SegmentPool(const SegmentPool&) = delete;
  SegmentPool& operator=(const SegmentPool&) = delete;

  // blocks of per_block segments (2..kIovMax). max_pinned: receive buffers one queue may
  // pin (>= 1). shared may be null (no shared buffers). Errors: invalid_argument, ENOMEM.
  [[nodiscard]] Result<void> init(std::uint32_t blocks, std::uint32_t per_block,
                                  std::uint32_t max_pinned, BufferPool* pool,
                                  SharedBuffers* shared) noexcept;

  [[nodiscard]] std::uint32_t per_block() const noexcept { return per_block_; }
  [[nodiscard]] std::uint32_t max_pinned() const noexcept { return max_pinned_; }
  [[nodiscard]] std::uint32_t free_blocks() const noexcept { return free_n_; }
  [[nodiscard]] std::uint32_t blocks() const noexcept { return blocks_; }
  [[nodiscard]] BufferPool& pool() const noexcept { return *pool_; }
  [[nodiscard]] SharedBuffers* shared() const noexcept { return shared_; }
  // Receive buffers pinned by all queues of this worker, and copies made to avoid pinning.
  [[nodiscard]] std::uint64_t pinned_total() const noexcept { return pinned_total_; }
  [[nodiscard]] std::uint64_t pin_copies() const noexcept { return pin_copies_; }

 private:
  friend class OutQueue;
  std::uint32_t acquire() noexcept;
  void release(std::uint32_t block) noexcept;
  [[nodiscard]] iovec* iov(std::uint32_t block) const noexcept {
    return iov_ + static_cast<std::size_t>(block) * per_block_;
  }
  [[nodiscard]] BufId* bufs(std::uint32_t block) const noexcept {
    return bufs_ + static_cast<std::size_t>(block) * per_block_;
  }
  [[nodiscard]] msghdr* msg(std::uint32_t block) const noexcept { return msgs_ + block; }
  // Inline for pool buffers (every send takes and drops one); shared ones are rarer.
  void ref(BufId id) noexcept {
    if (id < pool_->count()) {
      pool_->ref(id);
    } else if (id != kNoBuf) {
      ref_shared(id);
    }
  }
  void unref(BufId id) noexcept {
    if (id < pool_->count()) {
      pool_->unref(id);
    } else if (id != kNoBuf) {
      unref_shared(id);
    }
  }
  void ref_shared(BufId id) noexcept;
  void unref_shared(BufId id) noexcept;

  BufferPool* pool_ = nullptr;
  SharedBuffers* shared_ = nullptr;
  void* region_ = nullptr;
  std::size_t region_bytes_ = 0;
  iovec* iov_ = nullptr;
  BufId* bufs_ = nullptr;
  msghdr* msgs_ = nullptr;
  std::uint32_t* free_ = nullptr;  // LIFO stack of block indices: hot blocks stay hot
  std::uint32_t free_n_ = 0;
  std::uint32_t blocks_ = 0;
  std::uint32_t per_block_ = 0;
  std::uint32_t max_pinned_ = 1;
  std::uint64_t pinned_total_ = 0;
  std::uint64_t pin_copies_ = 0;
};

class OutQueue {
 public:
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] std::uint32_t segments() const noexcept { return n_; }
  [[nodiscard]] bool empty() const noexcept { return n_ == 0; }
  [[nodiscard]] bool sending() const noexcept { return sending_ != 0; }
  [[nodiscard]] std::uint32_t pinned() const noexcept { return pinned_; }
  // Whether a push of one more segment (or a copy) may succeed now.
  [[nodiscard]] bool has_room(const SegmentPool& sp) const noexcept;

  // Queues len bytes at p inside buffer `buf` (kNoBuf: static bytes). Takes its own
  // reference when it opens a new segment; bytes contiguous with the last queued segment of
  // the same buffer (not yet in flight) extend it. Errors: queue_full (no segment, or a large
  // run past the pin limit), no_buffers (a copy past the pin limit found no general buffer).
  [[nodiscard]] Result<void> push_ref(SegmentPool& sp, BufId buf, const std::byte* p,
                                      std::size_t len) noexcept {
    if (len == 0) {
      return {};  // borrows nothing
    }
    auto* base = const_cast<std::byte*>(p);  // sendmsg only reads it
    if (n_ > sending_) {
      // Contiguous with the last queued segment of the same buffer (not in flight): extend
      // it. An echo of 16 pipelined frames from one receive becomes one segment.
      iovec& last = sp.iov(block_)[n_ - 1];
      if (sp.bufs(block_)[n_ - 1] == buf &&
          static_cast<std::byte*>(last.iov_base) + last.iov_len == base) {
        last.iov_len += len;
        bytes_ += len;
        return {};
      }
    }
    // A new pin: a receive buffer this queue does not already reference (kNoBuf and shared
    // ids are above every pool id, so never). The cap counts buffers, not segments.
    const bool pin =
        buf < sp.pool_->recv_count() && (n_ == 0 || !holds(sp.bufs(block_), 0, n_, buf));
    if (pin && pinned_ >= sp.max_pinned_) {
      return push_past_pin_limit(sp, p, len);
    }
    if (block_ == kNoBlock) {
      if (sp.free_n_ == 0) {
        return fail(platform_errc::queue_full);
      }
      block_ = sp.free_[--sp.free_n_];
    } else if (n_ == sp.per_block_) {
      return fail(platform_errc::queue_full);
    }
    sp.ref(buf);
    sp.iov(block_)[n_] = iovec{base, len};
    sp.bufs(block_)[n_] = buf;
    ++n_;
    bytes_ += len;
    pinned_ += pin ? 1 : 0;
    sp.pinned_total_ += pin ? 1 : 0;
    return {};
  }
  // Copies head then body into general buffers, filling the last queued one first when it
  // is this queue's alone and not in flight. All or nothing. Errors: queue_full, no_buffers.
  [[nodiscard]] Result<void> push_copy(SegmentPool& sp, std::span<const std::byte> head,
                                       std::span<const std::byte> body = {}) noexcept;

  // The send: up to kIovMax queued segments. Precondition: !empty() && !sending().
  [[nodiscard]] const msghdr* begin_send(SegmentPool& sp) noexcept;
  // The send completed with n bytes: releases what was sent, keeps a partial segment's rest.
  void end_send(SegmentPool& sp, std::size_t n) noexcept;
  // Drops everything (after the socket is closed and no send is in flight).
  void clear(SegmentPool& sp) noexcept;

 private:
  // Whether a segment in bufs[from, to) points into buffer b. A queue pins a receive buffer
  // once however many of its segments point into it (pipelined answers from one receive), so
  // a pin starts with the buffer's first segment and ends with its last.
  static bool holds(const BufId* bufs, std::uint32_t from, std::uint32_t to, BufId b) noexcept {
    for (std::uint32_t i = from; i < to; ++i) {
      if (bufs[i] == b) {
        return true;
      }
    }
    return false;
  }
  bool ensure_block(SegmentPool& sp) noexcept;
  Result<void> push_past_pin_limit(SegmentPool& sp, const std::byte* p, std::size_t len) noexcept;
  void release_if_empty(SegmentPool& sp) noexcept;

  std::size_t bytes_ = 0;
  std::uint32_t block_ = kNoBlock;
  std::uint32_t n_ = 0;        // queued segments
  std::uint32_t sending_ = 0;  // segments [0, sending_) are in the send in flight
  std::uint32_t pinned_ = 0;   // segments that point into receive buffers
};

}  // namespace weft::platform::detail
