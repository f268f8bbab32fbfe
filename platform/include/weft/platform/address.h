// Socket addresses: IPv4, IPv6 and Unix-domain, parsed from text.
//
// Forms: "127.0.0.1:8080", "[::1]:8080", "unix:/run/app.sock" and "unix:@abstract".
// Port 0 asks the kernel for a free port (tests); Listener::local_address() tells which.
// Value type, no allocation.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <cstdint>
#include <string_view>

#include <weft/base/result.h>

namespace weft::platform {

class Address {
 public:
  Address() noexcept;
  // Errors: invalid_address.
  [[nodiscard]] static Result<Address> parse(std::string_view text) noexcept;
  [[nodiscard]] static Address loopback_v4(std::uint16_t port) noexcept;
  // Reads the address bound to a socket (getsockname). Errors: errno.
  [[nodiscard]] static Result<Address> local_of(int fd) noexcept;

  [[nodiscard]] int family() const noexcept { return storage_.ss_family; }
  [[nodiscard]] bool is_unix() const noexcept { return family() == AF_UNIX; }
  [[nodiscard]] std::uint16_t port() const noexcept;  // 0 for unix
  void set_port(std::uint16_t port) noexcept;

  [[nodiscard]] const sockaddr* sockaddr_ptr() const noexcept {
    return reinterpret_cast<const sockaddr*>(&storage_);
  }
  [[nodiscard]] socklen_t length() const noexcept { return len_; }

  // Writes "127.0.0.1:80", "[::1]:80" or "unix:/path" into buf (always NUL-terminated).
  void format(char* buf, std::size_t size) const noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t len_ = 0;
};

}  // namespace weft::platform
