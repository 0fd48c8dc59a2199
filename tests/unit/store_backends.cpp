#include "store_backends.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace wavoip::testing {

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

testsupport::PostgresServer& shared_postgres() {
  return environment()->server();
}

std::string new_postgres_database() {
  static int counter = 0;
  const std::string name = "store_" + std::to_string(++counter);
  shared_postgres().create_database(name);
  return name;
}

}  // namespace wavoip::testing
