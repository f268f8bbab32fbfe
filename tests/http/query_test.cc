// Query strings: pairs as views, find(), percent-decoding into a caller buffer; find_header.
#include <weft/http/query.h>

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include <weft/http/error.h>
#include <weft/http/request.h>

namespace weft::http {
namespace {

std::vector<std::pair<std::string, std::string>> pairs(std::string_view q) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const QueryParam& p : QueryParams(q)) {
    out.emplace_back(p.key, p.has_value ? std::string(p.value) : std::string("<none>"));
  }
  return out;
}

TEST(HttpQuery, SplitsPairs) {
  using V = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(pairs(""), V{});
  EXPECT_EQ(pairs("a=1&b=2"), (V{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(pairs("&&a=1&&flag&=x&c=&d=e=f&"),
            (V{{"a", "1"}, {"flag", "<none>"}, {"", "x"}, {"c", ""}, {"d", "e=f"}}));
}

TEST(HttpQuery, ViewsPointIntoTheQuery) {
  const std::string_view q = "key=value";
  const QueryIterator it = QueryParams(q).begin();
  EXPECT_EQ(it->key.data(), q.data());
  EXPECT_EQ(it->value.data(), q.data() + 4);
}

TEST(HttpQuery, Find) {
  const QueryParams q("search=weft&go=Go&empty&x=%20");
  EXPECT_EQ(q.find("go"), "Go");
  EXPECT_EQ(q.find("empty"), "");
  EXPECT_EQ(q.find("x"), "%20");
  EXPECT_FALSE(q.find("nope").has_value());
}

TEST(HttpQuery, PercentDecode) {
  char buf[32];
  Result<std::string_view> r = percent_decode("a%20b+c%2Fd%c3%A9", buf);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), "a b c/d\xc3\xa9");
  EXPECT_EQ(r.value().data(), buf);
  r = percent_decode("a+b", buf, PlusIs::literal);
  EXPECT_EQ(r.value(), "a+b");
  EXPECT_EQ(percent_decode("", buf).value(), "");
  for (std::string_view bad : {"%", "%2", "a%2", "%zz", "%2g"}) {
    EXPECT_EQ(percent_decode(bad, buf).error(), http_errc::bad_percent_encoding) << bad;
  }
  char two[2];
  EXPECT_EQ(percent_decode("abc", two).error(), http_errc::buffer_too_small);
  EXPECT_EQ(percent_decode("%41%42", two).value(), "AB");
}

TEST(HttpQuery, FindHeaderIgnoresCase) {
  const Header h[] = {{"Host", "a"}, {"content-TYPE", "text/plain"}, {"Content-Type", "x"}};
  const Header* ct = find_header(h, "Content-Type");
  ASSERT_NE(ct, nullptr);
  EXPECT_EQ(ct->value, "text/plain");
  EXPECT_EQ(find_header(h, "Accept"), nullptr);
  EXPECT_TRUE(iequals("Keep-Alive", "keep-alive"));
  EXPECT_FALSE(iequals("keep-alive", "keep_alive"));
}

}  // namespace
}  // namespace weft::http
