// weft::mux::Session: two Sessions back to back in memory (pair.h).
#include <gtest/gtest.h>

#include <cstdio>

#include "pair.h"

namespace weft::mux::test {
namespace {

static_assert(sizeof(detail::Slot) <= 128, "issue #16: an idle open channel costs <= 128 B");

Limits small() {
  Limits l;
  l.max_channels = 8;
  l.channel_window = 4096;
  l.conn_window = 16384;
  l.max_data = 1024;
  l.queue_per_channel = 2048;
  l.queue_per_conn = 8192;
  return l;
}

struct Pair {
  explicit Pair(const Limits& lc = small(), const Limits& ls = small())
      : c(Role::client, lc), s(Role::server, ls) {}
  std::error_code run() { return pump(c, s); }
  Side c;
  Side s;
};

std::uint16_t open_ok(Session& s, const char* name, std::uint32_t window = 0) {
  Result<std::uint16_t> r = s.open(as_bytes(name), window);
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r.ok() ? r.value() : 0;
}

TEST(MuxSession, SlotSize) {
  std::printf("sizeof(weft::mux::detail::Slot) = %zu\n", sizeof(detail::Slot));
  EXPECT_LE(sizeof(detail::Slot), 48u);
}

TEST(MuxSession, SettingsFirstThenOpen) {
  Pair p;
  EXPECT_EQ(p.c.s.open(as_bytes("x")).error(), mux_errc::not_ready);
  ASSERT_FALSE(p.run());
  EXPECT_TRUE(p.c.s.peer_ready());
  EXPECT_EQ(p.c.s.peer_settings().max_channels, 8);
  EXPECT_EQ(p.c.s.conn_send_window(), 16384u);
  EXPECT_EQ(open_ok(p.c.s, "a"), 1);
  EXPECT_EQ(open_ok(p.s.s, "b"), 2);
  EXPECT_EQ(open_ok(p.c.s, "c"), 3);
}

TEST(MuxSession, OpenAcceptRefuse) {
  Pair p;
  ASSERT_FALSE(p.run());
  p.s.refuse_names.insert("nope");
  const std::uint16_t a = open_ok(p.c.s, "echo");
  const std::uint16_t b = open_ok(p.c.s, "nope");
  EXPECT_EQ(p.c.s.state(a), ChannelState::open_sent);
  ASSERT_FALSE(p.run());
  EXPECT_EQ(count(p.s, EventKind::opened), 2u);
  EXPECT_EQ(count(p.c, EventKind::accepted, a), 1u);
  EXPECT_EQ(count(p.c, EventKind::refused, b), 1u);
  EXPECT_EQ(p.c.s.state(a), ChannelState::open);
  EXPECT_EQ(p.s.s.state(a), ChannelState::open);
  EXPECT_EQ(p.c.s.state(b), ChannelState::idle);
  EXPECT_EQ(p.s.s.state(b), ChannelState::idle);
  EXPECT_EQ(p.c.s.live_channels(), 1u);
  EXPECT_EQ(p.s.s.live_channels(), 1u);
  EXPECT_EQ(p.c.s.send_window(a), 4096u);
  for (const Event& e : p.c.events) {
    if (e.kind == EventKind::refused) {
      EXPECT_EQ(e.code, static_cast<std::uint16_t>(ChannelError::refused));
    }
  }
}

// Every DATA size from 1 byte up, and output buffers just above the control minimum.
TEST(MuxSession, BulkIntegrityEveryFrameSize) {
  for (std::uint32_t max_data : {1u, 2u, 3u, 7u, 64u, 255u, 1000u, 4096u, 16384u}) {
    Limits l = small();
    l.max_data = max_data;
    l.channel_window = 3000;  // not a multiple of most sizes: partial frames at window edges
    Pair p(l, l);
    ASSERT_FALSE(p.run());
    const std::uint16_t ch = open_ok(p.c.s, "bulk");
    const auto up = pattern(20000, max_data);
    const auto down = pattern(15000, max_data + 1);
    p.c.source[ch] = up;
    p.c.close_after_source.insert(ch);
    p.s.auto_accept = true;
    ASSERT_FALSE(p.run()) << max_data;
    p.s.source[ch] = down;
    p.s.close_after_source.insert(ch);
    ASSERT_FALSE(p.run()) << max_data;
    EXPECT_EQ(checksum(p.s.got[ch]), checksum(up)) << max_data;
    EXPECT_EQ(checksum(p.c.got[ch]), checksum(down)) << max_data;
    EXPECT_LE(p.c.max_frame_payload[ch], max_data);
    EXPECT_EQ(p.c.s.live_channels(), 0u);
    EXPECT_EQ(p.s.s.live_channels(), 0u);
    EXPECT_EQ(p.c.s.queued_total(), 0u);
  }
}

TEST(MuxSession, SmallOutputBufferBoundsData) {
  Limits l = small();
  l.max_data = 4096;
  Session c(Role::client, l);
  Session s(Role::server, l);
  std::vector<std::byte> buf(kMaxControlFrameSize);
  std::vector<std::byte> big(4096);
  auto move = [&](Session& from, Session& to) {
    for (;;) {
      auto n = from.next_frame(buf);
      ASSERT_TRUE(n.ok());
      if (n.value() == 0) {
        return;
      }
      auto f = parse(std::span<const std::byte>(buf).subspan(4, n.value() - 4));
      ASSERT_TRUE(f.ok());
      if (f->type == FrameType::data) {
        EXPECT_LE(n.value(), kMaxControlFrameSize);
      }
      auto e = to.feed(f.value());
      ASSERT_TRUE(e.ok());
      if (e->kind == EventKind::opened) {
        ASSERT_TRUE(to.accept(e->channel).ok());
      }
    }
  };
  move(c, s);
  move(s, c);
  const std::uint16_t ch = c.open(as_bytes("x")).value();
  move(c, s);
  move(s, c);
  ASSERT_EQ(c.write(ch, big).value(), 2048u);  // queue_per_channel
  move(c, s);
  EXPECT_EQ(c.queued(ch), 0u);
  EXPECT_EQ(s.next_frame(std::span<std::byte>(buf).first(100)).error(), mux_errc::buffer_too_small);
}

// One reader stops consuming: its window runs dry, the other channels' data keeps flowing.
TEST(MuxSession, StalledChannelDoesNotBlockOthers) {
  Pair p;
  ASSERT_FALSE(p.run());
  const std::uint16_t stuck = open_ok(p.c.s, "stuck");
  const std::uint16_t a = open_ok(p.c.s, "a");
  const std::uint16_t b = open_ok(p.c.s, "b");
  ASSERT_FALSE(p.run());
  p.s.stalled.insert(stuck);
  const auto big = pattern(50000, 1);
  p.c.source[stuck] = big;
  p.c.source[a] = pattern(50000, 2);
  p.c.source[b] = pattern(50000, 3);
  const auto want_a = p.c.source[a];
  const auto want_b = p.c.source[b];
  ASSERT_FALSE(p.run());
  EXPECT_EQ(p.s.got[a], want_a);
  EXPECT_EQ(p.s.got[b], want_b);
  EXPECT_EQ(p.s.got[stuck].size(), 4096u);  // exactly one window, never more
  EXPECT_EQ(p.c.s.send_window(stuck), 0u);
  EXPECT_EQ(p.s.s.recv_window(stuck), 0u);
  // The reader resumes: everything arrives.
  p.s.stalled.clear();
  ASSERT_TRUE(p.s.s.consume(stuck, 4096).ok());
  ASSERT_FALSE(p.run());
  EXPECT_EQ(p.s.got[stuck], big);
}

// With equal backlogs, DRR interleaves: no channel sends two quanta while another waits.
TEST(MuxSession, FairInterleaving) {
  Limits l = small();
  l.channel_window = 1 << 20;
  l.conn_window = 1 << 20;
  l.queue_per_channel = 8192;
  l.queue_per_conn = 1 << 20;
  Pair p(l, l);
  ASSERT_FALSE(p.run());
  std::uint16_t ch[3];
  for (auto& c : ch) {
    c = open_ok(p.c.s, "f");
  }
  ASSERT_FALSE(p.run());
  for (auto c : ch) {
    ASSERT_EQ(p.c.s.write(c, pattern(8192, c)).value(), 8192u);
  }
  std::vector<std::byte> buf(64 * 1024);
  std::vector<std::uint16_t> order;
  for (;;) {
    auto n = p.c.s.next_frame(buf);
    ASSERT_TRUE(n.ok());
    if (n.value() == 0) {
      break;
    }
    auto f = parse(std::span<const std::byte>(buf).subspan(4, n.value() - 4));
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f->payload.size(), 1024u);
    order.push_back(f->channel);
  }
  ASSERT_EQ(order.size(), 24u);
  for (std::size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(order[i], ch[i % 3]) << i;
  }
}

TEST(MuxSession, HalfCloseBothWays) {
  Pair p;
  ASSERT_FALSE(p.run());
  const std::uint16_t ch = open_ok(p.c.s, "hc");
  ASSERT_FALSE(p.run());
  ASSERT_EQ(p.c.s.write(ch, as_bytes("ping")).value(), 4u);
  ASSERT_TRUE(p.c.s.close(ch).ok());
  EXPECT_EQ(p.c.s.close(ch).error(), mux_errc::closed);
  EXPECT_EQ(p.c.s.write(ch, as_bytes("x")).error(), mux_errc::closed);
  EXPECT_EQ(p.c.s.state(ch), ChannelState::half_closed_local);
  ASSERT_FALSE(p.run());
  EXPECT_EQ(p.s.s.state(ch), ChannelState::half_closed_remote);
  // The server still writes after the client's FIN.
  ASSERT_EQ(p.s.s.write(ch, as_bytes("pong!")).value(), 5u);
  ASSERT_FALSE(p.run());
  EXPECT_EQ(p.c.got[ch].size(), 5u);
  EXPECT_EQ(p.c.s.state(ch), ChannelState::half_closed_local);
  ASSERT_TRUE(p.s.s.close(ch).ok());
  ASSERT_FALSE(p.run());
  EXPECT_EQ(p.c.s.state(ch), ChannelState::idle);
  EXPECT_EQ(p.s.s.state(ch), ChannelState::idle);
  EXPECT_EQ(p.c.s.live_channels(), 0u);
  EXPECT_EQ(p.s.s.live_channels(), 0u);
  std::size_t fins = 0;
  for (const Event& e : p.c.events) {
    fins += e.kind == EventKind::data && e.fin ? 1 : 0;
  }
  EXPECT_EQ(fins, 1u);
}

// A closed channel whose received bytes are not consumed yet stays until they are.
TEST(MuxSession, ClosedKeepsSlotUntilConsumed) {
  Pair p;
  ASSERT_FALSE(p.run());
  const std::uint16_t ch = open_ok(p.c.s, "k");
  ASSERT_FALSE(p.run());
  p.s.stalled.insert(ch);
  ASSERT_TRUE(p.c.s.write(ch, as_bytes("abc")).ok());
  ASSERT_TRUE(p.c.s.close(ch).ok());
  ASSERT_TRUE(p.s.s.close(ch).ok());
  ASSERT_FALSE(p.run());
  EXPECT_EQ(p.s.s.state(ch), ChannelState::closed);
  EXPECT_EQ(p.s.s.consume(ch, 4).error(), mux_errc::bad_argument);
  ASSERT_TRUE(p.s.s.consume(ch, 3).ok());
  EXPECT_EQ(p.s.s.state(ch), ChannelState::idle);
}

TEST(MuxSession, ResetMidTransferFreesQueue) {
  Pair p;
  ASSERT_FALSE(p.run());
  const std::uint16_t ch = open_ok(p.c.s, "r");
  const std::uint16_t other = open_ok(p.c.s, "o");
  ASSERT_FALSE(p.run());
  p.s.stalled.insert(ch);
  p.c.source[ch] = pattern(100000, 9);
  ASSERT_FALSE(p.run());
  EXPECT_GT(p.c.s.queued(ch), 0u);
  EXPECT_GT(p.c.s.queued_total(), 0u);
  const std::uint32_t conn_before = p.s.s.conn_recv_window();
  p.c.source.erase(ch);
  ASSERT_TRUE(p.c.s.reset(ch, ChannelError::cancel).ok());
  EXPECT_EQ(p.c.s.queued_total(), 0u);
  EXPECT_EQ(p.c.s.state(ch), ChannelState::idle);
  EXPECT_EQ(p.c.s.write(ch, as_bytes("x")).error(), mux_errc::no_channel);
  ASSERT_FALSE(p.run());
  EXPECT_EQ(count(p.s, EventKind::reset, ch), 1u);
  EXPECT_EQ(p.s.s.state(ch), ChannelState::idle);
  // The stalled channel's unconsumed bytes went back to the connection window.
  EXPECT_GE(p.s.s.conn_recv_window(), conn_before);
  EXPECT_EQ(p.c.s.live_channels(), 1u);
  // The other channel still works, with the full connection window.
  p.c.source[other] = pattern(40000, 4);
  const auto want = p.c.source[other];
  ASSERT_FALSE(p.run());
  EXPECT_EQ(p.s.got[other], want);
}

// DATA that crossed our RESET on the wire is dropped, and its connection credit returned.
TEST(MuxSession, DataAfterOwnResetIsDropped) {
  Pair p;
  ASSERT_FALSE(p.run());
  const std::uint16_t ch = open_ok(p.c.s, "r");
  ASSERT_FALSE(p.run());
  ASSERT_TRUE(p.s.s.reset(ch, ChannelError::cancel).ok());  // not yet sent to the client
  ASSERT_TRUE(p.c.s.write(ch, pattern(1000, 1)).ok());
  std::vector<std::byte> buf(4096);
  auto n = p.c.s.next_frame(buf);
  ASSERT_TRUE(n.ok() && n.value() > 0);
  auto f = parse(std::span<const std::byte>(buf).subspan(4, n.value() - 4));
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->type, FrameType::data);
  auto e = p.s.s.feed(f.value());
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, EventKind::none);
  ASSERT_FALSE(p.run());
  EXPECT_EQ(count(p.c, EventKind::reset, ch), 1u);
  EXPECT_EQ(p.c.s.live_channels(), 0u);
}

TEST(MuxSession, MaxChannelsRefuses) {
  Limits ls = small();
  ls.max_channels = 2;
  Pair p(small(), ls);
  ASSERT_FALSE(p.run());
  open_ok(p.s.s, "server-side");  // takes one of the server's two slots
  const std::uint16_t a = open_ok(p.c.s, "a");
  ASSERT_FALSE(p.run());
  EXPECT_EQ(count(p.c, EventKind::accepted, a), 1u);
  // The client may have 2 open (the server's max_channels) but the server has no slot.
  const std::uint16_t b = open_ok(p.c.s, "b");
  ASSERT_FALSE(p.run());
  EXPECT_EQ(count(p.c, EventKind::refused, b), 1u);
  EXPECT_EQ(p.c.s.state(b), ChannelState::idle);
  EXPECT_EQ(p.c.s.open(as_bytes("c")).ok(), true);
  EXPECT_EQ(p.c.s.open(as_bytes("d")).error(), mux_errc::channel_limit);
}

TEST(MuxSession, WouldBlockThenWritable) {
  Pair p;
  ASSERT_FALSE(p.run());
  const std::uint16_t ch = open_ok(p.c.s, "w");
  ASSERT_EQ(p.c.s.write(ch, pattern(5000, 1)).value(), 2048u - 1u);  // name reserved
  EXPECT_EQ(p.c.s.write(ch, pattern(10, 1)).error(), mux_errc::would_block);
  EXPECT_EQ(p.c.s.next_writable(), 0);
  ASSERT_FALSE(p.run());
  EXPECT_EQ(p.c.s.next_writable(), ch);
  EXPECT_EQ(p.c.s.next_writable(), 0);
  // The connection's queue: 4 channels x 2048 = 8192 = queue_per_conn.
  std::uint16_t chs[4];
  for (auto& c : chs) {
    c = open_ok(p.c.s, "q");
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(p.c.s.write(chs[i], pattern(2047, 1)).ok());
  }
  ASSERT_TRUE(p.c.s.write(chs[3], pattern(2047, 1)).ok());
  ASSERT_TRUE(p.c.s.write(ch, pattern(100, 1)).ok());  // 8188 + 100 > 8192: partial
  EXPECT_EQ(p.c.s.queued_total(), 8192u);
  EXPECT_EQ(p.c.s.write(ch, pattern(1, 1)).error(), mux_errc::would_block);
}

// write_all: a message is queued whole or not at all (weft/mux/stream.h relies on it).
TEST(MuxSession, WriteAllIsAllOrNothing) {
  Pair p;
  ASSERT_FALSE(p.run());
  const std::uint16_t ch = open_ok(p.c.s, "m");  // 1 byte of the ring holds the name
  const auto head = pattern(4, 1);
  ASSERT_TRUE(p.c.s.write_all(ch, head, pattern(1500, 2)).ok());
  EXPECT_EQ(p.c.s.queued(ch), 1504u);
  // 1504 + 4 + 600 > 2047 free: refused whole, nothing queued, the writer is remembered.
  EXPECT_EQ(p.c.s.write_all(ch, head, pattern(600, 3)).error(), mux_errc::would_block);
  EXPECT_EQ(p.c.s.queued(ch), 1504u);
  // Larger than a whole queue can ever hold (minus the OPEN name's reserve): bad_argument.
  EXPECT_EQ(p.c.s.write_all(ch, pattern(2000, 4)).error(), mux_errc::bad_argument);
  ASSERT_FALSE(p.run());  // sent: room again, and the blocked writer is told
  EXPECT_EQ(p.c.s.next_writable(), ch);
  ASSERT_TRUE(p.c.s.write_all(ch, head, pattern(600, 3)).ok());
  EXPECT_EQ(p.c.s.queued(ch), 604u);
  ASSERT_TRUE(p.c.s.close(ch).ok());
  EXPECT_EQ(p.c.s.write_all(ch, head).error(), mux_errc::closed);
  EXPECT_EQ(p.c.s.write_all(999, head).error(), mux_errc::no_channel);
}

// ---- a peer breaking the rules: connection-fatal and sticky ------------------------------

struct Raw {
  Raw() : s(Role::server, small()) {
    Settings st{16384, 1024, 8};
    EXPECT_TRUE(s.feed(make_settings(st)).ok());
  }
  Result<Event> feed(const Frame& f) { return s.feed(f); }
  Session s;
};

TEST(MuxSession, LyingPeerOverChannelWindow) {
  Raw r;
  ASSERT_TRUE(r.feed(make_open(1, 100, as_bytes("x"))).ok());
  ASSERT_TRUE(r.s.accept(1, 1000).ok());
  const auto blob = pattern(1000, 1);
  ASSERT_TRUE(r.feed(make_data(1, std::span(blob).first(600))).ok());
  EXPECT_EQ(r.feed(make_data(1, std::span(blob).first(401))).error(), mux_errc::flow_control);
  // Sticky: everything after reports the same error.
  EXPECT_EQ(r.feed(make_window_update(0, 1)).error(), mux_errc::flow_control);
  std::vector<std::byte> buf(1024);
  EXPECT_EQ(r.s.next_frame(buf).error(), mux_errc::flow_control);
  EXPECT_EQ(r.s.open(as_bytes("y")).error(), mux_errc::flow_control);
  EXPECT_EQ(r.s.error(), mux_errc::flow_control);
  EXPECT_TRUE(is_connection_fatal(mux_errc::flow_control));
}

TEST(MuxSession, LyingPeerOverConnectionWindow) {
  Limits l = small();
  l.conn_window = 1500;
  Session s(Role::server, l);
  ASSERT_TRUE(s.feed(make_settings({16384, 1024, 8})).ok());
  ASSERT_TRUE(s.feed(make_open(1, 100, as_bytes("x"))).ok());
  ASSERT_TRUE(s.feed(make_open(3, 100, as_bytes("y"))).ok());
  ASSERT_TRUE(s.accept(1).ok());
  ASSERT_TRUE(s.accept(3).ok());
  const auto blob = pattern(1000, 1);
  ASSERT_TRUE(s.feed(make_data(1, blob)).ok());
  EXPECT_EQ(s.feed(make_data(3, std::span(blob).first(501))).error(), mux_errc::flow_control);
}

TEST(MuxSession, ProtocolErrors) {
  {
    Session s(Role::server, small());
    EXPECT_EQ(s.feed(make_open(1, 100, as_bytes("x"))).error(), mux_errc::bad_state);
  }
  {
    Raw r;
    EXPECT_EQ(r.feed(make_settings({1, 1, 1})).error(), mux_errc::bad_state);
  }
  {
    Raw r;
    const auto blob = pattern(10, 1);
    EXPECT_EQ(r.feed(make_data(7, blob)).error(), mux_errc::unknown_channel);
  }
  {
    Raw r;  // the server's own parity, never opened
    EXPECT_EQ(r.feed(make_window_update(4, 1)).error(), mux_errc::unknown_channel);
  }
  {
    Raw r;
    EXPECT_EQ(r.feed(make_open(2, 100, as_bytes("x"))).error(), mux_errc::bad_channel_id);
  }
  {
    Raw r;
    ASSERT_TRUE(r.feed(make_open(5, 100, as_bytes("x"))).ok());
    EXPECT_EQ(r.feed(make_open(3, 100, as_bytes("x"))).error(), mux_errc::bad_channel_id);
  }
  {
    Raw r;
    const auto blob = pattern(1025, 1);
    ASSERT_TRUE(r.feed(make_open(1, 100, as_bytes("x"))).ok());
    ASSERT_TRUE(r.s.accept(1).ok());
    EXPECT_EQ(r.feed(make_data(1, blob)).error(), mux_errc::data_too_large);
  }
  {
    Raw r;  // DATA before accept(): the peer has no window yet
    const auto blob = pattern(10, 1);
    ASSERT_TRUE(r.feed(make_open(1, 100, as_bytes("x"))).ok());
    EXPECT_EQ(r.feed(make_data(1, blob)).error(), mux_errc::bad_state);
  }
  {
    Raw r;  // DATA after FIN
    const auto blob = pattern(10, 1);
    ASSERT_TRUE(r.feed(make_open(1, 100, as_bytes("x"))).ok());
    ASSERT_TRUE(r.s.accept(1).ok());
    ASSERT_TRUE(r.feed(make_data(1, blob, true)).ok());
    EXPECT_EQ(r.feed(make_data(1, blob)).error(), mux_errc::bad_state);
  }
  {
    Raw r;
    ASSERT_TRUE(r.feed(make_open(1, kMaxWindow - 1, as_bytes("x"))).ok());
    ASSERT_TRUE(r.feed(make_window_update(1, 1)).ok());
    EXPECT_EQ(r.feed(make_window_update(1, 1)).error(), mux_errc::window_overflow);
  }
  {
    Raw r;
    EXPECT_EQ(r.feed(make_window_update(0, kMaxWindow)).error(), mux_errc::window_overflow);
  }
  {
    Raw r;  // OPEN_ACK for a channel of ours that is not waiting for one
    EXPECT_EQ(r.feed(make_open_ack(2, 10)).error(), mux_errc::unknown_channel);
  }
}

TEST(MuxSession, OpenAndResetFloods) {
  Limits l = small();
  l.max_opens_per_sec = 5;
  l.max_resets_per_sec = 3;
  l.max_pending_refusals = 100;
  {
    Session s(Role::server, l);
    ASSERT_TRUE(s.feed(make_settings({16384, 1024, 8})).ok());
    s.set_time(1000);
    std::uint16_t id = 1;
    for (int i = 0; i < 5; ++i, id += 2) {
      ASSERT_TRUE(s.feed(make_open(id, 10, as_bytes("x"))).ok());
      ASSERT_TRUE(s.reset(id, ChannelError::cancel).ok());
    }
    s.set_time(2000);  // a new second: the count starts again
    for (int i = 0; i < 5; ++i, id += 2) {
      ASSERT_TRUE(s.feed(make_open(id, 10, as_bytes("x"))).ok());
    }
    EXPECT_EQ(s.feed(make_open(id, 10, as_bytes("x"))).error(), mux_errc::open_flood);
  }
  {
    Session s(Role::server, l);
    ASSERT_TRUE(s.feed(make_settings({16384, 1024, 8})).ok());
    for (std::uint16_t id = 1; id <= 7; id += 2) {
      ASSERT_TRUE(s.feed(make_open(id, 10, as_bytes("x"))).ok());
    }
    for (std::uint16_t id = 1; id <= 5; id += 2) {
      ASSERT_TRUE(s.feed(make_reset(id, ChannelError::cancel)).ok());
    }
    EXPECT_EQ(s.feed(make_reset(7, ChannelError::cancel)).error(), mux_errc::reset_flood);
  }
  {
    // OPENs past the slots queue REFUSEs; more than max_pending_refusals is a flood.
    Limits m = small();
    m.max_channels = 1;
    m.max_pending_refusals = 2;
    Session s(Role::server, m);
    ASSERT_TRUE(s.feed(make_settings({16384, 1024, 8})).ok());
    ASSERT_TRUE(s.feed(make_open(1, 10, as_bytes("x"))).ok());
    EXPECT_EQ(s.feed(make_open(3, 10, as_bytes("x")))->kind, EventKind::none);
    EXPECT_EQ(s.feed(make_open(5, 10, as_bytes("x")))->kind, EventKind::none);
    EXPECT_EQ(s.feed(make_open(7, 10, as_bytes("x"))).error(), mux_errc::open_flood);
  }
}

TEST(MuxSession, LocalErrors) {
  Pair p;
  ASSERT_FALSE(p.run());
  EXPECT_EQ(p.c.s.open({}).error(), mux_errc::bad_argument);
  EXPECT_EQ(p.c.s.write(99, as_bytes("x")).error(), mux_errc::no_channel);
  EXPECT_EQ(p.c.s.consume(99, 1).error(), mux_errc::no_channel);
  EXPECT_EQ(p.c.s.close(99).error(), mux_errc::no_channel);
  EXPECT_EQ(p.c.s.reset(99, ChannelError::cancel).error(), mux_errc::no_channel);
  EXPECT_EQ(p.c.s.accept(99).error(), mux_errc::no_channel);
  // A reset before the OPEN was sent sends nothing at all.
  const std::uint16_t ch = open_ok(p.c.s, "z");
  ASSERT_TRUE(p.c.s.reset(ch, ChannelError::cancel).ok());
  ASSERT_FALSE(p.run());
  EXPECT_EQ(count(p.s, EventKind::opened), 0u);
  EXPECT_EQ(p.c.s.live_channels(), 0u);
}

TEST(MuxSession, IdsExhausted) {
  Limits l = small();
  Pair p(l, l);
  ASSERT_FALSE(p.run());
  std::uint32_t opened = 0;
  std::vector<std::byte> buf(1024);
  for (;;) {
    auto r = p.c.s.open(as_bytes("i"));
    if (!r) {
      EXPECT_EQ(r.error(), mux_errc::ids_exhausted);
      break;
    }
    ++opened;
    ASSERT_TRUE(p.c.s.reset(r.value(), ChannelError::cancel).ok());
    // Nothing goes out (the OPEN was never sent), but the slot is recycled only once the
    // control FIFO has passed it.
    ASSERT_EQ(p.c.s.next_frame(buf).value(), 0u);
  }
  EXPECT_EQ(opened, 32768u);  // 1, 3, ..., 65535
}

}  // namespace
}  // namespace weft::mux::test
