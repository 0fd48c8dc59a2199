#include "password_checker.hpp"

#include <utility>

#include <sodium.h>

#include "pg_agent_records.hpp"
#include "pg_connection.hpp"

namespace hdp::host {

namespace {

// A password on its way to the thread: wiped when the check is done with it, or when the check is
// dropped at shutdown before it ran. A job must be copyable (std::function), so it holds the
// password through a shared_ptr: the text itself is never copied.
struct Password {
  std::string text;
  explicit Password(std::string password) : text(std::move(password)) {}
  Password(const Password&) = delete;
  Password& operator=(const Password&) = delete;
  ~Password() { sodium_memzero(text.data(), text.size()); }
};

}  // namespace

PasswordChecker::PasswordChecker(boost::asio::io_context& io, const StoreLocation& location)
    : thread_(io, "the accounts cannot be read", "hdp-password") {
  // The thread waits idle until the first check; when this throws, its destructor stops it.
  if (location.is_postgresql()) {
    connection_ = std::make_shared<PgConnection>(location.postgresql_uri, "hdp-stub-host sign-in",
                                                 "-c statement_timeout=" + std::to_string(kSignInStatementTimeoutMs));
    agents_ = std::make_unique<AgentStore>(std::make_unique<PgAgentRecords>(connection_));
  } else {
    agents_ = std::make_unique<AgentStore>(location);
  }
}

PasswordChecker::~PasswordChecker() {
  // A lookup waiting for a lock or a slow server would hold the shutdown up to its timeout; a hash
  // cannot be cancelled, but ends within tens of milliseconds.
  thread_.stop([this] {
    if (connection_) connection_->cancel();
  });
}

void PasswordChecker::check(std::string name, std::string password, Done done) {
  // Only plain data crosses: the agent found goes back through found, the completion stays here.
  auto found = std::make_shared<std::optional<AgentRow>>();
  thread_.submit([agents = agents_.get(), found, name = std::move(name),
                  password = std::make_shared<const Password>(
                      std::move(password))] { *found = agents->verify(name, password->text); },
                 [found, done = std::move(done)](const std::string& error) { done(std::move(*found), error); });
}

}  // namespace hdp::host
