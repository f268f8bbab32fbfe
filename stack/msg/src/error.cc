#include <weft/msg/error.h>

#include <weft/base/error_category.h>

namespace weft::msg {

const char* to_string(msg_errc e) noexcept {
  switch (e) {
    case msg_errc::bad_length:
      return "message frame length wrong for its type";
    case msg_errc::unknown_type:
      return "unknown message frame type";
    case msg_errc::reserved_flags:
      return "reserved message flag set";
    case msg_errc::bad_channel:
      return "non-zero channel";
    case msg_errc::bad_id:
      return "correlation id not allowed for this frame type";
    case msg_errc::truncated_body:
      return "message body ends inside a field";
    case msg_errc::bad_field:
      return "message field out of range";
    case msg_errc::buffer_too_small:
      return "caller-provided buffer too small";
    case msg_errc::duplicate_method:
      return "method id already registered";
    case msg_errc::registry_full:
      return "method registry full";
    case msg_errc::call_gone:
      return "call no longer in flight";
    case msg_errc::already_answered:
      return "call already answered";
    case msg_errc::too_large:
      return "larger than the peer's max_frame";
  }
  return "unknown weft.msg error";
}

const char* to_string(ProtocolError e) noexcept {
  switch (e) {
    case ProtocolError::bad_frame:
      return "bad_frame";
    case ProtocolError::unsupported_version:
      return "unsupported_version";
    case ProtocolError::unknown_method:
      return "unknown_method";
    case ProtocolError::deadline_exceeded:
      return "deadline_exceeded";
    case ProtocolError::cancelled:
      return "cancelled";
    case ProtocolError::too_large:
      return "too_large";
    case ProtocolError::overloaded:
      return "overloaded";
    case ProtocolError::shutting_down:
      return "shutting_down";
    case ProtocolError::internal:
      return "internal";
    case ProtocolError::bad_payload:
      return "bad_payload";
    case ProtocolError::permission_denied:
      return "permission_denied";
  }
  return "unknown protocol error";
}

const std::error_category& msg_category() noexcept {
  // Constant-initialised (ErrorCategory's constructor is constexpr): safe from any thread,
  // before or after main, and never allocates.
  static const ErrorCategory<msg_errc> category("weft.msg", &to_string);
  return category;
}

const std::error_category& protocol_category() noexcept {
  static const ErrorCategory<ProtocolError> category("weft.msg.protocol", &to_string);
  return category;
}

}  // namespace weft::msg
