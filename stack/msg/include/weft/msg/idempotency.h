// weft::msg::IdempotencyTable — a server's bounded memory of recent idempotency keys and the
// answers it gave, so that a retried REQUEST (flag IDEMPOTENT, docs/protocol.md §6.3 and
// §6.7) is answered from the table instead of running its handler twice.
//
// Design: one table per worker, used from that worker's thread only (not thread-safe, no
// atomics). All memory is allocated by init() — the entry array, the bucket array and one
// response slab of capacity * max_response_size bytes — and nothing is allocated after it:
// begin(), complete() and abandon() never allocate. Lookup is a fixed bucket array (a power
// of two, at least 2 * capacity) of singly linked chains of entry indices; DONE entries are
// also on an intrusive doubly linked LRU list of indices. Every operation is O(1) on
// average. Entries in progress are on no LRU list and are never evicted or expired.
//
// Keys are (scope, key). `key` is chosen by the client and must be random (64 bits from a
// CSPRNG or a good PRNG seeded per client): the table trusts it to be unique. `scope`
// separates clients that could choose the same key (a client or connection identity, or 0
// when one scope is enough); two different scopes never see each other's entries.
//
// TTL: a DONE entry older than ttl_ms (measured from complete()) is expired lazily, when a
// begin() meets it or when a slot is needed; it is then forgotten (a retry runs again).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include <weft/base/result.h>

namespace weft::msg {

// What begin() found.
enum class IdemState : std::uint8_t {
  fresh,        // new key: the caller runs the handler; the entry is now in progress
  in_progress,  // the first attempt is still running: do not run the handler again
  done,         // answered before: send Begin::code / Begin::response again
  full,         // every entry is in progress: answer ERROR overloaded, nothing recorded
};

// What complete() did.
enum class IdemComplete : std::uint8_t {
  stored,     // the response (or error code) is stored; retries get it
  too_large,  // the response exceeded max_response_size: only ERROR too_large is stored
  not_found,  // no in-progress entry for (scope, key): nothing stored
};

// The result of begin(). For `done`: code == 0 means a RESPONSE whose payload is
// `response`; otherwise `code` is a ProtocolError (u16) to send as ERROR and `response`
// is empty. `response` views the table's slab: valid until the next call on the table.
struct IdemBegin {
  IdemState state = IdemState::fresh;
  std::uint16_t code = 0;
  std::span<const std::byte> response;
};

struct IdemStats {
  std::uint64_t hits = 0;                    // begin() returned done
  std::uint64_t misses = 0;                  // begin() returned fresh
  std::uint64_t evictions = 0;               // a live DONE entry dropped (LRU) to make room
  std::uint64_t expirations = 0;             // a DONE entry dropped because it outlived ttl_ms
  std::uint64_t in_progress_rejections = 0;  // begin() returned in_progress
  std::uint64_t full_rejections = 0;         // begin() returned full
};

class IdempotencyTable {
 public:
  // code value of complete() meaning "a RESPONSE, not an ERROR".
  static constexpr std::uint16_t kResponse = 0;

  IdempotencyTable() noexcept = default;
  IdempotencyTable(const IdempotencyTable&) = delete;
  IdempotencyTable& operator=(const IdempotencyTable&) = delete;
  IdempotencyTable(IdempotencyTable&&) noexcept = default;
  IdempotencyTable& operator=(IdempotencyTable&&) noexcept = default;
  ~IdempotencyTable() = default;

  // Allocates everything (the only allocations the table makes). capacity >= 1 entries;
  // max_response_size bytes stored per entry (may be 0: only error codes and empty
  // responses are kept); ttl_ms > 0. Errors: std::errc::invalid_argument (capacity 0,
  // ttl 0, capacity > 2^30, size overflow), std::errc::not_enough_memory. Call once.
  [[nodiscard]] Result<void> init(std::uint32_t capacity, std::uint32_t max_response_size,
                                  std::uint64_t ttl_ms) noexcept;

  // Looks up (scope, key) at time now_ms (any monotonic millisecond clock; callers pass
  // the same clock to every call). fresh: an in-progress entry was created, evicting the
  // least recently used DONE entry if the table was full; the caller must later call
  // complete() or abandon(). done: the entry becomes most recently used. Precondition:
  // init() succeeded.
  [[nodiscard]] IdemBegin begin(std::uint64_t scope, std::uint64_t key,
                                std::uint64_t now_ms) noexcept;

  // Stores the answer of an in-progress entry and marks it done at now_ms. code is
  // kResponse (then `response` is the payload, copied) or a ProtocolError value (then
  // `response` is ignored). A response larger than max_response_size is not stored:
  // the entry keeps ERROR too_large instead, so a retry gets a defined error rather than a
  // second run of a handler that already ran (returns too_large).
  IdemComplete complete(std::uint64_t scope, std::uint64_t key, std::uint16_t code,
                        std::span<const std::byte> response, std::uint64_t now_ms) noexcept;

  // Forgets an in-progress entry (the handler ended without an answer, e.g. the
  // connection closed): a retry runs the handler again. Returns false when there is no
  // in-progress entry for (scope, key) (a DONE entry is left alone).
  bool abandon(std::uint64_t scope, std::uint64_t key) noexcept;

  [[nodiscard]] const IdemStats& stats() const noexcept { return stats_; }
  [[nodiscard]] std::uint32_t size() const noexcept { return size_; }
  [[nodiscard]] std::uint32_t capacity() const noexcept { return capacity_; }

 private:
  static constexpr std::uint32_t kNil = 0xffffffffU;
  struct Entry {
    std::uint64_t scope = 0;
    std::uint64_t key = 0;
    std::uint64_t done_ms = 0;
    std::uint32_t chain_next = kNil;  // next in bucket chain, or next free entry
    std::uint32_t lru_prev = kNil;
    std::uint32_t lru_next = kNil;
    std::uint32_t length = 0;  // stored response bytes
    std::uint16_t code = 0;
    bool done = false;
  };

  [[nodiscard]] std::uint32_t bucket_of(std::uint64_t scope, std::uint64_t key) const noexcept;
  [[nodiscard]] std::uint32_t find(std::uint64_t scope, std::uint64_t key) const noexcept;
  void unlink_chain(std::uint32_t i) noexcept;
  void lru_remove(std::uint32_t i) noexcept;
  void lru_push_front(std::uint32_t i) noexcept;
  void release(std::uint32_t i) noexcept;  // chain + LRU + free list
  [[nodiscard]] bool expired(const Entry& e, std::uint64_t now_ms) const noexcept;

  std::unique_ptr<Entry[]> entries_;
  std::unique_ptr<std::uint32_t[]> buckets_;
  std::unique_ptr<std::byte[]> slab_;
  std::uint32_t capacity_ = 0;
  std::uint32_t bucket_mask_ = 0;
  std::uint32_t max_response_ = 0;
  std::uint64_t ttl_ms_ = 0;
  std::uint32_t size_ = 0;
  std::uint32_t free_head_ = kNil;
  std::uint32_t lru_head_ = kNil;  // most recently used DONE entry
  std::uint32_t lru_tail_ = kNil;  // least recently used DONE entry
  IdemStats stats_;
};

}  // namespace weft::msg
