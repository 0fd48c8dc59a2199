// Writes to the host's store that complete later (hdp.messages/2, attachment rows): every write
// queued during one loop turn goes into ONE transaction, then each completion runs on the main
// thread, in the order the writes were queued, never inside the call that queued them.
//
// Two ways to run that transaction, one contract:
//  - on a writer thread of the host (the default): at the end of the turn the loop hands the
//    turn's writes to the thread, which owns a connection of its own; the loop goes on serving
//    while the thread commits, then posts the completions back. While it commits one batch the
//    next one gathers. On SQLite the WAL is copied into the file by a checkpoint thread of its
//    own (HelpdeskStore::checkpoint_off_the_writer), so the commits do not wait for its fsyncs.
//  - on the loop, at the end of the turn (no writer store given): for the virtual clock, where
//    tests need every completion to have run by the time a timer's instant is over.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include <boost/asio/io_context.hpp>

#include <hdp/status.h>

namespace hdp::host {

class HelpdeskStore;
class HostMetrics;
class Logger;

// What a write reports: a status, the row it wrote or found, and whether that row existed.
// durable: the write succeeded and its batch was committed (also when status says
// HDP_ERR_CANCELLED because the plugin is stopping).
struct WriteResult {
  hdp_status_t status = HDP_OK;
  int64_t row_id = 0;
  bool existed = false;
  bool durable = false;
};

class BatchedWrites {
 public:
  // Runs inside the batch's transaction (each store call there is a savepoint). Throws
  // SQLite::Exception (or any std::exception) on failure: the write is undone and reports
  // HDP_ERR_IO. May run more than once: a batch that loses to another node's transaction on
  // PostgreSQL (a deadlock, a serialization failure) is rolled back and runs again whole, and so
  // is a batch in which a write fails (it first runs without savepoints, which cost every write
  // two statements; the second time with them, where the failed write fails alone). So a write
  // changes nothing but the store.
  using Write = std::function<WriteResult(HelpdeskStore&)>;
  // Runs once the batch is committed (or failed), with the write's id.
  using Done = std::function<void(uint64_t write_id, const WriteResult&)>;

  // metrics may be null. operation names of start() are counted there as message writes when
  // not empty. With writer_store, the writes run on a thread of their own that owns it (a second
  // connection to the same database as store); without, on the loop through store. store is the
  // loop's connection: hdp.messages/1 writes and reads keep using it.
  BatchedWrites(boost::asio::io_context& io, HelpdeskStore& store, Logger& log, HostMetrics* metrics,
                std::unique_ptr<HelpdeskStore> writer_store = nullptr);
  BatchedWrites(const BatchedWrites&) = delete;
  BatchedWrites& operator=(const BatchedWrites&) = delete;
  ~BatchedWrites();

  // Queues a write for owner; returns its id, never 0 and never reused. operation (a string
  // literal, or empty) labels hdp_host_message_writes_total when the write succeeds.
  // [main-thread]
  uint64_t start(uint64_t owner, std::string_view operation, Write write, Done done);

  // A synchronous write (hdp.messages/1): lands after every write queued before it, and returns
  // its result once committed. With a remote store (PostgreSQL) and a writer thread it runs
  // there, the loop waiting for it as the ABI's synchronous call must; otherwise on the loop's
  // store, in a transaction of its own. Throws (std::exception) when it fails. [main-thread]
  WriteResult write_now(const Write& write);

  // Writes and commits every queued write now (with a writer thread: waits until it has); their
  // completions still come from the loop, in order. Called before a synchronous write
  // (hdp.messages/1) so that it lands after them. [main-thread]
  void flush();

  // Shutdown of one plugin: commits what is queued, then runs every completion of owner now, in
  // order, with HDP_ERR_CANCELLED (plugin.h: a stopping plugin hears only cancellations; the
  // writes are durable all the same, see WriteResult::durable). [main-thread]
  void finish_owner(uint64_t owner);

  // Writes of owner queued or waiting for their completion. [main-thread]
  size_t pending_count(uint64_t owner) const;

  bool on_writer_thread() const { return writer_store_ != nullptr; }

 private:
  struct Op {
    uint64_t id = 0;
    uint64_t owner = 0;
    std::string_view operation;
    Write write;
    Done done;
    WriteResult result;
    std::string error;         // why the write or its commit failed (logged on the loop)
    bool synchronous = false;  // write_now's: its caller counts it
  };
  struct Batch {
    std::deque<Op> ops;
    std::string commit_error;  // the whole transaction failed
    int conflicts = 0;         // times it was rolled back by a conflict and run again
    int isolated_runs = 0;     // times it was rolled back by a failed write and run again with savepoints
  };
  // A batch that loses to another node's transaction (PgConflict) runs again whole, this many
  // times in all at most.
  static constexpr int kConflictAttempts = 5;

  // Runs one transaction over batch.ops on store (any one thread at a time).
  static void write_batch(HelpdeskStore& store, Batch& batch);
  // Main thread: logs and counts a written batch, then queues its completions.
  void record(Batch& batch);
  void post_turn();
  void on_turn();
  void run_completions();
  void hand_over();  // writer thread: the turn's writes to the thread
  void writer_main();
  void on_written();  // main thread: what the writer finished

  boost::asio::io_context& io_;
  HelpdeskStore& store_;
  Logger& log_;
  HostMetrics* metrics_;
  std::unique_ptr<HelpdeskStore> writer_store_;
  std::deque<Op> queued_;                             // not written yet (or not handed to the writer yet)
  std::deque<Op> committed_;                          // written (or failed); completion not run yet
  std::unordered_map<uint64_t, size_t> outstanding_;  // owner -> writes whose completion has not run
  uint64_t next_id_ = 1;
  bool turn_posted_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  // Writer thread.
  std::mutex mutex_;
  std::condition_variable wake_;     // the writer: work or quit
  std::condition_variable settled_;  // flush(): nothing handed over is still being written
  std::deque<Op> to_write_;          // guarded by mutex_
  std::deque<Batch> written_;        // guarded by mutex_
  size_t writing_ = 0;               // guarded by mutex_: handed over, not in written_ yet
  bool written_posted_ = false;      // guarded by mutex_
  bool quit_ = false;                // guarded by mutex_
  std::thread thread_;
};

}  // namespace hdp::host
