// The host's store in PostgreSQL (`--database postgresql://...`): several hosts share one
// database, so every uniqueness is a constraint the server enforces (ON CONFLICT), never a check
// in one node's memory. Each call waits for the server: the host uses this store on its writer
// thread for writes, and on its reader thread for the agents' reads (store_reader.hpp). [one
// thread at a time]
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "helpdesk_store.hpp"

namespace hdp::host {

class PgConnection;

class PgHelpdeskStore final : public HelpdeskStore {
 public:
  // Connects and migrates the `helpdesk` schema. Throws PgError.
  PgHelpdeskStore(const std::string& uri, std::function<int64_t()> now_ms);
  // On a connection shared with other stores of the same thread (the host's reader), the schema
  // migrated already.
  PgHelpdeskStore(std::shared_ptr<PgConnection> conn, std::function<int64_t()> now_ms);
  ~PgHelpdeskStore() override;

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
  bool is_remote() const override { return true; }
  bool batch_write_failed() const override;

 private:
  void begin_batch(bool isolate_writes) override;
  void commit_batch() override;
  void rollback_batch() override;

  std::shared_ptr<PgConnection> conn_;
  std::function<int64_t()> now_ms_;
};

}  // namespace hdp::host
