// The recording flow end to end: real stub host, the built plugin .so, real HTTP, a real local
// storage server. Each test names the behaviour it proves.
#include "e2e_fixture.hpp"

#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace json = boost::json;
using e2e::audio;
using e2e::call_ended;
using e2e::call_event;
using e2e::record_event;
using e2e::recording_bytes;
using testsupport::eventually;
using wavoip::test::ScriptedResponse;

using RecordingFlow = e2e::PluginHost;

TEST_F(RecordingFlow, SeedManualTestIsAcceptedAndFetchedFromTheBaseUrl) {
  const std::string body = recording_bytes(40000);
  storage_->set_response("/test123", audio(body));
  start_host();

  auto answer = post_webhook(R"({"type":"RECORD","whatsapp_call_id":"test123","record_status":"READY"})");
  EXPECT_EQ(answer.status, 202) << answer.body;
  EXPECT_EQ(json::parse(answer.body).at("status"), "accepted");

  ASSERT_TRUE(wait_for_status("test123", "attached")) << recording_status("test123");
  EXPECT_EQ(storage_->hits("/test123"), 1u);
  auto file = attachment_file("test123");
  EXPECT_EQ(file.status, 200);
  EXPECT_EQ(file.content_type, "audio/mpeg");
  EXPECT_EQ(file.body, body);

  // The operator's log lines from the seed document, each with the call id.
  EXPECT_GE(count_in_log("[WaVoIP Webhook] Received event: RECORD (call test123)"), 1u);
  EXPECT_EQ(count_in_log("[WaVoIP Webhook] Recording READY for call test123"), 1u);
  EXPECT_EQ(count_in_log("[WaVoIP Recording Webhook] \u2705 Recording attached successfully (call test123)"), 1u);
}

TEST_F(RecordingFlow, IncomingCallThenRecordingReadyAttachesToTheCallersMessage) {
  const std::string body = recording_bytes(120000, 'x');
  storage_->set_response("/rec/ABCDEF0123456789ABCDEF0123456789", audio(body));
  start_host();
  const std::string id = "ABCDEF0123456789ABCDEF0123456789";

  ASSERT_EQ(post_webhook(call_event(id, "CREATE", "INCOMING_RING")).status, 202);
  ASSERT_TRUE(eventually([&] { return message(id).has_value(); }));
  auto m = *message(id);
  EXPECT_EQ(m.at("contact"), "5511999990001");
  EXPECT_EQ(m.at("direction"), "incoming");

  ASSERT_EQ(post_webhook(call_event(id, "UPDATE", "ACTIVE")).status, 202);
  ASSERT_EQ(post_webhook(call_ended(id, 45)).status, 202);
  ASSERT_EQ(post_webhook(record_event(id, "RECORDING")).status, 202);
  ASSERT_EQ(post_webhook(record_event(id, "MIXING")).status, 202);
  ASSERT_TRUE(wait_for_status(id, "waiting"));
  ASSERT_EQ(post_webhook(record_event(id, "READY", storage_->url("/rec/" + id))).status, 202);

  ASSERT_TRUE(wait_for_status(id, "attached"));
  m = *message(id);
  EXPECT_EQ(m.at("call_status"), "ENDED");
  EXPECT_EQ(m.at("duration_s"), 45);
  EXPECT_EQ(attachment_count(id), 1u);
  EXPECT_EQ(attachment_file(id).body, body);
  EXPECT_EQ(storage_->hits("/" + id), 0u) << "record_url on an allowed host wins over the base URL";
}

TEST_F(RecordingFlow, EveryThreadThatCarriesTheWorkHasAName) {
  storage_->set_response("/named", audio(recording_bytes(1000)));
  start_host();
  ASSERT_EQ(post_webhook(record_event("named", "READY")).status, 202);
  ASSERT_TRUE(wait_for_status("named", "attached"));

  const std::set<std::string> names = testsupport::thread_names(host_->pid());
  for (const char* expected :
       {"wavoip-store", "wavoip-ckpt", "wavoip-fetch", "hdp-writer", "hdp-ckpt", "hdp-attach", "hdp-password"}) {
    EXPECT_EQ(names.count(expected), 1u) << expected;
  }
}

TEST_F(RecordingFlow, OutgoingCallsBelongToTheReceiverWhateverTheSpelling) {
  start_host();
  ASSERT_EQ(post_webhook(call_event("out1", "CREATE", "OUTGOING_CALLING", "OUTCOMING")).status, 202);
  ASSERT_EQ(post_webhook(call_event("out2", "CREATE", "CALLING", "OUTGOING")).status, 202);
  ASSERT_TRUE(eventually([&] { return message("out1") && message("out2"); }));
  EXPECT_EQ(message("out1")->at("contact"), "5511888880002");
  EXPECT_EQ(message("out1")->at("direction"), "outgoing");
  EXPECT_EQ(message("out2")->at("contact"), "5511888880002");
  EXPECT_EQ(message("out2")->at("call_status"), "CALLING");
}

TEST_F(RecordingFlow, NumericCallIdAndTheOfficialExamplesSecondTypeKeyAreUnderstood) {
  start_host();
  // The official example carries "type" twice; a naive parser would see HUMANIZED.
  auto answer = post_webhook(
      R"({"type":"CALL","action":"CREATE","whatsapp_call_id":123456,"id_session":789,"caller":"5511999990001",)"
      R"("receiver":"5511888880002","status":"ACTIVE","direction":"INCOMING","transport":"x","is_contact":true,)"
      R"("type":"HUMANIZED"})");
  ASSERT_EQ(answer.status, 202) << answer.body;
  EXPECT_EQ(json::parse(answer.body).at("type"), "CALL");
  ASSERT_TRUE(eventually([&] { return message("123456").has_value(); }));
  EXPECT_EQ(message("123456")->at("contact"), "5511999990001");
}

TEST_F(RecordingFlow, DisabledAndEmptyRecordingsShowAReasonAndAreNeverFetched) {
  storage_->set_response("/d1", audio("x"));
  storage_->set_response("/e1", audio("x"));
  start_host();
  ASSERT_EQ(post_webhook(call_event("d1", "CREATE", "ENDED", "INCOMING", 30)).status, 202);
  ASSERT_EQ(post_webhook(record_event("d1", "DISABLED")).status, 202);
  ASSERT_EQ(post_webhook(record_event("e1", "EMPTY_RECORDING")).status, 202);
  ASSERT_TRUE(wait_for_status("d1", "disabled"));
  ASSERT_TRUE(wait_for_status("e1", "empty"));
  EXPECT_NE(std::string(message("d1")->at("recording_reason").as_string()).find("disabled"), std::string::npos);
  EXPECT_NE(std::string(message("e1")->at("recording_reason").as_string()).find("too short"), std::string::npos);
  // A READY after a terminal decision changes nothing either.
  ASSERT_EQ(post_webhook(record_event("d1", "READY")).status, 202);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(recording_status("d1"), "disabled");
  EXPECT_EQ(storage_->hits(), 0u);
}

TEST_F(RecordingFlow, TheSameReadyDeliveredManyTimesGivesOneDownloadAndOneAttachment) {
  ScriptedResponse slow = audio(recording_bytes(300000));
  slow.chunk_bytes = 16384;
  slow.chunk_delay = std::chrono::milliseconds(10);  // keeps the first download in flight
  storage_->set_response("/dup1", slow);
  start_host();

  std::vector<std::thread> senders;
  std::atomic<int> accepted{0};
  for (int i = 0; i < 8; ++i) {
    senders.emplace_back([&] {
      for (int j = 0; j < 5; ++j) {
        if (post_webhook(record_event("dup1", "READY")).status == 202) ++accepted;
      }
    });
  }
  for (auto& t : senders) t.join();
  EXPECT_EQ(accepted.load(), 40);
  ASSERT_TRUE(wait_for_status("dup1", "attached"));
  // And later, after it was attached.
  ASSERT_EQ(post_webhook(record_event("dup1", "READY")).status, 202);
  ASSERT_EQ(post_webhook(record_event("dup1", "MIXING")).status, 202);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(storage_->hits("/dup1"), 1u);
  EXPECT_EQ(attachment_count("dup1"), 1u);
  EXPECT_EQ(recording_status("dup1"), "attached");
  EXPECT_EQ(count_in_log("Recording attached successfully (call dup1)"), 1u);
}

TEST_F(RecordingFlow, ReadyBeforeAnyCallEventStillEndsOnTheRightMessage) {
  const std::string body = recording_bytes(5000);
  storage_->set_response("/early1", audio(body));
  start_host();
  ASSERT_EQ(post_webhook(record_event("early1", "READY")).status, 202);
  ASSERT_TRUE(wait_for_status("early1", "attached"));
  const auto first_id = message("early1")->at("id");
  // The call's own events arrive late: same message, now with its contact.
  ASSERT_EQ(post_webhook(call_event("early1", "CREATE", "ACTIVE")).status, 202);
  ASSERT_EQ(post_webhook(call_ended("early1", 12)).status, 202);
  ASSERT_TRUE(eventually([&] { return message("early1")->at("call_status") == "ENDED"; }));
  auto m = *message("early1");
  EXPECT_EQ(m.at("id"), first_id);
  EXPECT_EQ(m.at("contact"), "5511999990001");
  EXPECT_EQ(m.at("recording_status"), "attached");
  EXPECT_EQ(attachment_count("early1"), 1u);
  EXPECT_EQ(attachment_file("early1").body, body);
}

TEST_F(RecordingFlow, ReadyBeforeTheCallHasEndedIsFetchedAtOnce) {
  storage_->set_response("/live1", audio(recording_bytes(2000)));
  start_host();
  ASSERT_EQ(post_webhook(call_event("live1", "CREATE", "ACTIVE")).status, 202);
  ASSERT_EQ(post_webhook(record_event("live1", "READY")).status, 202);
  ASSERT_TRUE(wait_for_status("live1", "attached"));
  ASSERT_EQ(post_webhook(call_ended("live1", 61)).status, 202);
  ASSERT_TRUE(eventually([&] { return message("live1")->at("duration_s") == 61; }));
  EXPECT_EQ(recording_status("live1"), "attached");
  EXPECT_EQ(storage_->hits("/live1"), 1u);
}

TEST_F(RecordingFlow, UnknownTypesAndStatusesAreAcceptedAndLogged) {
  start_host();
  auto a = post_webhook(R"({"type":"PRESENCE","whatsapp_call_id":"u1"})");
  EXPECT_EQ(a.status, 202) << a.body;
  auto b = post_webhook(R"({"type":"RECORD","whatsapp_call_id":"u2","record_status":"TRANSCODING"})");
  EXPECT_EQ(b.status, 202) << b.body;
  auto c = post_webhook(R"({"type":"DEVICE","action":"UPDATE","id_session":789,"phone":"5511","status":"open"})");
  EXPECT_EQ(c.status, 202) << c.body;
  EXPECT_GE(count_in_log("Received event: PRESENCE"), 1u);
  EXPECT_GE(count_in_log("Received event: DEVICE"), 1u);
}

TEST_F(RecordingFlow, MalformedBodiesGetA400NamingTheProblem) {
  start_host();
  auto a = post_webhook("{not json");
  EXPECT_EQ(a.status, 400);
  EXPECT_TRUE(json::parse(a.body).as_object().contains("error"));
  auto b = post_webhook(R"({"type":"RECORD","record_status":"READY"})");
  EXPECT_EQ(b.status, 400);
  EXPECT_NE(b.body.find("whatsapp_call_id"), std::string::npos) << b.body;
  auto c = post_webhook("type=RECORD", "/webhooks/wavoip", {"Content-Type: application/x-www-form-urlencoded"});
  EXPECT_EQ(c.status, 415);
}

TEST_F(RecordingFlow, ANotReadyAnswerLeavesTheCallWaitingWithTheLastAnswer) {
  ScriptedResponse json_status;
  json_status.status = 200;
  json_status.content_type = "application/json";
  json_status.body = R"({"status":"RECORDING"})";
  storage_->set_response("/nr1", json_status);
  start_host();
  ASSERT_EQ(post_webhook(record_event("nr1", "READY")).status, 202);
  ASSERT_TRUE(eventually([&] { return storage_->hits("/nr1") == 1; }));
  ASSERT_TRUE(wait_for_status("nr1", "waiting"));
  EXPECT_EQ(attachment_count("nr1"), 0u);
}

TEST_F(RecordingFlow, AnInvalidConfigurationRefusesThePluginWithOneClearLine) {
  testsupport::HostOptions options;
  options.host_binary = HDP_STUB_HOST_PATH;
  options.plugins = {WAVOIP_PLUGIN_PATH};
  options.plugin_config_json = R"({"poll": {"jitter": "lots"}, "max_body_bytez": 1})";
  options.data_dir = dir_->path() / "bad";
  testsupport::HostProcess bad(options);
  EXPECT_FALSE(bad.start(std::chrono::seconds(10)));
  EXPECT_NE(bad.log().find("[WaVoIP] Invalid configuration"), std::string::npos) << bad.log();
}

// Peak resident memory of a process, in kB (VmHWM).
long peak_rss_kb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST_F(RecordingFlow, A200MegabyteRecordingIsAttachedWithFlatMemory) {
  ScriptedResponse big;
  big.status = 200;
  big.content_type = "audio/mpeg";
  big.generated_bytes = 200ull * 1024 * 1024;
  storage_->set_response("/big1", big);
  start_host({{"max_recording_bytes", 300ll * 1024 * 1024}});
  // Warm up the paths (curl, SQLite, the attachment copy) with a small recording first.
  storage_->set_response("/warm", audio(recording_bytes(100000)));
  ASSERT_EQ(post_webhook(record_event("warm", "READY")).status, 202);
  ASSERT_TRUE(wait_for_status("warm", "attached"));
  const long before = peak_rss_kb(host_->pid());
  ASSERT_GT(before, 0);

  ASSERT_EQ(post_webhook(record_event("big1", "READY")).status, 202);
  ASSERT_TRUE(wait_for_status("big1", "attached", std::chrono::seconds(120)));
  const long after = peak_rss_kb(host_->pid());
  EXPECT_LT(after - before, 32 * 1024) << "peak RSS grew from " << before << " kB to " << after << " kB";
  auto m = *message("big1");
  EXPECT_EQ(m.at("attachments").as_array()[0].at("size"), 200ll * 1024 * 1024);
}

}  // namespace
