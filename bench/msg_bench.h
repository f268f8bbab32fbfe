// What weft's bench tools share: the one method of weft-msg-bench-server
// (bench/msg_server.cc) that weft-load --proto msg (bench/weft_load.cc) calls, the loopback
// check every bench tool applies to the address it is given, and the --backend values.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>
#include <string_view>

#include <weft/msg/server.h>
#include <weft/platform/address.h>
#include <weft/platform/config.h>

namespace weft::bench {

// Unary: answers a REQUEST with a RESPONSE whose payload is the request's payload, byte for
// byte (copied into the answer with Call::reply). Any size up to the server's max_frame.
inline constexpr std::string_view kUnaryMethodName = "weft.bench.Bench/Unary";
inline constexpr std::uint32_t kUnaryMethod = msg::method_id(kUnaryMethodName);
static_assert(kUnaryMethod != 0);

// Loopback only: bench tools never listen on, or load, anything but this machine.
inline bool is_loopback(const platform::Address& a) noexcept {
  if (a.family() == AF_UNIX) {
    return true;  // local by definition
  }
  if (a.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr());
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (a.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a.sockaddr_ptr());
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  }
  return false;
}

// "auto", "uring" (or "io_uring") or "epoll"; false for anything else.
inline bool parse_backend(const char* v, platform::BackendKind& out) noexcept {
  if (!std::strcmp(v, "uring") || !std::strcmp(v, "io_uring")) {
    out = platform::BackendKind::uring;
  } else if (!std::strcmp(v, "epoll")) {
    out = platform::BackendKind::epoll;
  } else if (!std::strcmp(v, "auto")) {
    out = platform::BackendKind::automatic;
  } else {
    return false;
  }
  return true;
}

}  // namespace weft::bench
