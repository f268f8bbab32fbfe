// Blocking loopback clients for tests: every call is bounded by a receive/send timeout, so
// a broken server fails a test instead of hanging it. Binds and connects only to loopback.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <weft/platform/address.h>
#include <weft/platform/runtime.h>

namespace weft::test {

inline void set_timeouts(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Connects with a deadline; -1 on failure. The connect itself is non-blocking and waited
// out with poll(): a blocking connect() interrupted by a signal (EINTR) carries on in the
// background and used to be reported as a failure, a known source of flakes. A Unix socket
// whose listen backlog is full (EAGAIN) is retried until the deadline. The returned socket
// is blocking, with send/receive timeouts of timeout_ms. rcvbuf (when not 0) is set as
// SO_RCVBUF before connecting, so that it also bounds the window the peer is offered.
inline int connect_to(const platform::Address& a, int timeout_ms = 5000, int rcvbuf = 0) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  const auto left_ms = [&] {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<std::int64_t>(0, left.count()));
  };
  while (true) {
    int fd = ::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      return -1;
    }
    if (rcvbuf != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    int rc = ::connect(fd, a.sockaddr_ptr(), a.length());
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS || err == EINTR) {
      pollfd p{fd, POLLOUT, 0};
      int n;
      do {
        n = ::poll(&p, 1, left_ms());
      } while (n < 0 && errno == EINTR);
      socklen_t len = sizeof err;
      if (n != 1 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = ETIMEDOUT;
      }
    }
    if (err == 0) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      set_timeouts(fd, timeout_ms);
      if (!a.is_unix()) {
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      return fd;
    }
    ::close(fd);
    if (err != EAGAIN || left_ms() == 0) {
      return -1;
    }
    // Unix backlog full: a blocking connect would have waited for room; wait a little.
    ::poll(nullptr, 0, 2);
  }
}

inline bool write_all(int fd, const void* p, std::size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n != 0) {
    ssize_t w = ::send(fd, c, n, MSG_NOSIGNAL);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) {
        continue;
      }
      return false;
    }
    c += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Reads exactly n bytes; false on EOF, error or timeout.
inline bool read_exact(int fd, void* p, std::size_t n) {
  char* c = static_cast<char*>(p);
  while (n != 0) {
    ssize_t r = ::recv(fd, c, n, 0);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) {
        continue;
      }
      return false;
    }
    c += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// Waits until the peer closes the connection, reading and discarding any data before the
// close (echoed frames may precede it). Returns 0 on an orderly EOF, -errno on a reset or
// other error, and kNotClosed when nothing closed it within timeout_ms: callers expecting a
// close write EXPECT_LE(wait_closed(fd), 0) or EXPECT_EQ(..., 0), and a timeout fails both.
inline constexpr int kNotClosed = 1;
inline int wait_closed(int fd, int timeout_ms = 10000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char b[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      return kNotClosed;
    }
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      continue;  // the deadline check above ends it
    }
    const ssize_t r = ::recv(fd, b, sizeof b, MSG_DONTWAIT);
    if (r == 0) {
      return 0;
    }
    if (r < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      return -errno;
    }
  }
}

// A frame of `len` payload bytes whose payload never repeats: 8-byte word k of the payload
// of frame `seed` is a bijective mix of (seed << 32 | k), so no two words of any frames with
// different seeds (below 2^32), nor two words of one frame, are equal. A stream that gives
// each frame its own seed cannot compare equal after a chunk was swapped, dropped or
// duplicated. Frames up to 32 GiB.
inline std::uint64_t mix64(std::uint64_t x) {
  // splitmix64's finalizer: a bijection on 64-bit values.
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}
inline void fill_payload(std::uint8_t* p, std::size_t len, std::uint64_t seed) {
  for (std::size_t i = 0; i < len; i += 8) {
    const std::uint64_t w = mix64((seed << 32) | (i / 8));
    std::memcpy(p + i, &w, std::min<std::size_t>(8, len - i));
  }
}
inline std::vector<std::uint8_t> make_frame(std::uint32_t len, std::uint64_t seed) {
  std::vector<std::uint8_t> f(4 + len);
  f[0] = static_cast<std::uint8_t>(len >> 24);
  f[1] = static_cast<std::uint8_t>(len >> 16);
  f[2] = static_cast<std::uint8_t>(len >> 8);
  f[3] = static_cast<std::uint8_t>(len);
  fill_payload(f.data() + 4, len, seed);
  return f;
}

// Polls cond every 5 ms for up to timeout; true once it holds.
template <class F>
bool eventually(F cond, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

// One worker, small pools (32 connections, 32 + 32 buffers of 4 KiB), a 1 s drain: the
// starting point of tests that build their situation with a few connections.
inline platform::Config one_worker_config(platform::BackendKind kind) {
  platform::Config cfg;
  cfg.backend = kind;
  cfg.workers = 1;
  cfg.max_connections = 32;
  cfg.recv_buffers = 32;
  cfg.send_buffers = 32;
  cfg.buffer_size = 4096;
  cfg.drain_timeout_ms = 1000;
  return cfg;
}

// Whether an io_uring loop can be created here (false under qemu-user, seccomp, old kernels).
inline bool uring_usable(std::string* why) {
  platform::Config cfg;
  cfg.backend = platform::BackendKind::uring;
  cfg.max_connections = 4;
  cfg.recv_buffers = 8;
  cfg.send_buffers = 8;
  auto loop = platform::Loop::create(cfg, 0);
  if (!loop) {
    if (why != nullptr) {
      *why = loop.error().message();
    }
    return false;
  }
  if (loop.value()->backend_kind() != platform::BackendKind::uring) {
    if (why != nullptr) {
      *why = "WEFT_BACKEND forces another backend";
    }
    return false;
  }
  return true;
}

}  // namespace weft::test

namespace weft::test {
// Test-name suffix for suites parameterised over backends.
struct BackendName {
  template <class Info>
  std::string operator()(const Info& i) const {
    return i.param == platform::BackendKind::uring ? "uring" : "epoll";
  }
};
}  // namespace weft::test
