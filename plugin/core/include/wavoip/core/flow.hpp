#pragma once
// The per-call recording state machine. Pure: given the stored CallRecord, one input and the
// time, it returns the new record and the actions for the plugin's edges to carry out. It never
// reads a clock, a file or the network, and is deterministic.
//
// Recording states (`RecordingState`):
//
//   none ─► waiting ─► fetching ─► attaching ─► attached        (final)
//              ▲  │        │            │
//              └──┴────────┴────────────┘  not ready / error: next poll by BackoffPolicy
//   none|waiting|failed ─► empty | disabled                      (final)
//   waiting|fetching|attaching ─► failed  (deadline, permanent error; READY/manual retry reopen)
//
// Transition table (anything not listed leaves the state unchanged; most such cases log a line):
//
// | state              | input                                   | new state  | actions |
// |--------------------|-----------------------------------------|------------|---------|
// | none               | CALL end status, call answered or the status may follow a live call | waiting |
// SchedulePoll(first_poll_at(ended_at)), SetRecordingStatus | | none               | CALL REJECTED / NOT_ANSWERED /
// HANDLED_REMOTELY, never ACTIVE and duration 0/absent | none | SetRecordingStatus(none, reason); no poll (no audio was
// ever recorded here) | | waiting (0 polls)  | CALL end status                         | waiting    | re-anchor the
// first poll and deadline to ended_at: SchedulePoll | | none (ended unanswered) | a later CALL shows it was answered
// (duration > 0) | waiting | SchedulePoll(first_poll_at(ended_at)), SetRecordingStatus | | none               |
// RECORDING / MIXING                      | waiting    | SchedulePoll (safety net), SetRecordingStatus | | waiting |
// RECORDING / MIXING                      | waiting    | SetRecordingStatus if the text changed; SchedulePoll only if
// none is armed | | none/waiting       | READY                                   | fetching   | CancelPoll (if armed),
// StartFetch(url), SetRecordingStatus, LogLine | | failed             | READY                                   |
// fetching   | new 4 h window from now; StartFetch(url), SetRecordingStatus | | fetching/attaching/attached | READY
// (duplicate or late)      | unchanged  | LogLine only | | none/waiting/failed| DISABLED | disabled   | CancelPoll (if
// armed), SetRecordingStatus("Recording is disabled for this WaVoIP device") | | none/waiting/failed| EMPTY_RECORDING
// | empty      | CancelPoll (if armed), SetRecordingStatus("Call too short: WaVoIP made no recording") | |
// fetching..attached, empty, disabled | RECORDING/MIXING/DISABLED/EMPTY | unchanged | (forward only: a late MIXING
// after READY changes nothing) | | waiting            | PollDue (next_attempt_at <= now)        | fetching   |
// StartFetch(url), SetRecordingStatus | | any other state    | PollDue with a due next_attempt_at      | unchanged  |
// next_attempt_at cleared (a due row is always consumed), LogLine | | fetching           | FetchOutcome ready_file |
// attaching  | Attach(file), SetRecordingStatus | | fetching           | FetchOutcome not_ready / transient_error|
// waiting    | SchedulePoll(next by BackoffPolicy), SetRecordingStatus | | fetching           | same, but the deadline
// has passed       | failed     | SetRecordingStatus("No recording after 4 h 0 min (14 attempts)", detail "HTTP 404"),
// LogLine | | fetching           | FetchOutcome permanent_error            | failed     | SetRecordingStatus("WaVoIP no
// longer has this recording", detail "HTTP 410"), LogLine | | attaching          | AttachOutcome ok | attached   |
// SetRecordingStatus(attached), LogLine("... ✅ Recording attached successfully") | | attaching          | AttachOutcome
// failed                    | waiting/failed | as a transient fetch error (the file is fetched again) | |
// none/waiting/failed| ManualRetry                             | fetching   | new window from now; StartFetch(url) | |
// fetching/attaching | Resume (after a restart)                | unchanged  | StartFetch again / Attach again (the call
// id is the idempotency key) | | attaching          | Resume without the file on this node    | fetching   |
// StartFetch again, LogLine (another node downloaded it and died, or the file is gone) |
//
// Call end statuses: ENDED, REJECTED, NOT_ANSWERED, FAILED, HANDLED_REMOTELY, CONNECTION_LOST.
// The first one sets `ended_at`; after it, later call statuses (a late ACTIVE) are ignored.
// Every CALL/RECORD webhook also merges the call's fields; the first one, and any that changes
// what the message shows (contact, direction, call status, duration), emits UpsertMessage
// first in the action list. Duplicate deliveries therefore produce no actions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wavoip/core/config.hpp"
#include "wavoip/core/fetch_outcome.hpp"
#include "wavoip/core/payload.hpp"
#include "wavoip/core/time.hpp"

namespace wavoip {

enum class RecordingState { none, waiting, fetching, attaching, attached, empty, disabled, failed };

std::string_view to_string(RecordingState state);  // "none", "waiting", ...
std::optional<RecordingState> recording_state_from_text(std::string_view text);

// attached, empty, disabled: nothing will ever change them.
bool is_final(RecordingState state);

// Everything the plugin remembers about one call (one row of the store's `calls` table).
struct CallRecord {
  std::string call_id;
  std::string inbox;  // set by the webhook glue from the key that delivered the call
  CallDirection direction = CallDirection::unknown;
  std::string caller;
  std::string receiver;
  std::string session_id;
  std::string call_kind;    // HUMANIZED / ROBOTIC, "" if unknown
  std::string call_status;  // WaVoIP text of the last accepted status
  bool answered = false;    // saw ACTIVE or a positive duration
  std::optional<std::int64_t> duration_s;
  std::optional<TimeMs> ended_at;  // set by the first call end status

  RecordingState recording = RecordingState::none;
  std::string reason;                     // what the agent sees next to the status, in plain words
  std::string reason_detail;              // the technical part shown apart: the last answer, "HTTP 404"
  std::string record_url;                 // last record_url received (untrusted)
  std::uint32_t attempt = 0;              // downloads finished in the current window
  std::optional<TimeMs> next_attempt_at;  // set only while waiting
  std::optional<TimeMs> deadline_at;      // end of the current polling window
  std::string last_result;                // last download answer, e.g. "HTTP 404"
  std::string recording_file;             // set from ready_file until attached
  std::string content_type;
  std::uint64_t recording_bytes = 0;

  bool message_requested = false;  // an UpsertMessage was emitted at least once
  std::string message_id;          // the host's id, stored by the glue
  TimeMs created_at = 0;
  TimeMs updated_at = 0;

  bool ended() const { return ended_at.has_value(); }
  // Work in flight (fetching or attaching): what a claim on the call is held for.
  bool busy() const { return recording == RecordingState::fetching || recording == RecordingState::attaching; }
  // The person on the other end: caller for incoming calls, receiver for outgoing ones.
  std::string contact() const;

  bool operator==(const CallRecord&) const = default;
};

// ---- inputs besides webhook events and FetchOutcome ----

struct PollDue {};      // the poll timer fired and this call was among the due ones
struct ManualRetry {};  // an agent or operator asked to try again
// The plugin restarted while this call was fetching or attaching, or this node took over the
// claim of a node that died. `have_file`: the recording_file of an attaching call is here.
struct Resume {
  bool have_file = true;
};

struct AttachOutcome {
  bool ok = false;
  std::string attachment_id;  // host's id on success
  std::string detail;         // why not, on failure
};

using FlowInput = std::variant<CallEvent, RecordEvent, FetchOutcome, AttachOutcome, PollDue, ManualRetry, Resume>;

// ---- actions for the edges (in order) ----

// Create or update the call's message; idempotent by call id on the host side.
struct UpsertMessage {
  std::string call_id;
  std::string inbox;
  std::string contact;  // "" when not known yet (RECORD before any CALL)
  CallDirection direction = CallDirection::unknown;
  std::string call_status;
  std::optional<std::int64_t> duration_s;
};

// Show the recording's state and, for none/empty/disabled/failed, why.
struct SetRecordingStatus {
  std::string call_id;
  RecordingState status = RecordingState::none;
  std::string reason;
  std::string detail;  // the recording server's last answer behind the reason ("HTTP 404"); "" = none
};

struct StartFetch {
  std::string call_id;
  std::string url;  // already checked by url_refusal or built from base_url
};

// A poll is due at `at`; the glue re-arms its single timer if this is the earliest.
struct SchedulePoll {
  std::string call_id;
  TimeMs at = 0;
};

struct CancelPoll {
  std::string call_id;
};

// Hand the downloaded file to the host; the call id is the idempotency key.
struct Attach {
  std::string call_id;
  std::string file_path;
  std::string content_type;
  std::uint64_t bytes = 0;
};

enum class LogLevel { debug, info, warning, error };

struct LogLine {
  LogLevel level = LogLevel::info;
  std::string text;
};

using Action = std::variant<UpsertMessage, SetRecordingStatus, StartFetch, SchedulePoll, CancelPoll, Attach, LogLine>;

struct FlowResult {
  CallRecord record;
  std::vector<Action> actions;
};

// A fresh record for a call seen for the first time.
CallRecord new_call_record(std::string_view call_id);

// One step of the state machine. `current.call_id` must be set (see new_call_record); an event
// for another call id is ignored with an error LogLine.
FlowResult step(const CallRecord& current, const FlowInput& input, TimeMs now, const Config& config);

// The step of a webhook's CALL or RECORD event: a call seen for the first time takes the inbox of
// the webhook key it came with. The same step runs again when a delivery is replayed after a
// crash (Store::replay_unsaved). Any other event leaves the record as it is, with no action.
FlowResult step_delivery(const CallRecord& current, const Event& event, std::string_view inbox, TimeMs now,
                         const Config& config);

// "4 h 0 min", "5 min", "45 s": spans as an agent reads them.
std::string format_span(std::int64_t seconds);

}  // namespace wavoip
