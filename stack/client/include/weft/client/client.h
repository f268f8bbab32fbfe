// weft::client::Client — the client side of the binary message protocol (docs/protocol.md §6)
// on one worker's Loop: connect, HELLO, calls answered out of order through callbacks,
// deadlines, one-way MESSAGE and PUBLISH, subscriptions, PING, GOAWAY, reconnection.
//
// Design: a Client owns everything it needs from create(): a table of Options::max_calls
// pending calls (rounded up to a power of two), Options::max_subscriptions topics, and two
// connection links with frame-assembly storage of Options::max_frame bytes each (one link
// serves; the other lets a GOAWAY'd connection finish its calls while a new one takes over).
// A call's REQUEST frame is encoded once into a general buffer of the Loop's BufferPool and
// queued from there by reference; an idempotent call keeps that buffer until it is answered,
// so a retry resends the same bytes (new id, same key). Nothing is allocated per call.
//
// Correlation ids: per connection and strictly increasing, so GOAWAY's last_id divides sent
// calls cleanly. The low bits of an id are the call's slot (id & (capacity - 1)): an answer
// finds its call in O(1) without a hash. When a connection's ids would wrap, the client
// stops sending on it (as after a GOAWAY) and opens another.
//
// Limits honoured (HELLO_ACK): never more than the server's max_inflight unanswered REQUESTs
// on a connection (more calls wait, in order, in the client's queue; a timed-out call stays
// counted until the server answers its CANCEL), never a frame over the server's max_frame
// (the call fails with msg_errc::too_large). A REQUEST must also fit one pool buffer
// (Config::buffer_size): larger ones are refused by call() with msg_errc::too_large.
//
// Deadlines: CallOptions::deadline_ms is measured from call(); the REQUEST carries what is
// left when it is sent. When it passes the callback gets platform timed_out at once and a
// CANCEL goes to the server (its late answer is ignored).
//
// Reconnection (Options::reconnect): a lost connection is replaced after an exponential
// backoff (reconnect_min_ms doubling to reconnect_max_ms, with jitter: each wait is drawn
// uniformly from [d/2, d]); a successful HELLO resets it. Calls queued meanwhile wait (bounded
// by their deadlines), subscriptions are sent again, calls that were on the wire fail with
// client_errc::connection_lost, unless they are idempotent with retries left.
//
// Retries: only idempotent calls (CallOptions::idempotent, with a fresh 64-bit key from the
// client's generator, seeded from getrandom()) are retried, up to CallOptions::retries times,
// after ERROR overloaded / shutting_down, a GOAWAY that excluded them, or a lost connection;
// each wait is retry_min_ms doubling to retry_max_ms, drawn from [d/2, d], and never past the
// call's deadline. The server's idempotency table (§6.7) runs the handler at most once.
//
// GOAWAY: calls with id <= last_id still complete on the draining connection; later ones fail
// with ProtocolError::shutting_down (or are retried); new calls go to a new connection, which
// the client opens at once.
//
// Threading: every member is called on the Loop's thread; callbacks run there, each exactly
// once per accepted call, never from inside the call that registered them (no re-entrance).
// Lifetime: destroy a Client only once idle() (after close(), run the loop until it holds), or
// once its Loop has stopped; the Loop and its pool must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>

#include <weft/base/result.h>
#include <weft/client/error.h>
#include <weft/platform/address.h>
#include <weft/platform/conn.h>
#include <weft/platform/loop.h>
#include <weft/platform/timer_wheel.h>

namespace weft::msg {
struct Frame;
}  // namespace weft::msg

namespace weft::client {

// A call's outcome: the RESPONSE payload (valid only during the callback: it views the
// connection's receive or assembly buffer), or the error (see error.h for the three kinds).
using CallFn = void (*)(void* ctx, Result<std::span<const std::byte>> result) noexcept;
// An EVENT on a subscribed topic; both spans are valid only during the callback.
using EventFn = void (*)(void* ctx, std::span<const std::byte> topic,
                         std::span<const std::byte> payload) noexcept;
// A PING's round trip in milliseconds (loop clock), or timed_out / connection_lost.
using PingFn = void (*)(void* ctx, Result<std::uint64_t> rtt_ms) noexcept;
// The client became ready (HELLO_ACK received) or stopped being ready (connection lost,
// GOAWAY with no other connection, closed).
using StateFn = void (*)(void* ctx, bool ready) noexcept;
// A transport failure: a connection attempt failed (refused, timed out, HELLO refused) or a
// ready connection was lost (`was_ready`: it had completed HELLO); `why` is the reason
// (client_errc::connection_lost when the peer just closed). Not called for close() or
// reset(), whose caller knows.
using FailFn = void (*)(void* ctx, std::error_code why, bool was_ready) noexcept;

struct Options {
  std::uint32_t max_calls = 64;             // pending calls; full -> call() returns overloaded
  std::uint32_t max_frame = 16 * 1024;      // largest frame accepted (announced in HELLO);
                                            // a bigger one from the server closes the link
  std::uint32_t max_subscriptions = 16;     // topics; full -> subscribe() returns overloaded
  std::uint32_t connect_timeout_ms = 2000;  // connect, then HELLO_ACK, each within this
  bool reconnect = true;                    // replace a lost connection (backoff below)
  std::uint32_t reconnect_min_ms = 20;
  std::uint32_t reconnect_max_ms = 2000;
  std::uint32_t retry_min_ms = 5;    // first retry wait of an idempotent call
  std::uint32_t retry_max_ms = 500;  // cap of the doubling
  std::uint64_t seed = 0;            // keys and jitter; 0: from getrandom()
  StateFn on_state = nullptr;        // optional; called on the loop thread
  FailFn on_failure = nullptr;       // optional; called on the loop thread (with state_ctx)
  void* state_ctx = nullptr;
};

struct CallOptions {
  std::uint32_t deadline_ms = 0;  // from call(); 0 = none (sent as 0: no server deadline)
  bool idempotent = false;        // sent with IDEMPOTENT and a fresh random key
  std::uint32_t retries = 0;      // extra attempts, idempotent calls only
  // Idempotent calls only: 0 = a fresh random key; else this key (a caller that retries on
  // another connection or server, like Upstream, sends the same key on every attempt).
  std::uint64_t idempotency_key = 0;
};

struct ClientStats {
  std::uint64_t calls = 0;        // accepted by call()
  std::uint64_t responses = 0;    // completed with a RESPONSE
  std::uint64_t errors = 0;       // completed with an ERROR from the server
  std::uint64_t timeouts = 0;     // completed by the local deadline (CANCEL sent)
  std::uint64_t retries = 0;      // attempts resent
  std::uint64_t connects = 0;     // connections that reached ready
  std::uint64_t disconnects = 0;  // connections lost or closed
  std::uint64_t events = 0;       // EVENTs delivered
  // ERROR frames with id 0 and a non-fatal code: a MESSAGE, SUBSCRIBE, UNSUBSCRIBE or
  // PUBLISH failed on the server (docs/protocol.md §6.9); the connection stays open.
  std::uint64_t stream_errors = 0;
};

namespace detail {
struct Link;
struct Slot;
struct Sub;
}  // namespace detail

class Client final : private platform::HandlerFactory {
 public:
  // Allocates the tables. Errors: invalid_argument (max_calls 0 or > 65536, max_frame < 64,
  // a min backoff of 0 or above its max, connect_timeout_ms 0), ENOMEM.
  [[nodiscard]] static Result<std::unique_ptr<Client>> create(platform::Loop& loop,
                                                              const Options& options) noexcept;
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts connecting to addr (and keeps doing so per Options::reconnect). Calls may be made
  // at once: they wait for the HELLO. A client that was closed may connect again once idle().
  // Errors: invalid_argument (already started), closed (closed but not idle yet), and
  // Loop::connect's errors when Options::reconnect is off.
  [[nodiscard]] Result<void> connect(const platform::Address& addr) noexcept;

  // Sends REQUEST(method, payload) when a connection is ready and has room; fn(ctx, result)
  // runs exactly once, later. `payload` is copied before call() returns. Errors (fn is then
  // never called): overloaded (max_calls pending), msg_errc::too_large (the frame exceeds a
  // pool buffer, or the server's known max_frame), platform no_buffers (pool exhausted),
  // closed (after close()).
  [[nodiscard]] Result<void> call(std::uint32_t method, std::span<const std::byte> payload,
                                  const CallOptions& options, CallFn fn, void* ctx) noexcept;

  // One-way frames on the ready connection (copied before return, never answered).
  // Errors: not_connected, msg_errc::too_large, bad_field (topic 0 or > 255 bytes), and
  // Conn's send errors (queue_full, no_buffers: back-pressure, try again later).
  [[nodiscard]] Result<void> message(std::uint32_t method,
                                     std::span<const std::byte> payload) noexcept;
  [[nodiscard]] Result<void> publish(std::span<const std::byte> topic,
                                     std::span<const std::byte> payload) noexcept;

  // Subscribes to topic: fn(ctx, topic, payload) for each EVENT, on every connection from
  // now on (sent again after each reconnect) until unsubscribe(). Subscribing again to the
  // same topic replaces the callback. Errors: overloaded (max_subscriptions), bad_field.
  [[nodiscard]] Result<void> subscribe(std::span<const std::byte> topic, EventFn fn,
                                       void* ctx) noexcept;
  // Errors: invalid_argument (not subscribed).
  [[nodiscard]] Result<void> unsubscribe(std::span<const std::byte> topic) noexcept;

  // One PING at a time; fn gets the round trip, or timed_out after timeout_ms, or
  // connection_lost. Errors: not_connected, overloaded (a ping is in flight).
  [[nodiscard]] Result<void> ping(std::uint32_t timeout_ms, PingFn fn, void* ctx) noexcept;

  // Stops: pending calls fail with closed, the connections close, nothing reconnects. The
  // callbacks run before close() returns (this is the one re-entrant exception: they may not
  // call back into the client except to read its state).
  void close() noexcept;
  // Fails every call that waits to be sent (queued for a connection, never on the wire) with
  // client_errc::not_connected: safe to send elsewhere, idempotent or not. For an owner that
  // gives up on this server (Upstream ejecting an endpoint). Callbacks run before it returns.
  void fail_queued() noexcept;
  // Aborts the connections now (as if lost): reconnects per the options. For pools and tests.
  void reset() noexcept;

  [[nodiscard]] bool ready() const noexcept;  // a connection has completed HELLO
  [[nodiscard]] bool idle() const noexcept;   // no connection open, nothing pending
  [[nodiscard]] std::uint32_t pending() const noexcept { return pending_; }  // calls held
  [[nodiscard]] const ClientStats& stats() const noexcept { return stats_; }
  [[nodiscard]] platform::Loop& loop() const noexcept { return loop_; }

 private:
  friend struct detail::Link;
  Client(platform::Loop& loop, const Options& options) noexcept;
  Result<void> init() noexcept;

  platform::Handler* create(platform::Conn& c) noexcept override;
  void destroy(platform::Handler*) noexcept override {}

  // links
  void start_link() noexcept;
  void link_ready(detail::Link& l) noexcept;
  void link_closed(detail::Link& l, std::error_code why) noexcept;
  void link_frame(detail::Link& l, platform::Conn& c, std::span<const std::byte> raw) noexcept;
  void hello_ack(detail::Link& l, platform::Conn& c, std::span<const std::byte> raw) noexcept;
  void goaway(detail::Link& l, std::uint32_t last_id) noexcept;
  [[nodiscard]] detail::Link* active() noexcept;
  void schedule_reconnect() noexcept;
  static void on_reconnect_timer(platform::TimerNode* n) noexcept;
  void notify_state() noexcept;
  void notify_failure(std::error_code why, bool was_ready) noexcept;

  // calls
  void pump() noexcept;
  void answered(detail::Link& l, std::uint32_t id, std::error_code err,
                std::span<const std::byte> payload) noexcept;
  void attempt_failed(detail::Slot& s, std::error_code why) noexcept;
  void complete(detail::Slot& s, Result<std::span<const std::byte>> r) noexcept;
  void free_slot(detail::Slot& s) noexcept;
  void enqueue(detail::Slot& s) noexcept;
  void unqueue(detail::Slot& s) noexcept;
  static void on_call_timer(platform::TimerNode* n) noexcept;
  static void on_ping_timer(platform::TimerNode* n) noexcept;
  void ping_done(Result<std::uint64_t> r) noexcept;

  // one-way frames (MESSAGE, PUBLISH) on the ready connection
  Result<void> send_one_way(const msg::Frame& f) noexcept;

  // subscriptions
  [[nodiscard]] detail::Sub* find_sub(std::span<const std::byte> topic) noexcept;
  void send_subs(detail::Link& l) noexcept;

  [[nodiscard]] std::uint64_t random() noexcept;
  [[nodiscard]] std::uint64_t jitter(std::uint32_t min_ms, std::uint32_t max_ms,
                                     std::uint32_t attempt) noexcept;

  platform::Loop& loop_;
  Options opts_;
  platform::Address addr_;
  bool started_ = false;
  bool closing_ = false;
  bool was_ready_ = false;
  std::uint64_t rng_ = 0;
  std::uint32_t reconnect_attempt_ = 0;
  platform::TimerNode reconnect_timer_;
  std::unique_ptr<detail::Link[]> links_;  // kLinks
  std::unique_ptr<detail::Slot[]> slots_;
  std::uint32_t cap_ = 0;  // power of two
  std::uint32_t free_head_ = 0;
  std::uint32_t queue_head_ = 0;
  std::uint32_t queue_tail_ = 0;
  std::uint32_t pending_ = 0;
  std::uint32_t known_max_frame_ = 0;  // the last HELLO_ACK's max_frame (0: none yet)
  std::uint32_t ping_seq_ = 0;
  std::unique_ptr<detail::Sub[]> subs_;
  // The one ping in flight.
  PingFn ping_fn_ = nullptr;
  void* ping_ctx_ = nullptr;
  std::uint32_t ping_id_ = 0;
  std::uint8_t ping_link_ = 0;
  std::uint64_t ping_sent_ = 0;
  platform::TimerNode ping_timer_;
  ClientStats stats_;
};

}  // namespace weft::client
