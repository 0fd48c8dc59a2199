// Sign-in sessions in PostgreSQL (helpdesk.agent_sessions), so that an agent signed in through
// one node is signed in on every node of the helpdesk, and a restarted node signs nobody out.
//
// These calls run on the loop and wait for the server: a session is looked up for every agent
// request, and sign-in already holds the loop for its Argon2id check (tens of ms), against one
// indexed round trip here (well under a millisecond on the helpdesk's own network). find() is one
// statement that reads and marks the session used.
#pragma once

#include <memory>
#include <string>

#include "agent_sessions.hpp"

namespace hdp::host {

class PgConnection;

class PgAgentSessions final : public SessionStore {
 public:
  // Connects (the schema is migrated by the AgentStore opened before). Throws PgError.
  PgAgentSessions(const std::string& uri, SessionLimits limits = {});
  ~PgAgentSessions() override;

  Created create(int64_t agent_id, std::string_view agent_name, int64_t now_ms) override;
  std::optional<AgentSession> find(std::string_view token, int64_t now_ms) override;
  bool end(std::string_view token) override;

 private:
  SessionLimits limits_;
  std::unique_ptr<PgConnection> conn_;
};

}  // namespace hdp::host
