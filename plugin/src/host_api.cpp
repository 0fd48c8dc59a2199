#include "host_api.hpp"

#include <cstring>

namespace wavoip {

namespace {
// The core table's members we use all lie within the version-1 size, checked at entry.
constexpr int64_t kUsPerMs = 1000;
}  // namespace

HostApi::HostApi(const hdp_host_t* host) : host_(host) {
  timers_ = find<hdp_host_timers_t>(HDP_EXT_TIMERS, HDP_HOST_TIMERS_V1_SIZE);
  fds_ = find<hdp_host_posix_fd_t>(HDP_EXT_POSIX_FD, HDP_HOST_POSIX_FD_V1_SIZE);
  http_ = find<hdp_host_http_t>(HDP_EXT_HTTP, HDP_HOST_HTTP_V1_SIZE);
  messages_ = find<hdp_host_messages_t>(HDP_EXT_MESSAGES, HDP_HOST_MESSAGES_V1_SIZE);
  messages2_ = find<hdp_host_messages2_t>(HDP_EXT_MESSAGES_V2, HDP_HOST_MESSAGES2_V1_SIZE);  // optional
  messages3_ = find<hdp_host_messages3_t>(HDP_EXT_MESSAGES_V3, HDP_HOST_MESSAGES3_V1_SIZE);  // optional
  attachments_ = find<hdp_host_attachments_t>(HDP_EXT_ATTACHMENTS, HDP_HOST_ATTACHMENTS_V1_SIZE);
  metrics_ = find<hdp_host_metrics_t>(HDP_EXT_METRICS, HDP_HOST_METRICS_V1_SIZE);  // optional
}

template <typename Table>
const Table* HostApi::find(const char* id, size_t v1_size) const {
  if (host_->get_extension == nullptr) return nullptr;
  const auto* table = static_cast<const Table*>(host_->get_extension(host_, id));
  // A table smaller than its version-1 size is unusable; treat it as absent.
  if (table == nullptr || table->struct_size < v1_size) return nullptr;
  return table;
}

std::string HostApi::missing_extensions() const {
  std::string missing;
  auto add = [&](const void* table, const char* id) {
    if (table != nullptr) return;
    if (!missing.empty()) missing += ", ";
    missing += id;
  };
  add(timers_, HDP_EXT_TIMERS);
  add(fds_, HDP_EXT_POSIX_FD);
  add(http_, HDP_EXT_HTTP);
  add(messages_, HDP_EXT_MESSAGES);
  add(attachments_, HDP_EXT_ATTACHMENTS);
  return missing;
}

void HostApi::log(int32_t level, const std::string& message) const {
  host_->log(host_, level, message.c_str());
}

bool HostApi::log_enabled(int32_t level) const {
  return host_->log_enabled(host_, level);
}

int64_t HostApi::wall_ms() const {
  return host_->wall_clock_us(host_) / kUsPerMs;
}

int64_t HostApi::monotonic_ms() const {
  return host_->monotonic_clock_us(host_) / kUsPerMs;
}

std::string_view HostApi::config() const {
  const uint8_t* data = nullptr;
  size_t size = 0;
  host_->get_config(host_, &data, &size);
  if (data == nullptr) return {};
  return {reinterpret_cast<const char*>(data), size};
}

std::string HostApi::data_dir() const {
  const char* dir = host_->get_data_dir(host_);
  return dir != nullptr ? std::string(dir) : std::string();
}

}  // namespace wavoip
