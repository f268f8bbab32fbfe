// Minimal, allocation-free logging for the control plane (start-up, backend choice,
// shutdown, rejected peers). Messages are formatted with vsnprintf into a stack buffer
// (512 bytes, longer lines are truncated) and handed to the sink.
//
// The sink is process-wide; set it before Runtime::start(). The default sink writes one
// line to stderr. The level comes from WEFT_LOG=error|warn|info|debug (default info).
// Thread-safety: log() may be called from any thread; the default sink issues one
// write(2) per line, so lines from different workers do not interleave mid-line.
#pragma once

#include <cstdarg>

namespace weft {

enum class LogLevel : int { error = 0, warn = 1, info = 2, debug = 3 };

using LogSink = void (*)(LogLevel level, const char* line, void* ctx);

// Replaces the sink (nullptr restores the default stderr sink).
void set_log_sink(LogSink sink, void* ctx) noexcept;
void set_log_level(LogLevel level) noexcept;
[[nodiscard]] bool log_enabled(LogLevel level) noexcept;

void log(LogLevel level, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

}  // namespace weft
