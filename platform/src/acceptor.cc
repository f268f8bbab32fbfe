#include "acceptor.h"

#include <weft/base/log.h>
#include <weft/platform/error.h>

#include <unistd.h>
#include <cerrno>
#include <cstring>

#include "backend.h"
#include "mailbox.h"

namespace weft::platform::detail {
namespace {

// Retry delay for accept after EMFILE/ENFILE/ENOMEM: long enough that a process out of
// descriptors is not spun on, short enough that service resumes soon after one is freed.
constexpr std::uint64_t kAcceptRetryMs = 100;

}  // namespace

Acceptor::Acceptor(Loop& loop) noexcept : loop_(loop) {
  for (Listener& l : listeners_) {
    l.retry.ctx = this;
    l.retry.fn = [](TimerNode* n) {
      auto* self = static_cast<Acceptor*>(n->ctx);
      for (std::uint32_t j = 0; j < Loop::kMaxListeners; ++j) {
        if (&self->listeners_[j].retry == n) {
          self->arm(j);
        }
      }
    };
  }
}

std::uint64_t Acceptor::user_data(std::uint32_t li) const noexcept {
  return pack_user_data(Op::accept, 0, loop_.cfg_.slots() + li);
}

Result<std::uint32_t> Acceptor::add_listener(int fd, HandlerFactory& f, bool hand_off) noexcept {
  auto i = add_service(f);
  if (!i) {
    return i;
  }
  Listener& l = listeners_[i.value()];
  l.fd = fd;
  l.hand_off = hand_off;
  arm(i.value());
  return i;
}

Result<std::uint32_t> Acceptor::add_service(HandlerFactory& f) noexcept {
  if (n_services_ == Loop::kMaxListeners) {
    return fail(platform_errc::listener_limit);
  }
  services_[n_services_] = &f;
  return n_services_++;
}

void Acceptor::arm(std::uint32_t li) noexcept {
  Listener& l = listeners_[li];
  if (l.fd < 0 || l.armed || l.closing) {
    return;
  }
  l.armed = true;
  loop_.backend_->accept(l.fd, user_data(li));
}

void Acceptor::adopt(Loop& target, const Post& p) noexcept {
  target.open_accepted(static_cast<int>(p.a), static_cast<std::uint32_t>(p.b));
}

void Acceptor::hand_off(int fd, std::uint32_t service) noexcept {
  Loop* target = targets_[listeners_[service].next_target++ % n_targets_];
  if (target == &loop_) {
    loop_.open_accepted(fd, service);
    return;
  }
  if (!loop_.post(*target,
                  Post{&Acceptor::adopt, nullptr, static_cast<std::uint64_t>(fd), service})) {
    // Ring full or target stopped: refuse this one connection rather than wait.
    ::close(fd);
    loop_.stats_.handoff_failed.add();
  }
}

void Acceptor::on_accept(std::uint32_t li, const Completion& cq) noexcept {
  if (li >= Loop::kMaxListeners) {
    return;
  }
  Listener& l = listeners_[li];
  if (!cq.more) {
    l.armed = false;
  }
  if (cq.result >= 0) {
    const int fd = cq.result;
    if (l.closing) {
      ::close(fd);
    } else if (l.hand_off && n_targets_ != 0) {
      hand_off(fd, li);
    } else {
      loop_.open_accepted(fd, li);
    }
  } else if (cq.result != -ECANCELED) {
    log(LogLevel::warn, "worker %u: accept failed: %s", loop_.index(), std::strerror(-cq.result));
  }
  if (l.armed) {
    return;
  }
  if (l.closing) {
    ::close(l.fd);
    l.fd = -1;
  } else if (cq.result < 0 && cq.result != -ECANCELED && cq.result != -ECONNABORTED &&
             cq.result != -EINTR) {
    // EMFILE/ENFILE (out of descriptors), ENOMEM, or anything unexpected: back off rather
    // than spin on an accept that fails at once.
    loop_.timers_.schedule(l.retry, loop_.now_ + kAcceptRetryMs);
  } else {
    arm(li);  // the multishot ended normally (or was interrupted): re-arm
  }
}

void Acceptor::close_listeners() noexcept {
  for (std::uint32_t i = 0; i < Loop::kMaxListeners; ++i) {
    Listener& l = listeners_[i];
    if (l.fd < 0 || l.closing) {
      continue;
    }
    l.closing = true;
    loop_.timers_.cancel(l.retry);
    if (l.armed) {
      // The fd is closed when the accept's last completion arrives: closing it earlier
      // would leave the kernel's in-flight accept holding the socket open.
      loop_.backend_->cancel_all(l.fd, loop_.cfg_.slots() + i);
    } else {
      ::close(l.fd);
      l.fd = -1;
    }
  }
}

bool Acceptor::any_open() const noexcept {
  for (const Listener& l : listeners_) {
    if (l.fd >= 0) {
      return true;
    }
  }
  return false;
}

void Acceptor::close_fds() noexcept {
  for (Listener& l : listeners_) {
    if (l.fd >= 0) {
      ::close(l.fd);
      l.fd = -1;
    }
  }
}

}  // namespace weft::platform::detail
