// A gtest fixture that serves weft::msg on a Runtime over 127.0.0.1:0, parameterised by
// backend (io_uring runs are skipped with the reason where it is unavailable, as under qemu).
// For the tests of the server and of the layers on it (msg_pb, pubsub).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <weft/msg/server.h>
#include <weft/platform/runtime.h>

#include "msg_wire.h"
#include "test_net.h"

namespace weft::test {

// Reads one frame into buf without allocating (for zero-allocation tests); the frame's spans
// point into buf. False on EOF, timeout, a frame larger than buf or one that does not parse.
inline bool read_frame(int fd, std::span<std::byte> buf, msg::Frame& out) {
  std::byte prefix[msg::kPrefixSize];
  if (!read_exact(fd, prefix, sizeof prefix)) {
    return false;
  }
  const std::uint32_t len = (std::to_integer<std::uint32_t>(prefix[0]) << 24) |
                            (std::to_integer<std::uint32_t>(prefix[1]) << 16) |
                            (std::to_integer<std::uint32_t>(prefix[2]) << 8) |
                            std::to_integer<std::uint32_t>(prefix[3]);
  if (len > buf.size() || !read_exact(fd, buf.data(), len)) {
    return false;
  }
  auto f = msg::parse(buf.first(len));
  if (!f) {
    return false;
  }
  out = *f;
  return true;
}

class MsgServerTest : public ::testing::TestWithParam<platform::BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == platform::BackendKind::uring && !uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
  }
  void TearDown() override { stop(); }

  // The runtime's Config for `workers` workers: one_worker_config otherwise, round-robin
  // accept, 16 shared buffers of 4 KiB (answers from other workers, pub/sub events).
  [[nodiscard]] platform::Config config(std::uint32_t workers = 1) const {
    platform::Config cfg = one_worker_config(GetParam());
    cfg.workers = workers;
    cfg.shared_buffers = 16;
    cfg.shared_buffer_size = 4096;
    cfg.accept_mode = platform::AcceptMode::round_robin;
    return cfg;
  }

  // Starts `workers` workers with config() serving a Server with options o; addr_ is its
  // address.
  void start(msg::Options o, std::uint32_t workers = 1) {
    start_with(config(workers), std::move(o));
  }

  // `address` may be any form Address::parse takes ("unix:/path", "unix:@name" for the
  // tests of peer credentials and access rules).
  void start_with(const platform::Config& cfg, msg::Options o,
                  const std::string& address = "127.0.0.1:0") {
    server_ = std::make_unique<msg::Server>(std::move(o));
    rt_ = std::make_unique<platform::Runtime>();
    auto a = platform::Address::parse(address);
    ASSERT_TRUE(a.ok()) << address;
    std::vector<platform::Service> services;
    services.push_back(server_->service(a.value()));
    auto r = rt_->start(cfg, std::move(services));
    ASSERT_TRUE(r.ok()) << r.error().message();
    addr_ = rt_->local_address(0);
  }

  // Stops the workers and joins them: afterwards their state may be read from the test.
  void stop() {
    if (rt_) {
      rt_->stop();
      rt_->wait();
      rt_.reset();
    }
  }

  // The frame read is ERROR `code` for request `id`.
  static void expect_error(const std::optional<WireFrame>& w, std::uint32_t id,
                           msg::ProtocolError code) {
    ASSERT_TRUE(w.has_value());
    EXPECT_EQ(w->f.type, msg::FrameType::error);
    EXPECT_EQ(w->f.id, id);
    EXPECT_EQ(w->f.code, static_cast<std::uint16_t>(code)) << w->detail();
  }

  // The frame read is a RESPONSE to request `id` carrying `payload`.
  static void expect_response(const std::optional<WireFrame>& w, std::uint32_t id,
                              const std::string& payload) {
    ASSERT_TRUE(w.has_value());
    EXPECT_EQ(w->f.type, msg::FrameType::response)
        << (w->f.type == msg::FrameType::error ? w->detail() : "");
    EXPECT_EQ(w->f.id, id);
    EXPECT_EQ(w->payload(), payload);
  }

  // A connected client past HELLO.
  std::unique_ptr<WireClient> client() {
    auto c = std::make_unique<WireClient>(addr_);
    EXPECT_TRUE(c->ok());
    EXPECT_TRUE(c->hello().has_value());
    return c;
  }

  std::unique_ptr<msg::Server> server_;
  std::unique_ptr<platform::Runtime> rt_;
  platform::Address addr_;
};

}  // namespace weft::test
