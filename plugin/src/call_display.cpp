#include "recording_service.hpp"

#include <wavoip/core/recording_url.hpp>

#include <algorithm>
#include <charconv>

namespace wavoip {

namespace {

// A download or attachment still running after this long is shown to the agent as such.
constexpr int64_t kShowBusyAfterMs = 1000;

int32_t to_host_direction(CallDirection direction) {
  switch (direction) {
    case CallDirection::incoming: return HDP_CALL_DIRECTION_INCOMING;
    case CallDirection::outgoing: return HDP_CALL_DIRECTION_OUTGOING;
    case CallDirection::unknown: break;
  }
  return HDP_CALL_DIRECTION_UNKNOWN;
}

// "" (not known yet) or what WaVoIP sends: digits, at most 32, an optional leading '+'.
bool is_phone_number(std::string_view contact) {
  if (contact.starts_with('+')) contact.remove_prefix(1);
  if (contact.size() > 32) return false;
  return std::all_of(contact.begin(), contact.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The host's message id kept in the call's record by an earlier step, if any.
std::optional<uint64_t> stored_message_id(const CallRecord& record) {
  uint64_t stored = 0;
  const std::string& text = record.message_id;
  if (text.empty() || std::from_chars(text.data(), text.data() + text.size(), stored).ec != std::errc() ||
      stored == 0) {
    return std::nullopt;
  }
  return stored;
}

// The recording status as one text, for a host that takes the reason only (no hdp.messages/3): the
// technical detail follows the reason as agents have always read it ("...; last answer: HTTP 404"
// once failed, "... (last answer: HTTP 404)" while waiting). The one place the two are put
// together.
std::string host_reason(const CallRecord& record) {
  if (record.reason_detail.empty()) return record.reason;
  if (record.recording == RecordingState::failed) return record.reason + "; last answer: " + record.reason_detail;
  return record.reason + " (last answer: " + record.reason_detail + ")";
}

// The technical detail in words an agent can place, for a host that shows it apart.
std::string host_detail(const CallRecord& record) {
  if (record.reason_detail.empty()) return {};
  return "Last answer from the recording server: " + record.reason_detail;
}

// What a host shows of the record's reason: reason and detail apart (hdp.messages/3), or joined.
// With it, where the agent's "try again" goes (a failed recording only): the host's page then
// needs to know nothing of the plugin's keys or routes.
struct ShownReason {
  ShownReason(const CallRecord& record, bool apart)
      : reason(apart ? record.reason : host_reason(record)),
        detail(apart ? host_detail(record) : std::string()),
        retry(apart && record.recording == RecordingState::failed ? RecordingService::retry_path(record.call_id)
                                                                  : std::string()) {}
  // The shown-state cache's key: every text (a '\n' cannot end a reason, so no two sets collide).
  std::string key() const { return detail.empty() && retry.empty() ? reason : reason + '\n' + detail + '\n' + retry; }

  std::string reason;
  std::string detail;
  std::string retry;
};

}  // namespace

int32_t RecordingService::to_host_status(RecordingState state) {
  switch (state) {
    case RecordingState::none: return HDP_RECORDING_NONE;
    case RecordingState::waiting: return HDP_RECORDING_WAITING;
    case RecordingState::fetching:
    case RecordingState::attaching: return HDP_RECORDING_DOWNLOADING;
    case RecordingState::attached: return HDP_RECORDING_ATTACHED;
    case RecordingState::empty: return HDP_RECORDING_EMPTY;
    case RecordingState::disabled: return HDP_RECORDING_DISABLED;
    case RecordingState::failed: return HDP_RECORDING_FAILED;
  }
  return HDP_RECORDING_NONE;
}

std::string RecordingService::external_key(std::string_view call_id) {
  return "wavoip:" + std::string(call_id);
}

std::string RecordingService::retry_path(std::string_view call_id) {
  return std::string(kRetryPath) + "?call_id=" + percent_encode(call_id);
}

// One hdp.messages/2 or /3 write in flight; owned by the host's callback (deleted there).
struct RecordingService::MessageOp {
  RecordingService* service = nullptr;
  std::string call_id;
};

void RecordingService::remember_message(const std::string& call_id, uint64_t message_id) {
  auto it = shown_.find(call_id);
  if (it == shown_.end()) {
    if (shown_.size() >= kMaxShown) shown_.clear();
    shown_.emplace(call_id, Shown{message_id, -1, {}});
  } else if (it->second.message_id != message_id) {
    // A message the host made anew (or first learnt): what it shows is not known.
    if (it->second.message_id != 0) it->second = Shown{message_id, -1, {}};
    it->second.message_id = message_id;
  }
}

// The call's message as the host's messages tables take it, built from the record; owns the
// strings the view points into.
struct RecordingService::CallMessage {
  CallMessage(const RecordingService& service, const CallRecord& record)
      : key(external_key(record.call_id)), contact(record.contact()) {
    if (!is_phone_number(contact)) {
      // The host takes digits only; a malformed number must not keep the call from its message.
      service.host_.log(HDP_LOG_WARNING, "[WaVoIP] Call " + record.call_id +
                                             ": the contact is not a phone number (digits); showing the call "
                                             "without it");
      contact.clear();
    }
    view.struct_size = sizeof(view);
    view.external_key = key.c_str();
    view.inbox = record.inbox.c_str();
    view.contact = contact.c_str();
    view.direction = to_host_direction(record.direction);
    view.call_status = record.call_status.empty() ? nullptr : record.call_status.c_str();
    view.duration_s = record.duration_s.value_or(-1);
  }
  CallMessage(const CallMessage&) = delete;
  CallMessage& operator=(const CallMessage&) = delete;

  std::string key;
  std::string contact;
  hdp_call_message_t view{};
};

void RecordingService::show(const CallRecord& record, bool fields, std::optional<int32_t> status) {
  if (stopping_) return;
  if (host_.messages2() == nullptr && host_.messages3() == nullptr) {
    show_v1(record, fields, status);
    return;
  }
  const ShownReason reason(record, host_.messages3() != nullptr);
  auto known = shown_.find(record.call_id);
  if (!fields && status && known != shown_.end() && known->second.message_id != 0 && known->second.status == *status &&
      known->second.reason == reason.key()) {
    // The host shows this already: the step's mark "behind the host" can go (once no write of
    // the call is in flight), or every such step would leave one and a restart would show the
    // call again.
    shown_ok(record.call_id);
    return;
  }
  const CallMessage call_message(*this, record);
  const hdp_call_message_t& message = call_message.view;
  auto op = std::make_unique<MessageOp>();
  op->service = this;
  op->call_id = record.call_id;
  uint64_t op_id = 0;
  const int32_t host_status = status.value_or(HDP_RECORDING_UNCHANGED);
  const char* reason_text = status ? reason.reason.c_str() : nullptr;
  const hdp_status_t started =
      host_.messages3() != nullptr
          ? host_.messages3()->upsert_call_message(
                host_.raw(), &message, host_status, reason_text, status ? reason.detail.c_str() : nullptr,
                status ? reason.retry.c_str() : nullptr, &RecordingService::on_message_done, op.get(), &op_id)
          : host_.messages2()->upsert_call_message(host_.raw(), &message, host_status, reason_text,
                                                   &RecordingService::on_message_done, op.get(), &op_id);
  if (started != HDP_OK) {
    host_.log(HDP_LOG_ERROR,
              "[WaVoIP] The host could not show call " + record.call_id + " (status " + std::to_string(started) + ")");
    shown_.erase(record.call_id);
    shown_failed(record.call_id);
    return;
  }
  op.release();  // the callback owns it now
  unsettled(record.call_id);
  ++message_ops_[record.call_id];
  if (status) {
    // What the host will show once the write lands; a failed write forgets it again.
    Shown& shown = shown_[record.call_id];
    shown.status = *status;
    shown.reason = reason.key();
  }
}

void RecordingService::on_message_done(void* user_data, const hdp_message_result_t* result) {
  std::unique_ptr<MessageOp> op(static_cast<MessageOp*>(user_data));
  RecordingService* self = op->service;
  without_exceptions(self->host_, "message callback", [&] { self->message_done(*op, *result); });
}

void RecordingService::message_done(MessageOp& op, const hdp_message_result_t& result) {
  const std::string& call_id = op.call_id;
  if (auto it = message_ops_.find(call_id); it != message_ops_.end() && --it->second <= 0) message_ops_.erase(it);
  std::vector<MessageWaiter> waiters;
  const bool last = message_ops_.count(call_id) == 0;
  if (last) {
    if (auto it = message_waiters_.find(call_id); it != message_waiters_.end()) {
      waiters = std::move(it->second);
      message_waiters_.erase(it);
    }
  }
  if (result.status == HDP_OK && result.message_id != 0) {
    remember_message(call_id, result.message_id);
    shown_ok(call_id);
  } else {
    if (result.status != HDP_ERR_CANCELLED) {
      host_.log(HDP_LOG_ERROR,
                "[WaVoIP] The host could not show call " + call_id + " (status " + std::to_string(result.status) + ")");
    }
    shown_.erase(call_id);
    shown_failed(call_id);
  }
  settled(call_id);
  std::optional<uint64_t> id;
  if (auto it = shown_.find(call_id); it != shown_.end() && it->second.message_id != 0) id = it->second.message_id;
  for (MessageWaiter& waiter : waiters) waiter(id);
}

std::optional<uint64_t> RecordingService::upsert_v1(const CallRecord& record) {
  const CallMessage call_message(*this, record);
  const hdp_call_message_t& message = call_message.view;
  uint64_t id = 0;
  hdp_status_t status = host_.messages()->upsert_call_message(host_.raw(), &message, &id);
  if (status != HDP_OK) {
    host_.log(HDP_LOG_ERROR, "[WaVoIP] The host could not create the message for call " + record.call_id + " (status " +
                                 std::to_string(status) + ")");
    shown_.erase(record.call_id);
    return std::nullopt;
  }
  remember_message(record.call_id, id);
  return id;
}

void RecordingService::show_v1(const CallRecord& record, bool fields, std::optional<int32_t> status) {
  std::optional<uint64_t> message;
  if (!fields) {
    if (auto it = shown_.find(record.call_id); it != shown_.end() && it->second.message_id != 0) {
      message = it->second.message_id;
    } else if (std::optional<uint64_t> stored = stored_message_id(record)) {
      // Kept in the call's record by an earlier step: no upsert needed after a restart either.
      remember_message(record.call_id, *stored);
      message = stored;
    }
  }
  bool found_again = false;
  if (!message) {
    message = upsert_v1(record);
    found_again = true;
  }
  if (!message) {
    shown_failed(record.call_id);
    return;
  }
  if (!status) {
    shown_ok(record.call_id);
    return;
  }
  Shown& shown = shown_[record.call_id];
  const std::string reason = host_reason(record);
  if (shown.message_id == *message && shown.status == *status && shown.reason == reason) {
    shown_ok(record.call_id);
    return;
  }
  hdp_status_t result = host_.messages()->set_recording_status(host_.raw(), *message, *status, reason.c_str());
  if (result == HDP_ERR_NOT_FOUND && !found_again) {
    // The remembered id is gone on the host's side: find or create the message again.
    shown_.erase(record.call_id);
    show_v1(record, true, status);
    return;
  }
  if (result != HDP_OK) {
    host_.log(HDP_LOG_ERROR, "[WaVoIP] The host could not show the recording status of call " + record.call_id +
                                 " (status " + std::to_string(result) + ")");
    shown_.erase(record.call_id);
    shown_failed(record.call_id);
    return;
  }
  Shown& now_shown = shown_[record.call_id];
  now_shown.message_id = *message;
  now_shown.status = *status;
  now_shown.reason = reason;
  shown_ok(record.call_id);
}

void RecordingService::with_message(const CallRecord& record, MessageWaiter waiter) {
  if (auto it = shown_.find(record.call_id); it != shown_.end() && it->second.message_id != 0) {
    waiter(it->second.message_id);
    return;
  }
  if (host_.messages2() == nullptr && host_.messages3() == nullptr) {
    std::optional<uint64_t> id = stored_message_id(record);
    if (id) {
      remember_message(record.call_id, *id);
    } else {
      id = upsert_v1(record);
    }
    waiter(id);
    return;
  }
  // The id comes with the next write of the call that lands; start one if none is in flight.
  message_waiters_[record.call_id].push_back(std::move(waiter));
  if (message_ops_.count(record.call_id) == 0) show(record, true, std::nullopt);
  // The write could not even start: its failure already ran nobody; answer the waiters now.
  if (message_ops_.count(record.call_id) == 0) {
    auto it = message_waiters_.find(record.call_id);
    if (it == message_waiters_.end()) return;
    std::vector<MessageWaiter> waiters = std::move(it->second);
    message_waiters_.erase(it);
    for (MessageWaiter& w : waiters) w(std::nullopt);
  }
}

// ---- "downloading" -----------------------------------------------------------------------------

void RecordingService::show_busy_later(const CallRecord& record) {
  const int64_t show_at = host_.monotonic_ms() + kShowBusyAfterMs;
  // A call already waiting to be shown busy keeps its first time (fetching, then attaching).
  if (!busy_at_.emplace(record.call_id, BusyEntry{show_at, record}).second) return;
  busy_.push_back({record.call_id, show_at});
  arm_busy_timer();
}

void RecordingService::not_busy(const std::string& call_id) {
  if (busy_at_.erase(call_id) == 0 || !busy_at_.empty()) return;
  // Nothing left to show: no timer stays armed for the entries that were done in time.
  busy_.clear();
  if (busy_timer_ != 0) {
    loop_.cancel_timer(busy_timer_);
    busy_timer_ = 0;
  }
}

void RecordingService::arm_busy_timer() {
  if (busy_timer_ != 0 || busy_.empty() || stopping_) return;
  const int64_t delay = std::max<int64_t>(0, busy_.front().show_at - host_.monotonic_ms());
  busy_timer_ = loop_.start_timer(static_cast<uint64_t>(delay), [this] {
    busy_timer_ = 0;
    const int64_t now = host_.monotonic_ms();
    while (!busy_.empty() && busy_.front().show_at <= now) {
      BusyCall due = std::move(busy_.front());
      busy_.pop_front();
      auto it = busy_at_.find(due.call_id);
      // Done in time (or since queued again, later): nothing to show for this entry.
      if (it == busy_at_.end() || it->second.show_at != due.show_at) continue;
      // Still fetching or attaching: any other state would have gone through not_busy.
      CallRecord record = std::move(it->second.record);
      busy_at_.erase(it);
      show(record, false, HDP_RECORDING_DOWNLOADING);
    }
    arm_busy_timer();
  });
}

}  // namespace wavoip
