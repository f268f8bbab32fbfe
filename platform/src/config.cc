#include <weft/base/log.h>
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

const char* Config::problem() const noexcept {
  const auto pow2 = [](std::uint32_t v) { return v != 0 && (v & (v - 1)) == 0; };
  if (workers == 0 || workers > 256) {
    return "workers: must be 1..256";
  }
  if (max_connections == 0 || max_connections > (1u << 20)) {
    return "max_connections: must be 1..2^20";
  }
  if (outbound_connections > (1u << 20)) {
    return "outbound_connections: must be at most 2^20";
  }
  if (buffer_size < 256 || buffer_size % 64 != 0 || buffer_size > (64u << 20)) {
    return "buffer_size: must be a multiple of 64 in 256..64 MiB";
  }
  if (!pow2(recv_buffers) || recv_buffers > 32768) {
    return "recv_buffers: must be a power of two, at most 32768";
  }
  if (send_buffers == 0) {
    return "send_buffers: must be at least 1";
  }
  if (recv_buffers + send_buffers >= (1u << 24)) {
    return "recv_buffers + send_buffers: must be below 2^24";
  }
  if (max_pinned_recv > recv_buffers) {
    return "max_pinned_recv: must not exceed recv_buffers";
  }
  if (shared_buffers >= (1u << 24) ||
      (shared_buffers != 0 && (shared_buffer_size < 64 || shared_buffer_size % 64 != 0))) {
    return "shared_buffers/shared_buffer_size: below 2^24 buffers of a multiple of 64 bytes";
  }
  if (max_out_iov < 2 || max_out_iov > 1024) {
    return "max_out_iov: must be 2..1024";
  }
  if (out_queues > (1u << 21)) {
    return "out_queues: must be at most 2^21";
  }
  if (low_watermark >= high_watermark) {
    return "low_watermark: must be below high_watermark";
  }
  if (close_timeout_ms == 0) {
    return "close_timeout_ms: must be above 0 (a graceful close needs an end)";
  }
  if (!pow2(uring_entries) || uring_entries < 8 || uring_entries > 32768) {
    return "uring_entries: must be a power of two in 8..32768";
  }
  if (listen_backlog <= 0) {
    return "listen_backlog: must be above 0";
  }
  return nullptr;
}

Result<void> Config::validate() const noexcept {
  if (const char* p = problem()) {
    log(LogLevel::error, "invalid config: %s", p);
    return fail(platform_errc::invalid_argument);
  }
  return {};
}

}  // namespace weft::platform
