#include <weft/frame/delimiter.h>

#include <cstring>

#include <weft/base/assert.h>

namespace weft::frame {
namespace {

constexpr std::byte kCr{'\r'};

}  // namespace

Result<void> DelimiterDecoder::set_assembly(std::span<std::byte> storage) noexcept {
  WEFT_ASSERT(!mid_frame());
  if (storage.size() < config_.max_frame_size) {
    return weft::fail(frame_errc::buffer_too_small);
  }
  assembly_ = storage;
  has_assembly_ = true;
  return {};
}

Decoded DelimiterDecoder::set_error(frame_errc e, std::size_t consumed) noexcept {
  phase_ = Phase::error;
  error_ = e;
  return {consumed, DecodeState::error};
}

// Where an oversize line became invalid: the first frame byte past the `room` still
// allowed, counted from in[pos]. In CRLF mode a '\r' at that spot is not yet content (it may
// be stripped), so the byte after it is the offender. Reporting the same stream offset
// whatever the read boundaries keeps errors reproducible (and fuzzable).
std::size_t DelimiterDecoder::oversize_offset(std::span<const std::byte> in, std::size_t pos,
                                              std::size_t room) const noexcept {
  std::size_t at = pos + room;
  if (config_.crlf && at < in.size() && in[at] == kCr) {
    ++at;
  }
  return at + 1;
}

Decoded DelimiterDecoder::feed(std::span<const std::byte> in) noexcept {
  if (phase_ == Phase::error) {
    return {0, DecodeState::error};
  }
  if (phase_ == Phase::ready) {  // the previous frame's view dies here
    phase_ = Phase::scan;
    have_ = 0;
    pending_cr_ = false;
  }
  const std::size_t n = in.size();
  const std::byte* p = in.data();
  std::size_t pos = 0;

  if (pending_cr_) {
    // CRLF mode, and the previous feed ended in '\r': this byte decides what it was.
    if (n == 0) {
      return {0, DecodeState::need_more};
    }
    pending_cr_ = false;
    if (p[0] == config_.delimiter) {
      frame_data_ = assembly_.data();
      frame_size_ = have_;
      phase_ = Phase::ready;
      return {1, DecodeState::ready};
    }
    if (have_ == config_.max_frame_size) {  // the '\r' is content, one byte too many
      return set_error(frame_errc::oversize, 1);
    }
    assembly_[have_++] = kCr;  // pending_cr_ is only ever set with assembly storage
  }

  // Scan no further than the longest line still acceptable: `room` frame bytes, a '\r' in
  // CRLF mode, and the delimiter. A hostile endless line costs O(max_frame_size), not
  // O(input), and is rejected before anything past the limit is copied.
  const std::size_t room = config_.max_frame_size - have_;
  const std::size_t avail = n - pos;
  const std::size_t limit = room + (config_.crlf ? 2 : 1);
  const std::size_t window = avail < limit ? avail : limit;
  const void* hit =
      window != 0 ? std::memchr(p + pos, std::to_integer<int>(config_.delimiter), window) : nullptr;

  if (hit != nullptr) {
    const auto at = static_cast<std::size_t>(static_cast<const std::byte*>(hit) - p);
    std::size_t len = at - pos;
    if (config_.crlf && len != 0 && p[at - 1] == kCr) {
      --len;
    }
    if (len > room) {
      return set_error(frame_errc::oversize, oversize_offset(in, pos, room));
    }
    if (have_ == 0) {
      frame_data_ = p + pos;  // zero copy: the whole line is in this input
    } else {
      std::memcpy(assembly_.data() + have_, p + pos, len);
      frame_data_ = assembly_.data();
    }
    frame_size_ = have_ + static_cast<std::uint32_t>(len);
    phase_ = Phase::ready;
    return {at + 1, DecodeState::ready};
  }

  // No delimiter in the window: either the line is already too long, or it continues in a
  // later feed and must be kept.
  const bool trailing_cr = config_.crlf && window != 0 && p[pos + window - 1] == kCr;
  const std::size_t len = window - (trailing_cr ? 1 : 0);
  if (len > room) {
    return set_error(frame_errc::oversize, oversize_offset(in, pos, room));
  }
  if (window == 0) {
    return {n, DecodeState::need_more};
  }
  if (!has_assembly_) {
    return set_error(frame_errc::no_assembly, pos);
  }
  if (len != 0) {
    std::memcpy(assembly_.data() + have_, p + pos, len);
    have_ += static_cast<std::uint32_t>(len);
  }
  // A trailing '\r' is held back, not stored: if the delimiter follows it is stripped, so
  // max_frame_size bytes of storage always suffice.
  pending_cr_ = trailing_cr;
  return {n, DecodeState::need_more};
}

Result<void> DelimiterDecoder::finish() noexcept {
  if (phase_ == Phase::error) {
    return weft::fail(error_);
  }
  if (mid_frame()) {
    phase_ = Phase::error;
    error_ = frame_errc::truncated;
    return weft::fail(error_);
  }
  return {};
}

void DelimiterDecoder::reset() noexcept {
  phase_ = Phase::scan;
  have_ = 0;
  pending_cr_ = false;
  error_ = frame_errc{};
  frame_size_ = 0;
  frame_data_ = nullptr;
}

std::span<const std::byte> DelimiterDecoder::frame() const noexcept {
  if (phase_ != Phase::ready) {
    return {};
  }
  return {frame_data_, frame_size_};
}

std::error_code DelimiterDecoder::error() const noexcept {
  return phase_ == Phase::error ? make_error_code(error_) : std::error_code();
}

bool DelimiterDecoder::mid_frame() const noexcept {
  return phase_ == Phase::scan && (have_ != 0 || pending_cr_);
}

}  // namespace weft::frame
