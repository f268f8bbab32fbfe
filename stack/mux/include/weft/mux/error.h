// Error codes of weft::mux (category "weft.mux") and the u16 codes that REFUSE and RESET
// frames carry on the wire (docs/protocol.md §7).
//
// mux_errc is what parse(), encode() and Session return. Three groups:
//   - parse()/encode(): a frame that breaks §7.2-7.3 (the peer's frame: connection-fatal);
//   - Session::feed(): a frame that parses but breaks the channel rules of §7.4-7.7
//     (windows, ids, states, rates): connection-fatal, sticky in the Session;
//   - Session's local calls (open, write, ...): the caller's error; the Session is unchanged.
// Converting to std::error_code never allocates; message() builds a std::string from a static
// text only when a caller asks for text (logs). Codes are stable: they appear in logs.
#pragma once

#include <cstdint>
#include <system_error>

namespace weft::mux {

enum class mux_errc : int {
  // parse() / encode(): hostile or broken frames.
  bad_length = 1,    // L < 8, a wrong fixed-size body, DATA without payload and without FIN
  unknown_type,      // type byte is not 0x10-0x16
  reserved_flags,    // a reserved flag bit, or FIN on a type other than DATA
  bad_channel,       // channel 0 where a channel is required, or non-zero on MUX_SETTINGS
  bad_id,            // the header's id is not 0
  truncated_body,    // the body ends inside a fixed field or the declared name
  bad_field,         // a window/increment of 0 or above 2^31-1, name_len 0, reserved bits set
  buffer_too_small,  // encode()/next_frame(): the output span cannot hold the frame
  // Session::feed(): connection-fatal protocol errors (sticky until the Session is dropped).
  flow_control,     // DATA beyond the channel's or the connection's receive window
  window_overflow,  // WINDOW_UPDATE takes a send window above 2^31-1
  data_too_large,   // DATA payload above the max_data this side announced
  unknown_channel,  // a frame for a channel id that was never opened
  bad_channel_id,   // OPEN with the wrong parity or an id not above the peer's last one
  bad_state,        // a frame the channel's state forbids (DATA after FIN, a second
                    // OPEN_ACK, anything before MUX_SETTINGS, a second MUX_SETTINGS)
  open_flood,       // more OPENs in one second than Limits::max_opens_per_sec
  reset_flood,      // more RESETs in one second than Limits::max_resets_per_sec
  // Session's local calls.
  would_block,    // write(): the channel's or the connection's send queue is full
  no_channel,     // the channel is not live (never opened, closed, reset)
  closed,         // write()/close() after this side's FIN
  channel_limit,  // open(): the peer's max_channels or this side's slots are all in use
  ids_exhausted,  // open(): every channel id of this side's parity was used once
  not_ready,      // open(): the peer's MUX_SETTINGS has not arrived yet
  bad_argument,   // a name outside 1..255 bytes, consume() beyond what was received, ...
  // weft::mux::Endpoint (the connection).
  not_negotiated,  // the peer's HELLO / HELLO_ACK did not set feature bit MUX (§7.1)
};

// The category object; name() is "weft.mux". Never allocates.
const std::error_category& mux_category() noexcept;

inline std::error_code make_error_code(mux_errc e) noexcept {
  return {static_cast<int>(e), mux_category()};
}

// Static text for a mux_errc (never null; "unknown weft.mux error" for other values).
const char* to_string(mux_errc e) noexcept;

// True for the codes Session::feed() reports (the peer broke the protocol): the connection
// must be closed (docs/protocol.md §7.8 says what to send first).
[[nodiscard]] constexpr bool is_connection_fatal(mux_errc e) noexcept {
  return (e >= mux_errc::bad_length && e <= mux_errc::bad_field) ||
         (e >= mux_errc::flow_control && e <= mux_errc::reset_flood);
}

// The u16 code of a REFUSE or RESET frame (docs/protocol.md §7.8). parse() does not validate
// it: a receiver reads a code it does not know as `internal`.
enum class ChannelError : std::uint16_t {
  refused = 1,        // REFUSE: no service/topic of that name (the application said no)
  overloaded = 2,     // REFUSE: max channels reached (no slot); retry later
  cancel = 3,         // RESET: the sender no longer wants the channel
  internal = 4,       // RESET: a failure inside the sender
  flow_control = 5,   // RESET: reserved (a window violation is connection-fatal in version 1)
  shutting_down = 6,  // REFUSE/RESET: the sender is draining
};

}  // namespace weft::mux

template <>
struct std::is_error_code_enum<weft::mux::mux_errc> : std::true_type {};
