#include <weft/base/assert.h>
#include <weft/platform/buffer_pool.h>
#include <weft/platform/error.h>

#include <sys/mman.h>
#include <cerrno>

namespace weft::platform {

BufferPool::~BufferPool() {
  if (region_ != nullptr) {
    ::munmap(region_, region_bytes_);
  }
}

Result<void> BufferPool::init(std::uint32_t count, std::uint32_t buffer_size,
                              std::uint32_t recv_count) noexcept {
  if (region_ != nullptr || count == 0 || count >= (1u << 24) || recv_count > count ||
      buffer_size < 256 || buffer_size % 64 != 0) {
    return fail(platform_errc::invalid_argument);
  }
  // Bookkeeping lives in the same mapping, after the buffers: one allocation, page aligned.
  // On 32-bit targets (armhf) count * buffer_size can exceed size_t: without the checks the
  // product wraps, mmap returns a short region and data(id) aliases other buffers.
  const std::size_t meta_bytes = static_cast<std::size_t>(count) * sizeof(std::uint32_t) * 5;
  std::size_t data_bytes = 0;
  std::size_t total = 0;
  if (__builtin_mul_overflow(static_cast<std::size_t>(count), static_cast<std::size_t>(buffer_size),
                             &data_bytes) ||
      __builtin_add_overflow(data_bytes, meta_bytes, &total)) {
    return fail_errno(ENOMEM);
  }
  void* p = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return fail_errno(errno);
  }
  region_ = static_cast<std::byte*>(p);
  region_bytes_ = total;
  refs_ = reinterpret_cast<std::uint32_t*>(region_ + data_bytes);
  free_general_ = refs_ + count;
  free_recv_ = free_general_ + count;
  link_ = free_recv_ + count;
  length_ = link_ + count;
  count_ = count;
  recv_count_ = recv_count;
  size_ = buffer_size;
  // Stacks are filled so that low ids are handed out first (better locality when idle).
  free_general_n_ = 0;
  for (std::uint32_t id = count; id-- > recv_count;) {
    free_general_[free_general_n_++] = id;
  }
  free_recv_n_ = 0;
  for (std::uint32_t id = recv_count; id-- > 0;) {
    free_recv_[free_recv_n_++] = id;
  }
  return {};
}

BufId BufferPool::id_of(const void* p) const noexcept {
  const auto* b = static_cast<const std::byte*>(p);
  if (b < region_ || b >= region_ + static_cast<std::size_t>(count_) * size_) {
    return kNoBuf;
  }
  return static_cast<BufId>(static_cast<std::size_t>(b - region_) / size_);
}

BufId BufferPool::acquire() noexcept {
  if (free_general_n_ == 0) {
    return kNoBuf;
  }
  BufId id = free_general_[--free_general_n_];
  WEFT_ASSERT(refs_[id] == 0);
  refs_[id] = 1;
  return id;
}

void BufferPool::adopt_recv(BufId id) noexcept {
  WEFT_ASSERT(id < recv_count_ && refs_[id] == 0 && free_recv_n_ > 0);
  refs_[id] = 1;
  --free_recv_n_;  // in recycler mode the stack is unused; only the count is kept
}

void BufferPool::release(BufId id) noexcept {
  if (id >= recv_count_) {
    free_general_[free_general_n_++] = id;
  } else if (recycler_ != nullptr) {
    ++free_recv_n_;
    recycler_(recycler_ctx_, id);
  } else {
    free_recv_[free_recv_n_++] = id;
  }
}

}  // namespace weft::platform
