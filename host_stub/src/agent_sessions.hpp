// Signed-in agents: one session per sign-in, found by the token of the session cookie, with its
// own token against cross-site request forgery. Kept in memory: a restarted host signs everyone
// out. Time comes from the caller (the host's clock), so tests can move it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace hdp::host {

struct AgentSession {
  int64_t agent_id = 0;
  std::string agent_name;
  std::string csrf_token;  // 64 hex digits; sent back by the page in X-CSRF-Token
  int64_t created_ms = 0;
  int64_t last_used_ms = 0;
};

struct SessionLimits {
  int64_t idle_ms = 12LL * 3600 * 1000;          // unused this long: signed out
  int64_t lifetime_ms = 7LL * 24 * 3600 * 1000;  // whatever the use: signed out
  size_t max_sessions = 10000;                   // more: the least recently used ends
};

class AgentSessions {
 public:
  explicit AgentSessions(SessionLimits limits = {});

  struct Created {
    std::string token;  // 64 hex digits, for the cookie; only its hash is kept
    AgentSession session;
  };
  Created create(int64_t agent_id, std::string_view agent_name, int64_t now_ms);
  // The session of token when it is known and not expired (which also marks it used).
  std::optional<AgentSession> find(std::string_view token, int64_t now_ms);
  // Ends the session of token; false when there was none.
  bool end(std::string_view token);
  size_t size() const { return sessions_.size(); }

 private:
  SessionLimits limits_;
  std::map<std::string, AgentSession> sessions_;  // by the hash of the token
};

// Equal strings, compared in time that depends on the length only.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace hdp::host
