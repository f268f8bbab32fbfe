// Error codes of weft::msg (category "weft.msg") and the protocol error codes that ERROR and
// GOAWAY frames carry on the wire.
//
// msg_errc is what parse() and encode() return: a frame that breaks docs/protocol.md §6.
// A received frame that fails parse() is a protocol violation by the peer: the receiver
// sends ERROR (id 0, ProtocolError::bad_frame) if it can and closes the connection (the
// stream framing can no longer be trusted to mean what the peer meant). Codes are stable:
// they appear in logs and metrics. Converting to std::error_code never allocates; message()
// builds a std::string from a static text only when a caller asks for text (logs).
#pragma once

#include <cstdint>
#include <system_error>

namespace weft::msg {

enum class msg_errc : int {
  // Hostile or broken input (parse), or a frame encode() refuses to write.
  bad_length = 1,  // L < 8, a wrong fixed-size body, bytes left over where none may follow
  unknown_type,    // type byte is not one of FrameType
  reserved_flags,  // a reserved flag bit is set, or IDEMPOTENT on a type other than REQUEST
  bad_channel,     // channel is not 0 (multiplexed channels are reserved)
  bad_id,          // id is 0 where it must be non-zero, or non-zero where it must be 0
  truncated_body,  // the body ends inside its fixed fields or a declared topic/detail
  bad_field,       // a topic/detail length out of range, or HELLO's reserved field not 0
  // Caller errors (encode only).
  buffer_too_small,  // the output span cannot hold the encoded frame
  // Server and client (msg::Server, msg::Registry, weft::client).
  duplicate_method,  // Registry::add: the method id is taken (registered twice, or a collision)
  registry_full,     // Registry::add: Registry::kCapacity methods
  call_gone,         // the call ended (answered, cancelled, timed out, connection closed)
  already_answered,  // a second answer to the same call
  too_large,         // an answer or request exceeds the peer's max_frame
};

// The category object; name() is "weft.msg". Never allocates.
const std::error_category& msg_category() noexcept;

inline std::error_code make_error_code(msg_errc e) noexcept {
  return {static_cast<int>(e), msg_category()};
}

// Static text for a msg_errc (never null; "unknown weft.msg error" for other values).
const char* to_string(msg_errc e) noexcept;

// The u16 code of an ERROR or GOAWAY frame (docs/protocol.md §6.5). parse() does not
// validate it: a receiver treats a code it does not know as `internal`, which keeps old
// peers working when codes are added.
enum class ProtocolError : std::uint16_t {
  bad_frame = 1,            // the peer sent a frame that fails parse(); connection-fatal
  unsupported_version = 2,  // no common protocol version in HELLO; connection-fatal
  unknown_method = 3,       // REQUEST/MESSAGE method not served
  deadline_exceeded = 4,    // the request's deadline_ms ran out before a response
  cancelled = 5,            // the request was cancelled (CANCEL) before a response
  too_large = 6,            // a request or its response exceeds a limit
  overloaded = 7,           // no room (max_inflight, pools): retry later
  shutting_down = 8,        // the server is draining (GOAWAY); retry elsewhere
  internal = 9,             // a server-side failure
  bad_payload = 10,         // the payload does not decode as the method's message
  permission_denied = 11,   // an access rule refuses this caller the method (Options::access)
};

// True for the codes after which the sender closes the connection (bad_frame,
// unsupported_version): an ERROR with such a code always has id 0.
[[nodiscard]] constexpr bool is_connection_fatal(ProtocolError e) noexcept {
  return e == ProtocolError::bad_frame || e == ProtocolError::unsupported_version;
}

// Static text for a ProtocolError (never null; "unknown protocol error" for other values).
const char* to_string(ProtocolError e) noexcept;

// The category of ProtocolError as a std::error_code ("weft.msg.protocol"): what a client
// reports when the peer answered a call with ERROR code (the u16 value is the code's value).
const std::error_category& protocol_category() noexcept;
inline std::error_code make_error_code(ProtocolError e) noexcept {
  return {static_cast<int>(e), protocol_category()};
}

}  // namespace weft::msg

template <>
struct std::is_error_code_enum<weft::msg::msg_errc> : std::true_type {};
template <>
struct std::is_error_code_enum<weft::msg::ProtocolError> : std::true_type {};
