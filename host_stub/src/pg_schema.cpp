#include "pg_schema.hpp"

#include <vector>

#include "pg_connection.hpp"

namespace hdp::host {
namespace {

// pg_advisory_xact_lock's key for the host's migrations: "helpdesk" in ASCII (the plugin's
// schema has its own key).
constexpr int64_t kMigrationLockKey = 0x68656C706465736B;

// Version 1: what the SQLite file holds, with agents and sessions. Keys compare byte-wise
// (COLLATE "C"), as in SQLite, whatever the database's collation.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE helpdesk.conversations (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  inbox            text COLLATE "C" NOT NULL,
  contact          text COLLATE "C" NOT NULL,  -- '' = calls whose contact is not known yet
  created_at_ms    bigint NOT NULL,
  last_activity_ms bigint NOT NULL,
  UNIQUE (inbox, contact)
);
CREATE TABLE helpdesk.messages (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  conversation_id  bigint NOT NULL REFERENCES helpdesk.conversations(id),
  plugin_id        text COLLATE "C" NOT NULL,
  external_key     text COLLATE "C" NOT NULL,
  direction        integer NOT NULL DEFAULT 0,
  call_status      text,
  duration_s       bigint,
  recording_status integer NOT NULL DEFAULT 0,
  recording_reason text NOT NULL DEFAULT '',
  recording_detail text NOT NULL DEFAULT '',
  retry_path       text NOT NULL DEFAULT '',
  created_at_ms    bigint NOT NULL,
  updated_at_ms    bigint NOT NULL,
  UNIQUE (plugin_id, external_key)
);
CREATE INDEX messages_by_conversation ON helpdesk.messages(conversation_id);
CREATE INDEX messages_by_key ON helpdesk.messages(external_key);
CREATE TABLE helpdesk.attachments (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  plugin_id        text COLLATE "C" NOT NULL,
  idempotency_key  text COLLATE "C" NOT NULL,
  message_id       bigint NOT NULL REFERENCES helpdesk.messages(id),
  file_name        text NOT NULL,
  mime_type        text NOT NULL,
  size_bytes       bigint NOT NULL,
  stored_path      text NOT NULL,
  created_at_ms    bigint NOT NULL,
  UNIQUE (plugin_id, idempotency_key)
);
CREATE INDEX attachments_by_message ON helpdesk.attachments(message_id);
CREATE TABLE helpdesk.agents (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- never reused
  name          text COLLATE "C" NOT NULL UNIQUE,
  password_hash text NOT NULL,                                    -- crypto_pwhash_str (Argon2id)
  created_at_ms bigint NOT NULL
);
CREATE TABLE helpdesk.agent_sessions (
  token_key     text PRIMARY KEY,  -- session_token_key: a hash of the cookie's token, never the token
  agent_id      bigint NOT NULL REFERENCES helpdesk.agents(id) ON DELETE CASCADE,
  agent_name    text NOT NULL,
  csrf_token    text NOT NULL,
  created_ms    bigint NOT NULL,
  last_used_ms  bigint NOT NULL
);
CREATE INDEX agent_sessions_by_use ON helpdesk.agent_sessions(last_used_ms);
)sql";

}  // namespace

void migrate_helpdesk_schema(PgConnection& conn) {
  conn.migrate("helpdesk", kMigrationLockKey, std::vector<const char*>{kSchemaV1});
}

}  // namespace hdp::host
