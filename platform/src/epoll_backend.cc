// The epoll backend: completions emulated on edge-triggered readiness.
//
// Every descriptor is registered once (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET) with its slot as
// the event's data. Readiness edges set sticky `readable` / `writable` flags; an armed
// operation runs when its flag is set and clears the flag when the kernel says EAGAIN. A slot
// with more work than its per-wait budget goes back on the ready list, so one busy socket
// cannot starve the others (edge triggering would never report it again).
#include "backends.h"

#include <weft/base/assert.h>
#include <weft/platform/error.h>

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <new>

namespace weft::platform::detail {
namespace {

// i mod cap for i < 2 * cap: the ring indices below never exceed that, and a division per
// queued completion showed in the profile.
template <class T>
constexpr T wrap(T i, T cap) noexcept {
  return i >= cap ? i - cap : i;
}

// The hot path's socket calls without glibc's cancellation-point bookkeeping (enabling and
// disabling asynchronous cancellation around each call: about 55 instructions, 3.7 per echoed
// message at 64 B; bench/instructions_per_msg.sh). weft never cancels threads.
inline ssize_t raw_recv(int fd, void* p, std::size_t n) noexcept {
  return ::syscall(SYS_recvfrom, fd, p, n, MSG_DONTWAIT, nullptr, nullptr);
}
inline ssize_t raw_sendmsg(int fd, const msghdr* msg) noexcept {
  return ::syscall(SYS_sendmsg, fd, msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

// Reads per slot per wait before yielding to other slots (the slot stays on the ready list
// and is read again by the next wait). One: every receive of a wait is dispatched before the
// next is read, so a handler that pauses reading is handed no more receives. With a larger
// budget the extra full buffers of that wait were stashed while paused, and a few peers that
// never read held the receive partition with them (issue #13 section 2; starvation_test).
constexpr int kReadBudget = 1;
constexpr int kAcceptBudget = 32;
constexpr int kMaxEvents = 256;

class EpollBackend final : public Backend {
 public:
  EpollBackend(int epfd, const BackendOptions& o) noexcept
      : epfd_(epfd), pool_(o.pool), max_slots_(o.max_slots) {}
  ~EpollBackend() override { ::close(epfd_); }

  Result<void> init() noexcept {
    st_.reset(new (std::nothrow) FdState[max_slots_]);
    ready_.reset(new (std::nothrow) std::uint32_t[max_slots_]);
    pending_cap_ = static_cast<std::size_t>(max_slots_) * 8 + 64;
    pending_.reset(new (std::nothrow) Completion[pending_cap_]);
    if (!st_ || !ready_ || !pending_) {
      return fail_errno(ENOMEM);
    }
    return {};
  }

  BackendKind kind() const noexcept override { return BackendKind::epoll; }

  void accept(int fd, std::uint64_t ud) noexcept override {
    FdState& s = state(fd, ud);
    s.accept_ud = ud;
    if (s.readable) {
      make_ready(user_data_slot(ud));
    }
  }

  void recv(int fd, std::uint64_t ud) noexcept override {
    FdState& s = state(fd, ud);
    s.recv_ud = ud;
    if (s.readable) {
      make_ready(user_data_slot(ud));
    }
  }

  void send(int fd, const msghdr* msg, std::uint64_t ud) noexcept override {
    FdState& s = state(fd, ud);
    // Write at once: the socket is usually writable, and completing through the pending
    // queue keeps callbacks out of the caller's stack.
    ssize_t n = raw_sendmsg(fd, msg);
    if (n >= 0) {
      push({ud, static_cast<std::int32_t>(n), kNoBuf, false});
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      s.writable = false;
      s.send_ud = ud;
      s.msg = msg;
    } else {
      push({ud, -errno, kNoBuf, false});
    }
  }

  void connect(int fd, const Address* addr, std::uint64_t ud) noexcept override {
    FdState& s = state(fd, ud);
    if (::connect(fd, addr->sockaddr_ptr(), addr->length()) == 0) {
      push({ud, 0, kNoBuf, false});
    } else if (errno == EINPROGRESS) {
      s.writable = false;
      s.connect_ud = ud;
    } else {
      // EAGAIN is not "in progress": on AF_UNIX it means the listener's backlog is full
      // (refused for now) and the socket stays unconnected; on TCP, no local port or route
      // entry was free. Either way no writable edge will ever mean "connected".
      push({ud, -errno, kNoBuf, false});
    }
  }

  void watch(int efd, std::uint64_t ud) noexcept override {
    FdState& s = state(efd, ud);
    s.watch_ud = ud;
    if (s.readable) {
      make_ready(user_data_slot(ud));
    }
  }

  void cancel(int, std::uint64_t ud) noexcept override {
    const std::uint32_t slot = user_data_slot(ud);
    if (slot >= max_slots_) {
      return;
    }
    FdState& s = st_[slot];
    for (std::uint64_t* op : {&s.accept_ud, &s.recv_ud, &s.send_ud, &s.connect_ud, &s.watch_ud}) {
      if (*op == ud) {
        *op = 0;
        push({ud, -ECANCELED, kNoBuf, false});
      }
    }
  }

  void cancel_all(int fd, std::uint32_t slot) noexcept override {
    if (slot >= max_slots_) {
      return;
    }
    FdState& s = st_[slot];
    for (std::uint64_t* op : {&s.accept_ud, &s.recv_ud, &s.send_ud, &s.connect_ud, &s.watch_ud}) {
      if (*op != 0) {
        push({*op, -ECANCELED, kNoBuf, false});
        *op = 0;
      }
    }
    if (s.registered && s.fd == fd) {
      ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    }
    const bool queued = s.queued;
    s = FdState{};
    s.queued = queued;  // a stale ready-list entry finds no armed operation and is skipped
  }

  std::size_t wait(std::span<Completion> out, int timeout_ms) noexcept override {
    if (pending_n_ != 0 || ready_n_ != 0) {
      timeout_ms = 0;
    }
    int n = ::epoll_wait(epfd_, events_, kMaxEvents, timeout_ms);
    if (n < 0) {
      if (errno != EINTR) {
        WEFT_PANIC("epoll_wait failed");
      }
      n = 0;
    }
    for (int i = 0; i < n; ++i) {
      const std::uint32_t slot = static_cast<std::uint32_t>(events_[i].data.u64);
      FdState& s = st_[slot];
      const std::uint32_t ev = events_[i].events;
      if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        s.readable = true;
      }
      if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        s.hup = true;  // keep reading until EOF or an error is actually read
      }
      if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
        s.writable = true;
      }
      make_ready(slot);
    }
    std::size_t got = drain_pending(out);
    got += run_ready(out.subspan(got));
    got += drain_pending(out.subspan(got));
    return got;
  }

 private:
  struct FdState {
    int fd = -1;
    bool registered = false;
    bool readable = false;
    bool writable = false;
    bool hup = false;
    bool queued = false;  // on the ready list
    std::uint64_t accept_ud = 0, recv_ud = 0, send_ud = 0, connect_ud = 0, watch_ud = 0;
    const msghdr* msg = nullptr;
  };

  FdState& state(int fd, std::uint64_t ud) noexcept {
    const std::uint32_t slot = user_data_slot(ud);
    WEFT_ASSERT(slot < max_slots_);
    FdState& s = st_[slot];
    if (!s.registered || s.fd != fd) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.u64 = slot;
      if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        WEFT_PANIC("epoll_ctl(ADD) failed on a descriptor weft owns");
      }
      s.fd = fd;
      s.registered = true;
    }
    return s;
  }

  void make_ready(std::uint32_t slot) noexcept {
    FdState& s = st_[slot];
    if (!s.queued) {
      s.queued = true;
      ready_[wrap(ready_head_ + ready_n_, max_slots_)] = slot;
      ++ready_n_;
    }
  }

  void push(const Completion& c) noexcept {
    if (pending_n_ == pending_cap_) {
      WEFT_PANIC("epoll backend: pending completion queue overflow");
    }
    pending_[wrap(pending_head_ + pending_n_, pending_cap_)] = c;
    ++pending_n_;
  }

  std::size_t drain_pending(std::span<Completion> out) noexcept {
    std::size_t n = 0;
    while (pending_n_ != 0 && n < out.size()) {
      out[n++] = pending_[pending_head_];
      pending_head_ = wrap(pending_head_ + 1, pending_cap_);
      --pending_n_;
    }
    return n;
  }

  // Runs armed operations on ready slots. Stops when out is full; unfinished slots stay on
  // the ready list for the next wait().
  std::size_t run_ready(std::span<Completion> out) noexcept {
    std::size_t n = 0;
    std::uint32_t rounds = ready_n_;
    while (rounds-- != 0 && n + kAcceptBudget + kReadBudget + 3 <= out.size()) {
      const std::uint32_t slot = ready_[ready_head_];
      ready_head_ = wrap(ready_head_ + 1, max_slots_);
      --ready_n_;
      FdState& s = st_[slot];
      s.queued = false;
      if (!s.registered) {
        continue;
      }
      n += run_slot(s, out.subspan(n));
      const bool more_work = s.readable && (s.recv_ud != 0 || s.accept_ud != 0);
      if (more_work) {
        make_ready(slot);
      }
    }
    return n;
  }

  // The outcome of a pending connect once its socket polls writable: 0 or an errno.
  // SO_ERROR 0 alone does not prove a connection: an unconnected socket also polls as
  // EPOLLOUT|EPOLLHUP (AF_UNIX does from the start), so the peer's name must exist too.
  static int connect_result(int fd) noexcept {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
      return errno;
    }
    if (err != 0) {
      return err;
    }
    sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0) {
      return 0;
    }
    if (errno != ENOTCONN) {
      return errno;
    }
    // Not connected: the error may have been posted since SO_ERROR was read; else the
    // connect attempt simply went nowhere.
    len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
      return err;
    }
    return ECONNREFUSED;
  }

  std::size_t run_slot(FdState& s, std::span<Completion> out) noexcept {
    std::size_t n = 0;
    if (s.watch_ud != 0 && s.readable) {
      std::uint64_t v;
      if (::read(s.fd, &v, sizeof v) == static_cast<ssize_t>(sizeof v)) {
        out[n++] = {s.watch_ud, 8, kNoBuf, false};
        s.watch_ud = 0;
      } else {
        s.readable = false;
      }
    }
    if (s.connect_ud != 0 && s.writable) {
      out[n++] = {s.connect_ud, -connect_result(s.fd), kNoBuf, false};
      s.connect_ud = 0;
    }
    if (s.send_ud != 0 && s.writable) {
      ssize_t r = raw_sendmsg(s.fd, s.msg);
      if (r >= 0) {
        out[n++] = {s.send_ud, static_cast<std::int32_t>(r), kNoBuf, false};
        s.send_ud = 0;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s.writable = false;
      } else {
        out[n++] = {s.send_ud, -errno, kNoBuf, false};
        s.send_ud = 0;
      }
    }
    if (s.accept_ud != 0 && s.readable) {
      for (int i = 0; i < kAcceptBudget; ++i) {
        int fd = ::accept4(s.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
          out[n++] = {s.accept_ud, fd, kNoBuf, true};
          continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          s.readable = false;
        } else if (errno == ECONNABORTED || errno == EINTR) {
          continue;
        } else {
          out[n++] = {s.accept_ud, -errno, kNoBuf, false};
          s.accept_ud = 0;
        }
        break;
      }
    }
    if (s.recv_ud != 0 && s.readable) {
      for (int i = 0; i < kReadBudget; ++i) {
        const BufId buf = pool_->acquire_recv();
        if (buf == kNoBuf) {
          out[n++] = {s.recv_ud, -ENOBUFS, kNoBuf, false};
          s.recv_ud = 0;
          break;
        }
        const std::size_t cap = pool_->buffer_size();
        ssize_t r = raw_recv(s.fd, pool_->data(buf), cap);
        if (r > 0) {
          out[n++] = {s.recv_ud, static_cast<std::int32_t>(r), buf, true};
          if (static_cast<std::size_t>(r) < cap && !s.hup) {
            // A short read drained the socket; the next arrival raises a new edge. (Not
            // trusted after a hang-up edge: the FIN must still be read as 0.)
            s.readable = false;
            break;
          }
          continue;
        }
        pool_->unref(buf);
        if (r == 0) {
          out[n++] = {s.recv_ud, 0, kNoBuf, false};
          s.recv_ud = 0;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          s.readable = false;
        } else {
          out[n++] = {s.recv_ud, -errno, kNoBuf, false};
          s.recv_ud = 0;
        }
        break;
      }
    }
    return n;
  }

  int epfd_;
  BufferPool* pool_;
  std::uint32_t max_slots_;
  std::unique_ptr<FdState[]> st_;
  std::unique_ptr<std::uint32_t[]> ready_;
  std::uint32_t ready_head_ = 0;
  std::uint32_t ready_n_ = 0;
  std::unique_ptr<Completion[]> pending_;
  std::size_t pending_cap_ = 0;
  std::size_t pending_head_ = 0;
  std::size_t pending_n_ = 0;
  epoll_event events_[kMaxEvents];
};

}  // namespace

Result<std::unique_ptr<Backend>> make_epoll_backend(const BackendOptions& o) noexcept {
  int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    return fail_errno(errno);
  }
  std::unique_ptr<EpollBackend> b(new (std::nothrow) EpollBackend(epfd, o));
  if (!b) {
    ::close(epfd);
    return fail_errno(ENOMEM);
  }
  auto r = b->init();
  if (!r) {
    return fail(r.error());
  }
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace weft::platform::detail
