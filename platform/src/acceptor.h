// detail::Acceptor — a loop's listeners and services: accepting, the inbound limit, back-off
// after descriptor exhaustion, and round-robin hand-off to other workers.
//
// Each listener has its own multishot accept. An accepted connection either opens on this
// loop or, for a hand_off listener, goes to the next accept target through the post rings
// (the target opens it; if the ring is full or the target has stopped, the socket is closed
// here and counted in stats().handoff_failed). Accept errors that mean "out of descriptors
// or memory" back off for kAcceptRetryMs instead of spinning.
#pragma once

#include <cstdint>
#include <span>

#include <weft/base/result.h>
#include <weft/platform/conn.h>
#include <weft/platform/loop.h>
#include <weft/platform/timer_wheel.h>

namespace weft::platform::detail {

struct Completion;

class Acceptor {
 public:
  explicit Acceptor(Loop& loop) noexcept;

  [[nodiscard]] Result<std::uint32_t> add_listener(int fd, HandlerFactory& f,
                                                   bool hand_off) noexcept;
  [[nodiscard]] Result<std::uint32_t> add_service(HandlerFactory& f) noexcept;
  void set_targets(std::span<Loop* const> targets) noexcept {
    targets_ = targets.data();
    n_targets_ = static_cast<std::uint32_t>(targets.size());
  }
  [[nodiscard]] HandlerFactory* service(std::uint32_t i) const noexcept {
    return i < n_services_ ? services_[i] : nullptr;
  }

  void on_accept(std::uint32_t li, const Completion& cq) noexcept;
  // Stops accepting: in-flight accepts are cancelled, each fd closes when its last
  // completion arrives.
  void close_listeners() noexcept;
  [[nodiscard]] bool any_open() const noexcept;
  // Closes the descriptors (loop destruction).
  void close_fds() noexcept;

  // The post that carries an accepted socket to another worker: a = fd, b = service.
  static void adopt(Loop& target, const Post& p) noexcept;

 private:
  struct Listener {
    int fd = -1;
    bool armed = false;
    bool closing = false;
    bool hand_off = false;
    std::uint32_t next_target = 0;  // per listener: two hand-off services alternating stay even
    TimerNode retry;                // re-arm after EMFILE/ENFILE/ENOMEM
  };
  void arm(std::uint32_t li) noexcept;
  void hand_off(int fd, std::uint32_t service) noexcept;
  [[nodiscard]] std::uint64_t user_data(std::uint32_t li) const noexcept;

  Loop& loop_;
  Listener listeners_[Loop::kMaxListeners];
  HandlerFactory* services_[Loop::kMaxListeners] = {};
  std::uint32_t n_services_ = 0;
  Loop* const* targets_ = nullptr;
  std::uint32_t n_targets_ = 0;
};

}  // namespace weft::platform::detail
