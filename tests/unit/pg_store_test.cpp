// What only the PostgreSQL store has to prove, against a real throwaway server: a versioned
// schema migrated once even when several nodes open at once, clear errors at open, both URI
// forms, byte-exact bodies with NUL bytes, one claim per fetch between racing connections,
// batches that lose their connection commit nothing, and reconnection (with backoff) after the
// server restarts. The engine-neutral behaviour is in the conformance suite (store_test.cpp).

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "store_backends.hpp"
#include "wavoip/store/open_store.hpp"
#include "wavoip/store/pg_store.hpp"

namespace wavoip {
namespace {

using testing::PgBackend;
using testing::shared_postgres;
using namespace std::chrono_literals;

constexpr TimeMs kT0 = 1'700'000'000'000;

Event record_event(const std::string& id, const std::string& status) {
  RecordEvent ev;
  ev.call_id = id;
  ev.record_status = Coded<RecordStatus>{record_status_from_text(status), status};
  return ev;
}

FlowResult unchanged(const CallRecord& r) {
  return FlowResult{r, {}};
}

FlowResult touch_attempt(const CallRecord& r) {
  CallRecord next = r;
  ++next.attempt;
  return FlowResult{next, {}};
}

class PgStoreTest : public ::testing::Test {
 protected:
  std::string sql(const std::string& query) { return shared_postgres().query_value(db.database(), query); }

  PgBackend db;
};

TEST_F(PgStoreTest, OpensWithAVersionedSchemaMigratedOnce) {
  { PgStore first(db.uri()); }
  PgStore second(db.uri());  // opening again migrates nothing
  EXPECT_EQ(sql("SELECT string_agg(version::text, ',' ORDER BY version) FROM wavoip.schema_migrations"), "1,2,3,4,5");
  // deliveries, calls, attachments, host_sync, schema_migrations (fetch_claims went in version 4)
  EXPECT_EQ(sql("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'wavoip'"), "5");
}

// The store writer asks for the earliest due time after every batch. A prepared statement keeps
// the plan made at its first run; on a new database that is an empty table. The plan must still
// read an index in order once the table holds thousands of calls, not scan them all (it did: 1 ms
// a batch at 15,000 calls, the database's largest cost in the one-node benchmark).
TEST_F(PgStoreTest, TheEarliestDueTimeReadsAnIndexAlsoWhenPlannedOnAnEmptyTable) {
  PgStore store(db.uri());
  EXPECT_EQ(store.earliest_due(), std::nullopt);  // planned now, on the empty table
  shared_postgres().execute(db.database(),
                            "INSERT INTO wavoip.calls (call_id, next_attempt_at, created_at, updated_at) "
                            "SELECT 'C' || i, 2000000 + i, 1, 1 FROM generate_series(1, 20000) AS i");
  shared_postgres().execute(db.database(), "UPDATE wavoip.calls SET lease_until = 5000000 WHERE call_id = 'C1'");
  EXPECT_EQ(store.earliest_due(), 2000002);
  const std::string plan = store.plan_of_earliest_due();
  EXPECT_EQ(plan.find("Seq Scan"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("Aggregate"), std::string::npos) << plan;  // no pass over every entry either
  EXPECT_NE(plan.find("calls_due"), std::string::npos) << plan;
  EXPECT_NE(plan.find("calls_leased"), std::string::npos) << plan;
}

// A database of schema 4 (calls_due over every call with a next attempt), with calls in it, is
// brought to 5 at open: the index holds the unclaimed calls only, and the calls stay.
TEST_F(PgStoreTest, ASchema4DatabaseIsMigratedWithItsCalls) {
  {
    PgStore store(db.uri());
    store.save_call(new_call_record("KEPT"));
  }
  shared_postgres().execute(db.database(),
                            "DROP INDEX wavoip.calls_due; "
                            "CREATE INDEX calls_due ON wavoip.calls(next_attempt_at, call_id) "
                            "WHERE next_attempt_at IS NOT NULL; "
                            "DELETE FROM wavoip.schema_migrations WHERE version = 5");
  PgStore store(db.uri());
  EXPECT_EQ(sql("SELECT MAX(version) FROM wavoip.schema_migrations"), "5");
  EXPECT_NE(sql("SELECT indexdef FROM pg_indexes WHERE schemaname = 'wavoip' AND indexname = 'calls_due'")
                .find("lease_until IS NULL"),
            std::string::npos);
  EXPECT_TRUE(store.load_call("KEPT"));
}

TEST_F(PgStoreTest, NodesStartingAtOnceMigrateOnceAndAllOpen) {
  constexpr int kNodes = 6;
  std::atomic<int> ready{0};
  std::vector<std::string> errors(kNodes);
  std::vector<std::thread> nodes;
  for (int i = 0; i < kNodes; ++i) {
    nodes.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kNodes) std::this_thread::yield();  // all open at the same moment
      try {
        PgStore store(db.uri());
        store.save_call(new_call_record("NODE-" + std::to_string(i)));
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(i)] = e.what();
      }
    });
  }
  for (std::thread& node : nodes) node.join();
  for (const std::string& error : errors) EXPECT_EQ(error, "");
  EXPECT_EQ(sql("SELECT COUNT(*) FROM wavoip.schema_migrations"), std::to_string(PgStore::kSchemaVersion));
  EXPECT_EQ(sql("SELECT COUNT(*) FROM wavoip.calls"), std::to_string(kNodes));
}

TEST_F(PgStoreTest, RefusesASchemaFromTheFuture) {
  { PgStore store(db.uri()); }
  shared_postgres().execute(db.database(), "INSERT INTO wavoip.schema_migrations (version) VALUES (99)");
  try {
    PgStore store(db.uri());
    FAIL() << "opened a schema of version 99";
  } catch (const PgError& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 99"), std::string::npos) << e.what();
  }
}

TEST_F(PgStoreTest, AnUnreachableServerIsAClearErrorAtOpenThatHidesThePassword) {
  // A port nobody listens on: the shared server's own port plus one is not guaranteed free, so
  // use a database name that does not exist on the real server too.
  const std::string refused = "postgresql://wavoip:s3cr3t-pw@127.0.0.1:1/helpdesk";
  try {
    PgStore store(refused);
    FAIL() << "connected to a closed port";
  } catch (const PgError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot connect to PostgreSQL"), std::string::npos) << what;
    EXPECT_NE(what.find("host=127.0.0.1 port=1 dbname=helpdesk user=wavoip"), std::string::npos) << what;
    EXPECT_EQ(what.find("s3cr3t-pw"), std::string::npos) << what;
  }
  const std::string missing = shared_postgres().uri("no_such_database");
  EXPECT_THROW(PgStore store(missing), PgError);
  EXPECT_THROW(PgStore store("postgresql://host:notaport/db"), PgError);
}

TEST_F(PgStoreTest, TheUnixSocketUriFormWorks) {
  PgStore store(shared_postgres().socket_uri(db.database()));
  store.save_call(new_call_record("SOCKET"));
  EXPECT_TRUE(store.load_call("SOCKET"));
}

TEST_F(PgStoreTest, TheDatabaseSettingPicksTheEngine) {
  testsupport::TempDir dir{"wavoip-store"};
  Config config;
  config.database = db.uri();
  const std::unique_ptr<Store> pg = open_store(config, dir.path().string());
  EXPECT_NE(dynamic_cast<PgStore*>(pg.get()), nullptr);
  EXPECT_EQ(describe_database(config, dir.path().string()).rfind("PostgreSQL host=127.0.0.1", 0), 0u);

  config.database = "sub/dir/state.sqlite";  // relative: under the data dir, created on open
  const std::unique_ptr<Store> sqlite = open_store(config, dir.path().string());
  EXPECT_NE(dynamic_cast<SqliteStore*>(sqlite.get()), nullptr);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "sub/dir/state.sqlite"));

  config.database = "postgresql://wavoip:pw@127.0.0.1:1/x";
  EXPECT_THROW(open_store(config, dir.path().string()), std::runtime_error);
}

TEST_F(PgStoreTest, RawBodyWithNulBytesIsStoredByteForByte) {
  PgStore store(db.uri());
  const std::string body("{\"type\":\"DEVICE\"}\0\xff\xfe tail\0", 26);
  store.record_delivery_and_apply(body, Event{DeviceEvent{}}, "", kT0, unchanged);
  EXPECT_EQ(sql("SELECT encode(body, 'hex') FROM wavoip.deliveries"),
            "7b2274797065223a22444556494345227d00fffe207461696c00");
  EXPECT_EQ(sql("SELECT octet_length(body) || ' ' || type || ' ' || (call_id IS NULL) || ' ' || received_at "
                "FROM wavoip.deliveries"),
            "26 DEVICE true " + std::to_string(kT0));
}

TEST_F(PgStoreTest, CallIdsSortByByteOrderEvenInALinguisticDatabase) {
  // The test databases sort text linguistically ('a' before 'B')...
  EXPECT_EQ(sql("SELECT 'a-tie' < 'B-tie'"), "t");
  // ...but the store's call ids compare byte-wise, like SQLite's.
  PgStore store(db.uri());
  for (const char* id : {"a-tie", "B-tie"}) {
    CallRecord r = new_call_record(id);
    r.next_attempt_at = kT0;
    store.save_call(r);
  }
  const auto due = store.claim_due("node-a", kT0, 60'000, 10);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].record.call_id, "B-tie");
}

// Two nodes race to claim the same calls: every call is claimed by exactly one.
TEST_F(PgStoreTest, TwoConnectionsRacingForTheSameCallsClaimEachOnce) {
  constexpr int kCalls = 200;
  PgStore a(db.uri());
  PgStore b(db.uri());
  for (int i = 0; i < kCalls; ++i) a.save_call(new_call_record("C" + std::to_string(i)));
  std::vector<int> won_by_a(kCalls), won_by_b(kCalls);
  std::atomic<int> ready{0};
  auto race = [&](PgStore& store, const char* owner, std::vector<int>& won) {
    ++ready;
    while (ready.load() < 2) std::this_thread::yield();
    for (int i = 0; i < kCalls; ++i) {
      won[static_cast<std::size_t>(i)] = store.claim_call("C" + std::to_string(i), owner, kT0, 60'000).has_value();
    }
  };
  std::thread ta(race, std::ref(a), "node-a", std::ref(won_by_a));
  std::thread tb(race, std::ref(b), "node-b", std::ref(won_by_b));
  ta.join();
  tb.join();
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(won_by_a[static_cast<std::size_t>(i)] + won_by_b[static_cast<std::size_t>(i)], 1) << "call C" << i;
  }
}

// Claims racing the attachments of their calls (one node attaching under a lease that ended,
// another taking the calls over): no call errs or deadlocks, and once attached no claim succeeds.
TEST_F(PgStoreTest, ClaimsRacingAttachmentsNeverFailAndEndRefused) {
  constexpr int kCalls = 100;
  PgStore attacher(db.uri());
  PgStore claimer(db.uri());
  std::vector<std::int64_t> fences;
  for (int i = 0; i < kCalls; ++i) {
    const std::string id = "C" + std::to_string(i);
    attacher.save_call(new_call_record(id));
    const auto claim = attacher.claim_call(id, "node-a", kT0, 1);
    ASSERT_TRUE(claim);
    fences.push_back(claim->fence);
  }
  std::atomic<bool> go{false};
  std::thread t([&] {
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < kCalls; ++i) {
      const std::string id = "C" + std::to_string(i);
      // As the plugin records an attachment: the record and the claim's end in one transaction.
      const auto errors = attacher.run_batch({[&] {
        attacher.mark_attached(id, "att", kT0);
        attacher.release_claim(id, fences[static_cast<std::size_t>(i)]);
      }});
      EXPECT_EQ(errors, std::vector<std::string>{""}) << id;
    }
  });
  go = true;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < kCalls; ++i) {
      const std::string id = "C" + std::to_string(i);
      if (const auto claim = claimer.claim_call(id, "node-b", kT0 + 10, 1)) claimer.release_claim(id, claim->fence);
    }
  }
  t.join();
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_FALSE(claimer.claim_call("C" + std::to_string(i), "node-b", kT0 + 20, 1)) << i;
    EXPECT_EQ(claimer.attachment_of("C" + std::to_string(i)), "att");
  }
}

// Two nodes' batches, each of one job that changes `first` (reading it, so its row is locked),
// waits (on its first run) until both hold their first row, then runs `then(store, second)`.
struct OppositeOrders {
  std::vector<std::string> errors_a, errors_b;
  int runs = 0;  // jobs run by both batches
  int conflicts_retried = 0;
  int pipeline_fallbacks = 0;
  int connections = 0;
};
OppositeOrders run_in_opposite_orders(const PgBackend& db,
                                      const std::function<void(PgStore&, const char* second)>& then) {
  PgStore a(db.uri());
  PgStore b(db.uri());
  a.save_call(new_call_record("X"));
  a.save_call(new_call_record("Y"));
  std::atomic<int> holding{0};
  auto batch = [&](PgStore& store, const char* first, const char* second, std::atomic<int>& runs) {
    return store.run_batch({[&] {
      const bool first_run = runs++ == 0;
      store.apply_to_call(first, touch_attempt);
      if (first_run) {
        ++holding;
        while (holding.load() < 2) std::this_thread::yield();  // both hold their first row
      }
      then(store, second);
    }});
  };
  std::atomic<int> runs_a{0}, runs_b{0};
  OppositeOrders out;
  std::thread ta([&] { out.errors_a = batch(a, "X", "Y", runs_a); });
  std::thread tb([&] { out.errors_b = batch(b, "Y", "X", runs_b); });
  ta.join();
  tb.join();
  out.runs = runs_a.load() + runs_b.load();
  out.conflicts_retried = a.conflicts_retried() + b.conflicts_retried();
  out.pipeline_fallbacks = a.pipeline_fallbacks() + b.pipeline_fallbacks();
  out.connections = a.connections_made() + b.connections_made();
  return out;
}

// Two nodes' batches lock the same two calls in opposite orders: the server kills one of them as
// a deadlock's victim, and that batch runs again whole and commits; nothing fails.
TEST_F(PgStoreTest, ABatchChosenAsADeadlocksVictimRunsAgainAndCommits) {
  const OppositeOrders run = run_in_opposite_orders(
      db, [](PgStore& store, const char* second) { store.apply_to_call(second, touch_attempt); });
  EXPECT_EQ(run.errors_a, std::vector<std::string>{""});
  EXPECT_EQ(run.errors_b, std::vector<std::string>{""});
  // Once in a full suite on a loaded machine a second conflict was counted; whatever their
  // number, each one ran the victim's job once more, and every write is in once.
  EXPECT_GE(run.conflicts_retried, 1);
  EXPECT_EQ(run.runs, 2 + run.conflicts_retried) << "the victim's job ran once more per conflict";
  PgStore store(db.uri());
  EXPECT_EQ(store.load_call("X")->attempt, 2) << "each batch's writes are in, once";
  EXPECT_EQ(store.load_call("Y")->attempt, 2);
}

// The same, where the victim learns of the deadlock only at its commit: its second write is sent
// without waiting (a pipelined batch), and the commit's results carry the error.
TEST_F(PgStoreTest, ABatchThatLearnsAtItsCommitThatItWasADeadlocksVictimRunsAgainAndCommits) {
  const OppositeOrders run = run_in_opposite_orders(db, [](PgStore& store, const char* second) {
    CallRecord other = new_call_record(second);
    other.attempt = 7;
    store.save_call(other);  // a write nobody reads: it waits on the other's row at commit
  });
  EXPECT_EQ(run.errors_a, std::vector<std::string>{""});
  EXPECT_EQ(run.errors_b, std::vector<std::string>{""});
  EXPECT_GE(run.conflicts_retried, 1);
  EXPECT_EQ(run.runs, 2 + run.conflicts_retried) << "the victim's job ran once more per conflict";
  EXPECT_EQ(run.pipeline_fallbacks, 0);
  EXPECT_EQ(run.connections, 2) << "no connection was dropped";
}

// The webhooks of one store-writer batch, as the plugin runs them: a run_batch job each, every
// one a new call. Returns the round trips the batch took.
std::int64_t run_webhook_batch(PgStore& store, const std::vector<Event>& events, std::vector<std::string>& errors,
                               std::vector<std::int64_t>& delivery_ids) {
  const Config config;
  std::vector<std::function<void()>> jobs;
  delivery_ids.assign(events.size(), 0);
  for (std::size_t i = 0; i < events.size(); ++i) {
    jobs.emplace_back([&, i] {
      const auto& record = std::get<RecordEvent>(events[i]);
      delivery_ids[i] =
          store
              .record_delivery_and_apply("{}", events[i], "", kT0,
                                         [&](const CallRecord& r) { return step(r, record, kT0, config); })
              .delivery_id;
    });
  }
  const std::int64_t before = store.round_trips();
  errors = store.run_batch(jobs);
  return store.round_trips() - before;
}

TEST_F(PgStoreTest, APipelinedBatchTakesAboutOneRoundTripPerWebhook) {
  constexpr int kWebhooks = 20;
  std::vector<Event> events;
  for (int i = 0; i < kWebhooks; ++i) events.push_back(record_event("PIPE-" + std::to_string(i), "RECORDING"));
  PgStore pipelined(db.uri());
  std::vector<std::string> errors;
  std::vector<std::int64_t> ids;
  const std::int64_t trips = run_webhook_batch(pipelined, events, errors, ids);
  EXPECT_EQ(errors, std::vector<std::string>(kWebhooks, ""));
  // BEGIN, one per webhook (its delivery, its call created and locked, the previous one's
  // writes), the commit with the last one's writes.
  EXPECT_EQ(trips, kWebhooks + 2);
  for (int i = 1; i < kWebhooks; ++i) EXPECT_LT(ids[i - 1], ids[i]);
  EXPECT_EQ(sql("SELECT COUNT(*) FROM wavoip.calls WHERE call_id LIKE 'PIPE-%' AND recording = 'waiting'"),
            std::to_string(kWebhooks));
  EXPECT_EQ(pipelined.delivery_count(), kWebhooks);
  EXPECT_EQ(pipelined.pipeline_fallbacks(), 0);

  // The same batch statement by statement, for comparison.
  std::vector<Event> again;
  for (int i = 0; i < kWebhooks; ++i) again.push_back(record_event("STEP-" + std::to_string(i), "RECORDING"));
  PgOptions one_by_one;
  one_by_one.pipeline = false;
  PgStore classic(db.uri(), one_by_one);
  const std::int64_t classic_trips = run_webhook_batch(classic, again, errors, ids);
  EXPECT_EQ(errors, std::vector<std::string>(kWebhooks, ""));
  EXPECT_GE(classic_trips, 5 * kWebhooks);
}

// A new call's first delivery writes its row once (the step's result inserted), not a blank row
// and then the step over it: each write of a row in a transaction leaves a tuple behind. On a
// fresh table the tuples of one page are numbered in order, so ten calls written once take line
// pointers 1 to 10 (written twice, the visible rows would sit at 2, 4, ... 20). A later delivery
// of a known call steps on its stored row.
TEST_F(PgStoreTest, ANewCallsFirstDeliveryWritesItsRowOnce) {
  constexpr int kCalls = 10;
  for (const bool pipeline : {true, false}) {
    SCOPED_TRACE(pipeline ? "pipelined" : "statement by statement");
    PgBackend fresh;
    PgOptions options;
    options.pipeline = pipeline;
    PgStore store(fresh.uri(), options);
    std::vector<Event> events;
    for (int i = 0; i < kCalls; ++i) events.push_back(record_event("ONCE-" + std::to_string(i), "RECORDING"));
    std::vector<std::string> errors;
    std::vector<std::int64_t> ids;
    run_webhook_batch(store, events, errors, ids);
    EXPECT_EQ(errors, std::vector<std::string>(kCalls, ""));
    const auto value = [&](const std::string& query) { return shared_postgres().query_value(fresh.database(), query); };
    EXPECT_EQ(value("SELECT COUNT(*) FROM wavoip.calls WHERE recording = 'waiting'"), std::to_string(kCalls));
    EXPECT_EQ(value("SELECT MAX((ctid::text::point)[1])::int FROM wavoip.calls"), std::to_string(kCalls));

    // The same calls again: each steps on its stored row (READY after RECORDING fetches).
    std::vector<Event> ready;
    for (int i = 0; i < kCalls; ++i) ready.push_back(record_event("ONCE-" + std::to_string(i), "READY"));
    run_webhook_batch(store, ready, errors, ids);
    EXPECT_EQ(errors, std::vector<std::string>(kCalls, ""));
    EXPECT_EQ(value("SELECT COUNT(*) FROM wavoip.calls WHERE recording = 'fetching' AND deadline_at IS NOT NULL"),
              std::to_string(kCalls));
  }
}

// The poll timer's job on PostgreSQL: the claims are one statement whose rows come back locked,
// and each call's step one write sent without waiting, so a batch of due calls costs a fixed
// number of round trips, not a few per call.
TEST_F(PgStoreTest, APollBatchTakesAFixedNumberOfRoundTripsAndEachOutcomeOne) {
  constexpr int kCalls = 20;
  PgStore store(db.uri());
  for (int i = 0; i < kCalls; ++i) {
    CallRecord r = new_call_record("DUE-" + std::to_string(i));
    r.recording = RecordingState::waiting;
    r.next_attempt_at = kT0 - i;
    store.save_call(r);
  }
  const Config config;
  std::vector<Store::ClaimedStep> steps;
  const std::int64_t before = store.round_trips();
  // As the store writer runs it: one job of a batch.
  const std::vector<std::string> errors = store.run_batch({[&] {
    steps = store.claim_due_and_apply("node-a", kT0, 1000, kCalls,
                                      [&](const CallRecord& r) { return step(r, PollDue{}, kT0, config); });
  }});
  const std::int64_t trips = store.round_trips() - before;
  EXPECT_EQ(errors, std::vector<std::string>{""});
  ASSERT_EQ(steps.size(), static_cast<std::size_t>(kCalls));
  for (const Store::ClaimedStep& claimed : steps) {
    EXPECT_EQ(claimed.result.record.recording, RecordingState::fetching);
    EXPECT_TRUE(claimed.fence) << "busy: the claim is kept";
  }
  EXPECT_LE(trips, 3) << "BEGIN with the claims, the commit with the writes";
  EXPECT_EQ(sql("SELECT COUNT(*) FROM wavoip.calls WHERE recording = 'fetching' AND owner = 'node-a' AND "
                "next_attempt_at IS NULL"),
            std::to_string(kCalls));

  // Their downloads' outcomes, one job each: a round trip each (the claimed row read and locked),
  // the write and the end of the claim sent with the next one.
  FetchOutcome not_ready;
  not_ready.kind = FetchKind::not_ready;
  not_ready.http_status = 404;
  std::vector<std::function<void()>> outcomes;
  for (const Store::ClaimedStep& claimed : steps) {
    outcomes.emplace_back([&store, &claimed, &config, not_ready] {
      ASSERT_TRUE(store.apply_to_claimed_call(
          claimed.result.record.call_id, *claimed.fence, Store::ClaimAfter::release_unless_busy,
          [&](const CallRecord& r) { return step(r, not_ready, kT0 + 5, config); }));
    });
  }
  const std::int64_t before_outcomes = store.round_trips();
  EXPECT_EQ(store.run_batch(outcomes), std::vector<std::string>(kCalls, ""));
  EXPECT_LE(store.round_trips() - before_outcomes, kCalls + 2);
  EXPECT_EQ(sql("SELECT COUNT(*) FROM wavoip.calls WHERE recording = 'waiting' AND owner IS NULL AND lease_until IS "
                "NULL AND next_attempt_at IS NOT NULL"),
            std::to_string(kCalls));
}

// A download's outcome under a claim is one write of the call's row: the step and the end of the
// claim together. Each write of a row leaves a new tuple at the page's next line pointer.
TEST_F(PgStoreTest, AnOutcomeThatEndsItsClaimWritesTheRowOnce) {
  PgStore store(db.uri());
  CallRecord r = new_call_record("ONE-WRITE");
  r.recording = RecordingState::waiting;
  r.next_attempt_at = kT0;
  store.save_call(r);
  const Config config;
  const auto claimed = store.claim_due_and_apply("node-a", kT0, 1000, 1,
                                                 [&](const CallRecord& c) { return step(c, PollDue{}, kT0, config); });
  ASSERT_EQ(claimed.size(), 1u);
  ASSERT_TRUE(claimed[0].fence);
  const auto line = [&] { return std::stoi(sql("SELECT (ctid::text::point)[1]::int FROM wavoip.calls")); };
  const int after_claim = line();
  FetchOutcome not_ready;
  not_ready.kind = FetchKind::not_ready;
  not_ready.http_status = 404;
  ASSERT_TRUE(store.apply_to_claimed_call("ONE-WRITE", *claimed[0].fence, Store::ClaimAfter::release_unless_busy,
                                          [&](const CallRecord& c) { return step(c, not_ready, kT0 + 5, config); }));
  EXPECT_EQ(line(), after_claim + 1);
  EXPECT_EQ(sql("SELECT recording || ' ' || COALESCE(owner, '-') || ' ' || COALESCE(lease_until::text, '-') FROM "
                "wavoip.calls"),
            "waiting - -");
}

// A node paused inside a pipelined batch (a stopped VM), after a read that locked a row: the
// server ends its transaction once it has been idle for idle_in_transaction_timeout, so another
// node waits that long for the row, not until the paused node wakes up. The paused batch then
// fails as a whole (its connection is gone) and commits nothing.
TEST_F(PgStoreTest, ANodePausedInsideABatchHoldsItsRowsNoLongerThanTheIdleTimeout) {
  PgStore other(db.uri());
  other.save_call(new_call_record("HELD"));
  PgOptions options;
  options.idle_in_transaction_timeout = std::chrono::milliseconds(300);
  PgStore paused(db.uri(), options);
  std::atomic<bool> other_done{false};
  bool done_while_paused = false;
  std::thread other_node;
  const std::vector<std::string> errors = paused.run_batch({
      // Reads the call with its row locked, and waits for that answer.
      [&] { paused.record_delivery_and_apply("{}", record_event("HELD", "RECORDING"), "", kT0, touch_attempt); },
      // The node stops here, inside its transaction, for up to 5 s.
      [&] {
        other_node = std::thread([&] {
          other.apply_to_call("HELD", touch_attempt);
          other_done = true;
        });
        for (int i = 0; i < 100 && !other_done; ++i) std::this_thread::sleep_for(50ms);
        done_while_paused = other_done;
      },
  });
  other_node.join();
  EXPECT_TRUE(done_while_paused) << "the other node waited for the paused one to wake up";
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0], "") << "the paused batch's transaction was ended by the server";
  EXPECT_EQ(other.load_call("HELD")->attempt, 1u) << "only the other node's step is written";
  EXPECT_EQ(other.delivery_count(), 0);
}

TEST_F(PgStoreTest, AWriteThatFailsInAPipelinedBatchFailsItsJobAlone) {
  PgStore store(db.uri());
  store.save_call(new_call_record("KEEP"));  // connects, creates the schema
  sql("ALTER TABLE wavoip.calls ADD CONSTRAINT no_bad_calls CHECK (call_id <> 'BAD' OR recording = 'none')");
  const std::vector<Event> events = {record_event("BEFORE", "RECORDING"), record_event("BAD", "RECORDING"),
                                     record_event("AFTER", "RECORDING")};
  std::vector<std::string> errors;
  std::vector<std::int64_t> ids;
  // BAD's write is sent without waiting; its failure shows only when AFTER's read comes back.
  run_webhook_batch(store, events, errors, ids);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0], "");
  EXPECT_NE(errors[1].find("no_bad_calls"), std::string::npos) << errors[1];
  EXPECT_EQ(errors[2], "");
  EXPECT_EQ(store.pipeline_fallbacks(), 1);
  EXPECT_TRUE(store.load_call("BEFORE"));
  EXPECT_FALSE(store.load_call("BAD"));
  EXPECT_TRUE(store.load_call("AFTER"));
  EXPECT_EQ(store.delivery_count(), 2) << "the failed job's delivery is not kept";
  // The next batch is pipelined again.
  run_webhook_batch(store, {record_event("NEXT", "RECORDING")}, errors, ids);
  EXPECT_EQ(errors, std::vector<std::string>{""});
  EXPECT_EQ(store.pipeline_fallbacks(), 1);
}

void terminate_backend(const PgBackend& db, int pid) {
  ASSERT_GT(pid, 0);
  EXPECT_EQ(shared_postgres().query_value(db.database(), "SELECT pg_terminate_backend(" + std::to_string(pid) + ")"),
            "t");
}

TEST_F(PgStoreTest, ABatchWhoseConnectionDiesCommitsNothingAndTheNextCallReconnects) {
  PgStore store(db.uri());
  store.save_call(new_call_record("BEFORE"));
  const int pid = store.backend_pid();
  const auto errors = store.run_batch({
      [&] { store.save_call(new_call_record("IN-BATCH-1")); },
      [&] {
        store.save_call(new_call_record("IN-BATCH-2"));
        terminate_backend(db, pid);  // the server goes away before the commit
      },
      [&] { store.save_call(new_call_record("IN-BATCH-3")); },
  });
  ASSERT_EQ(errors.size(), 3u);
  for (const std::string& error : errors) EXPECT_NE(error, "");
  EXPECT_EQ(sql("SELECT COUNT(*) FROM wavoip.calls"), "1") << "nothing of the batch was committed";
  // The next call outside a transaction connects again.
  EXPECT_TRUE(store.load_call("BEFORE"));
  EXPECT_FALSE(store.load_call("IN-BATCH-1"));
  EXPECT_EQ(store.connections_made(), 2);
  EXPECT_NE(store.backend_pid(), pid);
}

TEST_F(PgStoreTest, ABatchThatCannotBeginFailsEveryJobAndRunsNone) {
  PgStore store(db.uri());
  terminate_backend(db, store.backend_pid());
  int ran = 0;
  const auto errors = store.run_batch({[&] { ++ran; }, [&] { ++ran; }});
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0], "");
  EXPECT_NE(errors[1], "");
  EXPECT_EQ(ran, 0);
  const auto entries = store.record_deliveries_and_apply({});
  EXPECT_TRUE(entries.empty());
  EXPECT_EQ(store.delivery_count(), 0);  // connected again
}

TEST_F(PgStoreTest, ACallThatMeetsALostConnectionThrowsAndLeavesNothing) {
  PgStore store(db.uri());
  terminate_backend(db, store.backend_pid());
  const Event ev = record_event("LOST", "READY");
  EXPECT_THROW(store.record_delivery_and_apply("{}", ev, "", kT0, unchanged), PgError);
  EXPECT_EQ(store.delivery_count(), 0);
  EXPECT_FALSE(store.load_call("LOST"));
}

// Stops and starts the shared server: the store throws while it is down, retries no faster than
// its backoff, and serves again by itself once it is back.
TEST_F(PgStoreTest, ReconnectsWithBackoffAfterTheServerRestarts) {
  PgOptions options;
  options.reconnect_min = 300ms;
  options.reconnect_max = 600ms;
  PgStore store(db.uri(), options);
  store.save_call(new_call_record("KEPT"));
  ASSERT_EQ(store.connections_made(), 1);

  shared_postgres().stop();
  EXPECT_THROW(store.load_call("KEPT"), PgError);  // meets the closed connection
  EXPECT_THROW(store.load_call("KEPT"), PgError);  // a reconnect attempt that fails
  try {
    store.load_call("KEPT");
    FAIL() << "served without a server";
  } catch (const PgError& e) {
    EXPECT_NE(std::string(e.what()).find("next connection attempt in"), std::string::npos) << e.what();
  }
  // A caller retrying every 20 ms for 1.2 s: attempts are spaced by 300 ms at least, whatever
  // else the machine does (a busy machine only spaces the caller's tries further apart).
  std::vector<std::chrono::steady_clock::time_point> attempts;
  int refused = 0;
  const auto down_until = std::chrono::steady_clock::now() + 1200ms;
  while (std::chrono::steady_clock::now() < down_until) {
    const auto tried_at = std::chrono::steady_clock::now();
    try {
      store.load_call("KEPT");
    } catch (const PgError& e) {
      if (std::string(e.what()).find("next connection attempt in") != std::string::npos)
        ++refused;
      else
        attempts.push_back(tried_at);
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GE(attempts.size(), 1u);
  EXPECT_GE(refused, 1);
  for (size_t i = 1; i < attempts.size(); ++i) {
    EXPECT_GE(attempts[i] - attempts[i - 1], 280ms) << "a dead server is not hammered (attempt " << i << ")";
  }

  shared_postgres().start();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  std::optional<CallRecord> kept;
  while (!kept && std::chrono::steady_clock::now() < deadline) {
    try {
      kept = store.load_call("KEPT");
    } catch (const PgError&) {
      std::this_thread::sleep_for(20ms);
    }
  }
  ASSERT_TRUE(kept) << "did not reconnect";
  EXPECT_EQ(store.connections_made(), 2);
  // Statements are prepared again on the new connection.
  store.save_call(new_call_record("AFTER"));
  EXPECT_TRUE(store.load_call("AFTER"));
}

// Three nodes claim due calls at once, in small batches: every call goes to exactly one node.
TEST_F(PgStoreTest, NodesClaimingAtOnceTakeEachDueCallOnce) {
  constexpr int kCalls = 300;
  constexpr int kNodes = 3;
  {
    PgStore setup(db.uri());
    setup.run_batch({[&] {
      for (int i = 0; i < kCalls; ++i) {
        CallRecord r = new_call_record("C" + std::to_string(i));
        r.next_attempt_at = kT0 + i % 7;
        setup.save_call(r);
      }
    }});
  }
  std::vector<std::vector<std::string>> taken(kNodes);
  std::vector<std::string> errors(kNodes);
  std::atomic<int> ready{0};
  std::vector<std::thread> nodes;
  for (int n = 0; n < kNodes; ++n) {
    nodes.emplace_back([&, n] {
      try {
        PgStore store(db.uri());
        ++ready;
        while (ready.load() < kNodes) std::this_thread::yield();
        for (;;) {
          const auto claims = store.claim_due("node-" + std::to_string(n), kT0 + 10, 60'000, 7);
          if (claims.empty()) break;
          for (const auto& c : claims) taken[static_cast<std::size_t>(n)].push_back(c.record.call_id);
        }
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(n)] = e.what();
        ++ready;
      }
    });
  }
  for (std::thread& node : nodes) node.join();
  for (const std::string& error : errors) EXPECT_EQ(error, "");
  std::map<std::string, int> times;
  for (const auto& ids : taken) {
    for (const std::string& id : ids) ++times[id];
  }
  EXPECT_EQ(times.size(), static_cast<std::size_t>(kCalls));
  for (const auto& [id, count] : times) EXPECT_EQ(count, 1) << id;
  EXPECT_EQ(sql("SELECT COUNT(*) FROM wavoip.calls WHERE fence = 1 AND owner LIKE 'node-%'"), std::to_string(kCalls));
}

// A node that holds a call's row (in the middle of writing its outcome) does not hold up the
// others' claims: they skip that row and take the rest at once.
TEST_F(PgStoreTest, AClaimSkipsARowAnotherNodeHoldsInsteadOfWaiting) {
  PgStore a(db.uri());
  PgStore b(db.uri());
  for (const char* id : {"HELD", "FREE"}) {
    CallRecord r = new_call_record(id);
    r.next_attempt_at = kT0;
    a.save_call(r);
  }
  std::vector<std::string> claimed_by_b;
  const auto errors = a.run_batch({[&] {
    // a's transaction locks HELD's row until the batch commits.
    ASSERT_TRUE(a.apply_to_call("HELD", unchanged));
    for (const auto& c : b.claim_due("node-b", kT0, 60'000, 10)) claimed_by_b.push_back(c.record.call_id);
  }});
  EXPECT_EQ(errors, std::vector<std::string>{""});
  EXPECT_EQ(claimed_by_b, std::vector<std::string>{"FREE"});
  const auto later = b.claim_due("node-b", kT0, 60'000, 10);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].record.call_id, "HELD");
}

}  // namespace
}  // namespace wavoip
