// The test loop keeps the EventLoop contract the fetcher relies on.
#include "poll_loop.hpp"

#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace wavoip::test {
namespace {

using namespace std::chrono_literals;

struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { EXPECT_EQ(::pipe(fds), 0); }
  ~Pipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  int read_end() const { return fds[0]; }
  int write_end() const { return fds[1]; }
};

TEST(PollLoopTest, TimersFireOnceInDueOrderAndNeverSynchronously) {
  PollLoop loop;
  std::vector<int> fired;
  const uint64_t late = loop.start_timer(30, [&] { fired.push_back(30); });
  const uint64_t soon = loop.start_timer(0, [&] { fired.push_back(0); });
  loop.start_timer(10, [&] { fired.push_back(10); });
  EXPECT_NE(late, 0u);
  EXPECT_NE(late, soon);
  EXPECT_TRUE(fired.empty());
  EXPECT_TRUE(loop.run_until([&] { return fired.size() == 3; }, 2s));
  EXPECT_EQ(fired, (std::vector<int>{0, 10, 30}));
  EXPECT_EQ(loop.pending_timers(), 0u);
  loop.cancel_timer(late);  // idempotent after firing
}

TEST(PollLoopTest, CancelledTimersDoNotFireEvenWhenAlreadyDue) {
  PollLoop loop;
  int fired = 0;
  uint64_t second = 0;
  loop.start_timer(0, [&] { loop.cancel_timer(second); });
  second = loop.start_timer(0, [&] { ++fired; });
  loop.run_for(50ms);
  EXPECT_EQ(fired, 0);
  loop.cancel_timer(second);
  loop.cancel_timer(999);
}

TEST(PollLoopTest, TimerStartedFromATimerRunsOnALaterIteration) {
  PollLoop loop;
  int fired = 0;
  loop.start_timer(0, [&] { loop.start_timer(0, [&] { ++fired; }); });
  loop.run_once(0);
  EXPECT_EQ(fired, 0);
  loop.run_once(10);
  EXPECT_EQ(fired, 1);
}

TEST(PollLoopTest, ReadableFdIsReportedUntilUnwatchedFromItsOwnCallback) {
  PollLoop loop;
  Pipe pipe;
  ASSERT_EQ(::write(pipe.write_end(), "x", 1), 1);
  auto token = std::make_shared<std::string>("alive");
  int calls = 0;
  ASSERT_TRUE(loop.watch_fd(pipe.read_end(), EventLoop::kRead, [&, token](int fd, uint32_t flags) {
    ++calls;
    EXPECT_EQ(fd, pipe.read_end());
    EXPECT_TRUE(flags & EventLoop::kRead);
    loop.unwatch_fd(fd);
    EXPECT_EQ(*token, "alive");  // the callback object survives its own removal
  }));
  token.reset();
  loop.run_for(50ms);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(loop.is_watched(pipe.read_end()));
}

TEST(PollLoopTest, FdUnwatchedByAnEarlierCallbackIsNotReported) {
  PollLoop loop;
  Pipe a;
  Pipe b;
  ASSERT_EQ(::write(a.write_end(), "x", 1), 1);
  ASSERT_EQ(::write(b.write_end(), "x", 1), 1);
  int calls = 0;
  auto unwatch_both = [&](int, uint32_t) {
    ++calls;
    loop.unwatch_fd(a.read_end());
    loop.unwatch_fd(b.read_end());
  };
  loop.watch_fd(a.read_end(), EventLoop::kRead, unwatch_both);
  loop.watch_fd(b.read_end(), EventLoop::kRead, unwatch_both);
  loop.run_once(50);
  EXPECT_EQ(calls, 1);
}

TEST(PollLoopTest, ModifyChangesInterest) {
  PollLoop loop;
  Pipe pipe;
  uint32_t seen = 0;
  ASSERT_TRUE(loop.watch_fd(pipe.write_end(), EventLoop::kRead, [&](int, uint32_t flags) { seen |= flags; }));
  loop.run_once(20);
  EXPECT_EQ(seen, 0u);
  ASSERT_TRUE(loop.modify_fd(pipe.write_end(), EventLoop::kWrite));
  loop.run_once(20);
  EXPECT_TRUE(seen & EventLoop::kWrite);
  EXPECT_FALSE(loop.modify_fd(12345, EventLoop::kRead));
}

TEST(PollLoopTest, RunUntilGivesUpAtTheTimeout) {
  PollLoop loop;
  const int64_t start = loop.now_ms();
  EXPECT_FALSE(loop.run_until([] { return false; }, 100ms));
  EXPECT_GE(loop.now_ms() - start, 100);
}

}  // namespace
}  // namespace wavoip::test
