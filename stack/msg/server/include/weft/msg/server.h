// weft::msg::Server — the server side of the binary message protocol (docs/protocol.md §6)
// on the event core: one connection handler per client, a per-worker registry of methods,
// calls answered at once or later (from a timer, an event or another worker).
//
// Per connection: HELLO first (version negotiated, limits exchanged), then REQUESTs are
// dispatched by method id to the registry, answered with RESPONSE or ERROR by correlation id
// in any order; MESSAGE is one-way; PING is answered with PONG; CANCEL and per-request
// deadlines end a call early (ERROR cancelled / deadline_exceeded, sent by the server, and the
// handler's late answer is dropped); REQUESTs with IDEMPOTENT go through the worker's
// IdempotencyTable (protocol.md §6.7); graceful shutdown sends GOAWAY(last id), answers what
// is in flight and then closes. SUBSCRIBE / UNSUBSCRIBE / PUBLISH go to Options::topics.
//
// Memory: every structure is allocated when the worker starts (make_service's factory):
// connection handlers, the call table (Options::max_calls per worker), the idempotency table
// and frame-assembly space come from preallocated pools; answers are written straight into
// the worker's pool buffers (PayloadWriter). Steady state allocates nothing.
//
// Threading: a Server connection, its Calls and the Registry belong to one worker thread.
// A Deferred handle may travel to any worker; answer it there with answer() (which posts the
// encoded frame to the owning worker through a shared buffer when it is not the current one).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <weft/base/result.h>
#include <weft/msg/error.h>
#include <weft/msg/frame.h>
#include <weft/platform/conn.h>
#include <weft/platform/peer_cred.h>
#include <weft/platform/runtime.h>

namespace weft::msg {

class Call;
class ServerConn;
class ServerWorker;

// Method ids are FNV-1a (32-bit) of the method's full name, "package.Service/Method"
// (docs/protocol.md §6.8), so a client in any language computes them from the .proto alone.
// 0 is never a valid id (a name hashing to 0 is refused by the generator and by add()).
[[nodiscard]] constexpr std::uint32_t method_id(std::string_view full_name) noexcept {
  std::uint32_t h = 2166136261u;
  for (const char ch : full_name) {
    h ^= static_cast<unsigned char>(ch);
    h *= 16777619u;
  }
  return h;
}

// Space in the worker's pool buffers for one answer's payload, written in place.
// next() gives the next writable piece (contiguous, never empty while pool space lasts);
// wrote(n) says how much of the last piece was used. The total must equal the size declared
// to Call::reply_with (the frame header was written with it).
class PayloadWriter {
 public:
  virtual std::span<std::byte> next() noexcept = 0;
  virtual void wrote(std::size_t n) noexcept = 0;

 protected:
  ~PayloadWriter() = default;
};
// Writes exactly the declared number of bytes through w; false on failure (the answer becomes
// ERROR internal).
using WriteFn = bool (*)(const void* ctx, PayloadWriter& w) noexcept;

// An untyped method. `payload` is the REQUEST's (or MESSAGE's) payload, valid only during
// the call. The handler answers through `call` before returning, or takes call.defer() and
// answers later. A handler that returns without doing either gets ERROR internal sent for it.
using MethodFn = void (*)(void* ctx, Call& call, std::span<const std::byte> payload) noexcept;

struct Method {
  std::uint32_t id = 0;
  std::string_view name;  // "package.Service/Method"; must outlive the registry (literals)
  MethodFn fn = nullptr;
  void* ctx = nullptr;
};

// Method id -> handler, per worker (filled by Options::setup before the worker serves).
// Open addressing over a fixed array; add() refuses duplicates and a full table.
class Registry {
 public:
  static constexpr std::size_t kCapacity = 256;  // methods per server
  // Errors: invalid_argument (id 0 or no fn), already_exists (id taken: a hash collision or
  // a method registered twice), no_space (kCapacity methods).
  [[nodiscard]] Result<void> add(const Method& m) noexcept;
  [[nodiscard]] const Method* find(std::uint32_t id) const noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return n_; }

 private:
  static constexpr std::size_t kSlots = kCapacity * 2;
  Method slots_[kSlots] = {};
  std::size_t n_ = 0;
};

// A call that will be answered later, possibly on another worker. A plain value (copy it
// anywhere); a stale handle (the call already ended on the wire, or its connection closed) is
// detected by generation, and its answer is dropped (answer() returns call_gone).
struct Deferred {
  platform::ConnId conn;
  std::uint32_t request_id = 0;
  std::uint32_t call_slot = 0;
  std::uint32_t call_gen = 0;
  ServerWorker* owner = nullptr;  // the owning worker's server state
};

// One REQUEST (or MESSAGE) being handled. Valid during the method call; after defer(), use
// the Deferred handle. Every answer function may be called at most once per call.
class Call {
 public:
  [[nodiscard]] std::uint32_t id() const noexcept { return id_; }  // 0 for a MESSAGE
  [[nodiscard]] std::uint32_t method() const noexcept { return method_; }
  [[nodiscard]] bool one_way() const noexcept { return id_ == 0; }
  // Absolute loop time (Loop::now_ms) after which the answer is useless; 0: no deadline.
  [[nodiscard]] std::uint64_t deadline() const noexcept { return deadline_; }
  [[nodiscard]] platform::Conn& conn() const noexcept { return *conn_; }
  [[nodiscard]] platform::Loop& loop() const noexcept { return conn_->loop(); }
  // The caller's credentials as the kernel reported them when its connection was made
  // (platform::peer_credentials, read once per connection at open): pid, uid and gid over a
  // Unix-domain socket; valid == false over TCP. Valid during the method call (copy it to
  // keep it past defer()).
  [[nodiscard]] const platform::PeerCred& peer() const noexcept { return *peer_; }

  // RESPONSE with a payload copied from `payload`.
  Result<void> reply(std::span<const std::byte> payload) noexcept;
  // RESPONSE with a payload of exactly `size` bytes written in place by fn(ctx, writer).
  // Errors: too_large (size over the client's max_frame), no_buffers (pool exhausted: the
  // call is answered ERROR overloaded instead), closed.
  Result<void> reply_with(std::size_t size, WriteFn fn, const void* ctx) noexcept;
  // ERROR with code (not connection-fatal codes) and a short detail (<= 256 bytes, cut).
  Result<void> fail(ProtocolError code, std::string_view detail = {}) noexcept;
  // Keeps the call open past the handler's return. Answer it with answer()/answer_error().
  [[nodiscard]] Deferred defer() noexcept;

 private:
  friend class ServerConn;
  friend class ServerWorker;
  static constexpr platform::PeerCred kNoPeer{};
  ServerWorker* owner_ = nullptr;
  platform::Conn* conn_ = nullptr;
  const platform::PeerCred* peer_ = &kNoPeer;
  std::uint32_t id_ = 0;
  std::uint32_t method_ = 0;
  std::uint64_t deadline_ = 0;
  std::uint32_t slot_ = 0;  // in the worker's call table (unused for a MESSAGE)
  std::uint32_t gen_ = 0;
  bool answered_ = false;
  bool deferred_ = false;
};

// Answers a deferred call from the worker `here` (any worker of the runtime). On the owning
// worker it is sent at once; from another, the whole RESPONSE frame is encoded into one of
// the runtime's shared buffers (Config::shared_buffers must be > 0) and posted to the owner.
// Every deferred call must be answered exactly once, even after its deadline passed or its
// connection closed: that is when its call slot is freed and, for an idempotent request, its
// answer recorded for retries. Errors: call_gone (the wire already has an answer —
// deadline_exceeded or cancelled — or the connection closed: nothing is sent, the slot is
// freed; from another worker this is only known on the owner, so it is not reported),
// no_buffers (no shared buffer), queue_full (the post ring is full: retry), too_large.
Result<void> answer(platform::Loop& here, const Deferred& d,
                    std::span<const std::byte> payload) noexcept;
Result<void> answer_error(platform::Loop& here, const Deferred& d, ProtocolError code,
                          std::string_view detail = {}) noexcept;

// Topic operations of a connection, for a pub/sub layer (weft::pubsub) to implement. The
// server parses SUBSCRIBE / UNSUBSCRIBE / PUBLISH and calls these; a failure (and any of
// these frames when the server has no Topics) is answered ERROR with id 0 and a non-fatal
// code, the topic in its detail (docs/protocol.md §6.9): these frames carry no id.
class Topics {
 public:
  virtual ~Topics() = default;
  // Errors are reported to the client per docs/protocol.md §6.9.
  virtual Result<void> subscribe(platform::Conn& c, std::span<const std::byte> topic) noexcept = 0;
  virtual Result<void> unsubscribe(platform::Conn& c,
                                   std::span<const std::byte> topic) noexcept = 0;
  virtual Result<void> publish(platform::Conn& c, std::span<const std::byte> topic,
                               std::span<const std::byte> payload) noexcept = 0;
  // The connection closed: drop its subscriptions.
  virtual void closed(platform::Conn& c) noexcept = 0;
};

struct ServerStats {
  std::uint64_t requests = 0;            // REQUESTs dispatched to a handler
  std::uint64_t messages = 0;            // MESSAGEs dispatched
  std::uint64_t responses = 0;           // RESPONSE frames sent
  std::uint64_t errors_sent = 0;         // ERROR frames sent (any code)
  std::uint64_t deadline_exceeded = 0;   // calls ended by their deadline
  std::uint64_t cancelled = 0;           // calls ended by CANCEL
  std::uint64_t late_answers = 0;        // answers dropped: the call had already ended
  std::uint64_t idempotent_replays = 0;  // retries answered from the idempotency table
  std::uint64_t protocol_errors = 0;     // connections closed for a bad frame / version
  std::uint64_t overloaded = 0;          // REQUESTs refused: max_inflight or call table full
  std::uint64_t pings = 0;
  std::uint64_t denied = 0;  // REQUESTs and MESSAGEs refused by an access rule
};

// Who may call a method (Options::access). The caller is known only over a Unix-domain
// socket, by the uid and gid the kernel recorded for the connecting process (SO_PEERCRED:
// trusted, the client cannot choose them); only its primary gid is compared, not its
// supplementary groups. A TCP connection has no credentials.
//
// Matching: the rules are tried in order and the first whose `method` matches the call's
// method decides; a call that no rule matches is allowed (rules restrict, they do not list
// everything). A matching rule allows a Unix caller whose uid is in `uids` or whose gid is in
// `gids` (both empty: nobody), and a TCP caller only when allow_tcp is set. uid 0 is not
// special: list it to allow root. A refused REQUEST is answered ERROR permission_denied (not
// connection-fatal; checked before the method is looked up or an idempotent answer is
// replayed), a refused MESSAGE is dropped; both count in ServerStats::denied. SUBSCRIBE,
// UNSUBSCRIBE and PUBLISH are not subject to the rules.
//
// Example: only the service user and the admin group may change settings; every other
// method stays open to every caller, TCP included, since no rule matches it:
//   o.access = {{"weft.demo.Settings/Set", {svc_uid}, {admin_gid}}};
// A last rule {"*", uids, gids} closes everything else to callers not listed (and to TCP).
struct AccessRule {
  std::string method;               // full name "package.Service/Method", or "*" for every method
  std::vector<std::uint32_t> uids;  // allowed uids
  std::vector<std::uint32_t> gids;  // allowed (primary) gids
  bool allow_tcp = false;           // callers without credentials (TCP) are allowed too
};

struct Options {
  std::uint32_t max_frame = 16 * 1024;    // largest L accepted and announced (<= buffer_size)
  std::uint32_t max_inflight = 64;        // unanswered REQUESTs per connection (announced)
  std::uint32_t max_calls = 4096;         // calls in flight per worker, all connections
  std::uint32_t connections = 0;          // handlers per worker; 0 = Config::max_connections
  std::uint32_t hello_timeout_ms = 5000;  // HELLO must arrive within this, else closed
  // Idempotency table per worker (capacity 0: IDEMPOTENT requests run every time).
  std::uint32_t idempotency_entries = 1024;
  std::uint32_t idempotency_max_response = 512;
  std::uint32_t idempotency_ttl_ms = 60'000;
  // Called once per worker and listener (each service() of this Server on each worker has
  // its own registry), on the worker's thread, before it serves: fill the registry. May keep
  // `loop` (e.g. for per-worker service state) — state made here must not be replaced by the
  // next call for the same worker (a second listener): keep one per call.
  std::function<void(Registry&, platform::Loop&)> setup;
  // Optional pub/sub, per worker (the same object may serve every worker if it is
  // thread-safe). Must outlive the runtime.
  std::function<Topics*(platform::Loop&)> topics;
  // Access rules, first match decides (see AccessRule). Their method ids are computed once
  // per worker when it starts: a call costs a scan of the rules and their id lists, no
  // allocation. Empty: every caller may call every method.
  std::vector<AccessRule> access;
};

// The server: options, and per-worker state created on each worker when the runtime starts.
// Must outlive the Runtime it serves (service() captures it).
class Server {
 public:
  explicit Server(Options options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // A platform::Service serving the protocol on `address` (add it to Runtime::start).
  [[nodiscard]] platform::Service service(const platform::Address& address);
  [[nodiscard]] const Options& options() const noexcept { return options_; }
  // Any thread: the sum over workers (relaxed counters).
  [[nodiscard]] ServerStats stats() const noexcept;

 private:
  friend class ServerWorker;
  void attach(ServerWorker* w) noexcept;
  void detach(ServerWorker* w) noexcept;
  Options options_;
  struct Workers;
  std::unique_ptr<Workers> workers_;
};

}  // namespace weft::msg
