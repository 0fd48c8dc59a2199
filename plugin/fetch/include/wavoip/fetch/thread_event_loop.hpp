// A wavoip::EventLoop of the plugin's own, for a thread of the plugin's own: epoll for the fds,
// an ordered map for the timers, an eventfd for the jobs other threads post. The downloads run
// on it (FetchThread), so libcurl's work stays off the host's loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "wavoip/fetch/event_loop.hpp"

namespace wavoip {

// The EventLoop members, and every callback, belong to the thread inside run() (or to whoever
// holds the loop before run() starts). post() and quit() may be called from any thread.
// Keeps the EventLoop contract: callbacks never run from inside a member, a cancelled timer or
// unwatched fd is never called back, a running callback stays alive until it returns.
// A timer of delay 0 runs on the next turn, or in the same pass of due timers when one of them
// started it within the same millisecond.
class ThreadEventLoop final : public EventLoop {
 public:
  // Throws std::system_error when the kernel gives no epoll or eventfd.
  ThreadEventLoop();
  ~ThreadEventLoop() override;
  ThreadEventLoop(const ThreadEventLoop&) = delete;
  ThreadEventLoop& operator=(const ThreadEventLoop&) = delete;

  bool watch_fd(int fd, uint32_t flags, FdCallback cb) override;
  bool modify_fd(int fd, uint32_t flags) override;
  void unwatch_fd(int fd) override;
  uint64_t start_timer(uint64_t delay_ms, std::function<void()> cb) override;
  void cancel_timer(uint64_t id) override;
  // The steady clock: this loop never runs on a host's virtual one.
  int64_t now_ms() override;

  // Runs fds, timers and posted jobs until quit(). Jobs posted before run() run in it.
  void run();
  // Queues a job for the loop's thread, after the jobs posted before it. [thread-safe]
  void post(std::function<void()> job);
  // Makes run() return after the callback it is running, if any. [thread-safe]
  void quit();

 private:
  struct Watch {
    uint32_t flags = 0;
    uint32_t serial = 0;  // tells a stale epoll event of an fd number reused since apart
    std::shared_ptr<FdCallback> callback;
  };
  struct Timer {
    int64_t due = 0;
    std::function<void()> callback;
  };

  bool control(int op, int fd, const Watch& watch);
  bool set_interest(int fd, const Watch& watch);  // modify the fd's interest, or add it
  void wake();
  void run_posted();
  void dispatch(uint64_t data, uint32_t events);
  void run_due_timers();
  int wait_ms();

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  uint32_t next_serial_ = 1;
  std::unordered_map<int, Watch> watches_;
  uint64_t next_timer_id_ = 1;
  std::unordered_map<uint64_t, Timer> timers_;
  std::set<std::pair<int64_t, uint64_t>> due_order_;  // (due, id): fires in due order, ties by id

  std::mutex mutex_;
  std::vector<std::function<void()>> posted_;  // guarded by mutex_
  bool wake_pending_ = false;                  // guarded by mutex_
  bool quit_ = false;                          // guarded by mutex_
};

}  // namespace wavoip
