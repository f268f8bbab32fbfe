#include <cstring>

#include <weft/platform/error.h>

#include "client_impl.h"

namespace weft::client {

// ---- one-way frames, subscriptions, ping -----------------------------------------------------

Result<void> Client::message(std::uint32_t method, std::span<const std::byte> payload) noexcept {
  return send_one_way(msg::make_message(method, payload));
}

Result<void> Client::publish(std::span<const std::byte> topic,
                             std::span<const std::byte> payload) noexcept {
  if (topic.empty() || topic.size() > msg::kMaxTopicSize) {
    return fail(msg::msg_errc::bad_field);
  }
  return send_one_way(msg::make_publish(topic, payload));
}

Result<void> Client::send_one_way(const Frame& f) noexcept {
  Link* l = active();
  Conn* c = l != nullptr ? loop_.find(l->conn) : nullptr;
  if (c == nullptr) {
    return fail(client_errc::not_connected);
  }
  if (msg::encoded_size(f) - msg::kPrefixSize > l->peer_max_frame) {
    return fail(msg::msg_errc::too_large);
  }
  return send_frame(*c, f);
}

Sub* Client::find_sub(std::span<const std::byte> topic) noexcept {
  for (std::uint32_t i = 0; i < opts_.max_subscriptions; ++i) {
    Sub& s = subs_[i];
    if (s.used && s.len == topic.size() && std::memcmp(s.topic, topic.data(), s.len) == 0) {
      return &s;
    }
  }
  return nullptr;
}

void Client::send_subs(Link& l) noexcept {
  Conn* c = loop_.find(l.conn);
  if (c == nullptr) {
    return;
  }
  l.subs_pending = false;
  for (std::uint32_t i = 0; i < opts_.max_subscriptions; ++i) {
    if (subs_[i].used && !send_frame(*c, msg::make_subscribe(subs_[i].name()))) {
      // No room: on_writable sends them all again (a repeated SUBSCRIBE is harmless).
      l.subs_pending = true;
      return;
    }
  }
}

Result<void> Client::subscribe(std::span<const std::byte> topic, EventFn fn, void* ctx) noexcept {
  if (topic.empty() || topic.size() > msg::kMaxTopicSize) {
    return fail(msg::msg_errc::bad_field);
  }
  Sub* s = find_sub(topic);
  if (s == nullptr) {
    for (std::uint32_t i = 0; i < opts_.max_subscriptions && s == nullptr; ++i) {
      if (!subs_[i].used) {
        s = &subs_[i];
      }
    }
    if (s == nullptr) {
      return fail(client_errc::overloaded);
    }
    s->used = true;
    s->len = static_cast<std::uint8_t>(topic.size());
    std::memcpy(s->topic, topic.data(), topic.size());
    if (Link* l = active()) {
      if (Conn* c = loop_.find(l->conn);
          c != nullptr && !send_frame(*c, msg::make_subscribe(topic))) {
        l->subs_pending = true;
      }
    }
  }
  s->fn = fn;
  s->ctx = ctx;
  return {};
}

Result<void> Client::unsubscribe(std::span<const std::byte> topic) noexcept {
  Sub* s = find_sub(topic);
  if (s == nullptr) {
    return fail(platform_errc::invalid_argument);
  }
  s->used = false;
  s->fn = nullptr;
  if (Link* l = active()) {
    if (Conn* c = loop_.find(l->conn)) {
      (void)send_frame(*c, msg::make_unsubscribe(topic));
    }
  }
  return {};
}

Result<void> Client::ping(std::uint32_t timeout_ms, PingFn fn, void* ctx) noexcept {
  if (ping_fn_ != nullptr) {
    return fail(client_errc::overloaded);
  }
  Link* l = active();
  Conn* c = l != nullptr ? loop_.find(l->conn) : nullptr;
  if (c == nullptr) {
    return fail(client_errc::not_connected);
  }
  ping_id_ = ++ping_seq_;
  std::byte opaque[msg::kPingBodySize] = {};
  put_u32(opaque + 4, ping_id_);
  if (auto r = send_frame(*c, msg::make_ping(ping_id_, opaque)); !r) {
    return r;
  }
  ping_fn_ = fn;
  ping_ctx_ = ctx;
  ping_link_ = l->index;
  ping_sent_ = loop_.now_ms();
  loop_.timers().schedule(ping_timer_, ping_sent_ + timeout_ms);
  return {};
}

void Client::on_ping_timer(TimerNode* n) noexcept {
  static_cast<Client*>(n->ctx)->ping_done(fail(platform_errc::timed_out));
}

void Client::ping_done(Result<std::uint64_t> r) noexcept {
  loop_.timers().cancel(ping_timer_);
  const PingFn fn = ping_fn_;
  ping_fn_ = nullptr;
  if (fn != nullptr) {
    fn(ping_ctx_, std::move(r));
  }
}

}  // namespace weft::client
