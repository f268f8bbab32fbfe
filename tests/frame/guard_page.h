// GuardPage — test helper that places bytes so they end exactly at an inaccessible page.
//
// picohttpparser's trick: a decoder that reads even one byte past the end of its input
// touches the PROT_NONE page and dies with SIGSEGV, in every build (no sanitizer needed).
// The mapping is `pages` readable/writable pages followed by one PROT_NONE page; place()
// copies the input so that its last byte is the last accessible byte.
//
// Each place() first poisons the whole accessible region (0xa5), so a decoder that kept a
// pointer into an earlier input sees garbage instead of the old bytes. Writes through
// tail() catch the other direction: storage that ends at the guard page traps a decoder
// that writes past the storage it was given.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <span>

namespace weft::test {

class GuardPage {
 public:
  // Room for inputs of up to `capacity` bytes (rounded up to whole pages, at least one).
  explicit GuardPage(std::size_t capacity = 1) {
    page_ = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t pages = capacity == 0 ? 1 : (capacity + page_ - 1) / page_;
    data_bytes_ = pages * page_;
    void* p = ::mmap(nullptr, data_bytes_ + page_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::abort();  // a test environment that cannot map 2 pages cannot run these tests
    }
    base_ = static_cast<std::byte*>(p);
    if (::mprotect(base_ + data_bytes_, page_, PROT_NONE) != 0) {
      std::abort();
    }
  }
  ~GuardPage() { ::munmap(base_, data_bytes_ + page_); }
  GuardPage(const GuardPage&) = delete;
  GuardPage& operator=(const GuardPage&) = delete;

  // Copies `data` so that it ends at the guard page and returns the copy. Invalidates the
  // previous placement. Precondition: data.size() <= capacity().
  std::span<const std::byte> place(std::span<const std::byte> data) {
    if (data.size() > data_bytes_) {
      std::abort();
    }
    std::memset(base_, 0xa5, data_bytes_);
    std::byte* dst = end() - data.size();
    if (!data.empty()) {
      std::memcpy(dst, data.data(), data.size());
    }
    return {dst, data.size()};
  }

  // The last `n` writable bytes before the guard page (for caller-provided storage).
  std::span<std::byte> tail(std::size_t n) {
    if (n > data_bytes_) {
      std::abort();
    }
    return {end() - n, n};
  }

  [[nodiscard]] std::size_t capacity() const { return data_bytes_; }
  [[nodiscard]] std::byte* end() const { return base_ + data_bytes_; }

 private:
  std::byte* base_ = nullptr;
  std::size_t page_ = 0;
  std::size_t data_bytes_ = 0;
};

}  // namespace weft::test
