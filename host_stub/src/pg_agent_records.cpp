#include "pg_agent_records.hpp"

#include <utility>

#include "pg_connection.hpp"
#include "pg_schema.hpp"

namespace hdp::host {

PgAgentRecords::PgAgentRecords(const std::string& uri)
    : conn_(std::make_unique<PgConnection>(uri, "hdp-stub-host agents")) {
  migrate_helpdesk_schema(*conn_);
}

PgAgentRecords::PgAgentRecords(std::shared_ptr<PgConnection> conn) : conn_(std::move(conn)) {}

PgAgentRecords::~PgAgentRecords() = default;

bool PgAgentRecords::insert(std::string_view name, const std::string& password_hash, int64_t now_ms) {
  return conn_
             ->exec(
                 "INSERT INTO helpdesk.agents (name, password_hash, created_at_ms) VALUES ($1, $2, $3::bigint) "
                 "ON CONFLICT (name) DO NOTHING",
                 {std::string(name), password_hash, std::to_string(now_ms)})
             .affected() == 1;
}

bool PgAgentRecords::remove(std::string_view name) {
  // Its sessions go with it (ON DELETE CASCADE).
  return conn_->exec("DELETE FROM helpdesk.agents WHERE name = $1", {std::string(name)}).affected() == 1;
}

std::vector<AgentRow> PgAgentRecords::list() {
  const PgResult r = conn_->exec("SELECT id, name, created_at_ms FROM helpdesk.agents ORDER BY name");
  std::vector<AgentRow> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(AgentRow{r.integer(i, 0), r.text(i, 1), r.integer(i, 2)});
  return out;
}

std::optional<std::pair<AgentRow, std::string>> PgAgentRecords::find(std::string_view name) {
  const PgResult r = conn_->exec("SELECT id, name, created_at_ms, password_hash FROM helpdesk.agents WHERE name = $1",
                                 {std::string(name)});
  if (r.rows() == 0) return std::nullopt;
  return std::pair{AgentRow{r.integer(0, 0), r.text(0, 1), r.integer(0, 2)}, r.text(0, 3)};
}

bool PgAgentRecords::exists(int64_t id, std::string_view name) {
  return conn_
             ->exec("SELECT 1 FROM helpdesk.agents WHERE id = $1::bigint AND name = $2",
                    {std::to_string(id), std::string(name)})
             .rows() > 0;
}

}  // namespace hdp::host
