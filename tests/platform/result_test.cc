// weft::Result<T> and Result<void>: values, errors, move-only and non-trivial payloads
// (every object constructed is destroyed exactly once), and the fail() helpers.
#include <weft/base/result.h>
#include <weft/platform/error.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>

namespace weft {
namespace {

using platform::platform_errc;

// Counts live instances to catch leaks and double destruction.
struct Tracked {
  static inline int live = 0;
  int value;
  explicit Tracked(int v) : value(v) { ++live; }
  Tracked(Tracked&& o) noexcept : value(o.value) { ++live; }
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;
  ~Tracked() { --live; }
};

Result<int> parse_digit(char c) {
  if (c < '0' || c > '9') {
    return fail(platform_errc::invalid_argument);
  }
  return c - '0';
}

TEST(Result, ValueAndError) {
  const Result<int> ok = parse_digit('7');
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(static_cast<bool>(ok));
  EXPECT_EQ(ok.value(), 7);
  EXPECT_FALSE(ok.error()) << "error() of a value is the empty code";
  const Result<int> bad = parse_digit('x');
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), platform_errc::invalid_argument);
  EXPECT_STREQ(bad.error().category().name(), "weft.platform");
}

TEST(Result, MoveOnlyValue) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(5);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, 5);
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 5);
}

TEST(Result, ArrowAndStar) {
  Result<std::string> r = std::string("abc");
  EXPECT_EQ(r->size(), 3u);
  (*r).push_back('d');
  EXPECT_EQ(r.value(), "abcd");
}

TEST(Result, DestroysExactlyOnce) {
  Tracked::live = 0;
  {
    Result<Tracked> a = Tracked(1);
    EXPECT_EQ(Tracked::live, 1);
    Result<Tracked> b = std::move(a);  // moved-from a still holds a (moved-from) Tracked
    EXPECT_EQ(Tracked::live, 2);
    Result<Tracked> e = fail(platform_errc::closed);
    EXPECT_EQ(Tracked::live, 2) << "an error holds no T";
    e = std::move(b);  // error <- value
    EXPECT_EQ(Tracked::live, 3);
    EXPECT_EQ(e.value().value, 1);
    Result<Tracked> e2 = fail(platform_errc::closed);
    e = std::move(e2);  // value <- error: the T is destroyed
    EXPECT_EQ(Tracked::live, 2);
    EXPECT_EQ(e.error(), platform_errc::closed);
    // Self-move (through a reference, as generic code does it) is a no-op.
    Result<Tracked>& self = a;  // NOLINT(bugprone-use-after-move): a is moved-from, still valid
    a = std::move(self);
    EXPECT_EQ(Tracked::live, 2);
  }
  EXPECT_EQ(Tracked::live, 0);
}

TEST(Result, Void) {
  const Result<void> ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_FALSE(ok.error());
  const Result<void> bad = fail(platform_errc::queue_full);
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(bad.error(), platform_errc::queue_full);
}

TEST(Result, FailErrnoTakesEitherSign) {
  const Result<void> neg = fail_errno(-EAGAIN);
  const Result<void> pos = fail_errno(EAGAIN);
  EXPECT_EQ(neg.error(), pos.error());
  EXPECT_EQ(neg.error(), std::error_code(EAGAIN, std::system_category()));
  EXPECT_EQ(neg.error(), std::errc::resource_unavailable_try_again);
}

TEST(Result, FailWithErrorCode) {
  const std::error_code ec = std::make_error_code(std::errc::connection_reset);
  const Result<int> r = fail(ec);
  EXPECT_EQ(r.error(), ec);
}

TEST(PlatformError, EveryCodeHasText) {
  for (int v = 1; v <= static_cast<int>(platform_errc::listener_limit); ++v) {
    const auto e = static_cast<platform_errc>(v);
    EXPECT_STRNE(platform::to_string(e), "unknown weft.platform error") << v;
    EXPECT_EQ(make_error_code(e).message(), platform::to_string(e));
  }
}

}  // namespace
}  // namespace weft
