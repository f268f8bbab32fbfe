// CPU list parsing for worker pinning: "0-3,6" -> {0,1,2,3,6}.
//
// Grammar: list := item (',' item)* ; item := N | N '-' M  (N <= M, 0 <= N,M < 1024).
// Whitespace is not allowed; duplicates are removed; the order of first appearance is kept,
// so worker i is pinned to the i-th listed cpu. Control plane only (allocates).
#pragma once

#include <string_view>
#include <vector>

#include <weft/base/result.h>

namespace weft::platform {

// Errors: invalid_cpu_list (empty, bad number, reversed range, cpu >= 1024).
[[nodiscard]] Result<std::vector<int>> parse_cpu_list(std::string_view text);

// Pins the calling thread to one cpu. Errors: the errno of pthread_setaffinity_np
// (EINVAL when the cpu is not in the process's allowed set).
[[nodiscard]] Result<void> pin_current_thread(int cpu) noexcept;

}  // namespace weft::platform
