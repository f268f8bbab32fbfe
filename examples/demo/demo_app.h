// weft-demo's application: the demo HTTP endpoints (docs/getting-started.md lists them),
// the jobs, the live metrics, the dashboard's assets. A library so that tests and
// benchmarks drive the same code as the binary.
//
//   GET  /plaintext             200 "Hello, World!"
//   POST /echo                  200 with the request body (<= Options::echo_max, 256 KiB)
//   GET  /events/{topic}        SSE stream of the topic (Last-Event-ID resume)
//   POST /publish/{topic}       202; the body (<= Options::publish_max, 16 KiB) is one event
//   POST /jobs                  202 {"id":"N"} + Location; body {"duration_ms": N} optional
//   GET  /jobs/{id}[?wait=S]    {"id","status","progress"}; wait: long poll up to S seconds
//   GET  /jobs/{id}/events      SSE "progress" events of the job
//   GET  /metrics               Prometheus text
//   GET  /, /app.js, ...        the dashboard (assets compiled in)
//
// Every second worker 0 publishes a "metrics" event on topic "metrics" (JSON, what the
// dashboard draws). Memory: the job table, the long-poll waiters and the text buffers are
// allocated at start-up; serving allocates nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <weft/http/server.h>
#include <weft/http/streams.h>
#include <weft/mqtt/bridge.h>
#include <weft/mqtt/client.h>
#include <weft/platform/runtime.h>
#include <weft/pubsub/hub.h>

#include "demo_assets.h"

namespace weft::examples {

class DemoMqtt;

struct DemoOptions {
  std::uint64_t echo_max = 256 * 1024;
  std::uint64_t publish_max = 16 * 1024;
  std::uint32_t default_job_ms = 5000;
  std::uint32_t max_job_ms = 10 * 60 * 1000;
  std::uint32_t max_wait_s = 60;             // longest ?wait= honoured
  std::uint32_t job_tick_ms = 200;           // progress events while a job runs
  std::uint32_t metrics_interval_ms = 1000;  // 0: no metrics events
  std::uint32_t warmup_s = 5;                // allocations counted from then on ("after warm-up")
  std::span<const Asset> assets;
  std::string backend_reason;  // why the backend in use was chosen (shown on the dashboard)
  std::vector<int> cpus;       // worker i's cpu (shown), empty: not pinned
  DemoMqtt* mqtt = nullptr;    // --mqtt: POST /publish/{topic} is also offered to the bridge
};

// --mqtt: the fleet bridge (weft::mqtt Client + Bridge) on worker 0. Local publishes (POST
// /publish/{topic}, weft-cli publish) go out by the bridge's `out` rules; broker messages
// matching its `in` rules are published on the mapped local topic through the Streams (so an
// SSE client of /events/cmd%2Fdemo sees fleet/<id>/cmd/demo). Publishes on other workers reach
// worker 0 through a Post carrying one of kSlots preallocated copies (none free: dropped and
// counted). Memory: the Session's queue (64 x 16.5 KiB) and the slots, at start().
class DemoMqtt {
 public:
  static constexpr std::size_t kSlots = 16;
  static constexpr std::size_t kMaxTopic = 256;
  static constexpr std::size_t kMaxPayload = 16 * 1024;

  DemoMqtt(platform::Address broker, std::string device_id, mqtt::BridgeConfig rules,
           http::sse::Streams& streams);
  ~DemoMqtt();
  DemoMqtt(const DemoMqtt&) = delete;
  DemoMqtt& operator=(const DemoMqtt&) = delete;

  // After Runtime::start, any thread: builds the Client and Bridge on worker 0 and connects.
  [[nodiscard]] bool start(platform::Runtime& rt);
  // After the runtime's threads ended, before it is destroyed: frees the Client and Bridge.
  void shutdown() noexcept;
  // On the worker `here`: a local publish, offered to the bridge (on worker 0).
  void forward(platform::Loop& here, std::string_view topic,
               std::span<const std::byte> payload) noexcept;
  // For /metrics (any thread): refreshed every second on worker 0.
  struct Metrics {
    std::uint64_t connected = 0;  // gauge: 1 while the broker connection is up
    std::uint64_t connects = 0;   // CONNACKs accepted
    std::uint64_t queued = 0;     // gauge: messages in the Session's queue
    std::uint64_t out = 0;
    std::uint64_t out_dropped = 0;  // the bridge's refusals + cross-worker drops
    std::uint64_t in = 0;
    std::uint64_t echo_suppressed = 0;
  };
  [[nodiscard]] Metrics metrics() const noexcept;

 private:
  struct Slot;
  static void on_start(platform::Loop& l, const platform::Post& p) noexcept;
  static void on_forward(platform::Loop& l, const platform::Post& p) noexcept;
  static void on_local(void* ctx, std::string_view topic,
                       std::span<const std::byte> payload) noexcept;
  static void on_state(void* ctx, mqtt::ClientState s, std::error_code why) noexcept;
  static void on_tick(platform::TimerNode* n) noexcept;

  platform::Address broker_;
  std::string device_;
  std::string client_id_;
  mqtt::BridgeConfig rules_;
  http::sse::Streams& streams_;
  platform::Loop* loop_ = nullptr;  // worker 0
  std::unique_ptr<mqtt::Client> client_;
  std::unique_ptr<mqtt::Bridge> bridge_;
  std::unique_ptr<Slot[]> slots_;
  std::mutex slots_mu_;
  std::atomic<std::uint64_t> dropped_{0};  // cross-worker: no slot, or the post failed
  platform::TimerNode tick_;
  std::atomic<std::uint64_t> m_[7] = {};  // Metrics' fields, in order (written on worker 0)
};

class DemoApp {
 public:
  static constexpr std::uint32_t kJobs = 256;     // jobs remembered (oldest forgotten)
  static constexpr std::uint32_t kWaiters = 256;  // long polls per worker

  DemoApp(DemoOptions options, http::sse::Streams& streams);
  ~DemoApp();
  DemoApp(const DemoApp&) = delete;
  DemoApp& operator=(const DemoApp&) = delete;

  // For ServerConfig::setup: registers the routes on worker `loop`.
  void setup(http::Router& router, platform::Loop& loop);
  // After Runtime::start: what the metrics read (any thread may call the getters).
  void started(platform::Runtime& rt, http::Server& server, pubsub::Hub* hub,
               std::function<std::uint64_t()> rpc_calls);

  struct Job {
    std::uint64_t id = 0;
    std::uint64_t start_ms = 0;  // CLOCK_MONOTONIC ms
    std::uint32_t duration_ms = 0;
  };
  // Any thread.
  [[nodiscard]] bool find_job(std::uint64_t id, Job& out) const noexcept;
  [[nodiscard]] static std::uint32_t progress(const Job& j, std::uint64_t now_ms) noexcept;
  [[nodiscard]] static std::uint64_t now_ms() noexcept;

  // Implementation (demo_app.cc).
  struct Worker;
  struct Waiter;

 private:
  struct MetricsPrev {
    std::uint64_t t = 0;
    std::uint64_t requests = 0;
    std::uint64_t per_worker[64] = {};
  };
  friend struct DemoRoutes;

  std::uint64_t add_job(std::uint32_t duration_ms) noexcept;
  std::size_t job_json(const Job& j, std::uint64_t now, std::span<char> out) const noexcept;
  std::size_t metrics_json(std::span<char> out) noexcept;
  std::size_t prometheus(std::span<char> out) const noexcept;
  static void on_metrics(platform::TimerNode* n) noexcept;
  static void on_job_tick(platform::TimerNode* n) noexcept;
  static void on_waiter(platform::TimerNode* n) noexcept;

  DemoOptions opt_;
  http::sse::Streams& streams_;
  mutable std::mutex jobs_mu_;
  Job jobs_[kJobs];
  std::uint64_t next_job_ = 1;
  std::vector<std::unique_ptr<Worker>> workers_;  // by loop index, made in setup()
  std::mutex workers_mu_;
  std::atomic<platform::Runtime*> rt_{nullptr};
  http::Server* server_ = nullptr;
  pubsub::Hub* hub_ = nullptr;
  std::function<std::uint64_t()> rpc_calls_;
  std::unique_ptr<MetricsPrev> prev_;
  std::uint64_t start_ms_ = 0;
  std::atomic<std::uint64_t> warm_allocs_{~0ull};
};

}  // namespace weft::examples
