// The host's one event loop: a single io_context run on the main thread, plus the thread-safe
// way back onto it (request_main_thread_callback).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>

namespace hdp::host {

class EventLoop {
 public:
  using Task = std::function<void()>;

  // The constructing thread is the main thread.
  EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  boost::asio::io_context& io() { return io_; }
  bool in_main_thread() const { return std::this_thread::get_id() == main_thread_; }

  // Queues task to run soon on the main thread, tagged with its owner (a plugin). Returns false
  // once stopping has begun; the task then never runs. [thread-safe]
  bool post_from_any_thread(uint64_t owner, Task task);

  // Refuses new tasks from now on. [main-thread]
  void begin_stopping();
  bool stopping() const;

  // Runs every accepted task now, in order (used at shutdown so an accepted callback still runs
  // before its plugin stops). [main-thread]
  void run_queued_now();

  // Forgets the queued tasks of one owner (a plugin refused during start). [main-thread]
  void drop_queued(uint64_t owner);

  // Runs the loop until it has no work or stop() is called. [main-thread]
  void run();
  void stop();

 private:
  struct Queued {
    uint64_t owner;
    Task task;
  };

  void drain();

  boost::asio::io_context io_;
  const std::thread::id main_thread_;
  mutable std::mutex mutex_;
  std::deque<Queued> queue_;
  bool drain_posted_ = false;
  bool stopping_ = false;
};

}  // namespace hdp::host
