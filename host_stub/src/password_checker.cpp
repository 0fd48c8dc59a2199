#include "password_checker.hpp"

#include <exception>
#include <utility>

#include <boost/asio/post.hpp>

#include <sodium.h>

#include "pg_agent_records.hpp"
#include "pg_connection.hpp"

namespace hdp::host {

PasswordChecker::PasswordChecker(boost::asio::io_context& io, const StoreLocation& location) : io_(io) {
  if (location.is_postgresql()) {
    connection_ = std::make_shared<PgConnection>(location.postgresql_uri, "hdp-stub-host sign-in",
                                                 "-c statement_timeout=" + std::to_string(kSignInStatementTimeoutMs));
    agents_ = std::make_unique<AgentStore>(std::make_unique<PgAgentRecords>(connection_));
  } else {
    agents_ = std::make_unique<AgentStore>(location);
  }
  thread_ = std::thread([this] { thread_main(); });
}

PasswordChecker::~PasswordChecker() {
  std::deque<Job> dropped;
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
    dropped.swap(queue_);
  }
  wake_.notify_one();
  // A lookup waiting for a lock or a slow server would hold the shutdown up to its timeout; a hash
  // cannot be cancelled, but ends within tens of milliseconds.
  if (connection_) connection_->cancel();
  thread_.join();
  for (Job& job : dropped) sodium_memzero(job.password.data(), job.password.size());
  // The completions still waiting never run; what they hold goes here, on the main thread.
  completions_.reset();
}

void PasswordChecker::check(std::string name, std::string password, Done done) {
  const uint64_t id = next_id_++;
  completions_->waiting.emplace(id, std::move(done));
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(Job{id, std::move(name), std::move(password)});
  }
  wake_.notify_one();
}

void PasswordChecker::thread_main() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return quit_ || !queue_.empty(); });
      if (quit_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    std::optional<AgentRow> agent;
    std::string error;
    try {
      agent = agents_->verify(job.name, job.password);
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "the accounts cannot be read";
    } catch (...) {
      error = "the accounts cannot be read";
    }
    sodium_memzero(job.password.data(), job.password.size());
    // Only plain data crosses: the completion itself stays on the main thread.
    boost::asio::post(io_, [completions = std::weak_ptr<Completions>(completions_), id = job.id,
                            agent = std::move(agent), error = std::move(error)]() mutable {
      const auto shared = completions.lock();
      if (!shared) return;
      const auto it = shared->waiting.find(id);
      if (it == shared->waiting.end()) return;
      Done done = std::move(it->second);
      shared->waiting.erase(it);
      done(std::move(agent), error);
    });
  }
}

}  // namespace hdp::host
