#include <weft/base/assert.h>
#include <weft/platform/timer_wheel.h>

namespace weft::platform {
namespace {

constexpr int kBits = TimerWheel::kBits;
constexpr std::uint64_t kMask = TimerWheel::kSlots - 1;
// Expiries further out than this are placed at this distance and re-placed on cascade.
constexpr std::uint64_t kMaxDistance = (std::uint64_t{1} << (kBits * TimerWheel::kLevels)) - 1;

inline std::uint64_t digit(std::uint64_t t, int level) {
  return (t >> (kBits * level)) & kMask;
}

}  // namespace

void TimerWheel::link(TimerNode*& head, TimerNode& node) noexcept {
  node.next = head;
  if (head != nullptr) {
    head->pprev = &node.next;
  }
  head = &node;
  node.pprev = &head;
}

void TimerWheel::unlink(TimerNode& node) noexcept {
  *node.pprev = node.next;
  if (node.next != nullptr) {
    node.next->pprev = node.pprev;
  }
  node.next = nullptr;
  node.pprev = nullptr;
}

void TimerWheel::place(TimerNode& node) noexcept {
  if (node.expiry <= now_) {
    link(due_, node);
    return;
  }
  std::uint64_t at = node.expiry;
  if ((at >> (kBits * TimerWheel::kLevels)) != (now_ >> (kBits * TimerWheel::kLevels))) {
    // Beyond the top level's current rotation: park at its last tick; the node is placed
    // again from its real expiry when that slot cascades or fires.
    at = ((now_ >> (kBits * TimerWheel::kLevels)) << (kBits * TimerWheel::kLevels)) | kMaxDistance;
  }
  // The highest 6-bit digit in which `at` differs from now_ picks the level; the slot is
  // that digit of `at`, which is always ahead of now_'s digit on that level.
  const std::uint64_t diff = at ^ now_;
  if (diff == 0) {
    // now_ is the last tick of the top rotation and the expiry lies in a later rotation: no
    // slot is ahead of now_. Hold the node until the wheel steps into the next rotation
    // (next_slot_tick() reports now_ + 1 for it). Putting it in due_ instead made
    // next_tick() report "due now" for a future timer (a busy loop) and skipped it in an
    // advance() that crossed the boundary.
    link(overflow_, node);
    return;
  }
  const int level = (63 - __builtin_clzll(diff)) / kBits;
  const std::uint64_t slot = digit(at, level);
  link(slots_[level][slot], node);
  occupied_[level] |= std::uint64_t{1} << slot;
}

void TimerWheel::schedule(TimerNode& node, std::uint64_t expiry) noexcept {
  WEFT_ASSERT(node.fn != nullptr);
  if (node.scheduled()) {
    cancel(node);
  }
  node.expiry = expiry;
  place(node);
  ++size_;
}

void TimerWheel::cancel(TimerNode& node) noexcept {
  if (!node.scheduled()) {
    return;
  }
  // Clearing the occupancy bit here would need to know the slot; instead a stale bit is
  // cleared lazily when advance() finds the slot empty. That keeps cancel a pure unlink.
  unlink(node);
  --size_;
}

std::size_t TimerWheel::fire_list(TimerNode*& head) noexcept {
  // Detach first: callbacks may schedule into the very slot being fired.
  TimerNode* list = head;
  head = nullptr;
  if (list != nullptr) {
    list->pprev = &list;
  }
  std::size_t fired = 0;
  while (list != nullptr) {
    TimerNode& node = *list;
    unlink(node);
    --size_;
    if (node.expiry > now_) {
      place(node);  // parked beyond the wheel's range, or an early cascade: not due yet
      ++size_;
      continue;
    }
    node.fn(&node);
    ++fired;
  }
  return fired;
}

void TimerWheel::cascade(int level, std::uint64_t slot) noexcept {
  occupied_[level] &= ~(std::uint64_t{1} << slot);
  replace_all(slots_[level][slot]);
}

void TimerWheel::replace_all(TimerNode*& head) noexcept {
  TimerNode* list = head;
  head = nullptr;
  if (list != nullptr) {
    list->pprev = &list;
  }
  while (list != nullptr) {
    TimerNode& node = *list;
    unlink(node);
    place(node);
  }
}

std::uint64_t TimerWheel::next_tick() const noexcept {
  return due_ != nullptr ? now_ : next_slot_tick();
}

std::uint64_t TimerWheel::next_slot_tick() const noexcept {
  if (size_ == 0) {
    return kNever;
  }
  for (int level = 0; level < kLevels; ++level) {
    const std::uint64_t cur = digit(now_, level);
    const std::uint64_t ahead =
        cur == kMask ? 0 : occupied_[level] & (~std::uint64_t{0} << (cur + 1));
    if (ahead != 0) {
      const std::uint64_t slot = static_cast<std::uint64_t>(__builtin_ctzll(ahead));
      const int shift = kBits * (level + 1);
      const std::uint64_t base = shift >= 64 ? 0 : (now_ >> shift) << shift;
      return base | (slot << (kBits * level));
    }
  }
  // No slot is ahead of now_ in this rotation. Nodes held for the next rotation make its
  // first tick the next step; otherwise only nodes in due_ remain.
  return overflow_ != nullptr ? now_ + 1 : kNever;
}

std::size_t TimerWheel::advance(std::uint64_t now) noexcept {
  std::size_t fired = 0;
  if (now < now_) {
    now = now_;
  }
  fired += fire_list(due_);
  // Nodes that callbacks schedule at or before the current tick wait in due_: they fire at
  // the next step of this loop or on the next advance(), so a callback that re-arms itself
  // "now" cannot spin here forever.
  while (size_ != 0) {
    const std::uint64_t t = next_slot_tick();
    if (t == kNever || t > now) {
      break;
    }
    now_ = t;
    if (overflow_ != nullptr) {
      // t is the first tick of the next rotation (see next_slot_tick()).
      WEFT_ASSERT((t & kMaxDistance) == 0);
      replace_all(overflow_);
    }
    // Cascade every level whose boundary t sits on, highest first, so that nodes move down
    // and are caught by the lower levels at this same tick.
    for (int level = kLevels - 1; level >= 1; --level) {
      const std::uint64_t low = (std::uint64_t{1} << (kBits * level)) - 1;
      if ((t & low) == 0) {
        const std::uint64_t slot = digit(t, level);
        if (occupied_[level] & (std::uint64_t{1} << slot)) {
          cascade(level, slot);
        }
      }
    }
    const std::uint64_t slot0 = digit(t, 0);
    occupied_[0] &= ~(std::uint64_t{1} << slot0);
    fired += fire_list(slots_[0][slot0]);
    fired += fire_list(due_);
  }
  if (now > now_) {
    now_ = now;
  }
  return fired;
}

}  // namespace weft::platform
