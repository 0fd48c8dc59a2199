#include "store_backends.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>  // mkdtemp

#include <stdexcept>

namespace wavoip::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "wavoip-store-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

namespace {

// Owns the shared server; gtest destroys environments after the last test.
class PostgresEnvironment final : public ::testing::Environment {
 public:
  testsupport::PostgresServer& server() {
    if (!server_) server_ = std::make_unique<testsupport::PostgresServer>();
    return *server_;
  }
  void TearDown() override { server_.reset(); }

 private:
  std::unique_ptr<testsupport::PostgresServer> server_;
};

PostgresEnvironment* environment() {
  static PostgresEnvironment* env =
      static_cast<PostgresEnvironment*>(::testing::AddGlobalTestEnvironment(new PostgresEnvironment));
  return env;
}

// Registered before main runs, so that TearDown stops the server.
[[maybe_unused]] const PostgresEnvironment* const kRegistered = environment();

}  // namespace

testsupport::PostgresServer& shared_postgres() { return environment()->server(); }

std::string new_postgres_database() {
  static int counter = 0;
  const std::string name = "store_" + std::to_string(++counter);
  shared_postgres().create_database(name);
  return name;
}

}  // namespace wavoip::testing
