// Error codes of weft::client (category "weft.client"): what the client itself decides.
//
// A call's callback reports one of three kinds of std::error_code:
//   - weft.msg.protocol (msg::ProtocolError): the server answered ERROR with that code;
//     unknown codes are reported as `internal` (docs/protocol.md §6.5);
//   - weft.platform timed_out: the call's local deadline passed (a CANCEL was sent);
//   - weft.client (below): local limits, a lost connection, a closed client.
// Codes are stable (logs, metrics). Nothing here allocates except message() (text for logs).
#pragma once

#include <system_error>

namespace weft::client {

enum class client_errc : int {
  overloaded = 1,   // a local limit: the pending-call table, the subscription table, one
                    // ping in flight, or a pool's wait queue is full. Retry later.
  connection_lost,  // the connection closed before the answer: the call may or may not have
                    // run on the server (only idempotent calls are retried after it)
  not_connected,    // a one-way send (MESSAGE, PUBLISH, PING) found no ready connection
  bad_hello,        // the server's HELLO_ACK chose a version this client does not speak,
                    // announced limits it cannot work with, or another frame came first
  closed,           // the client was closed (Client::close) while the call was pending
  unavailable,      // an Upstream has no endpoint admitted (all ejected): fail fast (503)
};

const std::error_category& client_category() noexcept;

inline std::error_code make_error_code(client_errc e) noexcept {
  return {static_cast<int>(e), client_category()};
}

// Static text for a client_errc (never null).
const char* to_string(client_errc e) noexcept;

// Whether an attempt that failed with `e` did not run, or may be run again safely when it is
// idempotent: ERROR overloaded / shutting_down, connection_lost, and local overload. The
// client retries idempotent calls (same key) on these, with backoff and jitter.
[[nodiscard]] bool is_retryable(std::error_code e) noexcept;

}  // namespace weft::client

template <>
struct std::is_error_code_enum<weft::client::client_errc> : std::true_type {};
