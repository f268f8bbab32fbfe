// detail::WorkList — the loop's intrusive lists of connections with work pending.
//
// A WorkList is a LIFO of connections through one of Conn::next_[] with a membership bit, so
// a connection is on each list at most once and pushing is O(1) without memory of its own.
// One list type serves all five: connections to flush (dirty), to finalize, parked for lack
// of receive buffers, waiting for room to send, and with held input to deliver (resume).
#pragma once

#include <cstdint>

#include <weft/platform/conn.h>

namespace weft::platform::detail {

enum class List : std::uint8_t { dirty = 0, finalize, parked, room, resume };

class WorkList {
 public:
  explicit WorkList(List which) noexcept : k_(static_cast<int>(which)) {}

  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  [[nodiscard]] static bool contains(const Conn& c, List which) noexcept {
    return (c.on_list_ & bit(static_cast<int>(which))) != 0;
  }
  // Adds c unless it is already on this list.
  void push(Conn& c) noexcept {
    if ((c.on_list_ & bit(k_)) == 0) {
      c.on_list_ = static_cast<std::uint8_t>(c.on_list_ | bit(k_));
      c.next_[k_] = head_;
      head_ = &c;
    }
  }
  // Removes and returns one connection, or nullptr.
  Conn* pop() noexcept {
    Conn* c = head_;
    if (c != nullptr) {
      head_ = c->next_[k_];
      c->next_[k_] = nullptr;
      c->on_list_ = static_cast<std::uint8_t>(c->on_list_ & ~bit(k_));
    }
    return c;
  }
  // Moves every member to a new list (to walk it while callbacks push onto this one).
  WorkList take() noexcept {
    WorkList out(static_cast<List>(k_));
    out.head_ = head_;
    head_ = nullptr;
    return out;
  }

 private:
  static constexpr std::uint8_t bit(int k) noexcept { return static_cast<std::uint8_t>(1u << k); }
  Conn* head_ = nullptr;
  int k_;
};

}  // namespace weft::platform::detail
