#include <chrono>
#include <utility>

#include <weft/client/blocking.h>
#include <weft/platform/error.h>

namespace weft::client {

using platform::platform_errc;

struct BlockingClient::Sync {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::error_code error;
  std::vector<std::byte> payload;
  std::uint64_t value = 0;
  ClientStats stats;
};

namespace {

using SyncPtr = std::shared_ptr<BlockingClient::Sync>;

// Hand-over slack on top of a deadline the Client enforces itself: the loop may be busy or,
// under qemu and TSan, slow to wake.
constexpr std::uint32_t kGraceMs = 5000;

void finish(BlockingClient::Sync& s, std::error_code e = {}) {
  std::lock_guard<std::mutex> lock(s.mu);
  s.error = e;
  s.done = true;
  s.cv.notify_all();
}

// A callback's ctx owns one reference to the Sync: the waiter may have given up already.
void* hold(const SyncPtr& s) {
  return new SyncPtr(s);
}
SyncPtr take(void* ctx) {
  std::unique_ptr<SyncPtr> p(static_cast<SyncPtr*>(ctx));
  return *p;
}

void on_call(void* ctx, Result<std::span<const std::byte>> r) noexcept {
  SyncPtr s = take(ctx);
  std::lock_guard<std::mutex> lock(s->mu);
  if (r.ok()) {
    s->payload.assign(r.value().begin(), r.value().end());
  } else {
    s->error = r.error();
  }
  s->done = true;
  s->cv.notify_all();
}

void on_ping(void* ctx, Result<std::uint64_t> r) noexcept {
  SyncPtr s = take(ctx);
  std::lock_guard<std::mutex> lock(s->mu);
  if (r.ok()) {
    s->value = r.value();
  } else {
    s->error = r.error();
  }
  s->done = true;
  s->cv.notify_all();
}

struct Job {
  std::function<void(const SyncPtr&)> work;
  SyncPtr sync;
};

void run_job(platform::Loop&, const platform::Post& p) {
  std::unique_ptr<Job> job(static_cast<Job*>(p.ptr));
  job->work(job->sync);
}

}  // namespace

Result<std::shared_ptr<BlockingClient::Sync>> BlockingClient::run(Work work,
                                                                  std::uint32_t wait_ms) {
  auto sync = std::make_shared<Sync>();
  auto* job = new Job{[this, w = std::move(work)](const SyncPtr& s) {
                        if (!client_) {
                          finish(*s, make_error_code(client_errc::closed));
                          return;
                        }
                        w(*client_, s);
                      },
                      sync};
  platform::Post p;
  p.fn = &run_job;
  p.ptr = job;
  if (auto r = rt_.worker(0).inject(p); !r) {
    delete job;
    return fail(r.error());
  }
  std::unique_lock<std::mutex> lock(sync->mu);
  if (!sync->cv.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] { return sync->done; })) {
    return fail(platform_errc::timed_out);
  }
  return sync;
}

Result<std::unique_ptr<BlockingClient>> BlockingClient::connect(const platform::Address& addr,
                                                                const BlockingOptions& options) {
  std::unique_ptr<BlockingClient> bc(new BlockingClient());
  bc->opts_ = options;
  bc->opts_.config.workers = 1;
  bc->opts_.client.on_state = &BlockingClient::on_state;
  bc->opts_.client.state_ctx = bc.get();
  if (auto r = bc->rt_.start(bc->opts_.config, {}); !r) {
    return fail(r.error());
  }
  bc->started_ = true;
  // The Client is made on the loop thread, which owns it from then on.
  BlockingClient* self = bc.get();
  auto sync = std::make_shared<Sync>();
  auto* job = new Job{[self, addr](const SyncPtr& s) {
                        auto c = Client::create(self->rt_.worker(0), self->opts_.client);
                        if (!c) {
                          finish(*s, c.error());
                          return;
                        }
                        self->client_ = std::move(c.value());
                        finish(*s, self->client_->connect(addr).error());
                      },
                      sync};
  platform::Post p;
  p.fn = &run_job;
  p.ptr = job;
  if (auto r = bc->rt_.worker(0).inject(p); !r) {
    delete job;
    return fail(r.error());
  }
  {
    std::unique_lock<std::mutex> lock(sync->mu);
    if (!sync->cv.wait_for(lock, std::chrono::milliseconds(kGraceMs), [&] { return sync->done; })) {
      return fail(platform_errc::timed_out);
    }
    if (sync->error) {
      return fail(sync->error);
    }
  }
  if (!bc->wait_ready(bc->opts_.connect_timeout_ms)) {
    return fail(platform_errc::timed_out);
  }
  return bc;
}

BlockingClient::~BlockingClient() {
  if (started_) {
    auto closed = run(
        [](Client& c, const SyncPtr& s) {
          c.close();
          finish(*s);
        },
        kGraceMs);
    (void)closed;
    rt_.stop(opts_.config.drain_timeout_ms);
    rt_.wait();
  }
  client_.reset();  // the loop thread has ended: nothing else touches it
}

bool BlockingClient::wait_ready(std::uint32_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return ready(); });
}

void BlockingClient::on_state(void* ctx, bool ready) noexcept {
  auto* self = static_cast<BlockingClient*>(ctx);
  std::lock_guard<std::mutex> lock(self->mu_);
  self->ready_.store(ready, std::memory_order_release);
  self->cv_.notify_all();
}

void BlockingClient::on_event(void* ctx, std::span<const std::byte> topic,
                              std::span<const std::byte> payload) noexcept {
  auto* self = static_cast<BlockingClient*>(ctx);
  std::lock_guard<std::mutex> lock(self->mu_);
  if (self->events_.size() >= self->opts_.max_events) {
    self->dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Event e;
  e.topic.assign(reinterpret_cast<const char*>(topic.data()), topic.size());
  e.payload.assign(payload.begin(), payload.end());
  self->events_.push_back(std::move(e));
  self->cv_.notify_all();
}

Result<std::vector<std::byte>> BlockingClient::call(std::uint32_t method,
                                                    std::span<const std::byte> payload,
                                                    CallOptions options) {
  if (options.deadline_ms == 0) {
    options.deadline_ms = opts_.call_timeout_ms;
  }
  std::vector<std::byte> copy(payload.begin(), payload.end());  // the caller's bytes may go
  auto s = run(
      [method, options, copy = std::move(copy)](Client& c, const SyncPtr& sync) {
        void* ctx = hold(sync);
        if (auto r = c.call(method, copy, options, &on_call, ctx); !r) {
          take(ctx);
          finish(*sync, r.error());
        }
      },
      options.deadline_ms + kGraceMs);
  if (!s) {
    return fail(s.error());
  }
  if (s.value()->error) {
    return fail(s.value()->error);
  }
  return std::move(s.value()->payload);
}

Result<void> BlockingClient::message(std::uint32_t method, std::span<const std::byte> payload) {
  std::vector<std::byte> copy(payload.begin(), payload.end());
  auto s =
      run([method, copy = std::move(copy)](
              Client& c, const SyncPtr& sync) { finish(*sync, c.message(method, copy).error()); },
          kGraceMs);
  return !s ? fail(s.error()) : s.value()->error ? fail(s.value()->error) : Result<void>();
}

Result<void> BlockingClient::publish(std::span<const std::byte> topic,
                                     std::span<const std::byte> payload) {
  std::vector<std::byte> t(topic.begin(), topic.end());
  std::vector<std::byte> copy(payload.begin(), payload.end());
  auto s = run([t = std::move(t), copy = std::move(copy)](
                   Client& c, const SyncPtr& sync) { finish(*sync, c.publish(t, copy).error()); },
               kGraceMs);
  return !s ? fail(s.error()) : s.value()->error ? fail(s.value()->error) : Result<void>();
}

Result<void> BlockingClient::subscribe(std::span<const std::byte> topic) {
  std::vector<std::byte> t(topic.begin(), topic.end());
  auto s = run(
      [this, t = std::move(t)](Client& c, const SyncPtr& sync) {
        finish(*sync, c.subscribe(t, &BlockingClient::on_event, this).error());
      },
      kGraceMs);
  return !s ? fail(s.error()) : s.value()->error ? fail(s.value()->error) : Result<void>();
}

Result<void> BlockingClient::unsubscribe(std::span<const std::byte> topic) {
  std::vector<std::byte> t(topic.begin(), topic.end());
  auto s = run([t = std::move(t)](Client& c,
                                  const SyncPtr& sync) { finish(*sync, c.unsubscribe(t).error()); },
               kGraceMs);
  return !s ? fail(s.error()) : s.value()->error ? fail(s.value()->error) : Result<void>();
}

Result<Event> BlockingClient::next_event(std::uint32_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                    [&] { return !events_.empty(); })) {
    return fail(platform_errc::timed_out);
  }
  Event e = std::move(events_.front());
  events_.pop_front();
  return e;
}

Result<std::uint64_t> BlockingClient::ping(std::uint32_t timeout_ms) {
  auto s = run(
      [timeout_ms](Client& c, const SyncPtr& sync) {
        void* ctx = hold(sync);
        if (auto r = c.ping(timeout_ms, &on_ping, ctx); !r) {
          take(ctx);
          finish(*sync, r.error());
        }
      },
      timeout_ms + kGraceMs);
  if (!s) {
    return fail(s.error());
  }
  if (s.value()->error) {
    return fail(s.value()->error);
  }
  return s.value()->value;
}

ClientStats BlockingClient::stats() {
  auto s = run(
      [](Client& c, const SyncPtr& sync) {
        {
          std::lock_guard<std::mutex> lock(sync->mu);
          sync->stats = c.stats();
        }
        finish(*sync);
      },
      kGraceMs);
  return s ? s.value()->stats : ClientStats{};
}

}  // namespace weft::client
