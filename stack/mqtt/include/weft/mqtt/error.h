// Error codes of weft::mqtt (category "weft.mqtt") and the MQTT v5 reason code each maps to.
//
// mqtt_errc is what the Decoder, encode(), the topic functions and Session return. Groups:
//   - Decoder / Session::feed(): the peer's bytes break MQTT (connection-fatal). reason_code()
//     gives the v5 Reason Code to put in a DISCONNECT (v5) before closing; a 3.1.1 peer just
//     sees the connection closed.
//   - local calls (encode, publish, subscribe, ...): the caller's error; nothing changes.
// Converting to std::error_code never allocates. Codes are stable: they appear in logs.
#pragma once

#include <cstdint>
#include <system_error>

namespace weft::mqtt {

enum class mqtt_errc : int {
  // Decoder: malformed packets (v5 reason 0x81 Malformed Packet).
  malformed_packet = 1,  // bad fixed-header flags, a 5-byte Remaining Length, truncated
                         // fields, trailing bytes, bad UTF-8 or U+0000, QoS 3, bad lengths
  bad_property,          // property id unknown or not allowed in this packet (0x81)
  // Decoder / Session: protocol errors (0x82 Protocol Error).
  protocol_error,            // packet id 0 where forbidden, a repeated property, a bad property
                             // value, a packet the client must never receive, QoS 2 delivered
  unsupported_version,       // CONNECT protocol level not 4 or 5 (0x84)
  packet_too_large,          // the packet exceeds the configured maximum packet size (0x95)
  bad_topic_filter,          // wildcard rules broken, empty filter (0x8F Topic Filter invalid)
  bad_topic_name,            // wildcard or empty topic name (0x90 Topic Name invalid)
  receive_maximum_exceeded,  // more unacknowledged QoS 1 than allowed (0x93; for a server
                             // side: the client Session answers with would_block)
  topic_alias_invalid,       // a Topic Alias this side never allowed (0x94)
  // Local calls.
  buffer_too_small,    // encode()/next_packet(): the output span cannot hold the packet (0x83)
  would_block,         // publish(): the outbound queue is full under the stated policy (0x97)
  message_too_large,   // publish(): topic + payload exceed Config::max_message_bytes (0x95)
  not_connected,       // publish() QoS 0 while disconnected (policy drop), subscribe before
                       // connect(), ... (0x80)
  bad_argument,        // QoS above 1 for the Session, too many subscriptions, ... (0x83)
  bad_state,           // connect() twice, feed() before connect() (0x82)
  connection_refused,  // the broker's CONNACK refused the connection (its reason code)
  keep_alive_timeout,  // no PINGRESP (or no CONNACK) in time: the connection is dead (0x8D)
  auth_unsupported,    // an AUTH packet arrived; enhanced auth is not supported (0x8C)
  server_disconnect,   // the broker sent DISCONNECT (v5): the loop Client's close reason (0x80)
};

// The category object; name() is "weft.mqtt". Never allocates.
const std::error_category& mqtt_category() noexcept;

inline std::error_code make_error_code(mqtt_errc e) noexcept {
  return {static_cast<int>(e), mqtt_category()};
}

// Static text for an mqtt_errc (never null; "unknown weft.mqtt error" for other values).
const char* to_string(mqtt_errc e) noexcept;

// The MQTT v5 Reason Code (a DISCONNECT's or an ack's) that stands for `e`: 0x81 Malformed
// Packet, 0x82 Protocol Error, 0x84, 0x8C, 0x8D, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x97, else 0x80
// Unspecified error / 0x83 Implementation specific error as listed above.
[[nodiscard]] std::uint8_t reason_code(mqtt_errc e) noexcept;

// The v5 reason code for an std::error_code of this category (0x80 for any other category).
[[nodiscard]] std::uint8_t reason_code(std::error_code ec) noexcept;

// True for the codes the Decoder and Session::feed() report (the peer broke MQTT): close the
// connection (after a v5 DISCONNECT with reason_code()).
[[nodiscard]] constexpr bool is_connection_fatal(mqtt_errc e) noexcept {
  return e <= mqtt_errc::topic_alias_invalid || e == mqtt_errc::auth_unsupported ||
         e == mqtt_errc::keep_alive_timeout;
}

}  // namespace weft::mqtt

template <>
struct std::is_error_code_enum<weft::mqtt::mqtt_errc> : std::true_type {};
