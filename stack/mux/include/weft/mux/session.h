// weft::mux::Session — one side of a connection's channels, sans-IO (docs/protocol.md §7).
//
// The Session is the channel state machine and the fair scheduler; it never touches a socket.
// The caller (part 2 wires it to a platform::Conn) does three things:
//   - feeds every received channel frame, parsed by weft::mux::parse(), to feed(), which
//     returns at most one Event per frame (or a connection-fatal error);
//   - calls open/accept/refuse/write/consume/close/reset for the application;
//   - calls next_frame() while it returns > 0 and sends those bytes (each call writes one
//     complete frame, u32 prefix included).
//
// Design (memory): the constructor allocates everything — max_channels slots of
// sizeof(detail::Slot) bytes (48 on LP64), an id -> slot hash table of 2 bytes per entry
// (2-4 entries per slot), a free-slot stack (2 bytes per slot) and the send arena:
// max_channels * queue_per_channel bytes. write() COPIES into the channel's ring in that arena
// (so the caller's buffer is free when write() returns); nothing allocates after
// construction. Received DATA is not buffered: the Event's data view points into the frame
// given to feed(); the application consumes it (now or later) and calls consume(), which is
// what returns credit to the peer — credit follows consumption, not arrival.
//
// Scheduling: next_frame() writes, in this order, MUX_SETTINGS (once, first), the
// connection's WINDOW_UPDATE, REFUSEs for OPENs that found no slot, then per-channel control
// frames in FIFO order (OPEN, OPEN_ACK, WINDOW_UPDATE, REFUSE, RESET), then DATA chosen by
// deficit round robin by bytes (quantum: the peer's max_data) over the channels that have
// queued bytes (or a FIN) and credit. A channel with no credit leaves the round and rejoins
// when a WINDOW_UPDATE arrives, so a stalled reader never holds the others up. DATA never
// exceeds the peer's channel window, its connection window or its max_data.
//
// Threading: a Session is owned by one thread (its connection's worker); no call is
// thread-safe. No callback exists: nothing runs re-entrantly. Errors are values; nothing
// throws. Once feed() reports a connection-fatal error the Session is dead: every later
// call returns that same error (sticky) and the caller closes the connection (§7.8).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>

#include <weft/base/result.h>
#include <weft/mux/error.h>
#include <weft/mux/frame.h>

namespace weft::mux {

// Which side of the connection this Session is: the client opens odd channel ids (1, 3, ...),
// the server even ones (2, 4, ...).
enum class Role : std::uint8_t { client, server };

// Every limit of a Session. The defaults suit a small board; each says what crossing it does.
struct Limits {
  // Channel slots (both directions together), at most 0xfffe. Announced to the peer as
  // max_channels; a peer OPEN that finds no slot is answered REFUSE(overloaded).
  std::uint16_t max_channels = 64;
  // The receive window this side grants each channel (OPEN/OPEN_ACK when open()/accept()
  // pass 0). The peer exceeding it is mux_errc::flow_control.
  std::uint32_t channel_window = 64 * 1024;
  // This side's connection receive window (MUX_SETTINGS). Exceeded -> flow_control.
  std::uint32_t conn_window = 256 * 1024;
  // The largest DATA payload this side accepts (MUX_SETTINGS). Exceeded -> data_too_large.
  std::uint32_t max_data = 16 * 1024;
  // Send ring per channel (raised to 256, the OPEN name lives there until it is sent).
  // Full -> write() returns would_block.
  std::uint32_t queue_per_channel = 16 * 1024;
  // Bytes queued over all channels. Full -> write() returns would_block.
  std::uint32_t queue_per_conn = 256 * 1024;
  // OPENs received per second (set_time's clock). Exceeded -> open_flood.
  std::uint32_t max_opens_per_sec = 1000;
  // RESETs received per second. Exceeded -> reset_flood.
  std::uint32_t max_resets_per_sec = 1000;
  // OPENs refused for want of a slot that may wait to be written. Exceeded -> open_flood.
  std::uint16_t max_pending_refusals = 16;
};

// A channel's state (docs/protocol.md §7.6). idle: no such live channel here.
enum class ChannelState : std::uint8_t {
  idle,
  open_sent,           // open() called; waiting for OPEN_ACK or REFUSE
  open_received,       // the peer's OPEN arrived; waiting for accept() or refuse()
  open,                // both directions open
  half_closed_local,   // close() called (this side's FIN queued or sent)
  half_closed_remote,  // the peer's FIN arrived
  closed,              // both FINs; kept only until the received bytes are consumed
};

enum class EventKind : std::uint8_t {
  none,      // nothing for the application (MUX_SETTINGS, a frame for a channel since reset)
  opened,    // the peer opened `channel` (name): call accept() or refuse()
  accepted,  // the peer accepted our open(): writes flow now (window: its initial window)
  refused,   // the peer refused our open() (code); the channel is gone
  data,      // bytes (data may be empty when only fin is set); fin: the peer half-closed
  reset,     // the peer reset `channel` (code); the channel is gone, its queue dropped
  window,    // the peer granted `window` bytes of credit on `channel` (0: the connection)
};

// What feed() returns. Views point into the frame given to feed(): valid as long as the
// caller keeps those bytes.
struct Event {
  EventKind kind = EventKind::none;
  bool fin = false;
  std::uint16_t channel = 0;
  std::uint16_t code = 0;           // refused, reset: a ChannelError value (unknown ones: internal)
  std::uint32_t window = 0;         // accepted: initial window; window: increment
  std::span<const std::byte> name;  // opened
  std::span<const std::byte> data;  // data
};

namespace detail {
// One channel slot. 48 bytes on LP64 and ILP32 (no pointers); its send ring lives in the
// Session's arena at index * queue_per_channel.
struct Slot {
  std::uint32_t send_window = 0;   // credit the peer granted us
  std::uint32_t recv_window = 0;   // credit the peer still has
  std::uint32_t recv_initial = 0;  // the window we granted (the WINDOW_UPDATE threshold)
  std::uint32_t unconsumed = 0;    // received, not yet consume()d
  std::uint32_t to_credit = 0;     // consumed, not yet returned by WINDOW_UPDATE
  std::uint32_t ring_head = 0;     // first queued byte (offset in the ring)
  std::uint32_t ring_size = 0;     // queued bytes
  std::uint32_t deficit = 0;       // DRR deficit
  std::uint16_t id = 0;            // channel id; 0: the slot is free
  std::uint16_t ctl_next = 0;      // control FIFO link
  std::uint16_t act_next = 0;      // DRR round link
  std::uint16_t wr_next = 0;       // writable FIFO link
  std::uint16_t code = 0;          // the REFUSE/RESET code to send
  std::uint8_t stage = 0;          // Stage (session.cc)
  std::uint8_t flags = 0;          // fin_*, want_writable, in_* (session.cc)
  std::uint8_t ctl = 0;            // control frames to send (session.cc)
  std::uint8_t name_len = 0;       // OPEN name at ring[0, name_len) until OPEN is sent
  std::uint8_t local = 0;          // 1: this side opened it
};
}  // namespace detail

class Session {
 public:
  // Allocates every slot, the id table and the send arena (see the design comment). Limits
  // are clamped to their ranges (max_channels 1..0xfffe, windows 1..2^31-1, max_data >= 1,
  // queue_per_channel >= 256). The clock starts at 0 (set_time).
  Session(Role role, const Limits& limits);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Forgets every channel and the peer's settings, as if newly constructed with `role` and
  // the same limits, without allocating (a pooled connection handler reuses its Session).
  void reset(Role role) noexcept;

  // Applies one received frame. Returns its Event, or a connection-fatal mux_errc
  // (flow_control, window_overflow, data_too_large, unknown_channel, bad_channel_id,
  // bad_state, open_flood, reset_flood), after which the Session is dead (sticky).
  // A frame for a channel this side reset (or refused) is dropped as EventKind::none; its
  // DATA still counts against the connection window and is credited back at once.
  [[nodiscard]] Result<Event> feed(const Frame& f) noexcept;

  // Opens a channel named `name` (1..255 bytes, copied) with receive window `window`
  // (0: Limits::channel_window). Returns its id; the OPEN is sent by next_frame(). Writes
  // may be queued at once; they are sent after the peer's OPEN_ACK. Errors: bad_argument,
  // not_ready (no MUX_SETTINGS from the peer yet), channel_limit, ids_exhausted.
  [[nodiscard]] Result<std::uint16_t> open(std::span<const std::byte> name,
                                           std::uint32_t window = 0) noexcept;
  // Accepts / refuses the peer's OPEN of `ch` (state open_received). Errors: no_channel.
  [[nodiscard]] Result<void> accept(std::uint16_t ch, std::uint32_t window = 0) noexcept;
  [[nodiscard]] Result<void> refuse(std::uint16_t ch, ChannelError code) noexcept;

  // Queues up to bytes.size() bytes (copied) and returns how many were taken (> 0 unless
  // bytes is empty). Errors: would_block (the channel's or the connection's queue is full;
  // next_writable() returns ch once there is room for half a queue), no_channel, closed.
  [[nodiscard]] Result<std::size_t> write(std::uint16_t ch,
                                          std::span<const std::byte> bytes) noexcept;
  // All or nothing: queues head then body (copied) only if both fit now, so a message is
  // never split by back-pressure. Errors: would_block (no room for all of it now;
  // next_writable() returns ch later), bad_argument (head + body exceed queue_per_channel:
  // it could never fit), and write()'s.
  [[nodiscard]] Result<void> write_all(std::uint16_t ch, std::span<const std::byte> head,
                                       std::span<const std::byte> body = {}) noexcept;
  // The application is done with n received bytes of `ch`: they become credit again (a
  // WINDOW_UPDATE is queued once half of a window is owed). Errors: no_channel,
  // bad_argument (n above what was received and not consumed).
  [[nodiscard]] Result<void> consume(std::uint16_t ch, std::size_t n) noexcept;
  // Half-closes this side's direction: a FIN goes out after the queued bytes. Errors:
  // no_channel, closed (already called).
  [[nodiscard]] Result<void> close(std::uint16_t ch) noexcept;
  // Aborts the channel both ways: its queued bytes are dropped now, a RESET is sent (none
  // if the OPEN was not sent yet), unconsumed bytes are credited to the connection, and the
  // id is dead. Errors: no_channel.
  [[nodiscard]] Result<void> reset(std::uint16_t ch, ChannelError code) noexcept;

  // Writes the next frame (prefix included) into out and returns its size; 0 when nothing
  // can be sent now. out.size() must be at least kMaxControlFrameSize (272); DATA frames are
  // also bounded by out.size(). Errors: buffer_too_small, or the sticky error.
  [[nodiscard]] Result<std::size_t> next_frame(std::span<std::byte> out) noexcept;
  // A channel whose write() returned would_block and now has room again; 0 when none.
  [[nodiscard]] std::uint16_t next_writable() noexcept;

  // The clock for the per-second rates (milliseconds, any origin, non-decreasing).
  void set_time(std::uint64_t now_ms) noexcept;

  // ---- introspection (tests, metrics) ----
  [[nodiscard]] ChannelState state(std::uint16_t ch) const noexcept;
  // The slot index (0..max_channels-1) of a live channel, or 0xffff: stable while the
  // channel is live, so a caller can keep per-channel data in an array beside the Session.
  [[nodiscard]] std::uint16_t slot_of(std::uint16_t ch) const noexcept;
  [[nodiscard]] const Limits& limits() const noexcept { return limits_; }
  [[nodiscard]] std::uint32_t send_window(std::uint16_t ch) const noexcept;  // 0 if idle
  [[nodiscard]] std::uint32_t recv_window(std::uint16_t ch) const noexcept;  // 0 if idle
  [[nodiscard]] std::uint32_t conn_send_window() const noexcept { return conn_send_window_; }
  [[nodiscard]] std::uint32_t conn_recv_window() const noexcept { return conn_recv_window_; }
  [[nodiscard]] std::size_t queued(std::uint16_t ch) const noexcept;  // 0 if idle
  [[nodiscard]] std::size_t queued_total() const noexcept { return conn_queued_; }
  [[nodiscard]] std::size_t live_channels() const noexcept { return live_; }
  [[nodiscard]] bool peer_ready() const noexcept { return peer_ready_; }
  [[nodiscard]] const Settings& peer_settings() const noexcept { return peer_; }
  [[nodiscard]] std::error_code error() const noexcept { return error_; }
  [[nodiscard]] Role role() const noexcept { return role_; }

 private:
  using Slot = detail::Slot;
  static constexpr std::uint16_t kNil = 0xffff;
  struct Fifo {
    std::uint16_t head = kNil;
    std::uint16_t tail = kNil;
  };

  std::uint16_t find(std::uint16_t id) const noexcept;  // slot index or kNil
  void map_insert(std::uint16_t idx) noexcept;
  void map_erase(std::uint16_t id) noexcept;
  std::uint16_t alloc_slot(std::uint16_t id, bool local) noexcept;
  void free_slot(std::uint16_t idx) noexcept;
  void push(Fifo& q, std::uint16_t idx, std::uint16_t Slot::*link) noexcept;
  std::uint16_t pop(Fifo& q, std::uint16_t Slot::*link) noexcept;
  void queue_ctl(std::uint16_t idx, std::uint8_t bit) noexcept;
  void activate(std::uint16_t idx) noexcept;
  bool sendable(const Slot& s) const noexcept;
  void credit_conn(std::uint32_t n) noexcept;
  void maybe_free(std::uint16_t idx) noexcept;
  void check_writable(std::uint16_t idx) noexcept;
  std::uint32_t room(const Slot& s) const noexcept;
  bool known_id(std::uint16_t id) const noexcept;
  Slot* live(std::uint16_t ch) noexcept;
  const Slot* live(std::uint16_t ch) const noexcept;
  std::byte* ring(std::uint16_t idx) noexcept;
  Failure die(mux_errc e) noexcept;
  // write()/write_all(): the live, writable slot of ch, or why not (sticky error, no_channel,
  // closed). blocked(): would_block, remembering that the writer wants next_writable().
  Result<Slot*> writer(std::uint16_t ch) noexcept;
  Failure blocked(Slot& s) noexcept;
  Result<Event> feed_data(const Frame& f) noexcept;
  Result<Event> feed_window(const Frame& f) noexcept;
  std::size_t emit_ctl(std::uint16_t idx, std::span<std::byte> out) noexcept;
  std::size_t emit_data(std::span<std::byte> out) noexcept;

  Role role_;
  Limits limits_;
  std::unique_ptr<Slot[]> slots_;
  std::unique_ptr<std::uint16_t[]> map_;       // open addressing, linear probing
  std::unique_ptr<std::uint16_t[]> free_;      // free-slot stack
  std::unique_ptr<std::uint16_t[]> refusals_;  // ids to REFUSE(overloaded), a ring
  std::unique_ptr<std::byte[]> arena_;         // send rings
  std::uint32_t map_mask_ = 0;
  std::uint16_t free_top_ = 0;
  std::uint16_t refusal_head_ = 0;
  std::uint16_t refusal_count_ = 0;
  std::uint16_t live_ = 0;
  std::uint16_t local_live_ = 0;
  std::uint16_t blocked_writers_ = 0;
  Fifo ctl_q_, act_q_, wr_q_;
  std::uint32_t next_local_id_ = 0;  // the id open() uses next
  std::uint32_t peer_last_id_ = 0;   // the highest id the peer opened
  std::uint32_t conn_send_window_ = 0;
  std::uint32_t conn_recv_window_ = 0;
  std::uint32_t conn_to_credit_ = 0;
  std::size_t conn_queued_ = 0;
  Settings peer_;
  bool peer_ready_ = false;
  bool settings_sent_ = false;
  std::uint64_t rate_second_ = 0;
  std::uint32_t opens_this_second_ = 0;
  std::uint32_t resets_this_second_ = 0;
  std::error_code error_;
};

}  // namespace weft::mux
