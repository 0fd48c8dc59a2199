// ThreadEventLoop: the plugin's own epoll loop, run on a real thread. Each test drives it only
// through post() from the test's thread, as the FetchThread does.
#include "wavoip/fetch/thread_event_loop.hpp"

#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace wavoip {
namespace {

using namespace std::chrono_literals;

// The loop on a thread of its own for the test's length; quit and joined at the end.
class LoopThread {
 public:
  LoopThread() : thread_([this] { loop_.run(); }) {}
  ~LoopThread() {
    loop_.quit();
    thread_.join();
  }
  LoopThread(const LoopThread&) = delete;
  LoopThread& operator=(const LoopThread&) = delete;

  ThreadEventLoop& loop() { return loop_; }
  std::thread::id id() const { return thread_.get_id(); }

  // Runs fn on the loop's thread and waits for it.
  template <typename Fn>
  void on_loop(Fn fn) {
    std::promise<void> done;
    loop_.post([&] {
      fn();
      done.set_value();
    });
    ASSERT_EQ(done.get_future().wait_for(10s), std::future_status::ready);
  }

 private:
  ThreadEventLoop loop_;
  std::thread thread_;
};

class Pipe {
 public:
  Pipe() { EXPECT_EQ(pipe(fds_), 0); }
  ~Pipe() {
    close(fds_[0]);
    close(fds_[1]);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  int read_end() const { return fds_[0]; }
  void put() const { ASSERT_EQ(write(fds_[1], "x", 1), 1); }
  void take() const {
    char byte = 0;
    ASSERT_EQ(read(fds_[0], &byte, 1), 1);
  }

 private:
  int fds_[2] = {-1, -1};
};

TEST(ThreadEventLoopTest, PostedJobsRunOnTheLoopThreadInTheOrderPosted) {
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  std::thread::id loop_id;
  {
    LoopThread thread;
    loop_id = thread.id();
    for (int i = 0; i < 200; ++i) {
      thread.loop().post([&, i] {
        order.push_back(i);
        threads.push_back(std::this_thread::get_id());
      });
    }
    thread.on_loop([] {});
  }
  ASSERT_EQ(order.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(order[static_cast<size_t>(i)], i);
  for (const std::thread::id& id : threads) EXPECT_EQ(id, loop_id);
  EXPECT_NE(loop_id, std::this_thread::get_id());
}

TEST(ThreadEventLoopTest, TimersFireInDueOrderAndACancelledOneNever) {
  std::vector<std::string> fired;
  std::promise<void> last;
  LoopThread thread;  // declared last: stopped before what its callbacks use goes
  thread.on_loop([&] {
    ThreadEventLoop& loop = thread.loop();
    loop.start_timer(60, [&] { fired.push_back("60"); });
    loop.start_timer(20, [&] { fired.push_back("20"); });
    const uint64_t cancelled = loop.start_timer(30, [&] { fired.push_back("30"); });
    loop.start_timer(40, [&] { fired.push_back("40"); });
    loop.start_timer(100, [&] { last.set_value(); });
    loop.cancel_timer(cancelled);
    loop.cancel_timer(cancelled);  // idempotent
    loop.cancel_timer(999999);     // unknown ids are ignored
  });
  ASSERT_EQ(last.get_future().wait_for(10s), std::future_status::ready);
  thread.on_loop([&] { EXPECT_EQ(fired, (std::vector<std::string>{"20", "40", "60"})); });
}

TEST(ThreadEventLoopTest, ATimerOfDelayZeroRunsLaterNeverInsideStartTimer) {
  std::atomic<bool> ran{false};
  bool ran_inside = true;
  LoopThread thread;
  thread.on_loop([&] {
    thread.loop().start_timer(0, [&] { ran = true; });
    ran_inside = ran;
  });
  EXPECT_FALSE(ran_inside);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!ran && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(ran);
}

TEST(ThreadEventLoopTest, AReadableFdIsCalledBackUntilUnwatched) {
  Pipe pipe;
  std::atomic<int> calls{0};
  std::promise<uint32_t> first;
  LoopThread thread;
  thread.on_loop([&] {
    ASSERT_TRUE(thread.loop().watch_fd(pipe.read_end(), EventLoop::kRead, [&](int fd, uint32_t flags) {
      EXPECT_EQ(fd, pipe.read_end());
      pipe.take();
      if (++calls == 1) first.set_value(flags);
      thread.loop().unwatch_fd(fd);  // from inside its own callback
    }));
  });
  pipe.put();
  auto got = first.get_future();
  ASSERT_EQ(got.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(got.get() & EventLoop::kRead, EventLoop::kRead);
  pipe.put();  // no longer watched
  std::this_thread::sleep_for(100ms);
  thread.on_loop(
      [&] { EXPECT_FALSE(thread.loop().modify_fd(pipe.read_end(), EventLoop::kRead)) << "not watched any more"; });
  EXPECT_EQ(calls.load(), 1);
}

TEST(ThreadEventLoopTest, AnFdUnwatchedByAnotherCallbackOfTheSameTurnIsNotCalledBack) {
  Pipe a;
  Pipe b;
  // Both readable before the loop looks: one epoll_wait returns both, and both stay readable.
  a.put();
  b.put();
  std::atomic<int> calls{0};
  LoopThread thread;
  thread.on_loop([&] {
    ThreadEventLoop& loop = thread.loop();
    const auto unwatch_both = [&](int, uint32_t) {
      ++calls;
      loop.unwatch_fd(a.read_end());
      loop.unwatch_fd(b.read_end());
    };
    ASSERT_TRUE(loop.watch_fd(a.read_end(), EventLoop::kRead, unwatch_both));
    ASSERT_TRUE(loop.watch_fd(b.read_end(), EventLoop::kRead, unwatch_both));
  });
  std::this_thread::sleep_for(100ms);
  thread.on_loop([] {});
  EXPECT_EQ(calls.load(), 1);
}

TEST(ThreadEventLoopTest, AStaleEventOfAClosedFdIsNotGivenToANewWatchOnTheSameNumber) {
  int a[2] = {-1, -1};
  int b[2] = {-1, -1};
  ASSERT_EQ(pipe(a), 0);
  ASSERT_EQ(pipe(b), 0);
  // Both readable before the loop looks: one epoll_wait returns both events.
  ASSERT_EQ(write(a[1], "x", 1), 1);
  ASSERT_EQ(write(b[1], "x", 1), 1);
  std::atomic<int> first_calls{0};
  std::atomic<int> stale_calls{0};
  int closed = -1;
  int reused[2] = {-1, -1};
  {
    LoopThread thread;
    thread.on_loop([&] {
      ThreadEventLoop& loop = thread.loop();
      // Whichever runs first closes the other pipe's read end and opens a new, empty pipe: the
      // kernel gives it the lowest free number, the one just closed. The new watch must not get
      // the closed pipe's event, already returned by the same epoll_wait.
      const auto replace_the_other = [&](int fd, uint32_t) {
        if (++first_calls > 1) return;
        closed = fd == a[0] ? b[0] : a[0];
        loop.unwatch_fd(a[0]);
        loop.unwatch_fd(b[0]);
        close(closed);
        ASSERT_EQ(pipe(reused), 0);
        EXPECT_EQ(reused[0], closed) << "the test needs the number reused";
        ASSERT_TRUE(loop.watch_fd(reused[0], EventLoop::kRead, [&](int, uint32_t) { ++stale_calls; }));
      };
      ASSERT_TRUE(loop.watch_fd(a[0], EventLoop::kRead, replace_the_other));
      ASSERT_TRUE(loop.watch_fd(b[0], EventLoop::kRead, replace_the_other));
    });
    std::this_thread::sleep_for(100ms);
    thread.on_loop([&] { thread.loop().unwatch_fd(reused[0]); });
  }
  EXPECT_EQ(first_calls.load(), 1);
  EXPECT_EQ(stale_calls.load(), 0) << "the new pipe is empty";
  for (int fd : {a[0], a[1], b[0], b[1], reused[0], reused[1]}) {
    if (fd >= 0 && fd != closed) close(fd);
  }
  if (reused[0] == closed && closed >= 0) close(closed);
}

TEST(ThreadEventLoopTest, AWatchForWritingOnlyIsNotCalledBackForReading) {
  Pipe pipe;
  pipe.put();  // readable
  std::atomic<int> calls{0};
  LoopThread thread;
  thread.on_loop([&] {
    ASSERT_TRUE(thread.loop().watch_fd(pipe.read_end(), EventLoop::kWrite, [&](int, uint32_t) { ++calls; }));
  });
  std::this_thread::sleep_for(100ms);
  thread.on_loop([&] {
    EXPECT_EQ(calls.load(), 0);
    // Changing the interest to reading makes the pending byte seen.
    EXPECT_TRUE(thread.loop().modify_fd(pipe.read_end(), EventLoop::kRead));
  });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (calls == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  thread.on_loop([&] { thread.loop().unwatch_fd(pipe.read_end()); });
  EXPECT_GT(calls.load(), 0);
}

TEST(ThreadEventLoopTest, QuitFromAnotherThreadEndsRunWithTimersStillArmed) {
  ThreadEventLoop loop;
  loop.start_timer(3600 * 1000, [] {});
  std::thread thread([&] { loop.run(); });
  std::this_thread::sleep_for(20ms);
  const auto asked = std::chrono::steady_clock::now();
  loop.quit();
  thread.join();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 5s);
}

}  // namespace
}  // namespace wavoip
