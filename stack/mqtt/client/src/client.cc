#include <weft/mqtt/client.h>

#include <algorithm>

#include <weft/base/log.h>
#include <weft/platform/error.h>

namespace weft::mqtt {

namespace {

// FNV-1a of the client id: devices of a fleet restarted together draw different delays.
std::uint64_t seed_of(const ClientConfig& c) noexcept {
  if (c.backoff_seed != 0) {
    return c.backoff_seed;
  }
  std::uint64_t h = 1469598103934665603ull;
  for (const char ch : c.session.client_id) {
    h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  }
  return h;
}

// The largest packet the Session can produce: a PUBLISH holds at most max_message_bytes of
// topic + payload, a SUBSCRIBE one filter, CONNECT the id, will and credentials; 64 bytes
// cover fixed headers, lengths, packet ids and the few v5 properties the Session writes.
std::size_t out_size_of(const SessionConfig& s) noexcept {
  const std::size_t connect = s.client_id.size() + s.username.size() + s.password.size() +
                              (s.has_will ? s.will.topic.size() + s.will.payload.size() : 0);
  return std::max<std::size_t>({s.max_message_bytes, s.max_filter_bytes, connect}) + 64;
}

}  // namespace

const char* to_string(ClientState s) noexcept {
  switch (s) {
    case ClientState::stopped:
      return "stopped";
    case ClientState::connecting:
      return "connecting";
    case ClientState::connected:
      return "connected";
    case ClientState::waiting:
      return "waiting";
  }
  return "unknown";
}

Client::Client(platform::Loop& loop, const ClientConfig& config)
    : loop_(loop),
      config_(config),
      session_(config.session),
      assembly_(new std::byte[config.session.max_packet_size]),
      out_(new std::byte[out_size_of(config.session)]),
      out_size_(out_size_of(config.session)),
      decoder_(
          {.max_packet_size = config.session.max_packet_size, .version = config.session.version},
          {assembly_.get(), config.session.max_packet_size}),
      backoff_(config.backoff_base_ms, config.backoff_cap_ms, seed_of(config)) {
  timer_.fn = &Client::on_timer;
  timer_.ctx = this;
}

Client::~Client() {
  loop_.timers().cancel(timer_);
}

platform::Conn* Client::conn() noexcept {
  return have_conn_ ? loop_.find(id_) : nullptr;
}

Result<void> Client::start(const platform::Address& broker) noexcept {
  if (state_ != ClientState::stopped || have_conn_) {
    return weft::fail(mqtt_errc::bad_state);
  }
  broker_ = broker;
  stopping_ = false;
  attempt();
  return {};
}

void Client::attempt() noexcept {
  ++stats_.connects;
  set_state(ClientState::connecting, {});
  have_conn_ = true;
  opened_ = false;
  platform::ConnectOptions opt;
  opt.timeout_ms = config_.connect_timeout_ms;
  Result<platform::ConnId> r = loop_.connect(broker_, *this, opt);
  if (!r) {
    have_conn_ = false;
    ++stats_.connect_failed;
    retry_later(r.error());
    return;
  }
  id_ = r.value();
}

void Client::retry_later(std::error_code reason) noexcept {
  const std::uint32_t delay = backoff_.next();
  stats_.last_delay_ms = delay;
  set_state(ClientState::waiting, reason);
  loop_.timers().schedule(timer_, loop_.now_ms() + delay);
}

void Client::stop() noexcept {
  stopping_ = true;
  loop_.timers().cancel(timer_);
  platform::Conn* c = conn();
  if (c == nullptr) {
    if (!have_conn_) {
      set_state(ClientState::stopped, {});
    }
    return;  // a connect in flight: its on_close finishes the stop
  }
  if (session_.state() == SessionState::connected && session_.disconnect()) {
    pump(*c);  // writes DISCONNECT; the Session is then disconnected and pump closes
  }
  c->close();
}

Result<std::uint16_t> Client::publish(std::string_view topic, std::span<const std::byte> payload,
                                      std::uint8_t qos, bool retain) noexcept {
  Result<std::uint16_t> r = session_.publish(topic, payload, qos, retain);
  if (r && state_ == ClientState::connected) {
    if (platform::Conn* c = conn()) {
      pump(*c);
    }
  }
  return r;
}

Result<std::uint16_t> Client::subscribe(std::string_view filter, std::uint8_t qos) noexcept {
  Result<std::uint16_t> r = session_.subscribe(filter, qos);
  if (r && state_ == ClientState::connected) {
    if (platform::Conn* c = conn()) {
      pump(*c);
    }
  }
  return r;
}

Result<std::uint16_t> Client::unsubscribe(std::string_view filter) noexcept {
  Result<std::uint16_t> r = session_.unsubscribe(filter);
  if (r && state_ == ClientState::connected) {
    if (platform::Conn* c = conn()) {
      pump(*c);
    }
  }
  return r;
}

// ---- the connection ------------------------------------------------------------------

platform::Handler* Client::create(platform::Conn&) noexcept {
  return this;
}

void Client::destroy(platform::Handler*) noexcept {}

void Client::on_open(platform::Conn& c) noexcept {
  id_ = c.id();
  opened_ = true;
  if (stopping_) {  // stop() came while the TCP connect was in flight
    c.close();
    return;
  }
  // The Session keeps its own deadlines (keep-alive, CONNACK, PINGRESP): a quiet broker
  // connection is not idle, and no MQTT packet has a read deadline of its own.
  platform::Timeouts t = c.timeouts();
  t.idle_ms = 0;
  t.read_ms = 0;
  c.set_timeouts(t);
  decoder_.reset();
  decoder_.set_version(config_.session.version);
  pending_ = 0;
  if (!session_.connect(loop_.now_ms())) {
    abort_with(c, make_error_code(mqtt_errc::bad_state));
    return;
  }
  pump(c);
  poll_session(c);
}

void Client::on_data(platform::Conn& c, platform::BufView in) noexcept {
  stats_.bytes_in += in.bytes.size();
  std::span<const std::byte> p = in.bytes;
  while (!p.empty() && c.open()) {
    const Decoded d = decoder_.feed(p);
    p = p.subspan(d.consumed);
    if (d.state == DecodeState::error) {
      // Hostile or broken input: nothing after it can be framed. Close and reconnect.
      ++stats_.bad_packets;
      log(LogLevel::warn, "mqtt: malformed packet from the broker: %s",
          decoder_.error().message().c_str());
      abort_with(c, decoder_.error());
      return;
    }
    if (d.state != DecodeState::ready || !handle(c, decoder_.packet())) {
      break;
    }
  }
  if (c.open()) {
    pump(c);
    poll_session(c);
  }
}

bool Client::handle(platform::Conn& c, const Packet& p) noexcept {
  const std::uint64_t now = loop_.now_ms();
  Result<Event> ev = session_.feed(p, now);
  if (!ev && ev.error() == mqtt_errc::would_block) {
    // Owed PUBACKs at receive_maximum: write them (past max_queued_bytes: they are small
    // and bounded by receive_maximum), then give the same packet again.
    pump(c, /*force=*/true);
    ev = session_.feed(p, now);
  }
  if (!ev) {
    ++stats_.refused;
    log(LogLevel::warn, "mqtt: broker packet refused: %s", ev.error().message().c_str());
    pump(c, true);  // v5: the DISCONNECT with the reason code
    lost_reason_ = ev.error();
    c.close();
    return false;
  }
  switch (ev->kind) {
    case EventKind::connected:
      backoff_.reset();
      ++stats_.connected;
      set_state(ClientState::connected, {});
      break;
    case EventKind::message:
      ++stats_.messages_in;
      if (msg_fn_ != nullptr) {
        const Publish& m = *ev->message;
        msg_fn_(msg_ctx_, Message{m.topic, m.payload, m.qos, m.retain, m.dup});
      }
      break;
    case EventKind::published:
      ++stats_.acked;
      if (ack_fn_ != nullptr) {
        ack_fn_(ack_ctx_, ev->packet_id);
      }
      break;
    case EventKind::server_disconnect:
      lost_reason_ = make_error_code(mqtt_errc::server_disconnect);
      c.close();
      return false;
    case EventKind::none:
    case EventKind::subscribed:
    case EventKind::unsubscribed:
      break;
  }
  return c.open();
}

void Client::pump(platform::Conn& c, bool force) noexcept {
  if (!c.open()) {
    return;
  }
  if (pending_ != 0) {
    if (!c.send_copy({out_.get(), pending_})) {
      return;  // still no room: on_writable calls again
    }
    stats_.bytes_out += pending_;
    pending_ = 0;
  }
  while (force || c.queued_bytes() < config_.max_queued_bytes) {
    Result<std::size_t> n = session_.next_packet({out_.get(), out_size_}, loop_.now_ms());
    if (!n) {
      abort_with(c, n.error());  // buffer_too_small: out_size_of() is wrong; never expected
      return;
    }
    if (n.value() == 0) {
      break;
    }
    if (!c.send_copy({out_.get(), n.value()})) {
      pending_ = n.value();  // the packet is taken from the Session: keep it for on_writable
      return;
    }
    stats_.bytes_out += n.value();
  }
  if (session_.state() == SessionState::disconnected) {
    c.close();  // after our DISCONNECT (stop(), or the v5 answer to a fatal packet)
  }
}

void Client::poll_session(platform::Conn& c) noexcept {
  PollResult pr = session_.poll(loop_.now_ms());
  if (!pr.dead && pr.send) {
    // A PINGREQ that fell due comes with next_ms 0: write it, then ask again for its
    // PINGRESP deadline (without the second poll a silent broker is never found dead).
    pump(c);
    if (!c.open()) {
      return;
    }
    pr = session_.poll(loop_.now_ms());
  }
  if (pr.dead) {
    abort_with(c, make_error_code(mqtt_errc::keep_alive_timeout));
    return;
  }
  if (pr.next_ms != 0) {
    loop_.timers().schedule(timer_, pr.next_ms);
  }
}

void Client::on_writable(platform::Conn& c) noexcept {
  poll_session(c);  // pumps, and re-arms the timer for a PINGREQ that waited for room
}

void Client::abort_with(platform::Conn& c, std::error_code e) noexcept {
  lost_reason_ = e;
  c.abort(e);
}

void Client::on_close(platform::Conn&, std::error_code reason) noexcept {
  have_conn_ = false;
  pending_ = 0;
  const std::error_code why = lost_reason_ ? lost_reason_ : reason;
  lost_reason_ = {};
  if (session_.state() != SessionState::disconnected) {
    session_.connection_lost(loop_.now_ms());
  }
  if (opened_) {
    ++stats_.disconnects;
  } else {
    ++stats_.connect_failed;
  }
  opened_ = false;
  loop_.timers().cancel(timer_);
  if (stopping_) {
    set_state(ClientState::stopped, why);
    return;
  }
  retry_later(why);
}

void Client::on_timer(platform::TimerNode* n) noexcept {
  Client& self = *static_cast<Client*>(n->ctx);
  if (self.state_ == ClientState::waiting) {
    self.attempt();
    return;
  }
  if (platform::Conn* c = self.conn(); c != nullptr && c->open()) {
    self.poll_session(*c);
  }
}

void Client::set_state(ClientState s, std::error_code reason) noexcept {
  if (s == state_ && s != ClientState::waiting) {
    return;
  }
  state_ = s;
  if (state_fn_ != nullptr) {
    state_fn_(state_ctx_, s, reason);
  }
}

}  // namespace weft::mqtt
