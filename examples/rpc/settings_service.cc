#include "settings_service.h"

#include <algorithm>
#include <cstring>

#include <weft/base/assert.h>

namespace weft::examples {

namespace {
std::string_view view(const std::string& s) noexcept {
  return {s.data(), s.size()};
}
}  // namespace

SettingsStore::Entry* SettingsStore::find(std::string_view key) noexcept {
  for (Entry& e : entries_) {
    if (e.used && e.k() == key) {
      return &e;
    }
  }
  return nullptr;
}

std::uint64_t SettingsStore::put(std::string_view key, std::string_view value,
                                 PutError& err) noexcept {
  err = PutError::none;
  if (key.empty() || key.size() > kMaxKey) {
    err = PutError::bad_key;
    return 0;
  }
  if (value.size() > kMaxValue) {
    err = PutError::value_too_large;
    return 0;
  }
  const std::lock_guard<std::mutex> lock(mu_);
  Entry* e = find(key);
  if (e == nullptr) {
    for (Entry& f : entries_) {
      if (!f.used) {
        e = &f;
        break;
      }
    }
    if (e == nullptr) {
      err = PutError::full;
      return 0;
    }
    e->used = true;
    std::memcpy(e->key.data(), key.data(), key.size());
    e->key_len = static_cast<std::uint8_t>(key.size());
  }
  std::memcpy(e->value.data(), value.data(), value.size());
  e->value_len = static_cast<std::uint16_t>(value.size());
  e->version = ++version_;
  return e->version;
}

void SettingsStore::get(std::string_view key, GetReply& reply) noexcept {
  const std::lock_guard<std::mutex> lock(mu_);
  if (const Entry* e = find(key)) {
    reply.set_found(true);
    reply.set_value(e->value.data(), e->value_len);
    reply.set_version(e->version);
  } else {
    reply.set_found(false);
  }
}

void SettingsStore::list(std::string_view prefix, ListReply& reply) noexcept {
  std::array<const Entry*, kMaxKeys> hits;
  std::size_t n = 0;
  const std::lock_guard<std::mutex> lock(mu_);
  for (const Entry& e : entries_) {
    if (e.used && e.k().substr(0, prefix.size()) == prefix) {
      hits[n++] = &e;
    }
  }
  std::sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(n),
            [](const Entry* a, const Entry* b) { return a->k() < b->k(); });
  for (std::size_t i = 0; i < n; ++i) {
    reply.add_keys(hits[i]->key.data(), hits[i]->key_len);
  }
}

void SettingsImpl::Get(const GetRequest& request, msg::pb::Responder<GetReply>& r) noexcept {
  store_.get(view(request.key()), r.response());
  (void)r.reply();
}

void SettingsImpl::Put(const PutRequest& request, msg::pb::Responder<PutReply>& r) noexcept {
  SettingsStore::PutError err{};
  const std::uint64_t version = store_.put(view(request.key()), view(request.value()), err);
  switch (err) {
    case SettingsStore::PutError::none:
      break;
    case SettingsStore::PutError::bad_key:
      (void)r.fail(msg::ProtocolError::bad_payload, "key must be 1..64 bytes");
      return;
    case SettingsStore::PutError::value_too_large:
      (void)r.fail(msg::ProtocolError::too_large, "value over 256 bytes");
      return;
    case SettingsStore::PutError::full:
      (void)r.fail(msg::ProtocolError::overloaded, "store full (256 keys)");
      return;
  }
  r.response().set_version(version);
  (void)r.reply();
  publish_change(r.call().loop(), view(request.key()), view(request.value()), version);
}

void SettingsImpl::List(const ListRequest& request, msg::pb::Responder<ListReply>& r) noexcept {
  store_.list(view(request.prefix()), r.response());
  (void)r.reply();
}

void SettingsImpl::publish_change(platform::Loop& loop, std::string_view key,
                                  std::string_view value, std::uint64_t version) noexcept {
  if (topics_ == nullptr) {
    return;
  }
  change_.set_key(key.data(), key.size());
  change_.set_value(value.data(), value.size());
  change_.set_version(version);
  std::array<std::byte, SettingsStore::kMaxKey + SettingsStore::kMaxValue + 32> buf;
  Result<std::size_t> n = msg::pb::serialize(change_, buf);
  if (!n) {
    ++events_failed_;
    return;
  }
  const std::span<const std::byte> event(buf.data(), *n);
  std::array<char, kKeyTopicPrefix.size() + SettingsStore::kMaxKey> topic;
  std::memcpy(topic.data(), kKeyTopicPrefix.data(), kKeyTopicPrefix.size());
  std::memcpy(topic.data() + kKeyTopicPrefix.size(), key.data(), key.size());
  const auto bytes = [](const char* p, std::size_t len) {
    return std::span<const std::byte>(reinterpret_cast<const std::byte*>(p), len);
  };
  // A topic nobody watches costs nothing; a failure (no shared buffer) loses the event for
  // watchers, which the count shows.
  if (!topics_->publish_from(loop, bytes(kAllChanges.data(), kAllChanges.size()), event)) {
    ++events_failed_;
  }
  if (!topics_->publish_from(loop, bytes(topic.data(), kKeyTopicPrefix.size() + key.size()),
                             event)) {
    ++events_failed_;
  }
}

void SettingsHost::setup(msg::Registry& registry) {
  Worker* w = nullptr;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    workers_.push_back(std::make_unique<Worker>());
    w = workers_.back().get();
  }
  msg::pb::WorkspaceConfig wc;
  wc.storage = msg::pb::MessageStorage::reused;
  auto ws = msg::pb::Workspace::create(wc);
  if (!ws) {
    WEFT_PANIC("settings: workspace");
  }
  w->workspace = std::move(ws.value());
  w->service = std::make_unique<SettingsImpl>(*w->workspace, store_, topics_);
  if (!register_service(registry, *w->service)) {
    WEFT_PANIC("settings: register_service");
  }
}

}  // namespace weft::examples
