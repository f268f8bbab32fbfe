#include <weft/platform/log.h>

#include <unistd.h>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace weft {
namespace {

void stderr_sink(LogLevel level, const char* line, void*) {
  static const char* const kNames[] = {"error", "warn", "info", "debug"};
  char buf[600];
  int n = std::snprintf(buf, sizeof buf, "weft[%s] %s\n", kNames[static_cast<int>(level)], line);
  if (n > 0) {
    std::size_t len =
        static_cast<std::size_t>(n) < sizeof buf ? static_cast<std::size_t>(n) : sizeof buf - 1;
    ssize_t ignored = ::write(2, buf, len);  // one write per line: no interleaving mid-line
    (void)ignored;
  }
}

int level_from_env() {
  const char* v = std::getenv("WEFT_LOG");
  if (v == nullptr) {
    return static_cast<int>(LogLevel::info);
  }
  if (std::strcmp(v, "error") == 0) {
    return 0;
  }
  if (std::strcmp(v, "warn") == 0) {
    return 1;
  }
  if (std::strcmp(v, "debug") == 0) {
    return 3;
  }
  return 2;
}

std::atomic<LogSink> g_sink{&stderr_sink};
std::atomic<void*> g_ctx{nullptr};
std::atomic<int> g_level{level_from_env()};

}  // namespace

void set_log_sink(LogSink sink, void* ctx) noexcept {
  g_ctx.store(ctx, std::memory_order_relaxed);
  g_sink.store(sink != nullptr ? sink : &stderr_sink, std::memory_order_release);
}

void set_log_level(LogLevel level) noexcept {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

bool log_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

void log(LogLevel level, const char* fmt, ...) noexcept {
  if (!log_enabled(level)) {
    return;
  }
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  LogSink sink = g_sink.load(std::memory_order_acquire);
  sink(level, line, g_ctx.load(std::memory_order_relaxed));
}

}  // namespace weft
