#include <weft/msg/pubsub_topics.h>

#include <weft/base/log.h>

namespace weft::msg {

namespace {
// The hub's errors as the codes protocol.md §6.9 gives the client.
std::error_code to_wire(std::error_code e) noexcept {
  using pubsub::pubsub_errc;
  if (e == make_error_code(pubsub_errc::too_large)) {
    return make_error_code(msg_errc::too_large);  // -> ERROR too_large
  }
  return e;  // -> ERROR overloaded (limits, no buffers) or unknown_method (not attached)
}
}  // namespace

std::size_t HubTopics::encode_event(void*, std::span<const std::byte> topic,
                                    std::span<const std::byte> payload,
                                    std::span<std::byte> out) noexcept {
  const Frame f = make_event(topic, payload);
  const std::size_t need = encoded_size(f);
  if (need > out.size()) {
    return need;  // the hub reports too_large
  }
  Result<std::size_t> n = encode(f, out);
  return n ? *n : 0;
}

Result<void> HubTopics::init() noexcept {
  Result<pubsub::Format> f = hub_.add_format(&HubTopics::encode_event, this);
  if (!f) {
    return fail(f.error());
  }
  format_ = *f;
  return {};
}

Topics* HubTopics::attach(platform::Loop& loop) noexcept {
  if (Result<void> r = hub_.attach(loop); !r) {
    log(LogLevel::error, "msg: worker %u not attached to the pub/sub hub: %s", loop.index(),
        pubsub::to_string(static_cast<pubsub::pubsub_errc>(r.error().value())));
    return nullptr;
  }
  return this;
}

Result<void> HubTopics::subscribe(platform::Conn& c, std::span<const std::byte> topic) noexcept {
  Result<bool> r = hub_.subscribe(c, topic, format_);
  return r ? Result<void>() : fail(to_wire(r.error()));
}

Result<void> HubTopics::unsubscribe(platform::Conn& c, std::span<const std::byte> topic) noexcept {
  Result<bool> r = hub_.unsubscribe(c, topic);
  return r ? Result<void>() : fail(to_wire(r.error()));
}

Result<void> HubTopics::publish(platform::Conn& c, std::span<const std::byte> topic,
                                std::span<const std::byte> payload) noexcept {
  Result<pubsub::Published> r = hub_.publish(c.loop(), topic, payload);
  return r ? Result<void>() : fail(to_wire(r.error()));
}

void HubTopics::closed(platform::Conn& c) noexcept {
  (void)hub_.closed(c);
}

}  // namespace weft::msg
