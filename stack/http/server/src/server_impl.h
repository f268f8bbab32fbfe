// Internals of weft::http::Server: the per-worker state (HttpWorker, the service's
// HandlerFactory) and the connection handler (HttpConn). Private to stack/http/server/src.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <weft/http/server.h>
#include <weft/http/streams.h>
#include <weft/platform/handler_pool.h>
#include <weft/platform/loop.h>
#include <weft/platform/stats.h>

namespace weft::http {

// The worker's counters: one writer (the worker), any reader.
struct HttpCounters {
  using Counter = platform::WorkerStats::Counter;
  Counter connections, requests, responses[6], s400, s404, s408, s413, s431, s503, bytes_in,
      bytes_out, deferred, late, streams_opened, streams_open, open;
  void add_to(ServerStats& s) const noexcept;
  void count_status(std::uint16_t status) noexcept;
};

// What a response head says about the connection.
enum class After : std::uint8_t { keep, close };

// Everything a response head carries.
struct HeadSpec {
  std::uint16_t status = 200;
  std::string_view content_type;
  std::uint64_t length = 0;  // Content-Length (not sent for 1xx, 204, 304, streams)
  After after = After::keep;
  bool http10 = false;
  bool stream = false;     // an event stream: no length, no-cache, ends at close
  bool chunked = false;    // Transfer-Encoding: chunked instead of Content-Length
  bool no_length = false;  // neither: the body ends when the connection closes
  int cors = -1;           // ServerConfig::cors_origins index to allow, or -1
  std::span<const ResponseHeader> extra;
};

// Formats the head into out (any thread: the Date cache is per thread); empty when it does
// not fit.
std::string_view write_head(const ServerConfig& cfg, const HeadSpec& h,
                            std::span<char> out) noexcept;

class HttpConn final : public platform::Handler {
 public:
  explicit HttpConn(HttpWorker* w);
  void reset(platform::Conn& c) noexcept;

  void on_open(platform::Conn& c) noexcept override;
  void on_data(platform::Conn& c, platform::BufView in) noexcept override;
  void on_eof(platform::Conn& c) noexcept override;
  bool on_timeout(platform::Conn& c, platform::Timeout t) noexcept override;
  void on_drain(platform::Conn& c) noexcept override;
  void on_close(platform::Conn& c, std::error_code reason) noexcept override;

  // The deferred response was queued on c (owner worker): carry on with the connection.
  void finish_deferred(platform::Conn& c) noexcept;
  void mark_refused() noexcept { refused_ = true; }
  [[nodiscard]] bool waiting(std::uint32_t seq) const noexcept {
    return state_ == State::deferred && seq == seq_;
  }
  [[nodiscard]] bool streaming() const noexcept { return state_ == State::streaming; }
  [[nodiscard]] sse::Subscriber& subscriber() noexcept { return sub_; }

  // Intrusive list of the worker's event streams (heartbeats).
  HttpConn* stream_prev = nullptr;
  HttpConn* stream_next = nullptr;
  platform::ConnId id;

 private:
  friend class Exchange;
  enum class State : std::uint8_t { reading, deferred, streaming, closing };

  // Parses `in` (bytes of `view`'s buffer) until it needs more, a response is deferred or
  // the connection is done with.
  void process(platform::Conn& c, std::span<const std::byte> in,
               const platform::BufView* view) noexcept;
  // The parser reported `head`: route it, check its body against the route's limit.
  bool on_head(platform::Conn& c) noexcept;
  bool on_body(platform::Conn& c, std::string_view piece) noexcept;
  // The request is complete: run its handler. False when parsing must stop.
  bool dispatch(platform::Conn& c) noexcept;
  // Answers with an error status and closes (no more requests are read).
  void refuse(platform::Conn& c, std::uint16_t status) noexcept;
  void release_request() noexcept;
  bool to_slot() noexcept;
  Result<void> after_response(platform::Conn& c) noexcept;
  bool take_assembly() noexcept;
  void give_back_assembly() noexcept;
  void hold_rest(platform::Conn& c, std::span<const std::byte> rest,
                 const platform::BufView* view) noexcept;
  void end_stream(platform::Conn& c) noexcept;

  HttpWorker* w_;
  RequestParser parser_;
  std::unique_ptr<Header[]> headers_;
  State state_ = State::reading;
  bool refused_ = false;    // an overflow handler: answers 503 and closes
  bool head_done_ = false;  // the current request's head has been parsed
  bool close_after_ = false;
  bool eof_ = false;
  bool draining_ = false;
  std::uint32_t seq_ = 0;       // requests started on this connection
  std::uint32_t served_ = 0;    // requests answered
  std::int32_t asm_slot_ = -1;  // own assembly slot while the head is split
  std::int32_t body_slot_ = -1;
  std::uint64_t body_len_ = 0;
  std::uint64_t body_max_ = 0;
  const char* body_view_ = nullptr;  // zero-copy body: contiguous in the current input
  Router::Match match_;
  platform::BufRef head_buf_;  // the receive buffer the head views, while the body streams
  platform::BufRef rest_buf_;  // unparsed input held while a response is deferred
  std::uint32_t rest_off_ = 0;
  std::uint32_t rest_len_ = 0;
  sse::Subscriber sub_;  // while streaming
};

class HttpWorker final : public platform::HandlerFactory {
 public:
  HttpWorker(Server& server, platform::Loop& loop);
  ~HttpWorker() override;

  platform::Handler* create(platform::Conn& c) noexcept override;
  void destroy(platform::Handler* h) noexcept override;

  [[nodiscard]] const ServerConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] platform::Loop& loop() const noexcept { return loop_; }
  [[nodiscard]] const Router& router() const noexcept { return router_; }
  [[nodiscard]] HttpCounters& counters() noexcept { return counters_; }
  [[nodiscard]] const HttpCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] std::span<char> scratch_assembly() noexcept { return scratch_; }

  // Assembly slots for split heads, body slots for request bodies: -1 when none is free.
  std::int32_t take_assembly() noexcept;
  void give_assembly(std::int32_t i) noexcept;
  [[nodiscard]] std::span<char> assembly(std::int32_t i) noexcept;
  std::int32_t take_body() noexcept;
  void give_body(std::int32_t i) noexcept;
  [[nodiscard]] char* body(std::int32_t i) noexcept;

  // Writes a response head into the worker's head buffer and returns it (empty: too long).
  std::string_view head(const HeadSpec& h) noexcept {
    return write_head(cfg_, h, {head_, sizeof head_});
  }
  // The index in ServerConfig::cors_origins of the entry allowing the request's Origin, or
  // -1 (no Origin, not allowed, or no CORS).
  [[nodiscard]] int cors_index(const Request& r) const noexcept;

  // Event streams of this worker (heartbeats).
  void add_stream(HttpConn& h) noexcept;
  void remove_stream(HttpConn& h) noexcept;
  [[nodiscard]] sse::Streams* streams() const noexcept { return cfg_.streams; }
  // Streams::SubscriberOf for the server's connections.
  static sse::Subscriber* subscriber_of(void* ctx, platform::Conn& c) noexcept;

 private:
  static void on_heartbeat(platform::TimerNode* n) noexcept;

  Server& server_;
  platform::Loop& loop_;
  const ServerConfig& cfg_;
  Router router_;
  HttpCounters counters_;
  std::uint32_t limit_;        // handlers that serve; the reserve above only answers 503
  std::vector<char> scratch_;  // before pool_: the handlers' parsers point into it
  platform::HandlerPool<HttpConn> pool_;
  std::vector<char> assembly_;  // assembly_slots x assembly_size
  std::vector<std::int32_t> assembly_free_;
  std::size_t assembly_size_ = 0;
  std::unique_ptr<char[]> bodies_;
  std::vector<std::int32_t> body_free_;
  char head_[4096];
  HttpConn* streams_head_ = nullptr;
  platform::TimerNode heartbeat_;
};

}  // namespace weft::http
