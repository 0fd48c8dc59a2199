// One libpq connection of the host (blocking calls: used by the thread that owns it, never shared),
// with what the host's PostgreSQL stores need: statements prepared on first use and kept, text
// parameters and results, transactions and savepoints, and versioned migrations of one schema run
// under an advisory lock so that several nodes can start at once. Throws PgError.
#pragma once

#include <pg_common/pg_common.hpp>

#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct pg_cancel;
struct pg_conn;
struct pg_result;

namespace hdp::host {

// The errors and URI checks are the plugin's too (pg_common, built into each binary).
using PgError = pg_common::Error;
// A statement that lost to another transaction (deadlock_detected 40P01, serialization_failure
// 40001): the server aborted the transaction, and running all of it again may well succeed.
using PgConflict = pg_common::Conflict;

// "postgresql://..." or "postgres://...".
using pg_common::is_postgresql_uri;
// The URI's host, port, database and user, never its password (for log lines).
inline std::string describe_postgresql_uri(const std::string& uri) {
  return pg_common::describe_uri(uri);
}

// A statement's answer: rows of text (NULL kept apart).
class PgResult {
 public:
  explicit PgResult(pg_result* result) : r_(result) {}
  ~PgResult();
  PgResult(PgResult&& other) noexcept : r_(other.r_) { other.r_ = nullptr; }
  PgResult& operator=(PgResult&&) = delete;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;

  int rows() const;
  int64_t affected() const;
  bool is_null(int row, int col) const;
  std::string text(int row, int col) const;
  int64_t integer(int row, int col) const;
  pg_result* raw() const { return r_; }

 private:
  pg_result* r_;
};

// Parameters in text format; nullopt is SQL NULL.
using PgParams = std::vector<std::optional<std::string>>;

class PgConnection {
 public:
  // Connects (blocking, connect_timeout 10 s unless the URI says otherwise). application_name
  // shows in pg_stat_activity. server_options (e.g. "-c statement_timeout=10000") go to the
  // server with the host's own, on every (re)connection.
  PgConnection(std::string uri, const char* application_name, std::string server_options = {});
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs a statement prepared on first use. `sql` must be a string literal: its address is the
  // key. A connection lost outside a transaction (a server restart) is opened again before the
  // statement; inside one the statement fails, since what the transaction did is gone.
  PgResult exec(const char* sql, const PgParams& params = {});
  // Runs SQL text as it is (several statements allowed, no parameters).
  PgResult simple(const std::string& sql);

  // The transaction of a write or a batch: begin() ... commit() or rollback(). Not nested (a
  // write inside a batch uses a savepoint, see PgWriteScope, unless write_savepoints is false:
  // then a write that fails leaves the transaction failed, for the caller to roll back).
  void begin(bool write_savepoints = true);
  // COMMIT, throwing when the server rolled back instead (a transaction that had failed).
  void commit();
  // ROLLBACK; on a lost connection the server has rolled back already, so nothing throws then.
  void rollback();
  bool in_transaction() const { return in_transaction_; }
  bool write_savepoints() const { return write_savepoints_; }
  // A PgWriteScope of this transaction ended without commit and without a savepoint to undo it.
  void note_write_failed() { write_failed_ = true; }
  bool write_failed() const { return write_failed_; }

  // Statements sent and answered, each one round trip to the server (preparing one counts too).
  uint64_t round_trips() const { return round_trips_; }

  // Asks the server to cancel the statement this connection runs now (its exec then throws);
  // nothing when none runs. The one call that may come from another thread. [thread-safe]
  void cancel();

  // Brings `schema` to the last of `migrations` (version n = migrations[n-1]), recording the
  // versions in <schema>.schema_migrations, in one transaction holding
  // pg_advisory_xact_lock(lock_key): several nodes starting at once migrate once, the others
  // wait and find it done. Throws when the database's version is newer than this program's.
  void migrate(std::string_view schema, int64_t lock_key, const std::vector<const char*>& migrations);

 private:
  void connect();
  void check(const PgResult& result);

  std::string uri_;
  const char* application_name_;
  std::string server_options_;  // the libpq "options" value: the host's and the caller's
  pg_conn* conn_ = nullptr;
  std::mutex cancel_mutex_;
  pg_cancel* cancel_ = nullptr;   // guarded by cancel_mutex_: how to cancel on conn_
  bool in_transaction_ = false;   // between begin() and commit()/rollback(), whatever the connection's state
  bool write_savepoints_ = true;  // this transaction's PgWriteScopes take savepoints
  bool write_failed_ = false;     // one of them ended without commit while they took none
  uint64_t round_trips_ = 0;
  std::unordered_map<const char*, std::string> prepared_;  // sql literal -> statement name
};

// A write's own transaction, or a savepoint when one is already open (a batch): undone unless
// committed. In a batch begun without write savepoints it is nothing: a failed write's exception
// makes the batch's owner roll back the whole transaction.
class PgWriteScope {
 public:
  explicit PgWriteScope(PgConnection& conn);
  ~PgWriteScope();
  PgWriteScope(const PgWriteScope&) = delete;
  PgWriteScope& operator=(const PgWriteScope&) = delete;
  void commit();

 private:
  PgConnection& conn_;
  const bool nested_;
  const bool savepoint_;
  bool done_ = false;
};

}  // namespace hdp::host
