// weft::client::Pool — a per-worker pool of Clients to one server, lent one caller at a time.
//
// Design: create() allocates PoolOptions::max_size Clients (each with its tables) and a wait
// queue of PoolOptions::max_waiters entries; connections are opened lazily. acquire() lends a
// ready, unlent connection; when none is free and the pool is below max_size it opens one,
// and the caller waits in a FIFO queue, up to its deadline, instead of the pool opening
// more than max_size. A full queue is refused at once (overloaded): waiting callers, not
// connections, absorb a burst, and the queue's bound keeps that wait bounded too.
//
// Upkeep (a timer every few ms to a second, from the options): at least min_idle connections
// are kept open and unlent; unlent connections above min_idle that were not lent for
// idle_timeout_ms are closed; unlent connections are checked with PING every
// health_interval_ms and one that does not answer within health_timeout_ms is reset. Broken
// connections are replaced by their Client's own reconnection (Options::reconnect, with
// backoff): a member is lent again once its new connection is ready.
//
// Threading: the worker's loop thread only; callbacks run there, never inside acquire().
// Lifetime: destroy the Pool only once idle() (after close(), run the loop until it holds),
// or once the loop has stopped. A lent Client stays the pool's: do not close or destroy it.
#pragma once

#include <cstdint>
#include <memory>

#include <weft/base/result.h>
#include <weft/client/client.h>
#include <weft/platform/address.h>
#include <weft/platform/loop.h>
#include <weft/platform/timer_wheel.h>

namespace weft::client {

// The pool's view of its server, for an owner that tracks its health (Upstream): a member
// completed its HELLO (ready), a connection attempt failed, a ready connection was lost, or
// a health PING went unanswered (`why`: the Client's reason; timed_out for health).
enum class PoolEvent : std::uint8_t { ready, connect_failed, lost, health_failed };
using PoolEventFn = void (*)(void* ctx, PoolEvent event, std::error_code why) noexcept;

struct PoolOptions {
  std::uint32_t max_size = 4;               // connections at most; then callers wait
  std::uint32_t min_idle = 1;               // ready, unlent connections kept open
  std::uint32_t idle_timeout_ms = 30'000;   // unlent above min_idle this long -> closed; 0: never
  std::uint32_t max_waiters = 64;           // wait queue; full -> acquire() returns overloaded
  std::uint32_t health_interval_ms = 5000;  // PING unlent connections this often; 0: never
  std::uint32_t health_timeout_ms = 1000;   // no PONG within this -> the connection is reset
  Options client;  // every member's options (on_state and on_failure are the pool's)
  PoolEventFn on_event = nullptr;  // optional; called on the loop thread
  void* event_ctx = nullptr;
};

// The lent connection, or timed_out (the caller's deadline passed in the queue) or closed.
using AcquireFn = void (*)(void* ctx, Result<Client*> client) noexcept;

struct PoolStats {
  std::uint64_t lent = 0;             // acquire() callbacks with a Client
  std::uint64_t waited = 0;           // callers that had to queue
  std::uint64_t wait_timeouts = 0;    // callers whose deadline passed in the queue
  std::uint64_t refused = 0;          // acquire() returned overloaded (queue full)
  std::uint64_t opened = 0;           // connections opened (not counting reconnects)
  std::uint64_t idle_closed = 0;      // connections closed by idle_timeout_ms
  std::uint64_t health_failures = 0;  // PINGs unanswered: connection reset
};

namespace detail {
struct Member;
struct Waiter;
}  // namespace detail

class Pool {
 public:
  // Errors: invalid_argument (max_size 0, min_idle > max_size, max_waiters 0,
  // health_timeout_ms 0 with health checks on), Client::create's errors.
  [[nodiscard]] static Result<std::unique_ptr<Pool>> create(platform::Loop& loop,
                                                            const platform::Address& addr,
                                                            const PoolOptions& options) noexcept;
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Queues the caller for a connection; fn(ctx, client) runs later on the loop: with a ready
  // Client lent to the caller alone until release(), or with timed_out once deadline_ms
  // (0: none) passed in the queue. Callers are served in the order they called.
  // Errors (fn is then never called): overloaded (max_waiters waiting), closed.
  [[nodiscard]] Result<void> acquire(std::uint32_t deadline_ms, AcquireFn fn, void* ctx) noexcept;
  // Gives a lent Client back (a broken one too: it reconnects, then is lent again).
  void release(Client* c) noexcept;
  // Shares instead of lending: a ready connection, the one with the fewest pending calls,
  // on which the caller may make calls now (multiplexed with other callers; do not keep the
  // pointer past the current callback), or nullptr when none is ready. It opens another
  // connection (up to max_size) when none is ready or the least loaded one is over half its
  // Options::max_calls. Never calls back; nullptr after close().
  [[nodiscard]] Client* pick() noexcept;
  // Client::fail_queued on every member: calls waiting for a connection fail with
  // not_connected (they never left). Callbacks run before it returns.
  void fail_queued() noexcept;
  // Waiters fail with closed, connections close; nothing opens again.
  void close() noexcept;

  [[nodiscard]] bool idle() const noexcept;                // after close(): every connection gone
  [[nodiscard]] std::uint32_t size() const noexcept;       // connections open or opening
  [[nodiscard]] std::uint32_t available() const noexcept;  // ready and unlent
  [[nodiscard]] std::uint32_t waiting() const noexcept { return waiting_; }
  [[nodiscard]] const PoolStats& stats() const noexcept { return stats_; }

 private:
  Pool(platform::Loop& loop, const platform::Address& addr, const PoolOptions& o) noexcept;
  Result<void> init() noexcept;
  static void on_member_state(void* ctx, bool ready) noexcept;
  static void on_member_failure(void* ctx, std::error_code why, bool was_ready) noexcept;
  static void on_health(void* ctx, Result<std::uint64_t> rtt) noexcept;
  static void on_tick(platform::TimerNode* n) noexcept;
  static void on_waiter_timer(platform::TimerNode* n) noexcept;
  void kick() noexcept;  // serve waiters at the end of this iteration
  void serve() noexcept;
  void upkeep() noexcept;
  bool open_one() noexcept;
  void unlink(detail::Waiter& w) noexcept;

  platform::Loop& loop_;
  platform::Address addr_;
  PoolOptions opts_;
  bool closing_ = false;
  bool kicked_ = false;
  std::unique_ptr<detail::Member[]> members_;
  std::unique_ptr<detail::Waiter[]> waiters_;
  std::uint32_t free_waiter_ = 0;
  std::uint32_t head_ = 0;  // FIFO of waiting callers
  std::uint32_t tail_ = 0;
  std::uint32_t waiting_ = 0;
  std::uint64_t tick_ms_ = 0;
  platform::TimerNode tick_;
  PoolStats stats_;
};

}  // namespace weft::client
