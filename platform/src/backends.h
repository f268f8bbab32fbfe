// Internal: constructors of the two backends (backend.cc picks between them).
#pragma once

#include <cstddef>
#include <memory>

#include "backend.h"

namespace weft::platform::detail {

[[nodiscard]] Result<std::unique_ptr<Backend>> make_epoll_backend(const BackendOptions& o) noexcept;

#if defined(WEFT_WITH_URING)
// On failure, writes why io_uring cannot be used here into reason.
[[nodiscard]] Result<std::unique_ptr<Backend>> make_uring_backend(const BackendOptions& o,
                                                                  char* reason,
                                                                  std::size_t reason_size) noexcept;
#endif

}  // namespace weft::platform::detail
