#include "recording_service.hpp"

#include <algorithm>

namespace wavoip {

void RecordingService::unsettled(const std::string& call_id) {
  ++unsettled_[call_id];
}

void RecordingService::settled(const std::string& call_id) {
  auto it = unsettled_.find(call_id);
  if (it == unsettled_.end()) return;
  if (--it->second > 0) return;
  unsettled_.erase(it);
  if (needs_clear_.erase(call_id) == 0 || stopping_) return;
  // Nothing of this call is outstanding and the host shows its last committed change: its mark
  // goes, with the others of this turn, in one job at the turn's end.
  to_clear_.push_back(call_id);
  if (sync_timer_ == 0) {
    sync_timer_ = loop_.start_timer(0, [this] {
      sync_timer_ = 0;
      clear_sync_marks();
    });
  }
}

void RecordingService::shown_ok(const std::string& call_id) {
  needs_clear_.insert(call_id);
  // A host write that completed in the call (hdp.messages/1) settles at once.
  unsettled(call_id);
  settled(call_id);
}

void RecordingService::shown_failed(const std::string& call_id) {
  needs_clear_.erase(call_id);
}

void RecordingService::anonymous_job_started() {
  ++anonymous_jobs_;
}

void RecordingService::anonymous_job_finished() {
  if (anonymous_jobs_ > 0) --anonymous_jobs_;
  // At once: under a drain the next poll batch may be queued before a timer would fire.
  if (anonymous_jobs_ == 0 && !to_clear_.empty() && !stopping_) clear_sync_marks();
}

void RecordingService::clear_sync_marks() {
  // A job that may step any call (the poll batch, the resume) is queued before the clearing
  // would be: it may have marked one of these calls again. Cleared once it has run.
  if (anonymous_jobs_ > 0) return;
  std::vector<std::string> ids;
  ids.swap(to_clear_);
  // A call that became busy again since keeps its mark: its own settling clears it.
  std::erase_if(ids, [&](const std::string& id) { return unsettled_.count(id) != 0; });
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (ids.empty() || stopping_) return;
  writer_.submit(
      [ids = std::move(ids)](Store& store) -> StoreWriter::Continuation {
        store.mark_host_synced(ids);
        return {};
      },
      [this](const std::string& why) {
        host_.log(HDP_LOG_WARNING, "[WaVoIP] Could not clear host sync marks: " + why);
      });
}

}  // namespace wavoip
