// BatchedWrites, on the loop and on the host's writer thread: one transaction for the writes of a
// turn, completions on the loop in the order the writes were started and never inside start(),
// flush() making everything queued durable before a synchronous write, a failed write reported
// alone, and finish_owner() answering a stopping plugin's writes with cancellations.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "batched_writes.hpp"
#include "sqlite_helpdesk_store.hpp"
#include "log.hpp"
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

}  // namespace
}  // namespace hdp::host
