// A blocking test client for the binary message protocol, speaking docs/protocol.md §6 with
// weft::msg::encode / parse over a plain socket: what an engineer writing a client in another
// language would do from the spec alone. Every read is bounded by the socket's timeout.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <weft/msg/frame.h>

#include "test_net.h"

namespace weft::test {

// A received frame with its own copy of the bytes (the spans of `f` point into `bytes`).
struct WireFrame {
  std::vector<std::byte> bytes;
  msg::Frame f;
  [[nodiscard]] std::string payload() const {
    return {reinterpret_cast<const char*>(f.payload.data()), f.payload.size()};
  }
  [[nodiscard]] std::string detail() const {
    return {reinterpret_cast<const char*>(f.detail.data()), f.detail.size()};
  }
  [[nodiscard]] std::string topic() const {
    return {reinterpret_cast<const char*>(f.topic.data()), f.topic.size()};
  }
};

inline std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

class WireClient {
 public:
  WireClient() = default;
  explicit WireClient(const platform::Address& a, int timeout_ms = 5000)
      : fd_(connect_to(a, timeout_ms)) {}
  ~WireClient() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  WireClient(const WireClient&) = delete;
  WireClient& operator=(const WireClient&) = delete;

  [[nodiscard]] bool ok() const { return fd_ >= 0; }
  [[nodiscard]] int fd() const { return fd_; }

  // The encoded bytes of f (prefix included).
  static std::vector<std::byte> encode(const msg::Frame& f) {
    std::vector<std::byte> out(msg::encoded_size(f));
    auto n = msg::encode(f, out);
    if (!n) {
      out.clear();
    }
    return out;
  }
  bool send(const msg::Frame& f) { return send_raw(encode(f)); }
  bool send_raw(const std::vector<std::byte>& b) { return write_all(fd_, b.data(), b.size()); }

  // Reads one frame; nullopt on EOF, timeout or a frame that does not parse.
  std::optional<WireFrame> read() {
    std::byte prefix[4];
    if (!read_exact(fd_, prefix, 4)) {
      return std::nullopt;
    }
    const std::uint32_t len = (std::to_integer<std::uint32_t>(prefix[0]) << 24) |
                              (std::to_integer<std::uint32_t>(prefix[1]) << 16) |
                              (std::to_integer<std::uint32_t>(prefix[2]) << 8) |
                              std::to_integer<std::uint32_t>(prefix[3]);
    if (len > (64u << 20)) {
      return std::nullopt;
    }
    WireFrame w;
    w.bytes.resize(len);
    if (len != 0 && !read_exact(fd_, w.bytes.data(), len)) {
      return std::nullopt;
    }
    auto parsed = msg::parse(w.bytes);
    if (!parsed) {
      return std::nullopt;
    }
    w.f = *parsed;
    return w;
  }

  // HELLO with our limits; returns the HELLO_ACK (nullopt if anything else came).
  std::optional<WireFrame> hello(std::uint32_t max_frame = 1u << 20, std::uint32_t inflight = 64,
                                 std::uint16_t version = msg::kProtocolVersion) {
    msg::Hello h;
    h.version = version;
    h.max_frame = max_frame;
    h.max_inflight = inflight;
    if (!send(msg::make_hello(h))) {
      return std::nullopt;
    }
    auto r = read();
    if (!r || r->f.type != msg::FrameType::hello_ack) {
      return std::nullopt;
    }
    return r;
  }

  bool request(std::uint32_t id, std::uint32_t method, std::string_view payload,
               std::uint32_t deadline_ms = 0, bool idempotent = false, std::uint64_t key = 0) {
    return send(msg::make_request(id, method, deadline_ms, as_bytes(payload), idempotent, key));
  }

  // Sends one REQUEST and reads the next frame (the answer when nothing else is in flight).
  std::optional<WireFrame> call(std::uint32_t id, std::uint32_t method, std::string_view payload) {
    if (!request(id, method, payload)) {
      return std::nullopt;
    }
    return read();
  }

 private:
  int fd_ = -1;
};

}  // namespace weft::test
