#include "wavoip/store/pg_store.hpp"

#include "sql_text.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <exception>
#include <chrono>
#include <limits>
#include <random>
#include <thread>
#include <utility>

namespace wavoip {
namespace {

// Serializes migrations of every node on this database (pg_advisory_xact_lock's key space is
// per database): "wavoip" in ASCII.
constexpr std::int64_t kMigrationLockKey = 0x7761766F6970;

// Schema version 1: what SQLite's versions 1 and 2 hold, in the schema `wavoip`. Call ids compare
// byte-wise (COLLATE "C") so paging and tie orders match SQLite's whatever the database's
// collation. Partial indexes keep the hot queries proportional to what they return.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE wavoip.deliveries (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  received_at bigint NOT NULL,
  type        text NOT NULL,
  call_id     text COLLATE "C",
  body        bytea NOT NULL
);
CREATE INDEX deliveries_by_call ON wavoip.deliveries(call_id) WHERE call_id IS NOT NULL;
CREATE INDEX deliveries_by_time ON wavoip.deliveries(received_at);

CREATE TABLE wavoip.calls (
  call_id           text COLLATE "C" PRIMARY KEY,
  inbox             text NOT NULL DEFAULT '',
  direction         text NOT NULL DEFAULT 'UNKNOWN',
  caller            text NOT NULL DEFAULT '',
  receiver          text NOT NULL DEFAULT '',
  session_id        text NOT NULL DEFAULT '',
  call_kind         text NOT NULL DEFAULT '',
  call_status       text NOT NULL DEFAULT '',
  answered          boolean NOT NULL DEFAULT false,
  duration_s        bigint,
  ended_at          bigint,
  recording         text NOT NULL DEFAULT 'none',
  reason            text NOT NULL DEFAULT '',
  record_url        text NOT NULL DEFAULT '',
  attempt           bigint NOT NULL DEFAULT 0,
  next_attempt_at   bigint,
  deadline_at       bigint,
  last_result       text NOT NULL DEFAULT '',
  recording_file    text NOT NULL DEFAULT '',
  content_type      text NOT NULL DEFAULT '',
  recording_bytes   bigint NOT NULL DEFAULT 0,
  message_requested boolean NOT NULL DEFAULT false,
  message_id        text NOT NULL DEFAULT '',
  created_at        bigint NOT NULL,
  updated_at        bigint NOT NULL
);
CREATE INDEX calls_due ON wavoip.calls(next_attempt_at, call_id) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX calls_in_flight ON wavoip.calls(call_id) WHERE recording IN ('fetching', 'attaching');
CREATE INDEX calls_pending ON wavoip.calls(recording) WHERE recording IN ('waiting', 'fetching', 'attaching');

-- At most one download per call at a time, across connections and nodes.
CREATE TABLE wavoip.fetch_claims (
  call_id    text COLLATE "C" PRIMARY KEY,
  claimed_at bigint NOT NULL
);

-- At most one attachment per call, ever.
CREATE TABLE wavoip.attachments (
  call_id       text COLLATE "C" PRIMARY KEY,
  attachment_id text NOT NULL,
  attached_at   bigint NOT NULL
);

-- Calls whose message on the host may be behind the stored record (see SqliteStore).
CREATE TABLE wavoip.host_sync (
  call_id text COLLATE "C" PRIMARY KEY
);
)sql";

// Schema version 2: claims with leases (see Store::claim_due). `fence` grows with every claim;
// `owner` and `lease_until` are set while a claim holds.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE wavoip.calls ADD COLUMN owner text, ADD COLUMN lease_until bigint,
  ADD COLUMN fence bigint NOT NULL DEFAULT 0;
CREATE INDEX calls_leased ON wavoip.calls(lease_until, call_id) WHERE lease_until IS NOT NULL;
)sql";

constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE wavoip.calls ADD COLUMN reason_detail text NOT NULL DEFAULT '';
)sql";

// Schema version 4: downloads and attachments in flight are claims with leases on the call
// (Store::claim_call), so that a node that dies leaves them to the others.
constexpr const char* kSchemaV4 = R"sql(
DROP TABLE wavoip.fetch_claims;
)sql";

// Schema version 5: calls_due holds only the calls that no node has claimed, which is what every
// query reading it asks for. A prepared statement's plan may be made while the table is empty
// (a new database) and kept while it grows: with an index that matches the query exactly, that
// plan still reads the index in order; with the wider one it scanned the whole table.
constexpr const char* kSchemaV5 = R"sql(
DROP INDEX wavoip.calls_due;
CREATE INDEX calls_due ON wavoip.calls(next_attempt_at, call_id) WHERE next_attempt_at IS NOT NULL AND lease_until IS NULL;
)sql";

// Migration N brings the schema from version N-1 to N.
constexpr std::array<const char*, PgStore::kSchemaVersion> kMigrations = {kSchemaV1, kSchemaV2, kSchemaV3, kSchemaV4,
                                                                          kSchemaV5};

constexpr const char* kCallColumns =
    "call_id, inbox, direction, caller, receiver, session_id, call_kind, call_status, answered, duration_s, "
    "ended_at, recording, reason, record_url, attempt, next_attempt_at, deadline_at, last_result, "
    "recording_file, content_type, recording_bytes, message_requested, message_id, created_at, updated_at, "
    "reason_detail";
constexpr int kCallColumnCount = 26;

std::string insert_call_sql(bool replace) {
  std::string sql = std::string("INSERT INTO wavoip.calls (") + kCallColumns + ") VALUES (";
  for (int i = 1; i <= kCallColumnCount; ++i) sql += (i > 1 ? ", $" : "$") + std::to_string(i);
  if (!replace) return sql + ") ON CONFLICT (call_id) DO NOTHING";
  // Every column but the key takes the new value.
  return sql + ") ON CONFLICT (call_id) DO UPDATE SET " +
         sql_text::assign_all_but_key(kCallColumns, [](const std::string& name, int) { return "EXCLUDED." + name; });
}

// The write of a due call's step under the claim this transaction just took (its row is locked
// by the claim's update): every column but the key from $2 to $26, the claim kept ($27 true) or
// given back, checked against its fence ($28).
std::string update_claimed_sql() {
  return "UPDATE wavoip.calls SET " +
         sql_text::assign_all_but_key(kCallColumns,
                                      [](const std::string&, int index) { return "$" + std::to_string(index); }) +
         ", owner = CASE WHEN $27::boolean THEN owner END, lease_until = CASE WHEN $27::boolean THEN lease_until END "
         "WHERE call_id = $1::text AND fence = $28::bigint";
}

// kCallColumns, each qualified by `alias`.
std::string qualified_call_columns(const std::string& alias) {
  std::string out = alias + ".";
  for (const char* c = kCallColumns; *c != '\0'; ++c) {
    out.push_back(*c);
    if (*c == ' ') out += alias + ".";
  }
  return out;
}

std::string select_calls(const std::string& rest) {
  return std::string("SELECT ") + kCallColumns + " FROM wavoip.calls " + rest;
}

// The prepared statements, by index; their names are "wavoip_<index>".
enum Stmt : int {
  kInsertDelivery,
  kSelectCall,
  kLockCall,
  kUpsertCall,
  kInsertCallIfAbsent,
  kClaimCall,
  kIsAttached,
  kReleaseAll,
  kAttach,
  kSelectAttachment,
  kEarliest,
  kInFlight,
  kPending,
  kDeliveries,
  kPrune,
  kMarkBehind,
  kClearBehind,
  kBehind,
  kClaimDue,
  kSelectClaimed,
  kRenewClaim,
  kEndClaim,
  kUpdateClaimed,
  kStmtCount
};

std::array<std::string, kStmtCount> statement_sql() {
  std::array<std::string, kStmtCount> s;
  s[kInsertDelivery] =
      "INSERT INTO wavoip.deliveries (received_at, type, call_id, body) VALUES ($1::bigint, $2::text, $3::text, "
      "$4::bytea) RETURNING id";
  s[kSelectCall] = select_calls("WHERE call_id = $1::text");
  s[kLockCall] = select_calls("WHERE call_id = $1::text FOR UPDATE");
  s[kUpsertCall] = insert_call_sql(true);
  s[kInsertCallIfAbsent] = insert_call_sql(false);
  s[kClaimCall] =
      "UPDATE wavoip.calls SET owner = $2::text, lease_until = $3::bigint, fence = fence + 1 WHERE call_id = $1::text "
      "AND (lease_until IS NULL OR lease_until <= $4::bigint) "
      "AND NOT EXISTS (SELECT 1 FROM wavoip.attachments WHERE call_id = $1::text) RETURNING " +
      std::string(kCallColumns) + ", fence";
  s[kIsAttached] = "SELECT 1 FROM wavoip.attachments WHERE call_id = $1::text";
  s[kReleaseAll] = "UPDATE wavoip.calls SET owner = NULL, lease_until = NULL WHERE lease_until IS NOT NULL";
  s[kAttach] =
      "INSERT INTO wavoip.attachments (call_id, attachment_id, attached_at) VALUES ($1::text, $2::text, $3::bigint) "
      "ON CONFLICT (call_id) DO NOTHING";
  s[kSelectAttachment] = "SELECT attachment_id FROM wavoip.attachments WHERE call_id = $1::text";
  // LEAST ignores NULLs: the earliest unclaimed poll or the earliest lease end, one round trip.
  // ORDER BY ... LIMIT 1 rather than MIN: planned on an empty table, MIN became an aggregate over
  // a whole scan, and that plan stayed with the prepared statement (see kSchemaV5).
  s[kEarliest] =
      "SELECT LEAST((SELECT next_attempt_at FROM wavoip.calls WHERE next_attempt_at IS NOT NULL AND lease_until IS "
      "NULL ORDER BY next_attempt_at LIMIT 1), (SELECT lease_until FROM wavoip.calls WHERE lease_until IS NOT NULL "
      "ORDER BY lease_until LIMIT 1))";
  s[kInFlight] = select_calls(
      "WHERE recording IN ('fetching', 'attaching') AND call_id > $1::text ORDER BY call_id LIMIT $2::bigint");
  s[kPending] = "SELECT COUNT(*) FROM wavoip.calls WHERE recording IN ('waiting', 'fetching', 'attaching')";
  s[kDeliveries] = "SELECT COUNT(*) FROM wavoip.deliveries";
  s[kPrune] = "DELETE FROM wavoip.deliveries WHERE received_at < $1::bigint";
  s[kMarkBehind] = "INSERT INTO wavoip.host_sync (call_id) VALUES ($1::text) ON CONFLICT (call_id) DO NOTHING";
  s[kClearBehind] = "DELETE FROM wavoip.host_sync WHERE call_id = ANY($1::text[])";
  s[kBehind] = select_calls(
      "WHERE call_id IN (SELECT call_id FROM wavoip.host_sync WHERE call_id > $1::text ORDER BY call_id "
      "LIMIT $2::bigint) ORDER BY call_id");
  // Rows another node is claiming right now are skipped, not waited for; a row that another
  // node claimed and committed meanwhile is re-checked against the WHERE and left out.
  // Two scans that each follow an index in order (one OR over both sorts every due row on each
  // claim), each skipping what other nodes are claiming; the first `limit` of both, merged.
  s[kClaimDue] =
      "WITH due AS (SELECT call_id, next_attempt_at AS due FROM wavoip.calls WHERE lease_until IS NULL AND "
      "next_attempt_at <= $2::bigint ORDER BY next_attempt_at, call_id LIMIT $4::bigint FOR UPDATE SKIP LOCKED), "
      "lapsed AS (SELECT call_id, COALESCE(next_attempt_at, lease_until) AS due FROM wavoip.calls WHERE "
      "lease_until <= $2::bigint ORDER BY lease_until, call_id LIMIT $4::bigint FOR UPDATE SKIP LOCKED), "
      "picked AS (SELECT call_id, due FROM due UNION ALL SELECT call_id, due FROM lapsed ORDER BY due, call_id "
      "LIMIT $4::bigint) "
      "UPDATE wavoip.calls AS c SET owner = $1::text, lease_until = $3::bigint, fence = c.fence + 1 FROM picked "
      "WHERE c.call_id = picked.call_id RETURNING " +
      qualified_call_columns("c") + ", c.fence, c.lease_until, picked.due";
  s[kSelectClaimed] =
      select_calls("WHERE call_id = $1::text AND fence = $2::bigint AND lease_until IS NOT NULL FOR UPDATE");
  s[kRenewClaim] =
      "UPDATE wavoip.calls SET lease_until = $3::bigint WHERE call_id = $1::text AND fence = $2::bigint "
      "AND lease_until IS NOT NULL";
  s[kEndClaim] =
      "UPDATE wavoip.calls SET owner = NULL, lease_until = NULL WHERE call_id = $1::text AND fence = $2::bigint "
      "AND lease_until IS NOT NULL";
  s[kUpdateClaimed] = update_claimed_sql();
  return s;
}

std::string statement_name(int index) {
  return "wavoip_" + std::to_string(index);
}

using pg_common::trimmed;

// One statement's parameters: text values (or NULL), bytea in binary.
class Params {
 public:
  Params& text(std::string_view value) {
    values_.emplace_back(value);
    formats_.push_back(0);
    return *this;
  }
  Params& integer(std::int64_t value) { return text(std::to_string(value)); }
  Params& optional(const std::optional<std::int64_t>& value) { return value ? integer(*value) : null(); }
  Params& boolean(bool value) { return text(value ? "true" : "false"); }
  Params& null() {
    values_.emplace_back(std::nullopt);
    formats_.push_back(0);
    return *this;
  }
  Params& bytes(std::string_view value) {
    values_.emplace_back(value);
    formats_.push_back(1);
    return *this;
  }

  int count() const { return static_cast<int>(values_.size()); }
  std::vector<const char*> pointers() const {
    std::vector<const char*> out;
    for (const auto& v : values_) out.push_back(v ? v->data() : nullptr);
    return out;
  }
  std::vector<int> lengths() const {
    std::vector<int> out;
    for (const auto& v : values_) {
      if (v && v->size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        throw std::length_error("parameter too large to store");
      }
      out.push_back(v ? static_cast<int>(v->size()) : 0);
    }
    return out;
  }
  const std::vector<int>& formats() const { return formats_; }

 private:
  std::vector<std::optional<std::string>> values_;
  std::vector<int> formats_;
};

// Owns a PGresult.
class Result {
 public:
  explicit Result(PGresult* r = nullptr) : r_(r) {}
  ~Result() { PQclear(r_); }
  Result(Result&& other) noexcept : r_(std::exchange(other.r_, nullptr)) {}
  Result& operator=(Result&& other) noexcept {
    std::swap(r_, other.r_);
    return *this;
  }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;

  int rows() const { return PQntuples(r_); }
  bool is_null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::string text(int row, int col) const {
    return std::string(PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col)));
  }
  std::int64_t integer(int row, int col) const { return pg_common::integer(r_, row, col); }
  std::optional<std::int64_t> optional(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return integer(row, col);
  }
  bool boolean(int row, int col) const { return text(row, col) == "t"; }
  std::int64_t affected() const {
    const char* n = PQcmdTuples(r_);
    return *n == '\0' ? 0 : std::stoll(n);
  }
  std::string command() const { return r_ != nullptr ? PQcmdStatus(r_) : ""; }
  const PGresult* raw() const { return r_; }

 private:
  PGresult* r_;
};

void bind_call(Params& p, const CallRecord& r) {
  p.text(r.call_id)
      .text(r.inbox)
      .text(to_string(r.direction))
      .text(r.caller)
      .text(r.receiver)
      .text(r.session_id)
      .text(r.call_kind)
      .text(r.call_status)
      .boolean(r.answered)
      .optional(r.duration_s)
      .optional(r.ended_at)
      .text(to_string(r.recording))
      .text(r.reason)
      .text(r.record_url)
      .integer(static_cast<std::int64_t>(r.attempt))
      .optional(r.next_attempt_at)
      .optional(r.deadline_at)
      .text(r.last_result)
      .text(r.recording_file)
      .text(r.content_type)
      .integer(static_cast<std::int64_t>(r.recording_bytes))
      .boolean(r.message_requested)
      .text(r.message_id)
      .integer(r.created_at)
      .integer(r.updated_at)
      .text(r.reason_detail);
}

CallRecord read_call(const Result& s, int row) {
  CallRecord r;
  int i = 0;
  r.call_id = s.text(row, i++);
  r.inbox = s.text(row, i++);
  r.direction = call_direction_from_text(s.text(row, i++));
  r.caller = s.text(row, i++);
  r.receiver = s.text(row, i++);
  r.session_id = s.text(row, i++);
  r.call_kind = s.text(row, i++);
  r.call_status = s.text(row, i++);
  r.answered = s.boolean(row, i++);
  r.duration_s = s.optional(row, i++);
  r.ended_at = s.optional(row, i++);
  const std::string state = s.text(row, i++);
  auto recording = recording_state_from_text(state);
  if (!recording) throw PgError("calls.recording has an unknown value '" + state + "'");
  r.recording = *recording;
  r.reason = s.text(row, i++);
  r.record_url = s.text(row, i++);
  r.attempt = static_cast<std::uint32_t>(s.integer(row, i++));
  r.next_attempt_at = s.optional(row, i++);
  r.deadline_at = s.optional(row, i++);
  r.last_result = s.text(row, i++);
  r.recording_file = s.text(row, i++);
  r.content_type = s.text(row, i++);
  r.recording_bytes = static_cast<std::uint64_t>(s.integer(row, i++));
  r.message_requested = s.boolean(row, i++);
  r.message_id = s.text(row, i++);
  r.created_at = s.integer(row, i++);
  r.updated_at = s.integer(row, i++);
  r.reason_detail = s.text(row, i++);
  return r;
}

std::vector<CallRecord> read_calls(const Result& s) {
  std::vector<CallRecord> out;
  out.reserve(static_cast<std::size_t>(s.rows()));
  for (int row = 0; row < s.rows(); ++row) out.push_back(read_call(s, row));
  return out;
}

std::int64_t clamp_limit(std::size_t limit) {
  return limit > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
             ? std::numeric_limits<std::int64_t>::max()
             : static_cast<std::int64_t>(limit);
}

// A text[] literal: {"a","b"} with " and \ escaped.
std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('"');
    for (const char c : items[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

}  // namespace

bool is_postgresql_uri(std::string_view text) {
  return pg_common::is_postgresql_uri(text);
}

std::string describe_postgresql_uri(const std::string& uri) {
  return pg_common::describe_uri(uri);
}

// The server rolled the statement's transaction back for a conflict with another one (a
// deadlock, a serialization failure): running the transaction again may well succeed.
using PgConflict = pg_common::Conflict;

// A statement of a pipelined batch failed (see PgStore::Impl::read_through): the batch is rolled
// back and runs again statement by statement.
struct PipelineBroken : PgError {
  using PgError::PgError;
};

struct PgStore::Impl {
  Impl(std::string uri_in, PgOptions options_in) : uri(std::move(uri_in)), options(options_in) {
    pg_common::check_uri(uri);  // a malformed URI is an error at open, not a retry later
    connect(true);
  }
  ~Impl() { PQfinish(conn); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Opens a connection (migrating the schema at open) and prepares the statements. Throws.
  void connect(bool migrate_schema) {
    // A node paused in the middle of a batch (a stopped VM) must not hold its rows' locks for
    // every other node: the server ends its transaction once it has been idle this long.
    conn = pg_common::connect(
        uri, {options.connect_timeout_s, "wavoip-recordings",
              "-c idle_in_transaction_session_timeout=" + std::to_string(options.idle_in_transaction_timeout.count())});
    ++connections;
    try {
      if (migrate_schema) migrate();
      const auto sql = statement_sql();
      for (int i = 0; i < kStmtCount; ++i) {
        Result r(PQprepare(conn, statement_name(i).c_str(), sql[static_cast<std::size_t>(i)].c_str(), 0, nullptr));
        check(r);
      }
    } catch (...) {
      drop();
      throw;
    }
  }

  void migrate() {
    pg_common::migrate(conn, "wavoip", kMigrationLockKey, {kMigrations.begin(), kMigrations.end()}, "this plugin");
  }

  void drop() {
    PQfinish(conn);
    conn = nullptr;
  }

  // The connection to use, connecting again if it was lost. Throws when there is none.
  PGconn* ready() {
    if (broken && conn != nullptr) throw PipelineBroken("an earlier statement of this batch failed");
    if (conn != nullptr && PQstatus(conn) == CONNECTION_OK) return conn;
    if (depth > 0) throw PgError("connection to PostgreSQL lost inside a transaction: " + last_error);
    drop();
    const auto now = std::chrono::steady_clock::now();
    if (now < next_connect) {
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_connect - now);
      throw PgError("PostgreSQL is unavailable (" + last_error + "); next connection attempt in " +
                    std::to_string(wait.count()) + " ms");
    }
    try {
      connect(false);
      backoff = std::chrono::milliseconds(0);
      return conn;
    } catch (const std::exception& e) {
      last_error = e.what();
      backoff = backoff.count() == 0 ? options.reconnect_min : std::min(backoff * 2, options.reconnect_max);
      next_connect = now + backoff;
      throw;
    }
  }

  // Throws unless `r` succeeded; notes a lost connection, so the next call reconnects.
  void check(const Result& r) {
    try {
      pg_common::check(conn, r.raw());
    } catch (const pg_common::Error& e) {
      if (PQstatus(conn) != CONNECTION_OK) {
        last_error = e.what();
        drop();
        next_connect = std::chrono::steady_clock::now();  // the next call may try again at once
      }
      throw;
    }
  }

  // Never inside a pipelined batch (command() is what a batch's statements go through).
  Result simple(const std::string& sql) {
    PGconn* c = ready();
    ++round_trips;
    Result r(PQexec(c, sql.c_str()));
    check(r);
    return r;
  }

  // A statement whose result the caller reads.
  Result exec(Stmt stmt, const Params& params = Params()) {
    if (pipelined) {
      send_prepared(stmt, params);
      std::vector<Result> results = read_through();
      return std::move(results.back());
    }
    PGconn* c = ready();
    ++round_trips;
    const auto values = params.pointers();
    const auto lengths = params.lengths();
    Result r(PQexecPrepared(c, statement_name(stmt).c_str(), params.count(), values.data(), lengths.data(),
                            params.formats().data(), 0));
    check(r);
    return r;
  }

  // A statement whose result nobody reads: inside a pipelined batch it is only sent, and a
  // failure of it breaks the batch when the next result is read (see in_one_transaction).
  void exec_deferred(Stmt stmt, const Params& params = Params()) {
    if (pipelined) {
      send_prepared(stmt, params);
    } else {
      exec(stmt, params);
    }
  }

  // A transaction-control command (BEGIN, SAVEPOINT, RELEASE, ROLLBACK TO): deferred likewise.
  void command(const std::string& sql) {
    if (pipelined) {
      send_command(sql);
    } else {
      simple(sql);
    }
  }

  // ---- libpq's pipeline mode, for the statements of one batch ----
  //
  // While a batch runs pipelined, a statement whose result nobody waits for is sent and not
  // waited for; a statement whose result is needed asks the server to flush and reads every
  // result sent before it too. One round trip then carries the previous job's writes with the
  // next job's reads, and the commit carries the last job's. A pipelined batch takes no
  // savepoints (see in_one_transaction). A statement that fails in a pipeline aborts every later
  // one until the sync, and by then it may belong to an earlier job: the batch is broken
  // (PipelineBroken, every later call throws it too), rolled back, and run again statement by
  // statement, where each job fails alone.

  void start_pipeline() {
    PGconn* c = ready();
    if (PQenterPipelineMode(c) != 1) throw PgError("cannot enter pipeline mode: " + trimmed(PQerrorMessage(c)));
    pipelined = true;
    unread = 0;
    sync_sent = false;
  }

  void send_prepared(Stmt stmt, const Params& params) {
    PGconn* c = ready();
    const auto values = params.pointers();
    const auto lengths = params.lengths();
    if (PQsendQueryPrepared(c, statement_name(stmt).c_str(), params.count(), values.data(), lengths.data(),
                            params.formats().data(), 0) != 1) {
      break_pipeline(trimmed(PQerrorMessage(c)), nullptr);
    }
    ++unread;
  }

  void send_command(const std::string& sql) {
    PGconn* c = ready();
    if (PQsendQueryParams(c, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) != 1) {
      break_pipeline(trimmed(PQerrorMessage(c)), nullptr);
    }
    ++unread;
  }

  // Reads the results of every statement sent and not read yet, in order, up to a sync point;
  // `sync` (the commit's) also leaves pipeline mode. Throws on the first that failed.
  // Always a sync point, never a mere flush request: only at one does the server say it is
  // ready for the next command and start idle_in_transaction_session_timeout. After a flush
  // request it waits for this node's next statement without a limit, holding the batch's row
  // locks, were this node paused in between (a stopped VM): every other node that needs those
  // rows would wait for it too. Inside the batch's transaction a sync point commits nothing.
  std::vector<Result> read_through(bool sync = false) {
    PGconn* c = conn;
    ++round_trips;
    if (PQpipelineSync(c) != 1) break_pipeline(trimmed(PQerrorMessage(c)), nullptr);
    sync_sent = true;
    std::vector<Result> out;
    out.reserve(unread);
    while (unread > 0) {
      Result r(PQgetResult(c));
      if (r.raw() == nullptr) break_pipeline(trimmed(PQerrorMessage(c)), nullptr);
      --unread;
      const ExecStatusType status = PQresultStatus(r.raw());
      if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) break_pipeline("", &r);
      Result end(PQgetResult(c));  // each statement's results end with a null
      if (end.raw() != nullptr) break_pipeline("PostgreSQL sent more results than statements", nullptr);
      out.push_back(std::move(r));
    }
    const Result point(PQgetResult(c));
    if (PQresultStatus(point.raw()) != PGRES_PIPELINE_SYNC) {
      break_pipeline("PostgreSQL's pipeline did not end at its sync point", nullptr);
    }
    sync_sent = false;
    if (sync) {
      if (PQexitPipelineMode(c) != 1)
        break_pipeline("cannot leave pipeline mode: " + trimmed(PQerrorMessage(c)), nullptr);
      pipelined = false;
    }
    return out;
  }

  // Ends pipeline mode after a failure (`failed`, or libpq's `why`): reads what is left up to a
  // sync point, or drops a connection that cannot get there. Marks the batch broken and throws
  // PgConflict for a conflict, PgError for a lost connection, PipelineBroken otherwise.
  [[noreturn]] void break_pipeline(std::string why, const Result* failed) {
    std::string state;
    if (failed != nullptr) {
      why = trimmed(PQresultErrorMessage(failed->raw()));
      state = pg_common::sqlstate(failed->raw());
    }
    if (why.empty()) why = "PostgreSQL pipeline failed";
    leave_pipeline();
    broken = true;
    if (conn == nullptr) {
      last_error = why;
      next_connect = std::chrono::steady_clock::now();  // the next call may try again at once
      throw PgError(why);
    }
    if (pg_common::is_conflict(state)) throw PgConflict(why);
    throw PipelineBroken(why);
  }

  // Out of pipeline mode, whatever was sent: the results left are read and dropped up to a sync
  // point; a connection that cannot get there (lost, or the protocol lost track) is dropped.
  void leave_pipeline() noexcept {
    if (!pipelined) return;
    pipelined = false;
    PGconn* c = conn;
    if (c == nullptr) return;
    bool synced = false;
    // One sync point: the one sent already, if any (a second would stay unread).
    if (PQstatus(c) == CONNECTION_OK && (sync_sent || PQpipelineSync(c) == 1)) {
      // Each statement left gives a result and a null; then the sync point's result.
      for (std::size_t guard = 0; guard < 2 * unread + 8; ++guard) {
        PGresult* r = PQgetResult(c);
        const bool at_sync = r != nullptr && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        PQclear(r);
        if (at_sync) {
          synced = PQexitPipelineMode(c) == 1;
          break;
        }
        if (r == nullptr && PQstatus(c) != CONNECTION_OK) break;
      }
    }
    unread = 0;
    sync_sent = false;
    if (!synced) drop();
  }

  void commit_or_throw(const Result& r) {
    // COMMIT of a transaction that had failed answers ROLLBACK without an error.
    if (r.command() != "COMMIT") throw PgError("PostgreSQL rolled the transaction back at commit");
  }

  std::optional<CallRecord> load(std::string_view call_id, Stmt stmt) {
    const Result r = exec(stmt, Params().text(call_id));
    if (r.rows() == 0) return std::nullopt;
    return read_call(r, 0);
  }

  void save(const CallRecord& r) {
    if (r.call_id.empty()) throw std::invalid_argument("CallRecord without call_id");
    Params p;
    bind_call(p, r);
    exec_deferred(kUpsertCall, p);
  }

  // A step that asked the host to show something: its call is behind the host until shown.
  void mark_if_shown(const FlowResult& result) {
    if (shows_on_host(result.actions)) exec_deferred(kMarkBehind, Params().text(result.record.call_id));
  }

  // A claimed call's step, written under its claim (the row locked by this transaction): the
  // claim kept (`keep`) or ended in the same write, which checks the fence.
  void write_claimed(const FlowResult& result, std::int64_t fence, bool keep) {
    Params p;
    bind_call(p, result.record);
    p.boolean(keep).integer(fence);
    exec_deferred(kUpdateClaimed, p);
    mark_if_shown(result);
  }

  // A delivery's step on its call, written once: the step of a new call is run first and its
  // result inserted; only when the row exists (or a concurrent transaction created it, which the
  // insert waited for) is the row locked, stepped and written over. Steps are pure, so the
  // first one costs nothing to throw away.
  FlowResult step_call(std::string_view call_id, const StepFn& fn) {
    if (auto current = load(call_id, kLockCall)) return apply(*current, fn);
    FlowResult created = step_of(new_call_record(call_id), fn);
    Params p;
    bind_call(p, created.record);
    if (exec(kInsertCallIfAbsent, p).affected() == 1) {
      mark_if_shown(created);
      return created;
    }
    auto current = load(call_id, kLockCall);
    if (!current) throw PgError("call " + std::string(call_id) + " vanished while being created");
    return apply(*current, fn);
  }

  FlowResult apply(const CallRecord& current, const StepFn& fn) {
    FlowResult result = step_of(current, fn);
    save(result.record);
    mark_if_shown(result);
    return result;
  }

  DeliveryResult record_one(std::string_view raw_body, const Event& event, TimeMs now, const StepFn& fn) {
    DeliveryResult result;
    const std::optional<std::string_view> call_id = event_call_id(event);
    Params p;
    p.integer(now).text(event_type_name(event));
    if (call_id)
      p.text(*call_id);
    else
      p.null();
    p.bytes(raw_body);  // raw bytes, exactly as received
    if (pipelined && call_id) {
      // One round trip: the delivery, the call as the step leaves a new one (inserted, and so
      // locked, if it is new), and its row locked. A new call is written once; for a known one
      // the insert does nothing and the step runs again on the stored row.
      FlowResult created = step_of(new_call_record(*call_id), fn);
      send_prepared(kInsertDelivery, p);
      Params fresh;
      bind_call(fresh, created.record);
      send_prepared(kInsertCallIfAbsent, fresh);
      send_prepared(kLockCall, Params().text(*call_id));
      const std::vector<Result> results = read_through();
      result.delivery_id = results[results.size() - 3].integer(0, 0);
      FlowResult step;
      if (results[results.size() - 2].affected() == 1) {
        mark_if_shown(created);
        step = std::move(created);
      } else {
        const Result& locked = results.back();
        if (locked.rows() == 0) throw PgError("call " + std::string(*call_id) + " vanished while being created");
        step = apply(read_call(locked, 0), fn);
      }
      result.record = std::move(step.record);
      result.actions = std::move(step.actions);
      return result;
    }
    result.delivery_id = exec(kInsertDelivery, p).integer(0, 0);
    if (call_id) {
      FlowResult step = step_call(*call_id, fn);
      result.record = std::move(step.record);
      result.actions = std::move(step.actions);
    }
    return result;
  }

  // Runs `count` jobs in one transaction, each in a savepoint; `fail(i, why)` for each that
  // threw. Throws when BEGIN, a savepoint statement or the commit fails. When the server picks
  // the transaction as a deadlock's victim (nodes whose batches touch the same calls in another
  // order) or a serialization failure, the whole transaction is rolled back and run again, after
  // `reset()`, up to kConflictAttempts times: the jobs must be re-runnable (they only touch the
  // store and what they own).
  static constexpr int kConflictAttempts = 5;
  template <typename Job, typename Fail, typename Reset>
  void in_one_transaction(std::size_t count, const Job& job, const Fail& fail, const Reset& reset);

  std::string uri;
  PgOptions options;
  PGconn* conn = nullptr;
  int conflicts_retried = 0;   // batches run again after a deadlock or serialization failure
  int pipeline_fallbacks = 0;  // pipelined batches run again statement by statement
  std::int64_t round_trips = 0;
  bool pipelined = false;  // in libpq's pipeline mode (a batch)
  std::size_t unread = 0;  // statements sent in pipeline mode whose results are not read yet
  bool sync_sent = false;  // a sync point is sent and its result not read
  bool broken = false;     // a statement of this pipelined batch failed: every call throws
  int connections = 0;
  int depth = 0;  // transactions and savepoints of ours that are open
  std::string last_error;
  std::chrono::steady_clock::time_point next_connect{};
  std::chrono::milliseconds backoff{0};
};

namespace {

// One transaction, or a savepoint inside the caller's (a batch): every store call is atomic on
// its own and nests inside a batch. Rolls back unless commit() ran.
//
// Each savepoint costs two round trips to the server. A call whose writes all come after the
// last point where it can throw without the server's help (the step, run before the save) needs
// none inside a batch: a write that fails aborts the whole transaction, so the batch job fails
// as a whole and nothing of the call is kept. Those calls pass kNoSavepointWhenNested.
enum SavepointMode { kSavepointWhenNested, kNoSavepointWhenNested };

template <typename ImplT>
class TxScope {
 public:
  TxScope(ImplT& impl, const char* savepoint, SavepointMode mode = kSavepointWhenNested)
      : impl_(impl),
        nested_(impl.depth > 0),
        // A pipelined batch takes no savepoint at all (see in_one_transaction).
        bare_(nested_ && (mode == kNoSavepointWhenNested || impl.pipelined)),
        pipelined_(impl.pipelined),
        savepoint_(savepoint) {
    if (!bare_) impl_.command(nested_ ? "SAVEPOINT " + savepoint_ : std::string("BEGIN"));
    ++impl_.depth;
  }
  ~TxScope() {
    --impl_.depth;
    if (done_) return;
    if (bare_) {
      // What this call wrote cannot be undone alone: the batch must not commit (a job that
      // catches the error and goes on included).
      if (pipelined_ && std::uncaught_exceptions() > exceptions_) impl_.broken = true;
      return;
    }
    if (nested_ && impl_.broken) return;  // the whole transaction rolls back
    impl_.leave_pipeline();
    // Straight on the connection, never reconnecting: a lost connection rolled back already.
    PGconn* c = impl_.conn;
    if (c == nullptr || PQstatus(c) != CONNECTION_OK) return;
    if (nested_) {
      PQclear(PQexec(c, ("ROLLBACK TO SAVEPOINT " + savepoint_ + "; RELEASE SAVEPOINT " + savepoint_).c_str()));
    } else {
      PQclear(PQexec(c, "ROLLBACK"));
    }
  }
  TxScope(const TxScope&) = delete;
  TxScope& operator=(const TxScope&) = delete;
  void commit() {
    if (bare_) {
      done_ = true;
      return;
    }
    if (nested_) {
      impl_.command("RELEASE SAVEPOINT " + savepoint_);
    } else if (impl_.pipelined) {
      impl_.send_command("COMMIT");
      impl_.commit_or_throw(impl_.read_through(/*sync=*/true).back());
    } else {
      impl_.commit_or_throw(impl_.simple("COMMIT"));
    }
    done_ = true;
  }

 private:
  ImplT& impl_;
  bool nested_;
  bool bare_;  // nested, without a savepoint of its own
  bool pipelined_;
  int exceptions_ = std::uncaught_exceptions();
  std::string savepoint_;
  bool done_ = false;
};

}  // namespace

template <typename Job, typename Fail, typename Reset>
void PgStore::Impl::in_one_transaction(std::size_t count, const Job& job, const Fail& fail, const Reset& reset) {
  // Pipelined unless the batch is nested in a transaction of the caller's, or broke once.
  bool pipeline = options.pipeline && depth == 0;
  struct Unbroken {
    Impl& impl;
    ~Unbroken() { impl.broken = false; }
  } unbroken{*this};
  for (int attempt = 1;; ++attempt) {
    broken = false;
    try {
      if (pipeline) start_pipeline();
      TxScope<Impl> tx(*this, "store_batch");
      if (pipeline) read_through();  // a batch that cannot begin runs no job
      for (std::size_t i = 0; i < count; ++i) {
        if (pipeline) {
          // No savepoints: each is a subtransaction on the server, and a batch of hundreds of
          // them slows every session of the database down. A job that fails breaks the batch
          // instead, and the batch runs again statement by statement, with savepoints.
          try {
            job(i);
          } catch (const PgConflict&) {
            throw;  // the transaction as a whole
          } catch (const std::exception& e) {
            if (conn == nullptr) throw;  // the connection is gone: the batch fails whole
            throw PipelineBroken(e.what());
          }
          continue;
        }
        command("SAVEPOINT batch_job");
        try {
          job(i);
          command("RELEASE SAVEPOINT batch_job");
        } catch (const PgConflict&) {
          throw;  // the transaction as a whole
        } catch (const std::exception& e) {
          fail(i, *e.what() != '\0' ? std::string(e.what()) : std::string("store error"));
          // Undo this job only; the transaction and the others stay.
          command("ROLLBACK TO SAVEPOINT batch_job");
          command("RELEASE SAVEPOINT batch_job");
        }
      }
      if (broken) ready();  // throws: a job caught the break and went on
      tx.commit();
      return;
    } catch (const PipelineBroken&) {
      leave_pipeline();
      if (!pipeline) throw;
      // Rolled back (by tx's end); statement by statement, the job at fault fails alone.
      ++pipeline_fallbacks;
      pipeline = false;
      --attempt;
      reset();
    } catch (const PgConflict&) {
      leave_pipeline();
      if (attempt >= kConflictAttempts) throw;
      ++conflicts_retried;
      // Apart by a few random milliseconds, so that the same two batches do not meet again.
      std::this_thread::sleep_for(std::chrono::milliseconds(1 + std::random_device()() % (4 * attempt)));
      reset();
    }
  }
}

PgStore::PgStore(const std::string& uri, PgOptions options) : impl_(std::make_unique<Impl>(uri, options)) {}

PgStore::~PgStore() = default;

Store::DeliveryResult PgStore::record_delivery_and_apply(std::string_view raw_body, const Event& event,
                                                         std::string_view /*inbox*/, TimeMs now, const StepFn& fn) {
  TxScope<Impl> tx(*impl_, "store_call");
  DeliveryResult result = impl_->record_one(raw_body, event, now, fn);
  tx.commit();
  return result;
}

std::vector<std::string> PgStore::run_batch(const std::vector<std::function<void()>>& jobs) {
  std::vector<std::string> errors(jobs.size());
  if (jobs.empty()) return errors;
  try {
    impl_->in_one_transaction(
        jobs.size(), [&](std::size_t i) { jobs[i](); }, [&](std::size_t i, const std::string& why) { errors[i] = why; },
        [&] { errors.assign(jobs.size(), std::string()); });
  } catch (const std::exception& e) {
    const std::string why = *e.what() != '\0' ? e.what() : "store error";
    for (std::string& error : errors) {
      if (error.empty()) error = why;
    }
  }
  return errors;
}

std::optional<FlowResult> PgStore::apply_to_call(std::string_view call_id, const StepFn& fn) {
  // Reads, the step (which may throw: nothing written yet), then the writes.
  TxScope<Impl> tx(*impl_, "store_call", kNoSavepointWhenNested);
  std::optional<CallRecord> current = impl_->load(call_id, kLockCall);
  if (!current) return std::nullopt;
  FlowResult result = impl_->apply(*current, fn);
  tx.commit();
  return result;
}

std::optional<CallRecord> PgStore::load_call(std::string_view call_id) {
  return impl_->load(call_id, kSelectCall);
}

void PgStore::save_call(const CallRecord& record) {
  impl_->save(record);
}

bool PgStore::mark_attached(std::string_view call_id, std::string_view attachment_id, TimeMs now) {
  TxScope<Impl> tx(*impl_, "store_call");
  const bool inserted = impl_->exec(kAttach, Params().text(call_id).text(attachment_id).integer(now)).affected() == 1;
  tx.commit();
  return inserted;
}

std::optional<std::string> PgStore::attachment_of(std::string_view call_id) {
  const Result r = impl_->exec(kSelectAttachment, Params().text(call_id));
  if (r.rows() == 0) return std::nullopt;
  return r.text(0, 0);
}

std::optional<TimeMs> PgStore::earliest_due() {
  return impl_->exec(kEarliest).optional(0, 0);
}

std::vector<CallRecord> PgStore::calls_needing_resume(std::size_t limit, std::string_view after_call_id) {
  return read_calls(impl_->exec(kInFlight, Params().text(after_call_id).integer(clamp_limit(limit))));
}

std::int64_t PgStore::count_pending() {
  return impl_->exec(kPending).integer(0, 0);
}

std::int64_t PgStore::delivery_count() {
  return impl_->exec(kDeliveries).integer(0, 0);
}

std::int64_t PgStore::prune_deliveries(TimeMs before) {
  return impl_->exec(kPrune, Params().integer(before)).affected();
}

std::vector<CallRecord> PgStore::calls_behind_host(std::size_t limit, std::string_view after_call_id) {
  return read_calls(impl_->exec(kBehind, Params().text(after_call_id).integer(clamp_limit(limit))));
}

void PgStore::mark_host_synced(const std::vector<std::string>& call_ids) {
  if (call_ids.empty()) return;
  impl_->exec(kClearBehind, Params().text(text_array(call_ids)));  // one statement: atomic
}

std::vector<Store::Claim> PgStore::claim_due(std::string_view owner, TimeMs now, TimeMs lease_ms, std::size_t limit) {
  const Result r =
      impl_->exec(kClaimDue, Params().text(owner).integer(now).integer(now + lease_ms).integer(clamp_limit(limit)));
  std::vector<std::pair<TimeMs, Claim>> picked;
  for (int row = 0; row < r.rows(); ++row) {
    Claim claim;
    claim.record = read_call(r, row);
    claim.fence = r.integer(row, kCallColumnCount);
    claim.lease_until = r.integer(row, kCallColumnCount + 1);
    picked.emplace_back(r.integer(row, kCallColumnCount + 2), std::move(claim));
  }
  // RETURNING follows no order: earliest due first, ties by call id (byte order, as stored).
  std::sort(picked.begin(), picked.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second.record.call_id < b.second.record.call_id;
  });
  std::vector<Claim> claims;
  claims.reserve(picked.size());
  for (auto& [due, claim] : picked) claims.push_back(std::move(claim));
  return claims;
}

bool PgStore::renew_claim(std::string_view call_id, std::int64_t fence, TimeMs lease_until) {
  return impl_->exec(kRenewClaim, Params().text(call_id).integer(fence).integer(lease_until)).affected() == 1;
}

std::optional<FlowResult> PgStore::apply_to_claimed_call(std::string_view call_id, std::int64_t fence, ClaimAfter after,
                                                         const StepFn& fn) {
  // Reads, the step (which may throw: nothing written yet), then the writes.
  TxScope<Impl> tx(*impl_, "store_call", kNoSavepointWhenNested);
  const Result r = impl_->exec(kSelectClaimed, Params().text(call_id).integer(fence));
  if (r.rows() == 0) return std::nullopt;  // another node claimed it since: write nothing
  FlowResult result = step_of(read_call(r, 0), fn);
  const bool release =
      after == ClaimAfter::release || (after == ClaimAfter::release_unless_busy && !result.record.busy());
  // The step and the claim kept or ended, one write; the row is locked by this transaction under
  // this fence, so there is nothing to wait for.
  impl_->write_claimed(result, fence, !release);
  tx.commit();
  return result;
}

std::vector<Store::ClaimedStep> PgStore::claim_due_and_apply(std::string_view owner, TimeMs now, TimeMs lease_ms,
                                                             std::size_t limit, const StepFn& fn) {
  // One round trip for the claims, whose rows come back locked by this transaction; each call's
  // step is then one write, sent without waiting for its answer, that keeps the claim or gives
  // it back (nothing else can have moved the call meanwhile).
  TxScope<Impl> tx(*impl_, "store_call");
  std::vector<ClaimedStep> steps;
  for (const Claim& claim : claim_due(owner, now, lease_ms, limit)) {
    FlowResult result = step_of(claim.record, fn);
    const bool keep = result.record.busy();
    impl_->write_claimed(result, claim.fence, keep);
    steps.push_back(ClaimedStep{std::move(result), keep ? std::optional<std::int64_t>(claim.fence) : std::nullopt});
  }
  tx.commit();
  return steps;
}

bool PgStore::release_claim(std::string_view call_id, std::int64_t fence) {
  return impl_->exec(kEndClaim, Params().text(call_id).integer(fence)).affected() == 1;
}

std::optional<Store::Claim> PgStore::claim_call(std::string_view call_id, std::string_view owner, TimeMs now,
                                                TimeMs lease_ms) {
  TxScope<Impl> tx(*impl_, "store_call");
  const Result r = impl_->exec(kClaimCall, Params().text(call_id).text(owner).integer(now + lease_ms).integer(now));
  if (r.rows() == 0) return std::nullopt;
  Claim claim;
  claim.record = read_call(r, 0);
  claim.fence = r.integer(0, kCallColumnCount);
  claim.lease_until = now + lease_ms;
  // The update may have waited for the transaction that attached the call (it holds the call's
  // row) while its NOT EXISTS saw the snapshot from before that commit: look again with a fresh
  // one, and give the claim back if the call is attached by now.
  if (impl_->exec(kIsAttached, Params().text(call_id)).rows() > 0) {
    impl_->exec(kEndClaim, Params().text(call_id).integer(claim.fence));
    tx.commit();
    return std::nullopt;
  }
  tx.commit();
  return claim;
}

std::int64_t PgStore::release_all_claims() {
  return impl_->exec(kReleaseAll).affected();
}

int PgStore::backend_pid() {
  return impl_->conn != nullptr && PQstatus(impl_->conn) == CONNECTION_OK ? PQbackendPID(impl_->conn) : 0;
}

std::string PgStore::plan_of_earliest_due() {
  const Result r = impl_->simple("EXPLAIN EXECUTE " + statement_name(kEarliest));
  std::string plan;
  for (int row = 0; row < r.rows(); ++row) plan += r.text(row, 0) + '\n';
  return plan;
}

int PgStore::conflicts_retried() const {
  return impl_->conflicts_retried;
}

int PgStore::connections_made() const {
  return impl_->connections;
}

int PgStore::pipeline_fallbacks() const {
  return impl_->pipeline_fallbacks;
}

std::int64_t PgStore::round_trips() const {
  return impl_->round_trips;
}

}  // namespace wavoip
