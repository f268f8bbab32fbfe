// weft::msg::HubTopics — the binary protocol's SUBSCRIBE / UNSUBSCRIBE / PUBLISH served by a
// weft::pubsub::Hub: events go out as EVENT frames (docs/protocol.md §6.3), encoded once per
// publish into a shared buffer and queued on every subscriber of every worker.
//
// Wiring (before Runtime::start):
//   pubsub::Hub hub;  hub.init(limits, cfg);
//   msg::HubTopics topics(hub);  topics.init();           // registers the EVENT format
//   options.topics = [&](Loop& l) { return topics.attach(l); };
// One HubTopics serves every worker (it holds no per-worker state; the Hub's calls are made
// on each connection's own worker). Failures are reported to the client as ERROR id 0 with
// the codes of §6.9: a limit -> overloaded, an event over a shared buffer -> too_large.
#pragma once

#include <weft/msg/server.h>
#include <weft/pubsub/hub.h>

namespace weft::msg {

class HubTopics final : public Topics {
 public:
  explicit HubTopics(pubsub::Hub& hub) noexcept : hub_(hub) {}
  // Registers the EVENT frame format with the hub. Before Runtime::start.
  [[nodiscard]] Result<void> init() noexcept;
  // For Options::topics: attaches the worker to the hub; nullptr when that fails (the server
  // then answers topic frames with unknown_method, and the failure is logged).
  Topics* attach(platform::Loop& loop) noexcept;

  Result<void> subscribe(platform::Conn& c, std::span<const std::byte> topic) noexcept override;
  Result<void> unsubscribe(platform::Conn& c, std::span<const std::byte> topic) noexcept override;
  Result<void> publish(platform::Conn& c, std::span<const std::byte> topic,
                       std::span<const std::byte> payload) noexcept override;
  void closed(platform::Conn& c) noexcept override;

  // Publishes from application code on worker `here` (a settings change, a sensor reading).
  [[nodiscard]] Result<pubsub::Published> publish_from(
      platform::Loop& here, std::span<const std::byte> topic,
      std::span<const std::byte> payload) noexcept {
    return hub_.publish(here, topic, payload);
  }
  [[nodiscard]] pubsub::Hub& hub() noexcept { return hub_; }
  [[nodiscard]] pubsub::Format format() const noexcept { return format_; }

 private:
  static std::size_t encode_event(void* ctx, std::span<const std::byte> topic,
                                  std::span<const std::byte> payload,
                                  std::span<std::byte> out) noexcept;
  pubsub::Hub& hub_;
  pubsub::Format format_ = 0;
};

}  // namespace weft::msg
