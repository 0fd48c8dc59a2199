// What the URL policy proves: a webhook's record_url is fetched only when it is https on an
// allow-listed host; everything else falls back to the URL built from the call id.

#include "wavoip/core/recording_url.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace wavoip {
namespace {

TEST(RecordingUrlPolicy, AllowsHttpsOnAllowedHosts) {
  const UrlPolicy policy;
  EXPECT_FALSE(url_refusal("https://storage.wavoip.com/123456", policy));
  EXPECT_FALSE(url_refusal("https://STORAGE.wavoip.com/123456", policy));
  EXPECT_FALSE(url_refusal("https://storage.wavoip.com:443/123456", policy));
}

TEST(RecordingUrlPolicy, RefusesEverythingElse) {
  const UrlPolicy policy;
  const char* refused[] = {
      "http://storage.wavoip.com/1",        // not https
      "https://storage.wavoip.com:8443/1",  // other port
      "https://evil.example/1",             // other host
      "https://storage.wavoip.com.evil.example/1",
      "https://user:pw@storage.wavoip.com/1",  // credentials
      "https://127.0.0.1/1",                   // loopback without dev mode
      "https://169.254.169.254/latest/meta-data",
      "https://[::1]/1",
      "file:///etc/passwd",
      "gopher://storage.wavoip.com/1",
      "//storage.wavoip.com/1",  // not absolute
      "https://storage%2ewavoip.com/1",
      "",
  };
  for (const char* url : refused) EXPECT_TRUE(url_refusal(url, policy)) << url;
}

TEST(RecordingUrlPolicy, LoopbackOnlyInDevMode) {
  UrlPolicy dev;
  dev.allow_insecure_loopback = true;
  EXPECT_FALSE(url_refusal("http://127.0.0.1:8081/rec/1", dev));
  EXPECT_FALSE(url_refusal("http://localhost:8081/rec/1", dev));
  EXPECT_FALSE(url_refusal("http://[::1]:8081/rec/1", dev));
  EXPECT_TRUE(url_refusal("http://10.0.0.1/rec/1", dev));
  EXPECT_TRUE(url_refusal("http://storage.wavoip.com/1", dev));  // dev mode relaxes loopback only
}

TEST(RecordingUrlPolicy, LoopbackHosts) {
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.1.2.3"));
  EXPECT_TRUE(is_loopback_host("[::1]"));
  EXPECT_TRUE(is_loopback_host("::ffff:127.0.0.1"));
  EXPECT_FALSE(is_loopback_host("::ffff:10.0.0.1"));
  EXPECT_FALSE(is_loopback_host("128.0.0.1"));
  EXPECT_FALSE(is_loopback_host("localhost.evil.example"));
}

TEST(RecordingUrlBuild, CallIdIsPercentEncoded) {
  EXPECT_EQ(recording_url_for_call("https://storage.wavoip.com/", "123456"), "https://storage.wavoip.com/123456");
  EXPECT_EQ(recording_url_for_call("https://storage.wavoip.com", "a:b"), "https://storage.wavoip.com/a%3Ab");
  EXPECT_EQ(percent_encode("a b/ç~-._"), "a%20b%2F%C3%A7~-._");
}

TEST(PercentDecode, DecodesEscapesOfEitherCase) {
  EXPECT_EQ(percent_decode("a%20b%2F%2f"), "a b//");
  EXPECT_EQ(percent_decode("%00"), std::string(1, '\0'));
  EXPECT_EQ(percent_decode(""), "");
  EXPECT_EQ(percent_decode("plain-text_~."), "plain-text_~.");
  // Characters that should have been escaped pass through as they are.
  EXPECT_EQ(percent_decode("a b/ç"), "a b/ç");
}

TEST(PercentDecode, Utf8) {
  EXPECT_EQ(percent_decode("%C3%A7%c3%a7"), "çç");
  EXPECT_EQ(percent_decode("%E2%82%AC"), "€");
  // Bytes, not characters: an escape that is not valid UTF-8 still decodes.
  EXPECT_EQ(percent_decode("%FF"), std::string(1, '\xff'));
}

TEST(PercentDecode, RefusesMalformedEscapes) {
  EXPECT_EQ(percent_decode("%zz"), std::nullopt);
  EXPECT_EQ(percent_decode("%4g"), std::nullopt);
  EXPECT_EQ(percent_decode("a%zzb"), std::nullopt);
  EXPECT_EQ(percent_decode("%4"), std::nullopt);
  EXPECT_EQ(percent_decode("ab%4"), std::nullopt);
  EXPECT_EQ(percent_decode("%"), std::nullopt);
  EXPECT_EQ(percent_decode("ab%"), std::nullopt);
  EXPECT_EQ(percent_decode("a%b"), std::nullopt);
  EXPECT_EQ(percent_decode("%zz", true), std::nullopt);
  EXPECT_EQ(percent_decode("+%4", true), std::nullopt);
}

TEST(PercentDecode, PlusIsASpaceOnlyWhenAsked) {
  EXPECT_EQ(percent_decode("a+b"), "a+b");
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
  EXPECT_EQ(percent_decode("a%2Bb", true), "a+b");
}

TEST(PercentDecode, InverseOfPercentEncode) {
  const std::string texts[] = {"", "123456", "a b/ç~-._", "100%", "+plus+", std::string("\0\x01\xff", 3)};
  for (const std::string& text : texts) {
    EXPECT_EQ(percent_decode(percent_encode(text)), text) << text;
    EXPECT_EQ(percent_decode(percent_encode(text), true), text) << text;
  }
}

TEST(RecordingUrlChoose, RecordUrlOnlyWhenAllowed) {
  const UrlPolicy policy;
  const std::string base = "https://storage.wavoip.com/";
  EXPECT_EQ(choose_recording_url(base, policy, "42", "https://storage.wavoip.com/42.mp3"),
            "https://storage.wavoip.com/42.mp3");
  EXPECT_EQ(choose_recording_url(base, policy, "42", "https://evil.example/42"), "https://storage.wavoip.com/42");
  EXPECT_EQ(choose_recording_url(base, policy, "42", std::nullopt), "https://storage.wavoip.com/42");
  EXPECT_EQ(choose_recording_url(base, policy, "42", ""), "https://storage.wavoip.com/42");
}

}  // namespace
}  // namespace wavoip
