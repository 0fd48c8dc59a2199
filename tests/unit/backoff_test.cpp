// What the backoff policy proves: the exact default schedule, the cap, the deadline, and
// jitter that is bounded and reproducible per (seed, call, attempt).

#include "wavoip/core/backoff.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace wavoip {
namespace {

constexpr TimeMs kEnded = 1'700'000'000'000;  // any epoch time

// "call-7". Built with += because GCC 12 at -O2 warns falsely on `"literal" + std::string`
// (GCC bug 105651).
std::string numbered(const char* prefix, int n) {
  std::string id = prefix;
  id += std::to_string(n);
  return id;
}

PollSettings no_jitter() {
  PollSettings s;
  s.jitter = 0;
  return s;
}

// Runs the policy the way the flow does: attempt 0 at first_poll_at, then each next attempt
// relative to the previous one, until the policy gives up. Returns offsets in seconds.
std::vector<std::int64_t> schedule(const BackoffPolicy& policy, std::string_view call_id) {
  std::vector<std::int64_t> offsets;
  const TimeMs deadline = policy.deadline_for(kEnded);
  std::optional<TimeMs> due = policy.first_poll_at(kEnded, call_id);
  for (std::uint32_t attempt = 1; due; ++attempt) {
    offsets.push_back((*due - kEnded) / 1000);
    due = policy.next_attempt_at(attempt, *due, deadline, call_id);
    if (offsets.size() > 1000) break;  // a broken policy must not hang the test
  }
  return offsets;
}

TEST(BackoffSchedule, DefaultScheduleWithoutJitterIsExact) {
  const BackoffPolicy policy(no_jitter());
  // 60 s after the end, then waits of 30, 60, 120, 240, 480, 960, then 1800 (capped) ...,
  // and the last attempt exactly at the 4-hour deadline.
  const std::vector<std::int64_t> expected{60,   90,   150,  270,  510,   990,   1950,
                                           3750, 5550, 7350, 9150, 10950, 12750, 14400};
  EXPECT_EQ(schedule(policy, "A1B2"), expected);
}

TEST(BackoffSchedule, WaitsDoubleFromInitialAndStopAtTheCap) {
  const BackoffPolicy policy(no_jitter());
  EXPECT_EQ(policy.base_wait_ms(0), 60'000);
  EXPECT_EQ(policy.base_wait_ms(1), 30'000);
  EXPECT_EQ(policy.base_wait_ms(2), 60'000);
  EXPECT_EQ(policy.base_wait_ms(3), 120'000);
  EXPECT_EQ(policy.base_wait_ms(7), 1'800'000);  // 1920 s capped
  EXPECT_EQ(policy.base_wait_ms(8), 1'800'000);
  EXPECT_EQ(policy.base_wait_ms(4'000'000'000U), 1'800'000);  // no overflow for absurd attempts
}

TEST(BackoffSchedule, NoAttemptAfterTheDeadline) {
  PollSettings s;
  s.jitter = 0.9;  // large jitter: the clamp has to do the work
  s.seed = 7;
  const BackoffPolicy policy(s);
  for (int i = 0; i < 200; ++i) {
    const std::vector<std::int64_t> offsets = schedule(policy, numbered("call-", i));
    ASSERT_FALSE(offsets.empty());
    EXPECT_LE(offsets.back(), 14400);
    EXPECT_TRUE(std::is_sorted(offsets.begin(), offsets.end()));
    EXPECT_EQ(offsets.back(), 14400) << "the last attempt is at the deadline itself";
  }
}

TEST(BackoffSchedule, GivesUpAtAndAfterTheDeadline) {
  const BackoffPolicy policy(no_jitter());
  const TimeMs deadline = policy.deadline_for(kEnded);
  EXPECT_EQ(deadline - kEnded, 14'400'000);
  EXPECT_FALSE(BackoffPolicy::past_deadline(deadline, deadline - 1));
  EXPECT_TRUE(BackoffPolicy::past_deadline(deadline, deadline));
  EXPECT_FALSE(policy.next_attempt_at(3, deadline, deadline, "x"));
  EXPECT_FALSE(policy.next_attempt_at(3, deadline + 1, deadline, "x"));
  EXPECT_EQ(policy.next_attempt_at(3, deadline - 1, deadline, "x"), deadline);
}

TEST(BackoffSchedule, FirstPollNeverBeyondAShortDeadline) {
  PollSettings s = no_jitter();
  s.first_delay_s = 60;
  s.deadline_s = 60;
  const BackoffPolicy policy(s);
  EXPECT_EQ(policy.first_poll_at(kEnded, "x"), kEnded + 60'000);
}

TEST(BackoffJitter, ReproducibleForTheSameSeedCallAndAttempt) {
  PollSettings s;
  s.seed = 42;
  const BackoffPolicy a(s);
  const BackoffPolicy b(s);
  EXPECT_EQ(schedule(a, "A1B2C3"), schedule(b, "A1B2C3"));
  EXPECT_DOUBLE_EQ(a.jitter_factor("A1B2C3", 5), b.jitter_factor("A1B2C3", 5));
}

TEST(BackoffJitter, VariesWithCallSeedAndAttempt) {
  PollSettings s;
  s.seed = 42;
  const BackoffPolicy policy(s);
  PollSettings other_seed = s;
  other_seed.seed = 43;
  EXPECT_NE(policy.jitter_factor("call-1", 1), policy.jitter_factor("call-2", 1));
  EXPECT_NE(policy.jitter_factor("call-1", 1), policy.jitter_factor("call-1", 2));
  EXPECT_NE(policy.jitter_factor("call-1", 1), BackoffPolicy(other_seed).jitter_factor("call-1", 1));
  EXPECT_NE(schedule(policy, "call-1"), schedule(policy, "call-2"));
}

TEST(BackoffJitter, StaysWithinTheFractionAndUsesBothSides) {
  PollSettings s;
  s.jitter = 0.2;
  const BackoffPolicy policy(s);  // no seed: the default one
  double lo = 2;
  double hi = 0;
  for (int call = 0; call < 500; ++call) {
    for (std::uint32_t attempt = 0; attempt < 14; ++attempt) {
      const double f = policy.jitter_factor(numbered("C", call), attempt);
      ASSERT_GE(f, 0.8);
      ASSERT_LE(f, 1.2);
      lo = std::min(lo, f);
      hi = std::max(hi, f);
      const std::int64_t wait =
          *policy.next_attempt_at(attempt, kEnded, kEnded + 1'000'000'000, numbered("C", call)) - kEnded;
      const std::int64_t base = policy.base_wait_ms(std::max<std::uint32_t>(attempt, 1));
      ASSERT_GE(wait, base * 8 / 10);
      ASSERT_LE(wait, base * 12 / 10);
    }
  }
  EXPECT_LT(lo, 0.82);
  EXPECT_GT(hi, 1.18);
}

TEST(BackoffJitter, ZeroJitterIsExactlyOne) {
  EXPECT_DOUBLE_EQ(BackoffPolicy(no_jitter()).jitter_factor("anything", 3), 1.0);
}

TEST(BackoffJitter, Splitmix64MatchesTheReferenceOutput) {
  // First output of the reference splitmix64 generator seeded with 0.
  EXPECT_EQ(splitmix64(0), 0xe220a8397b1dcdafULL);
}

}  // namespace
}  // namespace wavoip
