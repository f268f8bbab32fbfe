// Helpers shared by the weft::mqtt tests: hex vectors, a decode-all driver and re-encoding of
// decoded packets (TopicList and User Properties back into encodable items).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <weft/mqtt/codec.h>
#include <weft/mqtt/packet.h>

namespace weft::mqtt::test {

inline std::vector<std::byte> bytes(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) {
    out.push_back(static_cast<std::byte>(b));
  }
  return out;
}

inline std::span<const std::byte> as_bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

inline std::string str(std::span<const std::byte> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

inline std::vector<std::byte> encode_vec(const Packet& p, Version v) {
  auto n = encoded_size(p, v);
  if (!n) {
    return {};
  }
  std::vector<std::byte> out(n.value());
  auto w = encode(p, v, out);
  if (!w || w.value() != out.size()) {
    return {};
  }
  return out;
}

// Storage that keeps a decoded packet's lists and user properties encodable.
struct Reencoder {
  std::vector<Subscription> items;
  std::vector<std::string_view> filters;
  std::vector<StringPair> user[3];

  void fix_props(Properties& p, int k) {
    user[k].clear();
    PropertyCursor c(p.raw);
    Property prop;
    while (c.next(prop)) {
      if (prop.id == PropertyId::user_property) {
        user[k].push_back({prop.string, prop.value});
      }
    }
    p.user = user[k];
  }

  std::vector<std::byte> operator()(Packet p, Version v) {
    fix_props(p.connect.props, 0);
    fix_props(p.connect.will.props, 1);
    fix_props(p.connack.props, 2);
    if (p.type == PacketType::publish) {
      fix_props(p.publish.props, 0);
    } else if (p.type == PacketType::subscribe) {
      fix_props(p.subscribe.props, 0);
      items.clear();
      std::size_t off = 0;
      Subscription s;
      while (p.subscribe.list.next(off, s)) {
        items.push_back(s);
      }
      p.subscribe.items = items;
    } else if (p.type == PacketType::unsubscribe) {
      fix_props(p.unsubscribe.props, 0);
      filters.clear();
      std::size_t off = 0;
      Subscription s;
      while (p.unsubscribe.list.next(off, s)) {
        filters.push_back(s.filter);
      }
      p.unsubscribe.filters = filters;
    } else if (p.type == PacketType::suback || p.type == PacketType::unsuback) {
      fix_props(p.suback.props, 0);
    } else if (p.type == PacketType::disconnect || p.type == PacketType::auth) {
      fix_props(p.disconnect.props, 0);
    } else {
      fix_props(p.ack.props, 0);
    }
    return encode_vec(p, v);
  }
};

}  // namespace weft::mqtt::test
