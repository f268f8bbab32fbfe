// weft::msg::Server over loopback on both backends, driven by a client written from the spec
// (tests/support/msg_wire.h): HELLO, dispatch, out-of-order answers, deadlines, CANCEL,
// idempotency keys, max_inflight, GOAWAY on drain, bad input, split frames, PING, answers
// from another worker.
#include <weft/msg/server.h>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <weft/platform/runtime.h>

#include "msg_server_test.h"
#include "msg_wire.h"
#include "test_net.h"

namespace weft::msg {
namespace {

using platform::Address;
using platform::BackendKind;
using platform::Config;
using platform::Loop;
using platform::Runtime;
using test::WireClient;
using test::WireFrame;

constexpr std::uint32_t kEcho = method_id("weft.test.Server/Echo");
constexpr std::uint32_t kHold = method_id("weft.test.Server/Hold");
constexpr std::uint32_t kRelease = method_id("weft.test.Server/Release");
constexpr std::uint32_t kCount = method_id("weft.test.Server/Count");
constexpr std::uint32_t kSilent = method_id("weft.test.Server/Silent");
constexpr std::uint32_t kElsewhere = method_id("weft.test.Server/Elsewhere");
constexpr std::uint32_t kLater = method_id("weft.test.Server/Later");
constexpr std::uint32_t kNote = method_id("weft.test.Server/Note");

// State the test's methods share. With one worker only that worker touches held/timer; the
// counters are atomics because the test thread reads them.
struct State {
  std::vector<Deferred> held;  // Hold's calls, answered by Release (reserved: no growth)
  std::atomic<int> count_runs{0};
  std::atomic<int> notes{0};
  std::atomic<int> late_results{0};  // answer() results that were call_gone
  platform::TimerNode later_timer;
  Deferred later;
  Loop* later_loop = nullptr;
  State() { held.reserve(64); }
};

void echo(void*, Call& c, std::span<const std::byte> p) noexcept {
  (void)c.reply(p);
}
void hold(void* ctx, Call& c, std::span<const std::byte>) noexcept {
  static_cast<State*>(ctx)->held.push_back(c.defer());
}
// Answers every held call, newest first, with its position in the hold order; then itself.
void release(void* ctx, Call& c, std::span<const std::byte>) noexcept {
  auto* st = static_cast<State*>(ctx);
  for (std::size_t i = st->held.size(); i-- > 0;) {
    const std::string v = "held-" + std::to_string(i);
    if (!answer(c.loop(), st->held[i], test::as_bytes(v))) {
      st->late_results.fetch_add(1);
    }
  }
  st->held.clear();
  (void)c.reply(test::as_bytes("released"));
}
void count(void* ctx, Call& c, std::span<const std::byte>) noexcept {
  const int n = static_cast<State*>(ctx)->count_runs.fetch_add(1) + 1;
  const std::string v = "run-" + std::to_string(n);
  (void)c.reply(test::as_bytes(v));
}
void silent(void*, Call&, std::span<const std::byte>) noexcept {}
void note(void* ctx, Call&, std::span<const std::byte>) noexcept {
  static_cast<State*>(ctx)->notes.fetch_add(1);
}
// Answers 150 ms later from a timer (a deferred answer on the owning worker).
void later(void* ctx, Call& c, std::span<const std::byte>) noexcept {
  auto* st = static_cast<State*>(ctx);
  st->later = c.defer();
  st->later_loop = &c.loop();
  st->later_timer.ctx = st;
  st->later_timer.fn = [](platform::TimerNode* n) noexcept {
    auto* s = static_cast<State*>(n->ctx);
    (void)answer(*s->later_loop, s->later, test::as_bytes("later"));
  };
  c.loop().timers().schedule(st->later_timer, c.loop().now_ms() + 150);
}
// Hands the call to the other worker, which answers it there (through a shared buffer).
void elsewhere(void*, Call& c, std::span<const std::byte>) noexcept {
  static Deferred d;  // one call at a time in the test
  d = c.defer();
  platform::Post p;
  p.ptr = &d;
  p.fn = [](Loop& here, const platform::Post& msg) noexcept {
    const std::string v = "from worker " + std::to_string(here.index());
    (void)answer(here, *static_cast<Deferred*>(msg.ptr), test::as_bytes(v));
  };
  if (!c.loop().post((c.loop().index() + 1) % c.loop().worker_count(), p)) {
    (void)answer_error(c.loop(), d, ProtocolError::internal, "post failed");
  }
}

class ServerTest : public test::MsgServerTest {
 protected:
  Options options() {
    Options o;
    o.max_frame = 4096;
    o.max_inflight = 16;
    o.max_calls = 64;
    o.hello_timeout_ms = 2000;
    o.setup = [this](Registry& r, Loop&) {
      State* st = &state_;
      EXPECT_TRUE(r.add({kEcho, "weft.test.Server/Echo", &echo, st}));
      EXPECT_TRUE(r.add({kHold, "weft.test.Server/Hold", &hold, st}));
      EXPECT_TRUE(r.add({kRelease, "weft.test.Server/Release", &release, st}));
      EXPECT_TRUE(r.add({kCount, "weft.test.Server/Count", &count, st}));
      EXPECT_TRUE(r.add({kSilent, "weft.test.Server/Silent", &silent, st}));
      EXPECT_TRUE(r.add({kElsewhere, "weft.test.Server/Elsewhere", &elsewhere, st}));
      EXPECT_TRUE(r.add({kLater, "weft.test.Server/Later", &later, st}));
      EXPECT_TRUE(r.add({kNote, "weft.test.Server/Note", &note, st}));
    };
    return o;
  }

  State state_;
};

TEST_P(ServerTest, HelloNegotiatesAndEchoAnswers) {
  start(options());
  WireClient c(addr_);
  ASSERT_TRUE(c.ok());
  auto ack = c.hello(1u << 20, 8, /*version=*/7);  // a newer client: version 1 is chosen
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->f.hello.version, 1);
  EXPECT_EQ(ack->f.hello.max_frame, 4096u);
  EXPECT_EQ(ack->f.hello.max_inflight, 16u);
  expect_response(c.call(1, kEcho, "hello"), 1, "hello");
  expect_response(c.call(0xfffffffe, kEcho, ""), 0xfffffffe, "");
  EXPECT_EQ(server_->stats().requests, 2u);
  EXPECT_EQ(server_->stats().responses, 2u);
}

TEST_P(ServerTest, FirstFrameMustBeHello) {
  start(options());
  WireClient c(addr_);
  ASSERT_TRUE(c.request(1, kEcho, "x"));
  expect_error(c.read(), 0, ProtocolError::bad_frame);
  EXPECT_EQ(test::wait_closed(c.fd()), 0);
}

TEST_P(ServerTest, VersionZeroIsUnsupported) {
  start(options());
  WireClient c(addr_);
  msg::Hello h;
  h.version = 0;
  ASSERT_TRUE(c.send(make_hello(h)));
  expect_error(c.read(), 0, ProtocolError::unsupported_version);
  EXPECT_EQ(test::wait_closed(c.fd()), 0);
}

TEST_P(ServerTest, SilentClientIsClosedAfterHelloTimeout) {
  Options o = options();
  o.hello_timeout_ms = 200;
  start(std::move(o));
  WireClient c(addr_);
  ASSERT_TRUE(c.ok());
  EXPECT_LE(test::wait_closed(c.fd(), 5000), 0);
}

TEST_P(ServerTest, UnknownMethodLeavesTheConnectionUsable) {
  start(options());
  auto c = client();
  expect_error(c->call(5, 12345, "x"), 5, ProtocolError::unknown_method);
  expect_response(c->call(6, kEcho, "still here"), 6, "still here");
}

TEST_P(ServerTest, HandlerWithoutAnswerGetsInternal) {
  start(options());
  auto c = client();
  expect_error(c->call(9, kSilent, ""), 9, ProtocolError::internal);
}

TEST_P(ServerTest, DeferredAnswersArriveOutOfOrder) {
  start(options());
  auto c = client();
  for (std::uint32_t id = 10; id < 14; ++id) {
    ASSERT_TRUE(c->request(id, kHold, ""));
  }
  ASSERT_TRUE(c->request(20, kRelease, ""));
  // Release answers the held calls newest first, then itself.
  for (int i = 3; i >= 0; --i) {
    expect_response(c->read(), 10 + static_cast<std::uint32_t>(i), "held-" + std::to_string(i));
  }
  expect_response(c->read(), 20, "released");
  EXPECT_EQ(state_.late_results.load(), 0);
}

TEST_P(ServerTest, AnswerFromATimerLater) {
  start(options());
  auto c = client();
  ASSERT_TRUE(c->request(3, kLater, ""));
  expect_response(c->call(4, kEcho, "first"), 4, "first");  // not blocked by the slow call
  expect_response(c->read(), 3, "later");
}

TEST_P(ServerTest, DeadlineEndsTheCallAndDropsTheLateAnswer) {
  start(options());
  auto c = client();
  ASSERT_TRUE(c->request(7, kHold, "", /*deadline_ms=*/50));
  expect_error(c->read(), 7, ProtocolError::deadline_exceeded);
  // The handler answers after the deadline: nothing reaches the wire.
  expect_response(c->call(8, kRelease, ""), 8, "released");
  EXPECT_EQ(state_.late_results.load(), 1);
  EXPECT_EQ(server_->stats().deadline_exceeded, 1u);
  EXPECT_EQ(server_->stats().late_answers, 1u);
}

TEST_P(ServerTest, CancelAnswersCancelled) {
  start(options());
  auto c = client();
  ASSERT_TRUE(c->request(30, kHold, ""));
  ASSERT_TRUE(c->send(make_cancel(30)));
  expect_error(c->read(), 30, ProtocolError::cancelled);
  ASSERT_TRUE(c->send(make_cancel(31)));  // unknown id: ignored
  expect_response(c->call(32, kRelease, ""), 32, "released");
  EXPECT_EQ(state_.late_results.load(), 1);
}

TEST_P(ServerTest, IdempotentRetryRunsTheHandlerOnce) {
  start(options());
  auto c = client();
  const std::uint64_t key = 0x5eed'1234'abcd'0001ull;
  ASSERT_TRUE(c->request(1, kCount, "", 0, true, key));
  expect_response(c->read(), 1, "run-1");
  // The retry (new id, same key) gets the stored answer byte for byte.
  ASSERT_TRUE(c->request(2, kCount, "", 0, true, key));
  expect_response(c->read(), 2, "run-1");
  // ... also over a new connection (same worker: one worker here).
  auto c2 = client();
  ASSERT_TRUE(c2->request(1, kCount, "", 0, true, key));
  expect_response(c2->read(), 1, "run-1");
  // Another key runs again; no key runs every time.
  ASSERT_TRUE(c->request(3, kCount, "", 0, true, key + 1));
  expect_response(c->read(), 3, "run-2");
  expect_response(c->call(4, kCount, ""), 4, "run-3");
  EXPECT_EQ(state_.count_runs.load(), 3);
  EXPECT_EQ(server_->stats().idempotent_replays, 2u);
}

TEST_P(ServerTest, IdempotentRetryWhileRunningIsOverloaded) {
  start(options());
  auto c = client();
  ASSERT_TRUE(c->request(1, kHold, "", 0, true, 77));
  ASSERT_TRUE(c->request(2, kHold, "", 0, true, 77));
  expect_error(c->read(), 2, ProtocolError::overloaded);
  ASSERT_TRUE(c->request(3, kRelease, ""));
  expect_response(c->read(), 1, "held-0");
  expect_response(c->read(), 3, "released");
  // Now done: the retry gets the answer without running Hold again.
  ASSERT_TRUE(c->request(4, kHold, "", 0, true, 77));
  expect_response(c->read(), 4, "held-0");
}

TEST_P(ServerTest, IdempotentAnswerSurvivesTheDeadline) {
  start(options());
  auto c = client();
  ASSERT_TRUE(c->request(1, kHold, "", 50, true, 99));
  expect_error(c->read(), 1, ProtocolError::deadline_exceeded);
  ASSERT_TRUE(c->request(2, kHold, "", 0, true, 99));  // the first attempt still runs
  expect_error(c->read(), 2, ProtocolError::overloaded);
  expect_response(c->call(3, kRelease, ""), 3, "released");  // the handler finishes late
  ASSERT_TRUE(c->request(4, kHold, "", 0, true, 99));
  expect_response(c->read(), 4, "held-0");  // its answer was kept for the retry
}

TEST_P(ServerTest, MaxInflightIsEnforced) {
  Options o = options();
  o.max_inflight = 2;
  start(std::move(o));
  auto c = client();
  ASSERT_TRUE(c->request(1, kHold, ""));
  ASSERT_TRUE(c->request(2, kHold, ""));
  ASSERT_TRUE(c->request(3, kHold, ""));
  expect_error(c->read(), 3, ProtocolError::overloaded);
  ASSERT_TRUE(c->send(make_cancel(1)));
  expect_error(c->read(), 1, ProtocolError::cancelled);
  ASSERT_TRUE(c->request(4, kRelease, ""));
  expect_response(c->read(), 2, "held-1");  // Release answers the held calls first
  expect_response(c->read(), 4, "released");
  EXPECT_EQ(state_.late_results.load(), 1);  // call 1 was cancelled: its answer is dropped
}

TEST_P(ServerTest, MessageIsOneWay) {
  start(options());
  auto c = client();
  ASSERT_TRUE(c->send(make_message(kNote, test::as_bytes("n"))));
  ASSERT_TRUE(c->send(make_message(4242, test::as_bytes("n"))));
  auto e = c->read();
  expect_error(e, 0, ProtocolError::unknown_method);  // id 0, not fatal (§6.9)
  expect_response(c->call(2, kEcho, "x"), 2, "x");
  EXPECT_EQ(state_.notes.load(), 1);
}

TEST_P(ServerTest, PingIsAnsweredAndAFloodIsClosed) {
  start(options());
  auto c = client();
  const std::byte opaque[8] = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4},
                               std::byte{5}, std::byte{6}, std::byte{7}, std::byte{8}};
  ASSERT_TRUE(c->send(make_ping(77, opaque)));
  auto pong = c->read();
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(pong->f.type, FrameType::pong);
  EXPECT_EQ(pong->f.id, 77u);
  EXPECT_EQ(std::memcmp(pong->f.payload.data(), opaque, 8), 0);
  // A flood: far more than the per-second limit in one burst.
  std::vector<std::byte> burst;
  const auto one = WireClient::encode(make_ping(1, opaque));
  for (int i = 0; i < 1500; ++i) {
    burst.insert(burst.end(), one.begin(), one.end());
  }
  ASSERT_TRUE(c->send_raw(burst));
  bool goaway = false;
  for (int i = 0; i < 1600; ++i) {
    auto f = c->read();
    if (!f) {
      break;
    }
    if (f->f.type == FrameType::goaway) {
      EXPECT_EQ(f->f.code, static_cast<std::uint16_t>(ProtocolError::overloaded));
      goaway = true;
      break;
    }
  }
  EXPECT_TRUE(goaway);
  EXPECT_LE(test::wait_closed(c->fd()), 0);
  // Others are unaffected.
  auto other = client();
  expect_response(other->call(1, kEcho, "ok"), 1, "ok");
}

TEST_P(ServerTest, BadFramesCloseOnlyTheirConnection) {
  start(options());
  auto good = client();
  struct Case {
    const char* name;
    std::vector<std::byte> bytes;
  };
  auto raw = [](std::initializer_list<int> v) {
    std::vector<std::byte> b;
    for (int x : v) {
      b.push_back(static_cast<std::byte>(x));
    }
    return b;
  };
  const std::vector<Case> cases = {
      {"length below 8", raw({0, 0, 0, 4, 1, 0, 0, 0})},
      {"length over max_frame", raw({0, 0, 0x40, 0, 3, 0, 0, 0, 0, 0, 0, 1})},
      {"unknown type", raw({0, 0, 0, 8, 0x7f, 0, 0, 0, 0, 0, 0, 0})},
      {"reserved flag", raw({0, 0, 0, 16, 3, 0x80, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0})},
      {"channel", raw({0, 0, 0, 12, 0x0b, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3, 4})},
      {"truncated body", raw({0, 0, 0, 10, 5, 0, 0, 0, 0, 0, 0, 1, 0, 3})},
      {"second hello", WireClient::encode(make_hello(msg::Hello{}))},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    auto c = client();
    ASSERT_TRUE(c->send_raw(k.bytes));
    expect_error(c->read(), 0, ProtocolError::bad_frame);
    EXPECT_EQ(test::wait_closed(c->fd()), 0);
  }
  expect_response(good->call(1, kEcho, "unaffected"), 1, "unaffected");
  EXPECT_EQ(server_->stats().protocol_errors, cases.size());
}

TEST_P(ServerTest, FramesSplitAtEveryByteAreAssembled) {
  start(options());
  auto c = client();
  std::vector<std::byte> bytes;
  for (std::uint32_t id = 1; id <= 3; ++id) {
    const std::string payload(100 * id, static_cast<char>('a' + id));
    auto f = WireClient::encode(make_request(id, kEcho, 0, test::as_bytes(payload)));
    bytes.insert(bytes.end(), f.begin(), f.end());
  }
  const int one = 1;
  ::setsockopt(c->fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  for (std::size_t i = 0; i < bytes.size(); i += 7) {  // 7-byte pieces, each its own send
    const std::size_t n = std::min<std::size_t>(7, bytes.size() - i);
    ASSERT_TRUE(test::write_all(c->fd(), bytes.data() + i, n));
    if (i % 70 == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // let receives split
    }
  }
  for (std::uint32_t id = 1; id <= 3; ++id) {
    expect_response(c->read(), id, std::string(100 * id, static_cast<char>('a' + id)));
  }
}

TEST_P(ServerTest, LargeResponseIsRefusedToASmallClient) {
  start(options());
  WireClient c(addr_);
  ASSERT_TRUE(c.hello(/*max_frame=*/64).has_value());
  expect_response(c.call(1, kEcho, std::string(56, 'x')), 1, std::string(56, 'x'));
  expect_error(c.call(2, kEcho, std::string(57, 'x')), 2, ProtocolError::too_large);
}

TEST_P(ServerTest, DrainSendsGoawayAndFinishesInFlightCalls) {
  start(options());
  auto c = client();
  ASSERT_TRUE(c->request(5, kLater, ""));  // answered 150 ms later
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  rt_->stop(3000);
  auto g = c->read();
  ASSERT_TRUE(g.has_value());
  ASSERT_EQ(g->f.type, FrameType::goaway);
  EXPECT_EQ(g->f.last_id, 5u);
  EXPECT_EQ(g->f.code, static_cast<std::uint16_t>(ProtocolError::shutting_down));
  ASSERT_TRUE(c->request(6, kEcho, "too late"));
  expect_error(c->read(), 6, ProtocolError::shutting_down);
  expect_response(c->read(), 5, "later");
  EXPECT_EQ(test::wait_closed(c->fd()), 0);
}

TEST_P(ServerTest, AnotherWorkerAnswersThroughASharedBuffer) {
  start(options(), /*workers=*/2);
  auto c = client();
  auto r = c->call(1, kElsewhere, "");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->f.type, FrameType::response);
  EXPECT_EQ(r->f.id, 1u);
  EXPECT_EQ(r->payload().rfind("from worker ", 0), 0u) << r->payload();
  // Served by the worker the connection is not on.
  auto again = client();
  auto r2 = again->call(1, kElsewhere, "");
  ASSERT_TRUE(r2.has_value());
  EXPECT_NE(r->payload(), r2->payload());  // round robin: the two connections on two workers
}

INSTANTIATE_TEST_SUITE_P(Backends, ServerTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

TEST(RegistryTest, RefusesZeroDuplicatesAndOverflow) {
  Registry r;
  EXPECT_FALSE(r.add({0, "zero", &echo, nullptr}));
  EXPECT_FALSE(r.add({1, "no fn", nullptr, nullptr}));
  ASSERT_TRUE(r.add({kEcho, "a", &echo, nullptr}));
  auto dup = r.add({kEcho, "b", &echo, nullptr});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error(), make_error_code(msg_errc::duplicate_method));
  for (std::uint32_t i = 1; r.size() < Registry::kCapacity; ++i) {
    ASSERT_TRUE(r.add({0x10000u + i, "m", &echo, nullptr}));
  }
  auto full = r.add({kHold, "c", &echo, nullptr});
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error(), make_error_code(msg_errc::registry_full));
  EXPECT_NE(r.find(kEcho), nullptr);
  EXPECT_EQ(r.find(kHold), nullptr);
  EXPECT_EQ(r.find(0), nullptr);
}

TEST(MethodIdTest, IsFnv1aOfTheFullName) {
  // FNV-1a 32 of "" is the offset basis; of "a" a published value.
  EXPECT_EQ(method_id(""), 2166136261u);
  EXPECT_EQ(method_id("a"), 0xe40c292cu);
  EXPECT_EQ(method_id("weft.test.Server/Echo"), 0x727f5f20u);  // protocol.md 6.8's example
  static_assert(method_id("weft.test.Server/Echo") != 0);
}

}  // namespace
}  // namespace weft::msg
