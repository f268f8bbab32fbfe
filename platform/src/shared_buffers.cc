#include <weft/platform/error.h>
#include <weft/platform/shared_buffers.h>

#include <sys/mman.h>
#include <cerrno>
#include <new>

#include <weft/base/assert.h>

namespace weft::platform {

SharedRef& SharedRef::operator=(SharedRef&& o) noexcept {
  if (this != &o) {
    reset();
    pool_ = o.pool_;
    id_ = std::exchange(o.id_, kNone);
    length_ = o.length_;
  }
  return *this;
}

SharedRef SharedRef::share() const noexcept {
  if (id_ == kNone) {
    return {};
  }
  pool_->ref(id_);
  SharedRef r(pool_, id_);
  r.length_ = length_;
  return r;
}

void SharedRef::reset() noexcept {
  if (id_ != kNone) {
    pool_->unref(std::exchange(id_, kNone));
  }
}

SharedBuffers::~SharedBuffers() {
  if (region_ != nullptr) {
    ::munmap(region_, region_bytes_);
  }
}

Result<void> SharedBuffers::init(std::uint32_t count, std::uint32_t size) noexcept {
  if (count == 0 || count >= (1u << 24) || size < 64 || size % 64 != 0 || region_ != nullptr) {
    return fail(platform_errc::invalid_argument);
  }
  const std::size_t bytes = static_cast<std::size_t>(count) * size;
  if (bytes / size != count) {
    return fail_errno(ENOMEM);  // does not fit the address space (32-bit targets)
  }
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    return fail_errno(errno);
  }
  refs_.reset(new (std::nothrow) std::atomic<std::uint32_t>[count]);
  next_.reset(new (std::nothrow) std::atomic<std::uint32_t>[count]);
  if (!refs_ || !next_) {
    ::munmap(mem, bytes);
    return fail_errno(ENOMEM);
  }
  region_ = static_cast<std::byte*>(mem);
  region_bytes_ = bytes;
  count_ = count;
  size_ = size;
  for (std::uint32_t i = count; i-- > 0;) {
    refs_[i].store(0, std::memory_order_relaxed);
    push_free(i);
  }
  return {};
}

// Treiber stack. head_ = [tag:32 | id + 1:32]; every successful pop or push bumps the tag, so
// a pop that read head, was delayed while the same id was popped and pushed back, fails its
// compare-exchange instead of installing a stale `next`.
void SharedBuffers::push_free(std::uint32_t id) noexcept {
  std::uint64_t head = head_.load(std::memory_order_relaxed);
  std::uint64_t next;
  do {
    next_[id].store(static_cast<std::uint32_t>(head), std::memory_order_relaxed);
    next = ((head >> 32) + 1) << 32 | (id + 1);
    // release: the link above (and the buffer's last reader's accesses) before the publish.
  } while (!head_.compare_exchange_weak(head, next, std::memory_order_release,
                                        std::memory_order_relaxed));
  free_n_.fetch_add(1, std::memory_order_relaxed);
}

SharedRef SharedBuffers::acquire() noexcept {
  std::uint64_t head = head_.load(std::memory_order_acquire);
  std::uint64_t next;
  std::uint32_t id;
  do {
    if (static_cast<std::uint32_t>(head) == 0) {
      return {};
    }
    id = static_cast<std::uint32_t>(head) - 1;
    next = ((head >> 32) + 1) << 32 | next_[id].load(std::memory_order_relaxed);
  } while (!head_.compare_exchange_weak(head, next, std::memory_order_acquire,
                                        std::memory_order_acquire));
  free_n_.fetch_sub(1, std::memory_order_relaxed);
  refs_[id].store(1, std::memory_order_relaxed);
  return SharedRef(this, id);
}

void SharedBuffers::unref(std::uint32_t id) noexcept {
  const std::uint32_t before = refs_[id].fetch_sub(1, std::memory_order_acq_rel);
  WEFT_ASSERT(before != 0);
  if (before == 1) {
    push_free(id);
  }
}

}  // namespace weft::platform
