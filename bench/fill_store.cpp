// Fills the plugin's SQLite file with calls that wait for a poll, as a plugin that has been
// receiving webhooks for a while would have them: the schema comes from SqliteStore itself
// (so it is the real one, indexes included), the rows are inserted directly in one transaction.
//
//   bench_fill_store --db FILE --count N --due-count K --due-at MS --later-at MS [--due-in MS]
//
// Calls pend-0000000 .. pend-<N-1>, all `waiting`, ended and answered: the first K have their
// next poll at --due-at (wall ms), the others spread one a millisecond from --later-at on
// (far enough that they are not due during the run). Every deadline is a day after --later-at.
// With --due-in, the first K are moved once the fill is done to that many milliseconds after
// the real clock's now, and the last line says when (`due_at_ms=...`): a host on the real clock
// then finds them due a known moment after it started, however long the fill took.
#include <wavoip/store/store.hpp>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  std::string db_path;
  std::int64_t count = 0;
  std::int64_t due_count = 0;
  std::int64_t due_at = 0;
  std::int64_t later_at = 0;
  std::int64_t due_in = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    const char* value = argv[i + 1];
    if (name == "--db")
      db_path = value;
    else if (name == "--count")
      count = std::atoll(value);
    else if (name == "--due-count")
      due_count = std::atoll(value);
    else if (name == "--due-at")
      due_at = std::atoll(value);
    else if (name == "--later-at")
      later_at = std::atoll(value);
    else if (name == "--due-in")
      due_in = std::atoll(value);
  }
  if (db_path.empty() || count <= 0 || due_at <= 0 || later_at <= due_at) {
    std::fprintf(stderr,
                 "usage: bench_fill_store --db FILE --count N --due-count K --due-at MS --later-at MS [--due-in MS]\n");
    return 2;
  }
  const auto started = std::chrono::steady_clock::now();
  { wavoip::SqliteStore schema(db_path); }  // creates the file and the schema, then closes

  SQLite::Database db(db_path, SQLite::OPEN_READWRITE);
  db.exec("PRAGMA synchronous=OFF");
  db.exec("PRAGMA cache_size=-262144");  // 256 MiB while filling
  SQLite::Transaction tx(db);
  SQLite::Statement insert(
      db,
      "INSERT INTO calls (call_id, direction, caller, receiver, session_id, call_status, answered, "
      "duration_s, ended_at, recording, reason, attempt, next_attempt_at, deadline_at, "
      "message_requested, created_at, updated_at) VALUES "
      "(?1, 'INCOMING', ?2, '5511888880002', '789', 'ENDED', 1, 42, ?3, 'waiting', "
      "'Waiting for WaVoIP to publish the recording', 0, ?4, ?5, 1, ?3, ?3)");
  char call_id[32];
  char caller[32];
  for (std::int64_t i = 0; i < count; ++i) {
    std::snprintf(call_id, sizeof call_id, "pend-%07lld", static_cast<long long>(i));
    std::snprintf(caller, sizeof caller, "55119%08lld", static_cast<long long>(i % 100000000));
    const std::int64_t next = i < due_count ? due_at : later_at + (i - due_count);
    insert.bind(1, call_id);
    insert.bind(2, caller);
    insert.bind(3, due_at - 60000);
    insert.bind(4, next);
    insert.bind(5, later_at + 86400000);
    insert.exec();
    insert.reset();
  }
  tx.commit();
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  std::int64_t final_due_at = due_at;
  if (due_in >= 0 && due_count > 0) {
    final_due_at =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count() +
        due_in;
    SQLite::Statement move(db, "UPDATE calls SET next_attempt_at = ?1 WHERE next_attempt_at = ?2");
    move.bind(1, final_due_at);
    move.bind(2, due_at);
    move.exec();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("filled %lld calls (%lld due) in %.1f s\n", static_cast<long long>(count),
              static_cast<long long>(due_count), seconds);
  std::printf("due_at_ms=%lld\n", static_cast<long long>(final_due_at));
  return 0;
}
