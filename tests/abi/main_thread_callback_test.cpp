// main_thread_callback_test.cpp - a plugin's own thread gets back onto the host's loop.
//
// The worker_thread test plugin starts a thread in start() that logs and calls
// request_main_thread_callback (both [thread-safe]); the callback must then run on the thread
// that called start, and stop joins the worker. Runs in every host this build has.
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "hosts.hpp"
#include "test_paths.h"

namespace hdp::test {
namespace {

using namespace std::chrono_literals;

class MainThreadCallbackTest : public testing::TestWithParam<HostKind> {};

TEST_P(MainThreadCallbackTest, RunsOnTheLoopThread) {
  TempDir dir;
  HostProcess host(HostOptionsFor(GetParam(), dir.path(), {TestPlugin("worker_thread.so")}));
  ASSERT_TRUE(host.wait_until_serving()) << host.log();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (host.log().find("main-thread callback ran") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(host.terminate(), 0);
  const std::string log = host.log();
  EXPECT_EQ(lines_containing(log, "main-thread callback ran on the main thread").size(), 1u) << log;
  EXPECT_EQ(lines_containing(log, "hello from the worker thread").size(), 1u) << log;
  EXPECT_EQ(log.find("ANOTHER"), std::string::npos) << log;
  EXPECT_EQ(log.find("refused"), std::string::npos) << log;
}

INSTANTIATE_TEST_SUITE_P(Hosts, MainThreadCallbackTest, testing::ValuesIn(AvailableHosts()),
                         [](const testing::TestParamInfo<HostKind>& info) { return info.param.name; });

}  // namespace
}  // namespace hdp::test
