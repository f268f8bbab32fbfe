// The SSE event writer behind sse::encode() and Streams' ring (private to weft::http_server):
// one template over a byte sink, so that the ring writes an event straight into its storage
// (wrapping around its end) without a scratch copy.
//
// Sink: `void put(const char* p, std::size_t n) noexcept`. The caller validates the fields.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include <weft/http/sse.h>

namespace weft::http::sse::detail {

// Writes f (valid) into sink; see sse.h for the layout.
template <class Sink>
void write_event(const Fields& f, Sink& sink) noexcept {
  const auto field = [&](std::string_view name, std::string_view value) {
    sink.put(name.data(), name.size());
    sink.put(value.data(), value.size());
    sink.put("\n", 1);
  };
  if (!f.id.empty()) {
    field("id: ", f.id);
  }
  if (!f.event.empty()) {
    field("event: ", f.event);
  }
  if (f.retry_ms != 0) {
    char digits[16];
    const auto r = std::to_chars(digits, digits + sizeof digits, f.retry_ms);
    field("retry: ", std::string_view(digits, static_cast<std::size_t>(r.ptr - digits)));
  }
  // One data line per line of data. CRLF is one break, a lone CR or LF one each (the
  // spec's line ends), so a client's data buffer gets exactly the data's lines back.
  std::string_view d = f.data;
  while (true) {
    std::size_t i = 0;
    while (i < d.size() && d[i] != '\n' && d[i] != '\r') {
      ++i;
    }
    if (i == 0) {
      sink.put("data:\n", 6);  // an empty line: no space needed
    } else {
      field("data: ", d.substr(0, i));
    }
    if (i == d.size()) {
      break;
    }
    i += d[i] == '\r' && i + 1 < d.size() && d[i + 1] == '\n' ? 2 : 1;
    d.remove_prefix(i);
  }
  sink.put("\n", 1);
}

// Counts bytes only.
struct SizeSink {
  std::size_t n = 0;
  void put(const char*, std::size_t k) noexcept { n += k; }
};

// Writes into a span that is known to be large enough.
struct SpanSink {
  char* p;
  void put(const char* s, std::size_t k) noexcept {
    if (k != 0) {  // an empty view's data() may be null
      std::memcpy(p, s, k);
    }
    p += k;
  }
};

}  // namespace weft::http::sse::detail
