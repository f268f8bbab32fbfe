// Error codes of weft::frame (category "weft.frame").
//
// A decoder that reports one of these is in its sticky error state (see decoder.h): the
// connection's protocol closes the stream, or calls reset() to resynchronise on a fresh one.
// Codes are stable: they appear in logs and metrics. Converting to std::error_code never
// allocates; message() builds a std::string from a static text only when a caller asks for
// text (control plane, logs).
#pragma once

#include <system_error>

namespace weft::frame {

enum class frame_errc : int {
  // Hostile or broken input.
  oversize = 1,  // a frame is larger than the decoder's max_frame_size (prefix or line)
  bad_varint,    // a varint length prefix runs past 5 bytes or exceeds 2^32 - 1
  truncated,     // finish(): the peer closed the stream in the middle of a frame
  // Caller errors (configuration).
  no_assembly,       // a frame spans feed() calls but no assembly storage was set
  buffer_too_small,  // caller-provided storage is smaller than the call needs
};

// The category object; name() is "weft.frame". Never allocates.
const std::error_category& frame_category() noexcept;

inline std::error_code make_error_code(frame_errc e) noexcept {
  return {static_cast<int>(e), frame_category()};
}

// Static text for a frame_errc (never null; "unknown weft.frame error" for other values).
const char* to_string(frame_errc e) noexcept;

}  // namespace weft::frame

template <>
struct std::is_error_code_enum<weft::frame::frame_errc> : std::true_type {};
