// TimerService under the virtual clock (and once under the real one): due order, exact virtual
// times, periodic timers, cancel semantics. Under the real clock: the single wake-up timer moves
// to a timer due earlier, survives the cancel of the one it was set for, and keeps due order.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "clock.hpp"
#include "timers.hpp"

namespace hdp::host {
namespace {

struct Fired {
  uint64_t id;
  int64_t at_us;
  bool operator==(const Fired&) const = default;
};

class VirtualTimersTest : public ::testing::Test {
 protected:
  boost::asio::io_context io;
  VirtualClock clock{1'700'000'000'000'000};
  TimerService timers{io, clock};
  std::vector<Fired> fired;

  TimerService::Callback record() {
    return [this](uint64_t id) { fired.push_back({id, clock.monotonic_us()}); };
  }
};

TEST_F(VirtualTimersTest, TimeStandsStillUntilAdvanced) {
  timers.arm(1, 10, 0, record());
  io.run_for(std::chrono::milliseconds(30));
  EXPECT_TRUE(fired.empty());
  EXPECT_EQ(clock.monotonic_us(), 0);
}

TEST_F(VirtualTimersTest, AdvanceFiresInDueOrderEachAtItsOwnTime) {
  const uint64_t late = timers.arm(1, 300, 0, record());
  const uint64_t early = timers.arm(1, 100, 0, record());
  const uint64_t middle = timers.arm(1, 200, 0, record());
  EXPECT_EQ(timers.advance(250), 250'000);
  EXPECT_EQ(fired, (std::vector<Fired>{{early, 100'000}, {middle, 200'000}}));
  timers.advance(50);
  EXPECT_EQ(fired.back(), (Fired{late, 300'000}));
  EXPECT_EQ(clock.monotonic_us(), 300'000);
  EXPECT_EQ(clock.wall_us(), 1'700'000'000'000'000 + 300'000);
}

TEST_F(VirtualTimersTest, TiesFireInArmingOrder) {
  const uint64_t a = timers.arm(1, 100, 0, record());
  const uint64_t b = timers.arm(1, 100, 0, record());
  const uint64_t c = timers.arm(1, 100, 0, record());
  timers.advance(100);
  ASSERT_EQ(fired.size(), 3U);
  EXPECT_EQ(fired[0].id, a);
  EXPECT_EQ(fired[1].id, b);
  EXPECT_EQ(fired[2].id, c);
}

TEST_F(VirtualTimersTest, PeriodicTimerFiresOncePerPeriodPassed) {
  const uint64_t periodic = timers.arm(1, 50, 100, record());
  const uint64_t once = timers.arm(1, 120, 0, record());
  timers.advance(400);
  // In due order:
  EXPECT_EQ(fired,
            (std::vector<Fired>{
                {periodic, 50'000}, {once, 120'000}, {periodic, 150'000}, {periodic, 250'000}, {periodic, 350'000}}));
  EXPECT_EQ(timers.armed_count(), 1U);
}

TEST_F(VirtualTimersTest, TimersArmedInsideACallbackFireInTheSameAdvanceWhenDue) {
  uint64_t inner = 0;
  const uint64_t outer = timers.arm(1, 100, 0, [&](uint64_t id) {
    fired.push_back({id, clock.monotonic_us()});
    inner = timers.arm(1, 50, 0, record());
  });
  timers.advance(1000);
  EXPECT_EQ(fired, (std::vector<Fired>{{outer, 100'000}, {inner, 150'000}}));
}

TEST_F(VirtualTimersTest, CancelIsIdempotentAndStaleIdsAreNotFound) {
  const uint64_t id = timers.arm(1, 100, 0, record());
  EXPECT_TRUE(timers.cancel(id));
  EXPECT_FALSE(timers.cancel(id));    // already cancelled
  EXPECT_FALSE(timers.cancel(9999));  // never armed
  timers.advance(1000);
  EXPECT_TRUE(fired.empty());

  const uint64_t one_shot = timers.arm(1, 10, 0, record());
  timers.advance(10);
  EXPECT_EQ(fired.size(), 1U);
  EXPECT_FALSE(timers.cancel(one_shot));  // fired: stale
}

TEST_F(VirtualTimersTest, IdsAreNeverZeroNorReused) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 5; ++i) {
    const uint64_t id = timers.arm(1, 1, 0, record());
    EXPECT_NE(id, 0U);
    ids.push_back(id);
    timers.cancel(id);
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end());
}

TEST_F(VirtualTimersTest, CancelFromInsideACallbackStopsThatAndOtherTimers) {
  uint64_t other = 0;
  uint64_t periodic = 0;
  periodic = timers.arm(1, 100, 100, [&](uint64_t id) {
    fired.push_back({id, clock.monotonic_us()});
    if (fired.size() == 2) {
      EXPECT_TRUE(timers.cancel(periodic));  // itself
      EXPECT_TRUE(timers.cancel(other));     // a timer due later
    }
  });
  other = timers.arm(1, 350, 0, record());
  timers.advance(1000);
  EXPECT_EQ(fired, (std::vector<Fired>{{periodic, 100'000}, {periodic, 200'000}}));
  EXPECT_EQ(timers.armed_count(), 0U);
}

TEST_F(VirtualTimersTest, ZeroDelayFiresOnTheNextLoopTurnWithoutMovingTime) {
  timers.advance(70);
  const uint64_t id = timers.arm(1, 0, 0, record());
  EXPECT_TRUE(fired.empty());  // never inside arm()
  io.poll();
  EXPECT_EQ(fired, (std::vector<Fired>{{id, 70'000}}));
  EXPECT_EQ(clock.monotonic_us(), 70'000);
}

TEST_F(VirtualTimersTest, ASelfRearmingZeroDelayTimerRunsOncePerTurn) {
  int runs = 0;
  std::function<void(uint64_t)> again = [&](uint64_t) {
    ++runs;
    timers.arm(1, 0, 0, again);
  };
  timers.arm(1, 0, 0, again);
  io.poll_one();
  EXPECT_EQ(runs, 1);
  io.poll_one();
  EXPECT_EQ(runs, 2);
  timers.cancel_all();
}

TEST_F(VirtualTimersTest, CancelOwnerOnlyTouchesThatOwner) {
  timers.arm(1, 10, 0, record());
  const uint64_t kept = timers.arm(2, 10, 0, record());
  timers.cancel_owner(1);
  timers.advance(10);
  EXPECT_EQ(fired, (std::vector<Fired>{{kept, 10'000}}));
  EXPECT_FALSE(timers.cancel(/*owner=*/1, kept));  // not owner 1's
}

TEST(RealTimers, OneShotAndPeriodicFireOnTheSteadyClock) {
  boost::asio::io_context io;
  RealClock clock;
  TimerService timers(io, clock);
  int once = 0;
  int periodic = 0;
  const auto start = std::chrono::steady_clock::now();
  timers.arm(1, 20, 0, [&](uint64_t) { ++once; });
  uint64_t id = 0;
  id = timers.arm(1, 5, 5, [&](uint64_t) {
    if (++periodic == 3) timers.cancel(id);
  });
  io.run_for(std::chrono::milliseconds(500));  // returns early once nothing is armed
  EXPECT_EQ(once, 1);
  EXPECT_EQ(periodic, 3);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(20));
}

TEST(RealTimers, ATimerDueBeforeTheWakeUpFiresWithoutWaitingForIt) {
  boost::asio::io_context io;
  RealClock clock;
  TimerService timers(io, clock);
  std::vector<uint64_t> order;
  const int64_t start_us = clock.monotonic_us();
  int64_t early_fired_after_us = 0;
  // The wake-up is set for the late timer first; the early one must move it, not wait for it.
  const uint64_t late = timers.arm(1, 1000, 0, [&](uint64_t id) { order.push_back(id); });
  const uint64_t early = timers.arm(1, 5, 0, [&](uint64_t id) {
    order.push_back(id);
    early_fired_after_us = clock.monotonic_us() - start_us;
  });
  io.run_for(std::chrono::milliseconds(5000));  // returns once both fired
  EXPECT_EQ(order, (std::vector<uint64_t>{early, late}));
  EXPECT_GE(early_fired_after_us, 5000);
  EXPECT_LT(early_fired_after_us, 1000000);
}

TEST(RealTimers, CancellingTheEarliestTimerLeavesTheOthersToFire) {
  boost::asio::io_context io;
  RealClock clock;
  TimerService timers(io, clock);
  std::vector<uint64_t> order;
  const uint64_t first = timers.arm(1, 5, 0, [&](uint64_t id) { order.push_back(id); });
  const uint64_t second = timers.arm(1, 15, 0, [&](uint64_t id) { order.push_back(id); });
  EXPECT_TRUE(timers.cancel(first));
  io.run_for(std::chrono::milliseconds(2000));
  EXPECT_EQ(order, (std::vector<uint64_t>{second}));
  EXPECT_EQ(timers.armed_count(), 0u);
}

TEST(RealTimers, TheLoopRunsOutOfWorkOnceEveryTimerIsCancelled) {
  // The host's shutdown waits for its loop to run out of work: a wake-up left armed for a timer
  // hours away would hold it.
  boost::asio::io_context io;
  RealClock clock;
  TimerService timers(io, clock);
  const uint64_t one = timers.arm(1, 3'600'000, 0, [](uint64_t) {});
  timers.arm(2, 7'200'000, 0, [](uint64_t) {});
  timers.cancel(one);
  timers.cancel_all();
  io.poll();  // runs what is ready (the aborted wait); stopped() once no work is left
  EXPECT_TRUE(io.stopped());
  boost::asio::io_context io2;
  TimerService timers2(io2, clock);
  timers2.cancel(timers2.arm(1, 3'600'000, 0, [](uint64_t) {}));
  io2.poll();
  EXPECT_TRUE(io2.stopped());
}

TEST(RealTimers, TimersFireInDueOrderTiesInArmingOrder) {
  boost::asio::io_context io;
  RealClock clock;
  TimerService timers(io, clock);
  std::vector<uint64_t> order;
  auto record = [&](uint64_t id) { order.push_back(id); };
  const uint64_t d30 = timers.arm(1, 30, 0, record);
  const uint64_t d0a = timers.arm(1, 0, 0, record);
  const uint64_t d10 = timers.arm(1, 10, 0, record);
  const uint64_t d0b = timers.arm(1, 0, 0, record);
  const uint64_t d20 = timers.arm(1, 20, 0, record);
  io.run_for(std::chrono::milliseconds(2000));
  EXPECT_EQ(order, (std::vector<uint64_t>{d0a, d0b, d10, d20, d30}));
}

TEST(RealTimers, AZeroDelayTimerRunsOnTheNextTurnNotInsideArm) {
  boost::asio::io_context io;
  RealClock clock;
  TimerService timers(io, clock);
  int fired = 0;
  timers.arm(1, 0, 0, [&](uint64_t) { ++fired; });
  EXPECT_EQ(fired, 0);
  io.run_for(std::chrono::milliseconds(2000));
  EXPECT_EQ(fired, 1);
}

}  // namespace
}  // namespace hdp::host
