// The host's main loop as the fetcher sees it: level-triggered fd watches and one-shot timers.
// The plugin has no thread of its own; everything here runs on the host's main loop thread.
#pragma once

#include <cstdint>
#include <functional>

namespace wavoip {

// Implemented by whoever owns the loop (the plugin's adapter over the host C ABI, or a test loop).
// Every member is called on the loop thread, and every callback is invoked on it.
//
// Contract a RecordingFetcher relies on:
//  - Callbacks are never invoked from inside watch_fd/modify_fd/unwatch_fd/start_timer/
//    cancel_timer; only from the loop itself.
//  - A callback may call any member, including unwatch_fd/cancel_timer on its own fd/timer;
//    the loop keeps the running callback object alive until it returns.
//  - After unwatch_fd(fd) or cancel_timer(id) returns, that callback is never invoked again,
//    even if the loop had already polled that fd (or found that timer due) in this iteration.
class EventLoop {
 public:
  virtual ~EventLoop();

  enum : uint32_t { kRead = 1, kWrite = 2, kError = 4 };

  // Called with the fd and the conditions that hold (a subset of kRead | kWrite | kError).
  using FdCallback = std::function<void(int fd, uint32_t flags)>;

  // Watches fd for `flags` (level-triggered); replaces the watch and callback if fd is
  // already watched. Returns false if the loop cannot watch it.
  virtual bool watch_fd(int fd, uint32_t flags, FdCallback cb) = 0;

  // Changes the interest of a watched fd. Returns false if fd is not watched.
  virtual bool modify_fd(int fd, uint32_t flags) = 0;

  // Stops watching fd; does nothing if it is not watched. Does not close fd.
  virtual void unwatch_fd(int fd) = 0;

  // Calls cb once after delay_ms (0 = on the next loop iteration, never synchronously).
  // Returns the timer id, never 0.
  virtual uint64_t start_timer(uint64_t delay_ms, std::function<void()> cb) = 0;

  // Cancels a timer; idempotent (unknown, fired or already cancelled ids are ignored).
  virtual void cancel_timer(uint64_t id) = 0;

  // Monotonic milliseconds from an arbitrary origin (the host's clock; may be virtual).
  virtual int64_t now_ms() = 0;
};

}  // namespace wavoip
