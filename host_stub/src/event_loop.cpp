#include "event_loop.hpp"

#include <algorithm>
#include <utility>

#include <boost/asio/post.hpp>

namespace hdp::host {

EventLoop::EventLoop() : main_thread_(std::this_thread::get_id()) {}

bool EventLoop::post_from_any_thread(uint64_t owner, Task task) {
  bool need_post = false;
  {
    const std::lock_guard lock(mutex_);
    if (stopping_) return false;
    queue_.push_back(Queued{owner, std::move(task)});
    need_post = !drain_posted_;
    drain_posted_ = true;
  }
  // One drain handler per burst; posting to an io_context is thread-safe.
  if (need_post) boost::asio::post(io_, [this] { drain(); });
  return true;
}

void EventLoop::begin_stopping() {
  const std::lock_guard lock(mutex_);
  stopping_ = true;
}

bool EventLoop::stopping() const {
  const std::lock_guard lock(mutex_);
  return stopping_;
}

void EventLoop::run_queued_now() {
  // A task may queue another (until stopping); keep going until the queue stays empty.
  for (;;) {
    std::deque<Queued> batch;
    {
      const std::lock_guard lock(mutex_);
      batch.swap(queue_);
    }
    if (batch.empty()) return;
    for (auto& queued : batch) queued.task();
  }
}

void EventLoop::drop_queued(uint64_t owner) {
  const std::lock_guard lock(mutex_);
  std::erase_if(queue_, [owner](const Queued& q) { return q.owner == owner; });
}

void EventLoop::drain() {
  std::deque<Queued> batch;
  {
    const std::lock_guard lock(mutex_);
    batch.swap(queue_);
    drain_posted_ = false;
  }
  for (auto& queued : batch) queued.task();
}

void EventLoop::run() {
  io_.run();
}

void EventLoop::stop() {
  io_.stop();
}

}  // namespace hdp::host
