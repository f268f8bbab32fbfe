// The Conn API: what a protocol calls. Sends go through the connection's OutQueue; the loop
// flushes at the end of the iteration (loop.cc).
#include <weft/platform/conn.h>
#include <weft/platform/error.h>
#include <weft/platform/loop.h>
#include <weft/platform/shared_buffers.h>

#include <algorithm>

namespace weft::platform {

const char* to_string(Timeout t) noexcept {
  switch (t) {
    case Timeout::idle:
      return "idle";
    case Timeout::read:
      return "read";
    case Timeout::write:
      return "write";
  }
  return "?";
}

ConnId Conn::id() const noexcept {
  return {slot_, gen_, loop_->index()};
}

Result<void> Conn::queued(Result<void> r, bool was_empty) noexcept {
  if (!r) {
    if (r.error() == make_error_code(platform_errc::queue_full) ||
        r.error() == make_error_code(platform_errc::no_buffers)) {
      loop_->no_room(*this);
    }
    return r;
  }
  loop_->after_queue(*this, was_empty);
  return r;
}

Result<void> Conn::send_ref(const BufRef& buf, std::span<const std::byte> bytes) noexcept {
  if (state_ != State::open) {
    return fail(platform_errc::closed);
  }
  const bool was_empty = out_.empty();
  return queued(out_.push_ref(loop_->segments_, buf.id(), bytes.data(), bytes.size()), was_empty);
}

Result<void> Conn::send_ref(const BufView& in, std::span<const std::byte> bytes) noexcept {
  if (state_ != State::open) {
    return fail(platform_errc::closed);
  }
  const bool was_empty = out_.empty();
  return queued(out_.push_ref(loop_->segments_, in.buf, bytes.data(), bytes.size()), was_empty);
}

Result<void> Conn::send_shared(const SharedRef& buf, std::span<const std::byte> bytes) noexcept {
  if (state_ != State::open) {
    return fail(platform_errc::closed);
  }
  if (!buf.valid() || buf.pool() != loop_->shared_) {
    return fail(platform_errc::invalid_argument);
  }
  const bool was_empty = out_.empty();
  return queued(
      out_.push_ref(loop_->segments_, buf.id() | detail::kSharedBit, bytes.data(), bytes.size()),
      was_empty);
}

Result<void> Conn::send_static(std::span<const std::byte> bytes) noexcept {
  if (state_ != State::open) {
    return fail(platform_errc::closed);
  }
  const bool was_empty = out_.empty();
  return queued(out_.push_ref(loop_->segments_, kNoBuf, bytes.data(), bytes.size()), was_empty);
}

Result<void> Conn::send_copy(std::span<const std::byte> head,
                             std::span<const std::byte> body) noexcept {
  if (state_ != State::open) {
    return fail(platform_errc::closed);
  }
  const bool was_empty = out_.empty();
  return queued(out_.push_copy(loop_->segments_, head, body), was_empty);
}

void Conn::close() noexcept {
  if (state_ == State::connecting) {
    loop_->begin_abort(*this, make_error_code(platform_errc::closed));
    return;
  }
  if (state_ != State::open) {
    return;
  }
  state_ = State::closing;
  close_deadline_ = loop_->now_ + loop_->cfg_.close_timeout_ms;
  loop_->arm_deadline(*this, close_deadline_);
  loop_->continue_close(*this);
}

void Conn::abort(std::error_code reason) noexcept {
  loop_->begin_abort(*this, reason ? reason : make_error_code(platform_errc::closed));
}

void Conn::pause_reading() noexcept {
  set(kPausedUser);
  loop_->update_reading(*this);
}

void Conn::resume_reading() noexcept {
  clear(kPausedUser);
  loop_->unpaused(*this);
}

void Conn::set_watermark_pause(bool enabled) noexcept {
  if (enabled) {
    clear(kNoWatermarkPause);
    if (has(kAboveHigh)) {
      clear(kAboveHigh);
      loop_->watermark_reached(*this);  // over the high watermark now: pause as usual
    }
  } else {
    set(kNoWatermarkPause);
    if (has(kPausedWatermark)) {
      clear(kPausedWatermark);
      set(kAboveHigh);  // still owed an on_writable below the low watermark
      loop_->unpaused(*this);
    }
  }
}

void Conn::mid_message_changed(bool mid) noexcept {
  if (mid) {
    mid_since_ = loop_->now_;
    if (timeouts_.read_ms != 0) {
      loop_->arm_deadline(*this, mid_since_ + timeouts_.read_ms);
    }
  }
  if (mid) {
    set(kMidMessage);
  } else {
    clear(kMidMessage);
  }
}

void Conn::set_timeouts(const Timeouts& t) noexcept {
  timeouts_ = t;
  // Deadlines are evaluated lazily; an earlier one must be armed now, a later one is found
  // when the current timer fires.
  if (t.idle_ms != 0) {
    loop_->arm_deadline(*this, std::max(last_activity_, send_progress_) + t.idle_ms);
  }
  if (t.read_ms != 0 && has(kMidMessage)) {
    loop_->arm_deadline(*this, mid_since_ + t.read_ms);
  }
  if (t.write_ms != 0 && !out_.empty()) {
    loop_->arm_deadline(*this, send_progress_ + t.write_ms);
  }
}

}  // namespace weft::platform
