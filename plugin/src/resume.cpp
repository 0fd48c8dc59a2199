#include "recording_service.hpp"

#include <wavoip/core/payload.hpp>
#include <wavoip/core/recording_url.hpp>

#include <filesystem>
#include <system_error>

namespace wavoip {

namespace fs = std::filesystem;

namespace {

constexpr size_t kResumeBatch = 256;

}  // namespace

void RecordingService::resume() {
  struct Resumed {
    std::int64_t dropped = 0;
    size_t removed = 0;
    std::vector<std::pair<FlowResult, std::optional<std::int64_t>>> restarted;  // with the claim taken
    std::vector<CallRecord> behind;
    std::int64_t pending = 0;
    std::int64_t replayed = 0;
  };
  const TimeMs now = host_.wall_ms();
  anonymous_job_started();
  // Before the host serves anything: a plugin that reports ready has taken up its work again.
  writer_.run_now(
      [this, now, data_dir = data_dir_](Store& store) -> StoreWriter::Continuation {
        auto out = std::make_shared<Resumed>();
        // First the deliveries stored before a crash whose steps had not reached their calls'
        // rows (SQLite's write-back): every decision below reads those rows.
        out->replayed =
            store.replay_unsaved([this](const CallRecord& current, std::string_view raw_body, std::string_view inbox,
                                        TimeMs received_at) -> std::optional<FlowResult> {
              ParseResult parsed = parse_event(raw_body, config_.parse_limits());
              if (!parsed) return std::nullopt;
              return step_delivery(current, *parsed, inbox, received_at, config_);
            });
        // Alone on its store, this node's previous run held every claim. On a shared store the
        // claims of a previous run are left to end: any node takes them over then (poll timer).
        if (!claims_.shared) out->dropped = store.release_all_claims();
        // No download runs yet, so every partial file is left over from an interrupted one.
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(fs::path(data_dir) / "downloads", ec)) {
          std::error_code remove_ec;
          if (entry.path().extension() == ".part" && fs::remove(entry.path(), remove_ec)) ++out->removed;
        }
        // A complete download is kept only while its call is attaching with exactly this file;
        // any other file is left over from a crash between the download and its attachment.
        // The file names are percent_encode(call id); one that does not decode is no call's.
        for (const auto& entry : fs::directory_iterator(fs::path(data_dir) / "recordings", ec)) {
          const std::optional<std::string> call_id = percent_decode(entry.path().stem().string());
          std::optional<CallRecord> record = call_id ? store.load_call(*call_id) : std::nullopt;
          const bool needed = record && record->recording == RecordingState::attaching &&
                              fs::path(record->recording_file).filename() == entry.path().filename();
          std::error_code remove_ec;
          if (!needed && fs::remove(entry.path(), remove_ec)) ++out->removed;
        }
        std::string after;
        while (!claims_.shared) {
          std::vector<CallRecord> page = store.calls_needing_resume(kResumeBatch, after);
          if (page.empty()) break;
          for (const CallRecord& record : page) {
            StepResult step = step_in_store(store, record.call_id, Resume{have_file(record)}, now, record.message_id,
                                            config_, claims_, std::nullopt);
            if (step.result) out->restarted.emplace_back(std::move(*step.result), step.fence);
          }
          after = page.back().call_id;
        }
        after.clear();
        for (;;) {
          std::vector<CallRecord> page = store.calls_behind_host(kResumeBatch, after);
          if (page.empty()) break;
          after = page.back().call_id;
          for (CallRecord& record : page) out->behind.push_back(std::move(record));
        }
        out->pending = store.count_pending();
        return [this, out] {
          for (const auto& [result, fence] : out->restarted) carry_out(result, fence);
          for (const CallRecord& record : out->behind) {
            // Shown whole: the crash may have kept the message itself from the host.
            show(record, true, to_host_status(record.recording));
          }
          metrics_.pending_polls(out->pending);
          host_.log(HDP_LOG_INFO, "[WaVoIP] Resumed: " + std::to_string(out->restarted.size()) +
                                      " download(s) or attachment(s) restarted, " + std::to_string(out->dropped) +
                                      " stale claim(s) voided, " + std::to_string(out->removed) +
                                      " leftover file(s) removed, " + std::to_string(out->behind.size()) +
                                      " call(s) shown again on the host, " + std::to_string(out->pending) +
                                      " call(s) still waiting for a recording, " + std::to_string(out->replayed) +
                                      " stored delivery(ies) applied again");
          arm_rescan();
          anonymous_job_finished();
        };
      },
      [this](const std::string& why) {
        host_.log(HDP_LOG_ERROR, "[WaVoIP] Could not resume: " + why);
        anonymous_job_finished();
      });
}

}  // namespace wavoip
