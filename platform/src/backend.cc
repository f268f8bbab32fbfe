#include "backends.h"

#include <weft/base/log.h>
#include <weft/platform/error.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace weft::platform {

bool uring_compiled_in() noexcept {
#if defined(WEFT_WITH_URING)
  return true;
#else
  return false;
#endif
}

}  // namespace weft::platform

namespace weft::platform::detail {

Result<BackendChoice> make_backend(const BackendOptions& options) noexcept {
  BackendKind kind = options.kind;
  if (const char* env = std::getenv("WEFT_BACKEND")) {
    if (std::strcmp(env, "uring") == 0 || std::strcmp(env, "io_uring") == 0) {
      kind = BackendKind::uring;
    } else if (std::strcmp(env, "epoll") == 0) {
      kind = BackendKind::epoll;
    } else if (std::strcmp(env, "auto") == 0) {
      kind = BackendKind::automatic;
    } else {
      log(LogLevel::warn, "WEFT_BACKEND=%s not understood (uring|epoll|auto); ignored", env);
    }
  }
  BackendChoice choice;
  if (kind != BackendKind::epoll) {
#if defined(WEFT_WITH_URING)
    auto r =
        detail::make_uring_backend(options, choice.fallback_reason, sizeof choice.fallback_reason);
    if (r) {
      choice.backend = std::move(r.value());
      choice.fallback_reason[0] = '\0';
      return choice;
    }
#else
    std::snprintf(choice.fallback_reason, sizeof choice.fallback_reason,
                  "built without io_uring (WEFT_WITH_URING=OFF)");
#endif
    if (kind == BackendKind::uring) {
      log(LogLevel::error, "io_uring backend required but unavailable: %s", choice.fallback_reason);
      return fail(platform_errc::backend_unavailable);
    }
  }
  auto e = detail::make_epoll_backend(options);
  if (!e) {
    return fail(e.error());
  }
  choice.backend = std::move(e.value());
  return choice;
}

}  // namespace weft::platform::detail
