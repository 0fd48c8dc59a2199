#include "store_writer.hpp"

#include <pthread.h>
#include <stdexcept>
#include <utility>

namespace wavoip {

StoreWriter::StoreWriter(const HostApi& host, Store& store, Mode mode) : host_(host), store_(store), mode_(mode) {}

StoreWriter::~StoreWriter() {
  stop();
}

void StoreWriter::submit(Work work, Failed failed, bool delivery) {
  if (stopped_) return;
  ++in_flight_;
  if (mode_ == Mode::thread && started_) {
    turn_jobs_.push_back(Job{std::move(work), std::move(failed), delivery});
  } else {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(Job{std::move(work), std::move(failed), delivery});
  }
  if (mode_ == Mode::thread) {
    if (!started_) return;  // start() wakes the writer
    // One hand-over per loop turn: the writer wakes once for everything the turn submits, and
    // the batch it writes is the turn's, not the first job alone.
    if (!handover_requested_) {
      handover_requested_ =
          host_.raw()->request_main_thread_callback(host_.raw(), &StoreWriter::on_handover, this) == HDP_OK;
      if (!handover_requested_) hand_over();  // the host is stopping: at once rather than never
    }
  } else if (started_ && !turn_requested_) {
    turn_requested_ =
        host_.raw()->request_main_thread_callback(host_.raw(), &StoreWriter::on_loop_turn, this) == HDP_OK;
    // The host is stopping: write now rather than never.
    if (!turn_requested_) write_turn();
  }
}

void StoreWriter::run_now(Work work, Failed failed) {
  if (started_ || stopped_) throw std::logic_error("StoreWriter::run_now after start");
  std::vector<Job> batch;
  batch.push_back(Job{std::move(work), std::move(failed), false});
  Done done = write(batch);
  if (observer_) observer_(done.info);
  for (Continuation& continuation : done.continuations) continuation();
}

void StoreWriter::start() {
  if (started_ || stopped_) return;
  started_ = true;
  if (mode_ == Mode::thread) {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "wavoip-store");  // what top -H and perf show
      writer_main();
    });
    return;
  }
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queued = !queue_.empty();
  }
  if (queued) {
    turn_requested_ =
        host_.raw()->request_main_thread_callback(host_.raw(), &StoreWriter::on_loop_turn, this) == HDP_OK;
    if (!turn_requested_) write_turn();
  }
}

void StoreWriter::stop() {
  if (stopped_) return;
  stopped_ = true;
  hand_over();  // what this turn submitted is written too
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      quit_ = true;
    }
    wake_.notify_one();
    thread_.join();  // the writer empties the queue before it returns
  }
  // Loop mode, or never started: what is queued is still written, so nothing received is lost.
  std::vector<Job> rest;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    rest.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
    queue_.clear();
    finished_.clear();
  }
  while (!rest.empty()) {
    const size_t n = std::min(rest.size(), kMaxBatch);
    std::vector<Job> batch(std::make_move_iterator(rest.begin()), std::make_move_iterator(rest.begin() + n));
    rest.erase(rest.begin(), rest.begin() + n);
    write(batch);
  }
  // A clean stop leaves nothing for a restart to replay.
  try {
    store_.save_unsaved();
  } catch (const std::exception& e) {
    host_.log(HDP_LOG_WARNING, std::string("[WaVoIP] Could not write the last call records at stop (a restart "
                                           "applies their deliveries again): ") +
                                   e.what());
  }
  in_flight_ = 0;
}

StoreWriter::Done StoreWriter::write(std::vector<Job>& batch) {
  Done done;
  done.info.jobs = batch.size();
  std::vector<Continuation> continuations(batch.size());
  std::vector<std::function<void()>> runs;
  runs.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].delivery) ++done.info.deliveries;
    runs.emplace_back([&, i] { continuations[i] = batch[i].work(store_); });
  }
  std::vector<std::string> errors;
  try {
    errors = store_.run_batch(runs);
  } catch (const std::exception& e) {
    errors.assign(batch.size(), e.what());
  }
  try {
    done.info.earliest_due = store_.earliest_due();
    done.info.earliest_due_known = true;
  } catch (const std::exception&) {
    done.info.earliest_due_known = false;
  }
  done.continuations.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    if (errors[i].empty()) {
      done.continuations.push_back(continuations[i] ? std::move(continuations[i]) : Continuation([] {}));
    } else {
      Failed failed = std::move(batch[i].failed);
      std::string why = std::move(errors[i]);
      done.continuations.push_back([failed = std::move(failed), why = std::move(why)] {
        if (failed) failed(why);
      });
    }
  }
  return done;
}

void StoreWriter::writer_main() {
  bool wrote = false;  // since the store last wrote what it holds in memory
  for (;;) {
    std::vector<Job> batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      const auto ready = [this] { return quit_ || !queue_.empty(); };
      if (wrote) {
        if (!wake_.wait_for(lock, kIdleSave, ready)) {
          // Idle for a moment: the records the store holds back go to disk now (see
          // Store::save_unsaved), so that the file alone tells the truth while nothing happens.
          lock.unlock();
          try {
            store_.save_unsaved();
          } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): kept in memory; the next batch tries again
          }
          wrote = false;
          continue;
        }
      } else {
        wake_.wait(lock, ready);
      }
      if (queue_.empty()) return;  // quit, and nothing left to write
      const size_t n = std::min(queue_.size(), kMaxBatch);
      batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + n));
      queue_.erase(queue_.begin(), queue_.begin() + n);
    }
    Done done = write(batch);
    wrote = true;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (quit_) continue;  // stopping: written, but nobody runs the continuations
      finished_.push_back(std::move(done));
    }
    request_delivery();
  }
}

void StoreWriter::on_handover(void* user_data) {
  auto* self = static_cast<StoreWriter*>(user_data);
  self->handover_requested_ = false;
  self->hand_over();
}

void StoreWriter::hand_over() {
  if (turn_jobs_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (quit_) return;
    for (Job& job : turn_jobs_) queue_.push_back(std::move(job));
  }
  turn_jobs_.clear();
  wake_.notify_one();
}

void StoreWriter::request_delivery() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (delivery_requested_) return;
    delivery_requested_ = true;
  }
  if (host_.raw()->request_main_thread_callback(host_.raw(), &StoreWriter::on_main_thread, this) != HDP_OK) {
    // The host is stopping; a later batch asks again.
    std::lock_guard<std::mutex> lock(mutex_);
    delivery_requested_ = false;
  }
}

void StoreWriter::on_main_thread(void* user_data) {
  auto* self = static_cast<StoreWriter*>(user_data);
  without_exceptions(self->host_, "store completions", [&] { self->deliver(); });
}

void StoreWriter::deliver() {
  std::deque<Done> finished;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finished.swap(finished_);
    delivery_requested_ = false;
  }
  for (Done& done : finished) {
    if (stopped_) return;
    in_flight_ -= std::min(in_flight_, done.continuations.size());
    if (observer_) observer_(done.info);
    for (Continuation& continuation : done.continuations) {
      if (stopped_) return;
      without_exceptions(host_, "store continuation", [&] { continuation(); });
    }
  }
}

void StoreWriter::on_loop_turn(void* user_data) {
  auto* self = static_cast<StoreWriter*>(user_data);
  without_exceptions(self->host_, "store batch", [&] { self->write_turn(); });
}

void StoreWriter::write_turn() {
  turn_requested_ = false;
  if (stopped_) return;
  // Jobs that continuations submit while this runs belong to the next turn.
  std::deque<Job> turn;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    turn.swap(queue_);
  }
  while (!turn.empty() && !stopped_) {
    const size_t n = std::min(turn.size(), kMaxBatch);
    std::vector<Job> batch(std::make_move_iterator(turn.begin()), std::make_move_iterator(turn.begin() + n));
    turn.erase(turn.begin(), turn.begin() + n);
    Done done = write(batch);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      finished_.push_back(std::move(done));
    }
    deliver();
  }
}

}  // namespace wavoip
