// weft::msg::pb without sockets: the generated traits and registration, the Workspace's
// arena limits, serialization through PayloadWriter pieces of every size, REQUEST encoding.
#include <weft/msg/pb_codec.h>
#include <weft/msg/pb_service.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include <weft/msg/frame.h>
#include <weft/platform/error.h>

#include "msg_wire.h"
#include "test_service.weft.h"

namespace weft::msg::pb {
namespace {

using test::AddReply;
using test::AddRequest;
using test::CalcRpc;
using test::EchoReply;
using test::EchoRequest;

AddRequest small_add() {
  AddRequest r;
  r.set_a(40);
  r.set_b(2);
  r.set_tag("short tag");
  r.add_extra(7);
  r.mutable_origin()->set_x(-3);
  return r;
}

std::unique_ptr<Workspace> make_workspace(WorkspaceConfig c = {}) {
  auto ws = Workspace::create(c);
  EXPECT_TRUE(ws.ok());
  return ws.ok() ? std::move(ws).value() : nullptr;
}

// ---- generated traits -------------------------------------------------------------------

TEST(PbGenerated, TraitsCarryTypesIdsAndNames) {
  static_assert(std::is_same_v<CalcRpc::Add::Request, AddRequest>);
  static_assert(std::is_same_v<CalcRpc::Add::Response, AddReply>);
  static_assert(std::is_same_v<CalcRpc::Echo::Request, EchoRequest>);
  static_assert(std::is_same_v<CalcRpc::Echo::Response, EchoReply>);
  static_assert(CalcRpc::kMethodCount == 2);  // unary methods only
  static_assert(CalcRpc::kStreamCount == 2);
  static_assert(std::is_same_v<CalcRpc::Ticks::Response, AddReply>);
  static_assert(CalcRpc::Ticks::server_streaming && !CalcRpc::Ticks::client_streaming);
  static_assert(CalcRpc::Chat::server_streaming && CalcRpc::Chat::client_streaming);
  EXPECT_EQ(CalcRpc::Ticks::channel, "rpc:weft.test.Calc/Ticks");
  EXPECT_EQ(CalcRpc::Chat::name, "weft.test.Calc/Chat");
  EXPECT_EQ(CalcRpc::kName, "weft.test.Calc");
  EXPECT_EQ(CalcRpc::Add::name, "weft.test.Calc/Add");
  EXPECT_EQ(CalcRpc::Echo::name, "weft.test.Calc/Echo");
  // The plugin's Python FNV-1a and weft::msg::method_id agree (the generated header also
  // static_asserts this); the literal pins the rule itself (docs/protocol.md §6.8).
  EXPECT_EQ(CalcRpc::Add::id, method_id("weft.test.Calc/Add"));
  EXPECT_EQ(CalcRpc::Add::id, 0x621d6456u);
  EXPECT_NE(CalcRpc::Add::id, CalcRpc::Echo::id);
}

class NullCalc final : public test::CalcService {
 public:
  using CalcService::CalcService;
  void Add(const AddRequest&, Responder<AddReply>&) noexcept override {}
  void Echo(const EchoRequest&, Responder<EchoReply>&) noexcept override {}
};

TEST(PbGenerated, RegisterServiceAddsEveryMethodOnce) {
  auto ws = make_workspace();
  NullCalc calc(*ws);
  Registry reg;
  ASSERT_TRUE(register_service(reg, calc));
  EXPECT_EQ(reg.size(), CalcRpc::kMethodCount);
  const Method* add = reg.find(CalcRpc::Add::id);
  ASSERT_NE(add, nullptr);
  EXPECT_EQ(add->name, CalcRpc::Add::name);
  EXPECT_EQ(add->ctx, &calc);
  ASSERT_NE(reg.find(CalcRpc::Echo::id), nullptr);
  // A second registration (or another service whose id collides) is refused by the registry.
  Result<void> again = register_service(reg, calc);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error(), msg_errc::duplicate_method);
  Result<void> clash = reg.add(Method{CalcRpc::Echo::id, "other.Service/Clash", add->fn, nullptr});
  EXPECT_EQ(clash.error(), msg_errc::duplicate_method);
}

// ---- Workspace --------------------------------------------------------------------------

TEST(PbWorkspace, CreateChecksLimits) {
  WorkspaceConfig c;
  c.arena_block = 255;
  EXPECT_EQ(Workspace::create(c).error(), platform::platform_errc::invalid_argument);
  c.arena_block = (std::size_t{16} << 20) + 1;
  EXPECT_EQ(Workspace::create(c).error(), platform::platform_errc::invalid_argument);
  c.arena_block = 256;
  c.spill = (std::size_t{16} << 20) + 1;
  EXPECT_EQ(Workspace::create(c).error(), platform::platform_errc::invalid_argument);
  c.spill = 0;
  EXPECT_TRUE(Workspace::create(c).ok());
}

TEST(PbWorkspace, TheSmallestBlockHoldsTheArenaItselfAndASmallMessage) {
  // The arena keeps its own header and allocation policy in the first block: with the
  // smallest block allowed, that must still fit, before and after a reset.
  WorkspaceConfig c;
  c.arena_block = 256;
  c.spill = 0;
  auto ws = make_workspace(c);
  EXPECT_FALSE(ws->exceeded());
  test::Point p;
  p.set_x(1);
  p.set_y(-1);
  const std::string wire = p.SerializeAsString();
  for (int i = 0; i < 3; ++i) {
    Workspace::Scope scope(*ws);
    Result<test::Point*> m = ws->parse<test::Point>(test::as_bytes(wire));
    ASSERT_TRUE(m.ok());
    EXPECT_EQ((*m)->y(), -1);
  }
  EXPECT_FALSE(ws->exceeded());
  EXPECT_EQ(ws->stats().heap_blocks, 0u);
  EXPECT_EQ(ws->stats().refused, 0u);
}

TEST(PbWorkspace, ParsesOnTheArenaUntilReset) {
  auto ws = make_workspace();
  const std::string wire = small_add().SerializeAsString();
  {
    Workspace::Scope scope(*ws);
    Result<AddRequest*> m = ws->parse<AddRequest>(test::as_bytes(wire));
    ASSERT_TRUE(m.ok());
    EXPECT_EQ((*m)->GetArena(), &ws->arena());
    EXPECT_EQ((*m)->a() + (*m)->b(), 42);
    EXPECT_EQ((*m)->tag(), "short tag");
    EXPECT_EQ((*m)->origin().x(), -3);
    EXPECT_FALSE(ws->exceeded());
  }
  EXPECT_EQ(ws->stats().calls, 1u);
  EXPECT_EQ(ws->arena().SpaceAllocated(), ws->config().arena_block);
}

TEST(PbWorkspace, GarbageIsBadPayload) {
  auto ws = make_workspace();
  Workspace::Scope scope(*ws);
  // Field 1 as a length-delimited record claiming 100 bytes that are not there.
  const std::byte garbage[] = {std::byte{0x0a}, std::byte{0x64}, std::byte{0x01}};
  Result<AddRequest*> m = ws->parse<AddRequest>(garbage);
  EXPECT_EQ(m.error(), ProtocolError::bad_payload);
  EXPECT_EQ(ws->stats().bad_payloads, 1u);
}

// A request that needs more memory than the arena block is refused, whatever serves the
// extra blocks for the length of the call; afterwards the arena is back to its one block.
void expect_refused_then_recovers(std::size_t spill, bool heap_expected) {
  WorkspaceConfig c;
  c.arena_block = 1024;
  c.spill = spill;
  auto ws = make_workspace(c);
  AddRequest big;
  for (std::uint32_t i = 0; i < 2000; ++i) {
    big.add_extra(i % 100);  // 2000 one-byte varints: ~2 KB on the wire, 8 KB in memory
  }
  const std::string wire = big.SerializeAsString();
  {
    Workspace::Scope scope(*ws);
    Result<AddRequest*> m = ws->parse<AddRequest>(test::as_bytes(wire));
    EXPECT_EQ(m.error(), ProtocolError::too_large);
    EXPECT_TRUE(ws->exceeded());
  }
  EXPECT_EQ(ws->stats().refused, 1u);
  EXPECT_EQ(ws->stats().heap_blocks != 0, heap_expected);
  EXPECT_FALSE(ws->exceeded());
  EXPECT_EQ(ws->arena().SpaceAllocated(), c.arena_block);
  const std::string ok = small_add().SerializeAsString();
  Workspace::Scope scope(*ws);
  EXPECT_TRUE(ws->parse<AddRequest>(test::as_bytes(ok)).ok());
}

TEST(PbWorkspace, OversizedRequestIsRefusedFromTheSpillArea) {
  expect_refused_then_recovers(/*spill=*/64 * 1024, /*heap_expected=*/false);
}

TEST(PbWorkspace, OversizedRequestBeyondTheSpillUsesTheHeapForThatCallOnly) {
  expect_refused_then_recovers(/*spill=*/0, /*heap_expected=*/true);
}

// ---- serialization ----------------------------------------------------------------------

TEST(PbCodec, SerializeAndDecodeRoundTrip) {
  const AddRequest in = small_add();
  std::vector<std::byte> buf(in.ByteSizeLong());
  Result<std::size_t> n = serialize(in, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, buf.size());
  AddRequest out;
  ASSERT_TRUE(decode(std::span<const std::byte>(buf).first(*n), out));
  EXPECT_EQ(out.SerializeAsString(), in.SerializeAsString());

  std::vector<std::byte> small(buf.size() - 1);
  EXPECT_EQ(serialize(in, small).error(), msg_errc::buffer_too_small);
  const std::byte garbage[] = {std::byte{0xff}};
  EXPECT_EQ(decode(garbage, out).error(), ProtocolError::bad_payload);
}

TEST(PbCodec, EncodeRequestWritesOneParsableFrame) {
  const AddRequest in = small_add();
  std::vector<std::byte> out(256);
  Result<std::size_t> n = encode_request<CalcRpc::Add>(9, in, out, /*deadline_ms=*/250);
  ASSERT_TRUE(n.ok());
  const std::size_t payload = in.ByteSizeLong();
  EXPECT_EQ(*n, kPrefixSize + kHeaderSize + 8 + payload);
  const std::uint32_t len = (std::to_integer<std::uint32_t>(out[0]) << 24) |
                            (std::to_integer<std::uint32_t>(out[1]) << 16) |
                            (std::to_integer<std::uint32_t>(out[2]) << 8) |
                            std::to_integer<std::uint32_t>(out[3]);
  EXPECT_EQ(len, *n - kPrefixSize);
  Result<Frame> f = parse(std::span<const std::byte>(out).subspan(kPrefixSize, len));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->type, FrameType::request);
  EXPECT_EQ(f->id, 9u);
  EXPECT_EQ(f->method, CalcRpc::Add::id);
  EXPECT_EQ(f->deadline_ms, 250u);
  AddRequest back;
  ASSERT_TRUE(decode(f->payload, back));
  EXPECT_EQ(back.SerializeAsString(), in.SerializeAsString());

  EXPECT_EQ(encode_request<CalcRpc::Add>(0, in, out).error(), msg_errc::bad_id);
  std::vector<std::byte> tiny(*n - 1);
  EXPECT_EQ(encode_request<CalcRpc::Add>(9, in, tiny).error(), msg_errc::buffer_too_small);
}

// A PayloadWriter over a buffer of exactly the declared size, handing it out in pieces of
// `piece` bytes, that checks the contract of server.h: wrote(n) only for the last piece,
// n <= its size, and nothing asked for past the declared size.
class PieceWriter final : public PayloadWriter {
 public:
  PieceWriter(std::size_t size, std::size_t piece) : buf_(size), piece_(piece) {}
  std::span<std::byte> next() noexcept override {
    if (open_) {
      violations_++;  // next() before wrote() for the previous piece
    }
    const std::size_t n = std::min(piece_, buf_.size() - handed_);
    last_ = std::span<std::byte>(buf_).subspan(handed_, n);
    handed_ += n;
    open_ = n != 0;
    return last_;
  }
  void wrote(std::size_t n) noexcept override {
    if (!open_ || n > last_.size()) {
      violations_++;
    }
    // Bytes handed out but not written are given back (the next piece starts after them).
    handed_ -= last_.size() - n;
    written_ += n;
    open_ = false;
  }
  [[nodiscard]] std::string str() const {
    return {reinterpret_cast<const char*>(buf_.data()), written_};
  }
  int violations_ = 0;
  bool open_ = false;

 private:
  std::vector<std::byte> buf_;
  std::size_t piece_;
  std::size_t handed_ = 0;
  std::size_t written_ = 0;
  std::span<std::byte> last_;
};

TEST(PbCodec, WriteMessageFillsPiecesOfEverySize) {
  AddRequest in = small_add();
  in.set_tag(std::string(70, 't'));  // longer than the coded stream's 16-byte slop
  for (std::uint32_t i = 0; i < 40; ++i) {
    in.add_extra(i * 1000);
  }
  const std::string want = in.SerializeAsString();
  const std::size_t size = in.ByteSizeLong();  // caches sizes, as reply_message does
  for (std::size_t piece = 1; piece <= size + 1; ++piece) {
    PieceWriter w(size, piece);
    ASSERT_TRUE(detail::write_message(&in, w)) << "piece " << piece;
    EXPECT_EQ(w.violations_, 0) << "piece " << piece;
    EXPECT_FALSE(w.open_) << "piece " << piece;
    EXPECT_EQ(w.str(), want) << "piece " << piece;
  }
}

TEST(PbCodec, WriteMessageOfAnEmptyMessageTouchesNothing) {
  AddReply empty;
  ASSERT_EQ(empty.ByteSizeLong(), 0u);
  PieceWriter w(0, 16);
  EXPECT_TRUE(detail::write_message(&empty, w));
  EXPECT_EQ(w.violations_, 0);
  EXPECT_EQ(w.str(), "");
}

}  // namespace
}  // namespace weft::msg::pb
