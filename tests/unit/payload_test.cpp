// What payload parsing proves: the seed document's examples and the live-traffic variants
// parse into the right typed events, and every malformed body gets the right error code.

#include "wavoip/core/payload.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <string>

namespace wavoip {
namespace {

const CallEvent& as_call(const ParseResult& r) {
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  return std::get<CallEvent>(r.value());
}

const RecordEvent& as_record(const ParseResult& r) {
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  return std::get<RecordEvent>(r.value());
}

ParseErrorCode error_of(std::string_view body, const ParseLimits& limits = {}) {
  ParseResult r = parse_event(body, limits);
  EXPECT_FALSE(r.has_value()) << "accepted: " << body;
  return r ? ParseErrorCode::invalid_json : r.error().code;
}

// ---- the seed document's examples ----

TEST(PayloadSeedExamples, RecordEventWithNumericCallId) {
  const auto r = parse_event(R"({
    "type": "RECORD",
    "action": "UPDATE",
    "whatsapp_call_id": 123456,
    "id_session": 789,
    "record_status": "READY",
    "record_url": "https://storage.wavoip.com/123456"
  })");
  const RecordEvent& ev = as_record(r);
  EXPECT_EQ(ev.action, EventAction::update);
  EXPECT_EQ(ev.call_id, "123456");
  EXPECT_EQ(ev.session_id, "789");
  EXPECT_EQ(ev.record_status.code, RecordStatus::ready);
  EXPECT_EQ(ev.record_status.text, "READY");
  EXPECT_EQ(ev.record_url, "https://storage.wavoip.com/123456");
}

TEST(PayloadSeedExamples, CallEvent) {
  const auto r = parse_event(R"({
    "type": "CALL",
    "action": "CREATE",
    "whatsapp_call_id": 123456,
    "status": "ACTIVE",
    "direction": "INCOMING",
    "duration": 45,
    "record_status": "RECORDING"
  })");
  const CallEvent& ev = as_call(r);
  EXPECT_EQ(ev.action, EventAction::create);
  EXPECT_EQ(ev.call_id, "123456");
  ASSERT_TRUE(ev.status);
  EXPECT_EQ(ev.status->code, CallStatus::active);
  ASSERT_TRUE(ev.direction);
  EXPECT_EQ(ev.direction->code, CallDirection::incoming);
  EXPECT_EQ(ev.duration_s, 45);
  ASSERT_TRUE(ev.record_status);
  EXPECT_EQ(ev.record_status->code, RecordStatus::recording);
  EXPECT_FALSE(ev.caller);
  EXPECT_EQ(ev.call_kind, "");
}

TEST(PayloadSeedExamples, ManualCurlTestWithStringIdAndNoUrl) {
  const auto r = parse_event(R"({"type":"RECORD","whatsapp_call_id":"test123","record_status":"READY"})");
  const RecordEvent& ev = as_record(r);
  EXPECT_EQ(ev.call_id, "test123");
  EXPECT_EQ(ev.action, EventAction::absent);
  EXPECT_FALSE(ev.record_url);
  EXPECT_FALSE(ev.session_id);
}

// ---- live-traffic variants ----

TEST(PayloadLiveTraffic, HexStringCallIdKeptVerbatim) {
  const auto r = parse_event(
      R"({"type":"CALL","action":"UPDATE","whatsapp_call_id":"A1B2C3D4E5F60718293A4B5C6D7E8F90","status":"ENDED"})");
  EXPECT_EQ(as_call(r).call_id, "A1B2C3D4E5F60718293A4B5C6D7E8F90");
}

TEST(PayloadLiveTraffic, BoostAloneWouldSeeTheLastDuplicateType) {
  // Why the parser scans keys itself: the DOM keeps only the last duplicate.
  const auto doc = boost::json::parse(R"({"type":"CALL","whatsapp_call_id":1,"type":"HUMANIZED"})");
  EXPECT_EQ(doc.at("type").as_string(), "HUMANIZED");
}

TEST(PayloadLiveTraffic, DuplicateTypeKeyMeansCallAndKeepsKind) {
  const auto r = parse_event(
      R"({"type":"CALL","action":"CREATE","whatsapp_call_id":42,"status":"INCOMING_RING","type":"HUMANIZED"})");
  const CallEvent& ev = as_call(r);
  EXPECT_EQ(ev.call_id, "42");
  EXPECT_EQ(ev.call_kind, "HUMANIZED");
}

TEST(PayloadLiveTraffic, DuplicateTypeKeyInEitherOrder) {
  const auto r = parse_event(R"({"type":"ROBOTIC","whatsapp_call_id":"X1","type":"CALL"})");
  EXPECT_EQ(as_call(r).call_kind, "ROBOTIC");
}

TEST(PayloadLiveTraffic, CallingStatusKeptAsTextWithUnknownCode) {
  const auto r = parse_event(R"({"type":"CALL","whatsapp_call_id":"X1","status":"CALLING"})");
  const CallEvent& ev = as_call(r);
  ASSERT_TRUE(ev.status);
  EXPECT_EQ(ev.status->code, CallStatus::unknown);
  EXPECT_EQ(ev.status->text, "CALLING");
}

TEST(PayloadLiveTraffic, OutcomingAndOutgoingAreBothOutgoing) {
  for (const char* spelling : {"OUTCOMING", "OUTGOING", "outgoing"}) {
    const auto r =
        parse_event(std::string(R"({"type":"CALL","whatsapp_call_id":"X1","direction":")") + spelling + R"("})");
    const CallEvent& ev = as_call(r);
    ASSERT_TRUE(ev.direction) << spelling;
    EXPECT_EQ(ev.direction->code, CallDirection::outgoing) << spelling;
    EXPECT_EQ(ev.direction->text, spelling);
  }
  const auto odd = parse_event(R"({"type":"CALL","whatsapp_call_id":"X1","direction":"SIDEWAYS"})");
  EXPECT_EQ(as_call(odd).direction->code, CallDirection::unknown);
}

TEST(PayloadLiveTraffic, UnknownFieldsAreIgnored) {
  const auto r = parse_event(R"({"type":"CALL","whatsapp_call_id":"X1","transport":"relay","is_contact":true,
      "extra":{"nested":[1,2,{"deep":null}]},"caller":"5511999990000","receiver":"5511888880000"})");
  const CallEvent& ev = as_call(r);
  EXPECT_EQ(ev.caller, "5511999990000");
  EXPECT_EQ(ev.receiver, "5511888880000");
}

TEST(PayloadLiveTraffic, NumericPhonesAndSessionBecomeText) {
  const auto r = parse_event(R"({"type":"CALL","whatsapp_call_id":"X1","caller":5511999990000,"id_session":7})");
  const CallEvent& ev = as_call(r);
  EXPECT_EQ(ev.caller, "5511999990000");
  EXPECT_EQ(ev.session_id, "7");
}

TEST(PayloadLiveTraffic, NullOptionalFieldsCountAsAbsent) {
  const auto r = parse_event(R"({"type":"CALL","whatsapp_call_id":"X1","duration":null,"status":null})");
  const CallEvent& ev = as_call(r);
  EXPECT_FALSE(ev.duration_s);
  EXPECT_FALSE(ev.status);
}

TEST(PayloadLiveTraffic, FractionalDurationTruncatedToSeconds) {
  EXPECT_EQ(as_call(parse_event(R"({"type":"CALL","whatsapp_call_id":"X1","duration":45.9})")).duration_s, 45);
}

TEST(PayloadLiveTraffic, EveryRecordStatusRecognised) {
  const std::pair<const char*, RecordStatus> cases[] = {{"RECORDING", RecordStatus::recording},
                                                        {"MIXING", RecordStatus::mixing},
                                                        {"READY", RecordStatus::ready},
                                                        {"DISABLED", RecordStatus::disabled},
                                                        {"EMPTY_RECORDING", RecordStatus::empty_recording},
                                                        {"PAUSED", RecordStatus::unknown}};
  for (const auto& [text, code] : cases) {
    const auto r =
        parse_event(std::string(R"({"type":"RECORD","whatsapp_call_id":"X1","record_status":")") + text + R"("})");
    EXPECT_EQ(as_record(r).record_status.code, code) << text;
    EXPECT_EQ(as_record(r).record_status.text, text);
  }
}

TEST(PayloadLiveTraffic, EveryDocumentedCallStatusRoundTrips) {
  for (const char* text :
       {"NONE", "INCOMING_RING", "OUTGOING_RING", "OUTGOING_CALLING", "CONNECTING", "CONNECTION_LOST", "ACTIVE",
        "HANDLED_REMOTELY", "ENDED", "REJECTED", "REMOTE_CALL_IN_PROGRESS", "FAILED", "NOT_ANSWERED"}) {
    const CallStatus code = call_status_from_text(text);
    EXPECT_NE(code, CallStatus::unknown) << text;
    EXPECT_EQ(to_string(code), text);
  }
}

TEST(PayloadLiveTraffic, TypeIsCaseInsensitive) {
  EXPECT_EQ(
      as_record(parse_event(R"({"type":"record","whatsapp_call_id":"X1","record_status":"ready"})")).record_status.code,
      RecordStatus::ready);
}

TEST(PayloadEvents, DeviceEvent) {
  const auto r = parse_event(R"({"type":"DEVICE","action":"UPDATE","id_session":789,"phone":"5511999990000",
      "status":"open"})");
  ASSERT_TRUE(r);
  const auto& ev = std::get<DeviceEvent>(*r);
  EXPECT_EQ(ev.session_id, "789");
  EXPECT_EQ(ev.phone, "5511999990000");
  EXPECT_EQ(ev.status, "open");
  EXPECT_EQ(event_type_name(*r), "DEVICE");
  EXPECT_FALSE(event_call_id(*r));
}

TEST(PayloadEvents, UnknownTypeIsAnUnknownEvent) {
  const auto r = parse_event(R"({"type":"MESSAGE","whatsapp_call_id":"X1"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(std::get<UnknownEvent>(*r).type, "MESSAGE");
  EXPECT_EQ(event_type_name(*r), "MESSAGE");
}

TEST(PayloadEvents, OnlyAKindTypeIsAnUnknownEvent) {
  const auto r = parse_event(R"({"type":"HUMANIZED"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(std::get<UnknownEvent>(*r).type, "HUMANIZED");
}

TEST(PayloadEvents, CallIdHelper) {
  const auto r = parse_event(R"({"type":"RECORD","whatsapp_call_id":"abc","record_status":"MIXING"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(event_call_id(*r), "abc");
  EXPECT_EQ(event_type_name(*r), "RECORD");
}

// ---- every error code ----

TEST(PayloadErrors, InvalidJson) {
  EXPECT_EQ(error_of(""), ParseErrorCode::invalid_json);
  EXPECT_EQ(error_of("{"), ParseErrorCode::invalid_json);
  EXPECT_EQ(error_of("not json"), ParseErrorCode::invalid_json);
  EXPECT_EQ(error_of(R"({"type":"CALL"} {"type":"CALL"})"), ParseErrorCode::invalid_json);
  EXPECT_EQ(error_of(R"({"type":"CALL",})"), ParseErrorCode::invalid_json);  // no extensions
}

TEST(PayloadErrors, InvalidUtf8IsRejected) {
  EXPECT_EQ(error_of("{\"type\":\"RECORD\",\"whatsapp_call_id\":\"X1\",\"record_status\":\"\xff\"}"),
            ParseErrorCode::invalid_json);
  EXPECT_EQ(error_of("{\"type\":\"CALL\",\"whatsapp_call_id\":\"X1\",\"caller\":\"\xc3\x28\"}"),
            ParseErrorCode::invalid_json);
}

TEST(PayloadErrors, NotAnObject) {
  EXPECT_EQ(error_of("[]"), ParseErrorCode::not_object);
  EXPECT_EQ(error_of(R"("CALL")"), ParseErrorCode::not_object);
  EXPECT_EQ(error_of("42"), ParseErrorCode::not_object);
  EXPECT_EQ(error_of("null"), ParseErrorCode::not_object);
}

std::string nested(std::size_t arrays) {
  return R"({"type":"CALL","whatsapp_call_id":"X1","x":)" + std::string(arrays, '[') + std::string(arrays, ']') + "}";
}

TEST(PayloadErrors, DepthLimitIsExact) {
  // The object itself is level 1: 31 arrays inside reach the default limit of 32.
  EXPECT_TRUE(parse_event(nested(31)).has_value());
  EXPECT_EQ(error_of(nested(32)), ParseErrorCode::too_deep);
  EXPECT_EQ(error_of(nested(100000)), ParseErrorCode::too_deep);
  ParseLimits shallow;
  shallow.max_depth = 3;
  EXPECT_TRUE(parse_event(nested(2), shallow).has_value());
  EXPECT_EQ(error_of(nested(3), shallow), ParseErrorCode::too_deep);
}

TEST(PayloadErrors, MissingFields) {
  EXPECT_EQ(error_of(R"({"whatsapp_call_id":"X1"})"), ParseErrorCode::missing_field);
  EXPECT_EQ(error_of(R"({"type":"CALL"})"), ParseErrorCode::missing_field);
  EXPECT_EQ(error_of(R"({"type":"CALL","whatsapp_call_id":null})"), ParseErrorCode::missing_field);
  EXPECT_EQ(error_of(R"({"type":"RECORD","whatsapp_call_id":"X1"})"), ParseErrorCode::missing_field);
  EXPECT_EQ(error_of(R"({"type":"RECORD","record_status":"READY"})"), ParseErrorCode::missing_field);
}

TEST(PayloadErrors, BadFieldTypes) {
  const char* bodies[] = {
      R"({"type":5})",
      R"({"type":["CALL"]})",
      R"({"type":"CALL","whatsapp_call_id":"X1","duration":"45"})",
      R"({"type":"CALL","whatsapp_call_id":"X1","duration":-1})",
      R"({"type":"CALL","whatsapp_call_id":"X1","duration":1e999})",
      R"({"type":"CALL","whatsapp_call_id":"X1","duration":1e300})",
      R"({"type":"CALL","whatsapp_call_id":"X1","status":3})",
      R"({"type":"CALL","whatsapp_call_id":"X1","direction":true})",
      R"({"type":"CALL","whatsapp_call_id":"X1","caller":{"n":"1"}})",
      R"({"type":"CALL","whatsapp_call_id":"X1","caller":-5})",
      R"({"type":"CALL","whatsapp_call_id":"X1","caller":"line\nbreak"})",
      R"({"type":"RECORD","whatsapp_call_id":"X1","record_status":7})",
      R"({"type":"RECORD","whatsapp_call_id":"X1","record_status":"READY","record_url":42})",
      R"({"type":"DEVICE","phone":[]})",
      R"({"type":"CALL","type":"RECORD","whatsapp_call_id":"X1","record_status":"READY"})",
  };
  for (const char* body : bodies) EXPECT_EQ(error_of(body), ParseErrorCode::bad_field_type) << body;
}

TEST(PayloadErrors, StringsOverTheirLimits) {
  const std::string long_url = "https://storage.wavoip.com/" + std::string(2048, 'a');
  EXPECT_EQ(error_of(R"({"type":"RECORD","whatsapp_call_id":"X1","record_status":"READY","record_url":")" + long_url +
                     R"("})"),
            ParseErrorCode::bad_field_type);
  const std::string url_at_limit = std::string(2048, 'a');
  EXPECT_TRUE(parse_event(R"({"type":"RECORD","whatsapp_call_id":"X1","record_status":"READY","record_url":")" +
                          url_at_limit + R"("})"));
  EXPECT_EQ(error_of(R"({"type":"DEVICE","phone":")" + std::string(65, '1') + R"("})"), ParseErrorCode::bad_field_type);
  EXPECT_TRUE(parse_event(R"({"type":"DEVICE","phone":")" + std::string(64, '1') + R"("})"));
  EXPECT_EQ(error_of(R"({"type":")" + std::string(65, 'T') + R"("})"), ParseErrorCode::bad_field_type);
}

TEST(PayloadErrors, IntegerIdsObeyTheTextLimit) {
  // A number is stored as its digits, so it must fit the same limit as the string form
  // (a fuzzing finding: a 16-digit id_session passed a limit of 8).
  ParseLimits tight;
  tight.max_text_length = 8;
  EXPECT_EQ(error_of(R"({"type":"CALL","whatsapp_call_id":"X1","id_session":7891000014302670})", tight),
            ParseErrorCode::bad_field_type);
  EXPECT_EQ(error_of(R"({"type":"CALL","whatsapp_call_id":"X1","caller":123456789})", tight),
            ParseErrorCode::bad_field_type);
  const auto at_limit = parse_event(R"({"type":"CALL","whatsapp_call_id":"X1","id_session":12345678})", tight);
  ASSERT_TRUE(at_limit.has_value());
  EXPECT_EQ(std::get<CallEvent>(*at_limit).session_id, "12345678");
}

TEST(PayloadErrors, BadCallIds) {
  const char* ids[] = {"-1",           "1.5",          "1e3",       "99999999999999999999999",
                       "true",         "[]",           "{}",        R"("")",
                       R"("abc/def")", R"("abc def")", R"("ação")", R"("a%20b")"};
  for (const char* id : ids) {
    EXPECT_EQ(error_of(std::string(R"({"type":"RECORD","record_status":"READY","whatsapp_call_id":)") + id + "}"),
              ParseErrorCode::bad_call_id)
        << id;
  }
}

TEST(PayloadErrors, CallIdLengthLimit) {
  const std::string ok(128, 'A');
  EXPECT_EQ(as_call(parse_event(R"({"type":"CALL","whatsapp_call_id":")" + ok + R"("})")).call_id, ok);
  EXPECT_EQ(error_of(R"({"type":"CALL","whatsapp_call_id":")" + ok + R"(A"})"), ParseErrorCode::bad_call_id);
}

TEST(PayloadErrors, CallIdCharsetAllowsDocumentedPunctuation) {
  EXPECT_EQ(as_call(parse_event(R"({"type":"CALL","whatsapp_call_id":"a_b.c:d-e"})")).call_id, "a_b.c:d-e");
}

TEST(PayloadHugeNumbers, LargestUnsignedCallIdIsAccepted) {
  EXPECT_EQ(as_call(parse_event(R"({"type":"CALL","whatsapp_call_id":18446744073709551615})")).call_id,
            "18446744073709551615");
  EXPECT_EQ(as_call(parse_event(R"({"type":"CALL","whatsapp_call_id":0})")).call_id, "0");
  EXPECT_EQ(error_of(R"({"type":"CALL","whatsapp_call_id":18446744073709551616})"), ParseErrorCode::bad_call_id);
}

TEST(PayloadErrors, MessagesNameTheFieldButNotTheValue) {
  const auto r = parse_event(R"({"type":"CALL","whatsapp_call_id":"<script>alert(1)</script>"})");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("whatsapp_call_id"), std::string::npos);
  EXPECT_EQ(r.error().message.find("<script>"), std::string::npos);
}

TEST(PayloadErrors, ErrorCodeNames) {
  EXPECT_EQ(to_string(ParseErrorCode::invalid_json), "invalid_json");
  EXPECT_EQ(to_string(ParseErrorCode::not_object), "not_object");
  EXPECT_EQ(to_string(ParseErrorCode::too_deep), "too_deep");
  EXPECT_EQ(to_string(ParseErrorCode::missing_field), "missing_field");
  EXPECT_EQ(to_string(ParseErrorCode::bad_field_type), "bad_field_type");
  EXPECT_EQ(to_string(ParseErrorCode::bad_call_id), "bad_call_id");
}

}  // namespace
}  // namespace wavoip
