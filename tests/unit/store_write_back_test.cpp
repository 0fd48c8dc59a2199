// SQLite's write-back of the records that deliveries change (SqliteOptions::write_back_calls):
// a delivery is durable when its row in `deliveries` commits; its call's new record is written
// with later ones, and Store::replay_unsaved rebuilds what a crash kept in memory only.
//
// A crash is a copy of the database file and its WAL taken while the store is open, between
// transactions: what a power cut or kill -9 would leave on disk.
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "store_backends.hpp"
#include "temp_dir.hpp"
#include "wavoip/core/flow.hpp"
#include "wavoip/core/payload.hpp"
#include "wavoip/store/store.hpp"

namespace wavoip {
namespace {

namespace fs = std::filesystem;

constexpr TimeMs kT0 = 1'700'000'000'000;

std::string record_body(const std::string& call_id, const std::string& status) {
  return R"({"type":"RECORD","action":"UPDATE","whatsapp_call_id":")" + call_id + R"(","record_status":")" + status +
         R"("})";
}

class WriteBackTest : public ::testing::Test {
 protected:
  std::string db_path() const { return (dir_.path() / "wavoip.sqlite").string(); }

  // The plugin's options, with `calls` records held before they are written.
  static SqliteOptions options(std::size_t calls = 256) {
    SqliteOptions o;
    o.write_back_calls = calls;
    o.write_back_ms = 3'600'000;  // never by age in these tests
    return o;
  }
  SqliteStore& store() {
    if (!store_) store_ = std::make_unique<SqliteStore>(db_path(), options());
    return *store_;
  }

  // A delivery through the plugin's own step; returns its delivery id.
  std::int64_t deliver(Store& to, const std::string& body, TimeMs now, const std::string& inbox = "support") {
    ParseResult parsed = parse_event(body);
    if (!parsed) throw std::runtime_error("test body does not parse");
    const Event event = *parsed;
    return to
        .record_delivery_and_apply(body, event, inbox, now,
                                   [&](const CallRecord& r) { return step_delivery(r, event, inbox, now, config); })
        .delivery_id;
  }

  Store::ReplayFn replay() {
    return [this](const CallRecord& current, std::string_view raw, std::string_view inbox,
                  TimeMs at) -> std::optional<FlowResult> {
      ParseResult parsed = parse_event(raw);
      if (!parsed) return std::nullopt;
      return step_delivery(current, *parsed, inbox, at, config);
    };
  }

  // What a crash now would leave on disk, opened as the plugin opens its file.
  std::unique_ptr<SqliteStore> crash_image() {
    const fs::path copy = image_.path() / ("image" + std::to_string(++images_) + ".sqlite");
    fs::copy_file(db_path(), copy);
    if (fs::exists(db_path() + "-wal")) fs::copy_file(db_path() + "-wal", copy.string() + "-wal");
    return std::make_unique<SqliteStore>(copy.string(), options());
  }

  std::int64_t raw_count(const std::string& sql) {
    SQLite::Database raw(db_path(), SQLite::OPEN_READONLY);
    return raw.execAndGet(sql).getInt64();
  }

  testsupport::TempDir dir_{"wavoip-write-back"};
  testsupport::TempDir image_{"wavoip-crash-image"};
  int images_ = 0;
  Config config;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(WriteBackTest, TheDeliveryIsOnDiskAtOnceAndTheOldestRecordsFollowInSlices) {
  store_ = std::make_unique<SqliteStore>(db_path(), options(16));  // slices of 16 / 8 = 2
  deliver(store(), record_body("A", "RECORDING"), kT0);
  deliver(store(), record_body("A", "MIXING"), kT0 + 1);
  deliver(store(), record_body("B", "RECORDING"), kT0 + 2);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM deliveries"), 3);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM calls"), 0) << "two calls wait in memory";
  EXPECT_EQ(store().unsaved_calls(), 2u);

  std::int64_t first_of_c = 0;
  for (char c = 'C'; c <= 'O'; ++c) {
    const std::int64_t id = deliver(store(), record_body(std::string(1, c), "RECORDING"), kT0 + 3);
    if (c == 'C') first_of_c = id;
  }
  EXPECT_EQ(store().unsaved_calls(), 15u);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM calls"), 0);
  EXPECT_EQ(raw_count("SELECT delivery_id FROM saved_through"), 0);

  // The sixteenth call fills the set: the two held longest are written, no other.
  deliver(store(), record_body("P", "RECORDING"), kT0 + 4);
  EXPECT_EQ(store().unsaved_calls(), 14u);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM calls"), 2);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM calls WHERE call_id IN ('A', 'B')"), 2);
  EXPECT_EQ(raw_count("SELECT last_delivery FROM calls WHERE call_id = 'A'"), 2);
  EXPECT_EQ(raw_count("SELECT delivery_id FROM saved_through"), first_of_c - 1)
      << "every delivery before C's first is in the rows";
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM host_sync"), 2) << "none was shown on the host yet";

  // A delivery for a written call holds it again, as the newest: the next slice is C and D.
  deliver(store(), record_body("A", "READY"), kT0 + 5);
  deliver(store(), record_body("Q", "RECORDING"), kT0 + 6);
  EXPECT_EQ(store().unsaved_calls(), 14u);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM calls WHERE call_id IN ('C', 'D')"), 2);
  EXPECT_EQ(raw_count("SELECT last_delivery FROM calls WHERE call_id = 'A'"), 2) << "A's READY is held";
}

TEST_F(WriteBackTest, ACrashAfterASliceReplaysOnlyWhatIsStillHeld) {
  store_ = std::make_unique<SqliteStore>(db_path(), options(8));  // slices of 1
  for (char c = 'A'; c <= 'H'; ++c) deliver(store(), record_body(std::string(1, c), "RECORDING"), kT0);
  ASSERT_EQ(raw_count("SELECT COUNT(*) FROM calls"), 1) << "the eighth call wrote A, the oldest";
  // A is held again, as the newest: the set is full once more, and B goes.
  deliver(store(), record_body("A", "DISABLED"), kT0 + 1);
  ASSERT_EQ(raw_count("SELECT COUNT(*) FROM calls WHERE call_id IN ('A', 'B')"), 2);
  ASSERT_EQ(raw_count("SELECT COUNT(*) FROM calls"), 2);
  std::unique_ptr<SqliteStore> image = crash_image();

  // C to H each have one delivery to replay, and A its DISABLED, which came after its row.
  EXPECT_EQ(image->replay_unsaved(replay()), 7);
  for (char c = 'A'; c <= 'H'; ++c) {
    const std::string id(1, c);
    EXPECT_EQ(image->load_call(id), store().load_call(id)) << id;
  }
  EXPECT_EQ(image->replay_unsaved(replay()), 0);
}

TEST_F(WriteBackTest, AJobThatFailsLeavesTheOrderOfTheHeldRecordsAsItWas) {
  store_ = std::make_unique<SqliteStore>(db_path(), options(8));  // slices of 1
  std::vector<std::function<void()>> jobs;
  jobs.emplace_back([&] { deliver(store(), record_body("A", "RECORDING"), kT0); });
  jobs.emplace_back([&] {
    // Takes A's place as the oldest held: written and held again, then rolled back.
    store().save_unsaved();
    deliver(store(), record_body("B", "RECORDING"), kT0);
    deliver(store(), record_body("A", "MIXING"), kT0);
    throw std::runtime_error("the job fails after its deliveries");
  });
  ASSERT_EQ(store().run_batch(jobs)[1], "the job fails after its deliveries");
  ASSERT_EQ(store().unsaved_calls(), 1u);
  for (char c = 'C'; c <= 'I'; ++c) deliver(store(), record_body(std::string(1, c), "RECORDING"), kT0 + 1);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM calls"), 1);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM calls WHERE call_id = 'A'"), 1) << "A is still the oldest";
  EXPECT_EQ(store().load_call("A")->recording, RecordingState::waiting);
}

TEST_F(WriteBackTest, ACrashBeforeTheRecordsAreWrittenLosesNoStep) {
  deliver(store(), record_body("A", "RECORDING"), kT0, "sales");
  deliver(store(), record_body("B", "RECORDING"), kT0 + 10);
  deliver(store(), record_body("A", "MIXING"), kT0 + 20, "sales");
  deliver(store(), R"({"type":"DEVICE","status":"open"})", kT0 + 30);
  deliver(store(), record_body("B", "DISABLED"), kT0 + 40);
  ASSERT_EQ(store().unsaved_calls(), 2u);
  std::unique_ptr<SqliteStore> image = crash_image();
  const CallRecord a = *store().load_call("A");
  const CallRecord b = *store().load_call("B");
  ASSERT_EQ(a.inbox, "sales");
  ASSERT_EQ(b.recording, RecordingState::disabled);

  EXPECT_FALSE(image->load_call("A")) << "the crash kept the record in memory only";
  EXPECT_EQ(image->replay_unsaved(replay()), 4);
  EXPECT_EQ(image->load_call("A"), a);
  EXPECT_EQ(image->load_call("B"), b);
  std::vector<std::string> behind;
  for (const CallRecord& r : image->calls_behind_host(10, "")) behind.push_back(r.call_id);
  EXPECT_EQ(behind, (std::vector<std::string>{"A", "B"})) << "what they asked the host to show is shown again";
  EXPECT_EQ(image->replay_unsaved(replay()), 0) << "a second start has nothing left to replay";
}

TEST_F(WriteBackTest, ReplayStartsAfterTheDeliveryACallsRowAlreadyHolds) {
  deliver(store(), record_body("A", "RECORDING"), kT0);
  // A claim reads the call's row: its record is written first, with the delivery it holds.
  ASSERT_TRUE(store().claim_call("A", "node-a", kT0 + 1, 60'000));
  EXPECT_EQ(raw_count("SELECT last_delivery FROM calls WHERE call_id = 'A'"), 1);
  deliver(store(), record_body("A", "MIXING"), kT0 + 2);
  deliver(store(), record_body("B", "RECORDING"), kT0 + 3);
  std::unique_ptr<SqliteStore> image = crash_image();
  const CallRecord a = *store().load_call("A");

  EXPECT_EQ(image->replay_unsaved(replay()), 2) << "A's first delivery is in its row already";
  EXPECT_EQ(image->load_call("A"), a);
  EXPECT_TRUE(image->load_call("B"));
}

TEST_F(WriteBackTest, AJobThatFailsTakesBackTheRecordItChanged) {
  std::vector<std::function<void()>> jobs;
  jobs.emplace_back([&] { deliver(store(), record_body("A", "RECORDING"), kT0); });
  jobs.emplace_back([&] {
    deliver(store(), record_body("B", "RECORDING"), kT0);
    deliver(store(), record_body("A", "DISABLED"), kT0);
    throw std::runtime_error("the job fails after its deliveries");
  });
  const std::vector<std::string> errors = store().run_batch(jobs);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], "");
  EXPECT_NE(errors[1], "");
  EXPECT_EQ(store().unsaved_calls(), 1u) << "B's record went with its job";
  store().save_unsaved();
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM deliveries"), 1);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM calls WHERE call_id = 'B'"), 0);
  EXPECT_EQ(store().load_call("A")->recording, RecordingState::waiting) << "A's DISABLED was taken back too";
}

// The earliest due poll counts the held records: it follows a record whose poll moves or goes,
// and a job that fails takes its record's poll back with it.
TEST_F(WriteBackTest, TheEarliestDuePollFollowsTheHeldRecordsThroughChangesAndFailures) {
  config.poll.jitter = 0;  // a RECORDING delivery at t: the first poll at t + first_delay_s
  const TimeMs first_delay = config.poll.first_delay_s * 1000;
  deliver(store(), record_body("A", "RECORDING"), kT0);
  deliver(store(), record_body("B", "RECORDING"), kT0 + 100);
  ASSERT_EQ(store().unsaved_calls(), 2u);
  EXPECT_EQ(store().earliest_due(), kT0 + first_delay);

  deliver(store(), record_body("A", "DISABLED"), kT0 + 200);  // nothing left to poll for A
  EXPECT_EQ(store().earliest_due(), kT0 + 100 + first_delay);

  std::vector<std::function<void()>> jobs;
  jobs.emplace_back([&] {
    deliver(store(), record_body("C", "RECORDING"), kT0 - 60'000);  // due before B...
    throw std::runtime_error("...in a job that fails");
  });
  ASSERT_NE(store().run_batch(jobs)[0], "");
  EXPECT_EQ(store().earliest_due(), kT0 + 100 + first_delay);

  deliver(store(), record_body("B", "DISABLED"), kT0 + 300);
  EXPECT_EQ(store().unsaved_calls(), 2u) << "the records are still held";
  EXPECT_FALSE(store().earliest_due()) << "no call waits for a poll";
  store().save_unsaved();
  EXPECT_FALSE(store().earliest_due());
}

TEST_F(WriteBackTest, ACallShownBeforeItsRecordIsWrittenGetsNoMark) {
  deliver(store(), record_body("A", "RECORDING"), kT0);
  deliver(store(), record_body("B", "RECORDING"), kT0);
  store().mark_host_synced({"A"});
  store().save_unsaved();
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM calls"), 2);
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM host_sync"), 1);
  const std::vector<CallRecord> behind = store().calls_behind_host(10, "");
  ASSERT_EQ(behind.size(), 1u);
  EXPECT_EQ(behind[0].call_id, "B");
  // A call already on disk with its mark: a later delivery and the host's answer clear it.
  deliver(store(), record_body("B", "MIXING"), kT0 + 1);
  store().mark_host_synced({"B"});
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM host_sync"), 0);
  store().save_unsaved();
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM host_sync"), 0);
}

TEST_F(WriteBackTest, ThePollTimerSeesRecordsNotWrittenYet) {
  deliver(store(), record_body("A", "RECORDING"), kT0);
  ASSERT_EQ(raw_count("SELECT COUNT(*) FROM calls"), 0);
  const std::optional<TimeMs> due = store().earliest_due();
  ASSERT_TRUE(due);
  const std::vector<Store::Claim> claims = store().claim_due("node-a", *due, 60'000, 10);
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0].record.call_id, "A");
  EXPECT_EQ(store().unsaved_calls(), 0u);
}

TEST_F(WriteBackTest, PruningKeepsTheNewestDeliverySoNoIdIsGivenTwice) {
  deliver(store(), record_body("A", "RECORDING"), kT0);
  const std::int64_t second = deliver(store(), record_body("A", "MIXING"), kT0);
  store().save_unsaved();
  EXPECT_EQ(store().prune_deliveries(kT0 + 1), 1);
  EXPECT_EQ(store().delivery_count(), 1);
  EXPECT_GT(deliver(store(), record_body("B", "RECORDING"), kT0 + 2), second);
  std::unique_ptr<SqliteStore> image = crash_image();
  EXPECT_EQ(image->replay_unsaved(replay()), 1) << "B's delivery is after the saved mark";
}

TEST_F(WriteBackTest, AStoreClosedCleanlyLeavesNothingToReplay) {
  deliver(store(), record_body("A", "RECORDING"), kT0);
  store_.reset();
  EXPECT_EQ(raw_count("SELECT COUNT(*) FROM calls"), 1);
  EXPECT_EQ(store().replay_unsaved(replay()), 0);
}

}  // namespace
}  // namespace wavoip
