// weft::msg::Server: the connection state machine, dispatch, answers and the call table.
//
// Reading: frames that lie whole inside one receive are parsed in place (no copy); a frame
// split across receives is assembled in one general pool buffer (so max_frame must fit a
// pool buffer), taken only while that frame is incomplete.
// Writing: RESPONSE frames are written in place into a general buffer the worker shares
// between its connections (each frame queued by reference on its own connection, so answers
// from one receive to one client extend one segment); small control frames (ERROR, PONG,
// GOAWAY, HELLO_ACK) are copied (Conn::send_copy). When output cannot be queued at all — the
// pool is exhausted or the peer's queue is full because it does not read — the connection is
// aborted with that reason: a half-written frame would corrupt the stream, and the limits
// (max_inflight answers of at most max_frame bytes, the watermark pause) make it the peer's
// doing or a pool sized too small, which stats and the close reason show.
#include "server_impl.h"

#include <algorithm>
#include <cstring>

#include <weft/base/log.h>
#include <weft/platform/error.h>
#include <weft/platform/shared_buffers.h>

namespace weft::msg {

using platform::BufView;
using platform::Conn;
using platform::Loop;
using platform::platform_errc;

namespace {

constexpr std::size_t kFrameHead = kPrefixSize + kHeaderSize;  // 12: L, type, flags, channel, id

void put_be32(std::byte* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::byte>(v >> 24);
  p[1] = static_cast<std::byte>(v >> 16);
  p[2] = static_cast<std::byte>(v >> 8);
  p[3] = static_cast<std::byte>(v);
}
std::uint32_t get_be32(const std::byte* p) noexcept {
  return (std::to_integer<std::uint32_t>(p[0]) << 24) |
         (std::to_integer<std::uint32_t>(p[1]) << 16) |
         (std::to_integer<std::uint32_t>(p[2]) << 8) | std::to_integer<std::uint32_t>(p[3]);
}
// The header of a RESPONSE with `size` payload bytes.
void response_head(std::byte* out, std::uint32_t id, std::size_t size) noexcept {
  put_be32(out, static_cast<std::uint32_t>(kHeaderSize + size));
  out[4] = static_cast<std::byte>(FrameType::response);
  out[5] = std::byte{0};
  out[6] = std::byte{0};
  out[7] = std::byte{0};
  put_be32(out + 8, id);
}
std::span<const std::byte> bytes_of(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), std::min(s.size(), kMaxDetailSize)};
}

bool copy_payload(const void* ctx, PayloadWriter& w) noexcept {
  auto src = *static_cast<const std::span<const std::byte>*>(ctx);
  while (!src.empty()) {
    const std::span<std::byte> piece = w.next();
    if (piece.empty()) {
      return false;
    }
    const std::size_t n = std::min(piece.size(), src.size());
    std::memcpy(piece.data(), src.data(), n);
    w.wrote(n);
    src = src.subspan(n);
  }
  return true;
}

// Pings per second a connection may send before it is told GOAWAY(overloaded) and closed.
constexpr std::uint32_t kMaxPingsPerSecond = 1000;

}  // namespace

// ---- counters --------------------------------------------------------------------------

void ServerCounters::add_to(ServerStats& s) const noexcept {
  s.requests += requests.get();
  s.messages += messages.get();
  s.responses += responses.get();
  s.errors_sent += errors_sent.get();
  s.deadline_exceeded += deadline_exceeded.get();
  s.cancelled += cancelled.get();
  s.late_answers += late_answers.get();
  s.idempotent_replays += idempotent_replays.get();
  s.protocol_errors += protocol_errors.get();
  s.overloaded += overloaded.get();
  s.pings += pings.get();
  s.denied += denied.get();
}

// ---- Server ----------------------------------------------------------------------------

struct Server::Workers {
  mutable std::mutex mu;
  std::vector<ServerWorker*> live;
  ServerStats retired;  // counters of workers that have gone
};

Server::Server(Options options) : options_(std::move(options)), workers_(new Workers) {}
Server::~Server() = default;

void Server::attach(ServerWorker* w) noexcept {
  const std::lock_guard<std::mutex> lock(workers_->mu);
  workers_->live.push_back(w);  // start-up, not the hot path
}

void Server::detach(ServerWorker* w) noexcept {
  const std::lock_guard<std::mutex> lock(workers_->mu);
  auto& v = workers_->live;
  v.erase(std::remove(v.begin(), v.end(), w), v.end());
  w->counters().add_to(workers_->retired);
}

ServerStats Server::stats() const noexcept {
  const std::lock_guard<std::mutex> lock(workers_->mu);
  ServerStats s = workers_->retired;
  for (const ServerWorker* w : workers_->live) {
    w->counters().add_to(s);
  }
  return s;
}

platform::Service Server::service(const platform::Address& address) {
  return platform::Service{address,
                           [this](Loop& loop) -> std::unique_ptr<platform::HandlerFactory> {
                             return std::make_unique<ServerWorker>(*this, loop);
                           }};
}

// ---- ServerWorker ----------------------------------------------------------------------

ServerWorker::ServerWorker(Server& server, Loop& loop)
    : server_(server),
      loop_(loop),
      opt_(server.options()),
      slots_(std::max<std::uint32_t>(opt_.max_calls, 1)),
      scratch_(new std::byte[opt_.idempotency_max_response + 1]),
      pool_(opt_.connections != 0 ? opt_.connections : loop.config().max_connections, this) {
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    CallSlot& s = slots_[i];
    s.worker = this;
    s.next_free = i + 1 < slots_.size() ? i + 1 : kNoSlot;
    s.timer.fn = &ServerWorker::on_deadline;
    s.timer.ctx = &s;
  }
  if (opt_.max_frame > loop.config().buffer_size) {
    log(LogLevel::warn, "msg: max_frame %u is larger than a pool buffer (%u): capped",
        opt_.max_frame, loop.config().buffer_size);
  }
  if (opt_.idempotency_entries != 0 &&
      !idem_.init(opt_.idempotency_entries, opt_.idempotency_max_response,
                  std::max<std::uint32_t>(opt_.idempotency_ttl_ms, 1))) {
    log(LogLevel::error, "msg: idempotency table of %u entries: out of memory",
        opt_.idempotency_entries);
  }
  if (opt_.setup) {
    opt_.setup(registry_, loop);
  }
  if (opt_.topics) {
    topics_ = opt_.topics(loop);
  }
  rules_.reserve(opt_.access.size());
  for (const AccessRule& a : opt_.access) {
    CompiledRule r;
    r.rule = &a;
    r.any = a.method == "*";
    r.id = r.any ? 0 : method_id(a.method);
    // A rule for a method the registry does not serve is most likely a typo, which would
    // leave the real method unprotected: said once, by worker 0.
    if (!r.any && registry_.find(r.id) == nullptr && loop.index() == 0) {
      log(LogLevel::warn, "msg: access rule for '%s': no such method is registered",
          a.method.c_str());
    }
    if (a.uids.empty() && a.gids.empty() && !a.allow_tcp && loop.index() == 0) {
      log(LogLevel::info, "msg: access rule for '%s' allows nobody", a.method.c_str());
    }
    rules_.push_back(r);
  }
  server_.attach(this);
}

bool ServerWorker::allowed(std::uint32_t method, const platform::PeerCred& peer) const noexcept {
  for (const CompiledRule& r : rules_) {
    if (!r.any && r.id != method) {
      continue;
    }
    const AccessRule& a = *r.rule;
    if (!peer.valid) {
      return a.allow_tcp;  // no credentials: TCP (or a failed query, treated alike)
    }
    return std::find(a.uids.begin(), a.uids.end(), peer.uid) != a.uids.end() ||
           std::find(a.gids.begin(), a.gids.end(), peer.gid) != a.gids.end();
  }
  return true;  // rules restrict; a method no rule names is open
}

ServerWorker::~ServerWorker() {
  server_.detach(this);
}

platform::Handler* ServerWorker::create(Conn& c) noexcept {
  return pool_.create(c);
}

void ServerWorker::destroy(platform::Handler* h) noexcept {
  pool_.destroy(h);
}

CallSlot* ServerWorker::alloc_call() noexcept {
  if (free_head_ == kNoSlot) {
    return nullptr;
  }
  CallSlot& s = slots_[free_head_];
  free_head_ = s.next_free;
  s.live = true;
  return &s;
}

void ServerWorker::free_call(CallSlot& s) noexcept {
  loop_.timers().cancel(s.timer);
  s.live = false;
  s.wire_open = false;
  s.idem = false;
  s.conn = nullptr;
  s.prev = s.next = nullptr;
  ++s.gen;
  s.next_free = free_head_;
  free_head_ = index_of(s);
}

CallSlot* ServerWorker::find_call(std::uint32_t slot, std::uint32_t gen) noexcept {
  if (slot >= slots_.size()) {
    return nullptr;
  }
  CallSlot& s = slots_[slot];
  return s.live && s.gen == gen ? &s : nullptr;
}

// The pieces of one frame: the worker's tail buffer first, then fresh general buffers. The
// bytes written into one buffer are queued with one send_ref when the frame leaves that
// buffer (or ends), so a frame costs one queue operation, not one per piece.
class FrameOut final : public PayloadWriter {
 public:
  FrameOut(ServerWorker& w, Conn& c, std::size_t total, bool capture) noexcept
      : w_(w), c_(c), left_(total), capture_(capture) {}

  std::span<std::byte> next() noexcept override {
    if (left_ == 0 || failed_) {
      return {};
    }
    platform::BufferPool& pool = w_.loop_.pool();
    if (!w_.tail_.valid() || w_.tail_used_ == pool.buffer_size()) {
      if (!flush()) {
        return {};
      }
      w_.tail_.reset();
      const platform::BufId id = pool.acquire();
      if (id == platform::kNoBuf) {  // reserved up front: only a broken writer gets here
        failed_ = true;
        return {};
      }
      w_.tail_ = platform::BufRef(&pool, id);
      w_.tail_used_ = 0;
      start_ = 0;
    }
    const std::size_t room = pool.buffer_size() - w_.tail_used_;
    return {w_.tail_.data() + w_.tail_used_, std::min(room, left_)};
  }

  void wrote(std::size_t n) noexcept override {
    if (n == 0 || failed_) {
      return;
    }
    if (capture_ && head_done_ && w_.captured_ + n <= w_.opt_.idempotency_max_response) {
      std::memcpy(w_.scratch_.get() + w_.captured_, w_.tail_.data() + w_.tail_used_, n);
      w_.captured_ += n;
    }
    w_.tail_used_ += static_cast<std::uint32_t>(n);
    left_ -= n;
  }

  // Writes the frame head (it may straddle the tail buffer's end).
  bool head(const std::byte* h, std::size_t n) noexcept {
    start_ = w_.tail_used_;
    while (n != 0) {
      const std::span<std::byte> piece = next();
      if (piece.empty()) {
        return false;
      }
      const std::size_t k = std::min(piece.size(), n);
      std::memcpy(piece.data(), h, k);
      wrote(k);
      h += k;
      n -= k;
    }
    head_done_ = true;
    return !failed_;
  }

  // Queues what was written into the current tail buffer since the frame (or the buffer)
  // began.
  bool flush() noexcept {
    if (!w_.tail_.valid() || w_.tail_used_ == start_) {
      return !failed_;
    }
    std::byte* p = w_.tail_.data() + start_;
    if (!c_.send_ref(w_.tail_, {p, w_.tail_used_ - start_})) {
      failed_ = true;
    }
    start_ = w_.tail_used_;
    return !failed_;
  }

  [[nodiscard]] bool failed() const noexcept { return failed_; }
  [[nodiscard]] std::size_t left() const noexcept { return left_; }

 private:
  ServerWorker& w_;
  Conn& c_;
  std::size_t left_;
  std::uint32_t start_ = 0;  // where this frame's unqueued bytes begin in the tail buffer
  bool capture_;
  bool head_done_ = false;
  bool failed_ = false;
};

Result<void> ServerWorker::write_response(Conn& c, std::uint32_t id, std::size_t size, WriteFn fn,
                                          const void* ctx, bool capture) noexcept {
  const std::size_t total = kFrameHead + size;
  platform::BufferPool& pool = loop_.pool();
  const std::size_t room = tail_.valid() ? pool.buffer_size() - tail_used_ : 0;
  const std::size_t fresh =
      total > room ? (total - room + pool.buffer_size() - 1) / pool.buffer_size() : 0;
  if (fresh > pool.free_general()) {
    return fail(platform_errc::no_buffers);  // nothing written
  }
  captured_ = 0;
  if (total <= room && fn == &copy_payload) {
    // The common case, a copied answer that fits the tail buffer: head and payload written
    // straight, one send_ref, no writer.
    std::byte* p = tail_.data() + tail_used_;
    response_head(p, id, size);
    const auto& src = *static_cast<const std::span<const std::byte>*>(ctx);
    if (size != 0) {
      std::memcpy(p + kFrameHead, src.data(), size);
    }
    if (!c.send_ref(tail_, {p, total})) {
      c.abort(make_error_code(platform_errc::queue_full));  // the peer's queue is full
      return fail(platform_errc::closed);
    }
    tail_used_ += static_cast<std::uint32_t>(total);
    if (capture) {
      std::memcpy(scratch_.get(), p + kFrameHead, size);
      captured_ = size;
    }
    return {};
  }
  FrameOut out(*this, c, total, capture);
  std::byte head[kFrameHead];
  response_head(head, id, size);
  if (!out.head(head, kFrameHead)) {
    // A head straddling two buffers whose first part was queued: the stream is broken.
    c.abort(make_error_code(platform_errc::queue_full));
    return fail(platform_errc::closed);
  }
  if (!fn(ctx, out) || out.left() != 0) {
    // The writer failed or wrote another size than it declared: the frame on the wire would
    // be broken, so would the stream.
    log(LogLevel::warn, "msg: answer writer failed (%zu of %zu bytes left): connection aborted",
        out.left(), size);
    c.abort(make_error_code(ProtocolError::internal));
    return fail(platform_errc::closed);
  }
  if (!out.flush()) {
    c.abort(make_error_code(platform_errc::queue_full));  // the peer's queue is full
    return fail(platform_errc::closed);
  }
  return {};
}

Result<void> ServerWorker::finish(CallSlot& s, std::uint16_t code, std::string_view detail,
                                  std::size_t size, WriteFn fn, const void* ctx,
                                  Conn* known) noexcept {
  IdempotencyTable* idem = s.idem ? idempotency() : nullptr;
  Result<void> r;
  bool captured = false;
  if (s.wire_open && s.conn != nullptr) {
    ServerConn& sc = *s.conn;
    Conn* c = known != nullptr ? known : loop_.find(s.conn_id);
    if (c == nullptr) {
      r = fail(msg_errc::call_gone);
    } else if (code == 0 && kHeaderSize + size > sc.peer_max_frame()) {
      // Too large for the client: it gets ERROR too_large instead.
      code = static_cast<std::uint16_t>(ProtocolError::too_large);
      sc.send_control(*c, make_error(s.id, ProtocolError::too_large,
                                     bytes_of("response larger than the client's max_frame")));
      counters_.errors_sent.add();
      r = fail(msg_errc::too_large);
    } else if (code == 0) {
      r = write_response(*c, s.id, size, fn, ctx,
                         idem != nullptr && size <= opt_.idempotency_max_response);
      if (r) {
        counters_.responses.add();
        captured = true;
      } else if (r.error() == make_error_code(platform_errc::no_buffers)) {
        // No room for the answer: tell the client to retry rather than leave it hanging.
        sc.send_control(*c, make_error(s.id, ProtocolError::overloaded,
                                       bytes_of("no buffer for the response")));
        counters_.errors_sent.add();
        counters_.overloaded.add();  // the table still records the real answer below
      }
    } else {
      sc.send_control(*c, make_error(s.id, static_cast<ProtocolError>(code), bytes_of(detail)));
      counters_.errors_sent.add();
    }
    if (c != nullptr) {
      sc.call_ended(*c, s);
    }
  } else {
    counters_.late_answers.add();
    r = fail(msg_errc::call_gone);
  }
  if (idem != nullptr) {
    record(s, code, captured, size, fn, ctx);
  }
  free_call(s);
  return r;
}

void ServerWorker::record(const CallSlot& s, std::uint16_t code, bool captured, std::size_t size,
                          WriteFn fn, const void* ctx) noexcept {
  IdempotencyTable& idem = idem_;
  const std::uint64_t now = loop_.now_ms();
  if (code != 0) {
    idem.complete(0, s.idem_key, code, {}, now);
    return;
  }
  if (size > opt_.idempotency_max_response) {
    // Too large to keep: a retry gets ERROR too_large, never a second run (protocol.md 6.7).
    idem.complete(0, s.idem_key, static_cast<std::uint16_t>(ProtocolError::too_large), {}, now);
    return;
  }
  if (!captured) {
    // The wire no longer wanted it (deadline, cancel, closed): write it for the table only.
    class Sink final : public PayloadWriter {
     public:
      explicit Sink(ServerWorker& w) noexcept : w_(w) {}
      std::span<std::byte> next() noexcept override {
        return {w_.scratch_.get() + w_.captured_, w_.opt_.idempotency_max_response - w_.captured_};
      }
      void wrote(std::size_t n) noexcept override { w_.captured_ += n; }

     private:
      ServerWorker& w_;
    } sink(*this);
    captured_ = 0;
    if (!fn(ctx, sink) || captured_ != size) {
      idem.complete(0, s.idem_key, static_cast<std::uint16_t>(ProtocolError::internal), {}, now);
      return;
    }
  }
  idem.complete(0, s.idem_key, IdempotencyTable::kResponse, this->captured(), now);
}

void ServerWorker::finish_shared(CallSlot& s, platform::SharedRef ref, std::size_t payload_off,
                                 std::uint16_t code) noexcept {
  const std::span<const std::byte> frame = ref.bytes();
  const std::span<const std::byte> payload = frame.subspan(payload_off);
  bool sent = false;
  if (s.wire_open && s.conn != nullptr) {
    if (Conn* c = loop_.find(s.conn_id)) {
      if (code == 0 && kHeaderSize + payload.size() > s.conn->peer_max_frame()) {
        code = static_cast<std::uint16_t>(ProtocolError::too_large);
        s.conn->send_control(*c,
                             make_error(s.id, ProtocolError::too_large,
                                        bytes_of("response larger than the client's max_frame")));
        counters_.errors_sent.add();
      } else if (c->send_shared(ref, frame)) {
        (code == 0 ? counters_.responses : counters_.errors_sent).add();
        sent = true;
      } else {
        c->abort(make_error_code(platform_errc::queue_full));
      }
      s.conn->call_ended(*c, s);
    }
  }
  if (!sent) {
    counters_.late_answers.add();
  }
  if (s.idem && idempotency() != nullptr) {
    const std::span<const std::byte> src = payload;
    record(s, code, false, payload.size(), &copy_payload, &src);
  }
  free_call(s);
}

void ServerWorker::on_deadline(platform::TimerNode* node) noexcept {
  auto& s = *static_cast<CallSlot*>(node->ctx);
  ServerWorker& w = *s.worker;
  if (!s.live || !s.wire_open || s.conn == nullptr) {
    return;
  }
  w.counters_.deadline_exceeded.add();
  w.counters_.errors_sent.add();
  if (Conn* c = w.loop_.find(s.conn_id)) {
    s.conn->send_control(*c, make_error(s.id, ProtocolError::deadline_exceeded));
    s.conn->call_ended(*c, s);  // the slot lives on until the handler answers
  }
}

// ---- Call ------------------------------------------------------------------------------

Result<void> Call::reply(std::span<const std::byte> payload) noexcept {
  return reply_with(payload.size(), &copy_payload, &payload);
}

Result<void> Call::reply_with(std::size_t size, WriteFn fn, const void* ctx) noexcept {
  if (answered_ || deferred_) {
    return weft::fail(msg_errc::already_answered);
  }
  answered_ = true;
  if (one_way()) {
    return weft::fail(msg_errc::call_gone);  // a MESSAGE has no answer
  }
  CallSlot* s = owner_->find_call(slot_, gen_);
  if (s == nullptr) {
    return weft::fail(msg_errc::call_gone);
  }
  return owner_->finish(*s, 0, {}, size, fn, ctx, s->wire_open ? conn_ : nullptr);
}

Result<void> Call::fail(ProtocolError code, std::string_view detail) noexcept {
  if (answered_ || deferred_) {
    return weft::fail(msg_errc::already_answered);
  }
  answered_ = true;
  if (one_way()) {
    return weft::fail(msg_errc::call_gone);
  }
  CallSlot* s = owner_->find_call(slot_, gen_);
  if (s == nullptr) {
    return weft::fail(msg_errc::call_gone);
  }
  if (is_connection_fatal(code) || static_cast<std::uint16_t>(code) == 0) {
    code = ProtocolError::internal;  // a handler cannot end the connection this way
  }
  return owner_->finish(*s, static_cast<std::uint16_t>(code), detail, 0, nullptr, nullptr);
}

Deferred Call::defer() noexcept {
  Deferred d;
  if (answered_ || deferred_ || one_way()) {
    return d;  // owner == nullptr: answering it reports call_gone
  }
  deferred_ = true;
  d.conn = conn_->id();
  d.request_id = id_;
  d.call_slot = slot_;
  d.call_gen = gen_;
  d.owner = owner_;
  return d;
}

// ---- answers from anywhere -------------------------------------------------------------

namespace {

// A post carrying an encoded answer to the owning worker: ptr = the ServerWorker, a = the
// shared buffer id (high 32 bits: the payload offset in it, low 32 bits: the id), b = slot |
// gen << 32. The frame's code rides in the buffer: RESPONSE (0) or ERROR's u16.
struct AnswerPost {
  static void run(Loop& target, const platform::Post& p) noexcept {
    auto* w = static_cast<ServerWorker*>(p.ptr);
    const auto id = static_cast<std::uint32_t>(p.a);
    const auto off = static_cast<std::uint32_t>(p.a >> 32);
    platform::SharedBuffers* shared = target.shared();
    // The frame's length prefix says how long it is.
    const std::size_t len = kPrefixSize + get_be32(shared->data(id));
    platform::SharedRef ref = shared->adopt(id, len);
    CallSlot* s =
        w->find_call(static_cast<std::uint32_t>(p.b), static_cast<std::uint32_t>(p.b >> 32));
    if (s == nullptr) {
      w->counters().late_answers.add();
      return;  // ref's destructor gives the buffer back
    }
    std::uint16_t code = 0;
    if (static_cast<FrameType>(ref.bytes()[4]) == FrameType::error) {
      code = static_cast<std::uint16_t>((std::to_integer<unsigned>(ref.bytes()[12]) << 8) |
                                        std::to_integer<unsigned>(ref.bytes()[13]));
    }
    w->finish_shared(*s, std::move(ref), off, code);
  }
};

Result<void> post_answer(Loop& here, const Deferred& d, const Frame& f) noexcept {
  platform::SharedBuffers* shared = here.shared();
  if (shared == nullptr) {
    return fail(platform_errc::no_buffers);
  }
  const std::size_t n = encoded_size(f);
  if (n > shared->buffer_size()) {
    return fail(msg_errc::too_large);
  }
  platform::SharedRef ref = shared->acquire();
  if (!ref.valid()) {
    return fail(platform_errc::no_buffers);
  }
  Result<std::size_t> wrote = encode(f, ref.buffer());
  if (!wrote) {
    return fail(wrote.error());
  }
  ref.set_length(*wrote);
  const std::size_t off = f.type == FrameType::response ? kFrameHead : *wrote;
  platform::Post p;
  p.fn = &AnswerPost::run;
  p.ptr = d.owner;
  p.a = (static_cast<std::uint64_t>(off) << 32) | ref.id();
  p.b = (static_cast<std::uint64_t>(d.call_gen) << 32) | d.call_slot;
  Result<void> r = here.post(d.conn.worker, p);
  if (r) {
    (void)ref.release();  // the post carries the reference now
  }
  return r;
}

}  // namespace

Result<void> answer(Loop& here, const Deferred& d, std::span<const std::byte> payload) noexcept {
  if (d.owner == nullptr) {
    return fail(msg_errc::call_gone);
  }
  if (here.index() != d.conn.worker || &here != &d.owner->loop()) {
    return post_answer(here, d, make_response(d.request_id, payload));
  }
  CallSlot* s = d.owner->find_call(d.call_slot, d.call_gen);
  if (s == nullptr) {
    return fail(msg_errc::call_gone);
  }
  return d.owner->finish(*s, 0, {}, payload.size(), &copy_payload, &payload);
}

Result<void> answer_error(Loop& here, const Deferred& d, ProtocolError code,
                          std::string_view detail) noexcept {
  if (d.owner == nullptr) {
    return fail(msg_errc::call_gone);
  }
  if (is_connection_fatal(code) || static_cast<std::uint16_t>(code) == 0) {
    code = ProtocolError::internal;
  }
  if (here.index() != d.conn.worker || &here != &d.owner->loop()) {
    return post_answer(here, d, make_error(d.request_id, code, bytes_of(detail)));
  }
  CallSlot* s = d.owner->find_call(d.call_slot, d.call_gen);
  if (s == nullptr) {
    return fail(msg_errc::call_gone);
  }
  return d.owner->finish(*s, static_cast<std::uint16_t>(code), detail, 0, nullptr, nullptr);
}

// ---- ServerConn ------------------------------------------------------------------------

void ServerConn::reset(Conn&) noexcept {
  state_ = State::hello;
  draining_ = eof_ = goaway_sent_ = false;
  pfx_n_ = 0;
  last_id_ = wire_open_ = 0;
  peer_max_frame_ = 0;
  calls_ = nullptr;
  asm_.reset();
  asm_need_ = asm_have_ = 0;
  ping_window_ = 0;
  pings_ = 0;
  peer_ = {};
}

void ServerConn::on_open(Conn& c) noexcept {
  // Once per connection (two system calls): the kernel's record of who connected. Conn does
  // not keep it; this handler does, for Call::peer and the access rules.
  peer_ = platform::peer_credentials(c);
  // Until HELLO, the connection is "mid-message" with the hello timeout as read timeout: a
  // client that connects and says nothing is closed (timed_out) after hello_timeout_ms.
  saved_ = c.timeouts();
  platform::Timeouts t = saved_;
  t.read_ms = w_->options().hello_timeout_ms;
  c.set_timeouts(t);
  c.set_mid_message(t.read_ms != 0);
}

bool ServerConn::send_control(Conn& c, const Frame& f) noexcept {
  std::byte buf[kFrameHead + 8 + kMaxDetailSize + kHelloBodySize];
  Result<std::size_t> n = encode(f, buf);
  if (!n) {
    log(LogLevel::error, "msg: control frame not encodable: %s",
        to_string(static_cast<msg_errc>(n.error().value())));
    return false;
  }
  if (!c.send_copy({buf, *n})) {
    // No room for even a small control frame: the peer does not read (or the pool is dry).
    c.abort(make_error_code(platform_errc::no_buffers));
    return false;
  }
  return true;
}

void ServerConn::fatal(Conn& c, ProtocolError code, const char* detail) noexcept {
  w_->counters().protocol_errors.add();
  w_->counters().errors_sent.add();
  send_control(c, make_error(0, code, bytes_of(detail)));
  state_ = State::closed;
  c.close();
}

void ServerConn::on_data(Conn& c, BufView in) noexcept {
  std::span<const std::byte> p = in.bytes;
  const std::uint32_t max_frame = std::min(w_->options().max_frame, c.loop().config().buffer_size);
  while (!p.empty() && state_ != State::closed && c.open()) {
    if (asm_.valid()) {  // continuing a frame split across receives
      const std::size_t k = std::min<std::size_t>(asm_need_ - asm_have_, p.size());
      std::memcpy(asm_.data() + asm_have_, p.data(), k);
      asm_have_ += static_cast<std::uint32_t>(k);
      p = p.subspan(k);
      if (asm_have_ == asm_need_) {
        platform::BufRef whole = std::move(asm_);  // released after the frame is handled
        if (!frame(c, {whole.data(), asm_need_})) {
          return;
        }
      }
      continue;
    }
    std::uint32_t len = 0;
    if (pfx_n_ != 0 || p.size() < kPrefixSize) {  // a prefix split across receives
      const std::size_t k = std::min<std::size_t>(kPrefixSize - pfx_n_, p.size());
      std::memcpy(pfx_ + pfx_n_, p.data(), k);
      pfx_n_ = static_cast<std::uint8_t>(pfx_n_ + k);
      p = p.subspan(k);
      if (pfx_n_ < kPrefixSize) {
        break;
      }
      pfx_n_ = 0;
      len = get_be32(pfx_);
    } else {
      len = get_be32(p.data());
      p = p.subspan(kPrefixSize);
    }
    if (len < kHeaderSize) {
      fatal(c, ProtocolError::bad_frame, "frame length below 8");
      return;
    }
    if (len > max_frame) {
      fatal(c, ProtocolError::bad_frame, "frame larger than max_frame");
      return;
    }
    if (p.size() >= len) {  // the whole frame is here: parse it in place
      const std::span<const std::byte> f = p.first(len);
      p = p.subspan(len);
      if (!frame(c, f)) {
        return;
      }
      continue;
    }
    if (!start_assembly(c, len, p)) {
      return;
    }
    p = {};
  }
  c.set_mid_message(state_ == State::hello ? w_->options().hello_timeout_ms != 0 : mid_frame());
  maybe_close(c);
}

bool ServerConn::start_assembly(Conn& c, std::uint32_t len,
                                std::span<const std::byte> have) noexcept {
  platform::BufferPool& pool = c.loop().pool();
  const platform::BufId id = pool.acquire();
  if (id == platform::kNoBuf) {
    // No buffer to hold a split frame: closed with a clear reason rather than stalled.
    c.abort(make_error_code(platform_errc::no_buffers));
    return false;
  }
  asm_ = platform::BufRef(&pool, id);
  asm_need_ = len;
  asm_have_ = static_cast<std::uint32_t>(have.size());
  std::memcpy(asm_.data(), have.data(), have.size());
  return true;
}

bool ServerConn::frame(Conn& c, std::span<const std::byte> bytes) noexcept {
  Result<Frame> parsed = parse(bytes);
  if (!parsed) {
    fatal(c, ProtocolError::bad_frame, to_string(static_cast<msg_errc>(parsed.error().value())));
    return false;
  }
  const Frame& f = *parsed;
  if (state_ == State::hello) {
    if (f.type != FrameType::hello) {
      fatal(c, ProtocolError::bad_frame, "the first frame must be HELLO");
      return false;
    }
    return on_hello(c, f);
  }
  switch (f.type) {
    case FrameType::request:
      on_request(c, f);
      break;
    case FrameType::message:
      on_message(c, f);
      break;
    case FrameType::cancel:
      on_cancel(c, f);
      break;
    case FrameType::ping:
      return on_ping(c, f);
    case FrameType::pong:
    case FrameType::response:  // the server sends no REQUESTs: nothing outstanding (§6.2)
    case FrameType::error:
      break;
    case FrameType::subscribe:
    case FrameType::unsubscribe:
    case FrameType::publish:
      on_topic(c, f);
      break;
    case FrameType::goaway:
      // The client sends nothing new; what is in flight is still answered, then it closes.
      draining_ = true;
      break;
    case FrameType::hello:
    case FrameType::hello_ack:
    case FrameType::event:
      fatal(c, ProtocolError::bad_frame, "frame out of place");
      return false;
  }
  return c.open() && state_ != State::closed;
}

bool ServerConn::on_hello(Conn& c, const Frame& f) noexcept {
  const Options& o = w_->options();
  const std::uint16_t version = std::min(f.hello.version, kProtocolVersion);
  if (version == 0) {
    fatal(c, ProtocolError::unsupported_version, "this server speaks version 1");
    return false;
  }
  // A max_frame below the smallest useful frame is read as "no more than that": answers that
  // do not fit get ERROR too_large (which itself always fits 12 + 4 + detail bytes).
  peer_max_frame_ = std::max<std::uint32_t>(f.hello.max_frame, kHeaderSize + 4);
  Hello ack;
  ack.version = version;
  ack.max_frame = std::min(o.max_frame, c.loop().config().buffer_size);
  ack.max_inflight = o.max_inflight;
  if (!send_control(c, make_hello_ack(ack))) {
    return false;
  }
  state_ = State::open;
  c.set_timeouts(saved_);
  return true;
}

void ServerConn::on_request(Conn& c, const Frame& f) noexcept {
  ServerCounters& k = w_->counters();
  auto refuse = [&](ProtocolError code, const char* detail) {
    k.errors_sent.add();
    send_control(c, make_error(f.id, code, bytes_of(detail)));
  };
  if (goaway_sent_ && f.id > last_id_) {
    refuse(ProtocolError::shutting_down, "server draining (GOAWAY sent)");
    return;
  }
  last_id_ = std::max(last_id_, f.id);
  // Before the registry and the idempotency table: a refused caller learns neither whether
  // the method exists nor another caller's stored answer.
  if (!w_->allowed(f.method, peer_)) {
    k.denied.add();
    refuse(ProtocolError::permission_denied, "access rule refuses this caller");
    return;
  }
  if (wire_open_ >= w_->options().max_inflight) {
    k.overloaded.add();
    refuse(ProtocolError::overloaded, "max_inflight reached");
    return;
  }
  const Method* m = w_->registry().find(f.method);
  if (m == nullptr) {
    refuse(ProtocolError::unknown_method, "method not served");
    return;
  }
  IdempotencyTable* idem = (f.flags & kFlagIdempotent) != 0 ? w_->idempotency() : nullptr;
  if (idem != nullptr) {
    const IdemBegin b = idem->begin(0, f.idempotency_key, c.loop().now_ms());
    switch (b.state) {
      case IdemState::fresh:
        break;
      case IdemState::done:
        k.idempotent_replays.add();
        if (b.code == IdempotencyTable::kResponse) {
          // The stored answer again, with this retry's id. Sent by copy: the table's bytes
          // are valid only until its next call.
          std::byte head[kFrameHead];
          response_head(head, f.id, b.response.size());
          if (!c.send_copy(head, b.response)) {
            c.abort(make_error_code(platform_errc::no_buffers));
            return;
          }
          k.responses.add();
        } else {
          refuse(static_cast<ProtocolError>(b.code), "answer of the first attempt");
        }
        return;
      case IdemState::in_progress:
        refuse(ProtocolError::overloaded, "first attempt still running: retry later");
        return;
      case IdemState::full:
        k.overloaded.add();
        refuse(ProtocolError::overloaded, "idempotency table full");
        return;
    }
  }
  CallSlot* s = w_->alloc_call();
  if (s == nullptr) {
    if (idem != nullptr) {
      idem->abandon(0, f.idempotency_key);
    }
    k.overloaded.add();
    refuse(ProtocolError::overloaded, "call table full");
    return;
  }
  s->conn = this;
  s->conn_id = c.id();
  s->id = f.id;
  s->wire_open = true;
  s->idem = idem != nullptr;
  s->idem_key = f.idempotency_key;
  s->next = calls_;
  if (calls_ != nullptr) {
    calls_->prev = s;
  }
  calls_ = s;
  ++wire_open_;
  Call call;
  call.owner_ = w_;
  call.conn_ = &c;
  call.peer_ = &peer_;
  call.id_ = f.id;
  call.method_ = f.method;
  call.slot_ = w_->index_of(*s);
  call.gen_ = s->gen;
  if (f.deadline_ms != 0) {
    call.deadline_ = c.loop().now_ms() + f.deadline_ms;
    c.loop().timers().schedule(s->timer, call.deadline_);
  }
  k.requests.add();
  m->fn(m->ctx, call, f.payload);
  if (!call.answered_ && !call.deferred_) {
    log(LogLevel::warn, "msg: method %.*s returned without answering: ERROR internal",
        static_cast<int>(m->name.size()), m->name.data());
    (void)call.fail(ProtocolError::internal, "handler returned no answer");
  }
}

void ServerConn::on_message(Conn& c, const Frame& f) noexcept {
  if (!w_->allowed(f.method, peer_)) {
    w_->counters().denied.add();  // one-way: dropped without an answer (protocol.md §6.10)
    return;
  }
  const Method* m = w_->registry().find(f.method);
  if (m == nullptr) {
    w_->counters().errors_sent.add();
    send_control(
        c, make_error(0, ProtocolError::unknown_method, bytes_of("MESSAGE method not served")));
    return;
  }
  Call call;
  call.owner_ = w_;
  call.conn_ = &c;
  call.peer_ = &peer_;
  call.method_ = f.method;
  call.answered_ = true;  // one-way: nothing to answer
  w_->counters().messages.add();
  m->fn(m->ctx, call, f.payload);
}

void ServerConn::on_cancel(Conn& c, const Frame& f) noexcept {
  for (CallSlot* s = calls_; s != nullptr; s = s->next) {
    if (s->id == f.id && s->wire_open) {
      w_->counters().cancelled.add();
      w_->counters().errors_sent.add();
      send_control(c, make_error(f.id, ProtocolError::cancelled));
      call_ended(c, *s);  // the handler's answer, when it comes, only frees the slot
      return;
    }
  }
  // Unknown id: it crossed its answer on the wire (§6.2). Ignored.
}

bool ServerConn::on_ping(Conn& c, const Frame& f) noexcept {
  w_->counters().pings.add();
  const std::uint64_t now = c.loop().now_ms();
  if (now - ping_window_ >= 1000) {
    ping_window_ = now;
    pings_ = 0;
  }
  if (++pings_ > kMaxPingsPerSecond) {
    send_goaway(c, ProtocolError::overloaded, "PING flood");
    state_ = State::closed;
    c.close();
    return false;
  }
  return send_control(c, make_pong(f.id, f.payload));
}

void ServerConn::on_topic(Conn& c, const Frame& f) noexcept {
  Topics* t = w_->topics();
  Result<void> r = fail(platform_errc::invalid_argument);
  ProtocolError code = ProtocolError::unknown_method;
  if (t != nullptr) {
    switch (f.type) {
      case FrameType::subscribe:
        r = t->subscribe(c, f.topic);
        break;
      case FrameType::unsubscribe:
        r = t->unsubscribe(c, f.topic);
        break;
      default:
        r = t->publish(c, f.topic, f.payload);
        break;
    }
    code = ProtocolError::overloaded;
    if (!r && r.error() == make_error_code(msg_errc::too_large)) {
      code = ProtocolError::too_large;
    }
  }
  if (!r && c.open()) {
    w_->counters().errors_sent.add();
    send_control(c, make_error(0, code, f.topic));  // the detail names the topic (§6.9)
  }
}

void ServerConn::call_ended(Conn& c, CallSlot& s) noexcept {
  // Off the wire: unlinked from this connection (the slot waits for its handler if needed).
  if (s.prev != nullptr) {
    s.prev->next = s.next;
  } else if (calls_ == &s) {
    calls_ = s.next;
  }
  if (s.next != nullptr) {
    s.next->prev = s.prev;
  }
  s.prev = s.next = nullptr;
  s.wire_open = false;
  s.conn = nullptr;
  c.loop().timers().cancel(s.timer);
  --wire_open_;
  maybe_close(c);
}

void ServerConn::send_goaway(Conn& c, ProtocolError code, const char* detail) noexcept {
  if (!goaway_sent_) {
    goaway_sent_ = true;
    send_control(c, make_goaway(last_id_, code, bytes_of(detail)));
  }
}

void ServerConn::maybe_close(Conn& c) noexcept {
  if ((draining_ || eof_) && wire_open_ == 0 && !mid_frame() && c.open()) {
    state_ = State::closed;
    c.close();
  }
}

void ServerConn::on_eof(Conn& c) noexcept {
  eof_ = true;
  if (mid_frame() || state_ == State::hello) {
    state_ = State::closed;
    c.close();  // a truncated last frame (or no HELLO): nothing more will come
    return;
  }
  maybe_close(c);
}

bool ServerConn::on_timeout(Conn& c, platform::Timeout t) noexcept {
  if (t == platform::Timeout::idle && wire_open_ != 0) {
    return true;  // calls still running: not idle
  }
  (void)c;
  return false;
}

void ServerConn::on_drain(Conn& c) noexcept {
  draining_ = true;
  if (state_ == State::open) {
    send_goaway(c, ProtocolError::shutting_down, "server shutting down");
  }
  maybe_close(c);
}

void ServerConn::on_close(Conn& c, std::error_code) noexcept {
  // Calls still owed an answer are detached: their handlers' answers will only free the
  // slots (and record idempotent answers, so a retry elsewhere in time finds them).
  while (calls_ != nullptr) {
    CallSlot* s = calls_;
    calls_ = s->next;
    s->prev = s->next = nullptr;
    s->wire_open = false;
    s->conn = nullptr;
    c.loop().timers().cancel(s->timer);
  }
  wire_open_ = 0;
  asm_.reset();
  if (Topics* t = w_->topics()) {
    t->closed(c);
  }
  state_ = State::closed;
}

}  // namespace weft::msg
