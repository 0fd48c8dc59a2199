#include "clock.hpp"

#include <chrono>

namespace hdp::host {

int64_t RealClock::wall_us() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t RealClock::monotonic_us() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void VirtualClock::set_monotonic_us(int64_t monotonic_us) {
  if (monotonic_us > now_.load()) now_.store(monotonic_us);
}

}  // namespace hdp::host
