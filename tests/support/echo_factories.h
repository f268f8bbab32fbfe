// Echo handler factories for tests that need the kernel out of the way.
#pragma once

#include <sys/socket.h>

#include <memory>

#include <weft/platform/conn.h>
#include <weft/platform/loop.h>

#include "echo_service.h"

namespace weft::test {

// The echo with a small kernel send buffer on every connection, so a client that does not
// read fills the server's output queue quickly instead of the kernel's buffers (which on
// loopback absorb megabytes and hide back-pressure).
class SmallSendBufferEcho final : public platform::HandlerFactory {
 public:
  SmallSendBufferEcho(const platform::Loop& loop, const examples::EchoOptions& echo,
                      int sndbuf = 4096)
      : inner_(examples::make_echo_factory(loop, echo)), sndbuf_(sndbuf) {}
  platform::Handler* create(platform::Conn& c) noexcept override {
    ::setsockopt(c.fd(), SOL_SOCKET, SO_SNDBUF, &sndbuf_, sizeof sndbuf_);
    return inner_->create(c);
  }
  void destroy(platform::Handler* h) noexcept override { inner_->destroy(h); }

 private:
  std::unique_ptr<platform::HandlerFactory> inner_;
  int sndbuf_;
};

}  // namespace weft::test
