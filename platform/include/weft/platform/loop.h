// platform::Loop — one worker's event loop: connections, buffers, timers, cross-worker posts.
//
// Design: a Loop owns a Backend, a BufferPool, a table of Config::max_connections connection
// slots, a TimerWheel and its ends of the SPSC post rings. All of it is allocated in create();
// the steady state allocates nothing. Connections are named by ConnId {slot, generation}:
// a late answer or completion for a connection that has gone finds a newer generation and is
// dropped, never a use-after-free. A slot is reused only after every operation it had in
// flight has completed, and only at the end of a loop iteration, never inside its callbacks.
//
// Data path: the backend fills a receive buffer; the connection's Handler gets a view of the
// bytes (BufView) and may keep the buffer with a reference (send_ref or BufferPool::ref).
// Output is queued as segments pointing into pool buffers; everything queued during one
// iteration leaves in one vectored send per connection, one send in flight at a time.
//
// Threading: every member function must be called on the loop's own thread unless its
// comment says otherwise. Handler callbacks run on that thread and are never re-entered: a
// Conn method called from a callback never calls back into the handler synchronously.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <system_error>

#include <weft/platform/address.h>
#include <weft/platform/backend.h>
#include <weft/platform/buffer_pool.h>
#include <weft/platform/config.h>
#include <weft/platform/error.h>
#include <weft/platform/result.h>
#include <weft/platform/spsc_ring.h>
#include <weft/platform/stats.h>
#include <weft/platform/timer_wheel.h>

namespace weft::platform {

class Loop;
class Conn;

struct ConnId {
  std::uint32_t slot = 0xffffffffu;
  std::uint32_t gen = 0;
  [[nodiscard]] bool valid() const noexcept { return slot != 0xffffffffu; }
  friend bool operator==(ConnId, ConnId) = default;
};

// Received bytes: a view into pool buffer `buf`, valid until on_data returns unless the
// handler takes its own reference (Conn::send_ref does, BufferPool::ref does).
struct BufView {
  std::span<const std::byte> bytes;
  BufId buf = kNoBuf;
};

// A connection's protocol. One Handler object serves one connection at a time; it is created
// by a HandlerFactory when the connection opens and given back after on_close.
class Handler {
 public:
  virtual ~Handler() = default;
  // The connection is established (accepted, or an outbound connect succeeded).
  virtual void on_open(Conn&) noexcept {}
  // Bytes arrived. Consume them in place; keep a reference to retain them.
  virtual void on_data(Conn& c, BufView in) noexcept = 0;
  // The peer closed its sending side. Queued output is still delivered. Default: close().
  virtual void on_eof(Conn& c) noexcept;
  // There is room to send again: the output queue fell below Config::low_watermark after
  // reaching the high one, or a send that failed for lack of room (queue_full, no_buffers)
  // may now succeed. Called at the end of a loop iteration, never from inside a send call.
  virtual void on_writable(Conn&) noexcept {}
  // Graceful shutdown began: finish what is in flight, then close(). Default: close().
  virtual void on_drain(Conn& c) noexcept;
  // Last call for this connection: it is closed and every operation on it has completed.
  // `reason` is empty for a clean close, else why (timed_out, ECONNRESET, protocol_error...).
  virtual void on_close(Conn&, std::error_code) noexcept {}
};

// Creates and recycles Handlers for one service on one worker. Called on the loop thread.
class HandlerFactory {
 public:
  virtual ~HandlerFactory() = default;
  // A handler for the new connection, or nullptr to refuse it (closed at once).
  virtual Handler* create(Conn& c) noexcept = 0;
  // After on_close: the core holds no more references to h.
  virtual void destroy(Handler* h) noexcept = 0;
};

// One connection slot. References are valid inside callbacks; keep a ConnId across them.
class Conn {
 public:
  [[nodiscard]] ConnId id() const noexcept { return {slot_, gen_}; }
  [[nodiscard]] Loop& loop() const noexcept { return *loop_; }
  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] Handler* handler() const noexcept { return handler_; }
  [[nodiscard]] bool open() const noexcept { return state_ == State::open; }
  [[nodiscard]] std::size_t queued_bytes() const noexcept { return out_bytes_; }

  // Queues bytes that lie in pool buffer `buf` (zero copy; takes a reference released when
  // they are sent). Errors: closed (closing or closed), queue_full (Config::max_out_iov;
  // on_writable follows when a segment is free).
  [[nodiscard]] Result<void> send_ref(BufId buf, std::span<const std::byte> bytes) noexcept;
  // Copies head then body into general pool buffers and queues them; all or nothing.
  // Errors: closed, no_buffers (pool exhausted), queue_full. After either of the last two
  // the handler gets on_writable() once there may be room: keep the data and retry then.
  [[nodiscard]] Result<void> send_copy(std::span<const std::byte> head,
                                       std::span<const std::byte> body = {}) noexcept;

  // Graceful close: stop delivering input, send what is queued, shut down the write side,
  // wait briefly for the peer's FIN, then close. on_close follows.
  void close() noexcept;
  // Immediate close: queued output is dropped, the socket is reset if data was unread.
  void abort(std::error_code reason) noexcept;

  // Protocol back-pressure: stop / resume on_data (the kernel buffers, then TCP pushes back).
  // After pause_reading() returns, on_data and on_eof are not called until resume: receives
  // already in flight are held by the core (chained through the pool's per-buffer scratch
  // words, so no limit but the receive partition) and delivered, in order, at the end of
  // the iteration in which reading resumes.
  void pause_reading() noexcept;
  void resume_reading() noexcept;
  // Marks a message as started (true) or complete (false); a message left unfinished for
  // Config::read_timeout_ms closes the connection with timed_out.
  void set_mid_message(bool mid) noexcept;

  void* user = nullptr;  // free for the protocol

 private:
  friend class Loop;
  enum class State : std::uint8_t { free, connecting, open, closing, closed };

  void queue_segment(BufId buf, std::byte* base, std::size_t len) noexcept;
  Failure no_room(platform_errc why) noexcept;
  void mark_dirty() noexcept;

  Loop* loop_ = nullptr;
  Handler* handler_ = nullptr;
  HandlerFactory* factory_ = nullptr;
  int fd_ = -1;
  std::uint32_t slot_ = 0;
  std::uint32_t gen_ = 1;
  State state_ = State::free;
  std::uint8_t inflight_ = 0;  // operations the backend still owns (recv, send, connect)
  bool recv_armed_ = false;
  bool recv_cancelling_ = false;
  bool send_inflight_ = false;
  bool paused_user_ = false;
  bool paused_watermark_ = false;
  bool parked_ = false;  // recv ended with ENOBUFS; waiting for buffers
  bool eof_ = false;     // peer's FIN seen
  bool mid_message_ = false;
  bool dirty_ = false;       // on the loop's flush list
  bool finalizing_ = false;  // on the loop's finalize list
  bool in_parked_list_ = false;
  bool eof_pending_ = false;  // EOF arrived behind stashed data
  bool in_resume_list_ = false;
  std::uint32_t stash_n_ = 0;  // receives held while paused, FIFO through BufferPool::link
  BufId stash_head_ = kNoBuf;
  BufId stash_tail_ = kNoBuf;
  bool want_room_ = false;  // a send failed for lack of room: on_writable when there is some
  bool in_room_list_ = false;
  bool shut_wr_ = false;
  bool drained_ = false;           // on_drain delivered
  std::uint32_t out_n_ = 0;        // queued segments
  std::uint32_t out_sending_ = 0;  // segments [0, out_sending_) are in the send in flight
  std::size_t out_bytes_ = 0;
  iovec* iov_ = nullptr;  // Config::max_out_iov entries, owned by the Loop
  BufId* iov_buf_ = nullptr;
  msghdr msg_{};
  std::uint64_t last_activity_ = 0;  // loop ms
  std::uint64_t mid_since_ = 0;
  std::uint64_t send_progress_ = 0;
  std::uint64_t close_deadline_ = 0;  // connecting: connect deadline; closing: linger end
  std::error_code reason_;
  Address peer_;  // outbound connects only
  TimerNode timer_;
  Conn* next_dirty_ = nullptr;
  Conn* next_final_ = nullptr;
  Conn* next_parked_ = nullptr;
  Conn* next_room_ = nullptr;
  Conn* next_resume_ = nullptr;
  Conn* next_free_ = nullptr;
};

// A message posted to another worker's loop: fn(target, msg) runs on the target's thread.
struct Post {
  void (*fn)(Loop& target, const Post& msg) = nullptr;
  void* ptr = nullptr;
  std::uint64_t a = 0;
  std::uint64_t b = 0;
};

// Capacity of each worker-to-worker ring: 256 posts of 32 bytes = 8 KiB per ordered pair,
// enough for one iteration's worth of accepted-connection hand-offs or fan-out wake-ups at
// the default 256 receive completions per iteration; a full ring is reported to the sender.
inline constexpr std::size_t kPostRingSize = 256;
using PostRing = SpscRing<Post, kPostRingSize>;

class Loop {
 public:
  // Allocates everything the worker needs from cfg. `index` names the worker in logs and
  // posts. Errors: invalid_argument (cfg.validate()), backend_unavailable, ENOMEM, EMFILE.
  [[nodiscard]] static Result<std::unique_ptr<Loop>> create(const Config& cfg,
                                                            std::uint32_t index) noexcept;
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Starts accepting on an already-bound, listening socket (the Loop takes ownership of fd).
  // Connections are served by handlers from factory, which must outlive the Loop. Returns the
  // service index (used by round-robin hand-off). Errors: queue_full (8 listeners at most).
  [[nodiscard]] Result<std::uint32_t> add_listener(int fd, HandlerFactory& factory) noexcept;
  // Registers a service this loop serves without listening (round-robin accept targets).
  [[nodiscard]] Result<std::uint32_t> add_service(HandlerFactory& factory) noexcept;
  // Round-robin hand-off for one listener: the listener of `service` (an add_listener index)
  // hands each connection to these loops in turn (including itself when listed); listeners
  // without targets keep what they accept. targets must outlive the Loop. Set before run().
  void set_accept_targets(std::uint32_t service, std::span<Loop* const> targets) noexcept;

  // Outbound connection; the factory's handler sees on_open or on_close(error) (timed_out
  // after Config::connect_timeout_ms). Errors: connection_limit, errno from socket().
  [[nodiscard]] Result<ConnId> connect(const Address& addr, HandlerFactory& factory) noexcept;

  // The live connection for id, or nullptr when it has gone (generation mismatch).
  [[nodiscard]] Conn* find(ConnId id) noexcept;

  // Runs until stop() (or a drain finishes). Returns when the loop has closed everything.
  void run() noexcept;
  // One iteration: waits up to timeout_ms for completions, dispatches them, runs timers
  // and posts, flushes output. Returns false once the loop has stopped.
  bool run_once(int timeout_ms) noexcept;

  // Any thread: stop now (connections are aborted) / drain: stop accepting, ask handlers to
  // finish (on_drain), abort what remains after drain_ms, then stop.
  void request_stop() noexcept;
  void request_drain(std::uint32_t drain_ms) noexcept;
  [[nodiscard]] bool stopped() const noexcept { return stopped_; }

  // Cross-worker: queue p for `target` (a different loop; call on this loop's thread).
  // The target is woken once at the end of this iteration. Errors: queue_full.
  [[nodiscard]] Result<void> post(Loop& target, const Post& p) noexcept;
  // Any thread (control plane: metrics collection, commands): queue p for this loop behind
  // a mutex, and wake it. Errors: queue_full (kInjectCapacity posts waiting).
  [[nodiscard]] Result<void> inject(const Post& p) noexcept;
  static constexpr std::uint32_t kInjectCapacity = 64;

  // Wires the rings: ring_to[i] carries posts from this loop to loop i, ring_from[i] from
  // loop i to this one. Called by Runtime before the threads start.
  void connect_rings(std::span<Loop* const> loops, std::span<PostRing* const> ring_to,
                     std::span<PostRing* const> ring_from) noexcept;

  [[nodiscard]] std::uint32_t index() const noexcept { return index_; }
  [[nodiscard]] BackendKind backend_kind() const noexcept { return backend_->kind(); }
  [[nodiscard]] BufferPool& pool() noexcept { return pool_; }
  [[nodiscard]] TimerWheel& timers() noexcept { return timers_; }
  [[nodiscard]] std::uint64_t now_ms() const noexcept { return now_; }
  [[nodiscard]] const Config& config() const noexcept { return cfg_; }
  [[nodiscard]] WorkerStats& stats() noexcept { return stats_; }
  [[nodiscard]] std::uint32_t active_connections() const noexcept { return active_; }

 private:
  friend class Conn;
  struct Listener {
    int fd = -1;
    HandlerFactory* factory = nullptr;
    bool armed = false;
    bool closing = false;
    std::span<Loop* const> targets;  // round-robin hand-off; empty: keep every connection
    std::uint32_t next_target = 0;
    TimerNode retry;  // re-arm after EMFILE/ENFILE
  };
  static constexpr std::uint32_t kMaxListeners = 8;

  explicit Loop(const Config& cfg, std::uint32_t index) noexcept;
  Result<void> init() noexcept;

  void dispatch(const Completion& c) noexcept;
  void on_accept(std::uint32_t li, const Completion& c) noexcept;
  void on_recv(Conn& c, const Completion& cq) noexcept;
  void on_send(Conn& c, const Completion& cq) noexcept;
  void on_connect(Conn& c, const Completion& cq) noexcept;
  void on_wake() noexcept;
  void check_control() noexcept;
  void wake() noexcept;  // any thread: signals wake_fd_
  static void adopt_accepted(Loop& loop, const Post& p) noexcept;
  [[nodiscard]] std::uint32_t wake_slot() const noexcept;
  void after_queue(Conn& c, bool was_empty) noexcept;
  void continue_close(Conn& c) noexcept;
  void release_slot(Conn& c) noexcept;
  void deliver_stash(Conn& c) noexcept;

  Conn* alloc_conn() noexcept;
  void open_accepted(int fd, std::uint32_t service) noexcept;
  void start_conn(Conn& c) noexcept;
  void update_reading(Conn& c) noexcept;
  void flush(Conn& c) noexcept;
  void consume_sent(Conn& c, std::size_t n) noexcept;
  void begin_abort(Conn& c, std::error_code reason) noexcept;
  void maybe_finalize(Conn& c) noexcept;
  void finalize(Conn& c) noexcept;
  void arm_deadline(Conn& c, std::uint64_t at) noexcept;
  void on_conn_timer(Conn& c) noexcept;
  void arm_accept(std::uint32_t li) noexcept;
  void close_listeners() noexcept;
  void start_drain(std::uint32_t drain_ms) noexcept;
  void process_posts() noexcept;
  void end_iteration() noexcept;
  void update_clock() noexcept;

  Config cfg_;
  std::uint32_t index_;
  std::unique_ptr<Backend> backend_;
  BufferPool pool_;
  TimerWheel timers_;
  WorkerStats stats_;
  std::unique_ptr<Conn[]> conns_;
  std::unique_ptr<iovec[]> iov_storage_;
  std::unique_ptr<BufId[]> iov_buf_storage_;
  std::unique_ptr<Completion[]> completions_;
  Listener listeners_[kMaxListeners];
  HandlerFactory* services_[kMaxListeners] = {};
  std::uint32_t n_services_ = 0;
  Conn* free_ = nullptr;
  Conn* dirty_ = nullptr;
  Conn* final_ = nullptr;
  Conn* parked_ = nullptr;
  Conn* room_ = nullptr;    // connections waiting for room to send
  Conn* resume_ = nullptr;  // connections with stashed input to deliver
  std::uint32_t active_ = 0;
  std::uint64_t start_ns_ = 0;
  std::uint64_t now_ = 0;

  // Cross-thread control and posts.
  int wake_fd_ = -1;
  std::atomic<bool> stop_requested_{false};
  std::atomic<std::uint32_t> drain_requested_ms_{0};  // 0: none; else drain time + 1
  std::atomic<bool> wake_pending_{false};
  std::mutex inject_mu_;
  Post inject_[kInjectCapacity];
  std::uint32_t inject_head_ = 0;
  std::uint32_t inject_n_ = 0;
  std::atomic<bool> inject_any_{false};
  bool stopped_ = false;
  bool draining_ = false;
  bool stopping_ = false;
  TimerNode drain_timer_;
  Loop* const* loops_ = nullptr;
  PostRing* const* ring_to_ = nullptr;
  PostRing* const* ring_from_ = nullptr;
  std::uint32_t n_loops_ = 0;
  std::uint64_t wake_mask_[4] = {};  // loops to wake at the end of this iteration (<= 256)
};

// Defined inline, after Conn, so that Handler has no key function: code built with RTTI
// (tests, applications) and the library built without it both emit its vtable as needed.
inline void Handler::on_eof(Conn& c) noexcept {
  c.close();
}
inline void Handler::on_drain(Conn& c) noexcept {
  c.close();
}

}  // namespace weft::platform
