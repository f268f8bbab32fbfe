// Byte classes of the HTTP and URI grammars, as one 256-entry table of bit flags.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace weft::http::detail {

enum : std::uint8_t {
  kTchar = 1,     // RFC 9110 §5.6.2 token characters
  kValue = 2,     // field-value bytes: VCHAR, obs-text, SP, HTAB (RFC 9110 §5.5)
  kTarget = 4,    // request-target bytes (RFC 3986 unreserved, sub-delims, ":@/?%[]")
  kHex = 8,       // HEXDIG
  kHost = 16,     // Host value: reg-name / IP-literal / ":" port (RFC 3986 §3.2.2)
  kSchemeCh = 32  // scheme after its first letter: ALPHA DIGIT "+" "-" "."
};

constexpr std::array<std::uint8_t, 256> make_table() {
  std::array<std::uint8_t, 256> t{};
  auto add = [&t](const char* s, std::uint8_t f) {
    for (; *s != 0; ++s) {
      t[static_cast<unsigned char>(*s)] |= f;
    }
  };
  for (int c = 0; c < 256; ++c) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    if (alpha || digit) {
      t[c] |= kTchar | kTarget | kHost | kSchemeCh;
    }
    if ((c >= 0x21 && c <= 0x7e) || c >= 0x80 || c == ' ' || c == '\t') {
      t[c] |= kValue;
    }
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
      t[c] |= kHex;
    }
  }
  add("!#$%&'*+-.^_`|~", kTchar);
  add("-._~!$&'()*+,;=:@/?%[]", kTarget);
  add("-._~!$&'()*+,;=%:[]", kHost);
  add("+-.", kSchemeCh);
  return t;
}

inline constexpr std::array<std::uint8_t, 256> kChars = make_table();

inline bool is(char c, std::uint8_t f) noexcept {
  return (kChars[static_cast<unsigned char>(c)] & f) != 0;
}

inline int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// Skips field-value bytes 8 at a time while none of them is below 0x20 (CR, LF, HTAB,
// controls) or 0x7f: the byte-wise loop then handles whatever stopped it. SWAR "has less
// than" and "has zero" tests (exact as a yes/no answer; obs-text >= 0x80 passes).
inline std::size_t skip_plain_value(const char* b, std::size_t i, std::size_t lim) noexcept {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  while (i + 8 <= lim) {
    std::uint64_t x;
    std::memcpy(&x, b + i, 8);
    const std::uint64_t below = (x - kOnes * 0x20) & ~x & kHigh;
    const std::uint64_t del = x ^ (kOnes * 0x7f);
    const std::uint64_t is_del = (del - kOnes) & ~del & kHigh;
    if ((below | is_del) != 0) {
      break;
    }
    i += 8;
  }
  return i;
}

// ASCII case-insensitive equality with a lower-case literal (inline: names are compared
// once per field line).
inline bool iequals_lower(std::string_view s, std::string_view lower) noexcept {
  if (s.size() != lower.size()) {
    return false;
  }
  for (std::size_t k = 0; k < s.size(); ++k) {
    const auto c = static_cast<unsigned char>(s[k]);
    const unsigned char l =
        static_cast<unsigned>(c - 'A') < 26u ? static_cast<unsigned char>(c + 32) : c;
    if (l != static_cast<unsigned char>(lower[k])) {
      return false;
    }
  }
  return true;
}

}  // namespace weft::http::detail
