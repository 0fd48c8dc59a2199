// One throwaway PostgreSQL server for a whole test program (started on first use, stopped after
// the last test by a GoogleTest environment), and fresh databases on it. Throws (and so fails the
// test) when the server cannot start: a test never skips for it.
#pragma once

#include <string>

#include "postgres_server.hpp"

namespace testsupport {

PostgresServer& shared_postgres();

// CREATE DATABASE <prefix>_<n> on the shared server; returns the name.
std::string new_postgres_database(const std::string& prefix);

}  // namespace testsupport
