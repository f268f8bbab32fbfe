// WorkerStats — per-worker counters, written only by the owning worker.
//
// Each counter is a std::atomic<uint64_t> updated with a relaxed load and store (no locked
// read-modify-write: there is one writer), so the hot path costs a plain add while any
// thread may read a consistent-enough snapshot (Runtime::stats()). A reader sees each counter
// torn-free but counters are not mutually consistent at one instant.
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::platform {

struct StatsSnapshot {
  std::uint64_t accepted = 0;   // connections accepted and opened
  std::uint64_t rejected = 0;   // accepted then closed at once: max_connections reached
  std::uint64_t connected = 0;  // outbound connections established
  std::uint64_t closed = 0;     // connections finalized (any reason)
  std::uint64_t active = 0;     // open now
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t recv_completions = 0;
  std::uint64_t sends = 0;            // vectored sends submitted
  std::uint64_t recv_parked = 0;      // receive stopped for lack of buffers (ENOBUFS)
  std::uint64_t room_waits = 0;       // a handler found no room and waits for on_writable
  std::uint64_t hoarders_closed = 0;  // closed: held receive buffers others needed (no_buffers)
  std::uint64_t timeouts = 0;         // idle / read / write / connect timeouts
  std::uint64_t errors = 0;           // connections aborted with an error
  std::uint64_t posts = 0;            // cross-worker posts received
  std::uint64_t loop_iterations = 0;
  std::uint64_t handoff_failed =
      0;  // accepted, but the hand-off ring was full or the target stopped
  // Gauges (sampled at the end of each iteration; summed over workers in a total).
  std::uint64_t recv_in_use = 0;  // receive buffers held in weft (handlers, queues, held input)
  std::uint64_t pinned_recv = 0;  // receive buffers held by output queues
  std::uint64_t pin_copies = 0;   // byte runs copied out instead of pinning (counter)

  StatsSnapshot& operator+=(const StatsSnapshot& o) noexcept;
};

class WorkerStats {
 public:
  struct Counter {
    std::atomic<std::uint64_t> v{0};
    void add(std::uint64_t n = 1) noexcept {
      v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void set(std::uint64_t n) noexcept { v.store(n, std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t get() const noexcept { return v.load(std::memory_order_relaxed); }
  };
  Counter accepted, rejected, connected, closed, active, bytes_in, bytes_out, recv_completions,
      sends, recv_parked, room_waits, hoarders_closed, timeouts, errors, posts, loop_iterations,
      handoff_failed, recv_in_use, pinned_recv, pin_copies;

  // Any thread.
  [[nodiscard]] StatsSnapshot snapshot() const noexcept;
};

}  // namespace weft::platform
