#include "wavoip/store/store.hpp"

#include "sql_text.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>
#include <sqlite_wal/background_checkpoint.hpp>

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace wavoip {
namespace {

// Schema version 1. Partial indexes keep the hot queries (next due poll, in-flight calls,
// pending count) proportional to what they return, not to the table, with millions of rows.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE deliveries (
  id          INTEGER PRIMARY KEY,
  received_at INTEGER NOT NULL,
  type        TEXT NOT NULL,
  call_id     TEXT,
  body        BLOB NOT NULL
);
CREATE INDEX deliveries_by_call ON deliveries(call_id) WHERE call_id IS NOT NULL;
CREATE INDEX deliveries_by_time ON deliveries(received_at);

CREATE TABLE calls (
  call_id           TEXT PRIMARY KEY NOT NULL,
  inbox             TEXT NOT NULL DEFAULT '',
  direction         TEXT NOT NULL DEFAULT 'UNKNOWN',
  caller            TEXT NOT NULL DEFAULT '',
  receiver          TEXT NOT NULL DEFAULT '',
  session_id        TEXT NOT NULL DEFAULT '',
  call_kind         TEXT NOT NULL DEFAULT '',
  call_status       TEXT NOT NULL DEFAULT '',
  answered          INTEGER NOT NULL DEFAULT 0,
  duration_s        INTEGER,
  ended_at          INTEGER,
  recording         TEXT NOT NULL DEFAULT 'none',
  reason            TEXT NOT NULL DEFAULT '',
  record_url        TEXT NOT NULL DEFAULT '',
  attempt           INTEGER NOT NULL DEFAULT 0,
  next_attempt_at   INTEGER,
  deadline_at       INTEGER,
  last_result       TEXT NOT NULL DEFAULT '',
  recording_file    TEXT NOT NULL DEFAULT '',
  content_type      TEXT NOT NULL DEFAULT '',
  recording_bytes   INTEGER NOT NULL DEFAULT 0,
  message_requested INTEGER NOT NULL DEFAULT 0,
  message_id        TEXT NOT NULL DEFAULT '',
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL
);
CREATE INDEX calls_due ON calls(next_attempt_at, call_id) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX calls_in_flight ON calls(call_id) WHERE recording IN ('fetching', 'attaching');
CREATE INDEX calls_pending ON calls(recording) WHERE recording IN ('waiting', 'fetching', 'attaching');

-- At most one download per call at a time, across connections and processes.
CREATE TABLE fetch_claims (
  call_id    TEXT PRIMARY KEY NOT NULL,
  claimed_at INTEGER NOT NULL
);

-- At most one attachment per call, ever.
CREATE TABLE attachments (
  call_id       TEXT NOT NULL UNIQUE,
  attachment_id TEXT NOT NULL,
  attached_at   INTEGER NOT NULL
);
)sql";

// Schema version 2: calls whose message on the host may be behind the stored record. Marked in
// the transaction that changes the record, cleared once the host was told; a restart after a
// crash shows these again, so no committed change is lost on the way to the helpdesk.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE host_sync (
  call_id TEXT PRIMARY KEY NOT NULL
);
)sql";

// Schema version 3: claims with leases (see Store::claim_due). `fence` grows with every claim;
// `owner` and `lease_until` are set while a claim holds.
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE calls ADD COLUMN owner TEXT;
ALTER TABLE calls ADD COLUMN lease_until INTEGER;
ALTER TABLE calls ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
CREATE INDEX calls_leased ON calls(lease_until, call_id) WHERE lease_until IS NOT NULL;
)sql";

// Schema version 4: fewer b-trees to write for each delivery. `calls` and `host_sync` are
// keyed by the call id itself (WITHOUT ROWID: no separate index from the id to a rowid), and
// the index of deliveries by call, which nothing reads, is gone (a lookup by call scans).
// The new `calls` is created from the old one's own definition (the columns of versions 1 and
// 3) with WITHOUT ROWID added; then the rows, indexes and the other tables follow.
constexpr const char* kSchemaV4 = R"sql(
INSERT INTO calls_v4 SELECT * FROM calls;
DROP TABLE calls;
ALTER TABLE calls_v4 RENAME TO calls;
CREATE INDEX calls_due ON calls(next_attempt_at, call_id) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX calls_in_flight ON calls(call_id) WHERE recording IN ('fetching', 'attaching');
CREATE INDEX calls_pending ON calls(recording) WHERE recording IN ('waiting', 'fetching', 'attaching');
CREATE INDEX calls_leased ON calls(lease_until, call_id) WHERE lease_until IS NOT NULL;

CREATE TABLE host_sync_v4 (
  call_id TEXT PRIMARY KEY NOT NULL
) WITHOUT ROWID;
INSERT INTO host_sync_v4 SELECT call_id FROM host_sync;
DROP TABLE host_sync;
ALTER TABLE host_sync_v4 RENAME TO host_sync;

DROP INDEX IF EXISTS deliveries_by_call;
)sql";

// CREATE TABLE calls_v4 (...) WITHOUT ROWID, from the stored definition of `calls` (SQLite keeps
// the text of CREATE TABLE, with the columns ALTER TABLE added; a renamed table's name quoted).
std::string calls_v4_definition(SQLite::Database& db) {
  const std::string sql =
      db.execAndGet("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'calls'").getString();
  const std::size_t open = sql.find('(');
  const std::string head = open == std::string::npos ? sql : sql.substr(0, open);
  if (head.find("calls") == std::string::npos || head.rfind("CREATE TABLE", 0) != 0) {
    throw std::runtime_error("unexpected definition of calls: " + sql);
  }
  std::string out = "CREATE TABLE calls_v4 " + sql.substr(open);
  if (out.find("WITHOUT ROWID") == std::string::npos) out += " WITHOUT ROWID";
  return out;
}

// Schema version 5: the technical detail of a call's reason (an HTTP status, a curl error) is a
// field of its own, so that a restart shows the same thing.
constexpr const char* kSchemaV5 = R"sql(
ALTER TABLE calls ADD COLUMN reason_detail TEXT NOT NULL DEFAULT '';
)sql";

// Schema version 6: a download or an attachment in flight is a claim with a lease on the call
// (Store::claim_call), like a due poll, so the table of lease-less fetch claims goes. Its rows
// were void at start anyway.
constexpr const char* kSchemaV6 = R"sql(
DROP TABLE fetch_claims;
)sql";

// Schema version 7: write-back of the records deliveries change (SqliteOptions::write_back_calls).
// A delivery keeps the inbox its step used; each call row says which delivery it includes last;
// `saved_through` says up to which delivery every step is in the call rows, so that a restart
// replays only the deliveries after it (Store::replay_unsaved).
constexpr const char* kSchemaV7 = R"sql(
ALTER TABLE calls ADD COLUMN last_delivery INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN inbox TEXT;
CREATE TABLE saved_through (
  one         INTEGER PRIMARY KEY CHECK (one = 1),
  delivery_id INTEGER NOT NULL
);
INSERT INTO saved_through (one, delivery_id) SELECT 1, COALESCE(MAX(id), 0) FROM deliveries;
)sql";

// Schema version 8: the two partial indexes over `recording` say their condition with `=` and
// `OR`, not `IN (...)`. SQLite checks a partial index's condition on every insert and update of
// the table, and codes a constant `IN` list there as a temporary b-tree that it builds and frees
// each time: two or three per write of a call, the larger part of the cost of that write. The
// statements that read through these indexes spell the same condition (a partial index serves
// a query only when the query's WHERE contains the index's condition as written).
#define WAVOIP_IN_FLIGHT "(recording = 'fetching' OR recording = 'attaching')"
#define WAVOIP_PENDING "(recording = 'waiting' OR recording = 'fetching' OR recording = 'attaching')"
constexpr const char* kSchemaV8 =
    "DROP INDEX calls_in_flight;\n"
    "DROP INDEX calls_pending;\n"
    "CREATE INDEX calls_in_flight ON calls(call_id) WHERE " WAVOIP_IN_FLIGHT
    ";\n"
    "CREATE INDEX calls_pending ON calls(recording) WHERE " WAVOIP_PENDING ";\n";

// Column order shared by every read and write of `calls`.
constexpr const char* kCallColumns =
    "call_id, inbox, direction, caller, receiver, session_id, call_kind, call_status, answered, duration_s, "
    "ended_at, recording, reason, record_url, attempt, next_attempt_at, deadline_at, last_result, "
    "recording_file, content_type, recording_bytes, message_requested, message_id, created_at, updated_at, "
    "reason_detail";
constexpr int kCallColumnCount = 26;

// Write-back writes its records in slices of write_back_calls / kWriteBackSlices (see maybe_save).
constexpr std::size_t kWriteBackSlices = 8;

using sql_text::assign_all_but_key;

// The upsert of a whole record; with_last_delivery also sets calls.last_delivery (parameter 27).
std::string upsert_call_sql(bool with_last_delivery) {
  std::string columns = kCallColumns;
  if (with_last_delivery) columns += ", last_delivery";
  const int count = kCallColumnCount + (with_last_delivery ? 1 : 0);
  std::string sql = "INSERT INTO calls (" + columns + ") VALUES (";
  for (int i = 1; i <= count; ++i) sql += (i > 1 ? ", ?" : "?") + std::to_string(i);
  // Every column but the key takes the new value.
  return sql + ") ON CONFLICT(call_id) DO UPDATE SET " +
         assign_all_but_key(columns, [](const std::string& name, int) { return "excluded." + name; });
}

// The update of a whole record by its key (?1): every other column takes its parameter (?2 ..
// ?26), then `more` (further assignments) and `tail` (after the WHERE).
std::string update_call_sql(const std::string& more, const std::string& tail) {
  return "UPDATE calls SET " +
         assign_all_but_key(kCallColumns, [](const std::string&, int index) { return "?" + std::to_string(index); }) +
         more + " WHERE call_id = ?1" + tail;
}

void bind_optional(SQLite::Statement& s, int index, const std::optional<std::int64_t>& value) {
  if (value)
    s.bind(index, static_cast<std::int64_t>(*value));
  else
    s.bind(index);  // NULL
}

std::optional<std::int64_t> optional_int(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getInt64();
}

void bind_call(SQLite::Statement& s, const CallRecord& r) {
  int i = 0;
  s.bind(++i, r.call_id);
  s.bind(++i, r.inbox);
  s.bind(++i, std::string(to_string(r.direction)));
  s.bind(++i, r.caller);
  s.bind(++i, r.receiver);
  s.bind(++i, r.session_id);
  s.bind(++i, r.call_kind);
  s.bind(++i, r.call_status);
  s.bind(++i, r.answered ? 1 : 0);
  bind_optional(s, ++i, r.duration_s);
  bind_optional(s, ++i, r.ended_at);
  s.bind(++i, std::string(to_string(r.recording)));
  s.bind(++i, r.reason);
  s.bind(++i, r.record_url);
  s.bind(++i, static_cast<std::int64_t>(r.attempt));
  bind_optional(s, ++i, r.next_attempt_at);
  bind_optional(s, ++i, r.deadline_at);
  s.bind(++i, r.last_result);
  s.bind(++i, r.recording_file);
  s.bind(++i, r.content_type);
  s.bind(++i, static_cast<std::int64_t>(r.recording_bytes));
  s.bind(++i, r.message_requested ? 1 : 0);
  s.bind(++i, r.message_id);
  s.bind(++i, static_cast<std::int64_t>(r.created_at));
  s.bind(++i, static_cast<std::int64_t>(r.updated_at));
  s.bind(++i, r.reason_detail);
}

CallRecord read_call(const SQLite::Statement& s) {
  CallRecord r;
  int i = 0;
  r.call_id = s.getColumn(i++).getString();
  r.inbox = s.getColumn(i++).getString();
  r.direction = call_direction_from_text(s.getColumn(i++).getString());
  r.caller = s.getColumn(i++).getString();
  r.receiver = s.getColumn(i++).getString();
  r.session_id = s.getColumn(i++).getString();
  r.call_kind = s.getColumn(i++).getString();
  r.call_status = s.getColumn(i++).getString();
  r.answered = s.getColumn(i++).getInt() != 0;
  r.duration_s = optional_int(s.getColumn(i++));
  r.ended_at = optional_int(s.getColumn(i++));
  const std::string state = s.getColumn(i++).getString();
  auto recording = recording_state_from_text(state);
  if (!recording) throw std::runtime_error("calls.recording has an unknown value '" + state + "'");
  r.recording = *recording;
  r.reason = s.getColumn(i++).getString();
  r.record_url = s.getColumn(i++).getString();
  r.attempt = static_cast<std::uint32_t>(s.getColumn(i++).getInt64());
  r.next_attempt_at = optional_int(s.getColumn(i++));
  r.deadline_at = optional_int(s.getColumn(i++));
  r.last_result = s.getColumn(i++).getString();
  r.recording_file = s.getColumn(i++).getString();
  r.content_type = s.getColumn(i++).getString();
  r.recording_bytes = static_cast<std::uint64_t>(s.getColumn(i++).getInt64());
  r.message_requested = s.getColumn(i++).getInt() != 0;
  r.message_id = s.getColumn(i++).getString();
  r.created_at = s.getColumn(i++).getInt64();
  r.updated_at = s.getColumn(i++).getInt64();
  r.reason_detail = s.getColumn(i++).getString();
  return r;
}

// Resets a cached statement when leaving scope, so that no read stays open (it would pin the
// WAL and block checkpoints) and the next use starts clean.
class Use {
 public:
  explicit Use(SQLite::Statement& s) : s_(s) {}
  ~Use() {
    s_.tryReset();
    try {
      s_.clearBindings();
    } catch (...) {  // NOLINT(bugprone-empty-catch): clearing bindings cannot fail on a valid statement
    }
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;
  SQLite::Statement* operator->() { return &s_; }
  SQLite::Statement& operator*() { return s_; }

 private:
  SQLite::Statement& s_;
};

// Transaction-control statements (BEGIN, SAVEPOINT, RELEASE, ...) prepared once per connection:
// Database::exec parses the text again on every call, and a batch runs four of them per job.
// Also whether the transaction open now takes a savepoint for each store call in it (see
// SqliteStore::run_batch).
class Control {
 public:
  explicit Control(SQLite::Database& db) : db_(db) {}
  Control(const Control&) = delete;
  Control& operator=(const Control&) = delete;
  SQLite::Database& db() { return db_; }

  // Off for a batch's first run: a store call that fails then cannot be undone alone and says so
  // (note_failed_without_savepoint), and the batch is rolled back whole and run again with them.
  bool savepoints() const { return savepoints_; }
  void set_savepoints(bool on) {
    savepoints_ = on;
    failed_without_savepoint_ = false;
  }
  void note_failed_without_savepoint() { failed_without_savepoint_ = true; }
  bool failed_without_savepoint() const { return failed_without_savepoint_; }

  // sql must be a string literal: it is the key.
  void run(const char* sql) {
    std::unique_ptr<SQLite::Statement>& slot = statements_[sql];
    if (!slot) slot = std::make_unique<SQLite::Statement>(db_, sql);
    // tryReset: reset() would throw the error of the statement's last run again (a BEGIN that
    // found the database locked), and the statement would never run again.
    slot->tryReset();
    slot->exec();
  }

 private:
  SQLite::Database& db_;
  std::unordered_map<const char*, std::unique_ptr<SQLite::Statement>> statements_;
  bool savepoints_ = true;
  bool failed_without_savepoint_ = false;
};

// The records of calls that deliveries changed and that are not written yet (write-back, see
// SqliteOptions::write_back_calls), with an undo log: a savepoint or a transaction that rolls
// back also takes back what it changed here, so memory never runs ahead of the database. Kept
// in the order of the first delivery each record holds that its row does not, so that the
// oldest are written first and the deliveries before the oldest held are all in the rows.
class UnsavedCalls {
 public:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    CallRecord record;
    std::int64_t last_delivery = 0;  // the latest delivery the record includes
    bool behind = false;             // its message may be behind the host: marked when written
    bool new_call = false;           // no row yet: nor a host_sync mark to clear
    // Set by put() for a record not held yet, kept while it is held:
    std::int64_t first_delivery = 0;  // the earliest delivery it includes that its row lacks
    Clock::time_point since{};        // when it came to be held
  };

  Entry* find(const std::string& call_id) {
    auto it = entries_.find(call_id);
    return it == entries_.end() ? nullptr : &it->second;
  }
  // Holds entry as the record of call_id; a record held already keeps its place in the order.
  void put(const std::string& call_id, Entry entry) {
    auto it = entries_.find(call_id);
    undo_.push_back({call_id, it == entries_.end() ? std::nullopt : std::optional<Entry>(it->second)});
    if (it != entries_.end()) {
      entry.first_delivery = it->second.first_delivery;
      entry.since = it->second.since;
    } else {
      entry.first_delivery = entry.last_delivery;
      entry.since = Clock::now();
    }
    set(call_id, std::move(entry));
  }
  std::optional<Entry> take(const std::string& call_id) {
    auto it = entries_.find(call_id);
    if (it == entries_.end()) return std::nullopt;
    undo_.push_back({call_id, it->second});
    Entry entry = std::move(it->second);
    set(call_id, std::nullopt);
    return entry;
  }
  // The `count` oldest records (all when count is at least size()), in call id order:
  // neighbouring keys share b-tree pages.
  std::vector<std::pair<std::string, Entry>> take_oldest(std::size_t count) {
    std::vector<std::string> keys;
    keys.reserve(std::min(count, by_age_.size()));
    for (auto it = by_age_.begin(); it != by_age_.end() && keys.size() < count; ++it) keys.push_back(it->second);
    std::sort(keys.begin(), keys.end());
    std::vector<std::pair<std::string, Entry>> taken;
    taken.reserve(keys.size());
    for (std::string& key : keys) {
      std::optional<Entry> entry = take(key);
      taken.emplace_back(std::move(key), std::move(*entry));
    }
    return taken;
  }
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  // How long the oldest record held has waited.
  Clock::duration waited() const {
    return empty() ? Clock::duration::zero() : Clock::now() - entries_.at(by_age_.begin()->second).since;
  }
  // The earliest delivery a held record includes that its row lacks; nullopt when none is held.
  std::optional<std::int64_t> first_unsaved_delivery() const {
    if (by_age_.empty()) return std::nullopt;
    return by_age_.begin()->first;
  }
  // The earliest poll among the unsaved records (the rows on disk may not have it yet).
  std::optional<TimeMs> earliest_due() const {
    std::optional<TimeMs> earliest;
    for (const auto& [call_id, entry] : entries_) {
      const std::optional<TimeMs>& at = entry.record.next_attempt_at;
      if (at && (!earliest || *at < *earliest)) earliest = *at;
    }
    return earliest;
  }

  std::size_t mark() const { return undo_.size(); }
  void rollback(std::size_t mark) {
    while (undo_.size() > mark) {
      Undo& last = undo_.back();
      set(last.call_id, std::move(last.before));
      undo_.pop_back();
    }
  }
  void forget() { undo_.clear(); }  // the outermost transaction committed

 private:
  // The one place entries_ and by_age_ change, so that they always agree.
  void set(const std::string& call_id, std::optional<Entry> entry) {
    auto it = entries_.find(call_id);
    if (it != entries_.end()) {
      by_age_.erase(it->second.first_delivery);
      entries_.erase(it);
    }
    if (!entry) return;
    by_age_.emplace(entry->first_delivery, call_id);
    entries_.emplace(call_id, std::move(*entry));
  }
  struct Undo {
    std::string call_id;
    std::optional<Entry> before;  // nullopt: it was not there
  };
  std::unordered_map<std::string, Entry> entries_;
  std::map<std::int64_t, std::string> by_age_;  // first_delivery -> call id
  std::vector<Undo> undo_;
};

// One write transaction, or a savepoint inside the caller's (a batch of run_batch): every store
// call is atomic on its own and nests inside a batch. Rolls back unless commit() ran, in the
// database and in the unsaved records alike. Inside a batch run without savepoints it takes
// none: when it ends without commit(), it tells the batch, which is then rolled back whole.
class TxScope {
 public:
  TxScope(Control& control, UnsavedCalls& unsaved)
      : control_(control),
        unsaved_(unsaved),
        mark_(unsaved.mark()),
        nested_(sqlite3_get_autocommit(control.db().getHandle()) == 0),
        savepoint_(nested_ && control.savepoints()) {
    if (savepoint_) {
      control_.run("SAVEPOINT store_call");
    } else if (!nested_) {
      control_.run("BEGIN IMMEDIATE");
    }
  }
  ~TxScope() {
    if (done_) return;
    unsaved_.rollback(mark_);
    if (nested_ && !savepoint_) {
      control_.note_failed_without_savepoint();
      return;
    }
    try {
      if (nested_) {
        control_.run("ROLLBACK TO store_call");
        control_.run("RELEASE store_call");
      } else {
        control_.run("ROLLBACK");
      }
    } catch (...) {  // NOLINT(bugprone-empty-catch): a failed rollback leaves SQLite's own
    }
  }
  TxScope(const TxScope&) = delete;
  TxScope& operator=(const TxScope&) = delete;
  bool nested() const { return nested_; }
  void commit() {
    if (savepoint_) {
      control_.run("RELEASE store_call");
    } else if (!nested_) {
      control_.run("COMMIT");
      unsaved_.forget();
    }
    done_ = true;
  }

 private:
  Control& control_;
  UnsavedCalls& unsaved_;
  std::size_t mark_;
  bool nested_;
  bool savepoint_;
  bool done_ = false;
};

std::int64_t clamp_limit(std::size_t limit) {
  return limit > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
             ? std::numeric_limits<std::int64_t>::max()
             : static_cast<std::int64_t>(limit);
}

void migrate(SQLite::Database& db) {
  SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
  const int version = db.execAndGet("PRAGMA user_version").getInt();
  if (version > SqliteStore::kSchemaVersion) {
    throw std::runtime_error("database schema version " + std::to_string(version) +
                             " is newer than this plugin supports (" + std::to_string(SqliteStore::kSchemaVersion) +
                             ")");
  }
  if (version == 0) {
    db.exec(kSchemaV1);
    db.exec("PRAGMA user_version = 1");
  }
  if (version < 2) {
    db.exec(kSchemaV2);
    db.exec("PRAGMA user_version = 2");
  }
  if (version < 3) {
    db.exec(kSchemaV3);
    db.exec("PRAGMA user_version = 3");
  }
  if (version < 4) {
    db.exec(calls_v4_definition(db));
    db.exec(kSchemaV4);
    db.exec("PRAGMA user_version = 4");
  }
  if (version < 5) {
    db.exec(kSchemaV5);
    db.exec("PRAGMA user_version = 5");
  }
  if (version < 6) {
    db.exec(kSchemaV6);
    db.exec("PRAGMA user_version = 6");
  }
  if (version < 7) {
    db.exec(kSchemaV7);
    db.exec("PRAGMA user_version = 7");
  }
  if (version < 8) {
    db.exec(kSchemaV8);
    db.exec("PRAGMA user_version = 8");
  }
  tx.commit();
}

SQLite::Database open_database(const std::string& path, const SqliteOptions& options) {
  // NOMUTEX: one thread at a time uses a store (the plugin's writer thread, or the main thread
  // before it starts), so SQLite's per-call connection mutex would only cost time.
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX,
                      options.busy_timeout_ms);
  // WAL: webhook writes do not block readers, and a commit is one append.
  const std::string mode = db.execAndGet("PRAGMA journal_mode=WAL").getString();
  if (mode != "wal") throw std::runtime_error("cannot enable WAL on " + path + " (journal_mode is " + mode + ")");
  db.exec(options.synchronous == SyncMode::full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  // The statement journals of a batch's savepoints stay in memory: no temporary file created
  // and unlinked on the writer's path.
  db.exec("PRAGMA temp_store=MEMORY");
  migrate(db);
  return db;
}

}  // namespace

FlowResult Store::step_of(const CallRecord& current, const StepFn& fn) {
  FlowResult result = fn(current);
  if (result.record.call_id != current.call_id) throw std::logic_error("flow step changed the call id");
  return result;
}

bool Store::shows_on_host(const std::vector<Action>& actions) {
  return std::any_of(actions.begin(), actions.end(), [](const Action& a) {
    return std::holds_alternative<UpsertMessage>(a) || std::holds_alternative<SetRecordingStatus>(a);
  });
}

struct SqliteStore::Impl {
  explicit Impl(const std::string& path, const SqliteOptions& options)
      : options(options),
        db(open_database(path, options)),
        insert_delivery(db,
                        "INSERT INTO deliveries (received_at, type, call_id, body, inbox) VALUES (?1, ?2, ?3, ?4, ?5)"),
        select_call(db, std::string("SELECT ") + kCallColumns + " FROM calls WHERE call_id = ?1"),
        upsert_call(db, upsert_call_sql(false)),
        // A claimed call's step (the row exists: its claim was just checked), keeping the claim
        // or ending it in the same write.
        update_claimed(db, update_call_sql("", "")),
        update_released(db, update_call_sql(", owner = NULL, lease_until = NULL", "")),
        // A due call's claim and its step in one write: kept (owner ?27, lease ?28) or, when
        // the step left nothing in flight, given back at once; either way the next fence.
        update_claiming(db, update_call_sql(", owner = ?27, lease_until = ?28, fence = fence + 1", " RETURNING fence")),
        write_call(db, upsert_call_sql(true)),
        select_last_delivery(db, "SELECT last_delivery FROM calls WHERE call_id = ?1"),
        select_saved_through(db, "SELECT delivery_id FROM saved_through"),
        // Ids only grow: prune never deletes the newest delivery (SQLite would hand its id out again).
        advance_saved_through(db,
                              "UPDATE saved_through SET delivery_id = (SELECT COALESCE(MAX(id), delivery_id) FROM "
                              "deliveries)"),
        raise_saved_through(db, "UPDATE saved_through SET delivery_id = MAX(delivery_id, ?1)"),
        unsaved_deliveries(db,
                           "SELECT id, received_at, call_id, COALESCE(inbox, ''), body FROM deliveries WHERE id > ?1 "
                           "AND call_id IS NOT NULL ORDER BY id"),
        attach(db,
               "INSERT INTO attachments (call_id, attachment_id, attached_at) VALUES (?1, ?2, ?3) "
               "ON CONFLICT(call_id) DO NOTHING"),
        select_attachment(db, "SELECT attachment_id FROM attachments WHERE call_id = ?1"),
        earliest(db,
                 "SELECT MIN(next_attempt_at) FROM calls WHERE next_attempt_at IS NOT NULL AND lease_until IS NULL"),
        earliest_lease_end(db, "SELECT MIN(lease_until) FROM calls WHERE lease_until IS NOT NULL"),
        in_flight(db, std::string("SELECT ") + kCallColumns +
                          " FROM calls INDEXED BY calls_in_flight WHERE " WAVOIP_IN_FLIGHT
                          " AND call_id > ?1"
                          " ORDER BY call_id LIMIT ?2"),
        pending(db, "SELECT COUNT(*) FROM calls INDEXED BY calls_pending WHERE " WAVOIP_PENDING),
        deliveries(db, "SELECT COUNT(*) FROM deliveries"),
        prune(db, "DELETE FROM deliveries WHERE received_at < ?1 AND id < (SELECT MAX(id) FROM deliveries)"),
        mark_behind(db, "INSERT INTO host_sync (call_id) VALUES (?1) ON CONFLICT(call_id) DO NOTHING"),
        clear_behind(db, "DELETE FROM host_sync WHERE call_id = ?1"),
        behind(db, std::string("SELECT ") + kCallColumns +
                       " FROM calls WHERE call_id IN (SELECT call_id FROM host_sync WHERE call_id > ?1"
                       " ORDER BY call_id LIMIT ?2) ORDER BY call_id"),
        // Two scans that each follow an index in order (one OR over both would sort every due
        // row on each claim): due polls no claim holds, and claims whose lease ended.
        claimable_due(db,
                      "SELECT call_id, next_attempt_at FROM calls WHERE next_attempt_at IS NOT NULL AND "
                      "next_attempt_at <= ?1 AND lease_until IS NULL ORDER BY next_attempt_at, call_id LIMIT ?2"),
        claimable_lapsed(db,
                         "SELECT call_id, COALESCE(next_attempt_at, lease_until) FROM calls WHERE lease_until IS NOT "
                         "NULL AND lease_until <= ?1 ORDER BY lease_until, call_id LIMIT ?2"),
        take_claim(db, std::string("UPDATE calls SET owner = ?2, lease_until = ?3, fence = fence + 1 WHERE call_id = ?1"
                                   " RETURNING ") +
                           kCallColumns + ", fence"),
        select_claimed(db, std::string("SELECT ") + kCallColumns +
                               " FROM calls WHERE call_id = ?1 AND fence = ?2 AND lease_until IS NOT NULL"),
        renew(db, "UPDATE calls SET lease_until = ?3 WHERE call_id = ?1 AND fence = ?2 AND lease_until IS NOT NULL"),
        end_claim(db,
                  "UPDATE calls SET owner = NULL, lease_until = NULL WHERE call_id = ?1 AND fence = ?2 AND lease_until "
                  "IS NOT NULL"),
        claim_one(db, std::string("UPDATE calls SET owner = ?2, lease_until = ?3, fence = fence + 1 WHERE call_id = ?1"
                                  " AND (lease_until IS NULL OR lease_until <= ?4)"
                                  " AND NOT EXISTS (SELECT 1 FROM attachments WHERE call_id = ?1) RETURNING ") +
                          kCallColumns + ", fence") {
    if (options.background_checkpoint_pages > 0) {
      checkpoint = std::make_unique<sqlite_wal::BackgroundCheckpoint>(
          path, db.getHandle(), options.background_checkpoint_pages,
          std::max(options.wal_cap_pages, options.background_checkpoint_pages), options.synchronous == SyncMode::full,
          "wavoip-ckpt");
    }
  }

  // Appends the delivery and applies it to its call, inside the caller's transaction; the call's
  // new record joins the unsaved ones.
  DeliveryResult record_one(std::string_view raw_body, const Event& event, std::string_view inbox, TimeMs now,
                            const StepFn& fn);

  // Writes a record with the latest delivery it includes, and its host mark when it has one.
  void write(const UnsavedCalls::Entry& entry) {
    {
      Use s(write_call);
      bind_call(*s, entry.record);
      s->bind(kCallColumnCount + 1, static_cast<std::int64_t>(entry.last_delivery));
      s->exec();
    }
    if (entry.behind) {
      Use s(mark_behind);
      s->bind(1, entry.record.call_id);
      s->exec();
    }
  }

  // Before anything else reads or writes the call's row: its unsaved record goes to disk.
  void settle(std::string_view call_id) {
    const std::string key(call_id);
    if (!unsaved.find(key)) return;
    TxScope tx(control, unsaved);
    write(*unsaved.take(key));
    tx.commit();
  }

  // Every unsaved record to disk, and the mark that every delivery so far is in the rows.
  void save_all() {
    if (unsaved.empty()) return;
    TxScope tx(control, unsaved);
    for (const auto& [call_id, entry] : unsaved.take_oldest(unsaved.size())) write(entry);
    Use(advance_saved_through)->exec();
    tx.commit();
  }

  // At the end of a transaction of deliveries, once write_back_calls records are held or the
  // oldest has waited write_back_ms: the oldest slice of them to disk (an eighth of
  // write_back_calls, more when a batch brought more), and the mark moved up to the first
  // delivery still held. A slice, not all: the transaction that writes them holds up the 202s
  // of its deliveries, and 256 rows at once cost several milliseconds.
  void maybe_save() {
    if (unsaved.empty()) return;
    const bool full = unsaved.size() >= options.write_back_calls;
    if (!full && unsaved.waited() < std::chrono::milliseconds(options.write_back_ms)) return;
    const std::size_t slice = std::max<std::size_t>(1, options.write_back_calls / kWriteBackSlices);
    const std::size_t over = full ? unsaved.size() - options.write_back_calls : 0;
    TxScope tx(control, unsaved);
    for (const auto& [call_id, entry] : unsaved.take_oldest(slice + over)) write(entry);
    if (const std::optional<std::int64_t> first = unsaved.first_unsaved_delivery()) {
      Use s(raise_saved_through);
      s->bind(1, *first - 1);
      s->exec();
    } else {
      Use(advance_saved_through)->exec();
    }
    tx.commit();
  }

  std::optional<CallRecord> load(std::string_view call_id) {
    Use s(select_call);
    s->bind(1, std::string(call_id));
    if (!s->executeStep()) return std::nullopt;
    return read_call(*s);
  }

  void save(const CallRecord& r) {
    if (r.call_id.empty()) throw std::invalid_argument("CallRecord without call_id");
    Use s(upsert_call);
    bind_call(*s, r);
    s->exec();
  }

  // A step that asked the host to show something: its call is behind the host until shown.
  void mark_if_shown(const FlowResult& result) {
    if (!shows_on_host(result.actions)) return;
    Use s(mark_behind);
    s->bind(1, result.record.call_id);
    s->exec();
  }

  FlowResult apply(const CallRecord& current, const StepFn& fn) {
    FlowResult result = step_of(current, fn);
    save(result.record);
    mark_if_shown(result);
    return result;
  }

  // Due polls no claim holds and claims whose lease ended, at most `limit`, earliest due first
  // (a lapsed claim counts from its poll time, or else its lease end), ties by call id: the
  // first `limit` of both scans, merged.
  std::vector<std::string> claimable(TimeMs now, std::size_t limit) {
    std::vector<std::pair<std::int64_t, std::string>> picked;
    for (SQLite::Statement* scan : {&claimable_due, &claimable_lapsed}) {
      Use s(*scan);
      s->bind(1, static_cast<std::int64_t>(now));
      s->bind(2, clamp_limit(limit));
      while (s->executeStep()) picked.emplace_back(s->getColumn(1).getInt64(), s->getColumn(0).getString());
    }
    std::sort(picked.begin(), picked.end());
    if (picked.size() > limit) picked.resize(limit);
    std::vector<std::string> ids;
    ids.reserve(picked.size());
    for (auto& [due, id] : picked) ids.push_back(std::move(id));
    return ids;
  }

  std::vector<CallRecord> read_all(Use& s) {
    std::vector<CallRecord> out;
    while (s->executeStep()) out.push_back(read_call(*s));
    return out;
  }

  const SqliteOptions options;
  SQLite::Database db;
  SQLite::Statement insert_delivery;
  SQLite::Statement select_call;
  SQLite::Statement upsert_call;
  SQLite::Statement update_claimed;
  SQLite::Statement update_released;
  SQLite::Statement update_claiming;
  SQLite::Statement write_call;
  SQLite::Statement select_last_delivery;
  SQLite::Statement select_saved_through;
  SQLite::Statement advance_saved_through;
  SQLite::Statement raise_saved_through;
  SQLite::Statement unsaved_deliveries;
  SQLite::Statement attach;
  SQLite::Statement select_attachment;
  SQLite::Statement earliest;
  SQLite::Statement earliest_lease_end;
  SQLite::Statement in_flight;
  SQLite::Statement pending;
  SQLite::Statement deliveries;
  SQLite::Statement prune;
  SQLite::Statement mark_behind;
  SQLite::Statement clear_behind;
  SQLite::Statement behind;
  SQLite::Statement claimable_due;
  SQLite::Statement claimable_lapsed;
  SQLite::Statement take_claim;
  SQLite::Statement select_claimed;
  SQLite::Statement renew;
  SQLite::Statement end_claim;
  SQLite::Statement claim_one;
  Control control{db};  // after db: its statements are finalized before db closes
  UnsavedCalls unsaved;
  std::unique_ptr<sqlite_wal::BackgroundCheckpoint> checkpoint;  // last: stops before anything else closes
};

SqliteStore::SqliteStore(const std::string& path, SqliteOptions options)
    : impl_(std::make_unique<Impl>(path, options)) {}

SqliteStore::~SqliteStore() {
  // A clean stop leaves nothing to replay.
  try {
    impl_->save_all();
  } catch (...) {  // NOLINT(bugprone-empty-catch): the deliveries are stored; a restart replays them
  }
}

// A batch's first run: no savepoint for each job and each store call in it. A savepoint costs
// four statements per job, and a copy of every page a job changes into the statement journal.
// True when every job ran and the batch committed; false when one failed (threw, or a store call
// in it failed): then the transaction is rolled back whole, nothing of it is written, and
// run_batch runs the jobs again with savepoints, where the failing one fails alone. Throws when
// BEGIN, the write-back or COMMIT fails.
bool SqliteStore::run_batch_without_savepoints(const std::vector<std::function<void()>>& jobs) {
  TxScope tx(impl_->control, impl_->unsaved);
  struct Restore {
    Control& control;
    ~Restore() { control.set_savepoints(true); }
  } restore{impl_->control};
  impl_->control.set_savepoints(false);
  for (const auto& job : jobs) {
    try {
      job();
    } catch (const std::exception&) {
      return false;
    }
    if (impl_->control.failed_without_savepoint()) return false;  // a store call failed inside the job
  }
  impl_->maybe_save();
  tx.commit();
  return true;
}

std::vector<std::string> SqliteStore::run_batch(const std::vector<std::function<void()>>& jobs) {
  std::vector<std::string> errors(jobs.size());
  if (jobs.empty()) return errors;
  try {
    const bool outermost = sqlite3_get_autocommit(impl_->db.getHandle()) != 0;
    if (outermost && run_batch_without_savepoints(jobs)) return errors;
    if (outermost) ++rerun_batches_;
    TxScope tx(impl_->control, impl_->unsaved);
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      impl_->control.run("SAVEPOINT batch_job");
      const std::size_t mark = impl_->unsaved.mark();
      try {
        jobs[i]();
        impl_->control.run("RELEASE batch_job");
      } catch (const std::exception& e) {
        errors[i] = *e.what() != '\0' ? e.what() : "store error";
        impl_->unsaved.rollback(mark);
        impl_->control.run("ROLLBACK TO batch_job");
        impl_->control.run("RELEASE batch_job");
      }
    }
    impl_->maybe_save();
    tx.commit();
  } catch (const std::exception& e) {
    // BEGIN, a savepoint statement or the commit failed: the transaction rolled back whole.
    const std::string why = *e.what() != '\0' ? e.what() : "store error";
    for (std::string& error : errors) {
      if (error.empty()) error = why;
    }
  }
  return errors;
}

Store::DeliveryResult SqliteStore::record_delivery_and_apply(std::string_view raw_body, const Event& event,
                                                             std::string_view inbox, TimeMs now, const StepFn& fn) {
  TxScope tx(impl_->control, impl_->unsaved);
  DeliveryResult result = impl_->record_one(raw_body, event, inbox, now, fn);
  if (!tx.nested()) impl_->maybe_save();
  tx.commit();
  return result;
}

Store::DeliveryResult SqliteStore::Impl::record_one(std::string_view raw_body, const Event& event,
                                                    std::string_view inbox, TimeMs now, const StepFn& fn) {
  DeliveryResult result;
  const std::optional<std::string_view> call_id = event_call_id(event);
  {
    Use s(insert_delivery);
    s->bind(1, static_cast<std::int64_t>(now));
    s->bind(2, std::string(event_type_name(event)));
    if (call_id)
      s->bind(3, std::string(*call_id));
    else
      s->bind(3);
    // Raw bytes, exactly as received (a blob: the body is not trusted to be text). A null
    // pointer would bind NULL, hence "" for an empty body.
    if (raw_body.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
      throw std::length_error("webhook body too large to store");
    }
    s->bind(4, raw_body.empty() ? "" : raw_body.data(), static_cast<int>(raw_body.size()));
    // The inbox only matters to a call's step (replay_unsaved).
    if (call_id && !inbox.empty())
      s->bind(5, std::string(inbox));
    else
      s->bind(5);
    s->exec();
  }
  result.delivery_id = db.getLastInsertRowid();
  if (call_id) {
    const std::string key(*call_id);
    UnsavedCalls::Entry entry;
    if (const UnsavedCalls::Entry* held = unsaved.find(key)) {
      entry = *held;
    } else {
      std::optional<CallRecord> saved = load(key);
      entry.new_call = !saved;
      entry.record = saved ? std::move(*saved) : new_call_record(key);
    }
    FlowResult step = step_of(entry.record, fn);
    entry.record = step.record;
    entry.last_delivery = result.delivery_id;
    entry.behind = entry.behind || shows_on_host(step.actions);
    unsaved.put(key, std::move(entry));
    result.record = std::move(step.record);
    result.actions = std::move(step.actions);
  }
  return result;
}

std::int64_t SqliteStore::replay_unsaved(const ReplayFn& fn) {
  Impl& d = *impl_;
  d.save_all();
  TxScope tx(d.control, d.unsaved);
  std::int64_t saved_through = 0;
  {
    Use s(d.select_saved_through);
    if (s->executeStep()) saved_through = s->getColumn(0).getInt64();
  }
  std::int64_t replayed = 0;
  {
    Use s(d.unsaved_deliveries);
    s->bind(1, static_cast<std::int64_t>(saved_through));
    while (s->executeStep()) {
      const std::int64_t id = s->getColumn(0).getInt64();
      const TimeMs received_at = s->getColumn(1).getInt64();
      const std::string call_id = s->getColumn(2).getString();
      const std::string inbox = s->getColumn(3).getString();
      const SQLite::Column body = s->getColumn(4);
      std::int64_t last_delivery = 0;
      {
        Use last(d.select_last_delivery);
        last->bind(1, call_id);
        if (last->executeStep()) last_delivery = last->getColumn(0).getInt64();
      }
      if (last_delivery >= id) continue;  // its row includes this delivery already
      const CallRecord current = d.load(call_id).value_or(new_call_record(call_id));
      const std::string_view raw(static_cast<const char*>(body.getBlob()), static_cast<std::size_t>(body.getBytes()));
      std::optional<FlowResult> step = fn(current, raw, inbox, received_at);
      if (!step) continue;
      if (step->record.call_id != call_id) throw std::logic_error("flow step changed the call id");
      // Whatever it asked the host to show may not have reached it before the crash.
      d.write(UnsavedCalls::Entry{std::move(step->record), id, true, false});
      ++replayed;
    }
  }
  Use(d.advance_saved_through)->exec();
  tx.commit();
  return replayed;
}

void SqliteStore::save_unsaved() {
  impl_->save_all();
}

std::size_t SqliteStore::unsaved_calls() const {
  return impl_->unsaved.size();
}

std::optional<FlowResult> SqliteStore::apply_to_call(std::string_view call_id, const StepFn& fn) {
  TxScope tx(impl_->control, impl_->unsaved);
  impl_->settle(call_id);
  std::optional<CallRecord> current = impl_->load(call_id);
  if (!current) return std::nullopt;
  FlowResult result = impl_->apply(*current, fn);
  tx.commit();
  return result;
}

std::optional<CallRecord> SqliteStore::load_call(std::string_view call_id) {
  impl_->settle(call_id);
  return impl_->load(call_id);
}

void SqliteStore::save_call(const CallRecord& record) {
  impl_->settle(record.call_id);
  impl_->save(record);
}

bool SqliteStore::mark_attached(std::string_view call_id, std::string_view attachment_id, TimeMs now) {
  TxScope tx(impl_->control, impl_->unsaved);
  bool inserted = false;
  {
    Use s(impl_->attach);
    s->bind(1, std::string(call_id));
    s->bind(2, std::string(attachment_id));
    s->bind(3, static_cast<std::int64_t>(now));
    inserted = s->exec() == 1;
  }
  tx.commit();
  return inserted;
}

std::optional<std::string> SqliteStore::attachment_of(std::string_view call_id) {
  Use s(impl_->select_attachment);
  s->bind(1, std::string(call_id));
  if (!s->executeStep()) return std::nullopt;
  return s->getColumn(0).getString();
}

std::optional<TimeMs> SqliteStore::earliest_due() {
  std::optional<TimeMs> due;
  std::optional<TimeMs> lease_end;
  {
    Use s(impl_->earliest);
    if (s->executeStep()) due = optional_int(s->getColumn(0));
  }
  {
    Use s(impl_->earliest_lease_end);
    if (s->executeStep()) lease_end = optional_int(s->getColumn(0));
  }
  // A record not written yet may be due sooner than any row says. (A row may also say sooner
  // than its unsaved record: claim_due writes the records first and finds nothing then.)
  for (const std::optional<TimeMs>& other : {lease_end, impl_->unsaved.earliest_due()}) {
    if (other && (!due || *other < *due)) due = other;
  }
  return due;
}

std::vector<CallRecord> SqliteStore::calls_needing_resume(std::size_t limit, std::string_view after_call_id) {
  impl_->save_all();
  Use s(impl_->in_flight);
  s->bind(1, std::string(after_call_id));
  s->bind(2, clamp_limit(limit));
  return impl_->read_all(s);
}

std::int64_t SqliteStore::count_pending() {
  impl_->save_all();
  Use s(impl_->pending);
  s->executeStep();
  return s->getColumn(0).getInt64();
}

std::int64_t SqliteStore::delivery_count() {
  Use s(impl_->deliveries);
  s->executeStep();
  return s->getColumn(0).getInt64();
}

std::int64_t SqliteStore::prune_deliveries(TimeMs before) {
  Use s(impl_->prune);
  s->bind(1, static_cast<std::int64_t>(before));
  return s->exec();
}

std::vector<CallRecord> SqliteStore::calls_behind_host(std::size_t limit, std::string_view after_call_id) {
  impl_->save_all();
  Use s(impl_->behind);
  s->bind(1, std::string(after_call_id));
  s->bind(2, clamp_limit(limit));
  return impl_->read_all(s);
}

void SqliteStore::mark_host_synced(const std::vector<std::string>& call_ids) {
  if (call_ids.empty()) return;
  TxScope tx(impl_->control, impl_->unsaved);
  for (const std::string& call_id : call_ids) {
    if (const UnsavedCalls::Entry* held = impl_->unsaved.find(call_id)) {
      const bool never_written = held->new_call;  // so no mark on disk either
      if (held->behind) {
        UnsavedCalls::Entry shown = *held;
        shown.behind = false;
        impl_->unsaved.put(call_id, std::move(shown));
      }
      if (never_written) continue;
    }
    Use s(impl_->clear_behind);
    s->bind(1, call_id);
    s->exec();
  }
  tx.commit();
}

std::vector<Store::Claim> SqliteStore::claim_due(std::string_view owner, TimeMs now, TimeMs lease_ms,
                                                 std::size_t limit) {
  // One writer at a time (BEGIN IMMEDIATE): the calls picked are the calls taken.
  TxScope tx(impl_->control, impl_->unsaved);
  impl_->save_all();
  std::vector<Claim> claims;
  for (const std::string& id : impl_->claimable(now, limit)) {
    Use s(impl_->take_claim);
    s->bind(1, id);
    s->bind(2, std::string(owner));
    s->bind(3, static_cast<std::int64_t>(now + lease_ms));
    if (!s->executeStep()) throw std::runtime_error("claimed call " + id + " vanished");
    Claim claim;
    claim.record = read_call(*s);
    claim.fence = s->getColumn(kCallColumnCount).getInt64();
    claim.lease_until = now + lease_ms;
    claims.push_back(std::move(claim));
  }
  tx.commit();
  return claims;
}

bool SqliteStore::renew_claim(std::string_view call_id, std::int64_t fence, TimeMs lease_until) {
  Use s(impl_->renew);
  s->bind(1, std::string(call_id));
  s->bind(2, static_cast<std::int64_t>(fence));
  s->bind(3, static_cast<std::int64_t>(lease_until));
  return s->exec() == 1;
}

std::optional<FlowResult> SqliteStore::apply_to_claimed_call(std::string_view call_id, std::int64_t fence,
                                                             ClaimAfter after, const StepFn& fn) {
  TxScope tx(impl_->control, impl_->unsaved);
  impl_->settle(call_id);
  std::optional<CallRecord> current;
  {
    Use s(impl_->select_claimed);
    s->bind(1, std::string(call_id));
    s->bind(2, static_cast<std::int64_t>(fence));
    if (s->executeStep()) current = read_call(*s);
  }
  if (!current) return std::nullopt;  // another node claimed it since: write nothing
  FlowResult result = step_of(*current, fn);
  const bool release =
      after == ClaimAfter::release || (after == ClaimAfter::release_unless_busy && !result.record.busy());
  {
    Use s(release ? impl_->update_released : impl_->update_claimed);
    bind_call(*s, result.record);
    s->exec();
  }
  impl_->mark_if_shown(result);
  tx.commit();
  return result;
}

std::vector<Store::ClaimedStep> SqliteStore::claim_due_and_apply(std::string_view owner, TimeMs now, TimeMs lease_ms,
                                                                 std::size_t limit, const StepFn& fn) {
  // One writer at a time (BEGIN IMMEDIATE): the calls picked are the calls taken. Each call is
  // read and written once: its claim and its step are one update.
  TxScope tx(impl_->control, impl_->unsaved);
  impl_->save_all();
  std::vector<ClaimedStep> steps;
  for (const std::string& id : impl_->claimable(now, limit)) {
    std::optional<CallRecord> current = impl_->load(id);
    if (!current) throw std::runtime_error("claimed call " + id + " vanished");
    FlowResult result = step_of(*current, fn);
    const bool keep = result.record.busy();
    std::optional<std::int64_t> fence;
    {
      Use s(impl_->update_claiming);
      bind_call(*s, result.record);
      if (keep) {
        s->bind(kCallColumnCount + 1, std::string(owner));
        s->bind(kCallColumnCount + 2, static_cast<std::int64_t>(now + lease_ms));
      } else {
        s->bind(kCallColumnCount + 1);
        s->bind(kCallColumnCount + 2);
      }
      if (!s->executeStep()) throw std::runtime_error("claimed call " + id + " vanished");
      if (keep) fence = s->getColumn(0).getInt64();
    }
    impl_->mark_if_shown(result);
    steps.push_back(ClaimedStep{std::move(result), fence});
  }
  tx.commit();
  return steps;
}

bool SqliteStore::release_claim(std::string_view call_id, std::int64_t fence) {
  Use s(impl_->end_claim);
  s->bind(1, std::string(call_id));
  s->bind(2, static_cast<std::int64_t>(fence));
  return s->exec() == 1;
}

std::optional<Store::Claim> SqliteStore::claim_call(std::string_view call_id, std::string_view owner, TimeMs now,
                                                    TimeMs lease_ms) {
  impl_->settle(call_id);
  Use s(impl_->claim_one);
  s->bind(1, std::string(call_id));
  s->bind(2, std::string(owner));
  s->bind(3, static_cast<std::int64_t>(now + lease_ms));
  s->bind(4, static_cast<std::int64_t>(now));
  if (!s->executeStep()) return std::nullopt;
  Claim claim;
  claim.record = read_call(*s);
  claim.fence = s->getColumn(kCallColumnCount).getInt64();
  claim.lease_until = now + lease_ms;
  return claim;
}

std::int64_t SqliteStore::release_all_claims() {
  return impl_->db.exec("UPDATE calls SET owner = NULL, lease_until = NULL WHERE lease_until IS NOT NULL");
}

std::string SqliteStore::journal_mode() {
  return impl_->db.execAndGet("PRAGMA journal_mode").getString();
}

int SqliteStore::synchronous_level() {
  return impl_->db.execAndGet("PRAGMA synchronous").getInt();
}

std::vector<std::string> SqliteStore::writes_building_temporary_tables() {
  std::vector<std::string> found;
  const std::pair<const char*, SQLite::Statement*> writes[] = {{"insert_delivery", &impl_->insert_delivery},
                                                               {"upsert_call", &impl_->upsert_call},
                                                               {"write_call", &impl_->write_call},
                                                               {"update_claimed", &impl_->update_claimed},
                                                               {"update_released", &impl_->update_released},
                                                               {"renew", &impl_->renew},
                                                               {"end_claim", &impl_->end_claim},
                                                               {"mark_behind", &impl_->mark_behind},
                                                               {"clear_behind", &impl_->clear_behind},
                                                               {"attach", &impl_->attach}};
  for (const auto& [name, statement] : writes) {
    SQLite::Statement explain(impl_->db, "EXPLAIN " + statement->getQuery());
    while (explain.executeStep()) {
      if (explain.getColumn(1).getString() == "OpenEphemeral") {
        found.emplace_back(name);
        break;
      }
    }
  }
  return found;
}

std::vector<std::string> SqliteStore::hot_query_plans() {
  std::vector<std::string> plans;
  const std::pair<const char*, SQLite::Statement*> hot[] = {
      {"earliest", &impl_->earliest},           {"lease_end", &impl_->earliest_lease_end},
      {"claimable_due", &impl_->claimable_due}, {"claimable_lapsed", &impl_->claimable_lapsed},
      {"in_flight", &impl_->in_flight},         {"pending", &impl_->pending}};
  for (const auto& [name, statement] : hot) {
    SQLite::Statement explain(impl_->db, "EXPLAIN QUERY PLAN " + statement->getQuery());
    std::string plan = std::string(name) + ":";
    while (explain.executeStep()) plan += " " + explain.getColumn(3).getString() + ";";
    plans.push_back(std::move(plan));
  }
  return plans;
}

}  // namespace wavoip

#undef WAVOIP_IN_FLIGHT
#undef WAVOIP_PENDING
