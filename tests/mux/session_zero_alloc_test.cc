// Zero allocations after construction (STYLE point 8): 100 channels open, data flowing both
// ways through two Sessions back to back, counted by weft::alloc_counter.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include <weft/base/alloc_counter.h>
#include <weft/mux/frame.h>
#include <weft/mux/session.h>

namespace weft::mux {
namespace {

constexpr int kChannels = 100;

struct Wire {
  std::array<std::byte, 8192> buf{};
  std::array<std::byte, 4000> payload{};
  std::uint64_t bytes = 0;
  std::uint64_t frames = 0;
  std::array<std::uint16_t, kChannels> opened{};
  int n_opened = 0;

  // Moves every frame from -> to; the receiver consumes at once. Returns false on error.
  bool move(Session& from, Session& to) {
    for (;;) {
      Result<std::size_t> n = from.next_frame(buf);
      if (!n) {
        return false;
      }
      if (n.value() == 0) {
        return true;
      }
      ++frames;
      Result<Frame> f = parse(std::span<const std::byte>(buf).subspan(4, n.value() - 4));
      if (!f) {
        return false;
      }
      Result<Event> e = to.feed(f.value());
      if (!e) {
        return false;
      }
      if (e->kind == EventKind::opened) {
        if (!to.accept(e->channel).ok()) {
          return false;
        }
        opened[static_cast<std::size_t>(n_opened++)] = e->channel;
      } else if (e->kind == EventKind::data && !e->data.empty()) {
        bytes += e->data.size();
        if (!to.consume(e->channel, e->data.size()).ok()) {
          return false;
        }
      }
    }
  }
};

TEST(MuxZeroAlloc, HundredChannelsSteadyState) {
  if (!alloc::enabled()) {
    GTEST_SKIP() << "counting allocator not installed (sanitizer build or non-glibc)";
  }
  Limits l;
  l.max_channels = 128;
  l.channel_window = 8192;
  l.conn_window = 1 << 20;
  l.max_data = 4096;
  l.queue_per_channel = 4096;
  l.queue_per_conn = 1 << 20;
  Session c(Role::client, l);
  Session s(Role::server, l);
  Wire w;
  ASSERT_TRUE(w.move(c, s) && w.move(s, c));
  std::array<std::uint16_t, kChannels> ch{};
  const char name[] = "svc";
  for (auto& id : ch) {
    auto r = c.open(std::as_bytes(std::span<const char>(name, 3)));
    ASSERT_TRUE(r.ok());
    id = r.value();
  }
  ASSERT_TRUE(w.move(c, s) && w.move(s, c));
  ASSERT_EQ(w.n_opened, kChannels);
  ASSERT_EQ(c.live_channels(), static_cast<std::size_t>(kChannels));

  const std::uint64_t before = alloc::count();
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < kChannels; ++i) {
      const std::size_t len = 100 + static_cast<std::size_t>((round * 37 + i * 11) % 3000);
      (void)c.write(ch[static_cast<std::size_t>(i)], std::span(w.payload).first(len));
      (void)s.write(ch[static_cast<std::size_t>(i)], std::span(w.payload).first(len / 2));
    }
    ASSERT_TRUE(w.move(c, s) && w.move(s, c) && w.move(c, s));
    while (c.next_writable() != 0 || s.next_writable() != 0) {
    }
  }
  // Close and reopen churn counts too: slots are recycled, never allocated.
  for (int i = 0; i < kChannels; ++i) {
    ASSERT_TRUE(c.reset(ch[static_cast<std::size_t>(i)], ChannelError::cancel).ok());
  }
  ASSERT_TRUE(w.move(c, s) && w.move(s, c));
  for (auto& id : ch) {
    auto r = c.open(std::as_bytes(std::span<const char>(name, 3)));
    ASSERT_TRUE(r.ok());
    id = r.value();
  }
  w.n_opened = 0;
  ASSERT_TRUE(w.move(c, s) && w.move(s, c));
  const std::uint64_t after = alloc::count();
  EXPECT_EQ(after - before, 0u);
  EXPECT_GT(w.bytes, 1'000'000u);
  EXPECT_EQ(c.live_channels(), static_cast<std::size_t>(kChannels));
}

}  // namespace
}  // namespace weft::mux
