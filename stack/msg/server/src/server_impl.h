// Internals of weft::msg::Server: the per-worker state (ServerWorker, the HandlerFactory of
// the service), the connection handler (ServerConn) and the call table. Private to
// stack/msg/server/src.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <weft/msg/idempotency.h>
#include <weft/msg/server.h>
#include <weft/platform/handler_pool.h>
#include <weft/platform/loop.h>
#include <weft/platform/stats.h>

namespace weft::msg {

// One call in the worker's table: from dispatch until the handler has answered. The wire
// may have had its answer earlier (deadline, cancel, connection closed): `wire_open` is then
// false and the handler's answer only frees the slot (and records an idempotent answer).
struct CallSlot {
  ServerWorker* worker = nullptr;
  ServerConn* conn = nullptr;  // null once detached (its connection closed)
  platform::ConnId conn_id;
  CallSlot* prev = nullptr;  // the connection's list of its calls
  CallSlot* next = nullptr;
  platform::TimerNode timer;  // the request's deadline
  std::uint64_t idem_key = 0;
  std::uint32_t id = 0;  // the REQUEST's correlation id
  std::uint32_t gen = 1;
  std::uint32_t next_free = 0;
  bool live = false;
  bool wire_open = false;
  bool idem = false;
};

// The worker's counters: one writer (the worker), any reader.
struct ServerCounters {
  using Counter = platform::WorkerStats::Counter;
  Counter requests, messages, responses, errors_sent, deadline_exceeded, cancelled, late_answers,
      idempotent_replays, protocol_errors, overloaded, pings, denied;
  void add_to(ServerStats& s) const noexcept;
};

class ServerConn final : public platform::Handler {
 public:
  explicit ServerConn(ServerWorker* w) noexcept : w_(w) {}
  void reset(platform::Conn& c) noexcept;

  void on_open(platform::Conn& c) noexcept override;
  void on_data(platform::Conn& c, platform::BufView in) noexcept override;
  void on_eof(platform::Conn& c) noexcept override;
  bool on_timeout(platform::Conn& c, platform::Timeout t) noexcept override;
  void on_drain(platform::Conn& c) noexcept override;
  void on_close(platform::Conn& c, std::error_code reason) noexcept override;

  // Called by the worker when a call of this connection got its answer on the wire.
  void call_ended(platform::Conn& c, CallSlot& s) noexcept;
  [[nodiscard]] std::uint32_t peer_max_frame() const noexcept { return peer_max_frame_; }
  [[nodiscard]] const platform::PeerCred& peer() const noexcept { return peer_; }
  // Sends a small control frame (ERROR, PONG, GOAWAY, HELLO_ACK) by copy; aborts the
  // connection when even that finds no room (the peer does not read, or no buffers).
  bool send_control(platform::Conn& c, const Frame& f) noexcept;
  void fatal(platform::Conn& c, ProtocolError code, const char* detail) noexcept;

 private:
  friend class ServerWorker;
  enum class State : std::uint8_t { hello, open, closed };
  // Returns false when the connection is no longer served (fatal error, closing).
  bool frame(platform::Conn& c, std::span<const std::byte> bytes) noexcept;
  bool on_hello(platform::Conn& c, const Frame& f) noexcept;
  void on_request(platform::Conn& c, const Frame& f) noexcept;
  void on_message(platform::Conn& c, const Frame& f) noexcept;
  void on_cancel(platform::Conn& c, const Frame& f) noexcept;
  bool on_ping(platform::Conn& c, const Frame& f) noexcept;
  void on_topic(platform::Conn& c, const Frame& f) noexcept;
  void maybe_close(platform::Conn& c) noexcept;
  void send_goaway(platform::Conn& c, ProtocolError code, const char* detail) noexcept;
  bool start_assembly(platform::Conn& c, std::uint32_t len,
                      std::span<const std::byte> have) noexcept;
  [[nodiscard]] bool mid_frame() const noexcept { return pfx_n_ != 0 || asm_.valid(); }

  ServerWorker* w_;
  State state_ = State::hello;
  bool draining_ = false;
  bool eof_ = false;
  bool goaway_sent_ = false;
  std::uint8_t pfx_n_ = 0;  // bytes of a length prefix split across receives
  std::byte pfx_[4] = {};
  std::uint32_t last_id_ = 0;    // highest REQUEST id received
  std::uint32_t wire_open_ = 0;  // calls still owed an answer on the wire
  std::uint32_t peer_max_frame_ = 0;
  CallSlot* calls_ = nullptr;
  // A frame that spans receives is assembled in a general pool buffer.
  platform::BufRef asm_;
  std::uint32_t asm_need_ = 0;
  std::uint32_t asm_have_ = 0;
  // PING rate: pings in the current one-second window.
  std::uint64_t ping_window_ = 0;
  std::uint32_t pings_ = 0;
  platform::Timeouts saved_;
  // The peer's credentials, read once at on_open (Call::peer, access rules).
  platform::PeerCred peer_;
};

// An AccessRule with its method id computed (at worker start). `rule` points into the
// Server's Options, which outlive the worker.
struct CompiledRule {
  const AccessRule* rule = nullptr;
  std::uint32_t id = 0;  // method_id(rule->method); unused when `any`
  bool any = false;      // "*"
};

class ServerWorker final : public platform::HandlerFactory {
 public:
  ServerWorker(Server& server, platform::Loop& loop);
  ~ServerWorker() override;

  platform::Handler* create(platform::Conn& c) noexcept override;
  void destroy(platform::Handler* h) noexcept override;

  [[nodiscard]] platform::Loop& loop() const noexcept { return loop_; }
  [[nodiscard]] const Options& options() const noexcept { return opt_; }
  [[nodiscard]] const Registry& registry() const noexcept { return registry_; }
  [[nodiscard]] Topics* topics() const noexcept { return topics_; }
  // Whether the access rules let `peer` call `method` (first matching rule decides; none
  // matching: allowed). No allocation: a scan of the rules and their id lists.
  [[nodiscard]] bool allowed(std::uint32_t method, const platform::PeerCred& peer) const noexcept;
  [[nodiscard]] IdempotencyTable* idempotency() noexcept {
    return opt_.idempotency_entries != 0 ? &idem_ : nullptr;
  }
  ServerCounters& counters() noexcept { return counters_; }
  [[nodiscard]] const ServerCounters& counters() const noexcept { return counters_; }

  // ---- the call table
  CallSlot* alloc_call() noexcept;
  void free_call(CallSlot& s) noexcept;
  [[nodiscard]] CallSlot* find_call(std::uint32_t slot, std::uint32_t gen) noexcept;
  [[nodiscard]] std::uint32_t index_of(const CallSlot& s) const noexcept {
    return static_cast<std::uint32_t>(&s - slots_.data());
  }

  // ---- answers
  // RESPONSE (code 0) with `size` payload bytes from fn, or ERROR code/detail, for slot s:
  // sent when the wire still waits for it, recorded for an idempotent request, slot freed.
  // `known`: the call's connection when the caller has it (the handler's own Call).
  Result<void> finish(CallSlot& s, std::uint16_t code, std::string_view detail, std::size_t size,
                      WriteFn fn, const void* ctx, platform::Conn* known = nullptr) noexcept;
  // The same with the frame already encoded (a post from another worker): bytes of a shared
  // buffer, sent by reference.
  void finish_shared(CallSlot& s, platform::SharedRef ref, std::size_t payload_off,
                     std::uint16_t code) noexcept;
  // Writes a RESPONSE frame of `size` payload bytes into the worker's tail buffer (and new
  // general buffers), each piece queued on c by reference. Captures a payload of at most the
  // idempotency limit in scratch_ when `capture`.
  Result<void> write_response(platform::Conn& c, std::uint32_t id, std::size_t size, WriteFn fn,
                              const void* ctx, bool capture) noexcept;
  [[nodiscard]] std::span<const std::byte> captured() const noexcept {
    return {scratch_.get(), captured_};
  }

 private:
  friend class ServerConn;
  friend class FrameOut;
  static void on_deadline(platform::TimerNode* node) noexcept;
  // Records the answer of an idempotent call (code 0: the RESPONSE written, or to be written
  // by fn when `captured` is false).
  void record(const CallSlot& s, std::uint16_t code, bool captured, std::size_t size, WriteFn fn,
              const void* ctx) noexcept;

  Server& server_;
  platform::Loop& loop_;
  const Options& opt_;
  Registry registry_;
  IdempotencyTable idem_;
  Topics* topics_ = nullptr;
  std::vector<CompiledRule> rules_;
  std::vector<CallSlot> slots_;
  std::uint32_t free_head_ = 0;
  static constexpr std::uint32_t kNoSlot = 0xffffffffu;
  // The general buffer answers are written into, shared by every connection of the worker
  // (each frame's bytes are queued by reference on its own connection).
  platform::BufRef tail_;
  std::uint32_t tail_used_ = 0;
  std::unique_ptr<std::byte[]> scratch_;  // an idempotent answer being captured
  std::size_t captured_ = 0;
  ServerCounters counters_;
  platform::HandlerPool<ServerConn> pool_;
};

}  // namespace weft::msg
