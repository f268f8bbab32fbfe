#include <weft/http/request.h>

namespace weft::http {

std::string_view to_string(Method m) noexcept {
  switch (m) {
    case Method::get:
      return "GET";
    case Method::head:
      return "HEAD";
    case Method::post:
      return "POST";
    case Method::put:
      return "PUT";
    case Method::delete_:
      return "DELETE";
    case Method::connect:
      return "CONNECT";
    case Method::options:
      return "OPTIONS";
    case Method::trace:
      return "TRACE";
    case Method::patch:
      return "PATCH";
    case Method::other:
      break;
  }
  return "";
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    x = (x >= 'A' && x <= 'Z') ? static_cast<char>(x | 0x20) : x;
    y = (y >= 'A' && y <= 'Z') ? static_cast<char>(y | 0x20) : y;
    if (x != y) {
      return false;
    }
  }
  return true;
}

const Header* find_header(std::span<const Header> headers, std::string_view name) noexcept {
  for (const Header& h : headers) {
    if (iequals(h.name, name)) {
      return &h;
    }
  }
  return nullptr;
}

}  // namespace weft::http
