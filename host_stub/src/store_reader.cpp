#include "store_reader.hpp"

#include <stdexcept>
#include <utility>

#include "agent_store.hpp"
#include "helpdesk_store.hpp"
#include "pg_agent_records.hpp"
#include "pg_agent_sessions.hpp"
#include "pg_connection.hpp"
#include "pg_helpdesk_store.hpp"

namespace hdp::host {

OwnedReadStores open_pg_read_stores(const std::string& uri, SessionLimits sessions) {
  auto conn = std::make_shared<PgConnection>(uri, "hdp-stub-host reader",
                                             "-c statement_timeout=" + std::to_string(kReadStatementTimeoutMs));
  OwnedReadStores stores;
  // The reader never writes helpdesk data: no clock for timestamps.
  stores.store = std::make_unique<PgHelpdeskStore>(conn, [] { return int64_t{0}; });
  stores.sessions = std::make_unique<PgAgentSessions>(conn, sessions);
  stores.agents = std::make_unique<AgentStore>(std::make_unique<PgAgentRecords>(conn));
  stores.connection = std::move(conn);
  return stores;
}

namespace {

// What a read that throws without saying why reports.
const std::string kReadFailed = "the read failed";

}  // namespace

StoreReader::StoreReader(ReadStores stores) : stores_(stores) {}

StoreReader::StoreReader(boost::asio::io_context& io, OwnedReadStores stores)
    : owned_(std::move(stores)),
      stores_{*owned_.store, *owned_.sessions, *owned_.agents},
      thread_(std::make_unique<LoopWorker>(io, kReadFailed, "hdp-reader")) {}

StoreReader::~StoreReader() {
  if (!thread_) return;
  // A read waiting for a lock or a slow server would hold the shutdown up to its timeout.
  thread_->stop([this] {
    if (owned_.connection) owned_.connection->cancel();
  });
}

void StoreReader::submit(Job job, Done done) {
  if (!thread_) {
    const std::string error = LoopWorker::run_here([&] { job(stores_); }, kReadFailed);
    done(error);
    return;
  }
  thread_->submit(
      [this, job = std::move(job), submitted = std::chrono::steady_clock::now()] {
        const auto waited = std::chrono::steady_clock::now() - submitted;
        if (waited > kReadQueueDeadline) {
          throw std::runtime_error(
              "waited " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()) +
              " ms behind slower reads; the database is slow or unreachable");
        }
        job(stores_);
      },
      std::move(done));
}

}  // namespace hdp::host
