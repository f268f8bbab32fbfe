// HandlerPool<H> — a HandlerFactory over a fixed set of preallocated handlers.
//
// All `capacity` handlers are constructed up front (at worker start, from the arguments
// given); create() hands out a free one and calls its reset(Conn&) so it starts clean;
// destroy() returns it. When all are in use create() returns nullptr and the connection is
// refused, which is the behaviour a per-worker connection limit wants anyway.
//
// Requirements on H: derives from Handler; `void reset(Conn&) noexcept`.
// Threading: the owning worker's thread only (the factory contract).
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include <weft/platform/loop.h>

namespace weft::platform {

template <class H>
class HandlerPool final : public HandlerFactory {
 public:
  template <class... Args>
  explicit HandlerPool(std::uint32_t capacity, const Args&... args) {
    all_.reserve(capacity);
    free_.reserve(capacity);
    for (std::uint32_t i = 0; i < capacity; ++i) {
      all_.push_back(std::make_unique<H>(args...));
      free_.push_back(all_.back().get());
    }
  }

  Handler* create(Conn& c) noexcept override {
    if (free_.empty()) {
      return nullptr;
    }
    H* h = free_.back();
    free_.pop_back();  // never reallocates: capacity reserved above
    h->reset(c);
    return h;
  }

  void destroy(Handler* h) noexcept override { free_.push_back(static_cast<H*>(h)); }

  [[nodiscard]] std::size_t in_use() const noexcept { return all_.size() - free_.size(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return all_.size(); }

 private:
  std::vector<std::unique_ptr<H>> all_;
  std::vector<H*> free_;
};

}  // namespace weft::platform
