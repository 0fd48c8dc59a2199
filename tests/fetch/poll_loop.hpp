// A small poll(2)-based wavoip::EventLoop for tests: single thread, level-triggered fds,
// one-shot timers, a real monotonic clock. Header-only so any test target can reuse it.
#pragma once

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "wavoip/fetch/event_loop.hpp"

namespace wavoip::test {

class PollLoop final : public EventLoop {
 public:
  bool watch_fd(int fd, uint32_t flags, FdCallback cb) override {
    if (fd < 0 || !cb) return false;
    fds_[fd] = Watch{flags, std::make_shared<FdCallback>(std::move(cb)), ++generation_};
    return true;
  }

  bool modify_fd(int fd, uint32_t flags) override {
    auto it = fds_.find(fd);
    if (it == fds_.end()) return false;
    it->second.flags = flags;
    return true;
  }

  void unwatch_fd(int fd) override { fds_.erase(fd); }

  uint64_t start_timer(uint64_t delay_ms, std::function<void()> cb) override {
    const uint64_t id = next_timer_id_++;
    const int64_t due = now_ms() + static_cast<int64_t>(delay_ms);
    timers_.emplace(id, Timer{due, std::make_shared<std::function<void()>>(std::move(cb))});
    queue_.emplace(due, id);
    return id;
  }

  void cancel_timer(uint64_t id) override {
    auto it = timers_.find(id);
    if (it == timers_.end()) return;
    queue_.erase({it->second.due, id});
    timers_.erase(it);
  }

  int64_t now_ms() override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
  }

  // One iteration: waits up to max_wait_ms (less if a timer is due sooner), then dispatches
  // ready fds and the timers due at that point. Returns the number of callbacks run.
  // Not reentrant: callbacks must not run the loop themselves.
  int run_once(int64_t max_wait_ms) {
    int64_t wait = max_wait_ms;
    if (!queue_.empty()) wait = std::max<int64_t>(0, std::min(wait, queue_.begin()->first - now_ms()));

    // Member buffers, reused: a busy iteration allocates nothing (keeps RSS tests honest).
    std::vector<pollfd>& polled = polled_;
    std::vector<uint64_t>& generations = generations_;
    polled.clear();
    generations.clear();
    for (const auto& [fd, watch] : fds_) {
      short events = 0;
      if (watch.flags & kRead) events |= POLLIN;
      if (watch.flags & kWrite) events |= POLLOUT;
      polled.push_back(pollfd{fd, events, 0});
      generations.push_back(watch.generation);
    }
    const int ready = ::poll(polled.data(), polled.size(), static_cast<int>(wait));

    int callbacks = 0;
    for (size_t i = 0; ready > 0 && i < polled.size(); ++i) {
      const short revents = polled[i].revents;
      if (revents == 0) continue;
      // Skip fds unwatched or re-registered by an earlier callback of this iteration.
      auto it = fds_.find(polled[i].fd);
      if (it == fds_.end() || it->second.generation != generations[i]) continue;
      uint32_t flags = 0;
      if (revents & (POLLIN | POLLPRI)) flags |= kRead;
      if (revents & POLLOUT) flags |= kWrite;
      if (revents & (POLLERR | POLLHUP | POLLNVAL)) flags |= kError;
      if ((revents & POLLHUP) && (it->second.flags & kRead)) flags |= kRead;  // let EOF be read
      flags &= it->second.flags | kError;                    // interest may have shrunk since poll() returned
      const std::shared_ptr<FdCallback> cb = it->second.cb;  // survives unwatch
      if (revents & POLLNVAL) fds_.erase(it);                // closed without unwatch: don't spin on it
      (*cb)(polled[i].fd, flags);
      ++callbacks;
    }

    // Timers due now; ones started by these callbacks wait for the next iteration.
    const int64_t now = now_ms();
    const uint64_t last_id = next_timer_id_ - 1;
    std::vector<uint64_t>& due = due_;
    due.clear();
    for (const auto& [when, id] : queue_) {
      if (when > now) break;
      if (id <= last_id) due.push_back(id);
    }
    for (uint64_t id : due) {
      auto it = timers_.find(id);
      if (it == timers_.end()) continue;  // cancelled by an earlier callback
      const std::shared_ptr<std::function<void()>> cb = it->second.cb;
      queue_.erase({it->second.due, id});
      timers_.erase(it);
      (*cb)();
      ++callbacks;
    }
    return callbacks;
  }

  // Runs the loop until done() is true or timeout passes; returns done().
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const int64_t deadline = now_ms() + timeout.count();
    while (!done()) {
      const int64_t left = deadline - now_ms();
      if (left <= 0) return done();
      run_once(std::min<int64_t>(left, 50));
    }
    return true;
  }

  // Runs the loop for a while regardless of state (to show that nothing more happens).
  void run_for(std::chrono::milliseconds duration) {
    run_until([] { return false; }, duration);
  }

  size_t watched_fds() const { return fds_.size(); }
  size_t pending_timers() const { return timers_.size(); }
  bool is_watched(int fd) const { return fds_.count(fd) != 0; }

 private:
  struct Watch {
    uint32_t flags;
    std::shared_ptr<FdCallback> cb;
    uint64_t generation;
  };
  struct Timer {
    int64_t due;
    std::shared_ptr<std::function<void()>> cb;
  };

  std::map<int, Watch> fds_;
  std::map<uint64_t, Timer> timers_;
  std::set<std::pair<int64_t, uint64_t>> queue_;  // (due, id)
  uint64_t next_timer_id_ = 1;
  uint64_t generation_ = 0;
  std::vector<pollfd> polled_;
  std::vector<uint64_t> generations_;
  std::vector<uint64_t> due_;
};

}  // namespace wavoip::test
