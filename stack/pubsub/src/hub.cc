#include <weft/pubsub/hub.h>

#include <sys/random.h>
#include <time.h>

#include <cstring>
#include <new>

#include <weft/base/log.h>
#include <weft/platform/shared_buffers.h>

#include "topic_table.h"

namespace weft::pubsub {

using platform::Conn;
using platform::Loop;
using platform::Post;
using platform::SharedRef;
using Counter = platform::WorkerStats::Counter;

static_assert(Hub::kMaxFormats == detail::kMaxFormats);

// HubStats' fields as one list: a Worker keeps one Counter per entry, and stats() and
// operator+= walk the list, so a new counter is named here and in HubStats only.
namespace {
enum Stat : std::uint32_t {
  kPublished,
  kPublishFailed,
  kNoBuffers,
  kEncoded,
  kDelivered,
  kDropped,
  kDisconnected,
  kSkipped,
  kPostsSent,
  kPostsFailed,
  kPostsReceived,
  kSubscriptions,  // gauges from here
  kTopics,
  kStats
};
constexpr std::uint64_t HubStats::*kFields[kStats] = {
    &HubStats::published,    &HubStats::publish_failed, &HubStats::no_buffers,
    &HubStats::encoded,      &HubStats::delivered,      &HubStats::dropped,
    &HubStats::disconnected, &HubStats::skipped,        &HubStats::posts_sent,
    &HubStats::posts_failed, &HubStats::posts_received, &HubStats::subscriptions,
    &HubStats::topics};
// A field added to HubStats and not to the list fails here.
static_assert(sizeof(HubStats) == kStats * sizeof(std::uint64_t));
}  // namespace

struct Hub::Worker {
  detail::TopicTable table;
  platform::SharedBuffers* shared = nullptr;  // set by attach()
  // Scratch for publish(): the formats each worker wants for the current event.
  std::unique_ptr<std::uint8_t[]> want;
  // One writer (this worker), any reader: see platform::WorkerStats.
  Counter stat[kStats];
  void gauges() noexcept {
    stat[kSubscriptions].set(table.subscriptions());
    stat[kTopics].set(table.topics());
  }
};

// Shared buffer layout: [Header][topic][pad to 8][event]. The receiving worker needs the
// topic to find its subscribers, and a Post has no room for it; the event bytes alone are
// what subscribers are sent (send_shared of a sub-span).
namespace {
struct Header {
  std::uint64_t hash;
  std::uint32_t event_off;
  std::uint32_t event_len;
  std::uint32_t topic_len;
  std::uint32_t unused;
};
constexpr std::uint32_t kNoId = 0xffffffffu;
std::size_t event_offset(std::size_t topic_len) noexcept {
  return (sizeof(Header) + topic_len + 7) & ~std::size_t{7};
}
}  // namespace

struct Hub::Event {
  std::span<const std::byte> topic;
  std::uint64_t hash = 0;
  SharedRef refs[kMaxFormats];
  std::span<const std::byte> bytes[kMaxFormats];
  // Points bytes[f] at the event inside refs[f] and returns the buffer's header.
  Header parse(std::uint32_t f) noexcept {
    Header h;
    std::memcpy(&h, refs[f].buffer().data(), sizeof h);
    bytes[f] = refs[f].buffer().subspan(h.event_off, h.event_len);
    return h;
  }
};

HubStats& HubStats::operator+=(const HubStats& o) noexcept {
  for (std::uint64_t HubStats::*f : kFields) {
    this->*f += o.*f;
  }
  return *this;
}

Hub::Hub() noexcept = default;
Hub::~Hub() = default;

Result<void> Hub::init(const Limits& limits, const platform::Config& cfg) noexcept {
  const char* bad = nullptr;
  if (limits.max_topics == 0 || limits.max_topics > (1u << 20)) {
    bad = "max_topics: 1..2^20";
  } else if (limits.max_subscriptions == 0 || limits.max_subscriptions > (1u << 24)) {
    bad = "max_subscriptions: 1..2^24";
  } else if (limits.max_topic_len == 0 || limits.max_topic_len > 255) {
    bad = "max_topic_len: 1..255";
  } else if (cfg.workers == 0 || cfg.workers > 256) {
    bad = "Config::workers: 1..256";
  } else if (cfg.shared_buffers == 0) {
    bad = "Config::shared_buffers: pub/sub needs shared buffers (> 0)";
  } else if (cfg.shared_buffer_size < event_offset(limits.max_topic_len) + 1) {
    bad = "Config::shared_buffer_size: too small for the longest topic and an event";
  } else if (limits.max_queued_bytes < cfg.shared_buffer_size) {
    bad = "max_queued_bytes: at least Config::shared_buffer_size";
  }
  if (bad != nullptr) {
    log(LogLevel::error, "pubsub: invalid limit: %s", bad);
    return fail(pubsub_errc::invalid_argument);
  }
  limits_ = limits;
  workers_ = cfg.workers;
  slots_ = cfg.slots();
  buffer_size_ = cfg.shared_buffer_size;
  state_.reset(new (std::nothrow) Worker[workers_]);
  if (state_ == nullptr) {
    return fail_errno(ENOMEM);
  }
  const detail::TableLimits tl{limits.max_topics, limits.max_subscriptions, limits.max_topic_len,
                               slots_};
  for (std::uint32_t w = 0; w < workers_; ++w) {
    Worker& s = state_[w];
    s.want.reset(new (std::nothrow) std::uint8_t[workers_]());
    if (s.want == nullptr) {
      return fail_errno(ENOMEM);
    }
    if (Result<void> r = s.table.init(tl); !r) {
      return r;
    }
  }
  // The hash seed: not secret enough to stop a determined attacker who can measure timing,
  // but it keeps a fixed list of colliding names from working against every server.
  if (::getrandom(&seed_, sizeof seed_, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof seed_)) {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    seed_ = static_cast<std::uint64_t>(ts.tv_nsec) * 0x9e3779b97f4a7c15ull ^
            reinterpret_cast<std::uintptr_t>(this);
  }
  return {};
}

Result<Format> Hub::add_format(EncodeFn fn, void* ctx, AdmitFn admit) noexcept {
  if (fn == nullptr) {
    return fail(pubsub_errc::invalid_argument);
  }
  if (formats_ == kMaxFormats) {
    return fail(pubsub_errc::format_limit);
  }
  encode_[formats_] = fn;
  ctx_[formats_] = ctx;
  admit_[formats_] = admit;
  return static_cast<Format>(formats_++);
}

Result<void> Hub::attach(Loop& loop) noexcept {
  if (state_ == nullptr) {
    return fail(pubsub_errc::not_attached);
  }
  if (loop.index() >= workers_ || loop.config().slots() > slots_ || loop.shared() == nullptr) {
    log(LogLevel::error, "pubsub: worker %u does not match the hub's Config", loop.index());
    return fail(pubsub_errc::invalid_argument);
  }
  state_[loop.index()].shared = loop.shared();
  return {};
}

Hub::Worker* Hub::worker(const Loop& loop) noexcept {
  if (state_ == nullptr || loop.index() >= workers_) {
    return nullptr;
  }
  Worker& w = state_[loop.index()];
  return w.shared != nullptr ? &w : nullptr;
}

Result<Hub::Worker*> Hub::enter(const Loop& loop, std::span<const std::byte> topic) noexcept {
  Worker* w = worker(loop);
  if (w == nullptr) {
    return fail(pubsub_errc::not_attached);
  }
  if (topic.empty() || topic.size() > limits_.max_topic_len) {
    return fail(pubsub_errc::invalid_topic);
  }
  return w;
}

Result<bool> Hub::subscribe(Conn& c, std::span<const std::byte> topic, Format format) noexcept {
  Result<Worker*> entered = enter(c.loop(), topic);
  if (!entered) {
    return fail(entered.error());
  }
  Worker* w = *entered;
  if (format >= formats_) {
    return fail(pubsub_errc::unknown_format);
  }
  Result<detail::Subscribed> r =
      w->table.subscribe(c.id(), topic, detail::topic_hash(seed_, topic), format);
  if (!r) {
    return fail(r.error());
  }
  w->gauges();
  return r->added;
}

Result<bool> Hub::unsubscribe(Conn& c, std::span<const std::byte> topic) noexcept {
  Result<Worker*> entered = enter(c.loop(), topic);
  if (!entered) {
    return fail(entered.error());
  }
  Worker* w = *entered;
  const bool had = w->table.unsubscribe(c.id(), topic, detail::topic_hash(seed_, topic));
  w->gauges();
  return had;
}

std::uint32_t Hub::closed(Conn& c) noexcept {
  Worker* w = worker(c.loop());
  if (w == nullptr) {
    return 0;
  }
  const std::uint32_t n = w->table.drop_conn(c.id());
  w->gauges();
  return n;
}

Result<SubscriptionStats> Hub::subscription(Conn& c, std::span<const std::byte> topic) noexcept {
  Result<Worker*> entered = enter(c.loop(), topic);
  if (!entered) {
    return fail(entered.error());
  }
  Worker* w = *entered;
  const std::uint32_t t = w->table.find(detail::topic_hash(seed_, topic), topic);
  const std::uint32_t i = t == detail::kNil ? detail::kNil : w->table.find_sub(c.id(), t);
  if (i == detail::kNil) {
    return fail(pubsub_errc::not_subscribed);
  }
  const detail::Sub& s = w->table.sub(i);
  return SubscriptionStats{s.delivered, s.dropped, s.consecutive, s.format};
}

Result<Published> Hub::publish(Loop& here, std::span<const std::byte> topic,
                               std::span<const std::byte> payload) noexcept {
  Result<Worker*> entered = enter(here, topic);
  if (!entered) {
    if (Worker* w = worker(here)) {
      w->stat[kPublishFailed].add();
    }
    return fail(entered.error());
  }
  Worker* w = *entered;
  Event e;
  e.topic = topic;
  e.hash = detail::topic_hash(seed_, topic);
  // Who wants which format: workers x formats counters of the topic's bucket (see
  // TopicTable::interest for the ordering).
  std::uint32_t all = 0;
  for (std::uint32_t x = 0; x < workers_; ++x) {
    std::uint8_t m = 0;
    for (std::uint32_t f = 0; f < formats_; ++f) {
      if (state_[x].table.interest(static_cast<std::uint8_t>(f), e.hash) != 0) {
        m = static_cast<std::uint8_t>(m | (1u << f));
      }
    }
    w->want[x] = m;
    all |= m;
  }
  Published out;
  if (all == 0) {
    w->stat[kPublished].add();
    return out;
  }
  // Encode once per wanted format, all before anything is sent: a refusal sends nothing.
  const std::size_t off = event_offset(topic.size());
  for (std::uint32_t f = 0; f < formats_; ++f) {
    if ((all & (1u << f)) == 0) {
      continue;
    }
    e.refs[f] = w->shared->acquire();
    if (!e.refs[f].valid()) {
      w->stat[kNoBuffers].add();
      return fail(pubsub_errc::no_buffers);  // e's destructor returns what was acquired
    }
    const std::span<std::byte> buf = e.refs[f].buffer();
    const std::size_t n = encode_[f](ctx_[f], topic, payload, buf.subspan(off));
    if (n == 0 || n > buf.size() - off) {
      w->stat[kPublishFailed].add();
      return fail(n == 0 ? pubsub_errc::encode_failed : pubsub_errc::too_large);
    }
    const Header h{e.hash, static_cast<std::uint32_t>(off), static_cast<std::uint32_t>(n),
                   static_cast<std::uint32_t>(topic.size()), 0};
    std::memcpy(buf.data(), &h, sizeof h);
    std::memcpy(buf.data() + sizeof h, topic.data(), topic.size());
    e.refs[f].set_length(off + n);
    e.bytes[f] = buf.subspan(off, n);
    ++out.encoded;
  }
  w->stat[kEncoded].add(out.encoded);
  // Other workers: one post each with a counted reference per format it wants. The buffers'
  // contents are ordered before the consumer's reads by the ring's release/acquire pair.
  const std::uint32_t me = here.index();
  for (std::uint32_t x = 0; x < workers_; ++x) {
    const std::uint8_t m = w->want[x];
    if (x == me || m == 0) {
      continue;
    }
    std::uint32_t ids[kMaxFormats] = {kNoId, kNoId, kNoId, kNoId};
    for (std::uint32_t f = 0; f < formats_; ++f) {
      if ((m & (1u << f)) != 0) {
        ids[f] = e.refs[f].id();
        w->shared->ref(ids[f]);
      }
    }
    const Post p{&Hub::on_post, this, ids[0] | (std::uint64_t{ids[1]} << 32),
                 ids[2] | (std::uint64_t{ids[3]} << 32)};
    if (here.post(x, p).ok()) {
      ++out.posted;
      continue;
    }
    for (const std::uint32_t id : ids) {
      if (id != kNoId) {
        w->shared->unref(id);
      }
    }
    ++out.missed;
  }
  w->stat[kPostsSent].add(out.posted);
  w->stat[kPostsFailed].add(out.missed);
  if (w->want[me] != 0) {
    serve(*w, here, e, &out);
  }
  w->stat[kPublished].add();
  return out;
}

void Hub::on_post(Loop& loop, const Post& p) noexcept {
  Hub& hub = *static_cast<Hub*>(p.ptr);
  Worker& w = hub.state_[loop.index()];
  const std::uint32_t ids[kMaxFormats] = {
      static_cast<std::uint32_t>(p.a), static_cast<std::uint32_t>(p.a >> 32),
      static_cast<std::uint32_t>(p.b), static_cast<std::uint32_t>(p.b >> 32)};
  Event e;
  for (std::uint32_t f = 0; f < kMaxFormats; ++f) {
    if (ids[f] == kNoId) {
      continue;
    }
    // The post's reference becomes ours (no count change); dropped when e goes.
    e.refs[f] = loop.shared()->adopt(ids[f], 0);
    const Header h = e.parse(f);
    e.hash = h.hash;
    e.topic = e.refs[f].buffer().subspan(sizeof(Header), h.topic_len);
  }
  w.stat[kPostsReceived].add();
  hub.serve(w, loop, e, nullptr);
}

void Hub::serve(Worker& w, Loop& loop, const Event& e, Published* out) noexcept {
  detail::TopicTable& table = w.table;
  const std::uint32_t t = table.find(e.hash, e.topic);
  if (t == detail::kNil) {
    return;  // unsubscribed meanwhile, or a bucket shared with another topic
  }
  std::uint64_t delivered = 0;
  std::uint64_t dropped = 0;
  std::uint64_t skipped = 0;
  for (std::uint32_t i = table.topic(t).head; i != detail::kNil;) {
    detail::Sub& s = table.sub(i);
    const std::uint32_t next = s.next;
    const SharedRef& ref = e.refs[s.format];
    if (!ref.valid()) {
      i = next;  // subscribed in this format after the publisher looked
      continue;
    }
    Conn* c = loop.find(s.conn);
    if (c == nullptr) {
      // The connection is gone and its close was never reported: reap its subscriptions.
      // (At most one of them is on this topic, so `next` stays valid.)
      table.drop_conn(s.conn);
      w.gauges();
      i = next;
      continue;
    }
    const std::span<const std::byte> bytes = e.bytes[s.format];
    // The format's own policy first: a skip is neither a delivery nor a drop. The admit
    // function may queue a marker on c, which the queued-bytes check below then counts.
    if (const AdmitFn admit = admit_[s.format];
        admit != nullptr && !admit(ctx_[s.format], *c, bytes)) {
      ++skipped;
      i = next;
      continue;
    }
    if (c->queued_bytes() + bytes.size() <= limits_.max_queued_bytes &&
        c->send_shared(ref, bytes).ok()) {
      ++s.delivered;
      s.consecutive = 0;
      ++delivered;
    } else {
      ++s.dropped;
      ++dropped;
      if (++s.consecutive == limits_.disconnect_after && limits_.disconnect_after != 0 &&
          c->open()) {
        c->abort(make_error_code(pubsub_errc::slow_consumer));
        w.stat[kDisconnected].add();
      }
    }
    i = next;
  }
  w.stat[kDelivered].add(delivered);
  w.stat[kDropped].add(dropped);
  w.stat[kSkipped].add(skipped);
  if (out != nullptr) {
    out->delivered += static_cast<std::uint32_t>(delivered);
    out->dropped += static_cast<std::uint32_t>(dropped);
  }
}

HubStats Hub::stats(std::uint32_t worker) const noexcept {
  HubStats s;
  if (state_ == nullptr || worker >= workers_) {
    return s;
  }
  for (std::uint32_t i = 0; i < kStats; ++i) {
    s.*kFields[i] = state_[worker].stat[i].get();
  }
  return s;
}

std::size_t Hub::max_event_size(std::size_t topic_len) const noexcept {
  const std::size_t off = event_offset(topic_len);
  return buffer_size_ > off ? buffer_size_ - off : 0;
}

HubStats Hub::total() const noexcept {
  HubStats s;
  for (std::uint32_t w = 0; w < workers_; ++w) {
    s += stats(w);
  }
  return s;
}

}  // namespace weft::pubsub
