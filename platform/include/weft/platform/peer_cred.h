// Who is on the other end of a connection: the peer's credentials as the kernel recorded them.
//
// For an AF_UNIX stream socket the kernel stores the connecting process's pid, effective uid
// and effective gid when the connection is made (connect() for the client side, listen() for
// the server side) and returns them with getsockopt(SO_PEERCRED). They cannot be forged by the
// peer: they are trusted input (docs/security.md). They describe the peer at connect time; a
// process that changes its ids later, or passes the socket to another process, is still
// reported with the ids it had then. Only the primary gid is given (not the supplementary
// groups). TCP (and anything else that is not AF_UNIX) has no credentials: valid is false.
//
// PeerCred is a 16-byte value; Conn does not carry one (memory per connection matters). A
// protocol that needs it asks once, in Handler::on_open, and caches what it needs.
#pragma once

#include <cstdint>

namespace weft::platform {

class Conn;

struct PeerCred {
  std::int32_t pid = -1;    // the peer process's pid (in the reader's pid namespace; 0 if
                            // it is in a namespace the reader cannot see)
  std::uint32_t uid = ~0u;  // effective uid at connect time
  std::uint32_t gid = ~0u;  // effective (primary) gid at connect time
  bool valid = false;       // false: not a Unix-domain socket, or the query failed
};

// The credentials of c's peer (getsockopt SO_PEERCRED on c's socket). One system call, no
// allocation; call it on c's loop thread (any Handler callback, typically on_open). Returns
// an invalid PeerCred (valid == false, the fields at their defaults) for TCP and on any error.
[[nodiscard]] PeerCred peer_credentials(const Conn& c) noexcept;

// The same for a socket descriptor (the listener-side or client-side end of an AF_UNIX
// stream or seqpacket socket). Invalid for other families and on error.
[[nodiscard]] PeerCred peer_credentials(int fd) noexcept;

}  // namespace weft::platform
