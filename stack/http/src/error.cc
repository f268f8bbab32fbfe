#include <weft/http/error.h>

#include <weft/base/error_category.h>

namespace weft::http {

const char* to_string(http_errc e) noexcept {
  switch (e) {
    case http_errc::bad_method:
      return "malformed method";
    case http_errc::bad_target:
      return "malformed request-target";
    case http_errc::bad_version:
      return "malformed HTTP version";
    case http_errc::http09:
      return "HTTP/0.9 request";
    case http_errc::bad_header_name:
      return "malformed field name";
    case http_errc::bad_header_value:
      return "invalid byte in field value";
    case http_errc::obs_fold:
      return "obsolete line folding";
    case http_errc::bare_cr:
      return "CR not followed by LF";
    case http_errc::bare_lf:
      return "LF without CR";
    case http_errc::missing_host:
      return "HTTP/1.1 request without Host";
    case http_errc::duplicate_host:
      return "more than one Host";
    case http_errc::bad_host:
      return "malformed Host";
    case http_errc::bad_content_length:
      return "malformed Content-Length";
    case http_errc::content_length_mismatch:
      return "differing Content-Length values";
    case http_errc::content_length_with_transfer_encoding:
      return "Content-Length with Transfer-Encoding";
    case http_errc::bad_transfer_encoding:
      return "invalid Transfer-Encoding";
    case http_errc::bad_chunk:
      return "malformed chunked framing";
    case http_errc::chunk_ext_too_long:
      return "chunk extensions exceed max_chunk_ext";
    case http_errc::truncated:
      return "stream ended inside a request";
    case http_errc::bad_percent_encoding:
      return "malformed percent-encoding";
    case http_errc::body_too_large:
      return "body exceeds max_body_size";
    case http_errc::request_line_too_long:
      return "request line exceeds max_request_line";
    case http_errc::expectation_failed:
      return "unsupported expectation";
    case http_errc::header_too_large:
      return "field section exceeds max_header_bytes";
    case http_errc::too_many_headers:
      return "more field lines than max_headers";
    case http_errc::unknown_method:
      return "method not implemented";
    case http_errc::unsupported_transfer_coding:
      return "transfer coding not implemented";
    case http_errc::version_not_supported:
      return "HTTP version not supported";
    case http_errc::no_storage:
      return "feed() before set_storage()";
    case http_errc::buffer_too_small:
      return "caller-provided buffer too small";
    case http_errc::gone:
      return "the connection of a deferred response has gone";
    case http_errc::unavailable:
      return "no event streams configured";
    case http_errc::bad_header:
      return "response header with CR, LF or NUL";
  }
  return "unknown weft.http error";
}

std::uint16_t status(http_errc e) noexcept {
  switch (e) {
    case http_errc::body_too_large:
      return 413;
    case http_errc::request_line_too_long:
      return 414;
    case http_errc::expectation_failed:
      return 417;
    case http_errc::header_too_large:
    case http_errc::too_many_headers:
      return 431;
    case http_errc::unknown_method:
    case http_errc::unsupported_transfer_coding:
      return 501;
    case http_errc::version_not_supported:
      return 505;
    case http_errc::no_storage:
    case http_errc::buffer_too_small:
    case http_errc::gone:
    case http_errc::bad_header:
      return 500;
    case http_errc::unavailable:
      return 503;
    default:
      break;
  }
  const int v = static_cast<int>(e);
  return v >= static_cast<int>(http_errc::bad_method) &&
                 v <= static_cast<int>(http_errc::bad_percent_encoding)
             ? 400
             : 500;
}

std::uint16_t status(std::error_code ec) noexcept {
  if (!ec) {
    return 0;
  }
  return ec.category() == http_category() ? status(static_cast<http_errc>(ec.value())) : 500;
}

const std::error_category& http_category() noexcept {
  // Constant-initialised (ErrorCategory's constructor is constexpr): safe from any thread.
  static const ErrorCategory<http_errc> category("weft.http", &to_string);
  return category;
}

}  // namespace weft::http
