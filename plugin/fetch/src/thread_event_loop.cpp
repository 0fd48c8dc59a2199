#include "wavoip/fetch/thread_event_loop.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <system_error>

namespace wavoip {

namespace {

// The wake-up eventfd's epoll data: serial 0, which no watch has.
constexpr uint64_t kWakeData = 0;

uint64_t epoll_data(int fd, uint32_t serial) {
  return (static_cast<uint64_t>(serial) << 32) | static_cast<uint32_t>(fd);
}

uint32_t to_epoll(uint32_t flags) {
  uint32_t events = 0;
  if (flags & EventLoop::kRead) events |= EPOLLIN;
  if (flags & EventLoop::kWrite) events |= EPOLLOUT;
  return events;  // EPOLLERR and EPOLLHUP are always reported
}

uint32_t from_epoll(uint32_t events) {
  uint32_t flags = 0;
  if (events & EPOLLIN) flags |= EventLoop::kRead;
  if (events & EPOLLOUT) flags |= EventLoop::kWrite;
  // A hung-up socket is readable too: reading is how its owner learns the end.
  if (events & EPOLLHUP) flags |= EventLoop::kRead | EventLoop::kError;
  if (events & EPOLLERR) flags |= EventLoop::kError;
  return flags;
}

}  // namespace

ThreadEventLoop::ThreadEventLoop() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    const int error = errno;
    close(epoll_fd_);
    throw std::system_error(error, std::generic_category(), "eventfd");
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kWakeData;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event) != 0) {
    const int error = errno;
    close(wake_fd_);
    close(epoll_fd_);
    throw std::system_error(error, std::generic_category(), "epoll_ctl");
  }
}

ThreadEventLoop::~ThreadEventLoop() {
  close(wake_fd_);
  close(epoll_fd_);
}

bool ThreadEventLoop::control(int op, int fd, const Watch& watch) {
  epoll_event event{};
  event.events = to_epoll(watch.flags);
  event.data.u64 = epoll_data(fd, watch.serial);
  return epoll_ctl(epoll_fd_, op, fd, &event) == 0;
}

bool ThreadEventLoop::watch_fd(int fd, uint32_t flags, FdCallback cb) {
  if (fd < 0 || !cb) return false;
  Watch watch{flags, next_serial_++, std::make_shared<FdCallback>(std::move(cb))};
  if (next_serial_ == 0) next_serial_ = 1;
  if (!set_interest(fd, watch)) return false;
  watches_[fd] = std::move(watch);
  return true;
}

bool ThreadEventLoop::modify_fd(int fd, uint32_t flags) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return false;
  Watch changed = it->second;
  changed.flags = flags;
  if (!set_interest(fd, changed)) return false;
  it->second.flags = flags;
  return true;
}

bool ThreadEventLoop::set_interest(int fd, const Watch& watch) {
  // Whether the kernel has the fd in the set is not ours to know: a number we watch may have been
  // closed and opened again since (the kernel then dropped it). Modify, else add.
  if (control(EPOLL_CTL_MOD, fd, watch)) return true;
  return errno == ENOENT && control(EPOLL_CTL_ADD, fd, watch);
}

void ThreadEventLoop::unwatch_fd(int fd) {
  if (watches_.erase(fd) == 0) return;
  // Fails harmlessly when the fd was closed already (the kernel dropped it then).
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

uint64_t ThreadEventLoop::start_timer(uint64_t delay_ms, std::function<void()> cb) {
  const uint64_t id = next_timer_id_++;
  const int64_t due = now_ms() + static_cast<int64_t>(std::min<uint64_t>(delay_ms, INT64_MAX / 4));
  timers_.emplace(id, Timer{due, std::move(cb)});
  due_order_.emplace(due, id);
  return id;
}

void ThreadEventLoop::cancel_timer(uint64_t id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  due_order_.erase({it->second.due, id});
  timers_.erase(it);
}

int64_t ThreadEventLoop::now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

void ThreadEventLoop::post(std::function<void()> job) {
  bool signal = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    posted_.push_back(std::move(job));
    signal = !wake_pending_;
    wake_pending_ = true;
  }
  if (signal) wake();
}

void ThreadEventLoop::quit() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    quit_ = true;
  }
  wake();
}

void ThreadEventLoop::wake() {
  const uint64_t one = 1;
  // A full counter (never, at one write per wake-up) would still leave the fd readable.
  [[maybe_unused]] const ssize_t n = write(wake_fd_, &one, sizeof one);
}

int ThreadEventLoop::wait_ms() {
  if (due_order_.empty()) return -1;
  const int64_t left = due_order_.begin()->first - now_ms();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, INT_MAX));
}

void ThreadEventLoop::run() {
  std::array<epoll_event, 64> events{};
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (quit_) return;
    }
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), wait_ms());
    for (int i = 0; i < n; ++i) {
      if (events[static_cast<size_t>(i)].data.u64 == kWakeData) {
        run_posted();
      } else {
        dispatch(events[static_cast<size_t>(i)].data.u64, events[static_cast<size_t>(i)].events);
      }
    }
    // n < 0 is EINTR (a signal): the timers and the quit flag are looked at again.
    run_due_timers();
  }
}

void ThreadEventLoop::run_posted() {
  uint64_t count = 0;
  [[maybe_unused]] const ssize_t n = read(wake_fd_, &count, sizeof count);
  std::vector<std::function<void()>> jobs;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs.swap(posted_);
    wake_pending_ = false;
  }
  for (std::function<void()>& job : jobs) job();
}

void ThreadEventLoop::dispatch(uint64_t data, uint32_t events) {
  const int fd = static_cast<int>(static_cast<uint32_t>(data));
  const auto serial = static_cast<uint32_t>(data >> 32);
  auto it = watches_.find(fd);
  // Unwatched, or watched again under a new serial, since epoll_wait returned this event.
  if (it == watches_.end() || it->second.serial != serial) return;
  const uint32_t flags = from_epoll(events) & (it->second.flags | kError);
  if (flags == 0) return;
  std::shared_ptr<FdCallback> callback = it->second.callback;
  (*callback)(fd, flags);
}

void ThreadEventLoop::run_due_timers() {
  // What is due by the time the pass began. A timer that re-arms itself with no delay may run
  // again in this pass until the clock moves on a millisecond; fds and posted jobs come next.
  const int64_t now = now_ms();
  while (!due_order_.empty() && due_order_.begin()->first <= now) {
    const uint64_t id = due_order_.begin()->second;
    due_order_.erase(due_order_.begin());
    auto timer = timers_.find(id);
    std::function<void()> callback = std::move(timer->second.callback);
    timers_.erase(timer);
    // May cancel or start timers: the loop looks at the front again.
    callback();
  }
}

}  // namespace wavoip
