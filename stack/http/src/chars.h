// Byte classes of the HTTP and URI grammars, as one 256-entry table of bit flags.
#pragma once

#include <array>
#include <cstdint>

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

}  // namespace weft::http::detail
