// weft::alloc (weft/base/alloc_counter.h): every allocating entry point moves count(), and
// code that allocates nothing leaves it alone. Its own binary, linked with
// weft::alloc_counter, because that replaces the process's allocator.
#include <gtest/gtest.h>

#include <malloc.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>

#include <weft/base/alloc_counter.h>

namespace {

// Hides a pointer from the optimiser: without it, g++ may elide a new/delete or malloc/free
// pair entirely (allocation elision, [expr.new]/14), and the probe would count nothing.
template <class T>
void escape(T* p) {
  asm volatile("" : : "g"(p) : "memory");
}

#define WEFT_SKIP_WITHOUT_COUNTER()                                                     \
  do {                                                                                  \
    if (!weft::alloc::enabled()) {                                                      \
      GTEST_SKIP() << "counting allocator compiled out (sanitizer build or not glibc)"; \
    }                                                                                   \
  } while (0)

TEST(AllocCounter, EnabledOutsideSanitizers) {
#if defined(WEFT_SANITIZED)
  EXPECT_FALSE(weft::alloc::enabled());
  EXPECT_EQ(weft::alloc::count(), 0u);
#else
  EXPECT_TRUE(weft::alloc::enabled());
  EXPECT_GT(weft::alloc::count(), 0u);  // the C++ runtime and gtest allocated before main
#endif
}

TEST(AllocCounter, NewIntCountsOne) {
  WEFT_SKIP_WITHOUT_COUNTER();
  const std::uint64_t before = weft::alloc::count();
  int* p = new int(7);
  escape(p);
  const std::uint64_t after = weft::alloc::count();
  delete p;
  EXPECT_EQ(after - before, 1u);
}

TEST(AllocCounter, ArrayNothrowAndAlignedNewCount) {
  WEFT_SKIP_WITHOUT_COUNTER();
  struct alignas(64) Line {
    unsigned char bytes[64];
  };
  const std::uint64_t before = weft::alloc::count();
  int* a = new int[16];
  escape(a);
  int* n = new (std::nothrow) int(1);
  escape(n);
  Line* l = new Line;  // over-aligned: operator new(size_t, align_val_t)
  escape(l);
  const std::uint64_t after = weft::alloc::count();
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(l) % 64, 0u);
  delete l;
  delete n;
  delete[] a;
  EXPECT_EQ(after - before, 3u);
}

TEST(AllocCounter, MallocFamilyCounts) {
  WEFT_SKIP_WITHOUT_COUNTER();
  const std::uint64_t before = weft::alloc::count();
  void* m = std::malloc(24);
  escape(m);
  void* c = std::calloc(4, 8);
  escape(c);
  m = std::realloc(m, 4096);
  escape(m);
  void* pm = nullptr;
  ASSERT_EQ(posix_memalign(&pm, 64, 128), 0);
  escape(pm);
  void* aa = std::aligned_alloc(64, 128);
  escape(aa);
  const std::uint64_t after = weft::alloc::count();
  std::free(aa);
  std::free(pm);
  std::free(c);
  std::free(m);
  EXPECT_EQ(after - before, 5u);
  // Frees are not allocations.
  EXPECT_EQ(weft::alloc::count(), after);
}

TEST(AllocCounter, StringGrowthCounts) {
  WEFT_SKIP_WITHOUT_COUNTER();
  std::string s;  // empty: in the small-string buffer, no allocation
  const std::uint64_t before = weft::alloc::count();
  for (int i = 0; i < 100; ++i) {
    s.push_back('x');  // past the 15-byte SSO buffer, then each capacity doubling
  }
  escape(s.data());
  const std::uint64_t after = weft::alloc::count();
  EXPECT_GE(after - before, 1u);
  EXPECT_EQ(s.size(), 100u);
}

TEST(AllocCounter, StableAcrossLoopThatAllocatesNothing) {
  WEFT_SKIP_WITHOUT_COUNTER();
  char buf[256] = {};
  const std::uint64_t before = weft::alloc::count();
  std::uint64_t sum = 0;
  for (int i = 0; i < 100000; ++i) {
    buf[i % sizeof buf] = static_cast<char>(i);
    escape(buf);
    sum += static_cast<unsigned char>(buf[(i * 7) % sizeof buf]);
  }
  const std::uint64_t after = weft::alloc::count();
  EXPECT_EQ(after, before);
  EXPECT_GT(sum, 0u);
}

}  // namespace
