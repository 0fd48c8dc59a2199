// The stores the conformance suite runs against, each on a fresh database: SQLite files in a
// temporary directory, and databases of one throwaway PostgreSQL server that the whole test
// program shares (started on first use, stopped at exit).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "postgres_server.hpp"  // tests/support
#include "temp_dir.hpp"         // tests/support
#include "wavoip/store/pg_store.hpp"
#include "wavoip/store/store.hpp"

namespace wavoip::testing {

// The program's PostgreSQL server; throws (and so fails the test) when it cannot start.
testsupport::PostgresServer& shared_postgres();

// A fresh database on the shared server: "store_<n>".
std::string new_postgres_database();

// One test's database, opened as many times as the test asks (each a new connection).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::unique_ptr<Store> open() = 0;
};

class SqliteBackend final : public Backend {
 public:
  explicit SqliteBackend(SqliteOptions options = {}) : options_(options) {}
  std::unique_ptr<Store> open() override { return std::make_unique<SqliteStore>(path(), options_); }
  std::string path() const { return (dir_.path() / "wavoip.sqlite").string(); }

 private:
  testsupport::TempDir dir_{"wavoip-store"};
  SqliteOptions options_;
};

// The plugin's own SQLite file: records that deliveries change are written back in groups.
inline SqliteOptions write_back_options() {
  SqliteOptions options;
  options.write_back_calls = 256;
  return options;
}

class PgBackend final : public Backend {
 public:
  PgBackend() : database_(new_postgres_database()) {}
  std::unique_ptr<Store> open() override { return std::make_unique<PgStore>(uri()); }
  std::string uri() const { return shared_postgres().uri(database_); }
  const std::string& database() const { return database_; }

 private:
  std::string database_;
};

}  // namespace wavoip::testing
