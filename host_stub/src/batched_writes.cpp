#include "batched_writes.hpp"

#include <pthread.h>
#include <chrono>
#include <exception>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>

#include "helpdesk_store.hpp"
#include "pg_connection.hpp"
#include "log.hpp"
#include "metrics.hpp"

namespace hdp::host {

BatchedWrites::BatchedWrites(boost::asio::io_context& io, HelpdeskStore& store, Logger& log, HostMetrics* metrics,
                             std::unique_ptr<HelpdeskStore> writer_store)
    : io_(io), store_(store), log_(log), metrics_(metrics), writer_store_(std::move(writer_store)) {
  if (writer_store_) {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "hdp-writer");  // what top -H and perf show
      writer_main();
    });
  }
}

BatchedWrites::~BatchedWrites() {
  *alive_ = false;
  if (thread_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    wake_.notify_one();
    thread_.join();  // what was handed over is written first
  }
}

uint64_t BatchedWrites::start(uint64_t owner, std::string_view operation, Write write, Done done) {
  const uint64_t id = next_id_++;
  queued_.push_back(Op{id, owner, operation, std::move(write), std::move(done), {}, {}});
  ++outstanding_[owner];
  post_turn();
  return id;
}

void BatchedWrites::post_turn() {
  if (turn_posted_) return;
  turn_posted_ = true;
  // Behind every handler already ready: whatever the rest of this turn queues joins the batch.
  boost::asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired()) on_turn();
  });
}

void BatchedWrites::write_batch(HelpdeskStore& store, Batch& batch) {
  // A savepoint costs every write two statements (two round trips on a remote store, and on
  // SQLite a copy of the pages it changes): a batch first runs without them, and only one in
  // which a write fails runs again with them, where that write fails alone.
  bool isolated = false;
  for (int attempt = 1;;) {
    try {
      HelpdeskStore::Batch transaction(store, isolated);
      bool failed = false;
      for (Op& op : batch.ops) {
        op.error.clear();
        try {
          op.result = op.write(store);
        } catch (const PgConflict&) {
          throw;  // the server aborted the whole transaction
        } catch (const std::exception& e) {
          op.error = e.what();
          op.result = WriteResult{HDP_ERR_IO, 0, false, false};
          failed = true;
          if (!isolated) break;
        }
        if (!isolated && store.batch_write_failed()) {  // a write failed and its error was caught
          failed = true;
          break;
        }
      }
      if (failed && !isolated) {
        isolated = true;  // the transaction is rolled back here, and nothing of it was committed
        ++batch.isolated_runs;
        continue;
      }
      transaction.commit();
      for (Op& op : batch.ops) op.result.durable = op.result.status == HDP_OK;
      return;
    } catch (const PgConflict& e) {
      // Another node's transaction took the same rows in another order (a deadlock), or won a
      // serialization check: this one was rolled back whole, and runs again after a few random
      // milliseconds, so that the two do not meet the same way again.
      if (attempt < kConflictAttempts) {
        ++batch.conflicts;
        std::this_thread::sleep_for(std::chrono::milliseconds(1 + std::random_device()() % (4 * attempt)));
        ++attempt;
        continue;
      }
      batch.commit_error = e.what();
    } catch (const std::exception& e) {
      batch.commit_error = e.what();
    }
    for (Op& op : batch.ops) op.result = WriteResult{HDP_ERR_IO, 0, false, false};
    return;
  }
}

void BatchedWrites::record(Batch& batch) {
  if (batch.isolated_runs > 0) {
    log_.info("a write of a batch of " + std::to_string(batch.ops.size()) +
              " failed: the batch was rolled back and written again with each write on its own");
  }
  if (batch.conflicts > 0) {
    log_.warning("a batch of " + std::to_string(batch.ops.size()) + " store write(s) met " +
                 std::to_string(batch.conflicts) + " conflict(s) with another transaction and was written again" +
                 (batch.commit_error.empty() ? "" : " until it gave up"));
  }
  for (const Op& op : batch.ops) {
    if (!op.error.empty()) log_.error("store write " + std::to_string(op.id) + " failed: " + op.error);
  }
  if (!batch.commit_error.empty()) {
    log_.error("committing " + std::to_string(batch.ops.size()) + " store write(s) failed: " + batch.commit_error);
  }
  if (metrics_ != nullptr) {
    size_t counted = 0;
    for (const Op& op : batch.ops) {
      if (op.synchronous) continue;
      ++counted;
      if (!op.operation.empty() && op.result.status == HDP_OK) metrics_->count_message_write(op.operation);
    }
    if (counted > 0) metrics_->observe_store_batch(counted);
  }
  for (Op& op : batch.ops) committed_.push_back(std::move(op));
}

void BatchedWrites::flush() {
  if (writer_store_) {
    hand_over();
    std::unique_lock lock(mutex_);
    settled_.wait(lock, [this] { return writing_ == 0; });
    return;
  }
  if (queued_.empty()) return;
  Batch batch;
  batch.ops.swap(queued_);
  write_batch(store_, batch);
  record(batch);
}

WriteResult BatchedWrites::write_now(const Write& write) {
  if (!writer_store_ || !store_.is_remote()) {
    flush();
    return write(store_);
  }
  const uint64_t id = next_id_++;
  Op op{id, 0, {}, write, [](uint64_t, const WriteResult&) {}, {}, {}};
  op.synchronous = true;
  queued_.push_back(std::move(op));
  flush();
  // Its batch waits in written_ for on_written, which cannot run before this returns.
  std::lock_guard lock(mutex_);
  for (const Batch& batch : written_) {
    for (const Op& written : batch.ops) {
      if (written.id != id) continue;
      if (!batch.commit_error.empty()) throw std::runtime_error(batch.commit_error);
      if (!written.error.empty()) throw std::runtime_error(written.error);
      return written.result;
    }
  }
  throw std::logic_error("a synchronous store write was lost");
}

void BatchedWrites::run_completions() {
  // A completion may queue more (they wait for the next turn) or flush through hdp.messages/1
  // (those join this loop, still in order).
  while (!committed_.empty()) {
    Op op = std::move(committed_.front());
    committed_.pop_front();
    if (auto it = outstanding_.find(op.owner); it != outstanding_.end() && --it->second == 0) outstanding_.erase(it);
    op.done(op.id, op.result);
  }
}

void BatchedWrites::on_turn() {
  turn_posted_ = false;
  if (writer_store_) {
    hand_over();
    return;
  }
  flush();
  run_completions();
}

void BatchedWrites::hand_over() {
  if (queued_.empty()) return;
  {
    std::lock_guard lock(mutex_);
    writing_ += queued_.size();
    for (Op& op : queued_) to_write_.push_back(std::move(op));
  }
  queued_.clear();
  wake_.notify_one();
}

void BatchedWrites::writer_main() {
  for (;;) {
    Batch batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return quit_ || !to_write_.empty(); });
      if (to_write_.empty()) return;  // quit, and nothing left to write
      batch.ops.swap(to_write_);
    }
    write_batch(*writer_store_, batch);
    bool post = false;
    {
      std::lock_guard lock(mutex_);
      writing_ -= batch.ops.size();
      written_.push_back(std::move(batch));
      post = !written_posted_;
      written_posted_ = true;
    }
    settled_.notify_all();
    if (post) {
      boost::asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_)] {
        if (!alive.expired()) on_written();
      });
    }
  }
}

void BatchedWrites::on_written() {
  std::deque<Batch> written;
  {
    std::lock_guard lock(mutex_);
    written.swap(written_);
    written_posted_ = false;
  }
  for (Batch& batch : written) record(batch);
  run_completions();
}

void BatchedWrites::finish_owner(uint64_t owner) {
  flush();
  if (writer_store_) {
    // What the writer finished and the loop has not heard yet: in order, before the rest.
    std::deque<Batch> written;
    {
      std::lock_guard lock(mutex_);
      written.swap(written_);
    }
    for (Batch& batch : written) record(batch);
  }
  std::vector<Op> mine;
  for (auto it = committed_.begin(); it != committed_.end();) {
    if (it->owner == owner) {
      mine.push_back(std::move(*it));
      it = committed_.erase(it);
    } else {
      ++it;
    }
  }
  outstanding_.erase(owner);
  for (Op& op : mine) {
    WriteResult cancelled = op.result;
    cancelled.status = HDP_ERR_CANCELLED;
    op.done(op.id, cancelled);
  }
}

size_t BatchedWrites::pending_count(uint64_t owner) const {
  const auto it = outstanding_.find(owner);
  return it == outstanding_.end() ? 0 : it->second;
}

}  // namespace hdp::host
