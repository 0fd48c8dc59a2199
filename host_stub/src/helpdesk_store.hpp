// The stub helpdesk's own data: conversations (inbox, contact), call messages found by a
// plugin's external key, and attachments found by a plugin's idempotency key. Duplicates are
// prevented by unique constraints, not by check-then-insert, so several writers (threads, or
// nodes sharing one PostgreSQL database) cannot create one thing twice. Each write is its own
// transaction, or part of a Batch (in a savepoint, or none: see Batch), so many writes can share
// one commit. A store is used by one thread at a time; storage failures throw (std::exception).
//
// Two implementations: SQLite (one file, the default) and PostgreSQL (several hosts on one
// database), picked by open_helpdesk_store from where the data lives.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hdp::host {

struct CallMessageUpsert {
  std::string plugin_id;
  std::string external_key;
  std::string inbox;                       // empty: keep the message's inbox, or "default" for a new one
  std::string contact;                     // empty: keep the message's contact, or the unknown-contact conversation
  int32_t direction = 0;                   // 0 (unknown) keeps the stored value
  std::optional<std::string> call_status;  // nullopt keeps the stored value
  std::optional<int64_t> duration_s;       // nullopt keeps the stored value
  // Set together with the message (hdp.messages/2 and /3); nullopt keeps the stored status,
  // reason and detail.
  std::optional<int32_t> recording_status;
  std::string recording_reason;
  std::string recording_detail;  // the technical part, apart from the reason (/3); "" for /2
  std::string retry_path;        // where an agent's "try again" posts (/3); "" for none
};

struct ConversationRow {
  int64_t id = 0;
  std::string inbox;
  std::string contact;  // empty: the conversation of calls whose contact is not known yet
  int64_t created_at_ms = 0;
  int64_t last_activity_ms = 0;
  int64_t message_count = 0;
};

struct MessageRow {
  int64_t id = 0;
  int64_t conversation_id = 0;
  std::string inbox;
  std::string contact;
  std::string plugin_id;
  std::string external_key;
  int32_t direction = 0;
  std::optional<std::string> call_status;
  std::optional<int64_t> duration_s;
  int32_t recording_status = 0;
  std::string recording_reason;
  std::string recording_detail;
  std::string retry_path;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
};

struct AttachmentRow {
  int64_t id = 0;
  std::string plugin_id;
  std::string idempotency_key;
  int64_t message_id = 0;
  std::string file_name;
  std::string mime_type;
  int64_t size_bytes = 0;
  std::string stored_path;
  int64_t created_at_ms = 0;
};

struct AttachmentInsert {
  std::string plugin_id;
  std::string idempotency_key;
  int64_t message_id = 0;
  std::string file_name;
  std::string mime_type;
  int64_t size_bytes = 0;
  std::string stored_path;
};

struct AttachmentInsertResult {
  int64_t attachment_id = 0;
  bool already_attached = false;  // the key existed; nothing was stored
};

// Where the host keeps its data: a PostgreSQL URI, or else the SQLite file.
struct StoreLocation {
  std::filesystem::path sqlite_file;
  std::string postgresql_uri;  // "postgresql://..." : this instead of sqlite_file
  bool is_postgresql() const { return !postgresql_uri.empty(); }
};

class HelpdeskStore {
 public:
  static constexpr std::string_view kDefaultInbox = "default";

  virtual ~HelpdeskStore() = default;
  HelpdeskStore(const HelpdeskStore&) = delete;
  HelpdeskStore& operator=(const HelpdeskStore&) = delete;

  // One transaction around many store calls: inside it each write is a savepoint, so a write that
  // fails undoes only itself, and commit() makes all of them durable at once. Rolls back when
  // destroyed without commit(). One batch at a time.
  //
  // isolate_writes false drops the savepoints (each costs statements, a round trip each on a
  // remote store, and on SQLite a copy of the pages the write changes): a write that fails then
  // cannot be undone alone, batch_write_failed() says so (also when its caller caught the
  // error), and the caller rolls the batch back and runs it again with them (BatchedWrites does).
  class Batch {
   public:
    explicit Batch(HelpdeskStore& store, bool isolate_writes = true);
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    void commit();

   private:
    HelpdeskStore& store_;
    bool open_ = true;
  };

  // Creates the message or updates it; moves it to the right conversation when the contact (or
  // inbox) becomes known; sets the recording status when one is given (a new message is created
  // with it). Returns the message id, stable for (plugin_id, external_key).
  virtual int64_t upsert_call_message(const CallMessageUpsert& upsert) = 0;

  // False when plugin_id has no message message_id.
  virtual bool set_recording_status(std::string_view plugin_id, int64_t message_id, int32_t status,
                                    std::string_view reason, std::string_view detail = {},
                                    std::string_view retry_path = {}) = 0;
  virtual bool message_belongs_to(std::string_view plugin_id, int64_t message_id) = 0;

  virtual std::optional<MessageRow> message(int64_t message_id) = 0;
  // Every plugin's message with this key (or only plugin_id's when not empty).
  virtual std::vector<MessageRow> messages_by_key(std::string_view external_key, std::string_view plugin_id) = 0;
  virtual std::vector<ConversationRow> conversations() = 0;
  virtual std::optional<ConversationRow> conversation(int64_t conversation_id) = 0;
  virtual std::vector<MessageRow> conversation_messages(int64_t conversation_id) = 0;

  // INSERT ... ON CONFLICT DO NOTHING on (plugin_id, idempotency_key); when the key exists the
  // existing attachment's id comes back with already_attached.
  virtual AttachmentInsertResult insert_attachment(const AttachmentInsert& insert) = 0;
  virtual std::optional<AttachmentRow> attachment(int64_t attachment_id) = 0;
  virtual std::optional<AttachmentRow> attachment_by_key(std::string_view plugin_id, std::string_view key) = 0;
  virtual std::vector<AttachmentRow> message_attachments(int64_t message_id) = 0;

  // True when a write of the open Batch, begun without savepoints, failed: the batch must not be
  // committed.
  virtual bool batch_write_failed() const = 0;

  // True when every call may wait for a network round trip (PostgreSQL): the host keeps such a
  // store's writes off its loop.
  virtual bool is_remote() const = 0;

  // For the store the host's writer thread writes through, before its first write: its WAL is
  // copied into the database file by a thread of its own, so that the writer's commits never
  // wait for that copy and its fsyncs (SQLite; a database server checkpoints by itself).
  virtual void checkpoint_off_the_writer() {}

 protected:
  HelpdeskStore() = default;
  // The transaction of a Batch.
  virtual void begin_batch(bool isolate_writes) = 0;
  virtual void commit_batch() = 0;
  virtual void rollback_batch() = 0;
};

// Opens (creating or migrating) the store at location; now_ms gives the timestamps (the host's
// wall clock). Each call is a connection of its own. Throws std::exception when it cannot.
std::unique_ptr<HelpdeskStore> open_helpdesk_store(const StoreLocation& location, std::function<int64_t()> now_ms);

}  // namespace hdp::host
