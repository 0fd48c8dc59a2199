#include "host_event_loop.hpp"

#include <utility>

namespace wavoip {

HostEventLoop::HostEventLoop(const HostApi& host) : host_(host) {}

HostEventLoop::~HostEventLoop() {
  for (const auto& [id, cb] : timers_) host_.timers()->cancel_timer(host_.raw(), id);
  for (const auto& [fd, cb] : fds_) host_.fds()->unregister_fd(host_.raw(), fd);
}

void HostEventLoop::forget_all() {
  timers_.clear();
  fds_.clear();
}

uint32_t HostEventLoop::to_host_flags(uint32_t flags) {
  uint32_t out = 0;
  if ((flags & kRead) != 0) out |= HDP_FD_READ;
  if ((flags & kWrite) != 0) out |= HDP_FD_WRITE;
  if ((flags & kError) != 0) out |= HDP_FD_ERROR;
  return out;
}

uint32_t HostEventLoop::from_host_flags(uint32_t flags) {
  uint32_t out = 0;
  if ((flags & HDP_FD_READ) != 0) out |= kRead;
  if ((flags & HDP_FD_WRITE) != 0) out |= kWrite;
  if ((flags & HDP_FD_ERROR) != 0) out |= kError;
  return out;
}

bool HostEventLoop::watch_fd(int fd, uint32_t flags, FdCallback cb) {
  auto it = fds_.find(fd);
  if (it != fds_.end()) {
    *it->second = std::move(cb);
    return modify_fd(fd, flags);
  }
  auto holder = std::make_shared<FdCallback>(std::move(cb));
  // user_data is `this`: the callback is found by fd, so a replaced callback takes effect.
  if (host_.fds()->register_fd(host_.raw(), fd, to_host_flags(flags), &HostEventLoop::on_fd, this) != HDP_OK) {
    return false;
  }
  fds_.emplace(fd, std::move(holder));
  return true;
}

bool HostEventLoop::modify_fd(int fd, uint32_t flags) {
  if (fds_.find(fd) == fds_.end()) return false;
  return host_.fds()->modify_fd(host_.raw(), fd, to_host_flags(flags)) == HDP_OK;
}

void HostEventLoop::unwatch_fd(int fd) {
  auto it = fds_.find(fd);
  if (it == fds_.end()) return;
  host_.fds()->unregister_fd(host_.raw(), fd);
  fds_.erase(it);
}

void HostEventLoop::on_fd(void* user_data, int fd, uint32_t flags) {
  auto* self = static_cast<HostEventLoop*>(user_data);
  auto it = self->fds_.find(fd);
  if (it == self->fds_.end()) return;
  std::shared_ptr<FdCallback> keep = it->second;
  without_exceptions(self->host_, "fd callback", [&] { (*keep)(fd, from_host_flags(flags)); });
}

uint64_t HostEventLoop::start_timer(uint64_t delay_ms, std::function<void()> cb) {
  uint64_t id = 0;
  if (host_.timers()->register_timer(host_.raw(), delay_ms, 0, &HostEventLoop::on_timer, this, &id) != HDP_OK) {
    return 0;
  }
  timers_.emplace(id, std::move(cb));
  return id;
}

void HostEventLoop::cancel_timer(uint64_t id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  host_.timers()->cancel_timer(host_.raw(), id);
  timers_.erase(it);
}

void HostEventLoop::on_timer(void* user_data, uint64_t timer_id) {
  auto* self = static_cast<HostEventLoop*>(user_data);
  auto it = self->timers_.find(timer_id);
  if (it == self->timers_.end()) return;
  // One-shot: the id is stale from here on, so drop it before running the callback.
  std::function<void()> cb = std::move(it->second);
  self->timers_.erase(it);
  without_exceptions(self->host_, "timer callback", cb);
}

int64_t HostEventLoop::now_ms() {
  return host_.monotonic_ms();
}

}  // namespace wavoip
