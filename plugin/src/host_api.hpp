// A thin C++ face over the host's C tables. Every extension is looked up once at construction;
// a missing one stays null and the caller decides whether it can live without it.
#pragma once

#include <hdp/hdp.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace wavoip {

class HostApi {
 public:
  explicit HostApi(const hdp_host_t* host);

  const hdp_host_t* raw() const { return host_; }

  void log(int32_t level, const std::string& message) const;
  bool log_enabled(int32_t level) const;
  int64_t wall_ms() const;
  int64_t monotonic_ms() const;
  std::string_view config() const;
  std::string data_dir() const;

  const hdp_host_timers_t* timers() const { return timers_; }
  const hdp_host_posix_fd_t* fds() const { return fds_; }
  const hdp_host_http_t* http() const { return http_; }
  const hdp_host_messages_t* messages() const { return messages_; }
  // ABI 1.2, preferred when offered: message writes completed later. Null in older hosts.
  const hdp_host_messages2_t* messages2() const { return messages2_; }
  // ABI 1.3, preferred over /2 when offered: /2 with the technical detail apart from the reason.
  const hdp_host_messages3_t* messages3() const { return messages3_; }
  const hdp_host_attachments_t* attachments() const { return attachments_; }
  // Optional (ABI 1.1): null when the host has no metrics; see metrics.hpp.
  const hdp_host_metrics_t* metrics() const { return metrics_; }

  // Names of required extensions the host lacks; empty when the plugin can run.
  std::string missing_extensions() const;

 private:
  template <typename Table>
  const Table* find(const char* id, size_t v1_size) const;

  const hdp_host_t* host_;
  const hdp_host_timers_t* timers_ = nullptr;
  const hdp_host_posix_fd_t* fds_ = nullptr;
  const hdp_host_http_t* http_ = nullptr;
  const hdp_host_messages_t* messages_ = nullptr;
  const hdp_host_messages2_t* messages2_ = nullptr;
  const hdp_host_messages3_t* messages3_ = nullptr;
  const hdp_host_attachments_t* attachments_ = nullptr;
  const hdp_host_metrics_t* metrics_ = nullptr;
};

// Runs fn and keeps any exception from crossing the C ABI: it becomes one error log line.
// Returns false when fn threw.
template <typename Fn>
bool without_exceptions(const HostApi& host, const char* where, Fn&& fn) noexcept {
  try {
    fn();
    return true;
  } catch (const std::exception& e) {
    try {
      host.log(HDP_LOG_ERROR, std::string(where) + ": " + e.what());
    } catch (...) {
    }
  } catch (...) {
    try {
      host.log(HDP_LOG_ERROR, std::string(where) + ": unknown exception");
    } catch (...) {
    }
  }
  return false;
}

}  // namespace wavoip
