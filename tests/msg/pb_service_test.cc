// The generated Calc service (tests/msg/proto/test_service.proto) on a real msg::Server over
// loopback, both backends: typed answers at once and from a timer, bad and oversized
// payloads refused per call (the connection stays), both message storages.
#include <weft/msg/pb_service.h>

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <weft/msg/server.h>
#include <weft/platform/runtime.h>

#include "msg_wire.h"
#include "pb_server_test.h"
#include "test_net.h"
#include "test_service.weft.h"

namespace weft::msg::pb {
namespace {

using platform::Loop;
using test::AddReply;
using test::AddRequest;
using test::CalcRpc;
using test::EchoReply;
using test::EchoRequest;
using test::WireClient;
using test::WireFrame;

// One per worker, with that worker's Workspace.
class Calc final : public test::CalcService {
 public:
  using CalcService::CalcService;

  void Add(const AddRequest& rq, Responder<AddReply>& r) noexcept override {
    std::int64_t sum = rq.a() + rq.b();
    for (const std::uint32_t e : rq.extra()) {
      sum += e;
    }
    AddReply& out = r.response();
    out.set_sum(sum);
    if (!rq.tag().empty()) {
      out.set_tag(rq.tag());
    }
    if (rq.has_origin()) {
      *out.mutable_origin() = rq.origin();
    }
    for (std::uint32_t i = 0; i < rq.repeat(); ++i) {
      out.add_sums(sum);
    }
    (void)r.reply();
  }

  // delay_ms == 0: echoes at once. Otherwise defers, keeps a copy of the data (the request
  // is gone when this returns) and answers from a timer on this worker.
  void Echo(const EchoRequest& rq, Responder<EchoReply>& r) noexcept override {
    if (rq.delay_ms() == 0) {
      r.response().set_data(rq.data());
      (void)r.reply();
      return;
    }
    if (pending_) {
      (void)r.fail(ProtocolError::overloaded, "one deferred echo at a time");
      return;
    }
    pending_ = true;
    later_ = r.defer();
    later_reply_.set_data(rq.data());
    loop_ = &r.call().loop();
    timer_.ctx = this;
    timer_.fn = [](platform::TimerNode* n) noexcept {
      auto* self = static_cast<Calc*>(n->ctx);
      self->pending_ = false;
      (void)answer(*self->loop_, self->later_, self->later_reply_, self->scratch_);
    };
    loop_->timers().schedule(timer_, loop_->now_ms() + rq.delay_ms());
  }

 private:
  bool pending_ = false;
  Deferred later_;
  EchoReply later_reply_;
  Loop* loop_ = nullptr;
  platform::TimerNode timer_;
  std::array<std::byte, 4096> scratch_{};
};

class PbServiceTest : public PbServerTest<Calc> {
 protected:
  void start(WorkspaceConfig wc = {}) {
    Options o;
    o.max_frame = 4096;
    o.max_inflight = 16;
    o.max_calls = 64;
    PbServerTest::start(std::move(o), wc);
  }
  // A 1 KiB arena block (a 64 KiB spill area: the refused messages below need ~16 KiB).
  static WorkspaceConfig small_arena() {
    WorkspaceConfig wc;
    wc.arena_block = 1024;
    wc.spill = 64 * 1024;
    return wc;
  }

  template <class Traits>
  static bool send(WireClient& c, std::uint32_t id, const typename Traits::Request& rq) {
    std::vector<std::byte> frame(4096);
    Result<std::size_t> n = encode_request<Traits>(id, rq, frame);
    if (!n) {
      return false;
    }
    frame.resize(*n);
    return c.send_raw(frame);
  }

  template <class Resp>
  static Resp expect_response(const std::optional<WireFrame>& w, std::uint32_t id) {
    Resp out;
    EXPECT_TRUE(w.has_value());
    if (w) {
      EXPECT_EQ(w->f.type, FrameType::response)
          << (w->f.type == FrameType::error ? w->detail() : "");
      EXPECT_EQ(w->f.id, id);
      EXPECT_TRUE(decode(w->f.payload, out));
    }
    return out;
  }
  static AddRequest add(std::int64_t a, std::int64_t b, const std::string& tag = {}) {
    AddRequest r;
    r.set_a(a);
    r.set_b(b);
    r.set_tag(tag);
    return r;
  }
};

TEST_P(PbServiceTest, AddAnswersAtOnce) {
  start();
  WireClient c(addr_);
  ASSERT_TRUE(c.hello().has_value());
  AddRequest rq = add(40, 2, "tag");
  rq.add_extra(100);
  rq.mutable_origin()->set_y(-5);
  ASSERT_TRUE(send<CalcRpc::Add>(c, 1, rq));
  AddReply r = expect_response<AddReply>(c.read(), 1);
  EXPECT_EQ(r.sum(), 142);
  EXPECT_EQ(r.tag(), "tag");
  EXPECT_EQ(r.origin().y(), -5);
  // An empty request is a valid proto3 message (every field at its default).
  ASSERT_TRUE(c.request(2, CalcRpc::Add::id, ""));
  EXPECT_EQ(expect_response<AddReply>(c.read(), 2).sum(), 0);
}

TEST_P(PbServiceTest, DeferredEchoIsAnsweredFromATimerAfterLaterCalls) {
  start();
  WireClient c(addr_);
  ASSERT_TRUE(c.hello().has_value());
  EchoRequest slow;
  slow.set_data(std::string(300, 'd'));  // long bytes: copied before the handler returns
  slow.set_delay_ms(100);
  ASSERT_TRUE(send<CalcRpc::Echo>(c, 10, slow));
  ASSERT_TRUE(send<CalcRpc::Add>(c, 11, add(1, 2)));
  // The Add is answered first, while the Echo waits (its request's arena was reset).
  EXPECT_EQ(expect_response<AddReply>(c.read(), 11).sum(), 3);
  EXPECT_EQ(expect_response<EchoReply>(c.read(), 10).data(), std::string(300, 'd'));
  EchoRequest quick;
  quick.set_data("now");
  ASSERT_TRUE(send<CalcRpc::Echo>(c, 12, quick));
  EXPECT_EQ(expect_response<EchoReply>(c.read(), 12).data(), "now");
}

TEST_P(PbServiceTest, BadPayloadIsRefusedAndTheConnectionStays) {
  start();
  WireClient c(addr_);
  ASSERT_TRUE(c.hello().has_value());
  ASSERT_TRUE(c.request(3, CalcRpc::Add::id, std::string("\x0a\x64\x01", 3)));
  expect_error(c.read(), 3, ProtocolError::bad_payload);
  ASSERT_TRUE(send<CalcRpc::Add>(c, 4, add(2, 2)));
  EXPECT_EQ(expect_response<AddReply>(c.read(), 4).sum(), 4);
  ::shutdown(c.fd(), SHUT_RDWR);  // lets the runtime stop without a drain wait
  EXPECT_EQ(stopped_stats().bad_payloads, 1u);
}

TEST_P(PbServiceTest, RequestOverTheArenaBlockIsTooLarge) {
  start(small_arena());
  {
    WireClient c(addr_);
    ASSERT_TRUE(c.hello().has_value());
    AddRequest big = add(1, 1);
    for (std::uint32_t i = 0; i < 2000; ++i) {
      big.add_extra(1);  // ~2 KB on the wire (within max_frame), 8 KB in memory
    }
    ASSERT_TRUE(send<CalcRpc::Add>(c, 5, big));
    expect_error(c.read(), 5, ProtocolError::too_large);
    ASSERT_TRUE(send<CalcRpc::Add>(c, 6, add(3, 3)));
    EXPECT_EQ(expect_response<AddReply>(c.read(), 6).sum(), 6);
  }
  const WorkspaceStats& st = stopped_stats();
  EXPECT_EQ(st.refused, 1u);
  EXPECT_EQ(st.heap_blocks, 0u);  // the spill area served the refused call
}

TEST_P(PbServiceTest, ResponseOverTheArenaBlockIsTooLarge) {
  start(small_arena());
  {
    WireClient c(addr_);
    ASSERT_TRUE(c.hello().has_value());
    AddRequest rq = add(1, 2);
    rq.set_repeat(20);  // 160 bytes of sums: fits
    ASSERT_TRUE(send<CalcRpc::Add>(c, 1, rq));
    EXPECT_EQ(expect_response<AddReply>(c.read(), 1).sums_size(), 20);
    rq.set_repeat(1000);  // 8 KB of sums on the arena: the reply is refused, not sent
    ASSERT_TRUE(send<CalcRpc::Add>(c, 2, rq));
    expect_error(c.read(), 2, ProtocolError::too_large);
    rq.set_repeat(1);
    ASSERT_TRUE(send<CalcRpc::Add>(c, 3, rq));
    EXPECT_EQ(expect_response<AddReply>(c.read(), 3).sums_size(), 1);
  }
  EXPECT_EQ(stopped_stats().refused, 1u);
}

TEST_P(PbServiceTest, ReusedMessagesStartEmptyOnEveryCall) {
  WorkspaceConfig wc;
  wc.storage = MessageStorage::reused;
  start(wc);
  WireClient c(addr_);
  ASSERT_TRUE(c.hello().has_value());
  AddRequest first = add(1, 1, "first");
  first.mutable_origin()->set_x(9);
  ASSERT_TRUE(send<CalcRpc::Add>(c, 7, first));
  AddReply r1 = expect_response<AddReply>(c.read(), 7);
  EXPECT_EQ(r1.tag(), "first");
  EXPECT_TRUE(r1.has_origin());
  // Nothing of the first call's request or response shows in the second.
  ASSERT_TRUE(send<CalcRpc::Add>(c, 8, add(2, 2)));
  AddReply r2 = expect_response<AddReply>(c.read(), 8);
  EXPECT_EQ(r2.sum(), 4);
  EXPECT_EQ(r2.tag(), "");
  EXPECT_FALSE(r2.has_origin());
}

INSTANTIATE_TEST_SUITE_P(Backends, PbServiceTest,
                         ::testing::Values(platform::BackendKind::uring,
                                           platform::BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::msg::pb
