#include <weft/pubsub/error.h>

#include <weft/base/error_category.h>

namespace weft::pubsub {

const char* to_string(pubsub_errc e) noexcept {
  switch (e) {
    case pubsub_errc::invalid_argument:
      return "pub/sub limit out of range";
    case pubsub_errc::invalid_topic:
      return "topic empty or too long";
    case pubsub_errc::topic_limit:
      return "too many topics on this worker";
    case pubsub_errc::subscription_limit:
      return "too many subscriptions on this worker";
    case pubsub_errc::unknown_format:
      return "unknown event format";
    case pubsub_errc::format_limit:
      return "too many event formats";
    case pubsub_errc::too_large:
      return "event larger than a shared buffer";
    case pubsub_errc::encode_failed:
      return "event encoder refused the event";
    case pubsub_errc::no_buffers:
      return "no free shared buffer";
    case pubsub_errc::not_attached:
      return "worker not attached to the pub/sub hub";
    case pubsub_errc::not_subscribed:
      return "no such subscription";
    case pubsub_errc::slow_consumer:
      return "subscriber dropped too many events in a row";
  }
  return "unknown weft.pubsub error";
}

const std::error_category& pubsub_category() noexcept {
  // Constant-initialised (ErrorCategory's constructor is constexpr): safe from any thread.
  static const ErrorCategory<pubsub_errc> category("weft.pubsub", &to_string);
  return category;
}

}  // namespace weft::pubsub
