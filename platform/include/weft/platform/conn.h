// platform::Conn — one connection as its protocol sees it, and the Handler that protocol is.
//
// Ownership: a Loop owns Config::max_connections + Config::outbound_connections Conn slots,
// allocated once. A Conn& is valid only inside a callback of its Handler (or in code that
// just got it from Loop::find); across callbacks, and across workers, keep a ConnId. A slot
// is reused only after every operation it had in flight completed, at the end of a loop
// iteration, and with a new generation, so a late ConnId finds nothing instead of a stranger.
//
// Buffers: received bytes arrive as a BufView into a receive buffer of the worker's pool,
// valid until on_data returns. To keep them longer take a BufRef (BufView::ref()): it is the
// one way to hold a pool buffer past a callback, and it gives its reference back when it is
// destroyed. Output is queued by reference (send_ref: the segment holds a reference until the
// bytes are sent), from the runtime's shared buffers (send_shared), from static storage
// (send_static) or by copy (send_copy). Queued bytes leave at the end of the iteration in one
// vectored send, one send in flight per connection.
//
// Threading: every member is called on the owning loop's thread. Callbacks are never
// re-entered: no Conn member calls back into the handler synchronously.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <system_error>

#include <weft/base/result.h>
#include <weft/platform/buffer_pool.h>
#include <weft/platform/detail/out_queue.h>
#include <weft/platform/timer_wheel.h>

namespace weft::platform {

class Loop;
class Conn;
class SharedBuffers;
struct SharedRef;
namespace detail {
class ConnTable;
class WorkList;
}  // namespace detail

// Names a connection on any worker: the worker's index, the slot and the slot's generation.
// Valid to copy anywhere; Loop::find() turns it back into a Conn* on the owning worker (or
// nullptr once that connection has gone).
struct ConnId {
  static constexpr std::uint32_t kNoSlot = 0xffffffffu;
  std::uint32_t slot = kNoSlot;
  std::uint32_t gen = 0;
  std::uint32_t worker = 0;
  [[nodiscard]] bool valid() const noexcept { return slot != kNoSlot; }
  friend bool operator==(ConnId, ConnId) = default;
};

// Received bytes: a view into a receive buffer, valid until on_data returns. ref() takes a
// reference that keeps the bytes alive (and the buffer out of the kernel's hands) until the
// BufRef is destroyed.
struct BufView {
  std::span<const std::byte> bytes;
  BufId buf = kNoBuf;
  BufferPool* pool = nullptr;
  [[nodiscard]] BufRef ref() const noexcept {
    pool->ref(buf);
    return BufRef(pool, buf);
  }
};

// Which deadline passed (Handler::on_timeout).
enum class Timeout : std::uint8_t {
  idle,   // no bytes either way for the idle time
  read,   // a message was started (set_mid_message) and not finished in time
  write,  // queued output made no progress: the peer does not read
};
const char* to_string(Timeout t) noexcept;

// Per-connection deadlines in ms (0: off). Start from Config; Conn::set_timeouts overrides.
struct Timeouts {
  std::uint32_t idle_ms = 0;
  std::uint32_t read_ms = 0;
  std::uint32_t write_ms = 0;
};

// A typed pointer for a connection's user context (no RTTI: the type is a per-type tag).
class Context {
 public:
  Context() noexcept = default;
  template <class T>
  static Context of(T* p) noexcept {
    Context c;
    c.ptr_ = p;
    c.tag_ = &tag<T>;
    return c;
  }
  // The pointer if it was stored as a T*, else nullptr.
  template <class T>
  [[nodiscard]] T* get() const noexcept {
    return tag_ == &tag<T> ? static_cast<T*>(ptr_) : nullptr;
  }
  [[nodiscard]] bool empty() const noexcept { return ptr_ == nullptr; }

 private:
  template <class T>
  static inline const char tag = 0;
  void* ptr_ = nullptr;
  const char* tag_ = nullptr;
};

// A connection's protocol. One Handler object serves one connection at a time; it comes from
// a HandlerFactory when the connection opens and goes back to it after on_close.
class Handler {
 public:
  virtual ~Handler() = default;
  // The connection is established (accepted, or an outbound connect succeeded).
  virtual void on_open(Conn&) noexcept {}
  // Bytes arrived. Consume them in place; in.ref() keeps them past the callback.
  virtual void on_data(Conn& c, BufView in) noexcept = 0;
  // The peer closed its sending side. Queued output is still delivered. Default: close().
  virtual void on_eof(Conn& c) noexcept;
  // There may be room to send again: the output queue fell below Config::low_watermark after
  // reaching the high one, or a send that failed with queue_full or no_buffers may now
  // succeed. Always called at the end of a loop iteration, never from inside a Conn call.
  virtual void on_writable(Conn&) noexcept {}
  // A deadline passed. Return false (the default) and the core closes the connection with
  // timed_out: gracefully for idle, aborted for read and write. Return true when the handler
  // dealt with it: it may have queued an answer (HTTP's 408, an ERROR frame) and closed, or
  // decided the connection lives on, in which case that deadline starts again from now.
  virtual bool on_timeout(Conn&, Timeout) noexcept { return false; }
  // Graceful shutdown began: finish what is in flight, then close(). Default: close().
  virtual void on_drain(Conn& c) noexcept;
  // Last call for this connection: it is closed and every operation on it has completed.
  // `reason` is empty for a clean close (close(), or the peer's orderly FIN), else why:
  // timed_out, a system error (ECONNRESET...), or the error the protocol passed to abort().
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

class Conn {
 public:
  [[nodiscard]] ConnId id() const noexcept;
  [[nodiscard]] Loop& loop() const noexcept { return *loop_; }
  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] Handler* handler() const noexcept { return handler_; }
  [[nodiscard]] bool open() const noexcept { return state_ == State::open; }
  [[nodiscard]] bool outbound() const noexcept { return has(kOutbound); }
  [[nodiscard]] std::size_t queued_bytes() const noexcept { return out_.bytes(); }

  // ---- output. Every send is all or nothing. Errors: closed (closing or closed);
  // queue_full (Config::max_out_iov segments queued); no_buffers (a copy found the general
  // partition empty). After queue_full or no_buffers the handler gets on_writable() once
  // there may be room: keep the data (a BufRef) and retry then.

  // Queues bytes inside the pool buffer `buf` by reference (no copy): the queue takes its own
  // reference when it needs one. Bytes contiguous with the previous segment of the same
  // buffer extend it. Receive buffers are a scarce resource: when this connection already
  // pins Config::max_pinned_recv of them in its queue, the bytes are copied into a general
  // buffer instead (so no few peers that never read can hold the receive partition).
  [[nodiscard]] Result<void> send_ref(const BufRef& buf, std::span<const std::byte> bytes) noexcept;
  [[nodiscard]] Result<void> send_ref(const BufView& in, std::span<const std::byte> bytes) noexcept;
  // Bytes of one of the runtime's shared buffers (any worker may queue the same buffer).
  [[nodiscard]] Result<void> send_shared(const SharedRef& buf,
                                         std::span<const std::byte> bytes) noexcept;
  // Bytes with static storage duration (string literals, constant tables): no reference.
  [[nodiscard]] Result<void> send_static(std::span<const std::byte> bytes) noexcept;
  // Copies head then body into general pool buffers (filling the last queued one first).
  [[nodiscard]] Result<void> send_copy(std::span<const std::byte> head,
                                       std::span<const std::byte> body = {}) noexcept;

  // Graceful close: stop delivering input, send what is queued, shut down the write side,
  // wait for the peer's FIN (Config::linger_ms), then close; on_close(clean) follows. Output
  // that cannot be flushed within Config::close_timeout_ms is dropped: on_close(timed_out).
  void close() noexcept;
  // Immediate close: queued output is dropped. `reason` (never empty: closed is used then)
  // is what on_close reports; pass the protocol's own error code.
  void abort(std::error_code reason) noexcept;

  // ---- input
  // Protocol back-pressure: after pause_reading() returns, on_data and on_eof are not called
  // until resume_reading(). Receives already in flight are held by the core, in order, and
  // delivered at the end of the iteration in which reading resumes.
  void pause_reading() noexcept;
  void resume_reading() noexcept;
  // By default reading also pauses while queued output is above Config::high_watermark and
  // resumes below the low one. A protocol that must keep reading control frames while its
  // data queues are full (window updates, pings) turns that off and pauses by itself; it
  // still gets on_writable() once output that reached the high watermark falls to the low
  // one, so it can bound its own queue by the same watermarks.
  void set_watermark_pause(bool enabled) noexcept;

  // ---- deadlines
  // Marks a message as started (true) or complete (false): a message left unfinished for
  // the read timeout is a Timeout::read.
  void set_mid_message(bool mid) noexcept {
    if (mid != has(kMidMessage)) {  // called after every input: the no-change case is inline
      mid_message_changed(mid);
    }
  }
  // Overrides this connection's deadlines (a long poll or an SSE stream is not idle).
  void set_timeouts(const Timeouts& t) noexcept;
  [[nodiscard]] const Timeouts& timeouts() const noexcept { return timeouts_; }

  // ---- user context: typed, for the protocol (Loop::connect's ConnectOptions sets it first).
  template <class T>
  void set_context(T* p) noexcept {
    context_ = Context::of(p);
  }
  template <class T>
  [[nodiscard]] T* context() const noexcept {
    return context_.get<T>();
  }

 private:
  friend class Loop;
  friend class detail::ConnTable;
  friend class detail::WorkList;
  enum class State : std::uint8_t { free, connecting, open, closing, closed };
  // Flags, all cleared when the slot is taken (flags_ = 0): no field reset by hand.
  enum : std::uint16_t {
    kRecvArmed = 1u << 0,       // a receive is in flight
    kRecvCancelling = 1u << 1,  // ... and a cancel of it was submitted
    kSendInflight = 1u << 2,
    kPausedUser = 1u << 3,       // pause_reading()
    kPausedWatermark = 1u << 4,  // output above the high watermark
    kParked = 1u << 5,           // receive ended with ENOBUFS: waiting for buffers
    kEof = 1u << 6,              // the peer's FIN was read
    kEofPending = 1u << 7,       // ... behind stashed input, not yet delivered
    kMidMessage = 1u << 8,
    kShutWr = 1u << 9,     // our FIN was sent
    kDrained = 1u << 10,   // on_drain delivered
    kWantRoom = 1u << 11,  // a send failed for lack of room: on_writable when there is
    kNoWatermarkPause = 1u << 12,
    kOutbound = 1u << 13,
    kAboveHigh = 1u << 14,  // watermark pause off: output reached the high watermark
  };
  [[nodiscard]] bool has(std::uint16_t f) const noexcept { return (flags_ & f) != 0; }
  void set(std::uint16_t f) noexcept { flags_ = static_cast<std::uint16_t>(flags_ | f); }
  void clear(std::uint16_t f) noexcept { flags_ = static_cast<std::uint16_t>(flags_ & ~f); }
  Result<void> queued(Result<void> r, bool was_empty) noexcept;
  void mid_message_changed(bool mid) noexcept;

  Loop* loop_ = nullptr;
  Handler* handler_ = nullptr;
  HandlerFactory* factory_ = nullptr;
  Context context_;
  detail::OutQueue out_;
  TimerNode timer_;  // one per connection; deadlines are evaluated lazily when it fires
  std::error_code reason_;
  int fd_ = -1;
  std::uint32_t slot_ = 0;
  std::uint32_t gen_ = 1;
  State state_ = State::free;
  std::uint8_t inflight_ = 0;  // operations the backend still owns (recv, send, connect)
  std::uint16_t flags_ = 0;
  Timeouts timeouts_;
  // Loop-clock times (ms since the loop started).
  std::uint64_t last_activity_ = 0;
  std::uint64_t mid_since_ = 0;
  std::uint64_t send_progress_ = 0;
  std::uint64_t close_deadline_ = 0;  // connecting: connect deadline; closing: give-up time
  // Receives held while paused: a FIFO of the loop's stash nodes (Loop::kNoStash: empty).
  std::uint32_t stash_head_ = 0xffffffffu;
  std::uint32_t stash_tail_ = 0xffffffffu;
  std::uint32_t stash_pins_ = 0;  // stash nodes that hold a receive buffer
  // The loop's work lists (conn_table.h): one intrusive link each, and a membership bit.
  static constexpr int kLists = 5;
  Conn* next_[kLists] = {};
  std::uint8_t on_list_ = 0;
};

// Defined inline so that Handler has no key function: code built with RTTI (tests,
// applications) and the library built without it both emit its vtable as needed.
inline void Handler::on_eof(Conn& c) noexcept {
  c.close();
}
inline void Handler::on_drain(Conn& c) noexcept {
  c.close();
}

}  // namespace weft::platform
