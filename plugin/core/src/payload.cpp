#include "wavoip/core/payload.hpp"

#include <algorithm>
#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cmath>
#include <utility>
#include <vector>

namespace wavoip {
namespace {

namespace json = boost::json;
using boost::system::error_code;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

template <class E, std::size_t N>
E lookup(std::string_view text, const std::array<std::pair<std::string_view, E>, N>& table, E fallback) {
  for (const auto& [name, code] : table) {
    if (iequals(text, name)) return code;
  }
  return fallback;
}

constexpr std::array<std::pair<std::string_view, CallStatus>, 13> kCallStatuses{{
    {"NONE", CallStatus::none},
    {"INCOMING_RING", CallStatus::incoming_ring},
    {"OUTGOING_RING", CallStatus::outgoing_ring},
    {"OUTGOING_CALLING", CallStatus::outgoing_calling},
    {"CONNECTING", CallStatus::connecting},
    {"CONNECTION_LOST", CallStatus::connection_lost},
    {"ACTIVE", CallStatus::active},
    {"HANDLED_REMOTELY", CallStatus::handled_remotely},
    {"ENDED", CallStatus::ended},
    {"REJECTED", CallStatus::rejected},
    {"REMOTE_CALL_IN_PROGRESS", CallStatus::remote_call_in_progress},
    {"FAILED", CallStatus::failed},
    {"NOT_ANSWERED", CallStatus::not_answered},
}};

constexpr std::array<std::pair<std::string_view, RecordStatus>, 5> kRecordStatuses{{
    {"RECORDING", RecordStatus::recording},
    {"MIXING", RecordStatus::mixing},
    {"READY", RecordStatus::ready},
    {"DISABLED", RecordStatus::disabled},
    {"EMPTY_RECORDING", RecordStatus::empty_recording},
}};

// ---------------------------------------------------------------------------------------
// Pass 1: a SAX scan that validates the document (syntax, UTF-8, depth) and collects every
// top-level `type` value. Boost.JSON's DOM keeps only the last duplicate key, and WaVoIP's
// own example sends {"type":"CALL", ..., "type":"HUMANIZED"}.

struct TypeScan {
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);

  std::size_t depth = 0;
  bool top_is_object = false;
  std::string key;  // current top-level key (bounded: only "type" matters)
  bool key_overflow = false;
  bool value_is_type = false;  // the next value belongs to a top-level `type` key
  std::string value;           // accumulating string value of a `type` key
  std::vector<std::string> type_strings;
  bool type_has_non_string = false;

  // Any value (scalar or container) seen right after a top-level `type` key.
  void non_string_value() {
    if (value_is_type) type_has_non_string = true;
    value_is_type = false;
  }

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_object_begin(error_code&) {
    if (depth == 0) top_is_object = true;
    non_string_value();
    ++depth;
    return true;
  }
  bool on_object_end(std::size_t, error_code&) {
    --depth;
    return true;
  }
  bool on_array_begin(error_code&) {
    non_string_value();
    ++depth;
    return true;
  }
  bool on_array_end(std::size_t, error_code&) {
    --depth;
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, error_code&) {
    append_key(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, error_code&) {
    append_key(s);
    value_is_type = depth == 1 && !key_overflow && key == "type";
    key.clear();
    key_overflow = false;
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, error_code&) {
    if (value_is_type) value.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, error_code&) {
    if (value_is_type) {
      value.append(s.data(), s.size());
      type_strings.push_back(std::move(value));
      value.clear();
    }
    value_is_type = false;
    return true;
  }
  bool on_number_part(json::string_view, error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, error_code&) { return scalar(); }
  bool on_uint64(std::uint64_t, json::string_view, error_code&) { return scalar(); }
  bool on_double(double, json::string_view, error_code&) { return scalar(); }
  bool on_bool(bool, error_code&) { return scalar(); }
  bool on_null(error_code&) { return scalar(); }
  bool on_comment_part(json::string_view, error_code&) { return true; }
  bool on_comment(json::string_view, error_code&) { return true; }

 private:
  bool scalar() {
    non_string_value();
    return true;
  }
  void append_key(json::string_view s) {
    if (depth != 1) return;
    if (key.size() + s.size() > 8) {  // longer than "type": cannot match, do not buffer
      key_overflow = true;
      return;
    }
    key.append(s.data(), s.size());
  }
};

// ---------------------------------------------------------------------------------------
// Pass 2: typed reads from the DOM object. The reader keeps the first error and turns every
// later read into a no-op, so each event parser reads top to bottom and checks once.

Unexpected<ParseError> fail(ParseErrorCode code, std::string message) {
  return Unexpected<ParseError>{ParseError{code, std::move(message)}};
}

bool has_control_chars(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

bool is_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == ':' || c == '-';
}

// A non-negative JSON integer rendered as text, or nullopt for any other value.
std::optional<std::string> non_negative_integer_text(const json::value& v) {
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  if (v.is_int64() && v.get_int64() >= 0) return std::to_string(v.get_int64());
  return std::nullopt;
}

EventAction action_from_text(const std::optional<std::string>& text) {
  if (!text) return EventAction::absent;
  if (iequals(*text, "CREATE")) return EventAction::create;
  if (iequals(*text, "UPDATE")) return EventAction::update;
  return EventAction::unknown;
}

class FieldReader {
 public:
  FieldReader(const json::object& obj, const ParseLimits& limits) : obj_(obj), limits_(limits) {}

  const std::optional<ParseError>& error() const { return error_; }

  // whatsapp_call_id: docs send a number, live traffic a 32-char hex string. Required.
  std::string call_id() {
    const json::value* v = field("whatsapp_call_id");
    if (error_) return {};
    if (v == nullptr) return failed(ParseErrorCode::missing_field, "field 'whatsapp_call_id' is missing");
    std::string id;
    if (v->is_string()) {
      id.assign(v->get_string().data(), v->get_string().size());
    } else if (auto text = non_negative_integer_text(*v)) {
      id = std::move(*text);
    } else {
      return failed(ParseErrorCode::bad_call_id, "field 'whatsapp_call_id' must be a string or a non-negative integer");
    }
    if (id.empty() || id.size() > limits_.max_call_id_length) {
      return failed(ParseErrorCode::bad_call_id, "field 'whatsapp_call_id' must have 1 to " +
                                                     std::to_string(limits_.max_call_id_length) + " characters");
    }
    for (char c : id) {
      if (!is_id_char(c)) {
        return failed(ParseErrorCode::bad_call_id, "field 'whatsapp_call_id' has characters outside [A-Za-z0-9_.:-]");
      }
    }
    // "." and ".." would be dot segments once appended to base_url (a URL client removes them).
    if (id.find_first_not_of('.') == std::string::npos) {
      return failed(ParseErrorCode::bad_call_id, "field 'whatsapp_call_id' must not consist of dots only");
    }
    return id;
  }

  // A bounded, printable string; absent or null -> nullopt.
  std::optional<std::string> text(std::string_view name, std::size_t max_length) {
    const json::value* v = field(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) return failed_opt(name, "must be a string");
    std::string_view s(v->get_string().data(), v->get_string().size());
    if (s.size() > max_length) return failed_opt(name, "is longer than " + std::to_string(max_length) + " characters");
    if (has_control_chars(s)) return failed_opt(name, "contains control characters");
    return std::string(s);
  }

  std::optional<std::string> short_text(std::string_view name) { return text(name, limits_.max_text_length); }

  // Phone numbers and id_session: text, or a non-negative integer.
  std::optional<std::string> id_like(std::string_view name) {
    const json::value* v = field(name);
    if (v != nullptr && !v->is_string()) {
      auto digits = non_negative_integer_text(*v);
      if (!digits) return failed_opt(name, "must be a string or a non-negative integer");
      // The same length limit as the text form: an integer is stored as its digits.
      if (digits->size() > limits_.max_text_length) {
        return failed_opt(name, "is longer than " + std::to_string(limits_.max_text_length) + " characters");
      }
      return digits;
    }
    return short_text(name);
  }

  std::optional<std::int64_t> duration() {
    // Bounded so that later arithmetic in milliseconds cannot overflow (about 31 years).
    constexpr double kMaxSeconds = 1e9;
    const json::value* v = field("duration");
    if (v == nullptr) return std::nullopt;
    if (!v->is_number()) return fail_duration("must be a number");
    const double seconds = v->to_number<double>();
    if (!std::isfinite(seconds) || seconds < 0 || seconds > kMaxSeconds) {
      return fail_duration("must be a number of seconds between 0 and 1e9");
    }
    return static_cast<std::int64_t>(seconds);
  }

  void require(bool present, std::string_view name) {
    if (!present && !error_)
      error_ = ParseError{ParseErrorCode::missing_field, "field '" + std::string(name) + "' is missing"};
  }

 private:
  // The field, or nullptr when absent, JSON null (both mean "not sent"), or after an error.
  const json::value* field(std::string_view name) const {
    if (error_) return nullptr;
    const json::value* v = obj_.if_contains(json::string_view(name.data(), name.size()));
    return (v == nullptr || v->is_null()) ? nullptr : v;
  }

  std::string failed(ParseErrorCode code, std::string message) {
    error_ = ParseError{code, std::move(message)};
    return {};
  }

  std::optional<std::string> failed_opt(std::string_view name, const std::string& what) {
    error_ = ParseError{ParseErrorCode::bad_field_type, "field '" + std::string(name) + "' " + what};
    return std::nullopt;
  }

  std::optional<std::int64_t> fail_duration(const std::string& what) {
    error_ = ParseError{ParseErrorCode::bad_field_type, "field 'duration' " + what};
    return std::nullopt;
  }

  const json::object& obj_;
  const ParseLimits& limits_;
  std::optional<ParseError> error_;
};

ParseResult parse_call(const json::object& obj, const ParseLimits& limits, std::string call_kind) {
  FieldReader read(obj, limits);
  CallEvent ev;
  ev.call_id = read.call_id();
  ev.action = action_from_text(read.short_text("action"));
  ev.session_id = read.id_like("id_session");
  ev.caller = read.id_like("caller");
  ev.receiver = read.id_like("receiver");
  const auto status = read.short_text("status");
  const auto direction = read.short_text("direction");
  ev.duration_s = read.duration();
  const auto record_status = read.short_text("record_status");
  if (read.error()) return Unexpected{*read.error()};

  if (status) ev.status = Coded<CallStatus>{call_status_from_text(*status), *status};
  if (direction) ev.direction = Coded<CallDirection>{call_direction_from_text(*direction), *direction};
  if (record_status) ev.record_status = Coded<RecordStatus>{record_status_from_text(*record_status), *record_status};
  ev.call_kind = std::move(call_kind);
  return Event{std::move(ev)};
}

ParseResult parse_record(const json::object& obj, const ParseLimits& limits) {
  FieldReader read(obj, limits);
  RecordEvent ev;
  ev.call_id = read.call_id();
  ev.action = action_from_text(read.short_text("action"));
  ev.session_id = read.id_like("id_session");
  const auto record_status = read.short_text("record_status");
  auto record_url = read.text("record_url", limits.max_url_length);
  read.require(record_status.has_value(), "record_status");
  if (read.error()) return Unexpected{*read.error()};

  ev.record_status = Coded<RecordStatus>{record_status_from_text(*record_status), *record_status};
  if (record_url && !record_url->empty()) ev.record_url = std::move(record_url);
  return Event{std::move(ev)};
}

ParseResult parse_device(const json::object& obj, const ParseLimits& limits) {
  // DEVICE events are only logged; every field is optional so that none is ever refused.
  FieldReader read(obj, limits);
  DeviceEvent ev;
  ev.action = action_from_text(read.short_text("action"));
  ev.session_id = read.id_like("id_session");
  ev.phone = read.id_like("phone");
  ev.status = read.short_text("status");
  if (read.error()) return Unexpected{*read.error()};
  return Event{std::move(ev)};
}

enum class Kind { call, record, device, other };

Kind kind_of(std::string_view type) {
  if (iequals(type, "CALL")) return Kind::call;
  if (iequals(type, "RECORD")) return Kind::record;
  if (iequals(type, "DEVICE")) return Kind::device;
  return Kind::other;
}

}  // namespace

ParseResult parse_event(std::string_view body, const ParseLimits& limits) {
  json::parse_options options;
  options.max_depth = limits.max_depth;

  // Pass 1: validate and collect the top-level `type` values.
  json::basic_parser<TypeScan> scanner(options);
  error_code ec;
  const std::size_t used = scanner.write_some(false, body.data(), body.size(), ec);
  // write_some stops at the end of the first document; anything after it is not one JSON text.
  if (!ec && used < body.size()) {
    return fail(ParseErrorCode::invalid_json, "body is not valid JSON: extra data after the JSON document");
  }
  if (ec) {
    if (ec == json::error::too_deep) {
      return fail(ParseErrorCode::too_deep, "JSON nesting deeper than " + std::to_string(limits.max_depth));
    }
    return fail(ParseErrorCode::invalid_json, "body is not valid JSON: " + ec.message());
  }
  const TypeScan& scan = scanner.handler();
  if (!scan.top_is_object) return fail(ParseErrorCode::not_object, "body must be a JSON object");

  // Pick the event type: any CALL/RECORD/DEVICE value wins over HUMANIZED/ROBOTIC & co.
  std::optional<Kind> kind;
  std::string other_type;  // first non-event `type` text (call_kind for CALL)
  for (const std::string& t : scan.type_strings) {
    if (t.size() > limits.max_text_length || has_control_chars(t)) {
      return fail(ParseErrorCode::bad_field_type, "field 'type' is too long or contains control characters");
    }
    Kind k = kind_of(t);
    if (k == Kind::other) {
      if (other_type.empty()) other_type = t;
      continue;
    }
    if (kind && *kind != k) {
      return fail(ParseErrorCode::bad_field_type, "field 'type' names two different events");
    }
    kind = k;
  }
  if (!kind && !other_type.empty()) return Event{UnknownEvent{other_type}};
  if (!kind && scan.type_has_non_string) return fail(ParseErrorCode::bad_field_type, "field 'type' must be a string");
  if (!kind) return fail(ParseErrorCode::missing_field, "field 'type' is missing");

  // Pass 2: the DOM. It cannot fail on a document pass 1 accepted, but check anyway.
  json::value doc = json::parse(json::string_view(body.data(), body.size()), ec, json::storage_ptr(), options);
  if (ec || !doc.is_object()) return fail(ParseErrorCode::invalid_json, "body is not valid JSON");
  const json::object& obj = doc.get_object();

  switch (*kind) {
    case Kind::call: return parse_call(obj, limits, other_type);
    case Kind::record: return parse_record(obj, limits);
    case Kind::device: return parse_device(obj, limits);
    case Kind::other: break;
  }
  return Event{UnknownEvent{other_type}};  // not reached: `kind` is never `other` here
}

bool is_valid_call_id(std::string_view id, const ParseLimits& limits) {
  return !id.empty() && id.size() <= limits.max_call_id_length && std::all_of(id.begin(), id.end(), is_id_char) &&
         id.find_first_not_of('.') != std::string_view::npos;
}

std::string_view event_type_name(const Event& event) {
  struct Visitor {
    std::string_view operator()(const CallEvent&) const { return "CALL"; }
    std::string_view operator()(const RecordEvent&) const { return "RECORD"; }
    std::string_view operator()(const DeviceEvent&) const { return "DEVICE"; }
    std::string_view operator()(const UnknownEvent& e) const { return e.type; }
  };
  return std::visit(Visitor{}, event);
}

std::optional<std::string_view> event_call_id(const Event& event) {
  if (const auto* call = std::get_if<CallEvent>(&event)) return call->call_id;
  if (const auto* record = std::get_if<RecordEvent>(&event)) return record->call_id;
  return std::nullopt;
}

std::string_view to_string(ParseErrorCode code) {
  switch (code) {
    case ParseErrorCode::invalid_json: return "invalid_json";
    case ParseErrorCode::not_object: return "not_object";
    case ParseErrorCode::too_deep: return "too_deep";
    case ParseErrorCode::missing_field: return "missing_field";
    case ParseErrorCode::bad_field_type: return "bad_field_type";
    case ParseErrorCode::bad_call_id: return "bad_call_id";
  }
  return "unknown";
}

std::string_view to_string(CallStatus status) {
  for (const auto& [name, code] : kCallStatuses) {
    if (code == status) return name;
  }
  return "UNKNOWN";
}

std::string_view to_string(CallDirection direction) {
  switch (direction) {
    case CallDirection::incoming: return "INCOMING";
    case CallDirection::outgoing: return "OUTGOING";
    case CallDirection::unknown: break;
  }
  return "UNKNOWN";
}

std::string_view to_string(RecordStatus status) {
  for (const auto& [name, code] : kRecordStatuses) {
    if (code == status) return name;
  }
  return "UNKNOWN";
}

CallStatus call_status_from_text(std::string_view text) {
  return lookup(text, kCallStatuses, CallStatus::unknown);
}

CallDirection call_direction_from_text(std::string_view text) {
  if (iequals(text, "INCOMING")) return CallDirection::incoming;
  if (iequals(text, "OUTCOMING") || iequals(text, "OUTGOING")) return CallDirection::outgoing;
  return CallDirection::unknown;
}

RecordStatus record_status_from_text(std::string_view text) {
  return lookup(text, kRecordStatuses, RecordStatus::unknown);
}

}  // namespace wavoip
