// weft::mqtt topics — validation, matching (MQTT 3.1.1 §4.7, 5.0 §4.7) and the bridge's
// topic-rewriting rules.
//
// All functions are pure, never allocate and may be called from any thread. Inputs are views
// the caller owns for the duration of the call; mapped topics are written into a caller buffer.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include <weft/base/result.h>
#include <weft/mqtt/error.h>

namespace weft::mqtt {

// A topic name (PUBLISH): at least one character, no '+' or '#', at most 65,535 bytes.
// (UTF-8 well-formedness is valid_utf8() in codec.h; the Decoder checks both.)
[[nodiscard]] bool valid_topic_name(std::string_view topic) noexcept;

// A topic filter (SUBSCRIBE): non-empty, '#' only as the whole last level, '+' only as a whole
// level (5.0 §4.7.1). "#", "+", "sport/+/player1", "sport/#" are valid; "sport+", "sport/#/x",
// "#/" are not.
[[nodiscard]] bool valid_topic_filter(std::string_view filter) noexcept;

// True when `topic` (a valid name) matches `filter` (a valid filter). "sport/#" matches
// "sport" and "sport/tennis/player1"; "+" matches "finance" but not "/finance"; a filter
// starting with '#' or '+' never matches a topic starting with '$' (§4.7.2: "$SYS/...").
[[nodiscard]] bool matches(std::string_view filter, std::string_view topic) noexcept;

// A bridge rule: topics matching `from` are rewritten into `to`. Both are patterns of literal
// levels that may contain the token "{device}" (replaced by the device id) and may end with
// "#" as their whole last level; the levels `#` matched are appended to `to`'s prefix:
//   {"local/#", "fleet/{device}/local/#"}: "local/temp" -> "fleet/d1/local/temp"
//   {"fleet/{device}/cmd/#", "cmd/#"}:      "fleet/d1/cmd/reboot" -> "cmd/reboot"
// A pattern without '#' matches only the exact topic. "local/#" also matches "local" (§4.7.1.2),
// mapped to `to` without its "/#".
struct Rule {
  std::string_view from;
  std::string_view to;
};

// True when both patterns are well-formed (as above, no '+', '#' only last, and both or
// neither end in '#').
[[nodiscard]] bool valid_rule(const Rule& rule) noexcept;

// Rewrites `topic` by `rule` into `out`. Returns the mapped topic's length, or 0 when the rule
// does not match (a topic is never empty). Errors: bad_argument (invalid rule, or a device id
// that is empty or holds '/', '+' or '#'), buffer_too_small (out too short).
[[nodiscard]] Result<std::size_t> map_topic(const Rule& rule, std::string_view device_id,
                                            std::string_view topic, std::span<char> out) noexcept;

// The first rule of `rules` that matches wins; 0 when none does. Same errors as map_topic.
[[nodiscard]] Result<std::size_t> map_first(std::span<const Rule> rules, std::string_view device_id,
                                            std::string_view topic, std::span<char> out) noexcept;

// Writes `pattern` with "{device}" replaced (e.g. the broker filter a bridge subscribes to:
// "fleet/{device}/cmd/#" -> "fleet/d1/cmd/#"). Returns the length; buffer_too_small or
// bad_argument (device id) as above.
[[nodiscard]] Result<std::size_t> expand(std::string_view pattern, std::string_view device_id,
                                         std::span<char> out) noexcept;

}  // namespace weft::mqtt
