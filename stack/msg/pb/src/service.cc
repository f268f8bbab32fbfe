#include <weft/msg/pb_service.h>

#include <climits>

namespace weft::msg::pb {

Result<void> reply_message(Call& call, Workspace& ws,
                           const google::protobuf::MessageLite& m) noexcept {
  // A response built on the arena may have pushed it past its block: refuse it like an
  // oversized request (the spill memory is given back when the call's Scope closes).
  if (ws.exceeded()) {
    (void)call.fail(ProtocolError::too_large, "response exceeds the worker's arena block");
    return fail(ProtocolError::too_large);
  }
  const std::size_t size = m.ByteSizeLong();  // caches the sizes write_message uses
  if (size > static_cast<std::size_t>(INT_MAX)) {
    (void)call.fail(ProtocolError::too_large, "response over 2 GiB");
    return fail(ProtocolError::too_large);
  }
  return call.reply_with(size, &detail::write_message, &m);
}

Result<void> answer(platform::Loop& here, const Deferred& d, const google::protobuf::MessageLite& m,
                    std::span<std::byte> scratch) noexcept {
  Result<std::size_t> n = serialize(m, scratch);
  if (!n) {
    return Failure{n.error()};
  }
  return msg::answer(here, d, scratch.first(*n));
}

namespace detail {

void refuse(Call& call, std::error_code why) noexcept {
  if (why == ProtocolError::too_large) {
    (void)call.fail(ProtocolError::too_large, "request exceeds the worker's arena block");
  } else {
    (void)call.fail(ProtocolError::bad_payload, "payload does not parse as the request type");
  }
}

}  // namespace detail

}  // namespace weft::msg::pb
