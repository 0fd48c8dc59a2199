#include "pg_connection.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <utility>

namespace hdp::host {
namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

bool is_postgresql_uri(std::string_view text) {
  return text.starts_with("postgresql://") || text.starts_with("postgres://");
}

std::string describe_postgresql_uri(const std::string& uri) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(uri.c_str(), &error);
  if (options == nullptr) {
    std::string why = error != nullptr ? trimmed(error) : "out of memory";
    PQfreemem(error);
    return "invalid PostgreSQL URI: " + why;
  }
  std::string out;
  for (const char* key : {"host", "hostaddr", "port", "dbname", "user"}) {
    for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
      if (std::string_view(o->keyword) == key && o->val != nullptr && *o->val != '\0') {
        out.append(out.empty() ? "" : " ").append(key).append("=").append(o->val);
      }
    }
  }
  PQconninfoFree(options);
  return out.empty() ? "postgresql (defaults)" : out;
}

PgResult::~PgResult() {
  PQclear(r_);
}

int PgResult::rows() const {
  return PQntuples(r_);
}

int64_t PgResult::affected() const {
  const char* n = PQcmdTuples(r_);
  int64_t value = 0;
  if (n != nullptr) std::from_chars(n, n + std::char_traits<char>::length(n), value);
  return value;
}

bool PgResult::is_null(int row, int col) const {
  return PQgetisnull(r_, row, col) != 0;
}

std::string PgResult::text(int row, int col) const {
  return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}

int64_t PgResult::integer(int row, int col) const {
  const char* begin = PQgetvalue(r_, row, col);
  const char* end = begin + PQgetlength(r_, row, col);
  int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end) throw PgError("PostgreSQL returned a non-integer: " + std::string(begin, end));
  return value;
}

PgConnection::PgConnection(std::string uri, const char* application_name, std::string server_options)
    : uri_(std::move(uri)),
      application_name_(application_name),
      server_options_("-c idle_in_transaction_session_timeout=5000" +
                      (server_options.empty() ? std::string() : " " + server_options)) {
  connect();
}

PgConnection::~PgConnection() {
  PQfreeCancel(cancel_);
  PQfinish(conn_);
}

void PgConnection::cancel() {
  std::lock_guard lock(cancel_mutex_);
  if (cancel_ == nullptr) return;
  char error[256];
  PQcancel(cancel_, error, sizeof error);  // best effort: the statement ends by its timeout otherwise
}

void PgConnection::connect() {
  {
    std::lock_guard lock(cancel_mutex_);
    PQfreeCancel(cancel_);
    cancel_ = nullptr;
  }
  PQfinish(conn_);
  conn_ = nullptr;
  prepared_.clear();
  // Later keywords win: the URI's own connect_timeout, application_name or options override
  // these. A node paused in the middle of a transaction (a stopped VM) must not hold its locks
  // for every other node: the server ends a transaction idle for 5 s.
  const char* keys[] = {"connect_timeout", "fallback_application_name", "options", "dbname", nullptr};
  const char* values[] = {"10", application_name_, server_options_.c_str(), uri_.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, 1);
  if (c == nullptr || PQstatus(c) != CONNECTION_OK) {
    const std::string why = c != nullptr ? trimmed(PQerrorMessage(c)) : "out of memory";
    PQfinish(c);
    throw PgError("cannot connect to PostgreSQL (" + describe_postgresql_uri(uri_) + "): " + why);
  }
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  conn_ = c;
  std::lock_guard lock(cancel_mutex_);
  cancel_ = PQgetCancel(c);
}

void PgConnection::check(const PgResult& result) {
  const ExecStatusType status = PQresultStatus(result.raw());
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
  std::string why = trimmed(result.raw() != nullptr ? PQresultErrorMessage(result.raw()) : "");
  if (why.empty()) why = trimmed(PQerrorMessage(conn_));
  if (why.empty()) why = "PostgreSQL call failed";
  const char* state = result.raw() != nullptr ? PQresultErrorField(result.raw(), PG_DIAG_SQLSTATE) : nullptr;
  if (state != nullptr && (std::string_view(state) == "40P01" || std::string_view(state) == "40001")) {
    throw PgConflict(why);
  }
  throw PgError(why);
}

PgResult PgConnection::exec(const char* sql, const PgParams& params) {
  if (PQstatus(conn_) != CONNECTION_OK) {
    if (in_transaction_) throw PgError("the connection to PostgreSQL was lost inside a transaction");
    connect();
  }
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = "hdp_" + std::to_string(prepared_.size() + 1);
    PgResult prepared(PQprepare(conn_, name.c_str(), sql, 0, nullptr));
    check(prepared);
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PgResult result(
      PQexecPrepared(conn_, it->second.c_str(), static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0));
  check(result);
  return result;
}

PgResult PgConnection::simple(const std::string& sql) {
  if (PQstatus(conn_) != CONNECTION_OK) {
    if (in_transaction_) throw PgError("the connection to PostgreSQL was lost inside a transaction");
    connect();
  }
  PgResult result(PQexec(conn_, sql.c_str()));
  check(result);
  return result;
}

void PgConnection::migrate(std::string_view schema, int64_t lock_key, const std::vector<const char*>& migrations) {
  const std::string s(schema);
  begin();
  try {
    simple("SELECT pg_advisory_xact_lock(" + std::to_string(lock_key) + ")");
    // CREATE SCHEMA only when missing: IF NOT EXISTS would still need the CREATE privilege.
    if (simple("SELECT 1 FROM pg_namespace WHERE nspname = '" + s + "'").rows() == 0) simple("CREATE SCHEMA " + s);
    simple("CREATE TABLE IF NOT EXISTS " + s +
           ".schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
    const int64_t version = simple("SELECT COALESCE(MAX(version), 0) FROM " + s + ".schema_migrations").integer(0, 0);
    const auto latest = static_cast<int64_t>(migrations.size());
    if (version > latest) {
      throw PgError("the " + s + " schema is at version " + std::to_string(version) + ", newer than this host knows (" +
                    std::to_string(latest) + ")");
    }
    for (int64_t v = version + 1; v <= latest; ++v) {
      simple(migrations[static_cast<size_t>(v - 1)]);
      simple("INSERT INTO " + s + ".schema_migrations (version) VALUES (" + std::to_string(v) + ")");
    }
    commit();
  } catch (...) {
    rollback();
    throw;
  }
}

void PgConnection::begin() {
  exec("BEGIN");
  in_transaction_ = true;
}

void PgConnection::rollback() {
  in_transaction_ = false;
  if (PQstatus(conn_) == CONNECTION_OK) PQclear(PQexec(conn_, "ROLLBACK"));
}

void PgConnection::commit() {
  in_transaction_ = false;  // whatever COMMIT answers, the transaction is over
  // Never on a new connection: there COMMIT would answer success for a transaction that is gone.
  if (PQstatus(conn_) != CONNECTION_OK) throw PgError("the connection to PostgreSQL was lost before COMMIT");
  const PgResult committed(PQexec(conn_, "COMMIT"));
  check(committed);
  // COMMIT of a transaction that had failed answers ROLLBACK without an error.
  if (std::string_view(PQcmdStatus(committed.raw())) != "COMMIT") {
    throw PgError("PostgreSQL rolled the transaction back at commit");
  }
}

PgWriteScope::PgWriteScope(PgConnection& conn) : conn_(conn), nested_(conn.in_transaction()) {
  if (nested_) {
    conn_.exec("SAVEPOINT store_write");
  } else {
    conn_.begin();
  }
}

PgWriteScope::~PgWriteScope() {
  if (done_) return;
  try {
    if (nested_) {
      conn_.exec("ROLLBACK TO SAVEPOINT store_write");
      conn_.exec("RELEASE SAVEPOINT store_write");
    } else {
      conn_.rollback();
    }
  } catch (...) {  // NOLINT(bugprone-empty-catch): nothing more to undo
  }
}

void PgWriteScope::commit() {
  if (nested_) {
    conn_.exec("RELEASE SAVEPOINT store_write");
  } else {
    conn_.commit();
  }
  done_ = true;
}

}  // namespace hdp::host
