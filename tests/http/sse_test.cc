// weft::http::sse's encoder against the WHATWG event-stream algorithm (sse_parse.h): exact
// bytes for each field and line-end form, invalid fields, exact-fit and one-short buffers,
// comments, and round trips (encode -> parse gives the same data, type and id) over many
// generated strings full of CR, CRLF, LF, leading spaces and colons.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include <weft/http/sse.h>

#include "sse_parse.h"

namespace weft::http::sse {
namespace {

std::string enc(const Fields& f) {
  const std::size_t n = encoded_size(f);
  std::string out(n, '\0');
  EXPECT_EQ(encode(f, out), n);
  return out;
}

TEST(SseEncode, FieldsInOrderOneDataLinePerLine) {
  EXPECT_EQ(enc({"7", "tick", "hello", 0}), "id: 7\nevent: tick\ndata: hello\n\n");
  EXPECT_EQ(enc({{}, {}, "a\nb", 0}), "data: a\ndata: b\n\n");
  EXPECT_EQ(enc({{}, {}, "a\r\nb", 0}), "data: a\ndata: b\n\n");
  EXPECT_EQ(enc({{}, {}, "a\rb", 0}), "data: a\ndata: b\n\n");
  EXPECT_EQ(enc({{}, {}, "a\n\rb\r\n\r\nc", 0}), "data: a\ndata:\ndata: b\ndata:\ndata: c\n\n");
  EXPECT_EQ(enc({{}, {}, "x\n", 0}), "data: x\ndata:\n\n");
  EXPECT_EQ(enc({{}, {}, "x\r", 0}), "data: x\ndata:\n\n");
  EXPECT_EQ(enc({"1", {}, "d", 3000}), "id: 1\nretry: 3000\ndata: d\n\n");
  EXPECT_EQ(enc({{}, {}, " lead: colon", 0}), "data:  lead: colon\n\n");
}

TEST(SseEncode, EmptyDataIsOneEmptyDataLineAndStillDispatches) {
  EXPECT_EQ(enc({}), "data:\n\n");
  test::SseParser p;
  p.feed(enc({}));
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.events[0].data, "");
  EXPECT_EQ(p.events[0].type, "message");
}

TEST(SseEncode, InvalidIdAndEventAreRefused) {
  char out[64];
  for (const std::string_view bad : {"a\nb", "a\rb", "\r\n", "x\n"}) {
    EXPECT_EQ(encode({bad, {}, "d", 0}, out), 0u);
    EXPECT_EQ(encode({{}, bad, "d", 0}, out), 0u);
    EXPECT_EQ(encoded_size({bad, {}, "d", 0}), 0u);
  }
  const std::string nul("a\0b", 3);
  EXPECT_EQ(encode({nul, {}, "d", 0}, out), 0u) << "a client ignores an id with NUL";
  EXPECT_GT(encode({{}, nul, "d", 0}, out), 0u) << "NUL is allowed in an event type";
  EXPECT_GT(encode({{}, {}, nul, 0}, out), 0u) << "and in data";
  EXPECT_FALSE(valid_id(nul));
  EXPECT_TRUE(valid_event(nul));
}

TEST(SseEncode, ExactFitAndOneShort) {
  const Fields f{"e1-42", "upd", "one\r\ntwo\rthree\n", 15000};
  const std::string want = enc(f);
  ASSERT_EQ(want,
            "id: e1-42\nevent: upd\nretry: 15000\ndata: one\ndata: two\ndata: three\n"
            "data:\n\n");
  std::string out(want.size(), '#');
  EXPECT_EQ(encode(f, out), want.size());
  EXPECT_EQ(out, want);
  std::string shorter(want.size() - 1, '#');
  EXPECT_EQ(encode(f, shorter), want.size()) << "one short: the size needed";
  EXPECT_EQ(encode(f, std::span<char>()), want.size());
}

TEST(SseEncode, Comment) {
  char out[32];
  std::size_t n = comment("ping", out);
  EXPECT_EQ(std::string_view(out, n), ": ping\n\n");
  n = comment("", out);
  EXPECT_EQ(std::string_view(out, n), ":\n\n");
  EXPECT_EQ(comment("a\nb", out), 0u);
  EXPECT_EQ(comment("ping", std::span<char>(out, 7)), 8u);
  test::SseParser p;
  p.feed(": ping\n\n");
  EXPECT_TRUE(p.events.empty());
  EXPECT_EQ(p.comments, std::vector<std::string>{" ping"});
}

TEST(SseEncode, ErrorCategory) {
  const std::error_code e = make_error_code(sse_errc::slow_consumer);
  EXPECT_STREQ(e.category().name(), "weft.sse");
  EXPECT_EQ(e, sse_errc::slow_consumer);
  EXPECT_FALSE(e.message().empty());
}

// data as the client sees it: every line break becomes LF.
std::string normalised(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') {
        ++i;
      }
    } else {
      out += s[i];
    }
  }
  return out;
}

TEST(SseEncode, RoundTripsThroughTheReferenceParser) {
  std::mt19937 rng(15);
  const char alphabet[] = {'\r', '\n', ' ', ':', 'a', 'b', '\0', '\t', 'x'};
  const auto gen = [&](std::size_t max, bool line_breaks) {
    std::string s(rng() % (max + 1), ' ');
    for (char& ch : s) {
      do {
        ch = alphabet[rng() % sizeof alphabet];
      } while (!line_breaks && (ch == '\r' || ch == '\n' || ch == '\0'));
    }
    return s;
  };
  for (int i = 0; i < 20000; ++i) {
    Fields f;
    const std::string data = gen(24, true);
    const std::string id = gen(6, false);
    const std::string type = gen(6, false);
    f.data = data;
    f.id = id;
    f.event = type;
    f.retry_ms = rng() % 3 == 0 ? rng() % 100000 : 0;
    const std::string bytes = enc(f);
    // Fed whole and split at a random point (a CR then LF across two feeds).
    for (int split = 0; split < 2; ++split) {
      test::SseParser p;
      if (split == 0) {
        p.feed(bytes);
      } else {
        const std::size_t at = rng() % (bytes.size() + 1);
        p.feed(std::string_view(bytes).substr(0, at));
        p.feed(std::string_view(bytes).substr(at));
      }
      ASSERT_EQ(p.events.size(), 1u) << testing::PrintToString(bytes);
      EXPECT_EQ(p.events[0].data, normalised(data)) << testing::PrintToString(bytes);
      EXPECT_EQ(p.events[0].type, type.empty() ? "message" : type);
      EXPECT_EQ(p.events[0].last_id, id);
      EXPECT_EQ(p.events[0].has_id, !id.empty());
      EXPECT_EQ(p.retry, f.retry_ms);
    }
  }
}

TEST(SseEncode, StreamOfEventsKeepsEachOnesFields) {
  test::SseParser p;
  std::vector<std::string> datas = {"one", "", "two\r\n", "\r", "three"};
  for (std::size_t i = 0; i < datas.size(); ++i) {
    const std::string id = i % 2 == 0 ? std::to_string(i) : std::string();
    p.feed(enc({id, i == 3 ? "special" : "", datas[i], 0}));
  }
  ASSERT_EQ(p.events.size(), datas.size());
  EXPECT_EQ(p.events[1].last_id, "0") << "an event without id keeps the last event id";
  EXPECT_EQ(p.events[3].type, "special");
  EXPECT_EQ(p.events[4].type, "message") << "the type resets after each dispatch";
  EXPECT_EQ(p.events[2].data, "two\n");
  EXPECT_EQ(p.events[3].data, "\n");
}

}  // namespace
}  // namespace weft::http::sse
