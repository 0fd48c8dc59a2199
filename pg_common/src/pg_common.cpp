#include "pg_common/pg_common.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <memory>

namespace pg_common {
namespace {

struct ConninfoFree {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};
using Conninfo = std::unique_ptr<PQconninfoOption, ConninfoFree>;

// The parsed URI, or null and why not.
Conninfo parse_uri(const std::string& uri, std::string& why) {
  char* error = nullptr;
  Conninfo options(PQconninfoParse(uri.c_str(), &error));
  if (!options) {
    why = error != nullptr ? trimmed(error) : "out of memory";
    PQfreemem(error);
  }
  return options;
}

struct ResultFree {
  void operator()(PGresult* result) const { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, ResultFree>;

// One statement in the simple protocol; throws unless it succeeded.
Result run(PGconn* conn, const std::string& sql) {
  Result result(PQexec(conn, sql.c_str()));
  check(conn, result.get());
  return result;
}

}  // namespace

bool is_postgresql_uri(std::string_view text) {
  return text.starts_with("postgresql://") || text.starts_with("postgres://");
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string describe_uri(const std::string& uri) {
  std::string why;
  const Conninfo options = parse_uri(uri, why);
  if (!options) return "invalid PostgreSQL URI: " + why;
  std::string out;
  for (const char* key : {"host", "hostaddr", "port", "dbname", "user"}) {
    for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
      if (std::string_view(o->keyword) == key && o->val != nullptr && *o->val != '\0') {
        out.append(out.empty() ? "" : " ").append(key).append("=").append(o->val);
      }
    }
  }
  return out.empty() ? "postgresql (defaults)" : out;
}

void check_uri(const std::string& uri) {
  std::string why;
  if (!parse_uri(uri, why)) throw Error("invalid PostgreSQL URI: " + why);
}

PGconn* connect(const std::string& uri, const ConnectOptions& options) {
  const std::string timeout = std::to_string(options.connect_timeout_s);
  // Later keywords win: the URI's own connect_timeout, application_name or options override these.
  const char* keys[] = {"connect_timeout", "fallback_application_name", "options", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), options.application_name, options.server_options.c_str(), uri.c_str(),
                          nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 1);
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
    const std::string why = conn != nullptr ? trimmed(PQerrorMessage(conn)) : "out of memory";
    PQfinish(conn);
    throw Error("cannot connect to PostgreSQL (" + describe_uri(uri) + "): " + why);
  }
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return conn;
}

std::string sqlstate(const pg_result* result) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  return state != nullptr ? state : "";
}

bool is_conflict(std::string_view sqlstate) {
  return sqlstate == "40P01" || sqlstate == "40001";
}

void check(pg_conn* conn, const pg_result* result) {
  const ExecStatusType status = PQresultStatus(result);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
  std::string why = trimmed(result != nullptr ? PQresultErrorMessage(result) : "");
  if (why.empty() && conn != nullptr) why = trimmed(PQerrorMessage(conn));
  if (why.empty()) why = "PostgreSQL call failed";
  if (is_conflict(sqlstate(result))) throw Conflict(why);
  throw Error(why);
}

std::int64_t integer(const pg_result* result, int row, int col) {
  const char* begin = PQgetvalue(result, row, col);
  const char* end = begin + PQgetlength(result, row, col);
  std::int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end) throw Error("PostgreSQL returned a non-integer: " + std::string(begin, end));
  return value;
}

void migrate(pg_conn* conn, std::string_view schema, std::int64_t lock_key, const std::vector<const char*>& migrations,
             std::string_view program) {
  const std::string s(schema);
  run(conn, "BEGIN");
  try {
    run(conn, "SELECT pg_advisory_xact_lock(" + std::to_string(lock_key) + ")");
    // CREATE SCHEMA only when missing: IF NOT EXISTS would still need the CREATE privilege.
    if (PQntuples(run(conn, "SELECT 1 FROM pg_namespace WHERE nspname = '" + s + "'").get()) == 0) {
      run(conn, "CREATE SCHEMA " + s);
    }
    run(conn, "CREATE TABLE IF NOT EXISTS " + s +
                  ".schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
    const std::int64_t version =
        integer(run(conn, "SELECT COALESCE(MAX(version), 0) FROM " + s + ".schema_migrations").get(), 0, 0);
    const auto latest = static_cast<std::int64_t>(migrations.size());
    if (version > latest) {
      throw Error("the database's " + s + " schema version " + std::to_string(version) + " is newer than " +
                  std::string(program) + " supports (" + std::to_string(latest) + ")");
    }
    for (std::int64_t v = version + 1; v <= latest; ++v) {
      run(conn, migrations[static_cast<std::size_t>(v - 1)]);
      run(conn, "INSERT INTO " + s + ".schema_migrations (version) VALUES (" + std::to_string(v) + ")");
    }
    const Result committed = run(conn, "COMMIT");
    // COMMIT of a transaction that had failed answers ROLLBACK without an error.
    if (std::string_view(PQcmdStatus(committed.get())) != "COMMIT") {
      throw Error("PostgreSQL rolled the migration of " + s + " back at commit");
    }
  } catch (...) {
    if (PQstatus(conn) == CONNECTION_OK) PQclear(PQexec(conn, "ROLLBACK"));
    throw;
  }
}

}  // namespace pg_common
