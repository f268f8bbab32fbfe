// Blocking loopback clients for tests: every call is bounded by a receive/send timeout, so
// a broken server fails a test instead of hanging it. Binds and connects only to loopback.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

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

// Blocking connect; -1 on failure.
inline int connect_to(const platform::Address& a, int timeout_ms = 5000) {
  int fd = ::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  set_timeouts(fd, timeout_ms);
  if (::connect(fd, a.sockaddr_ptr(), a.length()) != 0) {
    ::close(fd);
    return -1;
  }
  if (!a.is_unix()) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
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

// Returns 0 on orderly EOF, -errno on reset/error, -EAGAIN on timeout, 1 if data arrived.
inline int wait_closed(int fd) {
  char b[256];
  while (true) {
    ssize_t r = ::recv(fd, b, sizeof b, 0);
    if (r == 0) {
      return 0;
    }
    if (r < 0) {
      return errno == EINTR ? wait_closed(fd) : -errno;
    }
    // Data before the close is allowed (e.g. echoed frames); keep reading.
  }
}

inline std::vector<std::uint8_t> make_frame(std::uint32_t len, std::uint8_t seed) {
  std::vector<std::uint8_t> f(4 + len);
  f[0] = static_cast<std::uint8_t>(len >> 24);
  f[1] = static_cast<std::uint8_t>(len >> 16);
  f[2] = static_cast<std::uint8_t>(len >> 8);
  f[3] = static_cast<std::uint8_t>(len);
  for (std::uint32_t i = 0; i < len; ++i) {
    f[4 + i] = static_cast<std::uint8_t>(seed + i * 31);
  }
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
