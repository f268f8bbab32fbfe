// The io_uring backend: one ring per worker, multishot accept and receive, receive buffers
// from a provided-buffer ring that mirrors the pool's receive partition.
//
// Submissions are only queued by the calls below; wait() submits them all with the wait in
// one io_uring_enter, so an iteration that answers 64 connections costs one system call.
// Recycled receive buffers are added to the buffer ring immediately and published to the
// kernel (one tail store) just before that enter.
#include "backends.h"

#include <weft/base/assert.h>
#include <weft/base/log.h>
#include <weft/platform/error.h>

#include <liburing.h>

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>

// Incremental provided-buffer consumption (Linux 6.12). liburing 2.3 (Debian 12) predates
// it: the values are the kernel's uapi ones.
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif

namespace weft::platform::detail {
namespace {

// The 16-bit field after bgid is `pad` in liburing 2.3 and `flags` in later headers (same
// offset in the kernel's uapi): set it without naming it.
void set_buf_reg_flags(io_uring_buf_reg& reg, std::uint16_t flags) noexcept {
  static_assert(sizeof(reg.bgid) == 2 && sizeof(io_uring_buf_reg) == 40);
  std::memcpy(reinterpret_cast<char*>(&reg) + offsetof(io_uring_buf_reg, bgid) + 2, &flags,
              sizeof flags);
}

constexpr int kBufGroup = 0;
constexpr std::uint64_t kProbeUserData = 0x00ffffffffffff01ull;

class UringBackend final : public Backend {
 public:
  explicit UringBackend(const BackendOptions& o) noexcept
      : pool_(o.pool), want_incremental_(o.recv_incremental) {}
  ~UringBackend() override {
    if (ring_ok_) {
      if (br_ != nullptr) {
        io_uring_unregister_buf_ring(&ring_, kBufGroup);
      }
      io_uring_queue_exit(&ring_);
    }
    if (br_ != nullptr) {
      ::munmap(br_, br_bytes_);
    }
  }

  // Creates the ring and checks every feature weft uses; on failure `reason` says which.
  Result<void> init(std::uint32_t entries, char* reason, std::size_t size) noexcept {
    // Newest flags first; older kernels reject unknown setup flags with EINVAL.
    // SINGLE_ISSUER + DEFER_TASKRUN (6.1): completions are posted only when this thread
    // enters the kernel to wait, with no interrupts of the worker in between. This needs
    // the ring's creator to be its only submitter: Runtime creates each Loop on its worker.
    const unsigned flag_sets[] = {
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN, 0u};
    int rc = -EINVAL;
    for (unsigned flags : flag_sets) {
      io_uring_params p{};
      p.flags = flags;
      p.cq_entries = entries * 4;  // multishot receives can post many CQEs per SQE
      p.flags |= IORING_SETUP_CQSIZE;
      rc = io_uring_queue_init_params(entries, &ring_, &p);
      if (rc != -EINVAL) {
        break;
      }
    }
    if (rc < 0) {
      describe_setup_error(-rc, reason, size);
      return fail_errno(rc);
    }
    ring_ok_ = true;

    if (io_uring_probe* probe = io_uring_get_probe_ring(&ring_)) {
      const struct {
        int op;
        const char* name;
      } needed[] = {{IORING_OP_ACCEPT, "ACCEPT"},   {IORING_OP_RECV, "RECV"},
                    {IORING_OP_SENDMSG, "SENDMSG"}, {IORING_OP_CONNECT, "CONNECT"},
                    {IORING_OP_READ, "READ"},       {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}};
      for (const auto& n : needed) {
        if (!io_uring_opcode_supported(probe, n.op)) {
          std::snprintf(reason, size, "kernel lacks io_uring opcode %s", n.name);
          io_uring_free_probe(probe);
          return fail(platform_errc::backend_unavailable);
        }
      }
      io_uring_free_probe(probe);
    } else {
      std::snprintf(reason, size, "io_uring opcode probe failed (kernel < 5.6)");
      return fail(platform_errc::backend_unavailable);
    }

    // Provided-buffer ring over the pool's receive partition.
    const std::uint32_t n = pool_->recv_count();
    br_entries_ = n;
    br_bytes_ = static_cast<std::size_t>(n) * sizeof(io_uring_buf);
    void* mem =
        ::mmap(nullptr, br_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
      std::snprintf(reason, size, "mmap of the buffer ring failed: %s", std::strerror(errno));
      return fail_errno(errno);
    }
    br_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(br_);
    reg.ring_entries = n;
    reg.bgid = kBufGroup;
    rc = -EINVAL;
    if (want_incremental_) {
      // Incremental consumption: a receive takes only the bytes it needs from the buffer at
      // the head, and the next receive (of any socket) continues in the same buffer. Kernels
      // before 6.12 reject the flag with EINVAL: fall back to a whole buffer per receive.
      set_buf_reg_flags(reg, IOU_PBUF_RING_INC);
      rc = io_uring_register_buf_ring(&ring_, &reg, 0);
      incremental_ = rc == 0;
      if (incremental_) {
        off_.reset(new (std::nothrow) std::uint32_t[n]());
        held_.reset(new (std::nothrow) bool[n]());
        if (!off_ || !held_) {
          std::snprintf(reason, size, "out of memory");
          return fail_errno(ENOMEM);
        }
      }
    }
    if (rc < 0) {
      set_buf_reg_flags(reg, 0);
      rc = io_uring_register_buf_ring(&ring_, &reg, 0);
    }
    if (rc < 0) {
      std::snprintf(reason, size, "provided buffer rings unsupported (%s; kernel < 5.19)",
                    std::strerror(-rc));
      ::munmap(br_, br_bytes_);
      br_ = nullptr;
      return fail(platform_errc::backend_unavailable);
    }
    io_uring_buf_ring_init(br_);
    br_mask_ = io_uring_buf_ring_mask(n);
    for (BufId id = 0; id < n; ++id) {
      add_buffer(id);
    }
    publish_buffers();
    pool_->set_recv_recycler(
        [](void* ctx, BufId id) { static_cast<UringBackend*>(ctx)->add_buffer(id); }, this);

    return probe_multishot_recv(reason, size);
  }

  BackendKind kind() const noexcept override { return BackendKind::uring; }
  bool incremental() const noexcept override { return incremental_; }
  std::uint32_t kernel_held() const noexcept override { return held_n_; }

  void accept(int fd, std::uint64_t ud) noexcept override {
    io_uring_sqe* s = sqe();
    io_uring_prep_multishot_accept(s, fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, ud);
  }

  void recv(int fd, std::uint64_t ud) noexcept override {
    io_uring_sqe* s = sqe();
    io_uring_prep_recv_multishot(s, fd, nullptr, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = kBufGroup;
    io_uring_sqe_set_data64(s, ud);
  }

  void send(int fd, const msghdr* msg, std::uint64_t ud) noexcept override {
    io_uring_sqe* s = sqe();
    io_uring_prep_sendmsg(s, fd, msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, ud);
  }

  void connect(int fd, const Address* addr, std::uint64_t ud) noexcept override {
    io_uring_sqe* s = sqe();
    io_uring_prep_connect(s, fd, addr->sockaddr_ptr(), addr->length());
    io_uring_sqe_set_data64(s, ud);
  }

  void watch(int efd, std::uint64_t ud) noexcept override {
    io_uring_sqe* s = sqe();
    io_uring_prep_read(s, efd, &wake_value_, sizeof wake_value_, 0);
    io_uring_sqe_set_data64(s, ud);
  }

  void cancel(int, std::uint64_t ud) noexcept override {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, ud, 0);
    io_uring_sqe_set_data64(s, pack_user_data(Op::cancel, 0, 0));
  }

  void cancel_all(int fd, std::uint32_t) noexcept override {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel_fd(s, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(s, pack_user_data(Op::cancel, 0, 0));
  }

  std::size_t wait(std::span<Completion> out, int timeout_ms) noexcept override {
    publish_buffers();
    int rc;
    if (timeout_ms == 0) {
      rc = io_uring_submit_and_get_events(&ring_);
    } else {
      io_uring_cqe* cqe = nullptr;
      __kernel_timespec ts{};
      ts.tv_sec = timeout_ms / 1000;
      ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
      rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, timeout_ms < 0 ? nullptr : &ts,
                                            nullptr);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      log(LogLevel::error, "io_uring_enter: %s", std::strerror(-rc));
      WEFT_PANIC("io_uring_enter failed");
    }
    std::size_t n = 0;
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if (n == out.size()) {
        break;
      }
      ++seen;
      const std::uint64_t ud = cqe->user_data;
      if (ud == LIBURING_UDATA_TIMEOUT || user_data_op(ud) == Op::cancel) {
        continue;
      }
      Completion& c = out[n++];
      c.user_data = ud;
      c.result = cqe->res;
      c.more = (cqe->flags & IORING_CQE_F_MORE) != 0;
      c.buf = kNoBuf;
      if (cqe->flags & IORING_CQE_F_BUFFER) {
        take_buffer(c, cqe->flags >> IORING_CQE_BUFFER_SHIFT, cqe->res, cqe->flags);
      }
    }
    io_uring_cq_advance(&ring_, seen);
    return n;
  }

  void recycle(BufId id) noexcept override { add_buffer(id); }

 private:
  // A completion named receive buffer id. Whole-buffer mode: the buffer is the caller's
  // (refcount 1) if bytes landed in it, else straight back to the ring. Incremental mode:
  // the kernel keeps filling the buffer while IORING_CQE_F_BUF_MORE is set; the pool holds one
  // reference for the kernel meanwhile (taken when the buffer is first seen, dropped on its
  // last completion) and each completion with bytes takes one more for the caller, whose
  // bytes start where the previous completion's ended.
  void take_buffer(Completion& c, BufId id, int res, unsigned flags) noexcept {
    if (!incremental_) {
      pool_->adopt_recv(id);
      if (res > 0) {
        c.buf = id;
      } else {
        pool_->unref(id);  // nothing was received into it: straight back to the ring
      }
      return;
    }
    if (!held_[id]) {
      held_[id] = true;
      ++held_n_;
      off_[id] = 0;
      pool_->adopt_recv(id);  // the kernel's reference
    }
    if (res > 0) {
      pool_->ref(id);
      c.buf = id;
      c.offset = off_[id];
      off_[id] += static_cast<std::uint32_t>(res);
    }
    if ((flags & IORING_CQE_F_BUF_MORE) == 0) {
      held_[id] = false;
      --held_n_;
      pool_->unref(id);  // the kernel is done with it; back to the ring once readers are
    }
  }

  io_uring_sqe* sqe() noexcept {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (s == nullptr) {
      // Submission queue full: hand what we have to the kernel and take a fresh entry.
      io_uring_submit(&ring_);
      s = io_uring_get_sqe(&ring_);
      if (s == nullptr) {
        WEFT_PANIC("io_uring submission queue stays full");
      }
    }
    return s;
  }

  void add_buffer(BufId id) noexcept {
    io_uring_buf_ring_add(br_, pool_->data(id), pool_->buffer_size(),
                          static_cast<unsigned short>(id), br_mask_, br_unpublished_++);
  }

  void publish_buffers() noexcept {
    if (br_unpublished_ != 0) {
      // Release store of the new tail: the kernel sees the entries written above.
      io_uring_buf_ring_advance(br_, br_unpublished_);
      br_unpublished_ = 0;
    }
  }

  static void describe_setup_error(int err, char* reason, std::size_t size) noexcept {
    switch (err) {
      case ENOSYS:
        std::snprintf(reason, size,
                      "io_uring_setup: ENOSYS (kernel without io_uring, or qemu-user)");
        break;
      case EPERM: {
        int disabled = -1;
        if (FILE* f = std::fopen("/proc/sys/kernel/io_uring_disabled", "r")) {
          if (std::fscanf(f, "%d", &disabled) != 1) {
            disabled = -1;
          }
          std::fclose(f);
        }
        std::snprintf(reason, size,
                      "io_uring_setup: EPERM (kernel.io_uring_disabled=%d, or a seccomp filter)",
                      disabled);
        break;
      }
      case ENOMEM:
        std::snprintf(reason, size, "io_uring_setup: ENOMEM (RLIMIT_MEMLOCK too low?)");
        break;
      default:
        std::snprintf(reason, size, "io_uring_setup: %s", std::strerror(err));
    }
  }

  // Multishot receive needs Linux 6.0; the opcode probe cannot tell, so try it once on a
  // socket pair: one byte in, one CQE with a selected buffer and F_MORE out.
  Result<void> probe_multishot_recv(char* reason, std::size_t size) noexcept {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
      std::snprintf(reason, size, "socketpair: %s", std::strerror(errno));
      return fail_errno(errno);
    }
    recv(sv[0], kProbeUserData);
    const char byte = 'x';
    ssize_t w = ::write(sv[1], &byte, 1);
    (void)w;
    bool ok = false;
    int first_res = 0;
    bool armed = true;
    for (int i = 0; i < 4 && armed; ++i) {
      io_uring_cqe* cqe = nullptr;
      __kernel_timespec ts{1, 0};
      if (i == 1) {
        cancel(sv[0], kProbeUserData);
      }
      int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      if (rc < 0 || cqe == nullptr) {
        break;
      }
      if (cqe->user_data == kProbeUserData) {
        if (i == 0) {
          first_res = cqe->res;
          ok = cqe->res == 1 && (cqe->flags & IORING_CQE_F_BUFFER) &&
               (cqe->flags & IORING_CQE_F_MORE);
        }
        if (cqe->flags & IORING_CQE_F_BUFFER) {
          // Through the normal path, so that an incrementally consumed buffer the kernel
          // still holds is tracked, not added to the ring a second time.
          Completion tmp;
          take_buffer(tmp, cqe->flags >> IORING_CQE_BUFFER_SHIFT, cqe->res, cqe->flags);
          if (tmp.buf != kNoBuf) {
            pool_->unref(tmp.buf);
          }
        }
        armed = (cqe->flags & IORING_CQE_F_MORE) != 0;
      }
      io_uring_cqe_seen(&ring_, cqe);
      if (!ok) {
        break;
      }
    }
    publish_buffers();
    ::close(sv[0]);
    ::close(sv[1]);
    if (!ok) {
      std::snprintf(reason, size, "multishot recv unsupported (probe result %s; kernel < 6.0)",
                    first_res < 0 ? std::strerror(-first_res) : "no buffer/F_MORE");
      return fail(platform_errc::backend_unavailable);
    }
    if (armed) {
      std::snprintf(reason, size, "multishot recv could not be cancelled in the probe");
      return fail(platform_errc::backend_unavailable);
    }
    return {};
  }

  io_uring ring_{};
  bool ring_ok_ = false;
  BufferPool* pool_;
  io_uring_buf_ring* br_ = nullptr;
  std::size_t br_bytes_ = 0;
  std::uint32_t br_entries_ = 0;
  int br_mask_ = 0;
  int br_unpublished_ = 0;
  bool want_incremental_;
  bool incremental_ = false;
  std::unique_ptr<std::uint32_t[]> off_;  // incremental: bytes the kernel consumed per buffer
  std::unique_ptr<bool[]> held_;          // incremental: the kernel is filling this buffer
  std::uint32_t held_n_ = 0;
  std::uint64_t wake_value_ = 0;
};

}  // namespace

Result<std::unique_ptr<Backend>> make_uring_backend(const BackendOptions& o, char* reason,
                                                    std::size_t reason_size) noexcept {
  std::unique_ptr<UringBackend> b(new (std::nothrow) UringBackend(o));
  if (!b) {
    std::snprintf(reason, reason_size, "out of memory");
    return fail_errno(ENOMEM);
  }
  auto r = b->init(o.uring_entries, reason, reason_size);
  if (!r) {
    // The pool must not keep a recycler pointing at the backend being destroyed.
    o.pool->set_recv_recycler(nullptr, nullptr);
    return fail(r.error());
  }
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace weft::platform::detail
