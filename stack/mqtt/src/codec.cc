#include <weft/mqtt/codec.h>
#include <weft/mqtt/topic.h>

#include <algorithm>
#include <cstring>

namespace weft::mqtt {
namespace {

constexpr std::uint32_t kMaxRemaining = 268'435'455;  // 5.0 §1.5.5: four varint bytes

// A bounds-checked reader: every read checks the bytes are there; a short read sets bad_.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) noexcept : in_(in) {}
  [[nodiscard]] std::size_t left() const noexcept { return in_.size() - pos_; }
  [[nodiscard]] bool bad() const noexcept { return bad_; }
  std::uint32_t be(std::size_t n) noexcept {
    if (left() < n) {
      bad_ = true;
      pos_ = in_.size();
      return 0;
    }
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      v = (v << 8) | std::to_integer<std::uint32_t>(in_[pos_ + i]);
    }
    pos_ += n;
    return v;
  }
  std::uint8_t u8() noexcept { return static_cast<std::uint8_t>(be(1)); }
  std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(be(2)); }
  // 5.0 §1.5.5: at most four bytes, and (as for the Remaining Length) minimal.
  std::uint32_t varint() noexcept {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const std::uint32_t b = be(1);
      if (bad_) {
        return 0;
      }
      v |= (b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) {
        if (i > 0 && b == 0) {
          bad_ = true;  // non-minimal encoding
        }
        return v;
      }
    }
    bad_ = true;
    return 0;
  }
  std::span<const std::byte> bytes(std::size_t n) noexcept {
    if (left() < n) {
      bad_ = true;
      pos_ = in_.size();
      return {};
    }
    const auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  std::span<const std::byte> binary() noexcept { return bytes(u16()); }
  std::string_view raw_string() noexcept {
    const auto s = binary();
    return {reinterpret_cast<const char*>(s.data()), s.size()};
  }
  std::span<const std::byte> rest() noexcept { return bytes(left()); }

 private:
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
  bool bad_ = false;
};

// Writes into `p` (or only counts when p is null): the same code sizes and encodes.
class Writer {
 public:
  Writer(std::byte* p, std::size_t cap) noexcept : p_(p), cap_(cap) {}
  void u8(std::uint32_t v) noexcept {
    if (p_ != nullptr && pos_ < cap_) {
      p_[pos_] = static_cast<std::byte>(v);
    }
    ++pos_;
  }
  void u16(std::uint32_t v) noexcept {
    u8(v >> 8);
    u8(v);
  }
  void u32(std::uint32_t v) noexcept {
    u16(v >> 16);
    u16(v & 0xffff);
  }
  void varint(std::uint32_t v) noexcept {
    do {
      std::uint32_t b = v & 0x7f;
      v >>= 7;
      if (v != 0) {
        b |= 0x80;
      }
      u8(b);
    } while (v != 0);
  }
  void bytes(std::span<const std::byte> s) noexcept {
    if (p_ != nullptr && pos_ + s.size() <= cap_ && !s.empty()) {
      std::memcpy(p_ + pos_, s.data(), s.size());
    }
    pos_ += s.size();
  }
  void binary(std::span<const std::byte> s) noexcept {
    if (s.size() > 0xffff) {
      too_long_ = true;
    }
    u16(static_cast<std::uint32_t>(s.size()));
    bytes(s);
  }
  void string(std::string_view s) noexcept { binary(std::as_bytes(std::span(s.data(), s.size()))); }
  [[nodiscard]] std::size_t pos() const noexcept { return pos_; }
  [[nodiscard]] bool too_long() const noexcept { return too_long_; }

 private:
  std::byte* p_;
  std::size_t cap_;
  std::size_t pos_ = 0;
  bool too_long_ = false;
};

enum class PType : std::uint8_t { byte, u16, u32, varint, string, binary, pair };

// Bit n: allowed in PacketType n; bit 0: allowed in a will's properties (5.0 §2.2.2.2).
constexpr std::uint16_t bit(PacketType t) {
  return static_cast<std::uint16_t>(1u << static_cast<unsigned>(t));
}
constexpr std::uint16_t kWill = 1;
constexpr std::uint16_t kPubWill = bit(PacketType::publish) | kWill;
constexpr std::uint16_t kAllAcks = bit(PacketType::puback) | bit(PacketType::pubrec) |
                                   bit(PacketType::pubrel) | bit(PacketType::pubcomp);

struct PropSpec {
  PType type;
  std::uint16_t allowed;  // 0: unknown id
};

constexpr PropSpec prop_spec(std::uint8_t id) noexcept {
  using P = PacketType;
  switch (id) {
    case 0x01:
    case 0x02:
      return {id == 0x01 ? PType::byte : PType::u32, kPubWill};
    case 0x03:
    case 0x08:
      return {PType::string, kPubWill};
    case 0x09:
      return {PType::binary, kPubWill};
    case 0x0B:
      return {PType::varint, static_cast<std::uint16_t>(bit(P::publish) | bit(P::subscribe))};
    case 0x11:
      return {PType::u32,
              static_cast<std::uint16_t>(bit(P::connect) | bit(P::connack) | bit(P::disconnect))};
    case 0x12:
    case 0x1A:
      return {PType::string, bit(P::connack)};
    case 0x13:
      return {PType::u16, bit(P::connack)};
    case 0x15:
      return {PType::string,
              static_cast<std::uint16_t>(bit(P::connect) | bit(P::connack) | bit(P::auth))};
    case 0x16:
      return {PType::binary,
              static_cast<std::uint16_t>(bit(P::connect) | bit(P::connack) | bit(P::auth))};
    case 0x17:
    case 0x19:
      return {PType::byte, bit(P::connect)};
    case 0x18:
      return {PType::u32, kWill};
    case 0x1C:
      return {PType::string, static_cast<std::uint16_t>(bit(P::connack) | bit(P::disconnect))};
    case 0x1F:
      return {PType::string,
              static_cast<std::uint16_t>(bit(P::connack) | kAllAcks | bit(P::suback) |
                                         bit(P::unsuback) | bit(P::disconnect) | bit(P::auth))};
    case 0x21:
    case 0x22:
      return {PType::u16, static_cast<std::uint16_t>(bit(P::connect) | bit(P::connack))};
    case 0x23:
      return {PType::u16, bit(P::publish)};
    case 0x24:
    case 0x25:
    case 0x28:
    case 0x29:
    case 0x2A:
      return {PType::byte, bit(P::connack)};
    case 0x26:
      return {PType::pair, 0xfffe};
    case 0x27:
      return {PType::u32, static_cast<std::uint16_t>(bit(P::connect) | bit(P::connack))};
    default:
      return {PType::byte, 0};
  }
}

// Reads one property's value by type. False when truncated or a string is not valid UTF-8.
bool read_value(Reader& r, PType t, Property& p) noexcept {
  switch (t) {
    case PType::byte:
      p.number = r.u8();
      break;
    case PType::u16:
      p.number = r.u16();
      break;
    case PType::u32:
      p.number = r.be(4);
      break;
    case PType::varint:
      p.number = r.varint();
      break;
    case PType::string:
      p.string = r.raw_string();
      return !r.bad() && valid_utf8(p.string);
    case PType::binary:
      p.binary = r.binary();
      break;
    case PType::pair:
      p.string = r.raw_string();
      p.value = r.raw_string();
      return !r.bad() && valid_utf8(p.string) && valid_utf8(p.value);
  }
  return !r.bad();
}

// Reads a v5 property block (length + properties) for packet kind `mask`, validating each.
Result<Properties> read_props(Reader& r, std::uint16_t mask) noexcept {
  Properties out;
  const std::uint32_t len = r.varint();
  out.raw = r.bytes(len);
  if (r.bad()) {
    return fail(mqtt_errc::malformed_packet);
  }
  Reader pr(out.raw);
  std::uint64_t seen = 0;  // ids 0x00-0x3f
  while (pr.left() > 0) {
    const std::uint32_t id_v = pr.varint();
    if (pr.bad()) {
      return fail(mqtt_errc::malformed_packet);
    }
    const PropSpec spec = id_v < 0x40 ? prop_spec(static_cast<std::uint8_t>(id_v)) : PropSpec{};
    if ((spec.allowed & mask) == 0) {
      return fail(mqtt_errc::bad_property);
    }
    Property p;
    p.id = static_cast<PropertyId>(id_v);
    if (!read_value(pr, spec.type, p)) {
      return fail(mqtt_errc::malformed_packet);
    }
    const std::uint64_t b = std::uint64_t{1} << id_v;
    // User Property repeats; so does Subscription Identifier in PUBLISH (5.0 §3.3.2.3.8).
    const bool repeats =
        p.id == PropertyId::user_property ||
        (p.id == PropertyId::subscription_identifier && mask == bit(PacketType::publish));
    if ((seen & b) != 0 && !repeats) {
      return fail(mqtt_errc::protocol_error);
    }
    seen |= b;
    const std::uint32_t n = p.number;
    switch (p.id) {
      case PropertyId::payload_format_indicator:
        out.has_payload_format = true;
        out.payload_format = static_cast<std::uint8_t>(n);
        if (n > 1) {
          return fail(mqtt_errc::protocol_error);
        }
        break;
      case PropertyId::request_problem_information:
      case PropertyId::request_response_information:
      case PropertyId::wildcard_subscription_available:
      case PropertyId::subscription_identifier_available:
      case PropertyId::shared_subscription_available:
        if (n > 1) {
          return fail(mqtt_errc::protocol_error);
        }
        break;
      case PropertyId::maximum_qos:
        out.has_maximum_qos = true;
        out.maximum_qos = static_cast<std::uint8_t>(n);
        if (n > 1) {
          return fail(mqtt_errc::protocol_error);
        }
        break;
      case PropertyId::retain_available:
        out.has_retain_available = true;
        out.retain_available = static_cast<std::uint8_t>(n);
        if (n > 1) {
          return fail(mqtt_errc::protocol_error);
        }
        break;
      case PropertyId::message_expiry_interval:
        out.has_message_expiry = true;
        out.message_expiry = n;
        break;
      case PropertyId::content_type:
        out.content_type = p.string;
        break;
      case PropertyId::response_topic:
        out.response_topic = p.string;
        if (!valid_topic_name(p.string)) {
          return fail(mqtt_errc::protocol_error);
        }
        break;
      case PropertyId::correlation_data:
        out.correlation_data = p.binary;
        break;
      case PropertyId::subscription_identifier:
        if (n == 0) {
          return fail(mqtt_errc::protocol_error);
        }
        if (out.subscription_identifier == 0) {
          out.subscription_identifier = n;
        }
        break;
      case PropertyId::session_expiry_interval:
        out.has_session_expiry = true;
        out.session_expiry = n;
        break;
      case PropertyId::assigned_client_identifier:
        out.assigned_client_identifier = p.string;
        break;
      case PropertyId::server_keep_alive:
        out.has_server_keep_alive = true;
        out.server_keep_alive = static_cast<std::uint16_t>(n);
        break;
      case PropertyId::authentication_method:
        out.authentication_method = p.string;
        break;
      case PropertyId::authentication_data:
        out.authentication_data = p.binary;
        break;
      case PropertyId::will_delay_interval:
        out.has_will_delay = true;
        out.will_delay = n;
        break;
      case PropertyId::reason_string:
        out.reason_string = p.string;
        break;
      case PropertyId::receive_maximum:
        if (n == 0) {
          return fail(mqtt_errc::protocol_error);
        }
        out.has_receive_maximum = true;
        out.receive_maximum = static_cast<std::uint16_t>(n);
        break;
      case PropertyId::topic_alias_maximum:
        out.has_topic_alias_maximum = true;
        out.topic_alias_maximum = static_cast<std::uint16_t>(n);
        break;
      case PropertyId::topic_alias:
        if (n == 0) {
          return fail(mqtt_errc::topic_alias_invalid);
        }
        out.topic_alias = static_cast<std::uint16_t>(n);
        break;
      case PropertyId::maximum_packet_size:
        if (n == 0) {
          return fail(mqtt_errc::protocol_error);
        }
        out.has_maximum_packet_size = true;
        out.maximum_packet_size = n;
        break;
      case PropertyId::response_information:
      case PropertyId::server_reference:
      case PropertyId::user_property:
        break;
    }
  }
  return out;
}

void write_props(Writer& w, const Properties& p) noexcept {
  Writer count(nullptr, 0);
  for (int pass = 0; pass < 2; ++pass) {
    Writer& o = pass == 0 ? count : w;
    if (pass == 1) {
      w.varint(static_cast<std::uint32_t>(count.pos()));
    }
    if (p.has_payload_format) {
      o.u8(0x01);
      o.u8(p.payload_format);
    }
    if (p.has_message_expiry) {
      o.u8(0x02);
      o.u32(p.message_expiry);
    }
    if (!p.content_type.empty()) {
      o.u8(0x03);
      o.string(p.content_type);
    }
    if (!p.response_topic.empty()) {
      o.u8(0x08);
      o.string(p.response_topic);
    }
    if (!p.correlation_data.empty()) {
      o.u8(0x09);
      o.binary(p.correlation_data);
    }
    if (p.subscription_identifier != 0) {
      o.u8(0x0B);
      o.varint(p.subscription_identifier);
    }
    if (p.has_session_expiry) {
      o.u8(0x11);
      o.u32(p.session_expiry);
    }
    if (!p.assigned_client_identifier.empty()) {
      o.u8(0x12);
      o.string(p.assigned_client_identifier);
    }
    if (p.has_server_keep_alive) {
      o.u8(0x13);
      o.u16(p.server_keep_alive);
    }
    if (!p.authentication_method.empty()) {
      o.u8(0x15);
      o.string(p.authentication_method);
    }
    if (!p.authentication_data.empty()) {
      o.u8(0x16);
      o.binary(p.authentication_data);
    }
    if (p.has_will_delay) {
      o.u8(0x18);
      o.u32(p.will_delay);
    }
    if (!p.reason_string.empty()) {
      o.u8(0x1F);
      o.string(p.reason_string);
    }
    if (p.has_receive_maximum) {
      o.u8(0x21);
      o.u16(p.receive_maximum);
    }
    if (p.has_topic_alias_maximum) {
      o.u8(0x22);
      o.u16(p.topic_alias_maximum);
    }
    if (p.topic_alias != 0) {
      o.u8(0x23);
      o.u16(p.topic_alias);
    }
    if (p.has_maximum_qos) {
      o.u8(0x24);
      o.u8(p.maximum_qos);
    }
    if (p.has_retain_available) {
      o.u8(0x25);
      o.u8(p.retain_available);
    }
    for (const StringPair& u : p.user) {
      o.u8(0x26);
      o.string(u.name);
      o.string(u.value);
    }
    if (p.has_maximum_packet_size) {
      o.u8(0x27);
      o.u32(p.maximum_packet_size);
    }
  }
}

bool props_empty(const Properties& p) noexcept {
  Writer w(nullptr, 0);
  write_props(w, p);
  return w.pos() == 1;
}

std::uint8_t first_byte(const Packet& p) noexcept {
  const auto t = static_cast<std::uint8_t>(static_cast<unsigned>(p.type) << 4);
  switch (p.type) {
    case PacketType::publish:
      return static_cast<std::uint8_t>(t | (p.publish.dup ? 0x08 : 0) | (p.publish.qos << 1) |
                                       (p.publish.retain ? 1 : 0));
    case PacketType::pubrel:
    case PacketType::subscribe:
    case PacketType::unsubscribe:
      return t | 0x02;
    default:
      return t;
  }
}

// Writes the variable header and payload; returns an error code value or 0.
mqtt_errc write_body(Writer& w, const Packet& p, Version v) noexcept {
  const bool v5 = v == Version::v5;
  switch (p.type) {
    case PacketType::connect: {
      const Connect& c = p.connect;
      if (c.has_will && c.will.qos > 2) {
        return mqtt_errc::bad_argument;
      }
      w.string("MQTT");
      w.u8(static_cast<std::uint8_t>(v));
      w.u8((c.has_username ? 0x80u : 0u) | (c.has_password ? 0x40u : 0u) |
           (c.has_will && c.will.retain ? 0x20u : 0u) |
           (c.has_will ? static_cast<unsigned>(c.will.qos) << 3 : 0u) | (c.has_will ? 0x04u : 0u) |
           (c.clean_start ? 0x02u : 0u));
      w.u16(c.keep_alive);
      if (v5) {
        write_props(w, c.props);
      }
      w.string(c.client_id);
      if (c.has_will) {
        if (v5) {
          write_props(w, c.will.props);
        }
        w.string(c.will.topic);
        w.binary(c.will.payload);
      }
      if (c.has_username) {
        w.string(c.username);
      }
      if (c.has_password) {
        w.binary(c.password);
      }
      return {};
    }
    case PacketType::connack:
      w.u8(p.connack.session_present ? 1 : 0);
      w.u8(p.connack.reason);
      if (v5) {
        write_props(w, p.connack.props);
      }
      return {};
    case PacketType::publish: {
      const Publish& m = p.publish;
      if (m.qos > 2 || (m.qos > 0 && m.packet_id == 0)) {
        return mqtt_errc::bad_argument;
      }
      w.string(m.topic);
      if (m.qos > 0) {
        w.u16(m.packet_id);
      }
      if (v5) {
        write_props(w, m.props);
      }
      w.bytes(m.payload);
      return {};
    }
    case PacketType::puback:
    case PacketType::pubrec:
    case PacketType::pubrel:
    case PacketType::pubcomp:
      if (p.ack.packet_id == 0) {
        return mqtt_errc::bad_argument;
      }
      w.u16(p.ack.packet_id);
      // 5.0 §3.4.2.1: reason 0 without properties may be omitted (Remaining Length 2).
      if (v5 && (p.ack.reason != 0 || !props_empty(p.ack.props))) {
        w.u8(p.ack.reason);
        write_props(w, p.ack.props);
      }
      return {};
    case PacketType::subscribe:
      if (p.subscribe.packet_id == 0 || p.subscribe.items.empty()) {
        return mqtt_errc::bad_argument;
      }
      w.u16(p.subscribe.packet_id);
      if (v5) {
        write_props(w, p.subscribe.props);
      }
      for (const Subscription& s : p.subscribe.items) {
        w.string(s.filter);
        w.u8(s.options);
      }
      return {};
    case PacketType::suback:
    case PacketType::unsuback:
      if (p.suback.packet_id == 0) {
        return mqtt_errc::bad_argument;
      }
      w.u16(p.suback.packet_id);
      if (v5) {
        write_props(w, p.suback.props);
      }
      if (v5 || p.type == PacketType::suback) {
        w.bytes(std::as_bytes(p.suback.reasons));
      }
      return {};
    case PacketType::unsubscribe:
      if (p.unsubscribe.packet_id == 0 || p.unsubscribe.filters.empty()) {
        return mqtt_errc::bad_argument;
      }
      w.u16(p.unsubscribe.packet_id);
      if (v5) {
        write_props(w, p.unsubscribe.props);
      }
      for (std::string_view f : p.unsubscribe.filters) {
        w.string(f);
      }
      return {};
    case PacketType::pingreq:
    case PacketType::pingresp:
      return {};
    case PacketType::auth:
      if (!v5) {
        return mqtt_errc::bad_argument;
      }
      [[fallthrough]];
    case PacketType::disconnect:
      if (v5 && (p.disconnect.reason != 0 || !props_empty(p.disconnect.props))) {
        w.u8(p.disconnect.reason);
        write_props(w, p.disconnect.props);
      }
      return {};
  }
  return mqtt_errc::bad_argument;
}

// 5.0 §3.9.3 / 3.1.1 §3.9.3: the reason codes a SUBACK may carry.
bool valid_suback_reason(std::uint8_t r, bool v5) noexcept {
  if (r <= 2 || r == 0x80) {
    return true;
  }
  return v5 && (r == 0x83 || r == 0x87 || r == 0x8F || r == 0x91 || r == 0x97 || r == 0x9E ||
                r == 0xA1 || r == 0xA2);
}

bool valid_ack_reason(PacketType t, std::uint8_t r) noexcept {
  if (t == PacketType::pubrel || t == PacketType::pubcomp) {
    return r == 0 || r == 0x92;  // 5.0 §3.6.2.1, §3.7.2.1
  }
  // 5.0 §3.4.2.1 (PUBACK) and §3.5.2.1 (PUBREC).
  return r == 0 || r == 0x10 || r == 0x80 || r == 0x83 || r == 0x87 || r == 0x90 || r == 0x91 ||
         r == 0x97 || r == 0x99;
}

// Validates a SUBSCRIBE/UNSUBSCRIBE list and counts its items.
Result<TopicList> read_list(Reader& r, bool with_options, bool v5) noexcept {
  TopicList list;
  list.with_options = with_options;
  list.bytes = r.rest();
  Reader lr(list.bytes);
  while (lr.left() > 0) {
    const std::string_view f = lr.raw_string();
    if (lr.bad() || !valid_utf8(f)) {
      return fail(mqtt_errc::malformed_packet);
    }
    if (!valid_topic_filter(f)) {
      return fail(mqtt_errc::bad_topic_filter);
    }
    if (with_options) {
      const std::uint8_t o = lr.u8();
      // 3.1.1 §3.8.3.1: bits 2-7 reserved; 5.0 §3.8.3.1: bits 6-7 reserved, Retain
      // Handling 3 and QoS 3 are malformed.
      const std::uint8_t reserved = v5 ? 0xC0 : 0xFC;
      if (lr.bad() || (o & reserved) != 0 || (o & 3) == 3 || (o >> 4 & 3) == 3) {
        return fail(mqtt_errc::malformed_packet);
      }
    }
    ++list.count;
  }
  if (list.count == 0) {
    return fail(mqtt_errc::protocol_error);  // 3.1.1 §3.8.3-3, 5.0 §3.8.3: at least one
  }
  return list;
}

Result<Packet> decode_connect(Reader& r) noexcept {
  Packet p;
  p.type = PacketType::connect;
  Connect& c = p.connect;
  const std::string_view name = r.raw_string();
  const std::uint8_t level = r.u8();
  const std::uint8_t flags = r.u8();
  c.keep_alive = r.u16();
  if (r.bad()) {
    return fail(mqtt_errc::malformed_packet);
  }
  if (name != "MQTT" || (level != 4 && level != 5)) {
    return fail(mqtt_errc::unsupported_version);
  }
  c.version = static_cast<Version>(level);
  const bool v5 = c.version == Version::v5;
  c.clean_start = (flags & 0x02) != 0;
  c.has_will = (flags & 0x04) != 0;
  c.will.qos = static_cast<std::uint8_t>(flags >> 3 & 3);
  c.will.retain = (flags & 0x20) != 0;
  c.has_password = (flags & 0x40) != 0;
  c.has_username = (flags & 0x80) != 0;
  // 3.1.1 §3.1.2-3 / 5.0 §3.1.2.3: reserved bit 0; will QoS/retain only with a will.
  if ((flags & 1) != 0 || c.will.qos == 3 || (!c.has_will && (c.will.qos != 0 || c.will.retain))) {
    return fail(mqtt_errc::malformed_packet);
  }
  if (!v5 && c.has_password && !c.has_username) {
    return fail(mqtt_errc::malformed_packet);  // 3.1.1 §3.1.2-22
  }
  if (v5) {
    auto props = read_props(r, bit(PacketType::connect));
    if (!props) {
      return fail(props.error());
    }
    c.props = props.value();
  }
  c.client_id = r.raw_string();
  if (r.bad() || !valid_utf8(c.client_id)) {
    return fail(mqtt_errc::malformed_packet);
  }
  if (c.has_will) {
    if (v5) {
      auto props = read_props(r, kWill);
      if (!props) {
        return fail(props.error());
      }
      c.will.props = props.value();
    }
    c.will.topic = r.raw_string();
    c.will.payload = r.binary();
    if (r.bad() || !valid_utf8(c.will.topic)) {
      return fail(mqtt_errc::malformed_packet);
    }
    if (!valid_topic_name(c.will.topic)) {
      return fail(mqtt_errc::bad_topic_name);
    }
  }
  if (c.has_username) {
    c.username = r.raw_string();
    if (r.bad() || !valid_utf8(c.username)) {
      return fail(mqtt_errc::malformed_packet);
    }
  }
  if (c.has_password) {
    c.password = r.binary();
  }
  if (r.bad() || r.left() != 0) {
    return fail(mqtt_errc::malformed_packet);
  }
  return p;
}

}  // namespace

std::size_t varint_size(std::uint32_t value) noexcept {
  if (value > kMaxRemaining) {
    return 0;
  }
  return value < 128 ? 1 : value < 16384 ? 2 : value < 2097152 ? 3 : 4;
}

std::size_t encode_varint(std::uint32_t value, std::span<std::byte> out) noexcept {
  const std::size_t n = varint_size(value);
  if (n == 0 || out.size() < n) {
    return 0;
  }
  Writer w(out.data(), out.size());
  w.varint(value);
  return n;
}

bool valid_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c == 0) {
      return false;  // U+0000 (3.1.1 §1.5.3-2)
    }
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) {
      return false;
    }
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) {
        return false;
      }
      cp = cp << 6 | (p[i + k] & 0x3F);
    }
    constexpr std::uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;  // overlong, beyond Unicode, or a surrogate (§1.5.3-1)
    }
    i += len;
  }
  return true;
}

bool PropertyCursor::next(Property& out) noexcept {
  if (pos_ >= raw_.size()) {
    return false;
  }
  Reader r(raw_.subspan(pos_));
  const std::uint32_t id = r.varint();
  const PropSpec spec = id < 0x40 ? prop_spec(static_cast<std::uint8_t>(id)) : PropSpec{};
  out = Property{};
  out.id = static_cast<PropertyId>(id);
  if (r.bad() || spec.allowed == 0 || !read_value(r, spec.type, out)) {
    pos_ = raw_.size();
    return false;
  }
  pos_ = raw_.size() - r.left();
  return true;
}

bool TopicList::next(std::size_t& offset, Subscription& out) const noexcept {
  if (offset >= bytes.size()) {
    return false;
  }
  Reader r(bytes.subspan(offset));
  out.filter = r.raw_string();
  out.options = with_options ? r.u8() : 0;
  if (r.bad()) {
    offset = bytes.size();
    return false;
  }
  offset = bytes.size() - r.left();
  return true;
}

Result<std::size_t> encoded_size(const Packet& p, Version v) noexcept {
  Writer w(nullptr, 0);
  if (const mqtt_errc e = write_body(w, p, v); e != mqtt_errc{}) {
    return fail(e);
  }
  if (w.too_long()) {
    return fail(mqtt_errc::bad_argument);
  }
  if (w.pos() > kMaxRemaining) {
    return fail(mqtt_errc::packet_too_large);
  }
  return 1 + varint_size(static_cast<std::uint32_t>(w.pos())) + w.pos();
}

Result<std::size_t> encode(const Packet& p, Version v, std::span<std::byte> out) noexcept {
  auto size = encoded_size(p, v);
  if (!size) {
    return size;
  }
  if (out.size() < size.value()) {
    return fail(mqtt_errc::buffer_too_small);
  }
  Writer body(nullptr, 0);
  (void)write_body(body, p, v);
  Writer w(out.data(), out.size());
  w.u8(first_byte(p));
  w.varint(static_cast<std::uint32_t>(body.pos()));
  Writer rest(out.data() + w.pos(), out.size() - w.pos());
  (void)write_body(rest, p, v);
  return w.pos() + rest.pos();
}

Result<Packet> decode_body(std::byte first, std::span<const std::byte> body, Version v) noexcept {
  const auto type_v = std::to_integer<std::uint8_t>(first) >> 4;
  const auto flags = std::to_integer<std::uint8_t>(first) & 0x0F;
  const bool v5 = v == Version::v5;
  if (type_v == 0 || (type_v == 15 && !v5)) {
    return fail(mqtt_errc::malformed_packet);
  }
  const auto type = static_cast<PacketType>(type_v);
  // 3.1.1 §2.2.2 / 5.0 §2.1.3: fixed flags per type; PUBLISH's are DUP, QoS, RETAIN.
  if (type == PacketType::pubrel || type == PacketType::subscribe ||
      type == PacketType::unsubscribe) {
    if (flags != 2) {
      return fail(mqtt_errc::malformed_packet);
    }
  } else if (type != PacketType::publish && flags != 0) {
    return fail(mqtt_errc::malformed_packet);
  }
  Reader r(body);
  Packet p;
  p.type = type;
  const auto done = [&r](Packet&& out) -> Result<Packet> {
    if (r.bad() || r.left() != 0) {
      return fail(mqtt_errc::malformed_packet);
    }
    return std::move(out);
  };
  const auto props_into = [&r, v5](Properties& dst, PacketType t) -> mqtt_errc {
    if (!v5) {
      return {};
    }
    auto props = read_props(r, bit(t));
    if (!props) {
      return static_cast<mqtt_errc>(props.error().value());
    }
    dst = props.value();
    return {};
  };
  switch (type) {
    case PacketType::connect:
      return decode_connect(r);
    case PacketType::connack: {
      const std::uint8_t ack_flags = r.u8();
      p.connack.reason = r.u8();
      p.connack.session_present = (ack_flags & 1) != 0;
      if (r.bad() || (ack_flags & 0xFE) != 0) {
        return fail(mqtt_errc::malformed_packet);
      }
      // 3.1.1 §3.2.2.3: return codes 0-5; 3.1.1-3.2.2-4 / 5.0: session present only on success.
      if ((!v5 && p.connack.reason > 5) || (p.connack.session_present && p.connack.reason != 0)) {
        return fail(mqtt_errc::protocol_error);
      }
      if (auto e = props_into(p.connack.props, type); e != mqtt_errc{}) {
        return fail(e);
      }
      return done(std::move(p));
    }
    case PacketType::publish: {
      Publish& m = p.publish;
      m.dup = (flags & 0x08) != 0;
      m.qos = static_cast<std::uint8_t>(flags >> 1 & 3);
      m.retain = (flags & 1) != 0;
      if (m.qos == 3 || (m.dup && m.qos == 0)) {
        return fail(mqtt_errc::malformed_packet);  // 3.1.1 §3.3.1-2, -4
      }
      m.topic = r.raw_string();
      if (m.qos > 0) {
        m.packet_id = r.u16();
      }
      if (r.bad() || !valid_utf8(m.topic)) {
        return fail(mqtt_errc::malformed_packet);
      }
      if (m.qos > 0 && m.packet_id == 0) {
        return fail(mqtt_errc::protocol_error);
      }
      if (auto e = props_into(m.props, type); e != mqtt_errc{}) {
        return fail(e);
      }
      // 5.0 §3.3.2.1: an empty topic only with a Topic Alias.
      const bool alias_only = v5 && m.topic.empty() && m.props.topic_alias != 0;
      if (!alias_only && !valid_topic_name(m.topic)) {
        return fail(mqtt_errc::bad_topic_name);
      }
      m.payload = r.rest();
      return done(std::move(p));
    }
    case PacketType::puback:
    case PacketType::pubrec:
    case PacketType::pubrel:
    case PacketType::pubcomp: {
      p.ack.packet_id = r.u16();
      if (r.bad()) {
        return fail(mqtt_errc::malformed_packet);
      }
      if (p.ack.packet_id == 0) {
        return fail(mqtt_errc::protocol_error);
      }
      if (v5 && r.left() > 0) {
        p.ack.reason = r.u8();
        if (!valid_ack_reason(type, p.ack.reason)) {
          return fail(mqtt_errc::protocol_error);
        }
        if (r.left() > 0) {
          if (auto e = props_into(p.ack.props, type); e != mqtt_errc{}) {
            return fail(e);
          }
        }
      }
      return done(std::move(p));
    }
    case PacketType::subscribe:
    case PacketType::unsubscribe: {
      const std::uint16_t id = r.u16();
      if (r.bad()) {
        return fail(mqtt_errc::malformed_packet);
      }
      if (id == 0) {
        return fail(mqtt_errc::protocol_error);
      }
      Properties props;
      if (auto e = props_into(props, type); e != mqtt_errc{}) {
        return fail(e);
      }
      auto list = read_list(r, type == PacketType::subscribe, v5);
      if (!list) {
        return fail(list.error());
      }
      if (type == PacketType::subscribe) {
        p.subscribe.packet_id = id;
        p.subscribe.props = props;
        p.subscribe.list = list.value();
      } else {
        p.unsubscribe.packet_id = id;
        p.unsubscribe.props = props;
        p.unsubscribe.list = list.value();
      }
      return done(std::move(p));
    }
    case PacketType::suback:
    case PacketType::unsuback: {
      p.suback.packet_id = r.u16();
      if (r.bad()) {
        return fail(mqtt_errc::malformed_packet);
      }
      if (p.suback.packet_id == 0) {
        return fail(mqtt_errc::protocol_error);
      }
      if (auto e = props_into(p.suback.props, type); e != mqtt_errc{}) {
        return fail(e);
      }
      const auto rest = r.rest();
      p.suback.reasons = {reinterpret_cast<const std::uint8_t*>(rest.data()), rest.size()};
      const bool has_reasons = v5 || type == PacketType::suback;
      if (has_reasons && p.suback.reasons.empty()) {
        return fail(mqtt_errc::protocol_error);
      }
      if (!has_reasons && !p.suback.reasons.empty()) {
        return fail(mqtt_errc::malformed_packet);  // 3.1.1 UNSUBACK: Remaining Length 2
      }
      for (const std::uint8_t c : p.suback.reasons) {
        const bool ok = type == PacketType::suback
                            ? valid_suback_reason(c, v5)
                            : (c == 0 || c == 0x11 || c == 0x80 || c == 0x83 || c == 0x87 ||
                               c == 0x8F || c == 0x91);
        if (!ok) {
          return fail(mqtt_errc::protocol_error);
        }
      }
      return done(std::move(p));
    }
    case PacketType::pingreq:
    case PacketType::pingresp:
      return done(std::move(p));
    case PacketType::disconnect:
    case PacketType::auth:
      if (v5 && r.left() > 0) {
        p.disconnect.reason = r.u8();
        if (type == PacketType::auth && p.disconnect.reason != 0 && p.disconnect.reason != 0x18 &&
            p.disconnect.reason != 0x19) {
          return fail(mqtt_errc::protocol_error);  // 5.0 §3.15.2.1
        }
        if (r.left() > 0) {
          if (auto e = props_into(p.disconnect.props, type); e != mqtt_errc{}) {
            return fail(e);
          }
        }
      }
      return done(std::move(p));
  }
  return fail(mqtt_errc::malformed_packet);
}

Decoder::Decoder(DecoderLimits limits, std::span<std::byte> assembly) noexcept
    : limits_(limits), assembly_(assembly) {}

void Decoder::reset() noexcept {
  header_len_ = 0;
  header_done_ = false;
  remaining_ = 0;
  have_ = 0;
  error_ = {};
}

Decoded Decoder::fail(mqtt_errc e, std::size_t consumed) noexcept {
  error_ = make_error_code(e);
  return {consumed, DecodeState::error};
}

Decoded Decoder::finish(std::span<const std::byte> body, std::size_t consumed) noexcept {
  auto r = decode_body(header_[0], body, limits_.version);
  header_len_ = 0;
  header_done_ = false;
  have_ = 0;
  if (!r) {
    return fail(static_cast<mqtt_errc>(r.error().value()), consumed);
  }
  packet_ = r.value();
  return {consumed, DecodeState::ready};
}

Decoded Decoder::feed(std::span<const std::byte> in) noexcept {
  if (error_) {
    return {0, DecodeState::error};
  }
  std::size_t pos = 0;
  while (!header_done_) {
    if (pos == in.size()) {
      return {pos, DecodeState::need_more};
    }
    const std::byte b = in[pos++];
    header_[header_len_++] = b;
    if (header_len_ == 1) {
      continue;
    }
    if ((b & std::byte{0x80}) != std::byte{0}) {
      if (header_len_ == 5) {
        return fail(mqtt_errc::malformed_packet, pos);  // a fifth length byte (§2.2.3)
      }
      continue;
    }
    if (header_len_ > 2 && b == std::byte{0}) {
      return fail(mqtt_errc::malformed_packet, pos);  // non-minimal length encoding
    }
    std::uint32_t rl = 0;
    for (std::size_t i = header_len_ - 1; i >= 1; --i) {
      rl = rl << 7 | (std::to_integer<std::uint32_t>(header_[i]) & 0x7f);
    }
    remaining_ = rl;
    header_done_ = true;
    const std::uint64_t limit =
        std::min<std::uint64_t>(limits_.max_packet_size, assembly_.size() + 5);
    if (header_len_ + std::uint64_t{remaining_} > limit) {
      return fail(mqtt_errc::packet_too_large, pos);
    }
  }
  if (have_ == 0 && in.size() - pos >= remaining_) {
    const auto body = in.subspan(pos, remaining_);  // zero-copy: the body is all here
    return finish(body, pos + remaining_);
  }
  const std::size_t take = std::min<std::size_t>(remaining_ - have_, in.size() - pos);
  if (take > 0) {
    std::memcpy(assembly_.data() + have_, in.data() + pos, take);
  }
  have_ += take;
  pos += take;
  if (have_ < remaining_) {
    return {pos, DecodeState::need_more};
  }
  return finish(std::span<const std::byte>(assembly_.data(), remaining_), pos);
}

}  // namespace weft::mqtt
