#include "pg_helpdesk_store.hpp"

#include <utility>

#include "pg_connection.hpp"
#include "pg_schema.hpp"

namespace hdp::host {
namespace {

#define HDP_MESSAGE_SELECT                                                                                  \
  "SELECT m.id, m.conversation_id, c.inbox, c.contact, m.plugin_id, m.external_key, m.direction, "          \
  "m.call_status, m.duration_s, m.recording_status, m.recording_reason, m.created_at_ms, m.updated_at_ms, " \
  "m.recording_detail, m.retry_path FROM helpdesk.messages m JOIN helpdesk.conversations c ON c.id = "      \
  "m.conversation_id "

// A conversation's last activity is its newest message write (a message's upsert, its status, an
// attachment to it all set its updated_at_ms), or its creation: writes of one conversation's calls
// never update the conversation's row, so nodes writing them never wait for each other.
#define HDP_CONVERSATION_SELECT                                                                                \
  "SELECT c.id, c.inbox, c.contact, c.created_at_ms, GREATEST(c.last_activity_ms, COALESCE(s.last, 0)), s.n "  \
  "FROM helpdesk.conversations c CROSS JOIN LATERAL (SELECT COUNT(*) AS n, MAX(m.updated_at_ms) AS last FROM " \
  "helpdesk.messages m WHERE m.conversation_id = c.id) s "

#define HDP_ATTACHMENT_SELECT                                                                          \
  "SELECT id, plugin_id, idempotency_key, message_id, file_name, mime_type, size_bytes, stored_path, " \
  "created_at_ms FROM helpdesk.attachments "

// A call message created, or updated in place ($1 plugin, $2 key, $3 direction, $4 call status,
// $5 duration, $6 now, $7..$10 the recording's status, reason, detail and retry path, or NULL to
// keep them), in the conversation CONVERSATION selected FROM.
#define HDP_MESSAGE_UPSERT(CONVERSATION, FROM)                                                              \
  "INSERT INTO helpdesk.messages AS m (conversation_id, plugin_id, external_key, direction, call_status, "  \
  "duration_s, created_at_ms, updated_at_ms, recording_status, recording_reason, recording_detail, "        \
  "retry_path) SELECT " CONVERSATION                                                                        \
  ", $1, $2, $3::integer, $4, $5::bigint, $6::bigint, $6::bigint, "                                         \
  "COALESCE($7::integer, 0), COALESCE($8::text, ''), COALESCE($9::text, ''), COALESCE($10::text, '') " FROM \
  " ON CONFLICT (plugin_id, external_key) DO UPDATE SET "                                                   \
  "conversation_id = EXCLUDED.conversation_id, "                                                            \
  "direction = CASE WHEN EXCLUDED.direction = 0 THEN m.direction ELSE EXCLUDED.direction END, "             \
  "call_status = COALESCE(EXCLUDED.call_status, m.call_status), "                                           \
  "duration_s = COALESCE(EXCLUDED.duration_s, m.duration_s), "                                              \
  "recording_status = COALESCE($7::integer, m.recording_status), "                                          \
  "recording_reason = COALESCE($8::text, m.recording_reason), "                                             \
  "recording_detail = COALESCE($9::text, m.recording_detail), "                                             \
  "retry_path = COALESCE($10::text, m.retry_path), "                                                        \
  "updated_at_ms = EXCLUDED.updated_at_ms RETURNING id"

// The upsert in the conversation it belongs to, when that exists ($11 inbox and $12 contact, each
// '' to keep the message's, then $13 the default inbox): the new message's id, its conversation's,
// the conversation it was in before (NULL for a new message), and the inbox and contact of the
// conversation it belongs to. The message's id is NULL when that conversation does not exist yet
// (or was just deleted): nothing was written then. The conversation is held with KEY SHARE, which
// other writers of it share, so that it is not deleted as empty before this commits.
constexpr const char* kUpsertInExistingConversation =
    "WITH old AS (SELECT m.conversation_id, c.inbox, c.contact FROM helpdesk.messages m JOIN "
    "helpdesk.conversations c ON c.id = m.conversation_id WHERE m.plugin_id = $1 AND m.external_key = $2), "
    "wanted AS (SELECT COALESCE(NULLIF($11::text, ''), (SELECT inbox FROM old), $13::text) AS inbox, "
    "COALESCE(NULLIF($12::text, ''), (SELECT contact FROM old), '') AS contact), "
    "target AS (SELECT c.id FROM helpdesk.conversations c, wanted w WHERE c.inbox = w.inbox AND "
    "c.contact = w.contact FOR KEY SHARE OF c), "
    "up AS (" HDP_MESSAGE_UPSERT("target.id", "FROM target") ") "
    "SELECT (SELECT id FROM up), (SELECT id FROM target), (SELECT conversation_id FROM old), w.inbox, w.contact "
    "FROM wanted w";

// The upsert in conversation $11.
constexpr const char* kUpsertInConversation = HDP_MESSAGE_UPSERT("$11::bigint", "");

// An attachment, unless its key exists, and the activity of its message's conversation (see
// HDP_CONVERSATION_SELECT): the new attachment's id, or no row.
constexpr const char* kInsertAttachment =
    "WITH added AS (INSERT INTO helpdesk.attachments (plugin_id, idempotency_key, message_id, file_name, "
    "mime_type, size_bytes, stored_path, created_at_ms) VALUES ($1, $2, $3::bigint, $4, $5, $6::bigint, $7, "
    "$8::bigint) ON CONFLICT (plugin_id, idempotency_key) DO NOTHING RETURNING id, message_id), "
    "touched AS (UPDATE helpdesk.messages SET updated_at_ms = GREATEST(updated_at_ms, $8::bigint) "
    "WHERE id = (SELECT message_id FROM added)) "
    "SELECT id FROM added";

std::string num(int64_t value) {
  return std::to_string(value);
}

MessageRow read_message(const PgResult& r, int row) {
  MessageRow m;
  m.id = r.integer(row, 0);
  m.conversation_id = r.integer(row, 1);
  m.inbox = r.text(row, 2);
  m.contact = r.text(row, 3);
  m.plugin_id = r.text(row, 4);
  m.external_key = r.text(row, 5);
  m.direction = static_cast<int32_t>(r.integer(row, 6));
  if (!r.is_null(row, 7)) m.call_status = r.text(row, 7);
  if (!r.is_null(row, 8)) m.duration_s = r.integer(row, 8);
  m.recording_status = static_cast<int32_t>(r.integer(row, 9));
  m.recording_reason = r.text(row, 10);
  m.created_at_ms = r.integer(row, 11);
  m.updated_at_ms = r.integer(row, 12);
  m.recording_detail = r.text(row, 13);
  m.retry_path = r.text(row, 14);
  return m;
}

ConversationRow read_conversation(const PgResult& r, int row) {
  ConversationRow c;
  c.id = r.integer(row, 0);
  c.inbox = r.text(row, 1);
  c.contact = r.text(row, 2);
  c.created_at_ms = r.integer(row, 3);
  c.last_activity_ms = r.integer(row, 4);
  c.message_count = r.integer(row, 5);
  return c;
}

AttachmentRow read_attachment(const PgResult& r, int row) {
  AttachmentRow a;
  a.id = r.integer(row, 0);
  a.plugin_id = r.text(row, 1);
  a.idempotency_key = r.text(row, 2);
  a.message_id = r.integer(row, 3);
  a.file_name = r.text(row, 4);
  a.mime_type = r.text(row, 5);
  a.size_bytes = r.integer(row, 6);
  a.stored_path = r.text(row, 7);
  a.created_at_ms = r.integer(row, 8);
  return a;
}

template <typename Row, typename Read>
std::vector<Row> all_rows(const PgResult& r, Read read) {
  std::vector<Row> rows;
  rows.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) rows.push_back(read(r, i));
  return rows;
}

}  // namespace

PgHelpdeskStore::PgHelpdeskStore(const std::string& uri, std::function<int64_t()> now_ms)
    : conn_(std::make_unique<PgConnection>(uri, "hdp-stub-host")), now_ms_(std::move(now_ms)) {
  migrate_helpdesk_schema(*conn_);
}

PgHelpdeskStore::PgHelpdeskStore(std::shared_ptr<PgConnection> conn, std::function<int64_t()> now_ms)
    : conn_(std::move(conn)), now_ms_(std::move(now_ms)) {}

PgHelpdeskStore::~PgHelpdeskStore() = default;

void PgHelpdeskStore::begin_batch(bool isolate_writes) {
  conn_->begin(isolate_writes);
}

bool PgHelpdeskStore::batch_write_failed() const {
  return conn_->in_transaction() && conn_->write_failed();
}

void PgHelpdeskStore::commit_batch() {
  conn_->commit();
}

void PgHelpdeskStore::rollback_batch() {
  conn_->rollback();
}

int64_t PgHelpdeskStore::upsert_call_message(const CallMessageUpsert& upsert) {
  const int64_t now = now_ms_();
  PgWriteScope transaction(*conn_);

  PgParams p{upsert.plugin_id,
             upsert.external_key,
             num(upsert.direction),
             upsert.call_status,
             upsert.duration_s ? std::optional<std::string>(num(*upsert.duration_s)) : std::nullopt,
             num(now),
             std::nullopt,
             std::nullopt,
             std::nullopt,
             std::nullopt,
             upsert.inbox,
             upsert.contact,
             std::string(kDefaultInbox)};
  if (upsert.recording_status) {
    p[6] = num(*upsert.recording_status);
    p[7] = upsert.recording_reason;
    p[8] = upsert.recording_detail;
    p[9] = upsert.retry_path;
  }
  int64_t message_id = 0;
  int64_t conversation_id = 0;
  std::optional<int64_t> old_conversation;
  std::string inbox;
  std::string contact;
  {
    // Nearly every write finds its conversation: one statement (one round trip) does it all.
    const PgResult r = conn_->exec(kUpsertInExistingConversation, p);
    if (!r.is_null(0, 2)) old_conversation = r.integer(0, 2);
    if (!r.is_null(0, 0)) {
      message_id = r.integer(0, 0);
      conversation_id = r.integer(0, 1);
    }
    inbox = r.text(0, 3);
    contact = r.text(0, 4);
  }
  if (message_id == 0) {
    // The conversation is new: created if missing, never updated, and held with KEY SHARE (which
    // other writers of the same conversation share) so that it is not deleted as empty before
    // this commits.
    for (int attempt = 0; conversation_id == 0; ++attempt) {
      conn_->exec(
          "INSERT INTO helpdesk.conversations (inbox, contact, created_at_ms, last_activity_ms) "
          "VALUES ($1, $2, $3::bigint, $3::bigint) ON CONFLICT (inbox, contact) DO NOTHING",
          {inbox, contact, num(now)});
      const PgResult r = conn_->exec(
          "SELECT id FROM helpdesk.conversations WHERE inbox = $1 AND contact = $2 FOR KEY SHARE", {inbox, contact});
      if (r.rows() > 0) {
        conversation_id = r.integer(0, 0);
      } else if (attempt >= 2) {
        throw PgError("the conversation of " + upsert.external_key + " keeps being deleted");
      }
    }
    p.resize(10);
    p.push_back(num(conversation_id));
    message_id = conn_->exec(kUpsertInConversation, p).integer(0, 0);
  }

  // A call that moved out of the unknown-contact conversation leaves no empty conversation.
  if (old_conversation && *old_conversation != conversation_id) {
    conn_->exec(
        "DELETE FROM helpdesk.conversations WHERE id = $1::bigint AND contact = '' AND NOT EXISTS "
        "(SELECT 1 FROM helpdesk.messages WHERE conversation_id = $1::bigint)",
        {num(*old_conversation)});
  }
  transaction.commit();
  return message_id;
}

bool PgHelpdeskStore::set_recording_status(std::string_view plugin_id, int64_t message_id, int32_t status,
                                           std::string_view reason, std::string_view detail,
                                           std::string_view retry_path) {
  const int64_t now = now_ms_();
  PgWriteScope transaction(*conn_);
  const bool found = conn_
                         ->exec(
                             "UPDATE helpdesk.messages SET recording_status = $1::integer, recording_reason = $2, "
                             "recording_detail = $3, retry_path = $4, updated_at_ms = $5::bigint "
                             "WHERE id = $6::bigint AND plugin_id = $7",
                             {num(status), std::string(reason), std::string(detail), std::string(retry_path), num(now),
                              num(message_id), std::string(plugin_id)})
                         .affected() > 0;
  transaction.commit();
  return found;
}

bool PgHelpdeskStore::message_belongs_to(std::string_view plugin_id, int64_t message_id) {
  return conn_
             ->exec("SELECT 1 FROM helpdesk.messages WHERE id = $1::bigint AND plugin_id = $2",
                    {num(message_id), std::string(plugin_id)})
             .rows() > 0;
}

std::optional<MessageRow> PgHelpdeskStore::message(int64_t message_id) {
  const PgResult r = conn_->exec(HDP_MESSAGE_SELECT "WHERE m.id = $1::bigint", {num(message_id)});
  if (r.rows() == 0) return std::nullopt;
  return read_message(r, 0);
}

std::vector<MessageRow> PgHelpdeskStore::messages_by_key(std::string_view external_key, std::string_view plugin_id) {
  return all_rows<MessageRow>(
      conn_->exec(HDP_MESSAGE_SELECT "WHERE m.external_key = $1 AND ($2 = '' OR m.plugin_id = $2) ORDER BY m.id",
                  {std::string(external_key), std::string(plugin_id)}),
      read_message);
}

std::vector<ConversationRow> PgHelpdeskStore::conversations() {
  return all_rows<ConversationRow>(conn_->exec(HDP_CONVERSATION_SELECT "ORDER BY 5 DESC, c.id DESC"),
                                   read_conversation);
}

std::optional<ConversationRow> PgHelpdeskStore::conversation(int64_t conversation_id) {
  const PgResult r = conn_->exec(HDP_CONVERSATION_SELECT "WHERE c.id = $1::bigint", {num(conversation_id)});
  if (r.rows() == 0) return std::nullopt;
  return read_conversation(r, 0);
}

std::vector<MessageRow> PgHelpdeskStore::conversation_messages(int64_t conversation_id) {
  return all_rows<MessageRow>(
      conn_->exec(HDP_MESSAGE_SELECT "WHERE m.conversation_id = $1::bigint ORDER BY m.created_at_ms, m.id",
                  {num(conversation_id)}),
      read_message);
}

AttachmentInsertResult PgHelpdeskStore::insert_attachment(const AttachmentInsert& insert) {
  const int64_t now = now_ms_();
  PgWriteScope transaction(*conn_);
  AttachmentInsertResult result;
  {
    const PgResult r = conn_->exec(kInsertAttachment,
                                   {insert.plugin_id, insert.idempotency_key, num(insert.message_id), insert.file_name,
                                    insert.mime_type, num(insert.size_bytes), insert.stored_path, num(now)});
    if (r.rows() > 0) result.attachment_id = r.integer(0, 0);
  }
  if (result.attachment_id == 0) {
    // Another writer (maybe another node) holds the key: its row, committed before our insert
    // returned, is the attachment.
    const PgResult r = conn_->exec("SELECT id FROM helpdesk.attachments WHERE plugin_id = $1 AND idempotency_key = $2",
                                   {insert.plugin_id, insert.idempotency_key});
    if (r.rows() == 0) throw PgError("attachment key " + insert.idempotency_key + " vanished");
    result.attachment_id = r.integer(0, 0);
    result.already_attached = true;
  }
  transaction.commit();
  return result;
}

std::optional<AttachmentRow> PgHelpdeskStore::attachment(int64_t attachment_id) {
  const PgResult r = conn_->exec(HDP_ATTACHMENT_SELECT "WHERE id = $1::bigint", {num(attachment_id)});
  if (r.rows() == 0) return std::nullopt;
  return read_attachment(r, 0);
}

std::optional<AttachmentRow> PgHelpdeskStore::attachment_by_key(std::string_view plugin_id, std::string_view key) {
  const PgResult r = conn_->exec(HDP_ATTACHMENT_SELECT "WHERE plugin_id = $1 AND idempotency_key = $2",
                                 {std::string(plugin_id), std::string(key)});
  if (r.rows() == 0) return std::nullopt;
  return read_attachment(r, 0);
}

std::vector<AttachmentRow> PgHelpdeskStore::message_attachments(int64_t message_id) {
  return all_rows<AttachmentRow>(
      conn_->exec(HDP_ATTACHMENT_SELECT "WHERE message_id = $1::bigint ORDER BY id", {num(message_id)}),
      read_attachment);
}

}  // namespace hdp::host
