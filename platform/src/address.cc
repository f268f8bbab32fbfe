#include <weft/platform/address.h>
#include <weft/platform/error.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace weft::platform {
namespace {

bool parse_port(std::string_view s, std::uint16_t& out) {
  if (s.empty() || s.size() > 5) {
    return false;
  }
  unsigned v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') {
      return false;
    }
    v = v * 10 + static_cast<unsigned>(ch - '0');
  }
  if (v > 65535) {
    return false;
  }
  out = static_cast<std::uint16_t>(v);
  return true;
}

}  // namespace

Address::Address() noexcept {
  std::memset(&storage_, 0, sizeof storage_);
}

Address Address::loopback_v4(std::uint16_t port) noexcept {
  Address a;
  auto* in = reinterpret_cast<sockaddr_in*>(&a.storage_);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.len_ = sizeof(sockaddr_in);
  return a;
}

Result<Address> Address::parse(std::string_view text) noexcept {
  Address a;
  if (text.substr(0, 5) == "unix:") {
    std::string_view path = text.substr(5);
    auto* un = reinterpret_cast<sockaddr_un*>(&a.storage_);
    if (path.empty() || path.size() >= sizeof un->sun_path) {
      return fail(platform_errc::invalid_address);
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.data(), path.size());
    if (path[0] == '@') {
      un->sun_path[0] = '\0';  // Linux abstract namespace: length-delimited, no NUL
      a.len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
    } else {
      a.len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    }
    return a;
  }
  char host[64];
  std::string_view port_text;
  std::string_view host_text;
  bool v6 = false;
  if (!text.empty() && text[0] == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return fail(platform_errc::invalid_address);
    }
    host_text = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    v6 = true;
  } else {
    std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return fail(platform_errc::invalid_address);
    }
    host_text = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  std::uint16_t port = 0;
  if (host_text.empty() || host_text.size() >= sizeof host || !parse_port(port_text, port)) {
    return fail(platform_errc::invalid_address);
  }
  std::memcpy(host, host_text.data(), host_text.size());
  host[host_text.size()] = '\0';
  if (v6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) {
      return fail(platform_errc::invalid_address);
    }
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    a.len_ = sizeof(sockaddr_in6);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&a.storage_);
    if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
      return fail(platform_errc::invalid_address);
    }
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    a.len_ = sizeof(sockaddr_in);
  }
  return a;
}

Result<Address> Address::local_of(int fd) noexcept {
  Address a;
  socklen_t len = sizeof a.storage_;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a.storage_), &len) != 0) {
    return fail_errno(errno);
  }
  a.len_ = len;
  return a;
}

std::uint16_t Address::port() const noexcept {
  if (family() == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  }
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

void Address::set_port(std::uint16_t port) noexcept {
  if (family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  } else if (family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
  }
}

void Address::format(char* buf, std::size_t size) const noexcept {
  if (size == 0) {
    return;
  }
  char host[INET6_ADDRSTRLEN] = "?";
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, host,
              sizeof host);
    std::snprintf(buf, size, "%s:%u", host, port());
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, host,
              sizeof host);
    std::snprintf(buf, size, "[%s]:%u", host, port());
  } else if (family() == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
    const std::size_t n =
        len_ > offsetof(sockaddr_un, sun_path) ? len_ - offsetof(sockaddr_un, sun_path) : 0;
    if (n > 0 && un->sun_path[0] == '\0') {
      std::snprintf(buf, size, "unix:@%.*s", static_cast<int>(n - 1), un->sun_path + 1);
    } else {
      std::snprintf(buf, size, "unix:%s", un->sun_path);
    }
  } else {
    std::snprintf(buf, size, "(none)");
  }
}

}  // namespace weft::platform
