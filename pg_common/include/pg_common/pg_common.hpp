#pragma once
// What the plugin's PostgreSQL store and the stub host's both need of libpq, written once: the
// URI checks, connecting with the defaults both take, statement errors and their kinds, integer
// cells, and versioned migrations of one schema under an advisory lock. Each binary links its own
// copy (a static library, like sqlite_wal): build-time sharing, not an ABI crossing.
//
// Blocking calls: use a connection from the one thread that owns it.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;
struct pg_result;

namespace pg_common {

// A failure of the server, of libpq or of the connection, with their message.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A statement that lost to another transaction (deadlock_detected 40P01, serialization_failure
// 40001): the server aborted the transaction, and running all of it again may well succeed.
class Conflict : public Error {
 public:
  using Error::Error;
};

// "postgresql://..." or "postgres://...": libpq's URI forms.
bool is_postgresql_uri(std::string_view text);

// The URI's host, port, database and user, never its password ("host=db port=5432 dbname=helpdesk
// user=wavoip"), for log lines and errors; "invalid PostgreSQL URI: ..." when libpq cannot parse it.
std::string describe_uri(const std::string& uri);

// Throws Error("invalid PostgreSQL URI: ...") unless libpq can parse `uri`.
void check_uri(const std::string& uri);

// libpq's messages end with a newline: without it.
std::string trimmed(std::string text);

struct ConnectOptions {
  int connect_timeout_s = 10;
  const char* application_name = "";  // unless the URI sets one
  std::string server_options;         // "-c name=value ...", unless the URI sets `options`
};

// A new connection; the URI's own keywords win over `options`. The server's notices are dropped.
// Throws Error("cannot connect to PostgreSQL (<describe_uri>): <why>").
pg_conn* connect(const std::string& uri, const ConnectOptions& options);

// Throws unless `result` succeeded (a command or rows): Conflict for a conflict, Error otherwise,
// with the server's message or else libpq's.
void check(pg_conn* conn, const pg_result* result);

// The SQLSTATE of a failed result ("" when there is none) and whether it is a conflict.
std::string sqlstate(const pg_result* result);
bool is_conflict(std::string_view sqlstate);

// An integer cell. Throws Error when it holds anything else.
std::int64_t integer(const pg_result* result, int row, int col);

// Brings schema `schema` to the newest of `migrations` (migration N takes it from version N-1 to
// N; versions in <schema>.schema_migrations) in one transaction, under the advisory lock
// `lock_key` so that nodes starting at once migrate once. `program` names who refuses a newer
// schema ("this plugin", "this host"). Throws Error; the transaction is rolled back.
void migrate(pg_conn* conn, std::string_view schema, std::int64_t lock_key, const std::vector<const char*>& migrations,
             std::string_view program);

}  // namespace pg_common
