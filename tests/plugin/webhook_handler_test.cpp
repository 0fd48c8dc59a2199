// The plugin's webhook handler (plugin/src/webhook.*) as a sender sees it, without a host process:
// the plugin is created through its C entry in the in-process fake host (tests/support) with a
// real SQLite store in a temporary directory, and each delivery is handed to the route the plugin
// registered. The store writer runs on the "loop" (store_writer "loop"): the fake host runs the
// main-thread callbacks at the end of each dispatch, so the answer of a delivery, given once it
// is committed, is there when dispatch returns.
#include "fake_host.hpp"  // tests/support
#include "temp_dir.hpp"   // tests/support

#include <hdp/hdp.h>

#include <SQLiteCpp/Database.h>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

extern "C" const hdp_plugin_entry_t hdp_plugin_entry_v1;

namespace {

namespace json = boost::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kKey = "test-key-0123456789abcdef";
const std::string kKeyedConfig = std::string(R"({"webhook_keys":[{"key":")") + kKey +
                                 R"("}],"base_url":"https://storage.wavoip.invalid/",)"
                                 R"("allowed_hosts":["storage.wavoip.invalid"],"max_body_bytes":1024,)"
                                 R"("store_writer":"loop"})";
const std::string kOpenConfig =
    R"({"base_url":"https://storage.wavoip.invalid/","allowed_hosts":["storage.wavoip.invalid"],"store_writer":"loop"})";

std::string record_event(const std::string& call_id, const std::string& status = "MIXING") {
  return R"({"type":"RECORD","whatsapp_call_id":")" + call_id + R"(","record_status":")" + status + R"("})";
}

const Headers kJson = {{"Content-Type", "application/json"}};

class WebhookHandler : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(hdp_plugin_entry_v1.init("")); }

  void TearDown() override {
    if (plugin_ != nullptr) {
      plugin_->stop(plugin_);
      plugin_->destroy(plugin_);
    }
    host_.reset();
    hdp_plugin_entry_v1.deinit();
  }

  void start(const std::string& config) {
    host_ = std::make_unique<testsupport::FakeHost>(config, dir_.path().string());
    host_->offer_metrics = true;
    plugin_ = hdp_plugin_entry_v1.create_plugin(host_->host());
    ASSERT_NE(plugin_, nullptr);
    ASSERT_EQ(plugin_->init(plugin_), HDP_OK) << log();
    ASSERT_EQ(plugin_->start(plugin_), HDP_OK) << log();
  }

  // POST /webhooks/wavoip<path_tail>?<query>: the one answer (a test failure unless exactly one).
  testsupport::FakeAnswer post(const std::string& path_tail, const std::string& body, const Headers& headers = kJson,
                               const std::string& query = {}) {
    const std::string path = "/webhooks/wavoip" + path_tail;
    const testsupport::FakeRoute* route = host_->route_for("POST", path);
    EXPECT_NE(route, nullptr) << "no route for " << path;
    if (route == nullptr) return {};
    std::vector<testsupport::FakeAnswer> answers = host_->dispatch(*route, path, query, headers, body);
    EXPECT_EQ(answers.size(), 1u) << "answers to " << path;
    if (answers.empty()) return {};
    EXPECT_EQ(answers[0].content_type, "application/json");
    return answers[0];
  }

  testsupport::FakeAnswer post_keyed(const std::string& body, const Headers& headers = kJson) {
    return post(std::string("/") + kKey, body, headers);
  }

  static json::object body_of(const testsupport::FakeAnswer& answer) {
    json::error_code ec;
    json::value v = json::parse(answer.body, ec);
    EXPECT_FALSE(ec) << answer.body;
    return !ec && v.is_object() ? v.as_object() : json::object{};
  }

  std::string log() const {
    std::string all;
    if (host_) {
      for (const std::string& line : host_->log) all += line + "\n";
    }
    return all;
  }

  size_t log_count(const std::string& needle) const {
    size_t n = 0;
    for (const std::string& line : host_->log) n += line.find(needle) != std::string::npos ? 1 : 0;
    return n;
  }

  // The labels of the last update of wavoip_webhook_deliveries_total: {type, status}.
  std::vector<std::string> last_delivery_labels() const {
    for (auto it = host_->updates.rbegin(); it != host_->updates.rend(); ++it) {
      if (it->family == "wavoip_webhook_deliveries_total") return it->labels;
    }
    return {};
  }

  int64_t stored_deliveries() const {
    SQLite::Database db((dir_.path() / "wavoip.sqlite").string(), SQLite::OPEN_READONLY);
    return db.execAndGet("SELECT COUNT(*) FROM deliveries").getInt64();
  }

  testsupport::TempDir dir_{"wavoip-webhook"};
  std::unique_ptr<testsupport::FakeHost> host_;
  const hdp_plugin_t* plugin_ = nullptr;
};

TEST_F(WebhookHandler, RegistersItsRouteWithTheConfiguredBodyLimit) {
  start(kKeyedConfig);
  const testsupport::FakeRoute* route = host_->route_for("POST", "/webhooks/wavoip");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->match, HDP_HTTP_MATCH_PREFIX);  // /webhooks/wavoip/<key> too
  EXPECT_EQ(route->max_body_bytes, 1024u);
}

TEST_F(WebhookHandler, AValidDeliveryIsAnswered202OnceStored) {
  start(kKeyedConfig);
  const testsupport::FakeAnswer first = post_keyed(record_event("call-1"));
  EXPECT_EQ(first.status, 202) << first.body;
  const json::object body = body_of(first);
  EXPECT_EQ(body.at("status"), "accepted");
  EXPECT_EQ(body.at("type"), "RECORD");
  ASSERT_TRUE(body.at("delivery_id").is_int64()) << first.body;
  EXPECT_EQ(stored_deliveries(), 1);
  EXPECT_EQ(log_count("[WaVoIP Webhook] Received event: RECORD (call call-1)"), 1u) << log();
  EXPECT_EQ(last_delivery_labels(), (std::vector<std::string>{"RECORD", "202"}));

  // Each delivery is stored as its own row, with its own id.
  const testsupport::FakeAnswer second = post_keyed(record_event("call-2"));
  EXPECT_EQ(second.status, 202) << second.body;
  EXPECT_GT(body_of(second).at("delivery_id").as_int64(), body.at("delivery_id").as_int64());
  EXPECT_EQ(stored_deliveries(), 2);
}

TEST_F(WebhookHandler, TheKeyIsAcceptedInThePathTheHeaderOrTheQuery) {
  start(kKeyedConfig);
  EXPECT_EQ(post_keyed(record_event("in-path")).status, 202);
  EXPECT_EQ(
      post("", record_event("in-header"), {{"Content-Type", "application/json"}, {"X-Webhook-Token", kKey}}).status,
      202);
  EXPECT_EQ(post("", record_event("in-query"), kJson, std::string("token=") + kKey).status, 202);
  EXPECT_EQ(stored_deliveries(), 3);
}

TEST_F(WebhookHandler, AMissingOrWrongKeyIs401AndNothingIsStored) {
  start(kKeyedConfig);
  const std::string unauthorized = R"({"error":"unauthorized"})";
  const testsupport::FakeAnswer none = post("", record_event("no-key"));
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.body, unauthorized);
  EXPECT_EQ(post("/wrong-key-0123456789abcdef", record_event("wrong-path")).body, unauthorized);
  EXPECT_EQ(post("", record_event("wrong-header"), {{"Content-Type", "application/json"}, {"X-Webhook-Token", "nope"}})
                .status,
            401);
  EXPECT_EQ(post("", record_event("wrong-query"), kJson, "token=nope").status, 401);
  // A prefix of the key is no key.
  EXPECT_EQ(post("/test-key", record_event("prefix")).status, 401);
  // Authentication comes first: a malformed body without a key says nothing about the body.
  EXPECT_EQ(post("", "{not json").status, 401);
  EXPECT_EQ(stored_deliveries(), 0);
  EXPECT_EQ(log_count("Refused a delivery: missing or wrong webhook key"), 6u) << log();
  EXPECT_EQ(last_delivery_labels(), (std::vector<std::string>{"none", "401"}));
}

TEST_F(WebhookHandler, OpenModeTakesThePlainPathAndRefusesAKeyInIt) {
  start(kOpenConfig);
  EXPECT_EQ(post("", record_event("open-1")).status, 202);
  const testsupport::FakeAnswer keyed = post(std::string("/") + kKey, record_event("open-2"));
  EXPECT_EQ(keyed.status, 404);
  EXPECT_EQ(keyed.body, R"({"error":"not found"})");
  EXPECT_EQ(stored_deliveries(), 1);
}

TEST_F(WebhookHandler, AMalformedDeliveryIs400WithWhatIsWrong) {
  start(kKeyedConfig);
  const struct {
    std::string body;
    std::string error_prefix;
  } cases[] = {
      {"{not json", "invalid_json: "},
      {"", "invalid_json: "},
      {R"([{"type":"RECORD"}])", "not_object: "},
      {R"({"type":"RECORD","record_status":"READY"})", "missing_field: "},
      {R"({"type":"RECORD","whatsapp_call_id":"c1","record_status":7})", "bad_field_type: "},
      {R"({"type":"RECORD","whatsapp_call_id":"../etc","record_status":"READY"})", "bad_call_id: "},
  };
  for (const auto& c : cases) {
    const testsupport::FakeAnswer answer = post_keyed(c.body);
    EXPECT_EQ(answer.status, 400) << c.body << " -> " << answer.body;
    const std::string error(body_of(answer).at("error").as_string());
    EXPECT_EQ(error.rfind(c.error_prefix, 0), 0u) << c.body << " -> " << error;
  }
  EXPECT_EQ(stored_deliveries(), 0);
  EXPECT_EQ(log_count("[WaVoIP Webhook] Refused a delivery: invalid_json"), 2u) << log();
  EXPECT_EQ(last_delivery_labels(), (std::vector<std::string>{"none", "400"}));
}

TEST_F(WebhookHandler, ABodyOverMaxBodyBytesIs413EvenWhenTheHostLetItThrough) {
  start(kKeyedConfig);  // max_body_bytes 1024
  const std::string event = record_event("big-1");
  const std::string at_limit = event + std::string(1024 - event.size(), ' ');  // trailing whitespace is JSON
  ASSERT_EQ(at_limit.size(), 1024u);
  EXPECT_EQ(post_keyed(at_limit).status, 202);
  // A host answers 413 itself above the route's limit; the handler does not rely on that.
  const testsupport::FakeAnswer over = post_keyed(at_limit + " ");
  EXPECT_EQ(over.status, 413);
  EXPECT_EQ(over.body, R"({"error":"body too large"})");
  EXPECT_EQ(stored_deliveries(), 1);
  EXPECT_EQ(log_count("Refused a delivery: body larger than max_body_bytes"), 1u) << log();
}

TEST_F(WebhookHandler, AContentTypeThatIsNotJsonIs415) {
  start(kKeyedConfig);
  const Headers form = {{"Content-Type", "application/x-www-form-urlencoded"}};
  const testsupport::FakeAnswer refused = post_keyed(record_event("form"), form);
  EXPECT_EQ(refused.status, 415);
  EXPECT_EQ(refused.body, R"({"error":"content type must be application/json"})");
  EXPECT_EQ(post_keyed(record_event("text"), {{"Content-Type", "text/plain"}}).status, 415);
  // JSON with parameters, a +json type, or no type at all (some senders omit it) are taken.
  EXPECT_EQ(post_keyed(record_event("charset"), {{"Content-Type", "application/json; charset=utf-8"}}).status, 202);
  EXPECT_EQ(post_keyed(record_event("vendor"), {{"Content-Type", "application/vnd.wavoip+json"}}).status, 202);
  EXPECT_EQ(post_keyed(record_event("absent"), {}).status, 202);
  EXPECT_EQ(stored_deliveries(), 3);
}

TEST_F(WebhookHandler, ADeliveryThatCannotBeStoredIs503NeverA202) {
  start(kKeyedConfig);
  {
    // Another connection holds the write lock past the store's busy timeout.
    SQLite::Database other((dir_.path() / "wavoip.sqlite").string(), SQLite::OPEN_READWRITE);
    other.exec("BEGIN EXCLUSIVE");
    const testsupport::FakeAnswer refused = post_keyed(record_event("locked-1"));
    EXPECT_EQ(refused.status, 503) << refused.body;
    EXPECT_EQ(refused.body, R"({"error":"could not store the event, try again"})");
    EXPECT_EQ(log_count("[WaVoIP Webhook] Could not store a RECORD delivery (call locked-1)"), 1u) << log();
    EXPECT_EQ(last_delivery_labels(), (std::vector<std::string>{"RECORD", "503"}));
    other.exec("ROLLBACK");
  }
  EXPECT_EQ(stored_deliveries(), 0);
  // The sender's retry, once the store is writable again, is taken.
  EXPECT_EQ(post_keyed(record_event("locked-1")).status, 202);
  EXPECT_EQ(stored_deliveries(), 1);
}

}  // namespace
