#include "timers.hpp"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>

namespace hdp::host {
namespace {

// Ten years: keeps microsecond and nanosecond arithmetic far from overflow.
constexpr uint64_t kMaxDelayMs = 10ULL * 366 * 24 * 3600 * 1000;

constexpr size_t kMaxFiresPerInstant = 10000;

int64_t to_us(uint64_t ms) {
  return static_cast<int64_t>(std::min(ms, kMaxDelayMs)) * 1000;
}

}  // namespace

TimerService::TimerService(boost::asio::io_context& io, Clock& clock)
    : io_(io), clock_(clock), virtual_clock_(dynamic_cast<VirtualClock*>(&clock)), wake_(io) {}

TimerService::~TimerService() {
  *alive_ = false;
  timers_.clear();
}

uint64_t TimerService::arm(uint64_t owner, uint64_t delay_ms, uint64_t period_ms, Callback callback) {
  const uint64_t id = next_id_++;
  Timer timer;
  timer.id = id;
  timer.owner = owner;
  timer.due_us = clock_.monotonic_us() + to_us(delay_ms);
  timer.period_us = period_ms == 0 ? 0 : std::max<int64_t>(to_us(period_ms), 1);
  timer.callback = std::move(callback);
  auto [it, inserted] = timers_.emplace(id, std::move(timer));
  schedule(it->second);
  return id;
}

bool TimerService::cancel(uint64_t timer_id) {
  const auto it = timers_.find(timer_id);
  if (it == timers_.end()) return false;
  // The wake-up stays where it is: if this was the earliest timer, the wake-up finds nothing
  // due and moves on to the next one (one wake-up, instead of a system call per cancel).
  unschedule(it->second);
  timers_.erase(it);
  // With nothing left armed the loop must be free to run out of work (the host's shutdown
  // waits for that).
  if (queue_.empty()) drop_wake();
  return true;
}

bool TimerService::cancel(uint64_t owner, uint64_t timer_id) {
  const auto it = timers_.find(timer_id);
  if (it == timers_.end() || it->second.owner != owner) return false;
  return cancel(timer_id);
}

void TimerService::cancel_owner(uint64_t owner) {
  std::vector<uint64_t> ids;
  for (const auto& [id, timer] : timers_) {
    if (timer.owner == owner) ids.push_back(id);
  }
  for (const uint64_t id : ids) cancel(id);
}

void TimerService::cancel_all() {
  queue_.clear();
  timers_.clear();
  drop_wake();
}

void TimerService::drop_wake() {
  if (!wake_at_us_) return;
  wake_at_us_.reset();
  wake_.cancel();
}

size_t TimerService::armed_count(uint64_t owner) const {
  return static_cast<size_t>(
      std::count_if(timers_.begin(), timers_.end(), [owner](const auto& kv) { return kv.second.owner == owner; }));
}

void TimerService::schedule(Timer& timer) {
  timer.seq = next_seq_++;
  queue_.emplace(timer.due_us, timer.seq, timer.id);
  if (timer.due_us <= clock_.monotonic_us()) {
    post_fire_due();
    return;
  }
  // arm_wake() moves the wake-up only when this timer is due before it.
  if (virtual_clock_ == nullptr) arm_wake();
}

void TimerService::unschedule(Timer& timer) {
  queue_.erase(QueueKey{timer.due_us, timer.seq, timer.id});
}

void TimerService::arm_wake() {
  if (queue_.empty()) return;
  const int64_t due_us = std::get<0>(*queue_.begin());
  if (wake_at_us_ && *wake_at_us_ <= due_us) return;
  wake_at_us_ = due_us;
  wake_.expires_at(std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::microseconds(due_us))));
  wake_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
    // A wait aborted because the wake-up moved earlier: the new wait is on its way.
    if (ec || alive.expired()) return;
    wake_at_us_.reset();
    fire_due_now();
  });
}

void TimerService::fire(uint64_t timer_id) {
  const auto it = timers_.find(timer_id);
  if (it == timers_.end()) return;
  Timer& timer = it->second;
  Callback callback;
  if (timer.period_us == 0) {
    // A one-shot id is stale once its callback starts.
    callback = std::move(timer.callback);
    unschedule(timer);
    timers_.erase(it);
  } else {
    callback = timer.callback;
    unschedule(timer);
    timer.due_us += timer.period_us;
    if (virtual_clock_ == nullptr) timer.due_us = std::max(timer.due_us, clock_.monotonic_us());
    schedule(timer);
  }
  callback(timer_id);
}

void TimerService::post_fire_due() {
  if (fire_due_posted_) return;
  fire_due_posted_ = true;
  boost::asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    fire_due_now();
  });
}

void TimerService::fire_due_now() {
  fire_due_posted_ = false;
  if (advancing_) return;  // advance() fires them itself
  // Only timers armed before this turn: a callback that re-arms itself with delay 0 runs once
  // per loop turn instead of spinning here.
  const uint64_t seq_limit = next_seq_;
  const int64_t now = clock_.monotonic_us();
  bool more = false;
  for (auto it = queue_.begin(); it != queue_.end() && std::get<0>(*it) <= now;) {
    const auto [due_us, seq, id] = *it;
    if (seq >= seq_limit) {
      more = true;
      ++it;
      continue;
    }
    queue_.erase(it);
    fire(id);
    it = queue_.begin();
  }
  if (more) post_fire_due();
  if (virtual_clock_ == nullptr) arm_wake();
}

int64_t TimerService::advance(uint64_t ms) {
  if (virtual_clock_ == nullptr || advancing_) return clock_.monotonic_us();
  advancing_ = true;
  const int64_t target = clock_.monotonic_us() + to_us(ms);
  int64_t instant = clock_.monotonic_us();
  size_t fired_at_instant = 0;
  while (!queue_.empty()) {
    const auto [due_us, seq, id] = *queue_.begin();
    if (due_us > target) break;
    if (due_us != instant) {
      instant = due_us;
      fired_at_instant = 0;
    }
    // A callback that keeps re-arming itself with delay 0 would never let time move on.
    if (++fired_at_instant > kMaxFiresPerInstant) {
      post_fire_due();
      break;
    }
    queue_.erase(queue_.begin());
    virtual_clock_->set_monotonic_us(due_us);
    fire(id);
    if (settle_) settle_();
  }
  virtual_clock_->set_monotonic_us(target);
  advancing_ = false;
  return clock_.monotonic_us();
}

}  // namespace hdp::host
