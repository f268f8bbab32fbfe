#include <weft/mqtt/topic.h>

#include <cstring>

namespace weft::mqtt {
namespace {

constexpr std::string_view kDevice = "{device}";

bool valid_device(std::string_view d) noexcept {
  return !d.empty() && d.find_first_of("/+#") == std::string_view::npos;
}

// Appends `s` to out at *pos; false when it does not fit.
bool put(std::span<char> out, std::size_t& pos, std::string_view s) noexcept {
  if (out.size() - pos < s.size()) {
    return false;
  }
  if (!s.empty()) {
    std::memcpy(out.data() + pos, s.data(), s.size());
  }
  pos += s.size();
  return true;
}

// Matches `topic` from its start against `pattern` (literal, with "{device}" tokens).
// Returns the number of topic bytes matched, or npos.
std::size_t match_literal(std::string_view pattern, std::string_view device,
                          std::string_view topic) noexcept {
  std::size_t t = 0;
  while (!pattern.empty()) {
    const std::size_t k = pattern.find(kDevice);
    const std::string_view lit = pattern.substr(0, k);
    if (topic.substr(t, lit.size()) != lit) {
      return std::string_view::npos;
    }
    t += lit.size();
    if (k == std::string_view::npos) {
      break;
    }
    if (topic.substr(t, device.size()) != device) {
      return std::string_view::npos;
    }
    t += device.size();
    pattern.remove_prefix(k + kDevice.size());
  }
  return t;
}

// Writes `pattern` with "{device}" replaced at out[pos...].
bool put_expanded(std::string_view pattern, std::string_view device, std::span<char> out,
                  std::size_t& pos) noexcept {
  while (!pattern.empty()) {
    const std::size_t k = pattern.find(kDevice);
    if (!put(out, pos, pattern.substr(0, k))) {
      return false;
    }
    if (k == std::string_view::npos) {
      break;
    }
    if (!put(out, pos, device)) {
      return false;
    }
    pattern.remove_prefix(k + kDevice.size());
  }
  return true;
}

bool ends_with_hash(std::string_view p) noexcept {
  return p == "#" || (p.size() >= 2 && p.substr(p.size() - 2) == "/#");
}

bool valid_pattern(std::string_view p) noexcept {
  if (p.empty() || p.find('+') != std::string_view::npos) {
    return false;
  }
  const std::size_t h = p.find('#');
  return h == std::string_view::npos || (h == p.size() - 1 && ends_with_hash(p));
}

}  // namespace

bool valid_topic_name(std::string_view topic) noexcept {
  return !topic.empty() && topic.size() <= 0xffff &&
         topic.find_first_of("+#") == std::string_view::npos;
}

bool valid_topic_filter(std::string_view filter) noexcept {
  if (filter.empty() || filter.size() > 0xffff) {
    return false;
  }
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = filter.find('/', start);
    const std::string_view level =
        filter.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (level.find_first_of("+#") != std::string_view::npos) {
      if (level.size() != 1) {
        return false;  // '+' or '#' share a level with other characters
      }
      if (level == "#" && end != std::string_view::npos) {
        return false;  // '#' not last
      }
    }
    if (end == std::string_view::npos) {
      return true;
    }
    start = end + 1;
  }
}

bool matches(std::string_view filter, std::string_view topic) noexcept {
  // §4.7.2: wildcards at the first level do not match topics starting with '$'.
  if (!topic.empty() && topic[0] == '$' && !filter.empty() &&
      (filter[0] == '#' || filter[0] == '+')) {
    return false;
  }
  std::size_t f = 0;
  std::size_t t = 0;
  for (;;) {
    const std::size_t fe = filter.find('/', f);
    const std::string_view fl = filter.substr(f, fe == std::string_view::npos ? fe : fe - f);
    if (fl == "#") {
      return true;  // matches this level and everything below, or the parent (t at end)
    }
    if (t > topic.size()) {
      // The topic ended one level above: only "x/#" matches its parent "x".
      return false;
    }
    const std::size_t te = topic.find('/', t);
    const std::string_view tl = topic.substr(t, te == std::string_view::npos ? te : te - t);
    if (fl != "+" && fl != tl) {
      return false;
    }
    if (fe == std::string_view::npos) {
      return te == std::string_view::npos;
    }
    f = fe + 1;
    t = te == std::string_view::npos ? topic.size() + 1 : te + 1;
  }
}

bool valid_rule(const Rule& rule) noexcept {
  return valid_pattern(rule.from) && valid_pattern(rule.to) &&
         ends_with_hash(rule.from) == ends_with_hash(rule.to);
}

Result<std::size_t> map_topic(const Rule& rule, std::string_view device_id, std::string_view topic,
                              std::span<char> out) noexcept {
  if (!valid_rule(rule) || !valid_device(device_id)) {
    return fail(mqtt_errc::bad_argument);
  }
  std::size_t pos = 0;
  if (!ends_with_hash(rule.from)) {
    if (match_literal(rule.from, device_id, topic) != topic.size()) {
      return std::size_t{0};
    }
    if (!put_expanded(rule.to, device_id, out, pos)) {
      return fail(mqtt_errc::buffer_too_small);
    }
    return pos;
  }
  // from = prefix + "#" where prefix is "" or ends in '/'.
  const std::string_view from_prefix = rule.from.substr(0, rule.from.size() - 1);
  const std::string_view to_prefix = rule.to.substr(0, rule.to.size() - 1);
  const std::size_t m = match_literal(from_prefix, device_id, topic);
  if (m != std::string_view::npos) {
    if (!put_expanded(to_prefix, device_id, out, pos) || !put(out, pos, topic.substr(m))) {
      return fail(mqtt_errc::buffer_too_small);
    }
    if (pos == 0) {
      return fail(mqtt_errc::bad_argument);  // "#" -> "#" of an empty remainder
    }
    return pos;
  }
  // The parent level: "local/#" matches "local" (§4.7.1.2).
  if (!from_prefix.empty() && match_literal(from_prefix.substr(0, from_prefix.size() - 1),
                                            device_id, topic) == topic.size()) {
    if (to_prefix.empty()) {
      return std::size_t{0};  // "x/#" -> "#": the parent maps to nothing
    }
    if (!put_expanded(to_prefix.substr(0, to_prefix.size() - 1), device_id, out, pos)) {
      return fail(mqtt_errc::buffer_too_small);
    }
    return pos;
  }
  return std::size_t{0};
}

Result<std::size_t> map_first(std::span<const Rule> rules, std::string_view device_id,
                              std::string_view topic, std::span<char> out) noexcept {
  for (const Rule& r : rules) {
    auto n = map_topic(r, device_id, topic, out);
    if (!n || n.value() != 0) {
      return n;
    }
  }
  return std::size_t{0};
}

Result<std::size_t> expand(std::string_view pattern, std::string_view device_id,
                           std::span<char> out) noexcept {
  if (!valid_device(device_id)) {
    return fail(mqtt_errc::bad_argument);
  }
  std::size_t pos = 0;
  if (!put_expanded(pattern, device_id, out, pos)) {
    return fail(mqtt_errc::buffer_too_small);
  }
  return pos;
}

}  // namespace weft::mqtt
