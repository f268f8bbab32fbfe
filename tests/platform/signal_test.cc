// End to end: the weft-echo process, SIGTERM while a large echo is still being written.
// The drain must finish that work (every byte arrives), close cleanly and exit 0.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/wait.h>

#include <unistd.h>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "test_net.h"

namespace {

struct Child {
  pid_t pid = -1;
  int out = -1;  // its stdout
};

Child spawn(const char* backend) {
  int p[2];
  if (::pipe(p) != 0) {
    return {};
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(p[1], 1);
    ::close(p[0]);
    ::close(p[1]);
    std::vector<std::string> args;
#if defined(WEFT_ECHO_EMULATOR)
    // "qemu-aarch64|-L|/usr/aarch64-linux-gnu": under qemu-user an exec of an ARM binary is
    // not emulated (no binfmt_misc in a container), so go through the emulator explicitly.
    const std::string emu = WEFT_ECHO_EMULATOR;
    for (std::size_t pos = 0; pos <= emu.size();) {
      const std::size_t bar = std::min(emu.find('|', pos), emu.size());
      args.push_back(emu.substr(pos, bar - pos));
      pos = bar + 1;
    }
#endif
    for (const char* a : {WEFT_ECHO_BINARY, "--port", "0", "--backend", backend, "--max-frame",
                          "8388608", "--max-conns", "2"}) {
      args.emplace_back(a);
    }
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(p[1]);
  return {pid, p[0]};
}

// Reads the "listening on 127.0.0.1:PORT" line (5 s at most).
int read_port(int fd) {
  std::string line;
  while (line.find('\n') == std::string::npos) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 5000) <= 0) {
      return -1;
    }
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      return -1;
    }
    line.append(buf, static_cast<std::size_t>(n));
  }
  auto colon = line.find("127.0.0.1:");
  return colon == std::string::npos ? -1 : std::atoi(line.c_str() + colon + 10);
}

int wait_exit(pid_t pid, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    ::usleep(10000);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return -1;
}

class SignalTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SignalTest, SigtermDrainsInFlightEchoThenExitsZero) {
  std::string why;
  if (std::strcmp(GetParam(), "uring") == 0 && !weft::test::uring_usable(&why)) {
    GTEST_SKIP() << "io_uring unavailable here: " << why;
  }
  Child child = spawn(GetParam());
  ASSERT_GT(child.pid, 0);
  const int port = read_port(child.out);
  ASSERT_GT(port, 0);
  int fd = weft::test::connect_to(
      weft::platform::Address::loopback_v4(static_cast<std::uint16_t>(port)));
  ASSERT_GE(fd, 0);
  int small = 64 * 1024;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  // A 6 MiB frame: its echo is larger than the server's socket send buffer (4 MiB at most
  // by default) plus our 64 KiB receive buffer, so the server is still writing it when
  // SIGTERM arrives.
  auto frame = weft::test::make_frame(6 * 1024 * 1024, 7);
  std::thread writer([&] { weft::test::write_all(fd, frame.data(), frame.size()); });
  std::vector<std::uint8_t> in(frame.size());
  ASSERT_TRUE(weft::test::read_exact(fd, in.data(), 1));  // the echo has started
  ASSERT_EQ(::kill(child.pid, SIGTERM), 0);
  ASSERT_TRUE(weft::test::read_exact(fd, in.data() + 1, in.size() - 1));
  writer.join();
  EXPECT_EQ(in, frame);
  EXPECT_EQ(weft::test::wait_closed(fd), 0);  // a clean FIN after the last byte
  ::close(fd);                                // our FIN ends the server's linger at once
  EXPECT_EQ(wait_exit(child.pid, 10000), 0);
  ::close(child.out);
}

INSTANTIATE_TEST_SUITE_P(Backends, SignalTest, ::testing::Values("uring", "epoll"),
                         [](const auto& p) { return std::string(p.param); });

}  // namespace
