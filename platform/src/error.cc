#include <weft/platform/assert.h>
#include <weft/platform/error.h>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace weft::platform {
namespace {

class PlatformCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "weft.platform"; }
  std::string message(int ev) const override { return to_string(static_cast<platform_errc>(ev)); }
};

}  // namespace

const char* to_string(platform_errc e) noexcept {
  switch (e) {
    case platform_errc::invalid_argument:
      return "invalid argument";
    case platform_errc::invalid_address:
      return "invalid address";
    case platform_errc::invalid_cpu_list:
      return "invalid cpu list";
    case platform_errc::backend_unavailable:
      return "backend unavailable";
    case platform_errc::connection_limit:
      return "connection limit reached";
    case platform_errc::no_buffers:
      return "buffer pool exhausted";
    case platform_errc::queue_full:
      return "queue full";
    case platform_errc::timed_out:
      return "timed out";
    case platform_errc::closed:
      return "closed";
    case platform_errc::shutting_down:
      return "shutting down";
    case platform_errc::listener_limit:
      return "too many listeners on one loop";
  }
  return "unknown weft.platform error";
}

const std::error_category& platform_category() noexcept {
  static const PlatformCategory category;
  return category;
}

}  // namespace weft::platform

namespace weft::detail {

void panic(const char* file, int line, const char* what) noexcept {
  char buf[512];
  int n = std::snprintf(buf, sizeof buf, "weft: panic at %s:%d: %s\n", file, line, what);
  if (n > 0) {
    ssize_t ignored =
        ::write(2, buf, static_cast<std::size_t>(n) < sizeof buf ? n : sizeof buf - 1);
    (void)ignored;
  }
  std::abort();
}

}  // namespace weft::detail
