#include "pg_connection.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <utility>

namespace hdp::host {

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
  return pg_common::integer(r_, row, col);
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
  // A node paused in the middle of a transaction (a stopped VM) must not hold its locks for
  // every other node: the server ends a transaction idle for 5 s (server_options_).
  PGconn* c = pg_common::connect(uri_, {10, application_name_, server_options_});
  conn_ = c;
  std::lock_guard lock(cancel_mutex_);
  cancel_ = PQgetCancel(c);
}

void PgConnection::check(const PgResult& result) {
  pg_common::check(conn_, result.raw());
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
    ++round_trips_;
    check(prepared);
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PgResult result(
      PQexecPrepared(conn_, it->second.c_str(), static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0));
  ++round_trips_;
  check(result);
  return result;
}

PgResult PgConnection::simple(const std::string& sql) {
  if (PQstatus(conn_) != CONNECTION_OK) {
    if (in_transaction_) throw PgError("the connection to PostgreSQL was lost inside a transaction");
    connect();
  }
  PgResult result(PQexec(conn_, sql.c_str()));
  ++round_trips_;
  check(result);
  return result;
}

void PgConnection::migrate(std::string_view schema, int64_t lock_key, const std::vector<const char*>& migrations) {
  if (PQstatus(conn_) != CONNECTION_OK) connect();
  pg_common::migrate(conn_, schema, lock_key, migrations, "this host");
}

void PgConnection::begin(bool write_savepoints) {
  exec("BEGIN");
  in_transaction_ = true;
  write_savepoints_ = write_savepoints;
  write_failed_ = false;
}

void PgConnection::rollback() {
  in_transaction_ = false;
  if (PQstatus(conn_) == CONNECTION_OK) {
    PQclear(PQexec(conn_, "ROLLBACK"));
    ++round_trips_;
  }
}

void PgConnection::commit() {
  in_transaction_ = false;  // whatever COMMIT answers, the transaction is over
  // Never on a new connection: there COMMIT would answer success for a transaction that is gone.
  if (PQstatus(conn_) != CONNECTION_OK) throw PgError("the connection to PostgreSQL was lost before COMMIT");
  const PgResult committed(PQexec(conn_, "COMMIT"));
  ++round_trips_;
  check(committed);
  // COMMIT of a transaction that had failed answers ROLLBACK without an error.
  if (std::string_view(PQcmdStatus(committed.raw())) != "COMMIT") {
    throw PgError("PostgreSQL rolled the transaction back at commit");
  }
}

PgWriteScope::PgWriteScope(PgConnection& conn)
    : conn_(conn), nested_(conn.in_transaction()), savepoint_(nested_ && conn.write_savepoints()) {
  if (savepoint_) {
    conn_.exec("SAVEPOINT store_write");
  } else if (!nested_) {
    conn_.begin();
  }
}

PgWriteScope::~PgWriteScope() {
  if (done_) return;
  if (nested_ && !savepoint_) {
    conn_.note_write_failed();
    return;
  }
  try {
    if (savepoint_) {
      conn_.exec("ROLLBACK TO SAVEPOINT store_write");
      conn_.exec("RELEASE SAVEPOINT store_write");
    } else {
      conn_.rollback();
    }
  } catch (...) {  // NOLINT(bugprone-empty-catch): nothing more to undo
  }
}

void PgWriteScope::commit() {
  if (savepoint_) {
    conn_.exec("RELEASE SAVEPOINT store_write");
  } else if (!nested_) {
    conn_.commit();
  }
  done_ = true;
}

}  // namespace hdp::host
