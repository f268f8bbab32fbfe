// weft::client::BlockingClient — a Client for tools and tests, used from ordinary threads.
//
// Design: owns a one-worker platform::Runtime (no services) whose loop thread owns a Client.
// Every member hands its work to that thread (Loop::inject) and waits for the answer on a
// condition variable, with a bound: a call waits for its deadline (CallOptions::deadline_ms,
// or BlockingOptions::call_timeout_ms when 0), which the Client enforces on its own timer
// wheel, plus a grace period for the hand-over. Answers are copied out of the receive
// buffers into the returned vector, so this wrapper allocates per call: it is not for the
// data path (use Client on a worker there).
//
// Threading: any thread except the client's own loop thread, concurrently (calls from
// several threads are multiplexed on the one connection). Events of subscribed topics are
// queued (BlockingOptions::max_events; further events are dropped and counted) and taken
// with next_event().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <weft/base/result.h>
#include <weft/client/client.h>
#include <weft/platform/address.h>
#include <weft/platform/config.h>
#include <weft/platform/runtime.h>

namespace weft::client {

struct BlockingOptions {
  Options client;  // on_state / state_ctx are the wrapper's own: leave them unset
  // The loop's limits (workers is forced to 1). Defaults: a few connections, small pools.
  platform::Config config = small_config();
  std::uint32_t connect_timeout_ms = 5000;  // connect(): until the first HELLO_ACK
  std::uint32_t call_timeout_ms = 10'000;   // deadline of calls that set none
  std::uint32_t max_events = 1024;          // queued events; more are dropped (counted)

  static platform::Config small_config() {
    platform::Config c;
    c.workers = 1;
    c.max_connections = 1;  // inbound: none are served, the minimum the Config allows
    c.outbound_connections = 4;
    c.recv_buffers = 32;
    c.send_buffers = 64;
    c.drain_timeout_ms = 1000;
    return c;
  }
};

struct Event {
  std::string topic;
  std::vector<std::byte> payload;
};

class BlockingClient {
 public:
  // Starts the loop thread, connects, and waits for the HELLO_ACK up to connect_timeout_ms.
  // Errors: the Runtime's start errors, Client::create's, timed_out (not ready in time: the
  // address is wrong or the server is down; the client is torn down).
  [[nodiscard]] static Result<std::unique_ptr<BlockingClient>> connect(
      const platform::Address& addr, const BlockingOptions& options = {});
  // Closes the client (pending calls fail with closed) and joins the loop thread.
  ~BlockingClient();
  BlockingClient(const BlockingClient&) = delete;
  BlockingClient& operator=(const BlockingClient&) = delete;

  // A call (see Client::call): the RESPONSE payload, or the call's error; Client::call's
  // immediate errors; platform queue_full (too many hand-overs waiting for the loop).
  [[nodiscard]] Result<std::vector<std::byte>> call(std::uint32_t method,
                                                    std::span<const std::byte> payload,
                                                    CallOptions options = {});
  [[nodiscard]] Result<void> message(std::uint32_t method, std::span<const std::byte> payload);
  [[nodiscard]] Result<void> publish(std::span<const std::byte> topic,
                                     std::span<const std::byte> payload);
  // Events of the topic are queued for next_event() from now on.
  [[nodiscard]] Result<void> subscribe(std::span<const std::byte> topic);
  [[nodiscard]] Result<void> unsubscribe(std::span<const std::byte> topic);
  // The next queued event, waiting up to timeout_ms. Errors: timed_out.
  [[nodiscard]] Result<Event> next_event(std::uint32_t timeout_ms);
  // A PING's round trip in ms (Client::ping's errors).
  [[nodiscard]] Result<std::uint64_t> ping(std::uint32_t timeout_ms = 2000);

  [[nodiscard]] bool ready() const noexcept { return ready_.load(std::memory_order_acquire); }
  // Waits until ready() (after a reconnect, say); false after timeout_ms.
  [[nodiscard]] bool wait_ready(std::uint32_t timeout_ms);
  [[nodiscard]] ClientStats stats();
  [[nodiscard]] std::uint64_t dropped_events() const noexcept {
    return dropped_.load(std::memory_order_relaxed);
  }

  // One hand-over to the loop thread: the work's answer, filled there.
  struct Sync;

 private:
  BlockingClient() = default;
  using Work = std::function<void(Client&, const std::shared_ptr<Sync>&)>;
  // Runs work(client, sync) on the loop thread and waits until it (or a callback it set up)
  // finished sync, up to wait_ms. Errors: queue_full, closed (the loop stopped), timed_out.
  Result<std::shared_ptr<Sync>> run(Work work, std::uint32_t wait_ms);
  static void on_state(void* ctx, bool ready) noexcept;
  static void on_event(void* ctx, std::span<const std::byte> topic,
                       std::span<const std::byte> payload) noexcept;

  BlockingOptions opts_;
  platform::Runtime rt_;
  bool started_ = false;            // rt_ runs
  std::unique_ptr<Client> client_;  // created, used and closed on the loop thread
  std::atomic<bool> ready_{false};
  std::mutex mu_;  // ready_'s waiters and the event queue
  std::condition_variable cv_;
  std::deque<Event> events_;
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace weft::client
