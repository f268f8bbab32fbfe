// weft::mqtt::Client — an MQTT 3.1.1/5.0 client on weft's event loop: a Session (session.h)
// driven over one outbound platform::Conn (TCP or a Unix socket).
//
// What it does (the Session does the protocol, the Client the I/O and the timing):
//   - start(broker): Loop::connect; on_open queues CONNECT; received bytes go through an
//     incremental Decoder (packets split across receives are assembled in a buffer the
//     Client owns) to Session::feed; what the Session produces is copied into the loop's
//     pool buffers (Conn::send_copy) and leaves at the end of the iteration;
//   - one TimerNode on the loop's wheel: keep-alive (PINGREQ after silence), the CONNACK and
//     PINGRESP deadlines (Session::poll), and the reconnect delay;
//   - a lost connection (refused, reset, closed by the broker, a malformed packet, a dead
//     keep-alive) -> StateFn(disconnected, reason), then a reconnect after Backoff::next()
//     ms (exponential, capped, full jitter; reset by a CONNACK). After the reconnect the
//     Session resubscribes and resends every unacknowledged QoS 1 message with DUP.
//
// Memory: the constructor allocates the Session (its queue and tables, session.h), the
// decoder's assembly buffer (session.max_packet_size) and one output scratch buffer; the
// steady state (publish, receive, keep-alive, reconnect) allocates nothing.
// Output back-pressure: the Client stops taking packets from the Session while the
// connection has more than `max_queued_bytes` queued (they wait in the Session's bounded
// queue) and resumes on on_writable. A packet the pool cannot take (queue_full, no_buffers)
// is kept in the scratch buffer and sent first on on_writable: nothing is lost. Owed PUBACKs
// (Session::feed's would_block) are written past the bound; should even they find no room,
// the connection is closed and the broker redelivers (QoS 1 is at least once).
//
// Threading: a Client belongs to one Loop; every call is made on that loop's thread (a
// handler, a timer, a Post). The callbacks run on it too, from inside the loop's dispatch,
// never synchronously from publish()/subscribe(); they may call publish()/subscribe() and
// stop(), but must not destroy the Client. The Client must outlive the Loop's run or be
// stop()ped and have seen its last on_close (state() == stopped) before it is destroyed.
// Errors are values; nothing throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>

#include <weft/base/result.h>
#include <weft/mqtt/codec.h>
#include <weft/mqtt/session.h>
#include <weft/platform/address.h>
#include <weft/platform/conn.h>
#include <weft/platform/loop.h>
#include <weft/platform/timer_wheel.h>

namespace weft::mqtt {

enum class ClientState : std::uint8_t {
  stopped,     // before start(), after stop()
  connecting,  // TCP connect or CONNECT sent, no CONNACK yet
  connected,   // CONNACK accepted
  waiting,     // the connection was lost: reconnecting after the backoff delay
};
const char* to_string(ClientState s) noexcept;

struct ClientConfig {
  SessionConfig session;  // its views must outlive the Client
  // Reconnect delays (Backoff): attempt n waits uniform [0, min(cap, base * 2^n)] ms.
  std::uint32_t backoff_base_ms = 500;
  std::uint32_t backoff_cap_ms = 30'000;
  std::uint64_t backoff_seed = 0;  // 0: derived from the client id (devices differ)
  // TCP connect timeout (0: the loop's Config::connect_timeout_ms).
  std::uint32_t connect_timeout_ms = 0;
  // Stop moving packets from the Session into the connection above this many queued bytes.
  std::uint32_t max_queued_bytes = 64 * 1024;
};

// An incoming application message: views valid only during the MessageFn call.
struct Message {
  std::string_view topic;
  std::span<const std::byte> payload;
  std::uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
};

struct ClientStats {
  std::uint64_t connects = 0;        // connection attempts (Loop::connect called)
  std::uint64_t connected = 0;       // CONNACKs accepted
  std::uint64_t disconnects = 0;     // connections lost after on_open
  std::uint64_t connect_failed = 0;  // attempts that never opened (refused, timed out)
  std::uint64_t bad_packets = 0;     // malformed packets from the broker (decoder errors)
  std::uint64_t refused = 0;         // packets the Session refused (protocol errors)
  std::uint64_t messages_in = 0;
  std::uint64_t acked = 0;  // QoS 1 publishes acknowledged
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint32_t last_delay_ms = 0;  // the latest reconnect delay chosen
};

class Client final : private platform::HandlerFactory, private platform::Handler {
 public:
  // Called for each incoming PUBLISH (after it was accepted; a QoS 1 PUBACK follows it).
  using MessageFn = void (*)(void* ctx, const Message& m) noexcept;
  // State changes: connected (reason empty), waiting (why the connection went: a platform
  // errno, timed_out, or an mqtt_errc such as malformed_packet, connection_refused,
  // keep_alive_timeout; empty for the broker's orderly close), stopped.
  using StateFn = void (*)(void* ctx, ClientState s, std::error_code reason) noexcept;
  // A QoS 1 publish was acknowledged (packet id as publish() returned it).
  using AckFn = void (*)(void* ctx, std::uint16_t packet_id) noexcept;

  // Allocates everything (see "Memory"). The loop must outlive the Client.
  Client(platform::Loop& loop, const ClientConfig& config);
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void on_message(MessageFn fn, void* ctx) noexcept { msg_fn_ = fn, msg_ctx_ = ctx; }
  void on_state(StateFn fn, void* ctx) noexcept { state_fn_ = fn, state_ctx_ = ctx; }
  void on_ack(AckFn fn, void* ctx) noexcept { ack_fn_ = fn, ack_ctx_ = ctx; }

  // Connects to `broker` ("127.0.0.1:1883" parsed by platform::Address, or "unix:/path") and
  // keeps reconnecting until stop(). Errors: bad_state (not stopped); an attempt that fails
  // at once (connection_limit, EMFILE) is not an error here: it is retried after the backoff.
  [[nodiscard]] Result<void> start(const platform::Address& broker) noexcept;

  // Sends DISCONNECT (when connected; the will is discarded), closes, stops reconnecting.
  // QoS 1 messages still queued stay in the Session (a later start() sends them).
  void stop() noexcept;

  // Session::publish/subscribe/unsubscribe (same errors and queue policy), then writes what
  // is due when connected.
  [[nodiscard]] Result<std::uint16_t> publish(std::string_view topic,
                                              std::span<const std::byte> payload, std::uint8_t qos,
                                              bool retain = false) noexcept;
  [[nodiscard]] Result<std::uint16_t> subscribe(std::string_view filter, std::uint8_t qos) noexcept;
  [[nodiscard]] Result<std::uint16_t> unsubscribe(std::string_view filter) noexcept;

  [[nodiscard]] ClientState state() const noexcept { return state_; }
  [[nodiscard]] const Session& session() const noexcept { return session_; }
  [[nodiscard]] const ClientStats& stats() const noexcept { return stats_; }
  [[nodiscard]] platform::Loop& loop() const noexcept { return loop_; }

 private:
  // HandlerFactory: one connection at a time, served by the Client itself.
  platform::Handler* create(platform::Conn& c) noexcept override;
  void destroy(platform::Handler* h) noexcept override;
  // Handler.
  void on_open(platform::Conn& c) noexcept override;
  void on_data(platform::Conn& c, platform::BufView in) noexcept override;
  void on_writable(platform::Conn& c) noexcept override;
  void on_close(platform::Conn& c, std::error_code reason) noexcept override;

  static void on_timer(platform::TimerNode* n) noexcept;
  void attempt() noexcept;                            // Loop::connect, or schedule the next try
  void retry_later(std::error_code reason) noexcept;  // waiting; timer at now + backoff
  // Session output -> the connection (force: past max_queued_bytes, for owed PUBACKs).
  void pump(platform::Conn& c, bool force = false) noexcept;
  void poll_session(platform::Conn& c) noexcept;             // keep-alive, deadlines, the timer
  bool handle(platform::Conn& c, const Packet& p) noexcept;  // false: the connection ends
  void abort_with(platform::Conn& c, std::error_code e) noexcept;
  void set_state(ClientState s, std::error_code reason) noexcept;
  [[nodiscard]] platform::Conn* conn() noexcept;

  platform::Loop& loop_;
  ClientConfig config_;
  Session session_;
  std::unique_ptr<std::byte[]> assembly_;
  std::unique_ptr<std::byte[]> out_;
  std::size_t out_size_ = 0;
  std::size_t pending_ = 0;  // bytes of out_ the connection refused: sent first
  Decoder decoder_;
  Backoff backoff_;
  platform::Address broker_;
  platform::ConnId id_;
  platform::TimerNode timer_;
  ClientState state_ = ClientState::stopped;
  bool have_conn_ = false;  // a Loop::connect is in flight or the connection is open
  bool opened_ = false;     // ... and it reached on_open
  bool stopping_ = false;
  std::error_code lost_reason_;  // set by fail() before the abort's on_close
  ClientStats stats_;
  MessageFn msg_fn_ = nullptr;
  void* msg_ctx_ = nullptr;
  StateFn state_fn_ = nullptr;
  void* state_ctx_ = nullptr;
  AckFn ack_fn_ = nullptr;
  void* ack_ctx_ = nullptr;
};

}  // namespace weft::mqtt
