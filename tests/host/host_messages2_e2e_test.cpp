// hdp.messages/2 in the real hdp-stub-host, driven by the probe plugin: operations complete
// through callbacks after the commit, in the order they were started and never inside the call;
// an unknown message is reported through the callback; every operation of a loop turn shares one
// commit; a /1 call lands after the /2 operations started before it; at shutdown the queued
// operations are committed, then completed with HDP_ERR_CANCELLED before stop (a stopping plugin
// hears only cancellations), and a restarted host shows them.
#include <gtest/gtest.h>

#include <signal.h>

#include <optional>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace hdp::test {
namespace {

using namespace std::chrono_literals;

// The value of one sample of GET /metrics ("name{labels} value"), or nullopt.
std::optional<double> sample(const std::string& metrics, const std::string& series) {
  const size_t at = metrics.find("\n" + series + " ");
  if (at == std::string::npos) return std::nullopt;
  return std::stod(metrics.substr(at + series.size() + 2));
}

struct Op {
  int64_t status = 0;
  int64_t id = 0;  // the op id (/2) or the message id (/1)
};

class Messages2 : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(host.started()) << host.log();
    ASSERT_EQ(sign_in(http, host).status, 200);  // the JSON API is for signed-in agents
  }

  // Runs the lines in one request (one loop turn); returns what each call returned.
  std::vector<Op> ops(const std::string& lines) {
    const auto v = http.post(host.url("/probe/ops"), lines).json();
    EXPECT_EQ(json_int(v, "callbacks_inside_calls"), 0) << lines;
    std::vector<Op> out;
    for (const auto& op : v.at("ops").as_array()) {  // v outlives the loop
      const bool v2 = op.as_object().contains("op");
      out.push_back(Op{json_int(op, "status"), json_int(op, v2 ? "op" : "message_id")});
    }
    return out;
  }
  boost::json::value results() { return http.get(host.url("/probe/message-results")).json(); }
  size_t result_count() { return results().at("results").as_array().size(); }
  bool wait_results(size_t n) {
    return eventually([&] { return result_count() >= n; });
  }
  // The callback's result for op id.
  boost::json::object result_of(int64_t op) {
    const boost::json::value all = results();
    for (const auto& r : all.at("results").as_array()) {
      if (json_int(r, "op") == op) return r.as_object();
    }
    ADD_FAILURE() << "no callback for op " << op;
    return {};
  }
  boost::json::value message(int64_t id) { return http.get(host.url("/api/messages/" + std::to_string(id))).json(); }
  std::string metrics() { return "\n" + http.get(host.url("/metrics")).body; }

  // A message created through /2 (its callback waited for); returns its id.
  int64_t create(const std::string& key) {
    const size_t before = result_count();
    const auto started = ops("upsert key=" + key + "&contact=551100");
    EXPECT_EQ(started.at(0).status, 0);
    EXPECT_TRUE(wait_results(before + 1));
    return result_of(started.at(0).id).at("message_id").as_int64();
  }

  HostProcess host{with_agent(probe_host())};
  HttpClient http;
};

TEST_F(Messages2, TheHostOffersMessages2) {
  EXPECT_EQ(json_int(results(), "offered"), 1);
}

TEST_F(Messages2, AnUpsertCompletesLaterWithTheMessageCreatedWithItsStatus) {
  const auto started =
      ops("upsert key=wavoip:n1&contact=%2B5511999&direction=1&call_status=ENDED"
          "&duration_s=7&recording=1&reason=Waiting+for+WaVoIP");
  ASSERT_EQ(started.size(), 1U);
  EXPECT_EQ(started[0].status, 0);
  EXPECT_GT(started[0].id, 0);
  ASSERT_TRUE(wait_results(1));
  const auto r = result_of(started[0].id);
  EXPECT_EQ(r.at("status").as_int64(), 0);
  const int64_t id = r.at("message_id").as_int64();
  EXPECT_GT(id, 0);
  const auto m = message(id);
  EXPECT_EQ(m.at("external_key").as_string(), "wavoip:n1");
  EXPECT_EQ(m.at("contact").as_string(), "5511999");
  EXPECT_EQ(m.at("direction").as_string(), "incoming");
  EXPECT_EQ(m.at("call_status").as_string(), "ENDED");
  EXPECT_EQ(m.at("duration_s").as_int64(), 7);
  EXPECT_EQ(m.at("recording_status").as_string(), "waiting");
  EXPECT_EQ(m.at("recording_reason").as_string(), "Waiting for WaVoIP");
  // The same key again (HDP_RECORDING_UNCHANGED) finds the same message and keeps its status.
  const auto again = ops("upsert key=wavoip:n1&call_status=GONE");
  ASSERT_TRUE(wait_results(2));
  EXPECT_EQ(result_of(again[0].id).at("message_id").as_int64(), id);
  EXPECT_EQ(message(id).at("recording_status").as_string(), "waiting");
  EXPECT_EQ(message(id).at("call_status").as_string(), "GONE");
}

TEST_F(Messages2, OperationsCompleteInTheOrderTheyWereStartedAndTheLastWriteWins) {
  const int64_t a = create("order-a");
  const int64_t b = create("order-b");
  const std::string ida = std::to_string(a);
  const std::string idb = std::to_string(b);
  const size_t before = result_count();
  const auto started =
      ops("upsert key=order-a&recording=1&reason=one\n"
          "status message_id=" +
          ida +
          "&status=2&reason=two\n"
          "upsert key=order-a&recording=4&reason=three\n"
          "upsert key=order-b&recording=5&reason=b-one\n"
          "status message_id=" +
          idb +
          "&status=6&reason=b-two\n"
          "upsert key=order-c&recording=1\n"
          "status message_id=" +
          ida + "&status=3&reason=four\n");
  ASSERT_EQ(started.size(), 7U);
  for (size_t i = 0; i < started.size(); ++i) {
    EXPECT_EQ(started[i].status, 0) << i;
    if (i > 0) {
      EXPECT_GT(started[i].id, started[i - 1].id) << "op ids grow";
    }
  }
  ASSERT_TRUE(wait_results(before + 7));
  const boost::json::value got = results();
  const auto& all = got.at("results").as_array();
  ASSERT_EQ(all.size(), before + 7);
  for (size_t i = 0; i < started.size(); ++i) {
    EXPECT_EQ(json_int(all[before + i], "op"), started[i].id) << "callback " << i << " out of order";
    EXPECT_EQ(json_int(all[before + i], "status"), 0) << i;
  }
  EXPECT_EQ(json_int(all[before + 0], "message_id"), a);
  EXPECT_EQ(json_int(all[before + 1], "message_id"), a);
  EXPECT_EQ(json_int(all[before + 2], "message_id"), a);
  EXPECT_EQ(json_int(all[before + 3], "message_id"), b);
  EXPECT_EQ(json_int(all[before + 4], "message_id"), b);
  EXPECT_EQ(json_int(all[before + 6], "message_id"), a);
  EXPECT_EQ(message(a).at("recording_status").as_string(), "attached");
  EXPECT_EQ(message(a).at("recording_reason").as_string(), "four");
  EXPECT_EQ(message(b).at("recording_status").as_string(), "empty");
  EXPECT_EQ(message(b).at("recording_reason").as_string(), "b-two");
  EXPECT_EQ(json_int(results(), "callbacks_inside_calls"), 0);
}

TEST_F(Messages2, AnUnknownMessageIsReportedThroughTheCallback) {
  const auto started = ops("status message_id=99999&status=3&reason=x");
  ASSERT_EQ(started.size(), 1U);
  EXPECT_EQ(started[0].status, 0);  // accepted: the id is only looked up when written
  ASSERT_TRUE(wait_results(1));
  EXPECT_EQ(result_of(started[0].id).at("status").as_int64(), -10);
  EXPECT_EQ(result_of(started[0].id).at("message_id").as_int64(), 0);
  // Another plugin's or a missing message is not touched, and a later op still works.
  const int64_t id = create("after-not-found");
  EXPECT_GT(id, 0);
}

TEST_F(Messages2, InvalidArgumentsAreRefusedAtOnceWithoutACallback) {
  const auto started =
      ops("upsert key=\n"
          "upsert key=k&contact=not-digits\n"
          "upsert key=" +
          std::string(256, 'k') +
          "\n"
          "status message_id=1&status=1&reason=" +
          std::string(1025, 'r') + "\n");
  ASSERT_EQ(started.size(), 4U);
  for (const Op& op : started) {
    EXPECT_EQ(op.status, -1);
    EXPECT_EQ(op.id, 0);
  }
  // A valid op after them completes; the refused ones never call back.
  create("valid");
  EXPECT_EQ(result_count(), 1U);
  EXPECT_EQ(json_int(results(), "pending"), 0);
}

TEST_F(Messages2, EveryOperationOfALoopTurnSharesOneCommit) {
  const std::string before = metrics();
  const double commits = sample(before, "hdp_host_store_batch_writes_count").value_or(-1);
  const double writes = sample(before, "hdp_host_store_batch_writes_sum").value_or(-1);
  ASSERT_GE(commits, 0) << before;
  std::string lines;
  for (int i = 0; i < 40; ++i) lines += "upsert key=turn-" + std::to_string(i) + "&recording=1\n";
  const auto started = ops(lines);
  ASSERT_EQ(started.size(), 40U);
  ASSERT_TRUE(wait_results(40));
  const std::string after = metrics();
  EXPECT_EQ(sample(after, "hdp_host_store_batch_writes_count"), commits + 1) << after;
  EXPECT_EQ(sample(after, "hdp_host_store_batch_writes_sum"), writes + 40) << after;
  EXPECT_EQ(sample(after, "hdp_host_store_batch_writes_bucket{le=\"32\"}"),
            sample(before, "hdp_host_store_batch_writes_bucket{le=\"32\"}"));
  EXPECT_EQ(sample(after, "hdp_host_message_writes_total{operation=\"upsert_call_message_async\"}"), 40);
  EXPECT_FALSE(sample(after, "hdp_host_message_writes_total{operation=\"upsert_call_message\"}").has_value());
}

TEST_F(Messages2, AV1CallLandsAfterTheV2OperationsStartedBeforeIt) {
  const int64_t a = create("mix-a");
  const std::string ida = std::to_string(a);
  // In one turn: a /2 status, then a /1 status of the same message: the /1 one must win. A /2
  // upsert of a new key, then a /1 upsert of another: the /2 one was written first.
  const auto started = ops("status message_id=" + ida +
                           "&status=2&reason=async\n"
                           "status1 message_id=" +
                           ida +
                           "&status=4&reason=sync\n"
                           "upsert key=mix-new-async&recording=1\n"
                           "upsert1 key=mix-new-sync\n");
  ASSERT_EQ(started.size(), 4U);
  EXPECT_EQ(started[1].status, 0);
  EXPECT_EQ(started[3].status, 0);
  ASSERT_TRUE(wait_results(3));
  EXPECT_EQ(message(a).at("recording_status").as_string(), "failed");
  EXPECT_EQ(message(a).at("recording_reason").as_string(), "sync");
  const int64_t async_id = result_of(started[2].id).at("message_id").as_int64();
  const int64_t sync_id = started[3].id;
  EXPECT_LT(async_id, sync_id);
  // Both callbacks came later, in order, after the /1 calls had returned.
  EXPECT_EQ(json_int(results(), "callbacks_inside_calls"), 0);
}

TEST_F(Messages2, AttachmentRowsAreWrittenInTheTurnsBatch) {
  const int64_t id = create("with-file");
  const std::string before = metrics();
  const double commits = sample(before, "hdp_host_store_batch_writes_count").value_or(-1);
  const double writes = sample(before, "hdp_host_store_batch_writes_sum").value_or(-1);
  http.post(host.url("/probe/attach?message_id=" + std::to_string(id) + "&key=file-1&times=1"), "bytes");
  ASSERT_TRUE(eventually(
      [&] { return http.get(host.url("/probe/attach-results")).json().at("results").as_array().size() == 1; }));
  const auto attached = http.get(host.url("/probe/attach-results")).json();
  EXPECT_EQ(attached.at("results").as_array()[0].at("status").as_int64(), 0);
  const std::string after = metrics();
  EXPECT_EQ(sample(after, "hdp_host_store_batch_writes_count"), commits + 1) << after;
  EXPECT_EQ(sample(after, "hdp_host_store_batch_writes_sum"), writes + 1) << after;
  EXPECT_EQ(message(id).at("attachments").as_array().size(), 1U);
}

TEST(Messages2Lifecycle, OpsQueuedWhenThePluginStopsAreCommittedThenCancelledBeforeStop) {
  // --check never runs the loop: what start() queued is still pending when the plugin stops.
  TempDir data;
  HostOptions check = stub_host({"--check", "--data-dir", (data.path() / "data").string(), "--plugin",
                                 probe_plugin_path(), "--plugin-config-json", R"({"probe":"ops-in-start"})"});
  check.wait_for_port = false;
  HostProcess checked(check);
  EXPECT_EQ(checked.wait_exit(20s), 0) << checked.log();
  const std::string log = checked.log();
  EXPECT_EQ(checked.log_lines("probe: message op=").size(), 3U) << log;
  EXPECT_EQ(checked.log_lines("status=-60 message=0").size(), 3U) << log;
  const size_t stop = log.find("probe: stop ");
  ASSERT_NE(stop, std::string::npos) << log;
  EXPECT_LT(log.rfind("probe: message op="), stop);
  EXPECT_NE(log.find("messages_pending=0"), std::string::npos) << log;
  EXPECT_EQ(log.find("message callback after stop"), std::string::npos) << log;

  // A host started on the same data shows the three messages, created with their status.
  ASSERT_EQ(testsupport::add_agent(stub_host_path(), data.path() / "data", testsupport::kTestAgent,
                                   testsupport::kTestAgentPassword),
            0);
  HostProcess again(stub_host({"--virtual-clock", "--data-dir", (data.path() / "data").string()}));
  ASSERT_TRUE(again.started()) << again.log();
  HttpClient http;
  ASSERT_EQ(sign_in(http, again).status, 200);
  for (const char* key : {"start-1", "start-2", "start-3"}) {
    const auto r = http.get(again.url(std::string("/api/messages?external_key=") + key));
    ASSERT_EQ(r.status, 200) << key;
    EXPECT_EQ(r.json().at("recording_status").as_string(), "waiting") << key;
    EXPECT_EQ(r.json().at("recording_reason").as_string(), "queued in start") << key;
  }
}

TEST(Messages2Lifecycle, SigtermAfterOperationsLeavesThemCommittedAndNoCallbackAfterStop) {
  TempDir data;
  const std::string data_dir = (data.path() / "data").string();
  {
    HostProcess host(probe_host({"--data-dir", data_dir}));
    ASSERT_TRUE(host.started()) << host.log();
    HttpClient http;
    std::string lines;
    for (int i = 0; i < 20; ++i) lines += "upsert key=term-" + std::to_string(i) + "&recording=4&reason=kept\n";
    http.post(host.url("/probe/ops"), lines);
    host.signal(SIGTERM);
    EXPECT_EQ(host.wait_exit(20s), 0) << host.log();
    const std::string log = host.log();
    // Each completed normally or, if still queued at SIGTERM, as a cancellation before stop.
    EXPECT_EQ(host.log_lines("probe: message op=").size(), 20U) << log;
    EXPECT_EQ(host.log_lines("status=0 message=").size() + host.log_lines("status=-60 message=0").size(), 20U) << log;
    EXPECT_NE(log.find("messages_pending=0"), std::string::npos) << log;
    EXPECT_EQ(log.find("message callback after stop"), std::string::npos) << log;
  }
  ASSERT_EQ(
      testsupport::add_agent(stub_host_path(), data_dir, testsupport::kTestAgent, testsupport::kTestAgentPassword), 0);
  HostProcess again(stub_host({"--virtual-clock", "--data-dir", data_dir}));
  ASSERT_TRUE(again.started()) << again.log();
  HttpClient http;
  ASSERT_EQ(sign_in(http, again).status, 200);
  for (int i = 0; i < 20; ++i) {
    const auto r = http.get(again.url("/api/messages?external_key=term-" + std::to_string(i)));
    ASSERT_EQ(r.status, 200) << i;
    EXPECT_EQ(r.json().at("recording_status").as_string(), "failed") << i;
  }
}

TEST(Messages2Lifecycle, AHostWithoutMessages2AnswersNull) {
  HostProcess host(probe_host({"--test-disable-extension", "hdp.messages/2"}));
  ASSERT_TRUE(host.started()) << host.log();
  HttpClient http;
  EXPECT_EQ(json_int(http.get(host.url("/probe/message-results")).json(), "offered"), 0);
  // /1 still works.
  EXPECT_EQ(json_int(http.post(host.url("/probe/message?key=still-v1")).json(), "status"), 0);
}

// hdp.messages/3 (ABI 1.3): /2 with the technical detail apart from the reason. The host stores and
// serves the two as given; a /1 or /2 write (a 1.2 plugin) leaves the detail empty.
TEST_F(Messages2, Messages3KeepsTheDetailApartFromTheReason) {
  EXPECT_EQ(json_int(results(), "offered3"), 1);
  const auto started = ops("upsert3 key=wavoip:d1&contact=551100&recording=1&reason=Not+ready+yet&detail=HTTP+404");
  ASSERT_EQ(started.at(0).status, 0);
  ASSERT_TRUE(wait_results(1));
  const int64_t id = result_of(started[0].id).at("message_id").as_int64();
  auto m = message(id);
  EXPECT_EQ(m.at("recording_status").as_string(), "waiting");
  EXPECT_EQ(m.at("recording_reason").as_string(), "Not ready yet");
  EXPECT_EQ(m.at("recording_detail").as_string(), "HTTP 404");

  // An upsert that leaves the status unchanged keeps reason and detail.
  ops("upsert3 key=wavoip:d1&call_status=ENDED&detail=ignored");
  ASSERT_TRUE(wait_results(2));
  EXPECT_EQ(message(id).at("recording_detail").as_string(), "HTTP 404");

  const auto failed = ops("status3 message_id=" + std::to_string(id) + "&status=4&reason=Gave+up&detail=HTTP+410");
  ASSERT_TRUE(wait_results(3));
  EXPECT_EQ(result_of(failed[0].id).at("status").as_int64(), 0);
  m = message(id);
  EXPECT_EQ(m.at("recording_status").as_string(), "failed");
  EXPECT_EQ(m.at("recording_reason").as_string(), "Gave up");
  EXPECT_EQ(m.at("recording_detail").as_string(), "HTTP 410");

  // What a 1.2 plugin writes: one text, no detail left over from before.
  ops("status message_id=" + std::to_string(id) + "&status=1&reason=Joined+(last+answer:+HTTP+404)");
  ASSERT_TRUE(wait_results(4));
  m = message(id);
  EXPECT_EQ(m.at("recording_reason").as_string(), "Joined (last answer: HTTP 404)");
  EXPECT_EQ(m.at("recording_detail").as_string(), "");
  ops("status3 message_id=" + std::to_string(id) + "&status=1&reason=Again&detail=HTTP+404");
  ASSERT_TRUE(wait_results(5));
  ASSERT_EQ(ops("status1 message_id=" + std::to_string(id) + "&status=4&reason=Through+v1").at(0).status, 0);
  EXPECT_EQ(message(id).at("recording_detail").as_string(), "");

  // The retry path: served as retry_url while the status that gave it lasts.
  ops("status3 message_id=" + std::to_string(id) + "&status=4&reason=Gave+up&retry=%2Fprobe%2Fretry%3Fid%3D7");
  ASSERT_TRUE(wait_results(6));
  EXPECT_EQ(message(id).at("retry_url").as_string(), "/probe/retry?id=7");
  ops("status3 message_id=" + std::to_string(id) + "&status=1&reason=Again");
  ASSERT_TRUE(wait_results(7));
  EXPECT_TRUE(message(id).at("retry_url").is_null());
  // Only a path of this site: never another origin, a relative path, spaces.
  for (const std::string bad : {"%2F%2Fevil.example%2Fx", "%2F%5Cevil.example", "retry", "%2Fa+b"}) {
    EXPECT_EQ(ops("status3 message_id=" + std::to_string(id) + "&status=4&retry=" + bad).at(0).status, -1) << bad;
  }

  // Over the limits: refused at once, like a reason.
  const std::string long_detail(1025, 'x');
  EXPECT_EQ(ops("status3 message_id=" + std::to_string(id) + "&status=1&detail=" + long_detail).at(0).status,
            -1);  // HDP_ERR_INVALID_ARGUMENT
  EXPECT_EQ(ops("upsert3 key=wavoip:d2&recording=1&detail=" + long_detail).at(0).status, -1);
}

TEST(Messages2Lifecycle, AHostWithoutMessages3StillServesMessages2) {
  HostProcess host(probe_host({"--test-disable-extension", "hdp.messages/3"}));
  ASSERT_TRUE(host.started()) << host.log();
  HttpClient http;
  const auto v = http.get(host.url("/probe/message-results")).json();
  EXPECT_EQ(json_int(v, "offered3"), 0);
  EXPECT_EQ(json_int(v, "offered"), 1);
}

// hdp_loop_lag_seconds: the probe timer measures how late the loop got to it.
TEST(LoopLag, AHeldLoopShowsUpAsLagAndAnIdleOneDoesNot) {
  HostProcess host(probe_host({"--loop-lag-interval-ms", "20"}));
  ASSERT_TRUE(host.started()) << host.log();
  HttpClient http;
  auto scrape = [&] { return "\n" + http.get(host.url("/metrics")).body; };
  // Idle: the probe fires and nothing is late by a quarter of a second.
  ASSERT_TRUE(eventually([&] { return sample(scrape(), "hdp_loop_lag_seconds_count").value_or(0) >= 5; }));
  std::string m = scrape();
  EXPECT_NE(m.find("# TYPE hdp_loop_lag_seconds histogram"), std::string::npos) << m;
  const double idle_count = sample(m, "hdp_loop_lag_seconds_count").value_or(-1);
  EXPECT_EQ(sample(m, "hdp_loop_lag_seconds_bucket{le=\"0.25\"}"), idle_count) << m;

  // A plugin callback that holds the loop for 400 ms makes the probe that was due then ~400 ms late.
  EXPECT_EQ(json_int(http.post(host.url("/probe/block?ms=400")).json(), "blocked_ms"), 400);
  ASSERT_TRUE(eventually([&] {
    const std::string now = scrape();
    return sample(now, "hdp_loop_lag_seconds_count").value_or(0) >
           sample(now, "hdp_loop_lag_seconds_bucket{le=\"0.25\"}").value_or(0);
  })) << scrape();
  m = scrape();
  EXPECT_GE(sample(m, "hdp_loop_lag_seconds_sum").value_or(0), 0.3) << m;
  // Lag under a second: the block was 400 ms.
  EXPECT_EQ(sample(m, "hdp_loop_lag_seconds_bucket{le=\"1\"}"), sample(m, "hdp_loop_lag_seconds_count")) << m;
}

}  // namespace
}  // namespace hdp::test
