#include "wavoip/fetch/fetch_thread.hpp"

#include <pthread.h>
#include <filesystem>
#include <system_error>
#include <utility>

namespace wavoip {

namespace {

void remove_result_file(const FetchResult& result) {
  if (result.kind != FetchKind::ready_file || result.path.empty()) return;
  std::error_code ec;
  std::filesystem::remove(result.path, ec);
}

}  // namespace

FetchThread::FetchThread(FetchOptions options, WakeMain wake_main)
    : options_(std::move(options)), wake_main_(std::move(wake_main)) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "wavoip-fetch");  // what top -H and perf show
    // Made, run and destroyed on this thread: its destructor abandons what is still in flight.
    RecordingFetcher fetcher(loop_, options_);
    fetcher_ = &fetcher;
    loop_.run();
    fetcher_ = nullptr;
  });
}

FetchThread::~FetchThread() {
  stop();
}

uint64_t FetchThread::fetch(FetchRequest request, DoneCallback on_done) {
  const uint64_t id = next_id_++;
  if (stopped_) return id;  // never called back, as after stop()
  callbacks_.emplace(id, std::move(on_done));
  loop_.post([this, id, request = std::move(request)]() mutable {
    fetcher_->fetch(std::move(request), [this, id](const FetchResult& result) { finished(id, result); });
  });
  return id;
}

size_t FetchThread::in_flight() const {
  return callbacks_.size();
}

void FetchThread::finished(uint64_t id, const FetchResult& result) {
  bool ask = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    results_.push_back(result);
    results_.back().id = id;
    ask = !wake_requested_;
    wake_requested_ = true;
  }
  if (ask && !wake_main_()) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_requested_ = false;
  }
}

void FetchThread::deliver() {
  std::vector<FetchResult> results;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    results.swap(results_);
    wake_requested_ = false;
  }
  for (const FetchResult& result : results) {
    auto it = stopped_ ? callbacks_.end() : callbacks_.find(result.id);
    if (it == callbacks_.end()) {
      remove_result_file(result);
      continue;
    }
    DoneCallback on_done = std::move(it->second);
    callbacks_.erase(it);
    on_done(result);
  }
}

void FetchThread::stop() {
  if (stopped_) return;
  stopped_ = true;
  loop_.quit();
  if (thread_.joinable()) thread_.join();
  callbacks_.clear();
  std::lock_guard<std::mutex> lock(mutex_);
  for (const FetchResult& result : results_) remove_result_file(result);
  results_.clear();
}

}  // namespace wavoip
