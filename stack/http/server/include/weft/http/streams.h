// weft::http::sse::Streams — per-topic replay rings for Server-Sent Events, with exact
// resume from Last-Event-ID, served through weft::pubsub::Hub.
//
// Ids: every event a topic records gets the id "<epoch>-<seq>": epoch is 8 lowercase hex
// digits naming this incarnation of the topic (unique per store and creation: a store-wide
// random seed at init() plus a creation counter, through a bijection, so no two incarnations
// of one store share it, and a restarted server almost surely differs), seq a decimal counter
// per topic from 1, contiguous. A Last-Event-ID whose epoch is not the topic's (the server
// restarted, the topic was evicted and recreated) says: history unknown.
//
// Memory (design): init() allocates max_topics rings of ring_bytes bytes plus ring_events
// index entries {byte position, length} each, and the topic table. After it nothing
// allocates: publish encodes the whole SSE event (with its id line) straight into the ring,
// which is circular in bytes (an event may wrap around its end) and in events; room is made
// by evicting the oldest events. When every ring is in use, creating a topic evicts the one
// published least recently (its subscribers stay subscribed in the hub; the topic's next
// incarnation has a new epoch).
//
// Threading: init() and attach_hub() before Runtime::start; set_subscriber_lookup() too.
// publish() and subscribe() from any worker, concurrently: one mutex per ring, held for the
// ring's work and the hub call that must be ordered with it, and one table mutex held only
// to find or create a topic (lock order: table, then ring; never the reverse). stats() from
// any thread.
//
// Exact resume: subscribe() makes the hub subscription and replays the ring under the
// topic's lock, and publish() records and hands the event to the hub under the same lock.
// So every event is either in the replay (seq <= Subscriber::replay_end_seq) or published
// after the subscription existed; a live copy of a replayed event (a publish that raced the
// subscribe from another worker, whose post arrives later) is skipped by the format's admit
// hook. Caveats: (1) publishers of one topic on several workers reach a worker through
// different post rings, so live events may arrive out of seq order there (the hub orders
// events per publishing worker only); publish a topic from one worker for strict order.
// (2) Events the hub itself drops or cannot post (its own max_queued_bytes, a full
// Config::max_out_iov segment queue, no_buffers, a full post ring: more than 256 events
// published from one worker in one loop iteration) are not known here: no marker, and the
// client sees a jump in seq. Keep the hub's max_queued_bytes above this store's (attach_hub
// logs otherwise; the admit hook uses the lower of the two) and Config::max_out_iov above
// max_queued_bytes / the smallest event, so that the SSE policy is the one that applies.
//
// Events published with Hub::publish directly (not through Streams: the binary protocol's
// PUBLISH) reach the SSE encoder, which records them itself (id assigned, no event type, the
// payload as data) — but the hub calls an encoder only when the topic has a subscriber in
// that format somewhere, so such events are recorded only while an SSE subscriber of the
// topic exists, and a subscribe racing one of them may miss it live (not the replay later).
//
// Slow consumers (per Subscriber, in the admit hook): an event that would take the
// connection's queued output above the cap is not sent. SlowPolicy::drop counts it and, with
// the next event that fits, first sends a marker event
//   event: weft.gap\ndata: {"reason":"slow_consumer","missed":N}\n\n
// (no id line: the client's last event id stays that of the last event it got).
// SlowPolicy::close aborts the connection with sse_errc::slow_consumer instead.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>

#include <weft/base/result.h>
#include <weft/http/sse.h>
#include <weft/platform/conn.h>
#include <weft/platform/loop.h>
#include <weft/pubsub/hub.h>

namespace weft::http::sse {

struct StreamLimits {
  // Topics with a ring (1..2^16). Creating one more evicts the least recently published.
  std::uint32_t max_topics = 64;
  // Bytes of encoded events per ring (4 KiB..1 GiB). An event that does not fit in an empty
  // ring (or in one hub shared buffer) -> publish: too_large.
  std::uint32_t ring_bytes = 64 * 1024;
  // Events per ring (1..2^20): the oldest is evicted to record one more.
  std::uint32_t ring_events = 256;
  // Longest topic name (1..255). Longer or empty -> invalid_topic.
  std::uint32_t max_topic_len = 255;
  // A subscriber's queued output (Conn::queued_bytes plus the event) above which an event is
  // refused under its SlowPolicy (Subscriber::max_queued_bytes overrides it). Always capped
  // by the hub's own Limits::max_queued_bytes less a marker's size.
  std::uint32_t max_queued_bytes = 256 * 1024;
};

enum class SlowPolicy : std::uint8_t { drop, close };

// Per (connection, topic) state, owned by the caller (the HTTP server embeds one in its
// connection state; SubscriberOf finds it). Written by subscribe() and the admit hook, both
// on the connection's worker thread: plain fields. One topic per Subscriber (an SSE response
// streams one topic).
struct Subscriber {
  // Set by the caller before subscribe():
  SlowPolicy policy = SlowPolicy::drop;
  std::uint32_t max_queued_bytes = 0;  // 0: StreamLimits::max_queued_bytes
  // Set by subscribe() and the admit hook:
  std::uint32_t epoch = 0;           // the topic incarnation subscribed to
  std::uint64_t replay_end_seq = 0;  // live events with seq <= this (same epoch) are skipped
  std::uint64_t dropped = 0;         // events dropped for this subscriber (SlowPolicy::drop)
  std::uint64_t gap_missed = 0;      // ... since the last slow_consumer marker
  bool gap_pending = false;          // a marker is owed before the next event
};

// What publish() did: the id it assigned, and what the hub's fan-out did.
struct Published {
  std::uint32_t epoch = 0;
  std::uint64_t seq = 0;
  char id[32] = {};  // "<epoch>-<seq>", NUL-terminated
  std::uint8_t id_len = 0;
  pubsub::Published hub;
  // The hub's fan-out error (no_buffers, not_attached, ...). The event is recorded and
  // replayable anyway; live subscribers did not get it.
  std::error_code hub_error;
  [[nodiscard]] std::string_view id_view() const noexcept { return {id, id_len}; }
};

// What subscribe() replayed.
struct Resumed {
  std::uint32_t replayed = 0;  // ring events queued on the connection
  bool marker = false;         // a weft.gap marker was queued first
  bool unknown_id = false;     // ... with reason unknown_id (else ring_overflow if marker)
  std::uint64_t missed = 0;    // ring_overflow: events evicted before they could be replayed
  std::uint64_t last_seq = 0;  // Subscriber::replay_end_seq
};

// Any thread; relaxed counters (each exact, not mutually consistent).
struct StreamStats {
  std::uint64_t published = 0;         // events recorded (publish(), and direct hub publishes)
  std::uint64_t recorded_direct = 0;   // ... of them recorded by the encoder (direct hub.publish)
  std::uint64_t replayed = 0;          // ring events queued by subscribe()
  std::uint64_t markers = 0;           // weft.gap markers queued (all reasons)
  std::uint64_t skipped_replayed = 0;  // live events skipped: already replayed
  std::uint64_t dropped = 0;           // events refused to slow subscribers (SlowPolicy::drop)
  std::uint64_t closed = 0;            // subscribers aborted (SlowPolicy::close)
  std::uint64_t evicted_events = 0;    // events evicted from rings to make room
  std::uint64_t evicted_topics = 0;    // topics evicted to make room for a new one
  std::uint64_t too_large = 0;         // publishes refused: too_large
};

class Streams {
 public:
  // Finds the Subscriber of c (the HTTP server maps a Conn to its connection state); null:
  // c has none, the admit hook lets every event through. c's worker thread; must not block.
  using SubscriberOf = Subscriber* (*)(void* ctx, platform::Conn& c) noexcept;

  Streams() noexcept;
  ~Streams();
  Streams(const Streams&) = delete;
  Streams& operator=(const Streams&) = delete;

  // Allocates everything. Errors: invalid_argument (a limit out of range; logged), ENOMEM.
  [[nodiscard]] Result<void> init(const StreamLimits& limits) noexcept;
  // Registers the SSE format with hub (hub.add_format(encoder, this, admit)): after
  // hub.init(), before Runtime::start; once. The hub must outlive the Streams' use, and the
  // Streams the hub's. Errors: not_ready (init() first), invalid_argument (attached already),
  // the hub's add_format errors.
  [[nodiscard]] Result<pubsub::Format> attach_hub(pubsub::Hub& hub) noexcept;
  // Before Runtime::start. fn null: no lookup (every event admitted, no replay filtering).
  void set_subscriber_lookup(SubscriberOf fn, void* ctx) noexcept;

  // Records an event on topic (creating the topic) and publishes it through the hub from
  // worker `here` (its thread), to every SSE subscriber of the topic (and, encoded by their
  // own formats, to subscribers in other formats: they get `data` as the payload). The
  // event is `id: <epoch>-<seq>`, `event: <event_name>` when not empty, and data's lines.
  // Errors (nothing recorded): not_ready, invalid_topic, invalid_field (event_name holds
  // CR/LF), too_large. The hub's own fan-out error is Published::hub_error.
  [[nodiscard]] Result<Published> publish(platform::Loop& here, std::string_view topic,
                                          std::string_view event_name,
                                          std::string_view data) noexcept;

  // Subscribes c (on its worker thread) to topic in the SSE format, creating the topic, and
  // queues (Conn::send_copy) the events after last_event_id: all ring events after it, in
  // order; first a marker `event: weft.gap` with data {"reason":"ring_overflow","missed":N}
  // when N events after it were evicted already; or, when its epoch is not the topic's or it
  // does not parse, a marker {"reason":"unknown_id"} and the whole ring. An empty
  // last_event_id replays nothing (the client starts live). Sets sub's epoch and
  // replay_end_seq (and resets its gap state). Errors: not_ready, invalid_topic, the hub's
  // subscribe errors, and the connection's send errors (closed, queue_full, no_buffers:
  // the subscription is then removed; close the connection).
  [[nodiscard]] Result<Resumed> subscribe(platform::Conn& c, std::string_view topic,
                                          std::string_view last_event_id, Subscriber& sub) noexcept;

  [[nodiscard]] StreamStats stats() const noexcept;
  [[nodiscard]] const StreamLimits& limits() const noexcept { return limits_; }
  [[nodiscard]] pubsub::Format format() const noexcept { return format_; }
  // The hub of attach_hub() (null before): servers attach their workers and report closed
  // connections to it.
  [[nodiscard]] pubsub::Hub* hub() const noexcept { return hub_; }

  // The hub's hooks (public for the function pointers; not for callers).
  static std::size_t hub_encode(void* ctx, std::span<const std::byte> topic,
                                std::span<const std::byte> payload,
                                std::span<std::byte> out) noexcept;
  static bool hub_admit(void* ctx, platform::Conn& c, std::span<const std::byte> event) noexcept;

 private:
  struct Ring;
  struct Piece;
  static constexpr std::uint32_t kCounters = 10;
  // The topic's ring, locked (the caller adopts the lock), created when missing (evicting
  // the least recently published topic when every ring is in use).
  [[nodiscard]] Result<Ring*> lock_topic(std::string_view topic) noexcept;
  // Event k (0: the oldest) of a locked ring, as at most two spans (it may wrap).
  [[nodiscard]] Piece piece(const Ring& r, std::uint64_t k) const noexcept;
  // Records an event (the ring is locked); returns its seq. Errors: too_large.
  [[nodiscard]] Result<std::uint64_t> record(Ring& r, std::string_view event_name,
                                             std::string_view data) noexcept;
  [[nodiscard]] std::size_t max_event(std::size_t topic_len) const noexcept;
  void count(std::uint32_t i, std::uint64_t n = 1) noexcept;

  StreamLimits limits_;
  std::uint32_t seed_ = 0;
  std::uint32_t created_ = 0;            // incarnations so far (table mutex)
  std::atomic<std::uint64_t> clock_{0};  // publish stamps for LRU eviction
  std::mutex table_mu_;
  std::unique_ptr<Ring[]> rings_;
  std::unique_ptr<char[]> bytes_;
  std::unique_ptr<std::uint64_t[]> pos_;
  std::unique_ptr<std::uint32_t[]> len_;
  pubsub::Hub* hub_ = nullptr;
  pubsub::Format format_ = 0;
  SubscriberOf lookup_ = nullptr;
  void* lookup_ctx_ = nullptr;
  std::atomic<std::uint64_t> stat_[kCounters] = {};
};

}  // namespace weft::http::sse
