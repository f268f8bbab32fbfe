// RequestParser — incremental, zero-copy, strict HTTP/1.1 request parser (RFC 9112).
//
// The decoder contract of weft/frame/decoder.h (STYLE point 6), with two more states because
// a request is not one frame but a head, body pieces and an end:
//
//   Decoded feed(std::span<const std::byte> in) noexcept;
//
//   need_more  Every byte was absorbed (consumed == in.size()); the caller may release `in`
//              (but see "Memory") and calls feed() again when more bytes arrive.
//   head       A request head is complete: request() views it. `consumed` counts the input
//              up to and including the head's final LF.
//   body       One piece of body (request body bytes after chunked decoding): body() views
//              it in `in`, always in place; `consumed` runs to the piece's last byte.
//   complete   The request is over (its body and trailers, if any, read). consumed may be 0.
//              The next feed() starts the next request (pipelining: its bytes may already
//              be in the same input).
//   error      The request is invalid; error() says why and status(error()) is the response.
//              `consumed` counts the input up to and including the offending byte (for a
//              rule that spans bytes — Host missing, Content-Length conflicts, Transfer-
//              Encoding rules — the byte that completes the evidence: the LF ending that
//              field line or the head). Sticky: every later feed() is {0, error} until reset().
//
// Each request yields exactly head, body*, complete — `complete` also for a request without
// a body — so the caller loops: feed(rest), act on the state, rest = rest.subspan(consumed),
// until need_more or error (not until `rest` is empty: `complete` may still be pending).
// Results and error offsets never depend on how the stream was split into feed() calls.
//
// Memory. The head (request line and field section) is parsed where it lies when it arrives
// whole in one feed() (the common case: no copy). When it spans feed() calls, the parser
// copies the part it has into the caller's assembly storage and appends each later feed's
// bytes to it, so the head is always contiguous; views then point into the assembly. The
// assembly never holds more than assembly_size(config) bytes, because the head limits fire
// first; it is needed only while assembling(), and set_assembly() may move it at any time
// (a server lends a shared scratch buffer and moves only split heads to storage of their own). Body
// bytes are never copied. Field lines go into the caller's header array (at least
// Config::max_headers entries), in wire order. request() views stay valid until the first
// feed() after `complete` (or reset()); body() until the next feed(). When they view the
// caller's input, the caller must keep those bytes alive for as long — the head's receive
// buffer until `complete`, if the handler keeps request() while the body streams.
//
// Strict by default (RFC 9112 / RFC 9110): see error.h for every refusal and its status. In
// short: one SP between request-line parts, CRLF line ends (bare CR, bare LF, obs-fold and
// whitespace before a colon refused), field names of tchar, field values without NUL or
// controls, request-target characters of RFC 3986 with valid %XX, HTTP/1.0 or HTTP/1.1 only
// (other versions 505, HTTP/0.9 400), Host required once in 1.1, Content-Length 1*DIGIT with
// identical duplicates only, no Content-Length with Transfer-Encoding, chunked last and once,
// no other transfer coding (501), chunk extensions and trailers syntax-checked and ignored.
// Empty lines before a request line are skipped (RFC 9112 §2.2). Leniency is opt-in: the
// Config flags below, each saying what it risks.
//
// Threading: a parser is a plain value owned by one connection on one thread. It never
// allocates and never throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

#include <weft/base/result.h>
#include <weft/http/error.h>
#include <weft/http/request.h>

namespace weft::http {

struct Config {
  // Request line (method SP target SP version), CRLF excluded. Crossed ->
  // request_line_too_long (414), reported at the first byte past the limit.
  std::uint32_t max_request_line = 4 * 1024;
  // Field section of the head: every field line with its CRLF plus the final CRLF. Also
  // bounds the trailer section of a chunked body. Crossed -> header_too_large (431).
  std::uint32_t max_header_bytes = 8 * 1024;
  // Field lines in the head (and in the trailers). The header array handed to set_storage()
  // must hold this many. Crossed -> too_many_headers (431), at the first byte of the extra line.
  std::uint16_t max_headers = 32;
  // Body bytes (after chunked decoding). A larger Content-Length -> body_too_large (413) at
  // that field line; a chunked body -> 413 at the chunk-size digit that crosses the limit, so
  // a streamed body is cut off at the limit, never after it.
  std::uint64_t max_body_size = 1024 * 1024;
  // Bytes after the chunk size on one chunk line (whitespace and extensions). Crossed ->
  // chunk_ext_too_long (400). Extensions are ignored; this only bounds the work.
  std::uint32_t max_chunk_ext = 256;
  // (The head is addressed by 32-bit offsets: keep max_request_line + max_header_bytes under
  // 4 GiB; the defaults need 12 KiB.)

  // Leniency (all off: strict). Each is a risk worth stating.
  // Accept any well-formed method token as Method::other instead of 501. Safe for the parser;
  // the handler must then refuse what it does not know.
  bool accept_unknown_methods = false;
  // Accept Content-Length together with Transfer-Encoding: chunked, framing by chunked and
  // ignoring Content-Length (RFC 9112 §6.3 item 3 allows it). RISK: this is the classic
  // request-smuggling shape when a proxy in front frames by Content-Length. The request's
  // keep_alive is forced false, so the connection closes after it (as §6.3 requires).
  bool allow_te_with_content_length = false;
};

// Assembly storage a configuration needs: the longest head it can accept, plus the one byte
// past it that a limit fires at (without room for that byte a head filling the limits
// exactly would wait for more input instead of failing).
constexpr std::size_t assembly_size(const Config& c) noexcept {
  return std::size_t{c.max_request_line} + 2 + c.max_header_bytes + 1;
}

enum class DecodeState : std::uint8_t { need_more = 0, head, body, complete, error };

// What one feed() call did. `consumed` is meaningful in every state (see above).
struct [[nodiscard]] Decoded {
  std::size_t consumed = 0;
  DecodeState state = DecodeState::need_more;
};

class RequestParser {
 public:
  explicit RequestParser(Config config = {}) noexcept : config_(config) {}

  // Sets the caller's storage: the header array (>= max_headers entries) and the assembly
  // for heads that span feed() calls (>= assembly_size(config)). The parser writes both
  // during feed() and request() views them; the caller keeps them alive and untouched while
  // the parser uses them. Call before the first feed(), or after reset(). Errors:
  // buffer_too_small (the previous storage, if any, is kept).
  [[nodiscard]] Result<void> set_storage(std::span<Header> headers,
                                         std::span<char> assembly) noexcept;

  // The contract above. Errors (sticky): every http_errc of the 400, 413, 414, 417, 431, 501
  // and 505 groups except truncated and bad_percent_encoding; no_storage without storage.
  [[nodiscard]] Decoded feed(std::span<const std::byte> in) noexcept;
  [[nodiscard]] Decoded feed(std::string_view in) noexcept {
    return feed(std::as_bytes(std::span<const char>(in.data(), in.size())));
  }

  // The peer closed its side. Ok between requests; inside one -> truncated (sticky). After
  // an error: that error.
  [[nodiscard]] Result<void> finish() noexcept;

  // Forgets any partial request and any error; keeps configuration and storage.
  void reset() noexcept;

  // The current request: meaningful from `head` until the next request starts.
  [[nodiscard]] const Request& request() const noexcept { return request_; }
  // The body piece of the last `body` result; empty otherwise.
  [[nodiscard]] std::string_view body() const noexcept { return body_; }
  // The sticky error, or an empty std::error_code.
  [[nodiscard]] std::error_code error() const noexcept;
  // True from the first byte of a request line until its last byte has been read (what a
  // read timeout and finish() care about); false while only `complete` is still to report.
  [[nodiscard]] bool mid_message() const noexcept;
  // True while the assembly storage holds the current head: from the feed() that found the
  // head spanning inputs until `complete` (or reset()). Only then does the parser need it —
  // and request() views it: a caller that takes the storage back at `complete` must be done
  // with request() by then.
  [[nodiscard]] bool assembling() const noexcept { return assembled_; }

  // Replaces the assembly storage (>= assembly_size(config), else buffer_too_small and the old
  // one is kept). Allowed at any time: while assembling(), the held head bytes are copied
  // across and every view (request(), the header array) is re-pointed, so the old storage is
  // free when this returns. This lets a server lend one per-worker scratch buffer to every
  // feed() and move a connection's head into a buffer of its own only when assembling() turns
  // true after a feed (the rare split head), and give that back at `complete`: no
  // per-connection assembly memory in the common case.
  [[nodiscard]] Result<void> set_assembly(std::span<char> assembly) noexcept;

  [[nodiscard]] const Config& config() const noexcept { return config_; }

 private:
  enum class Phase : std::uint8_t;
  enum class Head : std::uint8_t;
  enum class Scan : std::uint8_t { more, done, fail };

  // Per-request state, reset as a whole when a request line starts.
  struct Message {
    std::uint32_t method_end = 0;
    std::uint32_t target_begin = 0;
    std::uint32_t target_end = 0;
    std::uint32_t version_begin = 0;
    std::uint32_t section_begin = 0;  // first byte of the field section
    std::uint32_t line_begin = 0;     // current field line
    std::uint32_t name_end = 0;
    std::uint32_t value_begin = 0;
    std::uint32_t value_end = 0;
    std::uint32_t scheme_end = 0;  // target parts (end_target())
    std::uint32_t authority_begin = 0;
    std::uint32_t authority_end = 0;
    std::uint32_t path_begin = 0;
    std::uint32_t path_end = 0;
    TargetForm form = TargetForm::origin;
    bool has_query = false;
    std::uint16_t count = 0;  // field lines stored
    std::int32_t host_index = -1;
    Method method = Method::other;
    Version version = Version::http11;
    bool cl_seen = false;
    bool te_seen = false;
    bool te_chunked = false;  // chunked seen (it must be the last coding)
    bool te_other = false;    // a coding other than chunked seen
    bool close = false;
    bool keep_alive_token = false;
    bool upgrade = false;
    bool expect_continue = false;
    std::uint64_t content_length = 0;
  };

  Decoded fail(http_errc e, std::size_t consumed) noexcept;
  void rebase(const char* to) noexcept;
  Decoded feed_head(const char* p, std::size_t n, std::size_t used) noexcept;
  Scan scan_head(std::size_t end) noexcept;
  bool end_target() noexcept;
  http_errc end_field() noexcept;
  http_errc transfer_encoding(std::string_view value) noexcept;
  http_errc end_head() noexcept;
  http_errc framing_byte(char c) noexcept;
  http_errc trailer_byte(char c) noexcept;

  Config config_;
  std::span<Header> headers_;
  std::span<char> assembly_;
  bool has_storage_ = false;
  bool assembled_ = false;
  Phase phase_{};
  Head head_state_{};
  http_errc error_{};
  const char* base_ = nullptr;  // first byte of the head (input or assembly)
  std::size_t pos_ = 0;         // head bytes scanned, from base_
  Message msg_;
  Request request_;
  std::string_view body_;
  std::uint64_t remaining_ = 0;   // body bytes left (Content-Length, or current chunk)
  std::uint64_t body_total_ = 0;  // chunked: body bytes announced so far
  std::uint64_t chunk_size_ = 0;
  std::uint32_t counter_ = 0;  // chunk extension bytes, or trailer section bytes
  std::uint16_t trailers_ = 0;
};

}  // namespace weft::http
