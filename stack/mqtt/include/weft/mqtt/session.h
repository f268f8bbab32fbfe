// weft::mqtt::Session — the MQTT client state machine (3.1.1 or 5.0), sans-IO.
//
// The Session never touches a socket or a clock; the caller (the loop client, later) does:
//   - connect(now) when the transport is up; then next_packet() while it returns > 0 and
//     sends those bytes (each call writes one whole packet: CONNECT first);
//   - decodes received bytes with a Decoder (codec.h; set_version(config.version)) and gives
//     every packet to feed(), which returns at most one Event;
//   - calls poll(now) on its timer: it says when something is due to be written (a PINGREQ
//     after keep_alive of silence) and when the connection is dead (no CONNACK or no PINGRESP
//     in time); the caller then closes the transport and calls connection_lost(now);
//   - on connection_lost() waits Backoff::next() ms and calls connect() again.
//
// Delivery guarantees: QoS 0 is at most once. QoS 1 is at least once: a QoS 1 message stays
// in its queue slot from publish() until its PUBACK arrives, across any number of
// reconnects; after a reconnect every unacknowledged QoS 1 message is sent again with DUP=1,
// in publish order, before newer ones (nothing acknowledged is lost, nothing unacknowledged
// is forgotten). Received QoS 1 PUBLISH: feed() returns it as a `message` Event (delivery)
// and queues its PUBACK, written by the next next_packet() — after the caller handled the
// event. QoS 2 is refused: publish() and subscribe() with qos 2 return bad_argument (a
// subscription is at most QoS 1), and a QoS 2 PUBLISH, PUBREC, PUBREL or PUBCOMP from the
// broker is a protocol_error.
//
// Outbound queue (memory): the constructor allocates `queue_slots` slots of
// `max_message_bytes` bytes each (topic + payload are COPIED there by publish(), so the
// caller's buffers are free when it returns), a subscription table of `max_subscriptions`
// filters of `max_filter_bytes`, and a ring of `receive_maximum` owed PUBACK ids. Nothing
// allocates after construction. A slot holds a message until it is written (QoS 0) or
// acknowledged (QoS 1). Messages leave in publish order; at most min(max_inflight, the
// broker's Receive Maximum) QoS 1 messages are unacknowledged at once, and a QoS 1 message
// waiting for the window holds back the messages behind it (order is kept).
// Policy when no slot is free (QueuePolicy): refuse_new -> publish() returns would_block;
// drop_oldest_qos0 -> the oldest QoS 0 message not yet written is dropped to make room
// (counted in Stats), and would_block only when every slot holds QoS 1. QoS 1 is never
// dropped. While disconnected, QoS 1 is queued (same limits); QoS 0 is refused with
// not_connected unless queue_qos0_offline is set, and QoS 0 still queued when the connection
// is lost is dropped unless it is set.
//
// Subscriptions: subscribe() records the filter (for resubscription) and queues a SUBSCRIBE
// (one filter per packet). After a CONNACK with session_present = 0 (a clean session, or a
// broker that lost it) every subscription is sent again; with session_present = 1 only the
// ones not yet acknowledged are.
//
// Threading: a Session is owned by one thread; no call is thread-safe; there are no callbacks.
// Errors are values. feed()'s connection-fatal errors (is_connection_fatal) move the Session
// to disconnected exactly as connection_lost() does; in v5 (except after a refused CONNACK)
// next_packet() then writes one DISCONNECT carrying reason_code(error) — e.g. 0x8C for an
// AUTH, 0x82 for a protocol error — which the caller sends before closing the transport and
// calling connection_lost().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include <weft/base/result.h>
#include <weft/mqtt/codec.h>
#include <weft/mqtt/error.h>
#include <weft/mqtt/packet.h>

namespace weft::mqtt {

enum class QueuePolicy : std::uint8_t { refuse_new, drop_oldest_qos0 };

// Every setting and limit of a Session; defaults suit a small board. The views (client_id,
// username, password, will) are read at every connect(): they must outlive the Session.
struct SessionConfig {
  Version version = Version::v311;
  std::string_view client_id;       // empty: the broker assigns one (needs clean_start)
  std::uint16_t keep_alive_s = 60;  // 0: no PINGREQ
  // No PINGRESP this long after a PINGREQ -> poll() says dead (keep_alive_timeout).
  std::uint32_t ping_timeout_ms = 10'000;
  // No CONNACK this long after connect() -> poll() says dead.
  std::uint32_t connack_timeout_ms = 10'000;
  bool clean_start = true;
  std::uint32_t session_expiry_s = 0;  // v5: sent when non-zero (0xFFFFFFFF: never expires)
  bool has_username = false;
  std::string_view username;
  bool has_password = false;
  std::span<const std::byte> password;
  bool has_will = false;
  Will will;
  // Outbound queue: slots (1..32768), bytes per slot (topic + payload; more ->
  // message_too_large), and the policy above. publish(), next_packet() and an ack's feed()
  // scan the slot table: O(queue_slots) each, sized for tens to a few hundred slots.
  std::uint16_t queue_slots = 32;
  std::uint32_t max_message_bytes = 1024;
  QueuePolicy when_full = QueuePolicy::refuse_new;
  bool queue_qos0_offline = false;
  // QoS 1 messages unacknowledged at once (also capped by the broker's Receive Maximum).
  std::uint16_t max_inflight = 16;
  // Subscriptions kept for resubscription (1..32000), and the longest filter (more ->
  // bad_argument).
  std::uint16_t max_subscriptions = 16;
  std::uint16_t max_filter_bytes = 128;
  // Received QoS 1 messages whose PUBACK may be owed at once (announced as Receive Maximum
  // in v5). One more -> feed() returns would_block (not fatal, nothing changed): write the
  // owed PUBACKs with next_packet(), then feed the same packet again. (In v5 a broker beyond
  // it breaks §3.3.4, but mosquitto 2.0.11 does when it resumes a persistent session.)
  std::uint16_t receive_maximum = 32;
  // The largest packet this side accepts (v5 CONNECT's Maximum Packet Size; give the same
  // value to the Decoder).
  std::uint32_t max_packet_size = 64 * 1024;
};

enum class SessionState : std::uint8_t { disconnected, connecting, connected };

enum class EventKind : std::uint8_t {
  none,               // nothing for the application (PINGRESP, an unknown PUBACK id)
  connected,          // CONNACK accepted: session_present
  message,            // an incoming PUBLISH: message (QoS 1: PUBACK queued)
  published,          // a QoS 1 publish was acknowledged: packet_id, reason
  subscribed,         // SUBACK: packet_id, reason (granted QoS 0/1, or >= 0x80 refused)
  unsubscribed,       // UNSUBACK: packet_id
  server_disconnect,  // v5 DISCONNECT from the broker: reason; the Session is disconnected
};

struct Event {
  EventKind kind = EventKind::none;
  std::uint16_t packet_id = 0;
  std::uint8_t reason = 0;
  bool session_present = false;
  // kind == message: the PUBLISH inside the Packet given to feed() (valid as long as it is).
  const Publish* message = nullptr;
};

// What poll() says.
struct PollResult {
  bool send = false;          // next_packet() has something to write
  bool dead = false;          // close the transport, then connection_lost()
  std::uint64_t next_ms = 0;  // when to poll again at the latest (0: no timer needed)
};

struct SessionStats {
  std::uint64_t dropped_qos0_full = 0;     // drop_oldest_qos0 made room
  std::uint64_t dropped_qos0_offline = 0;  // QoS 0 queued when the connection was lost
  std::uint64_t dropped_too_large = 0;     // above the broker's Maximum Packet Size
  std::uint64_t resent = 0;                // QoS 1 written again with DUP
  std::uint64_t pings = 0;
};

class Session {
 public:
  // Allocates the queue, the subscription table and the ack ring (see above).
  explicit Session(const SessionConfig& config);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The transport is up: queues CONNECT. Error: bad_state unless disconnected.
  [[nodiscard]] Result<void> connect(std::uint64_t now_ms) noexcept;

  // One received packet. Errors: bad_state (not connecting/connected), protocol_error (a
  // packet a client never receives, CONNACK twice, QoS 2), connection_refused (CONNACK with a
  // non-zero reason), topic_alias_invalid, auth_unsupported: each leaves the Session
  // disconnected. would_block (see receive_maximum) changes nothing: drain next_packet() and
  // feed the same packet again.
  [[nodiscard]] Result<Event> feed(const Packet& p, std::uint64_t now_ms) noexcept;

  // Writes the next packet due into `out`; 0 when nothing is due. Order: CONNECT, then
  // (once connected) DISCONNECT, owed PUBACKs, PINGREQ, SUBSCRIBE/UNSUBSCRIBE, PUBLISH; when
  // disconnected, only the v5 DISCONNECT after a fatal feed() (see above).
  // Error: buffer_too_small (nothing is lost; call again with a larger buffer).
  [[nodiscard]] Result<std::size_t> next_packet(std::span<std::byte> out,
                                                std::uint64_t now_ms) noexcept;

  // Timers: keep-alive and the CONNACK/PINGRESP deadlines (see PollResult).
  [[nodiscard]] PollResult poll(std::uint64_t now_ms) noexcept;

  // The transport is gone (closed by either side, or poll() said dead).
  void connection_lost(std::uint64_t now_ms) noexcept;

  // Queues a DISCONNECT (normal; the will is not sent); after it is written the Session is
  // disconnected. Error: not_connected.
  [[nodiscard]] Result<void> disconnect() noexcept;

  // Queues a message; returns its packet id (0 for QoS 0). Errors: bad_topic_name,
  // bad_argument (qos > 1), message_too_large, would_block, not_connected (see the policy).
  [[nodiscard]] Result<std::uint16_t> publish(std::string_view topic,
                                              std::span<const std::byte> payload, std::uint8_t qos,
                                              bool retain = false) noexcept;

  // Records and queues a subscription (qos 0 or 1); returns its packet id. Subscribing to a
  // filter already recorded updates its QoS and sends it again. Errors: bad_topic_filter,
  // bad_argument (qos > 1, filter longer than max_filter_bytes, table full).
  [[nodiscard]] Result<std::uint16_t> subscribe(std::string_view filter, std::uint8_t qos) noexcept;

  // Forgets a recorded subscription and queues an UNSUBSCRIBE. Error: bad_argument (not
  // subscribed).
  [[nodiscard]] Result<std::uint16_t> unsubscribe(std::string_view filter) noexcept;

  [[nodiscard]] SessionState state() const noexcept { return state_; }
  [[nodiscard]] bool wants_write() const noexcept;
  [[nodiscard]] std::size_t queued() const noexcept;  // slots in use (QoS 0 and 1)
  [[nodiscard]] std::size_t inflight() const noexcept { return inflight_; }
  [[nodiscard]] std::size_t subscriptions() const noexcept;
  [[nodiscard]] const SessionStats& stats() const noexcept { return stats_; }
  [[nodiscard]] const SessionConfig& config() const noexcept { return config_; }

 private:
  struct Slot;
  struct Sub;
  [[nodiscard]] std::uint16_t alloc_packet_id() noexcept;
  [[nodiscard]] bool id_in_use(std::uint16_t id) const noexcept;
  [[nodiscard]] Slot* oldest_queued() const noexcept;
  [[nodiscard]] Sub* find_sub(std::string_view filter) const noexcept;
  [[nodiscard]] std::uint16_t window() const noexcept;
  Result<Event> fatal(mqtt_errc e, std::uint64_t now_ms) noexcept;
  Result<std::size_t> write(const Packet& p, std::span<std::byte> out,
                            std::uint64_t now_ms) noexcept;

  SessionConfig config_;
  SessionState state_ = SessionState::disconnected;
  std::unique_ptr<Slot[]> slots_;
  std::unique_ptr<std::byte[]> arena_;
  std::unique_ptr<Sub[]> subs_;
  std::unique_ptr<char[]> filters_;
  std::unique_ptr<std::uint16_t[]> acks_;  // ring of owed PUBACK ids
  std::size_t ack_head_ = 0;
  std::size_t ack_count_ = 0;
  std::size_t inflight_ = 0;
  std::uint32_t next_seq_ = 1;
  std::uint16_t next_id_ = 1;
  std::uint16_t peer_receive_max_ = 0xffff;
  std::uint32_t peer_max_packet_ = 0;  // 0: no limit announced
  std::uint16_t keep_alive_s_ = 0;     // config's, or the broker's Server Keep Alive
  bool connect_pending_ = false;
  bool disconnect_pending_ = false;
  bool farewell_pending_ = false;  // v5: DISCONNECT(farewell_reason_) after a fatal feed()
  std::uint8_t farewell_reason_ = 0;
  bool ping_pending_ = false;
  bool ping_outstanding_ = false;
  std::uint64_t connect_ms_ = 0;
  std::uint64_t last_send_ms_ = 0;
  std::uint64_t ping_sent_ms_ = 0;
  SessionStats stats_;
};

// Reconnect delays: exponential, capped, full jitter (AWS "Exponential Backoff and Jitter"):
// attempt n waits a uniform random delay in [0, min(cap_ms, base_ms * 2^n)]. Deterministic:
// the same seed gives the same sequence (splitmix64). Never allocates; not thread-safe.
class Backoff {
 public:
  Backoff(std::uint32_t base_ms, std::uint32_t cap_ms, std::uint64_t seed) noexcept
      : base_ms_(base_ms), cap_ms_(cap_ms), state_(seed) {}
  // The delay before the next attempt; counts the attempt.
  [[nodiscard]] std::uint32_t next() noexcept;
  // The upper bound next() would use now.
  [[nodiscard]] std::uint32_t ceiling() const noexcept;
  // A connection succeeded (CONNACK): start again from base_ms.
  void reset() noexcept { attempt_ = 0; }
  [[nodiscard]] std::uint32_t attempt() const noexcept { return attempt_; }

 private:
  std::uint32_t base_ms_;
  std::uint32_t cap_ms_;
  std::uint64_t state_;
  std::uint32_t attempt_ = 0;
};

}  // namespace weft::mqtt
