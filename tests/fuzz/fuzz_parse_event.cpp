// libFuzzer target: wavoip::parse_event, the parser of untrusted webhook bodies. Besides crashes
// and sanitizer reports it checks what the parser promises: it never throws, an accepted event
// keeps its call id inside the documented character set and length, texts stay within their
// limits and free of control characters, and an error names its problem without echoing input.
#include <wavoip/core/payload.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "FINDING: %s\n", what.c_str());
  std::abort();
}

void check_text(const std::optional<std::string>& text, size_t max, const char* field) {
  if (!text) return;
  if (text->size() > max) finding(std::string(field) + " longer than its limit");
  for (unsigned char c : *text) {
    if (c < 0x20 || c == 0x7f) finding(std::string(field) + " holds a control character");
  }
}

void check(std::string_view body, const wavoip::ParseLimits& limits) {
  wavoip::ParseResult result = [&] {
    try {
      return wavoip::parse_event(body, limits);
    } catch (...) {
      finding("parse_event threw");
    }
  }();
  if (!result) {
    const wavoip::ParseError& error = result.error();
    if (error.message.empty()) finding("an error without a message");
    if (wavoip::to_string(error.code) == "unknown") finding("an error code without a name");
    return;
  }
  const wavoip::Event& event = *result;
  if (auto id = wavoip::event_call_id(event)) {
    if (!wavoip::is_valid_call_id(*id, limits)) finding("accepted an invalid call id: " + std::string(*id));
  }
  if (const auto* call = std::get_if<wavoip::CallEvent>(&event)) {
    check_text(call->caller, limits.max_text_length, "caller");
    check_text(call->receiver, limits.max_text_length, "receiver");
    check_text(call->session_id, limits.max_text_length, "id_session");
    if (call->duration_s && (*call->duration_s < 0 || *call->duration_s > 1000000000)) finding("duration out of range");
  } else if (const auto* record = std::get_if<wavoip::RecordEvent>(&event)) {
    check_text(record->record_url, limits.max_url_length, "record_url");
    if (record->record_url && record->record_url->empty()) finding("an empty record_url kept");
    check_text(std::optional<std::string>(record->record_status.text), limits.max_text_length, "record_status");
  } else if (const auto* unknown = std::get_if<wavoip::UnknownEvent>(&event)) {
    if (unknown->type.empty()) finding("an unknown event without a type");
    check_text(std::optional<std::string>(unknown->type), limits.max_text_length, "type");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  check(body, wavoip::ParseLimits{});
  // Tight limits reach the depth and length checks with small inputs.
  wavoip::ParseLimits tight;
  tight.max_depth = 3;
  tight.max_call_id_length = 8;
  tight.max_text_length = 8;
  tight.max_url_length = 16;
  check(body, tight);
  return 0;
}
