// Error codes of weft::http (category "weft.http"), and the HTTP status each one answers.
//
// A RequestParser that reports one of these is in its sticky error state (see parser.h). The
// status is part of the API: the server answers status(e) — 400, 413, 414, 417, 431, 501 or
// 505 — and closes the connection (the stream position after a malformed request is not
// trustworthy, so keep-alive never survives a parse error). Codes are stable: they appear in
// logs and metrics. Converting to std::error_code never allocates; message() builds a
// std::string from static text only when a caller asks for text (control plane, logs).
#pragma once

#include <cstdint>
#include <system_error>

namespace weft::http {

enum class http_errc : int {
  // 400 Bad Request: the request line.
  bad_method = 1,  // method is empty or holds a byte that is not a tchar (RFC 9110 §5.6.2)
  bad_target,      // request-target: bad byte, bad %XX, or a form its method does not allow
  bad_version,     // not exactly "HTTP/" DIGIT "." DIGIT followed by CRLF
  http09,          // "GET /\r\n": an HTTP/0.9 request line (no version)
  // 400: the field section (head and trailers).
  bad_header_name,   // empty name, a non-tchar byte, or whitespace before the colon
  bad_header_value,  // NUL, a control byte other than HTAB, or DEL in a field value
  obs_fold,          // a line starting with SP/HTAB: obsolete line folding (RFC 9112 §5.2)
  bare_cr,           // CR not followed by LF (RFC 9112 §2.2)
  bare_lf,           // LF not preceded by CR
  // 400: request semantics.
  missing_host,                           // HTTP/1.1 request without Host (RFC 9112 §3.2)
  duplicate_host,                         // more than one Host field line
  bad_host,                               // Host value is not uri-host [":" port] characters
  bad_content_length,                     // Content-Length not 1*DIGIT, or overflows
  content_length_mismatch,                // two Content-Length lines with different values
  content_length_with_transfer_encoding,  // both present (RFC 9112 §6.1: smuggling shape)
  bad_transfer_encoding,  // last coding not chunked, chunked twice, parameters, or HTTP/1.0
  bad_chunk,              // chunk size not HEXDIG, bad extension byte, no CRLF after data
  chunk_ext_too_long,     // a chunk line's extensions exceed Config::max_chunk_ext
  truncated,              // finish(): the peer closed the stream inside a request
  bad_percent_encoding,   // percent_decode(): '%' not followed by two hex digits
  // 413 Content Too Large.
  body_too_large,  // Content-Length or the chunked total exceeds Config::max_body_size
  // 414 URI Too Long.
  request_line_too_long,  // the request line exceeds Config::max_request_line
  // 417 Expectation Failed.
  expectation_failed,  // HTTP/1.1 Expect with anything but "100-continue"
  // 431 Request Header Fields Too Large.
  header_too_large,  // head's field section (or the trailers) exceeds Config::max_header_bytes
  too_many_headers,  // more field lines than Config::max_headers
  // 501 Not Implemented.
  unknown_method,               // a well-formed method that is not one of Method's
  unsupported_transfer_coding,  // a transfer coding other than chunked (gzip, ...)
  // 505 HTTP Version Not Supported.
  version_not_supported,  // a well-formed version other than HTTP/1.0 and HTTP/1.1
  // Caller errors (configuration); the server answers 500 if it answers at all.
  no_storage,        // feed() before set_storage()
  buffer_too_small,  // caller-provided storage is smaller than the configuration needs
  // Server (server.h); not statuses of a request.
  gone,         // a deferred response's connection has gone (or it was answered already)
  unavailable,  // the server has no event streams (ServerConfig::streams)
  bad_header,   // a response header name or value with CR, LF or NUL
};

// The category object; name() is "weft.http". Never allocates.
const std::error_category& http_category() noexcept;

inline std::error_code make_error_code(http_errc e) noexcept {
  return {static_cast<int>(e), http_category()};
}

// Static text for an http_errc (never null; "unknown weft.http error" for other values).
const char* to_string(http_errc e) noexcept;

// The response status for an http_errc: 400, 413, 414, 417, 431, 501, 505, or 500 for the
// caller errors (no_storage, buffer_too_small) and values that are not http_errc.
std::uint16_t status(http_errc e) noexcept;

// status() of a weft.http error code; 500 for any other category, 0 for no error.
std::uint16_t status(std::error_code ec) noexcept;

}  // namespace weft::http

template <>
struct std::is_error_code_enum<weft::http::http_errc> : std::true_type {};
