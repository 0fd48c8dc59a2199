// A throwaway PostgreSQL server for the tests: initdb into a temporary directory, the server on a
// free loopback TCP port with its Unix socket in that directory, trust authentication for one
// superuser. PostgreSQL refuses to run as root, so under root the server runs as an unprivileged
// user (`nobody`) that owns the directory. The server dies with the test process (it is a
// ChildProcess: PR_SET_PDEATHSIG), and the destructor stops it and removes the directory.
//
// Needs Debian's `postgresql` package (server binaries in /usr/lib/postgresql/<major>/bin, or
// the directory named by HDP_TEST_PG_BINDIR). Construction throws std::runtime_error with the
// reason (and the server's log) when the server cannot start: a test never skips for it.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "child_process.hpp"

namespace testsupport {

class PostgresServer {
 public:
  // Creates the cluster and starts the server; returns once it accepts connections.
  PostgresServer();
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  const std::filesystem::path& socket_dir() const { return dir_; }
  static std::string user() { return "wavoip_test"; }

  // postgresql://wavoip_test@127.0.0.1:<port>/<database>
  std::string uri(const std::string& database) const;
  // postgresql:///<database>?host=<socket dir>&user=wavoip_test
  std::string socket_uri(const std::string& database) const;

  // CREATE DATABASE with a linguistic (ICU) default collation, so that a query that relies on
  // byte order without asking for it gives a different order here.
  void create_database(const std::string& name);
  // Runs SQL (one or more statements) in `database`; throws with the server's message.
  void execute(const std::string& database, const std::string& sql);
  // The first column of the first row of `sql` as text ("" for NULL or no row).
  std::string query_value(const std::string& database, const std::string& sql);

  // Fast shutdown (clients are disconnected) and start again on the same port and data.
  void stop();
  void start();
  bool running() const { return server_ != nullptr; }

  // The server's log so far (for failure messages).
  std::string log() const;

 private:
  void run_to_completion(std::vector<std::string> argv, const std::string& what);
  std::string admin_conninfo(const std::string& database) const;

  std::filesystem::path dir_;
  std::filesystem::path bin_dir_;
  std::string run_as_;  // "" = the test's own user
  int port_ = 0;
  std::unique_ptr<ChildProcess> server_;
};

}  // namespace testsupport
