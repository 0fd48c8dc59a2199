// FetchThread against a real local HTTP server: the downloads run on the fetcher's own thread,
// and their results come back on the test's thread (standing in for the host's main thread)
// only when it calls deliver() after a wake-up.
#include "wavoip/fetch/fetch_thread.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fetch_test_helpers.hpp"
#include "fetch_test_printers.hpp"
#include "temp_dir.hpp"  // tests/support
#include "test_http_server.hpp"

namespace wavoip {
namespace {

using namespace std::chrono_literals;
using test::audio;
using test::dev_mode;
using test::ScriptedResponse;
using test::TestHttpServer;
namespace fs = std::filesystem;

constexpr auto kWait = 20s;  // generous: sanitizer builds are slow

// What a host does with request_main_thread_callback: note the request; the test's thread then
// runs deliver(), as the host's loop would.
class MainThread {
 public:
  bool wake() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++asked_;
    if (refuse_) return false;
    ++pending_;
    changed_.notify_all();
    return true;
  }
  // Waits for a wake-up that was accepted; false after kWait without one.
  bool wait_for_wake() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!changed_.wait_for(lock, kWait, [&] { return pending_ > 0; })) return false;
    pending_ = 0;
    return true;
  }
  void refuse(bool refuse) {
    std::lock_guard<std::mutex> lock(mutex_);
    refuse_ = refuse;
  }
  int asked() {
    std::lock_guard<std::mutex> lock(mutex_);
    return asked_;
  }
  int pending() {
    std::lock_guard<std::mutex> lock(mutex_);
    return pending_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int asked_ = 0;
  int pending_ = 0;
  bool refuse_ = false;
};

bool wait_until(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

class FetchThreadTest : public ::testing::Test {
 protected:
  FetchThread::WakeMain wake() {
    return [this] { return main_.wake(); };
  }
  std::string dest(const std::string& name) const { return (dir_.path() / name).string(); }

  // Delivers after each wake-up until `count` callbacks ran, or kWait passed.
  void deliver_until(FetchThread& fetcher, const size_t& delivered, size_t count) {
    while (delivered < count) {
      ASSERT_TRUE(main_.wait_for_wake()) << delivered << " of " << count << " results came back";
      fetcher.deliver();
    }
  }

  testsupport::TempDir dir_;
  TestHttpServer server_;
  MainThread main_;
};

TEST_F(FetchThreadTest, ADownloadRunsOffTheMainThreadAndItsResultComesBackOnIt) {
  server_.set_response("/call-1", audio(300 * 1024));
  FetchThread fetcher(dev_mode(), wake());
  std::vector<FetchResult> results;
  std::vector<std::thread::id> threads;
  size_t delivered = 0;
  const uint64_t id =
      fetcher.fetch({"call-1", server_.url("/call-1"), dest("call-1.part")}, [&](const FetchResult& result) {
        results.push_back(result);
        threads.push_back(std::this_thread::get_id());
        ++delivered;
      });
  EXPECT_NE(id, 0u);
  EXPECT_EQ(fetcher.in_flight(), 1u);
  // Finished on its own thread: the main thread only learns of it through the wake-up.
  ASSERT_TRUE(wait_until([&] { return main_.asked() == 1; }));
  EXPECT_TRUE(results.empty()) << "no callback runs before deliver()";
  EXPECT_EQ(fetcher.in_flight(), 1u);
  deliver_until(fetcher, delivered, 1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].id, id);
  EXPECT_EQ(results[0].call_id, "call-1");
  EXPECT_EQ(results[0].kind, FetchKind::ready_file);
  EXPECT_EQ(results[0].http_status, 200);
  EXPECT_EQ(results[0].bytes, 300u * 1024);
  EXPECT_EQ(results[0].path, dest("call-1.part"));
  EXPECT_EQ(fs::file_size(results[0].path), 300u * 1024);
  EXPECT_EQ(threads[0], std::this_thread::get_id());
  EXPECT_EQ(fetcher.in_flight(), 0u);
}

TEST_F(FetchThreadTest, ResultsFinishedBeforeTheMainThreadRunsComeBackInOneTurn) {
  constexpr size_t kPolls = 24;
  FetchThread fetcher(dev_mode(), wake());
  std::vector<std::string> answered;
  size_t delivered = 0;
  for (size_t i = 0; i < kPolls; ++i) {
    const std::string call = "call-" + std::to_string(i);
    fetcher.fetch({call, server_.url("/" + call), dest(call + ".part")}, [&](const FetchResult& result) {
      EXPECT_EQ(result.kind, FetchKind::not_ready) << result.call_id;
      EXPECT_EQ(result.http_status, 404);
      answered.push_back(result.call_id);
      ++delivered;
    });
  }
  ASSERT_TRUE(wait_until([&] { return server_.hits() == kPolls; }));
  std::this_thread::sleep_for(200ms);
  // Every result finished while the first wake-up was not yet served rides on it: the thread
  // asked the main thread once.
  EXPECT_EQ(main_.asked(), 1);
  deliver_until(fetcher, delivered, kPolls);
  EXPECT_EQ(answered.size(), kPolls);
  std::sort(answered.begin(), answered.end());
  EXPECT_EQ(std::unique(answered.begin(), answered.end()), answered.end()) << "each result once";
  EXPECT_EQ(fetcher.in_flight(), 0u);
}

TEST_F(FetchThreadTest, ARefusedWakeUpIsAskedAgainByTheNextResult) {
  server_.set_response("/first", audio(1000));
  server_.set_response("/second", audio(2000));
  FetchThread fetcher(dev_mode(), wake());
  std::vector<std::string> answered;
  size_t delivered = 0;
  const auto record = [&](const FetchResult& result) {
    answered.push_back(result.call_id);
    ++delivered;
  };
  main_.refuse(true);  // the host is between two states: the request is not taken
  fetcher.fetch({"first", server_.url("/first"), dest("first.part")}, record);
  ASSERT_TRUE(wait_until([&] { return main_.asked() == 1; }));
  main_.refuse(false);
  fetcher.fetch({"second", server_.url("/second"), dest("second.part")}, record);
  deliver_until(fetcher, delivered, 2);
  EXPECT_EQ(answered, (std::vector<std::string>{"first", "second"}));
}

TEST_F(FetchThreadTest, ACallbackMayStartTheNextDownload) {
  server_.set_response("/a", audio(10));
  server_.set_response("/b", audio(20));
  FetchThread fetcher(dev_mode(), wake());
  std::vector<uint64_t> sizes;
  size_t delivered = 0;
  fetcher.fetch({"a", server_.url("/a"), dest("a.part")}, [&](const FetchResult& first) {
    sizes.push_back(first.bytes);
    ++delivered;
    fetcher.fetch({"b", server_.url("/b"), dest("b.part")}, [&](const FetchResult& second) {
      sizes.push_back(second.bytes);
      ++delivered;
    });
  });
  deliver_until(fetcher, delivered, 2);
  EXPECT_EQ(sizes, (std::vector<uint64_t>{10, 20}));
}

TEST_F(FetchThreadTest, StopAbandonsADownloadInFlightRemovesItsFileAndCallsNothingBack) {
  ScriptedResponse slow = audio(4 * 1024 * 1024);
  slow.chunk_bytes = 16 * 1024;
  slow.chunk_delay = 50ms;
  server_.set_response("/slow", slow);
  FetchThread fetcher(dev_mode(), wake());
  bool called = false;
  fetcher.fetch({"slow", server_.url("/slow"), dest("slow.part")}, [&](const FetchResult&) { called = true; });
  ASSERT_TRUE(wait_until([&] { return fs::exists(dest("slow.part")); })) << "the body is being written";
  fetcher.stop();
  EXPECT_FALSE(fs::exists(dest("slow.part")));
  EXPECT_EQ(fetcher.in_flight(), 0u);
  fetcher.deliver();
  fetcher.stop();  // idempotent
  EXPECT_FALSE(called);
}

TEST_F(FetchThreadTest, AFinishedRecordingNeverDeliveredIsRemovedAtStop) {
  server_.set_response("/done", audio(5000));
  bool called = false;
  {
    FetchThread fetcher(dev_mode(), wake());
    fetcher.fetch({"done", server_.url("/done"), dest("done.part")}, [&](const FetchResult&) { called = true; });
    ASSERT_TRUE(main_.wait_for_wake());
    EXPECT_TRUE(fs::exists(dest("done.part"))) << "complete, waiting for the main thread";
  }  // destroyed without deliver(): the host stopped first
  EXPECT_FALSE(fs::exists(dest("done.part")));
  EXPECT_FALSE(called);
}

TEST_F(FetchThreadTest, TheDownloadGuardsHoldOnTheThread) {
  FetchThread fetcher(FetchOptions{}, wake());  // production: https only, no loopback
  std::vector<FetchResult> results;
  size_t delivered = 0;
  fetcher.fetch({"plain", server_.url("/x"), dest("plain.part")}, [&](const FetchResult& result) {
    results.push_back(result);
    ++delivered;
  });
  deliver_until(fetcher, delivered, 1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].kind, FetchKind::permanent_error);
  EXPECT_TRUE(results[0].blocked);
  EXPECT_EQ(server_.hits(), 0u);
}

}  // namespace
}  // namespace wavoip
