#include <weft/platform/cpu_list.h>
#include <weft/platform/error.h>

#include <pthread.h>
#include <sched.h>
#include <algorithm>

namespace weft::platform {
namespace {

constexpr int kMaxCpu = 1024;

// Parses a decimal number at text[pos...]; false when there are no digits or it is too big.
bool parse_number(std::string_view text, std::size_t& pos, int& out) {
  std::size_t start = pos;
  long v = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    v = v * 10 + (text[pos] - '0');
    if (v >= kMaxCpu) {
      return false;
    }
    ++pos;
  }
  out = static_cast<int>(v);
  return pos != start;
}

}  // namespace

Result<std::vector<int>> parse_cpu_list(std::string_view text) {
  std::vector<int> cpus;
  std::size_t pos = 0;
  if (text.empty()) {
    return fail(platform_errc::invalid_cpu_list);
  }
  while (true) {
    int lo = 0;
    if (!parse_number(text, pos, lo)) {
      return fail(platform_errc::invalid_cpu_list);
    }
    int hi = lo;
    if (pos < text.size() && text[pos] == '-') {
      ++pos;
      if (!parse_number(text, pos, hi) || hi < lo) {
        return fail(platform_errc::invalid_cpu_list);
      }
    }
    for (int c = lo; c <= hi; ++c) {
      if (std::find(cpus.begin(), cpus.end(), c) == cpus.end()) {
        cpus.push_back(c);
      }
    }
    if (pos == text.size()) {
      break;
    }
    if (text[pos] != ',') {
      return fail(platform_errc::invalid_cpu_list);
    }
    ++pos;
  }
  return cpus;
}

Result<void> pin_current_thread(int cpu) noexcept {
  if (cpu < 0 || cpu >= CPU_SETSIZE) {
    return fail(platform_errc::invalid_argument);
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  if (rc != 0) {
    return fail_errno(rc);
  }
  return {};
}

}  // namespace weft::platform
