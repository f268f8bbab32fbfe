#include <weft/platform/detail/out_queue.h>
#include <weft/platform/error.h>
#include <weft/platform/shared_buffers.h>

#include <sys/mman.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

namespace weft::platform::detail {
namespace {

// Past the pin limit, runs up to this share of a buffer are copied out (cheap, and it frees
// a receive buffer); longer ones are refused so the connection backs off instead.
constexpr std::uint32_t kPinCopyDivisor = 4;

std::size_t align_up(std::size_t n, std::size_t a) {
  return (n + a - 1) / a * a;
}

}  // namespace

SegmentPool::~SegmentPool() {
  if (region_ != nullptr) {
    ::munmap(region_, region_bytes_);
  }
}

Result<void> SegmentPool::init(std::uint32_t blocks, std::uint32_t per_block,
                               std::uint32_t max_pinned, BufferPool* pool,
                               SharedBuffers* shared) noexcept {
  if (blocks == 0 || per_block < 2 || per_block > kIovMax || max_pinned == 0 || pool == nullptr ||
      blocks > (1u << 24)) {
    return fail(platform_errc::invalid_argument);
  }
  const std::size_t segs = static_cast<std::size_t>(blocks) * per_block;
  const std::size_t iov_bytes = align_up(segs * sizeof(iovec), 64);
  const std::size_t buf_bytes = align_up(segs * sizeof(BufId), 64);
  const std::size_t msg_bytes = align_up(blocks * sizeof(msghdr), 64);
  const std::size_t free_bytes = align_up(blocks * sizeof(std::uint32_t), 64);
  region_bytes_ = iov_bytes + buf_bytes + msg_bytes + free_bytes;
  // mmap, not new: pages are touched only by the blocks that are used, and the LIFO free
  // list keeps reusing the same few, so idle connections cost no resident memory here.
  void* mem =
      ::mmap(nullptr, region_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    region_ = nullptr;
    return fail_errno(errno);
  }
  region_ = mem;
  auto* base = static_cast<std::byte*>(mem);
  iov_ = reinterpret_cast<iovec*>(base);
  bufs_ = reinterpret_cast<BufId*>(base + iov_bytes);
  msgs_ = reinterpret_cast<msghdr*>(base + iov_bytes + buf_bytes);
  free_ = reinterpret_cast<std::uint32_t*>(base + iov_bytes + buf_bytes + msg_bytes);
  blocks_ = blocks;
  per_block_ = per_block;
  max_pinned_ = max_pinned;
  pool_ = pool;
  shared_ = shared;
  for (std::uint32_t i = 0; i < blocks; ++i) {
    free_[i] = blocks - 1 - i;  // block 0 on top
  }
  free_n_ = blocks;
  return {};
}

std::uint32_t SegmentPool::acquire() noexcept {
  return free_n_ == 0 ? kNoBlock : free_[--free_n_];
}

void SegmentPool::release(std::uint32_t block) noexcept {
  free_[free_n_++] = block;
}

void SegmentPool::ref_shared(BufId id) noexcept {
  shared_->ref(id & ~kSharedBit);
}

void SegmentPool::unref_shared(BufId id) noexcept {
  shared_->unref(id & ~kSharedBit);
}

// ---- OutQueue

bool OutQueue::has_room(const SegmentPool& sp) const noexcept {
  const bool segment = block_ != kNoBlock ? n_ < sp.per_block() : sp.free_blocks() != 0;
  return segment && sp.pool().free_general() != 0;
}

bool OutQueue::ensure_block(SegmentPool& sp) noexcept {
  if (block_ == kNoBlock) {
    block_ = sp.acquire();
  }
  return block_ != kNoBlock;
}

void OutQueue::release_if_empty(SegmentPool& sp) noexcept {
  if (n_ == 0 && sending_ == 0 && block_ != kNoBlock) {
    sp.release(block_);
    block_ = kNoBlock;
  }
}

Result<void> OutQueue::push_past_pin_limit(SegmentPool& sp, const std::byte* p,
                                           std::size_t len) noexcept {
  // This connection already holds its share of the receive partition in its queue.
  if (len <= sp.pool().buffer_size() / kPinCopyDivisor) {
    auto r = push_copy(sp, {p, len});
    if (r) {
      ++sp.pin_copies_;
    }
    return r;
  }
  return fail(platform_errc::queue_full);
}

Result<void> OutQueue::push_copy(SegmentPool& sp, std::span<const std::byte> head,
                                 std::span<const std::byte> body) noexcept {
  const std::size_t total = head.size() + body.size();
  if (total == 0) {
    return {};
  }
  BufferPool& pool = sp.pool();
  const std::size_t size = pool.buffer_size();
  // Room left in the last segment's buffer when that buffer is ours alone and not in flight.
  std::size_t tail = 0;
  if (n_ > sending_) {
    const BufId last = sp.bufs(block_)[n_ - 1];
    if (last != kNoBuf && (last & kSharedBit) == 0 && !pool.is_recv(last) &&
        pool.refcount(last) == 1) {
      const iovec& v = sp.iov(block_)[n_ - 1];
      auto* end = static_cast<std::byte*>(v.iov_base) + v.iov_len;
      tail = static_cast<std::size_t>(pool.data(last) + size - end);
    }
  }
  const std::size_t rest = total - std::min(tail, total);
  const std::size_t need = (rest + size - 1) / size;
  // All or nothing: check every resource before copying a byte.
  if (need != 0 && !ensure_block(sp)) {
    return fail(platform_errc::queue_full);
  }
  if (need > pool.free_general()) {
    release_if_empty(sp);
    return fail(platform_errc::no_buffers);
  }
  if (n_ + need > sp.per_block()) {
    release_if_empty(sp);
    return fail(platform_errc::queue_full);
  }
  std::size_t room = tail;
  std::byte* dst = nullptr;
  if (tail != 0) {
    const iovec& v = sp.iov(block_)[n_ - 1];
    dst = static_cast<std::byte*>(v.iov_base) + v.iov_len;
  }
  for (std::span<const std::byte> part : {head, body}) {
    while (!part.empty()) {
      if (room == 0) {
        const BufId id = pool.acquire();  // cannot fail: counted above
        sp.iov(block_)[n_] = iovec{pool.data(id), 0};
        sp.bufs(block_)[n_] = id;  // adopts the acquire() reference
        ++n_;
        dst = pool.data(id);
        room = size;
      }
      const std::size_t k = std::min(room, part.size());
      std::memcpy(dst, part.data(), k);
      sp.iov(block_)[n_ - 1].iov_len += k;
      dst += k;
      room -= k;
      part = part.subspan(k);
    }
  }
  bytes_ += total;
  return {};
}

const msghdr* OutQueue::begin_send(SegmentPool& sp) noexcept {
  sending_ = std::min(n_, kIovMax);
  msghdr* m = sp.msg(block_);
  *m = msghdr{};
  m->msg_iov = sp.iov(block_);
  m->msg_iovlen = sending_;
  return m;
}

void OutQueue::end_send(SegmentPool& sp, std::size_t n) noexcept {
  if (n == bytes_ && sending_ == n_) {
    // Everything queued was sent (the common case): release it all, no bookkeeping of rests.
    const BufId* bufs = sp.bufs(block_);
    for (std::uint32_t i = 0; i < n_; ++i) {
      sp.unref(bufs[i]);
    }
    sp.pinned_total_ -= pinned_;
    pinned_ = 0;
    bytes_ = 0;
    n_ = 0;
    sending_ = 0;
    sp.release(block_);
    block_ = kNoBlock;
    return;
  }
  iovec* iov = sp.iov(block_);
  BufId* bufs = sp.bufs(block_);
  BufferPool& pool = sp.pool();
  std::uint32_t i = 0;
  while (i < sending_ && n >= iov[i].iov_len) {
    n -= iov[i].iov_len;
    bytes_ -= iov[i].iov_len;
    const BufId b = bufs[i];
    if (b != kNoBuf && (b & kSharedBit) == 0 && pool.is_recv(b) && !holds(bufs, i + 1, n_, b)) {
      --pinned_;
      --sp.pinned_total_;
    }
    sp.unref(b);
    ++i;
  }
  if (i < sending_ && n != 0) {
    // Partial write: the rest of this segment goes in the next send.
    iov[i].iov_base = static_cast<std::byte*>(iov[i].iov_base) + n;
    iov[i].iov_len -= n;
    bytes_ -= n;
  }
  if (i != 0) {
    if (i != n_) {  // usually everything was sent: nothing to move
      std::memmove(iov, iov + i, (n_ - i) * sizeof(iovec));
      std::memmove(bufs, bufs + i, (n_ - i) * sizeof(BufId));
    }
    n_ -= i;
  }
  sending_ = 0;
  release_if_empty(sp);
}

void OutQueue::clear(SegmentPool& sp) noexcept {
  if (block_ != kNoBlock) {
    BufferPool& pool = sp.pool();
    for (std::uint32_t i = 0; i < n_; ++i) {
      const BufId b = sp.bufs(block_)[i];
      if (b != kNoBuf && (b & kSharedBit) == 0 && pool.is_recv(b) &&
          !holds(sp.bufs(block_), i + 1, n_, b)) {
        --sp.pinned_total_;
      }
      sp.unref(b);
    }
  }
  n_ = 0;
  sending_ = 0;
  pinned_ = 0;
  bytes_ = 0;
  release_if_empty(sp);
}

}  // namespace weft::platform::detail
