// detail::Backend (private) — the one completion interface, with io_uring and epoll
// implementations.
//
// Upper layers (Loop) see a proactor: they submit accept / recv / send / connect / eventfd
// watches tagged with a 64-bit user_data and later receive one Completion per result. The
// io_uring backend maps each call to an SQE (multishot accept, multishot recv from a
// provided-buffer ring); the epoll backend emulates the same completions from edge-triggered
// readiness. Both are tested by the same suites.
//
// user_data layout: [op:8 | generation:24 | slot:32] (see pack_user_data). The backend never
// interprets generation; the epoll backend uses slot to find its per-descriptor state, so a
// slot must name one descriptor at a time.
//
// Threading: a backend belongs to one Loop thread. No call blocks except wait().
// Lifetimes: the msghdr (and its iovecs) given to send(), and the Address given to connect(),
// must stay valid and unchanged until that operation's completion.
#pragma once

#include <sys/socket.h>
#include <cstdint>
#include <memory>
#include <span>

#include <weft/base/result.h>
#include <weft/platform/address.h>
#include <weft/platform/buffer_pool.h>
#include <weft/platform/config.h>

namespace weft::platform::detail {

enum class Op : std::uint8_t { none = 0, accept, recv, send, connect, wake, cancel };

[[nodiscard]] constexpr std::uint64_t pack_user_data(Op op, std::uint32_t gen,
                                                     std::uint32_t slot) noexcept {
  return (static_cast<std::uint64_t>(op) << 56) |
         (static_cast<std::uint64_t>(gen & 0xffffffu) << 32) | slot;
}
[[nodiscard]] constexpr Op user_data_op(std::uint64_t ud) noexcept {
  return static_cast<Op>(ud >> 56);
}
[[nodiscard]] constexpr std::uint32_t user_data_gen(std::uint64_t ud) noexcept {
  return static_cast<std::uint32_t>(ud >> 32) & 0xffffffu;
}
[[nodiscard]] constexpr std::uint32_t user_data_slot(std::uint64_t ud) noexcept {
  return static_cast<std::uint32_t>(ud);
}

struct Completion {
  std::uint64_t user_data = 0;
  // >= 0: success (accept: the new fd; recv: bytes, 0 = end of stream; send: bytes sent,
  // possibly fewer than queued; connect, wake: 0). < 0: a negative errno.
  std::int32_t result = 0;
  BufId buf = kNoBuf;  // recv with result > 0: the receive buffer; one reference is the caller's
  bool more = false;   // multishot: this operation stays armed and will complete again
  std::uint32_t offset = 0;  // where the received bytes start in buf (incremental buffers)
};

class Backend {
 public:
  virtual ~Backend() = default;
  [[nodiscard]] virtual BackendKind kind() const noexcept = 0;
  // Whether receives may share a buffer (Completion::offset can be non-zero).
  [[nodiscard]] virtual bool incremental() const noexcept { return false; }
  // Receive buffers the kernel is filling incrementally (held in the pool for it): in use,
  // but by no one in weft.
  [[nodiscard]] virtual std::uint32_t kernel_held() const noexcept { return 0; }

  // Multishot accept. Each completion: a new fd (non-blocking, close-on-exec) or -errno;
  // more=false means the operation ended and must be re-armed to accept again.
  virtual void accept(int listen_fd, std::uint64_t ud) noexcept = 0;
  // Multishot receive into buffers of the pool's receive partition. Terminal completions
  // (more=false): 0 end of stream, -ENOBUFS no free receive buffer (re-arm once buffers are
  // back: no data was lost), -ECANCELED after cancel(), or another -errno.
  virtual void recv(int fd, std::uint64_t ud) noexcept = 0;
  // One vectored send (MSG_NOSIGNAL). Completes with the bytes sent or -errno.
  virtual void send(int fd, const msghdr* msg, std::uint64_t ud) noexcept = 0;
  // Non-blocking connect of fd to addr. Completes with 0 or -errno.
  virtual void connect(int fd, const Address* addr, std::uint64_t ud) noexcept = 0;
  // Reads the 8-byte counter of an eventfd; completes (result 8) when it was signalled.
  // One-shot: re-arm after each completion.
  virtual void watch(int eventfd, std::uint64_t ud) noexcept = 0;
  // Cancels the operation tagged ud (on fd); it completes with -ECANCELED, or with its own
  // result if that raced ahead.
  virtual void cancel(int fd, std::uint64_t ud) noexcept = 0;
  // Cancels every operation on fd, each completing as for cancel(). Call before close(fd).
  virtual void cancel_all(int fd, std::uint32_t slot) noexcept = 0;

  // Submits what was queued and waits up to timeout_ms (-1: no limit, 0: poll) for at least
  // one completion; fills out and returns how many. Errors other than EINTR are fatal
  // (WEFT_PANIC): they mean the backend itself is broken.
  virtual std::size_t wait(std::span<Completion> out, int timeout_ms) noexcept = 0;

  // Gives a receive buffer back to the kernel (io_uring buffer ring). Called by the pool's
  // recycler; the epoll backend keeps buffers on the pool's free list instead.
  virtual void recycle(BufId) noexcept {}
};

struct BackendOptions {
  BackendKind kind = BackendKind::automatic;
  std::uint32_t uring_entries = 1024;
  std::uint32_t max_slots = 0;  // slots used in user_data (epoll state table size)
  BufferPool* pool = nullptr;   // receive partition feeds recv()
  // io_uring: consume receive buffers incrementally where the kernel can (6.12+), so that
  // small receives share a buffer instead of taking a whole one each.
  bool recv_incremental = true;
};

struct BackendChoice {
  std::unique_ptr<Backend> backend;
  // Why io_uring was not used (empty when it was, or when epoll was asked for).
  char fallback_reason[160] = {};
};

// Creates the backend. automatic: tries io_uring (ring creation, required opcodes, provided
// buffer ring, multishot receive on a socket pair), falls back to epoll and records why.
// WEFT_BACKEND=uring|epoll in the environment overrides options.kind. Errors:
// backend_unavailable (uring asked for and refused; reason logged), or errno from epoll.
[[nodiscard]] Result<BackendChoice> make_backend(const BackendOptions& options) noexcept;

}  // namespace weft::platform::detail
