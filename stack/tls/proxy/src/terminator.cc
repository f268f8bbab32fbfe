#include <weft/tls/terminator.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <weft/base/log.h>
#include <weft/platform/conn.h>
#include <weft/platform/error.h>
#include <weft/platform/loop.h>
#include <weft/tls/ktls_probe.h>

namespace weft::tls {
inline namespace WEFT_TLS_NS {

namespace {

using platform::BufRef;
using platform::BufView;
using platform::Conn;
using platform::ConnId;
using platform::Handler;
using platform::HandlerFactory;
using platform::Loop;

struct RouteSpec {
  std::string alpn;
  platform::Address address;
  const platform::Runtime* runtime = nullptr;
  std::size_t service = 0;
};

struct Shared {
  const Context* context = nullptr;
  TerminatorOptions opt;
  std::vector<RouteSpec> routes;  // [0] is the default
  bool usable = true;
};

void bump(std::atomic<std::uint64_t>* c, std::uint64_t n = 1) noexcept {
  if (c != nullptr) {
    c->fetch_add(n, std::memory_order_relaxed);
  }
}

class Worker;
class Pair;

// Bytes received but not yet taken by their consumer (the Engine, or the Engine's write):
// a reference keeps the receive buffer; the side is paused while anything is held.
struct Held {
  BufRef ref;
  std::span<const std::byte> bytes;
  [[nodiscard]] bool empty() const noexcept { return bytes.empty(); }
  void clear() noexcept {
    ref.reset();
    bytes = {};
  }
};

// An output buffer being filled (as mux's Endpoint does): bytes go out by reference, and the
// next bytes extend the same buffer until it is full.
struct OutBuf {
  BufRef ref;
  std::uint32_t used = 0;
};

class ClientSide final : public Handler {
 public:
  explicit ClientSide(Pair& p) noexcept : pair_(p) {}
  void on_open(Conn& c) noexcept override;
  void on_data(Conn& c, BufView in) noexcept override;
  void on_eof(Conn& c) noexcept override;
  void on_writable(Conn& c) noexcept override;
  bool on_timeout(Conn& c, platform::Timeout t) noexcept override;
  void on_drain(Conn& c) noexcept override;
  void on_close(Conn& c, std::error_code reason) noexcept override;
  [[nodiscard]] Pair& pair() const noexcept { return pair_; }

 private:
  Pair& pair_;
};

class UpstreamSide final : public Handler {
 public:
  explicit UpstreamSide(Pair& p) noexcept : pair_(p) {}
  void on_open(Conn& c) noexcept override;
  void on_data(Conn& c, BufView in) noexcept override;
  void on_eof(Conn& c) noexcept override;
  void on_writable(Conn& c) noexcept override;
  void on_drain(Conn& c) noexcept override;
  void on_close(Conn& c, std::error_code reason) noexcept override;
  [[nodiscard]] Pair& pair() const noexcept { return pair_; }

 private:
  Pair& pair_;
};

// One proxied connection: both halves and their state. Released to the Worker's free list
// only when both halves have had on_close (they close at different times), which is why
// this is not a platform::HandlerPool: that pool recycles one Handler per connection.
class Pair {
 public:
  explicit Pair(Worker& w) noexcept : w_(w), client_(*this), upstream_(*this) {
    retry_.fn = &Pair::on_retry;
    retry_.ctx = this;
  }

  Worker& w_;
  ClientSide client_;
  UpstreamSide upstream_;
  std::optional<Engine> engine_;
  ConnId client_id_;
  ConnId upstream_id_;
  // live: the core holds the half's Handler (until destroy); gone: it had on_close.
  bool client_live_ = false;
  bool upstream_live_ = false;
  bool client_gone_ = false;
  bool upstream_gone_ = false;
  bool upstream_open_ = false;
  bool routed_ = false;        // the upstream connect was started
  bool client_ended_ = false;  // close_notify or FIN from the client
  bool ending_ = false;        // close_notify queued to the client
  bool client_paused_ = false;
  bool upstream_paused_ = false;
  Held client_in_;    // ciphertext the Engine did not take yet
  Held upstream_in_;  // plaintext the Engine did not take yet
  OutBuf cipher_out_;
  OutBuf plain_out_;
  Pair* next_free_ = nullptr;
  // The pool had no buffer for output: nothing else may wake this pair (no send failed, so
  // no on_writable comes), so a timer retries.
  platform::TimerNode retry_;
  static constexpr std::uint64_t kRetryMs = 5;

  static void on_retry(platform::TimerNode* node) noexcept;
  void want_buffer() noexcept;
  void reset() noexcept;
  [[nodiscard]] Conn* client() noexcept;
  [[nodiscard]] Conn* upstream() noexcept;
  void pump_client(Conn& c) noexcept;
  void pump_upstream() noexcept;
  void start_upstream(Conn& c) noexcept;
  bool flush_cipher(Conn& c, bool last = false) noexcept;
  void end_client() noexcept;
  void fail(Conn& c) noexcept;
  void note_queue(const Conn& c) noexcept;
  void log_close(const char* side, std::error_code reason) const noexcept;
  void maybe_release() noexcept;
};

class UpstreamFactory final : public HandlerFactory {
 public:
  Handler* create(Conn& c) noexcept override;
  void destroy(Handler* h) noexcept override;
};

class Worker final : public HandlerFactory {
 public:
  Worker(Loop& loop, std::shared_ptr<const Shared> shared)
      : loop_(loop), shared_(std::move(shared)) {
    const platform::Config& cfg = loop.config();
    const std::uint32_t asked =
        shared_->opt.max_connections != 0 ? shared_->opt.max_connections : cfg.max_connections;
    const std::uint32_t n = std::min(asked, cfg.outbound_connections);
    pairs_.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
      pairs_.push_back(std::make_unique<Pair>(*this));
      pairs_.back()->next_free_ = free_;
      free_ = pairs_.back().get();
    }
    for (const RouteSpec& r : shared_->routes) {
      addrs_.push_back(r.runtime != nullptr ? r.runtime->local_address(r.service) : r.address);
    }
    if (loop.index() == 0) {
      char where[128];
      addrs_[0].format(where, sizeof where);
      log(LogLevel::info, "%s: terminator: %u connections per worker, upstream %s%s",
          shared_->opt.name, n, where,
          n < asked ? " (capped by Config::outbound_connections)" : "");
    }
  }

  Handler* create(Conn& c) noexcept override {
    if (free_ == nullptr || !shared_->usable) {
      bump(stats() ? &stats()->refused : nullptr);
      return nullptr;
    }
    Pair* p = free_;
    free_ = p->next_free_;
    p->reset();
    p->client_live_ = true;
    p->client_id_ = c.id();
    return &p->client_;
  }

  void destroy(Handler* h) noexcept override {
    Pair& p = static_cast<ClientSide*>(h)->pair();
    p.client_live_ = false;
    p.maybe_release();
  }

  void release(Pair& p) noexcept {
    p.next_free_ = free_;
    free_ = &p;
  }

  [[nodiscard]] Loop& loop() noexcept { return loop_; }
  [[nodiscard]] const Shared& shared() const noexcept { return *shared_; }
  [[nodiscard]] TerminatorStats* stats() const noexcept { return shared_->opt.stats; }
  [[nodiscard]] const platform::Address& route_for(std::string_view alpn) const noexcept {
    for (std::size_t i = 1; i < shared_->routes.size(); ++i) {
      if (!alpn.empty() && shared_->routes[i].alpn == alpn) {
        return addrs_[i];
      }
    }
    return addrs_[0];
  }
  UpstreamFactory upstream_factory_;

 private:
  Loop& loop_;
  std::shared_ptr<const Shared> shared_;
  std::vector<std::unique_ptr<Pair>> pairs_;
  std::vector<platform::Address> addrs_;  // resolved routes, as shared_->routes
  Pair* free_ = nullptr;
};

Handler* UpstreamFactory::create(Conn& c) noexcept {
  Pair* p = c.context<Pair>();
  if (p == nullptr) {
    return nullptr;
  }
  p->upstream_live_ = true;
  p->upstream_id_ = c.id();
  return &p->upstream_;
}

void UpstreamFactory::destroy(Handler* h) noexcept {
  Pair& p = static_cast<UpstreamSide*>(h)->pair();
  p.upstream_live_ = false;
  p.maybe_release();
}

void Pair::want_buffer() noexcept {
  if (!retry_.scheduled()) {
    w_.loop().timers().schedule(retry_, w_.loop().now_ms() + kRetryMs);
  }
}

void Pair::on_retry(platform::TimerNode* node) noexcept {
  Pair& p = *static_cast<Pair*>(node->ctx);
  if (Conn* c = p.client(); c != nullptr && p.engine_) {
    p.pump_client(*c);
    if (p.client() != nullptr) {
      p.pump_upstream();
    }
  }
}

void Pair::reset() noexcept {
  if (retry_.scheduled()) {
    w_.loop().timers().cancel(retry_);
  }
  engine_.reset();
  client_id_ = {};
  upstream_id_ = {};
  client_live_ = upstream_live_ = upstream_open_ = routed_ = false;
  client_gone_ = upstream_gone_ = false;
  client_ended_ = ending_ = client_paused_ = upstream_paused_ = false;
  client_in_.clear();
  upstream_in_.clear();
  cipher_out_ = {};
  plain_out_ = {};
}

Conn* Pair::client() noexcept {
  return client_live_ && !client_gone_ ? w_.loop().find(client_id_) : nullptr;
}

Conn* Pair::upstream() noexcept {
  return upstream_live_ && !upstream_gone_ ? w_.loop().find(upstream_id_) : nullptr;
}

void Pair::maybe_release() noexcept {
  if (!client_live_ && !upstream_live_) {
    if (retry_.scheduled()) {
      w_.loop().timers().cancel(retry_);
    }
    engine_.reset();  // frees the backend's state now, not at the next accept
    client_in_.clear();
    upstream_in_.clear();
    cipher_out_ = {};
    plain_out_ = {};
    w_.release(*this);
  }
}

void Pair::log_close(const char* side, std::error_code reason) const noexcept {
  if (reason) {
    log(LogLevel::debug, "%s: %s connection closed: %s", w_.shared().opt.name, side,
        reason.message().c_str());
  }
}

void Pair::note_queue(const Conn& c) noexcept {
  if (TerminatorStats* s = w_.stats()) {
    const std::uint64_t q = c.queued_bytes();
    std::uint64_t seen = s->max_queued.load(std::memory_order_relaxed);
    while (q > seen && !s->max_queued.compare_exchange_weak(seen, q, std::memory_order_relaxed)) {
    }
  }
}

// Moves the Engine's pending ciphertext (handshake, records, alerts) to the client while its
// queue is below the high watermark (last: all of it, before a close: the alert or
// close_notify must not stay behind). False when the client connection broke.
bool Pair::flush_cipher(Conn& c, bool last) noexcept {
  platform::BufferPool& pool = c.loop().pool();
  const std::uint32_t size = pool.buffer_size();
  const std::uint32_t high = c.loop().config().high_watermark;
  while (engine_->pending() != 0 && (last || c.queued_bytes() < high)) {
    if (!cipher_out_.ref.valid() || cipher_out_.used == size) {
      const platform::BufId id = pool.acquire();
      if (id == platform::kNoBuf) {
        want_buffer();  // no_buffers is back-pressure: retried shortly
        return true;
      }
      cipher_out_.ref = BufRef(&pool, id);
      cipher_out_.used = 0;
    }
    const std::span<std::byte> room{cipher_out_.ref.data() + cipher_out_.used,
                                    size - cipher_out_.used};
    const std::size_t n = engine_->take(room);
    if (n == 0) {
      break;
    }
    if (Result<void> r = c.send_ref(cipher_out_.ref, room.first(n)); !r) {
      c.abort(r.error());
      return false;
    }
    cipher_out_.used += static_cast<std::uint32_t>(n);
  }
  note_queue(c);
  return true;
}

// The Engine failed: its alert goes out, then the client is closed; the upstream too.
void Pair::fail(Conn& c) noexcept {
  const std::error_code e = engine_->error();
  if (!engine_->handshake_done()) {
    bump(w_.stats() ? &w_.stats()->handshake_failures : nullptr);
  }
  log(LogLevel::debug, "%s: connection failed: %s", w_.shared().opt.name, e.message().c_str());
  client_in_.clear();
  (void)flush_cipher(c, true);
  c.close();
  if (Conn* u = upstream()) {
    u->close();
  }
}

// The upstream ended (FIN, error, refused): the last plaintext is encrypted, close_notify
// follows it, and the client connection closes once that is sent.
void Pair::end_client() noexcept {
  Conn* c = client();
  if (c == nullptr || ending_) {
    return;
  }
  if (!upstream_in_.empty()) {
    return;  // the rest is still being encrypted: pump_upstream calls again when done
  }
  ending_ = true;
  engine_->close();
  client_in_.clear();
  (void)flush_cipher(*c, true);
  c->close();
}

void Pair::start_upstream(Conn& c) noexcept {
  routed_ = true;
  bump(w_.stats() ? &w_.stats()->handshakes : nullptr);
  // The handshake is done: no read deadline any more, and no idle deadline of our own.
  platform::Timeouts t = c.timeouts();
  t.read_ms = 0;
  t.idle_ms = 0;
  c.set_timeouts(t);
  c.set_mid_message(false);
  std::array<char, 256> subject{};
  const std::size_t sn = engine_->peer_subject(subject);
  const bool verified = engine_->peer_verified();
  if (verified) {
    bump(w_.stats() ? &w_.stats()->peers_verified : nullptr);
  }
  const std::string_view alpn = engine_->alpn();
  if (sn != 0) {
    log(LogLevel::info, "%s: client certificate %s (%s), alpn '%.*s'", w_.shared().opt.name,
        subject.data(), verified ? "verified" : "NOT verified", static_cast<int>(alpn.size()),
        alpn.data());
  }
  if (w_.shared().opt.on_peer != nullptr) {
    w_.shared().opt.on_peer(w_.shared().opt.on_peer_ctx, alpn, {subject.data(), sn}, verified);
  }
  platform::ConnectOptions co;
  co.context = platform::Context::of(this);
  Result<ConnId> id = w_.loop().connect(w_.route_for(alpn), w_.upstream_factory_, co);
  if (!id) {
    bump(w_.stats() ? &w_.stats()->upstream_failures : nullptr);
    log(LogLevel::warn, "%s: upstream connect: %s", w_.shared().opt.name,
        id.error().message().c_str());
    if (upstream_live_ && !upstream_gone_) {
      return;  // the handler exists: its on_close ends the client
    }
    end_client();
  }
}

// Client side: ciphertext in, plaintext to the upstream (while its queue has room),
// handshake and records back to the client.
void Pair::pump_client(Conn& c) noexcept {
  Conn* up = upstream_open_ ? upstream() : nullptr;
  platform::BufferPool& pool = c.loop().pool();
  const std::uint32_t size = pool.buffer_size();
  const std::uint32_t high = c.loop().config().high_watermark;
  for (int round = 0; round < 64; ++round) {
    bool progress = false;
    if (!client_in_.empty()) {
      Result<std::size_t> n = engine_->feed(client_in_.bytes);
      if (!n) {
        fail(c);
        return;
      }
      if (*n != 0) {
        progress = true;
        client_in_.bytes = client_in_.bytes.subspan(*n);
        if (client_in_.empty()) {
          client_in_.clear();
        }
      }
    }
    if (engine_->state() == State::failed) {
      fail(c);
      return;
    }
    if (!routed_ && engine_->handshake_done()) {
      start_upstream(c);
      up = upstream_open_ ? upstream() : nullptr;
    }
    while (up != nullptr && up->queued_bytes() < high) {
      if (!plain_out_.ref.valid() || plain_out_.used == size) {
        const platform::BufId id = pool.acquire();
        if (id == platform::kNoBuf) {
          want_buffer();
          break;
        }
        plain_out_.ref = BufRef(&pool, id);
        plain_out_.used = 0;
      }
      const std::span<std::byte> room{plain_out_.ref.data() + plain_out_.used,
                                      size - plain_out_.used};
      Result<std::size_t> n = engine_->read(room);
      if (!n) {
        fail(c);
        return;
      }
      if (*n == 0) {
        break;
      }
      if (Result<void> r = up->send_ref(plain_out_.ref, room.first(*n)); !r) {
        up->abort(r.error());
        break;
      }
      plain_out_.used += static_cast<std::uint32_t>(*n);
      bump(w_.stats() ? &w_.stats()->bytes_up : nullptr, *n);
      progress = true;
    }
    if (up != nullptr) {
      note_queue(*up);
    }
    if (!flush_cipher(c)) {
      return;
    }
    if (!progress) {
      break;
    }
  }
  // The client's close_notify: the upstream gets what was read, then our FIN.
  if (engine_->peer_closed() && !client_ended_) {
    client_ended_ = true;
    if (up != nullptr) {
      up->close();
    } else if (!routed_ || upstream_gone_ || !upstream_live_) {
      end_client();
    }
  }
  // Hold reading while ciphertext waits for the Engine (it needs the upstream to drain).
  const bool pause = !client_in_.empty();
  if (pause != client_paused_) {
    client_paused_ = pause;
    if (pause) {
      c.pause_reading();
    } else {
      c.resume_reading();
    }
  }
}

// Upstream side: plaintext in, records to the client while its queue has room.
void Pair::pump_upstream() noexcept {
  Conn* c = client();
  Conn* up = upstream();
  if (c == nullptr || !c->open() || ending_) {
    upstream_in_.clear();
  }
  const std::uint32_t high = w_.loop().config().high_watermark;
  while (c != nullptr && !upstream_in_.empty() && c->queued_bytes() < high) {
    Result<std::size_t> n = engine_->write(upstream_in_.bytes);
    if (!n) {
      fail(*c);
      upstream_in_.clear();
      break;
    }
    bump(w_.stats() ? &w_.stats()->bytes_down : nullptr, *n);
    upstream_in_.bytes = upstream_in_.bytes.subspan(*n);
    if (!flush_cipher(*c)) {
      upstream_in_.clear();
      break;
    }
    if (*n == 0 && engine_->pending() != 0) {
      break;  // the client's queue is full: on_writable continues
    }
    if (*n == 0) {
      break;
    }
  }
  if (upstream_in_.empty()) {
    upstream_in_.clear();
  }
  if (up != nullptr) {
    const bool pause = !upstream_in_.empty();
    if (pause != upstream_paused_) {
      upstream_paused_ = pause;
      if (pause) {
        up->pause_reading();
      } else {
        up->resume_reading();
      }
    }
  }
}

// ---- client side ---------------------------------------------------------------------

void ClientSide::on_open(Conn& c) noexcept {
  Pair& p = pair_;
  bump(p.w_.stats() ? &p.w_.stats()->accepted : nullptr);
  Result<Engine> e = p.w_.shared().context->engine();
  if (!e) {
    c.abort(e.error());
    return;
  }
  p.engine_.emplace(std::move(e.value()));
  // Our own back-pressure (pump_*) pauses each side by its peer's queue, not its own.
  c.set_watermark_pause(false);
  platform::Timeouts t = c.timeouts();
  t.read_ms = p.w_.shared().opt.handshake_timeout_ms;
  c.set_timeouts(t);
  c.set_mid_message(t.read_ms != 0);
}

void ClientSide::on_data(Conn& c, BufView in) noexcept {
  Pair& p = pair_;
  if (!p.engine_ || p.ending_) {
    return;
  }
  p.client_in_.ref = in.ref();
  p.client_in_.bytes = in.bytes;
  p.pump_client(c);
}

void ClientSide::on_eof(Conn& c) noexcept {
  Pair& p = pair_;
  // A FIN without close_notify (truncation) ends the upstream just the same.
  p.client_ended_ = true;
  Conn* up = p.upstream();
  if (up != nullptr && p.upstream_open_) {
    up->close();  // queued plaintext first, then the upstream's FIN
  } else if (up == nullptr) {
    c.close();
  }  // else still connecting: UpstreamSide::on_open delivers what there is, then closes
}

void ClientSide::on_writable(Conn& c) noexcept {
  Pair& p = pair_;
  if (!p.engine_) {
    return;
  }
  (void)p.flush_cipher(c);
  p.pump_upstream();
  if (p.upstream_in_.empty() && !p.ending_ && p.upstream_gone_ && p.routed_) {
    p.end_client();
  }
}

bool ClientSide::on_timeout(Conn& c, platform::Timeout t) noexcept {
  Pair& p = pair_;
  if (t == platform::Timeout::read && p.engine_ && !p.engine_->handshake_done()) {
    bump(p.w_.stats() ? &p.w_.stats()->handshake_timeouts : nullptr);
    log(LogLevel::debug, "%s: handshake timeout", p.w_.shared().opt.name);
  }
  (void)c;
  return false;  // the core aborts with timed_out
}

void ClientSide::on_drain(Conn& c) noexcept {
  Pair& p = pair_;
  if (p.engine_ && p.engine_->handshake_done()) {
    p.end_client();
  } else {
    c.close();
  }
}

void ClientSide::on_close(Conn& /*c*/, std::error_code reason) noexcept {
  Pair& p = pair_;
  p.log_close("client", reason);
  p.client_in_.clear();
  p.client_gone_ = true;
  if (Conn* up = p.upstream()) {
    if (reason) {
      up->abort(reason);
    } else {
      up->close();
    }
  }
}

// ---- upstream side -------------------------------------------------------------------

void UpstreamSide::on_open(Conn& c) noexcept {
  Pair& p = pair_;
  p.upstream_open_ = true;
  c.set_watermark_pause(false);
  platform::Timeouts t = c.timeouts();
  t.idle_ms = 0;  // the upstream's own policy closes idle connections
  c.set_timeouts(t);
  if (Conn* cl = p.client()) {
    p.pump_client(*cl);
    if (p.client_ended_) {
      c.close();  // the client already ended: deliver what it sent, then our FIN
    }
  } else {
    c.close();
  }
}

void UpstreamSide::on_data(Conn& c, BufView in) noexcept {
  Pair& p = pair_;
  if (p.client() == nullptr) {
    c.close();
    return;
  }
  p.upstream_in_.ref = in.ref();
  p.upstream_in_.bytes = in.bytes;
  p.pump_upstream();
}

void UpstreamSide::on_eof(Conn& c) noexcept {
  c.close();
}

void UpstreamSide::on_writable(Conn& /*c*/) noexcept {
  Pair& p = pair_;
  if (Conn* cl = p.client()) {
    p.pump_client(*cl);
  }
}

void UpstreamSide::on_drain(Conn& c) noexcept {
  c.close();
}

void UpstreamSide::on_close(Conn& /*c*/, std::error_code reason) noexcept {
  Pair& p = pair_;
  p.log_close("upstream", reason);
  if (!p.upstream_open_ || (reason && reason != platform::platform_errc::closed)) {
    if (!p.upstream_open_) {
      bump(p.w_.stats() ? &p.w_.stats()->upstream_failures : nullptr);
      log(LogLevel::warn, "%s: upstream unreachable: %s", p.w_.shared().opt.name,
          reason.message().c_str());
    }
  }
  p.upstream_gone_ = true;
  p.upstream_open_ = false;
  p.upstream_in_.clear();
  p.end_client();
}

std::shared_ptr<const Shared> make_shared_state(const Context& context,
                                                const platform::Address& upstream,
                                                const TerminatorOptions& options) {
  auto s = std::make_shared<Shared>();
  s->context = &context;
  s->opt = options;
  s->opt.routes = {};
  RouteSpec def;
  def.address = upstream;
  s->routes.push_back(def);
  for (const Route& r : options.routes) {
    RouteSpec spec{std::string(r.alpn), r.address, r.runtime, r.service};
    if (r.alpn.empty()) {
      s->routes[0] = spec;  // an explicit default replaces `upstream`
    } else {
      s->routes.push_back(spec);
    }
  }
  if (s->routes.size() > kMaxRoutes) {
    log(LogLevel::error, "%s: terminator: %zu routes (at most %zu): refusing connections",
        options.name, s->routes.size(), kMaxRoutes);
    s->usable = false;
  }
  if (context.role() != Role::server) {
    log(LogLevel::error, "%s: terminator needs a server Context: refusing connections",
        options.name);
    s->usable = false;
  }
  const KtlsProbe k = ktls_probe();
  log(LogLevel::info, "%s: kTLS not used by the terminator (user-space TLS): %s", options.name,
      k.available ? "the kernel has the tls ULP, the offload is not wired yet" : k.reason);
  return s;
}

}  // namespace

platform::Service make_terminator(const platform::Address& listen, const Context& context,
                                  const platform::Address& upstream,
                                  const TerminatorOptions& options) {
  platform::Service s;
  s.address = listen;
  s.make_factory = [shared = make_shared_state(context, upstream, options)](Loop& loop) {
    return std::unique_ptr<HandlerFactory>(new Worker(loop, shared));
  };
  return s;
}

}  // namespace WEFT_TLS_NS
}  // namespace weft::tls
