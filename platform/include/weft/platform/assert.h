// WEFT_ASSERT / WEFT_PANIC — the error policy's two escape hatches (docs/design.md, "Errors").
//
// WEFT_ASSERT(cond): an internal invariant; checked in debug and sanitizer builds, compiled
//   out in release (NDEBUG) builds. Hostile input must never be able to trip one.
// WEFT_PANIC("reason"): an environment failure that cannot happen after init (for example
//   epoll_ctl(EPOLL_CTL_DEL) failing on an fd weft owns). Prints the reason and aborts.
// Neither allocates.
#pragma once

namespace weft::detail {
[[noreturn]] void panic(const char* file, int line, const char* what) noexcept;
}  // namespace weft::detail

#define WEFT_PANIC(reason) ::weft::detail::panic(__FILE__, __LINE__, (reason))

#if !defined(NDEBUG) || defined(WEFT_SANITIZED)
#define WEFT_ASSERT(cond)                                          \
  do {                                                             \
    if (!(cond)) {                                                 \
      ::weft::detail::panic(__FILE__, __LINE__, "assert: " #cond); \
    }                                                              \
  } while (0)
#else
#define WEFT_ASSERT(cond) \
  do {                    \
  } while (0)
#endif
