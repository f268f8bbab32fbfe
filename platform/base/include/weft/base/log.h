// Minimal, allocation-free logging for the control plane (start-up, backend choice,
// shutdown, rejected peers). Messages are formatted with vsnprintf into a stack buffer
// (512 bytes, longer lines are truncated) and handed to the sink.
//
// The sink is process-wide; set it before Runtime::start(). The default sink writes one
// line to stderr. The level comes from WEFT_LOG=error|warn|info|debug (default info), read
// on the first log_enabled()/log() call unless set_log_level() came first.
// Thread-safety: every function may be called from any thread; the default sink issues one
// write(2) per line, so lines from different workers do not interleave mid-line. A sink
// runs on the logging thread and must be thread-safe itself.
//
// Part of weft::base (header-only): the sink and level are inline variables, so there is
// one of each per process however many libraries include this header.
#pragma once

#include <cstdarg>

namespace weft {

enum class LogLevel : int { error = 0, warn = 1, info = 2, debug = 3 };

// `line` is NUL-terminated, without a trailing newline, valid only during the call.
using LogSink = void (*)(LogLevel level, const char* line, void* ctx);

// Replaces the sink (nullptr restores the default stderr sink). `ctx` is passed to every
// call of `sink` and must outlive its use.
inline void set_log_sink(LogSink sink, void* ctx) noexcept;
inline void set_log_level(LogLevel level) noexcept;
[[nodiscard]] inline bool log_enabled(LogLevel level) noexcept;

// Formats and hands one line to the sink if `level` is enabled.
inline void log(LogLevel level, const char* fmt, ...) noexcept
    __attribute__((format(printf, 2, 3)));

}  // namespace weft

// ---- inline definitions ----------------------------------------------------------------

#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace weft::detail {

inline void stderr_log_sink(LogLevel level, const char* line, void* /*ctx*/) {
  static constexpr const char* kNames[] = {"error", "warn", "info", "debug"};
  char buf[600];
  const int n =
      std::snprintf(buf, sizeof buf, "weft[%s] %s\n", kNames[static_cast<int>(level)], line);
  if (n > 0) {
    const std::size_t len =
        static_cast<std::size_t>(n) < sizeof buf ? static_cast<std::size_t>(n) : sizeof buf - 1;
    const ssize_t ignored = ::write(2, buf, len);  // one write per line: no interleaving mid-line
    (void)ignored;
  }
}

inline int log_level_from_env() noexcept {
  const char* v = std::getenv("WEFT_LOG");
  if (v == nullptr) {
    return static_cast<int>(LogLevel::info);
  }
  if (std::strcmp(v, "error") == 0) {
    return static_cast<int>(LogLevel::error);
  }
  if (std::strcmp(v, "warn") == 0) {
    return static_cast<int>(LogLevel::warn);
  }
  if (std::strcmp(v, "debug") == 0) {
    return static_cast<int>(LogLevel::debug);
  }
  return static_cast<int>(LogLevel::info);
}

// All three are constant-initialised, so logging works from static constructors too.
// kLogLevelUnset: WEFT_LOG is read lazily, not by a dynamic initialiser.
inline constexpr int kLogLevelUnset = -1;
inline std::atomic<LogSink> g_log_sink{&stderr_log_sink};
inline std::atomic<void*> g_log_ctx{nullptr};
inline std::atomic<int> g_log_level{kLogLevelUnset};

}  // namespace weft::detail

namespace weft {

inline void set_log_sink(LogSink sink, void* ctx) noexcept {
  detail::g_log_ctx.store(ctx, std::memory_order_relaxed);
  // Release: a thread that sees the new sink also sees its ctx.
  detail::g_log_sink.store(sink != nullptr ? sink : &detail::stderr_log_sink,
                           std::memory_order_release);
}

inline void set_log_level(LogLevel level) noexcept {
  detail::g_log_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

inline bool log_enabled(LogLevel level) noexcept {
  int current = detail::g_log_level.load(std::memory_order_relaxed);
  if (current == detail::kLogLevelUnset) {
    // First use: racing threads read the same environment; a set_log_level() that got in
    // first wins because the exchange only replaces "unset".
    const int from_env = detail::log_level_from_env();
    if (detail::g_log_level.compare_exchange_strong(current, from_env, std::memory_order_relaxed)) {
      current = from_env;
    }
  }
  return static_cast<int>(level) <= current;
}

// Never inlined in practice (g++ does not inline functions that use va_start), so the
// 512-byte buffer stays off the callers' frames.
inline void log(LogLevel level, const char* fmt, ...) noexcept {
  if (!log_enabled(level)) {
    return;
  }
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  const LogSink sink = detail::g_log_sink.load(std::memory_order_acquire);
  sink(level, line, detail::g_log_ctx.load(std::memory_order_relaxed));
}

}  // namespace weft
