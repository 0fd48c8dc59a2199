#include "sqlite_wal/background_checkpoint.hpp"

#include <pthread.h>
#include <sqlite3.h>

namespace sqlite_wal {

namespace {

constexpr int kSqliteDefaultAutoCheckpointPages = 1000;

SQLite::Database open_checkpointer(const std::string& path, bool full_sync) {
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX);
  db.exec(full_sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  return db;
}

}  // namespace

BackgroundCheckpoint::BackgroundCheckpoint(const std::string& path, sqlite3* writer, int pages, int cap_pages,
                                           bool full_sync, const char* thread_name)
    : writer_(writer), pages_(pages), cap_pages_(cap_pages), own_(open_checkpointer(path, full_sync)) {
  thread_ = std::thread([this] { run(); });
  // Named from here, so that the name is there once the constructor returns.
  pthread_setname_np(thread_.native_handle(), thread_name);
  // Replaces SQLite's automatic checkpoint, which is a hook of its own.
  sqlite3_wal_hook(writer_, &BackgroundCheckpoint::on_commit, this);
}

BackgroundCheckpoint::~BackgroundCheckpoint() {
  sqlite3_wal_autocheckpoint(writer_, kSqliteDefaultAutoCheckpointPages);
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

int BackgroundCheckpoint::on_commit(void* self, sqlite3* db, const char* name, int pages) {
  static_cast<BackgroundCheckpoint*>(self)->commit(db, name, pages);
  return SQLITE_OK;  // what the hook returns is the COMMIT's result: the commit is done either way
}

void BackgroundCheckpoint::commit(sqlite3* db, const char* name, int pages) {
  if (pages >= cap_pages_) {
    // After the thread's checkpoint, if one runs (two at once would make this one return
    // SQLITE_BUSY and the WAL grow on).
    const std::lock_guard running(checkpoint_running_);
    int copied = 0;
    if (sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, &copied) == SQLITE_OK) {
      const std::lock_guard lock(mutex_);
      latest_pages_ = pages;
      copied_frames_ = copied;
    }
    return;
  }
  bool signal = false;
  {
    const std::lock_guard lock(mutex_);
    latest_pages_ = pages;
    signal = !wanted_ && !running_ && more_to_copy();
    if (signal) wanted_ = true;
  }
  if (signal) wake_.notify_one();
}

bool BackgroundCheckpoint::more_to_copy() {
  // A WAL smaller than what was copied of it has started over.
  if (latest_pages_ < copied_frames_) copied_frames_ = 0;
  // Near the cap, every new frame: the writer's checkpoint at the cap then copies little.
  const bool near_cap = latest_pages_ >= cap_pages_ - cap_pages_ / 8;
  return latest_pages_ - copied_frames_ >= (near_cap ? 1 : pages_);
}

void BackgroundCheckpoint::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return wanted_ || stopping_; });
    if (stopping_) return;
    wanted_ = false;
    running_ = true;
    lock.unlock();
    int frames = 0;
    int copied = 0;
    int rc = SQLITE_OK;
    {
      const std::lock_guard running(checkpoint_running_);
      rc = sqlite3_wal_checkpoint_v2(own_.getHandle(), "main", SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
    }
    lock.lock();
    running_ = false;
    if (rc == SQLITE_OK && copied > 0) copied_frames_ = copied;
    // Commits during the checkpoint did not signal: they may have left enough for another.
    if (more_to_copy()) wanted_ = true;
  }
}

}  // namespace sqlite_wal
