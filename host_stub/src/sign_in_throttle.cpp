#include "sign_in_throttle.hpp"

#include <algorithm>

namespace hdp::host {

int64_t SignInThrottle::wait_in(Table& table, std::string_view key, int64_t now_ms) const {
  const auto it = table.find(key);
  if (it == table.end()) return 0;
  if (now_ms - it->second.last_failure_ms >= limits_.forget_after_ms) {
    table.erase(it);
    return 0;
  }
  return std::max<int64_t>(0, it->second.locked_until_ms - now_ms);
}

void SignInThrottle::fail_in(Table& table, std::string_view key, int64_t now_ms) const {
  auto it = table.find(key);
  if (it == table.end()) {
    if (table.size() >= limits_.max_entries) {
      std::erase_if(table,
                    [&](const auto& kv) { return now_ms - kv.second.last_failure_ms >= limits_.forget_after_ms; });
    }
    if (table.size() >= limits_.max_entries) {
      table.erase(std::min_element(table.begin(), table.end(), [](const auto& a, const auto& b) {
        return a.second.last_failure_ms < b.second.last_failure_ms;
      }));
    }
    it = table.emplace(std::string(key), Entry{}).first;
  }
  Entry& e = it->second;
  e.failures = std::min<uint32_t>(e.failures + 1, 32);
  e.last_failure_ms = now_ms;
  int64_t lock = limits_.first_lock_ms;
  for (uint32_t i = 1; i < e.failures && lock < limits_.max_lock_ms; ++i) lock *= 2;
  e.locked_until_ms = now_ms + std::min(lock, limits_.max_lock_ms);
}

int64_t SignInThrottle::wait_ms(std::string_view name, std::string_view address, int64_t now_ms) {
  return std::max(wait_in(names_, name, now_ms), wait_in(addresses_, address, now_ms));
}

void SignInThrottle::failed(std::string_view name, std::string_view address, int64_t now_ms) {
  fail_in(names_, name, now_ms);
  fail_in(addresses_, address, now_ms);
}

void SignInThrottle::succeeded(std::string_view name) {
  const auto it = names_.find(name);
  if (it != names_.end()) names_.erase(it);
}

}  // namespace hdp::host
