// Where the agents' reads of the host's data run: the JSON API (conversations, messages,
// attachment rows) and the session check of every agent request (cookie -> session -> account).
//
// Two ways, one contract (a job's completion runs on the main thread, exactly once, unless the
// reader is destroyed first):
//  - on a reader thread of the host (PostgreSQL): each read is a network round trip to the
//    database server, and on the loop it would hold every webhook and timer behind it for as
//    long as the server takes (a lock, a slow plan, a server that went away and a connect that
//    times out). The thread (a LoopWorker) owns one connection of its own, runs the jobs in
//    order, and posts each completion back to the loop. A lost connection is opened again at the next job (as the
//    writer's is, PgConnection::exec); a job that fails reports why and is not retried. Every
//    statement ends after kReadStatementTimeoutMs, and a job that waited in the queue longer than
//    kReadQueueDeadline fails without running, so a request waits a bounded time, never forever.
//  - inline, on the loop (SQLite): a read of a local file in WAL mode takes microseconds and
//    never waits for the writer, less than handing it to a thread and back would cost; the job
//    and its completion run inside submit().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "agent_sessions.hpp"
#include "loop_worker.hpp"

namespace hdp::host {

class AgentStore;
class HelpdeskStore;
class PgConnection;
class SessionStore;

// Statements of the reader's connection end after this long (statement_timeout).
constexpr int64_t kReadStatementTimeoutMs = 10000;
// A job still queued this long after it was submitted fails without running: the reader is stuck
// behind slow reads, and its caller answers at once rather than adding to the wait.
constexpr std::chrono::milliseconds kReadQueueDeadline{10000};

// What a read job may use: on the reader thread its own stores, inline the loop's.
struct ReadStores {
  HelpdeskStore& store;
  SessionStore& sessions;
  AgentStore& agents;
};

// The stores a reader thread owns (one connection of its own).
struct OwnedReadStores {
  std::unique_ptr<HelpdeskStore> store;
  std::unique_ptr<SessionStore> sessions;
  std::unique_ptr<AgentStore> agents;
  // Their connection, for cancelling the statement that runs when the reader is destroyed.
  std::shared_ptr<PgConnection> connection;
};

// Opens the reader's stores on one new connection to the PostgreSQL database at uri, whose schema
// the loop's store has migrated. Throws std::exception when it cannot connect.
OwnedReadStores open_pg_read_stores(const std::string& uri, SessionLimits sessions = {});

class StoreReader {
 public:
  // Runs on the reader (any thread): reads, and keeps what it found in state it shares with its
  // Done. It must hold only plain data (no responder, nothing of the loop). Throws on failure.
  using Job = std::function<void(ReadStores&)>;
  // Runs on the main thread once the job ran: error is empty, or why the job failed or did not
  // run (for a log line; the caller answers 503).
  using Done = std::function<void(const std::string& error)>;

  // Inline: jobs run at once on the caller's thread, through stores (which must outlive this).
  explicit StoreReader(ReadStores stores);
  // A thread of its own owning stores; completions are posted to io.
  StoreReader(boost::asio::io_context& io, OwnedReadStores stores);
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;
  // Drops the jobs not started (their completions never run), cancels the statement running and
  // waits for its job to end, and runs no completion from then on. [main-thread]
  ~StoreReader();

  // Queues job; done runs later on the main thread (inline: before submit returns). [main-thread]
  void submit(Job job, Done done);

  bool on_thread() const { return thread_ != nullptr; }

 private:
  OwnedReadStores owned_;
  ReadStores stores_;
  std::unique_ptr<LoopWorker> thread_;  // none: inline
};

}  // namespace hdp::host
