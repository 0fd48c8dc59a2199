// Carries out what the per-call flow decides: message updates, downloads, attachments and the
// one poll timer. It runs on the host's main loop only, never inside a webhook request. Its
// members are defined in one file per behaviour (call_display, host_sync, downloads,
// attachments, resume, poll_timer; plugin/README.md maps them); the private section below
// follows the same order.
//
// The loop never waits for a disk or for the host's store: every read and write of the plugin's
// store is a job for the StoreWriter (committed in batches, off the loop in thread mode), and the
// flow's actions run in the job's continuation, after the commit. Message writes go through the
// host's hdp.messages/2 when it offers it (completed later, batched by the host), else through
// hdp.messages/1 (completed in the call).
//
// What the host shows is kept in step with the store through the host_sync marks: every step that
// changes what the agent sees marks its call in the same transaction; the mark is cleared (in a
// later batch) only once no job and no host write of that call is outstanding and the last write
// succeeded, so a crash at any point shows the call again after the restart.
#pragma once

#include "host_api.hpp"
#include "metrics.hpp"
#include "store_writer.hpp"

#include <wavoip/core/config.hpp>
#include <wavoip/fetch/event_loop.hpp>
#include <wavoip/core/flow.hpp>
#include <wavoip/fetch/fetch_thread.hpp>
#include <wavoip/fetch/recording_fetcher.hpp>
#include <wavoip/store/store.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace wavoip {

// Who this node is to the store's claims, and how long they hold. Set at start, never changed:
// store jobs read it on the writer thread.
struct ClaimSettings {
  std::string owner;  // this node's name on its claims
  TimeMs lease_ms = 120000;
  bool shared = false;  // several nodes share the store (PostgreSQL): no node voids the others' claims
};

// Inside a store job, after a step of `record`'s call that no claim of this node covered: a
// download or an attachment is work that one node does under a claim with a lease
// (Store::claim_call). Takes the claim for the StartFetch and Attach in `actions`, and drops
// them (with a debug line) when another claim holds the call, here or on another node, or it is
// attached. Returns the fence this node holds on the call afterwards, if any. (A step under a
// claim ends it in its own write: Store::ClaimAfter.)
std::optional<std::int64_t> settle_claim(Store& store, const ClaimSettings& claims, const CallRecord& record,
                                         std::vector<Action>& actions, TimeMs now);

class RecordingService {
 public:
  // The operator's retry route, and its address for one call (the agent's "try again" on the host).
  static constexpr const char* kRetryPath = "/wavoip/recordings/retry";
  static std::string retry_path(std::string_view call_id);

  RecordingService(const HostApi& host, EventLoop& loop, StoreWriter& writer, const Config& config,
                   std::string data_dir, ClaimSettings claims);
  ~RecordingService();
  RecordingService(const RecordingService&) = delete;
  RecordingService& operator=(const RecordingService&) = delete;

  // After a restart (one store job, run at once on the main thread, before the writer starts): void stale download
  // claims, delete half-written and leftover files, restart downloads and attachments whose outcome is unknown, show
  // again on the host what a crash kept from it (host_sync marks), and arm the one poll timer.
  void resume();

  // A job about `call_id` was submitted to the store by someone else (the webhook); it must be
  // matched by one job_finished once its continuation or failure ran.
  void job_started(const std::string& call_id);
  void job_finished(const std::string& call_id);
  // Carries out what a committed step decided (the webhook's continuation). `fence`: the claim
  // this node holds on the call after the step (settle_claim), if any.
  void carry_out(const FlowResult& result, std::optional<std::int64_t> fence = std::nullopt);
  const ClaimSettings& claim_settings() const { return claims_; }

  // What became of an operator's retry request.
  enum class RetryAnswer { retrying, unknown_call, store_failed };
  // An operator asked to try a call's recording again; `answer` runs once, later.
  void retry(const std::string& call_id, std::function<void(RetryAnswer)> answer);

  // After every store batch (main thread): the schedule's earliest due time, and metrics.
  void on_store_batch(const StoreWriter::BatchInfo& info);

  // The host is stopping: it already dropped our timers, fds, attachment jobs and message writes.
  void shutdown();

  // Diagnostics for tests and metrics.
  size_t downloads_in_flight() const;
  bool poll_timer_armed() const { return poll_timer_ != 0; }
  PluginMetrics& metrics() { return metrics_; }

 private:
  struct AttachJob {
    std::string call_id;
    std::string file_path;
    CallRecord record;  // the call as its attaching step committed it
  };
  // What the host shows for a call, as far as this process knows: the message id (stable for
  // the call's external key; 0 while not known) and the recording status last sent. It spares
  // the host writes when nothing visible changed (a poll answered 404 again). Bounded:
  // forgotten all at once when full, and empty after a restart, which only costs the writes it
  // saves.
  struct Shown {
    uint64_t message_id = 0;
    int32_t status = -1;  // none sent by this process yet
    std::string reason;
  };
  using MessageWaiter = std::function<void(std::optional<uint64_t>)>;
  struct MessageOp;    // one hdp.messages/2 write in flight
  struct CallMessage;  // the call's message as the host takes it

  // ---- recording_service.cpp: the flow's steps and what they lead to ----

  // What a step in the store came to.
  struct StepResult {
    std::optional<FlowResult> result;   // nullopt: unknown call, or the claim was lost
    std::optional<std::int64_t> fence;  // the claim this node holds on the call afterwards
    bool lost = false;                  // the step needed this node's claim, and another node has it now
  };
  // Submits one step of the flow for a known call; `then` runs after the commit with the result
  // (nullopt: unknown call, or lost claim). Claims and releases are folded into the same
  // transaction. `claimed`: the step is the outcome of this node's work on the call (a download,
  // an attachment) and is written only while this node's claim on the call holds.
  void apply(const std::string& call_id, FlowInput input, std::function<void(std::optional<FlowResult>)> then,
             std::function<void(const std::string&)> failed = {}, bool claimed = false);
  // Runs on the writer, inside the batch: one step of a known call's flow with its claim; under
  // `held` (a claim of this node) only while it holds.
  static StepResult step_in_store(Store& store, const std::string& call_id, const FlowInput& input, TimeMs now,
                                  const std::string& message_id, const Config& config, const ClaimSettings& claims,
                                  std::optional<std::int64_t> held);
  // Main thread, after a step: what this node holds now.
  void note_claim(const std::string& call_id, std::optional<std::int64_t> held, const StepResult& step);
  std::optional<std::int64_t> held_claim(const std::string& call_id) const;
  // The outcome of this node's work on a call could not be written: the claim is no longer
  // renewed, so that the call is taken over (here or on another node) when its lease ends.
  void let_claim_lapse(const std::string& call_id, std::int64_t held);
  // Another node has the call now: this node drops its claim (`held`, or whichever it has when
  // nullopt) and says so in the log.
  void claim_lost(const std::string& call_id, std::optional<std::int64_t> held);
  // The claims this node holds are renewed every third of the lease, in one store job.
  void arm_renewal();
  void renew_claims();
  // Whether an attaching call's file is on this node (for Resume).
  static bool have_file(const CallRecord& record);

  // ---- call_display.cpp: showing a call on the host ----

  // Shows `record` on the host: its fields when `fields`, and `status` unless nullopt.
  void show(const CallRecord& record, bool fields, std::optional<int32_t> status);
  void show_v1(const CallRecord& record, bool fields, std::optional<int32_t> status);
  // Runs `waiter` with the call's message id once known (an upsert if needed), or nullopt.
  void with_message(const CallRecord& record, MessageWaiter waiter);
  std::optional<uint64_t> upsert_v1(const CallRecord& record);
  static void on_message_done(void* user_data, const hdp_message_result_t* result);
  void message_done(MessageOp& op, const hdp_message_result_t& result);
  void remember_message(const std::string& call_id, uint64_t message_id);
  // Shows the call as downloading once kShowBusyAfterMs passed, if it still is (one timer).
  void show_busy_later(const CallRecord& record);
  // The call left fetching/attaching: nothing busy to show for it any more.
  void not_busy(const std::string& call_id);
  void arm_busy_timer();
  // The host's recording status for a state, and the message key of a call ("wavoip:<id>").
  static int32_t to_host_status(RecordingState state);
  static std::string external_key(std::string_view call_id);

  // ---- host_sync.cpp: bookkeeping of the host_sync marks (see the header comment) ----

  void unsettled(const std::string& call_id);
  void settled(const std::string& call_id);
  void shown_ok(const std::string& call_id);
  void shown_failed(const std::string& call_id);
  void clear_sync_marks();
  // Jobs whose calls are not known when they are submitted (the poll batch, the resume).
  void anonymous_job_started();
  void anonymous_job_finished();

  // ---- downloads.cpp: slots, starting a download, its completion, file paths ----

  // Starts the download now, or once a slot is free (max_concurrent_downloads). `record` is the
  // call as the step that asked for it committed it (fetching).
  void start_fetch(const StartFetch& action, const CallRecord& record);
  void begin_fetch(const StartFetch& action);
  void start_deferred_fetches();
  void on_fetch_done(const FetchResult& result);
  size_t download_limit() const;
  size_t free_download_slots() const;
  std::string temp_path_for(const std::string& call_id) const;
  std::string recording_path_for(const std::string& call_id, const std::string& content_type) const;
  // The file extension an agent's player expects for a content type.
  static std::string extension_for(std::string_view content_type);
  static FetchOptions fetch_options(const Config& config);
  // The downloads on the host's loop, or on a thread of their own (config "downloads").
  std::unique_ptr<Downloader> make_downloader();
  static void on_fetch_results(void* user_data);  // main thread, asked for by the fetch thread

  // ---- attachments.cpp: handing a downloaded file to the host ----

  void attach(const Attach& action, const CallRecord& record);
  void attach_failed(const std::string& call_id, const std::string& detail);
  static void on_attach_done(void* user_data, const hdp_attachment_result_t* result);
  void attach_done(uint64_t job_id, const hdp_attachment_result_t& result);

  // ---- poll_timer.cpp: the one poll timer ----

  // Arms the one poll timer for the earliest due call; no sooner than `min_delay_ms`. While
  // every download slot is taken and a poll is already due, or a poll batch is being written,
  // nothing is armed: the next finished download or batch re-arms it.
  void arm_poll_timer(TimeMs min_delay_ms = 0);
  void on_poll_timer();
  // Shared store: this node learns the others' due times only from its own batches, so it also
  // claims due work every half lease or 5 s, whichever is sooner (a node that died leaves its
  // polls and claims behind).
  void arm_rescan();

  const HostApi& host_;
  EventLoop& loop_;
  StoreWriter& writer_;
  const Config& config_;
  std::string data_dir_;
  const ClaimSettings claims_;
  bool stopping_ = false;
  PluginMetrics metrics_{host_};

  // recording_service.cpp: the claims this node holds (call id -> fence): downloads and
  // attachments in flight or waiting for a slot.
  std::unordered_map<std::string, std::int64_t> held_;
  uint64_t renewal_timer_ = 0;

  // call_display.cpp
  static constexpr size_t kMaxShown = 65536;
  std::unordered_map<std::string, Shown> shown_;
  std::unordered_map<std::string, std::vector<MessageWaiter>> message_waiters_;
  std::unordered_map<std::string, int> message_ops_;  // hdp.messages/2 writes in flight per call
  struct BusyCall {
    std::string call_id;
    int64_t show_at = 0;  // host monotonic ms
  };
  std::deque<BusyCall> busy_;  // in show_at order: the delay is the same for all
  struct BusyEntry {
    int64_t show_at = 0;
    CallRecord record;  // as it was when the call became busy
  };
  std::unordered_map<std::string, BusyEntry> busy_at_;  // calls still to be shown busy
  uint64_t busy_timer_ = 0;

  // host_sync.cpp
  std::unordered_map<std::string, int> unsettled_;  // store jobs + host writes outstanding
  std::unordered_set<std::string> needs_clear_;     // last host write succeeded; mark to clear
  std::vector<std::string> to_clear_;               // settled and shown: cleared at turn's end
  uint64_t sync_timer_ = 0;
  int anonymous_jobs_ = 0;

  // downloads.cpp
  std::unique_ptr<Downloader> fetcher_;
  std::deque<StartFetch> deferred_fetches_;  // waiting for a free download slot
  // Calls downloading here or waiting for a slot, each with its record as the fetching step
  // committed it.
  std::unordered_map<std::string, CallRecord> downloading_;
  // Calls whose recording was handed to the host before the download's outcome was written
  // (a store this node owns alone, see on_fetch_done): the outcome's own Attach is not started again.
  std::unordered_set<std::string> attached_early_;

  // attachments.cpp
  std::unordered_map<uint64_t, AttachJob> attach_jobs_;

  // poll_timer.cpp
  uint64_t poll_timer_ = 0;
  std::optional<TimeMs> poll_timer_due_;
  std::optional<TimeMs> earliest_due_;  // as of the last batch
  bool poll_job_pending_ = false;
  uint64_t rescan_timer_ = 0;                // shared store: looks for the due work of other nodes now and then
  std::optional<int64_t> pending_gauge_at_;  // host monotonic ms of the last pending count
};

}  // namespace wavoip
