// Comma-separated list elements of a field value (RFC 9110 §5.6.1), whitespace-trimmed.
#pragma once

#include <cstddef>
#include <string_view>

namespace weft::http::detail {

inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Yields each element of "a, b ,c" in turn ("a", "b", "c"); empty elements come out empty.
class ListReader {
 public:
  explicit ListReader(std::string_view list) noexcept : rest_(list) {}
  [[nodiscard]] bool done() const noexcept { return done_; }
  std::string_view next() noexcept {
    const std::size_t comma = rest_.find(',');
    std::string_view element = rest_.substr(0, comma);
    if (comma == std::string_view::npos) {
      done_ = true;
      rest_ = {};
    } else {
      rest_.remove_prefix(comma + 1);
    }
    return trim(element);
  }

 private:
  std::string_view rest_;
  bool done_ = false;
};

}  // namespace weft::http::detail
