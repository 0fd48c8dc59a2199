#include "loop_worker.hpp"

#include <pthread.h>
#include <exception>
#include <utility>

#include <boost/asio/post.hpp>

namespace hdp::host {

LoopWorker::LoopWorker(boost::asio::io_context& io, std::string unknown_failure, const char* thread_name)
    : io_(io),
      unknown_failure_(std::move(unknown_failure)),
      thread_([this, thread_name, waiting = std::weak_ptr<Waiting>(waiting_)] {
        pthread_setname_np(pthread_self(), thread_name);
        thread_main(waiting);
      }) {}

LoopWorker::~LoopWorker() {
  stop();
}

void LoopWorker::stop(const std::function<void()>& interrupt) {
  if (stopped_) return;
  stopped_ = true;
  std::deque<Queued> dropped;
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
    dropped.swap(queue_);
  }
  wake_.notify_one();
  if (interrupt) interrupt();
  thread_.join();
  // The completions still waiting never run; they and the dropped jobs go here, on the main thread.
  waiting_->clear();
}

void LoopWorker::submit(Job job, Done done) {
  if (stopped_) return;
  const uint64_t id = next_id_++;
  waiting_->emplace(id, std::move(done));
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(Queued{id, std::move(job)});
  }
  wake_.notify_one();
}

std::string LoopWorker::run_here(const Job& job, const std::string& unknown_failure) {
  try {
    job();
    return {};
  } catch (const std::exception& e) {
    const std::string why = e.what();
    return why.empty() ? unknown_failure : why;
  } catch (...) {
    return unknown_failure;
  }
}

void LoopWorker::thread_main(const std::weak_ptr<Waiting>& waiting) {
  for (;;) {
    Queued queued;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return quit_ || !queue_.empty(); });
      if (quit_) return;
      queued = std::move(queue_.front());
      queue_.pop_front();
    }
    std::string error = run_here(queued.job, unknown_failure_);
    queued.job = nullptr;  // what it holds is plain data: released here, before its completion runs
    boost::asio::post(io_, [waiting, id = queued.id, error = std::move(error)] {
      const auto shared = waiting.lock();
      if (!shared) return;
      const auto it = shared->find(id);
      if (it == shared->end()) return;
      const Done done = std::move(it->second);
      shared->erase(it);
      done(error);
    });
  }
}

}  // namespace hdp::host
