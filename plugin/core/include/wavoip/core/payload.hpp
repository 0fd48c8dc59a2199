#pragma once
// WaVoIP webhook bodies -> typed events.
//
// Tolerant of what live traffic really sends (numeric or string call ids, `CALLING`,
// `OUTCOMING`, a second `type` key, unknown fields), strict on limits and types, because the
// body comes from the network without any signature.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "wavoip/core/expected.hpp"

namespace wavoip {

// CALL.status. `unknown` keeps values outside the documented list (live traffic sends
// `CALLING`); the original text travels next to the code in `Coded`.
enum class CallStatus {
  none,  // WaVoIP's literal "NONE"
  incoming_ring,
  outgoing_ring,
  outgoing_calling,
  connecting,
  connection_lost,
  active,
  handled_remotely,
  ended,
  rejected,
  remote_call_in_progress,
  failed,
  not_answered,
  unknown,
};

// CALL.direction. WaVoIP writes `OUTCOMING` (sic); some senders write `OUTGOING`.
enum class CallDirection { unknown, incoming, outgoing };

// RECORD.record_status (also optional in CALL).
enum class RecordStatus { recording, mixing, ready, disabled, empty_recording, unknown };

// The `action` field: CREATE or UPDATE; absent is allowed.
enum class EventAction { absent, create, update, unknown };

// An enumerated value together with the text it was read from (kept for logs and for
// values the plugin does not know yet).
template <class E>
struct Coded {
  E code;
  std::string text;
  bool operator==(const Coded&) const = default;
};

struct CallEvent {
  EventAction action = EventAction::absent;
  std::string call_id;                      // whatsapp_call_id, always as text
  std::optional<std::string> session_id;    // id_session
  std::optional<std::string> caller;        // digits, as sent
  std::optional<std::string> receiver;      // digits, as sent
  std::optional<Coded<CallStatus>> status;  // absent on many UPDATEs
  std::optional<Coded<CallDirection>> direction;
  std::optional<std::int64_t> duration_s;
  std::optional<Coded<RecordStatus>> record_status;
  std::string call_kind;  // the other `type` value (HUMANIZED / ROBOTIC), "" if none
};

struct RecordEvent {
  EventAction action = EventAction::absent;
  std::string call_id;
  std::optional<std::string> session_id;
  Coded<RecordStatus> record_status;
  std::optional<std::string> record_url;  // untrusted: see recording_url.hpp before fetching
};

struct DeviceEvent {
  EventAction action = EventAction::absent;
  std::optional<std::string> session_id;
  std::optional<std::string> phone;
  std::optional<std::string> status;  // open, close, BUILDING, ... kept as text
};

// Authentic-looking event of a type this plugin does not handle (answered 2xx, stored).
struct UnknownEvent {
  std::string type;
};

using Event = std::variant<CallEvent, RecordEvent, DeviceEvent, UnknownEvent>;

enum class ParseErrorCode {
  invalid_json,    // not JSON at all, trailing data, invalid UTF-8
  not_object,      // valid JSON whose top level is not an object
  too_deep,        // nesting deeper than ParseLimits::max_depth
  missing_field,   // `type`, `whatsapp_call_id` or `record_status` absent (or null)
  bad_field_type,  // a field of the wrong JSON type, out of range or too long
  bad_call_id,     // whatsapp_call_id empty, too long, negative, fractional, outside [A-Za-z0-9_.:-] or dots only
};

struct ParseError {
  ParseErrorCode code;
  std::string message;  // names the field; safe to log (never echoes the raw value)
};

struct ParseLimits {
  std::size_t max_depth = 32;            // arrays/objects; `{}` has depth 1
  std::size_t max_call_id_length = 128;  // characters
  std::size_t max_url_length = 2048;     // record_url
  std::size_t max_text_length = 64;      // phones, statuses, session ids, type/action
};

using ParseResult = Expected<Event, ParseError>;

// Parses one webhook body. Never throws for any input (except std::bad_alloc).
ParseResult parse_event(std::string_view body, const ParseLimits& limits = {});

// True when `id` is a call id parse_event accepts: 1..max_call_id_length characters of
// [A-Za-z0-9_.:-], not dots only. For call ids from other places (the operator's retry route).
bool is_valid_call_id(std::string_view id, const ParseLimits& limits = {});

// "CALL", "RECORD", "DEVICE", or the unknown event's own type text.
std::string_view event_type_name(const Event& event);

// The whatsapp_call_id of CALL and RECORD events; nullopt for the others.
std::optional<std::string_view> event_call_id(const Event& event);

// Stable names, used in logs and in the store.
std::string_view to_string(ParseErrorCode code);
std::string_view to_string(CallStatus status);        // WaVoIP spelling, e.g. "NOT_ANSWERED"
std::string_view to_string(CallDirection direction);  // "INCOMING", "OUTGOING", "UNKNOWN"
std::string_view to_string(RecordStatus status);      // WaVoIP spelling, e.g. "EMPTY_RECORDING"

// Text -> code (case-insensitive; unknown values map to the `unknown` member).
CallStatus call_status_from_text(std::string_view text);
CallDirection call_direction_from_text(std::string_view text);
RecordStatus record_status_from_text(std::string_view text);

}  // namespace wavoip
