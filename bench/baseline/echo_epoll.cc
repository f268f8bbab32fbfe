// weft-baseline-echo — the plain baseline that weft's echo server is measured against: a
// single-threaded, edge-triggered epoll server for the framed echo protocol (4-byte
// big-endian length + payload; every complete frame is written back unchanged, in order).
// No weft code: this is what a competent hand-written server looks like, nothing more.
//
//   weft-baseline-echo --port P [--host 127.0.0.1] [--max-frame BYTES]
//
// Per connection: a receive buffer (64 KiB, grown once for a frame that does not fit) and an
// output buffer for what the socket did not take. On a readable edge the connection is read
// until the kernel has nothing more (a short read or EAGAIN); every complete frame in the
// buffer goes out in one send() straight from the receive buffer, and the partial frame at
// the end moves to the front. EPOLLOUT is watched only while output is pending; reading
// stops while more than 4 MiB is unsent (the peer is then pushed back by TCP).
// SIGINT/SIGTERM end the loop; exit 0.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace {

constexpr std::size_t kInitialBuffer = 64 * 1024;
constexpr std::size_t kMaxPendingOut = 4 * 1024 * 1024;
constexpr int kMaxEvents = 256;

volatile sig_atomic_t g_stop = 0;

struct Conn {
  int fd = -1;
  std::unique_ptr<unsigned char[]> in;
  std::size_t in_cap = 0;
  std::size_t in_len = 0;
  std::vector<unsigned char> out;  // bytes the socket did not take yet
  std::size_t out_off = 0;
  bool out_watched = false;
  bool read_blocked = false;  // stopped reading for too much pending output
  [[nodiscard]] std::size_t pending() const { return out.size() - out_off; }
};

std::uint32_t get_be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

class Server {
 public:
  Server(int lfd, std::uint32_t max_frame) : lfd_(lfd), max_frame_(max_frame) {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) {
      std::perror("epoll_create1");
      std::exit(1);
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.ptr = nullptr;  // the listener
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, lfd_, &ev) != 0) {
      std::perror("epoll_ctl(listener)");
      std::exit(1);
    }
  }

  void run() {
    epoll_event evs[kMaxEvents];
    while (!g_stop) {
      const int n = ::epoll_wait(ep_, evs, kMaxEvents, 500);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        std::perror("epoll_wait");
        std::exit(1);
      }
      for (int i = 0; i < n; ++i) {
        auto* c = static_cast<Conn*>(evs[i].data.ptr);
        if (c == nullptr) {
          accept_all();
          continue;
        }
        const std::uint32_t e = evs[i].events;
        bool ok = true;
        if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
          ok = flush(*c);
        }
        if (ok && (e & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))) {
          ok = serve(*c);
        } else if (ok && c->read_blocked && c->pending() <= kMaxPendingOut / 2) {
          c->read_blocked = false;
          ok = serve(*c);  // no new edge will come for the data left in the socket
        }
        if (!ok) {
          close_conn(c);
        }
      }
    }
  }

 private:
  void accept_all() {
    for (;;) {
      const int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) {
          continue;
        }
        return;  // EAGAIN, or EMFILE and friends: try again on the next edge
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto* c = new Conn;
      c->fd = fd;
      c->in.reset(new unsigned char[kInitialBuffer]);
      c->in_cap = kInitialBuffer;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
      ev.data.ptr = c;
      if (::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ::close(fd);
        delete c;
      }
    }
  }

  // Reads until the socket is drained; echoes every complete frame. False: close it.
  bool serve(Conn& c) {
    for (;;) {
      if (c.pending() > kMaxPendingOut) {
        c.read_blocked = true;  // resumed from flush() when the output drains
        return true;
      }
      const std::size_t room = c.in_cap - c.in_len;
      const ssize_t r = ::read(c.fd, c.in.get() + c.in_len, room);
      if (r == 0) {
        return false;  // the peer closed; nothing left to echo that is complete
      }
      if (r < 0) {
        if (errno == EINTR) {
          continue;
        }
        return errno == EAGAIN || errno == EWOULDBLOCK;
      }
      c.in_len += static_cast<std::size_t>(r);
      std::size_t pos = 0;
      std::size_t need = 0;  // size of the incomplete frame at pos, once its prefix is in
      while (c.in_len - pos >= 4) {
        const std::uint32_t len = get_be32(c.in.get() + pos);
        if (len > max_frame_) {
          return false;  // protocol violation
        }
        if (c.in_len - pos < 4 + std::size_t{len}) {
          need = 4 + std::size_t{len};
          break;
        }
        pos += 4 + std::size_t{len};
      }
      if (pos != 0) {
        if (!send_bytes(c, c.in.get(), pos)) {
          return false;
        }
        std::memmove(c.in.get(), c.in.get() + pos, c.in_len - pos);
        c.in_len -= pos;
      }
      if (need > c.in_cap) {  // a frame larger than the buffer: grow once to hold it
        std::unique_ptr<unsigned char[]> bigger(new unsigned char[need]);
        std::memcpy(bigger.get(), c.in.get(), c.in_len);
        c.in = std::move(bigger);
        c.in_cap = need;
      }
      if (static_cast<std::size_t>(r) < room) {
        return true;  // a short read drained the socket: the next arrival raises an edge
      }
    }
  }

  // Sends at once when nothing is queued; queues what the socket does not take.
  bool send_bytes(Conn& c, const unsigned char* p, std::size_t n) {
    if (c.pending() == 0) {
      while (n != 0) {
        const ssize_t w = ::send(c.fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
          if (errno == EINTR) {
            continue;
          }
          if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
          }
          return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
      }
      if (n == 0) {
        return true;
      }
      c.out.clear();
      c.out_off = 0;
    }
    c.out.insert(c.out.end(), p, p + n);
    watch_out(c, true);
    return true;
  }

  bool flush(Conn& c) {
    while (c.out_off < c.out.size()) {
      const ssize_t w =
          ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) {
          continue;
        }
        return errno == EAGAIN || errno == EWOULDBLOCK;
      }
      c.out_off += static_cast<std::size_t>(w);
    }
    c.out.clear();
    c.out_off = 0;
    watch_out(c, false);
    return true;
  }

  void watch_out(Conn& c, bool on) {
    if (c.out_watched == on) {
      return;
    }
    c.out_watched = on;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (on ? EPOLLOUT : 0u);
    ev.data.ptr = &c;
    ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void close_conn(Conn* c) {
    ::close(c->fd);  // also leaves the epoll set; no later event can name c
    delete c;
  }

  int lfd_;
  int ep_ = -1;
  std::uint32_t max_frame_;
};

}  // namespace

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  long port = 0;
  long max_frame = 1 << 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--port")) {
      port = std::strtol(argv[i + 1], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--host")) {
      host = argv[i + 1];
    } else if (!std::strcmp(argv[i], "--max-frame")) {
      max_frame = std::strtol(argv[i + 1], nullptr, 10);
    } else {
      port = 0;
      break;
    }
  }
  if (port <= 0 || port > 65535 || max_frame <= 0 || argc % 2 == 0) {
    std::fprintf(stderr, "usage: %s --port P [--host 127.0.0.1] [--max-frame BYTES]\n", argv[0]);
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);

  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  int one = 1;
  if (lfd < 0 || ::inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
      ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(lfd, 1024) != 0) {
    std::fprintf(stderr, "weft-baseline-echo: cannot listen on %s:%ld: %s\n", host, port,
                 std::strerror(errno));
    return 1;
  }
  std::printf("weft-baseline-echo listening on %s:%ld\n", host, port);
  std::fflush(stdout);
  Server s(lfd, static_cast<std::uint32_t>(max_frame));
  s.run();
  return 0;
}
