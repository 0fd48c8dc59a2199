#pragma once
// Time in the core is plain data: milliseconds since the Unix epoch, always taken from the
// host's clock by the caller. The core never reads a clock itself, so tests (and the host's
// virtual clock) can run the 4-hour schedule in milliseconds.

#include <cstdint>

namespace wavoip {

using TimeMs = std::int64_t;

inline constexpr TimeMs kMsPerSecond = 1000;

constexpr TimeMs seconds_to_ms(std::int64_t seconds) {
  return seconds * kMsPerSecond;
}

}  // namespace wavoip
