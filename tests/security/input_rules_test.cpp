// The input rules the security review added, checked directly on the pure core (the corpus shows
// them end to end): nothing after the JSON document, not even behind an unknown type; no call id
// made of dots (it would become a dot segment of the recording URL); the retry route's call id
// obeys the webhook's rules; an inbox name the host could not store is a configuration error.
#include <wavoip/core/config.hpp>
#include <wavoip/core/payload.hpp>
#include <wavoip/core/recording_url.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

using wavoip::ParseErrorCode;

ParseErrorCode error_of(std::string_view body) {
  wavoip::ParseResult r = wavoip::parse_event(body);
  EXPECT_FALSE(r.has_value()) << "accepted: " << body;
  return r ? ParseErrorCode::invalid_json : r.error().code;
}

TEST(InputRules, NothingMayFollowTheDocumentWhateverTheType) {
  for (const char* body : {R"({"type":"PRESENCE"} garbage)", R"({"type":"PRESENCE"}{})", R"({"type":"X"}])",
                           R"({"type":"RECORD","whatsapp_call_id":"a","record_status":"READY"} x)"}) {
    EXPECT_EQ(error_of(body), ParseErrorCode::invalid_json) << body;
    EXPECT_NE(wavoip::parse_event(body).error().message.find("extra data"), std::string::npos) << body;
  }
  EXPECT_TRUE(wavoip::parse_event("{\"type\":\"PRESENCE\"} \r\n\t").has_value()) << "whitespace is fine";
}

TEST(InputRules, CallIdsOfDotsOnlyAreRefused) {
  for (const char* id : {".", "..", "...", "...."}) {
    EXPECT_EQ(error_of(std::string(R"({"type":"RECORD","record_status":"READY","whatsapp_call_id":")") + id + "\"}"),
              ParseErrorCode::bad_call_id)
        << id;
  }
  // Dots among other characters stay legal (the documented charset), and never leave the
  // path segment of the recording URL.
  EXPECT_TRUE(wavoip::parse_event(R"({"type":"RECORD","record_status":"READY","whatsapp_call_id":"..a"})"));
  EXPECT_EQ(wavoip::recording_url_for_call("https://storage.wavoip.com/", "..a"), "https://storage.wavoip.com/..a");
}

TEST(InputRules, IsValidCallIdMatchesTheParser) {
  EXPECT_TRUE(wavoip::is_valid_call_id("ABCDEF0123456789ABCDEF0123456789"));
  EXPECT_TRUE(wavoip::is_valid_call_id("a_b.c:d-e"));
  EXPECT_TRUE(wavoip::is_valid_call_id(std::string(128, 'x')));
  EXPECT_FALSE(wavoip::is_valid_call_id(std::string(129, 'x')));
  for (const char* bad : {"", ".", "..", "a/b", "a b", "a%00", "../x", "a\nb"}) {
    EXPECT_FALSE(wavoip::is_valid_call_id(bad)) << bad;
  }
  EXPECT_FALSE(wavoip::is_valid_call_id(std::string("a\0b", 3)));
  wavoip::ParseLimits short_ids;
  short_ids.max_call_id_length = 4;
  EXPECT_FALSE(wavoip::is_valid_call_id("abcde", short_ids));
}

TEST(InputRules, AnInboxTheHostCannotStoreIsAConfigurationError) {
  const std::string key = R"({"webhook_keys":[{"key":"0123456789abcdef","inbox":)";
  EXPECT_TRUE(wavoip::parse_config(key + R"("Vendas SP"}]})"));
  auto control = wavoip::parse_config(key + R"("a\nb"}]})");
  ASSERT_FALSE(control);
  EXPECT_EQ(control.error().key, "webhook_keys[0].inbox");
  EXPECT_FALSE(wavoip::parse_config(key + "\"" + std::string(256, 'i') + "\"}]}"));
}

}  // namespace
