#include <weft/platform/stats.h>

namespace weft::platform {

StatsSnapshot& StatsSnapshot::operator+=(const StatsSnapshot& o) noexcept {
  accepted += o.accepted;
  rejected += o.rejected;
  connected += o.connected;
  closed += o.closed;
  active += o.active;
  bytes_in += o.bytes_in;
  bytes_out += o.bytes_out;
  recv_completions += o.recv_completions;
  sends += o.sends;
  recv_parked += o.recv_parked;
  room_waits += o.room_waits;
  hoarders_closed += o.hoarders_closed;
  timeouts += o.timeouts;
  errors += o.errors;
  posts += o.posts;
  loop_iterations += o.loop_iterations;
  handoff_failed += o.handoff_failed;
  recv_in_use += o.recv_in_use;
  pinned_recv += o.pinned_recv;
  pin_copies += o.pin_copies;
  return *this;
}

StatsSnapshot WorkerStats::snapshot() const noexcept {
  StatsSnapshot s;
  s.accepted = accepted.get();
  s.rejected = rejected.get();
  s.connected = connected.get();
  s.closed = closed.get();
  s.active = active.get();
  s.bytes_in = bytes_in.get();
  s.bytes_out = bytes_out.get();
  s.recv_completions = recv_completions.get();
  s.sends = sends.get();
  s.recv_parked = recv_parked.get();
  s.room_waits = room_waits.get();
  s.hoarders_closed = hoarders_closed.get();
  s.timeouts = timeouts.get();
  s.errors = errors.get();
  s.posts = posts.get();
  s.loop_iterations = loop_iterations.get();
  s.handoff_failed = handoff_failed.get();
  s.recv_in_use = recv_in_use.get();
  s.pinned_recv = pinned_recv.get();
  s.pin_copies = pin_copies.get();
  return s;
}

}  // namespace weft::platform
