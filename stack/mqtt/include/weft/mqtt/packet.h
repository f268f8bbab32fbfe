// weft::mqtt packets — MQTT 3.1.1 (OASIS 2014) and 5.0 (OASIS 2019) control packets as plain
// structs of views.
//
// Memory: a Packet holds no bytes of its own. Every std::string_view and std::span in it
// points either into the bytes the caller gave Decoder::feed() (zero-copy, when the whole
// packet arrived in one feed) or into the Decoder's assembly buffer (when it was split): see
// codec.h for how long each stays valid. To encode, the caller fills the views with its own
// bytes, which need to live only for the encode() call.
//
// One struct per packet kind, all present in Packet (only the one named by Packet::type is
// meaningful). Lists (SUBSCRIBE's filters, UNSUBSCRIBE's filters) are encoded from a span of
// items and decoded as a TopicList, a view over the wire bytes that iterates the items.
//
// Threading: plain values; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace weft::mqtt {

// The protocol level byte of CONNECT: 4 is MQTT 3.1.1, 5 is MQTT 5.0.
enum class Version : std::uint8_t { v311 = 4, v5 = 5 };

// Control packet types (fixed header bits 7-4). 0 is reserved (malformed); AUTH is v5 only.
enum class PacketType : std::uint8_t {
  connect = 1,
  connack = 2,
  publish = 3,
  puback = 4,
  pubrec = 5,
  pubrel = 6,
  pubcomp = 7,
  subscribe = 8,
  suback = 9,
  unsubscribe = 10,
  unsuback = 11,
  pingreq = 12,
  pingresp = 13,
  disconnect = 14,
  auth = 15,
};

// v5 property identifiers (MQTT 5.0 §2.2.2.2).
enum class PropertyId : std::uint8_t {
  payload_format_indicator = 0x01,
  message_expiry_interval = 0x02,
  content_type = 0x03,
  response_topic = 0x08,
  correlation_data = 0x09,
  subscription_identifier = 0x0B,
  session_expiry_interval = 0x11,
  assigned_client_identifier = 0x12,
  server_keep_alive = 0x13,
  authentication_method = 0x15,
  authentication_data = 0x16,
  request_problem_information = 0x17,
  will_delay_interval = 0x18,
  request_response_information = 0x19,
  response_information = 0x1A,
  server_reference = 0x1C,
  reason_string = 0x1F,
  receive_maximum = 0x21,
  topic_alias_maximum = 0x22,
  topic_alias = 0x23,
  maximum_qos = 0x24,
  retain_available = 0x25,
  user_property = 0x26,
  maximum_packet_size = 0x27,
  wildcard_subscription_available = 0x28,
  subscription_identifier_available = 0x29,
  shared_subscription_available = 0x2A,
};

// A name/value pair (User Property) to encode.
struct StringPair {
  std::string_view name;
  std::string_view value;
};

// The v5 properties weft understands, decoded into fields. A field with a has_ flag (or a
// non-empty view) is present. Decoding also sets `raw` to the whole property block so that
// repeated properties (User Property, Subscription Identifier) can be walked with
// PropertyCursor (codec.h); `user` is only read by encode(). Ignored entirely for 3.1.1.
struct Properties {
  bool has_session_expiry = false;
  std::uint32_t session_expiry = 0;  // seconds (CONNECT, CONNACK, DISCONNECT)
  bool has_receive_maximum = false;
  std::uint16_t receive_maximum = 0;  // 1..65535 (CONNECT, CONNACK)
  bool has_maximum_packet_size = false;
  std::uint32_t maximum_packet_size = 0;  // 1..2^32-1 (CONNECT, CONNACK)
  bool has_topic_alias_maximum = false;
  std::uint16_t topic_alias_maximum = 0;  // (CONNECT, CONNACK)
  std::uint16_t topic_alias = 0;          // 0: absent (PUBLISH)
  bool has_payload_format = false;
  std::uint8_t payload_format = 0;  // 0 or 1 (PUBLISH, will)
  bool has_message_expiry = false;
  std::uint32_t message_expiry = 0;  // (PUBLISH, will)
  bool has_will_delay = false;
  std::uint32_t will_delay = 0;  // (will)
  bool has_server_keep_alive = false;
  std::uint16_t server_keep_alive = 0;  // (CONNACK)
  bool has_maximum_qos = false;
  std::uint8_t maximum_qos = 0;  // 0 or 1 (CONNACK)
  bool has_retain_available = false;
  std::uint8_t retain_available = 0;          // 0 or 1 (CONNACK)
  std::uint32_t subscription_identifier = 0;  // 0: absent (SUBSCRIBE; first one of PUBLISH)
  std::string_view content_type;
  std::string_view response_topic;
  std::span<const std::byte> correlation_data;
  std::string_view assigned_client_identifier;
  std::string_view reason_string;
  std::string_view authentication_method;
  std::span<const std::byte> authentication_data;
  std::span<const StringPair> user;  // encode only
  std::span<const std::byte> raw;    // decode only: the property block after its length
};

// A will message (CONNECT).
struct Will {
  std::string_view topic;
  std::span<const std::byte> payload;
  std::uint8_t qos = 0;
  bool retain = false;
  Properties props;  // v5 will properties
};

struct Connect {
  Version version = Version::v311;
  bool clean_start = true;        // 3.1.1 Clean Session / 5.0 Clean Start
  std::uint16_t keep_alive = 60;  // seconds; 0 disables keep-alive
  std::string_view client_id;
  bool has_will = false;
  Will will;
  bool has_username = false;
  std::string_view username;
  bool has_password = false;
  std::span<const std::byte> password;
  Properties props;
};

struct Connack {
  bool session_present = false;
  std::uint8_t reason = 0;  // 3.1.1 return code 0-5, or a v5 reason code
  Properties props;
};

struct Publish {
  std::string_view topic;
  std::uint8_t qos = 0;
  bool dup = false;
  bool retain = false;
  std::uint16_t packet_id = 0;  // QoS 1 and 2 only (non-zero)
  Properties props;
  std::span<const std::byte> payload;
};

// PUBACK, PUBREC, PUBREL, PUBCOMP.
struct Ack {
  std::uint16_t packet_id = 0;
  std::uint8_t reason = 0;  // v5 only (absent on the wire when 0 and no properties)
  Properties props;
};

// One SUBSCRIBE item: the filter and its options byte (bits 0-1 QoS; v5 also bit 2 No
// Local, bit 3 Retain As Published, bits 4-5 Retain Handling).
struct Subscription {
  std::string_view filter;
  std::uint8_t options = 0;
};

// A decoded list of SUBSCRIBE items (with_options) or UNSUBSCRIBE filters, over wire bytes the
// Decoder has validated. Iterate with next() until it returns false.
struct TopicList {
  std::span<const std::byte> bytes;
  bool with_options = false;
  std::size_t count = 0;
  // Reads the item at *offset (start with 0) and advances it. False at the end.
  bool next(std::size_t& offset, Subscription& out) const noexcept;
};

struct Subscribe {
  std::uint16_t packet_id = 0;
  Properties props;
  std::span<const Subscription> items;  // encode
  TopicList list;                       // decode
};

// SUBACK and UNSUBACK: one reason code (3.1.1 SUBACK: 0, 1, 2 or 0x80) per filter. A 3.1.1
// UNSUBACK carries none.
struct SubAck {
  std::uint16_t packet_id = 0;
  Properties props;
  std::span<const std::uint8_t> reasons;
};

struct Unsubscribe {
  std::uint16_t packet_id = 0;
  Properties props;
  std::span<const std::string_view> filters;  // encode
  TopicList list;                             // decode
};

// DISCONNECT (v5 reason and properties; empty in 3.1.1) and AUTH (v5).
struct Disconnect {
  std::uint8_t reason = 0;
  Properties props;
};

struct Packet {
  PacketType type = PacketType::pingreq;
  Connect connect;
  Connack connack;
  Publish publish;
  Ack ack;  // PUBACK, PUBREC, PUBREL, PUBCOMP
  Subscribe subscribe;
  SubAck suback;  // SUBACK, UNSUBACK
  Unsubscribe unsubscribe;
  Disconnect disconnect;  // DISCONNECT, AUTH
};

}  // namespace weft::mqtt
