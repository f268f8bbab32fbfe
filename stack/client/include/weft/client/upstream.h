// weft::client::Upstream — a named set of 1..16 endpoints (servers of the same service), each
// with its own Pool, behind one call(): balancing, health (ejection and probes) and the retry
// rules that are safe across servers.
//
// Design: create() allocates everything: a Pool per endpoint (PoolOptions each), a probe
// Client per endpoint, and UpstreamOptions::max_inflight call slots, each with a copy buffer
// of max_payload bytes (the request is kept for a retry on another endpoint). A call takes a
// slot, copies its payload, picks an endpoint and makes the call on one of that endpoint's
// ready connections (Pool::pick: calls are multiplexed, not lent). Nothing is allocated per
// call. Memory: max_inflight * max_payload bytes plus the pools.
//
// Balancing: round_robin takes the next admitted endpoint with a ready connection;
// least_outstanding the admitted, ready endpoint with the fewest calls in flight through this
// upstream (ties: round robin). When endpoints are admitted but none has a ready connection
// yet (start-up, readmission), calls wait in a FIFO, bounded by their deadlines.
//
// Health: an endpoint is ejected after eject_after consecutive transport failures of its
// pool (a connection attempt failed, a connection was lost, a health PING went unanswered),
// and at once when a connection attempt fails while none of its connections is ready. A
// ready connection (HELLO done) resets the count. An ejected endpoint gets no calls; a
// timer probes it (connect + PING on the probe Client) after probe_min_ms, doubling to
// probe_max_ms, each wait drawn from [d/2, d]; a probe that gets its PONG readmits it.
//
// Retries: a non-idempotent call is never retried: when its connection is lost after it was
// sent it fails with client_errc::connection_lost ("may or may not have run"). An idempotent
// call makes up to `attempts` attempts, each on an admitted endpoint it has not tried when
// there is one, with the same idempotency key, after connection_lost or an ERROR
// shutting_down / overloaded. Other server ERRORs are returned as they are.
//
// Deadlines: UpstreamCall::deadline_ms covers the whole call; each attempt sends the server
// what is left of it (msg::Call::deadline()).
//
// Threading: the loop's thread only (one Upstream per worker); callbacks run there, never
// inside call(). Lifetime: destroy only once idle() (after close(), run the loop until it
// holds) or once the loop has stopped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include <weft/base/result.h>
#include <weft/client/client.h>
#include <weft/client/pool.h>
#include <weft/platform/address.h>
#include <weft/platform/loop.h>

namespace weft::client {

enum class Balance : std::uint8_t { round_robin, least_outstanding };

struct UpstreamOptions {
  Balance balance = Balance::round_robin;
  PoolOptions pool;                       // per endpoint (on_event is the upstream's)
  std::uint32_t max_inflight = 256;       // calls held; full -> call() returns overloaded
  std::uint32_t max_payload = 16 * 1024;  // request kept for a retry; over -> too_large
  std::uint32_t eject_after = 2;          // consecutive transport failures -> ejected
  std::uint32_t probe_min_ms = 100;       // ejected: first probe after about this long,
  std::uint32_t probe_max_ms = 5000;      // doubling to this (jitter: [d/2, d])
  std::uint32_t probe_timeout_ms = 1000;  // connect, then PING, each within this
  std::uint32_t attempts = 2;             // idempotent calls: attempts in all (>= 1)
};

struct UpstreamCall {
  std::uint32_t deadline_ms = 0;      // whole call, all attempts; 0 = none
  bool idempotent = false;            // may be retried (on another endpoint)
  std::uint64_t idempotency_key = 0;  // 0: a fresh random key; same key on every attempt
};

// The outcome, on the loop thread: the RESPONSE payload (valid only during the callback) or
// the error; `endpoint` is the index of the endpoint that answered or failed last (-1 when
// none was tried: the deadline passed or the upstream closed while the call waited).
// Errors: a server ERROR (weft.msg.protocol) as is; platform timed_out (the deadline);
// connection_lost (non-idempotent, or attempts spent); unavailable (every endpoint was
// ejected while the call waited); closed; Client::call's errors.
using UpstreamFn = void (*)(void* ctx, Result<std::span<const std::byte>> result,
                            int endpoint) noexcept;

struct EndpointStats {
  std::uint64_t calls = 0;        // attempts made on this endpoint
  std::uint64_t ok = 0;           // answered with a RESPONSE
  std::uint64_t failures = 0;     // transport failures seen (pool events)
  std::uint32_t outstanding = 0;  // attempts in flight now
  bool admitted = false;          // false: ejected
  std::uint64_t ejections = 0;
  std::uint64_t readmissions = 0;
};

namespace detail {
struct Endpoint;
struct UpSlot;
struct Choice;
}  // namespace detail

class Upstream {
 public:
  // Errors: invalid_argument (0 or more than 16 endpoints, max_inflight 0, attempts 0,
  // eject_after 0, probe_min_ms 0 or above probe_max_ms, probe_timeout_ms 0), Pool::create's
  // and Client::create's errors, ENOMEM. `name` is for logs (truncated to 31 bytes).
  [[nodiscard]] static Result<std::unique_ptr<Upstream>> create(
      platform::Loop& loop, std::string_view name, std::span<const platform::Address> endpoints,
      const UpstreamOptions& o) noexcept;
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  // Starts REQUEST(method, payload); fn(ctx, result, endpoint) runs exactly once, later.
  // `payload` is copied before call() returns. Errors (fn is then never called): overloaded
  // (max_inflight calls held), msg_errc::too_large (payload over max_payload), unavailable
  // (no endpoint admitted), closed.
  [[nodiscard]] Result<void> call(std::uint32_t method, std::span<const std::byte> payload,
                                  const UpstreamCall& c, UpstreamFn fn, void* ctx) noexcept;

  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  [[nodiscard]] EndpointStats endpoint(std::size_t i) const noexcept;  // i < size()
  [[nodiscard]] std::string_view name() const noexcept { return {name_, name_len_}; }
  // Calls waiting fail with closed; pools and probes close; calls in flight fail with closed.
  void close() noexcept;
  [[nodiscard]] bool idle() const noexcept;  // after close(): nothing open, nothing held

 private:
  friend struct detail::Endpoint;
  Upstream(platform::Loop& loop, const UpstreamOptions& o) noexcept;
  Result<void> init(std::span<const platform::Address> endpoints) noexcept;
  static void on_pool_event(void* ctx, PoolEvent event, std::error_code why) noexcept;
  static void on_answer(void* ctx, Result<std::span<const std::byte>> r) noexcept;
  static void on_wait_timer(platform::TimerNode* n) noexcept;
  static void on_probe_timer(platform::TimerNode* n) noexcept;
  static void on_probe_state(void* ctx, bool ready) noexcept;
  static void on_probe_failure(void* ctx, std::error_code why, bool was_ready) noexcept;
  static void on_probe_pong(void* ctx, Result<std::uint64_t> rtt) noexcept;
  void dispatch(detail::UpSlot& s) noexcept;  // sends, waits, or completes the slot
  [[nodiscard]] detail::Choice choose(const detail::UpSlot& s) noexcept;
  [[nodiscard]] Result<void> send(detail::UpSlot& s, const detail::Choice& ch) noexcept;
  void wait(detail::UpSlot& s) noexcept;
  void unwait(detail::UpSlot& s) noexcept;
  void serve_waiting() noexcept;
  void fail_waiting(std::error_code why) noexcept;
  void complete(detail::UpSlot& s, Result<std::span<const std::byte>> r) noexcept;
  void free_slot(detail::UpSlot& s) noexcept;
  void eject(detail::Endpoint& e) noexcept;
  void schedule_probe(detail::Endpoint& e) noexcept;
  void probe_failed(detail::Endpoint& e) noexcept;
  [[nodiscard]] bool any_admitted() const noexcept;
  [[nodiscard]] std::uint64_t random() noexcept;

  platform::Loop& loop_;
  UpstreamOptions opts_;
  char name_[32] = {};
  std::size_t name_len_ = 0;
  bool closing_ = false;
  std::uint32_t n_ = 0;
  std::uint32_t rr_ = 0;
  std::uint64_t rng_ = 0;
  std::unique_ptr<detail::Endpoint[]> eps_;
  std::unique_ptr<detail::UpSlot[]> slots_;
  std::unique_ptr<std::byte[]> payloads_;  // max_inflight * max_payload
  std::uint32_t free_ = 0;
  std::uint32_t wait_head_ = 0;  // FIFO of calls waiting for a ready endpoint
  std::uint32_t wait_tail_ = 0;
  std::uint32_t held_ = 0;
};

}  // namespace weft::client
