// A gtest fixture that serves weft::http::Server on a Runtime over 127.0.0.1:0,
// parameterised by backend, and a raw-socket HTTP/1.1 client that reads responses exactly
// (status line, headers, Content-Length body, or a body up to the close).
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <weft/http/server.h>
#include <weft/platform/runtime.h>

#include "test_net.h"

namespace weft::test {

struct HttpResponse {
  int status = 0;
  std::string head;  // the whole head as received
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  [[nodiscard]] std::optional<std::string> header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (k.size() == name.size() && strncasecmp(k.c_str(), name.c_str(), k.size()) == 0) {
        return v;
      }
    }
    return std::nullopt;
  }
};

// A blocking client on one connection with its own read buffer (pipelined responses may
// arrive in one read).
class HttpClient {
 public:
  explicit HttpClient(const platform::Address& a, int timeout_ms = 5000)
      : fd_(connect_to(a, timeout_ms)) {}
  ~HttpClient() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  [[nodiscard]] bool ok() const { return fd_ >= 0; }
  [[nodiscard]] int fd() const { return fd_; }

  bool send(std::string_view s) { return write_all(fd_, s.data(), s.size()); }

  // Reads one response; nullopt on EOF or timeout before a whole one. `head_only`: the
  // response to a HEAD request (no body whatever Content-Length says).
  std::optional<HttpResponse> read(bool head_only = false) {
    HttpResponse r;
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) {
        return std::nullopt;
      }
    }
    r.head = buf_.substr(0, end + 4);
    buf_.erase(0, end + 4);
    if (r.head.size() < 12 || r.head.compare(0, 9, "HTTP/1.1 ") != 0) {
      return std::nullopt;
    }
    r.status = std::atoi(r.head.c_str() + 9);
    std::size_t pos = r.head.find("\r\n") + 2;
    while (pos < end) {
      const std::size_t eol = r.head.find("\r\n", pos);
      const std::string line = r.head.substr(pos, eol - pos);
      const std::size_t colon = line.find(':');
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') {
        value.erase(0, 1);
      }
      r.headers.emplace_back(line.substr(0, colon), value);
      pos = eol + 2;
    }
    if (head_only || r.status < 200 || r.status == 204 || r.status == 304) {
      return r;
    }
    const auto cl = r.header("Content-Length");
    if (cl) {
      const std::size_t n = std::stoul(*cl);
      while (buf_.size() < n) {
        if (!fill()) {
          return std::nullopt;
        }
      }
      r.body = buf_.substr(0, n);
      buf_.erase(0, n);
      return r;
    }
    while (fill()) {  // close-delimited
    }
    r.body = std::move(buf_);
    buf_.clear();
    return r;
  }

  // Reads whatever arrives until `needle` is in the unread buffer (streams); false on timeout.
  bool read_until(const std::string& needle) {
    while (buf_.find(needle) == std::string::npos) {
      if (!fill()) {
        return false;
      }
    }
    return true;
  }
  std::string& buffered() { return buf_; }

  // True when the server closed the connection (EOF) within timeout_ms, with nothing more
  // than what is buffered.
  bool closed(int timeout_ms = 5000) {
    set_timeouts(fd_, timeout_ms);
    char tmp[4096];
    while (true) {
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n == 0) {
        return true;
      }
      if (n < 0) {
        return errno == ECONNRESET;
      }
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }

 private:
  bool fill() {
    char tmp[16384];
    ssize_t n;
    do {  // a signal to the process (another test's runtime) may interrupt the wait
      n = ::recv(fd_, tmp, sizeof tmp, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      return false;
    }
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
  }
  int fd_;
  std::string buf_;
};

class HttpServerTest : public ::testing::TestWithParam<platform::BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == platform::BackendKind::uring && !uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
  }
  void TearDown() override { stop(); }

  [[nodiscard]] platform::Config config(std::uint32_t workers = 1) const {
    platform::Config cfg = one_worker_config(GetParam());
    cfg.workers = workers;
    cfg.shared_buffers = 16;
    cfg.shared_buffer_size = 4096;
    cfg.accept_mode = platform::AcceptMode::round_robin;
    return cfg;
  }

  // Small defaults for tests: bodies up to 64 KiB, 4 body slots.
  static http::ServerConfig server_config() {
    http::ServerConfig sc;
    sc.parser.max_body_size = 64 * 1024;
    sc.body_slots = 4;
    sc.assembly_slots = 4;
    sc.overload_reserve = 2;
    return sc;
  }

  void start(http::ServerConfig sc, std::uint32_t workers = 1) {
    start_with(config(workers), std::move(sc));
  }
  void start_with(const platform::Config& cfg, http::ServerConfig sc) {
    server_ = std::make_unique<http::Server>(std::move(sc));
    rt_ = std::make_unique<platform::Runtime>();
    auto a = platform::Address::parse("127.0.0.1:0");
    ASSERT_TRUE(a.ok());
    std::vector<platform::Service> services;
    services.push_back(server_->service(a.value()));
    auto r = rt_->start(cfg, std::move(services));
    ASSERT_TRUE(r.ok()) << r.error().message();
    addr_ = rt_->local_address(0);
  }
  void stop() {
    if (rt_) {
      rt_->stop();
      rt_->wait();
      rt_.reset();
    }
  }
  std::unique_ptr<HttpClient> client() {
    auto c = std::make_unique<HttpClient>(addr_);
    EXPECT_TRUE(c->ok());
    return c;
  }
  // One request on a fresh connection; its response.
  std::optional<HttpResponse> once(const std::string& request) {
    HttpClient c(addr_);
    if (!c.ok() || !c.send(request)) {
      return std::nullopt;
    }
    return c.read(request.rfind("HEAD ", 0) == 0);
  }

  std::unique_ptr<http::Server> server_;
  std::unique_ptr<platform::Runtime> rt_;
  platform::Address addr_;
};

}  // namespace weft::test
