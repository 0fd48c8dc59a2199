// Sign-in sessions in PostgreSQL (helpdesk.agent_sessions), so that an agent signed in through
// one node is signed in on every node of the helpdesk, and a restarted node signs nobody out.
//
// Each call waits for the server. The session check of every agent request (find()) runs on the
// host's reader thread (store_reader.hpp), with the reader's connection; create() and end() run on
// the loop, for sign-in (which holds the loop for its Argon2id check anyway, tens of ms) and
// sign-out. Every statement commits at once, so what one connection does the other sees next.
// find() is one statement that reads and marks the session used.
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
  // On a connection shared with other stores of the same thread (the host's reader).
  PgAgentSessions(std::shared_ptr<PgConnection> conn, SessionLimits limits = {});
  ~PgAgentSessions() override;

  Created create(int64_t agent_id, std::string_view agent_name, int64_t now_ms) override;
  std::optional<AgentSession> find(std::string_view token, int64_t now_ms) override;
  bool end(std::string_view token) override;

 private:
  SessionLimits limits_;
  std::shared_ptr<PgConnection> conn_;
};

}  // namespace hdp::host
