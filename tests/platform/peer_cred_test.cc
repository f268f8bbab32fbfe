// platform::peer_credentials on both backends: a Unix-domain connection (path and abstract
// name) reports this process's pid, uid and gid as the kernel recorded them at connect time;
// a TCP connection has none (valid == false). The handler asks in on_open, as a protocol
// would, and the test reads what it saw after the worker published it.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <weft/platform/peer_cred.h>
#include <weft/platform/runtime.h>

#include "temp_dir.h"
#include "test_net.h"

namespace weft::platform {
namespace {

// What the handlers saw, per connection, in accept order.
struct Seen {
  std::mutex mu;
  std::vector<PeerCred> creds;
  std::atomic<int> count{0};
};

// Records the peer's credentials at on_open and closes the connection.
class CredHandler final : public Handler {
 public:
  explicit CredHandler(Seen* seen) : seen_(seen) {}
  void on_open(Conn& c) noexcept override {
    const PeerCred cred = peer_credentials(c);
    {
      const std::lock_guard<std::mutex> lock(seen_->mu);
      seen_->creds.push_back(cred);
    }
    seen_->count.fetch_add(1);
    c.close();
  }
  void on_data(Conn&, BufView) noexcept override {}

 private:
  Seen* seen_;
};

class CredFactory final : public HandlerFactory {
 public:
  explicit CredFactory(Seen* seen) : handler_(seen) {}
  Handler* create(Conn&) noexcept override { return &handler_; }  // one connection at a time
  void destroy(Handler*) noexcept override {}

 private:
  CredHandler handler_;
};

class PeerCredTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
  }

  // Serves `text`, connects once, waits for the handler and returns what it saw.
  PeerCred seen_by_server(const std::string& text) {
    auto a = Address::parse(text);
    EXPECT_TRUE(a.ok()) << text;
    if (!a.ok()) {
      return {};
    }
    Seen seen;
    Runtime rt;
    std::vector<Service> services;
    services.push_back({a.value(), [&seen](Loop&) -> std::unique_ptr<HandlerFactory> {
                          return std::make_unique<CredFactory>(&seen);
                        }});
    auto r = rt.start(test::one_worker_config(GetParam()), std::move(services));
    EXPECT_TRUE(r.ok()) << r.error().message();
    if (!r.ok()) {
      return {};
    }
    const int fd = test::connect_to(rt.local_address(0));
    EXPECT_GE(fd, 0);
    EXPECT_TRUE(test::eventually([&] { return seen.count.load() == 1; }));
    if (fd >= 0) {
      EXPECT_EQ(test::wait_closed(fd), 0);
      ::close(fd);
    }
    rt.stop(10);
    rt.wait();
    const std::lock_guard<std::mutex> lock(seen.mu);
    return seen.creds.empty() ? PeerCred{} : seen.creds.front();
  }

  test::TempDir dir_;
};

TEST_P(PeerCredTest, UnixPathConnectionReportsThisProcess) {
  ASSERT_TRUE(dir_.ok());
  const PeerCred c = seen_by_server("unix:" + dir_.file("cred.sock"));
  ASSERT_TRUE(c.valid);
  EXPECT_EQ(c.pid, static_cast<std::int32_t>(::getpid()));
  EXPECT_EQ(c.uid, static_cast<std::uint32_t>(::geteuid()));
  EXPECT_EQ(c.gid, static_cast<std::uint32_t>(::getegid()));
}

TEST_P(PeerCredTest, AbstractNameConnectionReportsThisProcess) {
  std::random_device rd;
  const PeerCred c =
      seen_by_server("unix:@weft-cred-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  ASSERT_TRUE(c.valid);
  EXPECT_EQ(c.pid, static_cast<std::int32_t>(::getpid()));
  EXPECT_EQ(c.uid, static_cast<std::uint32_t>(::geteuid()));
  EXPECT_EQ(c.gid, static_cast<std::uint32_t>(::getegid()));
}

TEST_P(PeerCredTest, TcpConnectionHasNoCredentials) {
  const PeerCred c = seen_by_server("127.0.0.1:0");
  EXPECT_FALSE(c.valid);
  EXPECT_EQ(c.pid, -1);
  EXPECT_EQ(c.uid, ~0u);
  EXPECT_EQ(c.gid, ~0u);
}

TEST(PeerCredFd, SocketPairAndBadDescriptors) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  const PeerCred c = peer_credentials(sv[0]);
  EXPECT_TRUE(c.valid);
  EXPECT_EQ(c.pid, static_cast<std::int32_t>(::getpid()));
  EXPECT_EQ(c.uid, static_cast<std::uint32_t>(::geteuid()));
  ::close(sv[0]);
  ::close(sv[1]);
  EXPECT_FALSE(peer_credentials(-1).valid);
  EXPECT_FALSE(peer_credentials(sv[0]).valid);  // closed
}

INSTANTIATE_TEST_SUITE_P(Backends, PeerCredTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

}  // namespace
}  // namespace weft::platform
