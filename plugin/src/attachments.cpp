#include "recording_service.hpp"

#include <wavoip/core/recording_url.hpp>

#include <filesystem>
#include <system_error>

namespace wavoip {

namespace fs = std::filesystem;

void RecordingService::attach_failed(const std::string& call_id, const std::string& detail) {
  metrics_.attachment(false);
  apply(call_id, AttachOutcome{false, {}, detail}, {}, {}, true);
}

void RecordingService::attach(const Attach& action, const CallRecord& record) {
  with_message(record, [this, action, record](std::optional<uint64_t> message) {
    if (stopping_) return;
    if (!message) {
      attach_failed(action.call_id, "the host could not create the call's message");
      return;
    }
    const std::string key = external_key(action.call_id);
    const std::string file_name = "call-" + percent_encode(action.call_id) + "." + extension_for(action.content_type);
    hdp_attachment_t attachment{};
    attachment.struct_size = sizeof(attachment);
    attachment.message_id = *message;
    attachment.file_path = action.file_path.c_str();
    attachment.file_name = file_name.c_str();
    attachment.mime_type = action.content_type.c_str();
    attachment.idempotency_key = key.c_str();
    uint64_t job = 0;
    hdp_status_t status =
        host_.attachments()->attach_file(host_.raw(), &attachment, &RecordingService::on_attach_done, this, &job);
    if (status != HDP_OK) {
      attach_failed(action.call_id, "the host refused the attachment (status " + std::to_string(status) + ")");
      return;
    }
    attach_jobs_[job] = AttachJob{action.call_id, action.file_path, record};
  });
}

void RecordingService::on_attach_done(void* user_data, const hdp_attachment_result_t* result) {
  auto* self = static_cast<RecordingService*>(user_data);
  without_exceptions(self->host_, "attachment callback", [&] { self->attach_done(result->job_id, *result); });
}

void RecordingService::attach_done(uint64_t job_id, const hdp_attachment_result_t& result) {
  auto it = attach_jobs_.find(job_id);
  if (it == attach_jobs_.end()) return;
  AttachJob job = std::move(it->second);
  attach_jobs_.erase(it);
  if (result.status == HDP_ERR_CANCELLED || stopping_) return;  // resumed after the restart
  if (result.status != HDP_OK) {
    attach_failed(job.call_id, "host status " + std::to_string(result.status));
    return;
  }
  metrics_.attachment(true);
  metrics_.attached(job.call_id);
  const std::string attachment_id = std::to_string(result.attachment_id);
  const TimeMs now = host_.wall_ms();
  const std::optional<std::int64_t> held = held_claim(job.call_id);
  if (!held) {
    // Another node took the call over (this node's lease ended): it attaches the recording under
    // the same idempotency key, so the host keeps one attachment; nothing of this one is written.
    claim_lost(job.call_id, std::nullopt);
    std::error_code ec;
    fs::remove(job.file_path, ec);
    return;
  }
  // The host has the file under the call's key now: the agent sees it at once, while the
  // plugin's record of it is written. The status is the one the step below will commit (the
  // pure step, run here on the record the attaching step committed); should that write fail or
  // the claim be lost, the attachment is still on the host, so "attached" stays true, and a
  // restart attaches again under the same key. The step's own show then finds it shown.
  const FlowResult shown_now = step(job.record, AttachOutcome{true, attachment_id, {}}, now, config_);
  if (shown_now.record.recording == RecordingState::attached) {
    not_busy(job.call_id);
    show(shown_now.record, false, to_host_status(RecordingState::attached));
  }
  unsettled(job.call_id);
  // The attachment's record and the step that follows from it: one transaction, under the claim.
  writer_.submit(
      [this, job, attachment_id, now, held](Store& store) -> StoreWriter::Continuation {
        StepResult step =
            step_in_store(store, job.call_id, AttachOutcome{true, attachment_id, {}}, now, {}, config_, claims_, held);
        const bool first = step.result && store.mark_attached(job.call_id, attachment_id, now);
        return [this, job, held, first, step = std::move(step)] {
          if (step.result && !first) host_.log(HDP_LOG_INFO, "[WaVoIP] Call " + job.call_id + " was already attached");
          note_claim(job.call_id, held, step);
          if (step.result) carry_out(*step.result);
          std::error_code ec;
          fs::remove(job.file_path, ec);
          settled(job.call_id);
        };
      },
      [this, call_id = job.call_id, held](const std::string& why) {
        // Still attaching in the store: once the claim lapsed, the call is taken over and
        // attached again with its file (the key makes it safe), or after a restart.
        host_.log(HDP_LOG_ERROR, "[WaVoIP] Could not record the attachment of call " + call_id + ": " + why);
        let_claim_lapse(call_id, *held);
        settled(call_id);
      });
}

}  // namespace wavoip
