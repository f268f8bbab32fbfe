// detail::TopicTable — one worker's topics and subscriptions (private to weft::pubsub).
//
// Layout, all allocated by init() and never grown:
//   topics_   max_topics entries {hash, name length, subscriber list, counts per format};
//             the names live in names_, max_topic_len bytes per entry.
//   index_    open addressing over the topics (linear probing, a power of two >= 2 x
//             max_topics slots, so probes stay short); deletion shifts entries back instead
//             of leaving tombstones, so a table that churns topics never degrades.
//   subs_     max_subscriptions nodes. A node is on two lists: its topic's (doubly linked,
//             in subscription order: fan-out walks it) and its connection's (singly linked:
//             closing a connection walks only its own subscriptions).
//   conns_    per connection slot (Config::slots()): the head of the slot's list and the
//             generation it belongs to. A list left by a connection whose close was never
//             reported is found by its old generation and dropped when the slot is reused.
//   interest_ counters [format][bucket], bucket = hash & bucket_mask (buckets: a power of
//             two >= 4 x max_topics, so unrelated topics rarely share one): how many of this
//             worker's subscriptions of each format have a topic in that bucket. Written
//             here (one writer: this worker), read by publishers on every worker to decide
//             what to encode and whom to post to.
//
// Indices are u32 with kNil for "none". Threading: the owning worker's thread only, except
// interest(), which publishers on every worker call.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include <weft/base/result.h>
#include <weft/platform/conn.h>

namespace weft::pubsub::detail {

inline constexpr std::uint32_t kNil = 0xffffffffu;
inline constexpr std::uint32_t kMaxFormats = 4;

// FNV-1a (64-bit) of the topic, from a per-hub seed mixed into the offset basis: topics come
// from clients, and a fixed hash would let one choose names that all probe the same slots.
[[nodiscard]] std::uint64_t topic_hash(std::uint64_t seed, std::span<const std::byte> t) noexcept;

struct TableLimits {
  std::uint32_t max_topics = 0;
  std::uint32_t max_subscriptions = 0;
  std::uint32_t max_topic_len = 0;
  std::uint32_t conn_slots = 0;
};

struct Sub {
  platform::ConnId conn;
  std::uint32_t topic = kNil;
  std::uint32_t prev = kNil;  // topic list
  std::uint32_t next = kNil;
  std::uint32_t conn_next = kNil;  // connection list; the free list when unused
  std::uint32_t consecutive = 0;   // drops since the last delivery
  std::uint8_t format = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dropped = 0;
};

struct Topic {
  std::uint64_t hash = 0;
  std::uint32_t head = kNil;  // subscriber list, oldest first
  std::uint32_t tail = kNil;
  std::uint32_t subs = 0;  // 0: the entry is free (next_free links it)
  std::uint32_t next_free = kNil;
  std::uint16_t len = 0;
};

struct Subscribed {
  std::uint32_t sub = kNil;
  bool added = false;  // false: the connection already had it (the format may have changed)
};

class TopicTable {
 public:
  // Errors: ENOMEM as a system error (allocation failed).
  [[nodiscard]] Result<void> init(const TableLimits& limits) noexcept;

  // The topic's entry, or kNil.
  [[nodiscard]] std::uint32_t find(std::uint64_t hash,
                                   std::span<const std::byte> topic) const noexcept;
  // Idempotent per (connection, topic); a second call with another format switches it.
  // Errors (nothing changed): topic_limit, subscription_limit, invalid_argument (the slot is
  // beyond conn_slots).
  [[nodiscard]] Result<Subscribed> subscribe(platform::ConnId c, std::span<const std::byte> topic,
                                             std::uint64_t hash, std::uint8_t format) noexcept;
  // True if the connection had the subscription (now removed).
  bool unsubscribe(platform::ConnId c, std::span<const std::byte> topic,
                   std::uint64_t hash) noexcept;
  // Removes every subscription of the connection's slot; returns how many.
  std::uint32_t drop_conn(platform::ConnId c) noexcept;
  // The connection's subscription of topic entry t, or kNil.
  [[nodiscard]] std::uint32_t find_sub(platform::ConnId c, std::uint32_t t) const noexcept;

  [[nodiscard]] Sub& sub(std::uint32_t i) noexcept { return subs_[i]; }
  [[nodiscard]] const Topic& topic(std::uint32_t t) const noexcept { return topics_[t]; }
  [[nodiscard]] std::span<const std::byte> name(std::uint32_t t) const noexcept {
    return {names_.get() + static_cast<std::size_t>(t) * limits_.max_topic_len, topics_[t].len};
  }
  [[nodiscard]] std::uint32_t topics() const noexcept { return topics_n_; }
  [[nodiscard]] std::uint32_t subscriptions() const noexcept { return subs_n_; }
  // Any thread (a publisher on another worker): this worker's subscriptions in `format` whose
  // topic shares hash's bucket. Acquire pairs with the release in count(): a publisher that
  // sees the count also sees what this worker did before it (its ack to the subscriber).
  [[nodiscard]] std::uint32_t interest(std::uint8_t format, std::uint64_t hash) const noexcept {
    return counter(format, hash).load(std::memory_order_acquire);
  }

 private:
  [[nodiscard]] std::uint32_t add_topic(std::span<const std::byte> topic,
                                        std::uint64_t hash) noexcept;
  void remove_topic(std::uint32_t t) noexcept;
  // Unlinks i from its topic (removing the topic when it was the last) and frees it; the
  // caller has unlinked it from the connection list.
  void release(std::uint32_t i) noexcept;
  void count(std::uint8_t format, std::uint64_t hash, int delta) noexcept;
  [[nodiscard]] std::atomic<std::uint32_t>& counter(std::uint8_t format,
                                                    std::uint64_t hash) const noexcept {
    return interest_[std::size_t{format} * (std::size_t{bucket_mask_} + 1) +
                     static_cast<std::size_t>(hash & bucket_mask_)];
  }
  // Drops a list left by an earlier connection of c's slot (its close was never reported).
  void claim_slot(platform::ConnId c) noexcept;

  struct ConnSlot {
    std::uint32_t head = kNil;
    std::uint32_t gen = 0;
  };

  TableLimits limits_;
  std::unique_ptr<Topic[]> topics_;
  std::unique_ptr<std::byte[]> names_;
  std::unique_ptr<std::uint32_t[]> index_;
  std::uint32_t index_mask_ = 0;
  std::unique_ptr<Sub[]> subs_;
  std::unique_ptr<ConnSlot[]> conns_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> interest_;
  std::uint32_t bucket_mask_ = 0;
  std::uint32_t free_topic_ = kNil;
  std::uint32_t free_sub_ = kNil;
  std::uint32_t topics_n_ = 0;
  std::uint32_t subs_n_ = 0;
};

}  // namespace weft::pubsub::detail
