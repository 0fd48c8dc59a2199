// Carries out what the per-call flow decides: message updates, downloads, attachments and the
// one poll timer. It runs on the host's main loop only, never inside a webhook request: actions
// are queued by the webhook and drained from a zero-delay timer.
#pragma once

#include "host_api.hpp"
#include "metrics.hpp"

#include <wavoip/config.hpp>
#include <wavoip/event_loop.hpp>
#include <wavoip/flow.hpp>
#include <wavoip/recording_fetcher.hpp>
#include <wavoip/store.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace wavoip {

class RecordingService {
public:
   RecordingService(const HostApi &host, EventLoop &loop, Store &store, const Config &config,
                    std::string data_dir);
   ~RecordingService();
   RecordingService(const RecordingService &) = delete;
   RecordingService &operator=(const RecordingService &) = delete;

   // After a restart: void stale download claims, delete half-written and leftover files,
   // restart downloads and attachments whose outcome is unknown, show again on the host what a
   // crash kept from it (host_sync marks), and arm the one poll timer.
   void resume();

   // Queues actions decided inside a webhook request; they run on a later loop turn.
   void enqueue(std::vector<Action> actions);

   // An operator asked to try a call's recording again. False when the call is unknown.
   bool retry(const std::string &call_id);

   // The host is stopping: it already dropped our timers, fds and attachment jobs.
   void shutdown();

   // Diagnostics for tests and metrics.
   size_t downloads_in_flight() const;
   bool poll_timer_armed() const { return poll_timer_ != 0; }
   PluginMetrics &metrics() { return metrics_; }

private:
   struct AttachJob {
      std::string call_id;
      std::string file_path;
   };

   void drain();
   // Each returns false when the host refused to show a change (message or status).
   bool run(const std::vector<Action> &actions);
   bool run(const Action &action);
   std::optional<FlowResult> apply_input(const std::string &call_id, const FlowInput &input);
   // Clears, in one transaction, the host_sync marks of the calls apply_input showed.
   void clear_sync_marks();

   // Creates or updates the call's message on the host (always a host write).
   std::optional<uint64_t> message_for(const CallRecord &record);
   // The call's message id: remembered from an earlier upsert, else message_for.
   std::optional<uint64_t> known_message(const CallRecord &record);
   bool upsert_message(const UpsertMessage &action);
   bool set_recording_status(const SetRecordingStatus &action);
   // Shows the stored record (message and recording status) on the host. known_id false: find
   // the message by upsert even if its id is remembered.
   bool show_on_host(const CallRecord &record, bool known_id = true);
   // Shows the call as downloading once kShowBusyAfterMs passed, if it still is (one timer).
   void show_busy_later(const std::string &call_id);
   // The call left fetching/attaching: nothing busy to show for it any more.
   void not_busy(const std::string &call_id);
   void arm_busy_timer();
   // After a crash: show again every call whose last change may not have reached the host.
   size_t show_calls_behind_host();
   // Deletes downloaded recordings that no attaching call needs any more.
   size_t remove_stale_recordings();
   // Starts the download now, or once a slot is free (max_concurrent_downloads).
   void start_fetch(const StartFetch &action);
   void begin_fetch(const StartFetch &action);
   void on_fetch_done(const FetchResult &result);
   void attach(const Attach &action);
   static void on_attach_done(void *user_data, const hdp_attachment_result_t *result);
   void attach_done(uint64_t job_id, const hdp_attachment_result_t &result);

   // Arms the one poll timer for the earliest due call; no sooner than `min_delay_ms`. While
   // every download slot is taken and a poll is already due, nothing is armed: the next
   // finished download re-arms it.
   void arm_poll_timer(TimeMs min_delay_ms = 0);
   void on_poll_timer();
   size_t download_limit() const;
   size_t free_download_slots() const;

   std::string temp_path_for(const std::string &call_id) const;
   std::string recording_path_for(const std::string &call_id, const std::string &content_type) const;

   const HostApi &host_;
   EventLoop &loop_;
   Store &store_;
   const Config &config_;
   std::string data_dir_;
   std::unique_ptr<RecordingFetcher> fetcher_;

   std::deque<Action> queue_;
   std::deque<StartFetch> deferred_fetches_;  // waiting for a free download slot
   uint64_t drain_timer_ = 0;
   uint64_t sync_timer_ = 0;
   struct BusyCall {
      std::string call_id;
      int64_t show_at = 0;  // host monotonic ms
   };
   std::deque<BusyCall> busy_;  // in show_at order: the delay is the same for all
   std::unordered_map<std::string, int64_t> busy_at_;  // calls still to be shown busy, and when
   uint64_t busy_timer_ = 0;
   std::vector<std::string> synced_;  // shown by apply_input; their marks go at the turn's end
   uint64_t poll_timer_ = 0;
   std::optional<TimeMs> poll_timer_due_;
   std::optional<int64_t> pending_gauge_at_;  // host monotonic ms of the last pending count
   std::unordered_map<uint64_t, AttachJob> attach_jobs_;
   // What the host shows for a call, as far as this process knows: the message id (stable for
   // the call's external key) and the recording status last set on it. It spares the host a
   // second upsert before every status change and a write when nothing visible changed (a poll
   // answered 404 again). Bounded: forgotten all at once when full, and empty after a restart,
   // which only costs the host writes it saves.
   struct Shown {
      uint64_t message_id = 0;
      int32_t status = -1;  // none set by this process yet
      std::string reason;
   };
   static constexpr size_t kMaxShown = 65536;
   std::unordered_map<std::string, Shown> shown_;
   bool stopping_ = false;
   PluginMetrics metrics_{host_};
};

}  // namespace wavoip
