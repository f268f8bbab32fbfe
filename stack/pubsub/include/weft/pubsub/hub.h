// weft::pubsub::Hub — transport-neutral publish/subscribe across the runtime's workers.
//
// Model: a subscriber is a connection (platform::Conn) on some worker, subscribed to a topic
// (1..Limits::max_topic_len bytes, compared exactly) in a *format*: an encoder its transport
// registered (add_format), which writes one event for (topic, payload) in that transport's
// framing — an EVENT frame of the binary protocol (docs/protocol.md §6.3), `event:`/`data:`
// lines of SSE. A publish from any worker reaches every subscriber of the topic on every
// worker, at most once, and in publish order for events published from one worker.
//
// Fan-out, zero copy: publish() looks up which formats have a subscriber of the topic on
// some worker and encodes the event ONCE per such format into one of the runtime's shared
// buffers (platform::SharedBuffers: Config::shared_buffers must be > 0). Subscribers on the
// publishing worker are served at once; every other worker with subscribers gets one Post
// (Loop::post, the SPSC rings) carrying the buffer ids with a counted reference each, and
// serves its own subscribers when it runs the post. Every subscriber's connection queues the
// same buffer (Conn::send_shared); the buffer returns to the pool when the last send is done.
// An event that does not fit in one shared buffer (with a small header holding the topic) is
// refused: too_large.
//
// Who has subscribers where: each worker keeps its own topic table and subscriber lists
// (touched only by its thread) and publishes a summary, a row of counters per format of how
// many of its subscriptions have a topic in each hash bucket (atomics with one writer).
// A publisher reads workers x formats counters: no lock, no shared topic table. A bucket
// shared by two topics can make a worker be posted an event nobody there wants (it finds no
// local topic and drops the references); never the reverse. A subscription made while a
// publish is running on another worker may or may not get that event.
//
// Slow consumers (the policy): a subscriber gets an event only if its connection's queued
// output (Conn::queued_bytes) plus the event stays within Limits::max_queued_bytes, and
// send_shared accepts it. Otherwise the event is DROPPED for that subscriber only: nothing
// waits, nothing is retried, the publisher never blocks. Every drop is counted exactly, per
// subscription (subscription()) and per worker (stats().dropped). With
// Limits::disconnect_after = N > 0, a subscriber that drops N events in a row is aborted
// with pubsub_errc::slow_consumer. Drops are per subscriber: other subscribers of the same
// event are unaffected. Size for bursts: output leaves once per loop iteration, so the bound
// also counts what this iteration queued (a burst to one subscriber above max_queued_bytes
// drops the excess even for a fast reader), and each event is one output segment (at most
// Config::max_out_iov events per subscriber per iteration; queue_full is a drop). A worker that
// cannot be posted to (its ring is full, it stopped) misses the event as a whole: counted on the
// publisher (posts_failed) and reported by publish() (Published::missed), not per subscription (the
// publisher does not know them).
//
// Admission (a format's own policy): add_format may register an AdmitFn with the encoder. It
// is called on the serving worker for every subscriber in that format, with the event's
// encoded bytes, just before the queued-bytes check and send_shared. `false` skips that
// subscriber for this event silently: not a delivery, not a drop (no slow-consumer count, no
// disconnect_after progress), counted in HubStats::skipped only. The admit function may queue
// bytes on the connection itself (a marker before the event: send_copy; they count in the
// queued-bytes check that follows) or abort it (then return false). SSE uses it for exact
// resume (skip events a replay already sent) and its own slow-consumer policy.
//
// Memory: init() allocates everything, per worker: the topic table, max_subscriptions
// subscription nodes, a list head per connection slot, and the interest counters
// (kMaxFormats x 4 x max_topics u32). After it nothing allocates: subscribe, publish,
// fan-out and close only move indices. Every limit crossed is an error value.
//
// Threading: init() and add_format() before Runtime::start. attach() on each worker's thread
// before it serves (the Service factory). subscribe/unsubscribe/closed/subscription on the
// connection's own worker; publish on the worker `here` it names. stats() from any thread.
// The Hub must outlive the Runtime (posts in flight point to it). Posts a stopping runtime
// discards keep their buffer references; the pool goes with the runtime.
//
// Wiring, for a transport:
//   hub.init({}, cfg); fmt = hub.add_format(&encode_event, ctx);     // before start
//   make_factory = [&](Loop& l) { (void)hub.attach(l); return ...; }  // each worker
//   on "subscribe": hub.subscribe(c, topic, fmt);  on "publish": hub.publish(c.loop(), t, p);
//   Handler::on_close: hub.closed(c);
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include <weft/base/result.h>
#include <weft/platform/config.h>
#include <weft/platform/conn.h>
#include <weft/platform/loop.h>
#include <weft/platform/stats.h>
#include <weft/pubsub/error.h>

namespace weft::pubsub {

namespace detail {
class TopicTable;
}

struct Limits {
  // Distinct topics with subscribers on one worker. Crossed -> subscribe: topic_limit.
  std::uint32_t max_topics = 1024;
  // Subscriptions on one worker, all connections. Crossed -> subscribe: subscription_limit.
  std::uint32_t max_subscriptions = 4096;
  // Longest topic (1..255; the wire formats carry a u8/u16 length). Longer or empty ->
  // invalid_topic from subscribe, unsubscribe and publish.
  std::uint32_t max_topic_len = 255;
  // A subscriber whose connection has this many bytes queued (counting the event) does not
  // get the event: it is dropped and counted. At least Config::shared_buffer_size (an event
  // never exceeds a shared buffer, so any subscriber with an empty queue gets it).
  std::uint32_t max_queued_bytes = 64 * 1024;
  // Drops in a row after which the subscriber's connection is aborted (slow_consumer);
  // 0: never disconnect, only drop.
  std::uint32_t disconnect_after = 0;
};

// One wire format of events: writes the event for (topic, payload) into `out` and returns
// its size in bytes. A size above out.size() means it does not fit (out's contents are then
// unspecified): the publish fails with too_large. 0 means the encoder refuses the event
// (encode_failed). Called on the publishing worker's thread; ctx as given to add_format.
using EncodeFn = std::size_t (*)(void* ctx, std::span<const std::byte> topic,
                                 std::span<const std::byte> payload,
                                 std::span<std::byte> out) noexcept;
using Format = std::uint8_t;

// A format's admission check (see "Admission" above): true sends `event` (the encoded bytes
// of this format) to c, false skips c for this event. Called on c's worker thread, inside
// publish() or a post's fan-out, once per subscriber per event; must not call back into the
// Hub (subscribe/unsubscribe/publish/closed) and must not block. ctx as given to add_format.
using AdmitFn = bool (*)(void* ctx, platform::Conn& c, std::span<const std::byte> event) noexcept;

// What one publish() did on its own worker, and whom it could not reach.
struct Published {
  std::uint32_t delivered = 0;  // subscribers on this worker the event was queued for
  std::uint32_t dropped = 0;    // subscribers on this worker it was dropped for (slow)
  std::uint32_t posted = 0;     // other workers that will serve their subscribers
  std::uint32_t missed = 0;     // other workers with subscribers that could not be posted to
  std::uint32_t encoded = 0;    // formats encoded (shared buffers used)
};

// Per worker (Hub::stats), or summed (Hub::total). Counters unless marked as gauges.
struct HubStats {
  std::uint64_t published = 0;       // publish() calls that sent the event (to anyone or none)
  std::uint64_t publish_failed = 0;  // publish() refused: invalid_topic, too_large, encode_failed
  std::uint64_t no_buffers = 0;      // publish() refused: no free shared buffer
  std::uint64_t encoded = 0;         // events encoded (one per format per publish)
  std::uint64_t delivered = 0;       // events queued on a subscriber's connection
  std::uint64_t dropped = 0;         // events dropped for a subscriber (slow consumer policy)
  std::uint64_t disconnected = 0;    // subscribers aborted after disconnect_after drops
  std::uint64_t skipped = 0;         // events a format's AdmitFn refused for a subscriber
  std::uint64_t posts_sent = 0;      // events posted to other workers
  std::uint64_t posts_failed = 0;    // ... that could not be posted (ring full, stopped)
  std::uint64_t posts_received = 0;  // events received from other workers
  std::uint64_t subscriptions = 0;   // gauge: subscriptions on the worker now
  std::uint64_t topics = 0;          // gauge: topics with subscribers on the worker now

  HubStats& operator+=(const HubStats& o) noexcept;
};

// One subscription's exact counts (Hub::subscription).
struct SubscriptionStats {
  std::uint64_t delivered = 0;
  std::uint64_t dropped = 0;
  std::uint32_t consecutive_drops = 0;
  Format format = 0;
};

class Hub {
 public:
  static constexpr std::uint32_t kMaxFormats = 4;  // a Post carries one buffer id per format

  Hub() noexcept;
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Allocates all state for cfg.workers workers with cfg.slots() connection slots each.
  // Errors: invalid_argument (a limit out of range, cfg.shared_buffers == 0, or
  // max_queued_bytes < cfg.shared_buffer_size; the log names it), ENOMEM.
  [[nodiscard]] Result<void> init(const Limits& limits, const platform::Config& cfg) noexcept;
  // Registers an event format; its id names it in subscribe(). Before Runtime::start.
  // `admit` (optional) is the format's admission check, called with the same ctx (see
  // "Admission" in the header comment). Errors: format_limit (kMaxFormats), invalid_argument
  // (fn null).
  [[nodiscard]] Result<Format> add_format(EncodeFn fn, void* ctx, AdmitFn admit = nullptr) noexcept;
  // The worker's thread, before it serves (from the Service factory); again is harmless.
  // Errors: not_attached (init() did not succeed), invalid_argument (loop index beyond
  // cfg.workers, more connection slots than cfg.slots(), or a loop without shared buffers).
  [[nodiscard]] Result<void> attach(platform::Loop& loop) noexcept;

  // Subscribes c to topic in format; idempotent (a second call with another format switches
  // the subscription's format). Returns true when the subscription is new. Errors:
  // invalid_topic, unknown_format, topic_limit, subscription_limit, not_attached.
  [[nodiscard]] Result<bool> subscribe(platform::Conn& c, std::span<const std::byte> topic,
                                       Format format) noexcept;
  // Returns true when c had the subscription. Errors: invalid_topic, not_attached.
  [[nodiscard]] Result<bool> unsubscribe(platform::Conn& c,
                                         std::span<const std::byte> topic) noexcept;
  // The connection closed (call from Handler::on_close): drops all its subscriptions,
  // O(its subscriptions). Returns how many. Harmless for a connection without any.
  std::uint32_t closed(platform::Conn& c) noexcept;

  // Publishes payload on topic from worker `here` (its thread). Never blocks, never
  // allocates; see the header comment for who gets it. Errors (nobody got it): invalid_topic,
  // too_large, encode_failed, no_buffers, not_attached. A topic without subscribers is not
  // an error (all counts 0, nothing encoded).
  [[nodiscard]] Result<Published> publish(platform::Loop& here, std::span<const std::byte> topic,
                                          std::span<const std::byte> payload) noexcept;

  // c's subscription of topic. Errors: not_subscribed, invalid_topic, not_attached.
  [[nodiscard]] Result<SubscriptionStats> subscription(platform::Conn& c,
                                                       std::span<const std::byte> topic) noexcept;

  // Any thread. Worker w's counters (relaxed loads: each torn-free, not mutually consistent).
  [[nodiscard]] HubStats stats(std::uint32_t worker) const noexcept;
  [[nodiscard]] HubStats total() const noexcept;
  [[nodiscard]] std::uint32_t workers() const noexcept { return workers_; }
  [[nodiscard]] const Limits& limits() const noexcept { return limits_; }
  // The most bytes an EncodeFn may write for an event of a topic of topic_len bytes (what
  // one shared buffer holds after the hub's header and the topic); 0 before init().
  [[nodiscard]] std::size_t max_event_size(std::size_t topic_len) const noexcept;

 private:
  struct Worker;
  struct Event;
  static void on_post(platform::Loop& loop, const platform::Post& p) noexcept;
  [[nodiscard]] Worker* worker(const platform::Loop& loop) noexcept;
  // The caller's worker, the topic checked: not_attached, invalid_topic.
  [[nodiscard]] Result<Worker*> enter(const platform::Loop& loop,
                                      std::span<const std::byte> topic) noexcept;
  // Queues the event on every subscriber of its topic on w's worker.
  void serve(Worker& w, platform::Loop& loop, const Event& e, Published* out) noexcept;

  Limits limits_;
  std::uint32_t workers_ = 0;
  std::uint32_t slots_ = 0;
  std::uint32_t buffer_size_ = 0;  // Config::shared_buffer_size
  std::uint64_t seed_ = 0;
  EncodeFn encode_[kMaxFormats] = {};
  void* ctx_[kMaxFormats] = {};
  AdmitFn admit_[kMaxFormats] = {};
  std::uint32_t formats_ = 0;
  std::unique_ptr<Worker[]> state_;
};

}  // namespace weft::pubsub
