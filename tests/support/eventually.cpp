#include "eventually.hpp"

#include <thread>

namespace testsupport {

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    if (condition()) return true;
    std::this_thread::sleep_for(interval);
  } while (std::chrono::steady_clock::now() < deadline);
  return condition();
}

}  // namespace testsupport
