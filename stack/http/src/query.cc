#include <weft/http/query.h>

#include <weft/http/error.h>

#include "chars.h"

namespace weft::http {

void QueryIterator::advance() noexcept {
  // Skip empty pairs ("&&", a leading or trailing '&').
  while (!rest_.empty() && rest_.front() == '&') {
    rest_.remove_prefix(1);
  }
  if (rest_.empty()) {
    done_ = true;
    current_ = {};
    return;
  }
  done_ = false;
  const std::size_t amp = rest_.find('&');
  const std::string_view pair = rest_.substr(0, amp);
  rest_ = amp == std::string_view::npos ? rest_.substr(rest_.size()) : rest_.substr(amp + 1);
  const std::size_t eq = pair.find('=');
  if (eq == std::string_view::npos) {
    current_ = QueryParam{pair, {}, false};
  } else {
    current_ = QueryParam{pair.substr(0, eq), pair.substr(eq + 1), true};
  }
}

std::optional<std::string_view> QueryParams::find(std::string_view key) const noexcept {
  for (const QueryParam& p : *this) {
    if (p.key == key) {
      return p.value;
    }
  }
  return std::nullopt;
}

Result<std::string_view> percent_decode(std::string_view in, std::span<char> out,
                                        PlusIs plus) noexcept {
  std::size_t o = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) {
        return fail(http_errc::bad_percent_encoding);
      }
      const int hi = detail::hex_value(in[i + 1]);
      const int lo = detail::hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) {
        return fail(http_errc::bad_percent_encoding);
      }
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus == PlusIs::space) {
      c = ' ';
    }
    if (o == out.size()) {
      return fail(http_errc::buffer_too_small);
    }
    out[o++] = c;
  }
  return std::string_view(out.data(), o);
}

}  // namespace weft::http
