#include "echo_service.h"

#include <cstring>

#include <weft/platform/error.h>

namespace weft::examples {

using platform::BufView;
using platform::Conn;
using platform::platform_errc;

EchoHandler::EchoHandler(const EchoOptions& options)
    : options_(options),
      decoder_(frame::LengthPrefixConfig{options.prefix, options.max_frame_size}),
      assembly_(new std::byte[options.max_frame_size]) {
  (void)decoder_.set_assembly({assembly_.get(), options.max_frame_size});
}

void EchoHandler::reset(Conn&) noexcept {
  decoder_.reset();
  draining_ = false;
  eof_ = false;
  frame_pending_ = false;
  echoed_ = 0;
  held_ = {};
}

Result<void> EchoHandler::echo_frame(Conn& c, BufView in, std::size_t frame_end) noexcept {
  const auto payload = decoder_.frame();
  const std::size_t hdr =
      frame::header_size(options_.prefix, static_cast<std::uint32_t>(payload.size()));
  const std::size_t total = hdr + payload.size();
  const std::byte* end = in.bytes.data() + frame_end;
  if (echoed_ == 0 && frame_end >= total && payload.data() == end - payload.size()) {
    // Prefix and payload are contiguous in this receive buffer: echo them from it.
    return c.send_ref(in.buf, {end - total, total});
  }
  // Assembled frame: copy it out one pool buffer at a time, so a frame larger than the
  // output queue can hold still goes through (resuming from echoed_ on on_writable).
  std::byte header[frame::kMaxHeaderSize];
  auto n =
      frame::encode_header(options_.prefix, static_cast<std::uint32_t>(payload.size()), header);
  if (!n) {
    return fail(n.error());
  }
  const std::size_t chunk = c.loop().pool().buffer_size();
  while (echoed_ < total) {
    std::span<const std::byte> head;
    std::size_t body_off = echoed_ - std::min(echoed_, hdr);
    if (echoed_ < hdr) {
      head = std::span<const std::byte>(header + echoed_, hdr - echoed_);
    }
    const std::size_t room = chunk > head.size() ? chunk - head.size() : 0;
    const auto body = payload.subspan(body_off, std::min(room, payload.size() - body_off));
    if (auto r = c.send_copy(head, body); !r) {
      return r;
    }
    echoed_ += head.size() + body.size();
  }
  echoed_ = 0;
  return {};
}

bool EchoHandler::process(Conn& c, BufView in, std::size_t off) noexcept {
  while (off < in.bytes.size()) {
    const frame::Decoded d = decoder_.feed(in.bytes.subspan(off));
    if (d.state == frame::DecodeState::error) {
      c.abort(make_error_code(platform_errc::protocol_error));
      return true;
    }
    off += d.consumed;
    if (d.state == frame::DecodeState::need_more) {
      break;
    }
    if (auto r = echo_frame(c, in, off); !r) {
      if (r.error() != make_error_code(platform_errc::no_buffers) &&
          r.error() != make_error_code(platform_errc::queue_full)) {
        c.abort(r.error());
        return true;
      }
      // No room: keep the frame (the decoder still holds it) and the rest of the input.
      frame_pending_ = true;
      pending_end_ = off;
      c.loop().pool().ref(in.buf);
      held_ = in;
      c.pause_reading();
      return false;
    }
  }
  c.set_mid_message(decoder_.mid_frame());
  if ((draining_ || eof_) && !decoder_.mid_frame()) {
    c.close();
  }
  return true;
}

void EchoHandler::on_data(Conn& c, BufView in) noexcept {
  if (frame_pending_) {
    // A receive that was already in flight when reading paused: cannot happen with a
    // pending frame unless the core delivers late; treat it as the peer flooding us.
    c.abort(make_error_code(platform_errc::flood));
    return;
  }
  process(c, in, 0);
}

void EchoHandler::on_writable(Conn& c) noexcept {
  if (!frame_pending_) {
    return;
  }
  BufView in = held_;
  if (auto r = echo_frame(c, in, pending_end_); !r) {
    return;  // still no room: on_writable comes again
  }
  frame_pending_ = false;
  const bool done = process(c, in, pending_end_);
  release_held(c);
  if (done && !frame_pending_) {
    c.resume_reading();
  }
}

void EchoHandler::release_held(Conn& c) noexcept {
  if (held_.buf != platform::kNoBuf && !frame_pending_) {
    c.loop().pool().unref(held_.buf);
    held_ = {};
  }
}

void EchoHandler::on_close(Conn& c, std::error_code) noexcept {
  frame_pending_ = false;
  release_held(c);
}

void EchoHandler::on_drain(Conn& c) noexcept {
  draining_ = true;
  if (!decoder_.mid_frame() && !frame_pending_) {
    c.close();
  }
}

void EchoHandler::on_eof(Conn& c) noexcept {
  // Half-close: the peer is done sending. Echo what we have, then close our side.
  eof_ = true;
  if (!frame_pending_) {
    c.close();
  }
}

std::unique_ptr<platform::HandlerFactory> make_echo_factory(const platform::Loop& loop,
                                                            const EchoOptions& options) {
  return std::make_unique<platform::HandlerPool<EchoHandler>>(loop.config().max_connections,
                                                              options);
}

}  // namespace weft::examples
