#include <weft/mux/frame.h>

namespace weft::mux {
namespace {

// A bounds-checked big-endian reader: every read checks the bytes are there first.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) noexcept : in_(in) {}
  [[nodiscard]] std::size_t left() const noexcept { return in_.size() - pos_; }
  std::uint32_t be(std::size_t n) noexcept {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      v = (v << 8) | std::to_integer<std::uint32_t>(in_[pos_ + i]);
    }
    pos_ += n;
    return v;
  }
  std::span<const std::byte> rest() noexcept {
    const auto s = in_.subspan(pos_);
    pos_ = in_.size();
    return s;
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

class Writer {
 public:
  explicit Writer(std::byte* p) noexcept : p_(p) {}
  void be(std::uint32_t v, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
      p_[i] = static_cast<std::byte>(v >> (8 * (n - 1 - i)));
    }
    p_ += n;
  }
  void bytes(std::span<const std::byte> s) noexcept {
    for (std::byte b : s) {
      *p_++ = b;
    }
  }

 private:
  std::byte* p_;
};

constexpr bool window_ok(std::uint32_t w) noexcept {
  return w >= 1 && w <= kMaxWindow;
}

// §7.2: MUX_SETTINGS on channel 0; WINDOW_UPDATE on any channel (0 = the connection);
// every other type on a channel != 0.
constexpr bool channel_ok(FrameType t, std::uint16_t ch) noexcept {
  switch (t) {
    case FrameType::settings:
      return ch == 0;
    case FrameType::window_update:
      return true;
    default:
      return ch != 0;
  }
}

// The header and field rules shared by parse() and encode(): the first error, or success.
Result<void> check_fields(const Frame& f) noexcept {
  if ((f.flags & ~(f.type == FrameType::data ? kFlagFin : 0)) != 0) {
    return fail(mux_errc::reserved_flags);
  }
  if (!channel_ok(f.type, f.channel)) {
    return fail(mux_errc::bad_channel);
  }
  switch (f.type) {
    case FrameType::open:
      if (!window_ok(f.window) || f.name.empty() || f.name.size() > kMaxNameSize) {
        return fail(mux_errc::bad_field);
      }
      break;
    case FrameType::open_ack:
    case FrameType::window_update:
      if (!window_ok(f.window)) {
        return fail(mux_errc::bad_field);
      }
      break;
    case FrameType::settings:
      if (!window_ok(f.settings.conn_window) || f.settings.max_data == 0) {
        return fail(mux_errc::bad_field);
      }
      break;
    case FrameType::data:
      if (f.payload.empty() && !f.fin()) {
        return fail(mux_errc::bad_length);
      }
      if (f.payload.size() > 0xffffffffu - kHeaderSize) {
        return fail(mux_errc::bad_length);
      }
      break;
    default:
      break;
  }
  return {};
}

}  // namespace

Result<Frame> parse(std::span<const std::byte> after_prefix) noexcept {
  if (after_prefix.size() < kHeaderSize) {
    return fail(mux_errc::bad_length);
  }
  Reader r(after_prefix);
  const auto type = static_cast<std::uint8_t>(r.be(1));
  if (!is_mux_type(type)) {
    return fail(mux_errc::unknown_type);
  }
  Frame f;
  f.type = static_cast<FrameType>(type);
  f.flags = static_cast<std::uint8_t>(r.be(1));
  f.channel = static_cast<std::uint16_t>(r.be(2));
  const std::uint32_t id = r.be(4);
  if ((f.flags & ~(f.type == FrameType::data ? kFlagFin : 0)) != 0) {
    return fail(mux_errc::reserved_flags);
  }
  if (!channel_ok(f.type, f.channel)) {
    return fail(mux_errc::bad_channel);
  }
  if (id != 0) {
    return fail(mux_errc::bad_id);
  }
  std::size_t fixed = 0;  // the exact body size of fixed-size types
  switch (f.type) {
    case FrameType::open: {
      if (r.left() < 5) {
        return fail(mux_errc::truncated_body);
      }
      f.window = r.be(4);
      const std::size_t n = r.be(1);
      if (n == 0) {
        return fail(mux_errc::bad_field);
      }
      if (r.left() < n) {
        return fail(mux_errc::truncated_body);
      }
      f.name = r.bytes(n);
      break;
    }
    case FrameType::open_ack:
    case FrameType::window_update:
      fixed = 4;
      if (r.left() < fixed) {
        return fail(mux_errc::truncated_body);
      }
      f.window = r.be(4);
      break;
    case FrameType::refuse:
    case FrameType::reset:
      fixed = 2;
      if (r.left() < fixed) {
        return fail(mux_errc::truncated_body);
      }
      f.code = static_cast<std::uint16_t>(r.be(2));
      break;
    case FrameType::settings: {
      if (r.left() < kSettingsBodySize) {
        return fail(mux_errc::truncated_body);
      }
      f.settings.conn_window = r.be(4);
      f.settings.max_data = r.be(4);
      f.settings.max_channels = static_cast<std::uint16_t>(r.be(2));
      if (r.be(2) != 0) {
        return fail(mux_errc::bad_field);
      }
      break;
    }
    case FrameType::data:
      f.payload = r.rest();
      break;
  }
  Result<void> ok = check_fields(f);
  if (!ok) {
    return fail(ok.error());
  }
  if (r.left() != 0) {
    return fail(mux_errc::bad_length);
  }
  return f;
}

Result<std::size_t> encode(const Frame& f, std::span<std::byte> out) noexcept {
  if (!is_mux_type(static_cast<std::uint8_t>(f.type))) {
    return fail(mux_errc::unknown_type);
  }
  Result<void> ok = check_fields(f);
  if (!ok) {
    return fail(ok.error());
  }
  const std::size_t n = encoded_size(f);
  if (out.size() < n) {
    return fail(mux_errc::buffer_too_small);
  }
  Writer w(out.data());
  w.be(static_cast<std::uint32_t>(n - kPrefixSize), 4);
  w.be(static_cast<std::uint8_t>(f.type), 1);
  w.be(f.flags, 1);
  w.be(f.channel, 2);
  w.be(0, 4);
  switch (f.type) {
    case FrameType::open:
      w.be(f.window, 4);
      w.be(static_cast<std::uint32_t>(f.name.size()), 1);
      w.bytes(f.name);
      break;
    case FrameType::open_ack:
    case FrameType::window_update:
      w.be(f.window, 4);
      break;
    case FrameType::refuse:
    case FrameType::reset:
      w.be(f.code, 2);
      break;
    case FrameType::data:
      w.bytes(f.payload);
      break;
    case FrameType::settings:
      w.be(f.settings.conn_window, 4);
      w.be(f.settings.max_data, 4);
      w.be(f.settings.max_channels, 2);
      w.be(0, 2);
      break;
  }
  return n;
}

}  // namespace weft::mux
