#pragma once
// Picks the store the `database` setting names: a `postgresql://` (or `postgres://`) URI opens a
// PgStore (shared by several nodes), anything else is a SQLite file (SqliteStore; "" =
// <data_dir>/wavoip.sqlite, relative = under data_dir).

#include <memory>
#include <string>

#include "wavoip/core/config.hpp"
#include "wavoip/store/store.hpp"

namespace wavoip {

// Throws std::runtime_error naming the database (never its password) when it cannot be opened.
std::unique_ptr<Store> open_store(const Config& config, const std::string& data_dir);

// What open_store opens, for log lines: the SQLite path, or the PostgreSQL target without its
// password.
std::string describe_database(const Config& config, const std::string& data_dir);

}  // namespace wavoip
