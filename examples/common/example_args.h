// Small helpers the example programs share: command-line numbers and backends, and a
// printf-checked text buffer for metrics pages (no allocation).
#pragma once

#include <algorithm>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include <weft/platform/config.h>

namespace weft::examples {

// A decimal u32; false on anything else (empty, trailing bytes, out of range).
inline bool parse_u32(const char* s, std::uint32_t& out) noexcept {
  char* end = nullptr;
  const unsigned long v = std::strtoul(s, &end, 10);
  if (end == s || *end != '\0' || v > 0xffffffffUL) {
    return false;
  }
  out = static_cast<std::uint32_t>(v);
  return true;
}

// --backend: "auto", "uring" (or "io_uring") or "epoll"; false for anything else.
inline bool parse_backend(const char* s, platform::BackendKind& out) noexcept {
  if (!std::strcmp(s, "uring") || !std::strcmp(s, "io_uring")) {
    out = platform::BackendKind::uring;
  } else if (!std::strcmp(s, "epoll")) {
    out = platform::BackendKind::epoll;
  } else if (!std::strcmp(s, "auto")) {
    out = platform::BackendKind::automatic;
  } else {
    return false;
  }
  return true;
}

// Appends printf-formatted text to a fixed buffer; stops (silently) when it is full.
class TextBuffer {
 public:
  explicit TextBuffer(std::span<char> out) noexcept : out_(out) {}
  __attribute__((format(printf, 2, 3))) void put(const char* fmt, ...) noexcept {
    if (n_ >= out_.size()) {
      return;
    }
    va_list ap;
    va_start(ap, fmt);
    const int k = std::vsnprintf(out_.data() + n_, out_.size() - n_, fmt, ap);
    va_end(ap);
    n_ = k > 0 ? std::min(n_ + static_cast<std::size_t>(k), out_.size()) : n_;
  }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }

 private:
  std::span<char> out_;
  std::size_t n_ = 0;
};

}  // namespace weft::examples
