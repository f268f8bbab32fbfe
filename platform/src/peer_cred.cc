#include <weft/platform/conn.h>
#include <weft/platform/peer_cred.h>

#include <sys/socket.h>

namespace weft::platform {

PeerCred peer_credentials(int fd) noexcept {
  PeerCred out;
  if (fd < 0) {
    return out;
  }
  // SO_PEERCRED on a TCP socket does not fail: it returns pid 0 and "no id" values (-1, or
  // the overflow ids, 65534, on some kernels: a TCP peer would pass for "nobody"), so the
  // family is checked first rather than trusting the call.
  sockaddr_storage local;
  socklen_t len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0 ||
      local.ss_family != AF_UNIX) {
    return out;
  }
  ucred cred{};
  socklen_t n = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) != 0 || n != sizeof cred) {
    return out;
  }
  out.pid = cred.pid;
  out.uid = cred.uid;
  out.gid = cred.gid;
  out.valid = true;
  return out;
}

PeerCred peer_credentials(const Conn& c) noexcept {
  return peer_credentials(c.fd());
}

}  // namespace weft::platform
