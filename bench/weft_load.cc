// weft-load — a closed-loop load generator for the framed echo protocol, built on weft's own
// client side (one platform::Loop driven with run_once on the calling thread).
//
//   weft-load --port P [--host 127.0.0.1] [--conns 64] [--inflight 16] [--size 64]
//             [--duration 5] [--warmup 1] [--cpu N] [--backend auto|uring|epoll]
//             [--max-msgs N] [--server-pid PID] [--server-core N] [--json]
//
// Protocol: frames of a 4-byte big-endian length + payload, echoed whole and in order;
// weft::frame writes the length prefix and splits the echoed stream (LengthPrefixDecoder).
// Payload layout (size >= 16): bytes [0,8) the send time (CLOCK_MONOTONIC ns, the clock
// behind std::chrono::steady_clock), [8,16) the connection's frame sequence number, then a
// pattern that depends on the byte's offset and the connection. Round-trip time needs no
// per-message bookkeeping: the echo carries its own send time. Every echoed byte is checked
// (length, sequence, pattern; the timestamp must lie between the start of the run and now);
// one mismatch is a hard error: exit 1.
//
// Load: N connections, each keeping K frames in flight. Each echoed frame is answered with a
// new one at once (closed loop). Frames received during [warmup, warmup + duration) count
// and feed the RTT histogram; then the connections are closed and the program exits. Every
// phase is bounded in time (connect 5 s, run warmup + duration, close 1 s, and an alarm as
// a last resort) and, with --max-msgs, in count.
//
// Measurement: msgs/s and MB/s (frame bytes echoed, 1 MB = 10^6 bytes), RTT percentiles from
// a log-linear histogram (3 significant digits), the load generator's own CPU time over the
// window (getrusage), and with --server-pid the server's utime+stime over the same window
// (/proc/PID/stat, all threads), i.e. server CPU per message; --server-core N adds the busy
// share of core N from /proc/stat (includes softirq time that no process is charged for).
//
// Memory: everything is allocated before the first frame is sent (loop pools, handlers,
// histogram, pattern). The steady state allocates nothing: operator new is counted and the
// count over the measured window is reported (steady_allocs) and must be zero.
//
// Exit status: 0 ok; 1 an echoed byte differed, a connection failed or closed early, or no
// frame came back; 2 bad arguments or start-up failure.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <new>
#include <string>

#include <weft/base/log.h>
#include <weft/frame/decoder.h>
#include <weft/frame/encode.h>
#include <weft/frame/length_prefix.h>
#include <weft/platform/address.h>
#include <weft/platform/config.h>
#include <weft/platform/error.h>
#include <weft/platform/handler_pool.h>
#include <weft/platform/loop.h>

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

using weft::platform::BufView;
using weft::platform::Conn;
using weft::platform::Handler;
using weft::platform::HandlerPool;
using weft::platform::Loop;

std::uint64_t mono_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// ---- histogram ---------------------------------------------------------------------------------
// Log-linear (HDR-style) histogram of nanosecond values: values below 2048 are exact; above,
// each power of two is split into 1024 linear sub-buckets, so every bucket is within 1/1024
// (3 significant decimal digits) of its values. Values up to 2^40 ns (~18 min) are kept; larger
// ones land in the last bucket. 31,744 counters (248 KiB), allocated once.
class Histogram {
 public:
  static constexpr int kSubBits = 10;
  static constexpr std::uint64_t kExact = 2u << kSubBits;  // 2048
  static constexpr int kMaxBits = 40;
  static constexpr std::size_t kBuckets = kExact + (kMaxBits - kSubBits - 1) * (1u << kSubBits);

  Histogram() : counts_(new std::uint64_t[kBuckets]()) {}

  void add(std::uint64_t v) noexcept {
    ++counts_[index(v)];
    ++total_;
    sum_ += v;
    max_ = std::max(max_, v);
    min_ = std::min(min_, v);
  }
  [[nodiscard]] std::uint64_t total() const noexcept { return total_; }
  [[nodiscard]] std::uint64_t max() const noexcept { return max_; }
  [[nodiscard]] std::uint64_t min() const noexcept { return total_ ? min_ : 0; }
  [[nodiscard]] double mean() const noexcept {
    return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0.0;
  }
  // The value at quantile q in [0, 1]: the midpoint of the bucket holding the rank-th
  // smallest sample (rank = ceil(q * total)), clamped to [min, max].
  [[nodiscard]] double quantile(double q) const noexcept {
    if (total_ == 0) {
      return 0;
    }
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_) + 0.999999);
    rank = std::clamp<std::uint64_t>(rank, 1, total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        const double lo = static_cast<double>(lower(i));
        const double hi = static_cast<double>(i + 1 < kBuckets ? lower(i + 1) : max_ + 1);
        const double mid = lo + (hi - lo - 1) / 2;
        return std::clamp(mid, static_cast<double>(min()), static_cast<double>(max_));
      }
    }
    return static_cast<double>(max_);
  }

  static std::size_t index(std::uint64_t v) noexcept {
    if (v < kExact) {
      return static_cast<std::size_t>(v);
    }
    const int msb = 63 - __builtin_clzll(v);  // >= kSubBits + 1
    if (msb >= kMaxBits) {
      return kBuckets - 1;
    }
    const int shift = msb - kSubBits;       // >= 1
    const std::uint64_t mant = v >> shift;  // [1024, 2048)
    return kExact + static_cast<std::size_t>(shift - 1) * (1u << kSubBits) +
           static_cast<std::size_t>(mant - (1u << kSubBits));
  }
  static std::uint64_t lower(std::size_t i) noexcept {
    if (i < kExact) {
      return i;
    }
    const std::size_t k = i - kExact;
    const int shift = static_cast<int>(k >> kSubBits) + 1;
    const std::uint64_t mant = (k & ((1u << kSubBits) - 1)) + (1u << kSubBits);
    return mant << shift;
  }

 private:
  std::unique_ptr<std::uint64_t[]> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = ~std::uint64_t{0};
};

// ---- options and shared state
// --------------------------------------------------------------------

struct Options {
  std::string host = "127.0.0.1";
  std::uint32_t port = 0;
  std::uint32_t conns = 64;
  std::uint32_t inflight = 16;
  std::uint32_t size = 64;
  double duration = 5;
  double warmup = 1;
  int cpu = -1;
  std::uint64_t max_msgs = 0;  // 0: no count bound (the duration still bounds the run)
  long server_pid = 0;
  int server_core = -1;
  bool json = false;
  weft::platform::BackendKind backend = weft::platform::BackendKind::automatic;
};

constexpr std::uint32_t kMaxFrame = 1u << 20;          // the echo peers' limit
constexpr std::size_t kMaxBytesInFlight = 256u << 20;  // conns * inflight * frame
constexpr std::size_t kPrefix = weft::frame::kU32HeaderSize;
constexpr std::size_t kHeader = kPrefix + 8 + 8;  // length, timestamp, sequence

enum class Phase { connecting, running, closing };

// Everything the handlers share. One thread: no synchronisation.
struct State {
  Options opt;
  std::size_t frame = 0;              // 4 + size
  std::unique_ptr<std::byte[]> tmpl;  // frame + conns bytes of pattern; conn i's at offset i
  Phase phase = Phase::connecting;
  std::uint64_t t_start = 0;  // first frame may carry this timestamp
  std::uint64_t t_measure = ~std::uint64_t{0};
  std::uint64_t t_end = ~std::uint64_t{0};
  std::uint32_t opened = 0;
  std::uint32_t next_index = 0;
  std::unique_ptr<weft::platform::ConnId[]> ids;  // per handler index, set when it opens
  Histogram hist;
  std::uint64_t measured = 0;  // frames received inside the window
  std::uint64_t received = 0;  // all frames received
  std::uint64_t sent = 0;      // all frames queued
  std::uint64_t errors = 0;    // connections that failed or closed early
  bool mismatch = false;       // an echoed byte differed: exit 1
  char first_error[256] = {};

  void note_error(const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3))) {
    ++errors;
    if (first_error[0] == '\0') {
      va_list ap;
      va_start(ap, fmt);
      std::vsnprintf(first_error, sizeof first_error, fmt, ap);
      va_end(ap);
      for (char& ch : first_error) {  // it goes into a JSON string as is
        if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20) {
          ch = ch == '\0' ? ch : '\'';
        }
      }
    }
  }
};

// Byte j of the long pattern; connection i reads it from offset i mod 256, so a frame sent on
// the wrong connection fails the check too.
std::byte pattern_byte(std::size_t j) noexcept {
  return static_cast<std::byte>((j * 31u + 7u) & 0xffu);
}

// ---- the connection handler ---------------------------------------------------------------------

class LoadHandler final : public Handler {
 public:
  // The decoder's limit is the payload size sent: a longer length prefix in an echo is an
  // error found before any of its payload is buffered.
  explicit LoadHandler(State* st)
      : st_(st),
        decoder_({.prefix = weft::frame::PrefixKind::u32_be, .max_frame_size = st->opt.size}),
        assembly_(new std::byte[st->opt.size]) {
    (void)decoder_.set_assembly({assembly_.get(), st->opt.size});  // == max_frame_size: ok
  }

  void reset(Conn&) noexcept {
    index_ = st_->next_index++;
    pattern_ = st_->tmpl.get() + index_ % 256;
    tx_seq_ = rx_seq_ = 0;
    owed_ = 0;
    decoder_.reset();
    open_ = false;
    closing_ = false;
  }

  void on_open(Conn& c) noexcept override {
    open_ = true;
    ++st_->opened;
    st_->ids[index_] = c.id();
    owed_ = st_->opt.inflight;
    pump(c, mono_ns());
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
        mismatch(c, 0, "a length prefix above the payload size sent");
        return;
      }
      if (!check(c, decoder_.frame(), now)) {
        return;
      }
      ++done;
    }
    owed_ += done;  // one new frame per frame echoed (also before the run phase begins)
    if (st_->phase != Phase::closing && now < st_->t_end) {
      pump(c, now);
    }
  }

  void on_writable(Conn& c) noexcept override {
    const std::uint64_t now = mono_ns();
    if (!closing_ && st_->phase != Phase::closing && now < st_->t_end) {
      pump(c, now);
    }
  }

  void on_eof(Conn& c) noexcept override {
    if (!closing_) {
      st_->note_error("connection %u: closed by the server after %" PRIu64 " frames", index_,
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
    if (open_) {
      --st_->opened;
    }
    open_ = false;
  }

  // End of the run: stop sending and close gracefully (what is still echoed is discarded).
  void finish(Conn& c) noexcept {
    closing_ = true;
    c.close();
  }

 private:
  // Checks one echoed payload (the decoder has taken its length prefix off); records its
  // round trip when it falls inside the window. Byte offsets in reports count from the start
  // of the frame, prefix included.
  bool check(Conn& c, std::span<const std::byte> payload, std::uint64_t now) noexcept {
    if (payload.size() != st_->opt.size) {
      char what[64];
      std::snprintf(what, sizeof what, "length %zu, expected %u", payload.size(), st_->opt.size);
      mismatch(c, 0, what);
      return false;
    }
    // The pattern after the timestamp and sequence: payload[16..) against pattern_[20..).
    const std::byte* body = payload.data() + (kHeader - kPrefix);
    const std::byte* want = pattern_ + kHeader;
    const std::size_t body_len = st_->frame - kHeader;
    std::uint64_t sent;
    std::uint64_t seq;
    std::memcpy(&sent, payload.data(), 8);
    std::memcpy(&seq, payload.data() + 8, 8);
    if (seq != rx_seq_ || sent < st_->t_start || sent > now ||
        std::memcmp(body, want, body_len) != 0) {
      std::size_t at = 0;
      if (seq != rx_seq_) {
        at = kPrefix + 8;
      } else if (sent < st_->t_start || sent > now) {
        at = kPrefix;
      } else {
        std::size_t j = 0;
        while (j < body_len && body[j] == want[j]) {
          ++j;
        }
        at = kHeader + j;
      }
      char what[64];
      std::snprintf(what, sizeof what, "sequence %" PRIu64, seq);
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

  // An echoed frame differs from the one sent, first at frame byte `at`: a hard error.
  void mismatch(Conn& c, std::size_t at, const char* what) noexcept {
    st_->mismatch = true;
    st_->note_error("connection %u: echoed frame %" PRIu64
                    " differs from the frame sent at byte %zu (%s)",
                    index_, rx_seq_, at, what);
    closing_ = true;
    c.abort(std::make_error_code(std::errc::bad_message));
  }

  // Queues the frames owed (one per frame echoed, K at the start). Stops when the output
  // queue or the pool is full; the core calls on_writable when there is room again.
  void pump(Conn& c, std::uint64_t now) noexcept {
    const std::size_t frame = st_->frame;
    while (owed_ != 0) {
      std::byte head[kHeader];
      weft::frame::encode_u32_header(std::span<std::byte, kPrefix>(head, kPrefix), st_->opt.size);
      std::memcpy(head + 4, &now, 8);
      std::memcpy(head + 12, &tx_seq_, 8);
      if (auto r = c.send_copy({head, kHeader}, {pattern_ + kHeader, frame - kHeader}); !r) {
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

  State* st_;
  weft::frame::LengthPrefixDecoder decoder_;
  std::unique_ptr<std::byte[]> assembly_;  // payload of a frame straddling receives
  const std::byte* pattern_ = nullptr;
  std::uint32_t index_ = 0;
  std::uint64_t tx_seq_ = 0;
  std::uint64_t rx_seq_ = 0;
  std::uint64_t owed_ = 0;
  bool open_ = false;
  bool closing_ = false;
};

// ---- /proc readers (no allocation)
// ---------------------------------------------------------------

// Reads a whole small /proc file into buf; returns its length or -1.
ssize_t read_proc(const char* path, char* buf, std::size_t size) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return -1;
  }
  std::size_t got = 0;
  while (got + 1 < size) {
    const ssize_t r = ::read(fd, buf + got, size - 1 - got);
    if (r <= 0) {
      break;
    }
    got += static_cast<std::size_t>(r);
  }
  ::close(fd);
  buf[got] = '\0';
  return static_cast<ssize_t>(got);
}

// utime + stime of process pid (all its threads), in clock ticks; -1 if unreadable.
long long proc_ticks(long pid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  char buf[1024];
  if (read_proc(path, buf, sizeof buf) <= 0) {
    return -1;
  }
  const char* p = std::strrchr(buf, ')');  // the command name may hold spaces
  if (p == nullptr) {
    return -1;
  }
  ++p;
  // Fields after the name: state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt
  // cmajflt utime(14) stime(15).
  long long utime = 0;
  long long stime = 0;
  if (std::sscanf(p, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &utime, &stime) !=
      2) {
    return -1;
  }
  return utime + stime;
}

// Busy and total jiffies of one core from /proc/stat (busy: user nice system irq softirq steal).
bool core_jiffies(int core, long long& busy, long long& total) noexcept {
  char buf[16384];
  if (read_proc("/proc/stat", buf, sizeof buf) <= 0) {
    return false;
  }
  char tag[16];
  std::snprintf(tag, sizeof tag, "\ncpu%d ", core);
  const char* p = std::strstr(buf, tag);
  if (p == nullptr) {
    return false;
  }
  long long v[8] = {};
  if (std::sscanf(p + std::strlen(tag), "%lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1],
                  &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8) {
    return false;
  }
  busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  total = busy + v[3] + v[4];
  return true;
}

std::uint64_t self_cpu_ns() noexcept {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  const auto tv = [](const timeval& t) {
    return static_cast<std::uint64_t>(t.tv_sec) * 1000000000ull +
           static_cast<std::uint64_t>(t.tv_usec) * 1000ull;
  };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

struct Snapshot {
  std::uint64_t wall = 0;
  std::uint64_t self_cpu = 0;
  long long server_ticks = -1;
  long long core_busy = 0;
  long long core_total = 0;
  bool core_ok = false;
  std::uint64_t allocs = 0;
  std::uint64_t received = 0;
};

Snapshot snapshot(const State& st) noexcept {
  Snapshot s;
  s.wall = mono_ns();
  s.self_cpu = self_cpu_ns();
  if (st.opt.server_pid > 0) {
    s.server_ticks = proc_ticks(st.opt.server_pid);
  }
  if (st.opt.server_core >= 0) {
    s.core_ok = core_jiffies(st.opt.server_core, s.core_busy, s.core_total);
  }
  s.allocs = g_allocs.load(std::memory_order_relaxed);
  s.received = st.received;
  return s;
}

// ---- arguments
// ---------------------------------------------------------------------------------------

void usage() {
  std::fprintf(stderr,
               "usage: weft-load --port P [--host 127.0.0.1] [--conns N] [--inflight K]\n"
               "                 [--size 16..%u] [--duration S] [--warmup S] [--cpu N]\n"
               "                 [--backend auto|uring|epoll] [--max-msgs N]\n"
               "                 [--server-pid PID] [--server-core N] [--json]\n",
               kMaxFrame);
}

bool parse_u64(const char* s, std::uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0 || *s == '-') {
    return false;
  }
  out = v;
  return true;
}

bool parse_double(const char* s, double& out) {
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (end == s || *end != '\0' || !(v >= 0)) {
    return false;
  }
  out = v;
  return true;
}

// Returns 0 to go on, else the exit status.
int parse_args(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (!std::strcmp(a, "--json")) {
      o.json = true;
      continue;
    }
    if (!std::strcmp(a, "-h") || !std::strcmp(a, "--help")) {
      usage();
      return -1;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "weft-load: %s needs a value\n", a);
      return 2;
    }
    const char* v = argv[++i];
    std::uint64_t u = 0;
    bool ok = true;
    if (!std::strcmp(a, "--host")) {
      o.host = v;
    } else if (!std::strcmp(a, "--port")) {
      ok = parse_u64(v, u) && u > 0 && u < 65536;
      o.port = static_cast<std::uint32_t>(u);
    } else if (!std::strcmp(a, "--conns")) {
      ok = parse_u64(v, u) && u > 0 && u <= 60000;
      o.conns = static_cast<std::uint32_t>(u);
    } else if (!std::strcmp(a, "--inflight")) {
      ok = parse_u64(v, u) && u > 0 && u <= 65536;
      o.inflight = static_cast<std::uint32_t>(u);
    } else if (!std::strcmp(a, "--size")) {
      ok = parse_u64(v, u) && u >= 16 && u <= kMaxFrame;
      o.size = static_cast<std::uint32_t>(u);
    } else if (!std::strcmp(a, "--duration")) {
      ok = parse_double(v, o.duration) && o.duration > 0 && o.duration <= 600;
    } else if (!std::strcmp(a, "--warmup")) {
      ok = parse_double(v, o.warmup) && o.warmup <= 60;
    } else if (!std::strcmp(a, "--cpu")) {
      ok = parse_u64(v, u) && u < CPU_SETSIZE;
      o.cpu = static_cast<int>(u);
    } else if (!std::strcmp(a, "--max-msgs")) {
      ok = parse_u64(v, o.max_msgs);
    } else if (!std::strcmp(a, "--server-pid")) {
      ok = parse_u64(v, u) && u > 0 && u < (1u << 30);
      o.server_pid = static_cast<long>(u);
    } else if (!std::strcmp(a, "--server-core")) {
      ok = parse_u64(v, u) && u < CPU_SETSIZE;
      o.server_core = static_cast<int>(u);
    } else if (!std::strcmp(a, "--backend")) {
      if (!std::strcmp(v, "uring") || !std::strcmp(v, "io_uring")) {
        o.backend = weft::platform::BackendKind::uring;
      } else if (!std::strcmp(v, "epoll")) {
        o.backend = weft::platform::BackendKind::epoll;
      } else {
        ok = !std::strcmp(v, "auto");
      }
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "weft-load: bad argument: %s %s\n", a, v);
      usage();
      return 2;
    }
  }
  if (o.port == 0) {
    std::fprintf(stderr, "weft-load: --port is required\n");
    usage();
    return 2;
  }
  return 0;
}

// Loopback only: the tool never loads anything but this machine.
bool is_loopback(const weft::platform::Address& a) {
  if (a.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr());
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (a.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a.sockaddr_ptr());
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  }
  return false;
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

  const std::string text = (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host) +
                           ":" + std::to_string(o.port);
  auto addr = platform::Address::parse(text);
  if (!addr || !is_loopback(addr.value())) {
    std::fprintf(stderr, "weft-load: %s is not a loopback address\n", text.c_str());
    return 2;
  }
  if (o.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(o.cpu, &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) {
      std::fprintf(stderr, "weft-load: cannot pin to cpu %d: %s\n", o.cpu, std::strerror(errno));
      return 2;
    }
  }

  st.frame = 4 + std::size_t{o.size};
  const std::size_t per_conn = st.frame * o.inflight;
  if (per_conn * o.conns > kMaxBytesInFlight) {
    std::fprintf(stderr, "weft-load: conns * inflight * (4 + size) exceeds %zu MiB\n",
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
  platform::HandlerPool<LoadHandler> handlers(o.conns, &st);

  st.t_start = mono_ns();
  for (std::uint32_t i = 0; i < o.conns; ++i) {
    if (auto r = loop->connect(addr.value(), handlers); !r) {
      std::fprintf(stderr, "weft-load: connect: %s\n", r.error().message().c_str());
      return 1;
    }
  }

  // Connect: every connection open within 5 s (the core's connect timeout is 5 s too).
  const std::uint64_t connect_deadline = st.t_start + 5'000'000'000ull;
  while (st.opened < o.conns && st.errors == 0 && mono_ns() < connect_deadline) {
    loop->run_once(10);
  }
  if (st.opened < o.conns || st.errors != 0) {
    std::fprintf(stderr, "weft-load: %u of %u connections open to %s: %s\n", st.opened, o.conns,
                 text.c_str(), st.first_error[0] ? st.first_error : "connect timed out");
    loop->request_stop();
    for (int i = 0; i < 100 && loop->run_once(10); ++i) {
    }
    return 1;
  }

  const std::uint64_t t_run = mono_ns();
  st.t_measure = t_run + static_cast<std::uint64_t>(o.warmup * 1e9);
  st.t_end = st.t_measure + static_cast<std::uint64_t>(o.duration * 1e9);
  st.phase = Phase::running;
  Snapshot s0;
  bool measuring = false;
  std::uint64_t now = t_run;
  while (!st.mismatch && st.errors == 0) {
    loop->run_once(5);
    now = mono_ns();
    if (!measuring && now >= st.t_measure) {
      s0 = snapshot(st);
      measuring = true;
    }
    if (now >= st.t_end || (o.max_msgs != 0 && st.measured >= o.max_msgs)) {
      break;
    }
  }
  if (now < st.t_end) {
    st.t_end = now;  // stopped early (count bound or failure): the window ends here
  }
  Snapshot s1 = snapshot(st);
  if (!measuring) {
    s0 = s1;
  }
  const std::uint64_t measured = st.measured;
  const std::uint64_t steady_allocs = s1.allocs - s0.allocs;

  // Close: graceful, 1 s at most, then whatever is left is aborted.
  st.phase = Phase::closing;
  for (std::uint32_t i = 0; i < o.conns; ++i) {
    if (platform::Conn* c = loop->find(st.ids[i])) {  // nullptr once it has gone
      static_cast<LoadHandler*>(c->handler())->finish(*c);
    }
  }
  const std::uint64_t close_deadline = mono_ns() + 1'000'000'000ull;
  while (loop->active_connections() != 0 && mono_ns() < close_deadline) {
    loop->run_once(10);
  }
  loop->request_stop();
  for (int i = 0; i < 200 && loop->run_once(10); ++i) {
  }

  // ---- report ----
  const double window_s = static_cast<double>(st.t_end - st.t_measure) / 1e9;
  const double snap_s = static_cast<double>(s1.wall - s0.wall) / 1e9;
  const double rate = window_s > 0 ? static_cast<double>(measured) / window_s : 0;
  const double mbps = rate * static_cast<double>(st.frame) / 1e6;
  const double lg_cpu =
      snap_s > 0 ? static_cast<double>(s1.self_cpu - s0.self_cpu) / 1e9 / snap_s : 0;
  const double msgs_snap = static_cast<double>(s1.received - s0.received);
  const double lg_ns_msg =
      msgs_snap > 0 ? static_cast<double>(s1.self_cpu - s0.self_cpu) / msgs_snap : 0;
  const long hz = ::sysconf(_SC_CLK_TCK);
  double srv_cpu = -1;
  double srv_ns_msg = -1;
  if (o.server_pid > 0 && s0.server_ticks >= 0 && s1.server_ticks >= 0 && snap_s > 0) {
    const double srv_s =
        static_cast<double>(s1.server_ticks - s0.server_ticks) / static_cast<double>(hz);
    srv_cpu = srv_s / snap_s;
    srv_ns_msg = msgs_snap > 0 ? srv_s * 1e9 / msgs_snap : -1;
  }
  double core_busy = -1;
  if (o.server_core >= 0 && s0.core_ok && s1.core_ok && s1.core_total > s0.core_total) {
    core_busy = static_cast<double>(s1.core_busy - s0.core_busy) /
                static_cast<double>(s1.core_total - s0.core_total);
  }
  const double us = 1e3;
  const auto& h = st.hist;
  const bool failed = st.mismatch || st.errors != 0 || measured == 0;

  char human[512];
  std::snprintf(human, sizeof human,
                "weft-load %s conns=%u inflight=%u size=%u (%s): %.0f msg/s, %.1f MB/s, "
                "rtt p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us; load cpu %.0f%%%s",
                text.c_str(), o.conns, o.inflight, o.size,
                platform::to_string(loop->backend_kind()), rate, mbps, h.quantile(0.5) / us,
                h.quantile(0.99) / us, h.quantile(0.999) / us, static_cast<double>(h.max()) / us,
                lg_cpu * 100, failed ? "; FAILED" : "");
  if (o.json) {
    std::fprintf(stderr, "%s\n", human);
    std::printf(
        "{\"tool\":\"weft-load\",\"target\":\"%s\",\"backend\":\"%s\",\"conns\":%u,"
        "\"inflight\":%u,\"size\":%u,\"frame_bytes\":%zu,\"warmup_s\":%.3f,\"duration_s\":%.3f,"
        "\"window_s\":%.6f,\"msgs\":%" PRIu64
        ",\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,"
        "\"rtt_us\":{\"min\":%.3f,\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
        "\"p999\":%.3f,\"max\":%.3f},"
        "\"load_cpu\":%.4f,\"load_cpu_ns_per_msg\":%.1f,"
        "\"server_pid\":%ld,\"server_cpu\":%.4f,\"server_cpu_ns_per_msg\":%.1f,"
        "\"server_core\":%d,\"server_core_busy\":%.4f,"
        "\"frames_sent\":%" PRIu64 ",\"frames_received\":%" PRIu64 ",\"steady_allocs\":%" PRIu64
        ",\"errors\":%" PRIu64 ",\"mismatch\":%s,\"error\":\"%s\",\"ok\":%s}\n",
        text.c_str(), platform::to_string(loop->backend_kind()), o.conns, o.inflight, o.size,
        st.frame, o.warmup, o.duration, window_s, measured, rate, mbps,
        static_cast<double>(h.min()) / us, h.mean() / us, h.quantile(0.5) / us,
        h.quantile(0.9) / us, h.quantile(0.99) / us, h.quantile(0.999) / us,
        static_cast<double>(h.max()) / us, lg_cpu, lg_ns_msg, o.server_pid, srv_cpu, srv_ns_msg,
        o.server_core, core_busy, st.sent, st.received, steady_allocs, st.errors,
        st.mismatch ? "true" : "false", st.first_error, failed ? "false" : "true");
  } else {
    std::printf("%s\n", human);
    if (srv_cpu >= 0) {
      std::printf("server pid %ld: cpu %.0f%%, %.0f ns/msg%s\n", o.server_pid, srv_cpu * 100,
                  srv_ns_msg, core_busy >= 0 ? "" : "");
    }
    if (core_busy >= 0) {
      std::printf("server core %d: busy %.0f%%\n", o.server_core, core_busy * 100);
    }
    std::printf("RESULT rate=%.1f p50_us=%.2f p99_us=%.2f p999_us=%.2f max_us=%.2f errors=%" PRIu64
                " samples=%" PRIu64
                " lg_cpu=%.4f srv_cpu=%.4f srv_ns_per_msg=%.1f"
                " steady_allocs=%" PRIu64 "\n",
                rate, h.quantile(0.5) / us, h.quantile(0.99) / us, h.quantile(0.999) / us,
                static_cast<double>(h.max()) / us, st.errors, measured, lg_cpu, srv_cpu, srv_ns_msg,
                steady_allocs);
  }
  std::fflush(stdout);
  if (st.first_error[0] != '\0') {
    std::fprintf(stderr, "weft-load: %s\n", st.first_error);
  }
  if (steady_allocs != 0) {
    std::fprintf(stderr, "weft-load: warning: %" PRIu64 " allocations in the measured window\n",
                 steady_allocs);
  }
  if (measured == 0 && !st.mismatch && st.errors == 0) {
    std::fprintf(stderr, "weft-load: no echo received in the measured window\n");
  }
  return failed ? 1 : 0;
}
