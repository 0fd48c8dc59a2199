// Writes to the host's store that complete later (hdp.messages/2, attachment rows): every write
// queued during one loop turn runs in ONE transaction at the end of the turn (a handler posted to
// the loop when the first write of the turn is queued), then each completion runs on the main
// thread, in the order the writes were queued, never inside the call that queued them.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string_view>

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
  // HDP_ERR_IO.
  using Write = std::function<WriteResult(HelpdeskStore&)>;
  // Runs once the batch is committed (or failed), with the write's id.
  using Done = std::function<void(uint64_t write_id, const WriteResult&)>;

  // metrics may be null. operation names of start() are counted there as message writes when
  // not empty.
  BatchedWrites(boost::asio::io_context& io, HelpdeskStore& store, Logger& log, HostMetrics* metrics);
  BatchedWrites(const BatchedWrites&) = delete;
  BatchedWrites& operator=(const BatchedWrites&) = delete;
  ~BatchedWrites();

  // Queues a write for owner; returns its id, never 0 and never reused. operation (a string
  // literal, or empty) labels hdp_host_message_writes_total when the write succeeds.
  // [main-thread]
  uint64_t start(uint64_t owner, std::string_view operation, Write write, Done done);

  // Writes and commits every queued write now; their completions still come from the loop, in
  // order. Called before a synchronous write (hdp.messages/1) so that it lands after them.
  // [main-thread]
  void flush();

  // Shutdown of one plugin: commits what is queued, then runs every completion of owner now, in
  // order, with HDP_ERR_CANCELLED (plugin.h: a stopping plugin hears only cancellations; the
  // writes are durable all the same, see WriteResult::durable). [main-thread]
  void finish_owner(uint64_t owner);

  // Writes of owner queued or waiting for their completion.
  size_t pending_count(uint64_t owner) const;

 private:
  struct Op {
    uint64_t id = 0;
    uint64_t owner = 0;
    std::string_view operation;
    Write write;
    Done done;
    WriteResult result;
  };

  void post_turn();
  void on_turn();

  boost::asio::io_context& io_;
  HelpdeskStore& store_;
  Logger& log_;
  HostMetrics* metrics_;
  std::deque<Op> queued_;     // not written yet
  std::deque<Op> committed_;  // written (or failed); completion not run yet
  uint64_t next_id_ = 1;
  bool turn_posted_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hdp::host
