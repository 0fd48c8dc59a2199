#pragma once
// Durable state of the plugin: every accepted webhook, every call's CallRecord, and the
// exactly-once guards for downloads and attachments.
//
// `Store` is the interface the plugin glue uses; `SqliteStore` is the embedded default (one
// file, WAL); `PgStore` (pg_store.hpp) is the store several helpdesk nodes share. The work on
// a call (a download, an attachment, a due poll) is done by one node at a time under a claim
// with a lease and a fence (see "Claims with leases" below). Exactly-once is enforced by UNIQUE constraints and
// `INSERT ... ON CONFLICT DO NOTHING` plus the change count, never by check-then-set, so it also
// holds across two connections to the same file.
//
// Errors: database failures throw std::runtime_error (SQLite::Exception); a failed call leaves
// the database as it was before it (each call is one transaction).
//
// Threading: an instance is used from one thread at a time.
// [main-thread]

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wavoip/core/config.hpp"
#include "wavoip/core/flow.hpp"
#include "wavoip/core/payload.hpp"
#include "wavoip/core/time.hpp"

namespace wavoip {

class Store {
 public:
  // The pure flow step to run inside a transaction, e.g.
  //   [&](const CallRecord& r) { return step(r, input, now, config); }
  using StepFn = std::function<FlowResult(const CallRecord&)>;

  struct DeliveryResult {
    std::int64_t delivery_id = 0;
    std::optional<CallRecord> record;  // the saved record, for CALL and RECORD events
    std::vector<Action> actions;       // what the step asked for; empty for DEVICE/unknown
  };

  virtual ~Store() = default;

  // One transaction: appends `raw_body` to `deliveries`; for CALL and RECORD events also loads
  // the call (or new_call_record), runs `fn` and saves the record it returns. If `fn` or the
  // database throws, nothing is written. `inbox` (the webhook key's inbox) is kept with the
  // delivery, so that replay_unsaved can run the same step again.
  // On SQLite the delivery is the durable part: the call's new record may stay in memory for a
  // while (see SqliteOptions::write_back_calls), and replay_unsaved rebuilds it after a crash.
  virtual DeliveryResult record_delivery_and_apply(std::string_view raw_body, const Event& event,
                                                   std::string_view inbox, TimeMs now, const StepFn& fn) = 0;

  // After a crash, before anything else touches the store: the deliveries whose step had not
  // reached the call's saved record yet, in the order received, each through `fn` (the same step
  // the delivery ran: its raw body, its inbox, when it was received), saved as if they had just
  // arrived, and every call they change marked behind the host (calls_behind_host). `fn`
  // returns nullopt for a body it cannot read; that delivery is left alone. Returns how many
  // deliveries were applied. Stores that save every step at once have nothing to replay.
  using ReplayFn = std::function<std::optional<FlowResult>(const CallRecord&, std::string_view raw_body,
                                                           std::string_view inbox, TimeMs received_at)>;
  virtual std::int64_t replay_unsaved(const ReplayFn& fn) {
    (void)fn;
    return 0;
  }
  // Writes what the store holds in memory only (records of calls changed by deliveries) now.
  // The store writer calls it when it has been idle for a moment. A no-op where nothing waits.
  virtual void save_unsaved() {}

  // Group commit: what record_delivery_and_apply does for each delivery, all of them in one
  // transaction (one WAL commit, one fsync under synchronous=FULL). Each delivery is applied in
  // a savepoint of its own, in order, so a later delivery of the same call sees the earlier one,
  // and one that fails (its `error` set, nothing of it written) does not fail the others. When
  // the commit itself fails, every entry carries the error and nothing is written.
  // The same for every engine: run_batch with one record_delivery_and_apply per job.
  struct DeliveryInput {
    std::string_view raw_body;
    const Event* event = nullptr;
    std::string_view inbox;
    TimeMs now = 0;
    StepFn fn;
  };
  struct BatchEntry {
    std::optional<DeliveryResult> result;  // set when stored
    std::string error;                     // why not, otherwise
  };
  std::vector<BatchEntry> record_deliveries_and_apply(const std::vector<DeliveryInput>& inputs);

  // Group commit of any store calls: runs `jobs` in order inside one transaction, each as if in a
  // savepoint of its own. Every other method is atomic on its own and, called from a job, nests
  // inside the batch's transaction. Returns one entry per job: "" when it ran and was committed,
  // otherwise why not (a job that threw is rolled back alone; when the commit itself fails, every
  // entry carries that error and nothing is written). A job may run more than once: engines run a
  // batch first without savepoints (each costs, see SqliteStore and PgStore) and, when a job
  // fails, roll it back whole and run every job again with them.
  virtual std::vector<std::string> run_batch(const std::vector<std::function<void()>>& jobs) = 0;

  // One transaction: loads a known call, runs `fn`, saves. nullopt (nothing run) if unknown.
  // For inputs that are not webhooks: fetch and attach outcomes, due polls, retries.
  virtual std::optional<FlowResult> apply_to_call(std::string_view call_id, const StepFn& fn) = 0;

  virtual std::optional<CallRecord> load_call(std::string_view call_id) = 0;
  virtual void save_call(const CallRecord& record) = 0;  // insert or replace by call_id

  // Records the host's attachment for the call. True the first time only; a second attachment
  // for the same call is refused (returns false). A call with an attachment is never claimed
  // again (claim_call).
  virtual bool mark_attached(std::string_view call_id, std::string_view attachment_id, TimeMs now) = 0;
  virtual std::optional<std::string> attachment_of(std::string_view call_id) = 0;

  // When claim_due finds work next: the earliest next_attempt_at of a call no claim holds, or
  // the earliest end of a lease (a node that died leaves its claims to be taken over then). Two
  // indexed lookups: arm the one timer here.
  virtual std::optional<TimeMs> earliest_due() = 0;
  // Calls left fetching or attaching (after a restart), by call id, after `after_call_id`
  // ("" = from the start), at most `limit`: page through them without loading all.
  virtual std::vector<CallRecord> calls_needing_resume(std::size_t limit, std::string_view after_call_id) = 0;

  // Calls still waiting for a recording (waiting, fetching, attaching).
  virtual std::int64_t count_pending() = 0;
  virtual std::int64_t delivery_count() = 0;
  // Deletes deliveries received before `before`; returns how many.
  virtual std::int64_t prune_deliveries(TimeMs before) = 0;

  // Calls whose message on the host may be behind their record: every step that asks for
  // UpsertMessage or SetRecordingStatus marks its call in the same transaction. After a crash
  // these are shown again. By call id after `after_call_id`, at most `limit`.
  virtual std::vector<CallRecord> calls_behind_host(std::size_t limit, std::string_view after_call_id) = 0;
  // The host now shows the current record of these calls: clears their marks (one transaction).
  virtual void mark_host_synced(const std::vector<std::string>& call_ids) = 0;

  // ---- Claims with leases: several nodes share the due work ----
  // A claim gives one node (`owner`) a call's due work until its lease ends. Every claim adds
  // one to the call's fence, and every later write of the claim names the fence it got: a node
  // that lost its claim (paused past its lease while another node took over) writes nothing.
  // A node that dies needs no clean-up: its leases expire and another node claims the calls.
  // Saving a call by other paths (webhooks, save_call) keeps its claim.
  struct Claim {
    CallRecord record;
    std::int64_t fence = 0;
    TimeMs lease_until = 0;
  };
  // Claims at most `limit` calls that no live lease holds and whose poll is due at `now` or
  // whose last claim's lease has ended, earliest due first (a lapsed claim counts from its
  // poll time, or else its lease end; ties by call id). Each gets `owner`, the lease
  // `now + lease_ms` and its next fence. Nodes claiming at once get disjoint calls; on
  // PostgreSQL none waits for the rows another node is claiming (FOR UPDATE SKIP LOCKED).
  virtual std::vector<Claim> claim_due(std::string_view owner, TimeMs now, TimeMs lease_ms, std::size_t limit) = 0;
  // A claim holds while its fence is the call's and it was not released (an ended lease that no
  // other node took over yet still holds: fencing, not clocks, decides).
  // Moves the lease of a claim that still holds to `lease_until`; false otherwise.
  virtual bool renew_claim(std::string_view call_id, std::int64_t fence, TimeMs lease_until) = 0;
  // What becomes of a claim when its step is written (apply_to_claimed_call).
  enum class ClaimAfter {
    keep,
    release,
    release_unless_busy,  // released unless the step left the call busy (CallRecord::busy)
  };
  // apply_to_call for the holder of a claim: loads the call, runs `fn` and saves, only while the
  // claim holds; otherwise nullopt, nothing run, nothing written. The claim is kept or ends
  // (`after`) in the same write.
  virtual std::optional<FlowResult> apply_to_claimed_call(std::string_view call_id, std::int64_t fence,
                                                          ClaimAfter after, const StepFn& fn) = 0;
  // A call claim_due_and_apply claimed, and its step.
  struct ClaimedStep {
    FlowResult result;
    std::optional<std::int64_t> fence;  // the claim, kept while the step left the call busy
  };
  // claim_due, with `fn` applied at once to each call claimed, in one transaction: each claim is
  // kept only where its step left the call busy (as apply_to_claimed_call with
  // release_unless_busy). The poll timer's one job; each engine writes each call once.
  virtual std::vector<ClaimedStep> claim_due_and_apply(std::string_view owner, TimeMs now, TimeMs lease_ms,
                                                       std::size_t limit, const StepFn& fn) = 0;
  // Ends a claim that still holds; false when it was released or another node claimed the call.
  virtual bool release_claim(std::string_view call_id, std::int64_t fence) = 0;
  // Claims one call for work that is not a due poll (a READY's download, a retry, a restart's
  // unfinished download or attachment): only while no live lease holds the call (none, or one
  // that ended at or before `now`) and it has no attachment. The claim is the same as
  // claim_due's: `owner`, the lease `now + lease_ms`, the call's next fence. nullopt otherwise
  // (another node, or this one, is at work on the call, or it is attached): nothing written.
  virtual std::optional<Claim> claim_call(std::string_view call_id, std::string_view owner, TimeMs now,
                                          TimeMs lease_ms) = 0;
  // The only node on a store it owns alone (SQLite) voids every claim at start: the process that
  // held them is gone. Returns how many. Never on a store that several nodes share.
  virtual std::int64_t release_all_claims() = 0;

 protected:
  // For the engines: `fn` on `current`, refused (std::logic_error) when it moves the record to
  // another key, which would orphan or overwrite a call.
  static FlowResult step_of(const CallRecord& current, const StepFn& fn);
  // Whether a step asked the host to show something: its call is behind the host until shown.
  static bool shows_on_host(const std::vector<Action>& actions);
};

struct SqliteOptions {
  SyncMode synchronous = SyncMode::normal;  // FULL also survives power loss, at a cost per commit
  int busy_timeout_ms = 5000;               // wait this long for another connection's lock
  // Write-back of the records deliveries change: a delivery's durable part is its row in
  // `deliveries`; its call's new record is held in memory and written later: the oldest eighth
  // of them in a transaction of deliveries once this many calls wait or the oldest has waited
  // write_back_ms (a slice, so that no transaction of deliveries carries them all), and a
  // record at once when anything else reads or writes its call (a claim, a download's outcome,
  // a scan of the calls). A call that gets several deliveries meanwhile is written once, and
  // the mark that its message may be behind the host is not written at all when the host shows
  // it first. 0 (the default) writes every record in its delivery's transaction.
  // Only for a connection that owns the file alone (the plugin's): another connection would not
  // see the records held in memory, and writing them later would overwrite its changes.
  std::size_t write_back_calls = 0;
  int write_back_ms = 250;
  // WAL checkpoints on a thread of the store's own, with a connection of its own, once the WAL
  // holds this many pages not yet copied into the file; the writer's commits then never copy
  // nor wait for a checkpoint's fsyncs, until the WAL holds wal_cap_pages (a busy writer leaves
  // a background checkpoint no moment to finish, and only a finished one lets the WAL start
  // over): that commit checkpoints as SQLite would, and holds up its deliveries' 202s for the
  // copy and the fsyncs. The cap (256 MiB of 4 KiB pages) makes that rare: once every 64,000
  // pages, about every 14 s at 5,000 deliveries a second. 0 (the default) leaves SQLite's
  // automatic checkpoint on the writer (1,000 pages).
  int background_checkpoint_pages = 0;
  int wal_cap_pages = 64000;  // sqlite_wal::kDefaultCapPages
};

class SqliteStore final : public Store {
 public:
  static constexpr int kSchemaVersion = 8;  // PRAGMA user_version

  // Opens or creates the file and migrates the schema. Throws std::runtime_error if the file
  // cannot be opened, WAL cannot be enabled, or its schema is newer than kSchemaVersion.
  explicit SqliteStore(const std::string& path, SqliteOptions options = {});
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  DeliveryResult record_delivery_and_apply(std::string_view raw_body, const Event& event, std::string_view inbox,
                                           TimeMs now, const StepFn& fn) override;
  std::int64_t replay_unsaved(const ReplayFn& fn) override;
  void save_unsaved() override;
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

  // Calls whose record is held in memory, not written yet (write-back; for tests).
  std::size_t unsaved_calls() const;
  // Batches of run_batch run a second time, with a savepoint per job, because a job failed in
  // the first run, which takes none.
  int rerun_batches() const { return rerun_batches_; }

  // Diagnostics: "wal" once open; the PRAGMA synchronous value (1 NORMAL, 2 FULL).
  std::string journal_mode();
  int synchronous_level();
  // SQLite's EXPLAIN QUERY PLAN of the statements the poll timer, the restart and the pending
  // count run, one line per statement ("earliest: SEARCH calls USING ..."): proves they use an
  // index whatever the table size.
  std::vector<std::string> hot_query_plans();
  // The writes done for every delivery, claim and outcome (those without RETURNING, whose rows
  // SQLite buffers in a temporary table by design) whose program builds a temporary b-tree each
  // time it runs: none, when every condition SQLite checks on a write is cheap to check.
  std::vector<std::string> writes_building_temporary_tables();

 private:
  bool run_batch_without_savepoints(const std::vector<std::function<void()>>& jobs);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rerun_batches_ = 0;
};

}  // namespace wavoip
