#include <weft/http/parser.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include <weft/base/assert.h>

#include "chars.h"
#include "tokens.h"

namespace weft::http {

using detail::is;
using detail::kHex;
using detail::kHost;
using detail::kSchemeCh;
using detail::kTarget;
using detail::kTchar;
using detail::kValue;

enum class RequestParser::Phase : std::uint8_t {
  idle,              // between requests (empty lines skipped)
  idle_lf,           // CR of an empty line seen
  head,              // request line or field section
  body_length,       // Content-Length body
  chunk_size_first,  // chunked framing, byte by byte
  chunk_size,
  chunk_ws,
  chunk_ext,
  chunk_size_lf,
  chunk_data,
  chunk_data_cr,
  chunk_data_lf,
  trailer_line,
  trailer_name,
  trailer_value,
  trailer_value_lf,
  trailer_final_lf,
  complete,  // `complete` not yet returned
  error,
};

enum class RequestParser::Head : std::uint8_t {
  method,
  target,
  version,
  rl_lf,
  line_start,
  name,
  ows,
  value,
  value_lf,
  final_lf,
};

namespace {

constexpr http_errc kOk = http_errc{};

Method classify(std::string_view m) noexcept {
  // Longest known method is 7 bytes; switch on the length first.
  switch (m.size()) {
    case 3:
      return m == "GET" ? Method::get : m == "PUT" ? Method::put : Method::other;
    case 4:
      return m == "HEAD" ? Method::head : m == "POST" ? Method::post : Method::other;
    case 5:
      return m == "PATCH" ? Method::patch : m == "TRACE" ? Method::trace : Method::other;
    case 6:
      return m == "DELETE" ? Method::delete_ : Method::other;
    case 7:
      return m == "OPTIONS" ? Method::options : m == "CONNECT" ? Method::connect : Method::other;
    default:
      return Method::other;
  }
}

bool digits_only(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Result<void> RequestParser::set_storage(std::span<Header> headers,
                                        std::span<char> assembly) noexcept {
  if (headers.size() < config_.max_headers || assembly.size() < assembly_size(config_)) {
    return weft::fail(http_errc::buffer_too_small);
  }
  headers_ = headers;
  assembly_ = assembly;
  has_storage_ = true;
  return {};
}

Result<void> RequestParser::set_assembly(std::span<char> assembly) noexcept {
  if (assembly.size() < assembly_size(config_)) {
    return weft::fail(http_errc::buffer_too_small);
  }
  if (assembled_ && phase_ != Phase::error && assembly.data() != base_) {
    // pos_ is the head bytes held (scanned so far, or the whole head once it is complete);
    // bytes copied past it are not needed.
    std::memmove(assembly.data(), base_, pos_);
    rebase(assembly.data());
  }
  assembly_ = assembly;
  return {};
}

// Re-points every view into the head from base_ to `to` (the head moved there), and makes
// `to` the new base.
void RequestParser::rebase(const char* to) noexcept {
  const char* const from = base_;
  const auto move = [from, to](std::string_view& v) {
    if (v.data() != nullptr) {
      v = std::string_view(to + (v.data() - from), v.size());
    }
  };
  for (std::size_t k = 0; k < msg_.count; ++k) {
    move(headers_[k].name);
    move(headers_[k].value);
  }
  // request() views the head once it is complete (it is rebuilt at the next head anyway).
  if (phase_ != Phase::head && phase_ != Phase::error) {
    for (std::string_view* v :
         {&request_.method_name, &request_.target, &request_.scheme, &request_.authority,
          &request_.path, &request_.query, &request_.host}) {
      move(*v);
    }
  }
  base_ = to;
}

std::error_code RequestParser::error() const noexcept {
  return phase_ == Phase::error ? make_error_code(error_) : std::error_code();
}

bool RequestParser::mid_message() const noexcept {
  return phase_ != Phase::idle && phase_ != Phase::idle_lf && phase_ != Phase::complete &&
         phase_ != Phase::error;
}

Result<void> RequestParser::finish() noexcept {
  if (phase_ == Phase::error) {
    return weft::fail(error_);
  }
  if (mid_message()) {
    error_ = http_errc::truncated;
    phase_ = Phase::error;
    return weft::fail(error_);
  }
  return {};
}

void RequestParser::reset() noexcept {
  phase_ = Phase::idle;
  error_ = kOk;
  assembled_ = false;
  base_ = nullptr;
  pos_ = 0;
  msg_ = Message{};
  body_ = {};
}

Decoded RequestParser::fail(http_errc e, std::size_t consumed) noexcept {
  error_ = e;
  phase_ = Phase::error;
  return {consumed, DecodeState::error};
}

Decoded RequestParser::feed(std::span<const std::byte> in) noexcept {
  body_ = {};
  if (phase_ == Phase::error) {
    return {0, DecodeState::error};
  }
  if (!has_storage_) {
    return fail(http_errc::no_storage, 0);
  }
  const char* const p = reinterpret_cast<const char*>(in.data());
  const std::size_t n = in.size();
  std::size_t used = 0;
  while (true) {
    switch (phase_) {
      case Phase::idle:
        if (used == n) {
          return {n, DecodeState::need_more};
        }
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before a
        // request-line (clients send a stray CRLF after a POST body).
        if (p[used] == '\r') {
          ++used;
          phase_ = Phase::idle_lf;
          break;
        }
        if (p[used] == '\n') {
          return fail(http_errc::bare_lf, used + 1);
        }
        msg_ = Message{};
        base_ = p + used;
        pos_ = 0;
        head_state_ = Head::method;
        assembled_ = false;
        phase_ = Phase::head;
        return feed_head(p, n, used);
      case Phase::idle_lf:
        if (used == n) {
          return {n, DecodeState::need_more};
        }
        if (p[used] != '\n') {
          return fail(http_errc::bare_cr, used + 1);
        }
        ++used;
        phase_ = Phase::idle;
        break;
      case Phase::head:
        return feed_head(p, n, used);
      case Phase::body_length:
      case Phase::chunk_data: {
        if (used == n) {
          return {n, DecodeState::need_more};
        }
        const std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, n - used));
        body_ = std::string_view(p + used, take);
        used += take;
        remaining_ -= take;
        if (remaining_ == 0) {
          phase_ = phase_ == Phase::body_length ? Phase::complete : Phase::chunk_data_cr;
        }
        return {used, DecodeState::body};
      }
      case Phase::complete:
        phase_ = Phase::idle;
        assembled_ = false;  // the assembly is free again
        return {used, DecodeState::complete};
      case Phase::error:
        return {used, DecodeState::error};
      default: {
        // Chunked framing and trailers: a few bytes per chunk, byte by byte.
        if (used == n) {
          return {n, DecodeState::need_more};
        }
        const http_errc e = framing_byte(p[used]);
        ++used;
        if (e != kOk) {
          return fail(e, used);
        }
        break;
      }
    }
  }
}

Decoded RequestParser::feed_head(const char* p, std::size_t n,
                                 [[maybe_unused]] std::size_t used) noexcept {
  if (!assembled_) {
    // The head starts in this input: parse it in place.
    const auto start = static_cast<std::size_t>(base_ - p);
    WEFT_ASSERT(start == used);
    const Scan s = scan_head(n - start);
    if (s == Scan::done) {
      return {start + pos_, DecodeState::head};
    }
    if (s == Scan::fail) {
      return {start + pos_, DecodeState::error};
    }
    // It continues in a later input: move what we have into the assembly (bounded: the
    // limits fired otherwise) and re-point the field views already stored.
    WEFT_ASSERT(pos_ <= assembly_.size());
    std::memcpy(assembly_.data(), base_, pos_);
    rebase(assembly_.data());
    assembled_ = true;
    return {n, DecodeState::need_more};
  }
  // Continuing an assembled head: append, then scan the new bytes.
  WEFT_ASSERT(used == 0);
  const std::size_t held = pos_;
  const std::size_t k = std::min(n, assembly_.size() - held);
  if (k != 0) {
    std::memcpy(assembly_.data() + held, p, k);
  }
  const Scan s = scan_head(held + k);
  if (s == Scan::done) {
    return {pos_ - held, DecodeState::head};
  }
  if (s == Scan::fail) {
    return {pos_ - held, DecodeState::error};
  }
  // A full assembly always ends in a verdict (assembly_size() >= the head limits).
  WEFT_ASSERT(k == n);
  return {n, DecodeState::need_more};
}

// The head state machine over base_[pos_, end). Runs of ordinary bytes are skipped in tight
// loops bounded by the limit in force, so every limit fires at the first byte past it.
RequestParser::Scan RequestParser::scan_head(std::size_t end) noexcept {
  const char* const b = base_;
  const std::size_t rl_max = config_.max_request_line;
  std::size_t i = pos_;
  Head s = head_state_;
  Message& m = msg_;
  const auto failed = [&](http_errc e) {
    error_ = e;
    phase_ = Phase::error;
    pos_ = i + 1;
    return Scan::fail;
  };
  // Request-line bytes past the limit are refused, except the CR that ends the line.
  const auto rl_over = [&](char c) { return i >= rl_max && c != '\r'; };
  const std::size_t hmax = config_.max_header_bytes;
  // Field-section bytes at or past hlim are refused (its first byte is known after the
  // request line).
  std::size_t hlim = s >= Head::line_start ? m.section_begin + hmax : 0;
  std::size_t lim = 0;
  while (i < end) {
    switch (s) {
      case Head::method: {
        lim = std::min(end, rl_max);
        while (i < lim && is(b[i], kTchar)) {
          ++i;
        }
        if (i == end) {
          break;
        }
        if (rl_over(b[i])) {
          return failed(http_errc::request_line_too_long);
        }
        if (b[i] != ' ' || i == 0) {
          return failed(http_errc::bad_method);
        }
        m.method = classify(std::string_view(b, i));
        if (m.method == Method::other && !config_.accept_unknown_methods) {
          return failed(http_errc::unknown_method);
        }
        m.method_end = static_cast<std::uint32_t>(i);
        ++i;
        m.target_begin = static_cast<std::uint32_t>(i);
        s = Head::target;
        break;
      }
      case Head::target: {
        lim = std::min(end, rl_max);
        while (i < lim && is(b[i], kTarget)) {
          ++i;
        }
        if (i == end) {
          break;
        }
        const char c = b[i];
        if (rl_over(c)) {
          return failed(http_errc::request_line_too_long);
        }
        if (c == ' ' && i > m.target_begin) {
          m.target_end = static_cast<std::uint32_t>(i);
          if (!end_target()) {
            return failed(http_errc::bad_target);
          }
          ++i;
          m.version_begin = static_cast<std::uint32_t>(i);
          s = Head::version;
          break;
        }
        // "GET /\r\n": HTTP/0.9 has no version and no headers (RFC 9112 Appendix C.1).
        return failed(c == '\r' && i > m.target_begin ? http_errc::http09 : http_errc::bad_target);
      }
      case Head::version: {
        // RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive.
        const char c = b[i];
        if (rl_over(c)) {
          return failed(http_errc::request_line_too_long);
        }
        const std::size_t k = i - m.version_begin;
        bool ok = false;
        if (k < 5) {
          ok = c == "HTTP/"[k];
        } else if (k == 5 || k == 7) {
          ok = c >= '0' && c <= '9';
        } else if (k == 6) {
          ok = c == '.';
        } else {
          ok = c == '\r';
        }
        if (!ok) {
          return failed(http_errc::bad_version);
        }
        if (k == 7) {
          if (b[i - 2] != '1' || (c != '0' && c != '1')) {
            return failed(http_errc::version_not_supported);
          }
          m.version = c == '1' ? Version::http11 : Version::http10;
        }
        if (k == 8) {
          s = Head::rl_lf;
        }
        ++i;
        break;
      }
      case Head::rl_lf:
        if (b[i] != '\n') {
          return failed(http_errc::bare_cr);
        }
        ++i;
        m.section_begin = static_cast<std::uint32_t>(i);
        hlim = i + hmax;
        s = Head::line_start;
        break;
      case Head::line_start: {
        if (i >= hlim) {
          return failed(http_errc::header_too_large);
        }
        const char c = b[i];
        if (c == '\r') {
          ++i;
          s = Head::final_lf;
          break;
        }
        if (is(c, kTchar)) {
          if (m.count >= config_.max_headers) {
            return failed(http_errc::too_many_headers);
          }
          m.line_begin = static_cast<std::uint32_t>(i);
          ++i;
          s = Head::name;
          break;
        }
        // RFC 9112 §5.2: obs-fold (and, §2.2, whitespace right after the request line)
        // is refused with 400.
        if (c == ' ' || c == '\t') {
          return failed(http_errc::obs_fold);
        }
        return failed(c == '\n' ? http_errc::bare_lf : http_errc::bad_header_name);
      }
      case Head::name: {
        lim = std::min(end, hlim);
        while (i < lim && is(b[i], kTchar)) {
          ++i;
        }
        if (i == end) {
          break;
        }
        if (i >= hlim) {
          return failed(http_errc::header_too_large);
        }
        // RFC 9112 §5.1: no whitespace between name and colon (MUST reject, 400).
        if (b[i] != ':') {
          return failed(http_errc::bad_header_name);
        }
        m.name_end = static_cast<std::uint32_t>(i);
        ++i;
        s = Head::ows;
        break;
      }
      case Head::ows: {
        lim = std::min(end, hlim);
        while (i < lim && (b[i] == ' ' || b[i] == '\t')) {
          ++i;
        }
        if (i == end) {
          break;
        }
        if (i >= hlim) {
          return failed(http_errc::header_too_large);
        }
        m.value_begin = static_cast<std::uint32_t>(i);
        s = Head::value;
        break;
      }
      case Head::value: {
        lim = std::min(end, hlim);
        i = detail::skip_plain_value(b, i, lim);
        while (i < lim && is(b[i], kValue)) {
          ++i;
        }
        if (i == end) {
          break;
        }
        if (i >= hlim) {
          return failed(http_errc::header_too_large);
        }
        const char c = b[i];
        if (c == '\r') {
          m.value_end = static_cast<std::uint32_t>(i);
          ++i;
          s = Head::value_lf;
          break;
        }
        return failed(c == '\n' ? http_errc::bare_lf : http_errc::bad_header_value);
      }
      case Head::value_lf: {
        if (i >= hlim) {
          return failed(http_errc::header_too_large);
        }
        if (b[i] != '\n') {
          return failed(http_errc::bare_cr);
        }
        const http_errc e = end_field();
        if (e != kOk) {
          return failed(e);
        }
        ++i;
        s = Head::line_start;
        break;
      }
      case Head::final_lf: {
        if (i >= hlim) {
          return failed(http_errc::header_too_large);
        }
        if (b[i] != '\n') {
          return failed(http_errc::bare_cr);
        }
        const http_errc e = end_head();
        if (e != kOk) {
          return failed(e);
        }
        pos_ = i + 1;
        head_state_ = s;
        return Scan::done;
      }
    }
  }
  pos_ = i;
  head_state_ = s;
  return Scan::more;
}

// RFC 9112 §3.2: which target form, and its parts. Called at the SP after the target, with
// the method known. The bytes are all kTarget already.
bool RequestParser::end_target() noexcept {
  Message& m = msg_;
  const std::string_view t(base_ + m.target_begin, m.target_end - m.target_begin);
  for (std::size_t k = t.find('%'); k != std::string_view::npos; k = t.find('%', k + 1)) {
    if (k + 2 >= t.size() || !is(t[k + 1], kHex) || !is(t[k + 2], kHex)) {
      return false;
    }
  }
  const std::uint32_t tb = m.target_begin;
  const auto off = [tb](std::size_t k) { return static_cast<std::uint32_t>(tb + k); };
  if (m.method == Method::connect) {
    // authority-form = uri-host ":" port, nothing else (no userinfo, path or query).
    const std::size_t colon = t.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == t.size() ||
        !digits_only(t.substr(colon + 1)) || t.find_first_of("/?@") != std::string_view::npos) {
      return false;
    }
    m.form = TargetForm::authority;
    m.authority_begin = tb;
    m.authority_end = m.target_end;
    return true;
  }
  if (t == "*") {
    if (m.method != Method::options) {
      return false;
    }
    m.form = TargetForm::asterisk;
    m.path_begin = tb;
    m.path_end = m.target_end;
    return true;
  }
  std::size_t path = 0;
  if (t[0] != '/') {
    // absolute-form: scheme "://" authority path-abempty [ "?" query ].
    if (!((t[0] | 0x20) >= 'a' && (t[0] | 0x20) <= 'z')) {
      return false;
    }
    std::size_t k = 1;
    while (k < t.size() && is(t[k], kSchemeCh)) {
      ++k;
    }
    if (t.substr(k, 3) != "://") {
      return false;
    }
    m.scheme_end = off(k);
    const std::size_t ab = k + 3;
    std::size_t ae = ab;
    while (ae < t.size() && t[ae] != '/' && t[ae] != '?') {
      ++ae;
    }
    if (ae == ab) {
      return false;
    }
    m.form = TargetForm::absolute;
    m.authority_begin = off(ab);
    m.authority_end = off(ae);
    path = ae;
  } else {
    m.form = TargetForm::origin;
  }
  const std::size_t q = t.find('?', path);
  m.path_begin = off(path);
  if (q == std::string_view::npos) {
    m.path_end = m.target_end;
    m.has_query = false;
  } else {
    m.path_end = off(q);
    m.has_query = true;
  }
  return true;
}

// One field line is complete (at its LF): store it, then apply what its name means.
http_errc RequestParser::end_field() noexcept {
  Message& m = msg_;
  std::size_t ve = m.value_end;
  while (ve > m.value_begin && (base_[ve - 1] == ' ' || base_[ve - 1] == '\t')) {
    --ve;
  }
  const std::string_view name(base_ + m.line_begin, m.name_end - m.line_begin);
  const std::string_view value(base_ + m.value_begin, ve - m.value_begin);
  headers_[m.count++] = Header{name, value};
  switch (name.size()) {
    case 4:
      if (detail::iequals_lower(name, "host")) {
        if (m.host_index >= 0) {
          return http_errc::duplicate_host;
        }
        if (!std::all_of(value.begin(), value.end(), [](char c) { return is(c, kHost); })) {
          return http_errc::bad_host;
        }
        m.host_index = m.count - 1;
      }
      return kOk;
    case 6:
      // RFC 9110 §10.1.1: a server MUST ignore 100-continue in an HTTP/1.0 request; any
      // other expectation in 1.1 MAY be answered 417, which strictness makes a must.
      if (detail::iequals_lower(name, "expect") && m.version == Version::http11) {
        if (!detail::iequals_lower(value, "100-continue")) {
          return http_errc::expectation_failed;
        }
        m.expect_continue = true;
      }
      return kOk;
    case 10:
      if (detail::iequals_lower(name, "connection")) {
        for (detail::ListReader r(value); !r.done();) {
          const std::string_view tok = r.next();
          if (detail::iequals_lower(tok, "close")) {
            m.close = true;
          } else if (detail::iequals_lower(tok, "keep-alive")) {
            m.keep_alive_token = true;
          } else if (detail::iequals_lower(tok, "upgrade")) {
            m.upgrade = true;
          }
        }
      }
      return kOk;
    case 14:
      if (detail::iequals_lower(name, "content-length")) {
        // RFC 9110 §8.6: 1*DIGIT. A list ("5, 5") is refused; identical duplicate lines
        // are accepted, differing ones refused (RFC 9112 §6.3 item 5).
        if (!digits_only(value)) {
          return http_errc::bad_content_length;
        }
        std::uint64_t v = 0;
        for (const char c : value) {
          const auto d = static_cast<std::uint64_t>(c - '0');
          if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) {
            return http_errc::bad_content_length;
          }
          v = v * 10 + d;
        }
        if (m.cl_seen && v != m.content_length) {
          return http_errc::content_length_mismatch;
        }
        if (v > config_.max_body_size) {
          return http_errc::body_too_large;
        }
        m.cl_seen = true;
        m.content_length = v;
      }
      return kOk;
    case 17:
      if (detail::iequals_lower(name, "transfer-encoding")) {
        return transfer_encoding(value);
      }
      return kOk;
    default:
      return kOk;
  }
}

// RFC 9112 §6.1, §7: the codings of one Transfer-Encoding line, appended to earlier lines'.
http_errc RequestParser::transfer_encoding(std::string_view value) noexcept {
  Message& m = msg_;
  m.te_seen = true;
  bool any = false;
  for (detail::ListReader r(value); !r.done();) {
    std::string_view coding = r.next();
    if (coding.empty()) {
      continue;  // RFC 9110 §5.6.1: empty list elements are ignored
    }
    any = true;
    const std::size_t semi = coding.find(';');
    const bool params = semi != std::string_view::npos;
    coding = detail::trim(coding.substr(0, semi));
    if (coding.empty() ||
        !std::all_of(coding.begin(), coding.end(), [](char c) { return is(c, kTchar); })) {
      return http_errc::bad_transfer_encoding;
    }
    // Anything after chunked — even chunked again — means chunked is not last (§6.3 item 4)
    // or is applied twice (§7): the body length cannot be determined.
    if (m.te_chunked) {
      return http_errc::bad_transfer_encoding;
    }
    if (detail::iequals_lower(coding, "chunked")) {
      if (params) {
        return http_errc::bad_transfer_encoding;
      }
      m.te_chunked = true;
    } else {
      m.te_other = true;
    }
  }
  return any ? kOk : http_errc::bad_transfer_encoding;
}

// The empty line: rules that need the whole head, then the Request.
http_errc RequestParser::end_head() noexcept {
  const Message& m = msg_;
  if (m.te_seen) {
    // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
    if (m.version == Version::http10) {
      return http_errc::bad_transfer_encoding;
    }
    if (m.cl_seen && !config_.allow_te_with_content_length) {
      return http_errc::content_length_with_transfer_encoding;
    }
    // §6.3 item 4: chunked not final -> 400; a coding we cannot decode -> 501 (§6.1).
    if (!m.te_chunked) {
      return http_errc::bad_transfer_encoding;
    }
    if (m.te_other) {
      return http_errc::unsupported_transfer_coding;
    }
  }
  if (m.version == Version::http11 && m.host_index < 0) {
    return http_errc::missing_host;
  }
  const auto view = [this](std::uint32_t from, std::uint32_t to) {
    return std::string_view(base_ + from, to - from);
  };
  // Built in place: the Request is a few hundred bytes, written once per request.
  Request& r = request_;
  r = Request{};
  r.method = m.method;
  r.method_name = view(0, m.method_end);
  r.target = view(m.target_begin, m.target_end);
  r.form = m.form;
  if (m.form == TargetForm::absolute) {
    r.scheme = view(m.target_begin, m.scheme_end);
  }
  if (m.form == TargetForm::absolute || m.form == TargetForm::authority) {
    r.authority = view(m.authority_begin, m.authority_end);
  }
  if (m.form != TargetForm::authority) {
    r.path = view(m.path_begin, m.path_end);
    r.has_query = m.has_query;
    if (m.has_query) {
      r.query = view(m.path_end + 1, m.target_end);
    }
  }
  r.version = m.version;
  r.headers = std::span<const Header>(headers_.data(), m.count);
  if (m.host_index >= 0) {
    r.host = headers_[static_cast<std::size_t>(m.host_index)].value;
    r.has_host = true;
  }
  r.connection_close = m.close;
  r.upgrade = m.upgrade;
  r.expect_continue = m.expect_continue;
  r.keep_alive = !m.close && (m.version == Version::http11 || m.keep_alive_token);
  if (m.te_seen) {
    r.body = BodyKind::chunked;
    // Lenient TE + CL: §6.3 item 3 — the connection must close after this request.
    if (m.cl_seen) {
      r.keep_alive = false;
    }
    body_total_ = 0;
    phase_ = Phase::chunk_size_first;
  } else if (m.cl_seen) {
    r.body = BodyKind::length;
    r.content_length = m.content_length;
    remaining_ = m.content_length;
    phase_ = m.content_length == 0 ? Phase::complete : Phase::body_length;
  } else {
    phase_ = Phase::complete;  // RFC 9112 §6.3 item 7: no body
  }
  return kOk;
}

// RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; last-chunk = 1*"0"
// [ chunk-ext ] CRLF; then trailer-section CRLF. One framing byte per call.
http_errc RequestParser::framing_byte(char c) noexcept {
  switch (phase_) {
    case Phase::chunk_size_first:
    case Phase::chunk_size: {
      const int h = detail::hex_value(c);
      if (h >= 0) {
        if (phase_ == Phase::chunk_size_first) {
          chunk_size_ = 0;
          counter_ = 0;
          phase_ = Phase::chunk_size;
        }
        // 16 hex digits hold any 64-bit size; more (leading zeros included) is refused.
        if (++counter_ > 16) {
          return http_errc::bad_chunk;
        }
        chunk_size_ = chunk_size_ * 16 + static_cast<std::uint64_t>(h);
        // Cut a streamed body off at the limit: the digit that crosses it is refused.
        if (chunk_size_ > config_.max_body_size - body_total_) {
          return http_errc::body_too_large;
        }
        return kOk;
      }
      if (phase_ == Phase::chunk_size_first) {
        return http_errc::bad_chunk;
      }
      counter_ = 0;
      if (c == '\r') {
        phase_ = Phase::chunk_size_lf;
        return kOk;
      }
      if (c == ';' || c == ' ' || c == '\t') {
        phase_ = c == ';' ? Phase::chunk_ext : Phase::chunk_ws;
        return ++counter_ > config_.max_chunk_ext ? http_errc::chunk_ext_too_long : kOk;
      }
      return http_errc::bad_chunk;
    }
    case Phase::chunk_ws:
    case Phase::chunk_ext:
      if (c == '\r') {
        // BWS must lead to an extension: "5 \r\n" is not a chunk line.
        if (phase_ == Phase::chunk_ws) {
          return http_errc::bad_chunk;
        }
        phase_ = Phase::chunk_size_lf;
        return kOk;
      }
      if (++counter_ > config_.max_chunk_ext) {
        return http_errc::chunk_ext_too_long;
      }
      if (phase_ == Phase::chunk_ws) {
        if (c == ';') {
          phase_ = Phase::chunk_ext;
          return kOk;
        }
        return c == ' ' || c == '\t' ? kOk : http_errc::bad_chunk;
      }
      // Extensions are ignored: any field-value byte is accepted.
      if (is(c, kValue)) {
        return kOk;
      }
      return c == '\n' ? http_errc::bare_lf : http_errc::bad_chunk;
    case Phase::chunk_size_lf:
      if (c != '\n') {
        return http_errc::bare_cr;
      }
      body_total_ += chunk_size_;
      if (chunk_size_ == 0) {
        counter_ = 0;
        trailers_ = 0;
        phase_ = Phase::trailer_line;
      } else {
        remaining_ = chunk_size_;
        phase_ = Phase::chunk_data;
      }
      return kOk;
    case Phase::chunk_data_cr:
      if (c != '\r') {
        return http_errc::bad_chunk;
      }
      phase_ = Phase::chunk_data_lf;
      return kOk;
    case Phase::chunk_data_lf:
      if (c != '\n') {
        return http_errc::bare_cr;
      }
      phase_ = Phase::chunk_size_first;
      return kOk;
    default:
      return trailer_byte(c);
  }
}

// The trailer section: field lines checked like the head's (same limits), then ignored.
http_errc RequestParser::trailer_byte(char c) noexcept {
  if (counter_++ >= config_.max_header_bytes) {
    return http_errc::header_too_large;
  }
  switch (phase_) {
    case Phase::trailer_line:
      if (c == '\r') {
        phase_ = Phase::trailer_final_lf;
        return kOk;
      }
      if (is(c, kTchar)) {
        if (trailers_++ >= config_.max_headers) {
          return http_errc::too_many_headers;
        }
        phase_ = Phase::trailer_name;
        return kOk;
      }
      if (c == ' ' || c == '\t') {
        return http_errc::obs_fold;
      }
      return c == '\n' ? http_errc::bare_lf : http_errc::bad_header_name;
    case Phase::trailer_name:
      if (c == ':') {
        phase_ = Phase::trailer_value;
        return kOk;
      }
      return is(c, kTchar) ? kOk : http_errc::bad_header_name;
    case Phase::trailer_value:
      if (c == '\r') {
        phase_ = Phase::trailer_value_lf;
        return kOk;
      }
      if (is(c, kValue)) {
        return kOk;
      }
      return c == '\n' ? http_errc::bare_lf : http_errc::bad_header_value;
    case Phase::trailer_value_lf:
      if (c != '\n') {
        return http_errc::bare_cr;
      }
      phase_ = Phase::trailer_line;
      return kOk;
    case Phase::trailer_final_lf:
      if (c != '\n') {
        return http_errc::bare_cr;
      }
      phase_ = Phase::complete;
      return kOk;
    default:
      WEFT_ASSERT(false);
      return http_errc::bad_chunk;
  }
}

}  // namespace weft::http
