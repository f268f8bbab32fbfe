// weft::http::Router — method + path patterns with {parameters}, 404 / 405 with Allow.
#include <weft/http/server.h>

#include <weft/platform/error.h>

namespace weft::http {

namespace {

using platform::platform_errc;

// Splits "/a/b/c" into segments (a trailing slash gives an empty last segment: "/a/" is not
// "/a"). False when there are more than Router::kMaxSegments.
bool split(std::string_view path, std::string_view (&out)[Router::kMaxSegments],
           std::uint8_t& n) noexcept {
  n = 0;
  if (path.empty() || path[0] != '/') {
    return false;
  }
  if (path == "/") {
    return true;  // the root: no segments
  }
  std::size_t i = 1;
  while (true) {
    if (n == Router::kMaxSegments) {
      return false;
    }
    const std::size_t j = path.find('/', i);
    out[n++] = path.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
    if (j == std::string_view::npos) {
      return true;
    }
    i = j + 1;
  }
}

bool same_shape(const Router::Route& a, const Router::Route& b) noexcept {
  if (a.segments != b.segments || a.param_mask != b.param_mask) {
    return false;
  }
  for (std::uint8_t i = 0; i < a.segments; ++i) {
    if ((a.param_mask & (1u << i)) == 0 && a.seg[i] != b.seg[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

Result<void> Router::add(Method m, std::string_view pattern, HandlerFn fn, void* ctx,
                         RouteOptions options) noexcept {
  if (fn == nullptr || m == Method::other || m == Method::head) {
    return fail(platform_errc::invalid_argument);
  }
  Route r;
  r.method = m;
  r.pattern = pattern;
  r.fn = fn;
  r.ctx = ctx;
  r.options = options;
  if (!split(pattern, r.seg, r.segments)) {
    return fail(platform_errc::invalid_argument);
  }
  std::size_t params = 0;
  for (std::uint8_t i = 0; i < r.segments; ++i) {
    std::string_view& s = r.seg[i];
    if (!s.empty() && s.front() == '{') {
      if (s.size() < 3 || s.back() != '}' || ++params > kMaxParams) {
        return fail(platform_errc::invalid_argument);
      }
      s = s.substr(1, s.size() - 2);
      r.param_mask |= 1u << i;
    } else if (s.find_first_of("{}") != std::string_view::npos) {
      return fail(platform_errc::invalid_argument);
    }
  }
  for (std::size_t i = 0; i < n_; ++i) {
    if (routes_[i].method == m && same_shape(routes_[i], r)) {
      return fail(std::make_error_code(std::errc::file_exists));
    }
  }
  if (n_ == kMaxRoutes) {
    return fail(std::make_error_code(std::errc::no_space_on_device));
  }
  routes_[n_++] = r;
  return {};
}

Router::Match Router::match(Method m, std::string_view path) const noexcept {
  Match out;
  std::string_view seg[kMaxSegments];
  std::uint8_t n = 0;
  if (!split(path, seg, n)) {
    return out;
  }
  const Method want = m == Method::head ? Method::get : m;
  int best_literals = -1;
  for (std::size_t i = 0; i < n_; ++i) {
    const Route& r = routes_[i];
    if (r.segments != n) {
      continue;
    }
    int literals = 0;
    bool ok = true;
    for (std::uint8_t k = 0; k < n && ok; ++k) {
      if ((r.param_mask & (1u << k)) != 0) {
        ok = !seg[k].empty();
      } else {
        ok = r.seg[k] == seg[k];
        ++literals;
      }
    }
    if (!ok) {
      continue;
    }
    if (r.method != want) {
      out.allow = static_cast<std::uint16_t>(out.allow | (1u << static_cast<unsigned>(r.method)));
      if (r.method == Method::get) {
        out.allow =
            static_cast<std::uint16_t>(out.allow | (1u << static_cast<unsigned>(Method::head)));
      }
      continue;
    }
    if (literals > best_literals) {
      best_literals = literals;
      out.route = &r;
    }
  }
  if (out.route == nullptr) {
    out.status = out.allow != 0 ? 405 : 404;
    return out;
  }
  const Route& r = *out.route;
  for (std::uint8_t k = 0; k < n; ++k) {
    if ((r.param_mask & (1u << k)) != 0) {
      out.params[out.n_params++] = Param{r.seg[k], seg[k]};
    }
  }
  out.status = 0;
  return out;
}

std::size_t format_allow(std::uint16_t allow, std::span<char> out) noexcept {
  std::size_t n = 0;
  for (unsigned m = 0; m < static_cast<unsigned>(Method::other); ++m) {
    if ((allow & (1u << m)) == 0) {
      continue;
    }
    const std::string_view name = to_string(static_cast<Method>(m));
    const std::size_t need = name.size() + (n != 0 ? 2 : 0);
    if (n + need > out.size()) {
      break;
    }
    if (n != 0) {
      out[n++] = ',';
      out[n++] = ' ';
    }
    for (const char ch : name) {
      out[n++] = ch;
    }
  }
  return n;
}

std::string_view reason_phrase(std::uint16_t status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "";
  }
}

}  // namespace weft::http
