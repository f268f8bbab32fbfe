#include <weft/msg/frame.h>

#include <cstring>
#include <limits>

#include <weft/base/assert.h>

namespace weft::msg {
namespace {

// A bounds-checked big-endian reader over one frame. Every read first checks the bytes are
// there, so parse() never touches memory outside its input whatever the length fields say.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) noexcept : in_(in) {}
  [[nodiscard]] std::size_t left() const noexcept { return in_.size() - pos_; }
  // Precondition (callers check left()): n bytes are there.
  std::uint64_t be(std::size_t n) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      v = (v << 8) | std::to_integer<std::uint64_t>(in_[pos_ + i]);
    }
    pos_ += n;
    return v;
  }
  std::span<const std::byte> bytes(std::size_t n) noexcept {
    const auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
};

constexpr bool known_type(std::uint8_t t) noexcept {
  return t >= static_cast<std::uint8_t>(FrameType::hello) &&
         t <= static_cast<std::uint8_t>(FrameType::cancel);
}

// The id rule of docs/protocol.md §6.2.
constexpr bool id_ok(FrameType t, std::uint32_t id) noexcept {
  switch (t) {
    case FrameType::request:
    case FrameType::response:
    case FrameType::cancel:
      return id != 0;
    case FrameType::error:
    case FrameType::ping:
    case FrameType::pong:
      return true;
    default:
      return id == 0;
  }
}

constexpr bool flags_ok(FrameType t, std::uint8_t flags) noexcept {
  const std::uint8_t allowed = t == FrameType::request ? kFlagIdempotent : 0;
  return (flags & ~allowed) == 0;
}

// A u16 length then that many bytes, with `lo..hi` the allowed length.
Result<std::span<const std::byte>> counted(Reader& r, std::size_t lo, std::size_t hi) noexcept {
  if (r.left() < 2) {
    return fail(msg_errc::truncated_body);
  }
  const auto n = static_cast<std::size_t>(r.be(2));
  if (n < lo || n > hi) {
    return fail(msg_errc::bad_field);
  }
  if (r.left() < n) {
    return fail(msg_errc::truncated_body);
  }
  return r.bytes(n);
}

Result<void> parse_body(Reader& r, Frame& f) noexcept {
  switch (f.type) {
    case FrameType::hello:
    case FrameType::hello_ack: {
      if (r.left() < kHelloBodySize) {
        return fail(msg_errc::truncated_body);
      }
      f.hello.version = static_cast<std::uint16_t>(r.be(2));
      if (r.be(2) != 0) {
        return fail(msg_errc::bad_field);
      }
      f.hello.max_frame = static_cast<std::uint32_t>(r.be(4));
      f.hello.max_inflight = static_cast<std::uint32_t>(r.be(4));
      f.hello.features = r.be(8);
      break;
    }
    case FrameType::request: {
      const bool idem = (f.flags & kFlagIdempotent) != 0;
      if (r.left() < (idem ? 16u : 8u)) {
        return fail(msg_errc::truncated_body);
      }
      f.method = static_cast<std::uint32_t>(r.be(4));
      f.deadline_ms = static_cast<std::uint32_t>(r.be(4));
      if (idem) {
        f.idempotency_key = r.be(8);
      }
      f.payload = r.bytes(r.left());
      return {};
    }
    case FrameType::response:
      f.payload = r.bytes(r.left());
      return {};
    case FrameType::message:
      if (r.left() < 4) {
        return fail(msg_errc::truncated_body);
      }
      f.method = static_cast<std::uint32_t>(r.be(4));
      f.payload = r.bytes(r.left());
      return {};
    case FrameType::error:
    case FrameType::goaway: {
      const std::size_t fixed = f.type == FrameType::goaway ? 8 : 4;
      if (r.left() < fixed) {
        return fail(msg_errc::truncated_body);
      }
      if (f.type == FrameType::goaway) {
        f.last_id = static_cast<std::uint32_t>(r.be(4));
      }
      f.code = static_cast<std::uint16_t>(r.be(2));
      auto detail = counted(r, 0, kMaxDetailSize);
      if (!detail) {
        return fail(detail.error());
      }
      f.detail = detail.value();
      break;
    }
    case FrameType::subscribe:
    case FrameType::unsubscribe:
    case FrameType::publish:
    case FrameType::event: {
      auto topic = counted(r, 1, kMaxTopicSize);
      if (!topic) {
        return fail(topic.error());
      }
      f.topic = topic.value();
      if (f.type == FrameType::publish || f.type == FrameType::event) {
        f.payload = r.bytes(r.left());
      }
      break;
    }
    case FrameType::ping:
    case FrameType::pong:
      // Like every fixed field: short is truncated_body, long is left over (bad_length).
      if (r.left() < kPingBodySize) {
        return fail(msg_errc::truncated_body);
      }
      f.payload = r.bytes(kPingBodySize);
      break;
    case FrameType::cancel:
      break;
  }
  if (r.left() != 0) {
    return fail(msg_errc::bad_length);
  }
  return {};
}

// Writes v big-endian in n bytes at p; returns p + n.
std::byte* put(std::byte* p, std::uint64_t v, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    p[i] = static_cast<std::byte>(v >> (8 * (n - 1 - i)));
  }
  return p + n;
}

std::byte* put(std::byte* p, std::span<const std::byte> s) noexcept {
  if (!s.empty()) {  // memcpy from a null pointer is undefined even for 0 bytes
    std::memcpy(p, s.data(), s.size());
  }
  return p + s.size();
}

}  // namespace

Result<Frame> parse(std::span<const std::byte> after_prefix) noexcept {
  if (after_prefix.size() < kHeaderSize ||
      after_prefix.size() > std::numeric_limits<std::uint32_t>::max()) {
    return fail(msg_errc::bad_length);
  }
  Reader r(after_prefix);
  const auto type = static_cast<std::uint8_t>(r.be(1));
  if (!known_type(type)) {
    return fail(msg_errc::unknown_type);
  }
  Frame f;
  f.type = static_cast<FrameType>(type);
  f.flags = static_cast<std::uint8_t>(r.be(1));
  if (!flags_ok(f.type, f.flags)) {
    return fail(msg_errc::reserved_flags);
  }
  f.channel = static_cast<std::uint16_t>(r.be(2));
  if (f.channel != 0) {
    return fail(msg_errc::bad_channel);
  }
  f.id = static_cast<std::uint32_t>(r.be(4));
  if (!id_ok(f.type, f.id)) {
    return fail(msg_errc::bad_id);
  }
  if (auto body = parse_body(r, f); !body) {
    return fail(body.error());
  }
  return f;
}

Result<std::size_t> encode(const Frame& f, std::span<std::byte> out) noexcept {
  const auto type = static_cast<std::uint8_t>(f.type);
  if (!known_type(type)) {
    return fail(msg_errc::unknown_type);
  }
  if (!flags_ok(f.type, f.flags)) {
    return fail(msg_errc::reserved_flags);
  }
  if (f.channel != 0) {
    return fail(msg_errc::bad_channel);
  }
  if (!id_ok(f.type, f.id)) {
    return fail(msg_errc::bad_id);
  }
  switch (f.type) {
    case FrameType::subscribe:
    case FrameType::unsubscribe:
    case FrameType::publish:
    case FrameType::event:
      if (f.topic.empty() || f.topic.size() > kMaxTopicSize) {
        return fail(msg_errc::bad_field);
      }
      break;
    case FrameType::error:
    case FrameType::goaway:
      if (f.detail.size() > kMaxDetailSize) {
        return fail(msg_errc::bad_field);
      }
      break;
    case FrameType::ping:
    case FrameType::pong:
      if (f.payload.size() != kPingBodySize) {
        return fail(msg_errc::bad_length);
      }
      break;
    default:
      break;
  }
  // Payloads are the only unbounded part: check L fits the u32 before the sum can wrap.
  if (f.payload.size() > std::numeric_limits<std::uint32_t>::max() - 512) {
    return fail(msg_errc::bad_length);
  }
  const std::size_t size = encoded_size(f);
  if (size - kPrefixSize > std::numeric_limits<std::uint32_t>::max()) {
    return fail(msg_errc::bad_length);
  }
  if (out.size() < size) {
    return fail(msg_errc::buffer_too_small);
  }
  std::byte* p = out.data();
  p = put(p, size - kPrefixSize, 4);
  p = put(p, type, 1);
  p = put(p, f.flags, 1);
  p = put(p, f.channel, 2);
  p = put(p, f.id, 4);
  switch (f.type) {
    case FrameType::hello:
    case FrameType::hello_ack:
      p = put(p, f.hello.version, 2);
      p = put(p, 0, 2);
      p = put(p, f.hello.max_frame, 4);
      p = put(p, f.hello.max_inflight, 4);
      p = put(p, f.hello.features, 8);
      break;
    case FrameType::request:
      p = put(p, f.method, 4);
      p = put(p, f.deadline_ms, 4);
      if ((f.flags & kFlagIdempotent) != 0) {
        p = put(p, f.idempotency_key, 8);
      }
      p = put(p, f.payload);
      break;
    case FrameType::response:
    case FrameType::ping:
    case FrameType::pong:
      p = put(p, f.payload);
      break;
    case FrameType::message:
      p = put(p, f.method, 4);
      p = put(p, f.payload);
      break;
    case FrameType::goaway:
    case FrameType::error:
      if (f.type == FrameType::goaway) {
        p = put(p, f.last_id, 4);
      }
      p = put(p, f.code, 2);
      p = put(p, f.detail.size(), 2);
      p = put(p, f.detail);
      break;
    case FrameType::subscribe:
    case FrameType::unsubscribe:
    case FrameType::publish:
    case FrameType::event:
      p = put(p, f.topic.size(), 2);
      p = put(p, f.topic);
      if (f.type == FrameType::publish || f.type == FrameType::event) {
        p = put(p, f.payload);
      }
      break;
    case FrameType::cancel:
      break;
  }
  WEFT_ASSERT(static_cast<std::size_t>(p - out.data()) == size);
  return size;
}

}  // namespace weft::msg
