// weft::mqtt::Session against a real broker: mosquitto, started here on a free loopback port,
// driven over a plain blocking socket (a small test driver, every wait bounded). Checks that a
// QoS 1 publish reaches `mosquitto_sub -C 1`, that `mosquitto_pub` reaches the Session's
// subscription, that the will is published when the connection drops without DISCONNECT
// (and not after one), and that killing and restarting the broker (persistence on, persistent
// sessions) under QoS 1 traffic loses no acknowledged message. mosquitto missing is a FAILURE:
// scripts/deps.sh installs it.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <weft/mqtt/codec.h>
#include <weft/mqtt/session.h>

#include "mosquitto.h"

namespace weft::mqtt {
namespace {

// The test driver: a Session over a blocking loopback socket.
struct Client {
  Session s;
  std::vector<std::byte> assembly = std::vector<std::byte>(64 * 1024);
  std::vector<std::byte> rbuf = std::vector<std::byte>(64 * 1024);
  std::vector<std::byte> wbuf = std::vector<std::byte>(64 * 1024);
  Decoder dec;
  int fd = -1;
  std::vector<std::string> messages;  // "topic payload"
  std::set<std::uint16_t> acked;
  int subacks = 0;

  explicit Client(const SessionConfig& c)
      : s(c), dec({.max_packet_size = 64 * 1024, .version = c.version}, assembly) {}
  ~Client() {
    if (fd >= 0) {
      ::close(fd);
    }
  }

  bool open(int port) {
    fd = tcp_connect(port);
    if (fd < 0) {
      return false;
    }
    dec.reset();
    return s.connect(now_ms()).ok();
  }
  void lost() {
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
    s.connection_lost(now_ms());
  }
  // Writes everything the Session has due. False when the socket failed.
  bool flush() {
    for (;;) {
      auto n = s.next_packet(wbuf, now_ms());
      if (!n.ok() || n.value() == 0) {
        return true;
      }
      if (::send(fd, wbuf.data(), n.value(), MSG_NOSIGNAL) != static_cast<ssize_t>(n.value())) {
        lost();
        return false;
      }
    }
  }
  // Writes what is due, then reads for up to `wait_ms`. False when the connection is gone.
  bool step(int wait_ms) {
    if (fd < 0) {
      return false;
    }
    const PollResult pr = s.poll(now_ms());
    if (pr.dead) {
      lost();
      return false;
    }
    if (!flush()) {
      return false;
    }
    if (s.state() == SessionState::disconnected) {
      lost();
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, wait_ms) <= 0) {
      return true;
    }
    const ssize_t r = ::recv(fd, rbuf.data(), rbuf.size(), 0);
    if (r <= 0) {
      lost();
      return false;
    }
    std::span<const std::byte> in(rbuf.data(), static_cast<std::size_t>(r));
    while (!in.empty()) {
      const Decoded d = dec.feed(in);
      in = in.subspan(d.consumed);
      if (d.state == DecodeState::error) {
        ADD_FAILURE() << "broker sent a bad packet: " << dec.error().message();
        lost();
        return false;
      }
      if (d.state != DecodeState::ready) {
        break;
      }
      auto ev = s.feed(dec.packet(), now_ms());
      if (ev.error() == mqtt_errc::would_block) {
        // 3.1.1 back-pressure: PUBACKs owed; write them and give the packet again.
        if (!flush()) {
          return false;
        }
        ev = s.feed(dec.packet(), now_ms());
      }
      if (!ev.ok()) {
        ADD_FAILURE() << "session refused a broker packet: " << ev.error().message();
        lost();
        return false;
      }
      if (ev->kind == EventKind::message) {
        const Publish& m = *ev->message;
        messages.push_back(
            std::string(m.topic) + " " +
            std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()));
      } else if (ev->kind == EventKind::published) {
        acked.insert(ev->packet_id);
      } else if (ev->kind == EventKind::subscribed) {
        ++subacks;
      }
    }
    return true;
  }
  // Steps until `done()` or `ms` pass.
  bool run_until(const std::function<bool()>& done, int ms) {
    const std::uint64_t end = now_ms() + static_cast<std::uint64_t>(ms);
    while (now_ms() < end) {
      if (done()) {
        return true;
      }
      if (!step(20) && fd < 0) {
        return done();
      }
    }
    return done();
  }
};

std::span<const std::byte> text(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

class MqttBroker : public ::testing::TestWithParam<Version> {
 protected:
  void SetUp() override {
    exe_ = find_exe("mosquitto");
    sub_ = find_exe("mosquitto_sub");
    pub_ = find_exe("mosquitto_pub");
    // Skip-free by design: the suite's dependencies are installed by scripts/deps.sh.
    ASSERT_FALSE(exe_.empty() || sub_.empty() || pub_.empty())
        << "mosquitto / mosquitto-clients not installed: run scripts/deps.sh (apt-get install "
           "mosquitto mosquitto-clients)";
  }
  SessionConfig config(const char* id) const {
    SessionConfig c;
    c.version = GetParam();
    c.client_id = id;
    c.keep_alive_s = 5;
    c.queue_slots = 256;
    c.max_inflight = 16;
    return c;
  }
  std::string exe_, sub_, pub_;
};

TEST_P(MqttBroker, Qos1PublishReachesMosquittoSub) {
  Broker b(exe_);
  ASSERT_TRUE(b.start()) << b.log();
  Client c(config("weft-pub"));
  ASSERT_TRUE(c.open(b.port()));
  ASSERT_TRUE(c.run_until([&] { return c.s.state() == SessionState::connected; }, 5000));
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t sub = spawn({sub_, "-h", "127.0.0.1", "-p", std::to_string(b.port()), "-t",
                           "weft/test", "-q", "1", "-C", "1", "-v", "-W", "20"},
                          pipefd[1], b.dir() + "/sub.log");
  ::close(pipefd[1]);
  // mosquitto_sub subscribes asynchronously: publish until it has printed one message.
  std::string got;
  std::set<std::uint16_t> ids;
  const std::uint64_t end = now_ms() + 15000;
  for (int i = 0; now_ms() < end && got.find('\n') == std::string::npos; ++i) {
    auto id = c.s.publish("weft/test", text("hello-" + std::to_string(i)), 1);
    ASSERT_TRUE(id.ok());
    ids.insert(id.value());
    c.run_until([] { return false; }, 200);
    pollfd p{pipefd[0], POLLIN, 0};
    while (::poll(&p, 1, 0) > 0) {
      char buf[256];
      const ssize_t n = ::read(pipefd[0], buf, sizeof buf);
      if (n <= 0) {
        break;
      }
      got.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(pipefd[0]);
  reap(sub, 5000);
  EXPECT_EQ(got.rfind("weft/test hello-", 0), 0u) << "mosquitto_sub printed: " << got;
  c.run_until([&] { return c.acked.size() == ids.size(); }, 3000);
  EXPECT_EQ(c.acked, ids) << "every QoS 1 publish acknowledged";
}

TEST_P(MqttBroker, MosquittoPubReachesTheSubscription) {
  Broker b(exe_);
  ASSERT_TRUE(b.start()) << b.log();
  Client c(config("weft-sub"));
  ASSERT_TRUE(c.open(b.port()));
  ASSERT_TRUE(c.s.subscribe("cmd/#", 1).ok());
  ASSERT_TRUE(c.run_until([&] { return c.subacks == 1; }, 5000)) << b.log();
  const pid_t pub = spawn({pub_, "-h", "127.0.0.1", "-p", std::to_string(b.port()), "-t",
                           "cmd/reboot", "-q", "1", "-m", "now"},
                          -1, b.dir() + "/pub.log");
  EXPECT_TRUE(reap(pub, 10000));
  ASSERT_TRUE(c.run_until([&] { return !c.messages.empty(); }, 5000)) << b.log();
  EXPECT_EQ(c.messages[0], "cmd/reboot now");
}

TEST_P(MqttBroker, RestartUnderQos1LosesNothingAcknowledged) {
  Broker b(exe_);
  ASSERT_TRUE(b.start()) << b.log();
  SessionConfig oc = config(GetParam() == Version::v5 ? "weft-obs5" : "weft-obs");
  SessionConfig pc = config(GetParam() == Version::v5 ? "weft-load5" : "weft-load");
  for (SessionConfig* c : {&oc, &pc}) {
    c->clean_start = false;            // persistent sessions survive the restart
    c->session_expiry_s = 0xFFFFFFFF;  // v5: never expire
  }
  Client obs(oc);
  Client pub(pc);
  ASSERT_TRUE(obs.open(b.port()) && pub.open(b.port()));
  ASSERT_TRUE(obs.s.subscribe("load/#", 1).ok());
  ASSERT_TRUE(obs.run_until([&] { return obs.subacks == 1; }, 5000)) << b.log();
  ASSERT_TRUE(pub.run_until([&] { return pub.s.state() == SessionState::connected; }, 5000));

  constexpr int kTotal = 300;
  std::vector<std::uint16_t> id_of(kTotal);
  int published = 0;
  bool restarted = false;
  bool obs_away = false;
  int acked_before_restart = 0;
  int reconnects = 0;
  Backoff backoff(50, 500, 7);
  const std::uint64_t end = now_ms() + 40000;
  auto all_acked = [&] { return published == kTotal && pub.s.queued() == 0; };
  while (now_ms() < end && !all_acked()) {
    // Keep the queue busy: QoS 1 traffic while the broker goes away and comes back.
    while (published < kTotal && pub.s.queued() < 64) {
      auto id = pub.s.publish("load/m", text(std::to_string(published)), 1);
      ASSERT_TRUE(id.ok()) << id.error().message();
      id_of[static_cast<std::size_t>(published++)] = id.value();
    }
    if (obs.fd >= 0 && !restarted && published >= kTotal / 3) {
      // The observer goes away: what the publisher gets acknowledged from now on waits in
      // the broker's queue for the observer's persistent session — through the restart.
      obs.lost();
      obs_away = true;
    }
    if (!restarted && published >= kTotal / 2) {
      acked_before_restart = static_cast<int>(pub.acked.size());
      b.stop();  // under traffic: messages in flight, unacknowledged
      restarted = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      ASSERT_TRUE(b.start()) << b.log();
    }
    for (Client* c : {&pub, &obs}) {
      if (c->fd < 0) {
        if (c == &obs && obs_away && !restarted) {
          continue;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(backoff.next()));
        if (c->open(b.port())) {
          backoff.reset();
          ++reconnects;
        }
      } else {
        c->step(5);
      }
    }
  }
  ASSERT_TRUE(restarted);
  EXPECT_TRUE(obs_away);
  EXPECT_GE(reconnects, 2) << "both clients reconnected after the restart";
  // Acknowledged while the observer was away, before the broker died: these survive only
  // through the broker's persistence of the observer's session.
  EXPECT_GT(acked_before_restart, kTotal / 3 - 64);
  ASSERT_TRUE(all_acked()) << "published " << published << ", queued " << pub.s.queued();
  // Every acknowledged message reaches the observer (at least once).
  auto have_all = [&] {
    std::set<std::string> seen(obs.messages.begin(), obs.messages.end());
    for (int i = 0; i < kTotal; ++i) {
      if (seen.count("load/m " + std::to_string(i)) == 0) {
        return false;
      }
    }
    return true;
  };
  obs.run_until(have_all, 15000);
  std::set<std::string> seen(obs.messages.begin(), obs.messages.end());
  int missing = 0;
  for (int i = 0; i < kTotal; ++i) {
    missing += seen.count("load/m " + std::to_string(i)) == 0 ? 1 : 0;
  }
  EXPECT_EQ(missing, 0) << "acknowledged messages lost across the broker restart; broker log:\n"
                        << b.log();
  EXPECT_GE(obs.messages.size(), static_cast<std::size_t>(kTotal));
}

// Runs mosquitto_sub to completion (-W bounds it) and returns what it printed.
std::string run_sub(const std::string& exe, const Broker& b, const std::string& topic, int wait_s) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) {
    return "<pipe failed>";
  }
  const pid_t pid = spawn({exe, "-h", "127.0.0.1", "-p", std::to_string(b.port()), "-t", topic,
                           "-C", "1", "-v", "-W", std::to_string(wait_s)},
                          pipefd[1], b.dir() + "/sub.log");
  ::close(pipefd[1]);
  std::string got;
  char buf[256];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) {
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipefd[0]);
  reap(pid, (wait_s + 5) * 1000);
  return got;
}

TEST_P(MqttBroker, WillIsPublishedOnAbruptCloseOnly) {
  Broker b(exe_);
  ASSERT_TRUE(b.start()) << b.log();
  const std::string payload = "gone";
  for (const bool graceful : {false, true}) {
    const std::string topic = graceful ? "weft/will-graceful" : "weft/will-abrupt";
    SessionConfig c = config(graceful ? "weft-will-g" : "weft-will-a");
    c.has_will = true;
    c.will.topic = topic;
    c.will.payload = text(payload);
    c.will.qos = 1;
    c.will.retain = true;  // mosquitto_sub sees it however late it subscribes
    Client cl(c);
    ASSERT_TRUE(cl.open(b.port()));
    ASSERT_TRUE(cl.run_until([&] { return cl.s.state() == SessionState::connected; }, 5000));
    if (graceful) {
      ASSERT_TRUE(cl.s.disconnect().ok());
      ASSERT_TRUE(cl.flush());
    }
    cl.lost();  // closes the socket: without DISCONNECT the broker publishes the will
    const std::string got = run_sub(sub_, b, topic, graceful ? 2 : 10);
    if (graceful) {
      EXPECT_EQ(got, "") << "a DISCONNECT discards the will";
    } else {
      EXPECT_EQ(got, topic + " gone\n");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, MqttBroker, ::testing::Values(Version::v311, Version::v5),
                         [](const auto& param_info) {
                           return param_info.param == Version::v5 ? std::string("v5")
                                                                  : std::string("v311");
                         });

}  // namespace
}  // namespace weft::mqtt
