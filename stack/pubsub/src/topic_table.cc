#include "topic_table.h"

#include <cerrno>
#include <cstring>
#include <new>

#include <weft/pubsub/error.h>

namespace weft::pubsub::detail {

std::uint64_t topic_hash(std::uint64_t seed, std::span<const std::byte> t) noexcept {
  std::uint64_t h = 14695981039346656037ull ^ seed;
  for (const std::byte b : t) {
    h ^= static_cast<std::uint8_t>(b);
    h *= 1099511628211ull;
  }
  // FNV's low bits mix poorly for the last bytes; both the index and the interest buckets use
  // low bits, so fold the high half in.
  return h ^ (h >> 29);
}

namespace {
template <class T>
bool alloc(std::unique_ptr<T[]>& p, std::size_t n) noexcept {
  p.reset(new (std::nothrow) T[n]());
  return p != nullptr;
}
std::uint32_t pow2_at_least(std::uint32_t n) noexcept {
  std::uint32_t p = 1;
  while (p < n) {
    p <<= 1;
  }
  return p;
}
}  // namespace

Result<void> TopicTable::init(const TableLimits& limits) noexcept {
  limits_ = limits;
  // Load factor <= 1/2: linear probing then averages under 2.5 probes for a miss.
  const std::uint32_t slots = pow2_at_least(limits.max_topics * 2);
  index_mask_ = slots - 1;
  const std::uint32_t buckets = pow2_at_least(limits.max_topics < 16 ? 64 : limits.max_topics * 4);
  bucket_mask_ = buckets - 1;
  if (!alloc(topics_, limits.max_topics) ||
      !alloc(names_, static_cast<std::size_t>(limits.max_topics) * limits.max_topic_len) ||
      !alloc(index_, slots) || !alloc(subs_, limits.max_subscriptions) ||
      !alloc(conns_, limits.conn_slots) ||
      !alloc(interest_, static_cast<std::size_t>(kMaxFormats) * buckets)) {
    return fail_errno(ENOMEM);
  }
  for (std::uint32_t i = 0; i < slots; ++i) {
    index_[i] = kNil;
  }
  free_topic_ = kNil;
  for (std::uint32_t t = limits.max_topics; t-- > 0;) {
    topics_[t].next_free = free_topic_;
    free_topic_ = t;
  }
  free_sub_ = kNil;
  for (std::uint32_t i = limits.max_subscriptions; i-- > 0;) {
    subs_[i].conn_next = free_sub_;
    free_sub_ = i;
  }
  topics_n_ = subs_n_ = 0;
  return {};
}

std::uint32_t TopicTable::find(std::uint64_t hash,
                               std::span<const std::byte> topic) const noexcept {
  for (std::uint32_t s = static_cast<std::uint32_t>(hash) & index_mask_;;
       s = (s + 1) & index_mask_) {
    const std::uint32_t t = index_[s];
    if (t == kNil) {
      return kNil;
    }
    if (topics_[t].hash == hash && topics_[t].len == topic.size() &&
        std::memcmp(name(t).data(), topic.data(), topic.size()) == 0) {
      return t;
    }
  }
}

std::uint32_t TopicTable::add_topic(std::span<const std::byte> topic, std::uint64_t hash) noexcept {
  const std::uint32_t t = free_topic_;
  free_topic_ = topics_[t].next_free;
  Topic& e = topics_[t];
  e.hash = hash;
  e.head = e.tail = kNil;
  e.subs = 0;
  e.len = static_cast<std::uint16_t>(topic.size());
  std::memcpy(names_.get() + static_cast<std::size_t>(t) * limits_.max_topic_len, topic.data(),
              topic.size());
  std::uint32_t s = static_cast<std::uint32_t>(hash) & index_mask_;
  while (index_[s] != kNil) {
    s = (s + 1) & index_mask_;
  }
  index_[s] = t;
  ++topics_n_;
  return t;
}

void TopicTable::remove_topic(std::uint32_t t) noexcept {
  std::uint32_t s = static_cast<std::uint32_t>(topics_[t].hash) & index_mask_;
  while (index_[s] != t) {
    s = (s + 1) & index_mask_;
  }
  // Backward-shift deletion (Knuth 6.4, algorithm R): move later members of the probe run
  // into the hole when their home slot does not lie cyclically in (hole, their slot].
  std::uint32_t hole = s;
  for (std::uint32_t j = (s + 1) & index_mask_; index_[j] != kNil; j = (j + 1) & index_mask_) {
    const std::uint32_t home = static_cast<std::uint32_t>(topics_[index_[j]].hash) & index_mask_;
    const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!stays) {
      index_[hole] = index_[j];
      hole = j;
    }
  }
  index_[hole] = kNil;
  topics_[t].next_free = free_topic_;
  free_topic_ = t;
  --topics_n_;
}

void TopicTable::count(std::uint8_t format, std::uint64_t hash, int delta) noexcept {
  std::atomic<std::uint32_t>& c = counter(format, hash);
  // One writer (this worker): a plain add published with release, so a publisher that reads
  // the new count with acquire also sees everything this worker did before (its ack to the
  // subscriber included, when the publish was caused by that ack).
  c.store(c.load(std::memory_order_relaxed) + static_cast<std::uint32_t>(delta),
          std::memory_order_release);
}

void TopicTable::claim_slot(platform::ConnId c) noexcept {
  ConnSlot& cs = conns_[c.slot];
  if (cs.gen != c.gen) {
    if (cs.head != kNil) {
      drop_conn(platform::ConnId{c.slot, cs.gen, c.worker});
    }
    cs.gen = c.gen;
  }
}

std::uint32_t TopicTable::find_sub(platform::ConnId c, std::uint32_t t) const noexcept {
  if (c.slot >= limits_.conn_slots || conns_[c.slot].gen != c.gen) {
    return kNil;
  }
  for (std::uint32_t i = conns_[c.slot].head; i != kNil; i = subs_[i].conn_next) {
    if (subs_[i].topic == t) {
      return i;
    }
  }
  return kNil;
}

Result<Subscribed> TopicTable::subscribe(platform::ConnId c, std::span<const std::byte> topic,
                                         std::uint64_t hash, std::uint8_t format) noexcept {
  if (c.slot >= limits_.conn_slots) {
    return fail(pubsub_errc::invalid_argument);
  }
  claim_slot(c);
  std::uint32_t t = find(hash, topic);
  if (t != kNil) {
    if (const std::uint32_t i = find_sub(c, t); i != kNil) {
      Sub& s = subs_[i];
      if (s.format != format) {
        count(s.format, hash, -1);
        count(format, hash, +1);
        s.format = format;
      }
      return Subscribed{i, false};
    }
  }
  // Check both limits before changing anything, so a refusal leaves no empty topic behind.
  if (free_sub_ == kNil) {
    return fail(pubsub_errc::subscription_limit);
  }
  if (t == kNil) {
    if (free_topic_ == kNil) {
      return fail(pubsub_errc::topic_limit);
    }
    t = add_topic(topic, hash);
  }
  const std::uint32_t i = free_sub_;
  free_sub_ = subs_[i].conn_next;
  Sub& s = subs_[i];
  s = Sub{};
  s.conn = c;
  s.topic = t;
  s.format = format;
  Topic& e = topics_[t];
  s.prev = e.tail;
  (e.tail != kNil ? subs_[e.tail].next : e.head) = i;
  e.tail = i;
  ++e.subs;
  s.conn_next = conns_[c.slot].head;
  conns_[c.slot].head = i;
  ++subs_n_;
  count(format, hash, +1);
  return Subscribed{i, true};
}

void TopicTable::release(std::uint32_t i) noexcept {
  Sub& s = subs_[i];
  Topic& e = topics_[s.topic];
  (s.prev != kNil ? subs_[s.prev].next : e.head) = s.next;
  (s.next != kNil ? subs_[s.next].prev : e.tail) = s.prev;
  count(s.format, e.hash, -1);
  if (--e.subs == 0) {
    remove_topic(s.topic);
  }
  s.topic = kNil;
  s.conn = {};
  s.conn_next = free_sub_;
  free_sub_ = i;
  --subs_n_;
}

bool TopicTable::unsubscribe(platform::ConnId c, std::span<const std::byte> topic,
                             std::uint64_t hash) noexcept {
  const std::uint32_t t = find(hash, topic);
  if (t == kNil || c.slot >= limits_.conn_slots || conns_[c.slot].gen != c.gen) {
    return false;
  }
  for (std::uint32_t* link = &conns_[c.slot].head; *link != kNil; link = &subs_[*link].conn_next) {
    const std::uint32_t i = *link;
    if (subs_[i].topic == t) {
      *link = subs_[i].conn_next;
      release(i);
      return true;
    }
  }
  return false;
}

std::uint32_t TopicTable::drop_conn(platform::ConnId c) noexcept {
  if (c.slot >= limits_.conn_slots) {
    return 0;
  }
  // Whatever the slot's list holds goes: its own connection's subscriptions, or those of an
  // earlier connection of the slot that never reported its close (a newer one cannot exist
  // while this one is being closed: the core reuses a slot only after on_close).
  std::uint32_t n = 0;
  std::uint32_t i = conns_[c.slot].head;
  conns_[c.slot].head = kNil;
  while (i != kNil) {
    const std::uint32_t next = subs_[i].conn_next;
    release(i);
    i = next;
    ++n;
  }
  return n;
}

}  // namespace weft::pubsub::detail
