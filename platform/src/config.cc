#include <weft/platform/config.h>
#include <weft/platform/error.h>

namespace weft::platform {

const char* to_string(BackendKind k) noexcept {
  switch (k) {
    case BackendKind::automatic:
      return "auto";
    case BackendKind::uring:
      return "io_uring";
    case BackendKind::epoll:
      return "epoll";
  }
  return "?";
}

Result<void> Config::validate() const noexcept {
  const auto pow2 = [](std::uint32_t v) { return v != 0 && (v & (v - 1)) == 0; };
  if (workers == 0 || workers > 256 || max_connections == 0 || max_connections > (1u << 20) ||
      buffer_size < 256 || buffer_size % 64 != 0 || buffer_size > (64u << 20) ||
      !pow2(recv_buffers) || recv_buffers > 32768 || send_buffers == 0 ||
      recv_buffers + send_buffers >= (1u << 24) || max_out_iov < 2 || max_out_iov > 1024 ||
      low_watermark >= high_watermark || !pow2(uring_entries) || uring_entries < 8 ||
      uring_entries > 32768 || listen_backlog <= 0) {
    return fail(platform_errc::invalid_argument);
  }
  return {};
}

}  // namespace weft::platform
