#include <weft/msg/idempotency.h>

#include <cstring>
#include <new>
#include <system_error>

#include <weft/base/assert.h>
#include <weft/msg/error.h>

namespace weft::msg {

Result<void> IdempotencyTable::init(std::uint32_t capacity, std::uint32_t max_response_size,
                                    std::uint64_t ttl_ms) noexcept {
  // 2^30 keeps the bucket count (2 * capacity, rounded up) within u32 and below kNil.
  if (capacity == 0 || ttl_ms == 0 || capacity > (1U << 30)) {
    return fail(std::make_error_code(std::errc::invalid_argument));
  }
  // Slab size in size_t: checked for overflow with 32-bit armhf in mind.
  const std::size_t slab = static_cast<std::size_t>(capacity) * max_response_size;
  if (max_response_size != 0 && slab / max_response_size != capacity) {
    return fail(std::make_error_code(std::errc::invalid_argument));
  }
  std::uint32_t buckets = 1;
  while (buckets < 2 * capacity) {
    buckets <<= 1;
  }
  entries_.reset(new (std::nothrow) Entry[capacity]);
  buckets_.reset(new (std::nothrow) std::uint32_t[buckets]);
  slab_.reset(new (std::nothrow) std::byte[slab == 0 ? 1 : slab]);
  if (!entries_ || !buckets_ || !slab_) {
    return fail(std::make_error_code(std::errc::not_enough_memory));
  }
  for (std::uint32_t b = 0; b < buckets; ++b) {
    buckets_[b] = kNil;
  }
  for (std::uint32_t i = 0; i < capacity; ++i) {
    entries_[i].chain_next = i + 1 < capacity ? i + 1 : kNil;
  }
  capacity_ = capacity;
  bucket_mask_ = buckets - 1;
  max_response_ = max_response_size;
  ttl_ms_ = ttl_ms;
  free_head_ = 0;
  return {};
}

std::uint32_t IdempotencyTable::bucket_of(std::uint64_t scope, std::uint64_t key) const noexcept {
  // splitmix64 finaliser over both halves: keys are random, but scope may be small and
  // sequential, so it is mixed before it is combined.
  std::uint64_t x = key ^ (scope * 0x9e3779b97f4a7c15ULL);
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return static_cast<std::uint32_t>(x) & bucket_mask_;
}

std::uint32_t IdempotencyTable::find(std::uint64_t scope, std::uint64_t key) const noexcept {
  for (std::uint32_t i = buckets_[bucket_of(scope, key)]; i != kNil; i = entries_[i].chain_next) {
    if (entries_[i].key == key && entries_[i].scope == scope) {
      return i;
    }
  }
  return kNil;
}

void IdempotencyTable::unlink_chain(std::uint32_t i) noexcept {
  std::uint32_t* link = &buckets_[bucket_of(entries_[i].scope, entries_[i].key)];
  while (*link != i) {
    WEFT_ASSERT(*link != kNil);
    link = &entries_[*link].chain_next;
  }
  *link = entries_[i].chain_next;
}

void IdempotencyTable::lru_remove(std::uint32_t i) noexcept {
  Entry& e = entries_[i];
  if (e.lru_prev != kNil) {
    entries_[e.lru_prev].lru_next = e.lru_next;
  } else {
    lru_head_ = e.lru_next;
  }
  if (e.lru_next != kNil) {
    entries_[e.lru_next].lru_prev = e.lru_prev;
  } else {
    lru_tail_ = e.lru_prev;
  }
  e.lru_prev = kNil;
  e.lru_next = kNil;
}

void IdempotencyTable::lru_push_front(std::uint32_t i) noexcept {
  Entry& e = entries_[i];
  e.lru_prev = kNil;
  e.lru_next = lru_head_;
  if (lru_head_ != kNil) {
    entries_[lru_head_].lru_prev = i;
  } else {
    lru_tail_ = i;
  }
  lru_head_ = i;
}

void IdempotencyTable::release(std::uint32_t i) noexcept {
  unlink_chain(i);
  if (entries_[i].done) {
    lru_remove(i);
  }
  entries_[i] = Entry{};
  entries_[i].chain_next = free_head_;
  free_head_ = i;
  --size_;
}

bool IdempotencyTable::expired(const Entry& e, std::uint64_t now_ms) const noexcept {
  // In-progress entries never expire: their handler still owns them.
  return e.done && now_ms >= e.done_ms && now_ms - e.done_ms >= ttl_ms_;
}

IdemBegin IdempotencyTable::begin(std::uint64_t scope, std::uint64_t key,
                                  std::uint64_t now_ms) noexcept {
  WEFT_ASSERT(capacity_ != 0);
  std::uint32_t i = find(scope, key);
  if (i != kNil && expired(entries_[i], now_ms)) {
    release(i);
    ++stats_.expirations;
    i = kNil;
  }
  if (i != kNil) {
    Entry& e = entries_[i];
    if (!e.done) {
      ++stats_.in_progress_rejections;
      return {IdemState::in_progress, 0, {}};
    }
    lru_remove(i);
    lru_push_front(i);
    ++stats_.hits;
    const std::size_t off = static_cast<std::size_t>(i) * max_response_;
    return {IdemState::done, e.code, std::span<const std::byte>(slab_.get() + off, e.length)};
  }
  if (free_head_ == kNil) {
    // Full: the LRU tail is the oldest DONE entry, so if anything has expired it has.
    if (lru_tail_ == kNil) {
      ++stats_.full_rejections;
      return {IdemState::full, 0, {}};
    }
    if (expired(entries_[lru_tail_], now_ms)) {
      ++stats_.expirations;
    } else {
      ++stats_.evictions;
    }
    release(lru_tail_);
  }
  i = free_head_;
  Entry& e = entries_[i];
  free_head_ = e.chain_next;
  e = Entry{};
  e.scope = scope;
  e.key = key;
  std::uint32_t& head = buckets_[bucket_of(scope, key)];
  e.chain_next = head;
  head = i;
  ++size_;
  ++stats_.misses;
  return {IdemState::fresh, 0, {}};
}

IdemComplete IdempotencyTable::complete(std::uint64_t scope, std::uint64_t key, std::uint16_t code,
                                        std::span<const std::byte> response,
                                        std::uint64_t now_ms) noexcept {
  const std::uint32_t i = find(scope, key);
  if (i == kNil || entries_[i].done) {
    return IdemComplete::not_found;
  }
  Entry& e = entries_[i];
  IdemComplete result = IdemComplete::stored;
  e.code = code;
  e.length = 0;
  if (code == kResponse) {
    if (response.size() > max_response_) {
      e.code = static_cast<std::uint16_t>(ProtocolError::too_large);
      result = IdemComplete::too_large;
    } else if (!response.empty()) {
      const std::size_t off = static_cast<std::size_t>(i) * max_response_;
      std::memcpy(slab_.get() + off, response.data(), response.size());
      e.length = static_cast<std::uint32_t>(response.size());
    }
  }
  e.done = true;
  e.done_ms = now_ms;
  lru_push_front(i);
  return result;
}

bool IdempotencyTable::abandon(std::uint64_t scope, std::uint64_t key) noexcept {
  const std::uint32_t i = find(scope, key);
  if (i == kNil || entries_[i].done) {
    return false;
  }
  release(i);
  return true;
}

}  // namespace weft::msg
