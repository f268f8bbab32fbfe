// Error codes of weft::platform (category "weft.platform").
//
// A clean close is reported as an empty std::error_code, never as a code of this enum.
//
// System-call failures travel as std::error_code in std::system_category() (errno values);
// these codes cover the conditions weft itself decides. Codes are stable: they appear in
// logs and metrics. Converting to std::error_code never allocates; message() returns a
// static string wrapped in std::string only when a caller asks for text (control plane).
#pragma once

#include <system_error>

namespace weft::platform {

enum class platform_errc : int {
  invalid_argument = 1,  // a Config field or argument is out of range (the log names it)
  invalid_address,       // an address string did not parse ("127.0.0.1:80", "[::1]:80", "unix:/p")
  invalid_cpu_list,      // a cpu list string did not parse ("0-3,6")
  backend_unavailable,   // the requested backend cannot run here (reason logged at start)
  connection_limit,      // Config::max_connections / outbound_connections reached
  no_buffers,            // the buffer pool is exhausted (back-pressure, not a fault)
  queue_full,            // a fixed-capacity queue (output segments, post ring) is full
  timed_out,             // idle, read, write, close or connect timeout
  closed,                // the connection (or loop) is closed or closing; an abort's default
  shutting_down,         // the runtime is draining
  listener_limit,        // Loop::kMaxListeners services on one loop
};

const std::error_category& platform_category() noexcept;

inline std::error_code make_error_code(platform_errc e) noexcept {
  return {static_cast<int>(e), platform_category()};
}

// Static text for a platform_errc (never null).
const char* to_string(platform_errc e) noexcept;

}  // namespace weft::platform

template <>
struct std::is_error_code_enum<weft::platform::platform_errc> : std::true_type {};
