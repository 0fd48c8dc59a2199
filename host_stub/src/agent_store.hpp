// Agent accounts in the host's database (the SQLite file, or PostgreSQL shared by every node): a
// name and an Argon2id password hash (libsodium's crypto_pwhash_str). Used by the `agent` command
// line and by sign-in. Passwords never leave this file except as hashes, and nothing here logs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "helpdesk_store.hpp"

namespace hdp::host {

// 1..64 characters of [A-Za-z0-9._@-], not starting with '-' (it would read as an option).
bool is_valid_agent_name(std::string_view name);

// Longest password accepted: hashing costs the same whatever the length, but a request body
// carrying megabytes of "password" is not a sign-in.
constexpr size_t kMaxPasswordBytes = 1024;
constexpr size_t kMinPasswordBytes = 8;

struct AgentRow {
  int64_t id = 0;
  std::string name;
  int64_t created_at_ms = 0;
};

// The table of accounts, apart from what is done with passwords (AgentStore).
class AgentRecords {
 public:
  virtual ~AgentRecords() = default;
  // False when the name exists.
  virtual bool insert(std::string_view name, const std::string& password_hash, int64_t now_ms) = 0;
  virtual bool remove(std::string_view name) = 0;
  virtual std::vector<AgentRow> list() = 0;
  // The agent and its hash.
  virtual std::optional<std::pair<AgentRow, std::string>> find(std::string_view name) = 0;
  virtual bool exists(int64_t id, std::string_view name) = 0;
};

class AgentStore {
 public:
  // Opens (creating the table if needed) the agents of the host's helpdesk database. Throws
  // std::exception when it cannot; also when libsodium cannot start.
  explicit AgentStore(const StoreLocation& location);
  explicit AgentStore(const std::filesystem::path& database_file) : AgentStore(StoreLocation{database_file, {}}) {}
  // Over records opened elsewhere (the host's reader: on its own connection).
  explicit AgentStore(std::unique_ptr<AgentRecords> records);
  AgentStore(const AgentStore&) = delete;
  AgentStore& operator=(const AgentStore&) = delete;
  ~AgentStore();

  enum class AddResult { added, exists, bad_name, bad_password };
  // Hashes password (Argon2id, libsodium's interactive limits) and stores the agent.
  AddResult add(std::string_view name, std::string_view password, int64_t now_ms);
  // False when there is no such agent.
  bool remove(std::string_view name);
  std::vector<AgentRow> list() const;

  // The agent when name exists and password matches. An unknown name costs one hash check too,
  // so the answer's timing does not tell which names exist.
  std::optional<AgentRow> verify(std::string_view name, std::string_view password);
  // True while the agent id is still the account named name (not removed, not re-added).
  bool still_exists(int64_t id, std::string_view name) const;

 private:
  std::unique_ptr<AgentRecords> records_;
  std::string dummy_hash_;  // for unknown names; made on first use
};

}  // namespace hdp::host
