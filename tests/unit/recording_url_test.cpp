// What the URL policy proves: a webhook's record_url is fetched only when it is https on an
// allow-listed host; everything else falls back to the URL built from the call id.

#include "wavoip/core/recording_url.hpp"

#include <gtest/gtest.h>

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
