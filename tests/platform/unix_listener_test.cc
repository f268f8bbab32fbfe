// Unix-domain listeners in the Runtime, on both backends: the socket file's life cycle
// (a stale file is replaced, a live server's file or a non-socket file is never touched, the
// file goes away at stop unless a newer server owns the path) and the accept hand-off that a
// Unix service needs (its single listener) without dragging SO_REUSEPORT TCP listeners in.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <weft/platform/error.h>
#include <weft/platform/runtime.h>

#include "echo_service.h"
#include "temp_dir.h"
#include "test_net.h"

namespace weft::platform {
namespace {

using test::eventually;

// test::connect_to() that survives EINTR: a blocking connect() interrupted by a signal (seen
// here under --gtest_repeat with two-worker runtimes) carries on in the background, so wait
// for its outcome instead of reporting a failure. -1 when it did not connect in time.
int connect_to(const Address& a, int timeout_ms = 5000) {
  int fd = ::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  test::set_timeouts(fd, timeout_ms);
  if (::connect(fd, a.sockaddr_ptr(), a.length()) != 0) {
    bool connected = false;
    if (errno == EINTR) {
      pollfd p{fd, POLLOUT, 0};
      int n;
      do {
        n = ::poll(&p, 1, timeout_ms);
      } while (n < 0 && errno == EINTR);
      sockaddr_storage peer;
      socklen_t len = sizeof peer;
      connected = n == 1 && ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0;
    }
    if (!connected) {
      ::close(fd);
      return -1;
    }
  }
  return fd;
}

Service echo_service(const Address& a) {
  return {a, [](Loop& loop) { return examples::make_echo_factory(loop, {}); }};
}

// One framed echo round trip on a blocking client socket.
bool echo_once(int fd, std::uint8_t seed) {
  auto f = test::make_frame(100, seed);
  std::vector<std::uint8_t> in(f.size());
  return test::write_all(fd, f.data(), f.size()) && test::read_exact(fd, in.data(), in.size()) &&
         in == f;
}

// Connects, echoes once and closes; false if any step failed.
bool serves(const Address& a) {
  int fd = connect_to(a, 3000);
  if (fd < 0) {
    return false;
  }
  const bool ok = echo_once(fd, 7);
  ::close(fd);
  return ok;
}

struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  mode_t mode = 0;
  bool exists = false;
  friend bool operator==(const FileId&, const FileId&) = default;
};

FileId file_id(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    return {};
  }
  return {st.st_dev, st.st_ino, st.st_mode, true};
}

// A socket bound at path and then closed without unlinking: what a crashed server leaves.
void make_stale_socket(const Address& a) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::bind(fd, a.sockaddr_ptr(), a.length()), 0) << std::strerror(errno);
  ASSERT_EQ(::listen(fd, 4), 0);
  ::close(fd);
}

class UnixListenerTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
    ASSERT_TRUE(dir_.ok());
    path_ = dir_.file("svc.sock");
    auto a = Address::parse("unix:" + path_);
    ASSERT_TRUE(a.ok());
    addr_ = a.value();
  }
  void TearDown() override {
    for (int fd : fds_) {
      ::close(fd);
    }
  }

  Result<void> start(Runtime& rt, Config cfg, const Address& a) {
    std::vector<Service> services;
    services.push_back(echo_service(a));
    return rt.start(cfg, std::move(services));
  }

  test::TempDir dir_;
  std::string path_;
  Address addr_;
  std::vector<int> fds_;
};

TEST_P(UnixListenerTest, StaleSocketFileIsReplacedAndServed) {
  make_stale_socket(addr_);
  ASSERT_TRUE(S_ISSOCK(file_id(path_).mode));
  ASSERT_LT(connect_to(addr_, 500), 0);  // nobody listens: ECONNREFUSED
  Runtime rt;
  auto r = start(rt, test::one_worker_config(GetParam()), addr_);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(serves(addr_));
  rt.stop(10);
  rt.wait();
}

TEST_P(UnixListenerTest, LiveServerKeepsItsSocketAndStartFailsWithAddressInUse) {
  Runtime live;
  auto r = start(live, test::one_worker_config(GetParam()), addr_);
  ASSERT_TRUE(r.ok()) << r.error().message();
  const FileId before = file_id(path_);
  ASSERT_TRUE(before.exists);

  Runtime second;
  auto r2 = start(second, test::one_worker_config(GetParam()), addr_);
  ASSERT_FALSE(r2.ok()) << "a second server took over a live server's socket";
  EXPECT_EQ(r2.error(), std::error_code(EADDRINUSE, std::system_category()))
      << r2.error().message();
  EXPECT_EQ(file_id(path_), before) << "the live server's socket file was replaced";
  EXPECT_TRUE(serves(addr_)) << "the live server no longer gets connections";
  live.stop(10);
  live.wait();
}

TEST_P(UnixListenerTest, LiveListenerWithAFullBacklogIsNotStale) {
  // A live server that is slow to accept: a probe connect() gets EAGAIN, not ECONNREFUSED.
  int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  fds_.push_back(lfd);
  ASSERT_EQ(::bind(lfd, addr_.sockaddr_ptr(), addr_.length()), 0);
  ASSERT_EQ(::listen(lfd, 0), 0);
  bool full = false;
  for (int i = 0; i < 64 && !full; ++i) {
    int c = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(c, 0);
    fds_.push_back(c);
    if (::connect(c, addr_.sockaddr_ptr(), addr_.length()) != 0) {
      ASSERT_EQ(errno, EAGAIN);
      full = true;
    }
  }
  ASSERT_TRUE(full);
  const FileId before = file_id(path_);
  Runtime rt;
  auto r = start(rt, test::one_worker_config(GetParam()), addr_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), std::error_code(EADDRINUSE, std::system_category()));
  EXPECT_EQ(file_id(path_), before);
}

TEST_P(UnixListenerTest, RegularFileAtThePathIsNeverRemoved) {
  std::FILE* f = std::fopen(path_.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("precious", f);
  std::fclose(f);
  const FileId before = file_id(path_);
  Runtime rt;
  auto r = start(rt, test::one_worker_config(GetParam()), addr_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), std::error_code(EADDRINUSE, std::system_category()));
  EXPECT_EQ(file_id(path_), before);
}

TEST_P(UnixListenerTest, SymlinkAtThePathIsNeverRemoved) {
  // Even when it points at a stale socket: the link is not ours to delete.
  auto target = Address::parse("unix:" + dir_.file("target.sock"));
  ASSERT_TRUE(target.ok());
  make_stale_socket(target.value());
  ASSERT_EQ(::symlink(dir_.file("target.sock").c_str(), path_.c_str()), 0);
  const FileId before = file_id(path_);
  Runtime rt;
  auto r = start(rt, test::one_worker_config(GetParam()), addr_);
  ASSERT_FALSE(r.ok()) << "the symlink was unlinked and replaced";
  EXPECT_EQ(r.error(), std::error_code(EADDRINUSE, std::system_category()));
  EXPECT_EQ(file_id(path_), before);
}

TEST_P(UnixListenerTest, SocketFileIsRemovedAtStop) {
  {
    Runtime rt;
    auto r = start(rt, test::one_worker_config(GetParam()), addr_);
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_TRUE(serves(addr_));
    rt.stop(10);
    rt.wait();
    EXPECT_FALSE(file_id(path_).exists) << "wait() left the socket file behind";
  }
  {
    // The destructor alone (no stop/wait) also cleans up.
    Runtime rt;
    auto r = start(rt, test::one_worker_config(GetParam()), addr_);
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_TRUE(serves(addr_));
  }
  EXPECT_FALSE(file_id(path_).exists) << "~Runtime() left the socket file behind";
}

TEST_P(UnixListenerTest, NewerServersSocketIsNotRemovedAtStop) {
  Runtime old_server;
  auto r = start(old_server, test::one_worker_config(GetParam()), addr_);
  ASSERT_TRUE(r.ok()) << r.error().message();
  // A newer server replaced the path (an operator removed the file and started another).
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  int newer = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(newer, 0);
  fds_.push_back(newer);
  ASSERT_EQ(::bind(newer, addr_.sockaddr_ptr(), addr_.length()), 0);
  ASSERT_EQ(::listen(newer, 4), 0);
  const FileId newer_id = file_id(path_);
  old_server.stop(10);
  old_server.wait();
  EXPECT_EQ(file_id(path_), newer_id) << "stop removed a socket this runtime did not create";
  int c = connect_to(addr_, 1000);
  EXPECT_GE(c, 0) << "the newer server is unreachable";
  ::close(c);
}

TEST_P(UnixListenerTest, AbstractAddressStartsAndRestarts) {
  std::random_device rd;
  auto a =
      Address::parse("unix:@weft-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  ASSERT_TRUE(a.ok());
  for (int round = 0; round < 2; ++round) {
    Runtime rt;
    auto r = start(rt, test::one_worker_config(GetParam()), a.value());
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_TRUE(serves(a.value()));
    rt.stop(10);
    rt.wait();
  }
}

TEST_P(UnixListenerTest, ReusePortHandsOffOnlyTheUnixListener) {
  Config cfg = test::one_worker_config(GetParam());
  cfg.workers = 2;
  cfg.accept_mode = AcceptMode::reuseport;
  std::vector<Service> services;
  services.push_back(echo_service(Address::loopback_v4(0)));
  services.push_back(echo_service(addr_));
  Runtime rt;
  auto r = rt.start(cfg, std::move(services));
  ASSERT_TRUE(r.ok()) << r.error().message();
  const Address tcp = rt.local_address(0);

  // TCP: each worker has its own SO_REUSEPORT listener and keeps what it accepts.
  std::vector<int> fds;
  for (int i = 0; i < 16; ++i) {
    fds.push_back(connect_to(tcp));
    ASSERT_GE(fds.back(), 0);
    ASSERT_TRUE(echo_once(fds.back(), static_cast<std::uint8_t>(i)));
  }
  ASSERT_TRUE(eventually([&] { return rt.stats().accepted == 16; }));
  const auto w0 = rt.worker(0).stats().snapshot();
  const auto w1 = rt.worker(1).stats().snapshot();
  EXPECT_EQ(w0.posts + w1.posts, 0u) << "TCP connections were handed off between workers";

  // Unix: worker 0's single listener hands connections out in turn, starting with itself.
  for (int i = 0; i < 8; ++i) {
    fds.push_back(connect_to(addr_));
    ASSERT_GE(fds.back(), 0);
    ASSERT_TRUE(echo_once(fds.back(), static_cast<std::uint8_t>(i)));
  }
  EXPECT_TRUE(eventually([&] { return rt.stats().accepted == 24; }));
  EXPECT_EQ(rt.worker(0).stats().snapshot().accepted - w0.accepted, 4u);
  EXPECT_EQ(rt.worker(1).stats().snapshot().accepted - w1.accepted, 4u);
  EXPECT_EQ(rt.worker(1).stats().snapshot().posts, 4u);
  for (int fd : fds) {
    ::close(fd);
  }
  rt.stop(10);
  rt.wait();
}

// Service::unix_socket: the file's mode is set before listen(), so it is what the file has
// once start() returns, whatever the umask; the stale-file replacement still applies.
TEST_P(UnixListenerTest, SocketFileModeIsApplied) {
  for (const std::uint32_t mode : {0600u, 0660u}) {
    make_stale_socket(addr_);  // replaced as before, then given the mode
    Runtime rt;
    std::vector<Service> services;
    services.push_back(echo_service(addr_));
    services.back().unix_socket.mode = mode;
    auto r = rt.start(test::one_worker_config(GetParam()), std::move(services));
    ASSERT_TRUE(r.ok()) << r.error().message();
    const FileId id = file_id(path_);
    ASSERT_TRUE(S_ISSOCK(id.mode));
    EXPECT_EQ(id.mode & 07777, mode) << std::oct << (id.mode & 07777);
    EXPECT_TRUE(serves(addr_));
    rt.stop(10);
    rt.wait();
    EXPECT_FALSE(file_id(path_).exists) << "the socket file was not removed at stop";
  }
}

TEST_P(UnixListenerTest, SocketFileOwnerAndGroupByNumericId) {
  // chown to oneself needs no privilege: the numeric form is parsed and applied.
  Runtime rt;
  std::vector<Service> services;
  services.push_back(echo_service(addr_));
  services.back().unix_socket.mode = 0660;
  services.back().unix_socket.owner = std::to_string(::geteuid());
  services.back().unix_socket.group = std::to_string(::getegid());
  auto r = rt.start(test::one_worker_config(GetParam()), std::move(services));
  ASSERT_TRUE(r.ok()) << r.error().message();
  struct stat st;
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_EQ(st.st_gid, ::getegid());
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_TRUE(serves(addr_));
  rt.stop(10);
  rt.wait();
}

TEST_P(UnixListenerTest, SocketFileOptionsThatCannotApplyFailStart) {
  // An unknown user name: refused before bind, no file left.
  {
    Runtime rt;
    std::vector<Service> services;
    services.push_back(echo_service(addr_));
    services.back().unix_socket.owner = "weft-no-such-user-x9";
    auto r = rt.start(test::one_worker_config(GetParam()), std::move(services));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error(), make_error_code(platform_errc::invalid_argument));
    EXPECT_FALSE(file_id(path_).exists);
  }
  // A mode that is not permission bits.
  {
    Runtime rt;
    std::vector<Service> services;
    services.push_back(echo_service(addr_));
    services.back().unix_socket.mode = 0170000;
    auto r = rt.start(test::one_worker_config(GetParam()), std::move(services));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error(), make_error_code(platform_errc::invalid_argument));
  }
  // Options on an abstract name or TCP, which have no file to apply them to.
  for (const char* text : {"unix:@weft-test-no-file", "127.0.0.1:0"}) {
    auto a = Address::parse(text);
    ASSERT_TRUE(a.ok());
    Runtime rt;
    std::vector<Service> services;
    services.push_back(echo_service(a.value()));
    services.back().unix_socket.mode = 0600;
    auto r = rt.start(test::one_worker_config(GetParam()), std::move(services));
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error(), make_error_code(platform_errc::invalid_argument)) << text;
  }
  // A chown that needs privileges (to root, when we are not root): EPERM, and the file that
  // bind() made is removed again.
  if (::geteuid() != 0) {
    Runtime rt;
    std::vector<Service> services;
    services.push_back(echo_service(addr_));
    services.back().unix_socket.owner = "0";
    auto r = rt.start(test::one_worker_config(GetParam()), std::move(services));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error(), std::error_code(EPERM, std::system_category())) << r.error().message();
    EXPECT_FALSE(file_id(path_).exists) << "a failed start left its socket file";
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, UnixListenerTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::platform
