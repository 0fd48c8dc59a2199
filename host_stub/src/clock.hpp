// Where the host and its plugins take time from: the real clocks, or a virtual clock that only
// moves when a test moves it (so a 4-hour schedule runs in milliseconds).
#pragma once

#include <atomic>
#include <cstdint>

namespace hdp::host {

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since the Unix epoch. [thread-safe]
  virtual int64_t wall_us() const = 0;
  // Microseconds from an arbitrary origin; timers are measured on it. [thread-safe]
  virtual int64_t monotonic_us() const = 0;
  virtual bool is_virtual() const = 0;
};

class RealClock final : public Clock {
 public:
  int64_t wall_us() const override;
  // std::chrono::steady_clock, the clock of asio::steady_timer.
  int64_t monotonic_us() const override;
  bool is_virtual() const override { return false; }
};

// Monotonic time starts at 0; wall time is wall_start_us + monotonic time. Only the timer
// service moves it (TimerService::advance), so timers fire each at its own virtual time.
class VirtualClock final : public Clock {
 public:
  explicit VirtualClock(int64_t wall_start_us) : wall_start_us_(wall_start_us) {}

  int64_t wall_us() const override { return wall_start_us_ + now_.load(); }
  int64_t monotonic_us() const override { return now_.load(); }
  bool is_virtual() const override { return true; }

  // Moves time forward to monotonic_us; never backwards. [main-thread]
  void set_monotonic_us(int64_t monotonic_us);

 private:
  const int64_t wall_start_us_;
  std::atomic<int64_t> now_{0};
};

}  // namespace hdp::host
