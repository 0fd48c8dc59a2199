// The host's tables in PostgreSQL, in the schema `helpdesk`: conversations, messages and
// attachments (HelpdeskStore), agents (AgentStore) and sign-in sessions (shared by every node,
// so an agent signed in through one node is signed in on all). Versioned: migrate_helpdesk_schema
// brings a database to the last version under an advisory lock, once for many nodes starting
// together.
#pragma once

namespace hdp::host {

class PgConnection;

void migrate_helpdesk_schema(PgConnection& conn);

}  // namespace hdp::host
