// RecordingService (plugin/src/recording_service.hpp) against the in-process fake host
// (tests/support): its timers run on the fake host's virtual clock, attachments complete when the
// test says, and downloads come from a local HTTP server (tests/fetch) over the fake host's fd
// watches (downloads "loop"; the real host's tests run them on their own thread). The store is a
// real SQLite file in a temporary directory, written by the StoreWriter in "loop" mode (each loop
// turn's jobs at its end, on the test's thread), so every step is committed by the time the fake
// host's turn returns. Deliveries enter through the webhook handler's check/submit, as on a host;
// another node is a second SqliteStore connection on the same file.
#include "host_api.hpp"
#include "host_event_loop.hpp"
#include "recording_service.hpp"
#include "store_writer.hpp"
#include "webhook.hpp"

#include "fake_host.hpp"         // tests/support
#include "temp_dir.hpp"          // tests/support
#include "test_http_server.hpp"  // tests/fetch

#include <wavoip/core/config.hpp>
#include <wavoip/store/store.hpp>

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace wavoip {
namespace {

namespace fs = std::filesystem;

// A third of it (the renewal) is apart from the 1 s after which a download is shown busy.
constexpr TimeMs kLeaseMs = 6000;
constexpr const char* kAudio = "RIFF-recording-bytes";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

size_t files_in(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++n;
  return n;
}

class RecordingServiceTest : public ::testing::Test {
 protected:
  RecordingServiceTest() {
    test::ScriptedResponse audio;
    audio.content_type = "audio/wav";
    audio.body = kAudio;
    for (const char* call : {"call-1", "call-a", "call-b"}) server_.set_response(std::string("/") + call, audio);
    // A download that stays in flight for the whole test: its body waits a minute.
    audio.chunk_delay = std::chrono::minutes(1);
    server_.set_response("/slow-1", audio);
  }

  ~RecordingServiceTest() override { stop_node(); }

  // This node: a host, its store connection, the writer (loop mode) and the service; resumed and
  // started as the plugin's start() does. `shared`: the store is shared with other nodes (as
  // PostgreSQL is), so this node's claims can be taken over; otherwise the node owns it alone.
  void start_node(bool shared = false) {
    const std::string json =
        R"({"base_url":")" + server_.url("/") +
        R"(","allow_insecure_loopback":true,"store_writer":"loop","downloads":"loop","claim_lease_ms":)" +
        std::to_string(kLeaseMs) + R"(,"node_id":"node-1","poll":{"first_delay_s":60,"jitter":0}})";
    auto parsed = parse_config(json);
    ASSERT_TRUE(parsed) << parsed.error().message;
    config_ = std::move(parsed.value());
    host_ = std::make_unique<testsupport::FakeHost>(json, dir_.path().string());
    api_ = std::make_unique<HostApi>(host_->host());
    loop_ = std::make_unique<HostEventLoop>(*api_);
    // A store locked by another connection fails fast instead of after the default 5 s.
    store_ = std::make_unique<SqliteStore>(db_path(), SqliteOptions{SyncMode::normal, 100});
    writer_ = std::make_unique<StoreWriter>(*api_, *store_, StoreWriter::Mode::loop);
    service_ = std::make_unique<RecordingService>(*api_, *loop_, *writer_, config_, dir_.path().string(),
                                                  ClaimSettings{"node-1", kLeaseMs, shared});
    writer_->set_batch_observer([this](const StoreWriter::BatchInfo& info) { service_->on_store_batch(info); });
    webhook_ = std::make_unique<WebhookHandler>(*api_, config_, *writer_, *service_);
    service_->resume();
    writer_->start();
    host_->run_all();
  }

  // The plugin's stop() (a clean stop), or a crash when `crash`: the service goes without
  // shutdown, and the store keeps whatever claims it held.
  void stop_node(bool crash = false) {
    if (!service_) return;
    if (!crash) service_->shutdown();
    writer_->stop();
    loop_->forget_all();
    webhook_.reset();
    service_.reset();
    loop_.reset();
    writer_.reset();
    store_.reset();
    api_.reset();
    host_.reset();
  }

  std::string db_path() const { return (dir_.path() / "wavoip.sqlite").string(); }
  fs::path recordings_dir() const { return dir_.path() / "recordings"; }
  fs::path downloads_dir() const { return dir_.path() / "downloads"; }
  TimeMs now() const { return host_->wall_clock_us / 1000; }

  // A RECORD webhook for `call_id`, handed over as the webhook route does, and its batch written.
  void record_event(const std::string& call_id, const std::string& status) {
    const std::string body =
        R"({"type":"RECORD","whatsapp_call_id":")" + call_id + R"(","record_status":")" + status + R"("})";
    WebhookRequest request;
    request.path = WebhookHandler::kPath;
    request.content_type = "application/json";
    request.body = body;
    auto checked = webhook_->check(request);
    ASSERT_TRUE(std::holds_alternative<PendingDelivery>(checked)) << std::get<WebhookAnswer>(checked).body;
    webhook_->submit(std::get<PendingDelivery>(std::move(checked)));
    host_->run_all();
  }

  // Another node's connection to the same store.
  std::unique_ptr<SqliteStore> other_node() const { return std::make_unique<SqliteStore>(db_path()); }

  std::optional<CallRecord> stored(const std::string& call_id) const { return other_node()->load_call(call_id); }

  size_t log_count(const std::string& needle) const {
    size_t n = 0;
    for (const std::string& line : host_->log) n += line.find(needle) != std::string::npos ? 1 : 0;
    return n;
  }

  std::string log() const {
    std::string all;
    for (const std::string& line : host_->log) all += line + "\n";
    return all;
  }

  // Whether a timer is pending that falls due in `ms`.
  bool timer_due_in(TimeMs ms) const {
    for (const auto& [id, due_in] : host_->pending_timer_due_in_ms()) {
      if (due_in == ms) return true;
    }
    return false;
  }

  // Runs the loop until the `nth` download of `call_id` finished and its outcome was handled.
  bool download_finishes(const std::string& call_id, size_t nth = 1) {
    return host_->drive_until([&] {
      return log_count("[WaVoIP] Download of call " + call_id + ":") == nth && service_->downloads_in_flight() == 0 &&
             writer_->in_flight() == 0;
    });
  }

  testsupport::TempDir dir_{"wavoip-service"};
  test::TestHttpServer server_;
  Config config_;
  std::unique_ptr<testsupport::FakeHost> host_;
  std::unique_ptr<HostApi> api_;
  std::unique_ptr<HostEventLoop> loop_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<RecordingService> service_;
  std::unique_ptr<WebhookHandler> webhook_;
};

TEST_F(RecordingServiceTest, AReadyStepDownloadsOnceAndAttachesOnceUnderTheCallsKey) {
  start_node();
  record_event("call-1", "READY");
  EXPECT_EQ(service_->downloads_in_flight(), 1u);
  ASSERT_TRUE(download_finishes("call-1")) << log();
  EXPECT_EQ(server_.hits("/call-1"), 1u);

  ASSERT_EQ(host_->attachments.size(), 1u) << log();
  const testsupport::FakeAttachment attachment = host_->attachments[0];
  EXPECT_EQ(attachment.idempotency_key, "wavoip:call-1");
  EXPECT_EQ(attachment.message_id, host_->message_id("wavoip:call-1"));
  EXPECT_NE(attachment.message_id, 0u);
  EXPECT_EQ(attachment.mime_type, "audio/wav");
  EXPECT_EQ(attachment.file_name, "call-call-1.wav");
  EXPECT_EQ(read_file(attachment.file_path), kAudio);
  EXPECT_EQ(stored("call-1")->recording, RecordingState::attaching);

  ASSERT_TRUE(host_->complete_attachment(attachment.job_id, HDP_OK, 77));
  ASSERT_TRUE(host_->drive_until([&] { return writer_->in_flight() == 0; }));
  EXPECT_EQ(stored("call-1")->recording, RecordingState::attached);
  EXPECT_EQ(other_node()->attachment_of("call-1"), "77");
  EXPECT_FALSE(fs::exists(attachment.file_path)) << "the host has its own copy";
  EXPECT_EQ(host_->statuses.back().status, HDP_RECORDING_ATTACHED);
  EXPECT_EQ(std::count_if(host_->statuses.begin(), host_->statuses.end(),
                          [](const testsupport::FakeStatusUpdate& u) { return u.status == HDP_RECORDING_ATTACHED; }),
            1)
      << "shown once: when the host had the file, not again when the plugin recorded it";
  EXPECT_EQ(log_count("✅ Recording attached successfully"), 1u) << log();

  // A late or repeated READY neither downloads nor attaches again.
  record_event("call-1", "READY");
  ASSERT_TRUE(host_->drive_until([&] { return writer_->in_flight() == 0; }));
  EXPECT_EQ(service_->downloads_in_flight(), 0u);
  EXPECT_EQ(server_.hits("/call-1"), 1u);
  EXPECT_EQ(host_->attachments.size(), 1u);
}

// The agent sees "attached" as soon as the host has the file: the plugin's record of the
// attachment is written after, and a failure there does not take it from the agent (the host
// keeps the attachment; the call is attached again under the same key once taken up again).
TEST_F(RecordingServiceTest, TheAgentSeesAttachedOnceTheHostHasTheFileBeforeThePluginRecordsIt) {
  start_node();
  record_event("call-1", "READY");
  ASSERT_TRUE(download_finishes("call-1")) << log();
  ASSERT_EQ(host_->attachments.size(), 1u) << log();
  {
    // Another connection holds the store's write lock while the attachment's record is written.
    SQLite::Database lock(db_path(), SQLite::OPEN_READWRITE);
    lock.exec("BEGIN EXCLUSIVE");
    ASSERT_TRUE(host_->complete_attachment(host_->attachments[0].job_id, HDP_OK, 77));
    ASSERT_FALSE(host_->statuses.empty());
    EXPECT_EQ(host_->statuses.back().status, HDP_RECORDING_ATTACHED) << "shown in the attachment's own callback";
    ASSERT_TRUE(host_->drive_until([&] { return writer_->in_flight() == 0; }));
    EXPECT_EQ(log_count("[WaVoIP] Could not record the attachment of call call-1"), 1u) << log();
    lock.exec("ROLLBACK");
  }
  EXPECT_EQ(stored("call-1")->recording, RecordingState::attaching) << "the plugin's record lags behind";
  EXPECT_FALSE(other_node()->attachment_of("call-1").has_value());
  EXPECT_EQ(host_->statuses.back().status, HDP_RECORDING_ATTACHED);
  EXPECT_EQ(host_->attachments.size(), 1u);
}

TEST_F(RecordingServiceTest, ACallAnotherNodeHoldsIsNotDownloadedHere) {
  start_node();
  record_event("call-1", "MIXING");
  ASSERT_TRUE(other_node()->claim_call("call-1", "other-node", now(), kLeaseMs));

  record_event("call-1", "READY");
  EXPECT_EQ(service_->downloads_in_flight(), 0u);
  EXPECT_EQ(log_count("Recording of call call-1 already in the works (here or on another node) or done"), 1u) << log();
  // Nothing this node could still start: no download, no attachment, whatever the loop runs.
  ASSERT_TRUE(host_->drive_until([&] { return writer_->in_flight() == 0; }));
  host_->advance_ms(kLeaseMs / 2);
  EXPECT_EQ(server_.hits(), 0u);
  EXPECT_TRUE(host_->attachments.empty());
  EXPECT_EQ(stored("call-1")->recording, RecordingState::fetching) << "the other node's download";
}

TEST_F(RecordingServiceTest, AnOutcomeWhoseClaimAnotherNodeTookOverIsDropped) {
  start_node(/*shared=*/true);
  record_event("call-1", "READY");
  ASSERT_EQ(service_->downloads_in_flight(), 1u);
  // This node stalls past its lease (the wall clock jumps; no renewal timer runs) and another
  // node takes the call over before the download comes back.
  host_->wall_clock_us += (kLeaseMs + 1) * 1000;
  ASSERT_TRUE(other_node()->claim_call("call-1", "other-node", now(), kLeaseMs));

  ASSERT_TRUE(download_finishes("call-1")) << log();
  EXPECT_EQ(server_.hits("/call-1"), 1u);
  EXPECT_EQ(log_count("[WaVoIP] Call call-1: another node took over this node's claim"), 1u) << log();
  EXPECT_TRUE(host_->attachments.empty());
  EXPECT_EQ(files_in(recordings_dir()), 0u) << "the downloaded copy is removed";
  EXPECT_EQ(files_in(downloads_dir()), 0u);
  const std::optional<CallRecord> record = stored("call-1");
  EXPECT_EQ(record->recording, RecordingState::fetching) << "nothing of this node's outcome is written";
  EXPECT_TRUE(record->recording_file.empty());
}

TEST_F(RecordingServiceTest, AnOutcomeThatCouldNotBeStoredLetsTheClaimLapseAndTheCallIsTakenUpAgain) {
  start_node(/*shared=*/true);
  record_event("call-1", "READY");
  {
    // Another connection holds the store's write lock while the download's outcome is written.
    SQLite::Database lock(db_path(), SQLite::OPEN_READWRITE);
    lock.exec("BEGIN EXCLUSIVE");
    ASSERT_TRUE(download_finishes("call-1")) << log();
    EXPECT_EQ(log_count("[WaVoIP] Could not update call call-1"), 1u) << log();
    EXPECT_EQ(log_count("[WaVoIP] Call call-1: this node lets its claim lapse"), 1u) << log();
    lock.exec("ROLLBACK");
  }
  EXPECT_EQ(files_in(recordings_dir()), 0u) << "no call refers to the downloaded copy";
  EXPECT_EQ(stored("call-1")->recording, RecordingState::fetching);
  EXPECT_TRUE(host_->attachments.empty());

  // Nothing renews the claim any more: once its lease ended, the poll timer takes the call over
  // (as any node would) and downloads it again.
  host_->advance_ms(kLeaseMs);
  ASSERT_TRUE(download_finishes("call-1", 2)) << log();
  EXPECT_EQ(server_.hits("/call-1"), 2u);
  ASSERT_EQ(host_->attachments.size(), 1u);
  EXPECT_EQ(host_->attachments[0].idempotency_key, "wavoip:call-1");
}

// On a store this node owns alone, nobody can take its claim over: the recording goes to the
// host while the download's outcome is written. When that write fails, the host has the file
// all the same; the call is taken up again once the claim lapsed, and attached again under the
// same key (which the host answers with the attachment it has).
TEST_F(RecordingServiceTest, OnAStoreOwnedAloneTheRecordingGoesToTheHostWhileItsOutcomeIsWritten) {
  start_node();
  record_event("call-1", "READY");
  {
    // Another connection holds the store's write lock while the download's outcome is written.
    SQLite::Database lock(db_path(), SQLite::OPEN_READWRITE);
    lock.exec("BEGIN EXCLUSIVE");
    ASSERT_TRUE(download_finishes("call-1")) << log();
    EXPECT_EQ(log_count("[WaVoIP] Could not update call call-1"), 1u) << log();
    lock.exec("ROLLBACK");
  }
  ASSERT_EQ(host_->attachments.size(), 1u) << "handed to the host before the outcome was written";
  EXPECT_EQ(host_->attachments[0].idempotency_key, "wavoip:call-1");
  EXPECT_EQ(read_file(host_->attachments[0].file_path), kAudio) << "kept for the host, though the write failed";
  EXPECT_EQ(stored("call-1")->recording, RecordingState::fetching);
  ASSERT_TRUE(host_->complete_attachment(host_->attachments[0].job_id, HDP_OK, 77));
  ASSERT_TRUE(host_->drive_until([&] { return writer_->in_flight() == 0; }));
  EXPECT_EQ(files_in(recordings_dir()), 0u) << "the host has its own copy";
  EXPECT_EQ(log_count("[WaVoIP] Call call-1: this node's claim on it had lapsed after a failed write"), 1u) << log();
  EXPECT_EQ(log_count("another node"), 0u) << "no other node exists here";

  host_->advance_ms(kLeaseMs);
  ASSERT_TRUE(download_finishes("call-1", 2)) << log();
  EXPECT_EQ(server_.hits("/call-1"), 2u);
  ASSERT_EQ(host_->attachments.size(), 2u);
  EXPECT_EQ(host_->attachments[1].idempotency_key, "wavoip:call-1") << "the same key: one attachment on the host";
  ASSERT_TRUE(host_->complete_attachment(host_->attachments[1].job_id, HDP_OK, 77));
  ASSERT_TRUE(host_->drive_until([&] { return writer_->in_flight() == 0; }));
  EXPECT_EQ(stored("call-1")->recording, RecordingState::attached);
  EXPECT_EQ(other_node()->attachment_of("call-1"), "77");
  EXPECT_EQ(host_->statuses.back().status, HDP_RECORDING_ATTACHED);
}

TEST_F(RecordingServiceTest, HeldClaimsAreRenewedEveryThirdOfTheLease) {
  start_node();
  const TimeMs start = now();
  record_event("slow-1", "READY");
  EXPECT_TRUE(timer_due_in(kLeaseMs / 3));
  host_->advance_ms(kLeaseMs / 3);
  EXPECT_TRUE(timer_due_in(kLeaseMs / 3)) << "armed again after the renewal";
  host_->advance_ms(kLeaseMs / 3);
  ASSERT_EQ(service_->downloads_in_flight(), 1u);

  // Renewed at start + 2/3 lease: it holds past the first lease's end, up to the renewal's.
  const TimeMs renewed_until = start + 2 * (kLeaseMs / 3) + kLeaseMs;
  std::unique_ptr<SqliteStore> other = other_node();
  EXPECT_FALSE(other->claim_call("slow-1", "other-node", start + kLeaseMs, kLeaseMs));
  EXPECT_FALSE(other->claim_call("slow-1", "other-node", renewed_until - 1, kLeaseMs));
  EXPECT_TRUE(other->claim_call("slow-1", "other-node", renewed_until, kLeaseMs));
}

TEST_F(RecordingServiceTest, ThePollTimerIsArmedForTheEarliestDueCallAndPollsItThen) {
  start_node();
  record_event("call-a", "MIXING");
  host_->advance_ms(10'000);
  record_event("call-b", "MIXING");
  const TimeMs due_a = stored("call-a")->next_attempt_at.value();
  ASSERT_LT(due_a, stored("call-b")->next_attempt_at.value());
  EXPECT_TRUE(service_->poll_timer_armed());
  EXPECT_TRUE(timer_due_in(due_a - now())) << "no timer due in " << due_a - now() << " ms";

  host_->advance_ms(due_a - now() - 1);
  EXPECT_EQ(service_->downloads_in_flight(), 0u) << "not due yet";
  host_->advance_ms(1);
  EXPECT_EQ(service_->downloads_in_flight(), 1u);
  ASSERT_TRUE(download_finishes("call-a")) << log();
  EXPECT_EQ(server_.hits("/call-a"), 1u);
  EXPECT_EQ(server_.hits("/call-b"), 0u);
  ASSERT_EQ(host_->attachments.size(), 1u);
  EXPECT_EQ(host_->attachments[0].idempotency_key, "wavoip:call-a");
  EXPECT_TRUE(service_->poll_timer_armed()) << "then for call-b";
}

TEST_F(RecordingServiceTest, AfterARestartStaleClaimsAreVoidedAndInterruptedDownloadsStartAgain) {
  start_node();
  record_event("call-1", "READY");
  ASSERT_EQ(service_->downloads_in_flight(), 1u);
  const TimeMs crashed_at = now();
  stop_node(/*crash=*/true);
  // What the crash left behind: a half-written download and a recording no call needs.
  std::ofstream(downloads_dir() / "call-1.part") << "half";
  std::ofstream(recordings_dir() / "gone.wav") << "left over";
  ASSERT_FALSE(other_node()->claim_call("call-1", "other-node", crashed_at, kLeaseMs)) << "the old claim holds";

  start_node();
  EXPECT_EQ(log_count("[WaVoIP] Resumed: 1 download(s) or attachment(s) restarted, 1 stale claim(s) voided, 2 "
                      "leftover file(s) removed"),
            1u)
      << log();
  EXPECT_FALSE(fs::exists(downloads_dir() / "call-1.part"));
  EXPECT_FALSE(fs::exists(recordings_dir() / "gone.wav"));
  EXPECT_EQ(service_->downloads_in_flight(), 1u);
  ASSERT_TRUE(download_finishes("call-1")) << log();
  EXPECT_EQ(server_.hits("/call-1"), 1u) << "the first run's download never reached the server";
  ASSERT_EQ(host_->attachments.size(), 1u);
  EXPECT_EQ(host_->attachments[0].idempotency_key, "wavoip:call-1");
  // Under this run's claim: another node cannot take the call.
  EXPECT_FALSE(other_node()->claim_call("call-1", "other-node", now(), kLeaseMs));
}

}  // namespace
}  // namespace wavoip
