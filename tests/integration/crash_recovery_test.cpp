// Crash recovery with real processes: the stub host with the built plugin is killed with SIGKILL
// at chosen points (during webhook bursts, mid-download, between download and attachment, while
// the host copies an attachment) and restarted on the same data directory. At the end every
// call's recording is attached exactly once with the right bytes, every delivery answered 202 is
// in the plugin's store, and no half-written file is left.
//
// The kill points come from a seeded generator; the seed is printed and can be replaced with
// WAVOIP_CRASH_SEED=<n> to replay or explore another run.
#include "e2e_fixture.hpp"

#include <wavoip/store/store.hpp>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <set>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using e2e::audio;
using e2e::call_ended;
using e2e::call_event;
using e2e::record_event;
using e2e::recording_bytes;
using testsupport::eventually;
using wavoip::test::ScriptedResponse;

using e2e::kPluginId;
constexpr unsigned kDefaultSeed = 20261130;

// One call of the scenario and what the test knows about it.
struct Call {
  std::string id;
  std::string body;
  bool slow = false;               // the storage sends the body in small delayed chunks
  bool by_poll = false;            // no READY ever comes: only the poll fallback finds the file
  bool sent = false;               // a phase took it and posts its deliveries
  bool decisive_accepted = false;  // READY (or, for by_poll, ENDED) was answered 202
  std::vector<std::string> deliveries() const {
    std::vector<std::string> out{call_event(id, "CREATE", "ACTIVE"), call_ended(id, 33)};
    if (!by_poll) out.push_back(record_event(id, "READY"));
    return out;
  }
};

class CrashRecovery : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<testsupport::TempDir>("wavoip-crash");
    storage_ = std::make_unique<wavoip::test::TestHttpServer>();
    // Fast polls (real clock): a call without READY is polled 1 s after it ended.
    config_ = json::object{{"base_url", storage_->url("/")},
                           {"allow_insecure_loopback", true},
                           {"poll", json::object{{"first_delay_s", 1},
                                                 {"initial_backoff_s", 1},
                                                 {"max_backoff_s", 2},
                                                 {"deadline_s", 3600},
                                                 {"jitter", 0}}}};
  }

  void TearDown() override {
    if (host_ && host_->running()) {
      EXPECT_EQ(host_->stop(), 0);
    }
    if (HasFailure() && host_) std::cerr << "---- host log (all runs) ----\n" << host_->log() << "\n";
    host_.reset();
    storage_.reset();
    dir_.reset();
  }

  fs::path data_dir() const { return dir_->path() / "host"; }
  fs::path plugin_dir() const { return data_dir() / "plugins" / kPluginId; }
  fs::path db_path() const { return plugin_dir() / "wavoip.sqlite"; }

  void start(int attach_delay_ms = 0) {
    testsupport::HostOptions options;
    options.host_binary = HDP_STUB_HOST_PATH;
    options.plugins = {WAVOIP_PLUGIN_PATH};
    options.plugin_config_json = json::serialize(config_);
    options.data_dir = data_dir();
    if (attach_delay_ms > 0) options.extra_args = {"--test-attach-delay-ms", std::to_string(attach_delay_ms)};
    host_ = std::make_unique<testsupport::HostProcess>(options);
    ASSERT_TRUE(host_->start()) << "the host did not restart; its log:\n" << host_->log();
  }

  testsupport::HttpResponse post(const std::string& body) {
    return testsupport::http_request("POST", host_->base_url() + "/webhooks/wavoip", body,
                                     {"Content-Type: application/json"}, 5000);
  }

  // Posts a delivery; remembers it when the plugin accepted it (202 with its delivery id).
  bool post_and_record(const std::string& call_id, const std::string& body) {
    auto r = post(body);
    if (r.status != 202) return false;
    const int64_t delivery = json::parse(r.body).at("delivery_id").as_int64();
    std::lock_guard lock(mutex_);
    accepted_[delivery] = call_id;
    return true;
  }

  // Sends every delivery of `call` in order; stops at the first that was not answered.
  bool send_call(Call& call) {
    for (const std::string& body : call.deliveries()) {
      if (!post_and_record(call.id, body)) return false;
    }
    std::lock_guard lock(mutex_);
    call.decisive_accepted = true;
    return true;
  }

  std::optional<json::object> message(const std::string& id) {
    auto r = host_->agent_get("/api/messages?external_key=wavoip%3A" + id);
    if (r.status != 200) return std::nullopt;
    return json::parse(r.body).as_object();
  }

  size_t log_count(const std::string& needle) {
    const std::string log = host_->log();
    size_t n = 0;
    for (size_t p = log.find(needle); p != std::string::npos; p = log.find(needle, p + needle.size())) ++n;
    return n;
  }

  std::unique_ptr<testsupport::TempDir> dir_;
  std::unique_ptr<wavoip::test::TestHttpServer> storage_;
  std::unique_ptr<testsupport::HostProcess> host_;
  json::object config_;
  std::mutex mutex_;
  std::map<int64_t, std::string> accepted_;  // delivery id -> call id, for every 202
};

TEST_F(CrashRecovery, KilledAtRandomPointsEveryRecordingEndsAttachedOnceAndNothingAcceptedIsLost) {
  unsigned seed = kDefaultSeed;
  if (const char* env = std::getenv("WAVOIP_CRASH_SEED")) seed = static_cast<unsigned>(std::strtoul(env, nullptr, 10));
  std::cout << "[ crash seed ] " << seed << " (replay with WAVOIP_CRASH_SEED=" << seed << ")\n";
  RecordProperty("crash_seed", static_cast<int>(seed));
  std::mt19937 rng(seed);
  auto uniform = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  // The calls, by the phase that sends them: webhook bursts (half of them found by polling
  // only, some slow), slow downloads to kill, fast downloads whose attachment is killed.
  enum Phase { kWebhookBurst, kMidDownload, kBeforeAttach, kWhileAttaching };
  std::vector<Call> calls;
  std::map<Phase, std::vector<size_t>> role;
  for (int i = 0; i < 46; ++i) {
    Call c;
    char hex[40];
    std::snprintf(hex, sizeof hex, "C4A5%028X", static_cast<unsigned>(i * 7919 + 17));
    c.id = hex;
    const Phase p = i < 24 ? kWebhookBurst : i < 32 ? kMidDownload : kBeforeAttach;
    role[p].push_back(calls.size());
    c.by_poll = p == kWebhookBurst && i % 2 == 1;
    c.slow = p == kMidDownload || (p == kWebhookBurst && i % 3 == 0);
    c.body = recording_bytes(static_cast<size_t>(uniform(20000, 160000)), static_cast<char>('a' + i % 26));
    ScriptedResponse r = audio(c.body);
    if (c.slow) {
      r.chunk_bytes = 8192;
      r.chunk_delay = std::chrono::milliseconds(15);
    }
    storage_->set_response("/" + c.id, r);
    calls.push_back(std::move(c));
  }
  auto take = [&](Phase p) -> Call* {
    auto& queue = role[p == kWhileAttaching ? kBeforeAttach : p];
    if (queue.empty()) return nullptr;
    Call* c = &calls[queue.front()];
    queue.erase(queue.begin());
    c->sent = true;
    return c;
  };
  const char* phase_names[] = {"webhook burst", "mid-download", "between download and attach", "while attaching"};
  constexpr int kRounds = 24;
  constexpr int kAttachDelayMs = 250;
  std::map<Phase, int> kills;
  auto phase_of = [](int round) { return static_cast<Phase>(round % 4); };
  auto needs_delay = [](Phase p) { return p == kBeforeAttach || p == kWhileAttaching; };

  ASSERT_NO_FATAL_FAILURE(start(needs_delay(phase_of(0)) ? kAttachDelayMs : 0));
  for (int round = 0; round < kRounds; ++round) {
    const Phase phase = phase_of(round);
    bool hit = false;
    switch (phase) {
      case kWebhookBurst: {
        // Three senders post the deliveries of four new calls (and a few repeats) at once.
        std::vector<Call*> batch;
        for (int i = 0; i < 4; ++i) {
          if (Call* c = take(kWebhookBurst)) batch.push_back(c);
        }
        std::vector<std::thread> senders;
        for (size_t s = 0; s < 3; ++s) {
          senders.emplace_back([&, s] {
            for (size_t i = s; i < batch.size(); i += 3) {
              if (!send_call(*batch[i])) return;
              if (!post_and_record(batch[i]->id, batch[i]->deliveries().back())) return;  // a duplicate
            }
          });
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(uniform(2, 40)));
        host_->kill_hard();
        for (auto& t : senders) t.join();
        hit = !batch.empty();
        break;
      }
      case kMidDownload: {
        Call* c = take(kMidDownload);
        if (c == nullptr) break;
        const uint64_t hits = storage_->hits("/" + c->id);
        ASSERT_TRUE(send_call(*c));
        ASSERT_TRUE(eventually([&] { return storage_->hits("/" + c->id) > hits; }));
        std::this_thread::sleep_for(std::chrono::milliseconds(uniform(0, 120)));  // the body takes ~250 ms
        host_->kill_hard();
        hit = true;
        break;
      }
      case kBeforeAttach:
      case kWhileAttaching: {
        Call* c = take(phase);
        if (c == nullptr) break;
        const std::string done = "[WaVoIP] Download of call " + c->id + ": ready_file";
        const size_t before = log_count(done);
        ASSERT_TRUE(send_call(*c));
        ASSERT_TRUE(eventually([&] { return log_count(done) > before; })) << c->id;
        // The host holds each attachment copy back kAttachDelayMs: right after the download the
        // job is still waiting; around kAttachDelayMs the host copies, records and reports it.
        if (phase == kWhileAttaching) {
          const int wait_ms = uniform(kAttachDelayMs - 40, kAttachDelayMs + 40);
          std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
        }
        host_->kill_hard();
        hit = true;
        break;
      }
    }
    if (hit) ++kills[phase];
    if (host_->running()) host_->kill_hard();
    ASSERT_NO_FATAL_FAILURE(start(needs_delay(phase_of(round + 1)) ? kAttachDelayMs : 0));
  }
  int total_kills = 0;
  for (const auto& [phase, n] : kills) {
    std::cout << "[ kills      ] " << phase_names[phase] << ": " << n << "\n";
    total_kills += n;
  }
  ASSERT_GE(total_kills, 20);
  for (Phase p : {kWebhookBurst, kMidDownload, kBeforeAttach, kWhileAttaching}) {
    EXPECT_GE(kills[p], 5) << phase_names[p];
  }

  // The last run is not killed. A sender whose delivery was not answered sends it again.
  ASSERT_NO_FATAL_FAILURE(start());
  for (Call& c : calls) {
    if (!c.decisive_accepted) {
      ASSERT_TRUE(send_call(c)) << c.id;
    }
  }
  for (const Call& c : calls) {
    ASSERT_TRUE(eventually(
        [&] {
          auto m = message(c.id);
          return m && m->at("recording_status") == "attached";
        },
        std::chrono::seconds(60)))
        << c.id << " is " << (message(c.id) ? json::serialize(*message(c.id)) : "missing");
  }
  for (const Call& c : calls) {
    auto m = *message(c.id);
    const auto& attachments = m.at("attachments").as_array();
    ASSERT_EQ(attachments.size(), 1u) << c.id << ": " << json::serialize(m);
    const std::string url(attachments[0].at("url").as_string());
    EXPECT_EQ(host_->agent_get(url).body, c.body) << c.id;
  }
  ASSERT_EQ(host_->stop(), 0);

  // Every delivery answered 202 is in the plugin's store, with its call.
  SQLite::Database db(db_path().string(), SQLite::OPEN_READONLY);
  SQLite::Statement by_id(db, "SELECT call_id FROM deliveries WHERE id = ?1");
  for (const auto& [delivery, call_id] : accepted_) {
    by_id.reset();
    by_id.bind(1, static_cast<int64_t>(delivery));
    ASSERT_TRUE(by_id.executeStep()) << "accepted delivery " << delivery << " is missing";
    EXPECT_EQ(by_id.getColumn(0).getString(), call_id);
  }
  EXPECT_GE(db.execAndGet("SELECT COUNT(*) FROM deliveries").getInt64(), static_cast<int64_t>(accepted_.size()));
  EXPECT_EQ(db.execAndGet("SELECT COUNT(*) FROM attachments").getInt64(), static_cast<int64_t>(calls.size()));
  EXPECT_EQ(db.execAndGet("SELECT COUNT(*) FROM calls WHERE recording != 'attached'").getInt64(), 0);
  std::cout << "[ accepted   ] " << accepted_.size() << " deliveries, all stored\n";

  // What the restarts found, from the plugin's "Resumed: ..." lines: proof that the kills
  // landed with downloads and attachments in flight and partial files on disk.
  long long restarted = 0, voided = 0, removed = 0, reshown = 0;
  {
    std::istringstream log(host_->log());
    std::string line;
    while (std::getline(log, line)) {
      const size_t at = line.find("[WaVoIP] Resumed: ");
      if (at == std::string::npos) continue;
      long long a = 0, b = 0, c = 0, d = 0;
      if (std::sscanf(line.c_str() + at,
                      "[WaVoIP] Resumed: %lld download(s) or attachment(s) restarted, %lld stale claim(s) voided, "
                      "%lld leftover file(s) removed, %lld call(s) shown again",
                      &a, &b, &c, &d) == 4) {
        restarted += a;
        voided += b;
        removed += c;
        reshown += d;
      }
    }
  }
  std::cout << "[ restarts   ] " << restarted << " downloads/attachments resumed, " << voided << " claims voided, "
            << removed << " leftover files removed, " << reshown << " calls shown again\n";
  EXPECT_GT(restarted, 0);
  EXPECT_GT(voided, 0);
  EXPECT_GT(removed, 0);

  // No half-written download and no kept recording is left behind.
  for (const char* sub : {"downloads", "recordings"}) {
    for (const auto& entry : fs::directory_iterator(plugin_dir() / sub)) {
      ADD_FAILURE() << "left over: " << entry.path();
    }
  }
}

// The plugin's pieces of state, as a crash leaves them, put in place by hand: each is taken up
// again on the next start. The store file is prepared while the host is stopped.
class CrashLeftovers : public CrashRecovery {
 protected:
  void SetUp() override {
    CrashRecovery::SetUp();
    ASSERT_NO_FATAL_FAILURE(start());  // creates the store with its schema
    ASSERT_EQ(host_->stop(), 0);
  }

  void insert_call(SQLite::Database& db, const std::string& id, const std::string& state, const std::string& reason,
                   const std::string& file = "", uint64_t bytes = 0) {
    SQLite::Statement s(db,
                        "INSERT INTO calls (call_id, direction, caller, receiver, call_status, answered, duration_s,"
                        " ended_at, recording, reason, recording_file, content_type, recording_bytes,"
                        " deadline_at, message_requested, created_at, updated_at)"
                        " VALUES (?1, 'INCOMING', '5511999990001', '5511888880002', 'ENDED', 1, 20, 1000, ?2, ?3,"
                        " ?4, 'audio/mpeg', ?5, 99999999999999, 1, 1000, 1000)");
    s.bind(1, id);
    s.bind(2, state);
    s.bind(3, reason);
    s.bind(4, file);
    s.bind(5, static_cast<int64_t>(bytes));
    s.exec();
  }
};

TEST_F(CrashLeftovers, AChangeCommittedButNotYetShownIsShownAfterTheRestart) {
  {
    SQLite::Database db(db_path().string(), SQLite::OPEN_READWRITE);
    // A DISABLED delivery was stored and answered 202; the process died before the host was told.
    insert_call(db, "SHOWN0001", "disabled", "Recording is disabled for this WaVoIP device");
    db.exec("INSERT INTO host_sync (call_id) VALUES ('SHOWN0001')");
    // And one the host already shows: not shown again.
    insert_call(db, "QUIET0001", "empty", "Call too short: WaVoIP made no recording");
  }
  ASSERT_NO_FATAL_FAILURE(start());
  auto m = message("SHOWN0001");
  ASSERT_TRUE(m) << host_->log();
  EXPECT_EQ(m->at("recording_status"), "disabled");
  EXPECT_EQ(m->at("recording_reason"), "Recording is disabled for this WaVoIP device");
  EXPECT_EQ(m->at("contact"), "5511999990001");
  EXPECT_FALSE(message("QUIET0001"));
  EXPECT_EQ(log_count("1 call(s) shown again on the host"), 1u);
  ASSERT_EQ(host_->stop(), 0);
  SQLite::Database db(db_path().string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT COUNT(*) FROM host_sync").getInt64(), 0);
}

TEST_F(CrashLeftovers, AChangeTheHostCommittedButThePluginDidNotRecordIsShownOnceMoreNeverTwice) {
  // The host committed the call's last message write (attached, with its one attachment), and
  // the process died before the plugin cleared the call's host_sync mark.
  storage_->set_response("/HOSTDONE1", audio(recording_bytes(9000, 'h')));
  ASSERT_NO_FATAL_FAILURE(start());
  Call call;
  call.id = "HOSTDONE1";
  for (const std::string& body : call.deliveries()) ASSERT_EQ(post(body).status, 202);
  ASSERT_TRUE(eventually([&] {
    auto m = message("HOSTDONE1");
    return m && m->at("recording_status") == "attached";
  })) << host_->log();
  const int64_t message_id = message("HOSTDONE1")->at("id").as_int64();
  ASSERT_EQ(host_->stop(), 0);
  {
    SQLite::Database db(db_path().string(), SQLite::OPEN_READWRITE);
    ASSERT_EQ(db.execAndGet("SELECT COUNT(*) FROM host_sync").getInt64(), 0) << "cleared once the host confirmed";
    db.exec("INSERT INTO host_sync (call_id) VALUES ('HOSTDONE1')");
  }
  ASSERT_NO_FATAL_FAILURE(start());
  ASSERT_TRUE(eventually([&] { return log_count("1 call(s) shown again on the host") == 1; })) << host_->log();
  ASSERT_TRUE(eventually([&] {
    SQLite::Database db(db_path().string(), SQLite::OPEN_READONLY);
    return db.execAndGet("SELECT COUNT(*) FROM host_sync").getInt64() == 0;
  })) << "the mark goes once the host confirmed the write again";
  auto m = message("HOSTDONE1");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->at("id").as_int64(), message_id) << "the same message, found by its key";
  EXPECT_EQ(m->at("recording_status"), "attached");
  EXPECT_EQ(m->at("attachments").as_array().size(), 1u);
  EXPECT_EQ(storage_->hits("/HOSTDONE1"), 1u) << "nothing downloaded again";
}

TEST_F(CrashLeftovers, InterruptedFilesAreRemovedAndAKeptRecordingIsAttachedWithoutDownloadingAgain) {
  const std::string body = recording_bytes(25000, 'k');
  const fs::path kept = plugin_dir() / "recordings" / "ATTACHING1.mp3";
  const fs::path stale = plugin_dir() / "recordings" / "DONE1.mp3";
  const fs::path part = plugin_dir() / "downloads" / "FETCHING1.part";
  std::ofstream(kept, std::ios::binary) << body;
  std::ofstream(stale, std::ios::binary) << "attached long ago";
  std::ofstream(part, std::ios::binary) << "half a recor";
  const std::string fetched = recording_bytes(12000, 'f');
  storage_->set_response("/FETCHING1", audio(fetched));
  {
    SQLite::Database db(db_path().string(), SQLite::OPEN_READWRITE);
    // Killed between the download and the end of its attachment: the file is complete.
    insert_call(db, "ATTACHING1", "attaching", "Attaching the recording", kept.string(), body.size());
    // Killed mid-download, with a claim left by the dead process.
    insert_call(db, "FETCHING1", "fetching", "Downloading the recording");
    db.exec("UPDATE calls SET owner = 'dead-node', lease_until = 9000000000000, fence = 3 WHERE call_id = 'FETCHING1'");
    // Killed after the attachment, before its file was deleted.
    insert_call(db, "DONE1", "attached", "");
  }
  ASSERT_NO_FATAL_FAILURE(start());
  ASSERT_TRUE(eventually([&] {
    auto a = message("ATTACHING1");
    auto f = message("FETCHING1");
    return a && f && a->at("recording_status") == "attached" && f->at("recording_status") == "attached";
  })) << host_->log();
  EXPECT_EQ(storage_->hits("/ATTACHING1"), 0u) << "the complete file was attached as it was";
  EXPECT_EQ(storage_->hits("/FETCHING1"), 1u);
  auto file_of = [&](const std::string& id) {
    auto m = *message(id);
    const std::string url(m.at("attachments").as_array()[0].at("url").as_string());
    return host_->agent_get(url).body;
  };
  EXPECT_EQ(file_of("ATTACHING1"), body);
  EXPECT_EQ(file_of("FETCHING1"), fetched);
  EXPECT_FALSE(fs::exists(part));
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(eventually([&] { return !fs::exists(kept); })) << "deleted once attached";
  EXPECT_EQ(log_count("Resumed: 2 download(s) or attachment(s) restarted, 1 stale claim(s) voided, "
                      "2 leftover file(s) removed"),
            1u);
}

// The store's half of "shown again after a crash": the mark is written in the step's own
// transaction, only for steps that change what the host shows, and survives until cleared.
TEST(HostSyncMarks, AStepThatShowsSomethingMarksItsCallUntilTheHostWasTold) {
  testsupport::TempDir dir("wavoip-sync");
  const std::string path = (dir.path() / "store.sqlite").string();
  {
    wavoip::SqliteStore store(path);
    wavoip::CallRecord shown = wavoip::new_call_record("SHOW1");
    wavoip::CallRecord quiet = wavoip::new_call_record("QUIET1");
    store.save_call(shown);
    store.save_call(quiet);
    store.apply_to_call("SHOW1", [](const wavoip::CallRecord& r) {
      wavoip::FlowResult result{r, {}};
      result.record.recording = wavoip::RecordingState::disabled;
      result.actions.push_back(wavoip::SetRecordingStatus{r.call_id, wavoip::RecordingState::disabled, "off", ""});
      return result;
    });
    store.apply_to_call("QUIET1", [](const wavoip::CallRecord& r) {
      wavoip::FlowResult result{r, {}};
      result.actions.push_back(wavoip::LogLine{wavoip::LogLevel::info, "nothing to show"});
      return result;
    });
    // A step that throws writes nothing, its mark included.
    EXPECT_THROW(store.apply_to_call("QUIET1",
                                     [](const wavoip::CallRecord& r) -> wavoip::FlowResult {
                                       (void)r;
                                       throw std::runtime_error("step failed");
                                     }),
                 std::runtime_error);
  }
  // After a "crash" (the store closed without clearing), the mark is still there.
  wavoip::SqliteStore store(path);
  auto behind = store.calls_behind_host(10, "");
  ASSERT_EQ(behind.size(), 1u);
  EXPECT_EQ(behind[0].call_id, "SHOW1");
  EXPECT_EQ(behind[0].recording, wavoip::RecordingState::disabled);
  store.mark_host_synced({"SHOW1"});
  EXPECT_TRUE(store.calls_behind_host(10, "").empty());
}

TEST(HostSyncMarks, AVersionOneStoreIsMigratedAndKeepsItsCalls) {
  testsupport::TempDir dir("wavoip-migrate");
  const std::string path = (dir.path() / "store.sqlite").string();
  {
    wavoip::SqliteStore store(path);
    store.save_call(wavoip::new_call_record("OLD1"));
  }
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    // What version 1 did not have: host_sync (version 2), the claim columns (version 3), the
    // reason's detail (version 5) and the write-back marks (version 7); and what it had that
    // version 6 dropped: fetch_claims.
    db.exec("DROP TABLE host_sync");
    db.exec("CREATE TABLE fetch_claims (call_id TEXT PRIMARY KEY, claimed_at INTEGER NOT NULL)");
    db.exec("DROP INDEX calls_leased");
    for (const char* column : {"owner", "lease_until", "fence", "reason_detail", "last_delivery"}) {
      db.exec(std::string("ALTER TABLE calls DROP COLUMN ") + column);
    }
    db.exec("ALTER TABLE deliveries DROP COLUMN inbox");  // and version 7's write-back marks
    db.exec("DROP TABLE saved_through");
    db.exec("PRAGMA user_version = 1");
  }
  wavoip::SqliteStore store(path);
  EXPECT_TRUE(store.load_call("OLD1").has_value());
  EXPECT_TRUE(store.calls_behind_host(10, "").empty());
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), wavoip::SqliteStore::kSchemaVersion);
}

}  // namespace
