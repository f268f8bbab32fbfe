// weft::alloc — an opt-in, process-wide count of heap allocations, for tests and benchmarks
// that prove "zero allocation in the steady state" (STYLE point 8).
//
// Opt-in: link weft::alloc_counter and call count(): that is the opt-in. The library's one
// object file defines malloc, calloc, realloc, memalign, aligned_alloc, posix_memalign,
// valloc, pvalloc and every replaceable global operator new/delete; the definitions forward
// to glibc's allocator (__libc_malloc and friends) and add one to a relaxed atomic counter.
// Note what "opt-in" means for a static archive: the linker pulls that object file in for
// the first symbol it resolves, which is count() or enabled() — or malloc / operator new
// themselves, since nearly every program references them before libc is searched. So
// linking weft::alloc_counter at all installs the counting allocator; never link it into
// production binaries. It is not in weft.pc's Libs for that reason (pkg-config users add
// -lweft_alloc_counter by hand).
//
// What counts: every successful or failed call of an allocating entry point above, from any
// thread, including the C library's own internal mallocs (fopen, strdup, getaddrinfo) and
// the test framework's. realloc() counts unless it is a free (ptr != nullptr, size 0).
// Frees are not counted. Cost: one relaxed fetch_add per allocation.
//
// Under sanitizers (WEFT_SANITIZE; ASan/TSan own malloc) and on C libraries other than
// glibc the library compiles to a stub: nothing is replaced, enabled() is false and count()
// stays 0. Tests skip with a reason then.
//
// Thread-safety: count() and enabled() may be called from any thread, at any time
// (also before main()). count() is a relaxed load: to see another thread's allocations,
// synchronise with that thread first (join, a mutex, an acquire load).
#pragma once

#include <cstdint>

namespace weft::alloc {

// Allocations since process start (see "What counts" above); 0 when !enabled().
[[nodiscard]] std::uint64_t count() noexcept;

// True when the counting allocator is installed in this process.
[[nodiscard]] bool enabled() noexcept;

}  // namespace weft::alloc
