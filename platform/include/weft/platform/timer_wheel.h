// TimerWheel — a hierarchical timing wheel with intrusive nodes (one per worker).
//
// Layout: kLevels levels of 64 slots; level l holds timers whose expiry differs from the
// wheel's current tick first in bits [6l, 6l+6). A 64-bit occupancy mask per level lets
// advance() jump straight to the next slot that holds anything, so an idle stretch of an
// hour costs a handful of steps, not 3.6 million. Ticks are whatever unit the owner picks
// (weft's Loop uses milliseconds). Range: 64^kLevels ticks (about 139 years at 1 ms);
// later expiries are parked at the far end and re-placed as the wheel turns (when the wheel
// stands on a rotation's very last tick they wait in a small overflow list instead).
//
// Cost: schedule and cancel are O(1); advance is O(levels + timers fired or cascaded).
// Memory: the nodes are embedded in their owners (connections, requests); the wheel
// allocates nothing.
// Callbacks: advance() calls node.fn(&node) for each expired node after unlinking it; the
// callback may schedule or cancel any node, including the one it was called for.
// Threading: owned by one thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft::platform {

struct TimerNode {
  using Fn = void (*)(TimerNode* node);

  Fn fn = nullptr;              // called on expiry
  void* ctx = nullptr;          // free for the owner
  std::uint64_t expiry = 0;     // absolute tick
  TimerNode* next = nullptr;    // intrusive list links (owned by the wheel)
  TimerNode** pprev = nullptr;  // null when not scheduled

  [[nodiscard]] bool scheduled() const noexcept { return pprev != nullptr; }
};

class TimerWheel {
 public:
  static constexpr int kLevels = 7;
  static constexpr int kBits = 6;
  static constexpr std::uint64_t kSlots = 1u << kBits;
  static constexpr std::uint64_t kNever = ~std::uint64_t{0};

  explicit TimerWheel(std::uint64_t now = 0) noexcept : now_(now) {}
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // (Re)schedules node to fire at `expiry`. An expiry at or before now() fires on the next
  // advance(). Precondition: node.fn is set.
  void schedule(TimerNode& node, std::uint64_t expiry) noexcept;
  // Unschedules node; a no-op when it is not scheduled.
  void cancel(TimerNode& node) noexcept;

  // Moves the wheel to `now` (never backwards) and fires every node whose expiry <= now.
  // Returns the number of callbacks made.
  std::size_t advance(std::uint64_t now) noexcept;

  // A tick at or before the earliest pending expiry (a lower bound: it may be a cascade
  // point where nothing fires), or kNever when no node is scheduled.
  [[nodiscard]] std::uint64_t next_tick() const noexcept;
  [[nodiscard]] std::uint64_t now() const noexcept { return now_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  void place(TimerNode& node) noexcept;
  [[nodiscard]] std::uint64_t next_slot_tick() const noexcept;
  static void link(TimerNode*& head, TimerNode& node) noexcept;
  static void unlink(TimerNode& node) noexcept;
  std::size_t fire_list(TimerNode*& head) noexcept;
  void cascade(int level, std::uint64_t slot) noexcept;
  void replace_all(TimerNode*& head) noexcept;

  std::uint64_t now_;
  std::size_t size_ = 0;
  std::uint64_t occupied_[kLevels] = {};
  TimerNode* slots_[kLevels][kSlots] = {};
  TimerNode* due_ = nullptr;  // scheduled at or before now_
  // Only while now_ is the last tick of a top-level rotation: nodes expiring in a later
  // rotation, re-placed when the wheel steps to now_ + 1.
  TimerNode* overflow_ = nullptr;
};

}  // namespace weft::platform
