// One-shot and periodic timers on the main loop, for plugins (ext/timers.h) and for the host
// itself (deferred-response timeouts). Both modes keep the timers in one due-ordered queue.
// Real mode wakes the loop with a single asio::steady_timer set to the earliest due time, moved
// only when a timer due earlier arrives, and runs a timer that is already due from a handler
// posted to the loop: arming or cancelling a timer costs no system call (asio reprograms the
// kernel's timer every time its earliest deadline changes, which a timer per timer did for
// nearly every curl timeout). Virtual mode's queue only moves with advance().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "clock.hpp"

namespace hdp::host {

class VirtualClock;

class TimerService {
 public:
  using Callback = std::function<void(uint64_t timer_id)>;

  // Virtual mode when clock is a VirtualClock. Both must outlive the service.
  TimerService(boost::asio::io_context& io, Clock& clock);
  TimerService(const TimerService&) = delete;
  TimerService& operator=(const TimerService&) = delete;
  ~TimerService();

  // Arms a timer due delay_ms from now; period_ms == 0 is a one-shot. Returns an id that is never
  // 0 and never reused. A timer already due (delay 0 under the virtual clock) fires on the next
  // loop turn without moving time. [main-thread]
  uint64_t arm(uint64_t owner, uint64_t delay_ms, uint64_t period_ms, Callback callback);

  // True when the timer was armed; its callback will not run afterwards. False for an unknown,
  // cancelled or fired one-shot id. Allowed from inside any timer callback. [main-thread]
  bool cancel(uint64_t timer_id);
  // The same, only for a timer armed by owner.
  bool cancel(uint64_t owner, uint64_t timer_id);

  void cancel_owner(uint64_t owner);
  void cancel_all();

  size_t armed_count() const { return timers_.size(); }
  size_t armed_count(uint64_t owner) const;
  bool is_virtual() const { return virtual_clock_ != nullptr; }

  // Virtual mode only: moves time forward by ms, firing every timer due on the way in due order
  // (ties in arming order), each at its own virtual time; periodic timers fire once per period
  // passed. After each timer, `settle` (set_settle) runs at that same instant: the host runs there
  // the main-thread callbacks the timer's work asked for, so that work done on the loop finishes
  // at the virtual time it was due. Returns the new monotonic time in microseconds. [main-thread]
  int64_t advance(uint64_t ms);
  void set_settle(std::function<void()> settle) { settle_ = std::move(settle); }

 private:
  struct Timer {
    uint64_t id = 0;
    uint64_t owner = 0;
    int64_t due_us = 0;
    int64_t period_us = 0;
    uint64_t seq = 0;
    Callback callback;
  };
  using QueueKey = std::tuple<int64_t, uint64_t, uint64_t>;  // due_us, seq, id

  void schedule(Timer& timer);
  void unschedule(Timer& timer);
  void fire(uint64_t timer_id);
  void fire_due_now();
  void post_fire_due();
  void arm_wake();   // real mode: the wake-up timer no later than the earliest future timer
  void drop_wake();  // no wake-up pending: nothing keeps the loop running for it

  boost::asio::io_context& io_;
  Clock& clock_;
  std::function<void()> settle_;
  VirtualClock* virtual_clock_;
  std::unordered_map<uint64_t, Timer> timers_;
  std::set<QueueKey> queue_;
  boost::asio::steady_timer wake_;     // real mode
  std::optional<int64_t> wake_at_us_;  // real mode: when wake_ is set to go off, if it is
  uint64_t next_id_ = 1;
  uint64_t next_seq_ = 1;
  bool fire_due_posted_ = false;
  bool advancing_ = false;
  // Handlers posted to io_ check this before touching the service.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hdp::host
