// The table of malformed and smuggling requests: each refused with its error and status, at
// the same stream offset whatever the split; the lenient Config flags in both modes.
#include <weft/http/parser.h>

#include <gtest/gtest.h>

#include <string>

#include "parse_driver.h"

namespace weft::http {
namespace {

using test::Outcome;
using test::parse;
using test::parse_everywhere;
using namespace std::string_view_literals;

struct Bad {
  const char* name;
  std::string_view input;
  http_errc error;
  std::uint16_t status;
  // Expected stream offset just past the offending byte; 0: not checked.
  std::size_t offset = 0;
};

// H: a valid HTTP/1.1 prefix with Host, to keep the lines short.
#define H "GET / HTTP/1.1\r\nHost: a\r\n"
#define P "POST / HTTP/1.1\r\nHost: a\r\n"

const Bad kBad[] = {
    // Request smuggling shapes (RFC 9112 §6.1, §6.3, §11.2).
    {"CL with TE", P "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
     http_errc::content_length_with_transfer_encoding, 400},
    {"TE with CL", P "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
     http_errc::content_length_with_transfer_encoding, 400},
    {"differing CL", P "Content-Length: 3\r\nContent-Length: 4\r\n\r\n",
     http_errc::content_length_mismatch, 400},
    {"CL list", P "Content-Length: 3, 3\r\n\r\n", http_errc::bad_content_length, 400},
    {"CL sign", P "Content-Length: +3\r\n\r\n", http_errc::bad_content_length, 400},
    {"CL hex", P "Content-Length: 0x3\r\n\r\n", http_errc::bad_content_length, 400},
    {"CL empty", P "Content-Length:\r\n\r\n", http_errc::bad_content_length, 400},
    {"CL inner space", P "Content-Length: 1 2\r\n\r\n", http_errc::bad_content_length, 400},
    {"CL overflow", P "Content-Length: 99999999999999999999999\r\n\r\n",
     http_errc::bad_content_length, 400},
    {"TE last not chunked", P "Transfer-Encoding: chunked, gzip\r\n\r\n",
     http_errc::bad_transfer_encoding, 400},
    {"TE not chunked", P "Transfer-Encoding: gzip\r\n\r\n", http_errc::bad_transfer_encoding, 400},
    {"TE chunked twice", P "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
     http_errc::bad_transfer_encoding, 400},
    {"TE chunked then other line", P "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
     http_errc::bad_transfer_encoding, 400},
    {"TE chunked params", P "Transfer-Encoding: chunked;a=b\r\n\r\n",
     http_errc::bad_transfer_encoding, 400},
    {"TE empty", P "Transfer-Encoding: \r\n\r\n", http_errc::bad_transfer_encoding, 400},
    {"TE junk", P "Transfer-Encoding: \"chunked\"\r\n\r\n", http_errc::bad_transfer_encoding, 400},
    {"TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
     http_errc::bad_transfer_encoding, 400},
    {"TE gzip chunked", P "Transfer-Encoding: gzip, chunked\r\n\r\n",
     http_errc::unsupported_transfer_coding, 501},
    {"space before colon", P "Content-Length : 3\r\n\r\nabc", http_errc::bad_header_name, 400, 41},
    {"tab before colon", P "Transfer-Encoding\t: chunked\r\n\r\n", http_errc::bad_header_name, 400},
    {"obs-fold", H "X-A: 1\r\n 2\r\n\r\n", http_errc::obs_fold, 400, 34},
    {"obs-fold tab", H "X-A: 1\r\n\t2\r\n\r\n", http_errc::obs_fold, 400},
    {"whitespace after request line", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", http_errc::obs_fold,
     400, 17},
    {"bare CR in value", H "X-A: 1\r2\r\n\r\n", http_errc::bare_cr, 400, 33},
    {"bare CR request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", http_errc::bare_cr, 400, 16},
    {"bare CR final", H "\rX", http_errc::bare_cr, 400},
    {"bare LF in value", H "X-A: 1\n\r\n", http_errc::bare_lf, 400},
    {"bare LF line", H "\n", http_errc::bare_lf, 400},
    {"bare LF request line", "GET / HTTP/1.1\n", http_errc::bad_version, 400},
    {"leading bare LF", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::bare_lf, 400, 1},
    {"NUL in value", H "X-A: a\0b\r\n\r\n"sv, http_errc::bad_header_value, 400, 32},
    {"NUL in name", H "X\0A: 1\r\n\r\n"sv, http_errc::bad_header_name, 400},
    {"NUL in target", "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"sv, http_errc::bad_target, 400, 7},
    {"DEL in value", H "X-A: \x7f\r\n\r\n", http_errc::bad_header_value, 400},
    {"control in value", H "X-A: \x01\r\n\r\n", http_errc::bad_header_value, 400},
    {"bad name char", H "X(A): 1\r\n\r\n", http_errc::bad_header_name, 400},
    {"empty name", H ": 1\r\n\r\n", http_errc::bad_header_name, 400},
    {"no colon", H "X-A\r\n\r\n", http_errc::bad_header_name, 400},
    {"missing Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", http_errc::missing_host, 400, 24},
    {"duplicate Host", H "Host: b\r\n\r\n", http_errc::duplicate_host, 400},
    {"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", http_errc::bad_host, 400},
    {"Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", http_errc::bad_host, 400},
    // The request line.
    {"HTTP/0.9", "GET /\r\n", http_errc::http09, 400, 6},
    {"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", http_errc::bad_version, 400, 7},
    {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", http_errc::version_not_supported, 505, 14},
    {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", http_errc::version_not_supported, 505},
    {"HTTP/1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", http_errc::bad_version, 400},
    {"version trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", http_errc::bad_version, 400},
    {"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::bad_target, 400, 5},
    {"tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::bad_method, 400, 4},
    {"leading space", " GET / HTTP/1.1\r\n", http_errc::bad_method, 400, 1},
    {"unknown method", "BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::unknown_method, 501, 5},
    {"lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::unknown_method, 501},
    {"method bad char", "GE@T / HTTP/1.1\r\n", http_errc::bad_method, 400, 3},
    {"target space in path", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::bad_version, 400},
    {"target fragment", "GET /a#f HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::bad_target, 400},
    {"target bad percent", "GET /a%2 HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::bad_target, 400},
    {"target bad percent hex", "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::bad_target, 400},
    {"target non-ASCII", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::bad_target,
     400},
    {"target relative", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::bad_target, 400},
    {"asterisk not OPTIONS", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::bad_target, 400},
    {"CONNECT origin", "CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::bad_target, 400},
    {"CONNECT no port", "CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::bad_target,
     400},
    {"CONNECT userinfo", "CONNECT u@h:1 HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::bad_target, 400},
    {"absolute no authority", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", http_errc::bad_target,
     400},
    {"unsupported expectation", H "Expect: 200-ok\r\n\r\n", http_errc::expectation_failed, 417},
    // Chunked framing (RFC 9112 §7.1).
    {"chunk size not hex", P "Transfer-Encoding: chunked\r\n\r\nz\r\n", http_errc::bad_chunk, 400},
    {"chunk size empty", P "Transfer-Encoding: chunked\r\n\r\n\r\n", http_errc::bad_chunk, 400},
    {"chunk size sign", P "Transfer-Encoding: chunked\r\n\r\n-1\r\n", http_errc::bad_chunk, 400},
    {"chunk size 0x", P "Transfer-Encoding: chunked\r\n\r\n0x5\r\n", http_errc::bad_chunk, 400},
    {"chunk size 17 digits", P "Transfer-Encoding: chunked\r\n\r\n00000000000000001\r\n",
     http_errc::bad_chunk, 400},
    {"chunk size trailing space", P "Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
     http_errc::bad_chunk, 400},
    {"chunk data too long", P "Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n",
     http_errc::bad_chunk, 400},
    {"chunk data LF only", P "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n",
     http_errc::bad_chunk, 400},
    {"chunk line bare LF", P "Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n", http_errc::bad_chunk,
     400},
    {"chunk line bare CR", P "Transfer-Encoding: chunked\r\n\r\n3\rabc\r\n", http_errc::bare_cr,
     400},
    {"chunk ext control", P "Transfer-Encoding: chunked\r\n\r\n3;\x01\r\nabc\r\n",
     http_errc::bad_chunk, 400},
    {"trailer obs-fold", P "Transfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\n 2\r\n\r\n",
     http_errc::obs_fold, 400},
    {"trailer bad name", P "Transfer-Encoding: chunked\r\n\r\n0\r\nA B: 1\r\n\r\n",
     http_errc::bad_header_name, 400},
    {"trailer NUL", P "Transfer-Encoding: chunked\r\n\r\n0\r\nA: \0\r\n\r\n"sv,
     http_errc::bad_header_value, 400},
    {"trailer bare CR", P "Transfer-Encoding: chunked\r\n\r\n0\r\n\rx", http_errc::bare_cr, 400},
};

#undef H
#undef P

TEST(HttpStrict, MalformedAndSmugglingTable) {
  for (const Bad& b : kBad) {
    SCOPED_TRACE(b.name);
    const Outcome o = parse_everywhere({}, b.input);
    EXPECT_EQ(o.error, b.error) << b.name << ": got " << o.error.message();
    EXPECT_EQ(status(o.error), b.status) << b.name;
    if (b.offset != 0) {
      EXPECT_EQ(o.error_offset, b.offset) << b.name;
    }
    // Nothing of a refused request reaches the caller as complete.
    for (const test::Got& g : o.requests) {
      EXPECT_FALSE(g.complete && &g == &o.requests.back()) << b.name;
    }
  }
}

TEST(HttpStrict, EveryErrorHasTextAndStatus) {
  for (int v = 1; v <= static_cast<int>(http_errc::buffer_too_small); ++v) {
    const std::error_code ec = static_cast<http_errc>(v);
    EXPECT_STREQ(ec.category().name(), "weft.http");
    EXPECT_NE(ec.message(), "unknown weft.http error") << v;
    EXPECT_NE(status(ec), 0) << v;
  }
  EXPECT_EQ(status(http_errc::request_line_too_long), 414);
  EXPECT_EQ(status(http_errc::too_many_headers), 431);
  EXPECT_EQ(status(http_errc::no_storage), 500);
  EXPECT_EQ(status(std::error_code()), 0);
  EXPECT_EQ(status(std::make_error_code(std::errc::io_error)), 500);
}

TEST(HttpStrict, LenientUnknownMethods) {
  const std::string_view s = "BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(parse({}, s).error, http_errc::unknown_method);
  Config c;
  c.accept_unknown_methods = true;
  const Outcome o = parse_everywhere(c, s);
  ASSERT_FALSE(o.error);
  EXPECT_EQ(o.requests[0].m, Method::other);
  EXPECT_EQ(o.requests[0].method, "BREW");
  // Still a token: a bad byte is a bad method, not an unknown one.
  EXPECT_EQ(parse(c, "BR{EW / HTTP/1.1\r\n").error, http_errc::bad_method);
}

TEST(HttpStrict, LenientTransferEncodingWithContentLength) {
  const std::string_view s =
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n";
  EXPECT_EQ(parse({}, s).error, http_errc::content_length_with_transfer_encoding);
  Config c;
  c.allow_te_with_content_length = true;
  const Outcome o = parse_everywhere(c, s);
  ASSERT_FALSE(o.error);
  EXPECT_EQ(o.requests[0].body_kind, BodyKind::chunked);
  EXPECT_EQ(o.requests[0].body, "abc");
  EXPECT_FALSE(o.requests[0].keep_alive) << "the connection must close after it";
  // The other refusals stay: differing lengths, chunked not last.
  EXPECT_EQ(parse(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
                .error,
            http_errc::content_length_mismatch);
  EXPECT_EQ(parse(c,
                  "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                  "Transfer-Encoding: gzip\r\n\r\n")
                .error,
            http_errc::bad_transfer_encoding);
}

TEST(HttpStrict, IdenticalDuplicateContentLengthIsAccepted) {
  const Outcome o = parse_everywhere({},
                                     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
                                     "content-length: 02\r\n\r\nok");
  ASSERT_FALSE(o.error);
  EXPECT_EQ(o.requests[0].body, "ok");
}

TEST(HttpStrict, ErrorAfterAValidRequestKeepsIt) {
  const Outcome o = parse_everywhere({}, "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n");
  ASSERT_EQ(o.requests.size(), 1u);
  EXPECT_TRUE(o.requests[0].complete);
  EXPECT_EQ(o.error, http_errc::missing_host);
  EXPECT_EQ(o.error_offset, 27u + 18u);
}

}  // namespace
}  // namespace weft::http
