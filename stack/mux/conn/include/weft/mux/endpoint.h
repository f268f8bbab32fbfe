// weft::mux::Endpoint — multiplexed channels on a live connection (docs/protocol.md §7):
// a platform::Handler that speaks the §6 handshake (HELLO / HELLO_ACK with feature bit MUX),
// PING / PONG, GOAWAY and ERROR, and carries every other byte as channel frames through a
// weft::mux::Session. Both ends use it: a server through make_service() (one Endpoint per
// accepted connection), a client through connect() (one outbound connection).
//
// The Channel API (all on the connection's worker thread):
//   Endpoint::open(name, handler)  -> channel id; the peer's Acceptor says yes or no
//   Endpoint::write(ch, bytes)     -> bytes taken (copied), or would_block: wait for
//                                     ChannelHandler::on_writable
//   ChannelHandler::on_data        <- received bytes, as a view into a pool buffer (zero copy)
//   Endpoint::consume(ch, n)       -> credit goes back to the peer as the application consumes,
//                                     not as bytes arrive
//   Endpoint::close(ch)            -> half-close (FIN after the queued bytes)
//   Endpoint::reset(ch, code)      -> abort both ways
// A ChannelHandler gets exactly one final call, on_closed(), after which the Endpoint holds no
// pointer to it: when both directions have finished (local close() and the peer's FIN), when
// the channel was refused or reset (either side), or when the connection ended.
//
// Back-pressure: a channel's writes queue in the Session up to Limits::queue_per_channel and
// Limits::queue_per_conn; beyond that write() returns would_block and on_writable() follows
// once there is room. The connection never stops reading because a channel is stalled: a
// peer can only send what the windows allow, so WINDOW_UPDATE, PING and RESET always get
// through (the core's watermark pause is turned off for this connection). Output frames go
// to the socket only while the connection's queue is below Config::high_watermark; the rest
// waits in the channels' rings (fairly scheduled) until the kernel takes more.
//
// Memory: an Endpoint owns one Session (allocated once, when the handler pool is built;
// reused across connections with Session::reset) and a handler table of one pointer per
// channel slot. Received frames are parsed in place; a frame split across receives is
// assembled in one general pool buffer. Outgoing frames are written straight into general
// pool buffers and queued by reference. Steady state allocates nothing.
//
// Errors: a peer that breaks §7 (a window overrun, a bad frame, a flood) gets ERROR
// bad_frame with the error's name and the connection closes; every channel then ends with
// on_closed(). Nothing throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>

#include <weft/base/result.h>
#include <weft/mux/session.h>
#include <weft/platform/address.h>
#include <weft/platform/conn.h>
#include <weft/platform/handler_pool.h>
#include <weft/platform/loop.h>
#include <weft/platform/runtime.h>

namespace weft::mux {

class Endpoint;

// One channel's application. The Endpoint never owns it: it is the application's (or a
// pool's) and is released by on_closed().
class ChannelHandler {
 public:
  virtual ~ChannelHandler() = default;
  // Our open() was accepted: writes flow now.
  virtual void on_accepted(Endpoint&, std::uint16_t /*ch*/) noexcept {}
  // Bytes of the channel, as a view into a pool buffer valid until this returns (data.ref()
  // keeps them longer). `fin`: the peer has finished its direction (data may then be
  // empty). Return how many bytes are consumed now; the rest are owed: call
  // Endpoint::consume() when done with them (their credit is held back until then).
  virtual std::size_t on_data(Endpoint&, std::uint16_t ch, platform::BufView data,
                              bool fin) noexcept = 0;
  // A write() that returned would_block may now succeed.
  virtual void on_writable(Endpoint&, std::uint16_t /*ch*/) noexcept {}
  // The receive window to grant this channel when it is accepted (0: Limits::channel_window).
  // A bulk sink may ask for more than the default to keep a fast link busy; every byte of it
  // may sit unconsumed, so keep the sum of the windows of channels that may stall below the
  // connection window (docs/protocol.md §7.6).
  [[nodiscard]] virtual std::uint32_t receive_window() const noexcept { return 0; }
  // The last call: the channel has ended. `code` is 0 when both directions finished
  // cleanly, else why (the ChannelError of a REFUSE or RESET from either side, or
  // ChannelError::internal when the connection ended).
  virtual void on_closed(Endpoint&, std::uint16_t ch, ChannelError code) noexcept = 0;
};

// The connection-level side of the application: accepts the peer's channels.
class Acceptor {
 public:
  virtual ~Acceptor() = default;
  // The handshake is done and the peer's MUX_SETTINGS arrived: open() may be called.
  virtual void on_ready(Endpoint&) noexcept {}
  // The peer opened `ch` named `name`: return its handler (accepted), or nullptr to refuse
  // it (ChannelError::refused).
  virtual ChannelHandler* on_open(Endpoint&, std::uint16_t ch, std::string_view name) noexcept = 0;
  // The connection ended (every channel got on_closed() first). `reason` empty: clean.
  virtual void on_disconnect(Endpoint&, std::error_code /*reason*/) noexcept {}
};

struct EndpointOptions {
  // The Session's limits. max_data is capped so that a whole DATA frame fits one pool
  // buffer (Config::buffer_size - 12).
  Limits limits;
  // A connection that has not finished HELLO within this is closed (0: never).
  std::uint32_t hello_timeout_ms = 5000;
  // PINGs answered per second before the connection is closed as a flood.
  std::uint32_t max_pings_per_sec = 100;
};

// Connection-level counters of one Endpoint (any reader on the worker thread).
struct EndpointStats {
  std::uint64_t frames_in = 0;
  std::uint64_t frames_out = 0;
  std::uint64_t bytes_in = 0;   // DATA payload bytes received
  std::uint64_t bytes_out = 0;  // DATA payload bytes sent
  std::uint64_t channels_opened = 0;
  std::uint64_t channels_refused = 0;
};

class Endpoint final : public platform::Handler {
 public:
  // Allocates the Session and the handler table (everything the connection will need).
  Endpoint(Role role, const EndpointOptions& opt);
  ~Endpoint() override;
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // Makes the Endpoint ready for a new connection (HandlerPool calls it) with `acceptor`
  // for the peer's channels. Nothing is allocated.
  void reset(platform::Conn& c) noexcept;
  void set_acceptor(Acceptor* a) noexcept { acceptor_ = a; }

  // ---- the Channel API. Errors (weft::mux_errc): not_ready (handshake not finished),
  // closed (the connection is closing), and the Session's (session.h).
  [[nodiscard]] Result<std::uint16_t> open(std::string_view name, ChannelHandler* h,
                                           std::uint32_t window = 0) noexcept;
  [[nodiscard]] Result<std::size_t> write(std::uint16_t ch,
                                          std::span<const std::byte> bytes) noexcept;
  // All or nothing (Session::write_all): head then body, or would_block with on_writable()
  // to follow. For messages that must not be split by back-pressure (weft/mux/stream.h).
  [[nodiscard]] Result<void> write_all(std::uint16_t ch, std::span<const std::byte> head,
                                       std::span<const std::byte> body = {}) noexcept;
  [[nodiscard]] Result<void> consume(std::uint16_t ch, std::size_t n) noexcept;
  [[nodiscard]] Result<void> close(std::uint16_t ch) noexcept;
  [[nodiscard]] Result<void> reset(std::uint16_t ch, ChannelError code) noexcept;
  // Ends the connection: GOAWAY, then close once every channel has ended.
  void shutdown() noexcept;

  [[nodiscard]] bool ready() const noexcept {
    return state_ == State::open && session_.peer_ready();
  }
  [[nodiscard]] bool connected() const noexcept { return conn_ != nullptr; }
  [[nodiscard]] const Session& session() const noexcept { return session_; }
  [[nodiscard]] const EndpointStats& stats() const noexcept { return stats_; }
  [[nodiscard]] platform::ConnId conn_id() const noexcept { return id_; }
  [[nodiscard]] Role role() const noexcept { return session_.role(); }

  // ---- platform::Handler
  void on_open(platform::Conn& c) noexcept override;
  void on_data(platform::Conn& c, platform::BufView in) noexcept override;
  void on_eof(platform::Conn& c) noexcept override;
  void on_writable(platform::Conn& c) noexcept override;
  bool on_timeout(platform::Conn& c, platform::Timeout t) noexcept override;
  void on_drain(platform::Conn& c) noexcept override;
  void on_close(platform::Conn& c, std::error_code reason) noexcept override;

 private:
  enum class State : std::uint8_t { hello, open, closed };
  struct Entry {
    ChannelHandler* handler = nullptr;
    std::uint16_t id = 0;
    bool local_fin = false;
    bool remote_fin = false;
  };
  struct Guard;  // defers flushing while callbacks run

  bool frame(platform::Conn& c, std::span<const std::byte> bytes, platform::BufView buf) noexcept;
  bool on_msg_frame(platform::Conn& c, std::span<const std::byte> bytes) noexcept;
  bool on_mux_frame(platform::Conn& c, std::span<const std::byte> bytes,
                    platform::BufView buf) noexcept;
  // ERROR bad_frame (detail: `why`, else the error's name), every channel ends, close.
  void fatal(platform::Conn& c, std::error_code e, const char* why = nullptr) noexcept;
  bool send_control(platform::Conn& c, std::span<const std::byte> frame) noexcept;
  bool start_assembly(platform::Conn& c, std::uint32_t len,
                      std::span<const std::byte> have) noexcept;
  Entry* entry(std::uint16_t ch) noexcept;
  void finish(std::uint16_t ch, ChannelError code) noexcept;  // on_closed + release
  void finish_all(ChannelError code) noexcept;
  void maybe_finish(std::uint16_t ch) noexcept;
  void kick() noexcept;  // flush now, or at the end of the running callback
  void flush(platform::Conn& c) noexcept;
  void maybe_close(platform::Conn& c) noexcept;

  Session session_;
  EndpointOptions opt_;
  std::unique_ptr<Entry[]> entries_;  // indexed by the Session's slot
  Acceptor* acceptor_ = nullptr;
  platform::Conn* conn_ = nullptr;
  platform::ConnId id_;
  State state_ = State::hello;
  bool draining_ = false;
  bool dirty_ = false;
  bool ready_sent_ = false;  // Acceptor::on_ready called
  std::uint32_t depth_ = 0;  // callbacks running (Guard)
  std::uint32_t max_frame_ = 0;
  // Split frames.
  std::uint8_t pfx_n_ = 0;
  std::byte pfx_[4] = {};
  platform::BufRef asm_;
  std::uint32_t asm_need_ = 0;
  std::uint32_t asm_have_ = 0;
  // Output: the general pool buffer frames are being written into.
  platform::BufRef out_;
  std::uint32_t out_used_ = 0;
  std::uint64_t ping_second_ = 0;
  std::uint32_t pings_ = 0;
  platform::Timeouts saved_;
  EndpointStats stats_;
};

// ---- server side -----------------------------------------------------------------------

// Makes one worker's Acceptor for its connections (called on that worker's thread). The
// Acceptor is shared by every connection of the worker; it tells them apart by Endpoint&.
using AcceptorFactory = std::function<std::unique_ptr<Acceptor>(platform::Loop&)>;

// A platform::Service whose connections are Endpoints (Role::server): `max_connections`
// Endpoints are built per worker when it starts, each with its Session preallocated.
[[nodiscard]] platform::Service make_service(const platform::Address& addr,
                                             const EndpointOptions& opt,
                                             AcceptorFactory make_acceptor,
                                             std::uint32_t max_connections = 64);

// ---- client side -----------------------------------------------------------------------

// A preallocated set of client Endpoints for outbound connections of one worker.
class Connector final : public platform::HandlerFactory {
 public:
  Connector(platform::Loop& loop, const EndpointOptions& opt, std::uint32_t capacity = 4);
  ~Connector() override;
  // Connects to addr; `acceptor` gets on_ready (open channels there) and the server's
  // channels. Returns the connection's id (Loop::find + handler() gives the Endpoint).
  [[nodiscard]] Result<platform::ConnId> connect(const platform::Address& addr,
                                                 Acceptor* acceptor) noexcept;
  platform::Handler* create(platform::Conn& c) noexcept override;
  void destroy(platform::Handler* h) noexcept override;

 private:
  platform::Loop& loop_;
  platform::HandlerPool<Endpoint> pool_;
  Acceptor* pending_ = nullptr;
};

}  // namespace weft::mux
