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
// connection to the next worker through the rings. A Unix service always has one listener
// (SO_REUSEPORT does not balance AF_UNIX) and hands off in either mode; the hand-off is per
// listener, so its TCP neighbours under reuseport keep what they accept.
//
// Shutdown: stop(drain_ms) asks every worker to stop accepting, lets handlers finish
// (Handler::on_drain), aborts what is left after drain_ms and ends the threads; wait() joins
// them and then removes the Unix socket files start() created, each only while its path
// still names that socket (same device and inode), so a newer server's file is left alone. Signals:
// call block_termination_signals() first thing in main() (workers inherit the mask), then
// wait_for_termination_signal() on the main thread.
#pragma once

#include <pthread.h>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <weft/base/result.h>
#include <weft/platform/address.h>
#include <weft/platform/config.h>
#include <weft/platform/loop.h>
#include <weft/platform/shared_buffers.h>
#include <weft/platform/stats.h>

namespace weft::platform {

// The file of a Unix-domain listener (unix:/path): who may connect is decided by the file's
// mode and owner, as for any file (connect() needs write permission on it). Applied by
// start() right after bind() and before listen(), so no client can connect while the file
// still has the mode the umask gave it. Errors come back from start() (logged with the path):
// EPERM for a chown the process has no right to (changing the owner needs CAP_CHOWN; the
// group, membership of it), invalid_argument for an unknown user or group name, and for
// options set on a TCP or abstract (unix:@name) address, which have no file to apply them to.
// The directory holding the socket must not be writable by untrusted users (they could
// rename the file between bind and chmod; see docs/security.md).
struct UnixSocketOptions {
  std::uint32_t mode = 0;  // 0: as the umask made it; else the permission bits, e.g. 0660
  std::string owner;       // user name or numeric uid ("1000"); empty: unchanged
  std::string group;       // group name or numeric gid; empty: unchanged
  [[nodiscard]] bool empty() const noexcept { return mode == 0 && owner.empty() && group.empty(); }
};

struct Service {
  Address address;
  // Called once per worker, on that worker's thread before its loop runs, to make the
  // worker's factory (typically owning a preallocated pool of handlers). Must not return
  // null. Calls for different workers may run concurrently.
  std::function<std::unique_ptr<HandlerFactory>(Loop&)> make_factory;
  // For unix:/path addresses: mode and ownership of the socket file (see above). Last, so
  // that {address, make_factory} still initialises a Service.
  UnixSocketOptions unix_socket = {};
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
  // Joins the workers (after stop(), or after they ended on their own), then removes the
  // socket files of Unix services (see the shutdown note above). The destructor does both.
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
  // The runtime's shared buffers (Config::shared_buffers of them), or nullptr when none.
  [[nodiscard]] SharedBuffers* shared() noexcept {
    return shared_.count() != 0 ? &shared_ : nullptr;
  }

 private:
  struct Startup;
  struct WorkerArgs;
  static void* worker_main(void* arg) noexcept;
  void close_listen_fds() noexcept;
  void remove_unix_files() noexcept;

  // A socket file bound by start(), identified as bind() left it.
  struct UnixFile {
    std::string path;
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
  };

  Config cfg_;
  SharedBuffers shared_;  // before loops_: outlives every queue that references it
  std::vector<Service> services_;
  std::vector<bool> hand_off_;                // [service]
  std::vector<std::vector<int>> listen_fds_;  // [worker][service] until a loop owns it
  std::unique_ptr<Startup> startup_;
  std::vector<Address> bound_;
  std::vector<UnixFile> unix_files_;  // removed by wait()
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
// SO_REUSEPORT when asked). A Unix path that already exists is probed with connect() first:
// a stale socket (refused) is removed; a socket a running server owns (connected, or backlog
// full) and anything that is not a socket (file, symlink) are left alone and give EADDRINUSE,
// logged with the path. Abstract names (unix:@name) have no file. `unix_opts` (not empty only
// for a unix:/path address) sets the file's mode and owner between bind() and listen(); a
// failure closes the socket and removes the file it made. Errors: EADDRINUSE, errno of
// socket/bind/listen/chmod/chown (or of the probe, e.g. EACCES), invalid_argument (unix_opts
// on another address, or an owner/group name that does not resolve).
[[nodiscard]] Result<int> listen_socket(const Address& addr, bool reuseport, int backlog,
                                        const UnixSocketOptions& unix_opts = {}) noexcept;

}  // namespace weft::platform
