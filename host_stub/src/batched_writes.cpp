#include "batched_writes.hpp"

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>

#include "helpdesk_store.hpp"
#include "log.hpp"
#include "metrics.hpp"

namespace hdp::host {

BatchedWrites::BatchedWrites(boost::asio::io_context& io, HelpdeskStore& store, Logger& log,
                             HostMetrics* metrics)
    : io_(io), store_(store), log_(log), metrics_(metrics) {}

BatchedWrites::~BatchedWrites() { *alive_ = false; }

uint64_t BatchedWrites::start(uint64_t owner, std::string_view operation, Write write, Done done) {
  const uint64_t id = next_id_++;
  queued_.push_back(Op{id, owner, operation, std::move(write), std::move(done), {}});
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

void BatchedWrites::flush() {
  if (queued_.empty()) return;
  std::deque<Op> batch;
  batch.swap(queued_);
  try {
    HelpdeskStore::Batch transaction(store_);
    for (Op& op : batch) {
      try {
        op.result = op.write(store_);
      } catch (const std::exception& e) {
        log_.error("store write " + std::to_string(op.id) + " failed: " + e.what());
        op.result = WriteResult{HDP_ERR_IO, 0, false, false};
      }
    }
    transaction.commit();
    for (Op& op : batch) op.result.durable = op.result.status == HDP_OK;
  } catch (const std::exception& e) {
    log_.error("committing " + std::to_string(batch.size()) + " store write(s) failed: " + e.what());
    for (Op& op : batch) op.result = WriteResult{HDP_ERR_IO, 0, false, false};
  }
  if (metrics_ != nullptr) {
    metrics_->observe_store_batch(batch.size());
    for (const Op& op : batch) {
      if (!op.operation.empty() && op.result.status == HDP_OK) metrics_->count_message_write(op.operation);
    }
  }
  for (Op& op : batch) committed_.push_back(std::move(op));
}

void BatchedWrites::on_turn() {
  turn_posted_ = false;
  flush();
  // A completion may queue more (they wait for the next turn) or flush through hdp.messages/1
  // (those join this loop, still in order).
  while (!committed_.empty()) {
    Op op = std::move(committed_.front());
    committed_.pop_front();
    op.done(op.id, op.result);
  }
}

void BatchedWrites::finish_owner(uint64_t owner) {
  flush();
  std::vector<Op> mine;
  for (auto it = committed_.begin(); it != committed_.end();) {
    if (it->owner == owner) {
      mine.push_back(std::move(*it));
      it = committed_.erase(it);
    } else {
      ++it;
    }
  }
  for (Op& op : mine) {
    WriteResult cancelled = op.result;
    cancelled.status = HDP_ERR_CANCELLED;
    op.done(op.id, cancelled);
  }
}

size_t BatchedWrites::pending_count(uint64_t owner) const {
  size_t n = 0;
  for (const Op& op : queued_) n += op.owner == owner ? 1 : 0;
  for (const Op& op : committed_) n += op.owner == owner ? 1 : 0;
  return n;
}

}  // namespace hdp::host
