// A scripted broker for Session tests: collects what the Session writes (decoded, with the
// bytes kept alive) and delivers broker packets through encode() and the Decoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include <weft/mqtt/codec.h>
#include <weft/mqtt/session.h>

#include "util.h"

namespace weft::mqtt::test {

struct BrokerSim {
  Version v;
  std::deque<std::vector<std::byte>> store;  // keeps decoded packets' views valid
  std::vector<std::byte> in_buf = std::vector<std::byte>(4096);

  explicit BrokerSim(Version version) : v(version) {}

  // Everything the Session has to write now, decoded.
  std::vector<Packet> drain(Session& s, std::uint64_t now) {
    std::vector<Packet> out;
    std::vector<std::byte> buf(4096);
    for (;;) {
      auto n = s.next_packet(buf, now);
      if (!n.ok() || n.value() == 0) {
        return out;
      }
      store.emplace_back(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n.value()));
      std::vector<std::byte> copy(4096);
      Decoder d({.max_packet_size = 4096, .version = v}, copy);
      const Decoded r = d.feed(store.back());
      if (r.state != DecodeState::ready || r.consumed != store.back().size()) {
        ADD_FAILURE() << "session wrote an undecodable packet: " << d.error().message();
        return out;
      }
      out.push_back(d.packet());
    }
  }

  // Encodes `p` as the broker would and feeds the decoded packet to the Session.
  Result<Event> deliver(Session& s, const Packet& p, std::uint64_t now) {
    store.push_back(encode_vec(p, v));
    Decoder d({.max_packet_size = 4096, .version = v}, in_buf);
    const Decoded r = d.feed(store.back());
    EXPECT_EQ(r.state, DecodeState::ready) << d.error().message();
    last = d.packet();
    return s.feed(last, now);
  }

  Result<Event> connack(Session& s, bool session_present, std::uint64_t now,
                        std::uint8_t reason = 0) {
    Packet p;
    p.type = PacketType::connack;
    p.connack.session_present = session_present;
    p.connack.reason = reason;
    return deliver(s, p, now);
  }

  Result<Event> ack(Session& s, PacketType t, std::uint16_t id, std::uint64_t now) {
    Packet p;
    p.type = t;
    p.ack.packet_id = id;
    p.suback.packet_id = id;
    static const std::uint8_t kGranted[1] = {1};  // SUBACK: QoS 1; UNSUBACK: success
    static const std::uint8_t kSuccess[1] = {0};
    p.suback.reasons = t == PacketType::suback ? kGranted : kSuccess;
    return deliver(s, p, now);
  }

  Packet last;
};

}  // namespace weft::mqtt::test
