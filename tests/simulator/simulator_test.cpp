// wavoip-sim, the local WaVoIP stand-in, run as a real process: the recordings it serves are
// real WAV files, and each scenario sends the webhook sequence it promises to a real receiver.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <regex>
#include <set>

#include "host_process.hpp"
#include "http_client.hpp"
#include "sim_support.hpp"

namespace {

namespace json = boost::json;
using testsupport::eventually;
// The simulator, the host and Chromium share two cores: a minute before a wait fails.
constexpr std::chrono::seconds kSlowWait{60};
using simtest::Received;
using simtest::SimProcess;
using simtest::WebhookReceiver;

std::uint32_t u32(const std::string& b, size_t at) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 8 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 2])) << 16 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 3])) << 24;
}
std::uint16_t u16(const std::string& b, size_t at) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(b[at]) | static_cast<unsigned char>(b[at + 1]) << 8);
}

// "CALL INCOMING_RING", "RECORD READY": what a delivery was, read from its body.
std::string label(const Received& r) {
  const json::object o = json::parse(r.body).as_object();  // the DOM keeps the last `type`
  const std::string status(o.contains("status") ? o.at("status").as_string() : o.at("record_status").as_string());
  return (o.contains("record_status") && !o.contains("caller") ? "RECORD " : "CALL ") + status;
}

std::vector<std::string> labels(const std::vector<Received>& received) {
  std::vector<std::string> out;
  for (const Received& r : received) out.push_back(label(r));
  return out;
}

class Simulator : public ::testing::Test {
 protected:
  // Runs a timed scenario to its end against the receiver; returns the exit status.
  int run_to_end(const std::vector<std::string>& extra, WebhookReceiver& receiver) {
    std::vector<std::string> args = {
        "--webhook-url", receiver.url(), "--time-scale", "0.01", "--seed", "5", "--download-timeout", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    sim_ = std::make_unique<SimProcess>(args, dir_.path());
    if (!sim_->start()) return -1;
    auto status = sim_->wait_exit();
    return status ? *status : -2;
  }

  testsupport::TempDir dir_{"wavoip-sim-test"};
  std::unique_ptr<SimProcess> sim_;
};

TEST_F(Simulator, RecordingIsAValidWavServedAsAudioWavOnlyOnceReady) {
  WebhookReceiver receiver;
  SimProcess sim({"--manual", "--scenario", "happy", "--seed", "3"}, dir_.path());
  ASSERT_TRUE(sim.start()) << sim.output();
  ASSERT_EQ(sim.start_webhooks(receiver.url()), 202);
  const json::object call = sim.calls().at(0).as_object();
  const std::string id(call.at("call_id").as_string());
  const auto seconds = call.at("duration_s").as_int64();

  // Before the recording exists: a 404 (the default "not ready" answer), no audio.
  auto early = testsupport::http_get(sim.url("/" + id));
  EXPECT_EQ(early.status, 404);
  EXPECT_EQ(early.content_type.rfind("audio/", 0), std::string::npos);

  std::string last;
  while (last != "recording available") last = std::string(sim.step().at("label").as_string());

  auto wav = testsupport::http_get(sim.url("/" + id));
  ASSERT_EQ(wav.status, 200);
  EXPECT_EQ(wav.content_type, "audio/wav");
  const std::string& b = wav.body;
  ASSERT_GE(b.size(), 44u);
  EXPECT_EQ(b.substr(0, 4), "RIFF");
  EXPECT_EQ(u32(b, 4), b.size() - 8) << "RIFF size must cover the whole file";
  EXPECT_EQ(b.substr(8, 4), "WAVE");
  EXPECT_EQ(b.substr(12, 4), "fmt ");
  EXPECT_EQ(u32(b, 16), 16u);
  EXPECT_EQ(u16(b, 20), 1u) << "PCM";
  const std::uint16_t channels = u16(b, 22);
  const std::uint32_t rate = u32(b, 24);
  const std::uint16_t bits = u16(b, 34);
  EXPECT_EQ(channels, 1u);
  EXPECT_EQ(rate, 16000u);
  EXPECT_EQ(bits, 16u);
  EXPECT_EQ(u32(b, 28), rate * channels * bits / 8) << "byte rate";
  EXPECT_EQ(u16(b, 32), channels * bits / 8) << "block align";
  EXPECT_EQ(b.substr(36, 4), "data");
  const std::uint32_t data_bytes = u32(b, 40);
  EXPECT_EQ(data_bytes, b.size() - 44);
  EXPECT_DOUBLE_EQ(static_cast<double>(data_bytes) / (rate * channels * bits / 8), static_cast<double>(seconds))
      << "the recording lasts as long as the call";

  // Real sound: loud enough to hear, never clipped.
  double sum = 0;
  int peak = 0;
  for (size_t i = 44; i + 1 < b.size(); i += 2) {
    const int s = static_cast<std::int16_t>(u16(b, i));
    sum += static_cast<double>(s) * s;
    peak = std::max(peak, std::abs(s));
  }
  const double rms = std::sqrt(sum / static_cast<double>(data_bytes / 2));
  EXPECT_GT(rms, 3000.0);
  EXPECT_LT(peak, 32767);

  EXPECT_EQ(sim.calls().at(0).as_object().at("downloads").as_int64(), 1);
  EXPECT_EQ(testsupport::http_get(sim.url("/0000000000000000000000000000FFFF")).status, 404);
}

TEST_F(Simulator, HappySendsRingActiveEndedThenRecordingMixingReadyAsLiveTrafficDoes) {
  WebhookReceiver receiver;
  ASSERT_EQ(run_to_end({"--scenario", "happy"}, receiver), 0) << sim_->output();
  const auto got = receiver.received();
  EXPECT_EQ(labels(got), (std::vector<std::string>{"CALL INCOMING_RING", "CALL ACTIVE", "CALL ENDED",
                                                   "RECORD RECORDING", "RECORD MIXING", "RECORD READY"}));
  ASSERT_EQ(got.size(), 6u);
  const std::regex hex32("^[0-9A-F]{32}$");
  const json::object ring = json::parse(got[0].body).as_object();
  const std::string id(ring.at("whatsapp_call_id").as_string());
  EXPECT_TRUE(std::regex_match(id, hex32)) << id;
  for (const Received& r : got) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.path, "/webhooks/wavoip");
    EXPECT_EQ(r.content_type, "application/json");
    const json::object o = json::parse(r.body).as_object();
    EXPECT_EQ(o.at("whatsapp_call_id").as_string(), id) << "one call, one id";
    EXPECT_TRUE(o.at("id_session").is_int64()) << "id_session is a number";
  }
  // CALL events: the duplicate `type` key of the official example, digits for numbers.
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i].body.rfind(R"({"type":"CALL",)", 0), 0u) << got[i].body;
    EXPECT_NE(got[i].body.find(R"(,"type":"HUMANIZED"})"), std::string::npos) << got[i].body;
    const json::object o = json::parse(got[i].body).as_object();
    EXPECT_EQ(o.at("direction"), "INCOMING");
    EXPECT_TRUE(std::regex_match(std::string(o.at("caller").as_string()), std::regex("^[0-9]{12,13}$")));
    EXPECT_TRUE(std::regex_match(std::string(o.at("receiver").as_string()), std::regex("^[0-9]{12,13}$")));
  }
  EXPECT_EQ(json::parse(got[0].body).at("action"), "CREATE");
  EXPECT_EQ(json::parse(got[1].body).at("action"), "UPDATE");
  EXPECT_GT(json::parse(got[2].body).at("duration").as_int64(), 0) << "ENDED carries the duration";
  const json::object ready = json::parse(got[5].body).as_object();
  EXPECT_EQ(ready.at("type"), "RECORD");
  EXPECT_EQ(std::string(ready.at("record_url").as_string()), sim_->url("/" + id))
      << "record_url points at the simulator's storage";
  EXPECT_NE(sim_->output().find("RECORD READY             -> 202"), std::string::npos)
      << "each webhook is printed with the answer's status:\n"
      << sim_->output();
}

TEST_F(Simulator, OutgoingCallsSayOutcomingAndComeFromTheDevice) {
  WebhookReceiver receiver;
  ASSERT_EQ(run_to_end({"--scenario", "outgoing"}, receiver), 0) << sim_->output();
  const auto got = receiver.received();
  EXPECT_EQ(labels(got), (std::vector<std::string>{"CALL OUTGOING_RING", "CALL CALLING", "CALL ACTIVE", "CALL ENDED",
                                                   "RECORD RECORDING", "RECORD MIXING", "RECORD READY"}));
  const json::object ring = json::parse(got.at(0).body).as_object();
  EXPECT_EQ(ring.at("direction"), "OUTCOMING");
  EXPECT_EQ(ring.at("caller"), "5511940028922") << "the device's own number calls out";
}

TEST_F(Simulator, WebhookLostNeverSendsReadyYetServesTheFileAndWaitsForItsDownload) {
  WebhookReceiver receiver;
  SimProcess sim({"--webhook-url", receiver.url(), "--scenario", "webhook-lost", "--time-scale", "0.01",
                  "--download-timeout", "30"},
                 dir_.path());
  ASSERT_TRUE(sim.start()) << sim.output();
  const std::string id(sim.calls().at(0).as_object().at("call_id").as_string());
  // Playing the plugin's part: poll until the file is there. The simulator ends once it has
  // served that download, so a later poll may find it gone: its exit status is the verdict.
  bool downloaded = false;
  ASSERT_TRUE(eventually(
      [&] {
        downloaded = downloaded || testsupport::http_get(sim.url("/" + id)).status == 200;
        return downloaded || sim.wait_exit(std::chrono::milliseconds(0)).has_value();
      },
      kSlowWait))
      << sim.output();
  const std::optional<int> status = sim.exit_status() ? sim.exit_status() : sim.wait_exit();
  EXPECT_EQ(status, 0) << "the download it waited for happened:\n" << sim.output();
  EXPECT_EQ(labels(receiver.received()), (std::vector<std::string>{"CALL INCOMING_RING", "CALL ACTIVE", "CALL ENDED",
                                                                   "RECORD RECORDING", "RECORD MIXING"}));
}

TEST_F(Simulator, AnExpectedDownloadThatNeverHappensFailsTheRun) {
  WebhookReceiver receiver;
  ASSERT_EQ(run_to_end({"--scenario", "happy", "--download-timeout", "0.2"}, receiver), 3) << sim_->output();
  EXPECT_NE(sim_->output().find("expected: MISSING"), std::string::npos) << sim_->output();
}

TEST_F(Simulator, EmptyDisabledAndMissedSayWhyThereIsNoFile) {
  WebhookReceiver receiver;
  ASSERT_EQ(run_to_end({"--scenario", "empty,disabled,missed"}, receiver), 0) << sim_->output();
  std::map<std::string, std::vector<std::string>> by_call;
  for (const Received& r : receiver.received()) {
    by_call[std::string(json::parse(r.body).at("whatsapp_call_id").as_string())].push_back(label(r));
  }
  ASSERT_EQ(by_call.size(), 3u);
  std::vector<std::vector<std::string>> sequences;
  for (auto& [id, seq] : by_call) sequences.push_back(seq);
  auto has = [&](const std::vector<std::string>& seq) {
    return std::find(sequences.begin(), sequences.end(), seq) != sequences.end();
  };
  EXPECT_TRUE(has({"CALL INCOMING_RING", "CALL ACTIVE", "CALL ENDED", "RECORD EMPTY_RECORDING"}));
  EXPECT_TRUE(has({"CALL INCOMING_RING", "CALL ACTIVE", "CALL ENDED", "RECORD DISABLED"}));
  EXPECT_TRUE(has({"CALL INCOMING_RING", "CALL NOT_ANSWERED"}));
}

TEST_F(Simulator, DuplicatesDeliverEveryEventTwiceAndReadyThreeTimes) {
  WebhookReceiver receiver;
  ASSERT_EQ(run_to_end({"--scenario", "duplicates"}, receiver), 0) << sim_->output();
  EXPECT_EQ(
      labels(receiver.received()),
      (std::vector<std::string>{"CALL INCOMING_RING", "CALL INCOMING_RING", "CALL ACTIVE", "CALL ACTIVE", "CALL ENDED",
                                "CALL ENDED", "RECORD RECORDING", "RECORD RECORDING", "RECORD MIXING", "RECORD MIXING",
                                "RECORD READY", "RECORD READY", "RECORD READY"}));
}

TEST_F(Simulator, ReorderedSendsReadyBeforeTheCallEvents) {
  WebhookReceiver receiver;
  ASSERT_EQ(run_to_end({"--scenario", "reordered"}, receiver), 0) << sim_->output();
  EXPECT_EQ(labels(receiver.received()), (std::vector<std::string>{"RECORD READY", "RECORD MIXING",
                                                                   "CALL INCOMING_RING", "CALL ACTIVE", "CALL ENDED"}));
}

TEST_F(Simulator, NeverReadyAndLongMixingAnswerAsIntegrationsReportWhileNotReady) {
  WebhookReceiver receiver;
  SimProcess sim({"--manual", "--scenario", "never-ready,long-mixing", "--seed", "9"}, dir_.path());
  ASSERT_TRUE(sim.start()) << sim.output();
  ASSERT_EQ(sim.start_webhooks(receiver.url()), 202);
  std::string never, mixing;
  for (const auto& c : sim.calls()) {
    (c.at("scenario") == "never-ready" ? never : mixing) = std::string(c.at("call_id").as_string());
  }
  std::vector<std::string> seen;
  for (;;) {
    const json::object step = sim.step();
    seen.push_back(std::string(step.at("scenario").as_string()) + " " + std::string(step.at("label").as_string()));
    if (step.at("next").is_null()) break;
  }
  // After every step: never-ready's file never came; long-mixing's did at the very end.
  EXPECT_EQ(testsupport::http_get(sim.url("/" + never)).status, 404);
  auto ready = testsupport::http_get(sim.url("/" + mixing));
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.content_type, "audio/wav");
  EXPECT_EQ(seen.back(), "long-mixing RECORD READY");
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "never-ready RECORD READY"), 0);
  EXPECT_EQ(sim.stop(), 0);
}

TEST_F(Simulator, LongMixingAnswersAJsonRecordingStatusBeforeTheFileExists) {
  WebhookReceiver receiver;
  SimProcess sim({"--manual", "--scenario", "long-mixing"}, dir_.path());
  ASSERT_TRUE(sim.start()) << sim.output();
  ASSERT_EQ(sim.start_webhooks(receiver.url()), 202);
  const std::string id(sim.calls().at(0).as_object().at("call_id").as_string());
  while (sim.step().at("label") != "RECORD MIXING") {
  }
  auto pending = testsupport::http_get(sim.url("/" + id));
  EXPECT_EQ(pending.status, 200);
  EXPECT_EQ(pending.content_type, "application/json");
  EXPECT_EQ(pending.body, R"({"status":"RECORDING"})");
}

TEST_F(Simulator, ManualStepsSayWhatWasDoneAndWhatComesNext) {
  WebhookReceiver receiver;
  SimProcess sim({"--manual", "--scenario", "happy"}, dir_.path());
  ASSERT_TRUE(sim.start()) << sim.output();
  EXPECT_EQ(testsupport::http_request("POST", sim.url("/__sim/step"), {}, {}).status, 409) << "not started yet";
  ASSERT_EQ(sim.start_webhooks(receiver.url()), 202);
  EXPECT_EQ(sim.start_webhooks(receiver.url()), 409) << "starts once";
  const json::object first = sim.step();
  EXPECT_EQ(first.at("index"), 0);
  EXPECT_EQ(first.at("label"), "CALL INCOMING_RING");
  EXPECT_EQ(first.at("status"), 202) << "the receiver's answer";
  EXPECT_EQ(first.at("next"), "CALL ACTIVE");
  EXPECT_EQ(receiver.received().size(), 1u) << "nothing is sent between steps";
  json::object step = first;
  while (!step.at("next").is_null()) step = sim.step();
  EXPECT_EQ(step.at("label"), "RECORD READY");
  EXPECT_EQ(testsupport::http_request("POST", sim.url("/__sim/step"), {}, {}).status, 409) << "no more steps";
}

TEST_F(Simulator, AFailedDeliveryIsPrintedAndMakesTheExitStatusThree) {
  WebhookReceiver receiver(502);
  ASSERT_EQ(run_to_end({"--scenario", "empty"}, receiver), 3) << sim_->output();
  EXPECT_NE(sim_->output().find("-> 502"), std::string::npos) << sim_->output();
}

TEST_F(Simulator, AllPlaysEveryScenarioWithItsOwnCallId) {
  WebhookReceiver receiver;
  ASSERT_EQ(run_to_end({"--scenario", "all"}, receiver), 0) << sim_->output();
  std::set<std::string> ids;
  for (const Received& r : receiver.received())
    ids.insert(std::string(json::parse(r.body).at("whatsapp_call_id").as_string()));
  EXPECT_EQ(ids.size(), 10u);
}

TEST_F(Simulator, HelpNamesEveryScenarioAndABadOptionIsRefused) {
  WebhookReceiver receiver;
  sim_ = std::make_unique<SimProcess>(std::vector<std::string>{"--help"}, dir_.path());
  EXPECT_FALSE(sim_->start()) << "--help prints and exits";
  EXPECT_EQ(sim_->exit_status(), 0);
  const std::string help = sim_->output();
  for (const char* name : {"happy", "webhook-lost", "long-mixing", "empty", "disabled", "duplicates", "reordered",
                           "never-ready", "all", "--time-scale", "--serve-forever"}) {
    EXPECT_NE(help.find(name), std::string::npos) << name;
  }
  SimProcess bad({"--scenario", "no-such-thing"}, dir_.path() / "bad");
  EXPECT_FALSE(bad.start());
  EXPECT_EQ(bad.exit_status(), 1);
  EXPECT_NE(bad.output().find("unknown scenario 'no-such-thing'"), std::string::npos) << bad.output();
}

}  // namespace
