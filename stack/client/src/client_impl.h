// The Client's private parts, shared by its units: client.cc (creation, connections,
// received frames), calls.cc (the call table: send queue, answers, deadlines, retries) and
// one_way.cc (MESSAGE, PUBLISH, subscriptions, PING).
#pragma once

#include <cstdint>
#include <memory>

#include <weft/client/client.h>
#include <weft/frame/length_prefix.h>
#include <weft/msg/frame.h>
#include <weft/platform/buffer_pool.h>
#include <weft/platform/conn.h>
#include <weft/platform/error.h>

namespace weft::client {

namespace detail {

inline constexpr std::uint32_t kNil = 0xffffffffu;
inline constexpr std::uint32_t kLinks = 2;

struct Link final : platform::Handler {
  enum class State : std::uint8_t { idle, connecting, hello, ready, draining };
  Client* client = nullptr;
  std::uint8_t index = 0;
  State state = State::idle;
  bool subs_pending = false;  // a SUBSCRIBE found no room: resent from on_writable
  platform::ConnId conn;
  frame::LengthPrefixDecoder dec;
  std::unique_ptr<std::byte[]> assembly;
  std::uint32_t peer_max_frame = 0;
  std::uint32_t peer_max_inflight = 0;
  std::uint32_t inflight = 0;  // REQUESTs sent and not answered (cancelled ones included)
  std::uint32_t last_id = 0;   // the highest id sent on this connection
  platform::TimerNode hello_timer;

  [[nodiscard]] bool live() const noexcept { return state != State::idle; }
  void on_open(platform::Conn& c) noexcept override;
  void on_data(platform::Conn& c, platform::BufView in) noexcept override;
  void on_writable(platform::Conn& c) noexcept override;
  void on_drain(platform::Conn& c) noexcept override;
  void on_close(platform::Conn& c, std::error_code why) noexcept override;
};

struct Slot {
  enum class State : std::uint8_t { free, queued, sent, cancelled, backoff };
  Client* client = nullptr;
  State state = State::free;
  bool idempotent = false;
  std::uint8_t link = 0;
  std::uint32_t index = 0;
  std::uint32_t id = 0;
  std::uint32_t next = kNil;  // free list or send queue
  std::uint32_t prev = kNil;  // send queue
  std::uint32_t retries_left = 0;
  std::uint32_t attempt = 0;
  std::uint32_t frame_len = 0;
  std::uint64_t deadline_at = 0;  // loop ms; 0: none
  CallFn fn = nullptr;
  void* ctx = nullptr;
  platform::BufRef
      frame;  // the encoded REQUEST (prefix included); id and deadline patched per send
  platform::TimerNode deadline_timer;
  platform::TimerNode retry_timer;
};

struct Sub {
  bool used = false;
  std::uint8_t len = 0;
  EventFn fn = nullptr;
  void* ctx = nullptr;
  std::byte topic[msg::kMaxTopicSize];
  [[nodiscard]] std::span<const std::byte> name() const noexcept { return {topic, len}; }
};

// Encodes f and queues it on c: on the stack and copied when small (control frames), else
// through one general pool buffer. Errors: Conn's send errors, msg_errc::too_large (over a
// pool buffer), encode()'s errors.
Result<void> send_frame(platform::Conn& c, const msg::Frame& f) noexcept;

inline void put_u32(std::byte* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::byte>(v >> 24);
  p[1] = static_cast<std::byte>(v >> 16);
  p[2] = static_cast<std::byte>(v >> 8);
  p[3] = static_cast<std::byte>(v);
}

}  // namespace detail

// The names every unit of the Client uses (a private header: nothing outside sees them).
using detail::kLinks;
using detail::kNil;
using detail::Link;
using detail::put_u32;
using detail::send_frame;
using detail::Slot;
using detail::Sub;
using msg::Frame;
using msg::FrameType;
using msg::ProtocolError;
using platform::BufRef;
using platform::Conn;
using platform::platform_errc;
using platform::TimerNode;

}  // namespace weft::client
