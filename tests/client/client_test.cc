// weft::client::Client against the scripted fake server (fake_server.h), on both backends:
// HELLO and limits, out-of-order answers, deadlines and CANCEL, ERROR codes, max_inflight,
// idempotent retries with the same key, GOAWAY, lost connections, reconnection with
// resubscription, PING. The client's loop and the server's run on the test thread in turn.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <weft/client/client.h>
#include <weft/msg/error.h>
#include <weft/platform/error.h>

#include "fake_server.h"
#include "test_net.h"

namespace weft::client {
namespace {

using namespace std::chrono_literals;
using msg::FrameType;
using msg::ProtocolError;
using platform::BackendKind;
using platform::Conn;
using test::bytes_of;
using test::FakeScript;
using test::Outcome;
using test::record;
using test::Seen;
using test::text_of;

class ClientTest : public test::LoopPairTest {
 protected:
  void TearDown() override {
    if (client_) {
      client_->close();
      spin([&] { return client_->idle(); }, 5s);
      client_.reset();
    }
  }

  void make_client(Options o = {}) {
    if (o.seed == 0) {
      o.seed = 12345;
    }
    auto c = Client::create(*loop_, o);
    ASSERT_TRUE(c.ok()) << c.error().message();
    client_ = std::move(c.value());
    ASSERT_TRUE(client_->connect(server_->addr()).ok());
  }
  void connect(Options o = {}) {
    make_client(o);
    ASSERT_TRUE(spin([&] { return client_->ready(); }));
  }

  std::vector<Seen> seen(FrameType t) const {
    std::vector<Seen> out;
    for (const Seen& s : script_.seen) {
      if (s.type == t) {
        out.push_back(s);
      }
    }
    return out;
  }

  Outcome* call(std::uint32_t method, std::string_view payload, CallOptions o = {}) {
    return calls_.start(*client_, method, payload, o);
  }

  std::unique_ptr<Client> client_;
  test::Calls calls_;
};

TEST_P(ClientTest, HelloAnnouncesLimitsAndOutOfOrderAnswersReachTheirCalls) {
  std::vector<std::pair<Conn*, Seen>> held;
  script_.on_frame = [&](Conn& c, const Seen& s) {
    if (s.type != FrameType::request) {
      return;
    }
    held.emplace_back(&c, s);
    if (held.size() == 3) {  // answer in reverse order
      for (auto it = held.rbegin(); it != held.rend(); ++it) {
        test::send(*it->first,
                   msg::make_response(it->second.id, bytes_of("re:" + it->second.payload)));
      }
    }
  };
  Options o;
  o.max_frame = 4096;
  connect(o);
  auto hello = seen(FrameType::hello);
  ASSERT_EQ(hello.size(), 1u);
  EXPECT_EQ(hello[0].hello.version, msg::kProtocolVersion);
  EXPECT_EQ(hello[0].hello.max_frame, 4096u);
  Outcome* a = call(7, "a");
  Outcome* b = call(8, "bb");
  Outcome* c = call(9, "ccc");
  ASSERT_TRUE(spin([&] { return a->done() && b->done() && c->done(); }));
  EXPECT_EQ(a->payload, "re:a");
  EXPECT_EQ(b->payload, "re:bb");
  EXPECT_EQ(c->payload, "re:ccc");
  auto reqs = seen(FrameType::request);
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].method, 7u);
  EXPECT_LT(reqs[0].id, reqs[1].id);  // strictly increasing on a connection
  EXPECT_LT(reqs[1].id, reqs[2].id);
  EXPECT_EQ(reqs[0].flags, 0);
  EXPECT_EQ(reqs[0].deadline_ms, 0u);
  EXPECT_EQ(client_->pending(), 0u);
  EXPECT_EQ(client_->stats().responses, 3u);
}

TEST_P(ClientTest, DeadlineFailsTheCallLocallyAndSendsCancel) {
  std::optional<std::pair<Conn*, std::uint32_t>> req;
  script_.on_frame = [&](Conn& c, const Seen& s) {
    if (s.type == FrameType::request) {
      req.emplace(&c, s.id);  // never answered
    } else if (s.type == FrameType::cancel) {
      // The late answers, both the CANCEL's ERROR and a RESPONSE, are ignored.
      test::send(c, msg::make_error(s.id, ProtocolError::cancelled));
      test::send(c, msg::make_response(s.id, bytes_of("late")));
    }
  };
  connect();
  CallOptions co;
  co.deadline_ms = 80;
  const std::uint64_t start = loop_->now_ms();
  Outcome* o = call(1, "x", co);
  ASSERT_TRUE(spin([&] { return o->done(); }));
  EXPECT_EQ(o->error, platform::platform_errc::timed_out);
  EXPECT_GE(loop_->now_ms(), start + 80);
  ASSERT_TRUE(req.has_value());
  auto reqs = seen(FrameType::request);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_GT(reqs[0].deadline_ms, 0u);  // what was left when it was sent
  EXPECT_LE(reqs[0].deadline_ms, 80u);
  ASSERT_TRUE(spin([&] { return !seen(FrameType::cancel).empty(); }));
  EXPECT_EQ(seen(FrameType::cancel)[0].id, req->second);
  ASSERT_TRUE(spin([&] { return client_->pending() == 0; }));  // the CANCEL's answer frees it
  // Still exactly one callback, and the connection still serves.
  script_.on_frame = [&](Conn& c, const Seen& s) {
    if (s.type == FrameType::request) {
      test::send(c, msg::make_response(s.id, bytes_of("ok")));
    }
  };
  Outcome* next = call(2, "y");
  ASSERT_TRUE(spin([&] { return next->done(); }));
  EXPECT_EQ(next->payload, "ok");
  EXPECT_EQ(o->calls, 1);
  EXPECT_EQ(client_->stats().timeouts, 1u);
}

TEST_P(ClientTest, ErrorFramesReportProtocolCodes) {
  script_.on_frame = [&](Conn& c, const Seen& s) {
    if (s.type == FrameType::request) {
      msg::Frame f = msg::make_error(s.id, ProtocolError::unknown_method);
      if (s.method == 2) {
        f.code = 999;  // unknown codes read as internal (§6.5)
      }
      test::send(c, f);
    }
  };
  connect();
  Outcome* a = call(1, "");
  Outcome* b = call(2, "");
  ASSERT_TRUE(spin([&] { return a->done() && b->done(); }));
  EXPECT_EQ(a->error, ProtocolError::unknown_method);
  EXPECT_EQ(a->error.category().name(), std::string("weft.msg.protocol"));
  EXPECT_EQ(b->error, ProtocolError::internal);
  EXPECT_TRUE(client_->ready());  // not connection-fatal
}

TEST_P(ClientTest, NeverMoreThanTheServersMaxInflightUnanswered) {
  script_.ack.max_inflight = 2;
  std::vector<std::pair<Conn*, std::uint32_t>> open;
  std::size_t most = 0;
  script_.on_frame = [&](Conn& c, const Seen& s) {
    if (s.type == FrameType::request) {
      open.emplace_back(&c, s.id);
      most = std::max(most, open.size());
    }
  };
  connect();
  std::vector<Outcome*> all;
  for (int i = 0; i < 6; ++i) {
    all.push_back(call(1, std::to_string(i)));
  }
  for (int answered = 0; answered < 6; ++answered) {
    ASSERT_TRUE(spin([&] { return !open.empty(); }));
    spin([&] { return false; }, 20ms);  // room for a (wrong) third request to show up
    ASSERT_LE(open.size(), 2u);
    auto [c, id] = open.front();
    open.erase(open.begin());
    test::send(*c, msg::make_response(id, {}));
  }
  ASSERT_TRUE(spin(
      [&] { return std::all_of(all.begin(), all.end(), [](Outcome* o) { return o->done(); }); }));
  EXPECT_EQ(most, 2u);
  auto reqs = seen(FrameType::request);
  ASSERT_EQ(reqs.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(reqs[static_cast<std::size_t>(i)].payload, std::to_string(i));  // in call order
  }
}

TEST_P(ClientTest, IdempotentCallIsRetriedWithTheSameKeyOthersAreNot) {
  int attempts = 0;
  script_.on_frame = [&](Conn& c, const Seen& s) {
    if (s.type != FrameType::request) {
      return;
    }
    ++attempts;
    if (s.payload == "plain" || attempts == 1) {
      test::send(c, msg::make_error(s.id, ProtocolError::overloaded));
    } else {
      test::send(c, msg::make_response(s.id, bytes_of("done")));
    }
  };
  connect();
  CallOptions co;
  co.idempotent = true;
  co.retries = 3;
  co.deadline_ms = 5000;
  Outcome* o = call(5, "idem", co);
  ASSERT_TRUE(spin([&] { return o->done(); }));
  EXPECT_EQ(o->payload, "done");
  auto reqs = seen(FrameType::request);
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].flags, msg::kFlagIdempotent);
  EXPECT_EQ(reqs[0].key, reqs[1].key);
  EXPECT_NE(reqs[0].key, 0u);
  EXPECT_NE(reqs[0].id, reqs[1].id);
  EXPECT_EQ(client_->stats().retries, 1u);

  co.idempotent = false;  // retries are ignored for a call that is not idempotent
  Outcome* p = call(5, "plain", co);
  ASSERT_TRUE(spin([&] { return p->done(); }));
  EXPECT_EQ(p->error, ProtocolError::overloaded);
  EXPECT_EQ(seen(FrameType::request).size(), 3u);
  // A second logical call gets a new key.
  co.idempotent = true;
  attempts = 1;
  Outcome* q = call(5, "idem2", co);
  ASSERT_TRUE(spin([&] { return q->done(); }));
  EXPECT_NE(seen(FrameType::request).back().key, reqs[0].key);
}

TEST_P(ClientTest, RetriesStopAtTheDeadline) {
  script_.on_frame = [&](Conn& c, const Seen& s) {
    if (s.type == FrameType::request) {
      test::send(c, msg::make_error(s.id, ProtocolError::overloaded));
    }
  };
  Options opts;
  opts.retry_min_ms = 20;
  opts.retry_max_ms = 40;
  connect(opts);
  CallOptions co;
  co.idempotent = true;
  co.retries = 1000;
  co.deadline_ms = 150;
  Outcome* o = call(1, "x", co);
  ASSERT_TRUE(spin([&] { return o->done(); }));
  // Either the last attempt's answer (no time left to wait again) or the deadline itself.
  EXPECT_TRUE(o->error == ProtocolError::overloaded ||
              o->error == platform::platform_errc::timed_out)
      << o->error.message();
  const auto n = seen(FrameType::request).size();
  EXPECT_GE(n, 2u);
  EXPECT_LE(n, 16u);  // 150 ms / at least 10 ms per wait
}

TEST_P(ClientTest, GoawayDrainsCallsUpToLastIdAndMovesNewCallsToANewConnection) {
  std::vector<std::pair<Conn*, Seen>> held;
  script_.on_frame = [&](Conn& c, const Seen& s) {
    if (s.type != FrameType::request) {
      return;
    }
    if (s.conn == 1) {
      held.emplace_back(&c, s);
      if (held.size() == 3) {
        // Drain: the first two will be answered, the third was "not run".
        test::send(c, msg::make_goaway(held[1].second.id, ProtocolError::shutting_down));
        test::send(c, msg::make_response(held[0].second.id, bytes_of("one")));
      }
    } else {
      test::send(c, msg::make_response(s.id, bytes_of("new")));
    }
  };
  connect();
  Outcome* a = call(1, "a");
  Outcome* b = call(1, "b");
  Outcome* c = call(1, "c");
  ASSERT_TRUE(spin([&] { return a->done() && c->done(); }));
  EXPECT_EQ(a->payload, "one");
  EXPECT_EQ(c->error, ProtocolError::shutting_down);
  EXPECT_FALSE(b->done());    // id <= last_id: still owed on the draining connection
  Outcome* d = call(1, "d");  // goes to the new connection
  ASSERT_TRUE(spin([&] { return d->done(); }));
  EXPECT_EQ(d->payload, "new");
  EXPECT_EQ(seen(FrameType::hello).size(), 2u);
  test::send(*held[1].first, msg::make_response(held[1].second.id, bytes_of("two")));
  ASSERT_TRUE(spin([&] { return b->done(); }));
  EXPECT_EQ(b->payload, "two");
  // Nothing is owed on the first connection any more: the client closes it.
  ASSERT_TRUE(spin([&] { return script_.closed == 1; }));
  EXPECT_TRUE(client_->ready());
}

TEST_P(ClientTest, LostConnectionFailsPlainCallsAndRetriesIdempotentOnesAfterReconnect) {
  script_.on_frame = [&](Conn& c, const Seen& s) {
    if (s.type != FrameType::request) {
      return;
    }
    if (s.conn == 1) {
      if (seen(FrameType::request).size() == 2) {
        c.abort(std::make_error_code(std::errc::connection_reset));
      }
    } else {
      test::send(c, msg::make_response(s.id, bytes_of("again")));
    }
  };
  connect();
  Outcome* plain = call(1, "plain");
  CallOptions co;
  co.idempotent = true;
  co.retries = 2;
  co.deadline_ms = 5000;
  Outcome* idem = call(1, "idem", co);
  ASSERT_TRUE(spin([&] { return plain->done() && idem->done(); }));
  EXPECT_EQ(plain->error, client_errc::connection_lost);
  EXPECT_EQ(idem->payload, "again");
  auto reqs = seen(FrameType::request);
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[2].conn, 2);
  EXPECT_EQ(reqs[2].key, reqs[1].key);
  EXPECT_EQ(client_->stats().disconnects, 1u);
  EXPECT_EQ(client_->stats().connects, 2u);
}

void on_event(void* ctx, std::span<const std::byte> topic,
              std::span<const std::byte> payload) noexcept {
  static_cast<std::vector<std::string>*>(ctx)->push_back(text_of(topic) + "=" + text_of(payload));
}

TEST_P(ClientTest, ServerRestartedUnderASubscribedClientGetsItsSubscriptionsBack) {
  script_.on_frame = [&](Conn& c, const Seen& s) {
    if (s.type == FrameType::subscribe) {
      test::send(c, msg::make_event(bytes_of(s.topic), bytes_of("hello" + std::to_string(s.conn))));
    }
  };
  Options o;
  o.reconnect_min_ms = 10;
  o.reconnect_max_ms = 50;
  connect(o);
  std::vector<std::string> events;
  ASSERT_TRUE(client_->subscribe(bytes_of("temp"), &on_event, &events).ok());
  ASSERT_TRUE(client_->subscribe(bytes_of("fan"), &on_event, &events).ok());
  ASSERT_TRUE(spin([&] { return events.size() == 2; }));
  EXPECT_EQ(events[0], "temp=hello1");
  const std::uint16_t port = server_->addr().port();
  server_->stop();
  ASSERT_TRUE(spin([&] { return !client_->ready(); }));
  // Nothing listens for a while: the client keeps trying with backoff.
  spin([&] { return false; }, 100ms);
  ASSERT_TRUE(server_->start(port));
  ASSERT_TRUE(spin([&] { return events.size() == 4; }));
  EXPECT_EQ(events[2], "temp=hello" + std::to_string(script_.accepted));
  EXPECT_EQ(events[3], "fan=hello" + std::to_string(script_.accepted));
  // Unsubscribed topics are not sent again.
  ASSERT_TRUE(client_->unsubscribe(bytes_of("fan")).ok());
  ASSERT_TRUE(spin([&] { return !seen(FrameType::unsubscribe).empty(); }));
  EXPECT_EQ(seen(FrameType::unsubscribe)[0].topic, "fan");
  EXPECT_FALSE(client_->unsubscribe(bytes_of("fan")).ok());
}

struct PingOutcome {
  int calls = 0;
  Result<std::uint64_t> r = fail(platform::platform_errc::closed);
};
void on_ping(void* ctx, Result<std::uint64_t> r) noexcept {
  auto* p = static_cast<PingOutcome*>(ctx);
  ++p->calls;
  p->r = std::move(r);
}

TEST_P(ClientTest, PingReportsRoundTripOrTimesOut) {
  connect();
  PingOutcome p;
  ASSERT_TRUE(client_->ping(1000, &on_ping, &p).ok());
  EXPECT_EQ(client_->ping(1000, &on_ping, &p).error(), client_errc::overloaded);  // one at a time
  ASSERT_TRUE(spin([&] { return p.calls == 1; }));
  ASSERT_TRUE(p.r.ok());
  EXPECT_LT(p.r.value(), 1000u);
  script_.answer_ping = false;
  PingOutcome q;
  ASSERT_TRUE(client_->ping(50, &on_ping, &q).ok());
  ASSERT_TRUE(spin([&] { return q.calls == 1; }));
  EXPECT_EQ(q.r.error(), platform::platform_errc::timed_out);
}

TEST_P(ClientTest, LimitsAreReportedAtTheCall) {
  script_.ack.max_frame = 512;
  Options o;
  o.max_calls = 2;
  connect(o);
  std::string big(600, 'x');
  EXPECT_EQ(client_->call(1, bytes_of(big), {}, &record, nullptr).error(),
            msg::msg_errc::too_large);
  EXPECT_EQ(client_->message(1, bytes_of(big)).error(), msg::msg_errc::too_large);
  Outcome* a = call(1, "");
  Outcome* b = call(1, "");
  Outcome spare;
  EXPECT_EQ(client_->call(1, {}, {}, &record, &spare).error(), client_errc::overloaded);
  EXPECT_EQ(client_->publish({}, {}).error(), msg::msg_errc::bad_field);
  ASSERT_TRUE(client_->message(3, bytes_of("m")).ok());
  ASSERT_TRUE(client_->publish(bytes_of("t"), bytes_of("p")).ok());
  ASSERT_TRUE(spin([&] { return !seen(FrameType::publish).empty(); }));
  EXPECT_EQ(seen(FrameType::message)[0].payload, "m");
  EXPECT_EQ(seen(FrameType::publish)[0].topic, "t");
  client_->close();  // pending calls fail with closed, in the call to close()
  EXPECT_EQ(a->error, client_errc::closed);
  EXPECT_EQ(b->error, client_errc::closed);
  EXPECT_EQ(spare.calls, 0);
}

TEST_P(ClientTest, UnsupportedVersionInHelloAckIsRefused) {
  script_.ack.version = 2;
  Options o;
  o.reconnect = false;
  make_client(o);
  Outcome* a = call(1, "");
  ASSERT_TRUE(spin([&] { return a->done(); }));
  EXPECT_EQ(a->error, client_errc::not_connected);
  EXPECT_FALSE(client_->ready());
}

TEST_P(ClientTest, CallsMadeBeforeTheHelloWaitForIt) {
  script_.on_frame = [&](Conn& c, const Seen& s) {
    if (s.type == FrameType::request) {
      test::send(c, msg::make_response(s.id, bytes_of("early")));
    }
  };
  make_client();
  EXPECT_FALSE(client_->ready());
  Outcome* o = call(1, "x");
  ASSERT_TRUE(spin([&] { return o->done(); }));
  EXPECT_EQ(o->payload, "early");
  EXPECT_EQ(script_.seen.front().type, FrameType::hello);  // HELLO went first
}

TEST_P(ClientTest, ServerPingsAndRequestsAreAnswered) {
  std::vector<Seen> answers;
  script_.on_frame = [&](Conn& c, const Seen& s) {
    if (s.type == FrameType::subscribe) {  // the test's trigger
      const std::byte opaque[8] = {std::byte{1}, std::byte{2}};
      test::send(c, msg::make_ping(77, opaque));
      test::send(c, msg::make_request(9, 1234, 0, {}));
      test::send(c, msg::make_message(1234, {}));  // dropped: nothing to answer
    } else {
      answers.push_back(s);
    }
  };
  connect();
  ASSERT_TRUE(client_->subscribe(bytes_of("go"), nullptr, nullptr).ok());
  ASSERT_TRUE(spin([&] { return answers.size() == 2; }));
  EXPECT_EQ(answers[0].type, FrameType::pong);
  EXPECT_EQ(answers[0].id, 77u);
  EXPECT_EQ(answers[0].payload.size(), 8u);
  EXPECT_EQ(answers[0].payload[1], 2);
  EXPECT_EQ(answers[1].type, FrameType::error);
  EXPECT_EQ(answers[1].id, 9u);
  EXPECT_TRUE(client_->ready());
}

TEST_P(ClientTest, ConnectionLevelErrorsCloseOnlyWhenFatal) {
  script_.on_frame = [&](Conn& c, const Seen& s) {
    if (s.type == FrameType::subscribe && s.conn == 1) {
      // §6.9: a refused SUBSCRIBE is reported with id 0 and a non-fatal code.
      test::send(c, msg::make_error(0, ProtocolError::overloaded, bytes_of(s.topic)));
    } else if (s.type == FrameType::publish && s.conn == 1) {
      test::send(c, msg::make_error(0, ProtocolError::bad_frame));  // fatal: both close
    }
  };
  Options o;
  o.reconnect_min_ms = 5;
  o.reconnect_max_ms = 20;
  connect(o);
  ASSERT_TRUE(client_->subscribe(bytes_of("t"), nullptr, nullptr).ok());
  ASSERT_TRUE(spin([&] { return client_->stats().stream_errors == 1; }));
  EXPECT_TRUE(client_->ready());
  ASSERT_TRUE(client_->publish(bytes_of("t"), {}).ok());
  ASSERT_TRUE(spin([&] { return client_->stats().disconnects == 1; }));
  ASSERT_TRUE(spin([&] { return client_->ready(); }));  // a new connection
  EXPECT_EQ(script_.accepted, 2);
}

INSTANTIATE_TEST_SUITE_P(Backends, ClientTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::client
