#include "wavoip/core/flow.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "wavoip/core/recording_url.hpp"

namespace wavoip {
namespace {

constexpr std::array<std::pair<std::string_view, RecordingState>, 8> kStateNames{{
    {"none", RecordingState::none},
    {"waiting", RecordingState::waiting},
    {"fetching", RecordingState::fetching},
    {"attaching", RecordingState::attaching},
    {"attached", RecordingState::attached},
    {"empty", RecordingState::empty},
    {"disabled", RecordingState::disabled},
    {"failed", RecordingState::failed},
}};

// Reasons an agent reads next to the call. Kept here so they are consistent and testable.
constexpr std::string_view kReasonWaiting = "Waiting for WaVoIP to finish the recording";
constexpr std::string_view kReasonRecording = "WaVoIP is recording the call";
constexpr std::string_view kReasonMixing = "WaVoIP is processing the recording";
constexpr std::string_view kReasonFetching = "Downloading the recording";
constexpr std::string_view kReasonAttaching = "Attaching the recording";
constexpr std::string_view kReasonDisabled = "Recording is disabled for this WaVoIP device";
constexpr std::string_view kReasonEmpty = "Call too short: WaVoIP made no recording";

bool is_call_end(CallStatus s) {
  switch (s) {
    case CallStatus::ended:
    case CallStatus::rejected:
    case CallStatus::not_answered:
    case CallStatus::failed:
    case CallStatus::handled_remotely:
    case CallStatus::connection_lost: return true;
    default: return false;
  }
}

// For calls that never connected on this device there is nothing to record: say why instead
// of polling for 4 hours and then reporting a failure. Shown next to a "no recording" status, so
// the reason only says why.
std::optional<std::string_view> no_recording_reason(CallStatus end_status) {
  switch (end_status) {
    case CallStatus::rejected: return "The call was rejected";
    case CallStatus::not_answered: return "The call was not answered";
    case CallStatus::handled_remotely: return "The call was answered on another device";
    default: return std::nullopt;
  }
}

// The working state of one step: the record being changed and the actions emitted so far.
class Step {
 public:
  Step(const CallRecord& current, TimeMs now, const Config& config)
      : before_(current), r_(current), now_(now), config_(config), policy_(config.backoff_policy()) {}

  void on(const CallEvent& ev) {
    if (!same_call(ev.call_id)) return;
    merge_call_fields(ev);
    if (ev.status) apply_call_status(ev.status->code, ev.status->text);
    if (before_.ended() && !before_.answered && r_.answered && r_.recording == RecordingState::none) {
      // The call ended unanswered, and now a late delivery (a positive duration) says it was
      // connected after all: there may be audio, so poll for it from the call's end.
      start_polling(*r_.ended_at);
    }
    if (ev.record_status) apply_record_status(ev.record_status->code, ev.record_status->text);
    upsert_message_if_needed();
  }

  void on(const RecordEvent& ev) {
    if (!same_call(ev.call_id)) return;
    if (ev.session_id) r_.session_id = *ev.session_id;
    if (ev.record_url) r_.record_url = *ev.record_url;
    apply_record_status(ev.record_status.code, ev.record_status.text);
    upsert_message_if_needed();
  }

  void on(const FetchOutcome& o) {
    if (r_.recording != RecordingState::fetching) {
      log(LogLevel::warning,
          "ignoring a download result for call " + r_.call_id + " in state " + std::string(to_string(r_.recording)));
      return;
    }
    ++r_.attempt;
    r_.last_result = describe(o);
    switch (o.kind) {
      case FetchKind::ready_file:
        r_.recording_file = o.file_path;
        r_.content_type = o.content_type;
        r_.recording_bytes = o.bytes;
        set_status(RecordingState::attaching, kReasonAttaching);
        emit(Attach{r_.call_id, r_.recording_file, r_.content_type, r_.recording_bytes});
        break;
      case FetchKind::not_ready: retry_later(std::string(kReasonWaiting), r_.last_result); break;
      case FetchKind::transient_error:
        retry_later((o.http_status >= 400 ? plain_failure(o) : std::string("Download failed")) + ", will retry",
                    r_.last_result);
        break;
      case FetchKind::permanent_error:
        // An HTTP refusal in plain words, its code as the technical detail; a guard's or a
        // transport's detail is in plain words already.
        if (o.http_status >= 400) {
          fail(plain_failure(o), r_.last_result);
        } else {
          fail("Could not download the recording: " + r_.last_result);
        }
        break;
    }
  }

  void on(const AttachOutcome& a) {
    if (r_.recording != RecordingState::attaching) {
      log(LogLevel::warning,
          "ignoring an attach result for call " + r_.call_id + " in state " + std::string(to_string(r_.recording)));
      return;
    }
    if (a.ok) {
      set_status(RecordingState::attached, "");
      log(LogLevel::info,
          "[WaVoIP Recording Webhook] \u2705 Recording attached successfully (call " + r_.call_id + ")");
      return;
    }
    r_.last_result = "attach failed: " + a.detail;
    retry_later("Attaching the recording failed, will retry (" + a.detail + ")", "");
  }

  void on(const PollDue&) {
    if (r_.recording != RecordingState::waiting) {
      // Only a waiting call has a due time; one left on any other state (an older version, a
      // hand-edited file) is consumed here, or the poll timer would find the same row forever.
      if (r_.next_attempt_at && *r_.next_attempt_at <= now_) {
        r_.next_attempt_at.reset();
        log(LogLevel::warning,
            "dropped a stale poll of call " + r_.call_id + " in state " + std::string(to_string(r_.recording)));
      }
      return;
    }
    if (r_.next_attempt_at && *r_.next_attempt_at > now_) return;  // timer fired early
    r_.next_attempt_at.reset();                                    // this poll is being consumed: nothing to cancel
    start_fetch();
  }

  void on(const ManualRetry&) {
    if (r_.recording != RecordingState::none && r_.recording != RecordingState::waiting &&
        r_.recording != RecordingState::failed) {
      log(LogLevel::info,
          "manual retry ignored for call " + r_.call_id + ": recording is " + std::string(to_string(r_.recording)));
      return;
    }
    log(LogLevel::info, "manual retry for call " + r_.call_id);
    open_window(now_);
    start_fetch();
  }

  void on(const Resume& resume) {
    // The state is already durable; only the side effect that was in flight is repeated.
    if (r_.recording == RecordingState::attaching && !resume.have_file) {
      // The file is on the node that downloaded it (which died) or gone: download it again.
      log(LogLevel::info, "call " + r_.call_id + " was attaching a file this node does not have; downloading again");
      r_.recording = RecordingState::fetching;
      r_.recording_file.clear();
    }
    if (r_.recording == RecordingState::fetching) emit(StartFetch{r_.call_id, fetch_url()});
    if (r_.recording == RecordingState::attaching) {
      emit(Attach{r_.call_id, r_.recording_file, r_.content_type, r_.recording_bytes});
    }
  }

  FlowResult finish() && {
    if (r_.created_at == 0) r_.created_at = now_;
    if (!(r_ == before_)) r_.updated_at = now_;
    return FlowResult{std::move(r_), std::move(actions_)};
  }

 private:
  bool same_call(const std::string& call_id) {
    if (call_id == r_.call_id) return true;
    log(LogLevel::error, "event for call " + call_id + " applied to call " + r_.call_id + "; ignored");
    return false;
  }

  void merge_call_fields(const CallEvent& ev) {
    if (ev.caller) r_.caller = *ev.caller;
    if (ev.receiver) r_.receiver = *ev.receiver;
    if (ev.session_id) r_.session_id = *ev.session_id;
    if (!ev.call_kind.empty()) r_.call_kind = ev.call_kind;
    if (ev.direction && ev.direction->code != CallDirection::unknown) r_.direction = ev.direction->code;
    if (ev.duration_s) {
      // Deliveries arrive out of order: the longest duration seen is the latest truth.
      r_.duration_s = std::max(r_.duration_s.value_or(0), *ev.duration_s);
      if (*ev.duration_s > 0) r_.answered = true;
    }
  }

  void apply_call_status(CallStatus code, const std::string& text) {
    if (r_.ended()) return;  // a late ACTIVE (or a second end status) after the end changes nothing
    r_.call_status = text;
    if (code == CallStatus::active) r_.answered = true;
    if (is_call_end(code)) end_call(code);
  }

  void end_call(CallStatus code) {
    r_.ended_at = now_;
    if (r_.recording == RecordingState::none) {
      auto why_none = no_recording_reason(code);
      if (why_none && !r_.answered && !config_.poll.unanswered_calls) {
        set_status(RecordingState::none, *why_none);
        return;
      }
      start_polling(now_);
    } else if (r_.recording == RecordingState::waiting && r_.attempt == 0) {
      // The safety-net poll was anchored to when RECORDING arrived; the call's end is the
      // real anchor of the schedule and of the 4-hour deadline.
      open_window(now_);
      schedule_poll(policy_.first_poll_at(now_, r_.call_id));
    }
  }

  void apply_record_status(RecordStatus code, const std::string& text) {
    const RecordingState s = r_.recording;
    const bool open = s == RecordingState::none || s == RecordingState::waiting || s == RecordingState::failed;
    switch (code) {
      case RecordStatus::recording:
      case RecordStatus::mixing:
        if (s != RecordingState::none && s != RecordingState::waiting) return;  // forward only
        if (!r_.next_attempt_at) {
          // No webhook may ever follow: poll anyway, anchored to the call's end when known.
          const TimeMs anchor = r_.ended_at.value_or(now_);
          if (!r_.deadline_at) open_window(anchor);
          schedule_poll(policy_.first_poll_at(anchor, r_.call_id));
        }
        set_status(RecordingState::waiting, code == RecordStatus::recording ? kReasonRecording : kReasonMixing);
        return;
      case RecordStatus::ready:
        log(LogLevel::info, "[WaVoIP Webhook] Recording READY for call " + r_.call_id);
        if (!open) return;  // already fetching, attached, or final
        if (s == RecordingState::failed || !r_.deadline_at) open_window(now_);
        start_fetch();
        return;
      case RecordStatus::disabled:
      case RecordStatus::empty_recording:
        if (!open) return;
        cancel_poll();
        set_status(code == RecordStatus::disabled ? RecordingState::disabled : RecordingState::empty,
                   code == RecordStatus::disabled ? kReasonDisabled : kReasonEmpty);
        return;
      case RecordStatus::unknown:
        log(LogLevel::warning, "unknown record_status '" + text + "' for call " + r_.call_id + "; ignored");
        return;
    }
  }

  // The call ended and no recording decision came: poll from `ended_at` on.
  void start_polling(TimeMs ended_at) {
    open_window(ended_at);
    schedule_poll(policy_.first_poll_at(ended_at, r_.call_id));
    set_status(RecordingState::waiting, kReasonWaiting);
  }

  // After a download that found nothing (or failed for now): next poll, or give up. `detail` is
  // the technical part shown while waiting; giving up always shows the last answer.
  void retry_later(const std::string& reason, const std::string& detail) {
    if (!r_.deadline_at) open_window(r_.ended_at.value_or(now_));
    if (auto next = policy_.next_attempt_at(r_.attempt, now_, *r_.deadline_at, r_.call_id)) {
      schedule_poll(*next);
      set_status(RecordingState::waiting, reason, detail);
      return;
    }
    fail("No recording after " + format_span(policy_.settings().deadline_s) + " (" + std::to_string(r_.attempt) +
             (r_.attempt == 1 ? " attempt" : " attempts") + ")",
         r_.last_result);
  }

  void fail(const std::string& reason, const std::string& detail = {}) {
    r_.next_attempt_at.reset();
    set_status(RecordingState::failed, reason, detail);
    log(LogLevel::warning, "recording failed for call " + r_.call_id + ": " + reason +
                               (detail.empty() ? std::string() : "; last answer: " + detail));
  }

  void start_fetch() {
    cancel_poll();
    set_status(RecordingState::fetching, kReasonFetching);
    emit(StartFetch{r_.call_id, fetch_url()});
  }

  std::string fetch_url() {
    const UrlPolicy policy = config_.url_policy();
    if (!r_.record_url.empty()) {
      if (auto why = url_refusal(r_.record_url, policy)) {
        log(LogLevel::warning, "record_url of call " + r_.call_id + " refused (" + *why + "); using base_url");
      }
    }
    return choose_recording_url(config_.base_url, policy, r_.call_id,
                                r_.record_url.empty() ? std::nullopt : std::optional<std::string_view>(r_.record_url));
  }

  // A new polling window: attempts count from zero, the deadline from `anchor`.
  void open_window(TimeMs anchor) {
    r_.attempt = 0;
    r_.deadline_at = policy_.deadline_for(anchor);
  }

  void schedule_poll(TimeMs at) {
    if (r_.next_attempt_at == at) return;
    r_.next_attempt_at = at;
    emit(SchedulePoll{r_.call_id, at});
  }

  void cancel_poll() {
    if (!r_.next_attempt_at) return;
    r_.next_attempt_at.reset();
    emit(CancelPoll{r_.call_id});
  }

  // Changes the state and tells the host, once per visible change.
  void set_status(RecordingState state, std::string_view reason, std::string_view detail = {}) {
    if (r_.recording == state && r_.reason == reason && r_.reason_detail == detail) return;
    r_.recording = state;
    r_.reason = std::string(reason);
    r_.reason_detail = std::string(detail);
    emit(SetRecordingStatus{r_.call_id, state, r_.reason, r_.reason_detail});
  }

  void upsert_message_if_needed() {
    const bool visible_change = r_.contact() != before_.contact() || r_.direction != before_.direction ||
                                r_.call_status != before_.call_status || r_.duration_s != before_.duration_s;
    if (r_.message_requested && !visible_change) return;
    r_.message_requested = true;
    // First, so that the message exists before its recording status is set.
    actions_.insert(actions_.begin(),
                    UpsertMessage{r_.call_id, r_.inbox, r_.contact(), r_.direction, r_.call_status, r_.duration_s});
  }

  void log(LogLevel level, std::string text) { emit(LogLine{level, std::move(text)}); }
  void emit(Action action) { actions_.push_back(std::move(action)); }

  const CallRecord& before_;
  CallRecord r_;
  TimeMs now_;
  const Config& config_;
  BackoffPolicy policy_;
  std::vector<Action> actions_;
};

}  // namespace

std::string_view to_string(RecordingState state) {
  for (const auto& [name, s] : kStateNames) {
    if (s == state) return name;
  }
  return "none";
}

std::optional<RecordingState> recording_state_from_text(std::string_view text) {
  for (const auto& [name, s] : kStateNames) {
    if (name == text) return s;
  }
  return std::nullopt;
}

bool is_final(RecordingState state) {
  return state == RecordingState::attached || state == RecordingState::empty || state == RecordingState::disabled;
}

std::string CallRecord::contact() const {
  switch (direction) {
    case CallDirection::incoming: return caller;
    case CallDirection::outgoing: return receiver;
    case CallDirection::unknown: break;
  }
  return "";
}

CallRecord new_call_record(std::string_view call_id) {
  CallRecord r;
  r.call_id = std::string(call_id);
  return r;
}

FlowResult step(const CallRecord& current, const FlowInput& input, TimeMs now, const Config& config) {
  Step s(current, now, config);
  std::visit([&s](const auto& in) { s.on(in); }, input);
  return std::move(s).finish();
}

std::string format_span(std::int64_t seconds) {
  if (seconds >= 3600) return std::to_string(seconds / 3600) + " h " + std::to_string((seconds % 3600) / 60) + " min";
  if (seconds >= 60) return std::to_string(seconds / 60) + " min";
  return std::to_string(seconds) + " s";
}

FlowResult step_delivery(const CallRecord& current, const Event& event, std::string_view inbox, TimeMs now,
                         const Config& config) {
  CallRecord record = current;
  if (record.inbox.empty()) record.inbox = std::string(inbox);
  if (const auto* call = std::get_if<CallEvent>(&event)) return step(record, *call, now, config);
  if (const auto* rec = std::get_if<RecordEvent>(&event)) return step(record, *rec, now, config);
  return FlowResult{current, {}};
}

}  // namespace wavoip
