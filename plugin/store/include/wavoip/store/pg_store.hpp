#pragma once
// `PgStore`: the `Store` on PostgreSQL (libpq), for several helpdesk nodes that share one
// database. Same semantics as `SqliteStore` (see store.hpp): exactly-once by UNIQUE constraints
// and `INSERT ... ON CONFLICT DO NOTHING` plus the affected-row count; every method atomic on its
// own and nested inside `run_batch` (in a savepoint, except apply_to_call and
// apply_to_claimed_call, whose writes all follow their step: a write of theirs that fails aborts
// the batch's transaction, so the job fails whole; a step that throws has written nothing;
// a pipelined batch takes no savepoints and, when a job fails, runs again this way); the same
// orderings (call ids compare byte-wise, COLLATE "C", whatever the database's collation); raw
// bodies byte-exact (bytea).
// Calls that read a record to change it lock its row (`SELECT ... FOR UPDATE`), so two nodes
// applying deliveries of one call never lose an update.
//
// Tables live in the schema `wavoip` of the database the URI names. The schema is versioned
// (`wavoip.schema_migrations`) and migrated at open under a transaction-scoped advisory lock,
// so several nodes may start at once.
//
// Blocking: libpq's synchronous API, and inside run_batch its pipeline mode on a blocking
// connection (see PgOptions::pipeline). Use it from one thread that owns it (the plugin's store
// thread), never from the host's event loop.
//
// Errors: std::runtime_error (PgError) with the server's or libpq's message; a failed call leaves
// the database as it was (each call is one transaction, or a savepoint inside the caller's).
// A single-statement call that fails inside a run_batch job leaves that job's transaction
// aborted, so the job fails as a whole even if it caught the error: never a partial commit.
//
// Connection loss: the call that meets it throws. The next call (outside a transaction) connects
// again; while the server stays unreachable, attempts are spaced by a backoff that doubles from
// `reconnect_min` to `reconnect_max`, and calls in between throw at once without touching the
// network. Inside a transaction (a batch) nothing reconnects: the rest of the batch fails, and it
// was never committed.

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "pg_common/pg_common.hpp"
#include "wavoip/store/store.hpp"

namespace wavoip {

// The server's, libpq's or the connection's failure (shared with the stub host's code: pg_common).
using PgError = pg_common::Error;

struct PgOptions {
  std::chrono::milliseconds reconnect_min{100};  // wait after the first failed reconnect
  std::chrono::milliseconds reconnect_max{10'000};
  int connect_timeout_s = 10;  // used unless the URI sets connect_timeout
  // The server ends a transaction of this connection that waits this long between statements
  // (PostgreSQL's idle_in_transaction_session_timeout), so that a node paused mid-batch does not
  // keep its locks; its batch then fails, and nothing of it is written. Unless the URI sets
  // `options`.
  std::chrono::milliseconds idle_in_transaction_timeout{5'000};
  // run_batch sends its statements in libpq's pipeline mode: a statement whose result nobody
  // reads (a savepoint, a step's write) goes out with the next one whose result is needed, so a
  // batch of N webhooks costs about N + 1 round trips instead of about 8 N. A batch in which a
  // statement fails is rolled back and run again statement by statement, where the job at fault
  // fails alone. Off: every statement waits for its result.
  bool pipeline = true;
};

// True for "postgresql://..." and "postgres://..." (libpq's URI forms).
bool is_postgresql_uri(std::string_view text);

// The URI's target without its password ("host=db port=5432 dbname=helpdesk user=wavoip"), for
// log lines and errors.
std::string describe_postgresql_uri(const std::string& uri);

class PgStore final : public Store {
 public:
  static constexpr int kSchemaVersion = 5;  // MAX(version) of wavoip.schema_migrations

  // Connects, migrates the schema and prepares the statements. Throws PgError when the URI is
  // invalid, the server is unreachable or refuses the login, or the schema is newer than
  // kSchemaVersion.
  explicit PgStore(const std::string& uri, PgOptions options = {});
  ~PgStore() override;
  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  // Every step is saved in its delivery's transaction: the inbox is not kept, nothing to replay.
  DeliveryResult record_delivery_and_apply(std::string_view raw_body, const Event& event, std::string_view inbox,
                                           TimeMs now, const StepFn& fn) override;
  std::vector<std::string> run_batch(const std::vector<std::function<void()>>& jobs) override;
  std::optional<FlowResult> apply_to_call(std::string_view call_id, const StepFn& fn) override;
  std::optional<CallRecord> load_call(std::string_view call_id) override;
  void save_call(const CallRecord& record) override;
  bool mark_attached(std::string_view call_id, std::string_view attachment_id, TimeMs now) override;
  std::optional<std::string> attachment_of(std::string_view call_id) override;
  std::optional<TimeMs> earliest_due() override;
  std::vector<CallRecord> calls_needing_resume(std::size_t limit, std::string_view after_call_id) override;
  std::int64_t count_pending() override;
  std::int64_t delivery_count() override;
  std::int64_t prune_deliveries(TimeMs before) override;
  std::vector<CallRecord> calls_behind_host(std::size_t limit, std::string_view after_call_id) override;
  void mark_host_synced(const std::vector<std::string>& call_ids) override;
  std::vector<Claim> claim_due(std::string_view owner, TimeMs now, TimeMs lease_ms, std::size_t limit) override;
  bool renew_claim(std::string_view call_id, std::int64_t fence, TimeMs lease_until) override;
  std::optional<FlowResult> apply_to_claimed_call(std::string_view call_id, std::int64_t fence, ClaimAfter after,
                                                  const StepFn& fn) override;
  std::vector<ClaimedStep> claim_due_and_apply(std::string_view owner, TimeMs now, TimeMs lease_ms, std::size_t limit,
                                               const StepFn& fn) override;
  bool release_claim(std::string_view call_id, std::int64_t fence) override;
  std::optional<Claim> claim_call(std::string_view call_id, std::string_view owner, TimeMs now,
                                  TimeMs lease_ms) override;
  std::int64_t release_all_claims() override;

  // Diagnostics: the server process serving the current connection (0 when not connected), and
  // how many connections were made since open (1 until a reconnect).
  int backend_pid();
  int connections_made() const;
  // Batches run again whole after the server chose them as a deadlock's victim (or a
  // serialization failure): several nodes writing the same calls in another order.
  int conflicts_retried() const;
  // The plan this connection keeps for earliest_due() (EXPLAIN EXECUTE of its prepared statement).
  std::string plan_of_earliest_due();
  // Pipelined batches in which a statement failed, run again statement by statement.
  int pipeline_fallbacks() const;
  // Waits for the server since open: one per statement, or one per pipelined read or commit.
  std::int64_t round_trips() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wavoip
