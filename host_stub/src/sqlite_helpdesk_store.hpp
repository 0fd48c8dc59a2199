// The host's store in one SQLite file in WAL mode (the default, one node). [main-thread] or the
// writer thread, one at a time.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "helpdesk_store.hpp"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace sqlite_wal {
class BackgroundCheckpoint;
}  // namespace sqlite_wal

namespace hdp::host {

class SqliteHelpdeskStore final : public HelpdeskStore {
 public:
  // Opens (creating) the database file.
  SqliteHelpdeskStore(const std::filesystem::path& database_file, std::function<int64_t()> now_ms);
  ~SqliteHelpdeskStore() override;

  int64_t upsert_call_message(const CallMessageUpsert& upsert) override;
  bool set_recording_status(std::string_view plugin_id, int64_t message_id, int32_t status, std::string_view reason,
                            std::string_view detail = {}, std::string_view retry_path = {}) override;
  bool message_belongs_to(std::string_view plugin_id, int64_t message_id) override;
  std::optional<MessageRow> message(int64_t message_id) override;
  std::vector<MessageRow> messages_by_key(std::string_view external_key, std::string_view plugin_id) override;
  std::vector<ConversationRow> conversations() override;
  std::optional<ConversationRow> conversation(int64_t conversation_id) override;
  std::vector<MessageRow> conversation_messages(int64_t conversation_id) override;
  AttachmentInsertResult insert_attachment(const AttachmentInsert& insert) override;
  std::optional<AttachmentRow> attachment(int64_t attachment_id) override;
  std::optional<AttachmentRow> attachment_by_key(std::string_view plugin_id, std::string_view key) override;
  std::vector<AttachmentRow> message_attachments(int64_t message_id) override;
  bool is_remote() const override { return false; }
  bool batch_write_failed() const override { return batch_.write_failed; }
  // A checkpoint on the thread (hdp-ckpt) once the WAL holds 1,000 pages not yet copied; on the
  // writer only at 64,000 (see sqlite_wal::BackgroundCheckpoint).
  void checkpoint_off_the_writer() override;
  void checkpoint_off_the_writer(int pages, int cap_pages);

 private:
  void begin_batch(bool isolate_writes) override;
  void commit_batch() override;
  void rollback_batch() override;

  // A statement of the write path, prepared on first use and kept (preparing cost more than
  // running them). `sql` must be a string literal: it is the key.
  SQLite::Statement& prepared(const char* sql);
  // Runs a transaction-control statement (BEGIN, SAVEPOINT, ...) through the prepared cache.
  void control(const char* sql);
  // A call's message as upsert_call_message finds it before writing.
  struct KnownMessage {
    int64_t id = 0;
    int64_t conversation_id = 0;
    std::string inbox;
    std::string contact;
  };
  // The conversation of (inbox, contact), its last activity raised to now, or a new one: the
  // message's own conversation when it has that inbox and contact already.
  int64_t conversation_for(const std::string& inbox, const std::string& contact, const std::optional<KnownMessage>& old,
                           int64_t now);

  std::unique_ptr<SQLite::Database> db_;
  std::function<int64_t()> now_ms_;
  struct BatchWrites {
    bool savepoints = true;     // a savepoint around each write of the open batch
    bool write_failed = false;  // a write without one ended without commit
  } batch_;
  // Declared after db_ so that they are finalized before the database closes.
  std::unordered_map<std::string_view, std::unique_ptr<SQLite::Statement>> statements_;
  std::filesystem::path database_file_;
  std::unique_ptr<sqlite_wal::BackgroundCheckpoint> checkpoint_;  // last: stops before the rest closes
};

}  // namespace hdp::host
