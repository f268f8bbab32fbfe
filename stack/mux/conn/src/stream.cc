#include <weft/mux/stream.h>

namespace weft::mux {

Result<void> write_message(Endpoint& ep, std::uint16_t ch,
                           std::span<const std::byte> payload) noexcept {
  if (payload.size() > 0xffffffffu) {
    return fail(mux_errc::bad_argument);
  }
  const auto n = static_cast<std::uint32_t>(payload.size());
  const std::byte head[kMessagePrefixSize] = {
      static_cast<std::byte>(n >> 24), static_cast<std::byte>(n >> 16),
      static_cast<std::byte>(n >> 8), static_cast<std::byte>(n)};
  return ep.write_all(ch, head, payload);
}

MessageReader::MessageReader(std::span<std::byte> storage) noexcept
    : dec_({.prefix = frame::PrefixKind::u32_be,
            .max_frame_size = static_cast<std::uint32_t>(storage.size())}) {
  // Cannot fail: the storage is exactly max_frame_size bytes.
  (void)dec_.set_assembly(storage);
}

Services::Services(std::size_t capacity) : capacity_(capacity) {
  routes_.reserve(capacity);
}

Result<void> Services::add(std::string_view name, OpenFn fn, void* ctx) noexcept {
  if (name.empty() || name.size() > kMaxNameSize || fn == nullptr || routes_.size() == capacity_) {
    return fail(mux_errc::bad_argument);
  }
  for (const Route& r : routes_) {
    if (r.name == name) {
      return fail(mux_errc::closed);
    }
  }
  routes_.push_back(Route{name, fn, ctx});  // within the reserved capacity: no allocation
  return {};
}

void Services::on_ready(Endpoint& ep) noexcept {
  if (ready_ != nullptr) {
    ready_(ready_ctx_, ep);
  }
}

ChannelHandler* Services::on_open(Endpoint& ep, std::uint16_t ch, std::string_view name) noexcept {
  for (const Route& r : routes_) {
    if (r.name == name) {
      ChannelHandler* h = r.fn(r.ctx, ep, ch);
      if (h == nullptr) {
        ++refused_;
      }
      return h;
    }
  }
  ++refused_;
  return nullptr;
}

}  // namespace weft::mux
