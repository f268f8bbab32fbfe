#include <weft/base/log.h>
#include <weft/platform/cpu_list.h>
#include <weft/platform/error.h>
#include <weft/platform/runtime.h>

#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <mutex>

namespace weft::platform {
namespace {

// The file a Unix address names, or nullptr (not AF_UNIX, or the abstract namespace).
const char* unix_path(const Address& addr) noexcept {
  if (!addr.is_unix()) {
    return nullptr;
  }
  const auto* un = reinterpret_cast<const sockaddr_un*>(addr.sockaddr_ptr());
  return un->sun_path[0] == '\0' ? nullptr : un->sun_path;
}

// Before bind(): a socket file left by an earlier run would make bind() fail with
// EADDRINUSE, but the file may as well belong to a server that is running now. Probe it:
// ECONNREFUSED means no socket is bound to that inode any more (stale: remove it); a connect
// that succeeds or finds the backlog full (EAGAIN) means a live server owns it. A path that
// is not a socket (a regular file, a symlink) is never removed. The probe's connection, if
// the live server accepts it, carries no bytes and is closed at once. Races: a server that
// starts between the probe and the unlink loses its file; only a lock file could close that.
Result<void> prepare_unix_path(const Address& addr) noexcept {
  const char* path = unix_path(addr);
  struct stat st;
  if (path == nullptr || ::lstat(path, &st) != 0) {
    return {};  // abstract (bind() reports a live owner), or nothing there: bind() decides
  }
  if (!S_ISSOCK(st.st_mode)) {
    log(LogLevel::error, "unix:%s exists and is not a socket; not removing it", path);
    return fail_errno(EADDRINUSE);
  }
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe < 0) {
    return fail_errno(errno);
  }
  const int e = ::connect(probe, addr.sockaddr_ptr(), addr.length()) == 0 ? 0 : errno;
  ::close(probe);
  switch (e) {
    case ECONNREFUSED:
      if (::unlink(path) != 0 && errno != ENOENT) {
        return fail_errno(errno);
      }
      log(LogLevel::info, "unix:%s: removed a stale socket file", path);
      return {};
    case ENOENT:
      return {};  // removed meanwhile
    case 0:
    case EAGAIN:      // a live listener with a full backlog
    case EPROTOTYPE:  // a live socket of another type (datagram, seqpacket)
      log(LogLevel::error, "unix:%s is in use by a running server; not removing it", path);
      return fail_errno(EADDRINUSE);
    default:
      return fail_errno(e);  // EACCES and the like: not ours to judge
  }
}

// A user or group given by name or by number ("alice", "1000"), as a uid/gid; -1 when empty.
// getpwnam_r/getgrnam_r fill a caller's buffer: 16 KiB on the stack is far more than a
// passwd or group entry needs (a group with thousands of members would not fit: ERANGE,
// reported as such). May read /etc/passwd or ask NSS: start-up only.
Result<std::uint32_t> resolve_id(const std::string& name, bool group) noexcept {
  if (name.empty()) {
    return static_cast<std::uint32_t>(-1);
  }
  std::uint32_t id = 0;
  const char* end = name.data() + name.size();
  if (auto [p, ec] = std::from_chars(name.data(), end, id); ec == std::errc() && p == end) {
    return id;
  }
  char buf[16384];
  int rc = 0;
  bool found = false;
  if (group) {
    struct group gr, *res = nullptr;
    rc = ::getgrnam_r(name.c_str(), &gr, buf, sizeof buf, &res);
    found = res != nullptr;
    id = found ? gr.gr_gid : 0;
  } else {
    struct passwd pw, *res = nullptr;
    rc = ::getpwnam_r(name.c_str(), &pw, buf, sizeof buf, &res);
    found = res != nullptr;
    id = found ? pw.pw_uid : 0;
  }
  if (found) {
    return id;
  }
  if (rc != 0 && rc != ENOENT && rc != ESRCH) {
    return fail_errno(rc);
  }
  log(LogLevel::error, "unix socket %s '%s' does not exist", group ? "group" : "owner",
      name.c_str());
  return fail(platform_errc::invalid_argument);
}

// After bind(), before listen(): nobody can connect yet (ECONNREFUSED), so the file is never
// reachable with the mode the umask gave it. lchown, not chown: the path was made by our
// bind() a moment ago, and a symlink put there since must not redirect the change. chmod has
// no no-follow form on Linux (fchmodat's AT_SYMLINK_NOFOLLOW is ENOTSUP before 6.6), and a
// socket's fd does not reach its file (fchmod changes the socket inode): the directory must
// not be writable by untrusted users, which docs/security.md states.
Result<void> apply_unix_options(const char* path, const UnixSocketOptions& o, std::uint32_t uid,
                                std::uint32_t gid) noexcept {
  if (uid != static_cast<std::uint32_t>(-1) || gid != static_cast<std::uint32_t>(-1)) {
    if (::lchown(path, static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0) {
      const int e = errno;
      log(LogLevel::error, "unix:%s: cannot change owner to %s:%s: %s", path,
          o.owner.empty() ? "-" : o.owner.c_str(), o.group.empty() ? "-" : o.group.c_str(),
          std::strerror(e));
      return fail_errno(e);
    }
  }
  if (o.mode != 0 && ::chmod(path, static_cast<mode_t>(o.mode)) != 0) {
    const int e = errno;
    log(LogLevel::error, "unix:%s: cannot set mode %04o: %s", path, o.mode, std::strerror(e));
    return fail_errno(e);
  }
  return {};
}

}  // namespace

Result<int> listen_socket(const Address& addr, bool reuseport, int backlog,
                          const UnixSocketOptions& unix_opts) noexcept {
  const char* path = unix_path(addr);
  std::uint32_t uid = static_cast<std::uint32_t>(-1);
  std::uint32_t gid = static_cast<std::uint32_t>(-1);
  if (!unix_opts.empty()) {
    // Checked before anything is bound: a wrong option leaves no file behind.
    if (path == nullptr) {
      char text[128];
      addr.format(text, sizeof text);
      log(LogLevel::error, "%s: socket file mode/owner given, but the address has no file", text);
      return fail(platform_errc::invalid_argument);
    }
    if (unix_opts.mode > 07777) {
      log(LogLevel::error, "unix:%s: mode %o is not a permission mode", path, unix_opts.mode);
      return fail(platform_errc::invalid_argument);
    }
    auto u = resolve_id(unix_opts.owner, false);
    if (!u) {
      return fail(u.error());
    }
    auto g = resolve_id(unix_opts.group, true);
    if (!g) {
      return fail(g.error());
    }
    uid = u.value();
    gid = g.value();
  }
  if (auto r = prepare_unix_path(addr); !r) {
    return fail(r.error());
  }
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
  }
  if (::bind(fd, addr.sockaddr_ptr(), addr.length()) != 0) {
    const int e = errno;
    ::close(fd);
    return fail_errno(e);
  }
  if (!unix_opts.empty()) {
    if (auto r = apply_unix_options(path, unix_opts, uid, gid); !r) {
      ::close(fd);
      ::unlink(path);  // ours: bind() made it just now, and nobody could connect to it
      return fail(r.error());
    }
  }
  if (::listen(fd, backlog) != 0) {
    const int e = errno;
    ::close(fd);
    if (path != nullptr) {
      ::unlink(path);
    }
    return fail_errno(e);
  }
  return fd;
}

Runtime::Runtime() = default;

Runtime::~Runtime() {
  if (!threads_.empty()) {
    for (auto& l : loops_) {
      if (l) {
        l->request_stop();
      }
    }
    wait();
  }
  close_listen_fds();
}

// Start-up handshake between start() and the workers it spawns. Each worker creates its
// own Loop on its own (pinned) thread — first touch puts its pools on that core's memory
// node, and io_uring can use SINGLE_ISSUER/DEFER_TASKRUN since the ring's creator is its
// only submitter — reports, then waits for the go (or abort) that start() gives once every
// worker has reported and the rings between them are wired.
struct Runtime::Startup {
  std::mutex mu;
  std::condition_variable cv;
  std::uint32_t reported = 0;
  std::error_code error;
  bool go = false;
  bool abort = false;
};

struct Runtime::WorkerArgs {
  Runtime* rt;
  std::uint32_t index;
  int cpu;  // -1: not pinned
};

void* Runtime::worker_main(void* arg) noexcept {
  const WorkerArgs args = *static_cast<WorkerArgs*>(arg);
  delete static_cast<WorkerArgs*>(arg);
  Runtime& rt = *args.rt;
  const std::uint32_t w = args.index;
  if (args.cpu >= 0) {
    if (auto r = pin_current_thread(args.cpu); !r) {
      log(LogLevel::warn, "worker %u: cannot pin to cpu %d: %s", w, args.cpu,
          std::strerror(r.error().value()));
    }
  }
  std::error_code error;
  auto created = Loop::create(rt.cfg_, w, rt.shared_.count() != 0 ? &rt.shared_ : nullptr);
  if (created) {
    Loop& loop = *created.value();
    for (std::size_t s = 0; s < rt.services_.size() && !error; ++s) {
      rt.factories_[w].push_back(rt.services_[s].make_factory(loop));
      HandlerFactory& f = *rt.factories_[w].back();
      // Same registration order on every worker, so service indices agree for hand-offs.
      int& fd = rt.listen_fds_[w][s];
      auto r = fd >= 0 ? loop.add_listener(fd, f, rt.hand_off_[s]) : loop.add_service(f);
      if (r) {
        fd = -1;  // owned by the loop now
      } else {
        error = r.error();
      }
    }
  } else {
    error = created.error();
  }
  Startup& st = *rt.startup_;
  {
    std::unique_lock<std::mutex> lock(st.mu);
    if (created) {
      rt.loops_[w] = std::move(created.value());
    }
    if (error && !st.error) {
      st.error = error;
    }
    ++st.reported;
    st.cv.notify_all();
    st.cv.wait(lock, [&] { return st.go || st.abort; });
    if (st.abort) {
      return nullptr;
    }
  }
  rt.loops_[w]->run();
  return nullptr;
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
  if (cfg.shared_buffers != 0) {
    if (auto r = shared_.init(cfg.shared_buffers, cfg.shared_buffer_size); !r) {
      return r;
    }
  }
  // Which services hand connections off from worker 0: all in round-robin mode, and Unix
  // sockets always (SO_REUSEPORT does not balance them, so they have a single listener).
  hand_off_.assign(services_.size(), false);
  bool any_hand_off = false;
  for (std::size_t s = 0; s < services_.size(); ++s) {
    hand_off_[s] =
        n > 1 && (cfg.accept_mode == AcceptMode::round_robin || services_[s].address.is_unix());
    any_hand_off = any_hand_off || hand_off_[s];
  }

  // Bind on this thread: errors surface here, and port 0 is resolved once for all workers.
  listen_fds_.assign(n, std::vector<int>(services_.size(), -1));
  for (std::size_t s = 0; s < services_.size(); ++s) {
    Address addr = services_[s].address;
    // SO_REUSEPORT does not balance Unix-domain sockets: they use one listener + hand-off.
    const bool per_worker = cfg.accept_mode == AcceptMode::reuseport && !addr.is_unix();
    for (std::uint32_t w = 0; w < (per_worker ? n : 1u); ++w) {
      auto fd = listen_socket(addr, per_worker, cfg.listen_backlog, services_[s].unix_socket);
      if (!fd) {
        char text[128];
        addr.format(text, sizeof text);
        log(LogLevel::error, "cannot listen on %s: %s", text, fd.error().message().c_str());
        close_listen_fds();
        remove_unix_files();
        return fail(fd.error());
      }
      listen_fds_[w][s] = fd.value();
      struct stat st;
      if (const char* path = unix_path(addr); path != nullptr && ::lstat(path, &st) == 0) {
        // Right after bind(): the inode that proves, at stop, that the file is still ours.
        unix_files_.push_back({path, st.st_dev, st.st_ino});
      }
      if (w == 0) {
        if (auto local = Address::local_of(fd.value())) {
          addr = local.value();  // port 0 -> the port the kernel chose, for every worker
        }
        bound_.push_back(addr);
      }
    }
  }

  loops_.resize(n);
  factories_.resize(n);
  startup_ = std::make_unique<Startup>();
  // Workers inherit the signal mask: block everything so SIGTERM/SIGINT reach the thread
  // that waits for them, never an event loop.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  std::error_code spawn_error;
  for (std::uint32_t w = 0; w < n; ++w) {
    auto* arg = new WorkerArgs{this, w, cpus.empty() ? -1 : cpus[w % cpus.size()]};
    pthread_t t;
    const int rc = pthread_create(&t, nullptr, &Runtime::worker_main, arg);
    if (rc != 0) {
      delete arg;
      spawn_error = std::error_code(rc, std::system_category());
      break;
    }
    threads_.push_back(t);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);

  Startup& st = *startup_;
  {
    std::unique_lock<std::mutex> lock(st.mu);
    st.cv.wait(lock, [&] { return st.reported == threads_.size(); });
    if (spawn_error && !st.error) {
      st.error = spawn_error;
    }
    if (st.error) {
      st.abort = true;
      st.cv.notify_all();
    }
  }
  if (st.error) {
    const std::error_code e = st.error;
    wait();
    close_listen_fds();
    loops_.clear();
    return fail(e);
  }

  for (auto& l : loops_) {
    loop_ptrs_.push_back(l.get());
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
    // Worker 0's hand-off listeners (hand_off_) give connections to every worker in turn;
    // SO_REUSEPORT listeners keep what they accept: the kernel spread it already.
    if (any_hand_off) {
      loops_[0]->set_accept_targets(loop_ptrs_);
    }
  }
  {
    std::lock_guard<std::mutex> lock(st.mu);
    st.go = true;  // the mutex orders the wiring above before each worker's run()
  }
  st.cv.notify_all();

  char text[128] = "";
  if (!bound_.empty()) {
    bound_[0].format(text, sizeof text);
  }
  log(LogLevel::info, "runtime: %u worker(s), backend %s, %s accept%s%s", n,
      to_string(backend_kind()),
      cfg.accept_mode == AcceptMode::reuseport ? "SO_REUSEPORT" : "round-robin",
      bound_.empty() ? "" : ", listening on ", text);
  return {};
}

void Runtime::close_listen_fds() noexcept {
  for (auto& w : listen_fds_) {
    for (int& fd : w) {
      if (fd >= 0) {
        ::close(fd);
        fd = -1;
      }
    }
  }
}

void Runtime::stop(std::uint32_t drain_ms) noexcept {
  for (auto& l : loops_) {
    if (l) {
      l->request_drain(drain_ms != 0 ? drain_ms : cfg_.drain_timeout_ms);
    }
  }
}

void Runtime::wait() noexcept {
  for (pthread_t t : threads_) {
    pthread_join(t, nullptr);
  }
  threads_.clear();
  // Posts that reached a loop after it stopped: hand-offs carry accepted sockets, which are
  // closed and counted (rejected) here rather than leaked.
  for (auto& l : loops_) {
    if (l) {
      l->discard_posts();
    }
  }
  remove_unix_files();
}

void Runtime::remove_unix_files() noexcept {
  for (const UnixFile& f : unix_files_) {
    struct stat st;
    // Another server may have replaced the path since (after removing ours): leave its file.
    if (::lstat(f.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == f.dev &&
        st.st_ino == f.ino) {
      ::unlink(f.path.c_str());
    }
  }
  unix_files_.clear();
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
