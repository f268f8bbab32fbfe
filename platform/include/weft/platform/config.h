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
  // Inbound connections. Crossed -> the extra connection is accepted and closed at once
  // (stats().rejected); established connections are not disturbed.
  std::uint32_t max_connections = 512;
  // Outbound connections (Loop::connect), a reserve apart from the inbound limit so that an
  // inbound flood cannot starve a client pool. Crossed -> connect() returns connection_limit.
  std::uint32_t outbound_connections = 16;

  // --- buffers (per worker) ---------------------------------------------------------------
  std::uint32_t buffer_size = 16 * 1024;  // bytes per pool buffer: the largest single recv
  // Receive buffers handed to the kernel (power of two, <= 32768). All in use -> reading is
  // parked (io_uring: -ENOBUFS) until half of them are back; no data is lost, TCP pushes back.
  std::uint32_t recv_buffers = 256;
  // Buffers for output that protocols write (copies, encoded responses). Exhausted ->
  // Conn::send_copy() returns no_buffers and the protocol backs off.
  std::uint32_t send_buffers = 256;

  // Receive buffers one connection's output queue may pin (segments that point into them).
  // Past it, small byte runs are copied into general buffers and larger ones are refused
  // (queue_full), so one connection holds at most this share of the receive partition.
  // 0 = recv_buffers / 16 (at least 1).
  std::uint32_t max_pinned_recv = 0;
  // Buffers of the runtime's SharedBuffers (fan-out payloads any worker can send); 0 = none.
  std::uint32_t shared_buffers = 0;
  std::uint32_t shared_buffer_size = 16 * 1024;

  // --- output queue (per connection) --------------------------------------------------------
  std::uint32_t max_out_iov = 64;  // queued send segments; full -> send returns queue_full
  // Segment arrays (of max_out_iov each) per worker, lent to connections while they have
  // output queued. All lent -> a send returns queue_full until one comes back.
  // 0 = one per connection slot (max_connections + outbound_connections).
  std::uint32_t out_queues = 0;
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
  // Graceful close (Conn::close): queued output not flushed within this -> aborted, reason
  // timed_out. Applies even with write_timeout_ms = 0. Must be > 0.
  std::uint32_t close_timeout_ms = 10'000;
  // After our FIN, how long to keep reading (and discarding) while waiting for the peer's:
  // closing with unread input would send a RST that can destroy our last response in flight.
  std::uint32_t linger_ms = 2'000;

  // --- io_uring ----------------------------------------------------------------------------
  std::uint32_t uring_entries = 1024;  // submission queue size (power of two, 8..32768)
  // Consume receive buffers incrementally (IOU_PBUF_RING_INC, Linux 6.12+): a small receive
  // takes only the bytes it needs and the next one continues in the same buffer, instead of
  // a whole buffer per receive. Older kernels fall back silently.
  bool recv_incremental = true;

  // invalid_argument when a field is out of range; the log line names the field.
  [[nodiscard]] Result<void> validate() const noexcept;
  // nullptr when valid, else "field: what is wrong" (a static string).
  [[nodiscard]] const char* problem() const noexcept;

  // Derived values.
  [[nodiscard]] std::uint32_t pinned_recv_limit() const noexcept {
    const std::uint32_t v = max_pinned_recv != 0 ? max_pinned_recv : recv_buffers / 16;
    return v != 0 ? v : 1;
  }
  [[nodiscard]] std::uint32_t slots() const noexcept {
    return max_connections + outbound_connections;
  }
};

// Whether this build includes the io_uring backend (WEFT_WITH_URING).
[[nodiscard]] bool uring_compiled_in() noexcept;

}  // namespace weft::platform
