// RequestParser: well-formed requests at every split point and byte by byte (at a guard
// page), pipelining, bodies, keep-alive, target forms, storage and finish().
#include <weft/http/parser.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <weft/base/alloc_counter.h>

#include "parse_driver.h"
#include "sample_requests.h"

namespace weft::http {
namespace {

using test::Got;
using test::Outcome;
using test::parse;
using test::parse_everywhere;

using test::kBrowser;
using test::kPlaintext;

TEST(HttpParser, BrowserRequestEverywhere) {
  const Outcome o = parse_everywhere({}, kBrowser);
  ASSERT_FALSE(o.error) << o.error.message();
  ASSERT_EQ(o.requests.size(), 1u);
  const Got& g = o.requests[0];
  EXPECT_EQ(g.m, Method::get);
  EXPECT_EQ(g.method, "GET");
  EXPECT_EQ(g.target, "/wiki/Special:Search?search=weft&go=Go");
  EXPECT_EQ(g.form, TargetForm::origin);
  EXPECT_EQ(g.path, "/wiki/Special:Search");
  EXPECT_EQ(g.query, "search=weft&go=Go");
  EXPECT_TRUE(g.has_query);
  EXPECT_EQ(g.version, Version::http11);
  EXPECT_EQ(g.host, "en.wikipedia.org");
  EXPECT_EQ(g.headers.size(), 13u);
  EXPECT_EQ(g.headers[2].first, "Accept");
  EXPECT_EQ(g.headers[2].second, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
  EXPECT_EQ(g.body_kind, BodyKind::none);
  EXPECT_TRUE(g.keep_alive);
  EXPECT_TRUE(g.complete);
  EXPECT_FALSE(o.finish_error);
  EXPECT_EQ(o.in_place, 1u);
}

TEST(HttpParser, TechEmpowerPlaintextEverywhere) {
  const Outcome o = parse_everywhere({}, kPlaintext);
  ASSERT_FALSE(o.error) << o.error.message();
  ASSERT_EQ(o.requests.size(), 1u);
  EXPECT_EQ(o.requests[0].path, "/plaintext");
  EXPECT_EQ(o.requests[0].host, "localhost");
  EXPECT_EQ(o.requests[0].headers.size(), 3u);
  EXPECT_TRUE(o.requests[0].keep_alive);
  EXPECT_EQ(kBrowser.size(), 586u);
  EXPECT_EQ(kPlaintext.size(), 164u);
}

TEST(HttpParser, HeadInOneFeedIsViewedInPlaceElseAssembled) {
  EXPECT_EQ(test::parse(Config{}, kBrowser).in_place, 1u);
  const Outcome split = test::parse_split(Config{}, kBrowser, {10});
  EXPECT_EQ(split.assembled, 1u);
  EXPECT_EQ(split.in_place, 0u);
}

// A server's use of set_assembly(): a shared scratch buffer for every feed, a buffer of the
// connection's own only once a head spans feeds, moved mid-head and again mid-body.
TEST(HttpParser, SetAssemblyMovesASplitHead) {
  Config c;
  std::vector<Header> headers(c.max_headers);
  std::vector<char> scratch(assembly_size(c));
  std::vector<char> own(assembly_size(c));
  std::vector<char> later(assembly_size(c));
  RequestParser p(c);
  ASSERT_TRUE(p.set_storage(headers, scratch).ok());
  const std::string s =
      "POST /a?b=c HTTP/1.1\r\nHost: h\r\nX-Long: value\r\nContent-Length: 4\r\n\r\nbody";
  const std::size_t cut1 = 40;  // inside X-Long (two fields stored already)
  Decoded d = p.feed(std::string_view(s).substr(0, cut1));
  ASSERT_EQ(d.state, DecodeState::need_more);
  ASSERT_TRUE(p.assembling());
  ASSERT_TRUE(p.set_assembly(own).ok());
  std::fill(scratch.begin(), scratch.end(), '#');  // the scratch is free again
  const std::size_t body_at = s.size() - 4;
  d = p.feed(std::string_view(s).substr(cut1, body_at + 2 - cut1));
  ASSERT_EQ(d.state, DecodeState::head);
  EXPECT_EQ(d.consumed, body_at - cut1);
  EXPECT_EQ(p.request().path.data(), own.data() + 5);
  // Moved again while the body streams: request() follows.
  EXPECT_EQ(p.set_assembly(std::span<char>(later.data(), 10)).error(), http_errc::buffer_too_small);
  ASSERT_TRUE(p.set_assembly(later).ok());
  std::fill(own.begin(), own.end(), '#');
  const Request& r = p.request();
  EXPECT_EQ(r.method_name, "POST");
  EXPECT_EQ(r.target, "/a?b=c");
  EXPECT_EQ(r.path, "/a");
  EXPECT_EQ(r.query, "b=c");
  EXPECT_EQ(r.host, "h");
  ASSERT_EQ(r.headers.size(), 3u);
  EXPECT_EQ(r.headers[1].name, "X-Long");
  EXPECT_EQ(r.headers[1].value, "value");
  EXPECT_EQ(r.headers[2].value, "4");
  d = p.feed(std::string_view(s).substr(body_at, 2));
  ASSERT_EQ(d.state, DecodeState::body);
  EXPECT_EQ(p.body(), "bo");
  d = p.feed(std::string_view(s).substr(body_at + 2));
  ASSERT_EQ(d.state, DecodeState::body);
  EXPECT_TRUE(p.assembling());
  d = p.feed(std::string_view());
  ASSERT_EQ(d.state, DecodeState::complete);
  EXPECT_FALSE(p.assembling()) << "the connection's buffer can go back";
}

TEST(HttpParser, PipelinedRequestsWithBodies) {
  const std::string s =
      "\r\n"  // a stray empty line before a request is skipped (RFC 9112 §2.2)
      "POST /upload?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"
      "PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=value;q=\"quoted\"\r\nhello\r\n"
      "A \t; ext\r\n0123456789\r\n"
      "0\r\nTrailer-One: x\r\nTrailer-Two:\r\n\r\n"
      "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
      "DELETE /x HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  const Outcome o = parse_everywhere({}, s);
  ASSERT_FALSE(o.error) << o.error.message();
  ASSERT_EQ(o.requests.size(), 4u);
  EXPECT_EQ(o.requests[0].m, Method::post);
  EXPECT_EQ(o.requests[0].body_kind, BodyKind::length);
  EXPECT_EQ(o.requests[0].content_length, 11u);
  EXPECT_EQ(o.requests[0].body, "hello world");
  EXPECT_EQ(o.requests[1].m, Method::put);
  EXPECT_EQ(o.requests[1].body_kind, BodyKind::chunked);
  EXPECT_EQ(o.requests[1].body, "hello0123456789");
  EXPECT_EQ(o.requests[2].version, Version::http10);
  EXPECT_FALSE(o.requests[2].has_host);
  EXPECT_TRUE(o.requests[2].keep_alive);
  EXPECT_EQ(o.requests[3].m, Method::delete_);
  EXPECT_EQ(o.requests[3].body_kind, BodyKind::length);
  EXPECT_FALSE(o.requests[3].keep_alive);
  EXPECT_TRUE(o.requests[3].close);
  for (const Got& g : o.requests) {
    EXPECT_TRUE(g.complete);
  }
  EXPECT_FALSE(o.finish_error);
}

TEST(HttpParser, KeepAliveDecision) {
  struct Case {
    std::string_view head;
    bool keep_alive;
  };
  const Case cases[] = {
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", false},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: foo,  Keep-Alive \r\n\r\n", true},
  };
  for (const Case& c : cases) {
    const Outcome o = parse({}, c.head);
    ASSERT_EQ(o.requests.size(), 1u) << c.head;
    EXPECT_EQ(o.requests[0].keep_alive, c.keep_alive) << c.head;
  }
}

TEST(HttpParser, FieldValuesAreTrimmedAndKeptInOrder) {
  const Outcome o = parse_everywhere(
      {},
      "GET / HTTP/1.1\r\nHost:a\r\nX-Empty:\r\nX-Pad: \t v a l \t \r\nx-obs: caf\xc3\xa9\r\n\r\n");
  ASSERT_FALSE(o.error);
  const auto& h = o.requests[0].headers;
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[0], (std::pair<std::string, std::string>{"Host", "a"}));
  EXPECT_EQ(h[1], (std::pair<std::string, std::string>{"X-Empty", ""}));
  EXPECT_EQ(h[2], (std::pair<std::string, std::string>{"X-Pad", "v a l"}));
  EXPECT_EQ(h[3].second, "caf\xc3\xa9");
}

TEST(HttpParser, ExpectContinueUpgradeAndHead) {
  Outcome o = parse(
      {}, "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_FALSE(o.error);
  EXPECT_TRUE(o.requests[0].expect_continue);
  EXPECT_EQ(o.requests[0].body, "ok");
  // RFC 9110 §10.1.1: ignored in HTTP/1.0, whatever it says.
  o = parse({}, "POST /x HTTP/1.0\r\nExpect: 100-continue\r\nExpect: nonsense\r\n\r\n");
  ASSERT_FALSE(o.error);
  EXPECT_FALSE(o.requests[0].expect_continue);
  o = parse({},
            "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_TRUE(o.requests[0].upgrade);
  o = parse({}, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(o.requests[0].m, Method::head);
  EXPECT_EQ(to_string(Method::head), "HEAD");
}

TEST(HttpParser, TargetForms) {
  Outcome o =
      parse_everywhere({}, "GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_FALSE(o.error);
  EXPECT_EQ(o.requests[0].form, TargetForm::absolute);
  EXPECT_EQ(o.requests[0].scheme, "http");
  EXPECT_EQ(o.requests[0].authority, "example.com:8080");
  EXPECT_EQ(o.requests[0].path, "/a/b");
  EXPECT_EQ(o.requests[0].query, "c=d");
  o = parse({}, "GET https://h HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(o.requests[0].authority, "h");
  EXPECT_EQ(o.requests[0].path, "");
  o = parse_everywhere({}, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  ASSERT_FALSE(o.error);
  EXPECT_EQ(o.requests[0].form, TargetForm::authority);
  EXPECT_EQ(o.requests[0].authority, "example.com:443");
  o = parse({}, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_FALSE(o.error);
  EXPECT_EQ(o.requests[0].form, TargetForm::asterisk);
  o = parse({}, "GET /a? HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_TRUE(o.requests[0].has_query);
  EXPECT_EQ(o.requests[0].query, "");
  o = parse({}, "GET /%7Euser/a%20b HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(o.requests[0].path, "/%7Euser/a%20b");
}

TEST(HttpParser, EmptyHostIsPresentInHttp11) {
  const Outcome o = parse({}, "GET / HTTP/1.1\r\nHost:\r\n\r\n");
  ASSERT_FALSE(o.error);
  EXPECT_TRUE(o.requests[0].has_host);
  EXPECT_EQ(o.requests[0].host, "");
}

TEST(HttpParser, FinishBetweenAndInsideRequests) {
  Outcome o = parse({}, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_FALSE(o.finish_error);
  o = parse({}, "GET / HTTP/1.1\r\nHost: a\r\n");
  EXPECT_EQ(o.finish_error, http_errc::truncated);
  o = parse({}, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabc");
  EXPECT_EQ(o.requests[0].body, "abc");
  EXPECT_FALSE(o.requests[0].complete);
  EXPECT_EQ(o.finish_error, http_errc::truncated);
  o = parse({}, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
  EXPECT_EQ(o.finish_error, http_errc::truncated);
  EXPECT_EQ(status(o.finish_error), 400);
}

TEST(HttpParser, StorageIsRequiredAndChecked) {
  Config c;
  RequestParser p(c);
  EXPECT_EQ(p.feed(std::string_view("GET")).state, DecodeState::error);
  EXPECT_EQ(p.error(), http_errc::no_storage);
  p.reset();
  std::vector<Header> few(c.max_headers - 1);
  std::vector<Header> headers(c.max_headers);
  std::vector<char> small(assembly_size(c) - 1);
  std::vector<char> assembly(assembly_size(c));
  EXPECT_EQ(p.set_storage(few, assembly).error(), http_errc::buffer_too_small);
  EXPECT_EQ(p.set_storage(headers, small).error(), http_errc::buffer_too_small);
  ASSERT_TRUE(p.set_storage(headers, assembly).ok());
  const Decoded d = p.feed(std::string_view("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(d.state, DecodeState::head);
}

TEST(HttpParser, ErrorsAreStickyUntilReset) {
  test::Fixture f;
  const Decoded d = f.parser.feed(std::string_view("GET / HTTP/1.1\r\nHost: a\r\n\r"));
  EXPECT_EQ(d.state, DecodeState::need_more);
  const Decoded e = f.parser.feed(std::string_view("x"));
  EXPECT_EQ(e.state, DecodeState::error);
  EXPECT_EQ(e.consumed, 1u);
  EXPECT_EQ(f.parser.error(), http_errc::bare_cr);
  EXPECT_EQ(f.parser.feed(std::string_view("GET")).consumed, 0u);
  EXPECT_EQ(f.parser.finish().error(), http_errc::bare_cr);
  f.parser.reset();
  EXPECT_FALSE(f.parser.error());
  EXPECT_FALSE(f.parser.mid_message());
  EXPECT_EQ(f.parser.feed(std::string_view("GET / HTTP/1.1\r\nHost: a\r\n\r\n")).state,
            DecodeState::head);
}

// The parser never allocates: a pipelined stream, split everywhere, counted by the global
// allocator hook (skipped under sanitizers, where the counter is a stub).
TEST(HttpParser, NoAllocation) {
  if (!alloc::enabled()) {
    GTEST_SKIP() << "allocation counter disabled in this build";
  }
  const std::string_view s =
      "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
      "GET /b?x=1 HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\nhi";
  Config c;
  std::vector<Header> headers(c.max_headers);
  std::vector<char> assembly(assembly_size(c));
  RequestParser p(c);
  ASSERT_TRUE(p.set_storage(headers, assembly).ok());
  const std::uint64_t before = alloc::count();
  std::size_t events = 0;
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    p.reset();
    for (std::string_view part : {s.substr(0, cut), s.substr(cut)}) {
      while (true) {
        const Decoded d = p.feed(part);
        part.remove_prefix(d.consumed);
        if (d.state == DecodeState::need_more || d.state == DecodeState::error) {
          break;
        }
        ++events;
      }
    }
  }
  EXPECT_EQ(alloc::count(), before);
  EXPECT_GT(events, 0u);
}

}  // namespace
}  // namespace weft::http
