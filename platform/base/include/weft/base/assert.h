// WEFT_ASSERT / WEFT_PANIC — the error policy's two escape hatches (docs/design.md, "Errors").
//
// WEFT_ASSERT(cond): an internal invariant; checked in debug and sanitizer builds, compiled
//   out in release (NDEBUG) builds. Hostile input must never be able to trip one.
// WEFT_PANIC("reason"): an environment failure that cannot happen after init (for example
//   epoll_ctl(EPOLL_CTL_DEL) failing on an fd weft owns). Prints the reason and aborts.
// Neither allocates. Both may be used from any thread, and before main().
//
// Part of weft::base (header-only): panic() is an inline function, so a layer that only
// asserts (weft::frame) needs no library to link.
#pragma once

namespace weft::detail {

// Writes "weft: panic at FILE:LINE: WHAT" to stderr with one write(2) and aborts.
// `what` must be a NUL-terminated string; it is not copied.
// Cold: kept out of the hot path, so at a call site an assert costs a compare and a branch.
[[noreturn, gnu::cold]] inline void panic(const char* file, int line, const char* what) noexcept;

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

// ---- inline definitions ----------------------------------------------------------------

#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>

namespace weft::detail {

inline void panic(const char* file, int line, const char* what) noexcept {
  char buf[512];
  const int n = std::snprintf(buf, sizeof buf, "weft: panic at %s:%d: %s\n", file, line, what);
  if (n > 0) {
    const std::size_t len =
        static_cast<std::size_t>(n) < sizeof buf ? static_cast<std::size_t>(n) : sizeof buf - 1;
    const ssize_t ignored = ::write(2, buf, len);  // one write: no interleaving mid-line
    (void)ignored;
  }
  std::abort();
}

}  // namespace weft::detail
