// Webhook authentication end to end: the real host, the built plugin, real HTTP. Keys come in the
// path (/webhooks/wavoip/<key>), the X-Webhook-Token header or ?token=; each key may name the
// inbox its calls go to; without keys the plain path is open and the plugin warns once.
#include "security_fixture.hpp"

namespace {

namespace json = boost::json;
using security::kKey;
using security::kKey2;

std::string record(const std::string& call_id, const std::string& status = "MIXING") {
  return json::serialize(json::object{{"type", "RECORD"}, {"whatsapp_call_id", call_id}, {"record_status", status}});
}

std::string call_created(const std::string& call_id) {
  return json::serialize(json::object{{"type", "CALL"},
                                      {"action", "CREATE"},
                                      {"whatsapp_call_id", call_id},
                                      {"caller", "5511999990001"},
                                      {"receiver", "5511888880002"},
                                      {"status", "INCOMING_RING"},
                                      {"direction", "INCOMING"}});
}

class WebhookAuth : public e2e::PluginHost {
 protected:
  testsupport::HttpResponse post(const std::string& path, const std::string& body,
                                 std::vector<std::string> headers = {}) {
    headers.push_back("Content-Type: application/json");
    return post_webhook(body, path, headers);
  }
};

TEST_F(WebhookAuth, TheKeyIsAcceptedInThePathTheHeaderOrTheQuery) {
  start_host(security::production_config(security::both_keys()));
  EXPECT_EQ(post("/webhooks/wavoip/" + kKey, record("path-1")).status, 202);
  EXPECT_EQ(post("/webhooks/wavoip", record("header-1"), {"X-Webhook-Token: " + kKey}).status, 202);
  EXPECT_EQ(post("/webhooks/wavoip?token=" + kKey, record("query-1")).status, 202);
  // Clients may percent-encode what they send; the second key has . _ ~ - in it.
  EXPECT_EQ(post("/webhooks/wavoip/" + security::encode_every_byte(kKey2), record("path-2")).status, 202);
  EXPECT_EQ(post("/webhooks/wavoip?token=" + security::encode_every_byte(kKey2), record("query-2")).status, 202);
  EXPECT_EQ(count_in_log("Refused a delivery"), 0u);
}

TEST_F(WebhookAuth, WrongMissingPartialAndNearMissKeysAreRefusedWithoutDetail) {
  start_host(security::production_config(security::both_keys()));
  const std::map<std::string, std::string> keys = security::key_placeholders();
  struct Attempt {
    std::string what;
    std::string path;
    std::vector<std::string> headers;
  };
  const std::vector<Attempt> attempts = {
      {"missing", "/webhooks/wavoip", {}},
      {"wrong", "/webhooks/wavoip/this-is-not-the-key-at-all", {}},
      {"prefix in the path", "/webhooks/wavoip/" + keys.at("key_prefix"), {}},
      {"prefix in the header", "/webhooks/wavoip", {"X-Webhook-Token: " + keys.at("key_prefix")}},
      {"prefix in the query", "/webhooks/wavoip?token=" + keys.at("key_prefix"), {}},
      {"one character more", "/webhooks/wavoip/" + keys.at("key_longer"), {}},
      {"same length, first character off", "/webhooks/wavoip/" + keys.at("key_near_first"), {}},
      {"same length, last character off", "/webhooks/wavoip", {"X-Webhook-Token: " + keys.at("key_near_last")}},
      {"same length, other case", "/webhooks/wavoip?token=" + keys.at("key_upper"), {}},
      {"empty header", "/webhooks/wavoip", {"X-Webhook-Token:"}},
      {"both keys glued together", "/webhooks/wavoip/" + kKey + kKey2, {}},
  };
  for (size_t i = 0; i < attempts.size(); ++i) {
    SCOPED_TRACE(attempts[i].what);
    const std::string call_id = "refused-" + std::to_string(i);
    auto answer = post(attempts[i].path, call_created(call_id), attempts[i].headers);
    EXPECT_EQ(answer.status, 401);
    EXPECT_EQ(answer.body, R"({"error":"unauthorized"})");
    EXPECT_FALSE(message(call_id).has_value()) << "a refused delivery must not create the call";
  }
  EXPECT_EQ(count_in_log("Refused a delivery: missing or wrong webhook key"), attempts.size());
  // The log never repeats what the caller sent as a key.
  EXPECT_EQ(count_in_log(keys.at("key_prefix")), 0u);
  EXPECT_EQ(count_in_log("this-is-not-the-key-at-all"), 0u);
  ASSERT_EQ(host_->stop(), 0);
  EXPECT_TRUE(security::stored_delivery_bodies(security::plugin_database(dir_->path() / "host")).empty());
}

TEST_F(WebhookAuth, TheInboxOfTheKeyReachesTheCallsMessage) {
  start_host(security::production_config(security::both_keys()));
  ASSERT_EQ(post("/webhooks/wavoip/" + kKey, call_created("inbox-sales")).status, 202);
  ASSERT_EQ(post("/webhooks/wavoip", call_created("inbox-default"), {"X-Webhook-Token: " + kKey2}).status, 202);
  ASSERT_TRUE(testsupport::eventually([&] { return message("inbox-sales") && message("inbox-default"); }));
  EXPECT_EQ(message("inbox-sales")->at("inbox"), security::kKeyInbox.c_str());
  const std::string default_inbox(message("inbox-default")->at("inbox").as_string());
  EXPECT_NE(default_inbox, security::kKeyInbox);

  // The inbox is the call's: a later event with the other key does not move it.
  ASSERT_EQ(post("/webhooks/wavoip?token=" + kKey2, record("inbox-sales", "RECORDING")).status, 202);
  ASSERT_TRUE(wait_for_status("inbox-sales", "waiting"));
  EXPECT_EQ(message("inbox-sales")->at("inbox"), security::kKeyInbox.c_str());
}

TEST_F(WebhookAuth, WithoutKeysThePlainPathIsOpenAndThePluginWarnsOnce) {
  start_host(security::production_config({}));
  EXPECT_EQ(count_in_log("No webhook_keys configured"), 1u);
  EXPECT_EQ(post("/webhooks/wavoip", record("open-1")).status, 202);
  // There is no key to put in the path: anything after the route is unknown.
  auto extra = post("/webhooks/wavoip/whatever-key-0123456789", record("open-2"));
  EXPECT_EQ(extra.status, 404);
  EXPECT_EQ(post("/webhooks/wavoip", record("open-3")).status, 202);
  EXPECT_EQ(count_in_log("No webhook_keys configured"), 1u) << "once at start, not per delivery";
}

TEST_F(WebhookAuth, WithKeysConfiguredThereIsNoOpenModeWarning) {
  start_host(security::production_config(security::both_keys()));
  EXPECT_EQ(count_in_log("No webhook_keys configured"), 0u);
  EXPECT_EQ(count_in_log("DEVELOPMENT MODE"), 0u) << "development mode is off by default";
}

TEST_F(WebhookAuth, TheRetryRouteRequiresAKey) {
  start_host(security::production_config(security::both_keys()));
  ASSERT_EQ(post("/webhooks/wavoip/" + kKey, record("retry-1", "RECORDING")).status, 202);
  const std::string route = "/wavoip/recordings/retry?call_id=retry-1";
  auto retry = [&](const std::string& target, std::vector<std::string> headers) {
    return testsupport::http_request("POST", host_->base_url() + target, "", headers);
  };
  EXPECT_EQ(retry(route, {}).status, 401);
  EXPECT_EQ(retry(route, {"X-Webhook-Token: " + security::key_placeholders().at("key_near_last")}).status, 401);
  EXPECT_EQ(retry(route + "&token=" + security::key_placeholders().at("key_prefix"), {}).status, 401);
  EXPECT_EQ(count_in_log("Manual retry requested for call retry-1"), 0u);

  auto by_header = retry(route, {"X-Webhook-Token: " + kKey2});
  EXPECT_EQ(by_header.status, 202) << by_header.body;
  auto by_query = retry(route + "&token=" + kKey, {});
  EXPECT_EQ(by_query.status, 202) << by_query.body;
  EXPECT_EQ(count_in_log("Manual retry requested for call retry-1"), 2u);
}

TEST_F(WebhookAuth, InOpenModeOnlyThisMachineMayAskForARetry) {
  start_host(security::production_config({}));
  ASSERT_EQ(post("/webhooks/wavoip", record("retry-open", "RECORDING")).status, 202);
  // The test talks over loopback, so it is "this machine"; a remote peer gets 401 (see
  // RecordingsPlugin::handle_retry), which a loopback-only test cannot show.
  auto answer =
      testsupport::http_request("POST", host_->base_url() + "/wavoip/recordings/retry?call_id=retry-open", "", {});
  EXPECT_EQ(answer.status, 202) << answer.body;
}

}  // namespace
