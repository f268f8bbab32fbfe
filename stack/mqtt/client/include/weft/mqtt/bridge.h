// weft::mqtt::Bridge — local pub/sub <-> an MQTT broker, by topic rules (the fleet bridge of
// issue #19), over a Client (client.h).
//
// Rules (topic.h's Rule, with a direction and a QoS): `out` rules map a local topic to a
// broker topic ("local/#" -> "fleet/{device}/local/#"), `in` rules a broker topic to a local
// one ("fleet/{device}/cmd/#" -> "cmd/#"); the first matching rule of a direction wins. The
// Bridge subscribes to every `in` rule's expanded `from` filter (fleet/d1/cmd/#) with its QoS;
// the Session resubscribes after each reconnect.
//
// Local side: the application tells the Bridge what was published locally (local(), from its
// publish path: weft's pubsub::Hub delivers to connections with exact topics, so a bridge
// hooks the publish path instead of subscribing to each topic), and gets what comes from the
// broker through a LocalFn (which publishes into the Hub, or http::sse::Streams, itself).
//
// Queue while the broker is away (the policy, BridgeConfig::policy, the Session's queue):
// QoS 1 messages are kept in the Session's bounded queue (queue_slots x max_message_bytes)
// and sent, in order, once the broker is back; when the queue is full, local() returns
// would_block for QoS 1 (counted as dropped: the local publisher does not wait). QoS 0 is
// queued while disconnected only with queue_qos0_offline; with drop_oldest_qos0 a full queue
// drops the oldest QoS 0 message to make room, with refuse_new it refuses the new one.
//
// Loop prevention: a message that came from the broker and was delivered locally is never
// sent back out. When its local topic would map out again (an `out` rule covers it), the
// Bridge remembers (topic, payload) in a small ring (kEchoRing entries, a 64-bit hash each)
// and local() drops the matching publish once when it comes round, synchronously from inside
// the LocalFn or later from another path; such drops are counted in `echo_suppressed`.
//
// Memory: the constructor allocates the rule table and two topic buffers; local() and the
// inbound path allocate nothing. Threading: the Client's loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <weft/base/result.h>
#include <weft/mqtt/client.h>
#include <weft/mqtt/session.h>
#include <weft/mqtt/topic.h>

namespace weft::mqtt {

enum class Direction : std::uint8_t { out, in };

struct BridgeRule {
  Direction dir = Direction::out;
  std::string from;
  std::string to;
  std::uint8_t qos = 1;
  bool retain = false;  // out only: publish to the broker with RETAIN
};

// What a configuration file says (parse_bridge_config). Control plane: owns strings.
struct BridgeConfig {
  std::string device_id;  // "device ID" line; the caller may override it
  std::vector<BridgeRule> rules;
  QueuePolicy policy = QueuePolicy::drop_oldest_qos0;  // "queue refuse_new|drop_oldest_qos0"
  bool queue_qos0_offline = false;                     // "queue_qos0_offline yes"
};

// The queue policy is the Session's: copy it into the Client's SessionConfig before the
// Client is constructed.
void apply(const BridgeConfig& bridge, SessionConfig& session) noexcept;

// The default rules of issue #19: local/# out to fleet/{device}/local/#, commands in.
BridgeConfig default_bridge_config();

// Parses the text format, one directive a line; '#' at the start of a line (after blanks)
// is a comment, blank lines are ignored:
//   device d1
//   queue drop_oldest_qos0            (or refuse_new)
//   queue_qos0_offline yes            (or no)
//   out local/# fleet/{device}/local/# qos1 [retain]
//   in  fleet/{device}/cmd/# cmd/# qos0
// The QoS field is optional (qos1 by default). Errors: bad_argument (an unknown directive, a
// rule that valid_rule() refuses, a QoS other than qos0/qos1, extra words); the line number
// and the reason are logged at warn level.
[[nodiscard]] Result<BridgeConfig> parse_bridge_config(std::string_view text);

struct BridgeStats {
  std::uint64_t out = 0;              // local messages published to the broker
  std::uint64_t out_unmapped = 0;     // local messages no out rule matched
  std::uint64_t out_dropped = 0;      // refused by the queue (would_block, not_connected, ...)
  std::uint64_t in = 0;               // broker messages delivered locally
  std::uint64_t in_unmapped = 0;      // broker messages no in rule matched
  std::uint64_t echo_suppressed = 0;  // loop prevention (see above)
};

class Bridge {
 public:
  // Delivers a broker message locally (topic already mapped). Called from the Client's
  // message callback, on its loop; the views are valid during the call only.
  using LocalFn = void (*)(void* ctx, std::string_view topic,
                           std::span<const std::byte> payload) noexcept;

  // Takes over client's message callback. `device_id` replaces {device} (non-empty, no '/',
  // '+', '#'). config's rules are copied. Allocates the rule table and topic buffers.
  Bridge(Client& client, const BridgeConfig& config, std::string_view device_id);
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  void on_local(LocalFn fn, void* ctx) noexcept { local_fn_ = fn, local_ctx_ = ctx; }

  // Checks every rule and the device id, and subscribes to the `in` rules' broker filters
  // (before or after the Client started). Errors: bad_argument (a rule or the device id),
  // the Client's subscribe errors (bad_topic_filter, table full: bad_argument).
  [[nodiscard]] Result<void> start() noexcept;

  // A local publish: mapped by the first matching out rule and queued on the Client with
  // the rule's QoS. Returns true when queued, false when no rule matched or loop prevention
  // dropped it. Errors: the Client's publish errors (would_block, not_connected,
  // message_too_large, bad_topic_name), each counted in out_dropped.
  [[nodiscard]] Result<bool> local(std::string_view topic,
                                   std::span<const std::byte> payload) noexcept;

  [[nodiscard]] const BridgeStats& stats() const noexcept { return stats_; }
  [[nodiscard]] std::string_view device_id() const noexcept { return device_; }

  // Entries of the loop-prevention ring: messages from the broker awaiting their echo.
  static constexpr std::size_t kEchoRing = 64;

 private:
  static void on_message(void* ctx, const Message& m) noexcept;
  void inbound(const Message& m) noexcept;

  Client& client_;
  std::string device_;
  std::vector<BridgeRule> rules_;
  std::vector<Rule> out_, in_;  // views into rules_
  std::vector<std::uint8_t> out_qos_, in_qos_;
  std::vector<bool> out_retain_;
  // Mapped topics, one buffer per direction (a LocalFn may call local() while it holds the
  // inbound topic): a topic never exceeds a queue slot / a packet.
  std::vector<char> out_buf_;
  std::vector<char> in_buf_;
  std::uint64_t echo_[kEchoRing] = {};
  std::size_t echo_next_ = 0;
  LocalFn local_fn_ = nullptr;
  void* local_ctx_ = nullptr;
  BridgeStats stats_;
};

}  // namespace weft::mqtt
