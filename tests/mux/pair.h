// Two weft::mux::Sessions wired back to back in memory (client <-> server), for the tests:
// pump() moves every frame each side has to send through parse() into the other side's
// feed(), answers OPENs, consumes received bytes (except on stalled channels), and refills
// writes from per-channel sources, until neither side has anything left to do.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <weft/mux/frame.h>
#include <weft/mux/session.h>

namespace weft::mux::test {

inline std::span<const std::byte> as_bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

struct Side {
  Side(Role role, const Limits& l) : s(role, l), limits(l) {}
  Session s;
  Limits limits;
  bool auto_accept = true;
  std::set<std::string> refuse_names;
  std::set<std::uint16_t> stalled;                         // received but not consumed
  std::map<std::uint16_t, std::vector<std::byte>> got;     // received bytes per channel
  std::map<std::uint16_t, std::vector<std::byte>> source;  // bytes still to write
  std::set<std::uint16_t> close_after_source;              // close() when source is empty
  std::vector<Event> events;                               // (views cleared)
  std::map<std::uint16_t, std::size_t> max_frame_payload;  // largest DATA seen per channel
  std::size_t frames_out = 0;

  void refill() {
    for (auto it = source.begin(); it != source.end(); ++it) {
      auto& src = it->second;
      while (!src.empty()) {
        Result<std::size_t> n = s.write(it->first, src);
        if (!n) {
          break;
        }
        src.erase(src.begin(), src.begin() + static_cast<std::ptrdiff_t>(n.value()));
      }
      if (src.empty() && close_after_source.erase(it->first) != 0) {
        EXPECT_TRUE(s.close(it->first).ok());
      }
    }
  }
};

// Moves frames until quiet. Returns the first error either side's feed() or next_frame()
// reported (or success). `budget` bounds the frames moved.
inline std::error_code pump(Side& a, Side& b, std::size_t budget = 10'000'000) {
  std::vector<std::byte> buf(64 * 1024);
  bool progress = true;
  while (progress && budget != 0) {
    progress = false;
    for (int dir = 0; dir < 2; ++dir) {
      Side& from = dir == 0 ? a : b;
      Side& to = dir == 0 ? b : a;
      from.refill();
      for (;;) {
        Result<std::size_t> n = from.s.next_frame(buf);
        if (!n) {
          return n.error();
        }
        if (n.value() == 0 || budget-- == 0) {
          break;
        }
        ++from.frames_out;
        progress = true;
        Result<Frame> f = parse(std::span<const std::byte>(buf).subspan(4, n.value() - 4));
        EXPECT_TRUE(f.ok()) << f.error().message();
        if (!f) {
          return f.error();
        }
        const std::uint16_t ch = f->channel;
        // The receiver's windows before the frame: a DATA never exceeds them.
        if (f->type == FrameType::data) {
          EXPECT_LE(f->payload.size(), to.s.conn_recv_window());
          EXPECT_LE(f->payload.size(), to.limits.max_data);
          if (to.s.state(ch) != ChannelState::idle) {
            EXPECT_LE(f->payload.size(), to.s.recv_window(ch));
          }
          auto& m = from.max_frame_payload[ch];
          m = std::max(m, f->payload.size());
        }
        Result<Event> e = to.s.feed(f.value());
        if (!e) {
          return e.error();
        }
        Event ev = e.value();
        switch (ev.kind) {
          case EventKind::opened: {
            const std::string name(reinterpret_cast<const char*>(ev.name.data()), ev.name.size());
            if (to.refuse_names.count(name) != 0) {
              EXPECT_TRUE(to.s.refuse(ev.channel, ChannelError::refused).ok());
            } else if (to.auto_accept) {
              EXPECT_TRUE(to.s.accept(ev.channel).ok());
            }
            break;
          }
          case EventKind::data: {
            auto& g = to.got[ev.channel];
            g.insert(g.end(), ev.data.begin(), ev.data.end());
            if (to.stalled.count(ev.channel) == 0 && !ev.data.empty()) {
              EXPECT_TRUE(to.s.consume(ev.channel, ev.data.size()).ok());
            }
            break;
          }
          default:
            break;
        }
        ev.name = {};
        ev.data = {};
        to.events.push_back(ev);
      }
      from.refill();
    }
  }
  return {};
}

inline std::uint64_t checksum(std::span<const std::byte> b) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  for (std::byte x : b) {
    h = (h ^ std::to_integer<std::uint64_t>(x)) * 1099511628211ull;
  }
  return h;
}

inline std::vector<std::byte> pattern(std::size_t n, std::uint32_t seed) {
  std::vector<std::byte> v(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::byte>(x);
  }
  return v;
}

inline std::size_t count(const Side& s, EventKind k, std::uint16_t ch = 0) {
  std::size_t n = 0;
  for (const Event& e : s.events) {
    n += e.kind == k && (ch == 0 || e.channel == ch) ? 1 : 0;
  }
  return n;
}

}  // namespace weft::mux::test
