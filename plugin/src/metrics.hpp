// The plugin's metrics, through the host's optional hdp.metrics/1 extension. Without it (an older
// or smaller host), or when the host refuses a family, every call here is a no-op: metrics never
// change what the plugin does. Main thread only, like everything in the plugin.
#pragma once

#include "host_api.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace wavoip {

class PluginMetrics {
 public:
  // Names as the host shows them (it adds plugin="<plugin id>" to every series).
  static constexpr const char* kDeliveries = "wavoip_webhook_deliveries_total";
  static constexpr const char* kFetchAttempts = "wavoip_fetch_attempts_total";
  static constexpr const char* kFetchOutcomes = "wavoip_fetch_outcomes_total";
  static constexpr const char* kAttachments = "wavoip_attachments_total";
  static constexpr const char* kRecordingsFailed = "wavoip_recordings_failed_total";
  static constexpr const char* kPendingPolls = "wavoip_pending_polls";
  static constexpr const char* kReadyToAttached = "wavoip_ready_to_attached_seconds";
  static constexpr const char* kCommitBatch = "wavoip_webhook_commit_batch_size";

  // At most this many READY start times are kept; later ones are not timed until some finish.
  static constexpr size_t kMaxTimedCalls = 10000;

  // Registers the families (legal from the plugin's init to its stop).
  explicit PluginMetrics(const HostApi& host);
  PluginMetrics(const PluginMetrics&) = delete;
  PluginMetrics& operator=(const PluginMetrics&) = delete;

  // True when the host offers metrics and took at least one family.
  bool enabled() const;

  // One webhook answered: the event type once parsed (CALL, RECORD, DEVICE, "other" for any
  // other type, "none" when refused before parsing) and the HTTP status of the answer.
  void delivery(std::string_view type, uint16_t status);
  // One store batch (one transaction) wrote `deliveries` webhook deliveries.
  void commit_batch(size_t deliveries);
  // A download started (after its claim).
  void fetch_started();
  // A download finished: ready_file, not_ready, transient_error or permanent_error.
  void fetch_outcome(std::string_view kind);
  // An attachment finished (or was refused): ok or failed.
  void attachment(bool ok);
  // A call's recording went to failed: the plugin gave up.
  void recording_failed(const std::string& call_id);
  // Calls still waiting for a recording (waiting, fetching, attaching), from the store.
  void pending_polls(int64_t count);

  // A READY webhook started the call's download: its time on the host's monotonic clock is kept
  // in memory (the first one wins; a restart forgets it).
  void ready_received(const std::string& call_id);
  // The call's recording is attached: observes the seconds since ready_received, if known.
  void attached(const std::string& call_id);

  size_t timed_calls() const { return ready_at_us_.size(); }

 private:
  uint64_t add(uint32_t type, const char* name, const char* help, const char* const* labels, size_t label_count,
               const double* buckets = nullptr, size_t bucket_count = 0);
  void count(uint64_t id, const char* const* values, size_t value_count, double delta = 1);

  const HostApi& host_;
  const hdp_host_metrics_t* metrics_ = nullptr;
  uint64_t deliveries_ = 0;
  uint64_t fetch_attempts_ = 0;
  uint64_t fetch_outcomes_ = 0;
  uint64_t attachments_ = 0;
  uint64_t recordings_failed_ = 0;
  uint64_t pending_polls_ = 0;
  uint64_t ready_to_attached_ = 0;
  uint64_t commit_batch_ = 0;
  std::unordered_map<std::string, int64_t> ready_at_us_;
};

}  // namespace wavoip
