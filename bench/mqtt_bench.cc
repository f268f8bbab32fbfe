// weft-mqtt-bench: messages per second from the loop Client (weft::mqtt_client) through a
// broker (mosquitto on loopback: bench/run_mqtt_bench.sh starts one) and back to a second
// Client subscribed to the topic, both on one Loop on the calling thread. Bounded by
// --seconds and --count.
//
//   weft-mqtt-bench --broker 127.0.0.1:1883 [--qos 0|1] [--seconds S] [--count N]
//                   [--payload BYTES] [--window N] [--v5] [--backend auto|uring|epoll]
//
// QoS 0: the publisher keeps at most --window messages published and not yet received by
// the subscriber (the broker would otherwise buffer without bound); QoS 1: the Session's
// inflight window (--window, capped by the broker's Receive Maximum) paces it, and both
// directions are acknowledged. Prints one line: delivered messages per second (received by
// the subscriber), and for QoS 1 the publisher's acknowledged per second.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <weft/mqtt/client.h>
#include <weft/platform/loop.h>

namespace {

using namespace weft;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string broker = "127.0.0.1:1883";
  int qos = 0;
  double seconds = 5;
  std::uint64_t count = 2'000'000;
  std::size_t payload = 64;
  std::uint32_t window = 256;
  bool v5 = false;
  platform::BackendKind backend = platform::BackendKind::automatic;
};

struct Counter {
  std::uint64_t n = 0;
  static void on_msg(void* c, const mqtt::Message&) noexcept { ++static_cast<Counter*>(c)->n; }
  static void on_ack(void* c, std::uint16_t) noexcept { ++static_cast<Counter*>(c)->n; }
};

bool parse(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (k == "--v5") {
      a.v5 = true;
      continue;
    }
    if (v == nullptr) {
      return false;
    }
    ++i;
    if (k == "--broker") {
      a.broker = v;
    } else if (k == "--qos") {
      a.qos = std::atoi(v);
    } else if (k == "--seconds") {
      a.seconds = std::atof(v);
    } else if (k == "--count") {
      a.count = std::strtoull(v, nullptr, 10);
    } else if (k == "--payload") {
      a.payload = std::strtoul(v, nullptr, 10);
    } else if (k == "--window") {
      a.window = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10));
    } else if (k == "--backend") {
      a.backend = std::strcmp(v, "uring") == 0   ? platform::BackendKind::uring
                  : std::strcmp(v, "epoll") == 0 ? platform::BackendKind::epoll
                                                 : platform::BackendKind::automatic;
    } else {
      return false;
    }
  }
  return (a.qos == 0 || a.qos == 1) && a.payload <= 4096 && a.window >= 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, a)) {
    std::fprintf(stderr,
                 "usage: weft-mqtt-bench --broker HOST:PORT [--qos 0|1] [--seconds S] "
                 "[--count N] [--payload BYTES<=4096] [--window N] [--v5] [--backend B]\n");
    return 2;
  }
  auto addr = platform::Address::parse(a.broker);
  if (!addr) {
    std::fprintf(stderr, "weft-mqtt-bench: bad address %s\n", a.broker.c_str());
    return 2;
  }
  platform::Config cfg;
  cfg.backend = a.backend;
  cfg.max_connections = 4;
  cfg.recv_buffers = 256;
  cfg.send_buffers = 256;
  cfg.buffer_size = 16 * 1024;
  auto loop = platform::Loop::create(cfg, 0);
  if (!loop) {
    std::fprintf(stderr, "weft-mqtt-bench: loop: %s\n", loop.error().message().c_str());
    return 1;
  }
  platform::Loop& l = *loop.value();
  auto config = [&](const char* id) {
    mqtt::ClientConfig c;
    c.session.version = a.v5 ? mqtt::Version::v5 : mqtt::Version::v311;
    c.session.client_id = id;
    c.session.queue_slots = static_cast<std::uint16_t>(std::min<std::uint32_t>(a.window, 4096));
    c.session.max_message_bytes = static_cast<std::uint32_t>(a.payload + 64);
    c.session.max_inflight = static_cast<std::uint16_t>(std::min<std::uint32_t>(a.window, 65535));
    c.session.receive_maximum = 1024;
    c.max_queued_bytes = 256 * 1024;
    return c;
  };
  mqtt::Client pub(l, config("weft-bench-pub"));
  mqtt::Client sub(l, config("weft-bench-sub"));
  Counter got;
  Counter acked;
  sub.on_message(&Counter::on_msg, &got);
  pub.on_ack(&Counter::on_ack, &acked);
  if (!sub.subscribe("bench/t", static_cast<std::uint8_t>(a.qos)) || !sub.start(addr.value()) ||
      !pub.start(addr.value())) {
    std::fprintf(stderr, "weft-mqtt-bench: start failed\n");
    return 1;
  }
  const auto connect_end = Clock::now() + std::chrono::seconds(5);
  while ((pub.state() != mqtt::ClientState::connected ||
          sub.state() != mqtt::ClientState::connected || sub.session().inflight() != 0) &&
         Clock::now() < connect_end) {
    l.run_once(10);
  }
  // The SUBACK: a probe message must come back before timing starts.
  std::vector<std::byte> payload(a.payload, std::byte{'x'});
  while (got.n == 0 && Clock::now() < connect_end + std::chrono::seconds(5)) {
    (void)pub.publish("bench/t", payload, static_cast<std::uint8_t>(a.qos));
    for (int i = 0; i < 10; ++i) {
      l.run_once(5);
    }
  }
  if (got.n == 0) {
    std::fprintf(stderr, "weft-mqtt-bench: nothing came back from the broker\n");
    return 1;
  }
  l.run_once(50);
  const std::uint64_t got0 = got.n;
  const std::uint64_t acked0 = acked.n;
  std::uint64_t sent = 0;
  std::uint64_t refused = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(a.seconds);
  while (Clock::now() < end && got.n - got0 < a.count) {
    // Publish while the window allows (QoS 0: not yet received; QoS 1: the queue). Blocked:
    // wait for completions instead of spinning (the broker needs the other core).
    bool blocked = false;
    for (int burst = 0; burst < 64 && sent < a.count; ++burst) {
      if (a.qos == 0 && sent - (got.n - got0) >= a.window) {
        blocked = true;
        break;
      }
      if (!pub.publish("bench/t", payload, static_cast<std::uint8_t>(a.qos))) {
        ++refused;
        blocked = true;
        break;
      }
      ++sent;
    }
    l.run_once(blocked ? 5 : 0);
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const double rate = static_cast<double>(got.n - got0) / secs;
  std::printf(
      "qos%d payload %zu B %s: %.0f msgs/s delivered (%llu in %.2f s), %.0f acked/s, sent "
      "%llu, queue full %llu times\n",
      a.qos, a.payload, a.v5 ? "v5" : "v3.1.1", rate, static_cast<unsigned long long>(got.n - got0),
      secs, static_cast<double>(acked.n - acked0) / secs, static_cast<unsigned long long>(sent),
      static_cast<unsigned long long>(refused));
  pub.stop();
  sub.stop();
  const auto stop_end = Clock::now() + std::chrono::seconds(2);
  while ((pub.state() != mqtt::ClientState::stopped || sub.state() != mqtt::ClientState::stopped) &&
         Clock::now() < stop_end) {
    l.run_once(10);
  }
  return 0;
}
