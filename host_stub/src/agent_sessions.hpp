// Signed-in agents: one session per sign-in, found by the token of the session cookie, with its
// own token against cross-site request forgery. AgentSessions keeps them in memory (one node: a
// restarted host signs everyone out); PgAgentSessions in the database that several nodes share.
// Time comes from the caller (the host's clock), so tests can move it.
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

class SessionStore {
 public:
  virtual ~SessionStore() = default;

  struct Created {
    std::string token;  // 64 hex digits, for the cookie; only its hash is kept
    AgentSession session;
  };
  virtual Created create(int64_t agent_id, std::string_view agent_name, int64_t now_ms) = 0;
  // The session of token when it is known and not expired (which also marks it used).
  virtual std::optional<AgentSession> find(std::string_view token, int64_t now_ms) = 0;
  // Ends the session of token; false when there was none.
  virtual bool end(std::string_view token) = 0;
};

class AgentSessions final : public SessionStore {
 public:
  explicit AgentSessions(SessionLimits limits = {});

  Created create(int64_t agent_id, std::string_view agent_name, int64_t now_ms) override;
  std::optional<AgentSession> find(std::string_view token, int64_t now_ms) override;
  bool end(std::string_view token) override;
  size_t size() const { return sessions_.size(); }

 private:
  SessionLimits limits_;
  std::map<std::string, AgentSession> sessions_;  // by the hash of the token
};

// n random bytes as 2n hex digits (libsodium's generator).
std::string random_hex(size_t bytes);
// The key a session is kept under: a hash of its token (hex), so neither a map's comparisons nor
// a database's rows give the token away.
std::string session_token_key(std::string_view token);

// Equal strings, compared in time that depends on the length only.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace hdp::host
