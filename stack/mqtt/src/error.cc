#include <weft/mqtt/error.h>

#include <weft/base/error_category.h>

namespace weft::mqtt {

const char* to_string(mqtt_errc e) noexcept {
  switch (e) {
    case mqtt_errc::malformed_packet:
      return "malformed MQTT packet";
    case mqtt_errc::bad_property:
      return "MQTT property not valid for the packet";
    case mqtt_errc::protocol_error:
      return "MQTT protocol error";
    case mqtt_errc::unsupported_version:
      return "unsupported MQTT protocol version";
    case mqtt_errc::packet_too_large:
      return "MQTT packet too large";
    case mqtt_errc::bad_topic_filter:
      return "invalid MQTT topic filter";
    case mqtt_errc::bad_topic_name:
      return "invalid MQTT topic name";
    case mqtt_errc::receive_maximum_exceeded:
      return "MQTT receive maximum exceeded";
    case mqtt_errc::topic_alias_invalid:
      return "MQTT topic alias invalid";
    case mqtt_errc::buffer_too_small:
      return "caller-provided buffer too small";
    case mqtt_errc::would_block:
      return "MQTT outbound queue full";
    case mqtt_errc::message_too_large:
      return "MQTT message larger than a queue slot";
    case mqtt_errc::not_connected:
      return "MQTT session not connected";
    case mqtt_errc::bad_argument:
      return "argument out of range";
    case mqtt_errc::bad_state:
      return "call not allowed in the MQTT session's state";
    case mqtt_errc::connection_refused:
      return "MQTT broker refused the connection";
    case mqtt_errc::keep_alive_timeout:
      return "MQTT keep-alive timeout";
    case mqtt_errc::auth_unsupported:
      return "MQTT enhanced authentication not supported";
    case mqtt_errc::server_disconnect:
      return "MQTT broker sent DISCONNECT";
  }
  return "unknown weft.mqtt error";
}

std::uint8_t reason_code(mqtt_errc e) noexcept {
  switch (e) {
    case mqtt_errc::malformed_packet:
    case mqtt_errc::bad_property:
      return 0x81;
    case mqtt_errc::protocol_error:
    case mqtt_errc::bad_state:
      return 0x82;
    case mqtt_errc::unsupported_version:
      return 0x84;
    case mqtt_errc::packet_too_large:
    case mqtt_errc::message_too_large:
      return 0x95;
    case mqtt_errc::bad_topic_filter:
      return 0x8F;
    case mqtt_errc::bad_topic_name:
      return 0x90;
    case mqtt_errc::receive_maximum_exceeded:
      return 0x93;
    case mqtt_errc::topic_alias_invalid:
      return 0x94;
    case mqtt_errc::would_block:
      return 0x97;
    case mqtt_errc::keep_alive_timeout:
      return 0x8D;
    case mqtt_errc::auth_unsupported:
      return 0x8C;
    case mqtt_errc::buffer_too_small:
    case mqtt_errc::bad_argument:
      return 0x83;
    case mqtt_errc::not_connected:
    case mqtt_errc::connection_refused:
    case mqtt_errc::server_disconnect:
      return 0x80;
  }
  return 0x80;
}

std::uint8_t reason_code(std::error_code ec) noexcept {
  if (ec.category() != mqtt_category()) {
    return 0x80;
  }
  return reason_code(static_cast<mqtt_errc>(ec.value()));
}

const std::error_category& mqtt_category() noexcept {
  // Constant-initialised (ErrorCategory's constructor is constexpr): safe from any thread.
  static const ErrorCategory<mqtt_errc> category("weft.mqtt", &to_string);
  return category;
}

}  // namespace weft::mqtt
