// The store writer on a real SQLite file: jobs are committed in batches, continuations come back
// on the "main thread" (whoever runs the host's main-thread callbacks: the test) after the commit
// and in submit order; a job that fails is answered alone; stop() writes what is queued.
#include "store_writer.hpp"

#include "fake_host.hpp"  // tests/support
#include "temp_dir.hpp"   // tests/support

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace wavoip {
namespace {

namespace fs = std::filesystem;

using testsupport::FakeHost;
using testsupport::TempDir;

// Each test's SQLite file, in a directory of its own.
std::string db_path(const TempDir& dir) {
  return (dir.path() / "w.sqlite").string();
}

class StoreWriterTest : public ::testing::TestWithParam<StoreWriter::Mode> {
 protected:
  StoreWriterTest() : store_(std::make_unique<SqliteStore>(db_path(dir_))) {}
  ~StoreWriterTest() override {
    writer_.reset();
    store_.reset();
  }
  StoreWriter& writer() {
    if (!writer_) {
      writer_ = std::make_unique<StoreWriter>(api_, *store_, GetParam());
      writer_->set_batch_observer([this](const StoreWriter::BatchInfo& info) { batches_.push_back(info); });
    }
    return *writer_;
  }
  // A job that saves a call and, back on the main thread, appends its name to order_.
  void save(const std::string& id) {
    writer().submit(
        [id, this](Store& store) -> StoreWriter::Continuation {
          CallRecord r = new_call_record(id);
          r.recording = RecordingState::waiting;
          r.next_attempt_at = 5000 + static_cast<TimeMs>(id.size());
          store.save_call(r);
          return [id, this] {
            main_thread_runs_ += std::this_thread::get_id() == main_ ? 1 : 0;
            order_.push_back(id);
          };
        },
        [id, this](const std::string& why) { order_.push_back("failed " + id + ": " + why); });
  }

  TempDir dir_{"wavoip-writer"};
  FakeHost host_;
  HostApi api_{host_.host()};
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<StoreWriter> writer_;
  std::vector<std::string> order_;
  std::vector<StoreWriter::BatchInfo> batches_;
  int main_thread_runs_ = 0;
  std::thread::id main_ = std::this_thread::get_id();
};

TEST_P(StoreWriterTest, ContinuationsRunOnTheMainThreadAfterTheCommitInSubmitOrder) {
  writer().start();
  std::vector<std::string> expected;
  for (int i = 0; i < 600; ++i) {
    expected.push_back("C" + std::to_string(i));
    save(expected.back());
  }
  ASSERT_TRUE(host_.run_until([&] { return order_.size() == expected.size(); }));
  EXPECT_EQ(order_, expected);
  EXPECT_EQ(main_thread_runs_, 600);
  EXPECT_EQ(writer().in_flight(), 0u);
  // Each continuation ran after its batch committed: a second connection sees every row.
  SqliteStore other(db_path(dir_));
  EXPECT_TRUE(other.load_call("C0"));
  EXPECT_TRUE(other.load_call("C599"));
  // Batched: 600 jobs in at most 256 each, and the observer saw them all before the last ran.
  size_t jobs = 0;
  for (const auto& b : batches_) {
    EXPECT_LE(b.jobs, StoreWriter::kMaxBatch);
    jobs += b.jobs;
  }
  EXPECT_EQ(jobs, 600u);
  EXPECT_LT(batches_.size(), 600u);
  ASSERT_FALSE(batches_.empty());
  EXPECT_TRUE(batches_.back().earliest_due_known);
  EXPECT_EQ(batches_.back().earliest_due, 5002);  // "C0".size() == 2 is the earliest
}

TEST_P(StoreWriterTest, AFailingJobIsAnsweredAloneAndNothingOfItIsWritten) {
  writer().start();
  save("A");
  writer().submit(
      [](Store& store) -> StoreWriter::Continuation {
        store.save_call(new_call_record("B"));
        throw std::runtime_error("disk on fire");
      },
      [this](const std::string& why) { order_.push_back("failed B: " + why); });
  save("C");
  ASSERT_TRUE(host_.run_until([&] { return order_.size() == 3; }));
  EXPECT_EQ(order_, (std::vector<std::string>{"A", "failed B: disk on fire", "C"}));
  EXPECT_FALSE(store_->load_call("B"));
  EXPECT_TRUE(store_->load_call("C"));
}

TEST_P(StoreWriterTest, JobsSubmittedBeforeStartWaitForIt) {
  save("early");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  host_.run_queued();
  EXPECT_TRUE(order_.empty());
  writer().start();
  ASSERT_TRUE(host_.run_until([&] { return order_.size() == 1; }));
  EXPECT_EQ(order_[0], "early");
}

TEST_P(StoreWriterTest, StopWritesWhatIsQueuedWithoutRunningContinuations) {
  for (int i = 0; i < 50; ++i) save("S" + std::to_string(i));
  writer().start();
  writer().stop();
  host_.run_queued();  // whatever the writer asked for before stopping runs nothing now
  EXPECT_TRUE(order_.empty());
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(store_->load_call("S" + std::to_string(i))) << i;
  save("after");  // dropped
  host_.run_queued();
  EXPECT_FALSE(store_->load_call("after"));
}

TEST_P(StoreWriterTest, RunNowRunsAJobAndItsContinuationBeforeStart) {
  bool ran = false;
  writer().run_now(
      [&](Store& store) -> StoreWriter::Continuation {
        store.save_call(new_call_record("R"));
        return [&] { ran = true; };
      },
      {});
  EXPECT_TRUE(ran);
  EXPECT_TRUE(store_->load_call("R"));
  ASSERT_EQ(batches_.size(), 1u);
  writer().start();
  EXPECT_THROW(writer().run_now([](Store&) { return StoreWriter::Continuation(); }, {}), std::logic_error);
}

INSTANTIATE_TEST_SUITE_P(Modes, StoreWriterTest, ::testing::Values(StoreWriter::Mode::thread, StoreWriter::Mode::loop),
                         [](const auto& info) { return info.param == StoreWriter::Mode::thread ? "Thread" : "Loop"; });

TEST(StoreWriterThread, WritesOffTheMainThreadAndBatchesWhatArrivesDuringACommit) {
  TempDir dir;
  FakeHost host;
  HostApi api(host.host());
  {
    SqliteStore store(db_path(dir));
    StoreWriter writer(api, store, StoreWriter::Mode::thread);
    std::vector<size_t> sizes;
    writer.set_batch_observer([&](const StoreWriter::BatchInfo& info) { sizes.push_back(info.jobs); });
    std::mutex gate;
    std::unique_lock<std::mutex> held(gate);
    std::thread::id writer_thread;
    int done = 0;
    // The first job blocks the writer until the test has queued 100 more: they form one batch.
    writer.submit(
        [&](Store&) -> StoreWriter::Continuation {
          writer_thread = std::this_thread::get_id();
          std::lock_guard<std::mutex> wait(gate);
          return [&] { ++done; };
        },
        {});
    writer.start();
    while (writer_thread == std::thread::id()) std::this_thread::yield();
    for (int i = 0; i < 100; ++i) {
      writer.submit(
          [i](Store& s) -> StoreWriter::Continuation {
            s.save_call(new_call_record("T" + std::to_string(i)));
            return {};
          },
          {}, /*delivery=*/true);
    }
    held.unlock();
    ASSERT_TRUE(host.run_until([&] { return done == 1 && writer.in_flight() == 0; }));
    EXPECT_NE(writer_thread, std::this_thread::get_id());
    EXPECT_GT(host.requests_from_other_threads(), 0);
    ASSERT_EQ(sizes.size(), 2u);
    EXPECT_EQ(sizes[0], 1u);
    EXPECT_EQ(sizes[1], 100u);
    writer.stop();
  }
}

// Thread mode: what one loop turn submits reaches the writer at the end of the turn, with one
// wake-up, and becomes one batch, not a batch for the first job and another for the rest.
TEST(StoreWriterThread, TheJobsOfOneTurnReachTheWriterTogetherAtItsEnd) {
  TempDir dir;
  FakeHost host;
  HostApi api(host.host());
  {
    SqliteStore store(db_path(dir));
    StoreWriter writer(api, store, StoreWriter::Mode::thread);
    std::vector<size_t> sizes;
    writer.set_batch_observer([&](const StoreWriter::BatchInfo& info) { sizes.push_back(info.jobs); });
    writer.start();
    int done = 0;
    for (int i = 0; i < 50; ++i) {
      writer.submit(
          [i](Store& s) -> StoreWriter::Continuation {
            s.save_call(new_call_record("U" + std::to_string(i)));
            return {};
          },
          [&done](const std::string&) { done = -1000; });
    }
    writer.submit([](Store&) -> StoreWriter::Continuation { return {}; }, {});
    // The turn has not ended: the writer has nothing yet, however long it waits.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    {
      SqliteStore reader(db_path(dir));
      EXPECT_FALSE(reader.load_call("U0").has_value());
    }
    EXPECT_EQ(writer.in_flight(), 51u);
    ASSERT_TRUE(host.run_until([&] { return writer.in_flight() == 0; }));
    EXPECT_EQ(done, 0);
    ASSERT_EQ(sizes.size(), 1u);
    EXPECT_EQ(sizes[0], 51u);
    writer.stop();
    EXPECT_TRUE(store.load_call("U49").has_value());
  }
}

// Thread mode on a write-back store: once the writer has nothing to do for a moment, the call
// records it holds in memory go to disk, so the file alone is up to date while traffic pauses.
TEST(StoreWriterThread, AnIdleWriterWritesTheRecordsTheStoreHeldBack) {
  TempDir dir;
  FakeHost host;
  HostApi api(host.host());
  SqliteOptions options;
  options.write_back_calls = 1000;
  options.write_back_ms = 3'600'000;  // not by age: only the idle writer writes them
  SqliteStore store(db_path(dir), options);
  StoreWriter writer(api, store, StoreWriter::Mode::thread);
  writer.start();
  RecordEvent recording;
  recording.call_id = "IDLE";
  recording.record_status = Coded<RecordStatus>{record_status_from_text("RECORDING"), "RECORDING"};
  const Event event = recording;
  writer.submit(
      [&event](Store& s) -> StoreWriter::Continuation {
        s.record_delivery_and_apply("{}", event, "support", 1000, [&](const CallRecord& r) {
          return step_delivery(r, event, "support", 1000, Config{});
        });
        return {};
      },
      {}, /*delivery=*/true);
  ASSERT_TRUE(host.run_until([&] { return writer.in_flight() == 0; }));
  const auto on_disk = [&] {
    SQLite::Database raw(db_path(dir), SQLite::OPEN_READONLY);
    return raw.execAndGet("SELECT COUNT(*) FROM calls WHERE call_id = 'IDLE'").getInt() == 1;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!on_disk() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(on_disk()) << "the idle writer wrote the record";
  writer.stop();
}

TEST(StoreWriterLoop, WritesTheJobsOfOneTurnInOneTransaction) {
  TempDir dir;
  FakeHost host;
  HostApi api(host.host());
  {
    SqliteStore store(db_path(dir));
    StoreWriter writer(api, store, StoreWriter::Mode::loop);
    std::vector<StoreWriter::BatchInfo> batches;
    writer.set_batch_observer([&](const StoreWriter::BatchInfo& info) { batches.push_back(info); });
    writer.start();
    int done = 0;
    for (int i = 0; i < 10; ++i) {
      writer.submit([&done](Store&) -> StoreWriter::Continuation { return [&done] { ++done; }; }, {}, i % 2 == 0);
    }
    EXPECT_EQ(done, 0) << "never inside submit";
    host.run_queued();  // the end of the turn
    EXPECT_EQ(done, 10);
    ASSERT_EQ(batches.size(), 1u);
    EXPECT_EQ(batches[0].jobs, 10u);
    EXPECT_EQ(batches[0].deliveries, 5u);
  }
}

}  // namespace
}  // namespace wavoip
