// The Conn and Loop APIs that later layers build on, on both backends: ConnIds that travel
// between workers, Loop::defer, post-ring room notification, Handler::on_timeout and
// per-connection deadlines, set_watermark_pause, Loop::connect's options and outbound
// reserve, and Config::problem(). Most tests drive one Loop by hand (run_once on the test
// thread, clients as non-blocking reads in between); the cross-worker ones use a Runtime.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <weft/platform/error.h>
#include <weft/platform/handler_pool.h>
#include <weft/platform/loop.h>
#include <weft/platform/runtime.h>

#include "test_net.h"

namespace weft::platform {
namespace {

using namespace std::chrono_literals;

std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}
std::string_view text_of(const BufView& in) {
  return {reinterpret_cast<const char*>(in.bytes.data()), in.bytes.size()};
}

// A handler whose callbacks are the test's lambdas (unset ones do the defaults).
struct Hooks {
  std::function<void(Conn&)> create;  // in the factory's create(), before on_open
  std::function<void(Conn&)> open;
  std::function<void(Conn&, BufView)> data;
  std::function<bool(Conn&, Timeout)> timeout;
  std::function<void(Conn&, std::error_code)> close;
  std::function<void(Conn&)> writable;
};

class HookHandler final : public Handler {
 public:
  explicit HookHandler(Hooks* h) : h_(h) {}
  void on_open(Conn& c) noexcept override {
    if (h_->open) {
      h_->open(c);
    }
  }
  void on_writable(Conn& c) noexcept override {
    if (h_->writable) {
      h_->writable(c);
    }
  }
  void on_data(Conn& c, BufView in) noexcept override {
    if (h_->data) {
      h_->data(c, in);
    }
  }
  bool on_timeout(Conn& c, Timeout t) noexcept override {
    return h_->timeout ? h_->timeout(c, t) : false;
  }
  void on_close(Conn& c, std::error_code reason) noexcept override {
    if (h_->close) {
      h_->close(c, reason);
    }
  }

 private:
  Hooks* h_;
};

class HookFactory final : public HandlerFactory {
 public:
  explicit HookFactory(Hooks* h) : h_(h) {}
  ~HookFactory() override {
    for (Handler* h : live_) {  // connections a Loop destroyed mid-test never closed
      delete h;
    }
  }
  Handler* create(Conn& c) noexcept override {
    if (h_->create) {
      h_->create(c);
    }
    live_.push_back(new HookHandler(h_));
    return live_.back();
  }
  void destroy(Handler* h) noexcept override {
    live_.erase(std::find(live_.begin(), live_.end(), h));
    delete h;
  }

 private:
  Hooks* h_;
  std::vector<Handler*> live_;
};

// A loopback client read without blocking, between loop iterations on the same thread.
struct Client {
  int fd = -1;
  std::string in;
  bool eof = false;
  int error = 0;  // errno of a failed read (ECONNRESET)

  explicit Client(const Address& a, int rcvbuf = 0) {
    fd = ::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      return;
    }
    test::set_timeouts(fd, 5000);
    if (rcvbuf != 0) {  // before connect(), so the window is sized from it
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    if (::connect(fd, a.sockaddr_ptr(), a.length()) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ~Client() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
  bool send(std::string_view s) { return test::write_all(fd, s.data(), s.size()); }
  void poll() {
    char b[16384];
    while (!eof && error == 0) {
      const ssize_t r = ::recv(fd, b, sizeof b, MSG_DONTWAIT);
      if (r > 0) {
        in.append(b, static_cast<std::size_t>(r));
      } else if (r == 0) {
        eof = true;
      } else if (errno != EINTR) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          error = errno;
        }
        return;
      }
    }
  }
  [[nodiscard]] bool closed() const { return eof || error != 0; }
};

Config small_config(BackendKind kind) {
  Config cfg;
  cfg.backend = kind;
  cfg.max_connections = 16;
  cfg.recv_buffers = 16;
  cfg.send_buffers = 16;
  cfg.buffer_size = 4096;
  return cfg;
}

class ConnApiTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == BackendKind::uring && !test::uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
    cfg_ = small_config(GetParam());
  }

  void make_loop() {
    auto l = Loop::create(cfg_, 0);
    ASSERT_TRUE(l.ok()) << l.error().message();
    loop_ = std::move(l.value());
    ASSERT_EQ(loop_->backend_kind(), GetParam());
  }
  // Serves factory on 127.0.0.1:<any> from loop_; returns the address.
  Address serve(HandlerFactory& factory) {
    auto fd = listen_socket(Address::loopback_v4(0), false, 64);
    EXPECT_TRUE(fd.ok());
    auto local = Address::local_of(fd.value());
    EXPECT_TRUE(local.ok());
    EXPECT_TRUE(loop_->add_listener(fd.value(), factory).ok());
    return local.value();
  }
  // Runs the loop until done() (checked between iterations) or the deadline.
  template <class F>
  bool spin(F done, std::chrono::milliseconds limit = 10s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > end) {
        return done();
      }
      loop_->run_once(5);
    }
    return true;
  }

  Config cfg_;
  std::unique_ptr<Loop> loop_;
};

// ---- ConnIds that travel between workers -------------------------------------------------

struct Travel {
  std::mutex mu;
  std::vector<ConnId> opened;  // in accept order
  std::atomic<int> closed{0};
  std::atomic<int> found_on_wrong_worker{0};
  std::atomic<int> lost{0};
  std::atomic<int> bad_worker{0};
  std::atomic<int> check{0};  // 0: not run; 1: as expected; 2: not
};

std::uint64_t pack_slot_gen(ConnId id) {
  return (static_cast<std::uint64_t>(id.slot) << 32) | id.gen;
}
ConnId unpack(std::uint64_t a, std::uint64_t b) {
  return {static_cast<std::uint32_t>(a >> 32), static_cast<std::uint32_t>(a),
          static_cast<std::uint32_t>(b >> 32)};
}

// On the connection's worker: the answer arrived; find the connection again and reply.
void answer(Loop& self, const Post& p) {
  auto& t = *static_cast<Travel*>(p.ptr);
  const ConnId id = unpack(p.a, p.b);
  Conn* c = self.find(id);
  if (c == nullptr) {
    t.lost.fetch_add(1);
    return;
  }
  const char reply[2] = {static_cast<char>(p.b & 0xff), static_cast<char>((p.b >> 8) & 0xff)};
  if (!c->send_copy(bytes_of({reply, 2})).ok()) {
    t.lost.fetch_add(1);
  }
}

// On the other worker: the id names a connection it does not own.
void at_peer(Loop& self, const Post& p) {
  auto& t = *static_cast<Travel*>(p.ptr);
  const ConnId id = unpack(p.a, p.b);
  if (id.worker == self.index() || self.find(id) != nullptr) {
    t.found_on_wrong_worker.fetch_add(1);
  }
  const std::uint64_t via = static_cast<std::uint64_t>('0' + self.index()) << 8;
  if (!self.post(id.worker, Post{&answer, &t, p.a, (p.b & ~0xff00ull) | via}).ok()) {
    t.lost.fetch_add(1);
  }
}

TEST_P(ConnApiTest, ConnIdsTravelBetweenWorkersAndGoStale) {
  Config cfg = cfg_;
  cfg.workers = 2;
  cfg.accept_mode = AcceptMode::round_robin;
  Travel t;
  Hooks hooks;
  hooks.open = [&](Conn& c) {
    if (c.id().worker != c.loop().index() || !c.id().valid()) {
      t.bad_worker.fetch_add(1);
    }
    std::lock_guard<std::mutex> lock(t.mu);
    t.opened.push_back(c.id());
  };
  hooks.data = [&](Conn& c, BufView in) {
    for (char token : text_of(in)) {
      const ConnId id = c.id();
      const std::uint64_t b =
          (static_cast<std::uint64_t>(id.worker) << 32) | static_cast<std::uint8_t>(token);
      if (!c.loop().post(c.loop().index() ^ 1, Post{&at_peer, &t, pack_slot_gen(id), b}).ok()) {
        t.lost.fetch_add(1);
      }
    }
  };
  hooks.close = [&](Conn&, std::error_code) { t.closed.fetch_add(1); };
  std::vector<Service> services;
  services.push_back(
      {Address::loopback_v4(0), [&hooks](Loop&) { return std::make_unique<HookFactory>(&hooks); }});
  Runtime rt;
  auto started = rt.start(cfg, std::move(services));
  ASSERT_TRUE(started.ok()) << started.error().message();
  ASSERT_EQ(rt.backend_kind(), GetParam());

  // One at a time, so that client i is the i-th accepted: worker 0, 1, 0, 1...
  std::vector<int> fds;
  for (int i = 0; i < 2; ++i) {
    fds.push_back(test::connect_to(rt.local_address(0)));
    ASSERT_GE(fds.back(), 0);
    ASSERT_TRUE(test::eventually([&] {
      std::lock_guard<std::mutex> lock(t.mu);
      return t.opened.size() == static_cast<std::size_t>(i + 1);
    }));
  }
  ConnId ids[2];
  {
    std::lock_guard<std::mutex> lock(t.mu);
    ids[0] = t.opened[0];
    ids[1] = t.opened[1];
  }
  EXPECT_EQ(ids[0].worker, 0u);
  EXPECT_EQ(ids[1].worker, 1u);
  // Same slot and generation on both workers (each table's first slot): only the worker in
  // the id keeps worker 1 from taking worker 0's connection for its own.
  EXPECT_EQ(ids[0].slot, ids[1].slot);
  EXPECT_EQ(ids[0].gen, ids[1].gen);

  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 2; ++i) {
      const char token = static_cast<char>('a' + round * 2 + i);
      ASSERT_TRUE(test::write_all(fds[i], &token, 1));
      char reply[2];
      ASSERT_TRUE(test::read_exact(fds[i], reply, 2));
      EXPECT_EQ(reply[0], token);
      EXPECT_EQ(reply[1], static_cast<char>('0' + (ids[i].worker ^ 1)));  // went via the other
    }
  }
  EXPECT_EQ(t.found_on_wrong_worker.load(), 0);
  EXPECT_EQ(t.lost.load(), 0);
  EXPECT_EQ(t.bad_worker.load(), 0);

  // Close client 0; a new client lands on worker 0 again and takes the same slot with a new
  // generation: the old id finds nothing, the new one its connection.
  ::close(fds[0]);
  ASSERT_TRUE(test::eventually([&] { return t.closed.load() == 1; }));
  fds[0] = test::connect_to(rt.local_address(0));
  ASSERT_GE(fds[0], 0);
  ASSERT_TRUE(test::eventually([&] {
    std::lock_guard<std::mutex> lock(t.mu);
    return t.opened.size() == 3;
  }));
  ConnId fresh;
  {
    std::lock_guard<std::mutex> lock(t.mu);
    fresh = t.opened[2];
  }
  EXPECT_EQ(fresh.worker, 0u);
  EXPECT_EQ(fresh.slot, ids[0].slot);
  EXPECT_NE(fresh.gen, ids[0].gen);
  struct Check {
    Travel* t;
    ConnId old_id, new_id;
  } chk{&t, ids[0], fresh};
  ASSERT_TRUE(rt.worker(0)
                  .inject(Post{[](Loop& self, const Post& p) {
                                 auto& k = *static_cast<Check*>(p.ptr);
                                 const bool ok = self.find(k.old_id) == nullptr &&
                                                 self.find(k.new_id) != nullptr;
                                 k.t->check.store(ok ? 1 : 2);
                               },
                               &chk, 0, 0})
                  .ok());
  ASSERT_TRUE(test::eventually([&] { return t.check.load() != 0; }));
  EXPECT_EQ(t.check.load(), 1);
  // And the stale id is not answered: a post that carries it finds nothing on its worker.
  t.lost.store(0);
  ASSERT_TRUE(rt.worker(1)
                  .inject(Post{[](Loop& self, const Post& p) {
                                 auto& k = *static_cast<Check*>(p.ptr);
                                 const std::uint64_t b =
                                     (static_cast<std::uint64_t>(k.old_id.worker) << 32) | 'z';
                                 (void)self.post(0, Post{&answer, k.t, pack_slot_gen(k.old_id), b});
                               },
                               &chk, 0, 0})
                  .ok());
  ASSERT_TRUE(test::eventually([&] { return t.lost.load() == 1; }));
  for (int fd : fds) {
    ::close(fd);
  }
  rt.stop(100);
  rt.wait();
}

// ---- Loop::defer --------------------------------------------------------------------------

struct DeferState {
  Loop* loop = nullptr;
  bool in_callback = false;
  std::uint64_t iteration = 0;  // loop_iterations when on_data ran
  std::vector<int> order;
  std::vector<std::uint64_t> ran_in;
  int misplaced = 0;
};

void deferred(Loop& self, const Post& p) {
  auto& s = *static_cast<DeferState*>(p.ptr);
  if (s.in_callback) {
    ++s.misplaced;
  }
  s.order.push_back(static_cast<int>(p.a));
  s.ran_in.push_back(self.stats().loop_iterations.get());
  if (p.a == 2) {
    // Deferred from a deferred post: the next iteration.
    EXPECT_TRUE(self.defer(Post{&deferred, &s, 3, 0}).ok());
  }
}

TEST_P(ConnApiTest, DeferRunsAfterTheCallbackInTheSameIterationInOrder) {
  make_loop();
  DeferState s;
  Hooks hooks;
  hooks.data = [&](Conn& c, BufView) {
    s.in_callback = true;
    s.iteration = c.loop().stats().loop_iterations.get();
    EXPECT_TRUE(c.loop().defer(Post{&deferred, &s, 1, 0}).ok());
    EXPECT_TRUE(c.loop().defer(Post{&deferred, &s, 2, 0}).ok());
    EXPECT_TRUE(s.order.empty());  // nothing runs synchronously
    s.in_callback = false;
  };
  HookFactory factory(&hooks);
  Client client(serve(factory));
  ASSERT_GE(client.fd, 0);
  ASSERT_TRUE(client.send("x"));
  ASSERT_TRUE(spin([&] { return s.order.size() == 3; }));
  EXPECT_EQ(s.misplaced, 0);
  EXPECT_EQ(s.order, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(s.ran_in[0], s.iteration);  // the iteration of the callback...
  EXPECT_EQ(s.ran_in[1], s.iteration);
  EXPECT_EQ(s.ran_in[2], s.iteration + 1);  // ...and the one after for a nested defer

  // Capacity: kDeferCapacity wait at most; then queue_full until they ran.
  static int ran = 0;
  ran = 0;
  const Post count{[](Loop&, const Post&) { ++ran; }, nullptr, 0, 0};
  for (std::size_t i = 0; i < kDeferCapacity; ++i) {
    ASSERT_TRUE(loop_->defer(count).ok()) << i;
  }
  auto full = loop_->defer(count);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error(), make_error_code(platform_errc::queue_full));
  loop_->run_once(0);
  EXPECT_EQ(ran, static_cast<int>(kDeferCapacity));
  EXPECT_TRUE(loop_->defer(count).ok());
  loop_->run_once(0);
  EXPECT_EQ(ran, static_cast<int>(kDeferCapacity) + 1);
  // Posting to itself is what defer is for.
  auto self = loop_->post(0, count);
  ASSERT_FALSE(self.ok());
  EXPECT_EQ(self.error(), make_error_code(platform_errc::invalid_argument));
}

// ---- post ring room notification ------------------------------------------------------------

struct Room {
  std::atomic<bool> blocked{false};
  std::atomic<bool> release{false};
  std::atomic<bool> filled{false};
  std::atomic<int> pushed{0};
  std::atomic<int> full_error{0};  // 1: queue_full as expected, 2: another error
  std::atomic<int> ran_on_1{0};
  std::atomic<int> room_calls{0};
  std::atomic<int> room_target{-1};
  std::atomic<int> repost{0};  // 1: a post after the room notice succeeded
  std::atomic<int> room_calls_at_release{-1};
};

void count_on_1(Loop&, const Post& p) {
  static_cast<Room*>(p.ptr)->ran_on_1.fetch_add(1);
}

void on_room(Loop& self, std::uint32_t target, void* ctx) {
  auto& r = *static_cast<Room*>(ctx);
  r.room_target.store(static_cast<int>(target));
  if (r.room_calls.fetch_add(1) == 0) {
    r.repost.store(self.post(target, Post{&count_on_1, &r, 0, 0}).ok() ? 1 : 2);
  }
}

TEST_P(ConnApiTest, RoomHandlerIsToldWhenAFullRingDrains) {
  Config cfg = cfg_;
  cfg.workers = 2;
  Runtime rt;
  ASSERT_TRUE(rt.start(cfg, {}).ok());
  ASSERT_EQ(rt.backend_kind(), GetParam());
  Room r;
  // Worker 1 is held inside a post until the test releases it (bounded: 10 s).
  ASSERT_TRUE(rt.worker(1)
                  .inject(Post{[](Loop&, const Post& p) {
                                 auto& room = *static_cast<Room*>(p.ptr);
                                 room.blocked.store(true);
                                 const auto end = std::chrono::steady_clock::now() + 10s;
                                 while (!room.release.load() &&
                                        std::chrono::steady_clock::now() < end) {
                                   std::this_thread::yield();
                                 }
                               },
                               &r, 0, 0})
                  .ok());
  ASSERT_TRUE(test::eventually([&] { return r.blocked.load(); }));
  // Worker 0 fills its ring to worker 1.
  ASSERT_TRUE(
      rt.worker(0)
          .inject(Post{[](Loop& self, const Post& p) {
                         auto& room = *static_cast<Room*>(p.ptr);
                         self.set_post_room_handler(&on_room, &room);
                         for (int i = 0; i < 10 * static_cast<int>(kPostRingSize); ++i) {
                           auto res = self.post(1, Post{&count_on_1, &room, 0, 0});
                           if (!res) {
                             room.full_error.store(
                                 res.error() == make_error_code(platform_errc::queue_full) ? 1 : 2);
                             break;
                           }
                           room.pushed.fetch_add(1);
                         }
                         room.filled.store(true);
                       },
                       &r, 0, 0})
          .ok());
  ASSERT_TRUE(test::eventually([&] { return r.filled.load(); }));
  EXPECT_EQ(r.pushed.load(), static_cast<int>(kPostRingSize));
  EXPECT_EQ(r.full_error.load(), 1);
  EXPECT_EQ(r.ran_on_1.load(), 0);
  // Nothing drained yet: no room notice. (Worker 0 keeps running meanwhile.)
  EXPECT_EQ(r.room_calls.load(), 0);
  r.release.store(true);
  ASSERT_TRUE(test::eventually([&] { return r.room_calls.load() >= 1; }));
  EXPECT_EQ(r.room_target.load(), 1);
  EXPECT_EQ(r.repost.load(), 1);
  ASSERT_TRUE(
      test::eventually([&] { return r.ran_on_1.load() == static_cast<int>(kPostRingSize) + 1; }));
  rt.stop(100);
  rt.wait();
}

// ---- Handler::on_timeout ----------------------------------------------------------------------

TEST_P(ConnApiTest, IdleTimeoutHandledKeepsTheConnectionAndFiresAgain) {
  cfg_.idle_timeout_ms = 50;
  make_loop();
  std::vector<std::uint64_t> fired;
  std::vector<Timeout> kinds;
  std::uint64_t opened_at = 0;
  bool closed = false;
  Hooks hooks;
  hooks.open = [&](Conn& c) { opened_at = c.loop().now_ms(); };
  hooks.timeout = [&](Conn& c, Timeout t) {
    fired.push_back(c.loop().now_ms());
    kinds.push_back(t);
    return true;  // lives on
  };
  hooks.close = [&](Conn&, std::error_code) { closed = true; };
  HookFactory factory(&hooks);
  Client client(serve(factory));
  ASSERT_GE(client.fd, 0);
  ASSERT_TRUE(spin([&] { return fired.size() >= 3; }));
  EXPECT_FALSE(closed);
  for (Timeout t : kinds) {
    EXPECT_EQ(t, Timeout::idle);
  }
  EXPECT_GE(fired[0], opened_at + 50);
  EXPECT_GE(fired[1], fired[0] + 50);  // the idle period starts again from the hook
  EXPECT_GE(fired[2], fired[1] + 50);
  client.poll();
  EXPECT_FALSE(client.closed());
  EXPECT_EQ(loop_->stats().snapshot().timeouts, 0u);
  EXPECT_EQ(loop_->active_connections(), 1u);
}

TEST_P(ConnApiTest, TimeoutHandlerAnswersAndClosesGracefully) {
  cfg_.idle_timeout_ms = 50;
  make_loop();
  int fired = 0;
  bool closed = false;
  std::error_code reason = make_error_code(platform_errc::closed);
  Hooks hooks;
  hooks.timeout = [&](Conn& c, Timeout t) {
    ++fired;
    EXPECT_EQ(t, Timeout::idle);
    EXPECT_TRUE(c.send_static(bytes_of("408")).ok());
    c.close();
    return true;
  };
  hooks.close = [&](Conn&, std::error_code why) {
    closed = true;
    reason = why;
  };
  HookFactory factory(&hooks);
  Client client(serve(factory));
  ASSERT_GE(client.fd, 0);
  ASSERT_TRUE(spin([&] {
    client.poll();
    return client.closed();
  }));
  EXPECT_EQ(client.in, "408");
  EXPECT_TRUE(client.eof) << "error " << client.error;  // a FIN after the answer, no reset
  EXPECT_EQ(fired, 1);
  ::close(client.fd);
  client.fd = -1;
  ASSERT_TRUE(spin([&] { return closed; }));
  EXPECT_FALSE(reason) << reason.message();  // the handler closed it: a clean close
}

TEST_P(ConnApiTest, ReadTimeoutUnhandledAbortsWithTimedOut) {
  cfg_.idle_timeout_ms = 0;
  cfg_.read_timeout_ms = 50;
  make_loop();
  std::vector<Timeout> kinds;
  std::uint64_t started_at = 0;
  std::uint64_t fired_at = 0;
  bool closed = false;
  std::error_code reason;
  Hooks hooks;
  hooks.data = [&](Conn& c, BufView) {
    started_at = c.loop().now_ms();
    c.set_mid_message(true);  // a message begun, never finished
  };
  hooks.timeout = [&](Conn& c, Timeout t) {
    kinds.push_back(t);
    fired_at = c.loop().now_ms();
    return false;
  };
  hooks.close = [&](Conn&, std::error_code why) {
    closed = true;
    reason = why;
  };
  HookFactory factory(&hooks);
  Client client(serve(factory));
  ASSERT_GE(client.fd, 0);
  ASSERT_TRUE(client.send("partial"));
  ASSERT_TRUE(spin([&] { return closed; }));
  ASSERT_EQ(kinds.size(), 1u);
  EXPECT_EQ(kinds[0], Timeout::read);
  EXPECT_GE(fired_at, started_at + 50);
  EXPECT_EQ(reason, make_error_code(platform_errc::timed_out));
  EXPECT_EQ(loop_->stats().snapshot().timeouts, 1u);
  ASSERT_TRUE(spin([&] {
    client.poll();
    return client.closed();
  }));
}

TEST_P(ConnApiTest, ReadTimeoutHandledRestartsTheDeadline) {
  cfg_.idle_timeout_ms = 0;
  cfg_.read_timeout_ms = 50;
  make_loop();
  std::vector<std::uint64_t> fired;
  bool closed = false;
  Hooks hooks;
  hooks.data = [&](Conn& c, BufView in) { c.set_mid_message(text_of(in) != "done"); };
  hooks.timeout = [&](Conn& c, Timeout t) {
    EXPECT_EQ(t, Timeout::read);
    fired.push_back(c.loop().now_ms());
    return true;
  };
  hooks.close = [&](Conn&, std::error_code) { closed = true; };
  HookFactory factory(&hooks);
  Client client(serve(factory));
  ASSERT_GE(client.fd, 0);
  ASSERT_TRUE(client.send("begin"));
  ASSERT_TRUE(spin([&] { return fired.size() >= 2; }));
  EXPECT_GE(fired[1], fired[0] + 50);
  // The message completes: no read deadline any more.
  ASSERT_TRUE(client.send("done"));
  const std::size_t n = fired.size();
  const std::uint64_t since = loop_->now_ms();
  ASSERT_TRUE(spin([&] { return loop_->now_ms() >= since + 200; }));
  EXPECT_LE(fired.size(), n + 1);  // (one may have been due before "done" arrived)
  EXPECT_FALSE(closed);
}

TEST_P(ConnApiTest, IdleTimeoutUnhandledClosesGracefullyWithTimedOut) {
  cfg_.idle_timeout_ms = 50;
  cfg_.linger_ms = 100;
  make_loop();
  int fired = 0;
  bool closed = false;
  std::error_code reason;
  Hooks hooks;
  hooks.timeout = [&](Conn&, Timeout t) {
    EXPECT_EQ(t, Timeout::idle);
    ++fired;
    return false;
  };
  hooks.close = [&](Conn&, std::error_code why) {
    closed = true;
    reason = why;
  };
  HookFactory factory(&hooks);
  Client client(serve(factory));
  ASSERT_GE(client.fd, 0);
  ASSERT_TRUE(spin([&] {
    client.poll();
    return client.closed() && closed;
  }));
  EXPECT_TRUE(client.eof) << "error " << client.error;
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(reason, make_error_code(platform_errc::timed_out));
  EXPECT_EQ(loop_->stats().snapshot().timeouts, 1u);
}

TEST_P(ConnApiTest, PerConnectionTimeoutsOverrideTheConfig) {
  cfg_.idle_timeout_ms = 50;
  make_loop();
  struct Seen {
    std::uint64_t opened_at = 0;
    std::uint64_t fired_at = 0;
    int order = 0;
  };
  Seen seen[2];  // [0]: the first accepted, with a long idle time; [1]: the Config's
  int opened = 0;
  int fired = 0;
  Hooks hooks;
  hooks.open = [&](Conn& c) {
    Seen& s = seen[opened++];
    s.opened_at = c.loop().now_ms();
    c.set_context(&s);
    if (&s == &seen[0]) {
      Timeouts t = c.timeouts();
      EXPECT_EQ(t.idle_ms, 50u);  // from the Config
      t.idle_ms = 400;
      c.set_timeouts(t);
      EXPECT_EQ(c.timeouts().idle_ms, 400u);
    }
  };
  hooks.timeout = [&](Conn& c, Timeout t) {
    EXPECT_EQ(t, Timeout::idle);
    Seen* s = c.context<Seen>();
    if (s != nullptr && s->fired_at == 0) {
      s->fired_at = c.loop().now_ms();
      s->order = ++fired;
    }
    return false;
  };
  HookFactory factory(&hooks);
  const Address addr = serve(factory);
  Client long_client(addr);
  ASSERT_GE(long_client.fd, 0);
  ASSERT_TRUE(spin([&] { return opened == 1; }));
  Client short_client(addr);
  ASSERT_GE(short_client.fd, 0);
  ASSERT_TRUE(spin([&] { return fired == 2; }));
  EXPECT_EQ(seen[1].order, 1);
  EXPECT_EQ(seen[0].order, 2);
  EXPECT_GE(seen[1].fired_at, seen[1].opened_at + 50);
  EXPECT_GE(seen[0].fired_at, seen[0].opened_at + 400);
}

// ---- set_watermark_pause -------------------------------------------------------------------

// A client that writes one byte at a time and never reads; each byte delivered makes the
// handler queue 8 KiB, far more than the kernel takes with small socket buffers.
class WatermarkTest : public ConnApiTest {
 protected:
  static constexpr int kBytes = 300;

  void run_flood(bool pause) {
    static const std::string kChunk(8192, 'w');
    cfg_.buffer_size = 4096;
    cfg_.send_buffers = 64;
    cfg_.max_out_iov = 64;
    cfg_.high_watermark = 16 * 1024;
    cfg_.low_watermark = 4 * 1024;
    cfg_.idle_timeout_ms = 0;
    make_loop();
    hooks_.open = [pause](Conn& c) {
      int small = 4096;  // so that the kernel takes little of what is queued
      ::setsockopt(c.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
      if (!pause) {
        c.set_watermark_pause(false);
      }
    };
    hooks_.data = [this](Conn& c, BufView in) {
      got_ += in.bytes.size();
      (void)c.send_copy(bytes_of(kChunk));  // queue_full / no_buffers once full: fine
      queued_ = c.queued_bytes();
      max_queued_ = std::max(max_queued_, queued_);
    };
    factory_ = std::make_unique<HookFactory>(&hooks_);
    client_ = std::make_unique<Client>(serve(*factory_), 4096);
    ASSERT_GE(client_->fd, 0);
    for (int i = 0; i < kBytes; ++i) {
      ASSERT_TRUE(client_->send("b"));
      ++written_;
      // Delivery takes an iteration or two; 2 s of silence means reading stopped.
      if (!spin([&] { return got_ == static_cast<std::uint64_t>(i + 1); }, 2s)) {
        break;
      }
      delivered_ = i + 1;
    }
  }

  Hooks hooks_;
  std::unique_ptr<HookFactory> factory_;
  std::unique_ptr<Client> client_;
  std::uint64_t got_ = 0;
  std::size_t queued_ = 0;
  std::size_t max_queued_ = 0;
  int written_ = 0;
  int delivered_ = 0;
};

TEST_P(WatermarkTest, DefaultPausesReadingAboveTheHighWatermark) {
  run_flood(true);
  ASSERT_NE(client_, nullptr);
  EXPECT_LT(delivered_, written_) << "reading never paused";
  EXPECT_GE(queued_, cfg_.high_watermark);  // it stopped because of the queue
  // Once the client reads, the queue drains below the low watermark and reading resumes:
  // every byte written is delivered.
  ASSERT_TRUE(spin([&] {
    client_->poll();
    client_->in.clear();
    return got_ == static_cast<std::uint64_t>(written_);
  }));
}

TEST_P(WatermarkTest, DisabledKeepsReadingWhileOutputIsQueued) {
  run_flood(false);
  EXPECT_EQ(delivered_, kBytes);
  EXPECT_GE(max_queued_, cfg_.high_watermark);  // above high, and still reading
  EXPECT_GE(queued_, cfg_.high_watermark);
}

// With the pause off, output that reached the high watermark still earns an on_writable
// once it drains to the low one (weft::mux bounds its own queue by it): without it, a
// protocol that stopped writing at the high watermark would wait for input forever.
TEST_P(WatermarkTest, DisabledStillGetsOnWritableBelowTheLowWatermark) {
  int writable = 0;
  std::size_t queued_then = 0;
  hooks_.writable = [&](Conn& c) {
    ++writable;
    queued_then = c.queued_bytes();
  };
  run_flood(false);
  ASSERT_NE(client_, nullptr);
  ASSERT_GE(queued_, cfg_.high_watermark);
  const int before = writable;
  ASSERT_TRUE(spin([&] {
    client_->poll();
    client_->in.clear();
    return writable > before;
  })) << "no on_writable after draining below the low watermark";
  EXPECT_LE(queued_then, cfg_.low_watermark);
}

// ---- Loop::connect ---------------------------------------------------------------------------

struct Peer {
  int value = 7;
};

TEST_P(ConnApiTest, ConnectPassesTheContextToCreateAndOnOpen) {
  make_loop();
  auto ls = listen_socket(Address::loopback_v4(0), false, 16);  // not served: the backlog accepts
  ASSERT_TRUE(ls.ok());
  auto target = Address::local_of(ls.value());
  ASSERT_TRUE(target.ok());
  Peer peer;
  Peer* in_create = nullptr;
  Peer* in_open = nullptr;
  bool wrong_type_null = false;
  bool outbound = false;
  Hooks hooks;
  hooks.create = [&](Conn& c) {
    in_create = c.context<Peer>();
    wrong_type_null = c.context<int>() == nullptr;
    outbound = c.outbound();
  };
  hooks.open = [&](Conn& c) { in_open = c.context<Peer>(); };
  HookFactory factory(&hooks);
  ConnectOptions opts;
  opts.timeout_ms = 2000;
  opts.context = Context::of(&peer);
  auto id = loop_->connect(target.value(), factory, opts);
  ASSERT_TRUE(id.ok()) << id.error().message();
  EXPECT_EQ(in_create, &peer);
  EXPECT_TRUE(wrong_type_null);  // typed: a Peer* is not an int*
  EXPECT_TRUE(outbound);
  ASSERT_TRUE(spin([&] { return in_open != nullptr; }));
  EXPECT_EQ(in_open, &peer);
  EXPECT_EQ(in_open->value, 7);
  Conn* c = loop_->find(id.value());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->context<Peer>(), &peer);
  EXPECT_EQ(loop_->stats().snapshot().connected, 1u);
  ::close(ls.value());
}

TEST_P(ConnApiTest, ConnectToAClosedPortFailsWithConnRefused) {
  make_loop();
  auto s = listen_socket(Address::loopback_v4(0), false, 1);
  ASSERT_TRUE(s.ok());
  auto target = Address::local_of(s.value());
  ASSERT_TRUE(target.ok());
  ::close(s.value());  // nothing listens there now
  Peer peer;
  bool opened = false;
  bool closed = false;
  Peer* ctx_at_close = nullptr;
  std::error_code reason;
  Hooks hooks;
  hooks.open = [&](Conn&) { opened = true; };
  hooks.close = [&](Conn& c, std::error_code why) {
    closed = true;
    reason = why;
    ctx_at_close = c.context<Peer>();
  };
  HookFactory factory(&hooks);
  ConnectOptions opts;
  opts.context = Context::of(&peer);
  auto id = loop_->connect(target.value(), factory, opts);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(spin([&] { return closed; }));
  EXPECT_FALSE(opened);
  EXPECT_EQ(reason, std::error_code(ECONNREFUSED, std::system_category()));
  EXPECT_EQ(ctx_at_close, &peer);
  EXPECT_EQ(loop_->find(id.value()), nullptr);
  EXPECT_EQ(loop_->active_connections(), 0u);
}

TEST_P(ConnApiTest, ConnectTimeoutFromTheOptionsOverridesTheConfig) {
  cfg_.connect_timeout_ms = 60'000;  // the test's 10 s deadline would fail on this one
  make_loop();
  // A listener whose accept queue is full drops further SYNs: connects to it hang.
  auto ls = listen_socket(Address::loopback_v4(0), false, 1);
  ASSERT_TRUE(ls.ok());
  auto target = Address::local_of(ls.value());
  ASSERT_TRUE(target.ok());
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    (void)::connect(fd, target.value().sockaddr_ptr(), target.value().length());
    fillers.push_back(fd);
  }
  bool opened = false;
  bool closed = false;
  std::error_code reason;
  Hooks hooks;
  hooks.open = [&](Conn&) { opened = true; };
  hooks.close = [&](Conn&, std::error_code why) {
    closed = true;
    reason = why;
  };
  HookFactory factory(&hooks);
  ConnectOptions opts;
  opts.timeout_ms = 100;
  const std::uint64_t start = loop_->now_ms();
  auto id = loop_->connect(target.value(), factory, opts);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(spin([&] { return closed; }));
  EXPECT_FALSE(opened);
  EXPECT_EQ(reason, make_error_code(platform_errc::timed_out));
  EXPECT_GE(loop_->now_ms(), start + 100);
  EXPECT_EQ(loop_->stats().snapshot().timeouts, 1u);
  for (int fd : fillers) {
    ::close(fd);
  }
  ::close(ls.value());
}

TEST_P(ConnApiTest, OutboundReserveSurvivesAnInboundFlood) {
  cfg_.max_connections = 2;
  cfg_.outbound_connections = 2;
  make_loop();
  Hooks inbound_hooks;
  HookFactory inbound(&inbound_hooks);
  const Address addr = serve(inbound);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<Client>(addr));
    ASSERT_GE(clients.back()->fd, 0);
  }
  ASSERT_TRUE(spin([&] {
    const auto s = loop_->stats().snapshot();
    return s.accepted == 2 && s.rejected == 2;
  }));
  EXPECT_EQ(loop_->active_connections(), 2u);

  auto ls = listen_socket(Address::loopback_v4(0), false, 16);
  ASSERT_TRUE(ls.ok());
  auto target = Address::local_of(ls.value());
  ASSERT_TRUE(target.ok());
  int opened = 0;
  Hooks out_hooks;
  out_hooks.open = [&](Conn& c) {
    EXPECT_TRUE(c.outbound());
    ++opened;
  };
  HookFactory outbound(&out_hooks);
  auto a = loop_->connect(target.value(), outbound);
  auto b = loop_->connect(target.value(), outbound);
  ASSERT_TRUE(a.ok()) << a.error().message();
  ASSERT_TRUE(b.ok()) << b.error().message();
  auto c = loop_->connect(target.value(), outbound);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), make_error_code(platform_errc::connection_limit));
  ASSERT_TRUE(spin([&] { return opened == 2; }));
  EXPECT_EQ(loop_->stats().snapshot().connected, 2u);
  EXPECT_EQ(loop_->active_connections(), 4u);
  // The inbound side is still full: another client is rejected, not given an outbound slot.
  Client late(addr);
  ASSERT_GE(late.fd, 0);
  ASSERT_TRUE(spin([&] { return loop_->stats().snapshot().rejected == 3; }));
  EXPECT_EQ(loop_->active_connections(), 4u);
  ::close(ls.value());
}

INSTANTIATE_TEST_SUITE_P(Backends, ConnApiTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());
INSTANTIATE_TEST_SUITE_P(Backends, WatermarkTest,
                         ::testing::Values(BackendKind::uring, BackendKind::epoll),
                         test::BackendName());

// ---- Config::problem ---------------------------------------------------------------------------

TEST(ConfigProblemTest, NamesTheFieldAndValidateFails) {
  EXPECT_EQ(Config{}.problem(), nullptr);
  EXPECT_TRUE(Config{}.validate().ok());
  struct Case {
    const char* field;
    std::function<void(Config&)> spoil;
  };
  const Case cases[] = {
      {"workers", [](Config& c) { c.workers = 0; }},
      {"max_connections", [](Config& c) { c.max_connections = 0; }},
      {"buffer_size", [](Config& c) { c.buffer_size = 100; }},
      {"recv_buffers", [](Config& c) { c.recv_buffers = 3; }},
      {"send_buffers", [](Config& c) { c.send_buffers = 0; }},
      {"max_pinned_recv", [](Config& c) { c.max_pinned_recv = c.recv_buffers + 1; }},
      {"shared_buffer",
       [](Config& c) {
         c.shared_buffers = 4;
         c.shared_buffer_size = 100;
       }},
      {"max_out_iov", [](Config& c) { c.max_out_iov = 1; }},
      {"low_watermark", [](Config& c) { c.low_watermark = c.high_watermark; }},
      {"close_timeout_ms", [](Config& c) { c.close_timeout_ms = 0; }},
      {"uring_entries", [](Config& c) { c.uring_entries = 100; }},
      {"listen_backlog", [](Config& c) { c.listen_backlog = 0; }},
  };
  for (const Case& k : cases) {
    Config cfg;
    k.spoil(cfg);
    const char* p = cfg.problem();
    ASSERT_NE(p, nullptr) << k.field;
    EXPECT_NE(std::strstr(p, k.field), nullptr) << "'" << p << "' should name " << k.field;
    auto v = cfg.validate();
    ASSERT_FALSE(v.ok()) << k.field;
    EXPECT_EQ(v.error(), make_error_code(platform_errc::invalid_argument));
    auto loop = Loop::create(cfg, 0);
    ASSERT_FALSE(loop.ok()) << k.field;
    EXPECT_EQ(loop.error(), make_error_code(platform_errc::invalid_argument));
  }
}

}  // namespace
}  // namespace weft::platform
