// weft-pubsub-bench: pub/sub fan-out over the binary protocol (issue #14). One process: a
// platform::Runtime serving weft::msg::Server with a pubsub::Hub (msg::HubTopics), and, on the
// main thread, one client thread holding --subs subscriber connections and one publisher
// connection on 127.0.0.1 (plain non-blocking sockets + epoll, frames built with
// weft::msg::encode). Every subscriber sends HELLO, then SUBSCRIBE "bench" and a PING: the
// PONG says the subscription is in place. The publisher sends PUBLISH frames with a 64-byte
// payload whose first 8 bytes are the send time (CLOCK_MONOTONIC ns), closed loop: at most
// --window events outstanding (published but not yet received by every subscriber, drops
// counted as received); when nothing arrives for 200 ms the outstanding ones are written off.
//
//   weft-pubsub-bench [--subs N] [--workers N] [--cpus LIST] [--backend auto|uring|epoll]
//                     [--duration S] [--warmup S] [--window N]
//
// Reports events published, events delivered (total and per worker per second), the hub's
// drops, publish-to-receive latency over every delivery of an event published in the measured
// window (receive time: the client's clock after the read() that brought the frame), and CPU:
// the process's (getrusage) minus the client thread's (CLOCK_THREAD_CPUTIME_ID) is the server's.
// The client shares the machine's cores with the server: on a small machine it is part of
// what is measured.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <weft/msg/frame.h>
#include <weft/msg/pubsub_topics.h>
#include <weft/msg/server.h>
#include <weft/platform/runtime.h>
#include <weft/pubsub/hub.h>

#include "load_common.h"
#include "msg_bench.h"

namespace {

using weft::bench::mono_ns;

constexpr std::size_t kPayload = 64;
constexpr std::size_t kConnBuf = 8192;  // per subscriber: carry of a partial frame + one read
constexpr char kTopic[] = "bench";

std::span<const std::byte> topic_bytes() {
  return {reinterpret_cast<const std::byte*>(kTopic), sizeof kTopic - 1};
}

void usage() {
  std::fprintf(stderr,
               "usage: weft-pubsub-bench [--subs N] [--workers N] [--cpus LIST]\n"
               "                         [--backend auto|uring|epoll] [--duration S]\n"
               "                         [--warmup S] [--window N]\n");
}

std::uint64_t thread_cpu_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t load_u64(const std::byte* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::uint32_t be32(const std::byte* p) {
  return (std::to_integer<std::uint32_t>(p[0]) << 24) |
         (std::to_integer<std::uint32_t>(p[1]) << 16) |
         (std::to_integer<std::uint32_t>(p[2]) << 8) | std::to_integer<std::uint32_t>(p[3]);
}

// Encodes f and writes it whole on a blocking-ish socket (bounded: 1 s of EAGAIN).
bool send_frame(int fd, const weft::msg::Frame& f) {
  std::byte buf[512];
  auto n = weft::msg::encode(f, buf);
  if (!n) {
    return false;
  }
  std::size_t off = 0;
  const std::uint64_t until = mono_ns() + 1'000'000'000ull;
  while (off < *n) {
    const ssize_t w = ::send(fd, buf + off, *n - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += static_cast<std::size_t>(w);
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR) && mono_ns() < until) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

int connect_loopback(const sockaddr_in& sa) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// One subscriber connection: its socket and the bytes of a frame not yet complete.
struct Sub {
  int fd = -1;
  std::size_t have = 0;
  int stage = 0;  // 0: awaiting HELLO_ACK, 1: awaiting PONG, 2: subscribed
  std::unique_ptr<std::byte[]> buf{new std::byte[kConnBuf]};
};

// What the client counts.
struct Counts {
  std::uint64_t events = 0;            // EVENT frames received (all)
  std::uint64_t in_window = 0;         // ... of events published in the measured window
  std::uint64_t other_frames = 0;      // ERROR or anything unexpected
  std::uint64_t bad = 0;               // frames that did not parse / oversize / closed
  std::uint64_t window_start = ~0ull;  // send-time bounds of the measured window
  std::uint64_t window_end = ~0ull;
};

// Reads what s has (until a short read); handles complete frames. False when the connection is
// gone.
bool pump(Sub& s, Counts& c, weft::bench::Histogram& h) {
  for (int rounds = 0; rounds < 64; ++rounds) {
    const std::size_t room = kConnBuf - s.have;
    const ssize_t r = ::recv(s.fd, s.buf.get() + s.have, room, 0);
    if (r == 0) {
      return false;
    }
    if (r < 0) {
      return errno == EAGAIN || errno == EINTR;
    }
    const std::uint64_t now = mono_ns();
    s.have += static_cast<std::size_t>(r);
    std::size_t off = 0;
    while (s.have - off >= weft::msg::kPrefixSize) {
      const std::uint32_t len = be32(s.buf.get() + off);
      if (len + weft::msg::kPrefixSize > kConnBuf) {
        ++c.bad;
        return false;
      }
      if (s.have - off < weft::msg::kPrefixSize + len) {
        break;
      }
      auto f = weft::msg::parse({s.buf.get() + off + weft::msg::kPrefixSize, len});
      off += weft::msg::kPrefixSize + len;
      if (!f) {
        ++c.bad;
        return false;
      }
      switch (f->type) {
        case weft::msg::FrameType::event: {
          ++c.events;
          if (f->payload.size() >= 8) {
            const std::uint64_t sent = load_u64(f->payload.data());
            if (sent >= c.window_start && sent < c.window_end) {
              ++c.in_window;
              h.add(now > sent ? now - sent : 0);
            }
          }
          break;
        }
        case weft::msg::FrameType::hello_ack:
          if (s.stage == 0) {
            s.stage = 1;
          }
          break;
        case weft::msg::FrameType::pong:
          if (s.stage == 1) {
            s.stage = 2;
          }
          break;
        default:
          ++c.other_frames;
          break;
      }
    }
    if (off != 0) {
      std::memmove(s.buf.get(), s.buf.get() + off, s.have - off);
      s.have -= off;
    }
    if (static_cast<std::size_t>(r) < room) {
      break;  // drained for now; epoll is level-triggered (saves the recv that says EAGAIN)
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace weft;
  platform::Config cfg;
  std::uint32_t subs = 1000;
  std::uint32_t window = 8;
  double duration = 5;
  double warmup = 1;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (!std::strcmp(a, "-h") || !std::strcmp(a, "--help")) {
      usage();
      return 0;
    }
    const char* v = i + 1 < argc ? argv[++i] : nullptr;
    std::uint64_t u = 0;
    bool ok = v != nullptr;
    if (!ok) {
    } else if (!std::strcmp(a, "--subs")) {
      ok = bench::parse_u64(v, u) && u > 0 && u <= 20000;
      subs = static_cast<std::uint32_t>(u);
    } else if (!std::strcmp(a, "--workers")) {
      ok = bench::parse_u64(v, u) && u > 0 && u <= 64;
      cfg.workers = static_cast<std::uint32_t>(u);
    } else if (!std::strcmp(a, "--cpus")) {
      cfg.cpus = v;
    } else if (!std::strcmp(a, "--backend")) {
      ok = bench::parse_backend(v, cfg.backend);
    } else if (!std::strcmp(a, "--duration")) {
      ok = bench::parse_double(v, duration) && duration > 0 && duration <= 60;
    } else if (!std::strcmp(a, "--warmup")) {
      ok = bench::parse_double(v, warmup) && warmup <= 10;
    } else if (!std::strcmp(a, "--window")) {
      ok = bench::parse_u64(v, u) && u > 0 && u <= 256;
      window = static_cast<std::uint32_t>(u);
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "weft-pubsub-bench: bad argument: %s%s%s\n", a, v ? " " : "",
                   v ? v : "");
      usage();
      return 2;
    }
  }

  // ---- server -----------------------------------------------------------------------------
  // Round-robin accept: subscriber k is served by worker k mod workers, the publisher by the
  // next one. Every limit sized so that a window of events to every subscriber fits.
  cfg.accept_mode = platform::AcceptMode::round_robin;
  cfg.max_connections = subs + 64;  // per worker; round robin needs subs / workers
  cfg.listen_backlog = 4096;
  cfg.shared_buffers = 4 * window + 64;  // one per event in flight (a few in flight per post)
  cfg.shared_buffer_size = 512;          // an 83-byte EVENT frame plus the hub's header
  cfg.max_out_iov = 2 * window + 16;     // events queued per subscriber per loop iteration
  cfg.idle_timeout_ms = 0;
  pubsub::Limits limits;
  limits.max_subscriptions = subs + 64;
  limits.max_topic_len = 16;
  limits.max_queued_bytes = 256 * 1024;
  pubsub::Hub hub;
  if (auto r = hub.init(limits, cfg); !r) {
    std::fprintf(stderr, "weft-pubsub-bench: hub init: %s\n", r.error().message().c_str());
    return 1;
  }
  msg::HubTopics topics(hub);
  if (auto r = topics.init(); !r) {
    std::fprintf(stderr, "weft-pubsub-bench: topics init: %s\n", r.error().message().c_str());
    return 1;
  }
  msg::Options opts;
  opts.topics = [&topics](platform::Loop& l) { return topics.attach(l); };
  msg::Server server(std::move(opts));
  platform::Runtime rt;
  auto addr = platform::Address::parse("127.0.0.1:0");
  if (!addr) {
    return 1;
  }
  std::vector<platform::Service> services;
  services.push_back(server.service(addr.value()));
  if (auto r = rt.start(cfg, std::move(services)); !r) {
    std::fprintf(stderr, "weft-pubsub-bench: cannot start: %s\n", r.error().message().c_str());
    return 1;
  }
  const platform::Address& local = rt.local_address(0);
  sockaddr_in sa{};
  std::memcpy(&sa, local.sockaddr_ptr(), sizeof sa);
  if (sa.sin_family != AF_INET || (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
    std::fprintf(stderr, "weft-pubsub-bench: not a loopback listener\n");
    return 1;
  }
  std::printf("weft-pubsub-bench: %u subscriber(s), %zu worker(s), %s, window %u, %.1f s\n", subs,
              rt.worker_count(), platform::to_string(rt.backend_kind()), window, duration);
  std::fflush(stdout);

  // ---- client: connect, HELLO, SUBSCRIBE + PING ---------------------------------------------
  int rc = 0;
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<Sub> conns(subs);
  Counts counts;
  bench::Histogram hist;
  msg::Hello hello;
  hello.max_frame = 16 * 1024;
  hello.max_inflight = 1;
  const std::byte opaque[8] = {};
  int pub = -1;
  std::vector<epoll_event> evs(1024);
  const auto stop_server = [&] {
    rt.stop();
    rt.wait();
  };
  const auto setup_round = [&](int want_stage, const char* what) {
    const std::uint64_t until = mono_ns() + 20'000'000'000ull;
    std::uint32_t done = 0;
    while (mono_ns() < until) {
      done = 0;
      for (auto& s : conns) {
        done += s.stage >= want_stage ? 1 : 0;
      }
      if (done == subs) {
        return true;
      }
      const int n = ::epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 10);
      for (int i = 0; i < n; ++i) {
        Sub& s = conns[evs[i].data.u32];
        if (!pump(s, counts, hist)) {
          std::fprintf(stderr, "weft-pubsub-bench: subscriber %u closed during %s\n",
                       evs[i].data.u32, what);
          return false;
        }
      }
    }
    std::fprintf(stderr, "weft-pubsub-bench: %s: %u of %u after 20 s\n", what, done, subs);
    return false;
  };
  for (std::uint32_t k = 0; k < subs; ++k) {
    conns[k].fd = connect_loopback(sa);
    if (conns[k].fd < 0) {
      std::fprintf(stderr, "weft-pubsub-bench: connect %u: %s\n", k, std::strerror(errno));
      stop_server();
      return 1;
    }
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u32 = k;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, conns[k].fd, &e);
    if (!send_frame(conns[k].fd, msg::make_hello(hello))) {
      std::fprintf(stderr, "weft-pubsub-bench: HELLO %u failed\n", k);
      stop_server();
      return 1;
    }
  }
  bool ok = setup_round(1, "HELLO");
  for (std::uint32_t k = 0; ok && k < subs; ++k) {
    ok = send_frame(conns[k].fd, msg::make_subscribe(topic_bytes())) &&
         send_frame(conns[k].fd, msg::make_ping(1, opaque));
  }
  ok = ok && setup_round(2, "SUBSCRIBE");
  if (ok) {
    pub = connect_loopback(sa);
    ok = pub >= 0 && send_frame(pub, msg::make_hello(hello));
    // The publisher's HELLO_ACK: read it (blocking briefly) so that PUBLISH follows the hello.
    std::byte ack[64];
    std::size_t got = 0;
    const std::uint64_t until = mono_ns() + 5'000'000'000ull;
    while (ok && got < msg::kPrefixSize + 8 + msg::kHelloBodySize && mono_ns() < until) {
      const ssize_t r = ::recv(pub, ack + got, sizeof ack - got, 0);
      if (r > 0) {
        got += static_cast<std::size_t>(r);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        ok = false;
      }
    }
    ok = ok && got == msg::kPrefixSize + 8 + msg::kHelloBodySize &&
         ack[msg::kPrefixSize] == std::byte{static_cast<unsigned char>(msg::FrameType::hello_ack)};
  }
  if (!ok) {
    std::fprintf(stderr, "weft-pubsub-bench: setup failed\n");
    stop_server();
    return 1;
  }

  // ---- run: warm-up, then the measured window --------------------------------------------
  const std::uint64_t t_begin = mono_ns();
  const std::uint64_t t0 = t_begin + static_cast<std::uint64_t>(warmup * 1e9);
  const std::uint64_t t1 = t0 + static_cast<std::uint64_t>(duration * 1e9);
  counts.window_start = t0;
  counts.window_end = t1;
  std::uint64_t published = 0;      // PUBLISH frames sent (all)
  std::uint64_t published_win = 0;  // ... in the measured window
  std::uint64_t publish_fail = 0;
  std::uint64_t written_off = 0;  // deliveries given up on after a stall
  std::uint64_t last_progress = t_begin;
  std::uint64_t last_events = 0;
  pubsub::HubStats h0;
  std::vector<pubsub::HubStats> w0(rt.worker_count());
  std::uint64_t cpu0_self = 0;
  std::uint64_t cpu0_client = 0;
  bool sampled0 = false;
  std::uint64_t closed = 0;
  std::byte payload[kPayload] = {};
  const std::uint64_t n = subs;
  for (;;) {
    const std::uint64_t now = mono_ns();
    if (!sampled0 && now >= t0) {
      sampled0 = true;
      h0 = hub.total();
      for (std::size_t w = 0; w < w0.size(); ++w) {
        w0[w] = hub.stats(static_cast<std::uint32_t>(w));
      }
      cpu0_self = bench::self_cpu_ns();
      cpu0_client = thread_cpu_ns();
    }
    if (now >= t1) {
      break;
    }
    // Outstanding deliveries: every publish owes one per subscriber, minus what arrived,
    // what the hub dropped, and what was written off.
    const pubsub::HubStats hs = hub.total();
    const std::uint64_t settled = counts.events + hs.dropped + written_off + n * hs.no_buffers;
    const std::uint64_t owed = published * n > settled ? published * n - settled : 0;
    if (counts.events != last_events) {
      last_events = counts.events;
      last_progress = now;
    } else if (owed != 0 && now - last_progress > 200'000'000ull) {
      written_off += owed;  // a stall: give up on them (reported)
      last_progress = now;
      continue;
    }
    if (owed + n <= static_cast<std::uint64_t>(window) * n) {  // the new event fits
      std::memcpy(payload, &now, sizeof now);
      std::memcpy(payload + 8, &published, sizeof published);
      if (send_frame(pub, msg::make_publish(topic_bytes(), payload))) {
        ++published;
        published_win += (now >= t0 ? 1 : 0);
      } else {
        ++publish_fail;
        break;
      }
      continue;  // another one if it fits, else read
    }
    const int k = ::epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 1);
    for (int i = 0; i < k; ++i) {
      Sub& s = conns[evs[i].data.u32];
      if (s.fd >= 0 && !pump(s, counts, hist)) {
        ::epoll_ctl(ep, EPOLL_CTL_DEL, s.fd, nullptr);
        ::close(s.fd);
        s.fd = -1;
        ++closed;
      }
    }
  }
  const std::uint64_t cpu1_self = bench::self_cpu_ns();
  const std::uint64_t cpu1_client = thread_cpu_ns();
  const std::uint64_t t_end = mono_ns();
  const pubsub::HubStats h1 = hub.total();
  std::vector<pubsub::HubStats> w1(rt.worker_count());
  for (std::size_t w = 0; w < w1.size(); ++w) {
    w1[w] = hub.stats(static_cast<std::uint32_t>(w));
  }
  // Drain: the window's late deliveries still count (bounded: 2 s or nothing owed).
  {
    const std::uint64_t until = mono_ns() + 2'000'000'000ull;
    while (mono_ns() < until) {
      const pubsub::HubStats hs = hub.total();
      if (counts.events + hs.dropped + written_off + n * hs.no_buffers >= published * n) {
        break;
      }
      const int k = ::epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 10);
      for (int i = 0; i < k; ++i) {
        Sub& s = conns[evs[i].data.u32];
        if (s.fd >= 0 && !pump(s, counts, hist)) {
          ::epoll_ctl(ep, EPOLL_CTL_DEL, s.fd, nullptr);
          ::close(s.fd);
          s.fd = -1;
          ++closed;
        }
      }
    }
  }

  // ---- report --------------------------------------------------------------------------------
  const double secs = static_cast<double>(t_end - t0) / 1e9;
  const double workers = static_cast<double>(rt.worker_count());
  const double delivered_hub = static_cast<double>(h1.delivered - h0.delivered);
  const double server_cpu =
      static_cast<double>((cpu1_self - cpu0_self) - (cpu1_client - cpu0_client)) / 1e9;
  const double client_cpu = static_cast<double>(cpu1_client - cpu0_client) / 1e9;
  std::printf(
      "window %.2f s: published %llu (%.0f/s), received in window %llu (%.0f/s, %.0f/s "
      "per worker), expected %llu\n",
      secs, static_cast<unsigned long long>(published_win),
      static_cast<double>(published_win) / secs, static_cast<unsigned long long>(counts.in_window),
      static_cast<double>(counts.in_window) / secs,
      static_cast<double>(counts.in_window) / secs / workers,
      static_cast<unsigned long long>(published_win * n));
  std::printf(
      "hub: delivered %.0f in window (%.0f/s, %.0f/s per worker); all run: delivered %llu, "
      "dropped %llu, no_buffers %llu, posts_failed %llu, publish_failed %llu\n",
      delivered_hub, delivered_hub / secs, delivered_hub / secs / workers,
      static_cast<unsigned long long>(h1.delivered), static_cast<unsigned long long>(h1.dropped),
      static_cast<unsigned long long>(h1.no_buffers),
      static_cast<unsigned long long>(h1.posts_failed),
      static_cast<unsigned long long>(h1.publish_failed));
  for (std::size_t w = 0; w < w1.size(); ++w) {
    std::printf("  worker %zu: delivered %.0f/s, dropped %llu\n", w,
                static_cast<double>(w1[w].delivered - w0[w].delivered) / secs,
                static_cast<unsigned long long>(w1[w].dropped - w0[w].dropped));
  }
  std::printf(
      "latency publish->receive (us): p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f "
      "(%llu samples)\n",
      hist.quantile(0.5) / 1e3, hist.quantile(0.9) / 1e3, hist.quantile(0.99) / 1e3,
      hist.quantile(0.999) / 1e3, static_cast<double>(hist.max()) / 1e3,
      static_cast<unsigned long long>(hist.total()));
  std::printf(
      "cpu in window: server %.2f s (%.2f cores, %.0f ns per delivery), client thread "
      "%.2f s (%.2f cores)\n",
      server_cpu, server_cpu / secs, delivered_hub > 0 ? server_cpu * 1e9 / delivered_hub : 0.0,
      client_cpu, client_cpu / secs);
  std::printf(
      "client: written off after stalls %llu, other frames %llu, bad %llu, closed %llu, "
      "publish send failures %llu\n",
      static_cast<unsigned long long>(written_off),
      static_cast<unsigned long long>(counts.other_frames),
      static_cast<unsigned long long>(counts.bad), static_cast<unsigned long long>(closed),
      static_cast<unsigned long long>(publish_fail));
  if (counts.bad != 0 || closed != 0 || publish_fail != 0 || published_win == 0) {
    rc = 1;
  }
  for (auto& s : conns) {
    if (s.fd >= 0) {
      ::close(s.fd);
    }
  }
  if (pub >= 0) {
    ::close(pub);
  }
  ::close(ep);
  stop_server();
  return rc;
}
