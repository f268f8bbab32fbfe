// The parsed HTTP/1.1 request head: what RequestParser (parser.h) hands the server.
//
// Every std::string_view here views bytes that the parser does not own: either the caller's
// input (when the whole head arrived in one feed()) or the parser's assembly storage (when it
// spanned feeds). They stay valid until the parser starts the next request (the first
// feed() after `complete`) or reset() — and, when they view the caller's input, only while
// the caller keeps those bytes alive. A Request is a small value (no allocation); copying it
// copies views, not bytes.
//
// Names and values are exactly as on the wire except that the optional whitespace around a
// field value is trimmed. Nothing is percent-decoded or lower-cased: compare field names
// with find_header() (case-insensitive), decode a path or query with query.h.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace weft::http {

// The methods of RFC 9110 §9 plus PATCH (RFC 5789). Any other well-formed token is refused
// with http_errc::unknown_method (501) unless Config::accept_unknown_methods, which reports
// it as `other` (Request::method_name has the text). Methods are case-sensitive: "get" is
// not GET.
enum class Method : std::uint8_t {
  get,
  head,
  post,
  put,
  delete_,
  connect,
  options,
  trace,
  patch,
  other
};

// The canonical token of a method ("GET", ...; "" for `other`). Static storage.
std::string_view to_string(Method m) noexcept;

enum class Version : std::uint8_t { http10, http11 };

// RFC 9112 §3.2. Which form a method may use is checked: authority-form only (and always)
// for CONNECT, asterisk-form only for OPTIONS, origin- and absolute-form for the others.
enum class TargetForm : std::uint8_t {
  origin,     // "/path?query"
  absolute,   // "http://host:port/path?query" (a proxy-style request; Host is then ignored)
  authority,  // "host:port" (CONNECT)
  asterisk,   // "*" (OPTIONS)
};

// How the body is framed (RFC 9112 §6.3). A request with neither Content-Length nor
// Transfer-Encoding has no body (`none`); Content-Length: 0 is `length` with 0 bytes.
enum class BodyKind : std::uint8_t { none, length, chunked };

// One field line: views of its name and its value (surrounding whitespace trimmed).
struct Header {
  std::string_view name;
  std::string_view value;
};

struct Request {
  Method method = Method::other;
  std::string_view method_name;  // the method token as sent
  std::string_view target;       // the whole request-target as sent
  TargetForm form = TargetForm::origin;
  // Parts of the target, still percent-encoded. origin: path, query. absolute: scheme,
  // authority, path (may be empty), query. authority: authority. asterisk: path is "*".
  std::string_view scheme;
  std::string_view authority;
  std::string_view path;
  std::string_view query;  // after '?', without it; empty when there is none
  bool has_query = false;  // '?' present (an empty query "/a?" is not the same as none)
  Version version = Version::http11;
  std::span<const Header> headers;  // every field line in wire order, in the caller's array
  std::string_view host;            // the Host value (empty when absent or empty)
  bool has_host = false;
  BodyKind body = BodyKind::none;
  std::uint64_t content_length = 0;  // BodyKind::length only
  // RFC 9112 §9.3: HTTP/1.1 keeps the connection unless "Connection: close"; HTTP/1.0
  // closes unless "Connection: keep-alive". Also false when a lenient parse (Config) saw
  // a framing conflict the connection must not outlive.
  bool keep_alive = true;
  bool connection_close = false;  // "close" among the Connection tokens
  bool upgrade = false;           // "upgrade" among the Connection tokens
  // HTTP/1.1 "Expect: 100-continue": the client waits for "100 Continue" (or a final
  // status) before sending the body. Always false for HTTP/1.0 (RFC 9110 §10.1.1).
  bool expect_continue = false;
};

// The first field line named `name` (ASCII case-insensitive), or null.
const Header* find_header(std::span<const Header> headers, std::string_view name) noexcept;

// ASCII case-insensitive equality (field names, tokens).
bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace weft::http
