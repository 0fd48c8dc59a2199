#include "log.hpp"

#include <array>
#include <chrono>
#include <ctime>
#include <utility>

namespace hdp::host {
namespace {

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return "TRACE";
    case LogLevel::debug: return "DEBUG";
    case LogLevel::info: return "INFO";
    case LogLevel::warning: return "WARN";
    case LogLevel::error: return "ERROR";
  }
  return "INFO";
}

std::string_view json_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return "trace";
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
  }
  return "info";
}

// Keeps one message on one line: control characters become \n, \t, \r or \u00XX.
void append_escaped(std::string& out, std::string_view text, bool json) {
  static constexpr std::array<char, 16> hex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                               '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (json && (c == '"' || c == '\\')) {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += "\\u00";
      out += hex[u >> 4U];
      out += hex[u & 0xfU];
    } else {
      out += c;
    }
  }
}

}  // namespace

LogLevel clamp_log_level(int32_t level) {
  if (level <= static_cast<int32_t>(LogLevel::trace)) return LogLevel::trace;
  if (level >= static_cast<int32_t>(LogLevel::error)) return LogLevel::error;
  return static_cast<LogLevel>(level);
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
  if (text == "trace") return LogLevel::trace;
  if (text == "debug") return LogLevel::debug;
  if (text == "info") return LogLevel::info;
  if (text == "warning" || text == "warn") return LogLevel::warning;
  if (text == "error") return LogLevel::error;
  return std::nullopt;
}

std::optional<LogFormat> parse_log_format(std::string_view text) {
  if (text == "text") return LogFormat::text;
  if (text == "json") return LogFormat::json;
  return std::nullopt;
}

std::string format_utc_timestamp(int64_t unix_us) {
  const int64_t seconds = unix_us >= 0 ? unix_us / 1000000 : (unix_us - 999999) / 1000000;
  const int64_t millis = (unix_us - seconds * 1000000) / 1000;
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 40> buf{};
  const int n = std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(millis));
  return std::string(buf.data(), n > 0 ? static_cast<size_t>(n) : 0);
}

std::string format_log_line(LogFormat format, int64_t unix_us, LogLevel level, std::string_view source,
                            std::string_view message) {
  std::string line;
  line.reserve(48 + source.size() + message.size());
  if (format == LogFormat::json) {
    line += R"({"ts":")";
    line += format_utc_timestamp(unix_us);
    line += R"(","level":")";
    line += json_level_name(level);
    line += R"(","source":")";
    append_escaped(line, source, true);
    line += R"(","msg":")";
    append_escaped(line, message, true);
    line += "\"}";
    return line;
  }
  line += format_utc_timestamp(unix_us);
  line += ' ';
  const std::string_view name = level_name(level);
  line += name;
  line.append(6 - name.size(), ' ');
  line += '[';
  append_escaped(line, source, false);
  line += "] ";
  append_escaped(line, message, false);
  return line;
}

Logger::Logger(LogLevel min_level, LogFormat format, std::FILE* out)
    : min_level_(min_level), format_(format), out_(out) {}

void Logger::set_level(LogLevel level) {
  min_level_.store(level);
}

void Logger::set_format(LogFormat format) {
  format_.store(format);
}

bool Logger::enabled(LogLevel level) const {
  return level >= min_level_.load();
}

void Logger::log(LogLevel level, std::string_view source, std::string_view message) {
  if (!enabled(level)) return;
  // Log lines carry real time even under the virtual clock: they are for people.
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  std::string line = format_log_line(format_.load(), std::chrono::duration_cast<std::chrono::microseconds>(now).count(),
                                     level, source, message);
  line += '\n';
  bool schedule = false;
  std::function<void()> scheduler;
  {
    const std::lock_guard lock(write_mutex_);
    pending_ += line;
    if (!defer_ || level >= LogLevel::warning || pending_.size() >= kMaxPending) {
      write_pending_locked();
    } else if (!flush_scheduled_) {
      flush_scheduled_ = true;
      schedule = true;
      scheduler = defer_;
    }
  }
  if (schedule) scheduler();
}

void Logger::write_pending_locked() {
  if (pending_.empty()) return;
  std::fwrite(pending_.data(), 1, pending_.size(), out_);
  std::fflush(out_);
  pending_.clear();
}

void Logger::flush() {
  const std::lock_guard lock(write_mutex_);
  flush_scheduled_ = false;
  write_pending_locked();
}

void Logger::set_deferred_flush(std::function<void()> schedule) {
  const std::lock_guard lock(write_mutex_);
  defer_ = std::move(schedule);
  flush_scheduled_ = false;
  write_pending_locked();
}

}  // namespace hdp::host
