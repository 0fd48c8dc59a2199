// The host's one logger: text or JSON lines on stderr, thread-safe, tagged with a source
// ("host" or a plugin id).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace hdp::host {

enum class LogLevel : int32_t { trace = 0, debug = 1, info = 2, warning = 3, error = 4 };
enum class LogFormat { text, json };

// Maps any int32 (an HDP_LOG_* value from a plugin, possibly unknown) to the nearest level.
LogLevel clamp_log_level(int32_t level);
std::optional<LogLevel> parse_log_level(std::string_view text);
std::optional<LogFormat> parse_log_format(std::string_view text);

// "2026-11-29T23:14:53.123Z" for a time in microseconds since the Unix epoch.
std::string format_utc_timestamp(int64_t unix_us);

// One formatted line without the trailing newline (pure; used by Logger and the tests).
std::string format_log_line(LogFormat format, int64_t unix_us, LogLevel level, std::string_view source,
                            std::string_view message);

class Logger {
 public:
  explicit Logger(LogLevel min_level = LogLevel::info, LogFormat format = LogFormat::text, std::FILE* out = stderr);
  ~Logger() { flush(); }
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  void set_level(LogLevel level);
  void set_format(LogFormat format);
  bool enabled(LogLevel level) const;

  // Thread-safe; writes one line (control characters in message are escaped). With a deferred
  // flush set, info and lower lines wait for the flush it schedules (one write(2) for all the
  // lines of a loop turn instead of one each); a warning or an error writes everything pending,
  // itself included, at once.
  void log(LogLevel level, std::string_view source, std::string_view message);

  // schedule is called (from the logging thread, outside the logger's lock) when a line starts
  // waiting; it must arrange for flush() to run soon, e.g. by posting it to the loop. An empty
  // function writes every line at once again (and writes what is pending now). Thread-safe.
  void set_deferred_flush(std::function<void()> schedule);
  // Writes every pending line. Thread-safe.
  void flush();

  void trace(std::string_view m) { log(LogLevel::trace, "host", m); }
  void debug(std::string_view m) { log(LogLevel::debug, "host", m); }
  void info(std::string_view m) { log(LogLevel::info, "host", m); }
  void warning(std::string_view m) { log(LogLevel::warning, "host", m); }
  void error(std::string_view m) { log(LogLevel::error, "host", m); }

 private:
  static constexpr size_t kMaxPending = 64 * 1024;
  void write_pending_locked();

  std::mutex write_mutex_;
  std::string pending_;           // guarded by write_mutex_
  std::function<void()> defer_;   // guarded by write_mutex_
  bool flush_scheduled_ = false;  // guarded by write_mutex_
  std::atomic<LogLevel> min_level_;
  std::atomic<LogFormat> format_;
  std::FILE* out_;
};

}  // namespace hdp::host
