// Fuzz target: weft::mux::Session driven by a sequence of operations, not only bytes.
//
// Input: byte 0 is the configuration (bit 0: mode; bits 1-3: limit variants); the rest is a
// program of operations, each an opcode byte and its arguments (missing bytes read as 0):
//   raw mode (bit 0 = 0): the fuzzer plays a hostile client. It feeds frames to a server
//     Session — raw bytes through parse(), or frames built from fields (so the state machine
//     is reached past the parser) — calls the server's API, moves the clock, and drains the
//     server's output through a checker that parses every frame and verifies that DATA never
//     exceeds the windows the server holds.
//   pair mode (bit 0 = 1): a client and a server Session back to back; the fuzzer calls
//     both APIs in any order and pumps frames. Two correct Sessions never report a protocol
//     error to each other, whatever the application does.
// Invariants: no crash or sanitizer report; an error is connection-fatal and sticky (every
// later call returns it); windows stay within 1..2^31-1 bounds and the limits; queued bytes
// never exceed queue_per_conn; live channels never exceed max_channels.
#include <weft/mux/frame.h>
#include <weft/mux/session.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "fuzz_common.h"

namespace {

using namespace weft::mux;

struct Program {
  const std::uint8_t* p;
  std::size_t n;
  std::size_t i = 0;
  bool done() const { return i >= n; }
  std::uint8_t u8() { return i < n ? p[i++] : 0; }
  std::uint16_t u16() {
    const std::uint16_t hi = u8();  // sequenced: the operands of | are not
    return static_cast<std::uint16_t>(hi << 8 | u8());
  }
  std::uint32_t u32() {
    const std::uint32_t hi = u16();
    return hi << 16 | u16();
  }
  std::span<const std::byte> bytes(std::size_t k) {
    k = std::min(k, n - std::min(i, n));
    auto s = std::as_bytes(std::span<const std::uint8_t>(p + i, k));
    i += k;
    return s;
  }
};

Limits limits_for(std::uint8_t cfg) {
  Limits l;
  l.max_channels = static_cast<std::uint16_t>(1 + (cfg >> 1 & 3) * 3);  // 1, 4, 7, 10
  l.channel_window = (cfg & 0x10) != 0 ? 100 : 4096;
  l.conn_window = (cfg & 0x20) != 0 ? 300 : 16384;
  l.max_data = (cfg & 0x40) != 0 ? 7 : 1024;
  l.queue_per_channel = 512;
  l.queue_per_conn = 2048;
  l.max_opens_per_sec = 20;
  l.max_resets_per_sec = 20;
  l.max_pending_refusals = 4;
  return l;
}

void check_state(const Session& s, const Limits& l) {
  FUZZ_CHECK(s.live_channels() <= l.max_channels);
  FUZZ_CHECK(s.queued_total() <= l.queue_per_conn);
  FUZZ_CHECK(s.conn_recv_window() <= l.conn_window);
  FUZZ_CHECK(s.conn_send_window() <= kMaxWindow);
}

// Sticky errors: once set, every call returns the same error.
void check_sticky(Session& s, std::error_code first) {
  if (!first) {
    return;
  }
  FUZZ_CHECK(s.error() == first);
  FUZZ_CHECK(is_connection_fatal(static_cast<mux_errc>(first.value())));
  std::array<std::byte, kMaxControlFrameSize> buf{};
  FUZZ_CHECK(s.next_frame(buf).error() == first);
  FUZZ_CHECK(s.feed(make_window_update(0, 1)).error() == first);
}

// Calls one API function of `s` chosen by the program.
void api_call(Session& s, Program& pr, std::array<std::uint16_t, 8>& known) {
  const std::uint8_t op = pr.u8();
  const std::uint16_t ch = known[pr.u8() % known.size()];
  switch (op % 8) {
    case 0: {
      // Sequenced reads: the order of evaluation of call arguments is unspecified.
      const auto name = pr.bytes(1 + pr.u8() % 8);
      const std::uint32_t window = pr.u8() % 2 == 0 ? 0 : pr.u16();
      auto r = s.open(name, window);
      if (r) {
        known[pr.u8() % known.size()] = r.value();
      }
      break;
    }
    case 1: {
      const std::uint32_t window = pr.u8() % 2 == 0 ? 0 : pr.u16();
      (void)s.accept(ch, window);
      break;
    }
    case 2:
      (void)s.refuse(ch, static_cast<ChannelError>(pr.u8() % 7));
      break;
    case 3: {
      const std::size_t before = s.queued(ch);
      auto r = s.write(ch, pr.bytes(pr.u8()));
      if (r) {
        FUZZ_CHECK(s.queued(ch) == before + r.value());
      }
      break;
    }
    case 4:
      (void)s.consume(ch, pr.u16() % 2000);
      break;
    case 5:
      (void)s.close(ch);
      break;
    case 6:
      (void)s.reset(ch, static_cast<ChannelError>(pr.u8() % 7));
      break;
    case 7:
      while (s.next_writable() != 0) {
      }
      break;
  }
}

// Drains `from`; every frame must parse and respect the windows `from` held. Feeds `to`
// when given (pair mode: it must accept everything).
void drain(Session& from, Session* to, std::array<std::uint16_t, 8>& to_known) {
  std::array<std::byte, 2048> buf{};
  for (int guard = 0; guard < 10000; ++guard) {
    const std::uint32_t conn_before = from.conn_send_window();
    auto n = from.next_frame(buf);
    if (!n || n.value() == 0) {
      return;
    }
    FUZZ_CHECK(n.value() <= buf.size());
    auto f = parse(std::span<const std::byte>(buf).subspan(4, n.value() - 4));
    FUZZ_CHECK(f.ok());
    if (f->type == FrameType::data) {
      FUZZ_CHECK(f->payload.size() <= conn_before);
      FUZZ_CHECK(from.conn_send_window() == conn_before - f->payload.size());
      FUZZ_CHECK(f->payload.size() <= from.peer_settings().max_data);
    }
    if (to != nullptr) {
      auto e = to->feed(f.value());
      if (!e) {
        std::fprintf(stderr, "pair: feed(type 0x%02x, channel %u): %s\n",
                     static_cast<unsigned>(f->type), static_cast<unsigned>(f->channel),
                     to_string(static_cast<mux_errc>(e.error().value())));
      }
      FUZZ_CHECK(e.ok());
      if (e->kind == EventKind::opened) {
        to_known[e->channel % to_known.size()] = e->channel;
      }
      if (e->kind == EventKind::data && !e->data.empty() && (e->channel & 4) == 0) {
        FUZZ_CHECK(to->consume(e->channel, e->data.size()).ok());
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) {
    return 0;
  }
  const std::uint8_t cfg = data[0];
  const Limits l = limits_for(cfg);
  Program pr{data + 1, size - 1};
  Session server(Role::server, l);
  std::array<std::uint16_t, 8> sk{1, 2, 3, 4, 5, 7, 9, 0};
  std::error_code sticky;
  std::uint64_t now = 0;

  if ((cfg & 1) == 0) {
    // Raw mode: the fuzzer is the client.
    for (int steps = 0; !pr.done() && steps < 4096; ++steps) {
      const std::uint8_t op = pr.u8();
      switch (op % 5) {
        case 0: {  // raw bytes through parse()
          auto f = parse(pr.bytes(pr.u8()));
          if (f) {
            auto e = server.feed(f.value());
            if (!e && !sticky) {
              sticky = e.error();
            }
          }
          break;
        }
        case 1: {  // a frame built from fields, valid for parse() by construction
          Frame f;
          f.type = static_cast<FrameType>(0x10 + pr.u8() % 7);
          f.flags = f.type == FrameType::data && pr.u8() % 2 != 0 ? kFlagFin : 0;
          f.channel = f.type == FrameType::settings ? 0 : pr.u8() % 12;
          f.window = pr.u8() % 4 == 0 ? pr.u32() : pr.u16();
          f.code = pr.u8();
          f.settings.conn_window = 1u + pr.u16();
          f.settings.max_data = 1u + pr.u8();
          f.settings.max_channels = pr.u8();
          f.name = pr.bytes(1 + pr.u8() % 4);
          f.payload = pr.bytes(pr.u8() % 64);
          std::array<std::byte, 4 + 8 + 12 + 255> enc{};
          auto n = encode(f, enc);
          if (n) {
            auto g = parse(std::span<const std::byte>(enc).subspan(4, n.value() - 4));
            FUZZ_CHECK(g.ok());
            auto e = server.feed(g.value());
            if (!e && !sticky) {
              sticky = e.error();
            }
          }
          break;
        }
        case 2:
          api_call(server, pr, sk);
          break;
        case 3:
          drain(server, nullptr, sk);
          break;
        case 4:
          now += pr.u16();
          server.set_time(now);
          break;
      }
      check_state(server, l);
      check_sticky(server, sticky);
    }
    return 0;
  }

  // Pair mode: two correct Sessions never fault each other. The rate limits are for hostile
  // peers (a correct one may open and reset as fast as its application asks), so they are
  // lifted here; REFUSEs pending are bounded by the client's channels.
  Limits lc = limits_for(static_cast<std::uint8_t>(cfg >> 1));
  Limits ls = l;
  for (Limits* x : {&lc, &ls}) {
    x->max_opens_per_sec = 0xffffffff;
    x->max_resets_per_sec = 0xffffffff;
    x->max_pending_refusals = 16;
  }
  Session client(Role::client, lc);
  Session server2(Role::server, ls);
  std::array<std::uint16_t, 8> ck{1, 2, 3, 4, 5, 6, 7, 8};
  for (int steps = 0; !pr.done() && steps < 4096; ++steps) {
    const std::uint8_t op = pr.u8();
    switch (op % 4) {
      case 0:
        api_call(client, pr, ck);
        break;
      case 1:
        api_call(server2, pr, sk);
        break;
      case 2:
        drain(client, &server2, sk);
        break;
      case 3:
        drain(server2, &client, ck);
        break;
    }
    FUZZ_CHECK(!client.error() && !server2.error());
    check_state(server2, ls);
    check_state(client, lc);
  }
  return 0;
}
