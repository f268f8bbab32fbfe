// weft::mqtt::Client on a real Loop (both backends) against a real mosquitto started here on a
// free loopback port (mosquitto.h), and against a fake broker (a raw socket server in a
// thread) for malformed input and Unix sockets. Also the Bridge: rules, config parsing, the
// mapping both ways through mosquitto, and loop prevention. Every wait is bounded.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/un.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <weft/mqtt/bridge.h>
#include <weft/mqtt/client.h>
#include <weft/platform/loop.h>

#include "mosquitto.h"
#include "test_net.h"

namespace weft::mqtt {
namespace {

using platform::BackendKind;

std::span<const std::byte> text(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// Callbacks recorded (allocating: not for the zero-allocation test).
struct Rec {
  std::vector<std::string> msgs;  // "topic payload qN"
  std::vector<std::pair<ClientState, std::error_code>> states;
  std::set<std::uint16_t> acks;
  static void on_msg(void* ctx, const Message& m) noexcept {
    static_cast<Rec*>(ctx)->msgs.push_back(
        std::string(m.topic) + " " +
        std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()) + " q" +
        std::to_string(m.qos));
  }
  static void on_state(void* ctx, ClientState s, std::error_code e) noexcept {
    static_cast<Rec*>(ctx)->states.emplace_back(s, e);
  }
  static void on_ack(void* ctx, std::uint16_t id) noexcept {
    static_cast<Rec*>(ctx)->acks.insert(id);
  }
  void attach(Client& c) {
    c.on_message(&Rec::on_msg, this);
    c.on_state(&Rec::on_state, this);
    c.on_ack(&Rec::on_ack, this);
  }
  [[nodiscard]] int count(ClientState s) const {
    int n = 0;
    for (const auto& [st, e] : states) {
      n += st == s ? 1 : 0;
    }
    return n;
  }
};

// Reads what a child wrote to a pipe, without blocking.
void drain(int fd, std::string& into) {
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 0) > 0) {
    char buf[512];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    into.append(buf, static_cast<std::size_t>(n));
  }
}

// A mosquitto_sub printing "topic payload" lines into a pipe (bounded by -W).
struct Sub {
  pid_t pid = -1;
  int fd = -1;
  std::string got;
  Sub(const std::string& exe, const Broker& b, const std::string& topic, int count) {
    int p[2];
    if (::pipe(p) != 0) {
      return;
    }
    pid = spawn({exe, "-h", "127.0.0.1", "-p", std::to_string(b.port()), "-t", topic, "-q", "1",
                 "-v", "-C", std::to_string(count), "-W", "30"},
                p[1], b.dir() + "/sub.log");
    ::close(p[1]);
    fd = p[0];
  }
  ~Sub() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      reap(pid, 2000);
    }
    if (fd >= 0) {
      ::close(fd);
    }
  }
  const std::string& read() {
    drain(fd, got);
    return got;
  }
};

class MqttClient : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
    exe_ = find_exe("mosquitto");
    sub_ = find_exe("mosquitto_sub");
    pub_ = find_exe("mosquitto_pub");
    ASSERT_FALSE(exe_.empty() || sub_.empty() || pub_.empty())
        << "mosquitto / mosquitto-clients not installed: run scripts/deps.sh";
    auto l = platform::Loop::create(test::one_worker_config(GetParam()), 0);
    ASSERT_TRUE(l) << l.error().message();
    loop_ = std::move(l.value());
  }
  // Runs the loop until cond() or ms pass.
  template <class F>
  bool run_until(F cond, int ms) {
    const std::uint64_t end = now_ms() + static_cast<std::uint64_t>(ms);
    while (now_ms() < end) {
      if (cond()) {
        return true;
      }
      loop_->run_once(10);
    }
    return cond();
  }
  static ClientConfig config(const char* id, Version v = Version::v311) {
    ClientConfig c;
    c.session.version = v;
    c.session.client_id = id;
    c.session.keep_alive_s = 5;
    c.session.queue_slots = 128;
    c.backoff_base_ms = 50;
    c.backoff_cap_ms = 400;
    return c;
  }
  std::string exe_, sub_, pub_;
  std::unique_ptr<platform::Loop> loop_;
};

TEST_P(MqttClient, PublishQos0AndQos1ReachMosquittoSub) {
  Broker b(exe_);
  ASSERT_TRUE(b.start()) << b.log();
  Client c(*loop_, config("weft-loop-pub", Version::v5));
  Rec rec;
  rec.attach(c);
  ASSERT_TRUE(c.start(platform::Address::loopback_v4(static_cast<std::uint16_t>(b.port()))));
  ASSERT_TRUE(run_until([&] { return c.state() == ClientState::connected; }, 5000)) << b.log();
  EXPECT_EQ(rec.states.front().first, ClientState::connecting);
  Sub sub(sub_, b, "weft/#", 1000);
  // mosquitto_sub subscribes asynchronously: publish both QoS until it printed one of each.
  std::set<std::uint16_t> ids;
  bool q0 = false;
  bool q1 = false;
  const std::uint64_t end = now_ms() + 15000;
  for (int i = 0; now_ms() < end && !(q0 && q1); ++i) {
    ASSERT_TRUE(c.publish("weft/q0", text("zero-" + std::to_string(i)), 0));
    auto id = c.publish("weft/q1", text("one-" + std::to_string(i)), 1);
    ASSERT_TRUE(id) << id.error().message();
    ids.insert(id.value());
    run_until([] { return false; }, 100);
    q0 = sub.read().find("weft/q0 zero-") != std::string::npos;
    q1 = sub.got.find("weft/q1 one-") != std::string::npos;
  }
  EXPECT_TRUE(q0) << sub.got;
  EXPECT_TRUE(q1) << sub.got;
  ASSERT_TRUE(run_until([&] { return rec.acks.size() == ids.size(); }, 5000));
  EXPECT_EQ(rec.acks, ids);
  EXPECT_EQ(c.stats().acked, ids.size());
  c.stop();
  ASSERT_TRUE(run_until([&] { return c.state() == ClientState::stopped; }, 3000));
  EXPECT_EQ(rec.states.back().first, ClientState::stopped);
}

TEST_P(MqttClient, SubscriptionReceivesMosquittoPub) {
  Broker b(exe_);
  ASSERT_TRUE(b.start()) << b.log();
  Client c(*loop_, config("weft-loop-sub"));
  Rec rec;
  rec.attach(c);
  ASSERT_TRUE(c.subscribe("cmd/#", 1));  // before start: sent after CONNACK
  ASSERT_TRUE(c.start(platform::Address::loopback_v4(static_cast<std::uint16_t>(b.port()))));
  ASSERT_TRUE(run_until([&] { return c.state() == ClientState::connected; }, 5000));
  // Publish until the subscription (acknowledged asynchronously) has seen one.
  const std::uint64_t end = now_ms() + 10000;
  while (rec.msgs.empty() && now_ms() < end) {
    const pid_t p = spawn({pub_, "-h", "127.0.0.1", "-p", std::to_string(b.port()), "-t",
                           "cmd/reboot", "-q", "1", "-m", "now"},
                          -1, b.dir() + "/pub.log");
    run_until([&] { return !rec.msgs.empty(); }, 500);
    reap(p, 3000);
  }
  ASSERT_FALSE(rec.msgs.empty()) << b.log();
  EXPECT_EQ(rec.msgs[0], "cmd/reboot now q1");

  // A clean session after a broker restart: the broker forgot the subscription
  // (session present 0) and the Client subscribes again by itself.
  b.stop();
  ASSERT_TRUE(run_until([&] { return c.state() == ClientState::waiting; }, 3000));
  ASSERT_TRUE(b.start()) << b.log();
  ASSERT_TRUE(run_until([&] { return c.state() == ClientState::connected; }, 5000));
  const std::size_t before = rec.msgs.size();
  const std::uint64_t end2 = now_ms() + 10000;
  while (rec.msgs.size() == before && now_ms() < end2) {
    const pid_t p = spawn({pub_, "-h", "127.0.0.1", "-p", std::to_string(b.port()), "-t",
                           "cmd/again", "-q", "1", "-m", "after-restart"},
                          -1, b.dir() + "/pub.log");
    run_until([&] { return rec.msgs.size() > before; }, 500);
    reap(p, 3000);
  }
  ASSERT_GT(rec.msgs.size(), before) << "not resubscribed after the restart";
  EXPECT_EQ(rec.msgs.back(), "cmd/again after-restart q1");
  EXPECT_EQ(c.stats().connected, 2u);
}

TEST_P(MqttClient, BrokerRestartUnderQos1LosesNothingAcknowledged) {
  Broker b(exe_);
  ASSERT_TRUE(b.start()) << b.log();
  const auto addr = platform::Address::loopback_v4(static_cast<std::uint16_t>(b.port()));
  ClientConfig pc = config("weft-loop-load", Version::v5);
  ClientConfig oc = config("weft-loop-obs", Version::v5);
  for (ClientConfig* c : {&pc, &oc}) {
    c->session.clean_start = false;  // persistent sessions survive the restart
    c->session.session_expiry_s = 0xFFFFFFFF;
    c->session.queue_slots = 256;
  }
  Client pub(*loop_, pc);
  Client obs(*loop_, oc);
  Rec prec;
  Rec orec;
  prec.attach(pub);
  orec.attach(obs);
  ASSERT_TRUE(obs.subscribe("load/#", 1));
  ASSERT_TRUE(obs.start(addr) && pub.start(addr));
  ASSERT_TRUE(run_until(
      [&] {
        return pub.state() == ClientState::connected && obs.state() == ClientState::connected &&
               obs.session().inflight() == 0;
      },
      5000));
  run_until([] { return false; }, 200);  // the SUBACK

  constexpr int kTotal = 400;
  int published = 0;
  bool restarted = false;
  bool obs_away = false;
  std::uint64_t acked_while_away = 0;
  const std::uint64_t end = now_ms() + 40000;
  while (now_ms() < end && (published < kTotal || pub.session().queued() != 0)) {
    while (published < kTotal && pub.session().queued() < 64) {
      auto id = pub.publish("load/m", text(std::to_string(published)), 1);
      ASSERT_TRUE(id) << id.error().message();
      ++published;
    }
    if (!obs_away && published >= kTotal / 4) {
      // The observer leaves (DISCONNECT; its persistent session stays): what the publisher
      // gets acknowledged from now on waits in the broker for it — through the restart.
      obs.stop();
      obs_away = true;
      acked_while_away = prec.acks.size();
    }
    if (!restarted && published >= kTotal / 2) {
      acked_while_away = prec.acks.size() - acked_while_away;
      b.stop();  // under traffic: messages in flight, unacknowledged
      restarted = true;
      run_until([] { return false; }, 300);  // the publisher notices and backs off
      ASSERT_TRUE(b.start()) << b.log();
      ASSERT_TRUE(run_until([&] { return obs.state() == ClientState::stopped; }, 3000));
      ASSERT_TRUE(obs.start(addr));
    }
    loop_->run_once(5);
  }
  ASSERT_TRUE(restarted);
  EXPECT_GT(acked_while_away, 0u) << "messages acknowledged while the observer was away";
  ASSERT_EQ(pub.session().queued(), 0u) << "every QoS 1 message acknowledged";
  EXPECT_GE(pub.stats().connected, 2u) << "reconnected after the restart";
  EXPECT_EQ(obs.stats().connected, 2u);
  EXPECT_GE(prec.count(ClientState::waiting), 1);
  auto missing = [&] {
    std::set<std::string> seen(orec.msgs.begin(), orec.msgs.end());
    int n = 0;
    for (int i = 0; i < kTotal; ++i) {
      n += seen.count("load/m " + std::to_string(i) + " q1") == 0 ? 1 : 0;
    }
    return n;
  };
  run_until([&] { return missing() == 0; }, 15000);
  EXPECT_EQ(missing(), 0) << "acknowledged messages lost; broker log:\n" << b.log();
}

// A fake broker: a loopback (or Unix) listener served by a thread; for connection i it reads
// the CONNECT, writes replies[i] and waits (5 s at most) for the client to close.
class FakeBroker {
 public:
  explicit FakeBroker(std::vector<std::string> replies, const std::string& unix_path = {})
      : replies_(std::move(replies)) {
    if (unix_path.empty()) {
      fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof a;
      (void)::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
      (void)::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
      addr_ = platform::Address::loopback_v4(ntohs(a.sin_port));
    } else {
      ::unlink(unix_path.c_str());
      fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      std::snprintf(a.sun_path, sizeof a.sun_path, "%s", unix_path.c_str());
      (void)::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
      addr_ = platform::Address::parse("unix:" + unix_path).value();
    }
    ::listen(fd_, 8);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeBroker() {
    done_ = true;
    thread_.join();
    ::close(fd_);
  }
  [[nodiscard]] const platform::Address& address() const { return addr_; }
  std::atomic<int> accepted{0};
  std::atomic<int> closed_by_client{0};
  std::atomic<int> publishes{0};  // PUBLISH packets seen (first byte 0x3X)
  std::atomic<int> pings{0};      // PINGREQ seen (0xC0), never answered

 private:
  void serve() {
    for (std::size_t i = 0; i < replies_.size() && !done_; ++i) {
      pollfd p{fd_, POLLIN, 0};
      while (!done_ && ::poll(&p, 1, 50) <= 0) {
      }
      if (done_) {
        return;
      }
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      ++accepted;
      char buf[4096];
      test::set_timeouts(c, 5000);
      (void)::recv(c, buf, sizeof buf, 0);  // CONNECT
      (void)test::write_all(c, replies_[i].data(), replies_[i].size());
      const std::uint64_t end = now_ms() + 5000;
      while (!done_ && now_ms() < end) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 50) <= 0) {
          continue;
        }
        const ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) {
          ++closed_by_client;
          break;
        }
        publishes += (static_cast<unsigned char>(buf[0]) >> 4) == 3 ? 1 : 0;
        pings += static_cast<unsigned char>(buf[0]) == 0xC0 ? 1 : 0;
      }
      ::close(c);
    }
  }
  std::vector<std::string> replies_;
  platform::Address addr_;
  int fd_ = -1;
  std::thread thread_;
  std::atomic<bool> done_{false};
};

const std::string kConnack("\x20\x02\x00\x00", 4);

TEST_P(MqttClient, MalformedBrokerBytesCloseTheConnectionAndTheClientReconnects) {
  // Three broken replies, then a good CONNACK: a reserved packet type 0, a CONNACK with bad
  // flags, and a Remaining Length of five bytes.
  FakeBroker fake({std::string("\x00\x00", 2), std::string("\x21\x02\x00\x00", 4),
                   std::string("\x30\xff\xff\xff\xff\x01", 6), kConnack});
  Client c(*loop_, config("weft-fake"));
  Rec rec;
  rec.attach(c);
  ASSERT_TRUE(c.start(fake.address()));
  ASSERT_TRUE(run_until([&] { return c.state() == ClientState::connected; }, 10000))
      << "bad packets " << c.stats().bad_packets << ", accepted " << fake.accepted.load();
  EXPECT_EQ(fake.accepted.load(), 4);
  EXPECT_EQ(c.stats().bad_packets, 3u);
  EXPECT_EQ(c.stats().connected, 1u);
  EXPECT_TRUE(test::eventually([&] { return fake.closed_by_client.load() == 3; }));
  int malformed = 0;
  for (const auto& [s, e] : rec.states) {
    malformed += s == ClientState::waiting && e == mqtt_errc::malformed_packet ? 1 : 0;
  }
  EXPECT_EQ(malformed, 3) << "each bad connection reported as malformed_packet";
  c.stop();
  run_until([&] { return c.state() == ClientState::stopped; }, 3000);
}

TEST_P(MqttClient, ReconnectsWithBackoffUntilTheBrokerAppears) {
  Broker b(exe_);  // configured (its port chosen) but not started yet
  Client c(*loop_, config("weft-backoff"));
  Rec rec;
  rec.attach(c);
  ASSERT_TRUE(c.start(platform::Address::loopback_v4(static_cast<std::uint16_t>(b.port()))));
  std::vector<std::uint32_t> delays;
  run_until(
      [&] {
        if (delays.size() < c.stats().connect_failed) {
          delays.push_back(c.stats().last_delay_ms);
        }
        return c.stats().connect_failed >= 6;
      },
      10000);
  ASSERT_GE(c.stats().connect_failed, 6u);
  // Full jitter under the ceiling: attempt n waits at most min(400, 50 * 2^n) ms.
  for (std::size_t n = 0; n < delays.size(); ++n) {
    EXPECT_LE(delays[n], std::min<std::uint32_t>(400, 50u << std::min<std::size_t>(n, 10)))
        << "attempt " << n;
  }
  EXPECT_GE(rec.count(ClientState::waiting), 6);
  EXPECT_EQ(rec.states[1].second, std::errc::connection_refused);
  ASSERT_TRUE(b.start()) << b.log();
  ASSERT_TRUE(run_until([&] { return c.state() == ClientState::connected; }, 5000));
  // A CONNACK resets the backoff: the next loss waits at most base_ms.
  b.stop();
  ASSERT_TRUE(run_until([&] { return c.state() == ClientState::waiting; }, 5000));
  EXPECT_LE(c.stats().last_delay_ms, 50u);
}

TEST_P(MqttClient, KeepAlivePingsAndDetectsADeadBroker) {
  // mosquitto answers PINGREQ: the connection lives across several keep-alive periods.
  Broker b(exe_);
  ASSERT_TRUE(b.start()) << b.log();
  ClientConfig cc = config("weft-ka");
  cc.session.keep_alive_s = 1;
  cc.session.ping_timeout_ms = 500;
  Client live(*loop_, cc);
  ASSERT_TRUE(live.start(platform::Address::loopback_v4(static_cast<std::uint16_t>(b.port()))));
  ASSERT_TRUE(run_until([&] { return live.state() == ClientState::connected; }, 5000));
  run_until([&] { return live.session().stats().pings >= 2; }, 5000);
  EXPECT_GE(live.session().stats().pings, 2u);
  EXPECT_EQ(live.state(), ClientState::connected);
  EXPECT_EQ(live.stats().disconnects, 0u);
  live.stop();
  run_until([&] { return live.state() == ClientState::stopped; }, 3000);

  // A broker that never answers PINGREQ: dead after keep-alive + ping timeout, reconnected.
  FakeBroker fake({kConnack, kConnack});
  Client c(*loop_, cc);
  Rec rec;
  rec.attach(c);
  ASSERT_TRUE(c.start(fake.address()));
  ASSERT_TRUE(run_until([&] { return c.state() == ClientState::connected; }, 5000));
  const std::uint64_t t0 = now_ms();
  ASSERT_TRUE(run_until([&] { return c.state() == ClientState::waiting; }, 5000));
  const std::uint64_t dead_after = now_ms() - t0;
  EXPECT_GE(dead_after, 1000u);  // keep-alive 1 s, then 0.5 s for the PINGRESP
  EXPECT_LE(dead_after, 3000u);
  EXPECT_GE(fake.pings.load(), 1);
  EXPECT_EQ(rec.states.back().second, mqtt_errc::keep_alive_timeout);
  EXPECT_TRUE(run_until([&] { return c.state() == ClientState::connected; }, 5000));
  EXPECT_EQ(c.stats().connected, 2u);
  c.stop();
  run_until([&] { return c.state() == ClientState::stopped; }, 3000);
}

TEST_P(MqttClient, StopDuringConnectStops) {
  FakeBroker fake({kConnack});
  Client c(*loop_, config("weft-stop"));
  ASSERT_TRUE(c.start(fake.address()));
  c.stop();  // the TCP connect is in flight
  EXPECT_TRUE(run_until([&] { return c.state() == ClientState::stopped; }, 3000))
      << to_string(c.state());
  run_until([] { return false; }, 200);
  EXPECT_EQ(c.state(), ClientState::stopped);
  EXPECT_EQ(c.stats().connected, 0u);
  // And it can start again.
  FakeBroker fake2({kConnack});
  ASSERT_TRUE(c.start(fake2.address()));
  EXPECT_TRUE(run_until([&] { return c.state() == ClientState::connected; }, 5000));
  c.stop();
  run_until([&] { return c.state() == ClientState::stopped; }, 3000);
}

TEST_P(MqttClient, UnixSocketBroker) {
  const std::string path = "/tmp/weft-mqtt-fake-" + std::to_string(::getpid()) + ".sock";
  FakeBroker fake({kConnack}, path);
  Client c(*loop_, config("weft-unix"));
  ASSERT_TRUE(c.start(fake.address()));
  ASSERT_TRUE(run_until([&] { return c.state() == ClientState::connected; }, 5000));
  ASSERT_TRUE(c.publish("a/b", text("over a unix socket"), 0));
  EXPECT_TRUE(run_until([&] { return fake.publishes.load() >= 1; }, 5000));
  c.stop();
  run_until([&] { return c.state() == ClientState::stopped; }, 3000);
  ::unlink(path.c_str());
}

// ---- Bridge ---------------------------------------------------------------------------

TEST(MqttBridgeConfig, ParsesTheTextFormat) {
  auto c = parse_bridge_config(
      "# fleet bridge\n"
      "device d7\n"
      "queue refuse_new\n"
      "\n"
      "out local/# fleet/{device}/local/# qos0 retain\n"
      "  in fleet/{device}/cmd/# cmd/# qos1\n"
      "out demo fleet/{device}/demo\n");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->device_id, "d7");
  EXPECT_EQ(c->policy, QueuePolicy::refuse_new);
  ASSERT_EQ(c->rules.size(), 3u);
  EXPECT_EQ(c->rules[0].dir, Direction::out);
  EXPECT_EQ(c->rules[0].qos, 0);
  EXPECT_TRUE(c->rules[0].retain);
  EXPECT_EQ(c->rules[1].dir, Direction::in);
  EXPECT_EQ(c->rules[1].from, "fleet/{device}/cmd/#");
  EXPECT_EQ(c->rules[1].to, "cmd/#");
  EXPECT_EQ(c->rules[2].qos, 1);  // the default
}

TEST(MqttBridgeConfig, RefusesBadLines) {
  for (const char* bad : {"sideways a b", "out local/# fleet/x",  // "#" on one side only
                          "out local/# fleet/#/x", "in a b qos2", "queue sometimes", "device",
                          "device a b", "in a b retain", "out a"}) {
    EXPECT_FALSE(parse_bridge_config(bad).ok()) << bad;
  }
}

struct LocalRec {
  Bridge* bridge = nullptr;
  bool echo = false;  // publish every delivery locally again, through the bridge
  std::vector<std::string> got;
  int echo_refused = 0;
  static void deliver(void* ctx, std::string_view topic, std::span<const std::byte> p) noexcept {
    auto& r = *static_cast<LocalRec*>(ctx);
    r.got.push_back(std::string(topic) + " " +
                    std::string(reinterpret_cast<const char*>(p.data()), p.size()));
    if (r.echo) {
      auto sent = r.bridge->local(topic, p);
      r.echo_refused += sent && !sent.value() ? 1 : 0;
    }
  }
};

TEST_P(MqttClient, BridgeMapsBothWaysAndDoesNotEcho) {
  Broker b(exe_);
  ASSERT_TRUE(b.start()) << b.log();
  BridgeConfig bc = default_bridge_config();
  // A rule that would send commands delivered locally straight back out (a loop).
  bc.rules.push_back({Direction::out, "cmd/#", "fleet/{device}/cmd/#", 1, false});
  ClientConfig cc = config("weft-bridge");
  apply(bc, cc.session);
  Client c(*loop_, cc);
  Bridge br(c, bc, "d1");
  LocalRec local;
  local.bridge = &br;
  local.echo = true;
  br.on_local(&LocalRec::deliver, &local);
  ASSERT_TRUE(br.start());
  ASSERT_TRUE(c.start(platform::Address::loopback_v4(static_cast<std::uint16_t>(b.port()))));
  ASSERT_TRUE(run_until([&] { return c.state() == ClientState::connected; }, 5000));

  // Out: local/temp -> fleet/d1/local/temp; unmapped topics stay home.
  Sub sub(sub_, b, "fleet/d1/#", 1000);
  bool seen = false;
  const std::uint64_t end = now_ms() + 15000;
  while (!seen && now_ms() < end) {
    auto r = br.local("local/temp", text("21.5"));
    ASSERT_TRUE(r);
    EXPECT_TRUE(r.value());
    auto u = br.local("private/x", text("no"));
    ASSERT_TRUE(u);
    EXPECT_FALSE(u.value());
    run_until([] { return false; }, 100);
    seen = sub.read().find("fleet/d1/local/temp 21.5") != std::string::npos;
  }
  ASSERT_TRUE(seen) << sub.got;
  EXPECT_EQ(sub.got.find("private"), std::string::npos);

  // In: fleet/d1/cmd/reboot -> cmd/reboot locally; another device's command is not ours.
  const std::uint64_t out_before = br.stats().out;
  const std::uint64_t end2 = now_ms() + 10000;
  while (local.got.empty() && now_ms() < end2) {
    for (const char* t : {"fleet/d2/cmd/reboot", "fleet/d1/cmd/reboot"}) {
      const pid_t p = spawn({pub_, "-h", "127.0.0.1", "-p", std::to_string(b.port()), "-t", t, "-q",
                             "1", "-m", "now"},
                            -1, b.dir() + "/pub.log");
      reap(p, 3000);
    }
    run_until([&] { return !local.got.empty(); }, 500);
  }
  ASSERT_FALSE(local.got.empty());
  EXPECT_EQ(local.got[0], "cmd/reboot now");
  // Loop prevention: the local echo of an inbound command was not published back.
  EXPECT_GE(local.echo_refused, 1);
  EXPECT_EQ(br.stats().echo_suppressed, static_cast<std::uint64_t>(local.echo_refused));
  EXPECT_EQ(br.stats().out, out_before) << "a command was published back to the broker";
  EXPECT_GE(br.stats().in_unmapped, 0u);
  // ... while a genuinely local publish on the same topic still goes out.
  auto again = br.local("cmd/reboot", text("local-origin"));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again.value());
}

TEST_P(MqttClient, BridgeQueuesQos1WhileTheBrokerIsAwayBoundedAndInOrder) {
  Broker b(exe_);
  ASSERT_TRUE(b.start()) << b.log();
  const auto addr = platform::Address::loopback_v4(static_cast<std::uint16_t>(b.port()));
  // An observer with a persistent session: its subscription survives the broker's restart.
  ClientConfig oc = config("weft-bq-obs", Version::v5);
  oc.session.clean_start = false;
  oc.session.session_expiry_s = 3600;
  Client obs(*loop_, oc);
  Rec orec;
  orec.attach(obs);
  ASSERT_TRUE(obs.subscribe("fleet/q1/#", 1));
  ASSERT_TRUE(obs.start(addr));
  ASSERT_TRUE(run_until(
      [&] { return obs.state() == ClientState::connected && obs.session().inflight() == 0; },
      5000));
  run_until([] { return false; }, 200);  // the SUBACK
  b.stop();
  ASSERT_TRUE(run_until([&] { return obs.state() == ClientState::waiting; }, 3000));

  // The bridge's client starts while the broker is away: QoS 1 queues (4 slots), QoS 0 is
  // refused, a fifth QoS 1 is refused (would_block) and counted.
  auto bc = parse_bridge_config(
      "queue refuse_new\n"
      "out local/# fleet/{device}/local/# qos1\n"
      "out fast/# fleet/{device}/fast/# qos0\n");
  ASSERT_TRUE(bc);
  ClientConfig cc = config("weft-bq");
  cc.session.queue_slots = 4;
  apply(bc.value(), cc.session);
  Client c(*loop_, cc);
  Bridge br(c, bc.value(), "q1");
  ASSERT_TRUE(br.start());
  ASSERT_TRUE(c.start(addr));
  run_until([&] { return c.state() == ClientState::waiting; }, 2000);
  for (int i = 0; i < 4; ++i) {
    auto r = br.local("local/seq", text(std::to_string(i)));
    ASSERT_TRUE(r) << i << ": " << r.error().message();
    EXPECT_TRUE(r.value());
  }
  auto full = br.local("local/seq", text("4"));
  EXPECT_EQ(full.error(), mqtt_errc::would_block);
  auto q0 = br.local("fast/x", text("dropped"));
  EXPECT_EQ(q0.error(), mqtt_errc::not_connected);
  EXPECT_EQ(br.stats().out, 4u);
  EXPECT_EQ(br.stats().out_dropped, 2u);
  EXPECT_EQ(c.session().queued(), 4u);

  // The broker comes back: the four arrive, in publish order.
  ASSERT_TRUE(b.start()) << b.log();
  ASSERT_TRUE(run_until([&] { return orec.msgs.size() >= 4; }, 10000))
      << "observer got " << orec.msgs.size() << "; broker log:\n"
      << b.log();
  run_until([&] { return c.session().queued() == 0; }, 3000);
  EXPECT_EQ(c.session().queued(), 0u);
  ASSERT_EQ(orec.msgs.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(orec.msgs[static_cast<std::size_t>(i)],
              "fleet/q1/local/seq " + std::to_string(i) + " q1");
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, MqttClient,
                         ::testing::Values(BackendKind::epoll, BackendKind::uring),
                         test::BackendName());

}  // namespace
}  // namespace weft::mqtt
