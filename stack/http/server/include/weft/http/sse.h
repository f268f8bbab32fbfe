// weft::http::sse — Server-Sent Events: the text/event-stream encoding (WHATWG HTML,
// "Server-sent events", §9.2.5 "Parsing an event stream" / §9.2.6 "Interpreting an event
// stream"), and the error codes of the SSE layer (category "weft.sse").
//
// What a client does with the bytes (the spec's algorithm, which encode() targets): lines end
// with CRLF, LF or a lone CR; an empty line dispatches the event; a line starting with ':' is
// a comment; otherwise the field name runs to the first ':' and ONE following space is
// removed from the value. `data` appends value + LF to the data buffer (the last LF is removed
// at dispatch), so a single "data:" line dispatches an empty message and an event without
// any data line is not dispatched at all. `id` sets the last event ID unless the value holds
// NUL; `event` sets the type (default "message"); `retry` sets the reconnection time when
// the value is all ASCII digits.
//
// So encode() writes, in this order, one field per line, each line ending with LF:
//   id: <id>\n            when id is non-empty
//   event: <event>\n      when event is non-empty
//   retry: <N>\n          when retry_ms is non-zero
//   data: <line>\n        once per line of data, the data split on LF, CRLF and lone CR;
//                         empty data gives one "data:\n" (an empty message, still dispatched)
//   \n                    the blank line that dispatches
// The space after each colon is always written, so values that start with a space survive.
// A line break inside data cannot be represented other than by splitting: a client gets
// every line break of the data back as LF (CRLF and CR become LF).
//
// Nothing here allocates, takes locks or touches global state: any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

namespace weft::http::sse {

// Error codes of the SSE layer (Streams' calls, and the abort reason of a slow subscriber).
// Stable: they appear in logs and metrics.
enum class sse_errc : int {
  invalid_argument = 1,  // Streams::init: a limit out of range; attach_hub twice or too late
  invalid_topic,         // topic empty or longer than StreamLimits::max_topic_len
  invalid_field,         // an event name holding CR or LF
  too_large,             // the encoded event exceeds the ring or the hub's shared buffer
  not_ready,             // Streams used before init() and attach_hub() succeeded
  slow_consumer,         // abort reason: SlowPolicy::close and the subscriber's queue is full
};

const std::error_category& sse_category() noexcept;

inline std::error_code make_error_code(sse_errc e) noexcept {
  return {static_cast<int>(e), sse_category()};
}

// Static text for an sse_errc (never null).
const char* to_string(sse_errc e) noexcept;

// One event's fields, views owned by the caller for the duration of the call.
struct Fields {
  std::string_view id;         // the event's id; CR, LF or NUL -> invalid (encode returns 0)
  std::string_view event;      // the event type; CR or LF -> invalid (encode returns 0)
  std::string_view data;       // any bytes; split into lines (see above). UTF-8 for browsers
  std::uint32_t retry_ms = 0;  // reconnection time sent with the event; 0: none
};

// Writes the event into out and returns its size in bytes. A return above out.size() means
// it did not fit (out's contents are then unspecified; call again with that many bytes).
// 0 means the fields are invalid (id or event holding a line break, id holding NUL); an
// encoded event is never empty (at least "data:\n\n").
[[nodiscard]] std::size_t encode(const Fields& f, std::span<char> out) noexcept;

// The size encode() needs for f, or 0 when f is invalid.
[[nodiscard]] std::size_t encoded_size(const Fields& f) noexcept;

// A comment block, ": <text>\n\n" (":\n\n" for empty text), for heartbeats and padding:
// clients ignore it, proxies see traffic. Returns the size as encode() does; 0 when text
// holds CR or LF.
[[nodiscard]] std::size_t comment(std::string_view text, std::span<char> out) noexcept;

// True when v can be an id field value (no CR, LF or NUL), or an event type (no CR or LF).
[[nodiscard]] bool valid_id(std::string_view v) noexcept;
[[nodiscard]] bool valid_event(std::string_view v) noexcept;

}  // namespace weft::http::sse

template <>
struct std::is_error_code_enum<weft::http::sse::sse_errc> : std::true_type {};
