#include "recording_service.hpp"

#include <algorithm>

namespace wavoip {

namespace {

constexpr size_t kPollBatch = 256;
// When due polls could not be consumed (the database failed), try again this much later instead
// of spinning on the loop.
constexpr TimeMs kStuckPollRetryMs = 1000;
constexpr int64_t kPendingGaugeEveryMs = 10000;
// Shared store: how often at most an idle node looks for due work it did not schedule itself.
constexpr TimeMs kRescanMaxMs = 5000;

}  // namespace

void RecordingService::on_store_batch(const StoreWriter::BatchInfo& info) {
  if (info.deliveries > 0) metrics_.commit_batch(info.deliveries);
  if (!info.earliest_due_known) return;
  earliest_due_ = info.earliest_due;
  arm_poll_timer();
}

void RecordingService::arm_poll_timer(TimeMs min_delay_ms) {
  if (stopping_ || poll_job_pending_) return;
  std::optional<TimeMs> due = earliest_due_;
  const TimeMs now = host_.wall_ms();
  // Due now but no download slot: a finished download re-arms, so nothing spins meanwhile and
  // the due calls wait in the store, not in memory.
  if (due && *due <= now && free_download_slots() == 0) due.reset();
  if (poll_timer_ != 0 && poll_timer_due_ == due && min_delay_ms == 0) return;
  if (poll_timer_ != 0) {
    loop_.cancel_timer(poll_timer_);
    poll_timer_ = 0;
    poll_timer_due_.reset();
  }
  if (!due) return;
  const TimeMs delay = std::max<TimeMs>(min_delay_ms, *due - now);
  poll_timer_due_ = due;
  poll_timer_ = loop_.start_timer(static_cast<uint64_t>(delay), [this] {
    poll_timer_ = 0;
    poll_timer_due_.reset();
    on_poll_timer();
  });
}

void RecordingService::on_poll_timer() {
  // The count reads the whole pending index (about 6 ms per 100,000 calls): refreshed at most
  // every kPendingGaugeEveryMs, inside the poll batch.
  const int64_t monotonic = host_.monotonic_ms();
  const bool count = !pending_gauge_at_ || monotonic - *pending_gauge_at_ >= kPendingGaugeEveryMs;
  if (count) pending_gauge_at_ = monotonic;
  const TimeMs now = host_.wall_ms();
  // No more polls at once than there are free download slots: the rest stay due in the store.
  const size_t limit = std::min(kPollBatch, free_download_slots());
  if (limit == 0) return;  // a finished download re-arms
  struct Polled {
    std::vector<Store::ClaimedStep> results;
    size_t due = 0;
    size_t consumed = 0;
    std::optional<std::int64_t> pending;
  };
  poll_job_pending_ = true;
  anonymous_job_started();
  // Every due poll of this timer run, and every claim of another node whose lease ended, each
  // claimed for this node: one transaction.
  writer_.submit(
      [this, now, limit, count](Store& store) -> StoreWriter::Continuation {
        auto out = std::make_shared<Polled>();
        if (count) out->pending = store.count_pending();
        // Each call's claim and its step: one write.
        out->results =
            store.claim_due_and_apply(claims_.owner, now, claims_.lease_ms, limit, [&](const CallRecord& record) {
              // A call still fetching or attaching under a claim is one whose node died, or
              // paused past its lease: this node takes its work over.
              const bool taken_over = record.busy();
              FlowResult result =
                  step(record, taken_over ? FlowInput(Resume{have_file(record)}) : FlowInput(PollDue{}), now, config_);
              if (taken_over || result.record.next_attempt_at != record.next_attempt_at) ++out->consumed;
              return result;
            });
        out->due = out->results.size();
        return [this, out] {
          poll_job_pending_ = false;
          if (out->pending) metrics_.pending_polls(*out->pending);
          for (const Store::ClaimedStep& claimed : out->results) carry_out(claimed.result, claimed.fence);
          // A full batch may leave more due calls: the re-armed timer has no delay then, and
          // other work on the loop runs in between. A batch of which nothing could be consumed
          // is tried again a second later instead of at once, forever.
          arm_poll_timer(out->due > 0 && out->consumed == 0 ? kStuckPollRetryMs : 0);
          anonymous_job_finished();
        };
      },
      [this](const std::string& why) {
        poll_job_pending_ = false;
        host_.log(HDP_LOG_ERROR, "[WaVoIP] Could not take the due polls: " + why);
        arm_poll_timer(kStuckPollRetryMs);
        anonymous_job_finished();
      });
}

void RecordingService::arm_rescan() {
  if (!claims_.shared || stopping_ || rescan_timer_ != 0) return;
  const auto every = static_cast<uint64_t>(std::clamp<TimeMs>(claims_.lease_ms / 2, 1, kRescanMaxMs));
  rescan_timer_ = loop_.start_timer(every, [this] {
    rescan_timer_ = 0;
    if (!poll_job_pending_) on_poll_timer();
    arm_rescan();
  });
}

}  // namespace wavoip
