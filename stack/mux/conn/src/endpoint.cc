#include <weft/mux/endpoint.h>

#include <algorithm>
#include <cstring>

#include <weft/base/log.h>
#include <weft/msg/frame.h>
#include <weft/mux/frame.h>
#include <weft/platform/error.h>

namespace weft::mux {
namespace {

using platform::BufView;
using platform::Conn;

// Feature bit 0 of HELLO / HELLO_ACK: the sender speaks §7 (docs/protocol.md §7.1).
constexpr std::uint64_t kFeatureMux = 1;

std::uint32_t be32(const std::byte* p) noexcept {
  return (std::to_integer<std::uint32_t>(p[0]) << 24) |
         (std::to_integer<std::uint32_t>(p[1]) << 16) |
         (std::to_integer<std::uint32_t>(p[2]) << 8) | std::to_integer<std::uint32_t>(p[3]);
}

std::span<const std::byte> bytes_of(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string_view name_of(std::span<const std::byte> b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace

// Callbacks into the application run inside a Guard: Channel API calls they make only mark
// the Endpoint dirty, and the outermost Guard flushes once at the end.
struct Endpoint::Guard {
  explicit Guard(Endpoint& e) noexcept : ep(e) { ++ep.depth_; }
  ~Guard() {
    if (--ep.depth_ == 0 && ep.dirty_ && ep.conn_ != nullptr) {
      ep.flush(*ep.conn_);
    }
  }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
  Endpoint& ep;
};

Endpoint::Endpoint(Role role, const EndpointOptions& opt)
    : session_(role, opt.limits),
      opt_(opt),
      entries_(std::make_unique<Entry[]>(session_.limits().max_channels)) {}

Endpoint::~Endpoint() = default;

void Endpoint::reset(Conn&) noexcept {
  session_.reset(session_.role());
  std::fill_n(entries_.get(), session_.limits().max_channels, Entry{});
  acceptor_ = nullptr;
  conn_ = nullptr;
  id_ = {};
  state_ = State::hello;
  draining_ = dirty_ = ready_sent_ = false;
  depth_ = 0;
  pfx_n_ = 0;
  asm_.reset();
  asm_need_ = asm_have_ = 0;
  out_.reset();
  out_used_ = 0;
  ping_second_ = 0;
  pings_ = 0;
  stats_ = {};
}

// ---- connection ------------------------------------------------------------------------

void Endpoint::on_open(Conn& c) noexcept {
  conn_ = &c;
  id_ = c.id();
  // Channel windows bound what the peer may send, so reading never needs to stop for our
  // output: WINDOW_UPDATE, PING and RESET must get through while the channels are full.
  c.set_watermark_pause(false);
  max_frame_ = c.loop().config().buffer_size;
  saved_ = c.timeouts();
  if (opt_.hello_timeout_ms != 0) {
    platform::Timeouts t = saved_;
    t.read_ms = opt_.hello_timeout_ms;
    c.set_timeouts(t);
    c.set_mid_message(true);
  }
  if (role() == Role::client) {
    msg::Hello h;
    h.max_frame = max_frame_;
    h.features = kFeatureMux;
    std::byte buf[msg::kPrefixSize + msg::kHeaderSize + msg::kHelloBodySize];
    Result<std::size_t> n = msg::encode(msg::make_hello(h), buf);
    if (n) {
      send_control(c, {buf, *n});
    }
  }
}

bool Endpoint::send_control(Conn& c, std::span<const std::byte> frame) noexcept {
  if (!c.send_copy(frame)) {
    c.abort(make_error_code(platform::platform_errc::no_buffers));
    return false;
  }
  ++stats_.frames_out;
  return true;
}

void Endpoint::fatal(Conn& c, std::error_code e, const char* why) noexcept {
  if (state_ == State::closed) {
    return;
  }
  const std::string_view detail = why != nullptr ? why
                                  : e.category() == mux_category()
                                      ? to_string(static_cast<mux_errc>(e.value()))
                                      : "bad frame";
  log(LogLevel::warn, "mux: closing connection: %.*s", static_cast<int>(detail.size()),
      detail.data());
  std::byte buf[msg::kPrefixSize + msg::kHeaderSize + 2 + 2 + msg::kMaxDetailSize];
  Result<std::size_t> n = msg::encode(
      msg::make_error(0, msg::ProtocolError::bad_frame,
                      bytes_of(detail.substr(0, std::min(detail.size(), msg::kMaxDetailSize)))),
      buf);
  if (n) {
    send_control(c, {buf, *n});
  }
  state_ = State::closed;
  finish_all(ChannelError::internal);
  c.close();
}

void Endpoint::on_data(Conn& c, BufView in) noexcept {
  Guard g(*this);
  session_.set_time(c.loop().now_ms());
  std::span<const std::byte> p = in.bytes;
  while (!p.empty() && state_ != State::closed && c.open()) {
    if (asm_.valid()) {  // continuing a frame split across receives
      const std::size_t k = std::min<std::size_t>(asm_need_ - asm_have_, p.size());
      std::memcpy(asm_.data() + asm_have_, p.data(), k);
      asm_have_ += static_cast<std::uint32_t>(k);
      p = p.subspan(k);
      if (asm_have_ == asm_need_) {
        platform::BufRef whole = std::move(asm_);  // released after the frame is handled
        const BufView v{{whole.data(), asm_need_}, whole.id(), &c.loop().pool()};
        if (!frame(c, v.bytes, v)) {
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
      len = be32(pfx_);
    } else {
      len = be32(p.data());
      p = p.subspan(kPrefixSize);
    }
    if (len < kHeaderSize || len > max_frame_) {
      fatal(c,
            make_error_code(len < kHeaderSize ? mux_errc::bad_length : mux_errc::data_too_large));
      return;
    }
    if (p.size() >= len) {  // whole: handled in place, in the receive buffer
      const std::span<const std::byte> f = p.first(len);
      p = p.subspan(len);
      if (!frame(c, f, BufView{f, in.buf, in.pool})) {
        return;
      }
      continue;
    }
    if (!start_assembly(c, len, p)) {
      return;
    }
    p = {};
  }
  if (state_ != State::closed) {
    c.set_mid_message(state_ == State::hello ? opt_.hello_timeout_ms != 0
                                             : (pfx_n_ != 0 || asm_.valid()));
  }
}

bool Endpoint::start_assembly(Conn& c, std::uint32_t len,
                              std::span<const std::byte> have) noexcept {
  platform::BufferPool& pool = c.loop().pool();
  const platform::BufId id = pool.acquire();
  if (id == platform::kNoBuf) {
    c.abort(make_error_code(platform::platform_errc::no_buffers));
    state_ = State::closed;
    return false;
  }
  asm_ = platform::BufRef(&pool, id);
  asm_need_ = len;
  asm_have_ = static_cast<std::uint32_t>(have.size());
  std::memcpy(asm_.data(), have.data(), have.size());
  return true;
}

bool Endpoint::frame(Conn& c, std::span<const std::byte> bytes, BufView buf) noexcept {
  ++stats_.frames_in;
  const auto type = std::to_integer<std::uint8_t>(bytes[0]);
  if (is_mux_type(type)) {
    if (state_ != State::open) {
      fatal(c, make_error_code(mux_errc::bad_state));
      return false;
    }
    return on_mux_frame(c, bytes, buf);
  }
  return on_msg_frame(c, bytes);
}

bool Endpoint::on_msg_frame(Conn& c, std::span<const std::byte> bytes) noexcept {
  Result<msg::Frame> parsed = msg::parse(bytes);
  if (!parsed) {
    fatal(c, parsed.error());
    return false;
  }
  const msg::Frame& f = *parsed;
  if (state_ == State::hello) {
    const msg::FrameType want =
        role() == Role::server ? msg::FrameType::hello : msg::FrameType::hello_ack;
    if (f.type != want) {
      fatal(c, make_error_code(mux_errc::bad_state));
      return false;
    }
    if ((f.hello.features & kFeatureMux) == 0) {
      fatal(c, make_error_code(mux_errc::not_negotiated));
      return false;
    }
    if (role() == Role::server) {
      msg::Hello h;
      h.version = std::min(f.hello.version, msg::kProtocolVersion);
      h.max_frame = max_frame_;
      h.features = kFeatureMux;
      std::byte buf[msg::kPrefixSize + msg::kHeaderSize + msg::kHelloBodySize];
      Result<std::size_t> n = msg::encode(msg::make_hello_ack(h), buf);
      if (!n || !send_control(c, {buf, *n})) {
        return false;
      }
    }
    state_ = State::open;
    c.set_timeouts(saved_);
    c.set_mid_message(false);
    dirty_ = true;  // MUX_SETTINGS goes out with the next flush
    return true;
  }
  switch (f.type) {
    case msg::FrameType::ping: {
      const std::uint64_t second = c.loop().now_ms() / 1000;
      if (second != ping_second_) {
        ping_second_ = second;
        pings_ = 0;
      }
      if (++pings_ > opt_.max_pings_per_sec) {
        fatal(c, make_error_code(mux_errc::open_flood), "too many PINGs per second");
        return false;
      }
      std::byte buf[msg::kPrefixSize + msg::kHeaderSize + msg::kPingBodySize];
      Result<std::size_t> n = msg::encode(msg::make_pong(f.id, f.payload), buf);
      return n && send_control(c, {buf, *n});
    }
    case msg::FrameType::pong:
      return true;
    case msg::FrameType::goaway:
      // The peer is draining: no new channels either way; the live ones finish.
      draining_ = true;
      maybe_close(c);
      return true;
    case msg::FrameType::error:
      log(LogLevel::warn, "mux: peer closed the connection: ERROR %u %.*s", f.code,
          static_cast<int>(f.detail.size()), reinterpret_cast<const char*>(f.detail.data()));
      state_ = State::closed;
      finish_all(ChannelError::internal);
      c.close();
      return false;
    case msg::FrameType::request: {
      // Calls are carried on channels here (docs/protocol.md §7.11): refuse, keep serving.
      std::byte buf[msg::kPrefixSize + msg::kHeaderSize + 4 + msg::kMaxDetailSize];
      Result<std::size_t> n =
          msg::encode(msg::make_error(f.id, msg::ProtocolError::unknown_method,
                                      bytes_of("REQUEST is not served on a channel connection")),
                      buf);
      return n && send_control(c, {buf, *n});
    }
    default:
      fatal(c, make_error_code(mux_errc::bad_state));
      return false;
  }
}

bool Endpoint::on_mux_frame(Conn& c, std::span<const std::byte> bytes, BufView buf) noexcept {
  Result<Frame> parsed = parse(bytes);
  if (!parsed) {
    fatal(c, parsed.error());
    return false;
  }
  const Frame& f = *parsed;
  // The channel's slot before the frame is applied: a frame that ends the channel frees it.
  const std::uint16_t before = f.channel != 0 ? session_.slot_of(f.channel) : 0xffff;
  Result<Event> fed = session_.feed(f);
  if (!fed) {
    fatal(c, fed.error());
    return false;
  }
  dirty_ = true;  // credit, acks and refusals to send
  const Event& ev = *fed;
  switch (ev.kind) {
    case EventKind::none:
    case EventKind::window:
      break;
    case EventKind::opened: {
      ChannelHandler* h = nullptr;
      if (!draining_ && acceptor_ != nullptr) {
        h = acceptor_->on_open(*this, ev.channel, name_of(ev.name));
      }
      if (h == nullptr || state_ != State::open) {
        ++stats_.channels_refused;
        (void)session_.refuse(ev.channel,
                              draining_ ? ChannelError::shutting_down : ChannelError::refused);
        break;
      }
      if (!session_.accept(ev.channel, h->receive_window())) {
        h->on_closed(*this, ev.channel, ChannelError::internal);
        break;
      }
      ++stats_.channels_opened;
      entries_[session_.slot_of(ev.channel)] = Entry{h, ev.channel, false, false};
      break;
    }
    case EventKind::accepted:
      if (Entry* e = entry(ev.channel)) {
        e->handler->on_accepted(*this, ev.channel);
      }
      break;
    case EventKind::refused:
    case EventKind::reset:
      if (before != 0xffff && entries_[before].id == ev.channel) {
        Entry e = entries_[before];
        entries_[before] = Entry{};
        if (e.handler != nullptr) {
          e.handler->on_closed(*this, ev.channel, static_cast<ChannelError>(ev.code));
        }
      }
      break;
    case EventKind::data: {
      stats_.bytes_in += ev.data.size();
      if (before == 0xffff || entries_[before].id != ev.channel ||
          entries_[before].handler == nullptr) {
        // No handler (it was finished): the bytes go back as credit at once.
        if (!ev.data.empty()) {
          (void)session_.consume(ev.channel, ev.data.size());
        }
        break;
      }
      ChannelHandler* h = entries_[before].handler;
      const std::size_t used =
          h->on_data(*this, ev.channel, BufView{ev.data, buf.buf, buf.pool}, ev.fin);
      if (used != 0) {
        (void)session_.consume(ev.channel, std::min(used, ev.data.size()));
      }
      if (ev.fin && entries_[before].id == ev.channel && entries_[before].handler == h) {
        entries_[before].remote_fin = true;
        if (entries_[before].local_fin) {
          entries_[before] = Entry{};
          h->on_closed(*this, ev.channel, ChannelError{});
        }
      }
      break;
    }
  }
  if (session_.peer_ready() && !ready_sent_ && state_ == State::open) {
    ready_sent_ = true;
    if (acceptor_ != nullptr) {
      acceptor_->on_ready(*this);
    }
  }
  return state_ != State::closed && c.open();
}

void Endpoint::on_eof(Conn& c) noexcept {
  Guard g(*this);
  // The peer sends nothing more: channels it had not finished never will be.
  state_ = State::closed;
  finish_all(ChannelError::internal);
  c.close();
}

void Endpoint::on_writable(Conn& c) noexcept {
  Guard g(*this);
  dirty_ = true;
  (void)c;
}

bool Endpoint::on_timeout(Conn&, platform::Timeout t) noexcept {
  // A connection whose channels are quiet is not idle to its application.
  return t == platform::Timeout::idle && session_.live_channels() != 0;
}

void Endpoint::on_drain(Conn& c) noexcept {
  Guard g(*this);
  if (!draining_ && state_ == State::open) {
    std::byte buf[msg::kPrefixSize + msg::kHeaderSize + 4 + 2 + 2];
    Result<std::size_t> n =
        msg::encode(msg::make_goaway(0, msg::ProtocolError::shutting_down, {}), buf);
    if (n) {
      send_control(c, {buf, *n});
    }
  }
  draining_ = true;
  if (state_ != State::open) {
    c.close();
    return;
  }
  maybe_close(c);
}

void Endpoint::shutdown() noexcept {
  if (conn_ != nullptr) {
    on_drain(*conn_);
  }
}

void Endpoint::on_close(Conn&, std::error_code reason) noexcept {
  ++depth_;  // nothing flushes any more
  state_ = State::closed;
  finish_all(ChannelError::internal);
  conn_ = nullptr;
  asm_.reset();
  out_.reset();
  if (acceptor_ != nullptr) {
    acceptor_->on_disconnect(*this, reason);
  }
  --depth_;
}

void Endpoint::maybe_close(Conn& c) noexcept {
  if (draining_ && state_ == State::open && session_.live_channels() == 0 &&
      session_.queued_total() == 0) {
    state_ = State::closed;
    c.close();
  }
}

// ---- channels --------------------------------------------------------------------------

Endpoint::Entry* Endpoint::entry(std::uint16_t ch) noexcept {
  const std::uint16_t idx = session_.slot_of(ch);
  if (idx == 0xffff) {
    return nullptr;
  }
  Entry& e = entries_[idx];
  return e.id == ch && e.handler != nullptr ? &e : nullptr;
}

void Endpoint::finish_all(ChannelError code) noexcept {
  for (std::uint16_t i = 0; i < session_.limits().max_channels; ++i) {
    Entry e = entries_[i];
    if (e.handler != nullptr) {
      entries_[i] = Entry{};
      e.handler->on_closed(*this, e.id, code);
    }
  }
}

Result<std::uint16_t> Endpoint::open(std::string_view name, ChannelHandler* h,
                                     std::uint32_t window) noexcept {
  if (h == nullptr) {
    return fail(mux_errc::bad_argument);
  }
  if (state_ != State::open || conn_ == nullptr || draining_) {
    return fail(state_ == State::hello ? mux_errc::not_ready : mux_errc::closed);
  }
  Result<std::uint16_t> ch =
      session_.open(bytes_of(name), window != 0 ? window : h->receive_window());
  if (!ch) {
    return ch;
  }
  entries_[session_.slot_of(*ch)] = Entry{h, *ch, false, false};
  kick();
  return ch;
}

Result<std::size_t> Endpoint::write(std::uint16_t ch, std::span<const std::byte> bytes) noexcept {
  if (conn_ == nullptr || state_ != State::open) {
    return fail(mux_errc::closed);
  }
  Result<std::size_t> n = session_.write(ch, bytes);
  if (n) {
    kick();
  }
  return n;
}

Result<void> Endpoint::write_all(std::uint16_t ch, std::span<const std::byte> head,
                                 std::span<const std::byte> body) noexcept {
  if (conn_ == nullptr || state_ != State::open) {
    return fail(mux_errc::closed);
  }
  Result<void> r = session_.write_all(ch, head, body);
  if (r) {
    kick();
  }
  return r;
}

Result<void> Endpoint::consume(std::uint16_t ch, std::size_t n) noexcept {
  Result<void> r = session_.consume(ch, n);
  if (r && conn_ != nullptr) {
    kick();
  }
  return r;
}

Result<void> Endpoint::close(std::uint16_t ch) noexcept {
  Entry* e = entry(ch);
  Result<void> r = session_.close(ch);
  if (!r) {
    return r;
  }
  if (e != nullptr) {
    e->local_fin = true;
    if (e->remote_fin) {
      ChannelHandler* h = e->handler;
      *e = Entry{};
      h->on_closed(*this, ch, ChannelError{});
    }
  }
  kick();
  return r;
}

Result<void> Endpoint::reset(std::uint16_t ch, ChannelError code) noexcept {
  Entry* e = entry(ch);
  Result<void> r = session_.reset(ch, code);
  if (!r) {
    return r;
  }
  if (e != nullptr) {
    ChannelHandler* h = e->handler;
    *e = Entry{};
    h->on_closed(*this, ch, code);
  }
  kick();
  return r;
}

// ---- output ----------------------------------------------------------------------------

void Endpoint::kick() noexcept {
  dirty_ = true;
  if (depth_ == 0 && conn_ != nullptr) {
    flush(*conn_);
  }
}

void Endpoint::flush(Conn& c) noexcept {
  ++depth_;
  platform::BufferPool& pool = c.loop().pool();
  const std::uint32_t size = pool.buffer_size();
  const std::uint32_t high = c.loop().config().high_watermark;
  // Rounds: frames out, then writers woken; their writes set dirty_ again. A round that
  // emits nothing wakes no one (writers wait for room that only emission frees), so this
  // ends; the cap is a guard against an application that writes without end from
  // on_writable (the next input or on_writable continues where it stopped).
  for (int round = 0; round < 1024 && dirty_; ++round) {
    dirty_ = false;
    while (state_ == State::open && c.open() && c.queued_bytes() < high) {
      if (!out_.valid() || size - out_used_ < kMaxControlFrameSize) {
        out_.reset();
        const platform::BufId id = pool.acquire();
        if (id == platform::kNoBuf) {
          dirty_ = true;  // retried at the next input, write or on_writable
          break;
        }
        out_ = platform::BufRef(&pool, id);
        out_used_ = 0;
      }
      const std::span<std::byte> room{out_.data() + out_used_, size - out_used_};
      Result<std::size_t> n = session_.next_frame(room);
      if (!n) {
        fatal(c, n.error());
        break;
      }
      if (*n == 0) {
        break;
      }
      if (std::to_integer<std::uint8_t>(room[kPrefixSize]) ==
          static_cast<std::uint8_t>(FrameType::data)) {
        stats_.bytes_out += *n - kPrefixSize - kHeaderSize;
      }
      if (!c.send_ref(out_, room.first(*n))) {
        // The frame left the Session: it cannot be taken back, so the stream is broken.
        c.abort(make_error_code(platform::platform_errc::queue_full));
        state_ = State::closed;
        break;
      }
      ++stats_.frames_out;
      out_used_ += static_cast<std::uint32_t>(*n);
    }
    // Channels that may write again.
    for (std::uint16_t ch = session_.next_writable(); ch != 0; ch = session_.next_writable()) {
      if (Entry* e = entry(ch)) {
        e->handler->on_writable(*this, ch);
      }
    }
  }
  --depth_;
  if (state_ == State::open) {
    maybe_close(c);
  }
}

// ---- server ----------------------------------------------------------------------------

namespace {

EndpointOptions fit(const EndpointOptions& opt, const platform::Loop& loop) {
  EndpointOptions o = opt;
  const std::uint32_t cap = loop.config().buffer_size - kPrefixSize - kHeaderSize;
  o.limits.max_data = std::min(o.limits.max_data, cap);
  return o;
}

class ServiceFactory final : public platform::HandlerFactory {
 public:
  ServiceFactory(platform::Loop& loop, const EndpointOptions& opt, std::uint32_t n,
                 std::unique_ptr<Acceptor> acceptor)
      : acceptor_(std::move(acceptor)), pool_(n, Role::server, fit(opt, loop)) {}
  platform::Handler* create(Conn& c) noexcept override {
    platform::Handler* h = pool_.create(c);
    if (h != nullptr) {
      static_cast<Endpoint*>(h)->set_acceptor(acceptor_.get());
    }
    return h;
  }
  void destroy(platform::Handler* h) noexcept override { pool_.destroy(h); }

 private:
  std::unique_ptr<Acceptor> acceptor_;
  platform::HandlerPool<Endpoint> pool_;
};

}  // namespace

platform::Service make_service(const platform::Address& addr, const EndpointOptions& opt,
                               AcceptorFactory make_acceptor, std::uint32_t max_connections) {
  platform::Service s;
  s.address = addr;
  s.make_factory = [opt, make_acceptor = std::move(make_acceptor),
                    max_connections](platform::Loop& loop) {
    return std::unique_ptr<platform::HandlerFactory>(
        new ServiceFactory(loop, opt, max_connections, make_acceptor(loop)));
  };
  return s;
}

// ---- client ----------------------------------------------------------------------------

Connector::Connector(platform::Loop& loop, const EndpointOptions& opt, std::uint32_t capacity)
    : loop_(loop), pool_(capacity, Role::client, fit(opt, loop)) {}

Connector::~Connector() = default;

Result<platform::ConnId> Connector::connect(const platform::Address& addr,
                                            Acceptor* acceptor) noexcept {
  pending_ = acceptor;
  Result<platform::ConnId> id = loop_.connect(addr, *this);
  pending_ = nullptr;
  return id;
}

platform::Handler* Connector::create(Conn& c) noexcept {
  platform::Handler* h = pool_.create(c);
  if (h != nullptr) {
    static_cast<Endpoint*>(h)->set_acceptor(pending_);
  }
  return h;
}

void Connector::destroy(platform::Handler* h) noexcept {
  pool_.destroy(h);
}

}  // namespace weft::mux
