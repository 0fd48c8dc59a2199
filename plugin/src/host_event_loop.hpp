// wavoip::EventLoop on top of the host's timers and posix-fd extensions, so the fetcher and the
// poll schedule run on the host's main loop without a thread of their own.
#pragma once

#include "host_api.hpp"

#include <wavoip/fetch/event_loop.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

namespace wavoip {

class HostEventLoop final : public EventLoop {
 public:
  explicit HostEventLoop(const HostApi& host);
  ~HostEventLoop() override;
  HostEventLoop(const HostEventLoop&) = delete;
  HostEventLoop& operator=(const HostEventLoop&) = delete;

  bool watch_fd(int fd, uint32_t flags, FdCallback cb) override;
  bool modify_fd(int fd, uint32_t flags) override;
  void unwatch_fd(int fd) override;
  uint64_t start_timer(uint64_t delay_ms, std::function<void()> cb) override;
  void cancel_timer(uint64_t id) override;
  int64_t now_ms() override;

  // The host already dropped every timer and fd watch (it does so before plugin stop): forget
  // ours without calling back into the host.
  void forget_all();

  size_t armed_timers() const { return timers_.size(); }

 private:
  static void on_timer(void* user_data, uint64_t timer_id);
  static void on_fd(void* user_data, int fd, uint32_t flags);
  static uint32_t to_host_flags(uint32_t flags);
  static uint32_t from_host_flags(uint32_t flags);

  const HostApi& host_;
  std::unordered_map<uint64_t, std::function<void()>> timers_;
  // Callbacks are held by shared_ptr so a callback that unwatches its own fd stays alive
  // until it returns.
  std::unordered_map<int, std::shared_ptr<FdCallback>> fds_;
};

}  // namespace wavoip
