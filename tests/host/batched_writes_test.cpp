// BatchedWrites, on the loop and on the host's writer thread: one transaction for the writes of a
// turn, completions on the loop in the order the writes were started and never inside start(),
// flush() making everything queued durable before a synchronous write, a failed write reported
// alone, and finish_owner() answering a stopping plugin's writes with cancellations.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <hdp/ext/messages.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "batched_writes.hpp"
#include "log.hpp"
#include "pg_connection.hpp"
#include "shared_postgres.hpp"  // tests/support
#include "sqlite_helpdesk_store.hpp"
#include "temp_dir.hpp"

namespace hdp::host {
namespace {

struct Seen {
  uint64_t id = 0;
  WriteResult result;
};

class BatchedWritesTest : public ::testing::TestWithParam<bool> {
 protected:
  testsupport::TempDir dir{"batched-writes"};
  boost::asio::io_context io;
  std::FILE* log_file = std::tmpfile();
  Logger log{LogLevel::info, LogFormat::text, log_file};
  SqliteHelpdeskStore store{dir.path() / "helpdesk.sqlite3", [] { return int64_t{1000}; }};
  std::unique_ptr<BatchedWrites> writes;
  std::vector<Seen> seen;

  void SetUp() override {
    std::unique_ptr<HelpdeskStore> writer_store;
    if (GetParam())
      writer_store =
          std::make_unique<SqliteHelpdeskStore>(dir.path() / "helpdesk.sqlite3", [] { return int64_t{1000}; });
    writes = std::make_unique<BatchedWrites>(io, store, log, nullptr, std::move(writer_store));
  }
  void TearDown() override {
    writes.reset();
    std::fclose(log_file);
  }

  uint64_t upsert(uint64_t owner, const std::string& key) {
    return writes->start(
        owner, "",
        [key](HelpdeskStore& s) {
          CallMessageUpsert u;
          u.plugin_id = "p";
          u.external_key = key;
          return WriteResult{HDP_OK, s.upsert_call_message(u), false, false};
        },
        [this](uint64_t id, const WriteResult& r) {
          seen.push_back({id, r});
        });
  }

  // Runs the loop until `n` completions were seen (the writer thread posts them back).
  void run_until(size_t n) {
    for (int i = 0; i < 10000 && seen.size() < n; ++i) {
      io.restart();
      io.poll();
      if (seen.size() < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
};

TEST_P(BatchedWritesTest, CompletionsComeLaterInStartOrderAfterTheCommit) {
  const uint64_t a = upsert(1, "a");
  const uint64_t b = upsert(1, "b");
  const uint64_t c = upsert(2, "c");
  EXPECT_TRUE(seen.empty()) << "a completion ran inside start()";
  EXPECT_EQ(writes->pending_count(1), 2u);
  run_until(3);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].id, a);
  EXPECT_EQ(seen[1].id, b);
  EXPECT_EQ(seen[2].id, c);
  for (const Seen& s : seen) {
    EXPECT_EQ(s.result.status, HDP_OK);
    EXPECT_TRUE(s.result.durable);
    // Committed: the loop's own connection reads it.
    EXPECT_TRUE(store.message(s.result.row_id).has_value());
  }
  EXPECT_EQ(writes->pending_count(1), 0u);
  EXPECT_EQ(writes->pending_count(2), 0u);
}

TEST_P(BatchedWritesTest, FlushMakesTheQueuedWritesDurableBeforeItReturns) {
  upsert(1, "before-sync");
  writes->flush();
  // A synchronous write on the loop's connection comes after them, and sees them.
  EXPECT_EQ(store.messages_by_key("before-sync", "p").size(), 1u);
  EXPECT_TRUE(seen.empty()) << "flush ran a completion itself";
  run_until(1);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].result.durable);
}

TEST_P(BatchedWritesTest, AFailedWriteIsReportedAloneAndTheOthersCommit) {
  upsert(1, "good-1");
  writes->start(
      1, "",
      [](HelpdeskStore& s) {
        s.insert_attachment(AttachmentInsert{"p", "k", 4242, "f", "a/b", 1, "/x"});  // no message 4242
        return WriteResult{};
      },
      [this](uint64_t id, const WriteResult& r) {
        seen.push_back({id, r});
      });
  upsert(1, "good-2");
  run_until(3);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].result.status, HDP_OK);
  EXPECT_EQ(seen[1].result.status, HDP_ERR_IO);
  EXPECT_FALSE(seen[1].result.durable);
  EXPECT_EQ(seen[2].result.status, HDP_OK);
  EXPECT_EQ(store.messages_by_key("good-2", "p").size(), 1u);
  std::fflush(log_file);
  std::rewind(log_file);
  std::string text(4096, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), log_file));
  EXPECT_NE(text.find("store write"), std::string::npos) << text;
  EXPECT_NE(text.find("written again with each write on its own"), std::string::npos) << text;
}

// A batch runs first without a savepoint per write. A write whose store call failed cannot be
// undone alone then, even when the write caught the error and reported success: the batch runs
// again, with savepoints, before anything is committed.
TEST_P(BatchedWritesTest, AStoreErrorCaughtInsideAWriteMakesTheBatchRunAgainWithSavepoints) {
  int runs = 0;
  writes->start(
      1, "",
      [&runs](HelpdeskStore& s) {
        ++runs;
        CallMessageUpsert u;
        u.plugin_id = "p";
        u.external_key = "kept";
        const int64_t id = s.upsert_call_message(u);
        try {
          s.insert_attachment(AttachmentInsert{"p", "k", 4242, "f", "a/b", 1, "/x"});  // no message 4242
        } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): the write goes on without it
        }
        return WriteResult{HDP_OK, id, false, false};
      },
      [this](uint64_t id, const WriteResult& r) {
        seen.push_back({id, r});
      });
  upsert(1, "after");
  run_until(2);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(seen[0].result.status, HDP_OK);
  EXPECT_TRUE(seen[0].result.durable);
  EXPECT_EQ(seen[1].result.status, HDP_OK);
  EXPECT_EQ(store.messages_by_key("kept", "p").size(), 1u);
  EXPECT_EQ(store.messages_by_key("after", "p").size(), 1u);
  EXPECT_FALSE(store.attachment_by_key("p", "k"));
}

TEST_P(BatchedWritesTest, AStoppingOwnerHearsCancellationsForWritesThatAreDurableAllTheSame) {
  upsert(7, "mine");
  upsert(8, "theirs");
  writes->finish_owner(7);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].result.status, HDP_ERR_CANCELLED);
  EXPECT_TRUE(seen[0].result.durable);
  EXPECT_EQ(store.messages_by_key("mine", "p").size(), 1u);
  EXPECT_EQ(writes->pending_count(7), 0u);
  run_until(2);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].result.status, HDP_OK);
}

INSTANTIATE_TEST_SUITE_P(Modes, BatchedWritesTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("OnAWriterThread") : std::string("OnTheLoop");
                         });

std::string read_all(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  char chunk[4096];
  for (size_t n; (n = std::fread(chunk, 1, sizeof chunk, file)) > 0;) text.append(chunk, n);
  return text;
}

// The server's own answer for a statement that lost to another transaction is a PgConflict;
// other errors are not.
TEST(PgConnectionErrors, DeadlocksAndSerializationFailuresAreConflicts) {
  PgConnection conn(testsupport::shared_postgres().uri(testsupport::new_postgres_database("pg_conflict")), "test");
  for (const char* state : {"40P01", "40001"}) {
    const std::string sql = std::string("DO $$ BEGIN RAISE EXCEPTION 'lost' USING ERRCODE = '") + state + "'; END $$";
    EXPECT_THROW(conn.simple(sql), PgConflict) << state;
  }
  try {
    conn.simple("DO $$ BEGIN RAISE EXCEPTION 'taken' USING ERRCODE = '23505'; END $$");
    FAIL() << "no error";
  } catch (const PgConflict&) {
    FAIL() << "a unique violation is not a conflict to run again";
  } catch (const PgError& e) {
    EXPECT_NE(std::string(e.what()).find("taken"), std::string::npos) << e.what();
  }
}

// On PostgreSQL a batch runs without a savepoint per write (each costs round trips): a write
// that fails there fails the transaction, which is rolled back and written again with savepoints.
// The failed write alone reports the failure; the writes around it commit once.
TEST(BatchedWritesOnPostgres, AFailedWriteFailsAloneWhenTheBatchIsWrittenAgainWithSavepoints) {
  const StoreLocation location{{}, testsupport::shared_postgres().uri(testsupport::new_postgres_database("isolate"))};
  const auto now = [] { return int64_t{1000}; };
  boost::asio::io_context io;
  std::FILE* log_file = std::tmpfile();
  Logger log{LogLevel::info, LogFormat::text, log_file};
  auto store = open_helpdesk_store(location, now);
  auto writes = std::make_unique<BatchedWrites>(io, *store, log, nullptr, open_helpdesk_store(location, now));
  std::vector<WriteResult> seen;
  const auto done = [&seen](uint64_t, const WriteResult& r) { seen.push_back(r); };
  int runs_of_the_first = 0;
  const auto upsert = [](const char* key) {
    return [key](HelpdeskStore& s) {
      CallMessageUpsert u;
      u.plugin_id = "p";
      u.external_key = key;
      return WriteResult{HDP_OK, s.upsert_call_message(u), false, false};
    };
  };
  writes->start(
      1, "",
      [&runs_of_the_first, first = upsert("good-1")](HelpdeskStore& s) {
        ++runs_of_the_first;
        return first(s);
      },
      done);
  writes->start(
      1, "",
      [](HelpdeskStore& s) {
        s.insert_attachment(AttachmentInsert{"p", "k", 4242, "f", "a/b", 1, "/x"});  // no message 4242
        return WriteResult{};
      },
      done);
  writes->start(1, "", upsert("good-2"), done);
  for (int i = 0; i < 10000 && seen.size() < 3; ++i) {
    io.restart();
    io.poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].status, HDP_OK);
  EXPECT_TRUE(seen[0].durable);
  EXPECT_EQ(seen[1].status, HDP_ERR_IO);
  EXPECT_FALSE(seen[1].durable);
  EXPECT_EQ(seen[2].status, HDP_OK);
  EXPECT_TRUE(seen[2].durable);
  EXPECT_EQ(runs_of_the_first, 2) << "the batch was not written again";
  EXPECT_EQ(store->messages_by_key("good-1", "p").size(), 1u);
  EXPECT_EQ(store->messages_by_key("good-2", "p").size(), 1u);
  EXPECT_FALSE(store->attachment_by_key("p", "k"));
  writes.reset();
  const std::string logs = read_all(log_file);
  std::fclose(log_file);
  EXPECT_NE(logs.find("written again with each write on its own"), std::string::npos) << logs;
  EXPECT_NE(logs.find("store write 2 failed"), std::string::npos) << logs;
}

// Two nodes' writer threads take the same two messages in opposite orders. PostgreSQL aborts one
// transaction as a deadlock; that batch runs again whole, after the other committed: every
// write of both reports success, and the retry is logged.
TEST(BatchedWritesOnPostgres, ABatchThatLosesADeadlockRunsAgainWhole) {
  const StoreLocation location{{}, testsupport::shared_postgres().uri(testsupport::new_postgres_database("deadlock"))};
  const auto now = [] { return int64_t{1000}; };
  int64_t ids[2] = {0, 0};
  {
    auto setup = open_helpdesk_store(location, now);
    for (int i = 0; i < 2; ++i) {
      CallMessageUpsert u;
      u.plugin_id = "p";
      u.external_key = i == 0 ? "A" : "B";
      u.contact = i == 0 ? "5511900000001" : "5511900000002";  // two conversations: rows of their own
      ids[i] = setup->upsert_call_message(u);
    }
  }
  struct Node {
    boost::asio::io_context io;
    std::FILE* log_file = std::tmpfile();
    Logger log{LogLevel::info, LogFormat::text, log_file};
    std::unique_ptr<HelpdeskStore> store;
    std::unique_ptr<BatchedWrites> writes;
    std::atomic<bool> waited{false};
    std::vector<WriteResult> seen;
  };
  std::latch both_hold_one(2);
  Node nodes[2];
  for (int n = 0; n < 2; ++n) {
    Node& node = nodes[n];
    node.store = open_helpdesk_store(location, now);
    node.writes =
        std::make_unique<BatchedWrites>(node.io, *node.store, node.log, nullptr, open_helpdesk_store(location, now));
    const int64_t first = ids[n];
    const int64_t second = ids[1 - n];
    const auto done = [&node](uint64_t, const WriteResult& r) { node.seen.push_back(r); };
    node.writes->start(
        1, "",
        [first](HelpdeskStore& s) {
          s.set_recording_status("p", first, HDP_RECORDING_WAITING, "first");
          return WriteResult{HDP_OK, first, true, false};
        },
        done);
    node.writes->start(
        1, "",
        [&node, &both_hold_one, second](HelpdeskStore& s) {
          // The first time only: both nodes hold their first row before either asks for the other.
          if (!node.waited.exchange(true)) both_hold_one.arrive_and_wait();
          s.set_recording_status("p", second, HDP_RECORDING_WAITING, "second");
          return WriteResult{HDP_OK, second, true, false};
        },
        done);
  }
  for (int i = 0; i < 20000 && (nodes[0].seen.size() < 2 || nodes[1].seen.size() < 2); ++i) {
    for (Node& node : nodes) {
      node.io.restart();
      node.io.poll();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::string logs;
  for (Node& node : nodes) {
    ASSERT_EQ(node.seen.size(), 2u);
    for (const WriteResult& r : node.seen) {
      EXPECT_EQ(r.status, HDP_OK);
      EXPECT_TRUE(r.durable);
    }
    node.writes.reset();
    logs += read_all(node.log_file);
    std::fclose(node.log_file);
  }
  EXPECT_NE(logs.find("conflict(s) with another transaction and was written again"), std::string::npos) << logs;
  EXPECT_EQ(logs.find("until it gave up"), std::string::npos) << logs;
}

}  // namespace
}  // namespace hdp::host
