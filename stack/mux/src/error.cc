#include <weft/mux/error.h>

#include <weft/base/error_category.h>

namespace weft::mux {

const char* to_string(mux_errc e) noexcept {
  switch (e) {
    case mux_errc::bad_length:
      return "mux frame length wrong for its type";
    case mux_errc::unknown_type:
      return "unknown mux frame type";
    case mux_errc::reserved_flags:
      return "reserved mux flag set";
    case mux_errc::bad_channel:
      return "channel field not allowed for this frame type";
    case mux_errc::bad_id:
      return "non-zero id on a mux frame";
    case mux_errc::truncated_body:
      return "mux body ends inside a field";
    case mux_errc::bad_field:
      return "mux field out of range";
    case mux_errc::buffer_too_small:
      return "caller-provided buffer too small";
    case mux_errc::flow_control:
      return "DATA beyond the receive window";
    case mux_errc::window_overflow:
      return "WINDOW_UPDATE overflows the send window";
    case mux_errc::data_too_large:
      return "DATA larger than max_data";
    case mux_errc::unknown_channel:
      return "frame for a channel never opened";
    case mux_errc::bad_channel_id:
      return "OPEN with a bad channel id";
    case mux_errc::bad_state:
      return "frame not allowed in the channel's state";
    case mux_errc::open_flood:
      return "too many OPENs per second";
    case mux_errc::reset_flood:
      return "too many RESETs per second";
    case mux_errc::would_block:
      return "send queue full";
    case mux_errc::no_channel:
      return "channel not open";
    case mux_errc::closed:
      return "channel already half-closed by this side";
    case mux_errc::channel_limit:
      return "channel limit reached";
    case mux_errc::ids_exhausted:
      return "channel ids exhausted";
    case mux_errc::not_ready:
      return "peer settings not received yet";
    case mux_errc::bad_argument:
      return "argument out of range";
    case mux_errc::not_negotiated:
      return "peer did not negotiate channels (HELLO feature bit MUX)";
  }
  return "unknown weft.mux error";
}

const std::error_category& mux_category() noexcept {
  // Constant-initialised (ErrorCategory's constructor is constexpr): safe from any thread.
  static const ErrorCategory<mux_errc> category("weft.mux", &to_string);
  return category;
}

}  // namespace weft::mux
