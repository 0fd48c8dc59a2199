// The store conformance suite: what every Store proves, run against SqliteStore (real files)
// and PgStore (a fresh database of a real, throwaway PostgreSQL server): a delivery and the call
// state it causes are written together or not at all, batches commit together with each job
// atomic alone, downloads are claimed and recordings attached exactly once (also across two
// connections), concurrent steps on one call never lose an update, due polls and pages come out
// in byte order, and everything survives a reopen. Then what only SQLite has: WAL, pragmas,
// schema checks, lock waits and query plans. PostgreSQL's own tests are in pg_store_test.cpp.

#include "wavoip/store/store.hpp"

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>
#include <stdlib.h>  // mkdtemp

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "store_backends.hpp"

namespace wavoip {
namespace {

namespace fs = std::filesystem;
using testing::Backend;
using testing::PgBackend;
using testing::SqliteBackend;
using testing::write_back_options;

constexpr TimeMs kT0 = 1'700'000'000'000;

CallRecord sample_call(const std::string& id) {
  CallRecord r = new_call_record(id);
  r.inbox = "sales";
  r.direction = CallDirection::outgoing;
  r.caller = "5511999990000";
  r.receiver = "5511888880000";
  r.session_id = "789";
  r.call_kind = "HUMANIZED";
  r.call_status = "ENDED";
  r.answered = true;
  r.duration_s = 45;
  r.ended_at = kT0;
  r.recording = RecordingState::waiting;
  r.reason = "Waiting for WaVoIP to finish the recording";
  r.reason_detail = "HTTP 404";
  r.record_url = "https://storage.wavoip.com/" + id;
  r.attempt = 3;
  r.next_attempt_at = kT0 + 270'000;
  r.deadline_at = kT0 + 14'400'000;
  r.last_result = "HTTP 404";
  r.recording_file = "/data/" + id + ".mp3";
  r.content_type = "audio/mpeg";
  r.recording_bytes = 5'000'000'000ULL;  // above 32 bits
  r.message_requested = true;
  r.message_id = "msg-" + id;
  r.created_at = kT0 - 60'000;
  r.updated_at = kT0;
  return r;
}

Event record_event(const std::string& id, const std::string& status) {
  RecordEvent ev;
  ev.call_id = id;
  ev.record_status = Coded<RecordStatus>{record_status_from_text(status), status};
  return ev;
}

// Runs every test against each engine, each on a fresh database: "sqlite" (every record written
// in its delivery's transaction), "sqlite_write_back" (as the plugin opens its own file) and
// "postgresql".
class StoreConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite")
      backend_ = std::make_unique<SqliteBackend>();
    else if (GetParam() == "sqlite_write_back")
      backend_ = std::make_unique<SqliteBackend>(write_back_options());
    else
      backend_ = std::make_unique<PgBackend>();
  }
  Store& store() {
    if (!store_) store_ = backend_->open();
    return *store_;
  }
  void reopen() {
    store_.reset();
    store_ = backend_->open();
  }
  // Another connection to the same database.
  std::unique_ptr<Store> open_other() { return backend_->open(); }

  // The real flow step, as the plugin glue runs it.
  Store::StepFn flow(const FlowInput& input, TimeMs now) {
    return [input, now, this](const CallRecord& r) { return step(r, input, now, config); };
  }

  // A waiting call whose poll is due at kT0, saved.
  CallRecord save_due_call(const std::string& id) {
    CallRecord r = sample_call(id);
    r.next_attempt_at = kT0;
    store().save_call(r);
    return r;
  }

  Config config;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Store> store_;
};

INSTANTIATE_TEST_SUITE_P(Engines, StoreConformance, ::testing::Values("sqlite", "sqlite_write_back", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// What several connections to one database do at once (nodes sharing a store): write-back is
// for a file one connection owns, so it is not among these engines.
class SharedStoreConformance : public StoreConformance {};

INSTANTIATE_TEST_SUITE_P(Engines, SharedStoreConformance, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// What only SQLite has.
class SqliteStoreTest : public ::testing::Test {
 protected:
  std::string db_path() const { return backend_.path(); }
  SqliteStore& store() {
    if (!store_) store_ = std::make_unique<SqliteStore>(db_path());
    return *store_;
  }
  Store::StepFn flow(const FlowInput& input, TimeMs now) {
    return [input, now, this](const CallRecord& r) { return step(r, input, now, config); };
  }

  SqliteBackend backend_;
  Config config;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(SqliteStoreTest, OpensInWalWithNormalSyncAndVersionedSchema) {
  EXPECT_EQ(store().journal_mode(), "wal");
  EXPECT_EQ(store().synchronous_level(), 1);  // NORMAL
  store().save_call(sample_call("A"));
  EXPECT_TRUE(fs::exists(db_path() + "-wal"));
  SQLite::Database raw(db_path(), SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("PRAGMA user_version").getInt(), SqliteStore::kSchemaVersion);
}

// A file of the previous version (before claims) is migrated in place at open, its calls kept.
TEST_F(SqliteStoreTest, AVersion2FileGainsClaimsAndKeepsItsCalls) {
  CallRecord r = sample_call("OLD");
  r.next_attempt_at = kT0;
  store().save_call(r);
  store_.reset();
  {
    SQLite::Database raw(db_path(), SQLite::OPEN_READWRITE);
    raw.exec("DROP INDEX calls_leased");
    raw.exec("ALTER TABLE calls DROP COLUMN owner");
    raw.exec("ALTER TABLE calls DROP COLUMN lease_until");
    raw.exec("ALTER TABLE calls DROP COLUMN fence");
    raw.exec("ALTER TABLE calls DROP COLUMN last_delivery");  // version 7
    raw.exec("ALTER TABLE deliveries DROP COLUMN inbox");
    raw.exec("DROP TABLE saved_through");
    raw.exec("ALTER TABLE calls DROP COLUMN reason_detail");                                        // version 5
    raw.exec("CREATE TABLE fetch_claims (call_id TEXT PRIMARY KEY, claimed_at INTEGER NOT NULL)");  // until 6
    raw.exec("PRAGMA user_version = 2");
  }
  r.reason_detail.clear();  // a version-2 file has none
  EXPECT_EQ(*store().load_call("OLD"), r);
  const auto claims = store().claim_due("node-a", kT0, 1000, 10);
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0].fence, 1);
  SQLite::Database raw(db_path(), SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("PRAGMA user_version").getInt(), SqliteStore::kSchemaVersion);
}

// A version 7 file has the partial indexes over `recording` written with IN: it gets them back
// written with OR at open, and keeps its calls, what is in flight and what is pending.
TEST_F(SqliteStoreTest, AVersion7FileGetsItsRecordingIndexesWithoutInListsAndKeepsItsCalls) {
  CallRecord waiting = sample_call("WAITING");
  CallRecord fetching = sample_call("FETCHING");
  fetching.recording = RecordingState::fetching;
  fetching.next_attempt_at.reset();
  store().save_call(waiting);
  store().save_call(fetching);
  store_.reset();
  {
    SQLite::Database raw(db_path(), SQLite::OPEN_READWRITE);
    raw.exec("DROP INDEX calls_in_flight");
    raw.exec("DROP INDEX calls_pending");
    raw.exec("CREATE INDEX calls_in_flight ON calls(call_id) WHERE recording IN ('fetching', 'attaching')");
    raw.exec("CREATE INDEX calls_pending ON calls(recording) WHERE recording IN ('waiting', 'fetching', 'attaching')");
    raw.exec("PRAGMA user_version = 7");
  }

  EXPECT_EQ(store().count_pending(), 2);
  const std::vector<CallRecord> resume = store().calls_needing_resume(10, "");
  ASSERT_EQ(resume.size(), 1u);
  EXPECT_EQ(resume[0], fetching);
  EXPECT_EQ(*store().load_call("WAITING"), waiting);
  EXPECT_TRUE(store().writes_building_temporary_tables().empty());
  SQLite::Database raw(db_path(), SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("PRAGMA user_version").getInt(), SqliteStore::kSchemaVersion);
  EXPECT_EQ(raw.execAndGet("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN ('calls_in_flight', "
                           "'calls_pending') AND sql NOT LIKE '% IN (%'")
                .getInt(),
            2);
}

// SQLite checks the condition of every partial index of a table on each write of a row. A
// write of a call, a delivery or a claim runs for every webhook and every poll, so none may
// build a temporary b-tree to check one (as a constant IN list does).
TEST_F(SqliteStoreTest, TheWritesOfEveryDeliveryAndPollBuildNoTemporaryTable) {
  EXPECT_EQ(store().writes_building_temporary_tables(), std::vector<std::string>{});
}

// A version 3 file (calls and host_sync with rowids, deliveries indexed by call) is rebuilt in
// place at open: its calls, leases and host marks kept, keyed by the call id alone.
TEST_F(SqliteStoreTest, AVersion3FileIsRebuiltKeyedByCallIdAndKeepsEverything) {
  CallRecord r = sample_call("OLD");
  r.next_attempt_at = kT0;
  store().save_call(r);
  store().save_call(sample_call("MARKED"));
  store_.reset();
  {
    SQLite::Database raw(db_path(), SQLite::OPEN_READWRITE);
    raw.exec("INSERT INTO host_sync (call_id) VALUES ('MARKED')");
    raw.exec("ALTER TABLE calls DROP COLUMN last_delivery");  // version 7
    raw.exec("ALTER TABLE deliveries DROP COLUMN inbox");
    raw.exec("DROP TABLE saved_through");
    raw.exec("ALTER TABLE calls DROP COLUMN reason_detail");                                        // version 5
    raw.exec("CREATE TABLE fetch_claims (call_id TEXT PRIMARY KEY, claimed_at INTEGER NOT NULL)");  // until 6
    raw.exec("INSERT INTO fetch_claims VALUES ('OLD', 1)");
    // The same tables with rowids, as versions 1 to 3 created them.
    for (const char* table : {"calls", "host_sync"}) {
      const std::string t = table;
      std::string sql =
          raw.execAndGet("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '" + t + "'").getString();
      sql = "CREATE TABLE " + t + "_old " + sql.substr(sql.find('('));
      sql.erase(sql.find(" WITHOUT ROWID"));
      raw.exec(sql);
      raw.exec("INSERT INTO " + t + "_old SELECT * FROM " + t);
      raw.exec("DROP TABLE " + t);
      raw.exec("ALTER TABLE " + t + "_old RENAME TO " + t);
    }
    raw.exec("CREATE INDEX deliveries_by_call ON deliveries(call_id) WHERE call_id IS NOT NULL");
    raw.exec("PRAGMA user_version = 3");
    const std::string calls = raw.execAndGet("SELECT sql FROM sqlite_master WHERE name = 'calls'").getString();
    ASSERT_EQ(calls.find("WITHOUT ROWID"), std::string::npos) << calls;
  }
  r.reason_detail.clear();  // a version-3 file has none
  EXPECT_EQ(*store().load_call("OLD"), r);
  ASSERT_EQ(store().calls_behind_host(10, "").size(), 1u);
  EXPECT_EQ(store().calls_behind_host(10, "")[0].call_id, "MARKED");
  const auto claims = store().claim_due("node-a", kT0, 1000, 10);
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0].record.call_id, "OLD");
  store_.reset();
  SQLite::Database raw(db_path(), SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("PRAGMA user_version").getInt(), SqliteStore::kSchemaVersion);
  for (const char* table : {"calls", "host_sync"}) {
    const std::string sql =
        raw.execAndGet(std::string("SELECT sql FROM sqlite_master WHERE name = '") + table + "'").getString();
    EXPECT_NE(sql.find("WITHOUT ROWID"), std::string::npos) << sql;
  }
  EXPECT_EQ(raw.execAndGet("SELECT COUNT(*) FROM sqlite_master WHERE name = 'deliveries_by_call'").getInt(), 0);
  EXPECT_EQ(raw.execAndGet("SELECT COUNT(*) FROM sqlite_master WHERE name = 'calls_due'").getInt(), 1);
  EXPECT_EQ(raw.execAndGet("SELECT COUNT(*) FROM sqlite_master WHERE name = 'fetch_claims'").getInt(), 0)
      << "claims are leases on the calls since version 6";
}

TEST_F(SqliteStoreTest, FullSyncOnRequest) {
  SqliteStore full(db_path(), SqliteOptions{SyncMode::full, 1000});
  EXPECT_EQ(full.synchronous_level(), 2);  // FULL
}

TEST_F(SqliteStoreTest, RefusesASchemaFromTheFuture) {
  {
    SQLite::Database raw(db_path(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    raw.exec("PRAGMA user_version = 99");
  }
  EXPECT_THROW(SqliteStore s(db_path()), std::runtime_error);
}

TEST_F(SqliteStoreTest, RefusesAFileThatIsNotADatabase) {
  { std::ofstream(db_path()) << "this is not sqlite, just text that is long enough to have a header"; }
  EXPECT_THROW(SqliteStore s(db_path()), std::runtime_error);
}

TEST_P(StoreConformance, DeliveryAndCallStateAreWrittenTogether) {
  const Event ev = record_event("CALL-1", "RECORDING");
  const auto result =
      store().record_delivery_and_apply(R"({"type":"RECORD"})", ev, "", kT0, flow(std::get<RecordEvent>(ev), kT0));
  EXPECT_GT(result.delivery_id, 0);
  ASSERT_TRUE(result.record);
  EXPECT_EQ(result.record->recording, RecordingState::waiting);
  EXPECT_FALSE(result.actions.empty());
  EXPECT_EQ(store().delivery_count(), 1);
  const auto saved = store().load_call("CALL-1");
  ASSERT_TRUE(saved);
  EXPECT_EQ(*saved, *result.record);
}

TEST_P(StoreConformance, NothingIsWrittenWhenTheStepThrows) {
  store().save_call(sample_call("CALL-1"));
  const CallRecord before = *store().load_call("CALL-1");
  const Event ev = record_event("CALL-1", "READY");
  EXPECT_THROW(store().record_delivery_and_apply(
                   "{}", ev, "", kT0, [](const CallRecord&) -> FlowResult { throw std::runtime_error("step failed"); }),
               std::runtime_error);
  EXPECT_EQ(store().delivery_count(), 0);
  EXPECT_EQ(*store().load_call("CALL-1"), before);
  // The connection is still usable afterwards.
  store().record_delivery_and_apply("{}", ev, "", kT0, flow(std::get<RecordEvent>(ev), kT0));
  EXPECT_EQ(store().delivery_count(), 1);
  EXPECT_EQ(store().load_call("CALL-1")->recording, RecordingState::fetching);
}

std::vector<Store::DeliveryInput> inputs_for(const std::vector<Event>& events, TimeMs now, const Config& config) {
  std::vector<Store::DeliveryInput> inputs;
  for (const Event& ev : events) {
    Store::DeliveryInput input;
    input.raw_body = "{}";
    input.event = &ev;
    input.now = now;
    if (const auto* record = std::get_if<RecordEvent>(&ev)) {
      input.fn = [record, now, &config](const CallRecord& r) { return step(r, *record, now, config); };
    }
    inputs.push_back(std::move(input));
  }
  return inputs;
}

TEST_P(StoreConformance, GroupCommitAppliesEachDeliveryInOrder) {
  const std::vector<Event> events = {record_event("CALL-1", "RECORDING"), record_event("CALL-1", "READY"),
                                     record_event("CALL-1", "READY"), Event{DeviceEvent{}}};
  const auto entries = store().record_deliveries_and_apply(inputs_for(events, kT0, config));
  ASSERT_EQ(entries.size(), 4u);
  for (const auto& entry : entries) {
    ASSERT_TRUE(entry.result) << entry.error;
    EXPECT_TRUE(entry.error.empty());
  }
  EXPECT_LT(entries[0].result->delivery_id, entries[1].result->delivery_id);
  EXPECT_LT(entries[2].result->delivery_id, entries[3].result->delivery_id);
  auto starts = [](const std::vector<Action>& actions) {
    return std::count_if(actions.begin(), actions.end(),
                         [](const Action& a) { return std::holds_alternative<StartFetch>(a); });
  };
  // The second READY sees the first one's state inside the same transaction.
  EXPECT_EQ(starts(entries[1].result->actions), 1);
  EXPECT_EQ(starts(entries[2].result->actions), 0);
  EXPECT_FALSE(entries[3].result->record);
  EXPECT_EQ(store().delivery_count(), 4);
  EXPECT_EQ(store().load_call("CALL-1")->recording, RecordingState::fetching);
}

TEST_P(StoreConformance, AFailingDeliveryDoesNotFailItsBatch) {
  store().save_call(sample_call("CALL-B"));
  const CallRecord before = *store().load_call("CALL-B");
  const std::vector<Event> events = {record_event("CALL-A", "RECORDING"), record_event("CALL-B", "READY"),
                                     record_event("CALL-C", "RECORDING")};
  auto inputs = inputs_for(events, kT0, config);
  inputs[1].fn = [](const CallRecord&) -> FlowResult { throw std::runtime_error("step failed"); };
  const auto entries = store().record_deliveries_and_apply(inputs);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_TRUE(entries[0].result);
  EXPECT_FALSE(entries[1].result);
  EXPECT_EQ(entries[1].error, "step failed");
  EXPECT_TRUE(entries[2].result);
  // Neither the failed delivery nor its call change was written; the others were.
  EXPECT_EQ(store().delivery_count(), 2);
  EXPECT_EQ(*store().load_call("CALL-B"), before);
  EXPECT_TRUE(store().load_call("CALL-A"));
  EXPECT_TRUE(store().load_call("CALL-C"));
}

TEST_F(SqliteStoreTest, AGroupCommitThatCannotBeginFailsEveryDelivery) {
  SqliteStore impatient(db_path(), SqliteOptions{SyncMode::normal, 50});
  SQLite::Database other(db_path(), SQLite::OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");  // holds the write lock
  const std::vector<Event> events = {record_event("CALL-A", "RECORDING"), record_event("CALL-B", "RECORDING")};
  const auto entries = impatient.record_deliveries_and_apply(inputs_for(events, kT0, config));
  other.exec("ROLLBACK");
  ASSERT_EQ(entries.size(), 2u);
  for (const auto& entry : entries) {
    EXPECT_FALSE(entry.result);
    EXPECT_FALSE(entry.error.empty());
  }
  EXPECT_EQ(impatient.delivery_count(), 0);
  EXPECT_FALSE(impatient.load_call("CALL-A"));
}

TEST_P(StoreConformance, AnEmptyGroupCommitWritesNothing) {
  EXPECT_TRUE(store().record_deliveries_and_apply({}).empty());
  EXPECT_EQ(store().delivery_count(), 0);
}

TEST_P(StoreConformance, ABatchRunsStoreCallsInOneTransactionEachAtomicAlone) {
  store().save_call(sample_call("KEEP"));
  CallRecord failed = sample_call("RETRY");
  failed.recording = RecordingState::failed;
  failed.next_attempt_at.reset();
  store().save_call(failed);
  const std::vector<std::function<void()>> jobs = {
      [&] { ASSERT_TRUE(store().apply_to_call("RETRY", flow(ManualRetry{}, kT0 + 5))); },
      [&] {
        // Its own calls are undone with it, and only they.
        EXPECT_TRUE(store().claim_call("KEEP", "node-a", kT0, 60'000));
        store().mark_host_synced({"KEEP"});
        throw std::runtime_error("job failed");
      },
      [&] { EXPECT_TRUE(store().claim_call("RETRY", "node-a", kT0, 60'000)); },
      [&] { EXPECT_TRUE(store().mark_attached("OTHER", "att-1", kT0)); },
  };
  const std::vector<std::string> errors = store().run_batch(jobs);
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "job failed");
  EXPECT_EQ(errors[2], "");
  EXPECT_EQ(errors[3], "");
  reopen();
  EXPECT_EQ(store().load_call("RETRY")->recording, RecordingState::fetching);
  EXPECT_TRUE(store().claim_call("KEEP", "node-b", kT0, 60'000)) << "the failed job's claim was rolled back";
  EXPECT_FALSE(store().claim_call("RETRY", "node-b", kT0, 60'000)) << "a later job's claim was committed";
  EXPECT_EQ(store().attachment_of("OTHER"), "att-1");
}

TEST_F(SqliteStoreTest, ABatchThatCannotBeginFailsEveryJobAndRunsNone) {
  SqliteStore impatient(db_path(), SqliteOptions{SyncMode::normal, 50});
  SQLite::Database other(db_path(), SQLite::OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");  // holds the write lock
  int ran = 0;
  const auto errors = impatient.run_batch({[&] { ++ran; }, [&] { ++ran; }});
  other.exec("ROLLBACK");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_FALSE(errors[0].empty());
  EXPECT_FALSE(errors[1].empty());
  EXPECT_EQ(ran, 0);
}

// A batch runs first without a savepoint per job (each costs four statements and a copy of the
// pages the job changes); only a batch in which a job fails runs again, with them.
TEST_F(SqliteStoreTest, ABatchRunsOnceWithoutSavepointsAndAgainWithThemOnlyWhenAJobFails) {
  int runs = 0;
  auto errors = store().run_batch({[&] {
                                     ++runs;
                                     store().save_call(sample_call("A"));
                                   },
                                   [&] { store().save_call(sample_call("B")); }});
  EXPECT_EQ(errors, (std::vector<std::string>{"", ""}));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(store().rerun_batches(), 0);

  runs = 0;
  errors = store().run_batch({[&] {
                                ++runs;
                                store().save_call(sample_call("C"));
                              },
                              [&] { throw std::runtime_error("job failed"); },
                              [&] { store().save_call(sample_call("D")); }});
  EXPECT_EQ(errors, (std::vector<std::string>{"", "job failed", ""}));
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(store().rerun_batches(), 1);
  EXPECT_TRUE(store().load_call("C"));
  EXPECT_TRUE(store().load_call("D"));
}

// Without a savepoint a store call that fails cannot undo what it wrote before failing; when the
// job catches its error and goes on, the batch must still not commit that half.
TEST_F(SqliteStoreTest, AStoreCallThatFailsHalfwayInAJobThatGoesOnIsUndoneWhole) {
  const Event ev = record_event("CALL-1", "READY");
  const auto errors = store().run_batch({[&] {
    EXPECT_THROW(store().record_delivery_and_apply("{}", ev, "", kT0,
                                                   [](const CallRecord& r) {
                                                     FlowResult out{r, {}};
                                                     out.record.call_id = "OTHER";  // refused after the insert
                                                     return out;
                                                   }),
                 std::logic_error);
    store().save_call(sample_call("B"));
  }});
  EXPECT_EQ(errors, (std::vector<std::string>{""}));
  EXPECT_EQ(store().rerun_batches(), 1);
  EXPECT_EQ(store().delivery_count(), 0) << "the failed call's delivery was committed";
  EXPECT_FALSE(store().load_call("CALL-1"));
  EXPECT_TRUE(store().load_call("B"));
}

TEST_P(StoreConformance, AStoreCallThatFailsInsideABatchLeavesTheBatchUsable) {
  store().save_call(sample_call("A"));
  const auto errors = store().run_batch({
      [&] {
        // apply_to_call's own step throws: its savepoint is rolled back, the job goes on.
        EXPECT_THROW(store().apply_to_call("A", [](const CallRecord&) -> FlowResult { throw std::logic_error("x"); }),
                     std::logic_error);
        store().save_call(sample_call("B"));
      },
  });
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "");
  reopen();
  EXPECT_EQ(*store().load_call("A"), sample_call("A"));
  EXPECT_TRUE(store().load_call("B"));
}

TEST_P(StoreConformance, AStepMayNotChangeTheCallId) {
  const Event ev = record_event("CALL-1", "READY");
  EXPECT_THROW(store().record_delivery_and_apply("{}", ev, "", kT0,
                                                 [](const CallRecord& r) {
                                                   FlowResult out{r, {}};
                                                   out.record.call_id = "OTHER";
                                                   return out;
                                                 }),
               std::logic_error);
  EXPECT_EQ(store().delivery_count(), 0);
  EXPECT_FALSE(store().load_call("OTHER"));
}

TEST_F(SqliteStoreTest, RawBodyIsStoredByteForByte) {
  const std::string body("{\"type\":\"DEVICE\"}\0\xff\xfe tail", 25);
  store().record_delivery_and_apply(body, Event{DeviceEvent{}}, "", kT0, flow(ManualRetry{}, kT0));
  SQLite::Database raw(db_path(), SQLite::OPEN_READONLY);
  SQLite::Statement q(raw, "SELECT body, type, call_id, received_at FROM deliveries");
  ASSERT_TRUE(q.executeStep());
  const SQLite::Column blob = q.getColumn(0);
  EXPECT_EQ(std::string(static_cast<const char*>(blob.getBlob()), static_cast<std::size_t>(blob.getBytes())), body);
  EXPECT_EQ(q.getColumn(1).getString(), "DEVICE");
  EXPECT_TRUE(q.getColumn(2).isNull());
  EXPECT_EQ(q.getColumn(3).getInt64(), kT0);
}

TEST_P(StoreConformance, EventsWithoutACallOnlyRecordTheDelivery) {
  bool ran = false;
  const auto result =
      store().record_delivery_and_apply("{}", Event{UnknownEvent{"MESSAGE"}}, "", kT0, [&ran](const CallRecord& r) {
        ran = true;
        return FlowResult{r, {}};
      });
  EXPECT_FALSE(ran);
  EXPECT_FALSE(result.record);
  EXPECT_TRUE(result.actions.empty());
  EXPECT_EQ(store().delivery_count(), 1);
  EXPECT_EQ(store().count_pending(), 0);
}

TEST_P(StoreConformance, DuplicateDeliveriesAreAllKeptButChangeTheCallOnce) {
  const Event ev = record_event("CALL-1", "READY");
  const auto first = store().record_delivery_and_apply("{}", ev, "", kT0, flow(std::get<RecordEvent>(ev), kT0));
  const auto second =
      store().record_delivery_and_apply("{}", ev, "", kT0 + 1000, flow(std::get<RecordEvent>(ev), kT0 + 1000));
  EXPECT_EQ(store().delivery_count(), 2);
  EXPECT_NE(first.delivery_id, second.delivery_id);
  auto starts = [](const std::vector<Action>& actions) {
    return std::count_if(actions.begin(), actions.end(),
                         [](const Action& a) { return std::holds_alternative<StartFetch>(a); });
  };
  EXPECT_EQ(starts(first.actions), 1);
  EXPECT_EQ(starts(second.actions), 0);
}

TEST_P(StoreConformance, EveryFieldSurvivesSaveAndLoad) {
  const CallRecord full = sample_call("FULL");
  store().save_call(full);
  EXPECT_EQ(*store().load_call("FULL"), full);

  CallRecord sparse = new_call_record("SPARSE");  // every optional empty
  sparse.created_at = kT0;
  sparse.updated_at = kT0;
  store().save_call(sparse);
  EXPECT_EQ(*store().load_call("SPARSE"), sparse);

  CallRecord changed = full;
  changed.recording = RecordingState::attached;
  changed.next_attempt_at.reset();
  store().save_call(changed);  // replaces, does not duplicate
  EXPECT_EQ(*store().load_call("FULL"), changed);
  EXPECT_FALSE(store().load_call("MISSING"));
}

TEST_P(StoreConformance, ApplyToCallRunsOnlyForKnownCalls) {
  EXPECT_FALSE(store().apply_to_call("NOPE", flow(ManualRetry{}, kT0)));
  CallRecord r = sample_call("C");
  r.recording = RecordingState::failed;
  r.next_attempt_at.reset();
  store().save_call(r);
  const auto result = store().apply_to_call("C", flow(ManualRetry{}, kT0 + 5000));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->record.recording, RecordingState::fetching);
  EXPECT_EQ(store().load_call("C")->recording, RecordingState::fetching);
}

TEST_P(SharedStoreConformance, ACallIsClaimedByOneNodeAtATimeAcrossConnections) {
  store().save_call(sample_call("C"));
  store().save_call(sample_call("D"));
  const std::unique_ptr<Store> other_connection = open_other();
  Store& other = *other_connection;
  const std::optional<Store::Claim> first = store().claim_call("C", "node-a", kT0, 1000);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->record, sample_call("C"));
  EXPECT_EQ(first->lease_until, kT0 + 1000);
  EXPECT_FALSE(store().claim_call("C", "node-a", kT0, 1000)) << "not even by its holder";
  EXPECT_FALSE(other.claim_call("C", "node-b", kT0 + 999, 1000));
  EXPECT_TRUE(other.claim_call("D", "node-b", kT0, 1000)) << "claims are per call";
  EXPECT_FALSE(other.claim_call("NOPE", "node-b", kT0, 1000)) << "an unknown call";
  EXPECT_TRUE(store().release_claim("C", first->fence));
  const std::optional<Store::Claim> second = other.claim_call("C", "node-b", kT0 + 1, 1000);
  ASSERT_TRUE(second);
  EXPECT_GT(second->fence, first->fence);
  EXPECT_FALSE(store().release_claim("C", first->fence)) << "a released claim ends only once";
}

TEST_P(SharedStoreConformance, AClaimWhoseLeaseEndedIsTakenOverAndFencesItsHolder) {
  store().save_call(sample_call("C"));
  const std::optional<Store::Claim> dead = store().claim_call("C", "node-a", kT0, 1000);
  ASSERT_TRUE(dead);
  const std::unique_ptr<Store> other_connection = open_other();
  Store& other = *other_connection;
  EXPECT_EQ(other.earliest_due(), kT0 + 1000) << "the lease's end is when the others look again";
  const std::optional<Store::Claim> taken = other.claim_call("C", "node-b", kT0 + 1000, 1000);
  ASSERT_TRUE(taken) << "a lease that ended is no claim any more";
  EXPECT_FALSE(store().renew_claim("C", dead->fence, kT0 + 5000));
  EXPECT_FALSE(
      store().apply_to_claimed_call("C", dead->fence, Store::ClaimAfter::release, flow(ManualRetry{}, kT0 + 1001)));
  EXPECT_TRUE(other.renew_claim("C", taken->fence, kT0 + 5000));
}

TEST_P(StoreConformance, TheOnlyNodeVoidsEveryClaimAtStart) {
  store().save_call(sample_call("C"));
  store().save_call(sample_call("D"));
  const std::optional<Store::Claim> c = store().claim_call("C", "node-a", kT0, 60'000);
  ASSERT_TRUE(c);
  ASSERT_TRUE(store().claim_call("D", "node-a", kT0, 60'000));
  reopen();
  EXPECT_FALSE(store().claim_call("C", "node-b", kT0, 60'000)) << "claims are durable";
  EXPECT_EQ(store().release_all_claims(), 2);
  EXPECT_FALSE(store().renew_claim("C", c->fence, kT0 + 1)) << "a voided claim is over";
  EXPECT_TRUE(store().claim_call("C", "node-b", kT0 + 2, 60'000));
}

TEST_P(SharedStoreConformance, AttachmentIsRecordedOnceAndTheCallIsNeverClaimedAgain) {
  store().save_call(sample_call("C"));
  const std::optional<Store::Claim> claim = store().claim_call("C", "node-a", kT0, 60'000);
  ASSERT_TRUE(claim);
  EXPECT_TRUE(store().mark_attached("C", "att-1", kT0));
  EXPECT_TRUE(store().release_claim("C", claim->fence));
  EXPECT_FALSE(store().mark_attached("C", "att-2", kT0 + 1));
  const std::unique_ptr<Store> other_connection = open_other();
  Store& other = *other_connection;
  EXPECT_FALSE(other.mark_attached("C", "att-3", kT0 + 2));
  EXPECT_EQ(store().attachment_of("C"), "att-1");
  EXPECT_FALSE(store().attachment_of("D"));
  EXPECT_FALSE(store().claim_call("C", "node-a", kT0 + 3, 60'000)) << "an attached call is never fetched again";
  EXPECT_FALSE(other.claim_call("C", "node-b", kT0 + 3, 60'000));
}

TEST_P(StoreConformance, DuePollsComeOutEarliestFirst) {
  EXPECT_FALSE(store().earliest_due());
  // Ties come out by call id in byte order ("B" < "a"), whatever the database's collation.
  const std::pair<const char*, std::optional<TimeMs>> calls[] = {
      {"late", kT0 + 30},     {"b-tie", kT0 + 10},  {"mid", kT0 + 20},  {"a-tie", kT0 + 10},
      {"none", std::nullopt}, {"future", kT0 + 50}, {"B-tie", kT0 + 10}};
  for (const auto& [id, at] : calls) {
    CallRecord r = sample_call(id);
    r.next_attempt_at = at;
    store().save_call(r);
  }
  EXPECT_EQ(store().earliest_due(), kT0 + 10);
  EXPECT_TRUE(store().claim_due("node-a", kT0 + 9, 60'000, 10).empty());
  std::vector<std::string> ids;
  for (const Store::Claim& c : store().claim_due("node-a", kT0 + 25, 60'000, 2)) ids.push_back(c.record.call_id);
  for (const Store::Claim& c : store().claim_due("node-a", kT0 + 25, 60'000, 10)) ids.push_back(c.record.call_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"B-tie", "a-tie", "b-tie", "mid"}));
  EXPECT_EQ(store().claim_due("node-a", kT0 + 1000, 60'000, 100).size(), 2u) << "late and future";
}

TEST_P(StoreConformance, InFlightCallsArePagedForResume) {
  // Pages follow byte order: "C9" < "c1".
  const std::pair<const char*, RecordingState> calls[] = {
      {"c1", RecordingState::fetching}, {"c2", RecordingState::waiting},  {"c3", RecordingState::attaching},
      {"c4", RecordingState::attached}, {"c5", RecordingState::fetching}, {"c6", RecordingState::failed},
      {"C9", RecordingState::fetching}};
  for (const auto& [id, state] : calls) {
    CallRecord r = sample_call(id);
    r.recording = state;
    store().save_call(r);
  }
  auto page = store().calls_needing_resume(2, "");
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].call_id, "C9");
  EXPECT_EQ(page[1].call_id, "c1");
  page = store().calls_needing_resume(2, page.back().call_id);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].call_id, "c3");
  EXPECT_EQ(page[1].call_id, "c5");
  EXPECT_TRUE(store().calls_needing_resume(2, "c5").empty());
  EXPECT_EQ(store().count_pending(), 5);  // waiting + fetching + attaching
}

TEST_P(StoreConformance, PruningRemovesOnlyOldDeliveries) {
  for (int i = 0; i < 5; ++i) {
    store().record_delivery_and_apply("{}", Event{DeviceEvent{}}, "", kT0 + i, flow(ManualRetry{}, kT0));
  }
  EXPECT_EQ(store().prune_deliveries(kT0 + 3), 3);
  EXPECT_EQ(store().delivery_count(), 2);
}

TEST_P(StoreConformance, CallsBehindTheHostAreMarkedWithTheirChangeAndClearedOnce) {
  // A step that changes what the host shows marks its call in the same transaction.
  const Event ready = record_event("SHOWN", "READY");
  store().record_delivery_and_apply("{}", ready, "", kT0, flow(std::get<RecordEvent>(ready), kT0));
  store().save_call(sample_call("QUIET"));  // a plain save marks nothing
  // A step that shows nothing marks nothing.
  store().apply_to_call("QUIET", [](const CallRecord& r) { return FlowResult{r, {}}; });
  const Event other = record_event("B\"odd\\id,{x}", "RECORDING");  // survives the array form
  store().record_delivery_and_apply("{}", other, "", kT0, flow(std::get<RecordEvent>(other), kT0));

  auto ids = [](const std::vector<CallRecord>& records) {
    std::vector<std::string> out;
    for (const CallRecord& r : records) out.push_back(r.call_id);
    return out;
  };
  EXPECT_EQ(ids(store().calls_behind_host(10, "")), (std::vector<std::string>{"B\"odd\\id,{x}", "SHOWN"}));
  EXPECT_EQ(ids(store().calls_behind_host(1, "")), (std::vector<std::string>{"B\"odd\\id,{x}"}));
  EXPECT_EQ(ids(store().calls_behind_host(10, "B\"odd\\id,{x}")), (std::vector<std::string>{"SHOWN"}));
  EXPECT_EQ(store().calls_behind_host(10, "").back(), *store().load_call("SHOWN")) << "the current record";

  store().mark_host_synced({"B\"odd\\id,{x}", "SHOWN", "UNKNOWN"});
  EXPECT_TRUE(store().calls_behind_host(10, "").empty());
  store().mark_host_synced({});
  reopen();
  EXPECT_TRUE(store().calls_behind_host(10, "").empty());
}

// Two connections apply steps to one call at the same time (two nodes, or two threads): each
// step sees the result of the one before, none is lost, also when the call is new.
TEST_P(SharedStoreConformance, ConcurrentStepsOnOneCallNeverLoseAnUpdate) {
  constexpr int kStepsPerConnection = 40;
  store();  // creates the schema before the threads open theirs
  std::vector<std::unique_ptr<Store>> connections;
  connections.push_back(open_other());
  connections.push_back(open_other());
  auto count_step = [](const CallRecord& r) {
    FlowResult out{r, {}};
    ++out.record.attempt;
    return out;
  };
  std::vector<std::string> failures(connections.size());
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < connections.size(); ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int i = 0; i < kStepsPerConnection; ++i) {
          connections[t]->record_delivery_and_apply("{}", Event{record_event("SHARED", "RECORDING")}, "", kT0,
                                                    count_step);
        }
      } catch (const std::exception& e) {
        failures[t] = e.what();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& failure : failures) EXPECT_EQ(failure, "");
  EXPECT_EQ(store().load_call("SHARED")->attempt, 2u * kStepsPerConnection);
  EXPECT_EQ(store().delivery_count(), 2 * kStepsPerConnection);
}

TEST_P(SharedStoreConformance, DueCallsAreClaimedOnceUntilTheirLeaseEnds) {
  const std::pair<const char*, std::optional<TimeMs>> calls[] = {
      {"b", kT0 + 10}, {"a", kT0 + 10}, {"late", kT0 + 100}, {"none", std::nullopt}};
  for (const auto& [id, at] : calls) {
    CallRecord r = sample_call(id);
    r.next_attempt_at = at;
    store().save_call(r);
  }
  auto ids = [](const std::vector<Store::Claim>& claims) {
    std::vector<std::string> out;
    for (const Store::Claim& c : claims) out.push_back(c.record.call_id);
    return out;
  };
  const auto first = store().claim_due("node-a", kT0 + 50, 1000, 10);
  ASSERT_EQ(ids(first), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(first[0].record, *store().load_call("a"));
  EXPECT_EQ(first[0].fence, 1);
  EXPECT_EQ(first[0].lease_until, kT0 + 1050);

  const std::unique_ptr<Store> other = open_other();
  EXPECT_TRUE(other->claim_due("node-b", kT0 + 60, 1000, 10).empty()) << "leased calls are not claimed again";
  const auto next = other->claim_due("node-b", kT0 + 100, 1000, 10);
  ASSERT_EQ(ids(next), (std::vector<std::string>{"late"}));
  EXPECT_EQ(next[0].fence, 1);
  // a and b's leases end at kT0 + 1050: another node takes them, with the next fence.
  const auto taken = other->claim_due("node-b", kT0 + 1050, 1000, 1);
  ASSERT_EQ(ids(taken), (std::vector<std::string>{"a"}));
  EXPECT_EQ(taken[0].fence, 2);
  EXPECT_EQ(ids(other->claim_due("node-b", kT0 + 1050, 1000, 10)), (std::vector<std::string>{"b"}));
  EXPECT_TRUE(store().claim_due("node-a", kT0 + 1050, 1000, 10).empty());
}

// A node paused past its lease wakes up after another node took its call over: none of its
// writes of that claim lands.
TEST_P(SharedStoreConformance, AClaimThatLostItsLeaseWritesNothing) {
  const CallRecord r = save_due_call("C");
  const auto a = store().claim_due("node-a", kT0, 1000, 10);
  ASSERT_EQ(a.size(), 1u);
  const std::unique_ptr<Store> other = open_other();
  const auto b = other->claim_due("node-b", kT0 + 1000, 1000, 10);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].fence, a[0].fence + 1);

  bool ran = false;
  const auto stale =
      store().apply_to_claimed_call("C", a[0].fence, Store::ClaimAfter::release, [&](const CallRecord& current) {
        ran = true;
        FlowResult out{current, {}};
        out.record.reason = "stale outcome";
        return out;
      });
  EXPECT_FALSE(stale);
  EXPECT_FALSE(ran);
  EXPECT_FALSE(store().renew_claim("C", a[0].fence, kT0 + 99'000));
  EXPECT_FALSE(store().release_claim("C", a[0].fence));
  EXPECT_EQ(*store().load_call("C"), r);

  // The holder's writes land; renewing keeps the call from other nodes.
  const auto fetched =
      other->apply_to_claimed_call("C", b[0].fence, Store::ClaimAfter::keep, flow(PollDue{}, kT0 + 1000));
  ASSERT_TRUE(fetched);
  EXPECT_EQ(fetched->record.recording, RecordingState::fetching);
  EXPECT_EQ(store().load_call("C")->recording, RecordingState::fetching);
  EXPECT_TRUE(other->renew_claim("C", b[0].fence, kT0 + 5000));
  EXPECT_TRUE(store().claim_due("node-a", kT0 + 4999, 1000, 10).empty());
  // Released with the outcome: nothing due any more, so nobody claims it.
  ASSERT_TRUE(other->apply_to_claimed_call("C", b[0].fence, Store::ClaimAfter::release, [](const CallRecord& c) {
    return FlowResult{c, {}};
  }));
  EXPECT_FALSE(other->release_claim("C", b[0].fence)) << "released already";
  EXPECT_FALSE(other->renew_claim("C", b[0].fence, kT0 + 99'000)) << "a released claim is not taken again";
  EXPECT_FALSE(other->apply_to_claimed_call("C", b[0].fence, Store::ClaimAfter::keep, [](const CallRecord& c) {
    return FlowResult{c, {}};
  }));
  EXPECT_TRUE(store().claim_due("node-a", kT0 + 99'000, 1000, 10).empty());
}

// The poll timer's job: each due call claimed and its step written together. The claim stays
// only on a call the step left busy; the step's host mark is written as well.
TEST_P(StoreConformance, ClaimDueAndApplyKeepsTheClaimOnlyWhereTheStepLeftWorkInFlight) {
  CallRecord busy = sample_call("busy");
  busy.next_attempt_at = kT0;
  CallRecord stale = sample_call("stale");
  stale.recording = RecordingState::failed;  // a poll left on a final state is only consumed
  stale.next_attempt_at = kT0;
  CallRecord later = sample_call("later");
  later.next_attempt_at = kT0 + 500;
  for (const CallRecord& r : {busy, stale, later}) store().save_call(r);

  std::vector<std::string> stepped;
  const auto steps = store().claim_due_and_apply("node-a", kT0, 1000, 10, [&](const CallRecord& r) {
    stepped.push_back(r.call_id);
    return step(r, PollDue{}, kT0, config);
  });
  EXPECT_EQ(stepped, (std::vector<std::string>{"busy", "stale"}));
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0].result.record.call_id, "busy");
  EXPECT_EQ(steps[0].result.record.recording, RecordingState::fetching);
  ASSERT_TRUE(steps[0].fence);
  EXPECT_EQ(*steps[0].fence, 1);
  EXPECT_EQ(steps[1].result.record.call_id, "stale");
  EXPECT_FALSE(steps[1].result.record.next_attempt_at);
  EXPECT_FALSE(steps[1].fence) << "nothing in flight: the claim ends in the same write";

  reopen();
  EXPECT_EQ(*store().load_call("busy"), steps[0].result.record);
  EXPECT_EQ(*store().load_call("stale"), steps[1].result.record);
  // The busy call's claim holds (another claim waits for its lease); the other was given back,
  // under the next fence.
  EXPECT_TRUE(store().renew_claim("busy", *steps[0].fence, kT0 + 1000));
  EXPECT_FALSE(store().claim_call("busy", "node-b", kT0 + 999, 1000));
  const auto again = store().claim_call("stale", "node-b", kT0 + 1, 1000);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->fence, 2);
  // The step asked the host to show "downloading": the call is behind the host until shown.
  std::vector<std::string> behind;
  for (const CallRecord& r : store().calls_behind_host(10, "")) behind.push_back(r.call_id);
  EXPECT_NE(std::find(behind.begin(), behind.end(), "busy"), behind.end());
  // Not due yet, not claimed.
  EXPECT_EQ(store().load_call("later")->next_attempt_at, later.next_attempt_at);
  const auto next = store().claim_due_and_apply("node-a", kT0 + 500, 1000, 10, flow(PollDue{}, kT0 + 500));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].result.record.call_id, "later");
}

// A step under a claim ends it in the same write once the call has nothing in flight, and
// keeps it while the call is busy.
TEST_P(StoreConformance, AClaimedStepReleasesTheClaimUnlessTheCallIsBusy) {
  const CallRecord r = save_due_call("C");
  const auto claims = store().claim_due("node-a", kT0, 1000, 10);
  ASSERT_EQ(claims.size(), 1u);
  const std::int64_t fence = claims[0].fence;
  const auto fetching =
      store().apply_to_claimed_call("C", fence, Store::ClaimAfter::release_unless_busy, flow(PollDue{}, kT0));
  ASSERT_TRUE(fetching);
  EXPECT_EQ(fetching->record.recording, RecordingState::fetching);
  EXPECT_TRUE(store().renew_claim("C", fence, kT0 + 1000)) << "busy: kept";

  FetchOutcome not_ready;
  not_ready.kind = FetchKind::not_ready;
  not_ready.http_status = 404;
  const auto waiting =
      store().apply_to_claimed_call("C", fence, Store::ClaimAfter::release_unless_busy, flow(not_ready, kT0 + 5));
  ASSERT_TRUE(waiting);
  EXPECT_EQ(waiting->record.recording, RecordingState::waiting);
  reopen();
  EXPECT_EQ(*store().load_call("C"), waiting->record);
  EXPECT_FALSE(store().renew_claim("C", fence, kT0 + 2000)) << "idle: released with the step";
  EXPECT_TRUE(store().claim_call("C", "node-b", kT0 + 6, 1000)) << "no lease holds it any more";
}

// A node that died mid-download: once its lease ends, another node's poll job takes the call over
// (its step sees the busy record), and the dead node's claim writes nothing any more.
TEST_P(SharedStoreConformance, ClaimDueAndApplyTakesOverALapsedClaimUnderTheNextFence) {
  const CallRecord r = save_due_call("C");
  const auto a = store().claim_due_and_apply("node-a", kT0, 1000, 10, flow(PollDue{}, kT0));
  ASSERT_EQ(a.size(), 1u);
  ASSERT_TRUE(a[0].fence);
  const std::unique_ptr<Store> other = open_other();
  EXPECT_TRUE(other->claim_due_and_apply("node-b", kT0 + 999, 1000, 10, flow(PollDue{}, kT0 + 999)).empty());

  std::optional<RecordingState> seen;
  const auto b = other->claim_due_and_apply("node-b", kT0 + 1000, 1000, 10, [&](const CallRecord& current) {
    seen = current.recording;
    return step(current, Resume{false}, kT0 + 1000, config);
  });
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(seen, RecordingState::fetching);
  ASSERT_TRUE(b[0].fence);
  EXPECT_EQ(*b[0].fence, *a[0].fence + 1);
  EXPECT_FALSE(store().apply_to_claimed_call("C", *a[0].fence, Store::ClaimAfter::release, flow(PollDue{}, kT0)));
  EXPECT_TRUE(other->renew_claim("C", *b[0].fence, kT0 + 2000));
}

TEST_P(StoreConformance, OtherWritesOfAClaimedCallKeepTheClaim) {
  CallRecord r = save_due_call("C");
  const auto claims = store().claim_due("node-a", kT0, 1000, 10);
  ASSERT_EQ(claims.size(), 1u);
  r.reason = "a webhook changed it";
  store().save_call(r);
  const Event ev = record_event("C", "MIXING");
  store().record_delivery_and_apply("{}", ev, "", kT0 + 1, flow(std::get<RecordEvent>(ev), kT0 + 1));
  reopen();
  EXPECT_TRUE(store().claim_due("node-b", kT0 + 999, 1000, 10).empty());
  EXPECT_TRUE(store().renew_claim("C", claims[0].fence, kT0 + 2000));
  EXPECT_TRUE(store().release_claim("C", claims[0].fence));
  EXPECT_EQ(store().claim_due("node-b", kT0 + 2, 1000, 10).size(), 1u) << "released and still due";
}

TEST_P(StoreConformance, ReopeningKeepsEverything) {
  const Event ev = record_event("CALL-1", "RECORDING");
  store().record_delivery_and_apply("{\"type\":\"RECORD\"}", ev, "", kT0, flow(std::get<RecordEvent>(ev), kT0));
  store().save_call(sample_call("CALL-2"));
  ASSERT_TRUE(store().mark_attached("CALL-3", "att-9", kT0));
  store().save_call(sample_call("CALL-4"));
  ASSERT_TRUE(store().claim_call("CALL-4", "node-a", kT0, 60'000'000));
  const CallRecord call1 = *store().load_call("CALL-1");

  reopen();
  EXPECT_EQ(store().delivery_count(), 1);
  EXPECT_EQ(*store().load_call("CALL-1"), call1);
  EXPECT_EQ(*store().load_call("CALL-2"), sample_call("CALL-2"));
  EXPECT_EQ(store().attachment_of("CALL-3"), "att-9");
  EXPECT_FALSE(store().claim_call("CALL-4", "node-b", kT0, 60'000)) << "claims are durable until released";
  EXPECT_EQ(store().earliest_due(), std::min(*call1.next_attempt_at, *sample_call("CALL-2").next_attempt_at));
}

// Many pending calls: the queries the timer and the restart use must come from indexes, not from
// scanning (or loading) the table. SQLite's own query plan says so; times go to bench/.
TEST_F(SqliteStoreTest, PendingCallQueriesAreServedFromIndexes) {
  constexpr std::int64_t kRows = 200'000;
  store();  // creates the schema
  {
    SQLite::Database raw(db_path(), SQLite::OPEN_READWRITE);
    raw.exec("PRAGMA synchronous=OFF");
    raw.exec("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < " + std::to_string(kRows) +
             ") INSERT INTO calls (call_id, recording, next_attempt_at, deadline_at, created_at, updated_at) "
             "SELECT printf('CALL%07d', i), CASE WHEN i % 1000 = 7 THEN 'fetching' ELSE 'waiting' END, "
             "CASE WHEN i % 1000 = 7 THEN NULL ELSE " +
             std::to_string(kT0) + " + ((i * 7919) % " + std::to_string(kRows) + ") END, " + std::to_string(kT0) +
             " + 14400000, " + std::to_string(kT0) + ", " + std::to_string(kT0) + " FROM n");
    raw.exec("ANALYZE");  // the planner must prefer the indexes even with real statistics
  }

  const std::optional<TimeMs> earliest = store().earliest_due();
  std::vector<CallRecord> due;
  for (Store::Claim& c : store().claim_due("node-a", kT0 + 500, 60'000, 100)) due.push_back(std::move(c.record));
  const std::vector<CallRecord> resume = store().calls_needing_resume(100, "");

  EXPECT_EQ(earliest, kT0);
  ASSERT_EQ(due.size(), 100u);
  EXPECT_TRUE(std::is_sorted(due.begin(), due.end(), [](const CallRecord& a, const CallRecord& b) {
    return a.next_attempt_at < b.next_attempt_at;
  }));
  EXPECT_LE(*due.back().next_attempt_at, kT0 + 500);
  ASSERT_EQ(resume.size(), 100u);
  EXPECT_EQ(resume.front().call_id, "CALL0000007");
  EXPECT_EQ(store().count_pending(), kRows);

  const std::vector<std::string> plans = store().hot_query_plans();
  ASSERT_EQ(plans.size(), 6u);
  for (const std::string& plan : plans) {
    EXPECT_NE(plan.find("USING"), std::string::npos) << plan;
    EXPECT_NE(plan.find("INDEX"), std::string::npos) << plan;
    // "SCAN calls;" alone would be a full table scan.
    EXPECT_EQ(plan.find("SCAN calls;"), std::string::npos) << plan;
    // The claim scans must follow their index in order, not sort every due row.
    if (plan.rfind("claimable", 0) == 0) {
      EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
    }
    // The restart reads what is in flight page by page, in the order of its own index.
    if (plan.rfind("in_flight", 0) == 0) {
      EXPECT_NE(plan.find("calls_in_flight"), std::string::npos) << plan;
      EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
    }
  }
}

}  // namespace
}  // namespace wavoip
