#include <weft/http/sse.h>

#include <weft/base/error_category.h>

#include "sse_writer.h"

namespace weft::http::sse {

const char* to_string(sse_errc e) noexcept {
  switch (e) {
    case sse_errc::invalid_argument:
      return "invalid SSE stream limit or call order";
    case sse_errc::invalid_topic:
      return "SSE topic empty or too long";
    case sse_errc::invalid_field:
      return "SSE event field holds a line break";
    case sse_errc::too_large:
      return "SSE event larger than the ring or a shared buffer";
    case sse_errc::not_ready:
      return "SSE streams not initialised or not attached to a hub";
    case sse_errc::slow_consumer:
      return "SSE subscriber's queue exceeded max_queued_bytes";
  }
  return "unknown weft.sse error";
}

const std::error_category& sse_category() noexcept {
  // Constant-initialised (ErrorCategory's constructor is constexpr): safe from any thread.
  static const ErrorCategory<sse_errc> category("weft.sse", &to_string);
  return category;
}

bool valid_event(std::string_view v) noexcept {
  return v.find_first_of("\r\n") == std::string_view::npos;
}

bool valid_id(std::string_view v) noexcept {
  // A NUL makes a client ignore the whole id field (WHATWG: "If the field value does not
  // contain U+0000 NULL"): the event would silently keep the previous id.
  return valid_event(v) && v.find('\0') == std::string_view::npos;
}

std::size_t encoded_size(const Fields& f) noexcept {
  if (!valid_id(f.id) || !valid_event(f.event)) {
    return 0;
  }
  detail::SizeSink s;
  detail::write_event(f, s);
  return s.n;
}

std::size_t encode(const Fields& f, std::span<char> out) noexcept {
  const std::size_t n = encoded_size(f);
  if (n == 0 || n > out.size()) {
    return n;
  }
  detail::SpanSink s{out.data()};
  detail::write_event(f, s);
  return n;
}

std::size_t comment(std::string_view text, std::span<char> out) noexcept {
  if (!valid_event(text)) {
    return 0;
  }
  const std::size_t n = text.empty() ? 3 : 2 + text.size() + 2;
  if (n > out.size()) {
    return n;
  }
  detail::SpanSink s{out.data()};
  if (text.empty()) {
    s.put(":\n\n", 3);
  } else {
    s.put(": ", 2);
    s.put(text.data(), text.size());
    s.put("\n\n", 2);
  }
  return n;
}

}  // namespace weft::http::sse
