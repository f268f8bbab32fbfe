// Query strings as views: an iterator over "key=value" pairs and percent-decoding into a
// caller buffer. Nothing allocates; nothing is decoded unless asked.
//
//   for (const QueryParam& p : QueryParams(request.query)) { ... p.key, p.value ... }
//   char buf[64];
//   Result<std::string_view> v = percent_decode(p.value, buf);  // "a%20b+c" -> "a b c"
//
// Splitting follows the WHATWG application/x-www-form-urlencoded rules: pairs are separated
// by '&', empty pairs ("a=1&&b=2") are skipped, the first '=' splits key from value, and a
// pair without '=' has an empty value (has_value false). Keys and values are raw: still
// percent-encoded, '+' not yet a space. Threading: plain values, no shared state.
#pragma once

#include <cstddef>
#include <iterator>
#include <optional>
#include <span>
#include <string_view>

#include <weft/base/result.h>

namespace weft::http {

struct QueryParam {
  std::string_view key;    // raw (percent-encoded)
  std::string_view value;  // raw; empty when has_value is false
  bool has_value = false;  // the pair had an '='
};

// Forward iterator over the pairs of one query string (views into it).
class QueryIterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = QueryParam;
  using difference_type = std::ptrdiff_t;
  using pointer = const QueryParam*;
  using reference = const QueryParam&;

  QueryIterator() noexcept = default;  // the end iterator
  explicit QueryIterator(std::string_view rest) noexcept : rest_(rest) { advance(); }

  reference operator*() const noexcept { return current_; }
  pointer operator->() const noexcept { return &current_; }
  QueryIterator& operator++() noexcept {
    advance();
    return *this;
  }
  QueryIterator operator++(int) noexcept {
    QueryIterator old = *this;
    advance();
    return old;
  }
  friend bool operator==(const QueryIterator& a, const QueryIterator& b) noexcept {
    return a.done_ == b.done_ && (a.done_ || a.rest_.data() == b.rest_.data());
  }

 private:
  void advance() noexcept;

  std::string_view rest_;  // what follows the current pair
  QueryParam current_;
  bool done_ = true;
};

// The pairs of `query` (Request::query: without the '?'), as a range.
class QueryParams {
 public:
  explicit QueryParams(std::string_view query) noexcept : query_(query) {}
  [[nodiscard]] QueryIterator begin() const noexcept { return QueryIterator(query_); }
  [[nodiscard]] QueryIterator end() const noexcept { return {}; }

  // The raw value of the first pair whose raw key equals `key` (byte for byte; encoded keys
  // are compared encoded), or nullopt. A key without '=' yields an empty value.
  [[nodiscard]] std::optional<std::string_view> find(std::string_view key) const noexcept;

 private:
  std::string_view query_;
};

enum class PlusIs : bool { literal, space };

// Decodes %XX escapes (and, with PlusIs::space, '+' into ' ': form encoding) of `in` into
// `out` and returns the view of the decoded bytes in `out`. out.size() >= in.size() always
// suffices (decoding never grows). Decoded bytes are not validated (a %00 yields NUL, %2F a
// '/'): check them where it matters (paths). Errors: http_errc::bad_percent_encoding for a
// '%' not followed by two hex digits; buffer_too_small when the output does not fit. On
// error `out` may hold a partial result.
[[nodiscard]] Result<std::string_view> percent_decode(std::string_view in, std::span<char> out,
                                                      PlusIs plus = PlusIs::space) noexcept;

}  // namespace weft::http
