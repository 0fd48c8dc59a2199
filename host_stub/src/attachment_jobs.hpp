// Attaching files to messages without blocking the loop: the file is linked or copied into the
// attachments directory (<data_dir>/attachments/, or --attachments-dir that several hosts share)
// on a worker thread, then the row is inserted on the main thread under
// the (plugin, idempotency key) unique constraint, in the loop turn's batch of store writes
// (BatchedWrites), and the job's completion runs there after the commit, exactly once and never
// inside start().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>

#include <hdp/status.h>

namespace hdp::host {

class BatchedWrites;
class HelpdeskStore;
struct WriteResult;
class Logger;

struct AttachmentJobRequest {
  uint64_t owner = 0;
  std::string plugin_id;
  int64_t message_id = 0;
  std::string source_path;  // absolute
  std::string file_name;
  std::string mime_type;
  std::string idempotency_key;
};

struct AttachmentOutcome {
  uint64_t job_id = 0;
  hdp_status_t status = HDP_OK;
  uint64_t attachment_id = 0;
  bool already_attached = false;
};

// The result of linking or copying one file into the store.
struct StoredFile {
  hdp_status_t status = HDP_OK;
  std::filesystem::path path;
  int64_t size_bytes = 0;
  std::string error;  // when status is not OK
};

// Links source to destination (a new name), or copies it when linking is not possible. Refuses
// anything but a regular file. Blocking; runs on the worker thread.
StoredFile store_file(const std::filesystem::path& source, const std::filesystem::path& destination);

// A name safe to use as one path component ("rec 1.mp3" -> "rec_1.mp3").
std::string safe_file_name(std::string_view name);

class AttachmentJobs {
 public:
  using Done = std::function<void(const AttachmentOutcome&)>;

  // copy_delay: tests only, holds each copy back so a job can be pending at shutdown.
  AttachmentJobs(boost::asio::io_context& io, HelpdeskStore& store, BatchedWrites& writes, Logger& log,
                 std::filesystem::path attachments_dir,
                 std::chrono::milliseconds copy_delay = std::chrono::milliseconds(0));
  AttachmentJobs(const AttachmentJobs&) = delete;
  AttachmentJobs& operator=(const AttachmentJobs&) = delete;
  ~AttachmentJobs();

  // Accepts a job (the request is already validated); done runs later on the main thread.
  // Returns the job id, never 0 and never reused. [main-thread]
  uint64_t start(AttachmentJobRequest request, Done done);

  // Lets the copy in flight finish, drops the queued ones and joins the worker; copies that
  // will not be used are deleted. Jobs stay pending until cancel_owner. [main-thread]
  void stop_worker();

  // Completes every pending job of owner with HDP_ERR_CANCELLED, in job order. [main-thread]
  void cancel_owner(uint64_t owner);

  size_t pending_count(uint64_t owner) const;

 private:
  struct Job {
    AttachmentJobRequest request;
    Done done;
  };
  struct CopyTask {
    uint64_t job_id = 0;
    std::filesystem::path source;
    std::filesystem::path destination;
  };
  struct CopyResult {
    uint64_t job_id = 0;
    StoredFile file;
  };

  // Queues the copy, or completes the job when the checks said so (not the plugin's message, a
  // key already attached, a store error).
  void after_check(CopyTask task, const WriteResult& checked);
  void worker_main();
  void post_completion(uint64_t job_id, AttachmentOutcome outcome);
  void drain_results();
  void finish_copy(CopyResult&& result);
  void complete(uint64_t job_id, const AttachmentOutcome& outcome);

  boost::asio::io_context& io_;
  HelpdeskStore& store_;
  BatchedWrites& writes_;
  Logger& log_;
  const std::filesystem::path attachments_dir_;
  const std::chrono::milliseconds copy_delay_;
  std::string name_prefix_;  // random per run, so stored names never collide across restarts

  std::map<uint64_t, Job> jobs_;  // pending, by job id (main thread only)
  uint64_t next_job_id_ = 1;

  std::mutex mutex_;  // guards tasks_, results_, stopping_
  std::condition_variable wake_;
  std::deque<CopyTask> tasks_;
  std::deque<CopyResult> results_;
  bool stopping_ = false;
  std::thread worker_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hdp::host
