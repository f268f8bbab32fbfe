// parse_cpu_list grammar (valid, invalid, limits) and pin_current_thread.
#include <weft/platform/cpu_list.h>
#include <weft/platform/error.h>

#include <gtest/gtest.h>

#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <string>
#include <thread>
#include <vector>

namespace weft::platform {
namespace {

std::vector<int> parse_ok(std::string_view text) {
  Result<std::vector<int>> r = parse_cpu_list(text);
  EXPECT_TRUE(r.ok()) << text;
  return r.ok() ? std::move(r).value() : std::vector<int>{};
}

TEST(CpuList, Parses) {
  EXPECT_EQ(parse_ok("0"), (std::vector<int>{0}));
  EXPECT_EQ(parse_ok("0-3,6"), (std::vector<int>{0, 1, 2, 3, 6}));
  EXPECT_EQ(parse_ok("6,0-2"), (std::vector<int>{6, 0, 1, 2})) << "order of appearance kept";
  EXPECT_EQ(parse_ok("1,1,0-2,2"), (std::vector<int>{1, 0, 2})) << "duplicates removed";
  EXPECT_EQ(parse_ok("5-5"), (std::vector<int>{5}));
  EXPECT_EQ(parse_ok("007"), (std::vector<int>{7}));
  EXPECT_EQ(parse_ok("1023"), (std::vector<int>{1023}));
  EXPECT_EQ(parse_ok("0-1023").size(), 1024u);
}

TEST(CpuList, Rejects) {
  const char* const bad_lists[] = {"",
                                   ",",
                                   "1,",
                                   ",1",
                                   "1,,2",
                                   "-",
                                   "1-",
                                   "-1",
                                   "3-1",
                                   "a",
                                   "1a",
                                   " 1",
                                   "1 ",
                                   "1, 2",
                                   "1024",
                                   "0-1024",
                                   "99999999999999999999",
                                   "1-2-3",
                                   "1--2",
                                   "+1"};
  for (const char* bad : bad_lists) {
    EXPECT_EQ(parse_cpu_list(bad).error(), platform_errc::invalid_cpu_list) << '"' << bad << '"';
  }
}

TEST(CpuList, PinRejectsOutOfRange) {
  EXPECT_EQ(pin_current_thread(-1).error(), platform_errc::invalid_argument);
  EXPECT_EQ(pin_current_thread(CPU_SETSIZE).error(), platform_errc::invalid_argument);
}

TEST(CpuList, PinsToAnAllowedCpu) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  ASSERT_EQ(sched_getaffinity(0, sizeof allowed, &allowed), 0);
  int first = -1;
  int missing = -1;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &allowed)) {
      first = first < 0 ? c : first;
    } else if (missing < 0) {
      missing = c;
    }
  }
  ASSERT_GE(first, 0);
  // In a thread of its own, so the test runner's affinity is untouched.
  std::thread t([&] {
    ASSERT_TRUE(pin_current_thread(first).ok());
    cpu_set_t now;
    CPU_ZERO(&now);
    ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof now, &now), 0);
    EXPECT_EQ(CPU_COUNT(&now), 1);
    EXPECT_TRUE(CPU_ISSET(first, &now));
    EXPECT_EQ(sched_getcpu(), first);
    if (missing >= 0) {
      const Result<void> r = pin_current_thread(missing);
      EXPECT_EQ(r.error(), std::error_code(EINVAL, std::system_category())) << missing;
    }
  });
  t.join();
}

}  // namespace
}  // namespace weft::platform
