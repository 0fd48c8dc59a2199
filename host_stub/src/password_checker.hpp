// Where a sign-in's password is checked: the account's lookup and its Argon2id verification
// (tens of milliseconds of CPU and ~64 MiB each, by design). On the loop that time would hold
// every webhook, timer and request behind it, so a thread of its own (a LoopWorker) does it, with
// a connection of its own to the accounts (SQLite or PostgreSQL), and posts each result back to
// the loop.
//
// One check at a time, in the order they came: a sign-in is serialised by its caller anyway
// (AgentAuth keeps the failed-sign-in throttle exact), and one core for hashing is the most that
// sign-ins may take from the host. A check's completion runs on the main thread, exactly once,
// unless the checker is destroyed first (then never).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "agent_store.hpp"
#include "helpdesk_store.hpp"
#include "loop_worker.hpp"

namespace hdp::host {

class PgConnection;

// Statements of the checker's connection (PostgreSQL) end after this long (statement_timeout).
constexpr int64_t kSignInStatementTimeoutMs = 10000;

class PasswordChecker {
 public:
  // Runs on the main thread: the agent when the name exists and the password matches; error is
  // empty, or why the check could not be made (the accounts cannot be read).
  using Done = std::function<void(std::optional<AgentRow> agent, const std::string& error)>;

  // Opens a connection of its own to the accounts at location (which the loop's store has
  // created or migrated) and starts the thread; completions are posted to io. Throws
  // std::exception when it cannot connect.
  PasswordChecker(boost::asio::io_context& io, const StoreLocation& location);
  PasswordChecker(const PasswordChecker&) = delete;
  PasswordChecker& operator=(const PasswordChecker&) = delete;
  // Drops the checks not started (their completions never run), cancels the statement running,
  // waits for the check running to end (at most one hash), and runs no completion from then on.
  // [main-thread]
  ~PasswordChecker();

  // Queues the check; done runs later on the main thread, never inside this call. [main-thread]
  void check(std::string name, std::string password, Done done);

 private:
  std::shared_ptr<PgConnection> connection_;  // PostgreSQL: for cancelling at destruction
  std::unique_ptr<AgentStore> agents_;        // used by the thread only
  LoopWorker thread_;                         // last: stopped before what its jobs use goes
};

}  // namespace hdp::host
