#include <weft/mqtt/session.h>
#include <weft/mqtt/topic.h>

#include <algorithm>
#include <cstring>

namespace weft::mqtt {

enum class SlotState : std::uint8_t { free, queued, inflight };
enum class SubState : std::uint8_t {
  free,
  sub_pending,
  sub_wait,
  active,
  unsub_pending,
  unsub_wait
};

struct Session::Slot {
  std::uint32_t seq = 0;  // publish order
  std::uint32_t payload_len = 0;
  std::uint16_t topic_len = 0;
  std::uint16_t packet_id = 0;
  std::uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  SlotState state = SlotState::free;
};

struct Session::Sub {
  std::uint16_t len = 0;
  std::uint16_t packet_id = 0;
  std::uint8_t qos = 0;
  SubState state = SubState::free;
};

namespace {

// Limits every table at least 1 and keeps packet ids available: queue slots and subscriptions
// together hold fewer than 65,535 ids, so alloc_packet_id() always finds a free one.
SessionConfig normalized(SessionConfig c) noexcept {
  c.queue_slots = std::clamp<std::uint16_t>(c.queue_slots, 1, 32768);
  c.max_subscriptions = std::clamp<std::uint16_t>(c.max_subscriptions, 1, 32000);
  c.receive_maximum = std::max<std::uint16_t>(c.receive_maximum, 1);
  c.max_inflight = std::max<std::uint16_t>(c.max_inflight, 1);
  return c;
}

}  // namespace

Session::Session(const SessionConfig& config)
    : config_(normalized(config)),
      slots_(new Slot[config_.queue_slots]),
      arena_(new std::byte[std::size_t{config_.queue_slots} * config_.max_message_bytes]),
      subs_(new Sub[config_.max_subscriptions]),
      filters_(new char[std::size_t{config_.max_subscriptions} * config_.max_filter_bytes]),
      acks_(new std::uint16_t[config_.receive_maximum]) {}

Session::~Session() = default;

std::size_t Session::queued() const noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < config_.queue_slots; ++i) {
    n += slots_[i].state != SlotState::free ? 1 : 0;
  }
  return n;
}

std::size_t Session::subscriptions() const noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < config_.max_subscriptions; ++i) {
    const SubState s = subs_[i].state;
    n += (s != SubState::free && s != SubState::unsub_pending && s != SubState::unsub_wait) ? 1 : 0;
  }
  return n;
}

std::uint16_t Session::window() const noexcept {
  return std::min(config_.max_inflight, peer_receive_max_);
}

bool Session::id_in_use(std::uint16_t id) const noexcept {
  for (std::size_t i = 0; i < config_.queue_slots; ++i) {
    if (slots_[i].state != SlotState::free && slots_[i].qos > 0 && slots_[i].packet_id == id) {
      return true;
    }
  }
  for (std::size_t i = 0; i < config_.max_subscriptions; ++i) {
    if (subs_[i].state != SubState::free && subs_[i].packet_id == id) {
      return true;
    }
  }
  return false;
}

std::uint16_t Session::alloc_packet_id() noexcept {
  // Fewer ids are in use than slots + subscriptions (< 2^17), so this ends.
  for (;;) {
    const std::uint16_t id = next_id_;
    next_id_ = next_id_ == 0xffff ? 1 : static_cast<std::uint16_t>(next_id_ + 1);
    if (!id_in_use(id)) {
      return id;
    }
  }
}

Session::Slot* Session::oldest_queued() const noexcept {
  Slot* best = nullptr;
  for (std::size_t i = 0; i < config_.queue_slots; ++i) {
    Slot& s = slots_[i];
    if (s.state == SlotState::queued && (best == nullptr || s.seq - best->seq > 0x80000000u)) {
      best = &s;  // wrap-safe: s.seq is older than best->seq
    }
  }
  return best;
}

Session::Sub* Session::find_sub(std::string_view filter) const noexcept {
  for (std::size_t i = 0; i < config_.max_subscriptions; ++i) {
    Sub& s = subs_[i];
    if (s.state != SubState::free &&
        std::string_view(&filters_[i * config_.max_filter_bytes], s.len) == filter) {
      return &s;
    }
  }
  return nullptr;
}

bool Session::wants_write() const noexcept {
  if (state_ == SessionState::disconnected) {
    return farewell_pending_;
  }
  if (state_ == SessionState::connecting) {
    return connect_pending_;
  }
  if (state_ != SessionState::connected) {
    return false;
  }
  if (disconnect_pending_ || ack_count_ > 0 || ping_pending_) {
    return true;
  }
  for (std::size_t i = 0; i < config_.max_subscriptions; ++i) {
    if (subs_[i].state == SubState::sub_pending || subs_[i].state == SubState::unsub_pending) {
      return true;
    }
  }
  const Slot* s = oldest_queued();
  return s != nullptr && (s->qos == 0 || inflight_ < window());
}

Result<void> Session::connect(std::uint64_t now_ms) noexcept {
  if (state_ != SessionState::disconnected) {
    return fail(mqtt_errc::bad_state);
  }
  state_ = SessionState::connecting;
  farewell_pending_ = false;
  connect_pending_ = true;
  connect_ms_ = now_ms;
  last_send_ms_ = now_ms;
  return {};
}

void Session::connection_lost(std::uint64_t /*now_ms*/) noexcept {
  state_ = SessionState::disconnected;
  farewell_pending_ = false;
  connect_pending_ = false;
  disconnect_pending_ = false;
  ping_pending_ = false;
  ping_outstanding_ = false;
  ack_head_ = 0;
  ack_count_ = 0;  // 4.4: the broker sends unacknowledged QoS 1 again (DUP) if it kept them
  inflight_ = 0;
  peer_receive_max_ = 0xffff;
  peer_max_packet_ = 0;
  for (std::size_t i = 0; i < config_.queue_slots; ++i) {
    Slot& s = slots_[i];
    if (s.state == SlotState::inflight) {
      s.state = SlotState::queued;  // resent first (oldest seq) with DUP on reconnect
      s.dup = true;
    } else if (s.state == SlotState::queued && s.qos == 0 && !config_.queue_qos0_offline) {
      s.state = SlotState::free;
      ++stats_.dropped_qos0_offline;
    }
  }
  for (std::size_t i = 0; i < config_.max_subscriptions; ++i) {
    Sub& s = subs_[i];
    if (s.state == SubState::sub_wait) {
      s.state = SubState::sub_pending;
    } else if (s.state == SubState::unsub_wait) {
      s.state = SubState::unsub_pending;
    }
  }
}

Result<void> Session::disconnect() noexcept {
  if (state_ != SessionState::connected) {
    return fail(mqtt_errc::not_connected);
  }
  disconnect_pending_ = true;
  return {};
}

Result<std::uint16_t> Session::publish(std::string_view topic, std::span<const std::byte> payload,
                                       std::uint8_t qos, bool retain) noexcept {
  if (!valid_topic_name(topic) || !valid_utf8(topic)) {
    return fail(mqtt_errc::bad_topic_name);
  }
  if (qos > 1) {
    return fail(mqtt_errc::bad_argument);
  }
  if (topic.size() + payload.size() > config_.max_message_bytes) {
    return fail(mqtt_errc::message_too_large);
  }
  if (qos == 0 && state_ != SessionState::connected && !config_.queue_qos0_offline) {
    return fail(mqtt_errc::not_connected);
  }
  Slot* slot = nullptr;
  std::size_t index = 0;
  for (std::size_t i = 0; i < config_.queue_slots; ++i) {
    if (slots_[i].state == SlotState::free) {
      slot = &slots_[i];
      index = i;
      break;
    }
  }
  if (slot == nullptr && config_.when_full == QueuePolicy::drop_oldest_qos0) {
    for (std::size_t i = 0; i < config_.queue_slots; ++i) {
      Slot& s = slots_[i];
      if (s.state == SlotState::queued && s.qos == 0 &&
          (slot == nullptr || s.seq - slot->seq > 0x80000000u)) {
        slot = &s;
        index = i;
      }
    }
    if (slot != nullptr) {
      ++stats_.dropped_qos0_full;
    }
  }
  if (slot == nullptr) {
    return fail(mqtt_errc::would_block);
  }
  std::byte* base = &arena_[index * config_.max_message_bytes];
  std::memcpy(base, topic.data(), topic.size());
  if (!payload.empty()) {
    std::memcpy(base + topic.size(), payload.data(), payload.size());
  }
  slot->state = SlotState::free;  // so that alloc_packet_id() may reuse a dropped slot's id
  slot->seq = next_seq_++;
  slot->topic_len = static_cast<std::uint16_t>(topic.size());
  slot->payload_len = static_cast<std::uint32_t>(payload.size());
  slot->qos = qos;
  slot->retain = retain;
  slot->dup = false;
  slot->packet_id = qos > 0 ? alloc_packet_id() : 0;
  slot->state = SlotState::queued;
  return slot->packet_id;
}

Result<std::uint16_t> Session::subscribe(std::string_view filter, std::uint8_t qos) noexcept {
  if (!valid_topic_filter(filter) || !valid_utf8(filter)) {
    return fail(mqtt_errc::bad_topic_filter);
  }
  if (qos > 1 || filter.size() > config_.max_filter_bytes) {
    return fail(mqtt_errc::bad_argument);
  }
  Sub* sub = find_sub(filter);
  if (sub == nullptr) {
    for (std::size_t i = 0; i < config_.max_subscriptions; ++i) {
      if (subs_[i].state == SubState::free) {
        sub = &subs_[i];
        std::memcpy(&filters_[i * config_.max_filter_bytes], filter.data(), filter.size());
        sub->len = static_cast<std::uint16_t>(filter.size());
        break;
      }
    }
  }
  if (sub == nullptr) {
    return fail(mqtt_errc::bad_argument);
  }
  sub->qos = qos;
  sub->state = SubState::free;
  sub->packet_id = alloc_packet_id();
  sub->state = SubState::sub_pending;
  return sub->packet_id;
}

Result<std::uint16_t> Session::unsubscribe(std::string_view filter) noexcept {
  Sub* sub = find_sub(filter);
  if (sub == nullptr || sub->state == SubState::unsub_pending ||
      sub->state == SubState::unsub_wait) {
    return fail(mqtt_errc::bad_argument);
  }
  sub->state = SubState::free;
  sub->packet_id = alloc_packet_id();
  sub->state = SubState::unsub_pending;
  return sub->packet_id;
}

Result<Event> Session::fatal(mqtt_errc e, std::uint64_t now_ms) noexcept {
  connection_lost(now_ms);
  // 5.0 §4.13: say why before closing — a DISCONNECT with the reason, written by the next
  // next_packet(). Not after a refused CONNACK: the broker closes then.
  farewell_pending_ = config_.version == Version::v5 && e != mqtt_errc::connection_refused;
  farewell_reason_ = reason_code(e);
  return fail(e);
}

Result<Event> Session::feed(const Packet& p, std::uint64_t now_ms) noexcept {
  if (state_ == SessionState::disconnected) {
    return fail(mqtt_errc::bad_state);
  }
  Event ev;
  if (state_ == SessionState::connecting) {
    // 3.1.1 §3.2: the first packet from the server is CONNACK (5.0 also allows AUTH).
    if (p.type == PacketType::auth) {
      return fatal(mqtt_errc::auth_unsupported, now_ms);
    }
    if (p.type != PacketType::connack || connect_pending_) {
      return fatal(mqtt_errc::protocol_error, now_ms);
    }
    if (p.connack.reason != 0) {
      return fatal(mqtt_errc::connection_refused, now_ms);
    }
    state_ = SessionState::connected;
    const Properties& props = p.connack.props;
    if (config_.version == Version::v5) {
      peer_receive_max_ = props.has_receive_maximum ? props.receive_maximum : 0xffff;
      peer_max_packet_ = props.has_maximum_packet_size ? props.maximum_packet_size : 0;
      if (props.has_server_keep_alive) {
        keep_alive_s_ = props.server_keep_alive;  // 5.0 §3.2.2.3.14: the server's wins
      }
    }
    if (!p.connack.session_present) {
      // The broker holds no subscription of ours: send them all again.
      for (std::size_t i = 0; i < config_.max_subscriptions; ++i) {
        Sub& s = subs_[i];
        if (s.state == SubState::active) {
          s.state = SubState::sub_pending;
        }
      }
    }
    ev.kind = EventKind::connected;
    ev.session_present = p.connack.session_present;
    return ev;
  }
  switch (p.type) {
    case PacketType::publish: {
      const Publish& m = p.publish;
      if (m.qos > 1) {
        return fatal(mqtt_errc::protocol_error, now_ms);  // never subscribed above QoS 1
      }
      if (m.props.topic_alias != 0) {
        return fatal(mqtt_errc::topic_alias_invalid, now_ms);  // Topic Alias Maximum is 0
      }
      if (m.qos == 1) {
        if (ack_count_ == config_.receive_maximum) {
          // Back-pressure, not an error: write the owed PUBACKs, then feed it again. 3.1.1 has
          // no limit; in v5 a broker beyond our Receive Maximum breaks §3.3.4, but mosquitto
          // 2.0.11 does so when it resumes a persistent session (tests/mqtt/broker_test.cc),
          // and disconnecting would only repeat it.
          return fail(mqtt_errc::would_block);
        }
        acks_[(ack_head_ + ack_count_) % config_.receive_maximum] = m.packet_id;
        ++ack_count_;
      }
      ev.kind = EventKind::message;
      ev.packet_id = m.packet_id;
      ev.message = &m;
      return ev;
    }
    case PacketType::puback:
      for (std::size_t i = 0; i < config_.queue_slots; ++i) {
        Slot& s = slots_[i];
        if (s.state == SlotState::inflight && s.packet_id == p.ack.packet_id) {
          s.state = SlotState::free;
          --inflight_;
          ev.kind = EventKind::published;
          ev.packet_id = p.ack.packet_id;
          ev.reason = p.ack.reason;
          break;
        }
      }
      return ev;  // an id not in flight (a duplicate PUBACK): nothing to do
    case PacketType::suback:
    case PacketType::unsuback: {
      const bool sub = p.type == PacketType::suback;
      for (std::size_t i = 0; i < config_.max_subscriptions; ++i) {
        Sub& s = subs_[i];
        if (s.state == (sub ? SubState::sub_wait : SubState::unsub_wait) &&
            s.packet_id == p.suback.packet_id) {
          ev.kind = sub ? EventKind::subscribed : EventKind::unsubscribed;
          ev.packet_id = s.packet_id;
          ev.reason = p.suback.reasons.empty() ? 0 : p.suback.reasons[0];
          // A refused subscription (>= 0x80) is forgotten: it would be refused again.
          s.state = (sub && ev.reason < 0x80) ? SubState::active : SubState::free;
          s.packet_id = 0;
          break;
        }
      }
      return ev;
    }
    case PacketType::pingresp:
      ping_outstanding_ = false;
      return ev;
    case PacketType::disconnect:
      connection_lost(now_ms);
      ev.kind = EventKind::server_disconnect;
      ev.reason = p.disconnect.reason;
      return ev;
    case PacketType::auth:
      return fatal(mqtt_errc::auth_unsupported, now_ms);
    default:
      // CONNECT, a second CONNACK, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, and QoS 2's packets.
      return fatal(mqtt_errc::protocol_error, now_ms);
  }
}

Result<std::size_t> Session::write(const Packet& p, std::span<std::byte> out,
                                   std::uint64_t now_ms) noexcept {
  auto n = encode(p, config_.version, out);
  if (n) {
    last_send_ms_ = now_ms;
  }
  return n;
}

Result<std::size_t> Session::next_packet(std::span<std::byte> out, std::uint64_t now_ms) noexcept {
  Packet p;
  if (state_ == SessionState::connecting && connect_pending_) {
    p.type = PacketType::connect;
    Connect& c = p.connect;
    c.version = config_.version;
    c.clean_start = config_.clean_start;
    c.keep_alive = config_.keep_alive_s;
    c.client_id = config_.client_id;
    c.has_username = config_.has_username;
    c.username = config_.username;
    c.has_password = config_.has_password;
    c.password = config_.password;
    c.has_will = config_.has_will;
    c.will = config_.will;
    if (config_.version == Version::v5) {
      c.props.has_session_expiry = config_.session_expiry_s != 0;
      c.props.session_expiry = config_.session_expiry_s;
      c.props.has_receive_maximum = true;
      c.props.receive_maximum = config_.receive_maximum;
      c.props.has_maximum_packet_size = true;
      c.props.maximum_packet_size = config_.max_packet_size;
    }
    auto n = write(p, out, now_ms);
    if (n) {
      connect_pending_ = false;
      keep_alive_s_ = config_.keep_alive_s;
    }
    return n;
  }
  if (state_ == SessionState::disconnected && farewell_pending_) {
    p.type = PacketType::disconnect;
    p.disconnect.reason = farewell_reason_;
    auto n = write(p, out, now_ms);
    if (n) {
      farewell_pending_ = false;
    }
    return n;
  }
  if (state_ != SessionState::connected) {
    return std::size_t{0};
  }
  if (disconnect_pending_) {
    p.type = PacketType::disconnect;
    auto n = write(p, out, now_ms);
    if (n) {
      connection_lost(now_ms);
    }
    return n;
  }
  if (ack_count_ > 0) {
    p.type = PacketType::puback;
    p.ack.packet_id = acks_[ack_head_];
    auto n = write(p, out, now_ms);
    if (n) {
      ack_head_ = (ack_head_ + 1) % config_.receive_maximum;
      --ack_count_;
    }
    return n;
  }
  if (ping_pending_) {
    p.type = PacketType::pingreq;
    auto n = write(p, out, now_ms);
    if (n) {
      ping_pending_ = false;
      ping_outstanding_ = true;
      ping_sent_ms_ = now_ms;
      ++stats_.pings;
    }
    return n;
  }
  for (std::size_t i = 0; i < config_.max_subscriptions; ++i) {
    Sub& s = subs_[i];
    if (s.state != SubState::sub_pending && s.state != SubState::unsub_pending) {
      continue;
    }
    const std::string_view filter(&filters_[i * config_.max_filter_bytes], s.len);
    if (s.packet_id == 0) {
      s.packet_id = alloc_packet_id();  // a resubscription after session_present = 0
    }
    Subscription item{filter, s.qos};
    if (s.state == SubState::sub_pending) {
      p.type = PacketType::subscribe;
      p.subscribe.packet_id = s.packet_id;
      p.subscribe.items = std::span<const Subscription>(&item, 1);
    } else {
      p.type = PacketType::unsubscribe;
      p.unsubscribe.packet_id = s.packet_id;
      p.unsubscribe.filters = std::span<const std::string_view>(&filter, 1);
    }
    auto n = write(p, out, now_ms);
    if (n) {
      s.state = s.state == SubState::sub_pending ? SubState::sub_wait : SubState::unsub_wait;
    }
    return n;
  }
  for (;;) {
    Slot* s = oldest_queued();
    if (s == nullptr || (s->qos == 1 && inflight_ >= window())) {
      return std::size_t{0};
    }
    const std::byte* base =
        &arena_[static_cast<std::size_t>(s - slots_.get()) * config_.max_message_bytes];
    p.type = PacketType::publish;
    p.publish.topic = std::string_view(reinterpret_cast<const char*>(base), s->topic_len);
    p.publish.payload = std::span<const std::byte>(base + s->topic_len, s->payload_len);
    p.publish.qos = s->qos;
    p.publish.retain = s->retain;
    p.publish.dup = s->dup;
    p.publish.packet_id = s->packet_id;
    if (peer_max_packet_ != 0) {
      auto size = encoded_size(p, config_.version);
      if (size && size.value() > peer_max_packet_) {
        s->state = SlotState::free;  // 5.0 §3.1.2.11.4: must not be sent; it never could be
        ++stats_.dropped_too_large;
        continue;
      }
    }
    auto n = write(p, out, now_ms);
    if (!n) {
      return n;
    }
    if (s->dup) {
      ++stats_.resent;
    }
    if (s->qos == 0) {
      s->state = SlotState::free;
    } else {
      s->state = SlotState::inflight;
      ++inflight_;
    }
    return n;
  }
}

PollResult Session::poll(std::uint64_t now_ms) noexcept {
  PollResult r;
  if (state_ == SessionState::connecting) {
    const std::uint64_t deadline = connect_ms_ + config_.connack_timeout_ms;
    r.dead = now_ms >= deadline;
    r.send = connect_pending_;
    r.next_ms = deadline;
    return r;
  }
  if (state_ != SessionState::connected) {
    return r;
  }
  if (ping_outstanding_) {
    const std::uint64_t deadline = ping_sent_ms_ + config_.ping_timeout_ms;
    if (now_ms >= deadline) {
      r.dead = true;
      return r;
    }
    r.next_ms = deadline;
  } else if (keep_alive_s_ != 0) {
    // 3.1.1 §3.1.2.10: the client must send something within each keep-alive period.
    const std::uint64_t due = last_send_ms_ + std::uint64_t{keep_alive_s_} * 1000;
    if (now_ms >= due) {
      ping_pending_ = true;
    } else {
      r.next_ms = due;
    }
  }
  r.send = wants_write();
  return r;
}

std::uint32_t Backoff::ceiling() const noexcept {
  const std::uint32_t shift = std::min<std::uint32_t>(attempt_, 32);
  const std::uint64_t c = std::uint64_t{base_ms_} << shift;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(c, cap_ms_));
}

std::uint32_t Backoff::next() noexcept {
  const std::uint64_t ceil = ceiling();
  // splitmix64 (Steele, Lea, Flood 2014): a fast, seedable, well-mixed sequence.
  state_ += 0x9E3779B97F4A7C15ull;
  std::uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  if (attempt_ < 0xffffffffu) {
    ++attempt_;
  }
  return static_cast<std::uint32_t>(z % (ceil + 1));
}

}  // namespace weft::mqtt
