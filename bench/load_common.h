// What the closed-loop load generators share (weft-load, bench/weft_load.cc, and the gRPC
// client, bench/grpc/grpc_load.cc): the common options, the RTT histogram, the /proc readers
// behind "server CPU per message", and the report (one JSON line, or text), so that the
// compare scripts read every tool's output the same way.
//
// Measurement: the caller takes a CpuSample at the start and at the end of the measured
// window; cpu_figures() turns the two into the load generator's own CPU (getrusage), the
// server's utime+stime over the window (/proc/PID/stat, all threads) per message, and the
// busy share of the server's core (/proc/stat, softirq included).
//
// Memory: the Histogram allocates its counters once, in its constructor; nothing else here
// allocates (the /proc readers use stack buffers), so the steady state of a tool that
// samples through these functions stays allocation-free. One thread: nothing is shared.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
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
#include <string>

namespace weft::bench {

inline std::uint64_t mono_ns() noexcept {
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

// ---- /proc readers (no allocation) -------------------------------------------------------------

// Reads a whole small /proc file into buf; returns its length or -1.
inline ssize_t read_proc(const char* path, char* buf, std::size_t size) noexcept {
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
inline long long proc_ticks(long pid) noexcept {
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
inline bool core_jiffies(int core, long long& busy, long long& total) noexcept {
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

inline std::uint64_t self_cpu_ns() noexcept {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  const auto tv = [](const timeval& t) {
    return static_cast<std::uint64_t>(t.tv_sec) * 1000000000ull +
           static_cast<std::uint64_t>(t.tv_usec) * 1000ull;
  };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

// One end of the measured window.
struct CpuSample {
  std::uint64_t wall = 0;
  std::uint64_t self_cpu = 0;
  long long server_ticks = -1;
  long long core_busy = 0;
  long long core_total = 0;
  bool core_ok = false;
};

// server_pid <= 0 / server_core < 0: not sampled.
inline CpuSample sample_cpu(long server_pid, int server_core) noexcept {
  CpuSample s;
  s.wall = mono_ns();
  s.self_cpu = self_cpu_ns();
  if (server_pid > 0) {
    s.server_ticks = proc_ticks(server_pid);
  }
  if (server_core >= 0) {
    s.core_ok = core_jiffies(server_core, s.core_busy, s.core_total);
  }
  return s;
}

// The window's CPU figures; -1 where not measured.
struct CpuFigures {
  double load_cpu = 0;         // the load generator's share of one core
  double load_ns_per_msg = 0;  // its CPU per message
  double server_cpu = -1;      // the server's share of one core (all threads)
  double server_ns_per_msg = -1;
  double core_busy = -1;  // busy share of the server's core
};

inline CpuFigures cpu_figures(const CpuSample& s0, const CpuSample& s1,
                              std::uint64_t msgs) noexcept {
  CpuFigures f;
  const double snap_s = static_cast<double>(s1.wall - s0.wall) / 1e9;
  const double n = static_cast<double>(msgs);
  const double self_ns = static_cast<double>(s1.self_cpu - s0.self_cpu);
  f.load_cpu = snap_s > 0 ? self_ns / 1e9 / snap_s : 0;
  f.load_ns_per_msg = n > 0 ? self_ns / n : 0;
  if (s0.server_ticks >= 0 && s1.server_ticks >= 0 && snap_s > 0) {
    const double srv_s = static_cast<double>(s1.server_ticks - s0.server_ticks) /
                         static_cast<double>(::sysconf(_SC_CLK_TCK));
    f.server_cpu = srv_s / snap_s;
    f.server_ns_per_msg = n > 0 ? srv_s * 1e9 / n : -1;
  }
  if (s0.core_ok && s1.core_ok && s1.core_total > s0.core_total) {
    f.core_busy = static_cast<double>(s1.core_busy - s0.core_busy) /
                  static_cast<double>(s1.core_total - s0.core_total);
  }
  return f;
}

// ---- options -----------------------------------------------------------------------------------

// The options every load generator takes (each tool adds its own).
struct LoadOptions {
  std::string host = "127.0.0.1";
  std::uint32_t port = 0;
  std::string unix_path;  // --unix PATH: connect over AF_UNIX instead (port then unused)
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
};

inline bool parse_u64(const char* s, std::uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0 || *s == '-') {
    return false;
  }
  out = v;
  return true;
}

inline bool parse_double(const char* s, double& out) {
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (end == s || *end != '\0' || !(v >= 0)) {
    return false;
  }
  out = v;
  return true;
}

enum class Arg { ok, bad, unknown };

// Parses one "--name value" pair of LoadOptions (--json takes no value: see takes_value);
// unknown: the name is the tool's own. max_size bounds --size (at least 16: the payload
// carries a timestamp and a sequence number).
inline Arg parse_load_arg(const char* a, const char* v, LoadOptions& o, std::uint32_t max_size) {
  std::uint64_t u = 0;
  bool ok = true;
  if (!std::strcmp(a, "--host")) {
    o.host = v;
  } else if (!std::strcmp(a, "--unix")) {
    o.unix_path = v;
    ok = !o.unix_path.empty();
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
    ok = parse_u64(v, u) && u >= 16 && u <= max_size;
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
  } else {
    return Arg::unknown;
  }
  return ok ? Arg::ok : Arg::bad;
}

// Parses a tool's arguments: --json, -h/--help, the LoadOptions (parse_load_arg) and, for
// other names, the tool's own through extra(name, value) -> Arg. Requires --port.
// Returns 0 to go on, -1 after --help (usage printed), 2 on a bad or missing argument.
template <class Extra>
int parse_args(int argc, char** argv, const char* tool, void (*usage)(), std::uint32_t max_size,
               LoadOptions& o, Extra&& extra) {
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
      std::fprintf(stderr, "%s: %s needs a value\n", tool, a);
      return 2;
    }
    const char* v = argv[++i];
    Arg got = parse_load_arg(a, v, o, max_size);
    if (got == Arg::unknown) {
      got = extra(a, v);
    }
    if (got != Arg::ok) {
      std::fprintf(stderr, "%s: bad argument: %s %s\n", tool, a, v);
      usage();
      return 2;
    }
  }
  if (o.port == 0 && o.unix_path.empty()) {
    std::fprintf(stderr, "%s: --port (or --unix) is required\n", tool);
    usage();
    return 2;
  }
  return 0;
}

// Pins the calling thread to o.cpu (when set); false with a message on failure.
inline bool pin_to(const LoadOptions& o, const char* tool) {
  if (o.cpu < 0) {
    return true;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(o.cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) {
    std::fprintf(stderr, "%s: cannot pin to cpu %d: %s\n", tool, o.cpu, std::strerror(errno));
    return false;
  }
  return true;
}

// ---- report ------------------------------------------------------------------------------------

// One run's result. msgs counts answers (echoed frames, RESPONSEs) inside the window.
struct Report {
  const char* tool = "";
  const char* target = "";   // host:port
  const char* backend = "";  // the load generator's event backend
  const char* proto = "";    // echo, msg, grpc
  const LoadOptions* opt = nullptr;
  std::size_t frame_bytes = 0;  // bytes of one answer on the wire (MB/s counts these)
  double window_s = 0;
  std::uint64_t msgs = 0;
  const Histogram* hist = nullptr;
  CpuFigures cpu;
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  long long steady_allocs = -1;    // operator new calls in the window; -1: not counted
  std::uint64_t errors = 0;        // failures (connections, calls)
  std::uint64_t error_frames = 0;  // ERROR answers (msg) or non-OK statuses (gRPC)
  bool mismatch = false;           // an answer differed from what was expected
  const char* error = "";          // the first failure, JSON-safe
  bool ok = false;
};

// Prints the report: with opt->json one JSON line on stdout (the text line on stderr), else
// the text and a RESULT line on stdout.
inline void print_report(const Report& r) {
  const LoadOptions& o = *r.opt;
  const Histogram& h = *r.hist;
  const double us = 1e3;
  const double rate = r.window_s > 0 ? static_cast<double>(r.msgs) / r.window_s : 0;
  const double mbps = rate * static_cast<double>(r.frame_bytes) / 1e6;
  const CpuFigures& c = r.cpu;
  char human[512];
  std::snprintf(human, sizeof human,
                "%s %s proto=%s conns=%u inflight=%u size=%u (%s): %.0f msg/s, %.1f MB/s, "
                "rtt p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us; load cpu %.0f%%%s",
                r.tool, r.target, r.proto, o.conns, o.inflight, o.size, r.backend, rate, mbps,
                h.quantile(0.5) / us, h.quantile(0.99) / us, h.quantile(0.999) / us,
                static_cast<double>(h.max()) / us, c.load_cpu * 100, r.ok ? "" : "; FAILED");
  if (o.json) {
    std::fprintf(stderr, "%s\n", human);
    std::printf(
        "{\"tool\":\"%s\",\"proto\":\"%s\",\"target\":\"%s\",\"backend\":\"%s\",\"conns\":%u,"
        "\"inflight\":%u,\"size\":%u,\"frame_bytes\":%zu,\"warmup_s\":%.3f,\"duration_s\":%.3f,"
        "\"window_s\":%.6f,\"msgs\":%" PRIu64
        ",\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,"
        "\"rtt_us\":{\"min\":%.3f,\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
        "\"p999\":%.3f,\"max\":%.3f},"
        "\"load_cpu\":%.4f,\"load_cpu_ns_per_msg\":%.1f,"
        "\"server_pid\":%ld,\"server_cpu\":%.4f,\"server_cpu_ns_per_msg\":%.1f,"
        "\"server_core\":%d,\"server_core_busy\":%.4f,"
        "\"frames_sent\":%" PRIu64 ",\"frames_received\":%" PRIu64
        ",\"steady_allocs\":%lld,\"errors\":%" PRIu64 ",\"error_frames\":%" PRIu64
        ",\"mismatch\":%s,\"error\":\"%s\",\"ok\":%s}\n",
        r.tool, r.proto, r.target, r.backend, o.conns, o.inflight, o.size, r.frame_bytes, o.warmup,
        o.duration, r.window_s, r.msgs, rate, mbps, static_cast<double>(h.min()) / us,
        h.mean() / us, h.quantile(0.5) / us, h.quantile(0.9) / us, h.quantile(0.99) / us,
        h.quantile(0.999) / us, static_cast<double>(h.max()) / us, c.load_cpu, c.load_ns_per_msg,
        o.server_pid, c.server_cpu, c.server_ns_per_msg, o.server_core, c.core_busy, r.sent,
        r.received, r.steady_allocs, r.errors, r.error_frames, r.mismatch ? "true" : "false",
        r.error, r.ok ? "true" : "false");
  } else {
    std::printf("%s\n", human);
    if (c.server_cpu >= 0) {
      std::printf("server pid %ld: cpu %.0f%%, %.0f ns/msg\n", o.server_pid, c.server_cpu * 100,
                  c.server_ns_per_msg);
    }
    if (c.core_busy >= 0) {
      std::printf("server core %d: busy %.0f%%\n", o.server_core, c.core_busy * 100);
    }
    std::printf("RESULT rate=%.1f p50_us=%.2f p99_us=%.2f p999_us=%.2f max_us=%.2f errors=%" PRIu64
                " samples=%" PRIu64
                " lg_cpu=%.4f srv_cpu=%.4f srv_ns_per_msg=%.1f"
                " steady_allocs=%lld\n",
                rate, h.quantile(0.5) / us, h.quantile(0.99) / us, h.quantile(0.999) / us,
                static_cast<double>(h.max()) / us, r.errors, r.msgs, c.load_cpu, c.server_cpu,
                c.server_ns_per_msg, r.steady_allocs);
  }
  std::fflush(stdout);
}

// Failures of a run: how many, and the first one's text (JSON-safe: quotes, backslashes and
// control characters become '). Never allocates.
struct Errors {
  std::uint64_t errors = 0;
  char first_error[256] = {};

  void note_error(const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3))) {
    ++errors;
    if (first_error[0] != '\0') {
      return;
    }
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(first_error, sizeof first_error, fmt, ap);
    va_end(ap);
    for (char* ch = first_error; *ch != '\0'; ++ch) {
      if (*ch == '"' || *ch == '\\' || static_cast<unsigned char>(*ch) < 0x20) {
        *ch = '\'';
      }
    }
  }
};

}  // namespace weft::bench
