// weft-load — a closed-loop load generator for the framed echo protocol and for unary calls of
// the binary message protocol, built on weft's own client side (one platform::Loop driven
// with run_once on the calling thread).
//
//   weft-load --port P [--proto echo|msg] [--host 127.0.0.1] [--conns 64] [--inflight 16]
//             [--size 64] [--duration 5] [--warmup 1] [--cpu N] [--backend auto|uring|epoll]
//             [--max-msgs N] [--server-pid PID] [--server-core N] [--json]
//
// --proto echo (default): frames of a 4-byte big-endian length + payload, echoed whole and in
// order; weft::frame writes the length prefix and splits the echoed stream
// (LengthPrefixDecoder). Payload layout (size >= 16): bytes [0,8) the send time
// (CLOCK_MONOTONIC ns, the clock behind std::chrono::steady_clock), [8,16) the connection's
// frame sequence number, then a pattern that depends on the byte's offset and the
// connection. Round-trip time needs no per-message bookkeeping: the echo carries its own send
// time. Every echoed byte is checked (length, sequence, pattern; the timestamp must lie
// between the start of the run and now); one mismatch is a hard error: exit 1.
//
// --proto msg: docs/protocol.md §6 against weft-msg-bench-server (bench/msg_server.cc), whose
// method kUnaryMethod answers every REQUEST with a RESPONSE holding the request's payload.
// Each connection sends HELLO first and waits for HELLO_ACK (the server must accept K
// requests in flight), then REQUESTs with increasing correlation ids (1, 2, ...; no deadline,
// not idempotent) and the payload layout above, with [8,16) holding the request's id.
// weft::msg encodes each connection's request frame once; per request only the id and the
// send time are written into it. Every RESPONSE is checked: its id must be outstanding on
// that connection (a table of 2K slots, id mod 2K), its payload exactly the request's.
// An ERROR frame (any id), GOAWAY, or any other frame type is counted (error_frames) and is an
// error: exit 1. A RESPONSE is one message: msgs/s, RTT and server CPU per message are per call.
//
// Load: N connections, each keeping K frames (requests) in flight. Each answer is followed by
// a new frame at once (closed loop). Answers received during [warmup, warmup + duration) count
// and feed the RTT histogram; then the connections are closed and the program exits. Every
// phase is bounded in time (connect and HELLO 5 s, run warmup + duration, close 1 s, and an
// alarm as a last resort) and, with --max-msgs, in count.
//
// Measurement: msgs/s and MB/s (answer frame bytes, prefix included, 1 MB = 10^6 bytes), RTT
// percentiles from a log-linear histogram (3 significant digits), the load generator's own
// CPU time over the window (getrusage), and with --server-pid the server's utime+stime over
// the same window (/proc/PID/stat, all threads), i.e. server CPU per message; --server-core N
// adds the busy share of core N from /proc/stat (includes softirq time that no process is
// charged for). The histogram, the /proc readers and the report are bench/load_common.h,
// shared with the gRPC client (bench/grpc/grpc_load.cc).
//
// Memory: everything is allocated before the first frame is sent (loop pools, handlers,
// histogram, pattern, request templates, id tables). The steady state allocates nothing:
// operator new is counted and the count over the measured window is reported
// (steady_allocs) and must be zero.
//
// Exit status: 0 ok; 1 an answer differed from what was sent, an ERROR frame came, a
// connection failed or closed early, or nothing came back; 2 bad arguments or start-up
// failure.
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include <weft/base/log.h>
#include <weft/frame/decoder.h>
#include <weft/frame/encode.h>
#include <weft/frame/length_prefix.h>
#include <weft/msg/error.h>
#include <weft/msg/frame.h>
#include <weft/platform/address.h>
#include <weft/platform/config.h>
#include <weft/platform/error.h>
#include <weft/platform/handler_pool.h>
#include <weft/platform/loop.h>

#include "load_common.h"
#include "msg_bench.h"

// ---- allocation counter ----------------------------------------------------------------------
// Replaces the global operator new (plain and nothrow; arrays forward to these) so that the
// steady state can be shown to allocate nothing.
namespace {
std::atomic<std::uint64_t> g_allocs{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) {
    return p;
  }
  std::fputs("weft-load: out of memory\n", stderr);
  std::abort();
}
void* operator new[](std::size_t n) {
  return ::operator new(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
  return ::operator new(n, t);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

namespace {

using weft::bench::Histogram;
using weft::bench::LoadOptions;
using weft::bench::mono_ns;
using weft::platform::BufView;
using weft::platform::Conn;
using weft::platform::Handler;
using weft::platform::HandlerPool;
using weft::platform::Loop;

// ---- options and shared state ------------------------------------------------------------------

enum class Proto { echo, msg };

struct Options : LoadOptions {
  Proto proto = Proto::echo;
  weft::platform::BackendKind backend = weft::platform::BackendKind::automatic;
};

constexpr std::uint32_t kMaxFrame = 1u << 20;          // the echo peers' limit
constexpr std::size_t kMaxBytesInFlight = 256u << 20;  // conns * inflight * frame
constexpr std::size_t kPrefix = weft::frame::kU32HeaderSize;
constexpr std::size_t kStamp = 8 + 8;  // payload: send time, sequence (echo) or id (msg)
constexpr std::size_t kHeader = kPrefix + kStamp;  // echo: length, timestamp, sequence
// msg: the REQUEST's payload starts after the prefix, the 8-byte header and method +
// deadline (docs/protocol.md §6.1, §6.3); the id is at frame offset 8 (after the prefix,
// type, flags and channel).
constexpr std::size_t kMsgIdAt = kPrefix + 4;
constexpr std::size_t kMsgRequestPayloadAt = kPrefix + weft::msg::kHeaderSize + 8;
constexpr std::size_t kMsgResponseOverhead = kPrefix + weft::msg::kHeaderSize;
// A frame the server may send besides a RESPONSE: ERROR with the longest detail.
constexpr std::size_t kMsgMaxError = weft::msg::kHeaderSize + 4 + weft::msg::kMaxDetailSize;

enum class Phase { connecting, running, closing };

// Everything the handlers share. One thread: no synchronisation.
struct State : weft::bench::Errors {
  Options opt;
  std::size_t frame = 0;              // bytes of one answer (prefix included)
  std::size_t request = 0;            // bytes of one request frame (prefix included)
  std::unique_ptr<std::byte[]> tmpl;  // frame + conns bytes of pattern; conn i's at offset i
  Phase phase = Phase::connecting;
  std::uint64_t t_start = 0;  // first frame may carry this timestamp
  std::uint64_t t_measure = ~std::uint64_t{0};
  std::uint64_t t_end = ~std::uint64_t{0};
  std::uint32_t opened = 0;  // connections open (msg: and past HELLO_ACK)
  std::uint32_t next_index = 0;
  std::unique_ptr<weft::platform::ConnId[]> ids;  // per handler index, set when it opens
  Histogram hist;
  std::uint64_t measured = 0;      // answers received inside the window
  std::uint64_t received = 0;      // all answers received
  std::uint64_t sent = 0;          // all frames queued
  std::uint64_t error_frames = 0;  // msg: ERROR / GOAWAY / unexpected frames received
  bool mismatch = false;           // an answer differed: exit 1
};

// Byte j of the long pattern; connection i reads it from offset i mod 256, so a frame sent on
// the wrong connection fails the check too.
std::byte pattern_byte(std::size_t j) noexcept {
  return static_cast<std::byte>((j * 31u + 7u) & 0xffu);
}

// ---- what both protocols' handlers share -------------------------------------------------------

class LoadHandler : public Handler {
 public:
  // max_frame: the longest answer (after its length prefix) that may come; a longer length
  // prefix is an error found before any of the frame is buffered.
  LoadHandler(State* st, std::uint32_t max_frame)
      : st_(st),
        decoder_({.prefix = weft::frame::PrefixKind::u32_be, .max_frame_size = max_frame}),
        assembly_(new std::byte[max_frame]) {
    (void)decoder_.set_assembly({assembly_.get(), max_frame});  // == max_frame_size: ok
  }

  void on_data(Conn& c, BufView in) noexcept override {
    if (closing_ || st_->mismatch) {
      return;  // draining at the end of the run: the rest is discarded unchecked
    }
    const std::uint64_t now = mono_ns();
    std::span<const std::byte> rest = in.bytes;
    std::uint32_t done = 0;
    // Frames whole in this receive are viewed in place; one straddling receives is assembled
    // by the decoder in assembly_.
    while (!rest.empty()) {
      const weft::frame::Decoded d = decoder_.feed(rest);
      rest = rest.subspan(d.consumed);
      if (d.state == weft::frame::DecodeState::need_more) {
        break;
      }
      if (d.state == weft::frame::DecodeState::error) {  // the only error: oversize
        mismatch(c, 0, "a length prefix above any answer expected");
        return;
      }
      if (!on_frame(c, decoder_.frame(), now, done)) {
        return;
      }
    }
    answered(c, done, now);
  }

  void on_writable(Conn& c) noexcept override {
    const std::uint64_t now = mono_ns();
    if (!closing_ && st_->phase != Phase::closing && now < st_->t_end) {
      pump(c, now);
    }
  }

  void on_eof(Conn& c) noexcept override {
    if (!closing_) {
      st_->note_error("connection %u: closed by the server after %" PRIu64 " answers", index_,
                      rx_seq_);
    }
    c.close();
  }

  void on_close(Conn&, std::error_code reason) noexcept override {
    if (!closing_ && !st_->mismatch) {
      if (!open_) {
        st_->note_error("connection %u: connect failed: %s", index_, reason.message().c_str());
      } else {
        st_->note_error("connection %u: closed: %s", index_,
                        reason ? reason.message().c_str() : "by the server");
      }
    }
    if (counted_) {
      --st_->opened;
    }
    open_ = false;
    counted_ = false;
  }

  // End of the run: stop sending and close gracefully (what is still answered is discarded).
  void finish(Conn& c) noexcept {
    closing_ = true;
    c.close();
  }

 protected:
  void reset_common() noexcept {
    index_ = st_->next_index++;
    pattern_ = st_->tmpl.get() + index_ % 256;
    tx_seq_ = rx_seq_ = 0;
    owed_ = 0;
    decoder_.reset();
    open_ = false;
    counted_ = false;
    closing_ = false;
  }

  // The connection is ready for load: K frames owed.
  void ready(Conn& c) noexcept {
    counted_ = true;
    ++st_->opened;
    st_->ids[index_] = c.id();
    owed_ = st_->opt.inflight;
    pump(c, mono_ns());
  }

  // After `done` answers: one new frame per answer (also before the run phase begins).
  void answered(Conn& c, std::uint32_t done, std::uint64_t now) noexcept {
    owed_ += done;
    if (st_->phase != Phase::closing && now < st_->t_end) {
      pump(c, now);
    }
  }

  // Checks an answered payload against what was sent (send time, the 8 bytes after it, the
  // pattern from payload offset 16) and records the round trip when inside the window.
  // `at_base`: the payload's offset in the frame, for the report.
  bool check_payload(Conn& c, std::span<const std::byte> payload, std::uint64_t second,
                     std::size_t at_base, std::uint64_t now) noexcept {
    if (payload.size() != st_->opt.size) {
      char what[64];
      std::snprintf(what, sizeof what, "length %zu, expected %u", payload.size(), st_->opt.size);
      mismatch(c, 0, what);
      return false;
    }
    const std::byte* body = payload.data() + kStamp;
    const std::byte* want = pattern_ + kHeader;
    const std::size_t body_len = payload.size() - kStamp;
    std::uint64_t sent;
    std::uint64_t got;
    std::memcpy(&sent, payload.data(), 8);
    std::memcpy(&got, payload.data() + 8, 8);
    if (got != second || sent < st_->t_start || sent > now ||
        std::memcmp(body, want, body_len) != 0) {
      std::size_t at = 0;
      if (got != second) {
        at = at_base + 8;
      } else if (sent < st_->t_start || sent > now) {
        at = at_base;
      } else {
        std::size_t j = 0;
        while (j < body_len && body[j] == want[j]) {
          ++j;
        }
        at = at_base + kStamp + j;
      }
      char what[64];
      std::snprintf(what, sizeof what, "sequence or id %" PRIu64, got);
      mismatch(c, at, what);
      return false;
    }
    ++rx_seq_;
    ++st_->received;
    if (now >= st_->t_measure && now < st_->t_end) {
      st_->hist.add(now - sent);
      ++st_->measured;
    }
    return true;
  }

  // An answer differs from the frame sent, first at frame byte `at`: a hard error.
  void mismatch(Conn& c, std::size_t at, const char* what) noexcept {
    st_->mismatch = true;
    st_->note_error("connection %u: answer %" PRIu64
                    " differs from the frame sent at byte %zu (%s)",
                    index_, rx_seq_, at, what);
    closing_ = true;
    c.abort(std::make_error_code(std::errc::bad_message));
  }

  // Queues the frames owed. Stops when the output queue or the pool is full; the core calls
  // on_writable when there is room again.
  void pump(Conn& c, std::uint64_t now) noexcept {
    while (owed_ != 0 && can_send()) {
      if (auto r = send_one(c, now); !r) {
        if (r.error() != make_error_code(weft::platform::platform_errc::queue_full) &&
            r.error() != make_error_code(weft::platform::platform_errc::no_buffers)) {
          st_->note_error("connection %u: send failed: %s", index_, r.error().message().c_str());
          closing_ = true;
          c.abort(r.error());
        }
        return;
      }
      ++tx_seq_;
      ++st_->sent;
      --owed_;
    }
  }
  // One frame (after its length prefix); `done` counts answers. False: stop (the
  // connection is being aborted).
  virtual bool on_frame(Conn& c, std::span<const std::byte> frame, std::uint64_t now,
                        std::uint32_t& done) noexcept = 0;
  virtual bool can_send() noexcept = 0;
  virtual weft::Result<void> send_one(Conn& c, std::uint64_t now) noexcept = 0;

  State* st_;
  weft::frame::LengthPrefixDecoder decoder_;
  std::unique_ptr<std::byte[]> assembly_;  // a frame straddling receives
  const std::byte* pattern_ = nullptr;
  std::uint32_t index_ = 0;
  std::uint64_t tx_seq_ = 0;
  std::uint64_t rx_seq_ = 0;
  std::uint64_t owed_ = 0;
  bool open_ = false;     // the transport connected
  bool counted_ = false;  // counted in st_->opened
  bool closing_ = false;
};

// ---- framed echo -------------------------------------------------------------------------------

class EchoHandler final : public LoadHandler {
 public:
  // The limit is the payload size sent: a longer echo is an error.
  explicit EchoHandler(State* st) : LoadHandler(st, st->opt.size) {}

  void reset(Conn&) noexcept { reset_common(); }

  void on_open(Conn& c) noexcept override {
    open_ = true;
    ready(c);
  }

 private:
  bool can_send() noexcept override { return true; }
  weft::Result<void> send_one(Conn& c, std::uint64_t now) noexcept override {
    std::byte head[kHeader];
    weft::frame::encode_u32_header(std::span<std::byte, kPrefix>(head, kPrefix), st_->opt.size);
    std::memcpy(head + kPrefix, &now, 8);
    std::memcpy(head + kPrefix + 8, &tx_seq_, 8);
    return c.send_copy({head, kHeader}, {pattern_ + kHeader, st_->frame - kHeader});
  }
  bool on_frame(Conn& c, std::span<const std::byte> frame, std::uint64_t now,
                std::uint32_t& done) noexcept override {
    if (!check_payload(c, frame, rx_seq_, kPrefix, now)) {
      return false;
    }
    ++done;
    return true;
  }
};

// ---- binary message protocol: unary calls ------------------------------------------------------

class MsgHandler final : public LoadHandler {
 public:
  // Answers are RESPONSEs of 8 + size bytes or ERRORs; anything longer is an error found
  // before it is buffered.
  explicit MsgHandler(State* st)
      : LoadHandler(st, max_answer(st->opt.size)),
        request_(new std::byte[st->request]),
        slots_(2 * std::size_t{st->opt.inflight}),
        outstanding_(new std::uint32_t[slots_]) {}

  void reset(Conn&) noexcept {
    reset_common();
    hello_done_ = false;
    std::fill_n(outstanding_.get(), slots_, 0u);
    // This connection's REQUEST, encoded once: send time and id are written per request.
    const std::span<const std::byte> payload(pattern_ + kHeader - kStamp, st_->opt.size);
    const auto n =
        weft::msg::encode(weft::msg::make_request(1, weft::bench::kUnaryMethod, 0, payload),
                          {request_.get(), st_->request});
    if (!n || n.value() != st_->request) {
      st_->note_error("connection %u: cannot encode the request", index_);
    }
  }

  void on_open(Conn& c) noexcept override {
    open_ = true;
    weft::msg::Hello h;
    h.max_frame = max_answer(st_->opt.size);
    h.max_inflight = 1;  // the bench server sends no REQUESTs
    std::byte hello[kPrefix + weft::msg::kHeaderSize + weft::msg::kHelloBodySize];
    const auto n = weft::msg::encode(weft::msg::make_hello(h), hello);
    if (!n) {
      st_->note_error("connection %u: cannot encode HELLO", index_);
      return;
    }
    if (auto r = c.send_copy({hello, n.value()}); !r) {
      st_->note_error("connection %u: HELLO: %s", index_, r.error().message().c_str());
      closing_ = true;
      c.abort(r.error());
    }
  }

  static std::uint32_t max_answer(std::uint32_t size) noexcept {
    return static_cast<std::uint32_t>(
        std::max<std::size_t>(weft::msg::kHeaderSize + size, kMsgMaxError));
  }

 private:
  bool on_frame(Conn& c, std::span<const std::byte> frame, std::uint64_t now,
                std::uint32_t& done) noexcept override {
    const auto f = weft::msg::parse(frame);
    if (!f) {
      mismatch(c, 0, weft::msg::to_string(static_cast<weft::msg::msg_errc>(f.error().value())));
      return false;
    }
    if (!on_msg(c, f.value(), now)) {
      return false;
    }
    done += f.value().type == weft::msg::FrameType::response ? 1 : 0;
    return true;
  }

 private:
  bool on_msg(Conn& c, const weft::msg::Frame& f, std::uint64_t now) noexcept {
    using weft::msg::FrameType;
    if (f.type == FrameType::response && hello_done_) {
      std::uint32_t& slot = outstanding_[f.id % slots_];
      if (slot != f.id) {
        char what[64];
        std::snprintf(what, sizeof what, "RESPONSE for id %u, not outstanding", f.id);
        mismatch(c, kMsgIdAt, what);
        return false;
      }
      slot = 0;
      return check_payload(c, f.payload, f.id, kMsgResponseOverhead, now);
    }
    if (f.type == FrameType::hello_ack && !hello_done_) {
      if (f.hello.version != weft::msg::kProtocolVersion ||
          f.hello.max_inflight < st_->opt.inflight ||
          f.hello.max_frame < weft::msg::kHeaderSize + 8 + st_->opt.size) {
        st_->note_error(
            "connection %u: HELLO_ACK version %u, max_inflight %u, max_frame %u: "
            "cannot send %u requests of %u bytes",
            index_, f.hello.version, f.hello.max_inflight, f.hello.max_frame, st_->opt.inflight,
            st_->opt.size);
        closing_ = true;
        c.abort(std::make_error_code(std::errc::protocol_not_supported));
        return false;
      }
      hello_done_ = true;
      ready(c);
      return true;
    }
    ++st_->error_frames;
    if (f.type == FrameType::error) {
      st_->note_error("connection %u: ERROR id %u code %u (%s): %.*s", index_, f.id, f.code,
                      weft::msg::to_string(static_cast<weft::msg::ProtocolError>(f.code)),
                      static_cast<int>(f.detail.size()),
                      reinterpret_cast<const char*>(f.detail.data()));
    } else {
      st_->note_error("connection %u: unexpected frame type %u (id %u)", index_,
                      static_cast<unsigned>(f.type), f.id);
    }
    closing_ = true;
    c.abort(std::make_error_code(std::errc::bad_message));
    return false;
  }

  // One more request when its id's slot is free (it always is when answers come in order).
  bool can_send() noexcept override { return hello_done_ && outstanding_[next_id() % slots_] == 0; }
  // Ids 1, 2, ...: tx_seq_ + 1 (never 0; 2^32 - 1 requests per connection are far beyond
  // any bounded run).
  std::uint32_t next_id() const noexcept { return static_cast<std::uint32_t>(tx_seq_ + 1); }

  weft::Result<void> send_one(Conn& c, std::uint64_t now) noexcept override {
    const std::uint32_t id = next_id();
    const std::uint32_t be = htonl(id);
    std::byte* req = request_.get();
    std::memcpy(req + kMsgIdAt, &be, 4);
    const std::uint64_t id64 = id;
    std::memcpy(req + kMsgRequestPayloadAt, &now, 8);
    std::memcpy(req + kMsgRequestPayloadAt + 8, &id64, 8);
    auto r = c.send_copy({req, st_->request});
    if (r) {
      outstanding_[id % slots_] = id;
    }
    return r;
  }

  std::unique_ptr<std::byte[]> request_;  // this connection's REQUEST frame
  std::size_t slots_;
  std::unique_ptr<std::uint32_t[]> outstanding_;  // id mod slots_ -> id, 0 when free
  bool hello_done_ = false;
};

// ---- arguments ---------------------------------------------------------------------------------

void usage() {
  std::fprintf(
      stderr,
      "usage: weft-load --port P|--unix PATH [--proto echo|msg] [--host 127.0.0.1] [--conns N]\n"
      "                 [--inflight K] [--size 16..%u] [--duration S] [--warmup S]\n"
      "                 [--cpu N] [--backend auto|uring|epoll] [--max-msgs N]\n"
      "                 [--server-pid PID] [--server-core N] [--json]\n",
      kMaxFrame);
}

// Returns 0 to go on, -1 after --help, else the exit status.
int parse_args(int argc, char** argv, Options& o) {
  using weft::bench::Arg;
  return weft::bench::parse_args(
      argc, argv, "weft-load", usage, kMaxFrame, o, [&o](const char* a, const char* v) {
        if (!std::strcmp(a, "--proto")) {
          if (!std::strcmp(v, "msg")) {
            o.proto = Proto::msg;
            return Arg::ok;
          }
          return std::strcmp(v, "echo") ? Arg::bad : Arg::ok;
        }
        if (!std::strcmp(a, "--backend")) {
          return weft::bench::parse_backend(v, o.backend) ? Arg::ok : Arg::bad;
        }
        return Arg::bad;
      });
}

// The run, for one protocol's handler type.
template <class H>
int run(State& st, Loop& loop, const weft::platform::Address& addr, const std::string& text) {
  using namespace weft;
  const Options& o = st.opt;
  platform::HandlerPool<H> handlers(o.conns, &st);

  st.t_start = mono_ns();
  for (std::uint32_t i = 0; i < o.conns; ++i) {
    if (auto r = loop.connect(addr, handlers); !r) {
      std::fprintf(stderr, "weft-load: connect: %s\n", r.error().message().c_str());
      return 1;
    }
  }

  // Connect (and HELLO): every connection ready within 5 s (the core's connect timeout is
  // 5 s too).
  const std::uint64_t connect_deadline = st.t_start + 5'000'000'000ull;
  while (st.opened < o.conns && st.errors == 0 && mono_ns() < connect_deadline) {
    loop.run_once(10);
  }
  if (st.opened < o.conns || st.errors != 0) {
    std::fprintf(stderr, "weft-load: %u of %u connections ready on %s: %s\n", st.opened, o.conns,
                 text.c_str(), st.first_error[0] ? st.first_error : "connect timed out");
    loop.request_stop();
    for (int i = 0; i < 100 && loop.run_once(10); ++i) {
    }
    return 1;
  }

  const std::uint64_t t_run = mono_ns();
  st.t_measure = t_run + static_cast<std::uint64_t>(o.warmup * 1e9);
  st.t_end = st.t_measure + static_cast<std::uint64_t>(o.duration * 1e9);
  st.phase = Phase::running;
  bench::CpuSample s0;
  std::uint64_t a0 = 0;
  std::uint64_t r0 = 0;
  bool measuring = false;
  std::uint64_t now = t_run;
  while (!st.mismatch && st.errors == 0) {
    loop.run_once(5);
    now = mono_ns();
    if (!measuring && now >= st.t_measure) {
      s0 = bench::sample_cpu(o.server_pid, o.server_core);
      a0 = g_allocs.load(std::memory_order_relaxed);
      r0 = st.received;
      measuring = true;
    }
    if (now >= st.t_end || (o.max_msgs != 0 && st.measured >= o.max_msgs)) {
      break;
    }
  }
  if (now < st.t_end) {
    st.t_end = now;  // stopped early (count bound or failure): the window ends here
  }
  const bench::CpuSample s1 = bench::sample_cpu(o.server_pid, o.server_core);
  const std::uint64_t a1 = g_allocs.load(std::memory_order_relaxed);
  if (!measuring) {
    s0 = s1;
    a0 = a1;
    r0 = st.received;
  }
  const std::uint64_t measured = st.measured;
  const std::uint64_t received_in_window = st.received - r0;

  // Close: graceful, 1 s at most, then whatever is left is aborted.
  st.phase = Phase::closing;
  for (std::uint32_t i = 0; i < o.conns; ++i) {
    if (platform::Conn* c = loop.find(st.ids[i])) {  // nullptr once it has gone
      static_cast<H*>(c->handler())->finish(*c);
    }
  }
  const std::uint64_t close_deadline = mono_ns() + 1'000'000'000ull;
  while (loop.active_connections() != 0 && mono_ns() < close_deadline) {
    loop.run_once(10);
  }
  loop.request_stop();
  for (int i = 0; i < 200 && loop.run_once(10); ++i) {
  }

  // ---- report ----
  bench::Report rep;
  rep.tool = "weft-load";
  rep.target = text.c_str();
  rep.backend = platform::to_string(loop.backend_kind());
  rep.proto = o.proto == Proto::msg ? "msg" : "echo";
  rep.opt = &o;
  rep.frame_bytes = st.frame;
  rep.window_s = static_cast<double>(st.t_end - st.t_measure) / 1e9;
  rep.msgs = measured;
  rep.hist = &st.hist;
  rep.cpu = bench::cpu_figures(s0, s1, received_in_window);
  rep.sent = st.sent;
  rep.received = st.received;
  rep.steady_allocs = static_cast<long long>(a1 - a0);
  rep.errors = st.errors;
  rep.error_frames = st.error_frames;
  rep.mismatch = st.mismatch;
  rep.error = st.first_error;
  rep.ok = !st.mismatch && st.errors == 0 && st.error_frames == 0 && measured != 0;
  bench::print_report(rep);
  if (st.first_error[0] != '\0') {
    std::fprintf(stderr, "weft-load: %s\n", st.first_error);
  }
  if (rep.steady_allocs != 0) {
    std::fprintf(stderr, "weft-load: warning: %lld allocations in the measured window\n",
                 rep.steady_allocs);
  }
  if (measured == 0 && !st.mismatch && st.errors == 0) {
    std::fprintf(stderr, "weft-load: no answer received in the measured window\n");
  }
  return rep.ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace weft;
  State st;
  Options& o = st.opt;
  if (int rc = parse_args(argc, argv, o); rc != 0) {
    return rc < 0 ? 0 : rc;
  }
  ::signal(SIGPIPE, SIG_IGN);
  // Last-resort bound: whatever happens, the process ends.
  ::alarm(static_cast<unsigned>(o.warmup + o.duration) + 30);

  const std::string text =
      !o.unix_path.empty() ? "unix:" + o.unix_path
                           : (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host) +
                                 ":" + std::to_string(o.port);
  auto addr = platform::Address::parse(text);
  if (!addr || !bench::is_loopback(addr.value())) {
    std::fprintf(stderr, "weft-load: %s is not a loopback address\n", text.c_str());
    return 2;
  }
  if (!bench::pin_to(o, "weft-load")) {
    return 2;
  }

  if (o.proto == Proto::msg) {
    st.frame = kMsgResponseOverhead + o.size;
    st.request = kMsgRequestPayloadAt + o.size;
  } else {
    st.frame = st.request = kPrefix + std::size_t{o.size};
  }
  const std::size_t per_conn = st.request * o.inflight;
  if (per_conn * o.conns > kMaxBytesInFlight) {
    std::fprintf(stderr, "weft-load: conns * inflight * frame exceeds %zu MiB\n",
                 kMaxBytesInFlight >> 20);
    return 2;
  }
  st.ids.reset(new platform::ConnId[o.conns]);
  st.tmpl.reset(new std::byte[st.frame + 256]);
  for (std::size_t j = 0; j < st.frame + 256; ++j) {
    st.tmpl[j] = pattern_byte(j);
  }

  // Pools sized so that a connection's K frames always fit in its output queue.
  platform::Config cfg;
  cfg.backend = o.backend;
  cfg.max_connections = 1;  // nothing listens here
  cfg.outbound_connections = o.conns;
  cfg.buffer_size = 16 * 1024;
  const std::size_t segs = (per_conn + cfg.buffer_size - 1) / cfg.buffer_size + 2;
  cfg.max_out_iov = static_cast<std::uint32_t>(std::min<std::size_t>(1024, segs + 2));
  cfg.send_buffers =
      static_cast<std::uint32_t>(std::min<std::size_t>((1u << 23), segs * o.conns + 64));
  std::uint32_t recv = 256;
  while (recv < 4096 && recv < o.conns * 4) {
    recv *= 2;
  }
  cfg.recv_buffers = recv;
  cfg.high_watermark =
      static_cast<std::uint32_t>(std::max<std::size_t>(256 * 1024, 2 * per_conn + 1));
  cfg.low_watermark = cfg.high_watermark / 4;
  cfg.idle_timeout_ms = 0;  // the run's own deadlines bound everything
  cfg.read_timeout_ms = 0;
  cfg.uring_entries = 1024;
  while (cfg.uring_entries < 4 * o.conns && cfg.uring_entries < 32768) {
    cfg.uring_entries *= 2;
  }
  auto created = platform::Loop::create(cfg, 0);
  if (!created) {
    std::fprintf(stderr, "weft-load: cannot create the loop: %s\n",
                 created.error().message().c_str());
    return 2;
  }
  std::unique_ptr<platform::Loop> loop = std::move(created.value());
  return o.proto == Proto::msg ? run<MsgHandler>(st, *loop, addr.value(), text)
                               : run<EchoHandler>(st, *loop, addr.value(), text);
}
