// weft::msg::Server's access rules (Options::access) and Call::peer() on both backends, over
// a Unix-domain socket (abstract name: no file to clean up) and over TCP: a rule that names
// only another uid refuses its method with permission_denied while an unnamed method works;
// a rule naming our uid or gid allows; TCP is refused by a matching rule unless allow_tcp;
// a refused MESSAGE is dropped and counted; the handler sees our pid and uid.
#include <weft/msg/server.h>

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <string>

#include "msg_server_test.h"
#include "msg_wire.h"
#include "test_net.h"

namespace weft::msg {
namespace {

using platform::Loop;
using test::WireClient;

constexpr const char* kSetName = "weft.test.Settings/Set";
constexpr const char* kGetName = "weft.test.Settings/Get";
constexpr const char* kWhoName = "weft.test.Settings/Who";
constexpr const char* kNoteName = "weft.test.Settings/Note";
constexpr std::uint32_t kSet = method_id(kSetName);
constexpr std::uint32_t kGet = method_id(kGetName);
constexpr std::uint32_t kWho = method_id(kWhoName);
constexpr std::uint32_t kNote = method_id(kNoteName);

// A uid and gid that are not ours (nobody runs tests as 4000000000).
constexpr std::uint32_t kOtherId = 4000000000u;

std::atomic<int> g_notes{0};

void reply_ok(void*, Call& c, std::span<const std::byte>) noexcept {
  (void)c.reply(test::as_bytes("ok"));
}
// Answers "valid pid uid gid" as the handler sees the caller.
void who(void*, Call& c, std::span<const std::byte>) noexcept {
  const platform::PeerCred& p = c.peer();
  const std::string v = std::to_string(p.valid ? 1 : 0) + " " + std::to_string(p.pid) + " " +
                        std::to_string(p.uid) + " " + std::to_string(p.gid);
  (void)c.reply(test::as_bytes(v));
}
void note(void*, Call&, std::span<const std::byte>) noexcept {
  g_notes.fetch_add(1);
}

class ServerAccessTest : public test::MsgServerTest {
 protected:
  static Options options(std::vector<AccessRule> rules) {
    Options o;
    o.max_frame = 4096;
    o.max_inflight = 16;
    o.max_calls = 64;
    o.hello_timeout_ms = 2000;
    o.access = std::move(rules);
    o.setup = [](Registry& r, Loop&) {
      EXPECT_TRUE(r.add({kSet, kSetName, &reply_ok, nullptr}));
      EXPECT_TRUE(r.add({kGet, kGetName, &reply_ok, nullptr}));
      EXPECT_TRUE(r.add({kWho, kWhoName, &who, nullptr}));
      EXPECT_TRUE(r.add({kNote, kNoteName, &note, nullptr}));
    };
    return o;
  }
  static std::string abstract_name() {
    std::random_device rd;
    return "unix:@weft-msg-access-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
  }
  void start_unix(std::vector<AccessRule> rules) {
    start_with(config(), options(std::move(rules)), abstract_name());
  }
  void start_tcp(std::vector<AccessRule> rules) { start_with(config(), options(std::move(rules))); }
  // Server stats once the worker counted what it read (the test reads after an answer).
  ServerStats stopped_stats() {
    stop();
    return server_->stats();
  }
  static std::uint32_t uid() { return static_cast<std::uint32_t>(::geteuid()); }
  static std::uint32_t gid() { return static_cast<std::uint32_t>(::getegid()); }
};

TEST_P(ServerAccessTest, RuleForAnotherUidRefusesOnlyItsMethod) {
  start_unix({{kSetName, {kOtherId}, {}}});
  auto c = client();
  expect_error(c->call(1, kSet, "x"), 1, ProtocolError::permission_denied);
  expect_response(c->call(2, kGet, ""), 2, "ok");  // no rule names Get
  // Not connection-fatal: the same connection goes on.
  expect_error(c->call(3, kSet, "y"), 3, ProtocolError::permission_denied);
  expect_response(c->call(4, kGet, ""), 4, "ok");
  c.reset();  // closed first: the drain does not wait for it
  const ServerStats s = stopped_stats();
  EXPECT_EQ(s.denied, 2u);
  EXPECT_EQ(s.requests, 2u);  // only the allowed calls reached a handler
}

TEST_P(ServerAccessTest, RuleNamingOurUidAllows) {
  start_unix({{kSetName, {kOtherId, uid()}, {}}});
  auto c = client();
  expect_response(c->call(1, kSet, "x"), 1, "ok");
  c.reset();
  EXPECT_EQ(stopped_stats().denied, 0u);
}

TEST_P(ServerAccessTest, GidsAllowLikewise) {
  start_unix({{kSetName, {}, {kOtherId, gid()}}, {kGetName, {}, {kOtherId}}});
  auto c = client();
  expect_response(c->call(1, kSet, "x"), 1, "ok");
  expect_error(c->call(2, kGet, ""), 2, ProtocolError::permission_denied);
}

TEST_P(ServerAccessTest, FirstMatchingRuleDecidesAndStarCoversTheRest) {
  // Set: our uid allowed by its own rule, before the "*" that refuses everyone else.
  start_unix({{kSetName, {uid()}, {}}, {"*", {kOtherId}, {}}});
  auto c = client();
  expect_response(c->call(1, kSet, "x"), 1, "ok");
  expect_error(c->call(2, kGet, ""), 2, ProtocolError::permission_denied);
  // The "*" rule is checked before the method lookup: an unknown method is refused too.
  expect_error(c->call(3, method_id("weft.test.Nope/Nothing"), ""), 3,
               ProtocolError::permission_denied);
}

TEST_P(ServerAccessTest, EmptyRuleAllowsNobody) {
  start_unix({{kSetName, {}, {}}});
  auto c = client();
  expect_error(c->call(1, kSet, "x"), 1, ProtocolError::permission_denied);
}

TEST_P(ServerAccessTest, TcpIsRefusedByAMatchingRuleUnlessAllowTcp) {
  start_tcp({{kSetName, {uid()}, {gid()}}, {kGetName, {uid()}, {}, /*allow_tcp=*/true}});
  auto c = client();
  // Our uid is listed, but TCP carries no credentials.
  expect_error(c->call(1, kSet, "x"), 1, ProtocolError::permission_denied);
  expect_response(c->call(2, kGet, ""), 2, "ok");                          // allow_tcp
  expect_response(c->call(3, kWho, ""), 3, "0 -1 4294967295 4294967295");  // no rule; no creds
}

TEST_P(ServerAccessTest, RefusedMessageIsDroppedAndCounted) {
  g_notes = 0;
  start_unix({{kNoteName, {kOtherId}, {}}});
  auto c = client();
  ASSERT_TRUE(c->send(make_message(kNote, test::as_bytes("n"))));
  // Nothing comes back for the MESSAGE: the next frame is the answer to this request.
  expect_response(c->call(1, kGet, ""), 1, "ok");
  c.reset();  // closed first: the drain does not wait for it
  const ServerStats s = stopped_stats();
  EXPECT_EQ(s.denied, 1u);
  EXPECT_EQ(s.messages, 0u);
  EXPECT_EQ(g_notes.load(), 0);
}

TEST_P(ServerAccessTest, CallPeerShowsOurCredentials) {
  start_unix({});
  auto c = client();
  const std::string want =
      "1 " + std::to_string(::getpid()) + " " + std::to_string(uid()) + " " + std::to_string(gid());
  expect_response(c->call(1, kWho, ""), 1, want);
}

INSTANTIATE_TEST_SUITE_P(Backends, ServerAccessTest,
                         ::testing::Values(platform::BackendKind::uring,
                                           platform::BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::msg
