// Agent accounts in PostgreSQL (helpdesk.agents), shared by every node of one helpdesk.
#pragma once

#include <memory>
#include <string>

#include "agent_store.hpp"

namespace hdp::host {

class PgConnection;

class PgAgentRecords final : public AgentRecords {
 public:
  // Connects and migrates the `helpdesk` schema. Throws PgError.
  explicit PgAgentRecords(const std::string& uri);
  // On a connection shared with other stores of the same thread (the host's reader), the schema
  // migrated already.
  explicit PgAgentRecords(std::shared_ptr<PgConnection> conn);
  ~PgAgentRecords() override;

  bool insert(std::string_view name, const std::string& password_hash, int64_t now_ms) override;
  bool remove(std::string_view name) override;
  std::vector<AgentRow> list() override;
  std::optional<std::pair<AgentRow, std::string>> find(std::string_view name) override;
  bool exists(int64_t id, std::string_view name) override;

 private:
  std::shared_ptr<PgConnection> conn_;
};

}  // namespace hdp::host
