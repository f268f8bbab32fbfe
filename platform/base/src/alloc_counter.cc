// The counting allocator behind weft/base/alloc_counter.h. Everything lives in this one
// object file on purpose: whatever symbol makes the linker pull it (count(), malloc,
// operator new) brings the whole replacement with it, so malloc and operator new can never
// be half replaced.
//
// glibc exports its allocator a second time as __libc_malloc & co. and explicitly supports
// replacing malloc this way (manual, "Replacing malloc"); its own internal allocations go
// through the PLT and are counted too. reallocarray is replaced as well because glibc's
// calls __libc_realloc directly and would escape the count.
#include <weft/base/alloc_counter.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>  // also brings in <features.h>, which defines __GLIBC__

// ASan, TSan and MSan interpose malloc themselves; defining it again would either clash at
// link time or bypass their bookkeeping. WEFT_SANITIZED comes from WEFT_SANITIZE (UBSan
// alone included, to keep one rule); the compiler macros catch sanitizer flags set by hand.
#if defined(WEFT_SANITIZED) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WEFT_ALLOC_COUNTER_ENABLED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define WEFT_ALLOC_COUNTER_ENABLED 0
#endif
#endif
#if !defined(WEFT_ALLOC_COUNTER_ENABLED)
#if defined(__GLIBC__)
#define WEFT_ALLOC_COUNTER_ENABLED 1
#else
#define WEFT_ALLOC_COUNTER_ENABLED 0  // __libc_malloc is a glibc interface
#endif
#endif

#if WEFT_ALLOC_COUNTER_ENABLED

#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <new>

extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* ptr, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
void* __libc_valloc(std::size_t size);
void* __libc_pvalloc(std::size_t size);
void __libc_free(void* ptr);
}

namespace {

// Constant-initialised (zero before any constructor runs), so allocations made by other
// static initialisers are counted. Relaxed: the count is a statistic; readers that need
// another thread's allocations synchronise with that thread by other means.
std::atomic<std::uint64_t> g_allocations{0};

inline void bump() noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
}

// operator new's loop ([new.delete.single]): retry through the new-handler until it gives
// up. alignment 0 means the default alignment of malloc.
void* allocate_or_null(std::size_t size, std::size_t alignment) {
  if (size == 0) {
    size = 1;  // operator new(0) must return a unique pointer
  }
  for (;;) {
    void* p = alignment == 0 ? __libc_malloc(size) : __libc_memalign(alignment, size);
    if (p != nullptr) {
      return p;
    }
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      return nullptr;
    }
    handler();  // may throw std::bad_alloc, free memory, or terminate
  }
}

void* allocate_or_throw(std::size_t size, std::size_t alignment) {
  bump();
  void* p = allocate_or_null(size, alignment);
  if (p == nullptr) {
    // This file is built with exceptions on: operator new's contract is to throw, and a
    // program built with -fno-exceptions gets std::terminate() from the same throw.
    throw std::bad_alloc();
  }
  return p;
}

void* allocate_nothrow(std::size_t size, std::size_t alignment) noexcept {
  bump();
  try {
    return allocate_or_null(size, alignment);
  } catch (...) {  // a new-handler that throws bad_alloc means "no memory" here
    return nullptr;
  }
}

}  // namespace

namespace weft::alloc {

std::uint64_t count() noexcept {
  return g_allocations.load(std::memory_order_relaxed);
}

bool enabled() noexcept {
  return true;
}

}  // namespace weft::alloc

// ---- the C allocator -------------------------------------------------------------------

extern "C" {

void* malloc(std::size_t size) noexcept {
  bump();
  return __libc_malloc(size);
}

void* calloc(std::size_t count, std::size_t size) noexcept {
  bump();
  return __libc_calloc(count, size);
}

void* realloc(void* ptr, std::size_t size) noexcept {
  if (ptr == nullptr || size != 0) {  // realloc(p, 0) frees: not an allocation
    bump();
  }
  return __libc_realloc(ptr, size);
}

void* reallocarray(void* ptr, std::size_t count, std::size_t size) noexcept {
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc(ptr, bytes);
}

void free(void* ptr) noexcept {
  __libc_free(ptr);
}

void* memalign(std::size_t alignment, std::size_t size) noexcept {
  bump();
  return __libc_memalign(alignment, size);
}

void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  bump();
  return __libc_memalign(alignment, size);
}

int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
  bump();
  // POSIX: a power of two that is a multiple of sizeof(void*); errno is left alone.
  if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0 || alignment == 0) {
    return EINVAL;
  }
  const int saved_errno = errno;
  void* p = __libc_memalign(alignment, size);
  errno = saved_errno;
  if (p == nullptr) {
    return ENOMEM;
  }
  *out = p;
  return 0;
}

void* valloc(std::size_t size) noexcept {
  bump();
  return __libc_valloc(size);
}

void* pvalloc(std::size_t size) noexcept {
  bump();
  return __libc_pvalloc(size);
}

}  // extern "C"

// ---- every replaceable global operator new / delete ([new.delete]) -----------------------

void* operator new(std::size_t size) {
  return allocate_or_throw(size, 0);
}
void* operator new[](std::size_t size) {
  return allocate_or_throw(size, 0);
}
void* operator new(std::size_t size, const std::nothrow_t& /*tag*/) noexcept {
  return allocate_nothrow(size, 0);
}
void* operator new[](std::size_t size, const std::nothrow_t& /*tag*/) noexcept {
  return allocate_nothrow(size, 0);
}
void* operator new(std::size_t size, std::align_val_t alignment) {
  return allocate_or_throw(size, static_cast<std::size_t>(alignment));
}
void* operator new[](std::size_t size, std::align_val_t alignment) {
  return allocate_or_throw(size, static_cast<std::size_t>(alignment));
}
void* operator new(std::size_t size, std::align_val_t alignment,
                   const std::nothrow_t& /*tag*/) noexcept {
  return allocate_nothrow(size, static_cast<std::size_t>(alignment));
}
void* operator new[](std::size_t size, std::align_val_t alignment,
                     const std::nothrow_t& /*tag*/) noexcept {
  return allocate_nothrow(size, static_cast<std::size_t>(alignment));
}

void operator delete(void* ptr) noexcept {
  __libc_free(ptr);
}
void operator delete[](void* ptr) noexcept {
  __libc_free(ptr);
}
void operator delete(void* ptr, const std::nothrow_t& /*tag*/) noexcept {
  __libc_free(ptr);
}
void operator delete[](void* ptr, const std::nothrow_t& /*tag*/) noexcept {
  __libc_free(ptr);
}
void operator delete(void* ptr, std::size_t /*size*/) noexcept {
  __libc_free(ptr);
}
void operator delete[](void* ptr, std::size_t /*size*/) noexcept {
  __libc_free(ptr);
}
void operator delete(void* ptr, std::align_val_t /*alignment*/) noexcept {
  __libc_free(ptr);
}
void operator delete[](void* ptr, std::align_val_t /*alignment*/) noexcept {
  __libc_free(ptr);
}
void operator delete(void* ptr, std::align_val_t /*alignment*/,
                     const std::nothrow_t& /*tag*/) noexcept {
  __libc_free(ptr);
}
void operator delete[](void* ptr, std::align_val_t /*alignment*/,
                       const std::nothrow_t& /*tag*/) noexcept {
  __libc_free(ptr);
}
void operator delete(void* ptr, std::size_t /*size*/, std::align_val_t /*alignment*/) noexcept {
  __libc_free(ptr);
}
void operator delete[](void* ptr, std::size_t /*size*/, std::align_val_t /*alignment*/) noexcept {
  __libc_free(ptr);
}

#else  // !WEFT_ALLOC_COUNTER_ENABLED: the sanitizer's (or the C library's) allocator stays

namespace weft::alloc {

std::uint64_t count() noexcept {
  return 0;
}

bool enabled() noexcept {
  return false;
}

}  // namespace weft::alloc

#endif  // WEFT_ALLOC_COUNTER_ENABLED
