// The WAL checkpoints of a SQLite file, on a thread of their own: the plugin's store and the stub
// host's helpdesk database both use it, each for the connection its writer thread owns.
//
// SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL past 1,000 pages, on
// the connection that committed: the store's writer. That commit then also copies the WAL into
// the database file and waits for two fsyncs (the WAL, then the file), and every delivery
// waiting for that batch's 202 waits with it. Here the writer's commit only signals; a thread
// with a connection of its own copies what the WAL holds (a PASSIVE checkpoint: it never blocks
// the writer, and the writer never waits for it).
//
// A PASSIVE checkpoint next to a busy writer seldom finds a moment when every frame is copied, and
// SQLite only starts the WAL over from its beginning at such a moment, so the WAL would grow
// without end. Once it holds cap_pages, the commit that sees it checkpoints on the writer as
// before: with nobody writing meanwhile that copy completes, and the next transaction starts the
// WAL over. In the last eighth before the cap the thread copies every new frame, not only
// `pages` at a time, so that the writer's copy at the cap is short (its fsyncs remain).
//
// Threading: construct and destroy on the thread that owns the writer connection, with no
// transaction open. The commit hook runs on the writer; the checkpoints on the thread.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include <SQLiteCpp/Database.h>

struct sqlite3;

namespace sqlite_wal {

// The settings both the plugin's store and the stub host's writer use: a pass once the WAL holds
// SQLite's own threshold of pages, and the writer's own checkpoint only at the cap.
constexpr int kDefaultPages = 1000;
constexpr int kDefaultCapPages = 64000;

class BackgroundCheckpoint {
 public:
  // Takes over the checkpoints of writer (an open connection to path in WAL mode): a checkpoint
  // once the WAL holds pages frames not yet copied, on the writer once it holds cap_pages.
  // full_sync: the checkpointer's connection syncs as synchronous=FULL (else NORMAL).
  // thread_name: what top -H, ps -L and perf show for the thread (at most 15 characters).
  BackgroundCheckpoint(const std::string& path, sqlite3* writer, int pages, int cap_pages, bool full_sync,
                       const char* thread_name);
  // Stops the thread and gives the checkpoints back to SQLite's automatic ones.
  ~BackgroundCheckpoint();
  BackgroundCheckpoint(const BackgroundCheckpoint&) = delete;
  BackgroundCheckpoint& operator=(const BackgroundCheckpoint&) = delete;

 private:
  static int on_commit(void* self, sqlite3* db, const char* name, int pages);
  void commit(sqlite3* db, const char* name, int pages);  // writer thread
  void run();                                             // checkpoint thread
  bool more_to_copy();                                    // with mutex_ held

  sqlite3* writer_;
  const int pages_;
  const int cap_pages_;
  SQLite::Database own_;
  std::mutex checkpoint_running_;  // held by whichever thread runs a checkpoint
  std::mutex mutex_;               // the fields below
  std::condition_variable wake_;
  bool wanted_ = false;   // a checkpoint is asked for
  bool running_ = false;  // the thread runs one
  bool stopping_ = false;
  int latest_pages_ = 0;   // the WAL's length after the last commit
  int copied_frames_ = 0;  // frames of the current WAL known copied
  std::thread thread_;
};

}  // namespace sqlite_wal
