#include "store_reader.hpp"

#include <exception>
#include <utility>

#include <boost/asio/post.hpp>

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

StoreReader::StoreReader(ReadStores stores) : stores_(stores) {}

StoreReader::StoreReader(boost::asio::io_context& io, OwnedReadStores stores)
    : io_(&io), owned_(std::move(stores)), stores_{*owned_.store, *owned_.sessions, *owned_.agents}, thread_([this] {
        reader_main();
      }) {}

StoreReader::~StoreReader() {
  *alive_ = false;
  if (!thread_.joinable()) return;
  std::deque<Pending> dropped;
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
    dropped.swap(queue_);
  }
  wake_.notify_one();
  // A read waiting for a lock or a slow server would hold the shutdown up to its timeout.
  if (owned_.connection) owned_.connection->cancel();
  thread_.join();
  // dropped goes here, on the main thread: its completions hold what belongs to the loop.
}

std::string StoreReader::run(const Job& job, ReadStores& stores) {
  try {
    job(stores);
    return {};
  } catch (const std::exception& e) {
    const std::string why = e.what();
    return why.empty() ? std::string("the read failed") : why;
  } catch (...) {
    return "the read failed";
  }
}

void StoreReader::submit(Job job, Done done) {
  if (!thread_.joinable()) {
    const std::string error = run(job, stores_);
    done(error);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(Pending{std::move(job), std::move(done), std::chrono::steady_clock::now()});
  }
  wake_.notify_one();
}

void StoreReader::reader_main() {
  for (;;) {
    Pending pending;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return quit_ || !queue_.empty(); });
      if (quit_) return;
      pending = std::move(queue_.front());
      queue_.pop_front();
    }
    std::string error;
    const auto waited = std::chrono::steady_clock::now() - pending.submitted;
    if (waited > kReadQueueDeadline) {
      error = "waited " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()) +
              " ms behind slower reads; the database is slow or unreachable";
    } else {
      error = run(pending.job, stores_);
    }
    pending.job = nullptr;  // what it holds is plain data: released here
    boost::asio::post(*io_,
                      [alive = std::weak_ptr<bool>(alive_), done = std::move(pending.done), error = std::move(error)] {
                        if (!alive.expired()) done(error);
                      });
  }
}

}  // namespace hdp::host
