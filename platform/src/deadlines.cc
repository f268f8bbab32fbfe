// Per-connection deadlines: one TimerNode per connection, evaluated lazily. Activity only
// moves timestamps; when the node fires, on_conn_timer works out which deadline, if any, has
// really passed, asks the handler (on_timeout), acts, and schedules the next look.
#include <weft/platform/error.h>
#include <weft/platform/loop.h>

#include <algorithm>

namespace weft::platform {

bool Loop::timeout_fired(Conn& c, Timeout which) noexcept {
  if (!c.handler_->on_timeout(c, which)) {
    return false;
  }
  // Handled. If the connection lives on, that deadline starts again from now.
  switch (which) {
    case Timeout::idle:
      c.last_activity_ = now_;
      break;
    case Timeout::read:
      c.mid_since_ = now_;
      break;
    case Timeout::write:
      c.send_progress_ = now_;
      break;
  }
  return true;
}

void Loop::on_conn_timer(Conn& c) noexcept {
  const std::uint64_t now = now_;
  std::uint64_t next = TimerWheel::kNever;
  const auto due = [&](std::uint64_t at) {
    if (at <= now) {
      return true;
    }
    next = std::min(next, at);
    return false;
  };
  const auto timed_out = make_error_code(platform_errc::timed_out);
  switch (c.state_) {
    case Conn::State::connecting:
      if (c.close_deadline_ != 0 && due(c.close_deadline_)) {
        begin_abort(c, timed_out);
      }
      return;  // nothing else runs before the connection is open
    case Conn::State::closing:
      if (due(c.close_deadline_)) {
        // After our FIN the peer never sent its own: close anyway, nothing is lost. Before
        // it, queued output could not be flushed in close_timeout_ms: that is a timeout.
        begin_abort(c, c.has(Conn::kShutWr) ? c.reason_ : timed_out);
        return;
      }
      break;
    case Conn::State::open: {
      if (hoarding(c)) {
        // Held input past the pin limit (no general buffer was spare to copy it into) while
        // other connections cannot read for lack of receive buffers, and this peer has taken
        // none of its output for kHoardStallMs: it is what keeps everyone else waiting.
        const std::uint32_t others_parked = parked_n_ - (c.has(Conn::kParked) ? 1u : 0u);
        if (!c.out_.empty() && others_parked != 0 && pool_.free_recv() < park_threshold() &&
            due(c.send_progress_ + kHoardStallMs)) {
          stats_.hoarders_closed.add();
          begin_abort(c, make_error_code(platform_errc::no_buffers));
          return;
        }
        next = std::min(next, now + kHoardStallMs);  // look again while it hoards
      }
      const Timeouts& t = c.timeouts_;
      if (t.write_ms != 0 && !c.out_.empty() && due(c.send_progress_ + t.write_ms)) {
        if (!timeout_fired(c, Timeout::write)) {
          begin_abort(c, timed_out);
          return;
        }
        if (c.state_ != Conn::State::open) {
          return;
        }
        next = std::min(next, c.send_progress_ + t.write_ms);
      }
      if (t.read_ms != 0 && c.has(Conn::kMidMessage) && due(c.mid_since_ + t.read_ms)) {
        if (!timeout_fired(c, Timeout::read)) {
          begin_abort(c, timed_out);
          return;
        }
        if (c.state_ != Conn::State::open) {
          return;
        }
        next = std::min(next, c.mid_since_ + t.read_ms);
      }
      if (t.idle_ms != 0 && due(std::max(c.last_activity_, c.send_progress_) + t.idle_ms)) {
        if (!timeout_fired(c, Timeout::idle)) {
          c.reason_ = timed_out;
          c.close();  // idle: nothing queued, so a graceful FIN
          return;
        }
        if (c.state_ != Conn::State::open) {
          return;
        }
        next = std::min(next, std::max(c.last_activity_, c.send_progress_) + t.idle_ms);
      }
      break;
    }
    default:
      return;
  }
  if (next != TimerWheel::kNever) {
    timers_.schedule(c.timer_, next);
  }
}

}  // namespace weft::platform
