// weft/mux/stream.h: MessageReader splits u32-prefixed messages at every split of the stream
// (in place when whole, assembled when split), refuses an oversize one, reports a FIN inside a
// message; Services routes by exact name, refuses unknown names and duplicates.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include <weft/mux/stream.h>

namespace weft::mux {
namespace {

std::vector<std::byte> framed(const std::vector<std::string>& msgs) {
  std::vector<std::byte> out;
  for (const std::string& m : msgs) {
    const auto n = static_cast<std::uint32_t>(m.size());
    for (int shift : {24, 16, 8, 0}) {
      out.push_back(static_cast<std::byte>(n >> shift));
    }
    for (char c : m) {
      out.push_back(static_cast<std::byte>(c));
    }
  }
  return out;
}

TEST(MuxStream, MessagesAtEverySplit) {
  const std::vector<std::string> msgs = {"a", "", std::string(300, 'x'), "tail"};
  const std::vector<std::byte> wire = framed(msgs);
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    std::array<std::byte, 512> storage{};
    MessageReader r(storage);
    std::vector<std::string> got;
    const auto on = [&](std::span<const std::byte> m) {
      got.emplace_back(reinterpret_cast<const char*>(m.data()), m.size());
    };
    ASSERT_TRUE(r.feed(std::span(wire).first(cut), on).ok());
    ASSERT_TRUE(r.feed(std::span(wire).subspan(cut), on).ok());
    EXPECT_EQ(got, msgs) << "cut at " << cut;
    EXPECT_TRUE(r.finish().ok());
    EXPECT_EQ(r.messages(), msgs.size());
  }
}

TEST(MuxStream, OversizeAndTruncated) {
  std::array<std::byte, 16> storage{};
  MessageReader r(storage);
  const std::vector<std::byte> big = framed({std::string(17, 'y')});
  EXPECT_FALSE(r.feed(big, [](std::span<const std::byte>) {}).ok());
  r.reset();
  const std::vector<std::byte> ok = framed({"abc"});
  ASSERT_TRUE(r.feed(std::span(ok).first(5), [](std::span<const std::byte>) {}).ok());
  EXPECT_TRUE(r.mid_message());
  EXPECT_FALSE(r.finish().ok());  // the peer's FIN inside a message: a failed call
}

struct Nop final : ChannelHandler {
  std::size_t on_data(Endpoint&, std::uint16_t, platform::BufView d, bool) noexcept override {
    return d.bytes.size();
  }
  void on_closed(Endpoint&, std::uint16_t, ChannelError) noexcept override {}
};

TEST(MuxStream, ServicesRouteByExactName) {
  Nop a;
  Services s(2);
  const auto give = [](void* ctx, Endpoint&, std::uint16_t) noexcept -> ChannelHandler* {
    return static_cast<ChannelHandler*>(ctx);
  };
  const auto none = [](void*, Endpoint&, std::uint16_t) noexcept -> ChannelHandler* {
    return nullptr;
  };
  ASSERT_TRUE(s.add("rpc:x.S/A", give, &a).ok());
  EXPECT_EQ(s.add("rpc:x.S/A", give, &a).error(), make_error_code(mux_errc::closed));
  ASSERT_TRUE(s.add("busy", none, nullptr).ok());
  EXPECT_EQ(s.add("third", give, &a).error(), make_error_code(mux_errc::bad_argument));
  EXPECT_EQ(s.add("", give, &a).error(), make_error_code(mux_errc::bad_argument));
  Endpoint ep(Role::server, EndpointOptions{});
  EXPECT_EQ(s.on_open(ep, 2, "rpc:x.S/A"), &a);
  EXPECT_EQ(s.on_open(ep, 4, "rpc:x.S/"), nullptr);  // a prefix is not a match
  EXPECT_EQ(s.on_open(ep, 6, "busy"), nullptr);      // the route said no
  EXPECT_EQ(s.refused(), 2u);
}

}  // namespace
}  // namespace weft::mux
