// Fuzz target: the MQTT Decoder and a client Session.
//
// Input (fuzz_common.h's layout): byte 0 is the configuration (bit 0: v5; bits 1-2: the
// maximum packet size, 16/64/256/4096 bytes); byte 1 and the chunk sizes split the stream at
// fuzzer-chosen points; the rest is the stream of "broker" bytes.
// Invariants:
//   - the stream decoded in chunks gives exactly the packets (type, end offset) and the error
//     (code, offset) of the whole stream decoded in one piece; errors are sticky;
//   - every decoded packet re-encodes, and the re-encoding decodes and re-encodes to the same
//     bytes (encode(decode(x)) is a fixed point);
//   - a connected Session fed every packet never crashes; what it writes always decodes;
//     inflight and queue stay within their limits; after a fatal error it reconnects.
#include <weft/mqtt/codec.h>
#include <weft/mqtt/session.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <system_error>
#include <vector>

#include "fuzz_common.h"

namespace {

using namespace weft::mqtt;

struct Seen {
  PacketType type;
  std::size_t end;  // stream offset just past the packet
};

struct Outcome {
  std::vector<Seen> packets;
  std::error_code error;
  std::size_t error_offset = 0;
};

// Re-encodes a decoded packet (lists and User Properties turned back into items).
std::vector<std::byte> reencode(Packet p, Version v) {
  std::array<Subscription, 64> items{};
  std::array<std::string_view, 64> filters{};
  std::array<StringPair, 64> users{};
  std::size_t nu = 0;
  auto fix = [&](Properties& props) {
    const std::size_t first = nu;
    PropertyCursor c(props.raw);
    Property prop;
    while (c.next(prop) && nu < users.size()) {
      if (prop.id == PropertyId::user_property) {
        users[nu++] = {prop.string, prop.value};
      }
    }
    props.user = std::span<const StringPair>(users.data() + first, nu - first);
  };
  std::size_t n = 0;
  Subscription s;
  switch (p.type) {
    case PacketType::connect:
      fix(p.connect.props);
      fix(p.connect.will.props);
      v = p.connect.version;
      break;
    case PacketType::connack:
      fix(p.connack.props);
      break;
    case PacketType::publish:
      fix(p.publish.props);
      break;
    case PacketType::subscribe:
      fix(p.subscribe.props);
      for (std::size_t off = 0; n < items.size() && p.subscribe.list.next(off, s);) {
        items[n++] = s;
      }
      p.subscribe.items = std::span<const Subscription>(items.data(), n);
      break;
    case PacketType::unsubscribe:
      fix(p.unsubscribe.props);
      for (std::size_t off = 0; n < filters.size() && p.unsubscribe.list.next(off, s);) {
        filters[n++] = s.filter;
      }
      p.unsubscribe.filters = std::span<const std::string_view>(filters.data(), n);
      break;
    case PacketType::suback:
    case PacketType::unsuback:
      fix(p.suback.props);
      break;
    case PacketType::disconnect:
    case PacketType::auth:
      fix(p.disconnect.props);
      break;
    default:
      fix(p.ack.props);
      break;
  }
  auto size = encoded_size(p, v);
  if (!size) {
    return {};
  }
  std::vector<std::byte> out(size.value());
  auto w = encode(p, v, out);
  FUZZ_CHECK(w.ok() && w.value() == out.size());
  return out;
}

void check_fixed_point(const Packet& p, Version v) {
  const std::vector<std::byte> once = reencode(p, v);
  if (once.empty()) {
    return;  // more than 64 list items or properties: not re-encodable here
  }
  std::vector<std::byte> buf(once.size());
  Decoder d({.max_packet_size = static_cast<std::uint32_t>(once.size() + 5), .version = v}, buf);
  const Decoded r = d.feed(once);
  FUZZ_CHECK(r.state == DecodeState::ready && r.consumed == once.size());
  FUZZ_CHECK(reencode(d.packet(), v) == once);
}

// Feeds the stream in the input's chunk sizes (or whole), recording what comes out. Every
// ready packet also goes to `on_packet`.
template <class F>
Outcome run(const weft::fuzz::Input& in, DecoderLimits limits, bool one_shot, F&& on_packet) {
  std::vector<std::byte> assembly(limits.max_packet_size);
  Decoder dec(limits, assembly);
  Outcome out;
  const auto stream = in.stream;
  std::size_t offset = 0;
  std::size_t turn = 0;
  while (offset < stream.size() || (offset == 0 && stream.empty() && turn == 0)) {
    std::size_t len = one_shot ? stream.size() : in.chunk_sizes[turn % in.chunk_sizes.size()];
    ++turn;
    len = std::max<std::size_t>(len, 1);
    len = std::min(len, stream.size() - offset);
    const weft::fuzz::Chunk chunk(stream, offset, len);
    std::span<const std::byte> rest = chunk.span();
    while (true) {
      const Decoded r = dec.feed(rest);
      FUZZ_CHECK(r.consumed <= rest.size());
      offset += r.consumed;
      if (r.state == DecodeState::error) {
        out.error = dec.error();
        out.error_offset = offset;
        FUZZ_CHECK(out.error.category() == mqtt_category());
        const Decoded again = dec.feed(rest.subspan(r.consumed));
        FUZZ_CHECK(again.state == DecodeState::error && again.consumed == 0);
        return out;
      }
      rest = rest.subspan(r.consumed);
      if (r.state == DecodeState::need_more) {
        FUZZ_CHECK(rest.empty());
        break;
      }
      out.packets.push_back({dec.packet().type, offset});
      on_packet(dec.packet());
    }
    if (stream.empty()) {
      break;
    }
  }
  return out;
}

struct SessionDriver {
  SessionConfig config;
  Session s;
  std::vector<std::byte> out = std::vector<std::byte>(8192);
  std::vector<std::byte> check_buf = std::vector<std::byte>(8192);
  std::uint64_t now = 0;
  std::uint32_t counter = 0;

  static SessionConfig make(Version v) {
    SessionConfig c;
    c.version = v;
    c.client_id = "fuzz";
    c.keep_alive_s = 1;
    c.queue_slots = 8;
    c.max_message_bytes = 64;
    c.max_inflight = 3;
    c.receive_maximum = 4;
    c.max_subscriptions = 4;
    c.queue_qos0_offline = true;
    c.when_full = QueuePolicy::drop_oldest_qos0;
    return c;
  }
  explicit SessionDriver(Version v) : config(make(v)), s(config) { reconnect(); }

  void reconnect() {
    s.connection_lost(now);
    FUZZ_CHECK(s.connect(now).ok());
    drain();
    Packet ack;
    ack.type = PacketType::connack;
    FUZZ_CHECK(s.feed(ack, now).ok());
    FUZZ_CHECK(s.state() == SessionState::connected);
  }

  // Writes everything due; each packet must decode as one whole packet of the same version.
  void drain() {
    for (int i = 0; i < 64; ++i) {
      auto n = s.next_packet(out, now);
      FUZZ_CHECK(n.ok());
      if (n.value() == 0) {
        return;
      }
      Decoder d({.max_packet_size = 8192, .version = config.version}, check_buf);
      const Decoded r = d.feed(std::span<const std::byte>(out.data(), n.value()));
      FUZZ_CHECK(r.state == DecodeState::ready && r.consumed == n.value());
    }
  }

  void step(const Packet& p) {
    now += 250;
    ++counter;
    if (counter % 3 == 0) {
      (void)s.publish("fuzz/t", std::as_bytes(std::span("x", 1)), counter % 2 == 0 ? 1 : 0);
    }
    if (counter % 7 == 0) {
      (void)s.subscribe(counter % 14 == 0 ? "a/#" : "b/+", 1);
    }
    auto ev = s.feed(p, now);
    if (!ev.ok() && ev.error() == mqtt_errc::would_block) {
      drain();
      ev = s.feed(p, now);
    }
    FUZZ_CHECK(s.inflight() <= config.max_inflight);
    FUZZ_CHECK(s.queued() <= config.queue_slots);
    if (!ev.ok()) {
      FUZZ_CHECK(s.state() == SessionState::disconnected);
      drain();  // v5: the DISCONNECT with the reason
      FUZZ_CHECK(!s.wants_write());
      reconnect();
      return;
    }
    if (s.poll(now).dead || s.state() == SessionState::disconnected) {
      reconnect();
      return;
    }
    drain();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  weft::fuzz::Input in;
  if (!weft::fuzz::parse_input(data, size, in)) {
    return 0;
  }
  const Version v = (in.config & 1) != 0 ? Version::v5 : Version::v311;
  constexpr std::uint32_t kSizes[4] = {16, 64, 256, 4096};
  const DecoderLimits limits{.max_packet_size = kSizes[in.config >> 1 & 3], .version = v};

  const Outcome want = run(in, limits, true, [&](const Packet& p) { check_fixed_point(p, v); });
  SessionDriver driver(v);
  const Outcome got = run(in, limits, false, [&](const Packet& p) { driver.step(p); });
  FUZZ_CHECK(got.packets.size() == want.packets.size());
  for (std::size_t i = 0; i < got.packets.size(); ++i) {
    FUZZ_CHECK(got.packets[i].type == want.packets[i].type);
    FUZZ_CHECK(got.packets[i].end == want.packets[i].end);
  }
  FUZZ_CHECK(got.error == want.error);
  FUZZ_CHECK(got.error_offset == want.error_offset);
  return 0;
}
