// A real peer: `openssl s_client` connects over 127.0.0.1 to a tiny blocking server that
// drives the Engine over the socket (bounded by a deadline). The client verifies our chain
// against the test CA, asks for ALPN "weft" and SNI "localhost", sends "ping", and must print
// the "pong" we answer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <weft/tls/tls.h>

#include "tls_test.h"

namespace weft::tls::test {
namespace {

using Clock = std::chrono::steady_clock;

bool have_openssl_cli() {
  return std::system("command -v openssl >/dev/null 2>&1") == 0;
}

// Sends everything the Engine has; false on a socket error.
bool flush(Engine& e, int fd) {
  std::vector<std::byte> buf(16 * 1024);
  for (std::size_t n = e.take(buf); n > 0; n = e.take(buf)) {
    std::size_t off = 0;
    while (off < n) {
      ssize_t w = ::send(fd, buf.data() + off, n - off, MSG_NOSIGNAL);
      if (w <= 0) {
        return false;
      }
      off += static_cast<std::size_t>(w);
    }
  }
  return true;
}

TEST(TlsRealPeer, OpenSslSClient) {
  if (!have_openssl_cli()) {
    GTEST_SKIP() << "no openssl command";
  }
  if (!Certs::get().ok()) {
    GTEST_SKIP() << "scripts/make-test-certs.sh failed";
  }
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(lfd, 1), 0);
  ASSERT_EQ(::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);

  const std::string cmd =
      "printf 'ping\\n' | timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
      " -servername localhost -CAfile " + Certs::get().file("ca.pem") +
      " -verify_return_error -alpn weft -quiet 2>/dev/null";
  FILE* client = ::popen(cmd.c_str(), "r");
  ASSERT_NE(client, nullptr);

  Context sctx = server_context({.alpn = {"weft", "http/1.1"}});
  Engine e = make_engine(sctx);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  auto left_ms = [&] {
    return static_cast<int>(std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
  };
  pollfd lp{lfd, POLLIN, 0};
  ASSERT_EQ(::poll(&lp, 1, left_ms()), 1) << "s_client did not connect";
  const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::string got;
  std::vector<std::byte> buf(16 * 1024);
  std::vector<std::byte> plain(16 * 1024);
  bool answered = false;
  while (!answered && left_ms() > 0) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left_ms()) != 1) {
      break;
    }
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) {
      break;
    }
    std::size_t off = 0;
    while (off < static_cast<std::size_t>(n)) {
      Result<std::size_t> f =
          e.feed(std::span<const std::byte>(buf).subspan(off, static_cast<std::size_t>(n) - off));
      ASSERT_TRUE(f.ok()) << f.error().message();
      off += f.value();
      for (Result<std::size_t> r = e.read(plain); r.ok() && r.value() > 0; r = e.read(plain)) {
        got.append(reinterpret_cast<const char*>(plain.data()), r.value());
      }
    }
    ASSERT_TRUE(flush(e, fd));
    if (got.find('\n') != std::string::npos) {
      ASSERT_EQ(e.write(bytes("pong\n")).value(), 5U);
      e.close();
      ASSERT_TRUE(flush(e, fd));
      answered = true;
    }
  }
  ::shutdown(fd, SHUT_WR);
  std::string out;
  char line[256];
  while (std::fgets(line, sizeof line, client) != nullptr) {
    out += line;
  }
  const int status = ::pclose(client);
  ::close(fd);
  ::close(lfd);
  EXPECT_TRUE(answered);
  EXPECT_EQ(got, "ping\n");
  EXPECT_EQ(out, "pong\n");
  EXPECT_EQ(e.alpn(), "weft");
  EXPECT_EQ(e.server_name(), "localhost");
  EXPECT_EQ(e.version(), backend() == Backend::openssl ? Version::tls13 : Version::tls12);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "s_client exit status (124: timed out)";
}

}  // namespace
}  // namespace weft::tls::test
