// weft::pubsub::Hub on a real Runtime (loopback, 4 workers, round-robin accept so that
// connections spread over the workers in turn), through the line transport of
// line_transport.h, on both backends: fan-out from every worker to subscribers on every
// worker exactly once and in publish order; unsubscribe and close; the slow-consumer policy
// (exact drop counts, disconnect after N drops in a row); limits; init/attach errors.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <weft/platform/runtime.h>
#include <weft/pubsub/error.h>
#include <weft/pubsub/hub.h>

#include "line_transport.h"
#include "test_net.h"

namespace weft::pubsub {
namespace {

using platform::Address;
using platform::BackendKind;
using platform::Config;
using platform::Loop;
using platform::Runtime;
using platform::Service;

// A blocking line client (send/receive timeouts from test::connect_to).
class Client {
 public:
  explicit Client(const Address& a, int rcvbuf = 0) : fd_(test::connect_to(a, 10000, rcvbuf)) {}
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  [[nodiscard]] int fd() const { return fd_; }
  void close() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  bool send(const std::string& s) { return test::write_all(fd_, s.data(), s.size()); }
  // The next line without its '\n'; false on timeout, EOF or error.
  bool line(std::string& out) {
    while (true) {
      const std::size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        out = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return true;
      }
      char b[16384];
      const ssize_t r = ::recv(fd_, b, sizeof b, 0);
      if (r < 0 && errno == EINTR) {
        continue;
      }
      if (r <= 0) {
        return false;
      }
      buf_.append(b, static_cast<std::size_t>(r));
    }
  }
  std::string cmd(const std::string& c) {
    std::string l;
    if (!send(c + "\n") || !line(l)) {
      return "<no reply>";
    }
    return l;
  }
  std::uint32_t worker = 0;

 private:
  int fd_ = -1;
  std::string buf_;
};

std::string err(pubsub_errc e) {
  return "ERR " + std::to_string(static_cast<int>(e));
}

// "EVT <topic> <payload>" -> payload; empty when l is not an event of topic.
std::string event_payload(const std::string& l, const std::string& topic) {
  const std::string head = "EVT " + topic + " ";
  return l.rfind(head, 0) == 0 ? l.substr(head.size()) : std::string();
}

class PubSubTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
  }
  void TearDown() override {
    test::g_wake.store(1);  // a test that failed during a NAP must not hold its worker
    rt_.stop();
    rt_.wait();
  }
  Config config(std::uint32_t workers) const {
    Config cfg = test::one_worker_config(GetParam());
    cfg.workers = workers;
    cfg.accept_mode = platform::AcceptMode::round_robin;
    cfg.recv_buffers = 64;
    cfg.send_buffers = 64;
    // More than the events any test has in flight at once (the fan-out test's 800: on a loaded
    // machine the workers may run their posts late, and each event holds its buffer until
    // the last subscriber's send is done), so no publish meets no_buffers by timing.
    cfg.shared_buffers = 1024;
    cfg.shared_buffer_size = 4096;
    // An event is one output segment, and a connection flushes once per iteration: a burst
    // of posts run in one iteration needs that many segments (else queue_full: a drop).
    cfg.max_out_iov = 1024;
    return cfg;
  }
  void start(const Config& cfg, const Limits& limits, AdmitFn admit = nullptr) {
    ASSERT_TRUE(hub_.init(limits, cfg).ok());
    auto f = hub_.add_format(&test::encode_line_event, nullptr, admit);
    auto alt = hub_.add_format(&test::encode_line_event, const_cast<char*>("ALT"));
    ASSERT_TRUE(f.ok() && alt.ok());
    env_ = {&hub_, *f, *alt};
    std::vector<Service> services;
    services.push_back(
        {Address::loopback_v4(0), [this](Loop& l) { return test::make_line_factory(l, env_); }});
    ASSERT_TRUE(rt_.start(cfg, std::move(services)).ok());
    ASSERT_EQ(rt_.backend_kind(), GetParam());
  }
  // A connection, and the worker that serves it (asked before the next connection is made,
  // so round-robin hands them out in order).
  std::unique_ptr<Client> open(int rcvbuf = 0) {
    auto c = std::make_unique<Client>(rt_.local_address(0), rcvbuf);
    EXPECT_GE(c->fd(), 0);
    const std::string who = c->cmd("WHO");
    EXPECT_EQ(who.substr(0, 1), "W");
    c->worker = static_cast<std::uint32_t>(std::stoul(who.substr(1)));
    return c;
  }
  // Waits until every event posted between workers has been run by its target, so that a
  // test publishing in batches never has more than a batch in any post ring.
  bool posts_settled() {
    return test::eventually([&] {
      const HubStats t = hub_.total();
      return t.posts_received == t.posts_sent;
    });
  }
  // Publishes `n` events numbered from `first` on topic from p, and reads the n replies.
  void publish(Client& p, const std::string& topic, int first, int n, const std::string& pad = "") {
    std::string lines;
    for (int i = first; i < first + n; ++i) {
      lines += "PUB " + topic + " " + std::to_string(i) + pad + "\n";
    }
    ASSERT_TRUE(p.send(lines));
    for (int i = 0; i < n; ++i) {
      std::string l;
      ASSERT_TRUE(p.line(l));
      ASSERT_EQ(l, "K") << "publish " << first + i;
    }
  }

  Hub hub_;  // before rt_: outlives the workers and the posts in flight
  test::LineEnv env_;
  Runtime rt_;
};

TEST_P(PubSubTest, EveryWorkerPublishesToEveryWorkerOnceInOrder) {
  start(config(4), {});
  std::vector<std::unique_ptr<Client>> subs, pubs;
  std::map<std::uint32_t, int> subs_on;
  for (int i = 0; i < 8; ++i) {
    subs.push_back(open());
    ++subs_on[subs.back()->worker];
    ASSERT_EQ(subs.back()->cmd("SUB news"), "OK");
  }
  EXPECT_EQ(subs_on, (std::map<std::uint32_t, int>{{0, 2}, {1, 2}, {2, 2}, {3, 2}}));
  std::set<std::uint32_t> pub_on;
  for (int i = 0; i < 4; ++i) {
    pubs.push_back(open());
    pub_on.insert(pubs.back()->worker);
  }
  EXPECT_EQ(pub_on.size(), 4u);
  // 200 < the post ring's 256: no post can fail even if a target does not run meanwhile.
  constexpr int kEvents = 200;
  for (int p = 0; p < 4; ++p) {
    publish(*pubs[p], "news", 0, kEvents, "-p" + std::to_string(p));
  }
  for (auto& s : subs) {
    int next[4] = {};
    for (int i = 0; i < 4 * kEvents; ++i) {
      std::string l;
      ASSERT_TRUE(s->line(l)) << "subscriber on worker " << s->worker << " after " << i;
      const std::string payload = event_payload(l, "news");
      const std::size_t dash = payload.find("-p");
      ASSERT_NE(dash, std::string::npos) << l;
      const int seq = std::stoi(payload.substr(0, dash));
      const int p = std::stoi(payload.substr(dash + 2));
      ASSERT_EQ(seq, next[p]) << "publisher " << p << ": out of order or duplicated";
      ++next[p];
    }
  }
  const std::uint64_t events = 4 * kEvents;
  ASSERT_TRUE(test::eventually([&] { return hub_.total().delivered == 8 * events; }));
  const HubStats t = hub_.total();
  EXPECT_EQ(t.published, events);
  EXPECT_EQ(t.encoded, events);  // once per publish: one format, one shared buffer
  EXPECT_EQ(t.posts_sent, events * 3);
  EXPECT_EQ(t.posts_received, events * 3);
  EXPECT_EQ(t.posts_failed, 0u);
  EXPECT_EQ(t.dropped, 0u);
  EXPECT_EQ(t.subscriptions, 8u);
  EXPECT_EQ(t.topics, 4u);  // one per worker: each worker's table has its own entry
  for (std::uint32_t w = 0; w < 4; ++w) {
    EXPECT_EQ(hub_.stats(w).delivered, 2 * events) << w;
  }
  // Every event's buffer came back to the pool once the last send was done.
  EXPECT_TRUE(
      test::eventually([&] { return rt_.shared()->free_count() == rt_.shared()->count(); }));
}

TEST_P(PubSubTest, UnsubscribeAndCloseStopDeliveryAndSubscribeIsIdempotent) {
  start(config(4), {});
  auto a = open();
  auto b = open();
  auto c = open();
  auto p = open();
  for (Client* s : {a.get(), b.get(), c.get()}) {
    ASSERT_EQ(s->cmd("SUB t"), "OK");
    ASSERT_EQ(s->cmd("SUB sync"), "OK");
  }
  ASSERT_EQ(b->cmd("SUB t"), "OK");  // twice: still one subscription
  ASSERT_EQ(a->cmd("UNS t"), "OK");
  ASSERT_EQ(a->cmd("UNS t"), "NO");
  c->close();
  ASSERT_TRUE(test::eventually([&] { return hub_.total().subscriptions == 3; }))
      << "closing the connection drops its subscriptions";
  publish(*p, "t", 0, 10);
  publish(*p, "sync", 0, 1);
  // Posts from one worker run in order: "sync" comes after whatever "t" would have brought.
  std::string l;
  ASSERT_TRUE(a->line(l));
  EXPECT_EQ(l, "EVT sync 0") << "the unsubscribed connection got an event of t";
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(b->line(l));
    EXPECT_EQ(l, "EVT t " + std::to_string(i));
  }
  ASSERT_TRUE(b->line(l));
  EXPECT_EQ(l, "EVT sync 0");
  ASSERT_TRUE(test::eventually([&] { return hub_.total().delivered == 12; }));
  EXPECT_EQ(hub_.total().dropped, 0u);
  EXPECT_EQ(b->cmd("STAT t"), "S 10 0");
  EXPECT_EQ(a->cmd("STAT t"), err(pubsub_errc::not_subscribed));
}

// The admit hook of the tests: an event whose payload starts with "skip<w>" is skipped for
// subscribers on worker w; one starting with "mark" gets "MRK\n" queued before it.
bool admit_by_payload(void*, platform::Conn& c, std::span<const std::byte> event) noexcept {
  const std::string_view e(reinterpret_cast<const char*>(event.data()), event.size());
  const std::size_t sp = e.find(' ', 4);  // "EVT <topic> <payload>\n"
  const std::string_view payload = e.substr(sp + 1);
  if (payload.starts_with("skip") && payload.size() > 4 &&
      static_cast<std::uint32_t>(payload[4] - '0') == c.loop().index()) {
    return false;
  }
  if (payload.starts_with("mark")) {
    return c.send_copy(test::as_span("MRK\n")).ok();
  }
  return true;
}

TEST_P(PubSubTest, AFormatsAdmitHookSkipsSubscribersWithoutCountingDrops) {
  start(config(4), {}, &admit_by_payload);
  std::vector<std::unique_ptr<Client>> subs;
  for (int i = 0; i < 8; ++i) {
    subs.push_back(open());
    ASSERT_EQ(subs.back()->cmd("SUB t"), "OK");
  }
  auto p = open();  // the 9th connection: on worker 0
  ASSERT_EQ(p->worker, 0u);
  publish(*p, "t", 0, 1, "");             // "0": everyone
  ASSERT_EQ(p->cmd("PUB t skip1"), "K");  // not the two on worker 1
  ASSERT_EQ(p->cmd("PUB t skip0"), "K");  // not the two on worker 0 (served at once)
  ASSERT_EQ(p->cmd("PUB t mark"), "K");   // a marker first, then the event, for everyone
  for (auto& s : subs) {
    std::string l;
    ASSERT_TRUE(s->line(l));
    EXPECT_EQ(l, "EVT t 0");
    for (const char* skip : {"skip1", "skip0"}) {
      if (s->worker != static_cast<std::uint32_t>(skip[4] - '0')) {
        ASSERT_TRUE(s->line(l));
        EXPECT_EQ(l, std::string("EVT t ") + skip) << "worker " << s->worker;
      }
    }
    ASSERT_TRUE(s->line(l));
    EXPECT_EQ(l, "MRK") << "worker " << s->worker;
    ASSERT_TRUE(s->line(l));
    EXPECT_EQ(l, "EVT t mark");
  }
  ASSERT_TRUE(posts_settled());
  ASSERT_TRUE(test::eventually([&] { return hub_.total().delivered == 8 * 4 - 4; }));
  const HubStats t = hub_.total();
  EXPECT_EQ(t.skipped, 4u);
  EXPECT_EQ(t.dropped, 0u);
  EXPECT_EQ(t.disconnected, 0u);
  EXPECT_EQ(hub_.stats(1).skipped, 2u);
  EXPECT_EQ(hub_.stats(0).skipped, 2u);
  for (auto& s : subs) {
    EXPECT_EQ(s->cmd("STAT t"), s->worker <= 1 ? "S 3 0" : "S 4 0") << "worker " << s->worker;
  }
  HubStats sum;
  sum += hub_.stats(0);
  sum += hub_.stats(1);
  EXPECT_EQ(sum.skipped, 4u) << "operator+= sums skipped";
}

// A subscriber that reads on its own thread: events of topic until "END", checking that
// their numbers are 0, 1, 2, ... without gaps; `got` is its progress for the publisher.
class Reader {
 public:
  Reader(Client& c, std::string topic)
      : thread_([this, &c, topic = std::move(topic)] { ok_ = run(c, topic); }) {}
  ~Reader() { join(); }
  void join() {
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  [[nodiscard]] int got() const { return got_.load(); }
  [[nodiscard]] bool ok() const { return ok_.load(); }

 private:
  bool run(Client& c, const std::string& topic) {
    std::string l;
    while (c.line(l)) {
      const std::string payload = event_payload(l, topic);
      if (payload == "END") {
        return true;
      }
      if (payload.empty() || std::stoi(payload) != got_.load()) {
        return false;
      }
      got_.fetch_add(1);
    }
    return false;
  }
  std::atomic<int> got_{0};
  std::atomic<bool> ok_{false};
  std::thread thread_;
};

// Publishing in batches of 10 events of 1 KB, each batch waited for until the fast
// subscribers have read it: a burst never exceeds the 32 KiB bound on its own, so only the
// subscriber that does not read can drop.
TEST_P(PubSubTest, SlowSubscriberDropsAreCountedExactlyWhileOthersGetEverything) {
  Limits limits;
  limits.max_queued_bytes = 32 * 1024;
  start(config(4), limits);
  auto slow = open(4096);  // a small receive window: the kernel holds little for it
  auto f1 = open();
  auto f2 = open();
  auto p = open();
  for (Client* s : {slow.get(), f1.get(), f2.get()}) {
    ASSERT_EQ(s->cmd("SUB t"), "OK");
  }
  Reader r1(*f1, "t");
  Reader r2(*f2, "t");
  const std::string pad = " " + std::string(1000, 'x');
  int published = 0;
  int extra = -1;  // batches still to publish once drops began
  for (int batch = 0; batch < 2000 && extra != 0; ++batch) {
    publish(*p, "t", published, 10, pad);
    published += 10;
    ASSERT_TRUE(test::eventually([&] { return r1.got() == published && r2.got() == published; }))
        << "a fast subscriber lost events: " << r1.got() << " " << r2.got() << " of " << published;
    if (extra < 0 && hub_.stats(slow->worker).dropped > 0) {
      extra = 5;
    } else if (extra > 0) {
      --extra;
    }
  }
  ASSERT_EQ(extra, 0) << "the subscriber that does not read never dropped an event";
  ASSERT_EQ(p->cmd("PUB t END"), "K");
  r1.join();
  r2.join();
  EXPECT_TRUE(r1.ok() && r2.ok());
  const std::uint64_t events = static_cast<std::uint64_t>(published) + 1;
  ASSERT_TRUE(test::eventually([&] {
    const HubStats t = hub_.total();
    return t.delivered + t.dropped == 3 * events;
  }));
  const HubStats t = hub_.total();
  EXPECT_EQ(t.posts_failed, 0u);
  EXPECT_EQ(t.disconnected, 0u);
  EXPECT_EQ(t.dropped, hub_.stats(slow->worker).dropped) << "only the slow one dropped";
  // The slow subscriber now reads: what it receives is exactly what was counted delivered,
  // in order, and delivered + dropped is every event.
  ASSERT_TRUE(slow->send("STAT t\n"));
  std::uint64_t received = 0;
  int last = -1;
  std::string l;
  while (slow->line(l) && l.rfind("EVT ", 0) == 0) {
    const std::string payload = event_payload(l, "t");
    if (payload != "END") {
      const int seq = std::stoi(payload);
      EXPECT_GT(seq, last);
      last = seq;
    }
    ++received;
  }
  unsigned long long delivered = 0;
  unsigned long long dropped = 0;
  ASSERT_EQ(std::sscanf(l.c_str(), "S %llu %llu", &delivered, &dropped), 2) << l;
  EXPECT_EQ(received, delivered);
  EXPECT_EQ(delivered + dropped, events);
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(dropped, t.dropped);
}

TEST_P(PubSubTest, SlowSubscriberIsDisconnectedAfterConsecutiveDrops) {
  Limits limits;
  limits.max_queued_bytes = 32 * 1024;
  limits.disconnect_after = 8;
  start(config(4), limits);
  auto slow = open(4096);
  auto fast = open();
  auto p = open();
  ASSERT_EQ(slow->cmd("SUB t"), "OK");
  ASSERT_EQ(fast->cmd("SUB t"), "OK");
  Reader reader(*fast, "t");
  const std::string pad = " " + std::string(1000, 'x');
  int published = 0;
  for (int batch = 0; batch < 2000 && hub_.total().disconnected == 0; ++batch) {
    publish(*p, "t", published, 10, pad);
    published += 10;
    ASSERT_TRUE(test::eventually([&] { return reader.got() == published; }));
    ASSERT_TRUE(posts_settled());
  }
  ASSERT_EQ(hub_.total().disconnected, 1u);
  EXPECT_LE(test::wait_closed(slow->fd()), 0) << "the slow subscriber was not disconnected";
  ASSERT_TRUE(test::eventually([&] { return hub_.total().subscriptions == 1; }))
      << "its close did not drop its subscription";
  const std::uint64_t dropped = hub_.total().dropped;
  EXPECT_GE(dropped, 8u);
  publish(*p, "t", published, 10);
  published += 10;
  ASSERT_EQ(p->cmd("PUB t END"), "K");
  reader.join();
  EXPECT_TRUE(reader.ok());
  EXPECT_EQ(reader.got(), published);
  EXPECT_EQ(hub_.total().dropped, dropped) << "nothing dropped after the disconnect";
}

TEST_P(PubSubTest, EachFormatWithSubscribersIsEncodedOncePerPublish) {
  start(config(4), {});
  auto s0 = open();
  auto s1 = open();
  auto s2 = open();
  auto p = open();
  ASSERT_EQ(s0->cmd("SUB t"), "OK");
  ASSERT_EQ(s1->cmd("SUBX t"), "OK");
  ASSERT_EQ(s2->cmd("SUB t"), "OK");
  ASSERT_EQ(s2->cmd("SUB only-evt"), "OK");
  publish(*p, "t", 0, 5);
  EXPECT_EQ(hub_.total().encoded, 10u) << "two formats wanted: each encoded once per publish";
  publish(*p, "only-evt", 0, 3);
  EXPECT_EQ(hub_.total().encoded, 13u) << "one format wanted: only it is encoded";
  std::string l;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(s0->line(l));
    EXPECT_EQ(l, "EVT t " + std::to_string(i));
    ASSERT_TRUE(s1->line(l));
    EXPECT_EQ(l, "ALT t " + std::to_string(i));
    ASSERT_TRUE(s2->line(l));
    EXPECT_EQ(l, "EVT t " + std::to_string(i));
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(s2->line(l));
    EXPECT_EQ(l, "EVT only-evt " + std::to_string(i));
  }
  // Subscribing again in the other format switches the subscription: still one copy.
  ASSERT_EQ(s0->cmd("SUBX t"), "OK");
  publish(*p, "t", 5, 1);
  ASSERT_TRUE(s0->line(l));
  EXPECT_EQ(l, "ALT t 5");
  EXPECT_EQ(s0->cmd("STAT t"), "S 6 0");
  EXPECT_EQ(hub_.total().subscriptions, 4u);
}

// A worker that does not run its posts (NAP holds its thread) lets its ring from the
// publisher fill: the publish reports the worker as missed ("M"), never blocks, and the
// posts that did not fit are counted exactly.
TEST_P(PubSubTest, AFullPostRingIsReportedAndCountedNeverWaitedFor) {
  start(config(2), {});
  auto sub = open();
  auto p = open();
  ASSERT_NE(sub->worker, p->worker);
  ASSERT_EQ(sub->cmd("SUB t"), "OK");
  test::g_wake.store(0);
  ASSERT_TRUE(sub->send("NAP 60000\n"));
  ASSERT_TRUE(test::eventually([] { return test::g_napping.load() == 1; }));
  constexpr int kEvents = 300;  // the ring holds platform::kPostRingSize = 256
  std::string lines;
  for (int i = 0; i < kEvents; ++i) {
    lines += "PUB t " + std::to_string(i) + "\n";
  }
  ASSERT_TRUE(p->send(lines));
  int missed = 0;
  for (int i = 0; i < kEvents; ++i) {
    std::string l;
    ASSERT_TRUE(p->line(l));
    ASSERT_TRUE(l == "K" || l == "M") << l;
    missed += l == "M" ? 1 : 0;
  }
  EXPECT_EQ(test::g_napping.load(), 1);
  test::g_wake.store(1);
  EXPECT_EQ(missed, kEvents - static_cast<int>(platform::kPostRingSize));
  EXPECT_EQ(hub_.total().posts_failed, static_cast<std::uint64_t>(missed));
  std::string l;
  ASSERT_TRUE(sub->line(l));
  EXPECT_EQ(l, "Z");
  for (std::size_t i = 0; i < platform::kPostRingSize; ++i) {
    ASSERT_TRUE(sub->line(l));
    ASSERT_EQ(l, "EVT t " + std::to_string(i));
  }
  ASSERT_TRUE(test::eventually([&] { return hub_.total().delivered == platform::kPostRingSize; }));
  EXPECT_EQ(hub_.total().dropped, 0u);
  EXPECT_TRUE(test::eventually([&] { return rt_.shared()->free_count() == rt_.shared()->count(); }))
      << "the references of posts that did not fit were not given back";
}

// Subscribe/unsubscribe on two workers while two others publish (ThreadSanitizer checks the
// interest counters and the shared buffers): each event arrives at most once and in order,
// every reply arrives, and at the end nothing is left subscribed, posted or referenced.
TEST_P(PubSubTest, SubscriptionChurnWhileOtherWorkersPublish) {
  start(config(4), {});
  auto p0 = open();
  auto p1 = open();
  auto c2 = open();
  auto c3 = open();
  std::atomic<int> bad{0};
  const auto churn = [&bad](Client* c) {
    int last[2] = {-1, -1};  // per publisher
    for (int i = 0; i < 300; ++i) {
      for (const std::string cmd : {"SUB t", "UNS t"}) {
        std::string l;
        if (!c->send(cmd + "\n")) {
          bad.fetch_add(1);
          return;
        }
        while (c->line(l) && l.rfind("EVT t ", 0) == 0) {
          const std::string payload = event_payload(l, "t");  // "<seq>-p<publisher>"
          const int seq = std::stoi(payload);
          const int p = payload.back() - '0';
          if (seq <= last[p]) {
            bad.fetch_add(1);
          }
          last[p] = seq;
        }
        if (l != "OK") {
          bad.fetch_add(1);
        }
      }
    }
  };
  std::thread t2(churn, c2.get());
  std::thread t3(churn, c3.get());
  for (int batch = 0; batch < 20; ++batch) {
    publish(*p0, "t", batch * 10, 10, "-p0");
    publish(*p1, "t", batch * 10, 10, "-p1");
  }
  t2.join();
  t3.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_TRUE(test::eventually([&] {
    const HubStats t = hub_.total();
    return t.subscriptions == 0 && t.topics == 0 && t.posts_received == t.posts_sent;
  }));
  EXPECT_EQ(hub_.total().published, 400u);
  EXPECT_TRUE(
      test::eventually([&] { return rt_.shared()->free_count() == rt_.shared()->count(); }));
}

TEST_P(PubSubTest, LimitsAreReportedToTheTransport) {
  Config cfg = config(1);
  cfg.shared_buffers = 2;
  Limits limits;
  limits.max_topics = 2;
  limits.max_subscriptions = 3;
  limits.max_topic_len = 8;
  start(cfg, limits);
  auto a = open(4096);
  auto b = open(4096);
  auto c = open();
  ASSERT_EQ(a->cmd("SUB a"), "OK");
  ASSERT_EQ(a->cmd("SUB b"), "OK");
  EXPECT_EQ(a->cmd("SUB c"), err(pubsub_errc::topic_limit));
  EXPECT_EQ(a->cmd("SUB 123456789"), err(pubsub_errc::invalid_topic));
  EXPECT_EQ(a->cmd("SUB "), err(pubsub_errc::invalid_topic));
  ASSERT_EQ(b->cmd("SUB a"), "OK");
  EXPECT_EQ(c->cmd("SUB b"), err(pubsub_errc::subscription_limit));
  EXPECT_EQ(c->cmd("PUB a " + std::string(5000, 'x')), err(pubsub_errc::too_large));
  EXPECT_EQ(c->cmd("PUB 123456789 x"), err(pubsub_errc::invalid_topic));
  EXPECT_EQ(c->cmd("PUB nobody x"), "K");  // no subscribers: not an error
  // a and b do not read: their queued events keep both shared buffers referenced, and a
  // publish then finds none free.
  const std::string big(3000, 'y');
  std::string reply;
  for (int i = 0; i < 2000 && reply != err(pubsub_errc::no_buffers); ++i) {
    reply = c->cmd("PUB a " + big);
    ASSERT_TRUE(reply == "K" || reply == err(pubsub_errc::no_buffers)) << reply;
  }
  EXPECT_EQ(reply, err(pubsub_errc::no_buffers));
  EXPECT_GE(hub_.total().no_buffers, 1u);
  EXPECT_EQ(hub_.total().publish_failed, 2u);  // too_large and invalid_topic
}

INSTANTIATE_TEST_SUITE_P(Backends, PubSubTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

// ---- init/attach without a runtime

TEST(HubInit, RefusesBadLimitsAndConfig) {
  Config cfg;
  cfg.workers = 2;
  Hub hub;
  EXPECT_EQ(hub.init({}, cfg).error(), make_error_code(pubsub_errc::invalid_argument))
      << "no shared buffers";
  cfg.shared_buffers = 8;
  Limits l;
  l.max_topic_len = 256;
  EXPECT_EQ(hub.init(l, cfg).error(), make_error_code(pubsub_errc::invalid_argument));
  l = {};
  l.max_queued_bytes = cfg.shared_buffer_size - 1;
  EXPECT_EQ(hub.init(l, cfg).error(), make_error_code(pubsub_errc::invalid_argument));
  EXPECT_TRUE(hub.init({}, cfg).ok());
  EXPECT_EQ(hub.add_format(nullptr, nullptr).error(),
            make_error_code(pubsub_errc::invalid_argument));
  for (std::uint32_t i = 0; i < Hub::kMaxFormats; ++i) {
    auto f = hub.add_format(&test::encode_line_event, nullptr);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(*f, i);
  }
  EXPECT_EQ(hub.add_format(&test::encode_line_event, nullptr).error(),
            make_error_code(pubsub_errc::format_limit));
}

TEST(HubInit, AWorkerWithoutSharedBuffersCannotAttachOrPublish) {
  Config cfg = test::one_worker_config(BackendKind::epoll);
  cfg.shared_buffers = 8;
  Hub hub;
  ASSERT_TRUE(hub.init({}, cfg).ok());
  auto loop = Loop::create(cfg, 0, nullptr);  // a loop outside a runtime: no shared buffers
  ASSERT_TRUE(loop.ok());
  EXPECT_EQ(hub.attach(*loop.value()).error(), make_error_code(pubsub_errc::invalid_argument));
  const std::string t = "t";
  EXPECT_EQ(hub.publish(*loop.value(), test::as_span(t), test::as_span(t)).error(),
            make_error_code(pubsub_errc::not_attached));
  Hub never_initialised;
  EXPECT_EQ(never_initialised.attach(*loop.value()).error(),
            make_error_code(pubsub_errc::not_attached));
}

}  // namespace
}  // namespace weft::pubsub
