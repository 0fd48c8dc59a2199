#include "metrics.hpp"

#include <array>

namespace wavoip {

namespace {

// From a webhook to an attached recording: a download of seconds to minutes.
constexpr std::array<double, 11> kReadyBuckets = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
// Deliveries per store batch: 1 when idle, up to StoreWriter::kMaxBatch (256) under load.
constexpr std::array<double, 9> kBatchBuckets = {1, 2, 4, 8, 16, 32, 64, 128, 256};

}  // namespace

PluginMetrics::PluginMetrics(const HostApi& host) : host_(host), metrics_(host.metrics()) {
  if (metrics_ == nullptr) return;
  static constexpr const char* kTypeStatus[] = {"type", "status"};
  static constexpr const char* kKind[] = {"kind"};
  static constexpr const char* kResult[] = {"result"};
  deliveries_ = add(HDP_METRIC_COUNTER, kDeliveries,
                    "Webhook deliveries answered, by event type and HTTP status of the answer", kTypeStatus, 2);
  fetch_attempts_ = add(HDP_METRIC_COUNTER, kFetchAttempts, "Recording downloads started", nullptr, 0);
  fetch_outcomes_ = add(HDP_METRIC_COUNTER, kFetchOutcomes,
                        "Recording downloads finished, by outcome (ready_file, not_ready, transient_error, "
                        "permanent_error)",
                        kKind, 1);
  attachments_ =
      add(HDP_METRIC_COUNTER, kAttachments, "Recordings handed to the host as attachments, by result", kResult, 1);
  recordings_failed_ = add(HDP_METRIC_COUNTER, kRecordingsFailed,
                           "Calls whose recording was given up (deadline passed or permanent error)", nullptr, 0);
  pending_polls_ = add(HDP_METRIC_GAUGE, kPendingPolls,
                       "Calls still waiting for a recording (waiting, fetching or attaching); refreshed at start "
                       "and on poll timer runs, at most every 10 s",
                       nullptr, 0);
  ready_to_attached_ = add(HDP_METRIC_HISTOGRAM, kReadyToAttached,
                           "Seconds from the READY webhook that started a download to the recording attached", nullptr,
                           0, kReadyBuckets.data(), kReadyBuckets.size());
  commit_batch_ =
      add(HDP_METRIC_HISTOGRAM, kCommitBatch, "Webhook deliveries written by one database commit (group commit)",
          nullptr, 0, kBatchBuckets.data(), kBatchBuckets.size());
}

uint64_t PluginMetrics::add(uint32_t type, const char* name, const char* help, const char* const* labels,
                            size_t label_count, const double* buckets, size_t bucket_count) {
  hdp_metric_family_t family{};
  family.struct_size = sizeof(family);
  family.type = type;
  family.name = name;
  family.help = help;
  family.label_names = labels;
  family.label_count = label_count;
  family.buckets = buckets;
  family.bucket_count = bucket_count;
  uint64_t id = 0;
  hdp_status_t status = metrics_->register_metric(host_.raw(), &family, &id);
  if (status != HDP_OK) {
    host_.log(HDP_LOG_WARNING, std::string("[WaVoIP] The host refused the metric ") + name + " (status " +
                                   std::to_string(status) + "); it stays empty");
    return 0;
  }
  return id;
}

bool PluginMetrics::enabled() const {
  return metrics_ != nullptr &&
         (deliveries_ != 0 || fetch_attempts_ != 0 || fetch_outcomes_ != 0 || attachments_ != 0 ||
          recordings_failed_ != 0 || pending_polls_ != 0 || ready_to_attached_ != 0 || commit_batch_ != 0);
}

void PluginMetrics::count(uint64_t id, const char* const* values, size_t value_count, double delta) {
  if (metrics_ == nullptr || id == 0) return;
  metrics_->counter_add(host_.raw(), id, values, value_count, delta);
}

void PluginMetrics::delivery(std::string_view type, uint16_t status) {
  // The type comes from the sender: anything but the known ones is folded into "other", so a
  // sender cannot grow the number of series.
  const char* type_label = "other";
  if (type.empty()) {
    type_label = "none";
  } else if (type == "CALL") {
    type_label = "CALL";
  } else if (type == "RECORD") {
    type_label = "RECORD";
  } else if (type == "DEVICE") {
    type_label = "DEVICE";
  }
  const std::string status_text = std::to_string(status);
  const char* values[] = {type_label, status_text.c_str()};
  count(deliveries_, values, 2);
}

void PluginMetrics::commit_batch(size_t deliveries) {
  if (metrics_ == nullptr || commit_batch_ == 0) return;
  metrics_->histogram_observe(host_.raw(), commit_batch_, nullptr, 0, static_cast<double>(deliveries));
}

void PluginMetrics::fetch_started() {
  count(fetch_attempts_, nullptr, 0);
}

void PluginMetrics::fetch_outcome(std::string_view kind) {
  const std::string text(kind);
  const char* values[] = {text.c_str()};
  count(fetch_outcomes_, values, 1);
}

void PluginMetrics::attachment(bool ok) {
  const char* values[] = {ok ? "ok" : "failed"};
  count(attachments_, values, 1);
}

void PluginMetrics::recording_failed(const std::string& call_id) {
  ready_at_us_.erase(call_id);
  count(recordings_failed_, nullptr, 0);
}

void PluginMetrics::pending_polls(int64_t count_now) {
  if (metrics_ == nullptr || pending_polls_ == 0) return;
  metrics_->gauge_set(host_.raw(), pending_polls_, nullptr, 0, static_cast<double>(count_now));
}

void PluginMetrics::ready_received(const std::string& call_id) {
  if (metrics_ == nullptr || ready_to_attached_ == 0) return;
  if (ready_at_us_.size() >= kMaxTimedCalls && !ready_at_us_.contains(call_id)) return;
  ready_at_us_.emplace(call_id, host_.raw()->monotonic_clock_us(host_.raw()));
}

void PluginMetrics::attached(const std::string& call_id) {
  auto it = ready_at_us_.find(call_id);
  if (it == ready_at_us_.end()) return;
  const int64_t elapsed_us = host_.raw()->monotonic_clock_us(host_.raw()) - it->second;
  ready_at_us_.erase(it);
  if (metrics_ == nullptr || ready_to_attached_ == 0) return;
  metrics_->histogram_observe(host_.raw(), ready_to_attached_, nullptr, 0,
                              static_cast<double>(elapsed_us < 0 ? 0 : elapsed_us) / 1e6);
}

}  // namespace wavoip
