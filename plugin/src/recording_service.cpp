#include "recording_service.hpp"

#include <algorithm>
#include <filesystem>

namespace wavoip {

namespace fs = std::filesystem;

namespace {

int32_t to_host_level(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return HDP_LOG_DEBUG;
    case LogLevel::info: return HDP_LOG_INFO;
    case LogLevel::warning: return HDP_LOG_WARNING;
    case LogLevel::error: return HDP_LOG_ERROR;
  }
  return HDP_LOG_INFO;
}

}  // namespace

RecordingService::RecordingService(const HostApi& host, EventLoop& loop, StoreWriter& writer, const Config& config,
                                   std::string data_dir)
    : host_(host),
      loop_(loop),
      writer_(writer),
      config_(config),
      data_dir_(std::move(data_dir)),
      fetcher_(std::make_unique<RecordingFetcher>(loop, fetch_options(config))) {
  fs::create_directories(fs::path(data_dir_) / "downloads");
  fs::create_directories(fs::path(data_dir_) / "recordings");
}

RecordingService::~RecordingService() = default;

// Runs on the writer, inside the batch: one step of a known call's flow, with the download claim
// and release folded into the same transaction. A StartFetch whose claim fails (a download of
// the call is in flight or it is attached) is dropped.
std::optional<FlowResult> RecordingService::step_in_store(Store& store, const std::string& call_id,
                                                          const FlowInput& input, TimeMs now,
                                                          const std::string& message_id, const Config& config) {
  std::optional<FlowResult> result = store.apply_to_call(call_id, [&](const CallRecord& current) {
    // The host's message id rides along, so that after a restart the message is found without
    // an upsert.
    CallRecord record = current;
    if (!message_id.empty()) record.message_id = message_id;
    return step(record, input, now, config);
  });
  if (!result) return result;
  claim_or_drop_fetches(store, call_id, result->actions, now);
  return result;
}

void claim_or_drop_fetches(Store& store, const std::string& call_id, std::vector<Action>& actions, TimeMs now) {
  const size_t dropped = std::erase_if(actions, [&](const Action& action) {
    return std::holds_alternative<StartFetch>(action) && !store.claim_fetch(call_id, now);
  });
  if (dropped > 0) {
    actions.emplace_back(
        LogLine{LogLevel::debug, "[WaVoIP] Download of call " + call_id + " already in flight or done"});
  }
}

void RecordingService::job_started(const std::string& call_id) {
  unsettled(call_id);
}

void RecordingService::job_finished(const std::string& call_id) {
  settled(call_id);
}

void RecordingService::apply(const std::string& call_id, FlowInput input,
                             std::function<void(std::optional<FlowResult>)> then,
                             std::function<void(const std::string&)> failed) {
  if (stopping_) return;
  const TimeMs now = host_.wall_ms();
  std::string message_id;
  if (auto it = shown_.find(call_id); it != shown_.end() && it->second.message_id != 0) {
    message_id = std::to_string(it->second.message_id);
  }
  unsettled(call_id);
  writer_.submit(
      [this, call_id, input = std::move(input), now, message_id,
       then = std::move(then)](Store& store) mutable -> StoreWriter::Continuation {
        std::optional<FlowResult> result = step_in_store(store, call_id, input, now, message_id, config_);
        // A download that ended anywhere but in a file to attach gives its claim back.
        if (std::holds_alternative<FetchOutcome>(input) &&
            (!result || result->record.recording != RecordingState::attaching)) {
          store.release_fetch(call_id);
        }
        return [this, call_id, result = std::move(result), then = std::move(then)] {
          if (!result) host_.log(HDP_LOG_WARNING, "[WaVoIP] No such call " + call_id);
          if (result) carry_out(*result);
          if (then) then(result);
          settled(call_id);
        };
      },
      [this, call_id, failed = std::move(failed)](const std::string& why) {
        host_.log(HDP_LOG_ERROR, "[WaVoIP] Could not update call " + call_id + ": " + why);
        if (failed) failed(why);
        settled(call_id);
      });
}

void RecordingService::carry_out(const FlowResult& result) {
  if (stopping_) return;
  const CallRecord& record = result.record;
  bool fields = false;
  bool status = false;
  bool busy = false;
  std::vector<const StartFetch*> fetches;
  std::vector<const Attach*> attaches;
  for (const Action& action : result.actions) {
    std::visit(
        [&](const auto& a) {
          using T = std::decay_t<decltype(a)>;
          if constexpr (std::is_same_v<T, UpsertMessage>) {
            fields = true;
          } else if constexpr (std::is_same_v<T, SetRecordingStatus>) {
            if (a.status == RecordingState::failed) metrics_.recording_failed(a.call_id);
            // A poll answered 404, or a small recording fetched and attached, is over in
            // milliseconds: showing "downloading" for it would be host writes and a flicker
            // on the agent's screen for nothing. It is shown if the call is still busy
            // kShowBusyAfterMs later.
            busy = a.status == RecordingState::fetching || a.status == RecordingState::attaching;
            status = !busy;
          } else if constexpr (std::is_same_v<T, StartFetch>) {
            fetches.push_back(&a);
          } else if constexpr (std::is_same_v<T, Attach>) {
            attaches.push_back(&a);
          } else if constexpr (std::is_same_v<T, LogLine>) {
            host_.log(to_host_level(a.level), a.text);
          } else {
            // SchedulePoll and CancelPoll: the due times are in the store; the batch's
            // earliest due time re-arms the one timer.
          }
        },
        action);
  }
  if (busy) show_busy_later(record);
  if (status) not_busy(record.call_id);
  // The stored state, not the action's: the record is the one this step committed.
  if (fields || status)
    show(record, fields, status ? std::optional<int32_t>(to_host_status(record.recording)) : std::nullopt);
  for (const StartFetch* fetch : fetches) start_fetch(*fetch);
  for (const Attach* attach_action : attaches) attach(*attach_action, record);
}

void RecordingService::retry(const std::string& call_id, std::function<void(RetryAnswer)> answer) {
  auto answered = std::make_shared<std::function<void(RetryAnswer)>>(std::move(answer));
  apply(
      call_id, ManualRetry{},
      [answered](std::optional<FlowResult> result) {
        (*answered)(result ? RetryAnswer::retrying : RetryAnswer::unknown_call);
      },
      [answered](const std::string&) { (*answered)(RetryAnswer::store_failed); });
}

void RecordingService::shutdown() {
  stopping_ = true;
  deferred_fetches_.clear();
  attach_jobs_.clear();
  fetcher_.reset();  // abandons transfers; their partial files are removed
  busy_timer_ = 0;
  busy_.clear();
  busy_at_.clear();
  sync_timer_ = 0;
  to_clear_.clear();
  poll_timer_ = 0;
  poll_timer_due_.reset();
  message_waiters_.clear();
}

}  // namespace wavoip
