#include "shared_postgres.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace testsupport {
namespace {

// Owns the shared server; GoogleTest tears environments down after the last test.
class PostgresEnvironment final : public ::testing::Environment {
 public:
  PostgresServer& server() {
    if (!server_) server_ = std::make_unique<PostgresServer>();
    return *server_;
  }
  void TearDown() override { server_.reset(); }

 private:
  std::unique_ptr<PostgresServer> server_;
};

PostgresEnvironment* environment() {
  static auto* env = static_cast<PostgresEnvironment*>(::testing::AddGlobalTestEnvironment(new PostgresEnvironment));
  return env;
}

// Registered before main runs, so that TearDown stops the server.
[[maybe_unused]] const PostgresEnvironment* const kRegistered = environment();

}  // namespace

PostgresServer& shared_postgres() {
  return environment()->server();
}

std::string new_postgres_database(const std::string& prefix) {
  static int counter = 0;
  const std::string name = prefix + "_" + std::to_string(++counter);
  shared_postgres().create_database(name);
  return name;
}

}  // namespace testsupport
