// weft::examples::FramedEcho — a framed echo protocol: every complete frame (length prefix +
// payload) is written back unchanged, in order. The simplest request/response on weft, used
// by the weft-echo example, the integration tests and the benchmarks.
//
// Zero copy: a frame that arrived whole inside one receive buffer is echoed straight from
// that buffer (Conn::send_ref); consecutive frames from one buffer merge into one segment.
// Frames that straddle receives are assembled in per-connection storage and copied once.
// Errors: a prefix above max_frame_size (or a bad varint) aborts the connection with
// platform_errc::protocol_error; other connections are unaffected.
// Back-pressure: when the output queue or the pool has no room for an echo, the handler
// keeps the frame and the rest of the receive buffer, pauses reading, and resumes from
// on_writable(): nothing is dropped and the peer is slowed down by TCP.
// Drain: a connection mid-frame finishes that frame, then closes.
#pragma once

#include <cstdint>
#include <memory>

#include <weft/frame/length_prefix.h>
#include <weft/platform/handler_pool.h>
#include <weft/platform/loop.h>
#include <weft/platform/result.h>

namespace weft::examples {

struct EchoOptions {
  frame::PrefixKind prefix = frame::PrefixKind::u32_be;
  std::uint32_t max_frame_size = 64 * 1024;
};

class EchoHandler final : public platform::Handler {
 public:
  explicit EchoHandler(const EchoOptions& options);
  void reset(platform::Conn& c) noexcept;
  void on_data(platform::Conn& c, platform::BufView in) noexcept override;
  void on_drain(platform::Conn& c) noexcept override;
  void on_eof(platform::Conn& c) noexcept override;
  void on_writable(platform::Conn& c) noexcept override;
  void on_close(platform::Conn& c, std::error_code reason) noexcept override;

 private:
  // Decodes and echoes in[off...]; returns false if it stopped for lack of room.
  bool process(platform::Conn& c, platform::BufView in, std::size_t off) noexcept;
  [[nodiscard]] Result<void> echo_frame(platform::Conn& c, platform::BufView in,
                                        std::size_t frame_end) noexcept;
  void release_held(platform::Conn& c) noexcept;

  EchoOptions options_;
  frame::LengthPrefixDecoder decoder_;
  std::unique_ptr<std::byte[]> assembly_;
  bool draining_ = false;
  bool eof_ = false;
  // Back-pressure state: a decoded frame not yet echoed, and the input after it.
  bool frame_pending_ = false;
  std::size_t pending_end_ = 0;  // offset in held_ just past the pending frame
  std::size_t echoed_ = 0;       // bytes of the current frame already queued (copy path)
  platform::BufView held_;
};

// A per-worker factory with one preallocated handler per allowed connection.
[[nodiscard]] std::unique_ptr<platform::HandlerFactory> make_echo_factory(
    const platform::Loop& loop, const EchoOptions& options);

}  // namespace weft::examples
