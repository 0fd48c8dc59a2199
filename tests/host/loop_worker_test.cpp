// LoopWorker, what the store reader and the sign-in checker run on: jobs one at a time in the order
// they were submitted, off the main thread; completions on the loop's thread in the same order,
// never inside submit(); a job that throws reports why; stop() drops what is queued (no completion
// of it ever runs), interrupts the job running and waits for it.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "loop_worker.hpp"

namespace hdp::host {
namespace {

using namespace std::chrono_literals;

class LoopWorkerTest : public ::testing::Test {
 protected:
  boost::asio::io_context io;
  const std::thread::id main_thread = std::this_thread::get_id();

  // Runs the loop (this thread) until condition holds; false when it never did.
  bool run_until(const std::function<bool()>& condition) {
    return testsupport::eventually(
        [&] {
          io.restart();
          io.poll();
          return condition();
        },
        10s, 1ms);
  }
};

TEST_F(LoopWorkerTest, JobsRunInOrderOffTheLoopAndCompletionsComeBackOnItInOrder) {
  constexpr int kJobs = 20;
  std::mutex mutex;
  std::vector<int> ran;                      // guarded by mutex
  std::vector<std::thread::id> job_threads;  // guarded by mutex
  std::vector<int> completed;
  std::vector<std::thread::id> completion_threads;
  std::vector<std::string> errors;
  LoopWorker worker(io, "unknown", "hdp-test");
  for (int i = 0; i < kJobs; ++i) {
    worker.submit(
        [&, i] {
          // Long enough for a second thread, if there were one, to overtake this job.
          if (i % 5 == 0) std::this_thread::sleep_for(2ms);
          const std::lock_guard lock(mutex);
          ran.push_back(i);
          job_threads.push_back(std::this_thread::get_id());
        },
        [&, i](const std::string& error) {
          completed.push_back(i);
          completion_threads.push_back(std::this_thread::get_id());
          errors.push_back(error);
        });
  }
  EXPECT_TRUE(completed.empty());  // never inside submit()
  ASSERT_TRUE(run_until([&] { return completed.size() == kJobs; }));

  std::vector<int> expected;
  for (int i = 0; i < kJobs; ++i) expected.push_back(i);
  const std::lock_guard lock(mutex);
  EXPECT_EQ(ran, expected);
  EXPECT_EQ(completed, expected);
  for (const std::thread::id id : job_threads) EXPECT_NE(id, main_thread);
  for (const std::thread::id id : completion_threads) EXPECT_EQ(id, main_thread);
  for (const std::string& error : errors) EXPECT_EQ(error, "");
}

TEST_F(LoopWorkerTest, AJobThatThrowsReportsWhyAndTheNextOneStillRuns) {
  std::vector<std::string> errors;
  LoopWorker worker(io, "the job failed", "hdp-test");
  const auto record = [&](const std::string& error) { errors.push_back(error); };
  worker.submit([] { throw std::runtime_error("the disk is full"); }, record);
  worker.submit([] { throw 42; }, record);                      // says nothing: unknown_failure
  worker.submit([] { throw std::runtime_error(""); }, record);  // says nothing either
  worker.submit([] {}, record);
  ASSERT_TRUE(run_until([&] { return errors.size() == 4; }));
  EXPECT_EQ(errors, (std::vector<std::string>{"the disk is full", "the job failed", "the job failed", ""}));
}

TEST_F(LoopWorkerTest, RunHereReportsWhatTheJobThrew) {
  EXPECT_EQ(LoopWorker::run_here([] {}, "unknown"), "");
  EXPECT_EQ(LoopWorker::run_here([] { throw std::runtime_error("no such table"); }, "unknown"), "no such table");
  EXPECT_EQ(LoopWorker::run_here([] { throw 1; }, "unknown"), "unknown");
}

TEST_F(LoopWorkerTest, StopDropsTheQueuedJobsInterruptsTheRunningOneAndWaitsForIt) {
  std::promise<void> started;
  std::promise<void> interrupted;
  std::shared_future<void> interrupted_future = interrupted.get_future().share();
  std::atomic<int> jobs_run{0};
  std::atomic<bool> first_ended{false};
  std::atomic<bool> first_was_interrupted{false};
  int completions = 0;
  // Held by every job and completion: once stop() returns, nobody but this test holds it.
  const auto held = std::make_shared<int>(0);

  LoopWorker worker(io, "unknown", "hdp-test");
  worker.submit(
      [&, held] {
        ++jobs_run;
        started.set_value();
        first_was_interrupted = interrupted_future.wait_for(10s) == std::future_status::ready;
        // The rest of a job that cannot be cut short (a hash): stop() must still wait for it.
        std::this_thread::sleep_for(50ms);
        first_ended = true;
      },
      [&, held](const std::string&) { ++completions; });
  for (int i = 0; i < 3; ++i) {
    worker.submit([&, held] { ++jobs_run; }, [&, held](const std::string&) { ++completions; });
  }
  started.get_future().wait();

  worker.stop([&] { interrupted.set_value(); });

  EXPECT_TRUE(first_ended.load());  // joined: the running job is over
  EXPECT_TRUE(first_was_interrupted.load());
  EXPECT_EQ(jobs_run.load(), 1);   // the queued ones never ran
  EXPECT_EQ(held.use_count(), 1);  // dropped jobs and every waiting completion are gone
  // The first job's result was posted before stop() returned; it finds nothing to run.
  io.restart();
  io.poll();
  EXPECT_EQ(completions, 0);

  // Stopped: a job submitted now is dropped at once and never runs.
  bool later_ran = false;
  worker.submit([&] { later_ran = true; }, [&](const std::string&) { later_ran = true; });
  std::this_thread::sleep_for(20ms);
  io.restart();
  io.poll();
  EXPECT_FALSE(later_ran);
  worker.stop();  // again: nothing happens
}

TEST_F(LoopWorkerTest, ACompletionPostedBeforeTheWorkerIsDestroyedNeverRuns) {
  bool completed = false;
  std::atomic<bool> ran{false};
  {
    LoopWorker worker(io, "unknown", "hdp-test");
    worker.submit([&] { ran = true; }, [&](const std::string&) { completed = true; });
    ASSERT_TRUE(testsupport::eventually([&] { return ran.load(); }, 10s, 1ms));
    std::this_thread::sleep_for(20ms);  // its completion is posted by now
  }
  io.restart();
  io.poll();
  EXPECT_TRUE(ran.load());
  EXPECT_FALSE(completed);
}

TEST_F(LoopWorkerTest, ACompletionMaySubmitMoreAndRunsExactlyOnce) {
  std::vector<int> completed;
  LoopWorker worker(io, "unknown", "hdp-test");
  worker.submit([] {},
                [&](const std::string&) {
                  completed.push_back(1);
                  worker.submit([] {}, [&](const std::string&) { completed.push_back(2); });
                });
  ASSERT_TRUE(run_until([&] { return completed.size() == 2; }));
  // Nothing more comes: each completion ran once.
  std::this_thread::sleep_for(20ms);
  io.restart();
  io.poll();
  EXPECT_EQ(completed, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace hdp::host
