// platform::Runtime — N pinned worker threads, each with its own Loop, serving services.
//
// start() validates the Config, parses the cpu list and binds every listening socket on the
// calling thread (so errors such as EADDRINUSE come back from start(), and port 0 resolves to
// one port shared by all workers). It then starts the threads; each pins itself to its cpu
// and creates its own Loop (pools, backend) there, and start() wires the worker-to-worker
// SPSC rings once all have reported, returning the first error if any failed. Start-up
// allocates; after it the workers do not.
//
// Accept distribution: AcceptMode::reuseport gives each worker its own SO_REUSEPORT
// listener; AcceptMode::round_robin gives worker 0 the only listener and it hands each
// connection to the next worker through the rings.
//
// Shutdown: stop(drain_ms) asks every worker to stop accepting, lets handlers finish
// (Handler::on_drain), aborts what is left after drain_ms and ends the threads; wait() joins
// them. Signals: call block_termination_signals() first thing in main() (workers inherit the
// mask), then wait_for_termination_signal() on the main thread.
#pragma once

#include <pthread.h>
#include <functional>
#include <memory>
#include <vector>

#include <weft/base/result.h>
#include <weft/platform/address.h>
#include <weft/platform/config.h>
#include <weft/platform/loop.h>
#include <weft/platform/stats.h>

namespace weft::platform {

struct Service {
  Address address;
  // Called once per worker, on that worker's thread before its loop runs, to make the
  // worker's factory (typically owning a preallocated pool of handlers). Must not return
  // null. Calls for different workers may run concurrently.
  std::function<std::unique_ptr<HandlerFactory>(Loop&)> make_factory;
};

class Runtime {
 public:
  Runtime();
  ~Runtime();  // stops (without drain) and joins if still running
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Errors: invalid_argument, invalid_cpu_list, backend_unavailable, bind/listen errno.
  [[nodiscard]] Result<void> start(const Config& cfg, std::vector<Service> services);

  // Any thread, any number of times; returns at once. drain_ms 0 = Config::drain_timeout_ms.
  void stop(std::uint32_t drain_ms = 0) noexcept;
  // Joins the workers (after stop(), or after they ended on their own).
  void wait() noexcept;

  // The address service i listens on (its port resolved when 0 was asked for).
  [[nodiscard]] const Address& local_address(std::size_t service) const noexcept {
    return bound_[service];
  }
  [[nodiscard]] std::size_t worker_count() const noexcept { return loops_.size(); }
  // For tests and metrics: the worker's loop (only its stats() may be used off-thread).
  [[nodiscard]] Loop& worker(std::size_t i) noexcept { return *loops_[i]; }
  [[nodiscard]] BackendKind backend_kind() const noexcept;
  // Sum over workers (any thread).
  [[nodiscard]] StatsSnapshot stats() const noexcept;

 private:
  struct Startup;
  struct WorkerArgs;
  static void* worker_main(void* arg) noexcept;
  void close_listen_fds() noexcept;

  Config cfg_;
  std::vector<Service> services_;
  std::vector<std::vector<int>> listen_fds_;  // [worker][service] until a loop owns it
  std::unique_ptr<Startup> startup_;
  std::vector<Address> bound_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<std::vector<std::unique_ptr<HandlerFactory>>> factories_;  // [worker][service]
  std::vector<std::unique_ptr<PostRing>> rings_;                         // [from * n + to]
  std::vector<std::vector<PostRing*>> ring_to_, ring_from_;
  std::vector<Loop*> loop_ptrs_;
  std::vector<pthread_t> threads_;
};

// Blocks SIGINT, SIGTERM and SIGPIPE in the calling thread (call before start()).
void block_termination_signals() noexcept;
// Waits for SIGINT or SIGTERM (blocked by the call above) and returns its number.
int wait_for_termination_signal() noexcept;

// Creates a listening TCP or Unix socket (non-blocking, close-on-exec, SO_REUSEADDR, and
// SO_REUSEPORT when asked). Errors: errno of socket/bind/listen.
[[nodiscard]] Result<int> listen_socket(const Address& addr, bool reuseport, int backlog) noexcept;

}  // namespace weft::platform
