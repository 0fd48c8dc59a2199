// Slows password guessing: every failed sign-in locks its name and its client address for a
// while, doubling with each failure in a row (1 s, 2 s, 4 s, ... at most 5 min). While either is
// locked, sign-ins for them are refused before any password is checked. A success clears the
// name; an address is forgotten 15 minutes after its last failure. Pure: time comes from the
// caller.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace hdp::host {

struct ThrottleLimits {
  int64_t first_lock_ms = 1000;
  int64_t max_lock_ms = 5 * 60 * 1000;
  int64_t forget_after_ms = 15 * 60 * 1000;
  size_t max_entries = 10000;  // per kind; the oldest are forgotten first
};

class SignInThrottle {
 public:
  explicit SignInThrottle(ThrottleLimits limits = {}) : limits_(limits) {}

  // 0 when a sign-in for name from address may be tried now, else the milliseconds to wait.
  int64_t wait_ms(std::string_view name, std::string_view address, int64_t now_ms);
  void failed(std::string_view name, std::string_view address, int64_t now_ms);
  void succeeded(std::string_view name);

 private:
  struct Entry {
    uint32_t failures = 0;
    int64_t last_failure_ms = 0;
    int64_t locked_until_ms = 0;
  };
  using Table = std::map<std::string, Entry, std::less<>>;

  int64_t wait_in(Table& table, std::string_view key, int64_t now_ms) const;
  void fail_in(Table& table, std::string_view key, int64_t now_ms) const;

  ThrottleLimits limits_;
  Table names_;
  Table addresses_;
};

}  // namespace hdp::host
