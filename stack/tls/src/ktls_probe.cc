// ktls_probe(): the kernel's tls ULP, checked the way the wiring step will use it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

#include <weft/tls/ktls_probe.h>

namespace weft::tls {
namespace {

// Closes its descriptors on every return path.
struct Fds {
  int listener = -1;
  int client = -1;
  int server = -1;
  Fds() = default;
  Fds(const Fds&) = delete;
  Fds& operator=(const Fds&) = delete;
  ~Fds() {
    for (int fd : {listener, client, server}) {
      if (fd >= 0) {
        ::close(fd);
      }
    }
  }
};

// True when the list in /proc names "tls"; the file lists ULPs separated by spaces.
bool proc_lists_tls(bool& readable) noexcept {
  readable = false;
  int fd = ::open("/proc/sys/net/ipv4/tcp_available_ulp", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  std::array<char, 256> buf{};
  ssize_t n = ::read(fd, buf.data(), buf.size() - 1);
  ::close(fd);
  if (n < 0) {
    return false;
  }
  readable = true;
  std::string_view s(buf.data(), static_cast<std::size_t>(n));
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t end = s.find_first_of(" \n\t", pos);
    if (end == std::string_view::npos) {
      end = s.size();
    }
    if (s.substr(pos, end - pos) == "tls") {
      return true;
    }
    pos = end + 1;
  }
  return false;
}

}  // namespace

KtlsProbe ktls_probe() noexcept {
  bool readable = false;
  const bool listed = proc_lists_tls(readable);
  // The ULP attaches only to an established TCP socket, so build a loopback pair.
  Fds fds;
  fds.listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  fds.client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fds.listener < 0 || fds.client < 0) {
    return {false, "socket() failed: cannot probe TCP_ULP"};
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fds.listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fds.listener, 1) != 0 ||
      ::getsockname(fds.listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      ::connect(fds.client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return {false, "no loopback TCP connection: cannot probe TCP_ULP"};
  }
  fds.server = ::accept4(fds.listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (fds.server < 0) {
    return {false, "accept() failed: cannot probe TCP_ULP"};
  }
  static constexpr char kUlp[] = "tls";
  if (::setsockopt(fds.client, SOL_TCP, TCP_ULP, kUlp, sizeof kUlp - 1) == 0) {
    return {true, "tls ULP available"};
  }
  const int err = errno;
  if (err == ENOENT) {
    // The kernel knows no "tls" ULP and could not load it (CONFIG_TLS off, or the module
    // missing or not loadable by this process).
    return {false, listed ? "tls ULP listed but setsockopt(TCP_ULP) says ENOENT"
                          : (readable ? "kernel has no tls ULP (not in tcp_available_ulp; "
                                        "CONFIG_TLS off or module tls not loadable)"
                                      : "kernel has no tls ULP (setsockopt TCP_ULP: ENOENT)")};
  }
  if (err == ENOPROTOOPT) {
    return {false, "kernel has no TCP_ULP socket option (older than 4.13)"};
  }
  if (err == EPERM || err == EACCES) {
    return {false, "setsockopt(TCP_ULP) not permitted (seccomp or LSM)"};
  }
  return {false, "setsockopt(TCP_ULP, \"tls\") failed"};
}

}  // namespace weft::tls
