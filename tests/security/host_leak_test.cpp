// The stub host with the plugin under real traffic ends cleanly: exit status 0 and no sanitizer
// report in its output. Only the sanitizer build (HDP_SANITIZE=ON, where the host and the plugin
// carry AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer) can see leaks; the
// normal build still checks the clean exit. The canary test proves LeakSanitizer works here.
#include "raw_http.hpp"  // tests/support
#include "security_fixture.hpp"

#include <cstdio>

namespace {

namespace json = boost::json;

// Every report the sanitizers write to stderr starts with one of these.
constexpr const char* kReports[] = {"ERROR: LeakSanitizer", "ERROR: AddressSanitizer",
                                    "runtime error:", "LeakSanitizer has encountered a fatal error"};

[[maybe_unused]] std::string run_and_capture(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  ::pclose(pipe);
  return out;
}

TEST(LeakCanary, LeakSanitizerReportsADeliberateLeak) {
#ifndef HDP_SANITIZED_BUILD
  GTEST_SKIP() << "only the sanitizer build (HDP_SANITIZE=ON) detects leaks";
#else
  const std::string output = run_and_capture(WAVOIP_LEAK_CANARY_PATH);
  EXPECT_NE(output.find("ERROR: LeakSanitizer: detected memory leaks"), std::string::npos)
      << "leak detection does not work here, so a clean host exit would prove nothing:\n"
      << output;
#endif
}

using HostUnderTraffic = e2e::PluginHost;

TEST_F(HostUnderTraffic, EndsWithExitZeroAndNoSanitizerReport) {
  storage_->set_response("/rec-1", [] {
    wavoip::test::ScriptedResponse r;
    r.content_type = "audio/mpeg";
    r.body = e2e::recording_bytes(70000);
    return r;
  }());
  wavoip::test::ScriptedResponse redirect;
  redirect.status = 302;
  redirect.location = "http://169.254.169.254/";
  storage_->set_response("/meta", redirect);
  json::object config = security::production_config(security::both_keys());
  config["base_url"] = storage_->url("/");
  config["allowed_hosts"] = json::array{};
  config["allow_insecure_loopback"] = true;
  start_host(config);
  const std::string keyed = "/webhooks/wavoip/" + security::kKey;

  // A whole call: created, ended, recording fetched and attached.
  auto call = [](const std::string& action, const std::string& status) {
    return json::serialize(json::object{{"type", "CALL"},
                                        {"action", action},
                                        {"whatsapp_call_id", "rec-1"},
                                        {"caller", "5511999990001"},
                                        {"status", status},
                                        {"direction", "INCOMING"},
                                        {"duration", 30}});
  };
  ASSERT_EQ(post_webhook(call("CREATE", "INCOMING_RING"), keyed).status, 202);
  ASSERT_EQ(post_webhook(call("UPDATE", "ENDED"), keyed).status, 202);
  ASSERT_EQ(post_webhook(R"({"type":"RECORD","whatsapp_call_id":"rec-1","record_status":"READY"})", keyed).status, 202);
  ASSERT_TRUE(wait_for_status("rec-1", "attached"));
  EXPECT_EQ(attachment_file("rec-1").body, e2e::recording_bytes(70000));
  // A blocked download, a failed one (nothing at the base URL: 404 means "not ready"), a retry.
  ASSERT_EQ(post_webhook(R"({"type":"RECORD","whatsapp_call_id":"meta-1","record_status":"READY","record_url":")" +
                             storage_->url("/meta") + "\"}",
                         keyed)
                .status,
            202);
  ASSERT_TRUE(wait_for_status("meta-1", "failed"));
  ASSERT_EQ(post_webhook(R"({"type":"RECORD","whatsapp_call_id":"nothing-1","record_status":"READY"})", keyed).status,
            202);
  ASSERT_TRUE(wait_for_status("nothing-1", "waiting"));
  EXPECT_EQ(testsupport::http_request("POST", host_->base_url() + "/wavoip/recordings/retry?call_id=nothing-1", "",
                                      {"X-Webhook-Token: " + security::kKey})
                .status,
            202);
  // Refusals of every kind, from the plugin and from the host.
  EXPECT_EQ(post_webhook("{broken", keyed).status, 400);
  EXPECT_EQ(post_webhook(std::string(100, '['), keyed).status, 400);
  EXPECT_EQ(post_webhook("{}", "/webhooks/wavoip").status, 401);
  EXPECT_EQ(post_webhook("a=b", keyed, {"Content-Type: application/x-www-form-urlencoded"}).status, 415);
  EXPECT_EQ(post_webhook(std::string(200000, ' '), keyed).status, 413);
  const auto header =
      testsupport::raw_exchange(static_cast<uint16_t>(host_->port()),
                                testsupport::build_request("POST", keyed, {"X-Pad: " + std::string(20000, 'x')}, "{}"));
  EXPECT_EQ(header.status, 431);
  // A client that goes away in the middle of a request.
  {
    testsupport::RawConnection gone(static_cast<uint16_t>(host_->port()));
    ASSERT_TRUE(gone.send("POST " + keyed + " HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"type\""));
  }
  EXPECT_EQ(testsupport::http_get(host_->base_url() + "/healthz").status, 200);

  // A restart resumes the waiting call, then the final stop.
  ASSERT_EQ(host_->stop(), 0) << host_->log();
  restart_host();
  EXPECT_EQ(post_webhook(R"({"type":"DEVICE","status":"open"})", keyed).status, 202);
  const int status = host_->stop();
  const std::string log = host_->log();
  EXPECT_EQ(status, 0) << log;
  for (const char* report : kReports) EXPECT_EQ(log.find(report), std::string::npos) << report << " in:\n" << log;
}

}  // namespace
