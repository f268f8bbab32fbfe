// Every Config limit: a request exactly at the limit passes, one byte (or line) more is
// refused with its status, at the first byte past the limit, whatever the split. Heads at
// the limits also fill the assembly storage exactly when split.
#include <weft/http/parser.h>

#include <gtest/gtest.h>

#include <string>

#include "parse_driver.h"

namespace weft::http {
namespace {

using test::Outcome;
using test::parse_everywhere;

Config small() {
  Config c;
  c.max_request_line = 64;
  c.max_header_bytes = 128;
  c.max_headers = 4;
  c.max_body_size = 100;
  c.max_chunk_ext = 16;
  return c;
}

TEST(HttpLimits, DefaultsSuitASmallBoard) {
  const Config c;
  EXPECT_EQ(c.max_request_line, 4096u);
  EXPECT_EQ(c.max_header_bytes, 8192u);
  EXPECT_EQ(c.max_headers, 32u);
  EXPECT_EQ(c.max_body_size, 1024u * 1024u);
  EXPECT_EQ(assembly_size(c), 4096u + 2 + 8192u + 1);
  EXPECT_FALSE(c.accept_unknown_methods);
  EXPECT_FALSE(c.allow_te_with_content_length);
}

std::string request_line(std::size_t len) {
  const std::string fixed = "GET / HTTP/1.1";
  return "GET /" + std::string(len - fixed.size(), 'a') + " HTTP/1.1";
}

TEST(HttpLimits, RequestLine414) {
  const Config c = small();
  const std::string at = request_line(c.max_request_line) + "\r\nHost: a\r\n\r\n";
  const Outcome ok = parse_everywhere(c, at);
  ASSERT_FALSE(ok.error) << ok.error.message();
  EXPECT_EQ(ok.requests[0].target.size(), c.max_request_line - 13u);
  const std::string over = request_line(c.max_request_line + 1) + "\r\nHost: a\r\n\r\n";
  const Outcome o = parse_everywhere(c, over);
  EXPECT_EQ(o.error, http_errc::request_line_too_long);
  EXPECT_EQ(status(o.error), 414);
  EXPECT_EQ(o.error_offset, c.max_request_line + 1u);
  // A hostile line without end is cut off at the limit too.
  EXPECT_EQ(parse_everywhere(c, "GET /" + std::string(200, 'a')).error_offset,
            c.max_request_line + 1u);
}

// A field section of exactly `bytes` bytes: Host, one padding field, the empty line.
std::string section(std::size_t bytes) {
  const std::string host = "Host: a\r\n";
  const std::size_t pad = bytes - host.size() - 2 - std::string("X: \r\n").size();
  return host + "X: " + std::string(pad, 'v') + "\r\n\r\n";
}

TEST(HttpLimits, HeaderBytes431) {
  const Config c = small();
  const std::string line = "GET / HTTP/1.1\r\n";
  const Outcome ok = parse_everywhere(c, line + section(c.max_header_bytes));
  ASSERT_FALSE(ok.error) << ok.error.message();
  const Outcome o = parse_everywhere(c, line + section(c.max_header_bytes + 1));
  EXPECT_EQ(o.error, http_errc::header_too_large);
  EXPECT_EQ(status(o.error), 431);
  EXPECT_EQ(o.error_offset, line.size() + c.max_header_bytes + 1);
  // Longest head of all: both limits at once, split everywhere through the assembly.
  const Outcome both =
      parse_everywhere(c, request_line(c.max_request_line) + "\r\n" + section(c.max_header_bytes));
  ASSERT_FALSE(both.error) << both.error.message();
  // ... and one byte more, the regression the fuzzer found (corpus/http_parser/
  // regress_split_head_limit): with the head split, the assembly must have room for the byte
  // the limit fires at, or the parser waits for input that never helps instead of failing.
  const std::string full = request_line(c.max_request_line) + "\r\nHost: a\r\nX: ";
  const std::string over_both = full + std::string(c.max_header_bytes, 'v');
  const Outcome ob = parse_everywhere(c, over_both);
  EXPECT_EQ(ob.error, http_errc::header_too_large);
  EXPECT_EQ(ob.error_offset, c.max_request_line + 2u + c.max_header_bytes + 1);
}

TEST(HttpLimits, HeaderCount431) {
  const Config c = small();
  std::string s = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int k = 1; k < c.max_headers; ++k) {
    s += "X: 1\r\n";
  }
  const Outcome ok = parse_everywhere(c, s + "\r\n");
  ASSERT_FALSE(ok.error);
  EXPECT_EQ(ok.requests[0].headers.size(), c.max_headers);
  const std::size_t extra = s.size();
  const Outcome o = parse_everywhere(c, s + "Y: 2\r\n\r\n");
  EXPECT_EQ(o.error, http_errc::too_many_headers);
  EXPECT_EQ(status(o.error), 431);
  EXPECT_EQ(o.error_offset, extra + 1);
}

TEST(HttpLimits, ContentLength413) {
  const Config c = small();
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ";
  const Outcome ok = parse_everywhere(c, head + "100\r\n\r\n" + std::string(100, 'b'));
  ASSERT_FALSE(ok.error);
  EXPECT_EQ(ok.requests[0].body.size(), 100u);
  const Outcome o = parse_everywhere(c, head + "101\r\n\r\n" + std::string(101, 'b'));
  EXPECT_EQ(o.error, http_errc::body_too_large);
  EXPECT_EQ(status(o.error), 413);
  EXPECT_EQ(o.error_offset, head.size() + 5) << "at the LF of the Content-Length line";
}

TEST(HttpLimits, ChunkedBodyIsCutOffAtTheLimit413) {
  const Config c = small();
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  // 0x32 + 0x32 = 100 bytes: exactly the limit.
  const std::string fifty(50, 'c');
  const Outcome ok =
      parse_everywhere(c, head + "32\r\n" + fifty + "\r\n32\r\n" + fifty + "\r\n0\r\n\r\n");
  ASSERT_FALSE(ok.error) << ok.error.message();
  EXPECT_EQ(ok.requests[0].body.size(), 100u);
  // 0x32 + 0x33: refused at the second digit of the second size, before any of its data.
  const std::string first = head + "32\r\n" + fifty + "\r\n";
  const Outcome o = parse_everywhere(c, first + "33\r\n" + fifty + "c\r\n0\r\n\r\n");
  EXPECT_EQ(o.error, http_errc::body_too_large);
  EXPECT_EQ(o.error_offset, first.size() + 2);
  EXPECT_EQ(o.requests[0].body.size(), 50u);
  // A huge size is refused at the digit that crosses, not parsed to the end.
  const Outcome h = parse_everywhere(c, head + "fffffffffff\r\n");
  EXPECT_EQ(h.error, http_errc::body_too_large);
  EXPECT_EQ(h.error_offset, head.size() + 2);
}

TEST(HttpLimits, ChunkExtensions400) {
  const Config c = small();
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string ext(c.max_chunk_ext - 1, 'e');
  const Outcome ok = parse_everywhere(c, head + "1;" + ext + "\r\nx\r\n0\r\n\r\n");
  ASSERT_FALSE(ok.error) << ok.error.message();
  const Outcome o = parse_everywhere(c, head + "1;" + ext + "e\r\nx\r\n0\r\n\r\n");
  EXPECT_EQ(o.error, http_errc::chunk_ext_too_long);
  EXPECT_EQ(status(o.error), 400);
  EXPECT_EQ(o.error_offset, head.size() + 1 + c.max_chunk_ext + 1);
}

TEST(HttpLimits, TrailersCountAgainstTheHeaderLimits) {
  const Config c = small();
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  // Trailer section of exactly max_header_bytes: "T: <pad>\r\n\r\n".
  const std::string pad(c.max_header_bytes - 7, 't');
  ASSERT_FALSE(parse_everywhere(c, head + "T: " + pad + "\r\n\r\n").error);
  const Outcome o = parse_everywhere(c, head + "T: " + pad + "t\r\n\r\n");
  EXPECT_EQ(o.error, http_errc::header_too_large);
  EXPECT_EQ(o.error_offset, head.size() + c.max_header_bytes + 1);
  std::string many;
  for (int k = 0; k <= c.max_headers; ++k) {
    many += "T: 1\r\n";
  }
  EXPECT_EQ(parse_everywhere(c, head + many + "\r\n").error, http_errc::too_many_headers);
}

}  // namespace
}  // namespace weft::http
