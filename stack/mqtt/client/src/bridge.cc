#include <weft/mqtt/bridge.h>

#include <weft/base/log.h>

namespace weft::mqtt {

namespace {

// FNV-1a over topic, a separator and payload: the loop-prevention ring's key. A collision
// drops one unrelated local publish whose exact (topic, payload) hash equals an inbound
// message's: with 64 bits and 64 entries, not a practical concern.
std::uint64_t echo_key(std::string_view topic, std::span<const std::byte> payload) noexcept {
  std::uint64_t h = 1469598103934665603ull;
  for (const char c : topic) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  h = (h ^ 0xffu) * 1099511628211ull;
  for (const std::byte b : payload) {
    h = (h ^ static_cast<std::uint8_t>(b)) * 1099511628211ull;
  }
  return h | 1;  // 0 marks a free ring entry
}

std::string_view next_word(std::string_view& line) noexcept {
  const std::size_t b = line.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) {
    line = {};
    return {};
  }
  line.remove_prefix(b);
  const std::size_t e = line.find_first_of(" \t\r");
  const std::string_view w = line.substr(0, e);
  line.remove_prefix(e == std::string_view::npos ? line.size() : e);
  return w;
}

}  // namespace

void apply(const BridgeConfig& bridge, SessionConfig& session) noexcept {
  session.when_full = bridge.policy;
  session.queue_qos0_offline = bridge.queue_qos0_offline;
}

BridgeConfig default_bridge_config() {
  BridgeConfig c;
  c.rules.push_back({Direction::out, "local/#", "fleet/{device}/local/#", 1, false});
  c.rules.push_back({Direction::in, "fleet/{device}/cmd/#", "cmd/#", 1, false});
  return c;
}

Result<BridgeConfig> parse_bridge_config(std::string_view text) {
  BridgeConfig c;
  std::size_t line_no = 0;
  auto bad = [&](const char* why) {
    log(LogLevel::warn, "mqtt bridge config: line %zu: %s", line_no, why);
    return weft::fail(mqtt_errc::bad_argument);
  };
  while (!text.empty()) {
    ++line_no;
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    const std::string_view word = next_word(line);
    if (word.empty() || word.front() == '#') {
      continue;
    }
    if (word == "device") {
      c.device_id = std::string(next_word(line));
      if (c.device_id.empty()) {
        return bad("device: an id is needed");
      }
    } else if (word == "queue") {
      const std::string_view p = next_word(line);
      if (p == "drop_oldest_qos0") {
        c.policy = QueuePolicy::drop_oldest_qos0;
      } else if (p == "refuse_new") {
        c.policy = QueuePolicy::refuse_new;
      } else {
        return bad("queue: drop_oldest_qos0 or refuse_new");
      }
    } else if (word == "queue_qos0_offline") {
      const std::string_view v = next_word(line);
      if (v != "yes" && v != "no") {
        return bad("queue_qos0_offline: yes or no");
      }
      c.queue_qos0_offline = v == "yes";
    } else if (word == "out" || word == "in") {
      BridgeRule r;
      r.dir = word == "out" ? Direction::out : Direction::in;
      r.from = std::string(next_word(line));
      r.to = std::string(next_word(line));
      if (!valid_rule(Rule{r.from, r.to})) {
        return bad("a rule needs two patterns (literal levels, {device}, '#' last in both)");
      }
      for (std::string_view w = next_word(line); !w.empty(); w = next_word(line)) {
        if (w == "qos0" || w == "qos1") {
          r.qos = w == "qos1" ? 1 : 0;
        } else if (w == "retain" && r.dir == Direction::out) {
          r.retain = true;
        } else {
          return bad("after the patterns: qos0, qos1, or retain (out rules)");
        }
      }
      c.rules.push_back(std::move(r));
      continue;
    } else {
      return bad("unknown directive (device, queue, queue_qos0_offline, out, in)");
    }
    if (!next_word(line).empty()) {
      return bad("extra words");
    }
  }
  return c;
}

Bridge::Bridge(Client& client, const BridgeConfig& config, std::string_view device_id)
    : client_(client),
      device_(device_id),
      rules_(config.rules),
      out_buf_(client.session().config().max_message_bytes),
      in_buf_(client.session().config().max_packet_size) {
  for (const BridgeRule& r : rules_) {
    (r.dir == Direction::out ? out_ : in_).push_back(Rule{r.from, r.to});
    (r.dir == Direction::out ? out_qos_ : in_qos_).push_back(r.qos);
    if (r.dir == Direction::out) {
      out_retain_.push_back(r.retain);
    }
  }
  client_.on_message(&Bridge::on_message, this);
}

Result<void> Bridge::start() noexcept {
  char filter[1024];
  for (std::size_t i = 0; i < in_.size(); ++i) {
    if (!valid_rule(in_[i])) {
      return weft::fail(mqtt_errc::bad_argument);
    }
    Result<std::size_t> n = expand(in_[i].from, device_, filter);
    if (!n) {
      return weft::fail(n.error());
    }
    if (Result<std::uint16_t> s = client_.subscribe({filter, n.value()}, in_qos_[i]); !s) {
      return weft::fail(s.error());
    }
  }
  for (const Rule& r : out_) {
    if (!valid_rule(r)) {
      return weft::fail(mqtt_errc::bad_argument);
    }
  }
  return {};
}

Result<bool> Bridge::local(std::string_view topic, std::span<const std::byte> payload) noexcept {
  const std::uint64_t key = echo_key(topic, payload);
  for (std::uint64_t& e : echo_) {
    if (e == key) {
      e = 0;  // one echo per inbound delivery
      ++stats_.echo_suppressed;
      return false;
    }
  }
  for (std::size_t i = 0; i < out_.size(); ++i) {
    Result<std::size_t> n = map_topic(out_[i], device_, topic, out_buf_);
    if (!n) {
      ++stats_.out_dropped;
      return weft::fail(n.error());
    }
    if (n.value() == 0) {
      continue;
    }
    Result<std::uint16_t> r =
        client_.publish({out_buf_.data(), n.value()}, payload, out_qos_[i], out_retain_[i]);
    if (!r) {
      ++stats_.out_dropped;
      return weft::fail(r.error());
    }
    ++stats_.out;
    return true;
  }
  ++stats_.out_unmapped;
  return false;
}

void Bridge::on_message(void* ctx, const Message& m) noexcept {
  static_cast<Bridge*>(ctx)->inbound(m);
}

void Bridge::inbound(const Message& m) noexcept {
  Result<std::size_t> n = map_first(in_, device_, m.topic, in_buf_);
  if (!n || n.value() == 0) {
    ++stats_.in_unmapped;
    return;
  }
  const std::string_view local_topic(in_buf_.data(), n.value());
  // Would an out rule send it back to the broker? Then remember it before delivering: the
  // LocalFn may publish it locally and see local() synchronously.
  char probe[256];
  bool echoes = false;
  for (const Rule& r : out_) {
    Result<std::size_t> k = map_topic(r, device_, local_topic, probe);
    if (!k || k.value() != 0) {  // matched (or too long to map here: assume it matches)
      echoes = true;
      break;
    }
  }
  if (echoes) {
    echo_[echo_next_] = echo_key(local_topic, m.payload);
    echo_next_ = (echo_next_ + 1) % kEchoRing;
  }
  ++stats_.in;
  if (local_fn_ != nullptr) {
    local_fn_(local_ctx_, local_topic, m.payload);
  }
}

}  // namespace weft::mqtt
