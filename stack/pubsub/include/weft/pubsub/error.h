// Error codes of weft::pubsub (category "weft.pubsub").
//
// What Hub's calls return, and the reason a subscriber is aborted with when the slow-consumer
// policy disconnects it. A transport maps them onto its own wire errors (the binary
// protocol's ERROR codes, an HTTP status). Codes are stable: they appear in logs and
// metrics. Converting to std::error_code never allocates; message() builds a std::string
// from a static text only when a caller asks for text (logs).
#pragma once

#include <system_error>

namespace weft::pubsub {

enum class pubsub_errc : int {
  invalid_argument = 1,  // Hub::init: a limit out of range, or Config::shared_buffers == 0
  invalid_topic,         // a topic is empty or longer than Limits::max_topic_len
  topic_limit,           // Limits::max_topics distinct topics already have subscribers here
  subscription_limit,    // Limits::max_subscriptions subscriptions on this worker
  unknown_format,        // a subscription names a format that add_format did not return
  format_limit,          // add_format: Hub::kMaxFormats formats registered
  too_large,             // an encoded event does not fit in one shared buffer
  encode_failed,         // an encoder returned 0 (it refuses this topic or payload)
  no_buffers,            // no free shared buffer: the event was published to nobody
  not_attached,          // the worker was not attach()ed to the hub (or init() failed)
  not_subscribed,        // Hub::subscription: the connection has no such subscription
  slow_consumer,         // abort reason: Limits::disconnect_after consecutive drops
};

const std::error_category& pubsub_category() noexcept;

inline std::error_code make_error_code(pubsub_errc e) noexcept {
  return {static_cast<int>(e), pubsub_category()};
}

// Static text for a pubsub_errc (never null).
const char* to_string(pubsub_errc e) noexcept;

}  // namespace weft::pubsub

template <>
struct std::is_error_code_enum<weft::pubsub::pubsub_errc> : std::true_type {};
