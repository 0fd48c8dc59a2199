#include "wavoip/core/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace wavoip {
namespace {

// Used when no seed is configured: the call id alone then spreads the calls.
constexpr std::uint64_t kDefaultSeed = 0x5741564f49502d31ULL;  // "WAVOIP-1"

// FNV-1a: turns the call id into 64 bits before mixing.
std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

BackoffPolicy::BackoffPolicy(PollSettings settings) : settings_(settings) {}

TimeMs BackoffPolicy::deadline_for(TimeMs ended_at) const {
  return ended_at + seconds_to_ms(settings_.deadline_s);
}

std::int64_t BackoffPolicy::base_wait_ms(std::uint32_t attempt) const {
  if (attempt == 0) return seconds_to_ms(settings_.first_delay_s);
  // Doubling stops at the cap; checking before shifting keeps large attempts from overflowing.
  std::int64_t wait_s = std::max<std::int64_t>(settings_.initial_backoff_s, 0);
  for (std::uint32_t i = 1; i < attempt && wait_s < settings_.max_backoff_s; ++i) wait_s *= 2;
  return seconds_to_ms(std::min(wait_s, settings_.max_backoff_s));
}

double BackoffPolicy::jitter_factor(std::string_view call_id, std::uint32_t attempt) const {
  if (settings_.jitter <= 0) return 1.0;
  std::uint64_t h = splitmix64(settings_.seed.value_or(kDefaultSeed) ^ splitmix64(fnv1a(call_id)));
  h = splitmix64(h ^ attempt);
  // Top 53 bits -> uniform double in [0, 1) -> [-1, 1).
  double unit = static_cast<double>(h >> 11) * 0x1.0p-53;
  return 1.0 + settings_.jitter * (2.0 * unit - 1.0);
}

std::int64_t BackoffPolicy::jittered_wait_ms(std::uint32_t attempt, std::string_view call_id) const {
  const std::int64_t wait = std::llround(static_cast<double>(base_wait_ms(attempt)) * jitter_factor(call_id, attempt));
  // The cap holds for the jittered wait too: no two polls are ever more than max_backoff_s apart.
  if (attempt >= 1) return std::min(wait, seconds_to_ms(settings_.max_backoff_s));
  return wait;
}

TimeMs BackoffPolicy::first_poll_at(TimeMs ended_at, std::string_view call_id) const {
  return std::min(ended_at + jittered_wait_ms(0, call_id), deadline_for(ended_at));
}

std::optional<TimeMs> BackoffPolicy::next_attempt_at(std::uint32_t attempt, TimeMs now, TimeMs deadline_at,
                                                     std::string_view call_id) const {
  if (past_deadline(deadline_at, now)) return std::nullopt;
  return std::min(now + jittered_wait_ms(std::max<std::uint32_t>(attempt, 1), call_id), deadline_at);
}

}  // namespace wavoip
