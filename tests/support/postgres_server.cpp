#include "postgres_server.hpp"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>  // mkdtemp
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

namespace testsupport {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The user that runs the server when the tests run as root.
constexpr const char* kUnprivilegedUser = "nobody";
constexpr auto kStartTimeout = 120s;  // initdb and a first start on a loaded machine
constexpr auto kStopTimeout = 30s;

fs::path find_bin_dir() {
  if (const char* dir = std::getenv("HDP_TEST_PG_BINDIR"); dir != nullptr && *dir != '\0') return dir;
  // The newest server Debian's `postgresql` package installed.
  fs::path best;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const fs::path candidate = entry.path() / "bin";
    if (fs::exists(candidate / "postgres") && (best.empty() || candidate.string() > best.string())) best = candidate;
  }
  if (best.empty()) {
    throw std::runtime_error(
        "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin (install Debian's postgresql package: "
        "scripts/setup.sh --tests)");
  }
  return best;
}

// A loopback TCP port nobody listens on right now.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int error = errno;
  ::close(fd);
  if (!ok) throw std::system_error(error, std::generic_category(), "bind a free port");
  return ntohs(address.sin_port);
}

// One libpq connection for the test's own statements.
class Connection {
 public:
  explicit Connection(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
    if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
      const std::string why = conn_ != nullptr ? PQerrorMessage(conn_) : "out of memory";
      PQfinish(conn_);
      throw std::runtime_error("cannot connect to the test PostgreSQL (" + conninfo + "): " + why);
    }
  }
  ~Connection() { PQfinish(conn_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  std::string run(const std::string& sql) {
    PGresult* result = PQexec(conn_, sql.c_str());
    const ExecStatusType status = PQresultStatus(result);
    std::string value;
    if (status == PGRES_TUPLES_OK && PQntuples(result) > 0 && PQnfields(result) > 0) {
      value = PQgetvalue(result, 0, 0);
    }
    const std::string error = PQresultErrorMessage(result);
    PQclear(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      throw std::runtime_error("test PostgreSQL: " + sql + ": " + error);
    }
    return value;
  }

 private:
  PGconn* conn_;
};

}  // namespace

PostgresServer::PostgresServer() : bin_dir_(find_bin_dir()) {
  std::string pattern = (fs::temp_directory_path() / "hdp-pg-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp");
  dir_ = pattern;
  try {
    if (::geteuid() == 0) {
      // PostgreSQL refuses root: the server runs as an unprivileged user that owns its files.
      run_as_ = kUnprivilegedUser;
      const passwd* entry = ::getpwnam(kUnprivilegedUser);
      if (entry == nullptr) throw std::runtime_error(std::string("no user ") + kUnprivilegedUser);
      if (::chown(dir_.c_str(), entry->pw_uid, entry->pw_gid) != 0) {
        throw std::system_error(errno, std::generic_category(), "chown " + dir_.string());
      }
    }
    run_to_completion({(bin_dir_ / "initdb").string(), "-D", (dir_ / "data").string(), "-U", user(), "-A", "trust",
                       "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
                      "initdb");
    // A port taken between free_port() and the server's bind: try another one.
    for (int attempt = 1;; ++attempt) {
      port_ = free_port();
      try {
        start();
        break;
      } catch (const std::exception&) {
        if (attempt >= 3 || log().find("could not bind") == std::string::npos) throw;
      }
    }
  } catch (...) {
    server_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
    throw;
  }
}

PostgresServer::~PostgresServer() {
  try {
    stop();
  } catch (...) {  // NOLINT(bugprone-empty-catch): the ChildProcess below kills it anyway
  }
  server_.reset();
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

void PostgresServer::run_to_completion(std::vector<std::string> argv, const std::string& what) {
  const fs::path log_path = dir_ / (what + ".log");
  ChildProcess::Options options;
  options.user = run_as_;
  options.env = {"LC_ALL=C", "TZ=UTC"};
  ChildProcess child(std::move(argv), log_path, options);
  const auto status = child.wait_for_exit(kStartTimeout);
  if (!status || *status != 0) {
    throw std::runtime_error(what + " failed (" + (status ? "exit " + std::to_string(*status) : "timeout") +
                             "): " + read_file(log_path));
  }
}

void PostgresServer::start() {
  if (server_) return;
  ChildProcess::Options options;
  options.user = run_as_;
  options.append = true;
  options.env = {"LC_ALL=C", "TZ=UTC"};
  // Durability is not what the tests measure: no fsync, so databases are created quickly.
  server_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{(bin_dir_ / "postgres").string(), "-D", (dir_ / "data").string(), "-p",
                               std::to_string(port_), "-k", dir_.string(), "-c", "listen_addresses=127.0.0.1", "-c",
                               "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c",
                               "max_connections=100"},
      dir_ / "server.log", options);
  const std::string conninfo = admin_conninfo("postgres");
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (PQping(conninfo.c_str()) != PQPING_OK) {
    if (!server_->running() || std::chrono::steady_clock::now() >= deadline) {
      const auto status = server_->exit_status();
      server_.reset();
      throw std::runtime_error("PostgreSQL did not start (" +
                               (status ? "exit " + std::to_string(*status) : std::string("timeout")) + "): " + log());
    }
    std::this_thread::sleep_for(20ms);
  }
}

void PostgresServer::stop() {
  if (!server_) return;
  server_->signal(SIGINT);  // fast shutdown: disconnects clients, then exits cleanly
  if (!server_->wait_for_exit(kStopTimeout)) server_->kill9();
  server_.reset();
}

std::string PostgresServer::log() const {
  return read_file(dir_ / "server.log");
}

std::string PostgresServer::admin_conninfo(const std::string& database) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + user() + " dbname=" + database +
         " connect_timeout=10";
}

std::string PostgresServer::uri(const std::string& database) const {
  return "postgresql://" + user() + "@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

std::string PostgresServer::socket_uri(const std::string& database) const {
  return "postgresql:///" + database + "?host=" + dir_.string() + "&port=" + std::to_string(port_) + "&user=" + user();
}

void PostgresServer::create_database(const std::string& name) {
  execute("postgres",
          "CREATE DATABASE \"" + name + "\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'");
}

void PostgresServer::execute(const std::string& database, const std::string& sql) {
  Connection(admin_conninfo(database)).run(sql);
}

std::string PostgresServer::query_value(const std::string& database, const std::string& sql) {
  return Connection(admin_conninfo(database)).run(sql);
}

}  // namespace testsupport
