#include "agent_store.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include <sodium.h>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include "pg_agent_records.hpp"

namespace hdp::host {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS agents (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a re-added name is a new account
  name          TEXT    NOT NULL UNIQUE,
  password_hash TEXT    NOT NULL,                   -- crypto_pwhash_str (Argon2id)
  created_at_ms INTEGER NOT NULL
);
)sql";

std::string hash_password(std::string_view password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    throw std::runtime_error("out of memory while hashing a password");
  }
  return out;
}

bool password_matches(const std::string& hash, std::string_view password) {
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

}  // namespace

bool is_valid_agent_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '@' || c == '-';
  });
}

namespace {

class SqliteAgentRecords final : public AgentRecords {
 public:
  explicit SqliteAgentRecords(const std::filesystem::path& database_file)
      : db_(database_file.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE) {
    db_.exec("PRAGMA journal_mode = WAL");
    db_.setBusyTimeout(5000);
    db_.exec(kSchema);
  }

  bool insert(std::string_view name, const std::string& password_hash, int64_t now_ms) override {
    SQLite::Statement insert(db_,
                             "INSERT INTO agents (name, password_hash, created_at_ms) VALUES (?, ?, ?) "
                             "ON CONFLICT (name) DO NOTHING");
    insert.bind(1, std::string(name));
    insert.bind(2, password_hash);
    insert.bind(3, static_cast<int64_t>(now_ms));
    return insert.exec() == 1;
  }

  bool remove(std::string_view name) override {
    SQLite::Statement del(db_, "DELETE FROM agents WHERE name = ?");
    del.bind(1, std::string(name));
    return del.exec() == 1;
  }

  std::vector<AgentRow> list() override {
    SQLite::Statement q(db_, "SELECT id, name, created_at_ms FROM agents ORDER BY name");
    std::vector<AgentRow> out;
    while (q.executeStep()) {
      out.push_back(AgentRow{q.getColumn(0).getInt64(), q.getColumn(1).getString(), q.getColumn(2).getInt64()});
    }
    return out;
  }

  std::optional<std::pair<AgentRow, std::string>> find(std::string_view name) override {
    SQLite::Statement q(db_, "SELECT id, name, created_at_ms, password_hash FROM agents WHERE name = ?");
    q.bind(1, std::string(name));
    if (!q.executeStep()) return std::nullopt;
    return std::pair{AgentRow{q.getColumn(0).getInt64(), q.getColumn(1).getString(), q.getColumn(2).getInt64()},
                     q.getColumn(3).getString()};
  }

  bool exists(int64_t id, std::string_view name) override {
    SQLite::Statement q(db_, "SELECT 1 FROM agents WHERE id = ? AND name = ?");
    q.bind(1, static_cast<int64_t>(id));
    q.bind(2, std::string(name));
    return q.executeStep();
  }

 private:
  SQLite::Database db_;
};

}  // namespace

AgentStore::AgentStore(const StoreLocation& location) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium cannot start");
  if (location.is_postgresql()) {
    records_ = std::make_unique<PgAgentRecords>(location.postgresql_uri);
  } else {
    records_ = std::make_unique<SqliteAgentRecords>(location.sqlite_file);
  }
}

AgentStore::AgentStore(std::unique_ptr<AgentRecords> records) : records_(std::move(records)) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium cannot start");
}

AgentStore::~AgentStore() = default;

AgentStore::AddResult AgentStore::add(std::string_view name, std::string_view password, int64_t now_ms) {
  if (!is_valid_agent_name(name)) return AddResult::bad_name;
  if (password.size() < kMinPasswordBytes || password.size() > kMaxPasswordBytes) return AddResult::bad_password;
  return records_->insert(name, hash_password(password), now_ms) ? AddResult::added : AddResult::exists;
}

bool AgentStore::remove(std::string_view name) {
  return records_->remove(name);
}

std::vector<AgentRow> AgentStore::list() const {
  return records_->list();
}

std::optional<AgentRow> AgentStore::verify(std::string_view name, std::string_view password) {
  if (password.size() > kMaxPasswordBytes) return std::nullopt;
  std::optional<std::pair<AgentRow, std::string>> found;
  if (is_valid_agent_name(name)) found = records_->find(name);
  if (!found) {
    if (dummy_hash_.empty()) dummy_hash_ = hash_password("not the password of anyone");
    password_matches(dummy_hash_, password);
    return std::nullopt;
  }
  if (!password_matches(found->second, password)) return std::nullopt;
  return found->first;
}

bool AgentStore::still_exists(int64_t id, std::string_view name) const {
  return records_->exists(id, name);
}

}  // namespace hdp::host
