#include <weft/platform/cpu_list.h>
#include <weft/platform/error.h>
#include <weft/platform/log.h>
#include <weft/platform/runtime.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace weft::platform {
namespace {

struct ThreadStart {
  Loop* loop;
  int cpu;  // -1: not pinned
};

void* worker_main(void* arg) {
  ThreadStart start = *static_cast<ThreadStart*>(arg);
  delete static_cast<ThreadStart*>(arg);
  if (start.cpu >= 0) {
    if (auto r = pin_current_thread(start.cpu); !r) {
      log(LogLevel::warn, "worker %u: cannot pin to cpu %d: %s", start.loop->index(), start.cpu,
          std::strerror(r.error().value()));
    }
  }
  start.loop->run();
  return nullptr;
}

// A stale Unix socket file from an earlier run would make bind() fail with EADDRINUSE.
// Remove it only when it really is a socket (never a regular file someone named by mistake).
void remove_stale_unix_socket(const Address& addr) {
  const auto* un = reinterpret_cast<const sockaddr_un*>(addr.sockaddr_ptr());
  if (un->sun_path[0] == '\0') {
    return;  // abstract namespace: nothing on disk
  }
  struct stat st;
  if (::stat(un->sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
    ::unlink(un->sun_path);
  }
}

}  // namespace

Result<int> listen_socket(const Address& addr, bool reuseport, int backlog) noexcept {
  int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return fail_errno(errno);
  }
  int one = 1;
  if (!addr.is_unix()) {
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      const int e = errno;
      ::close(fd);
      return fail_errno(e);
    }
    if (addr.family() == AF_INET6) {
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
  } else {
    remove_stale_unix_socket(addr);
  }
  if (::bind(fd, addr.sockaddr_ptr(), addr.length()) != 0 || ::listen(fd, backlog) != 0) {
    const int e = errno;
    ::close(fd);
    return fail_errno(e);
  }
  return fd;
}

Runtime::~Runtime() {
  if (!threads_.empty()) {
    for (auto& l : loops_) {
      l->request_stop();
    }
    wait();
  }
}

Result<void> Runtime::start(const Config& cfg, std::vector<Service> services) {
  if (!loops_.empty()) {
    return fail(platform_errc::invalid_argument);  // one start per Runtime
  }
  if (auto v = cfg.validate(); !v) {
    return v;
  }
  std::vector<int> cpus;
  if (!cfg.cpus.empty()) {
    auto parsed = parse_cpu_list(cfg.cpus);
    if (!parsed) {
      return fail(parsed.error());
    }
    cpus = std::move(parsed.value());
  }
  cfg_ = cfg;
  services_ = std::move(services);
  const std::uint32_t n = cfg.workers;

  // Bind on this thread: errors surface here, and port 0 is resolved once for all workers.
  std::vector<std::vector<int>> fds(n, std::vector<int>(services_.size(), -1));
  const auto close_all = [&fds] {
    for (auto& w : fds) {
      for (int fd : w) {
        if (fd >= 0) {
          ::close(fd);
        }
      }
    }
  };
  for (std::size_t s = 0; s < services_.size(); ++s) {
    Address addr = services_[s].address;
    // SO_REUSEPORT does not balance Unix-domain sockets: they use one listener + hand-off.
    const bool per_worker = cfg.accept_mode == AcceptMode::reuseport && !addr.is_unix();
    for (std::uint32_t w = 0; w < (per_worker ? n : 1u); ++w) {
      auto fd = listen_socket(addr, per_worker, cfg.listen_backlog);
      if (!fd) {
        char text[128];
        addr.format(text, sizeof text);
        log(LogLevel::error, "cannot listen on %s: %s", text, fd.error().message().c_str());
        close_all();
        return fail(fd.error());
      }
      fds[w][s] = fd.value();
      if (w == 0) {
        auto local = Address::local_of(fd.value());
        if (local) {
          addr = local.value();  // port 0 -> the port the kernel chose, for every worker
        }
        bound_.push_back(addr);
      }
    }
  }

  for (std::uint32_t w = 0; w < n; ++w) {
    auto loop = Loop::create(cfg, w);
    if (!loop) {
      close_all();
      loops_.clear();
      return fail(loop.error());
    }
    loops_.push_back(std::move(loop.value()));
    loop_ptrs_.push_back(loops_.back().get());
  }
  factories_.resize(n);
  for (std::uint32_t w = 0; w < n; ++w) {
    for (std::size_t s = 0; s < services_.size(); ++s) {
      factories_[w].push_back(services_[s].make_factory(*loops_[w]));
      HandlerFactory& f = *factories_[w].back();
      // Same registration order on every worker, so service indices agree for hand-offs.
      auto r = fds[w][s] >= 0 ? loops_[w]->add_listener(fds[w][s], f) : loops_[w]->add_service(f);
      if (!r) {
        close_all();
        return fail(r.error());
      }
      fds[w][s] = -1;  // owned by the loop now
    }
  }
  if (n > 1) {
    rings_.resize(static_cast<std::size_t>(n) * n);
    ring_to_.assign(n, std::vector<PostRing*>(n, nullptr));
    ring_from_.assign(n, std::vector<PostRing*>(n, nullptr));
    for (std::uint32_t from = 0; from < n; ++from) {
      for (std::uint32_t to = 0; to < n; ++to) {
        if (from != to) {
          rings_[from * n + to] = std::make_unique<PostRing>();
          ring_to_[from][to] = rings_[from * n + to].get();
          ring_from_[to][from] = rings_[from * n + to].get();
        }
      }
    }
    for (std::uint32_t w = 0; w < n; ++w) {
      loops_[w]->connect_rings(loop_ptrs_, ring_to_[w], ring_from_[w]);
    }
    // Round-robin: worker 0's listeners hand connections to every worker in turn (Unix
    // sockets always, since they have a single listener).
    bool any_single = cfg.accept_mode == AcceptMode::round_robin;
    for (const auto& s : services_) {
      any_single = any_single || s.address.is_unix();
    }
    if (any_single) {
      loops_[0]->set_accept_targets(loop_ptrs_);
    }
  }

  // Workers inherit the signal mask: block everything so SIGTERM/SIGINT reach the thread
  // that waits for them, never an event loop.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (std::uint32_t w = 0; w < n; ++w) {
    auto* arg = new ThreadStart{loops_[w].get(), cpus.empty() ? -1 : cpus[w % cpus.size()]};
    pthread_t t;
    const int rc = pthread_create(&t, nullptr, &worker_main, arg);
    if (rc != 0) {
      delete arg;
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      for (auto& l : loops_) {
        l->request_stop();
      }
      wait();
      return fail_errno(rc);
    }
    threads_.push_back(t);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  char text[128];
  bound_.empty() ? (void)(text[0] = 0) : bound_[0].format(text, sizeof text);
  log(LogLevel::info, "runtime: %u worker(s), backend %s, %s accept%s%s", n,
      to_string(backend_kind()),
      cfg.accept_mode == AcceptMode::reuseport ? "SO_REUSEPORT" : "round-robin",
      bound_.empty() ? "" : ", listening on ", text);
  return {};
}

void Runtime::stop(std::uint32_t drain_ms) noexcept {
  for (auto& l : loops_) {
    l->request_drain(drain_ms != 0 ? drain_ms : cfg_.drain_timeout_ms);
  }
}

void Runtime::wait() noexcept {
  for (pthread_t t : threads_) {
    pthread_join(t, nullptr);
  }
  threads_.clear();
}

BackendKind Runtime::backend_kind() const noexcept {
  return loops_.empty() ? BackendKind::automatic : loops_[0]->backend_kind();
}

StatsSnapshot Runtime::stats() const noexcept {
  StatsSnapshot total;
  for (const auto& l : loops_) {
    total += l->stats().snapshot();
  }
  return total;
}

void block_termination_signals() noexcept {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int wait_for_termination_signal() noexcept {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

}  // namespace weft::platform
