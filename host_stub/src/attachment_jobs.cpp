#include "attachment_jobs.hpp"

#include <pthread.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <system_error>
#include <utility>

#include <boost/asio/post.hpp>

#include "batched_writes.hpp"
#include "helpdesk_store.hpp"
#include "log.hpp"

namespace hdp::host {
namespace {

std::string errno_text(const char* what, int error) {
  return std::string(what) + ": " + std::strerror(error);
}

// Closes an fd on scope exit.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

StoredFile copy_contents(const std::filesystem::path& source, const std::filesystem::path& destination) {
  StoredFile out;
  out.path = destination;
  const FdCloser in(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) {
    out.status = HDP_ERR_IO;
    out.error = errno_text("open source", errno);
    return out;
  }
  FdCloser dst(::open(destination.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (dst.get() < 0) {
    out.status = HDP_ERR_IO;
    out.error = errno_text("create copy", errno);
    return out;
  }
  std::array<char, 64 * 1024> buffer{};
  int64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(in.get(), buffer.data(), buffer.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      out.status = HDP_ERR_IO;
      out.error = errno_text("read", errno);
      break;
    }
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(dst.get(), buffer.data() + done, static_cast<size_t>(n - done));
      if (w < 0) {
        if (errno == EINTR) continue;
        out.status = HDP_ERR_IO;
        out.error = errno_text("write", errno);
        break;
      }
      done += w;
    }
    if (out.status != HDP_OK) break;
    total += n;
  }
  if (out.status == HDP_OK && ::close(dst.release()) != 0) {
    out.status = HDP_ERR_IO;
    out.error = errno_text("close copy", errno);
  }
  if (out.status != HDP_OK) {
    ::unlink(destination.c_str());
    return out;
  }
  out.size_bytes = total;
  return out;
}

}  // namespace

std::string safe_file_name(std::string_view name) {
  std::string out;
  for (const char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    out += ok ? c : '_';
  }
  if (out.empty() || out.front() == '.') out.insert(out.begin(), '_');
  if (out.size() > 120) out.resize(120);
  return out;
}

StoredFile store_file(const std::filesystem::path& source, const std::filesystem::path& destination) {
  StoredFile out;
  out.path = destination;
  struct stat st {};
  if (::stat(source.c_str(), &st) != 0) {
    out.status = HDP_ERR_IO;
    out.error = errno_text("stat source", errno);
    return out;
  }
  if (!S_ISREG(st.st_mode)) {
    out.status = HDP_ERR_IO;
    out.error = "not a regular file";
    return out;
  }
  std::error_code ec;
  std::filesystem::create_directories(destination.parent_path(), ec);
  if (ec) {
    out.status = HDP_ERR_IO;
    out.error = "create directory: " + ec.message();
    return out;
  }
  // A hard link costs nothing; it fails across file systems (EXDEV) or when not allowed.
  if (::link(source.c_str(), destination.c_str()) == 0) {
    out.size_bytes = static_cast<int64_t>(st.st_size);
    return out;
  }
  return copy_contents(source, destination);
}

AttachmentJobs::AttachmentJobs(boost::asio::io_context& io, HelpdeskStore& store, BatchedWrites& writes, Logger& log,
                               std::filesystem::path attachments_dir, std::chrono::milliseconds copy_delay)
    : io_(io),
      store_(store),
      writes_(writes),
      log_(log),
      attachments_dir_(std::move(attachments_dir)),
      copy_delay_(copy_delay) {
  std::random_device random;
  std::array<char, 17> buf{};
  std::snprintf(buf.data(), buf.size(), "%08x%08x", random(), random());
  name_prefix_ = buf.data();
}

AttachmentJobs::~AttachmentJobs() {
  stop_worker();
  jobs_.clear();
  *alive_ = false;
}

namespace {

// Before copying: the message must be the plugin's, and a key already attached needs no copy
// (a key attached concurrently is caught by the unique constraint when the copy is inserted).
// row_id and existed name that attachment.
WriteResult check_job(HelpdeskStore& store, const std::string& plugin_id, int64_t message_id, const std::string& key) {
  if (!store.message_belongs_to(plugin_id, message_id)) return WriteResult{HDP_ERR_NOT_FOUND, 0, false, false};
  if (const auto existing = store.attachment_by_key(plugin_id, key)) {
    return WriteResult{HDP_OK, existing->id, true, false};
  }
  return WriteResult{HDP_OK, 0, false, false};
}

}  // namespace

uint64_t AttachmentJobs::start(AttachmentJobRequest request, Done done) {
  const uint64_t job_id = next_job_id_++;
  CopyTask task{job_id, request.source_path,
                attachments_dir_ / safe_file_name(request.plugin_id) /
                    (name_prefix_ + "-" + std::to_string(job_id) + "-" + safe_file_name(request.file_name))};
  const std::string plugin_id = request.plugin_id;
  const std::string key = request.idempotency_key;
  const int64_t message_id = request.message_id;
  const uint64_t owner = request.owner;
  jobs_.emplace(job_id, Job{std::move(request), std::move(done)});

  if (store_.is_remote()) {
    // The checks wait for the database server: on the writer thread with the turn's writes.
    writes_.start(
        owner, {},
        [plugin_id, message_id, key](HelpdeskStore& store) { return check_job(store, plugin_id, message_id, key); },
        [this, alive = std::weak_ptr<bool>(alive_), task = std::move(task)](uint64_t,
                                                                            const WriteResult& checked) mutable {
          if (!alive.expired()) after_check(std::move(task), checked);
        });
    return job_id;
  }
  WriteResult checked;
  try {
    checked = check_job(store_, plugin_id, message_id, key);
  } catch (const std::exception& e) {
    log_.error("attachment job " + std::to_string(job_id) + " of " + plugin_id + ": " + e.what());
    checked = WriteResult{HDP_ERR_IO, 0, false, false};
  }
  after_check(std::move(task), checked);
  return job_id;
}

void AttachmentJobs::after_check(CopyTask task, const WriteResult& checked) {
  const uint64_t job_id = task.job_id;
  if (!jobs_.contains(job_id)) return;  // cancelled meanwhile
  if (checked.status != HDP_OK || checked.existed) {
    post_completion(job_id,
                    AttachmentOutcome{job_id, checked.status, static_cast<uint64_t>(checked.row_id), checked.existed});
    return;
  }
  {
    const std::lock_guard lock(mutex_);
    if (stopping_) {
      post_completion(job_id, AttachmentOutcome{job_id, HDP_ERR_CANCELLED, 0, false});
      return;
    }
    tasks_.push_back(std::move(task));
    if (!worker_.joinable()) {
      worker_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "hdp-attach");  // what top -H and perf show
        worker_main();
      });
    }
  }
  wake_.notify_one();
}

void AttachmentJobs::worker_main() {
  const std::weak_ptr<bool> alive = alive_;
  for (;;) {
    CopyTask task;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (stopping_) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
      if (copy_delay_.count() > 0 && wake_.wait_for(lock, copy_delay_, [this] { return stopping_; })) {
        return;
      }
    }
    CopyResult result{task.job_id, store_file(task.source, task.destination)};
    {
      const std::lock_guard lock(mutex_);
      results_.push_back(std::move(result));
    }
    boost::asio::post(io_, [this, alive] {
      if (!alive.expired()) drain_results();
    });
  }
}

void AttachmentJobs::stop_worker() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
    tasks_.clear();
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
  // Copies that finished but were not reported yet: their jobs will be cancelled.
  std::deque<CopyResult> results;
  {
    const std::lock_guard lock(mutex_);
    results.swap(results_);
  }
  for (const CopyResult& result : results) {
    if (result.file.status == HDP_OK) {
      std::error_code ignored;
      std::filesystem::remove(result.file.path, ignored);
    }
  }
}

void AttachmentJobs::cancel_owner(uint64_t owner) {
  std::vector<uint64_t> ids;
  for (const auto& [id, job] : jobs_) {
    if (job.request.owner == owner) ids.push_back(id);
  }
  for (const uint64_t id : ids) complete(id, AttachmentOutcome{id, HDP_ERR_CANCELLED, 0, false});
}

size_t AttachmentJobs::pending_count(uint64_t owner) const {
  size_t n = 0;
  for (const auto& [id, job] : jobs_) n += job.request.owner == owner ? 1 : 0;
  return n;
}

void AttachmentJobs::post_completion(uint64_t job_id, AttachmentOutcome outcome) {
  boost::asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_), job_id, outcome] {
    if (!alive.expired()) complete(job_id, outcome);
  });
}

void AttachmentJobs::drain_results() {
  std::deque<CopyResult> results;
  {
    const std::lock_guard lock(mutex_);
    results.swap(results_);
  }
  for (CopyResult& result : results) finish_copy(std::move(result));
}

void AttachmentJobs::finish_copy(CopyResult&& result) {
  const uint64_t job_id = result.job_id;
  const auto it = jobs_.find(job_id);
  auto discard_copy = [&result] {
    std::error_code ignored;
    if (result.file.status == HDP_OK) std::filesystem::remove(result.file.path, ignored);
  };
  if (it == jobs_.end()) {  // cancelled meanwhile
    discard_copy();
    return;
  }
  const AttachmentJobRequest& request = it->second.request;
  if (result.file.status != HDP_OK) {
    log_.warning("attachment job " + std::to_string(job_id) + " of " + request.plugin_id + ": cannot store " +
                 request.source_path + ": " + result.file.error);
    complete(job_id, AttachmentOutcome{job_id, result.file.status, 0, false});
    return;
  }
  AttachmentInsert insert;
  insert.plugin_id = request.plugin_id;
  insert.idempotency_key = request.idempotency_key;
  insert.message_id = request.message_id;
  insert.file_name = request.file_name;
  insert.mime_type = request.mime_type;
  insert.size_bytes = result.file.size_bytes;
  insert.stored_path = result.file.path.string();
  // The row joins the loop turn's transaction of the host's store.
  writes_.start(
      request.owner, {},
      [insert = std::move(insert)](HelpdeskStore& store) {
        const AttachmentInsertResult inserted = store.insert_attachment(insert);
        return WriteResult{HDP_OK, inserted.attachment_id, inserted.already_attached, false};
      },
      [this, alive = std::weak_ptr<bool>(alive_), job_id, stored = result.file.path](uint64_t,
                                                                                     const WriteResult& written) {
        // A row that was written keeps its file (also when the job is cancelled after the
        // commit); a duplicate's or a failed write's copy goes.
        if (!written.durable || written.existed) {
          std::error_code ignored;
          std::filesystem::remove(stored, ignored);
        }
        if (alive.expired()) return;  // the failure itself is logged by BatchedWrites
        complete(job_id,
                 AttachmentOutcome{job_id, written.status, static_cast<uint64_t>(written.row_id), written.existed});
      });
}

void AttachmentJobs::complete(uint64_t job_id, const AttachmentOutcome& outcome) {
  const auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return;
  const Done done = std::move(it->second.done);
  jobs_.erase(it);
  done(outcome);
}

}  // namespace hdp::host
