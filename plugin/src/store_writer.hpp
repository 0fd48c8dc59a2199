// Every store call of the plugin goes through here, so that the host's loop never waits for a
// disk: the loop hands over a job and carries on; the jobs are written in batches, one
// transaction each (Store::run_batch), and each job's continuation runs back on the main thread,
// after its batch committed, in the order the jobs were submitted.
//
// Two modes, one contract:
//  - thread (the default): a writer thread of the plugin owns the store. The jobs of one loop
//    turn are handed over at the end of the turn (one wake-up of the writer); while it commits
//    one batch the next one gathers, so a batch holds whatever arrived during the previous
//    commit (and under synchronous=FULL one fsync serves all of it, off the loop).
//  - loop: the jobs of one loop turn are written at the end of that turn, on the main thread.
//    No thread; the commit still costs the loop its time. Kept for hosts that do not want a
//    plugin thread, and as the reference the thread mode is measured against.
//
// A job's `work` runs on the writer (inside the batch's transaction, in a savepoint of its own)
// and returns the continuation to run on the main thread; it must only touch the store and what
// it owns (copies), never the plugin's main-thread state. If `work` throws, or the batch's commit
// fails, `failed` runs on the main thread instead, with the reason; nothing of the job is stored.
//
// Threading: submit, start and stop are [main-thread].
#pragma once

#include "host_api.hpp"

#include <wavoip/store/store.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace wavoip {

class StoreWriter {
 public:
  using Continuation = std::function<void()>;
  // Runs on the writer, inside the batch's transaction. It may run more than once (the batch is
  // run again when a job of it failed in its first run, or after PostgreSQL chose it as a
  // deadlock's victim): it must change nothing but the store, and only the continuation of its
  // last run is kept, so it must not give away what it captured.
  using Work = std::function<Continuation(Store&)>;
  using Failed = std::function<void(const std::string& why)>;

  enum class Mode { thread, loop };

  // What the main thread learns after each batch, before the batch's continuations run.
  struct BatchInfo {
    size_t jobs = 0;
    size_t deliveries = 0;               // jobs submitted with delivery = true
    std::optional<TimeMs> earliest_due;  // Store::earliest_due() right after the commit
    bool earliest_due_known = false;     // false when that read failed
  };
  using BatchObserver = std::function<void(const BatchInfo&)>;

  // Jobs written by one transaction at most.
  static constexpr size_t kMaxBatch = 256;
  // Thread mode: after this long without jobs, the store writes what it holds in memory.
  static constexpr std::chrono::milliseconds kIdleSave{200};

  StoreWriter(const HostApi& host, Store& store, Mode mode);
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Called on the main thread after every batch, before its continuations.
  void set_batch_observer(BatchObserver observer) { observer_ = std::move(observer); }

  // Queues a job. Jobs submitted before start() wait for it. After stop() a job is dropped
  // (neither continuation nor failed runs).
  void submit(Work work, Failed failed, bool delivery = false);

  // Before start() only: runs one job at once on the calling thread (its own transaction), then
  // the batch observer and its continuation. For the work a plugin's start must finish before
  // the host serves requests (the resume after a restart).
  void run_now(Work work, Failed failed);

  // Thread mode: starts the writer thread. From here on the store belongs to the writer.
  void start();
  // Writes what is still queued (its continuations do not run: the host is stopping) and, in
  // thread mode, joins the writer. Idempotent.
  void stop();

  Mode mode() const { return mode_; }
  // Jobs submitted and not yet finished on the main thread (for tests and diagnostics).
  size_t in_flight() const { return in_flight_; }

 private:
  struct Job {
    Work work;
    Failed failed;
    bool delivery = false;
  };
  struct Done {
    BatchInfo info;
    std::vector<Continuation> continuations;  // one per job: its continuation or its failure
  };

  // Runs one batch on the store (writer thread, or main thread in loop mode).
  Done write(std::vector<Job>& batch);
  void writer_main();
  void request_delivery();  // asks the host to run deliver() on the main thread
  static void on_main_thread(void* user_data);
  void deliver();  // main thread: runs what the writer finished
  static void on_handover(void* user_data);
  void hand_over();  // thread mode: this turn's jobs to the writer, one wake-up
  static void on_loop_turn(void* user_data);
  void write_turn();  // loop mode: the jobs of the turn

  const HostApi& host_;
  Store& store_;
  const Mode mode_;
  BatchObserver observer_;
  size_t in_flight_ = 0;
  bool started_ = false;
  bool stopped_ = false;
  bool turn_requested_ = false;      // loop mode
  bool handover_requested_ = false;  // thread mode
  std::vector<Job> turn_jobs_;       // thread mode: submitted this turn, not handed over yet

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;            // guarded by mutex_
  std::deque<Done> finished_;        // guarded by mutex_
  bool delivery_requested_ = false;  // guarded by mutex_
  bool quit_ = false;                // guarded by mutex_
  std::thread thread_;
};

}  // namespace wavoip
