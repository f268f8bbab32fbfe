// detail::ConnTable — a loop's connection slots.
//
// Slots are allocated once (Config::slots() of them) and named by index. A slot taken for a
// connection gets a clean state (flags cleared in one store, output queue empty); released,
// its generation moves on so that ConnIds and completions of the old occupant no longer
// match. Inbound and outbound connections share the slots but are counted against their own
// limits, so an inbound flood never takes the outbound reserve.
#pragma once

#include <cstdint>
#include <memory>
#include <new>

#include <weft/platform/conn.h>
#include <weft/platform/detail/work_list.h>

namespace weft::platform::detail {

class ConnTable {
 public:
  // Errors: ENOMEM.
  [[nodiscard]] bool init(Loop* loop, std::uint32_t inbound, std::uint32_t outbound) noexcept {
    max_in_ = inbound;
    max_out_ = outbound;
    size_ = inbound + outbound;
    conns_.reset(new (std::nothrow) Conn[size_]);
    if (!conns_) {
      return false;
    }
    for (std::uint32_t i = size_; i-- > 0;) {
      Conn& c = conns_[i];
      c.loop_ = loop;
      c.slot_ = i;
      next_free_of(c) = free_;
      free_ = &c;
    }
    return true;
  }

  // A clean slot, or nullptr when that direction is at its limit.
  Conn* alloc(bool outbound) noexcept {
    std::uint32_t& n = outbound ? out_ : in_;
    if (n == (outbound ? max_out_ : max_in_) || free_ == nullptr) {
      return nullptr;
    }
    Conn* c = free_;
    free_ = next_free_of(*c);
    next_free_of(*c) = nullptr;
    ++n;
    c->flags_ = outbound ? Conn::kOutbound : 0;
    c->inflight_ = 0;
    c->fd_ = -1;
    c->handler_ = nullptr;
    c->factory_ = nullptr;
    c->context_ = {};
    c->reason_ = {};
    return c;
  }
  // The connection is finalized: a new generation, back to the free list.
  void release(Conn& c) noexcept {
    ++c.gen_;
    c.state_ = Conn::State::free;
    --(c.has(Conn::kOutbound) ? out_ : in_);
    next_free_of(c) = free_;
    free_ = &c;
  }

  [[nodiscard]] Conn* find(std::uint32_t slot, std::uint32_t gen) noexcept {
    if (slot >= size_) {
      return nullptr;
    }
    Conn& c = conns_[slot];
    return c.gen_ == gen && c.state_ != Conn::State::free ? &c : nullptr;
  }
  [[nodiscard]] Conn& at(std::uint32_t slot) noexcept { return conns_[slot]; }
  [[nodiscard]] std::uint32_t size() const noexcept { return size_; }
  [[nodiscard]] std::uint32_t active() const noexcept { return in_ + out_; }
  [[nodiscard]] std::uint32_t inbound() const noexcept { return in_; }
  [[nodiscard]] std::uint32_t outbound() const noexcept { return out_; }

 private:
  // A free slot borrows the finalize list's link: release() is called right after the
  // connection came off that list, and nothing puts a free slot on it.
  static Conn*& next_free_of(Conn& c) noexcept { return c.next_[static_cast<int>(List::finalize)]; }

  std::unique_ptr<Conn[]> conns_;
  Conn* free_ = nullptr;
  std::uint32_t size_ = 0;
  std::uint32_t max_in_ = 0;
  std::uint32_t max_out_ = 0;
  std::uint32_t in_ = 0;
  std::uint32_t out_ = 0;
};

}  // namespace weft::platform::detail
