// weft::examples::FramedEcho — a framed echo protocol: every complete frame (length prefix +
// payload) is written back unchanged, in order. The simplest request/response on weft, used
// by the weft-echo example, the integration tests and the benchmarks — and the model of
// buffer ownership that protocols on weft follow.
//
// Zero copy: the echo of a frame is the frame's own bytes, so the handler forwards the input
// by reference (Conn::send_ref), one segment per receive however many frames it holds, and a
// frame that spans receives goes out piece by piece from each receive buffer: nothing is
// assembled or copied. The only bytes copied are those of a length prefix split across
// receives (at most 4 or 5), which are held back until the prefix is complete and valid.
// A LengthPrefixScanner validates every prefix on the way.
//
// Ownership: a receive buffer is held past on_data only through a BufRef (held_), which is
// the one place that owns it; the queue takes its own references. Nothing is ref'd by hand.
//
// Errors: a prefix above max_frame_size, or a bad varint, aborts the connection with the
// scanner's own error (frame_errc::oversize / bad_varint); other connections are unaffected.
// Back-pressure: when the output queue has no room, the handler keeps what it could not
// queue (the BufRef and the range), pauses reading and resumes from on_writable(): nothing
// is dropped and the peer is slowed down by TCP.
// Drain and EOF: a connection mid-frame finishes that frame, then closes.
#pragma once

#include <cstdint>
#include <memory>

#include <weft/frame/scanner.h>
#include <weft/platform/buffer_pool.h>
#include <weft/platform/conn.h>
#include <weft/platform/handler_pool.h>
#include <weft/platform/loop.h>

namespace weft::examples {

struct EchoOptions {
  frame::PrefixKind prefix = frame::PrefixKind::u32_be;
  std::uint32_t max_frame_size = 64 * 1024;
};

class EchoHandler final : public platform::Handler {
 public:
  explicit EchoHandler(const EchoOptions& options) noexcept;
  void reset(platform::Conn& c) noexcept;
  void on_data(platform::Conn& c, platform::BufView in) noexcept override;
  void on_drain(platform::Conn& c) noexcept override;
  void on_eof(platform::Conn& c) noexcept override;
  void on_writable(platform::Conn& c) noexcept override;
  void on_close(platform::Conn& c, std::error_code reason) noexcept override;

 private:
  // Queues what is pending (held prefix bytes, then held_[from_, to_)); false: no room.
  bool queue_pending(platform::Conn& c) noexcept;
  // Closes once draining or at EOF and between frames with nothing pending.
  void maybe_close(platform::Conn& c) noexcept;

  frame::LengthPrefixScanner scanner_;
  // Bytes of a prefix that began in an earlier receive and completed later: queued by copy
  // before the rest. carry_ collects an unfinished prefix; send_ holds a complete one.
  std::byte carry_[frame::kMaxHeaderSize] = {};
  std::uint32_t carry_n_ = 0;
  std::byte send_[frame::kMaxHeaderSize] = {};
  std::uint32_t send_n_ = 0;
  // Input validated but not yet queued (no room): the buffer and the range in it.
  platform::BufRef held_;
  const std::byte* from_ = nullptr;
  std::size_t len_ = 0;
  bool draining_ = false;
  bool eof_ = false;
};

// A per-worker factory with one preallocated handler per allowed connection.
[[nodiscard]] std::unique_ptr<platform::HandlerFactory> make_echo_factory(
    const platform::Loop& loop, const EchoOptions& options);

}  // namespace weft::examples
