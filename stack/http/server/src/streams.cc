#include <weft/http/streams.h>

#include <sys/random.h>
#include <time.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <new>

#include <weft/base/log.h>

#include "sse_writer.h"

namespace weft::http::sse {

namespace {

enum Stat : std::uint32_t {
  kPublished,
  kRecordedDirect,
  kReplayed,
  kMarkers,
  kSkippedReplayed,
  kDropped,
  kClosed,
  kEvictedEvents,
  kEvictedTopics,
  kTooLarge,
  kStats
};
static_assert(kStats == 10, "Streams::kCounters");

// The longest marker: event: weft.gap + {"reason":"ring_overflow","missed":<20 digits>}.
constexpr std::size_t kMaxMarker = 128;

std::span<const std::byte> bytes_of(std::string_view s) noexcept {
  return std::as_bytes(std::span(s.data(), s.size()));
}
std::string_view chars_of(std::span<const std::byte> b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// FNV-1a: the table is scanned under its mutex; the hash only skips name compares.
std::uint64_t name_hash(std::string_view s) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char ch : s) {
    h = (h ^ static_cast<unsigned char>(ch)) * 0x100000001b3ull;
  }
  return h;
}

// "<8 lowercase hex>-<decimal>" -> epoch, seq; false when it is not exactly that.
bool parse_id(std::string_view id, std::uint32_t& epoch, std::uint64_t& seq) noexcept {
  if (id.size() < 10 || id[8] != '-') {
    return false;
  }
  std::uint32_t e = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    const char ch = id[i];
    std::uint32_t d;
    if (ch >= '0' && ch <= '9') {
      d = static_cast<std::uint32_t>(ch - '0');
    } else if (ch >= 'a' && ch <= 'f') {
      d = static_cast<std::uint32_t>(ch - 'a' + 10);
    } else {
      return false;
    }
    e = (e << 4) | d;
  }
  const char* first = id.data() + 9;
  const char* last = id.data() + id.size();
  if (*first < '0' || *first > '9') {
    return false;  // from_chars would not take '+', but be explicit about '-'
  }
  std::uint64_t s = 0;
  const auto r = std::from_chars(first, last, s);
  if (r.ec != std::errc() || r.ptr != last) {
    return false;
  }
  epoch = e;
  seq = s;
  return true;
}

std::size_t format_id(char* out, std::uint32_t epoch, std::uint64_t seq) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) {
    out[i] = kHex[(epoch >> (28 - 4 * i)) & 0xf];
  }
  out[8] = '-';
  const auto r = std::to_chars(out + 9, out + 31, seq);
  return static_cast<std::size_t>(r.ptr - out);
}

// A weft.gap marker (no id line: the client's last event id must stay that of the last
// event it really got). missed < 0: none in the data.
std::size_t gap_marker(char (&out)[kMaxMarker], std::string_view reason,
                       std::int64_t missed) noexcept {
  char json[96];
  char* p = json;
  const auto put = [&](std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  put(R"({"reason":")");
  put(reason);
  put("\"");
  if (missed >= 0) {
    put(R"(,"missed":)");
    p = std::to_chars(p, json + sizeof json, missed).ptr;
  }
  put("}");
  return encode({{}, "weft.gap", std::string_view(json, static_cast<std::size_t>(p - json))}, out);
}

// The event being handed to the hub by Streams::publish on this thread: the SSE encoder
// copies it instead of recording the payload again.
struct Pending {
  const Streams* streams = nullptr;
  const char* a = nullptr;  // the event's bytes in the ring: a[0..na) then b[0..nb)
  std::size_t na = 0;
  const char* b = nullptr;
  std::size_t nb = 0;
};
thread_local Pending t_pending;

}  // namespace

// One topic's ring. `mu` guards everything but the identity (used, name, hash), which
// changes only with both the table mutex and mu held, so either one is enough to read it.
struct Streams::Ring {
  std::mutex mu;
  bool used = false;
  std::uint8_t name_len = 0;
  char name[255] = {};
  std::uint64_t hash = 0;
  std::uint32_t epoch = 0;
  std::uint64_t last_seq = 0;  // the newest event's seq; 0: none yet
  std::uint32_t count = 0;     // events held: seqs last_seq - count + 1 .. last_seq
  std::uint32_t head = 0;      // index slot of the oldest event
  std::uint64_t begin = 0;     // logical byte positions (mod ring_bytes in `bytes`)
  std::uint64_t end = 0;
  std::atomic<std::uint64_t> stamp{0};  // last publish, for LRU eviction
  char* bytes = nullptr;
  std::uint64_t* pos = nullptr;
  std::uint32_t* len = nullptr;

  [[nodiscard]] std::string_view topic() const noexcept { return {name, name_len}; }
  [[nodiscard]] std::uint64_t oldest() const noexcept { return last_seq - count + 1; }
};

Streams::Streams() noexcept = default;
Streams::~Streams() = default;

void Streams::count(std::uint32_t i, std::uint64_t n) noexcept {
  stat_[i].fetch_add(n, std::memory_order_relaxed);
}

Result<void> Streams::init(const StreamLimits& l) noexcept {
  const char* bad = nullptr;
  if (l.max_topics == 0 || l.max_topics > (1u << 16)) {
    bad = "max_topics: 1..2^16";
  } else if (l.ring_bytes < 4096 || l.ring_bytes > (1u << 30)) {
    bad = "ring_bytes: 4 KiB..1 GiB";
  } else if (l.ring_events == 0 || l.ring_events > (1u << 20)) {
    bad = "ring_events: 1..2^20";
  } else if (l.max_topic_len == 0 || l.max_topic_len > 255) {
    bad = "max_topic_len: 1..255";
  } else if (l.max_queued_bytes == 0) {
    bad = "max_queued_bytes: > 0";
  } else if (rings_ != nullptr) {
    bad = "init() twice";
  }
  if (bad != nullptr) {
    log(LogLevel::error, "sse: invalid stream limit: %s", bad);
    return fail(sse_errc::invalid_argument);
  }
  const std::size_t topics = l.max_topics;
  rings_.reset(new (std::nothrow) Ring[topics]);
  bytes_.reset(new (std::nothrow) char[topics * l.ring_bytes]);
  pos_.reset(new (std::nothrow) std::uint64_t[topics * l.ring_events]);
  len_.reset(new (std::nothrow) std::uint32_t[topics * l.ring_events]);
  if (rings_ == nullptr || bytes_ == nullptr || pos_ == nullptr || len_ == nullptr) {
    rings_.reset();
    return fail_errno(ENOMEM);
  }
  for (std::size_t i = 0; i < topics; ++i) {
    rings_[i].bytes = bytes_.get() + i * l.ring_bytes;
    rings_[i].pos = pos_.get() + i * l.ring_events;
    rings_[i].len = len_.get() + i * l.ring_events;
  }
  // The epoch seed: a restarted server must not reuse the ids of its previous run.
  if (::getrandom(&seed_, sizeof seed_, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof seed_)) {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    seed_ = static_cast<std::uint32_t>(ts.tv_nsec ^ (ts.tv_sec * 2654435761u));
  }
  limits_ = l;
  return {};
}

Result<pubsub::Format> Streams::attach_hub(pubsub::Hub& hub) noexcept {
  if (rings_ == nullptr) {
    return fail(sse_errc::not_ready);
  }
  if (hub_ != nullptr) {
    return fail(sse_errc::invalid_argument);
  }
  Result<pubsub::Format> f = hub.add_format(&Streams::hub_encode, this, &Streams::hub_admit);
  if (!f) {
    return f;
  }
  if (hub.limits().max_queued_bytes < limits_.max_queued_bytes + kMaxMarker) {
    log(LogLevel::warn,
        "sse: the hub's max_queued_bytes (%u) is below the streams' (%u) plus a marker: "
        "the lower bound applies",
        hub.limits().max_queued_bytes, limits_.max_queued_bytes);
  }
  hub_ = &hub;
  format_ = *f;
  return f;
}

void Streams::set_subscriber_lookup(SubscriberOf fn, void* ctx) noexcept {
  lookup_ = fn;
  lookup_ctx_ = ctx;
}

std::size_t Streams::max_event(std::size_t topic_len) const noexcept {
  const std::size_t hub =
      hub_ != nullptr ? hub_->max_event_size(topic_len) : std::numeric_limits<std::size_t>::max();
  return std::min<std::size_t>(hub, limits_.ring_bytes);
}

Result<Streams::Ring*> Streams::lock_topic(std::string_view topic) noexcept {
  const std::uint64_t h = name_hash(topic);
  while (true) {
    Ring* found = nullptr;
    {
      std::lock_guard<std::mutex> g(table_mu_);
      Ring* lru = nullptr;
      Ring* unused = nullptr;
      for (std::uint32_t i = 0; i < limits_.max_topics; ++i) {
        Ring& r = rings_[i];
        if (!r.used) {
          unused = unused != nullptr ? unused : &r;
        } else if (r.hash == h && r.topic() == topic) {
          found = &r;
          break;
        } else if (lru == nullptr || r.stamp.load(std::memory_order_relaxed) <
                                         lru->stamp.load(std::memory_order_relaxed)) {
          lru = &r;
        }
      }
      if (found == nullptr) {
        found = unused != nullptr ? unused : lru;
        // Table, then ring: the one lock order (ring holders never take the table).
        std::lock_guard<std::mutex> rg(found->mu);
        if (found->used) {
          count(kEvictedTopics);
          count(kEvictedEvents, found->count);
        }
        found->used = true;
        found->name_len = static_cast<std::uint8_t>(topic.size());
        std::memcpy(found->name, topic.data(), topic.size());
        found->hash = h;
        // Multiplying by an odd constant is a bijection mod 2^32: no two incarnations of
        // this store share an epoch (until 2^32 of them).
        found->epoch = seed_ + ++created_ * 0x9e3779b1u;
        found->last_seq = 0;
        found->count = 0;
        found->head = 0;
        found->begin = found->end = 0;
        found->stamp.store(clock_.fetch_add(1, std::memory_order_relaxed) + 1,
                           std::memory_order_relaxed);
      }
    }
    found->mu.lock();
    // Between the two locks the ring may have been evicted for another topic: look again.
    if (found->used && found->hash == h && found->topic() == topic) {
      return found;
    }
    found->mu.unlock();
  }
}

Result<std::uint64_t> Streams::record(Ring& r, std::string_view event_name,
                                      std::string_view data) noexcept {
  const std::uint64_t seq = r.last_seq + 1;
  char id[32];
  const std::size_t id_len = format_id(id, r.epoch, seq);
  const Fields f{std::string_view(id, id_len), event_name, data, 0};
  const std::size_t n = encoded_size(f);
  if (n == 0) {
    return fail(sse_errc::invalid_field);
  }
  if (n > max_event(r.name_len)) {
    count(kTooLarge);
    return fail(sse_errc::too_large);
  }
  const std::uint32_t cap = limits_.ring_events;
  std::uint64_t evicted = 0;
  while (r.count == cap || r.end - r.begin + n > limits_.ring_bytes) {
    r.begin += r.len[r.head];
    r.head = r.head + 1 == cap ? 0 : r.head + 1;
    --r.count;
    ++evicted;
  }
  count(kEvictedEvents, evicted);
  // Straight into the ring, wrapping at its end.
  struct RingSink {
    char* base;
    std::uint64_t size;
    std::uint64_t at;
    void put(const char* p, std::size_t k) noexcept {
      while (k != 0) {
        const std::uint64_t off = at % size;
        const std::size_t m = static_cast<std::size_t>(std::min<std::uint64_t>(k, size - off));
        std::memcpy(base + off, p, m);
        p += m;
        k -= m;
        at += m;
      }
    }
  } sink{r.bytes, limits_.ring_bytes, r.end};
  detail::write_event(f, sink);
  const std::uint32_t slot = static_cast<std::uint32_t>((r.head + r.count) % cap);
  r.pos[slot] = r.end;
  r.len[slot] = static_cast<std::uint32_t>(n);
  r.end += n;
  ++r.count;
  r.last_seq = seq;
  r.stamp.store(clock_.fetch_add(1, std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  count(kPublished);
  return seq;
}

// Event k (0: the oldest) of a locked ring as at most two spans (it may wrap).
struct Streams::Piece {
  std::span<const std::byte> a;
  std::span<const std::byte> b;
};

Streams::Piece Streams::piece(const Ring& r, std::uint64_t k) const noexcept {
  const std::uint64_t rb = limits_.ring_bytes;
  const std::uint32_t slot = static_cast<std::uint32_t>((r.head + k) % limits_.ring_events);
  const std::uint64_t off = r.pos[slot] % rb;
  const std::size_t n = r.len[slot];
  const std::size_t na = static_cast<std::size_t>(std::min<std::uint64_t>(n, rb - off));
  const auto* p = reinterpret_cast<const std::byte*>(r.bytes);
  return Piece{{p + off, na}, {p, n - na}};
}

Result<Published> Streams::publish(platform::Loop& here, std::string_view topic,
                                   std::string_view event_name, std::string_view data) noexcept {
  if (rings_ == nullptr || hub_ == nullptr) {
    return fail(sse_errc::not_ready);
  }
  if (topic.empty() || topic.size() > limits_.max_topic_len) {
    return fail(sse_errc::invalid_topic);
  }
  if (!valid_event(event_name)) {
    return fail(sse_errc::invalid_field);
  }
  Result<Ring*> locked = lock_topic(topic);
  if (!locked) {
    return fail(locked.error());
  }
  Ring& r = **locked;
  std::unique_lock<std::mutex> g(r.mu, std::adopt_lock);
  Result<std::uint64_t> seq = record(r, event_name, data);
  if (!seq) {
    return fail(seq.error());
  }
  Published out;
  out.epoch = r.epoch;
  out.seq = *seq;
  out.id_len = static_cast<std::uint8_t>(format_id(out.id, r.epoch, *seq));
  const Piece p = piece(r, r.count - 1);
  // Still under the ring's lock: a subscribe on another worker either replays this event or
  // subscribed before the hub looks for subscribers (see the header's "Exact resume").
  t_pending = {this, reinterpret_cast<const char*>(p.a.data()), p.a.size(),
               reinterpret_cast<const char*>(p.b.data()), p.b.size()};
  Result<pubsub::Published> h = hub_->publish(here, bytes_of(topic), bytes_of(data));
  t_pending = {};
  if (h) {
    out.hub = *h;
  } else {
    out.hub_error = h.error();
  }
  return out;
}

std::size_t Streams::hub_encode(void* ctx, std::span<const std::byte> topic,
                                std::span<const std::byte> payload,
                                std::span<std::byte> out) noexcept {
  Streams& s = *static_cast<Streams*>(ctx);
  const Pending pending = t_pending;
  if (pending.streams == &s) {
    const std::size_t n = pending.na + pending.nb;
    if (n <= out.size()) {
      std::memcpy(out.data(), pending.a, pending.na);
      if (pending.nb != 0) {
        std::memcpy(out.data() + pending.na, pending.b, pending.nb);
      }
    }
    return n;
  }
  // A publish that did not come through Streams (the binary protocol's PUBLISH): record it
  // here, so that SSE clients get an id and can resume. Only when some SSE subscriber of the
  // topic exists: the hub encodes a format only then.
  const std::string_view t = chars_of(topic);
  if (topic.empty() || topic.size() > s.limits_.max_topic_len) {
    return 0;
  }
  Result<Ring*> locked = s.lock_topic(t);
  if (!locked) {
    return 0;
  }
  Ring& r = **locked;
  std::unique_lock<std::mutex> g(r.mu, std::adopt_lock);
  Result<std::uint64_t> seq = s.record(r, {}, chars_of(payload));
  if (!seq) {
    return seq.error() == make_error_code(sse_errc::too_large) ? out.size() + 1 : 0;
  }
  s.count(kRecordedDirect);
  const Piece p = s.piece(r, r.count - 1);
  const std::size_t n = p.a.size() + p.b.size();
  if (n <= out.size()) {
    std::memcpy(out.data(), p.a.data(), p.a.size());
    if (!p.b.empty()) {
      std::memcpy(out.data() + p.a.size(), p.b.data(), p.b.size());
    }
  }
  return n;
}

bool Streams::hub_admit(void* ctx, platform::Conn& c, std::span<const std::byte> event) noexcept {
  Streams& s = *static_cast<Streams*>(ctx);
  Subscriber* sub = s.lookup_ != nullptr ? s.lookup_(s.lookup_ctx_, c) : nullptr;
  if (sub == nullptr) {
    return true;
  }
  // Every event of this format starts "id: <epoch>-<seq>\n" (record() writes it).
  const std::string_view e = chars_of(event);
  std::uint32_t epoch = 0;
  std::uint64_t seq = 0;
  if (e.starts_with("id: ")) {
    const std::size_t nl = e.find('\n');
    if (nl != std::string_view::npos && parse_id(e.substr(4, nl - 4), epoch, seq) &&
        epoch == sub->epoch && seq <= sub->replay_end_seq) {
      s.count(kSkippedReplayed);
      return false;  // the replay sent it already
    }
  }
  std::size_t cap = sub->max_queued_bytes != 0 ? sub->max_queued_bytes : s.limits_.max_queued_bytes;
  // The hub drops what passes above its own bound, without telling us: stay below it.
  const std::size_t hub_cap = s.hub_->limits().max_queued_bytes;
  cap = std::min(cap, hub_cap > kMaxMarker ? hub_cap - kMaxMarker : 0);
  char marker[kMaxMarker];
  const std::size_t mn = sub->gap_pending ? gap_marker(marker, "slow_consumer",
                                                       static_cast<std::int64_t>(sub->gap_missed))
                                          : 0;
  const bool fits = c.queued_bytes() + mn + event.size() <= cap;
  if (fits && mn != 0 && c.send_copy(std::as_bytes(std::span(marker, mn))).ok()) {
    s.count(kMarkers);
    sub->gap_pending = false;
    sub->gap_missed = 0;
    return true;
  }
  if (fits && mn == 0) {
    return true;
  }
  // Refused (or the marker could not be queued): the subscriber's policy.
  if (sub->policy == SlowPolicy::close) {
    if (c.open()) {
      c.abort(make_error_code(sse_errc::slow_consumer));
      s.count(kClosed);
    }
    return false;
  }
  ++sub->dropped;
  ++sub->gap_missed;
  sub->gap_pending = true;
  s.count(kDropped);
  return false;
}

Result<Resumed> Streams::subscribe(platform::Conn& c, std::string_view topic,
                                   std::string_view last_event_id, Subscriber& sub) noexcept {
  if (rings_ == nullptr || hub_ == nullptr) {
    return fail(sse_errc::not_ready);
  }
  if (topic.empty() || topic.size() > limits_.max_topic_len) {
    return fail(sse_errc::invalid_topic);
  }
  Result<Ring*> locked = lock_topic(topic);
  if (!locked) {
    return fail(locked.error());
  }
  Ring& r = **locked;
  std::unique_lock<std::mutex> g(r.mu, std::adopt_lock);
  // Subscribe first, under the ring's lock: from here every event recorded after the replay
  // below is fanned out to c (publish holds this lock while it hands the event to the hub).
  if (Result<bool> h = hub_->subscribe(c, bytes_of(topic), format_); !h) {
    return fail(h.error());
  }
  sub.epoch = r.epoch;
  sub.gap_pending = false;
  sub.gap_missed = 0;
  Resumed out;
  if (!last_event_id.empty()) {
    std::uint32_t epoch = 0;
    std::uint64_t seq = 0;
    std::uint64_t from = r.oldest();
    char marker[kMaxMarker];
    std::size_t mn = 0;
    if (parse_id(last_event_id, epoch, seq) && epoch == r.epoch && seq <= r.last_seq) {
      if (seq + 1 < from) {
        out.missed = from - (seq + 1);
        mn = gap_marker(marker, "ring_overflow", static_cast<std::int64_t>(out.missed));
      } else {
        from = seq + 1;
      }
    } else {
      out.unknown_id = true;
      mn = gap_marker(marker, "unknown_id", -1);
    }
    Result<void> sent{};
    if (mn != 0) {
      sent = c.send_copy(std::as_bytes(std::span(marker, mn)));
      out.marker = true;
    }
    for (std::uint64_t q = from; sent && q <= r.last_seq; ++q) {
      const Piece p = piece(r, q - r.oldest());
      sent = c.send_copy(p.a, p.b);
      out.replayed += sent ? 1 : 0;
    }
    if (!sent) {
      (void)hub_->unsubscribe(c, bytes_of(topic));
      return fail(sent.error());
    }
    count(kMarkers, out.marker ? 1 : 0);
    count(kReplayed, out.replayed);
  }
  sub.replay_end_seq = r.last_seq;
  out.last_seq = r.last_seq;
  return out;
}

StreamStats Streams::stats() const noexcept {
  const auto v = [&](Stat i) { return stat_[i].load(std::memory_order_relaxed); };
  StreamStats s;
  s.published = v(kPublished);
  s.recorded_direct = v(kRecordedDirect);
  s.replayed = v(kReplayed);
  s.markers = v(kMarkers);
  s.skipped_replayed = v(kSkippedReplayed);
  s.dropped = v(kDropped);
  s.closed = v(kClosed);
  s.evicted_events = v(kEvictedEvents);
  s.evicted_topics = v(kEvictedTopics);
  s.too_large = v(kTooLarge);
  return s;
}

}  // namespace weft::http::sse
