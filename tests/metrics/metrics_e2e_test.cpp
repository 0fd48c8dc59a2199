// GET /metrics of the real stub host with the real plugin: the output is strict Prometheus text,
// the host's own families count what it served, and a webhook -> download -> attach moves the
// plugin's families by exactly one. Then the same plugin in the C host, which has no
// hdp.metrics/1: the recording is attached all the same.
#include "e2e_fixture.hpp"
#include "hosts.hpp"            // tests/abi
#include "prometheus_text.hpp"  // tests/support

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <hdp/version.h>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace json = boost::json;
using e2e::audio;
using promtext::Labels;
using testsupport::eventually;

std::string ready_event(const std::string& call_id) {
  return json::serialize(json::object{{"type", "RECORD"}, {"whatsapp_call_id", call_id}, {"record_status", "READY"}});
}

class Metrics : public e2e::PluginHost {
 protected:
  // The plugin's id, as the host labels its series.
  std::string plugin_id() {
    auto health = testsupport::http_get(host_->base_url() + "/healthz");
    return std::string(json::parse(health.body).at("plugins").as_array().at(0).at("id").as_string());
  }

  promtext::Exposition scrape() {
    auto response = testsupport::http_get(host_->base_url() + "/metrics");
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.content_type, "text/plain; version=0.0.4; charset=utf-8");
    promtext::ParseResult parsed = promtext::parse(response.body);
    if (const auto* error = std::get_if<std::string>(&parsed)) {
      ADD_FAILURE() << "GET /metrics is not Prometheus text: " << *error << "\n" << response.body;
      return {};
    }
    return std::get<promtext::Exposition>(parsed);
  }

  double value(const promtext::Exposition& metrics, const std::string& name, Labels labels = {}) {
    auto v = metrics.value(name, labels);
    EXPECT_TRUE(v.has_value()) << "no sample " << name;
    return v.value_or(-1);
  }
};

TEST_F(Metrics, TheEndpointIsPrometheusTextWithTheHostsAndThePluginsFamilies) {
  start_host();
  const std::string id = plugin_id();
  const promtext::Exposition m = scrape();

  EXPECT_EQ(value(m, "hdp_host_plugins_loaded"), 1);
  // The ABI version the host was built with, whatever its minor.
  const std::string abi = std::to_string(HDP_VERSION_MAJOR) + "." + std::to_string(HDP_VERSION_MINOR) + "." +
                          std::to_string(HDP_VERSION_PATCH);
  EXPECT_EQ(value(m, "hdp_host_info", {{"version", "0.1.0"}, {"abi_version", abi}}), 1);
  ASSERT_NE(m.family("hdp_host_http_requests_total"), nullptr);
  EXPECT_EQ(m.family("hdp_host_http_requests_total")->type, "counter");

  const std::pair<const char*, const char*> families[] = {
      {"wavoip_webhook_deliveries_total", "counter"},    {"wavoip_fetch_attempts_total", "counter"},
      {"wavoip_fetch_outcomes_total", "counter"},        {"wavoip_attachments_total", "counter"},
      {"wavoip_recordings_failed_total", "counter"},     {"wavoip_pending_polls", "gauge"},
      {"wavoip_ready_to_attached_seconds", "histogram"}, {"wavoip_webhook_commit_batch_size", "histogram"},
      {"hdp_host_message_writes_total", "counter"}};
  for (const auto& [name, type] : families) {
    const promtext::Family* family = m.family(name);
    ASSERT_NE(family, nullptr) << name;
    EXPECT_EQ(family->type, type) << name;
    EXPECT_FALSE(family->help.empty()) << name;
  }
  // Families without labels are there at zero from the start, labelled with the plugin.
  EXPECT_EQ(value(m, "wavoip_fetch_attempts_total", {{"plugin", id}}), 0);
  EXPECT_EQ(value(m, "wavoip_pending_polls", {{"plugin", id}}), 0);
  EXPECT_EQ(value(m, "wavoip_ready_to_attached_seconds_count", {{"plugin", id}}), 0);
}

TEST_F(Metrics, AWebhookDownloadAndAttachMoveThePluginsCountersByOne) {
  storage_->set_response("/m-call-1", audio(e2e::recording_bytes(30000)));
  start_host();
  const std::string id = plugin_id();

  auto answer = post_webhook(ready_event("m-call-1"));
  ASSERT_EQ(answer.status, 202) << answer.body;
  ASSERT_TRUE(wait_for_status("m-call-1", "attached")) << recording_status("m-call-1");

  // The counters move before the status the agent sees, so nothing is left to wait for.
  const promtext::Exposition m = scrape();
  EXPECT_EQ(value(m, "wavoip_webhook_deliveries_total", {{"plugin", id}, {"type", "RECORD"}, {"status", "202"}}), 1);
  EXPECT_EQ(value(m, "wavoip_fetch_attempts_total", {{"plugin", id}}), 1);
  EXPECT_EQ(value(m, "wavoip_fetch_outcomes_total", {{"plugin", id}, {"kind", "ready_file"}}), 1);
  EXPECT_EQ(value(m, "wavoip_attachments_total", {{"plugin", id}, {"result", "ok"}}), 1);
  EXPECT_FALSE(m.value("wavoip_attachments_total", {{"plugin", id}, {"result", "failed"}}).has_value());
  EXPECT_EQ(value(m, "wavoip_recordings_failed_total", {{"plugin", id}}), 0);
  EXPECT_EQ(value(m, "wavoip_ready_to_attached_seconds_count", {{"plugin", id}}), 1);
  EXPECT_EQ(value(m, "wavoip_ready_to_attached_seconds_bucket", {{"plugin", id}, {"le", "+Inf"}}), 1);
  EXPECT_GE(value(m, "wavoip_ready_to_attached_seconds_sum", {{"plugin", id}}), 0);
  // The host counted the delivery under the plugin's route.
  EXPECT_EQ(
      value(m, "hdp_host_http_requests_total", {{"method", "POST"}, {"route", "/webhooks/wavoip"}, {"status", "202"}}),
      1);
}

TEST_F(Metrics, ConcurrentDeliveriesAreEachCommittedOnceAndAnsweredOnce) {
  start_host();
  const std::string id = plugin_id();
  constexpr int kSenders = 12;
  constexpr int kEach = 20;
  std::vector<std::thread> senders;
  std::mutex mutex;
  std::set<long long> delivery_ids;
  std::atomic<int> accepted{0};
  for (int t = 0; t < kSenders; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string call = "gc-" + std::to_string(t) + "-" + std::to_string(i);
        auto answer = post_webhook(json::serialize(
            json::object{{"type", "RECORD"}, {"whatsapp_call_id", call}, {"record_status", "RECORDING"}}));
        if (answer.status != 202) continue;
        ++accepted;
        std::lock_guard lock(mutex);
        delivery_ids.insert(json::parse(answer.body).at("delivery_id").as_int64());
      }
    });
  }
  for (auto& sender : senders) sender.join();
  ASSERT_EQ(accepted.load(), kSenders * kEach);
  // One answer per delivery, each naming its own stored row.
  EXPECT_EQ(delivery_ids.size(), static_cast<size_t>(kSenders * kEach));
  const promtext::Exposition m = scrape();
  // Every delivery went through exactly one group commit, however they were batched.
  EXPECT_EQ(value(m, "wavoip_webhook_commit_batch_size_sum", {{"plugin", id}}), kSenders * kEach);
  const double commits = value(m, "wavoip_webhook_commit_batch_size_count", {{"plugin", id}});
  EXPECT_GE(commits, 1);
  EXPECT_LE(commits, kSenders * kEach);
  EXPECT_EQ(value(m, "wavoip_webhook_deliveries_total", {{"plugin", id}, {"type", "RECORD"}, {"status", "202"}}),
            kSenders * kEach);
  // And every call got its message on the host.
  ASSERT_TRUE(eventually([&] { return message("gc-11-19").has_value() && message("gc-0-0").has_value(); }));
}

TEST_F(Metrics, TheHostIsWrittenOncePerVisibleChange) {
  start_host();
  auto record = [](const std::string& status) {
    return json::serialize(
        json::object{{"type", "RECORD"}, {"whatsapp_call_id", "w-call-1"}, {"record_status", status}});
  };
  auto writes = [&](const char* operation) {
    return scrape().value("hdp_host_message_writes_total", {{"operation", operation}}).value_or(0);
  };
  // The host offers hdp.messages/2: a new call is one write, the upsert that creates its
  // message with its status (not an upsert, then a status).
  auto total = [&] {
    return writes("upsert_call_message_async") + writes("set_recording_status_async") + writes("upsert_call_message") +
           writes("set_recording_status");
  };
  ASSERT_EQ(post_webhook(record("RECORDING")).status, 202);
  ASSERT_TRUE(eventually([&] { return writes("upsert_call_message_async") == 1; }));
  EXPECT_EQ(total(), 1);
  // The same state again changes nothing the agent sees: no write at all.
  ASSERT_EQ(post_webhook(record("RECORDING")).status, 202);
  // A new reason is one write.
  ASSERT_EQ(post_webhook(record("MIXING")).status, 202);
  ASSERT_TRUE(eventually([&] { return total() == 2; }));
  EXPECT_EQ(total(), 2);
  EXPECT_EQ(recording_status("w-call-1"), "waiting");
}

TEST_F(Metrics, RefusedAndUnknownDeliveriesAreCountedWithBoundedTypeLabels) {
  start_host();
  const std::string id = plugin_id();
  ASSERT_EQ(post_webhook(ready_event("x"), "/webhooks/wavoip", {"Content-Type: text/plain"}).status, 415);
  ASSERT_EQ(post_webhook(R"({"type":"SOMETHING_ELSE","whatsapp_call_id":"x"})").status, 202);
  const promtext::Exposition m = scrape();
  EXPECT_EQ(value(m, "wavoip_webhook_deliveries_total", {{"plugin", id}, {"type", "none"}, {"status", "415"}}), 1);
  EXPECT_EQ(value(m, "wavoip_webhook_deliveries_total", {{"plugin", id}, {"type", "other"}, {"status", "202"}}), 1);
  EXPECT_FALSE(
      m.value("wavoip_webhook_deliveries_total", {{"plugin", id}, {"type", "SOMETHING_ELSE"}, {"status", "202"}})
          .has_value());
}

TEST_F(Metrics, TheHostCountsRequestsByRouteNotByPath) {
  start_host();
  EXPECT_EQ(host_->agent_get("/api/messages/424242").status, 404);
  EXPECT_EQ(host_->agent_get("/api/messages/434343").status, 404);
  EXPECT_EQ(testsupport::http_get(host_->base_url() + "/no/such/route").status, 404);
  EXPECT_EQ(testsupport::http_request("BREW", host_->base_url() + "/healthz", {}, {}).status, 405);
  scrape();
  const promtext::Exposition m = scrape();
  EXPECT_EQ(
      value(m, "hdp_host_http_requests_total", {{"method", "GET"}, {"route", "/api/messages"}, {"status", "404"}}), 2);
  EXPECT_EQ(value(m, "hdp_host_http_requests_total", {{"method", "GET"}, {"route", "unmatched"}, {"status", "404"}}),
            1);
  EXPECT_EQ(value(m, "hdp_host_http_requests_total", {{"method", "other"}, {"route", "unmatched"}, {"status", "405"}}),
            1);
  // The first scrape is counted by the time of the second.
  EXPECT_EQ(value(m, "hdp_host_http_requests_total", {{"method", "GET"}, {"route", "/metrics"}, {"status", "200"}}), 1);
}

// The C host (plugin_api/examples/c_host) offers no hdp.metrics/1: the plugin must work all the same.
TEST(MetricsOptional, ThePluginAttachesARecordingInAHostWithoutMetrics) {
  wavoip::test::TestHttpServer storage;
  storage.set_response("/c-host-call", audio(e2e::recording_bytes(20000)));
  testsupport::TempDir dir;
  const json::object config{{"base_url", storage.url("/")}, {"allow_insecure_loopback", true}};
  testsupport::HostProcess host(hdp::test::HostOptionsFor(hdp::test::HostKind{"c_host", HDP_TEST_C_HOST}, dir.path(),
                                                          {WAVOIP_PLUGIN_PATH},
                                                          {"--plugin-config-json", json::serialize(config)}));
  ASSERT_TRUE(host.wait_until_serving()) << host.log();
  const auto answer = hdp::test::Http(host.port(), "POST", "/webhooks/wavoip", ready_event("c-host-call"));
  EXPECT_EQ(answer.status, 202) << answer.body;
  EXPECT_TRUE(eventually([&] {
    return host.log().find("Recording attached successfully (call c-host-call)") != std::string::npos;
  })) << host.log();
  EXPECT_EQ(storage.hits("/c-host-call"), 1u);
  EXPECT_EQ(host.log().find("refused the metric"), std::string::npos) << host.log();
  EXPECT_EQ(host.terminate(), 0) << host.log();
}

}  // namespace
