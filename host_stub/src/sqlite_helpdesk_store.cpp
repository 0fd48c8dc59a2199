#include "sqlite_helpdesk_store.hpp"

#include <sqlite_wal/background_checkpoint.hpp>

#include <functional>
#include <utility>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

namespace hdp::host {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS conversations (
  id               INTEGER PRIMARY KEY,
  inbox            TEXT    NOT NULL,
  contact          TEXT    NOT NULL,  -- '' = calls whose contact is not known yet
  created_at_ms    INTEGER NOT NULL,
  last_activity_ms INTEGER NOT NULL,
  UNIQUE (inbox, contact)
);
CREATE TABLE IF NOT EXISTS messages (
  id               INTEGER PRIMARY KEY,
  conversation_id  INTEGER NOT NULL REFERENCES conversations(id),
  plugin_id        TEXT    NOT NULL,
  external_key     TEXT    NOT NULL,
  direction        INTEGER NOT NULL DEFAULT 0,
  call_status      TEXT,
  duration_s       INTEGER,
  recording_status INTEGER NOT NULL DEFAULT 0,
  recording_reason TEXT    NOT NULL DEFAULT '',
  recording_detail TEXT    NOT NULL DEFAULT '',  -- added in 1.3; see add_missing_columns
  retry_path       TEXT    NOT NULL DEFAULT '',  -- added in 1.3; see add_missing_columns
  created_at_ms    INTEGER NOT NULL,
  updated_at_ms    INTEGER NOT NULL,
  UNIQUE (plugin_id, external_key)
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id);
CREATE INDEX IF NOT EXISTS messages_by_key ON messages(external_key);
CREATE TABLE IF NOT EXISTS attachments (
  id               INTEGER PRIMARY KEY,
  plugin_id        TEXT    NOT NULL,
  idempotency_key  TEXT    NOT NULL,
  message_id       INTEGER NOT NULL REFERENCES messages(id),
  file_name        TEXT    NOT NULL,
  mime_type        TEXT    NOT NULL,
  size_bytes       INTEGER NOT NULL,
  stored_path      TEXT    NOT NULL,
  created_at_ms    INTEGER NOT NULL,
  UNIQUE (plugin_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS attachments_by_message ON attachments(message_id);
)sql";

constexpr const char* kMessageColumns =
    "m.id, m.conversation_id, c.inbox, c.contact, m.plugin_id, m.external_key, m.direction, "
    "m.call_status, m.duration_s, m.recording_status, m.recording_reason, m.created_at_ms, "
    "m.updated_at_ms, m.recording_detail, m.retry_path FROM messages m JOIN conversations c ON c.id = "
    "m.conversation_id";

constexpr const char* kConversationColumns =
    "c.id, c.inbox, c.contact, c.created_at_ms, c.last_activity_ms, "
    "(SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) FROM conversations c";

constexpr const char* kAttachmentColumns =
    "id, plugin_id, idempotency_key, message_id, file_name, mime_type, size_bytes, stored_path, "
    "created_at_ms FROM attachments";

MessageRow read_message(SQLite::Statement& q) {
  MessageRow row;
  row.id = q.getColumn(0).getInt64();
  row.conversation_id = q.getColumn(1).getInt64();
  row.inbox = q.getColumn(2).getString();
  row.contact = q.getColumn(3).getString();
  row.plugin_id = q.getColumn(4).getString();
  row.external_key = q.getColumn(5).getString();
  row.direction = q.getColumn(6).getInt();
  if (!q.getColumn(7).isNull()) row.call_status = q.getColumn(7).getString();
  if (!q.getColumn(8).isNull()) row.duration_s = q.getColumn(8).getInt64();
  row.recording_status = q.getColumn(9).getInt();
  row.recording_reason = q.getColumn(10).getString();
  row.created_at_ms = q.getColumn(11).getInt64();
  row.updated_at_ms = q.getColumn(12).getInt64();
  row.recording_detail = q.getColumn(13).getString();
  row.retry_path = q.getColumn(14).getString();
  return row;
}

ConversationRow read_conversation(SQLite::Statement& q) {
  ConversationRow row;
  row.id = q.getColumn(0).getInt64();
  row.inbox = q.getColumn(1).getString();
  row.contact = q.getColumn(2).getString();
  row.created_at_ms = q.getColumn(3).getInt64();
  row.last_activity_ms = q.getColumn(4).getInt64();
  row.message_count = q.getColumn(5).getInt64();
  return row;
}

AttachmentRow read_attachment(SQLite::Statement& q) {
  AttachmentRow row;
  row.id = q.getColumn(0).getInt64();
  row.plugin_id = q.getColumn(1).getString();
  row.idempotency_key = q.getColumn(2).getString();
  row.message_id = q.getColumn(3).getInt64();
  row.file_name = q.getColumn(4).getString();
  row.mime_type = q.getColumn(5).getString();
  row.size_bytes = q.getColumn(6).getInt64();
  row.stored_path = q.getColumn(7).getString();
  row.created_at_ms = q.getColumn(8).getInt64();
  return row;
}

// A file made before a column existed gets it (CREATE TABLE IF NOT EXISTS leaves an existing table
// as it is). Inside one write transaction, so two stores opening the same file add it once.
void add_missing_columns(SQLite::Database& db) {
  db.exec("BEGIN IMMEDIATE");
  try {
    bool has_detail = false;
    bool has_retry_path = false;
    SQLite::Statement columns(db, "PRAGMA table_info(messages)");
    while (columns.executeStep()) {
      const std::string name = columns.getColumn(1).getString();
      has_detail = has_detail || name == "recording_detail";
      has_retry_path = has_retry_path || name == "retry_path";
    }
    if (!has_detail) db.exec("ALTER TABLE messages ADD COLUMN recording_detail TEXT NOT NULL DEFAULT ''");
    if (!has_retry_path) db.exec("ALTER TABLE messages ADD COLUMN retry_path TEXT NOT NULL DEFAULT ''");
    db.exec("COMMIT");
  } catch (...) {
    db.exec("ROLLBACK");
    throw;
  }
}

std::string text(std::string_view s) {
  return std::string(s);
}

// Resets a prepared statement of the cache when leaving scope, so that no read stays open
// between calls (it would pin the WAL) and the next use starts without old bindings.
class Reused {
 public:
  explicit Reused(SQLite::Statement& statement) : statement_(statement) {}
  ~Reused() {
    statement_.tryReset();
    try {
      statement_.clearBindings();
    } catch (...) {  // NOLINT(bugprone-empty-catch): cannot fail on a valid statement
    }
  }
  Reused(const Reused&) = delete;
  Reused& operator=(const Reused&) = delete;
  SQLite::Statement& operator*() { return statement_; }

 private:
  SQLite::Statement& statement_;
};

// A write's own transaction, or a savepoint when a Batch (or any transaction) is already open.
// Rolls back what it did unless committed; in a batch begun without savepoints it takes none, and
// notes instead that it ended without commit (the batch is then rolled back whole). run executes
// one transaction-control statement (the store's prepared ones: parsing them again for every
// write cost more than the write).
class WriteScope {
 public:
  using Run = std::function<void(const char*)>;
  WriteScope(SQLite::Database& db, Run run, bool savepoints, bool& failed)
      : run_(std::move(run)),
        nested_(sqlite3_get_autocommit(db.getHandle()) == 0),
        savepoint_(nested_ && savepoints),
        failed_(failed) {
    if (savepoint_) {
      run_("SAVEPOINT store_write");
    } else if (!nested_) {
      run_("BEGIN");
    }
  }
  ~WriteScope() {
    if (done_) return;
    if (nested_ && !savepoint_) {
      failed_ = true;
      return;
    }
    try {
      if (nested_) {
        run_("ROLLBACK TO store_write");
        run_("RELEASE store_write");
      } else {
        run_("ROLLBACK");
      }
    } catch (...) {  // NOLINT(bugprone-empty-catch): nothing more to undo
    }
  }
  WriteScope(const WriteScope&) = delete;
  WriteScope& operator=(const WriteScope&) = delete;
  void commit() {
    if (savepoint_) {
      run_("RELEASE store_write");
    } else if (!nested_) {
      run_("COMMIT");
    }
    done_ = true;
  }

 private:
  Run run_;
  const bool nested_;
  const bool savepoint_;
  bool& failed_;
  bool done_ = false;
};

}  // namespace

void SqliteHelpdeskStore::begin_batch(bool isolate_writes) {
  control("BEGIN IMMEDIATE");
  batch_ = BatchWrites{isolate_writes, false};
}

void SqliteHelpdeskStore::commit_batch() {
  batch_ = BatchWrites{};
  control("COMMIT");
}

void SqliteHelpdeskStore::rollback_batch() {
  batch_ = BatchWrites{};
  control("ROLLBACK");
}

SQLite::Statement& SqliteHelpdeskStore::prepared(const char* sql) {
  auto& slot = statements_[std::string_view(sql)];
  if (!slot) slot = std::make_unique<SQLite::Statement>(*db_, sql);
  return *slot;
}

void SqliteHelpdeskStore::control(const char* sql) {
  SQLite::Statement& statement = prepared(sql);
  statement.reset();
  statement.exec();
}

SqliteHelpdeskStore::SqliteHelpdeskStore(const std::filesystem::path& database_file, std::function<int64_t()> now_ms)
    // NOMUTEX: a store is used by one thread at a time (the loop, or the host's writer thread
    // for the store the writes go through), so SQLite's per-call mutex would only cost time.
    : db_(std::make_unique<SQLite::Database>(database_file.string(),
                                             SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX)),
      now_ms_(std::move(now_ms)),
      database_file_(database_file) {
  db_->exec("PRAGMA journal_mode = WAL");
  db_->exec("PRAGMA synchronous = NORMAL");
  db_->exec("PRAGMA foreign_keys = ON");
  db_->exec("PRAGMA temp_store = MEMORY");  // a batch's savepoint journals: no temporary files
  db_->setBusyTimeout(5000);
  db_->exec(kSchema);
  add_missing_columns(*db_);
}

SqliteHelpdeskStore::~SqliteHelpdeskStore() = default;

void SqliteHelpdeskStore::checkpoint_off_the_writer() {
  checkpoint_off_the_writer(sqlite_wal::kDefaultPages, sqlite_wal::kDefaultCapPages);
}

void SqliteHelpdeskStore::checkpoint_off_the_writer(int pages, int cap_pages) {
  checkpoint_.reset();
  checkpoint_ = std::make_unique<sqlite_wal::BackgroundCheckpoint>(database_file_.string(), db_->getHandle(), pages,
                                                                   cap_pages, /*full_sync=*/false, "hdp-ckpt");
}

// No statement here has RETURNING: SQLite buffers RETURNING rows in a temporary b-tree that it
// builds and frees on every run, which cost this write about a third of its time. The write
// transaction is this connection's alone, so what the first read finds decides between insert
// and update, and an inserted row's id is the connection's last insert rowid.
int64_t SqliteHelpdeskStore::upsert_call_message(const CallMessageUpsert& upsert) {
  const int64_t now = now_ms_();
  WriteScope transaction(
      *db_, [this](const char* sql) { control(sql); }, batch_.savepoints, batch_.write_failed);

  std::optional<KnownMessage> old;
  {
    Reused q_use(
        prepared("SELECT m.id, m.conversation_id, c.inbox, c.contact FROM messages m JOIN "
                 "conversations c ON c.id = m.conversation_id "
                 "WHERE m.plugin_id = ? AND m.external_key = ?"));
    SQLite::Statement& q = *q_use;
    q.bind(1, upsert.plugin_id);
    q.bind(2, upsert.external_key);
    if (q.executeStep()) {
      old = KnownMessage{q.getColumn(0).getInt64(), q.getColumn(1).getInt64(), q.getColumn(2).getString(),
                         q.getColumn(3).getString()};
    }
  }
  std::string inbox = !upsert.inbox.empty() ? upsert.inbox : old ? old->inbox : std::string();
  const std::string contact = !upsert.contact.empty() ? upsert.contact : old ? old->contact : std::string();
  if (inbox.empty()) inbox = kDefaultInbox;

  const int64_t conversation_id = conversation_for(inbox, contact, old, now);

  int64_t message_id = 0;
  {
    Reused q_use(old ? prepared("UPDATE messages SET conversation_id = ?1, "
                                "direction = CASE WHEN ?4 = 0 THEN direction ELSE ?4 END, "
                                "call_status = COALESCE(?5, call_status), "
                                "duration_s = COALESCE(?6, duration_s), "
                                "recording_status = COALESCE(?9, recording_status), "
                                "recording_reason = COALESCE(?10, recording_reason), "
                                "recording_detail = COALESCE(?11, recording_detail), "
                                "retry_path = COALESCE(?12, retry_path), "
                                "updated_at_ms = ?8 "
                                "WHERE id = ?13 AND plugin_id = ?2 AND external_key = ?3")
                     : prepared("INSERT INTO messages (conversation_id, plugin_id, external_key, direction, "
                                "call_status, duration_s, created_at_ms, updated_at_ms, recording_status, "
                                "recording_reason, recording_detail, retry_path) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, COALESCE(?9, 0), COALESCE(?10, ''), "
                                "COALESCE(?11, ''), COALESCE(?12, ''))"));
    SQLite::Statement& q = *q_use;
    q.bind(1, conversation_id);
    q.bind(2, upsert.plugin_id);
    q.bind(3, upsert.external_key);
    q.bind(4, upsert.direction);
    if (upsert.call_status) {
      q.bind(5, *upsert.call_status);
    } else {
      q.bind(5);
    }
    if (upsert.duration_s) {
      q.bind(6, *upsert.duration_s);
    } else {
      q.bind(6);
    }
    q.bind(7, now);
    q.bind(8, now);
    if (upsert.recording_status) {
      q.bind(9, *upsert.recording_status);
      q.bind(10, upsert.recording_reason);
      q.bind(11, upsert.recording_detail);
      q.bind(12, upsert.retry_path);
    } else {
      q.bind(9);
      q.bind(10);
      q.bind(11);
      q.bind(12);
    }
    if (old) q.bind(13, old->id);
    if (q.exec() != 1) throw std::runtime_error("the message of " + upsert.external_key + " changed under its write");
    message_id = old ? old->id : db_->getLastInsertRowid();
  }

  // A call that moved out of the unknown-contact conversation leaves no empty conversation.
  if (old && old->conversation_id != conversation_id) {
    Reused q_use(
        prepared("DELETE FROM conversations WHERE id = ? AND contact = '' AND NOT EXISTS "
                 "(SELECT 1 FROM messages WHERE conversation_id = ?)"));
    SQLite::Statement& q = *q_use;
    q.bind(1, old->conversation_id);
    q.bind(2, old->conversation_id);
    q.exec();
  }
  transaction.commit();
  return message_id;
}

int64_t SqliteHelpdeskStore::conversation_for(const std::string& inbox, const std::string& contact,
                                              const std::optional<KnownMessage>& old, int64_t now) {
  std::optional<int64_t> id;
  if (old && inbox == old->inbox && contact == old->contact) {
    id = old->conversation_id;  // the message stays where it is
  } else {
    Reused q_use(prepared("SELECT id FROM conversations WHERE inbox = ? AND contact = ?"));
    SQLite::Statement& q = *q_use;
    q.bind(1, inbox);
    q.bind(2, contact);
    if (q.executeStep()) id = q.getColumn(0).getInt64();
  }
  if (id) {
    Reused q_use(prepared("UPDATE conversations SET last_activity_ms = max(last_activity_ms, ?) WHERE id = ?"));
    SQLite::Statement& q = *q_use;
    q.bind(1, now);
    q.bind(2, *id);
    q.exec();
    return *id;
  }
  Reused q_use(
      prepared("INSERT INTO conversations (inbox, contact, created_at_ms, last_activity_ms) VALUES (?, ?, ?, ?)"));
  SQLite::Statement& q = *q_use;
  q.bind(1, inbox);
  q.bind(2, contact);
  q.bind(3, now);
  q.bind(4, now);
  q.exec();
  return db_->getLastInsertRowid();
}

bool SqliteHelpdeskStore::set_recording_status(std::string_view plugin_id, int64_t message_id, int32_t status,
                                               std::string_view reason, std::string_view detail,
                                               std::string_view retry_path) {
  const int64_t now = now_ms_();
  WriteScope transaction(
      *db_, [this](const char* sql) { control(sql); }, batch_.savepoints, batch_.write_failed);
  Reused q_use(
      prepared("UPDATE messages SET recording_status = ?, recording_reason = ?, recording_detail = ?, "
               "retry_path = ?, updated_at_ms = ? WHERE id = ? AND plugin_id = ?"));
  SQLite::Statement& q = *q_use;
  q.bind(1, status);
  q.bind(2, text(reason));
  q.bind(3, text(detail));
  q.bind(4, text(retry_path));
  q.bind(5, now);
  q.bind(6, message_id);
  q.bind(7, text(plugin_id));
  const bool found = q.exec() > 0;
  if (found) {
    Reused touch_use(
        prepared("UPDATE conversations SET last_activity_ms = max(last_activity_ms, ?) "
                 "WHERE id = (SELECT conversation_id FROM messages WHERE id = ?)"));
    SQLite::Statement& touch = *touch_use;
    touch.bind(1, now);
    touch.bind(2, message_id);
    touch.exec();
  }
  transaction.commit();
  return found;
}

bool SqliteHelpdeskStore::message_belongs_to(std::string_view plugin_id, int64_t message_id) {
  Reused q_use(prepared("SELECT 1 FROM messages WHERE id = ? AND plugin_id = ?"));
  SQLite::Statement& q = *q_use;
  q.bind(1, message_id);
  q.bind(2, text(plugin_id));
  return q.executeStep();
}

std::optional<MessageRow> SqliteHelpdeskStore::message(int64_t message_id) {
  SQLite::Statement q(*db_, std::string("SELECT ") + kMessageColumns + " WHERE m.id = ?");
  q.bind(1, message_id);
  if (!q.executeStep()) return std::nullopt;
  return read_message(q);
}

std::vector<MessageRow> SqliteHelpdeskStore::messages_by_key(std::string_view external_key,
                                                             std::string_view plugin_id) {
  SQLite::Statement q(*db_, std::string("SELECT ") + kMessageColumns +
                                " WHERE m.external_key = ? AND (? = '' OR m.plugin_id = ?) "
                                "ORDER BY m.id");
  q.bind(1, text(external_key));
  q.bind(2, text(plugin_id));
  q.bind(3, text(plugin_id));
  std::vector<MessageRow> rows;
  while (q.executeStep()) rows.push_back(read_message(q));
  return rows;
}

std::vector<ConversationRow> SqliteHelpdeskStore::conversations() {
  SQLite::Statement q(*db_,
                      std::string("SELECT ") + kConversationColumns + " ORDER BY c.last_activity_ms DESC, c.id DESC");
  std::vector<ConversationRow> rows;
  while (q.executeStep()) rows.push_back(read_conversation(q));
  return rows;
}

std::optional<ConversationRow> SqliteHelpdeskStore::conversation(int64_t conversation_id) {
  SQLite::Statement q(*db_, std::string("SELECT ") + kConversationColumns + " WHERE c.id = ?");
  q.bind(1, conversation_id);
  if (!q.executeStep()) return std::nullopt;
  return read_conversation(q);
}

std::vector<MessageRow> SqliteHelpdeskStore::conversation_messages(int64_t conversation_id) {
  SQLite::Statement q(
      *db_, std::string("SELECT ") + kMessageColumns + " WHERE m.conversation_id = ? ORDER BY m.created_at_ms, m.id");
  q.bind(1, conversation_id);
  std::vector<MessageRow> rows;
  while (q.executeStep()) rows.push_back(read_message(q));
  return rows;
}

AttachmentInsertResult SqliteHelpdeskStore::insert_attachment(const AttachmentInsert& insert) {
  const int64_t now = now_ms_();
  WriteScope transaction(
      *db_, [this](const char* sql) { control(sql); }, batch_.savepoints, batch_.write_failed);
  AttachmentInsertResult result;
  {
    Reused q_use(
        prepared("INSERT INTO attachments (plugin_id, idempotency_key, message_id, "
                 "file_name, mime_type, size_bytes, stored_path, created_at_ms) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                 "ON CONFLICT (plugin_id, idempotency_key) DO NOTHING RETURNING id"));
    SQLite::Statement& q = *q_use;
    q.bind(1, insert.plugin_id);
    q.bind(2, insert.idempotency_key);
    q.bind(3, insert.message_id);
    q.bind(4, insert.file_name);
    q.bind(5, insert.mime_type);
    q.bind(6, insert.size_bytes);
    q.bind(7, insert.stored_path);
    q.bind(8, now);
    if (q.executeStep()) result.attachment_id = q.getColumn(0).getInt64();
  }
  if (result.attachment_id == 0) {
    Reused q_use(prepared("SELECT id FROM attachments WHERE plugin_id = ? AND idempotency_key = ?"));
    SQLite::Statement& q = *q_use;
    q.bind(1, insert.plugin_id);
    q.bind(2, insert.idempotency_key);
    q.executeStep();
    result.attachment_id = q.getColumn(0).getInt64();
    result.already_attached = true;
  } else {
    Reused touch_use(
        prepared("UPDATE conversations SET last_activity_ms = max(last_activity_ms, ?) "
                 "WHERE id = (SELECT conversation_id FROM messages WHERE id = ?)"));
    SQLite::Statement& touch = *touch_use;
    touch.bind(1, now);
    touch.bind(2, insert.message_id);
    touch.exec();
  }
  transaction.commit();
  return result;
}

std::optional<AttachmentRow> SqliteHelpdeskStore::attachment(int64_t attachment_id) {
  SQLite::Statement q(*db_, std::string("SELECT ") + kAttachmentColumns + " WHERE id = ?");
  q.bind(1, attachment_id);
  if (!q.executeStep()) return std::nullopt;
  return read_attachment(q);
}

std::optional<AttachmentRow> SqliteHelpdeskStore::attachment_by_key(std::string_view plugin_id, std::string_view key) {
  SQLite::Statement q(*db_,
                      std::string("SELECT ") + kAttachmentColumns + " WHERE plugin_id = ? AND idempotency_key = ?");
  q.bind(1, text(plugin_id));
  q.bind(2, text(key));
  if (!q.executeStep()) return std::nullopt;
  return read_attachment(q);
}

std::vector<AttachmentRow> SqliteHelpdeskStore::message_attachments(int64_t message_id) {
  SQLite::Statement q(*db_, std::string("SELECT ") + kAttachmentColumns + " WHERE message_id = ? ORDER BY id");
  q.bind(1, message_id);
  std::vector<AttachmentRow> rows;
  while (q.executeStep()) rows.push_back(read_attachment(q));
  return rows;
}

}  // namespace hdp::host
