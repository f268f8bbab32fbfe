// The settings service of examples/rpc (settings.proto): a fixed-capacity key-value store
// shared by every worker, served per worker by SettingsImpl, with each Put published as a
// Change event on the topics "settings" and "settings/<key>".
//
// Memory: the store is a fixed table (kMaxKeys entries of at most kMaxKey + kMaxValue
// bytes) allocated with the store; the service parses into reused messages
// (MessageStorage::reused, whose strings keep their capacity), so a warmed-up server
// allocates nothing per call (tests/examples/settings_test.cc counts).
// Threading: the store takes a mutex (calls are short and rare next to I/O); SettingsImpl
// belongs to one worker.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include <weft/msg/pubsub_topics.h>

#include "settings.pb.h"
#include "settings.weft.h"

namespace weft::examples {

class SettingsStore {
 public:
  static constexpr std::size_t kMaxKeys = 256;
  static constexpr std::size_t kMaxKey = 64;
  static constexpr std::size_t kMaxValue = 256;

  enum class PutError : std::uint8_t { none, bad_key, value_too_large, full };
  // Writes key = value; returns the store's new version (0 with err set on failure).
  std::uint64_t put(std::string_view key, std::string_view value, PutError& err) noexcept;
  // Fills reply (found, value, version).
  void get(std::string_view key, GetReply& reply) noexcept;
  // The keys starting with prefix, sorted.
  void list(std::string_view prefix, ListReply& reply) noexcept;

 private:
  struct Entry {
    std::array<char, kMaxKey> key;
    std::array<char, kMaxValue> value;
    std::uint8_t key_len = 0;
    std::uint16_t value_len = 0;
    std::uint64_t version = 0;
    bool used = false;
    [[nodiscard]] std::string_view k() const noexcept { return {key.data(), key_len}; }
    [[nodiscard]] std::string_view v() const noexcept { return {value.data(), value_len}; }
  };
  Entry* find(std::string_view key) noexcept;
  std::mutex mu_;
  std::array<Entry, kMaxKeys> entries_{};
  std::uint64_t version_ = 0;
};

// One worker's service object: its protobuf Workspace and the reused messages.
class SettingsImpl final : public SettingsService {
 public:
  SettingsImpl(msg::pb::Workspace& ws, SettingsStore& store, msg::HubTopics* topics) noexcept
      : SettingsService(ws), store_(store), topics_(topics) {}

  void Get(const GetRequest& request, msg::pb::Responder<GetReply>& r) noexcept override;
  void Put(const PutRequest& request, msg::pb::Responder<PutReply>& r) noexcept override;
  void List(const ListRequest& request, msg::pb::Responder<ListReply>& r) noexcept override;

  [[nodiscard]] std::uint64_t events_failed() const noexcept { return events_failed_; }

 private:
  void publish_change(platform::Loop& loop, std::string_view key, std::string_view value,
                      std::uint64_t version) noexcept;
  SettingsStore& store_;
  msg::HubTopics* topics_;
  Change change_;  // reused for every event
  std::uint64_t events_failed_ = 0;
};

// Serves the settings service on every worker and listener of a msg::Server: for each call of
// msg::Options::setup (once per worker AND listener, concurrently across workers) one
// Workspace and one SettingsImpl, kept until the host is destroyed (after the runtime).
class SettingsHost {
 public:
  SettingsHost(SettingsStore& store, msg::HubTopics* topics) noexcept
      : store_(store), topics_(topics) {}
  // For msg::Options::setup. Panics when the workspace or the registration fails (start-up).
  void setup(msg::Registry& registry);

 private:
  struct Worker {
    std::unique_ptr<msg::pb::Workspace> workspace;
    std::unique_ptr<SettingsImpl> service;
  };
  SettingsStore& store_;
  msg::HubTopics* topics_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

// The topic every change is published on, and the prefix of the per-key topics.
inline constexpr std::string_view kAllChanges = "settings";
inline constexpr std::string_view kKeyTopicPrefix = "settings/";

}  // namespace weft::examples
