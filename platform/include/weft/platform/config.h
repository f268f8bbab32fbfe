// weft::platform::Config — every limit a worker runs under, fixed at Runtime::start().
//
// Each worker allocates its pools from these numbers once; nothing grows afterwards. When a
// limit is crossed the stack applies back-pressure or rejects cleanly; each field's comment
// names what happens. Defaults suit a small board (4 cores, a few hundred connections);
// validate() reports invalid_argument for values the core cannot run with.
#pragma once

#include <cstdint>
#include <string>

#include <weft/base/result.h>

namespace weft::platform {

enum class BackendKind : std::uint8_t {
  automatic = 0,  // try io_uring, fall back to epoll (reason logged); WEFT_BACKEND overrides
  uring,          // io_uring only: Runtime::start fails with backend_unavailable if refused
  epoll,          // epoll only
};
const char* to_string(BackendKind k) noexcept;

enum class AcceptMode : std::uint8_t {
  reuseport = 0,  // one SO_REUSEPORT listener per worker; the kernel spreads connections
  round_robin,    // worker 0 accepts and hands connections to workers in turn (SPSC rings)
};

struct Config {
  // --- workers -------------------------------------------------------------------------
  std::uint32_t workers = 1;  // event-loop threads; 1..256
  std::string cpus;           // "0-3,6": worker i pinned to the (i mod n)-th cpu; "" = unpinned
  BackendKind backend = BackendKind::automatic;
  AcceptMode accept_mode = AcceptMode::reuseport;
  int listen_backlog = 1024;

  // --- connections (per worker) ------------------------------------------------------------
  // Crossed -> the extra connection is accepted and closed at once (stats().rejected);
  // established connections are not disturbed.
  std::uint32_t max_connections = 512;

  // --- buffers (per worker) ---------------------------------------------------------------
  std::uint32_t buffer_size = 16 * 1024;  // bytes per pool buffer: the largest single recv
  // Receive buffers handed to the kernel (power of two, <= 32768). All in use -> reading is
  // parked (io_uring: -ENOBUFS) until half of them are back; no data is lost, TCP pushes back.
  std::uint32_t recv_buffers = 256;
  // Buffers for output that protocols write (copies, encoded responses). Exhausted ->
  // Conn::send_copy() returns no_buffers and the protocol backs off.
  std::uint32_t send_buffers = 256;

  // --- output queue (per connection) --------------------------------------------------------
  std::uint32_t max_out_iov = 64;  // queued send segments; full -> send returns queue_full
  // Queued outbound bytes: at high, reading stops (on_data stops being called); it resumes
  // when the queue drains below low. Each crossing is reported once.
  std::uint32_t high_watermark = 256 * 1024;
  std::uint32_t low_watermark = 64 * 1024;

  // --- timeouts (ms; 0 disables) ------------------------------------------------------------
  std::uint32_t idle_timeout_ms = 60'000;    // no bytes either way -> closed (timed_out)
  std::uint32_t read_timeout_ms = 30'000;    // a message started but not finished -> closed
  std::uint32_t write_timeout_ms = 30'000;   // queued output making no progress -> aborted
  std::uint32_t connect_timeout_ms = 5'000;  // outbound connect -> on_close(timed_out)
  std::uint32_t drain_timeout_ms = 5'000;    // graceful stop: after this, remaining are aborted

  // --- io_uring ----------------------------------------------------------------------------
  std::uint32_t uring_entries = 1024;  // submission queue size (power of two, 8..32768)

  [[nodiscard]] Result<void> validate() const noexcept;
};

}  // namespace weft::platform
