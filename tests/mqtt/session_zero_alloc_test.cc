// Zero allocations after construction (STYLE point 8): a Session publishing QoS 1 and 0,
// its output decoded by a Decoder, PUBACKs and incoming QoS 1 PUBLISHes fed back — counted
// by weft::alloc_counter over thousands of cycles.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include <weft/base/alloc_counter.h>
#include <weft/mqtt/codec.h>
#include <weft/mqtt/session.h>

namespace weft::mqtt {
namespace {

TEST(MqttZeroAlloc, DecodeAndSessionSteadyState) {
  if (!alloc::enabled()) {
    GTEST_SKIP() << "counting allocator not installed (sanitizer build or non-glibc)";
  }
  for (Version v : {Version::v311, Version::v5}) {
    SessionConfig c;
    c.version = v;
    c.client_id = "dev-1";
    c.queue_slots = 64;
    c.max_inflight = 8;
    c.max_subscriptions = 4;
    Session s(c);
    std::array<std::byte, 2048> out{};
    std::array<std::byte, 2048> asm_server{};
    std::array<std::byte, 2048> asm_client{};
    std::array<std::byte, 256> wire{};
    Decoder server({.max_packet_size = 2048, .version = v}, asm_server);
    Decoder client({.max_packet_size = 2048, .version = v}, asm_client);
    const char payload[] = "temperature=21.5";
    const auto body = std::as_bytes(std::span<const char>(payload, sizeof payload - 1));

    // Returns the number of packets moved; -1 on any error.
    auto pump = [&](std::uint64_t now) -> int {
      int n = 0;
      for (;;) {
        auto w = s.next_packet(out, now);
        if (!w.ok()) {
          return -1;
        }
        if (w.value() == 0) {
          return n;
        }
        std::span<const std::byte> bytes(out.data(), w.value());
        // Fed in two pieces: the split path through the assembly buffer too.
        Decoded r = server.feed(bytes.first(3));
        if (r.state == DecodeState::ready) {
          return -1;
        }
        r = server.feed(bytes.subspan(r.consumed));
        if (r.state != DecodeState::ready) {
          return -1;
        }
        ++n;
        const Packet& p = server.packet();
        Packet reply;
        if (p.type == PacketType::connect) {
          reply.type = PacketType::connack;
        } else if (p.type == PacketType::publish && p.publish.qos == 1) {
          reply.type = PacketType::puback;
          reply.ack.packet_id = p.publish.packet_id;
        } else {
          continue;
        }
        auto e = encode(reply, v, wire);
        if (!e.ok() || client.feed(std::span(wire).first(e.value())).state != DecodeState::ready) {
          return -1;
        }
        if (!s.feed(client.packet(), now).ok()) {
          return -1;
        }
      }
    };

    ASSERT_TRUE(s.connect(0).ok());
    ASSERT_EQ(pump(0), 1);
    ASSERT_EQ(s.state(), SessionState::connected);
    // Warm-up round, then count.
    ASSERT_TRUE(s.publish("fleet/d1/temp", body, 1).ok());
    ASSERT_EQ(pump(1), 1);
    Packet incoming;
    incoming.type = PacketType::publish;
    incoming.publish.topic = "cmd/x";
    incoming.publish.qos = 1;
    incoming.publish.payload = body;

    const std::uint64_t before = alloc::count();
    std::uint64_t moved = 0;
    for (std::uint16_t i = 1; i <= 5000; ++i) {
      if (!s.publish("fleet/d1/temp", body, 1).ok() || !s.publish("fleet/d1/t0", body, 0).ok()) {
        FAIL() << "publish failed at " << i;
      }
      incoming.publish.packet_id = i;
      auto e = encode(incoming, v, wire);
      ASSERT_TRUE(e.ok());
      ASSERT_EQ(client.feed(std::span(wire).first(e.value())).state, DecodeState::ready);
      auto ev = s.feed(client.packet(), i);
      ASSERT_TRUE(ev.ok());
      ASSERT_EQ(ev->kind, EventKind::message);
      const int n = pump(i);
      ASSERT_EQ(n, 3) << "cycle " << i;
      moved += static_cast<std::uint64_t>(n);
      if (i % 1000 == 0) {
        (void)s.poll(i);
      }
    }
    const std::uint64_t after = alloc::count();
    EXPECT_EQ(after - before, 0u) << "allocations in the steady state (version "
                                  << static_cast<int>(v) << ")";
    EXPECT_EQ(moved, 15000u);
    EXPECT_EQ(s.queued(), 0u);
  }
}

}  // namespace
}  // namespace weft::mqtt
