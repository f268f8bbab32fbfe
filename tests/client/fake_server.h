// A scripted server for the client tests: a platform::Handler that decodes weft::msg frames
// with the wire layer and answers as the test says (out of order, late, with ERROR codes,
// GOAWAY, closes). Keeps the client honest to docs/protocol.md §6 rather than to one server.
//
// ServerLoop runs it on its own Loop, driven by the test thread together with the client's
// Loop (two loops, one thread: deterministic, nothing shared across threads). stop()
// destroys the loop (every socket closes at once, like a crashed server); start(port) serves
// the same port again from a new one. LoopPairTest is the fixture of the suites built on it;
// Outcome records what a call's callback saw.
#pragma once

#include <chrono>
#include <functional>

#include <gtest/gtest.h>
#include <memory>
#include <string>
#include <vector>

#include <weft/client/client.h>
#include <weft/frame/length_prefix.h>
#include <weft/msg/frame.h>
#include <weft/platform/loop.h>
#include <weft/platform/runtime.h>

#include "test_net.h"

namespace weft::test {

inline std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}
inline std::string text_of(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// What the fake server saw: one record per frame (spans copied out).
struct Seen {
  msg::FrameType type{};
  std::uint8_t flags = 0;
  std::uint32_t id = 0;
  std::uint32_t method = 0;
  std::uint32_t deadline_ms = 0;
  std::uint64_t key = 0;
  msg::Hello hello;
  std::string topic;
  std::string payload;
  int conn = 0;  // which connection (in order of acceptance, from 1)
};

struct FakeScript {
  msg::Hello ack{msg::kProtocolVersion, 16 * 1024, 64, 0};  // HELLO_ACK sent to every HELLO
  bool answer_hello = true;
  bool answer_ping = true;
  // Called for every frame after HELLO (and for HELLO when answer_hello is false).
  std::function<void(platform::Conn&, const Seen&)> on_frame;
  std::vector<Seen> seen;
  int accepted = 0;
  int closed = 0;
};

inline void send(platform::Conn& c, const msg::Frame& f) {
  std::vector<std::byte> b(msg::encoded_size(f));
  auto n = msg::encode(f, b);
  if (n.ok()) {
    (void)c.send_copy(b);
  }
}

class FakeHandler final : public platform::Handler {
 public:
  explicit FakeHandler(FakeScript* s) : s_(s), assembly_(64 * 1024) {
    (void)dec_.set_assembly(assembly_);
  }
  void on_open(platform::Conn&) noexcept override { n_ = ++s_->accepted; }
  void on_data(platform::Conn& c, platform::BufView in) noexcept override {
    auto bytes = in.bytes;
    while (!bytes.empty() && c.open()) {
      auto d = dec_.feed(bytes);
      if (d.state == frame::DecodeState::error) {
        c.abort(dec_.error());
        return;
      }
      bytes = bytes.subspan(d.consumed);
      if (d.state == frame::DecodeState::ready) {
        frame(c, dec_.frame());
      }
    }
  }
  void on_close(platform::Conn&, std::error_code) noexcept override { ++s_->closed; }

 private:
  void frame(platform::Conn& c, std::span<const std::byte> raw) {
    auto f = msg::parse(raw);
    if (!f.ok()) {
      ADD_FAILURE() << "client sent a bad frame: " << f.error().message();
      c.abort(f.error());
      return;
    }
    Seen s;
    s.type = f->type;
    s.flags = f->flags;
    s.id = f->id;
    s.method = f->method;
    s.deadline_ms = f->deadline_ms;
    s.key = f->idempotency_key;
    s.hello = f->hello;
    s.topic = text_of(f->topic);
    s.payload = text_of(f->payload);
    s.conn = n_;
    s_->seen.push_back(s);
    if (s.type == msg::FrameType::hello && s_->answer_hello) {
      send(c, msg::make_hello_ack(s_->ack));
      return;
    }
    if (s.type == msg::FrameType::ping && s_->answer_ping) {
      send(c, msg::make_pong(f->id, f->payload));
      return;
    }
    if (s_->on_frame) {
      s_->on_frame(c, s);
    }
  }

  FakeScript* s_;
  int n_ = 0;
  std::vector<std::byte> assembly_;
  frame::LengthPrefixDecoder dec_{{frame::PrefixKind::u32_be, 64 * 1024}};
};

class FakeFactory final : public platform::HandlerFactory {
 public:
  explicit FakeFactory(FakeScript* s) : s_(s) {}
  platform::Handler* create(platform::Conn&) noexcept override {
    all_.push_back(std::make_unique<FakeHandler>(s_));  // owned until the factory goes
    return all_.back().get();
  }
  void destroy(platform::Handler*) noexcept override {}

 private:
  FakeScript* s_;
  std::vector<std::unique_ptr<FakeHandler>> all_;
};

// The fake server on its own Loop, on a fixed loopback port once started.
class ServerLoop {
 public:
  ServerLoop(const platform::Config& cfg, FakeScript* s) : cfg_(cfg), s_(s) {}
  bool start(std::uint16_t port = 0) {
    auto l = platform::Loop::create(cfg_, 0);
    if (!l.ok()) {
      return false;
    }
    factory_ = std::make_unique<FakeFactory>(s_);
    loop_ = std::move(l.value());
    auto fd = platform::listen_socket(platform::Address::loopback_v4(port), false, 64);
    if (!fd.ok()) {
      return false;
    }
    auto local = platform::Address::local_of(fd.value());
    if (!local.ok() || !loop_->add_listener(fd.value(), *factory_).ok()) {
      return false;
    }
    addr_ = local.value();
    return true;
  }
  // Every socket closes at once (a crash); nothing listens until start() again.
  void stop() {
    loop_.reset();
    factory_.reset();
  }
  platform::Loop* loop() { return loop_.get(); }
  const platform::Address& addr() const { return addr_; }

 private:
  platform::Config cfg_;
  FakeScript* s_;
  std::unique_ptr<FakeFactory> factory_;
  std::unique_ptr<platform::Loop> loop_;
  platform::Address addr_;
};

// Runs the server's loop and the client's in turn until done() holds or the limit passes.
template <class F>
bool spin_both(ServerLoop& server, platform::Loop& client, F done,
               std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) {
      return done();
    }
    if (server.loop() != nullptr) {
      server.loop()->run_once(0);
    }
    client.run_once(1);
  }
  return true;
}

// One call's outcome, as its callback saw it.
struct Outcome {
  int calls = 0;  // callbacks run: must end at exactly 1
  int order = 0;  // when it completed, among the outcomes of the test (from 1)
  std::error_code error;
  std::string payload;
  [[nodiscard]] bool done() const { return calls != 0; }
  static inline int completed = 0;  // reset by the fixtures
};
inline void record(void* ctx, Result<std::span<const std::byte>> r) noexcept {
  auto* o = static_cast<Outcome*>(ctx);
  ++o->calls;
  o->order = ++Outcome::completed;
  if (r.ok()) {
    o->payload = text_of(r.value());
  } else {
    o->error = r.error();
  }
}

// Calls a test started, each with the Outcome its callback fills (kept for the whole test).
struct Calls {
  std::vector<std::unique_ptr<Outcome>> all;
  Outcome* start(client::Client& c, std::uint32_t method, std::string_view payload,
                 const client::CallOptions& o) {
    all.push_back(std::make_unique<Outcome>());
    auto r = c.call(method, bytes_of(payload), o, &record, all.back().get());
    EXPECT_TRUE(r.ok()) << r.error().message();
    return all.back().get();
  }
};

// The fake server on one Loop and the client's Loop, both driven by the test thread, on the
// backend of the test's parameter (io_uring skipped with a reason where unavailable).
class LoopPairTest : public ::testing::TestWithParam<platform::BackendKind> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam() == platform::BackendKind::uring && !uring_usable(&why)) {
      GTEST_SKIP() << "io_uring unavailable here: " << why;
    }
    Outcome::completed = 0;
    cfg_ = one_worker_config(GetParam());
    cfg_.outbound_connections = 8;
    server_ = std::make_unique<ServerLoop>(cfg_, &script_);
    ASSERT_TRUE(server_->start());
    auto l = platform::Loop::create(cfg_, 1);
    ASSERT_TRUE(l.ok()) << l.error().message();
    loop_ = std::move(l.value());
  }
  template <class F>
  bool spin(F done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    return spin_both(*server_, *loop_, done, limit);
  }

  platform::Config cfg_;
  FakeScript script_;
  std::unique_ptr<ServerLoop> server_;
  std::unique_ptr<platform::Loop> loop_;
};

}  // namespace weft::test
