// Waiting for something another process or thread does.
#pragma once

#include <chrono>
#include <functional>

namespace testsupport {

// Checks `condition` every `interval` until it holds or `timeout` passes, then once more: true as
// soon as it held. The timeout only bounds a failing wait; it is never the expected duration.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = std::chrono::seconds(15),
                std::chrono::milliseconds interval = std::chrono::milliseconds(20));

}  // namespace testsupport
