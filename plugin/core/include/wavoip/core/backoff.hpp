#pragma once
// When to poll WaVoIP's storage for a recording that no webhook announced.
//
// Capped exponential backoff with jitter: attempt 0 is `first_delay_s` after the call ended,
// attempt n >= 1 waits min(initial_backoff_s * 2^(n-1), max_backoff_s) after attempt n-1
// finished, each wait scaled by a jitter factor in [1 - jitter, 1 + jitter] and still never
// longer than max_backoff_s, and no attempt is ever scheduled after the deadline (`deadline_s`
// after the call ended). With the defaults and
// no jitter the polls happen at 60 s, 90 s, 150 s, 270 s, ... then every 30 min, the last one at
// exactly 4 h: 14 attempts.
//
// Jitter is deterministic: a splitmix64 hash of (seed, call id, attempt), so one call's schedule
// is reproducible (tests, restarts) while different calls spread out.

#include <cstdint>
#include <optional>
#include <string_view>

#include "wavoip/core/time.hpp"

namespace wavoip {

// The `poll.*` configuration keys (see config.hpp for the table).
struct PollSettings {
  std::int64_t first_delay_s = 60;      // WaVoIP: the file may be missing "for a few minutes"
  std::int64_t initial_backoff_s = 30;  // first wait between two polls
  std::int64_t max_backoff_s = 1800;    // cap of one wait
  std::int64_t deadline_s = 14400;      // give up 4 h after the call ended (the seed's promise)
  double jitter = 0.2;                  // each wait is scaled by a factor in [1 - jitter, 1 + jitter]
  std::optional<std::uint64_t> seed;    // fixes the jitter pattern; the call id already varies it
  // Calls that never connected (REJECTED, NOT_ANSWERED, HANDLED_REMOTELY without ACTIVE or a
  // positive duration) are shown "no recording" with the reason; true polls them like any
  // other ended call.
  bool unanswered_calls = false;
  bool operator==(const PollSettings&) const = default;
};

// splitmix64 finaliser: a fast, well-mixed 64-bit hash step.
std::uint64_t splitmix64(std::uint64_t x);

class BackoffPolicy {
 public:
  explicit BackoffPolicy(PollSettings settings = {});

  const PollSettings& settings() const { return settings_; }

  // Deadline of the polling window that starts at `ended_at`.
  TimeMs deadline_for(TimeMs ended_at) const;

  // Due time of attempt 0: ended_at + jittered first_delay, never beyond the deadline.
  TimeMs first_poll_at(TimeMs ended_at, std::string_view call_id) const;

  // Due time of attempt `attempt` (>= 1) when attempt-1 finished at `now`: now + jittered wait,
  // clamped to `deadline_at`. nullopt when `now` is already at/after the deadline: give up.
  std::optional<TimeMs> next_attempt_at(std::uint32_t attempt, TimeMs now, TimeMs deadline_at,
                                        std::string_view call_id) const;

  // True once no further attempt may be scheduled.
  static bool past_deadline(TimeMs deadline_at, TimeMs now) { return now >= deadline_at; }

  // Wait before attempt `attempt` without jitter, in ms (attempt 0: first_delay).
  std::int64_t base_wait_ms(std::uint32_t attempt) const;

  // Jitter factor in [1 - jitter, 1 + jitter] for this call and attempt.
  double jitter_factor(std::string_view call_id, std::uint32_t attempt) const;

 private:
  std::int64_t jittered_wait_ms(std::uint32_t attempt, std::string_view call_id) const;

  PollSettings settings_;
};

}  // namespace wavoip
