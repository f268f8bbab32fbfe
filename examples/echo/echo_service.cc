#include "echo_service.h"

#include <cstring>

namespace weft::examples {

using platform::BufView;
using platform::Conn;

EchoHandler::EchoHandler(const EchoOptions& options) noexcept
    : scanner_(frame::LengthPrefixConfig{options.prefix, options.max_frame_size}) {}

void EchoHandler::reset(Conn&) noexcept {
  scanner_.reset();
  carry_n_ = send_n_ = 0;
  held_.reset();
  from_ = nullptr;
  len_ = 0;
  draining_ = eof_ = false;
}

bool EchoHandler::queue_pending(Conn& c) noexcept {
  if (send_n_ != 0) {
    if (!c.send_copy({send_, send_n_})) {
      return false;
    }
    send_n_ = 0;
  }
  if (len_ != 0) {
    if (!c.send_ref(held_, {from_, len_})) {
      return false;
    }
    len_ = 0;
  }
  held_.reset();
  return true;
}

void EchoHandler::on_data(Conn& c, BufView in) noexcept {
  // The core delivers nothing while reading is paused, so nothing is pending here.
  const std::uint32_t carried = carry_n_;
  const frame::Decoded d = scanner_.feed(in.bytes);
  if (d.state == frame::DecodeState::error) {
    c.abort(scanner_.error());  // the layer's own error: oversize or bad_varint
    return;
  }
  const std::size_t n = in.bytes.size();
  const std::uint32_t have = scanner_.prefix_have();
  if (have != 0 && have == carried + n) {
    // Still inside the prefix that began earlier: keep collecting it.
    std::memcpy(carry_ + carry_n_, in.bytes.data(), n);
    carry_n_ += static_cast<std::uint32_t>(n);
    maybe_close(c);
    return;
  }
  // The carried prefix (if any) completed in this input: it goes first, by copy.
  if (carried != 0) {
    std::memcpy(send_, carry_, carried);
  }
  send_n_ = carried;
  // Everything up to a new unfinished prefix at the end goes by reference.
  len_ = n - have;
  from_ = in.bytes.data();
  if (have != 0) {
    std::memcpy(carry_, in.bytes.data() + len_, have);
  }
  carry_n_ = have;
  if (send_n_ == 0 && len_ != 0 && c.send_ref(in, {from_, len_})) {
    len_ = 0;  // the common case: one segment, no reference of our own
  }
  if (send_n_ != 0 || len_ != 0) {
    held_ = in.ref();
    if (!queue_pending(c)) {
      c.pause_reading();  // on_writable retries; nothing is read until then
      return;
    }
  }
  maybe_close(c);
}

void EchoHandler::maybe_close(Conn& c) noexcept {
  c.set_mid_message(scanner_.mid_frame());
  if ((draining_ || eof_) && !scanner_.mid_frame() && len_ == 0 && send_n_ == 0) {
    c.close();
  }
}

void EchoHandler::on_writable(Conn& c) noexcept {
  if ((len_ != 0 || send_n_ != 0) && queue_pending(c)) {
    c.resume_reading();
    maybe_close(c);
  }
}

void EchoHandler::on_close(Conn&, std::error_code) noexcept {
  held_.reset();
  len_ = send_n_ = 0;
}

void EchoHandler::on_drain(Conn& c) noexcept {
  draining_ = true;
  maybe_close(c);
}

void EchoHandler::on_eof(Conn& c) noexcept {
  // Half-close: the peer is done sending. Echo what we have, then close our side.
  eof_ = true;
  if (scanner_.mid_frame() && len_ == 0 && send_n_ == 0) {
    c.close();  // a truncated last frame: nothing more will complete it
    return;
  }
  maybe_close(c);
}

std::unique_ptr<platform::HandlerFactory> make_echo_factory(const platform::Loop& loop,
                                                            const EchoOptions& options) {
  return std::make_unique<platform::HandlerPool<EchoHandler>>(loop.config().max_connections,
                                                              options);
}

}  // namespace weft::examples
