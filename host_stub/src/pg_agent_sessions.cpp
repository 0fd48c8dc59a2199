#include "pg_agent_sessions.hpp"

#include <utility>

#include "pg_connection.hpp"

namespace hdp::host {

PgAgentSessions::PgAgentSessions(const std::string& uri, SessionLimits limits)
    : limits_(limits), conn_(std::make_unique<PgConnection>(uri, "hdp-stub-host sessions")) {}

PgAgentSessions::PgAgentSessions(std::shared_ptr<PgConnection> conn, SessionLimits limits)
    : limits_(limits), conn_(std::move(conn)) {}

PgAgentSessions::~PgAgentSessions() = default;

SessionStore::Created PgAgentSessions::create(int64_t agent_id, std::string_view agent_name, int64_t now_ms) {
  const std::string now = std::to_string(now_ms);
  // Expired sessions of every node go here; a live one is never touched.
  conn_->exec(
      "DELETE FROM helpdesk.agent_sessions WHERE $1::bigint - last_used_ms >= $2::bigint "
      "OR $1::bigint - created_ms >= $3::bigint",
      {now, std::to_string(limits_.idle_ms), std::to_string(limits_.lifetime_ms)});
  Created created;
  created.token = random_hex(32);
  created.session = AgentSession{agent_id, std::string(agent_name), random_hex(32), now_ms, now_ms};
  conn_->exec(
      "INSERT INTO helpdesk.agent_sessions (token_key, agent_id, agent_name, csrf_token, created_ms, last_used_ms) "
      "VALUES ($1, $2::bigint, $3, $4, $5::bigint, $5::bigint)",
      {session_token_key(created.token), std::to_string(agent_id), std::string(agent_name), created.session.csrf_token,
       now});
  return created;
}

std::optional<AgentSession> PgAgentSessions::find(std::string_view token, int64_t now_ms) {
  if (token.empty()) return std::nullopt;
  const PgResult r = conn_->exec(
      "UPDATE helpdesk.agent_sessions SET last_used_ms = GREATEST(last_used_ms, $2::bigint) "
      "WHERE token_key = $1 AND $2::bigint - last_used_ms < $3::bigint AND $2::bigint - created_ms < $4::bigint "
      "RETURNING agent_id, agent_name, csrf_token, created_ms, last_used_ms",
      {session_token_key(token), std::to_string(now_ms), std::to_string(limits_.idle_ms),
       std::to_string(limits_.lifetime_ms)});
  if (r.rows() == 0) return std::nullopt;
  return AgentSession{r.integer(0, 0), r.text(0, 1), r.text(0, 2), r.integer(0, 3), r.integer(0, 4)};
}

bool PgAgentSessions::end(std::string_view token) {
  return conn_->exec("DELETE FROM helpdesk.agent_sessions WHERE token_key = $1", {session_token_key(token)})
             .affected() == 1;
}

}  // namespace hdp::host
