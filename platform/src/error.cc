#include <weft/base/error_category.h>
#include <weft/platform/error.h>

namespace weft::platform {

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
  static const ErrorCategory<platform_errc> category("weft.platform", &to_string);
  return category;
}

}  // namespace weft::platform
