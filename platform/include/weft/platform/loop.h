// platform::Loop — one worker's event loop: dispatch of completions and the iteration.
//
// Design: a Loop owns a backend (io_uring or epoll; private), a BufferPool, a table of
// connection slots (conn.h), a TimerWheel, the segment arrays its output queues borrow, an
// acceptor for its listeners and a mailbox for posts. All of it is allocated in create(); the
// steady state allocates nothing. One iteration: wait for completions, dispatch them to the
// connections' handlers, fire timers, run posts and deferred work, deliver input held while
// paused, tell connections that have room again (on_writable), re-arm parked receives,
// flush every connection with new output in one vectored send each, and finalize closed
// connections, in that order.
//
// Units (platform/src): conn.cc (the Conn API), out_queue.cc (segments, copies, pinning),
// conn_table.h (slots, generations, free lists, work lists), acceptor.cc (listeners, limits,
// back-off, hand-off), mailbox.cc (posts, inject, wake-up coalescing), deadlines.cc (which
// timeout is due), loop.cc (dispatch and the iteration).
//
// Threading: every member function must be called on the loop's own thread unless its
// comment says otherwise. Handler callbacks run on that thread and are never re-entered.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>

#include <weft/base/result.h>
#include <weft/platform/address.h>
#include <weft/platform/buffer_pool.h>
#include <weft/platform/config.h>
#include <weft/platform/conn.h>
#include <weft/platform/detail/out_queue.h>
#include <weft/platform/detail/work_list.h>
#include <weft/platform/error.h>
#include <weft/platform/post.h>
#include <weft/platform/stats.h>
#include <weft/platform/timer_wheel.h>

namespace weft::platform {

namespace detail {
class Backend;
class Acceptor;
class Mailbox;
class ConnTable;
struct Completion;
}  // namespace detail

class SharedBuffers;

// Options of one outbound connection (Loop::connect).
struct ConnectOptions {
  std::uint32_t timeout_ms = 0;  // 0: Config::connect_timeout_ms
  Context context;               // set on the Conn before the factory's create() sees it
};

class Loop {
 public:
  // Allocates everything the worker needs from cfg. `index` names the worker in logs, posts
  // and ConnIds. shared (optional, may be null) is the runtime's SharedBuffers that
  // Conn::send_shared queues from. Errors: invalid_argument (cfg.validate(), the field is
  // logged), backend_unavailable, ENOMEM, EMFILE.
  [[nodiscard]] static Result<std::unique_ptr<Loop>> create(
      const Config& cfg, std::uint32_t index, SharedBuffers* shared = nullptr) noexcept;
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // ---- services
  // Starts accepting on an already-bound, listening socket (the Loop takes ownership of fd).
  // Connections are served by handlers from factory, which must outlive the Loop. With
  // hand_off, accepted connections go to the accept targets in turn (set_accept_targets)
  // instead of this loop. Returns the service index (the same on every worker when services
  // are added in the same order). Errors: listener_limit (kMaxListeners services).
  [[nodiscard]] Result<std::uint32_t> add_listener(int fd, HandlerFactory& factory,
                                                   bool hand_off = false) noexcept;
  // Registers a service this loop serves without listening (it gets hand-offs).
  [[nodiscard]] Result<std::uint32_t> add_service(HandlerFactory& factory) noexcept;
  // The loops hand_off listeners give connections to, in turn (this loop may be among
  // them). Set before run(); the span must outlive the loop.
  void set_accept_targets(std::span<Loop* const> targets) noexcept;
  static constexpr std::uint32_t kMaxListeners = 8;
  static constexpr std::uint32_t kNoStash = 0xffffffffu;

  // ---- connections
  // Outbound connection: the factory's handler sees on_open, or on_close(error) — timed_out
  // after the connect timeout. Counted against Config::outbound_connections, never against
  // the inbound limit. Errors: connection_limit, shutting_down, closed (the factory refused),
  // errno from socket().
  [[nodiscard]] Result<ConnId> connect(const Address& addr, HandlerFactory& factory,
                                       const ConnectOptions& options = {}) noexcept;
  // The live connection for id, or nullptr when it has gone (or id names another worker).
  [[nodiscard]] Conn* find(ConnId id) noexcept;

  // ---- running
  // Runs until stop() (or a drain finishes). Returns when the loop has closed everything.
  void run() noexcept;
  // One iteration: waits up to timeout_ms (-1: until something happens) for completions,
  // dispatches them, runs timers and posts, flushes output. False once the loop has stopped.
  bool run_once(int timeout_ms) noexcept;
  // Any thread: stop now (connections are aborted) / drain: stop accepting, ask handlers to
  // finish (on_drain), abort what remains after drain_ms, then stop.
  void request_stop() noexcept;
  void request_drain(std::uint32_t drain_ms) noexcept;
  // Any thread.
  [[nodiscard]] bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }

  // ---- posts and deferred work
  // Queues p for worker `target` (another worker of the same runtime; this loop's thread).
  // The target is woken once, at the end of this iteration. Errors: invalid_argument (no
  // such worker, or this one: use defer), queue_full (the ring is full: the room handler is
  // told when it has room again), closed (the target has stopped).
  [[nodiscard]] Result<void> post(std::uint32_t target, const Post& p) noexcept;
  [[nodiscard]] Result<void> post(Loop& target, const Post& p) noexcept {
    return post(target.index(), p);
  }
  // Queues p to run on this loop at the end of the current iteration (after the callback
  // that called defer has returned). Errors: queue_full (kDeferCapacity waiting).
  [[nodiscard]] Result<void> defer(const Post& p) noexcept;
  // Called on this loop's thread when the ring to `target` that reported queue_full has room.
  using PostRoomFn = void (*)(Loop& self, std::uint32_t target, void* ctx);
  void set_post_room_handler(PostRoomFn fn, void* ctx) noexcept;
  // Any thread (control plane: metrics, commands): queue p for this loop behind a mutex and
  // wake it. Errors: queue_full (kInjectCapacity waiting), closed (stopped).
  [[nodiscard]] Result<void> inject(const Post& p) noexcept;
  static constexpr std::uint32_t kInjectCapacity = 64;

  // The other workers of the runtime (peer(index()) is this loop). Set by Runtime.
  [[nodiscard]] std::uint32_t worker_count() const noexcept { return n_loops_ ? n_loops_ : 1; }
  [[nodiscard]] Loop* peer(std::uint32_t i) const noexcept;
  // Wires the rings: ring_to[i] carries posts from this loop to loop i, ring_from[i] from
  // loop i to this one. Called by Runtime before the threads start.
  void connect_rings(std::span<Loop* const> loops, std::span<PostRing* const> ring_to,
                     std::span<PostRing* const> ring_from) noexcept;
  // After the thread ended (Runtime, tests): closes connections still waiting in the rings
  // to this loop and drops other posts; returns how many posts were discarded.
  std::size_t discard_posts() noexcept;

  // ---- accessors
  [[nodiscard]] std::uint32_t index() const noexcept { return index_; }
  [[nodiscard]] BackendKind backend_kind() const noexcept { return backend_kind_; }
  [[nodiscard]] BufferPool& pool() noexcept { return pool_; }
  [[nodiscard]] SharedBuffers* shared() const noexcept { return shared_; }
  [[nodiscard]] TimerWheel& timers() noexcept { return timers_; }
  [[nodiscard]] std::uint64_t now_ms() const noexcept { return now_; }
  [[nodiscard]] const Config& config() const noexcept { return cfg_; }
  // Any thread may read stats() (relaxed counters, see stats.h).
  [[nodiscard]] WorkerStats& stats() noexcept { return stats_; }
  [[nodiscard]] std::uint32_t active_connections() const noexcept;

 private:
  friend class Conn;
  friend class detail::Acceptor;
  friend class detail::Mailbox;

  explicit Loop(const Config& cfg, std::uint32_t index, SharedBuffers* shared) noexcept;
  Result<void> init() noexcept;

  // completions
  void dispatch(const detail::Completion& c) noexcept;
  void on_recv(Conn& c, const detail::Completion& cq) noexcept;
  void on_send(Conn& c, const detail::Completion& cq) noexcept;
  void on_connect(Conn& c, const detail::Completion& cq) noexcept;
  void on_wake() noexcept;
  void check_control() noexcept;

  // connections
  void open_accepted(int fd, std::uint32_t service) noexcept;
  void start_conn(Conn& c) noexcept;
  void update_reading(Conn& c) noexcept;
  void after_queue(Conn& c, bool was_empty) noexcept;
  void flush(Conn& c) noexcept;
  void continue_close(Conn& c) noexcept;
  void begin_abort(Conn& c, std::error_code reason) noexcept;
  void maybe_finalize(Conn& c) noexcept;
  void finalize(Conn& c) noexcept;
  void deliver_stash(Conn& c) noexcept;
  bool stash(Conn& c, BufId buf, std::uint32_t off, std::uint32_t len) noexcept;
  void drop_stash(Conn& c) noexcept;
  void want_room(Conn& c) noexcept;
  void no_room(Conn& c) noexcept;  // a send found no room: counted, then want_room
  // A pause was lifted: re-arm reading, and deliver held input (or a held EOF) first.
  void unpaused(Conn& c) noexcept;
  void clear_parked(Conn& c) noexcept;  // kParked off, and out of parked_n_
  void watermark_reached(Conn& c) noexcept;
  void arm_deadline(Conn& c, std::uint64_t at) noexcept;
  // Held input pins more receive buffers than the connection's limit (nothing to copy into).
  [[nodiscard]] bool hoarding(const Conn& c) const noexcept {
    return c.stash_pins_ != 0 && c.stash_pins_ + c.out_.pinned() > cfg_.pinned_recv_limit();
  }
  // How long a hoarding connection's peer may take none of its output while others starve.
  static constexpr std::uint64_t kHoardStallMs = 100;
  void on_conn_timer(Conn& c) noexcept;
  bool timeout_fired(Conn& c, Timeout which) noexcept;

  // the iteration
  void start_drain(std::uint32_t drain_ms) noexcept;
  void abort_all(std::error_code reason) noexcept;
  void end_iteration() noexcept;
  void update_clock() noexcept;
  [[nodiscard]] std::uint32_t park_threshold() const noexcept;
  [[nodiscard]] std::uint32_t wake_slot() const noexcept;
  void update_gauges() noexcept;

  Config cfg_;
  std::uint32_t index_;
  SharedBuffers* shared_;
  BackendKind backend_kind_ = BackendKind::automatic;
  bool flush_early_ = false;  // epoll: flush a connection right after its receives
  std::unique_ptr<detail::Backend> backend_;
  BufferPool pool_;
  detail::SegmentPool segments_;
  TimerWheel timers_;
  WorkerStats stats_;
  std::unique_ptr<detail::ConnTable> conns_;
  std::unique_ptr<detail::Acceptor> acceptor_;
  std::unique_ptr<detail::Mailbox> mailbox_;
  std::unique_ptr<detail::Completion[]> completions_;
  detail::WorkList dirty_{detail::List::dirty};     // output queued: flush
  detail::WorkList final_{detail::List::finalize};  // closed, nothing in flight
  detail::WorkList parked_{detail::List::parked};   // receive ended with ENOBUFS
  std::uint32_t parked_n_ = 0;                      // connections with kParked set
  detail::WorkList room_{detail::List::room};       // waiting for on_writable
  detail::WorkList resume_{detail::List::resume};   // held input to deliver
  // Input that arrived after pause_reading(), held in order until resume_reading(). With
  // incremental receive buffers several receives can share a buffer, so entries are nodes of
  // their own (recv_buffers + 4 batches of them), not links through the buffers.
  struct StashNode {
    BufId buf;
    std::uint32_t off;
    std::uint32_t len;
    std::uint32_t next;
  };
  std::unique_ptr<StashNode[]> stash_nodes_;
  std::uint32_t stash_free_ = kNoStash;
  std::uint64_t stash_copies_ = 0;   // held pieces copied out instead of pinning
  Address* connect_addr_ = nullptr;  // per slot: the peer of an outbound connect (mmap'ed)
  std::size_t connect_addr_bytes_ = 0;
  std::uint64_t start_ns_ = 0;
  std::uint64_t now_ = 0;

  // Cross-thread control.
  std::atomic<bool> stop_requested_{false};
  std::atomic<std::uint32_t> drain_requested_ms_{0};  // 0: none; else drain time + 1
  std::atomic<bool> stopped_{false};
  bool draining_ = false;
  bool stopping_ = false;
  TimerNode drain_timer_;
  Loop* const* loops_ = nullptr;
  std::uint32_t n_loops_ = 0;
};

// Hot-path helpers, inline (every send goes through them).

inline void Loop::arm_deadline(Conn& c, std::uint64_t at) noexcept {
  if (!c.timer_.scheduled() || c.timer_.expiry > at) {
    timers_.schedule(c.timer_, at);
  }
}

inline void Loop::after_queue(Conn& c, bool was_empty) noexcept {
  if (was_empty) {
    c.send_progress_ = now_;
    if (c.timeouts_.write_ms != 0) {
      arm_deadline(c, now_ + c.timeouts_.write_ms);
    }
  }
  if (c.out_.bytes() >= cfg_.high_watermark && !c.has(Conn::kPausedWatermark | Conn::kAboveHigh)) {
    watermark_reached(c);
  }
  dirty_.push(c);
}

}  // namespace weft::platform
