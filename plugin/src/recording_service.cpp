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
                                   std::string data_dir, ClaimSettings claims)
    : host_(host),
      loop_(loop),
      writer_(writer),
      config_(config),
      data_dir_(std::move(data_dir)),
      claims_(std::move(claims)),
      fetcher_(make_downloader()) {
  fs::create_directories(fs::path(data_dir_) / "downloads");
  fs::create_directories(fs::path(data_dir_) / "recordings");
}

RecordingService::~RecordingService() = default;

// Runs on the writer, inside the batch: one step of a known call's flow, with the claim on its
// work taken or given back in the same transaction (settle_claim).
RecordingService::StepResult RecordingService::step_in_store(Store& store, const std::string& call_id,
                                                             const FlowInput& input, TimeMs now,
                                                             const std::string& message_id, const Config& config,
                                                             const ClaimSettings& claims,
                                                             std::optional<std::int64_t> held) {
  const auto fn = [&](const CallRecord& current) {
    // The host's message id rides along, so that after a restart the message is found without
    // an upsert.
    CallRecord record = current;
    if (!message_id.empty()) record.message_id = message_id;
    return step(record, input, now, config);
  };
  StepResult out;
  if (held) {
    // The claim ends in the step's own write once the call has no work in flight.
    out.result = store.apply_to_claimed_call(call_id, *held, Store::ClaimAfter::release_unless_busy, fn);
    out.lost = !out.result;
    if (out.result && out.result->record.busy()) out.fence = held;
    return out;
  }
  out.result = store.apply_to_call(call_id, fn);
  if (out.result) out.fence = settle_claim(store, claims, out.result->record, out.result->actions, now);
  return out;
}

std::optional<std::int64_t> settle_claim(Store& store, const ClaimSettings& claims, const CallRecord& record,
                                         std::vector<Action>& actions, TimeMs now) {
  const auto is_work = [](const Action& action) {
    return std::holds_alternative<StartFetch>(action) || std::holds_alternative<Attach>(action);
  };
  if (std::none_of(actions.begin(), actions.end(), is_work)) return std::nullopt;
  std::optional<Store::Claim> claim = store.claim_call(record.call_id, claims.owner, now, claims.lease_ms);
  if (!claim) {
    std::erase_if(actions, is_work);
    actions.emplace_back(LogLine{LogLevel::debug, "[WaVoIP] Recording of call " + record.call_id +
                                                      " already in the works (here or on another node) or done"});
    return std::nullopt;
  }
  // Work asked for on a call the step left idle would keep the claim for nothing.
  if (!record.busy()) {
    store.release_claim(record.call_id, claim->fence);
    return std::nullopt;
  }
  return claim->fence;
}

bool RecordingService::have_file(const CallRecord& record) {
  std::error_code ec;
  return !record.recording_file.empty() && fs::exists(record.recording_file, ec);
}

std::optional<std::int64_t> RecordingService::held_claim(const std::string& call_id) const {
  auto it = held_.find(call_id);
  if (it == held_.end()) return std::nullopt;
  return it->second;
}

void RecordingService::note_claim(const std::string& call_id, std::optional<std::int64_t> held,
                                  const StepResult& step) {
  if (step.lost) {
    // On a store this node owns alone, no other node exists: the claim was let go when an
    // earlier write of it failed, and the poll timer takes the call up again.
    host_.log(HDP_LOG_WARNING,
              "[WaVoIP] Call " + call_id +
                  (claims_.shared ? ": another node took over this node's claim (its lease ended); this node's "
                                    "outcome is dropped"
                                  : ": this node's claim on it had lapsed after a failed write; the outcome is "
                                    "dropped and the call is taken up again"));
  }
  if (step.fence) {
    held_[call_id] = *step.fence;
    arm_renewal();
  } else if (held || step.lost) {
    // Given back in the step, or lost: unless a newer claim of this node replaced it meanwhile.
    auto it = held_.find(call_id);
    if (it != held_.end() && (!held || it->second == *held)) held_.erase(it);
    if (held_.empty() && renewal_timer_ != 0) {
      loop_.cancel_timer(renewal_timer_);
      renewal_timer_ = 0;
    }
  }
}

void RecordingService::let_claim_lapse(const std::string& call_id, std::int64_t held) {
  // Renewed on, the claim would keep the call from this node's poll timer and every other node
  // until a restart; lapsed, the call is taken over (its work done again) once the lease ends.
  host_.log(HDP_LOG_WARNING, "[WaVoIP] Call " + call_id +
                                 ": this node lets its claim lapse; the call is taken up again when its lease ends");
  note_claim(call_id, held, StepResult{});
}

void RecordingService::claim_lost(const std::string& call_id, std::optional<std::int64_t> held) {
  StepResult step;
  step.lost = true;
  note_claim(call_id, held, step);
}

void RecordingService::arm_renewal() {
  if (renewal_timer_ != 0 || held_.empty() || stopping_) return;
  const auto every = static_cast<uint64_t>(std::max<TimeMs>(claims_.lease_ms / 3, 1));
  renewal_timer_ = loop_.start_timer(every, [this] {
    renewal_timer_ = 0;
    renew_claims();
  });
}

void RecordingService::renew_claims() {
  if (stopping_ || held_.empty()) return;
  std::vector<std::pair<std::string, std::int64_t>> claims(held_.begin(), held_.end());
  const TimeMs until = host_.wall_ms() + claims_.lease_ms;
  anonymous_job_started();
  writer_.submit(
      [this, claims = std::move(claims), until](Store& store) -> StoreWriter::Continuation {
        std::vector<std::pair<std::string, std::int64_t>> lost;
        for (const auto& [call_id, fence] : claims) {
          if (!store.renew_claim(call_id, fence, until)) lost.emplace_back(call_id, fence);
        }
        return [this, lost = std::move(lost)] {
          for (const auto& [call_id, fence] : lost) claim_lost(call_id, fence);
          arm_renewal();
          anonymous_job_finished();
        };
      },
      [this](const std::string& why) {
        host_.log(HDP_LOG_ERROR, "[WaVoIP] Could not renew this node's claims: " + why);
        arm_renewal();
        anonymous_job_finished();
      });
}

void RecordingService::job_started(const std::string& call_id) {
  unsettled(call_id);
}

void RecordingService::job_finished(const std::string& call_id) {
  settled(call_id);
}

void RecordingService::apply(const std::string& call_id, FlowInput input,
                             std::function<void(std::optional<FlowResult>)> then,
                             std::function<void(const std::string&)> failed, bool claimed) {
  if (stopping_) return;
  const TimeMs now = host_.wall_ms();
  std::string message_id;
  if (auto it = shown_.find(call_id); it != shown_.end() && it->second.message_id != 0) {
    message_id = std::to_string(it->second.message_id);
  }
  const std::optional<std::int64_t> held = claimed ? held_claim(call_id) : std::nullopt;
  if (claimed && !held) {
    // The claim was lost before the outcome came (a renewal found another node's claim): the
    // other node does the work; nothing of this one is written.
    claim_lost(call_id, std::nullopt);
    if (then) then(std::nullopt);
    return;
  }
  unsettled(call_id);
  writer_.submit(
      // A batch may run its jobs more than once (see Store::run_batch): each run's continuation
      // gets its own copy of `then`.
      [this, call_id, input = std::move(input), now, message_id, held,
       then = std::move(then)](Store& store) -> StoreWriter::Continuation {
        StepResult result = step_in_store(store, call_id, input, now, message_id, config_, claims_, held);
        return [this, call_id, held, result = std::move(result), then] {
          if (!result.result && !result.lost) host_.log(HDP_LOG_WARNING, "[WaVoIP] No such call " + call_id);
          note_claim(call_id, held, result);
          if (result.result) carry_out(*result.result);
          if (then) then(result.result);
          settled(call_id);
        };
      },
      [this, call_id, held, failed = std::move(failed)](const std::string& why) {
        host_.log(HDP_LOG_ERROR, "[WaVoIP] Could not update call " + call_id + ": " + why);
        if (held) let_claim_lapse(call_id, *held);
        if (failed) failed(why);
        settled(call_id);
      });
}

void RecordingService::carry_out(const FlowResult& result, std::optional<std::int64_t> fence) {
  if (stopping_) return;
  if (fence) {
    StepResult step;
    step.fence = fence;
    note_claim(result.record.call_id, std::nullopt, step);
  }
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
  for (const StartFetch* fetch : fetches) start_fetch(*fetch, record);
  for (const Attach* attach_action : attaches) {
    if (attached_early_.erase(attach_action->call_id) != 0) continue;  // on its way to the host already
    attach(*attach_action, record);
  }
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
  downloading_.clear();
  attached_early_.clear();
  attach_jobs_.clear();
  fetcher_.reset();  // abandons transfers (joining the fetch thread); their partial files are removed
  busy_timer_ = 0;
  busy_.clear();
  busy_at_.clear();
  sync_timer_ = 0;
  to_clear_.clear();
  poll_timer_ = 0;
  poll_timer_due_.reset();
  rescan_timer_ = 0;
  renewal_timer_ = 0;
  held_.clear();  // their leases end by themselves
  message_waiters_.clear();
}

}  // namespace wavoip
