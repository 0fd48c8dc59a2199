// A thread that runs jobs one at a time, in the order they were submitted, and posts each job's
// completion back to the loop (the main thread's io_context). What the store reader and the
// sign-in checker share: work that would hold the loop (a database round trip, a password hash)
// runs here, and its answer comes back as a loop handler.
//
// A completion runs on the main thread, exactly once, unless the worker is stopped first (then
// never). Completions stay on the main thread the whole time; only the job and its error cross,
// so a job must hold only plain data (nothing of the loop).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>

namespace hdp::host {

class LoopWorker {
 public:
  // Runs on the worker thread. Throws std::exception (or anything) on failure. Destroyed on the
  // worker thread once it ran, or on the main thread when it was dropped by stop().
  using Job = std::function<void()>;
  // Runs on the main thread once the job ran: error is empty, or why the job failed.
  using Done = std::function<void(const std::string& error)>;

  // Starts the thread, named thread_name (at most 15 characters: what top -H and perf show);
  // completions are posted to io. unknown_failure is the error reported for a job that throws
  // without saying why.
  LoopWorker(boost::asio::io_context& io, std::string unknown_failure, const char* thread_name);
  LoopWorker(const LoopWorker&) = delete;
  LoopWorker& operator=(const LoopWorker&) = delete;
  // stop() with nothing to interrupt. [main-thread]
  ~LoopWorker();

  // Queues job; done runs later on the main thread, never inside this call. After stop(), both
  // are dropped at once. [main-thread]
  void submit(Job job, Done done);

  // Drops the jobs not started (their completions never run), calls interrupt (when given) so that
  // the job running ends sooner, waits for it to end, and runs no completion from then on. The
  // queue is emptied before interrupt is called, so no later job starts after it. Idempotent.
  // [main-thread]
  void stop(const std::function<void()>& interrupt = {});

  // Runs job here and now: "" when it returned, else what it threw (or unknown_failure).
  static std::string run_here(const Job& job, const std::string& unknown_failure);

 private:
  struct Queued {
    uint64_t id = 0;
    Job job;
  };
  // The completions not run yet, by job id. Shared with the posted results, which find it
  // expired (or without their id) once the worker is gone (or stopped). [main-thread]
  using Waiting = std::map<uint64_t, Done>;

  void thread_main(const std::weak_ptr<Waiting>& waiting);

  boost::asio::io_context& io_;
  const std::string unknown_failure_;
  std::shared_ptr<Waiting> waiting_ = std::make_shared<Waiting>();
  uint64_t next_id_ = 1;
  bool stopped_ = false;  // [main-thread]

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Queued> queue_;  // guarded by mutex_
  bool quit_ = false;         // guarded by mutex_
  std::thread thread_;        // last: started once everything above exists
};

}  // namespace hdp::host
