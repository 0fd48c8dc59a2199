// The recording downloads on a thread of the plugin's own: a RecordingFetcher on a
// ThreadEventLoop, so libcurl's transfers (sockets, timeouts, the body written to its file) cost
// the host's loop nothing. The main thread hands a download over and later gets its result, in
// batches: every result finished since the last hand-back comes back in one main-thread turn.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "wavoip/fetch/recording_fetcher.hpp"
#include "wavoip/fetch/thread_event_loop.hpp"

namespace wavoip {

// Main thread: the thread that constructs it and calls fetch(), in_flight(), deliver(), stop()
// and the destructor; every on_done runs there, from deliver().
class FetchThread final : public Downloader {
 public:
  // Asks the main thread to call deliver() soon; called from the download thread. Returns false
  // when it cannot (the host is stopping): the results wait, and the next one asks again.
  using WakeMain = std::function<bool()>;

  // Starts the thread. Throws std::system_error when it cannot (no epoll, no thread).
  FetchThread(FetchOptions options, WakeMain wake_main);
  ~FetchThread() override;  // stop()
  FetchThread(const FetchThread&) = delete;
  FetchThread& operator=(const FetchThread&) = delete;

  // The download starts on the thread. on_done runs from a later deliver(), once.
  uint64_t fetch(FetchRequest request, DoneCallback on_done) override;
  // Handed over and not yet delivered.
  size_t in_flight() const override;

  // Runs the callbacks of the downloads finished since the last call, in the order they
  // finished. A callback may fetch() again, and may stop() (the rest are then dropped).
  void deliver() override;

  // Abandons the downloads in flight (their partial files removed, as the fetcher's destructor
  // does), joins the thread, and removes the files of results never delivered. No callback runs
  // afterwards. Idempotent.
  void stop();

 private:
  void finished(uint64_t id, const FetchResult& result);  // download thread

  const FetchOptions options_;
  const WakeMain wake_main_;
  ThreadEventLoop loop_;
  RecordingFetcher* fetcher_ = nullptr;  // lives on the thread's stack; touched only there

  // Main thread.
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, DoneCallback> callbacks_;
  bool stopped_ = false;

  std::mutex mutex_;
  std::vector<FetchResult> results_;  // guarded by mutex_
  bool wake_requested_ = false;       // guarded by mutex_

  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace wavoip
