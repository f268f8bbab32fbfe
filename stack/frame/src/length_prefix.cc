#include <weft/frame/length_prefix.h>

#include <cstring>

#include <weft/base/assert.h>

#include "prefix_step.h"

namespace weft::frame {

Result<void> LengthPrefixDecoder::set_assembly(std::span<std::byte> storage) noexcept {
  WEFT_ASSERT(!mid_frame());
  if (storage.size() < config_.max_frame_size) {
    return weft::fail(frame_errc::buffer_too_small);
  }
  assembly_ = storage;
  has_assembly_ = true;
  return {};
}

Decoded LengthPrefixDecoder::set_error(frame_errc e, std::size_t consumed) noexcept {
  phase_ = Phase::error;
  error_ = e;
  return {consumed, DecodeState::error};
}

Decoded LengthPrefixDecoder::feed(std::span<const std::byte> in) noexcept {
  if (phase_ == Phase::error) {
    return {0, DecodeState::error};
  }
  if (phase_ == Phase::ready) {  // the previous frame's view dies here
    phase_ = Phase::header;
    header_have_ = 0;
    length_ = 0;
  }
  const std::size_t n = in.size();
  const std::byte* p = in.data();
  std::size_t pos = 0;

  if (phase_ == Phase::header) {
    bool complete = false;
    // Fast paths for a prefix that starts and ends in this feed, the common case when many
    // small frames arrive in one read.
    if (header_have_ == 0 && config_.prefix == PrefixKind::u32_be && n >= kU32HeaderSize) {
      length_ = (std::uint32_t{static_cast<std::uint8_t>(p[0])} << 24) |
                (std::uint32_t{static_cast<std::uint8_t>(p[1])} << 16) |
                (std::uint32_t{static_cast<std::uint8_t>(p[2])} << 8) |
                std::uint32_t{static_cast<std::uint8_t>(p[3])};
      pos = kU32HeaderSize;
      complete = true;
    } else if (header_have_ == 0 && config_.prefix == PrefixKind::varint && n != 0 &&
               static_cast<std::uint8_t>(p[0]) < 0x80) {
      length_ = static_cast<std::uint8_t>(p[0]);
      pos = 1;
      complete = true;
    }
    // Slow path: one byte at a time, resumable at any byte.
    while (!complete && pos < n) {
      const auto b = static_cast<std::uint8_t>(p[pos++]);
      const detail::Step step = detail::prefix_step(config_.prefix, length_, header_have_, b);
      if (step == detail::Step::bad) {
        return set_error(frame_errc::bad_varint, pos);
      }
      complete = step == detail::Step::done;
    }
    if (!complete) {
      return {n, DecodeState::need_more};
    }
    // The limit is checked here, on the prefix's last byte, before a single payload byte is
    // looked at or buffered (STYLE anti-pattern 2: never size anything from the wire first).
    if (length_ > config_.max_frame_size) {
      return set_error(frame_errc::oversize, pos);
    }
    phase_ = Phase::payload;
    payload_have_ = 0;
  }

  // Payload phase.
  const std::size_t rest = n - pos;
  if (payload_have_ == 0 && rest >= length_) {
    // Zero copy: the whole payload is in this input.
    frame_data_ = p + pos;
    phase_ = Phase::ready;
    return {pos + length_, DecodeState::ready};
  }
  if (rest == 0) {  // nothing to store yet (the prefix ended this input)
    return {n, DecodeState::need_more};
  }
  if (!has_assembly_) {
    return set_error(frame_errc::no_assembly, pos);
  }
  const std::size_t want = length_ - payload_have_;
  const std::size_t take = rest < want ? rest : want;
  if (take != 0) {  // memcpy from a null `p` (empty span) would be undefined
    std::memcpy(assembly_.data() + payload_have_, p + pos, take);
  }
  payload_have_ += static_cast<std::uint32_t>(take);
  if (payload_have_ < length_) {
    return {n, DecodeState::need_more};
  }
  frame_data_ = assembly_.data();
  phase_ = Phase::ready;
  return {pos + take, DecodeState::ready};
}

Result<void> LengthPrefixDecoder::finish() noexcept {
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

void LengthPrefixDecoder::reset() noexcept {
  phase_ = Phase::header;
  header_have_ = 0;
  length_ = 0;
  payload_have_ = 0;
  error_ = frame_errc{};
  frame_data_ = nullptr;
}

std::span<const std::byte> LengthPrefixDecoder::frame() const noexcept {
  if (phase_ != Phase::ready) {
    return {};
  }
  return {frame_data_, length_};
}

std::error_code LengthPrefixDecoder::error() const noexcept {
  return phase_ == Phase::error ? make_error_code(error_) : std::error_code();
}

bool LengthPrefixDecoder::mid_frame() const noexcept {
  return phase_ == Phase::payload || (phase_ == Phase::header && header_have_ != 0);
}

}  // namespace weft::frame
