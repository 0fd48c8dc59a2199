// HelpdeskStore: idempotent upserts by external key, moving a call out of the unknown-contact
// conversation, partial updates, attachments unique per (plugin, key), a message created with its
// recording status, and batches: many writes in one transaction, each undone alone when it fails.
// The same conformance tests run against SQLite and PostgreSQL (a database of its own each).
#include <gtest/gtest.h>

#include <SQLiteCpp/Database.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "child_process.hpp"  // tests/support
#include "helpdesk_store.hpp"
#include "pg_connection.hpp"
#include "pg_helpdesk_store.hpp"
#include "shared_postgres.hpp"  // tests/support
#include "sqlite_files.hpp"     // tests/support
#include "sqlite_helpdesk_store.hpp"
#include "test_support.hpp"

namespace hdp::host {
namespace {

enum class Backend { sqlite, postgresql };

class HelpdeskStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  test::TempDir dir;
  int64_t now_ms = 1000;
  StoreLocation location =
      GetParam() == Backend::sqlite
          ? StoreLocation{dir.path() / "store.sqlite3", {}}
          : StoreLocation{{}, testsupport::shared_postgres().uri(testsupport::new_postgres_database("host_store"))};
  std::unique_ptr<HelpdeskStore> opened = open_helpdesk_store(location, [this] { return now_ms; });
  HelpdeskStore& store = *opened;

  static CallMessageUpsert call(std::string key, std::string contact = {}) {
    CallMessageUpsert u;
    u.plugin_id = "p";
    u.external_key = std::move(key);
    u.contact = std::move(contact);
    return u;
  }
};

TEST_P(HelpdeskStoreTest, UpsertIsIdempotentByPluginAndKey) {
  const int64_t first = store.upsert_call_message(call("wavoip:1", "5511999"));
  const int64_t again = store.upsert_call_message(call("wavoip:1", "5511999"));
  EXPECT_EQ(first, again);
  CallMessageUpsert other_plugin = call("wavoip:1", "5511999");
  other_plugin.plugin_id = "q";
  EXPECT_NE(store.upsert_call_message(other_plugin), first);
  EXPECT_EQ(store.conversations().size(), 1U);
  EXPECT_EQ(store.conversations()[0].message_count, 2);
}

TEST_P(HelpdeskStoreTest, UnknownContactMovesToTheRightConversationLater) {
  const int64_t id = store.upsert_call_message(call("wavoip:2"));
  auto row = store.message(id);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->contact, "");
  EXPECT_EQ(row->inbox, HelpdeskStore::kDefaultInbox);
  const int64_t unknown_conversation = row->conversation_id;

  // The existing conversation of that contact receives it.
  const int64_t earlier = store.upsert_call_message(call("wavoip:1", "5511888"));
  EXPECT_EQ(store.upsert_call_message(call("wavoip:2", "5511888")), id);
  row = store.message(id);
  EXPECT_EQ(row->contact, "5511888");
  EXPECT_EQ(row->conversation_id, store.message(earlier)->conversation_id);
  // The emptied unknown-contact conversation is gone; an upsert without contact keeps it.
  EXPECT_FALSE(store.conversation(unknown_conversation));
  EXPECT_EQ(store.upsert_call_message(call("wavoip:2")), id);
  EXPECT_EQ(store.message(id)->contact, "5511888");
}

TEST_P(HelpdeskStoreTest, PartialUpdatesKeepWhatIsNotGiven) {
  CallMessageUpsert u = call("k", "1");
  u.direction = 1;
  u.call_status = "ACTIVE";
  const int64_t id = store.upsert_call_message(u);
  CallMessageUpsert later = call("k");
  later.duration_s = 42;
  store.upsert_call_message(later);
  const auto row = store.message(id);
  EXPECT_EQ(row->direction, 1);
  EXPECT_EQ(row->call_status, "ACTIVE");
  EXPECT_EQ(row->duration_s, 42);
  EXPECT_EQ(row->contact, "1");
}

TEST_P(HelpdeskStoreTest, RecordingStatusIsPerPlugin) {
  const int64_t id = store.upsert_call_message(call("k", "1"));
  EXPECT_TRUE(store.set_recording_status("p", id, 4, "gave up after 4 h"));
  EXPECT_FALSE(store.set_recording_status("other", id, 3, ""));
  EXPECT_FALSE(store.set_recording_status("p", id + 100, 3, ""));
  EXPECT_EQ(store.message(id)->recording_status, 4);
  EXPECT_EQ(store.message(id)->recording_reason, "gave up after 4 h");
}

TEST_P(HelpdeskStoreTest, TheDetailIsKeptApartAndEmptiedByAWriteWithoutOne) {
  const int64_t id = store.upsert_call_message(call("k", "1"));
  EXPECT_TRUE(store.set_recording_status("p", id, 1, "Not ready yet", "HTTP 404"));
  EXPECT_EQ(store.message(id)->recording_reason, "Not ready yet");
  EXPECT_EQ(store.message(id)->recording_detail, "HTTP 404");
  CallMessageUpsert u = call("k");
  u.recording_status = 4;
  u.recording_reason = "Gave up";
  u.recording_detail = "HTTP 410";
  store.upsert_call_message(u);
  EXPECT_EQ(store.message(id)->recording_detail, "HTTP 410");
  store.upsert_call_message(call("k"));  // no status: reason and detail stay
  EXPECT_EQ(store.message(id)->recording_detail, "HTTP 410");
  EXPECT_TRUE(store.set_recording_status("p", id, 4, "Gave up", "HTTP 410", "/x/retry?id=1"));
  EXPECT_EQ(store.message(id)->retry_path, "/x/retry?id=1");
  EXPECT_TRUE(store.set_recording_status("p", id, 4, "one text"));
  EXPECT_EQ(store.message(id)->recording_detail, "");
  EXPECT_EQ(store.message(id)->retry_path, "");
}

// The writer's store (checkpoint_off_the_writer): its WAL is copied into the database file by a
// thread of its own, while the writer does nothing, and stays bounded while it never pauses.
TEST(HelpdeskStoreCheckpoint, TheWalIsCopiedByAThreadOfItsOwnAndStaysBounded) {
  test::TempDir dir;
  const std::filesystem::path file = dir.path() / "store.sqlite3";
  SqliteHelpdeskStore store(file, [] { return int64_t{1000}; });
  store.checkpoint_off_the_writer(/*pages=*/20, /*cap_pages=*/100);
  EXPECT_EQ(testsupport::thread_names().count("hdp-ckpt"), 1u);
  const std::uintmax_t before = testsupport::file_size_or_zero(file);
  std::uintmax_t most = 0;
  // Each message in a transaction of its own, with a reason long enough to fill a page.
  for (int n = 0; n < 600; ++n) {
    CallMessageUpsert u;
    u.plugin_id = "p";
    u.external_key = "k" + std::to_string(n);
    u.contact = std::to_string(n);
    u.recording_status = 1;
    u.recording_reason = std::string(3000, 'r');
    store.upsert_call_message(u);
    most = std::max(most, testsupport::wal_frames(file));
  }
  // It starts over from its beginning once a checkpoint copied all of it.
  EXPECT_LE(most, 100u + 20u);
  // Idle writer: only the thread can copy what the WAL holds into the file.
  EXPECT_TRUE(testsupport::file_grows_past(file, before + 200 * testsupport::kSqlitePage, std::chrono::seconds(20)))
      << "the database file stayed at " << testsupport::file_size_or_zero(file) << " bytes";
  SQLite::Database check(file.string(), SQLite::OPEN_READONLY);
  EXPECT_EQ(check.execAndGet("PRAGMA integrity_check").getString(), "ok");
  EXPECT_EQ(check.execAndGet("SELECT COUNT(*) FROM messages").getInt64(), 600);
}

// A file written before recording_detail existed (ABI 1.2 hosts) gets the column on open, once,
// with its rows kept and an empty detail.
TEST(HelpdeskStoreMigration, AFileWithoutTheDetailColumnGetsIt) {
  test::TempDir dir;
  const auto file = dir.path() / "old.sqlite3";
  {
    SQLite::Database db(file.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(
        "CREATE TABLE conversations (id INTEGER PRIMARY KEY, inbox TEXT NOT NULL, contact TEXT NOT NULL, "
        "created_at_ms INTEGER NOT NULL, last_activity_ms INTEGER NOT NULL, UNIQUE (inbox, contact));"
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL REFERENCES "
        "conversations(id), plugin_id TEXT NOT NULL, external_key TEXT NOT NULL, direction INTEGER NOT NULL "
        "DEFAULT 0, call_status TEXT, duration_s INTEGER, recording_status INTEGER NOT NULL DEFAULT 0, "
        "recording_reason TEXT NOT NULL DEFAULT '', created_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT "
        "NULL, UNIQUE (plugin_id, external_key));"
        "INSERT INTO conversations VALUES (1, 'default', '55', 1, 1);"
        "INSERT INTO messages (id, conversation_id, plugin_id, external_key, recording_status, recording_reason, "
        "created_at_ms, updated_at_ms) VALUES (7, 1, 'p', 'old', 4, 'gave up; last answer: HTTP 404', 1, 1);");
  }
  {
    SqliteHelpdeskStore store(file, [] { return int64_t{2000}; });
    const auto row = store.message(7);
    ASSERT_TRUE(row);
    EXPECT_EQ(row->recording_reason, "gave up; last answer: HTTP 404");
    EXPECT_EQ(row->recording_detail, "");
    EXPECT_EQ(row->retry_path, "");
    EXPECT_TRUE(store.set_recording_status("p", 7, 1, "waiting", "HTTP 404"));
  }
  // The second open finds the column there and what was written into it.
  SqliteHelpdeskStore store(file, [] { return int64_t{3000}; });
  ASSERT_TRUE(store.message(7));
  EXPECT_EQ(store.message(7)->recording_reason, "waiting");
  EXPECT_EQ(store.message(7)->recording_detail, "HTTP 404");
  EXPECT_EQ(store.message(7)->retry_path, "");
}

TEST_P(HelpdeskStoreTest, AttachmentKeyIsUniquePerPlugin) {
  const int64_t message = store.upsert_call_message(call("k", "1"));
  AttachmentInsert insert{"p", "call-1", message, "rec.mp3", "audio/mpeg", 10, "/x/1"};
  const auto first = store.insert_attachment(insert);
  EXPECT_FALSE(first.already_attached);
  insert.stored_path = "/x/2";
  const auto second = store.insert_attachment(insert);
  EXPECT_TRUE(second.already_attached);
  EXPECT_EQ(second.attachment_id, first.attachment_id);
  EXPECT_EQ(store.message_attachments(message).size(), 1U);
  EXPECT_EQ(store.attachment(first.attachment_id)->stored_path, "/x/1");
  insert.plugin_id = "q";
  EXPECT_FALSE(store.insert_attachment(insert).already_attached);
}

TEST_P(HelpdeskStoreTest, MessagesByKeyAcrossPlugins) {
  store.upsert_call_message(call("same", "1"));
  CallMessageUpsert other = call("same", "1");
  other.plugin_id = "q";
  store.upsert_call_message(other);
  EXPECT_EQ(store.messages_by_key("same", "").size(), 2U);
  EXPECT_EQ(store.messages_by_key("same", "q").size(), 1U);
  EXPECT_TRUE(store.messages_by_key("none", "").empty());
}

TEST_P(HelpdeskStoreTest, AnUpsertWithARecordingStatusCreatesTheMessageWithIt) {
  CallMessageUpsert u = call("with-status", "55");
  u.recording_status = 1;
  u.recording_reason = "waiting";
  const int64_t id = store.upsert_call_message(u);
  EXPECT_EQ(store.message(id)->recording_status, 1);
  EXPECT_EQ(store.message(id)->recording_reason, "waiting");
  // Without a status, an update keeps the stored one.
  store.upsert_call_message(call("with-status"));
  EXPECT_EQ(store.message(id)->recording_status, 1);
  EXPECT_EQ(store.message(id)->recording_reason, "waiting");
  u.recording_status = 4;
  u.recording_reason = "";
  store.upsert_call_message(u);
  EXPECT_EQ(store.message(id)->recording_status, 4);
  EXPECT_EQ(store.message(id)->recording_reason, "");
}

TEST_P(HelpdeskStoreTest, ABatchCommitsItsWritesTogetherAndAFailedOneAlone) {
  int64_t a = 0;
  int64_t b = 0;
  {
    HelpdeskStore::Batch batch(store);
    a = store.upsert_call_message(call("batch-a", "1"));
    EXPECT_TRUE(store.set_recording_status("p", a, 3, "in batch"));
    // A write that fails (no message 4242: foreign key) undoes only itself.
    EXPECT_THROW(store.insert_attachment(AttachmentInsert{"p", "k", 4242, "f", "a/b", 1, "/x"}), std::exception);
    b = store.upsert_call_message(call("batch-b", "2"));
    batch.commit();
  }
  EXPECT_EQ(store.message(a)->recording_status, 3);
  ASSERT_TRUE(store.message(b));
  EXPECT_FALSE(store.attachment_by_key("p", "k"));
}

TEST_P(HelpdeskStoreTest, ABatchNotCommittedLeavesNothing) {
  {
    HelpdeskStore::Batch batch(store);
    store.upsert_call_message(call("gone-a", "1"));
    store.upsert_call_message(call("gone-b", "1"));
  }
  EXPECT_TRUE(store.messages_by_key("gone-a", "").empty());
  EXPECT_TRUE(store.conversations().empty());
  // The store still takes writes of its own afterwards.
  EXPECT_GT(store.upsert_call_message(call("after", "1")), 0);
}

// Two connections to one database, as two nodes (or a node's loop and its writer): one key, one
// message and one attachment.
TEST_P(HelpdeskStoreTest, TwoConnectionsShareKeysAndConstraints) {
  auto other = open_helpdesk_store(location, [this] { return now_ms; });
  const int64_t id = store.upsert_call_message(call("shared", "55"));
  EXPECT_EQ(other->upsert_call_message(call("shared", "55")), id);
  AttachmentInsert insert{"p", "call-shared", id, "rec.mp3", "audio/mpeg", 10, "/x/1"};
  const auto first = other->insert_attachment(insert);
  EXPECT_FALSE(first.already_attached);
  insert.stored_path = "/x/2";
  const auto second = store.insert_attachment(insert);
  EXPECT_TRUE(second.already_attached);
  EXPECT_EQ(second.attachment_id, first.attachment_id);
  EXPECT_EQ(store.message_attachments(id).size(), 1U);
  EXPECT_EQ(other->conversations().size(), 1U);
}

// The inbox lists conversations by their last activity and refreshes one whose activity moved:
// a new call, a status change and an attachment each move it.
TEST_P(HelpdeskStoreTest, AConversationsActivityFollowsItsCallsStatusesAndAttachments) {
  now_ms = 1000;
  const int64_t quiet = store.upsert_call_message(call("quiet", "11"));
  now_ms = 2000;
  const int64_t busy = store.upsert_call_message(call("busy", "22"));
  auto activity = [&](const std::string& contact) {
    for (const ConversationRow& c : store.conversations()) {
      if (c.contact == contact) return c.last_activity_ms;
    }
    return int64_t{-1};
  };
  EXPECT_EQ(activity("11"), 1000);
  EXPECT_EQ(activity("22"), 2000);
  EXPECT_EQ(store.conversations().front().contact, "22");

  now_ms = 3000;
  ASSERT_TRUE(store.set_recording_status("p", quiet, 1, "processing"));
  EXPECT_EQ(activity("11"), 3000);
  EXPECT_EQ(store.conversations().front().contact, "11");

  now_ms = 4000;
  EXPECT_FALSE(store.insert_attachment({"p", "call-busy", busy, "rec.mp3", "audio/mpeg", 10, "/x/1"}).already_attached);
  EXPECT_EQ(activity("22"), 4000);
  EXPECT_EQ(store.conversations().front().contact, "22");
  EXPECT_EQ(store.conversation(store.conversations().front().id)->last_activity_ms, 4000);
}

// Several nodes write calls of one conversation (the unknown-contact one collects every call
// without a number) at once: none waits for another's transaction. The second node gives up on
// any lock after 2 s, so waiting would fail its writes.
TEST(PgHelpdeskStore, NodesWritingCallsOfOneConversationDoNotWaitForEachOther) {
  auto& server = testsupport::shared_postgres();
  const std::string uri = server.uri(testsupport::new_postgres_database("host_no_wait"));
  int64_t now = 1000;
  auto a = open_helpdesk_store({{}, uri}, [&] { return now; });
  auto b = open_helpdesk_store({{}, uri + "?options=-c%20lock_timeout%3D2000"}, [&] { return now; });
  CallMessageUpsert u;
  u.plugin_id = "p";
  u.external_key = "a-1";
  const int64_t a1 = a->upsert_call_message(u);
  u.external_key = "b-1";
  const int64_t b1 = b->upsert_call_message(u);

  HelpdeskStore::Batch open_on_a(*a);  // stays open while b writes
  u.external_key = "a-2";
  a->upsert_call_message(u);
  ASSERT_TRUE(a->set_recording_status("p", a1, 1, "processing"));
  a->insert_attachment({"p", "call-a-1", a1, "a.mp3", "audio/mpeg", 10, "/x/a"});

  u.external_key = "b-2";
  EXPECT_NO_THROW(b->upsert_call_message(u));
  EXPECT_NO_THROW(b->set_recording_status("p", b1, 1, "processing"));
  EXPECT_NO_THROW(b->insert_attachment({"p", "call-b-1", b1, "b.mp3", "audio/mpeg", 10, "/x/b"}));
  open_on_a.commit();

  ASSERT_EQ(b->conversations().size(), 1U);
  EXPECT_EQ(b->conversations().front().message_count, 4);
}

// Each savepoint costs a round trip to the server. A batch run without them (as the host's writer
// runs its batches first) takes one round trip per write once the conversation exists: a call's
// message, its status and its attachment, plus BEGIN and COMMIT.
TEST(PgHelpdeskStore, ABatchWithoutWriteSavepointsTakesOneRoundTripPerWrite) {
  const std::string uri = testsupport::shared_postgres().uri(testsupport::new_postgres_database("host_round_trips"));
  int64_t now = 1000;
  open_helpdesk_store({{}, uri}, [&] { return now; });  // migrates
  auto conn = std::make_shared<PgConnection>(uri, "test");
  PgHelpdeskStore store(conn, [&] { return now; });
  const auto write_call = [&store](const std::string& key) {
    CallMessageUpsert u;
    u.plugin_id = "p";
    u.external_key = key;
    u.contact = "5511900000001";
    const int64_t id = store.upsert_call_message(u);
    EXPECT_TRUE(store.set_recording_status("p", id, 3, "ready"));
    EXPECT_FALSE(
        store.insert_attachment({"p", "rec-" + key, id, "a.mp3", "audio/mpeg", 10, "/x/" + key}).already_attached);
    return id;
  };
  {
    HelpdeskStore::Batch first(store, false);  // creates the conversation, prepares the statements
    write_call("first");
    first.commit();
  }
  constexpr int kCalls = 20;
  const uint64_t before = conn->round_trips();
  now = 2000;
  {
    HelpdeskStore::Batch batch(store, false);
    for (int i = 0; i < kCalls; ++i) write_call("call-" + std::to_string(i));
    batch.commit();
  }
  EXPECT_EQ(conn->round_trips() - before, 2u + 3u * kCalls);
  const auto conversations = store.conversations();
  ASSERT_EQ(conversations.size(), 1u);
  EXPECT_EQ(conversations.front().message_count, kCalls + 1);
  EXPECT_EQ(conversations.front().last_activity_ms, 2000);
  const auto last = store.messages_by_key("call-19", "p");
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last.front().recording_status, 3);
  EXPECT_EQ(store.message_attachments(last.front().id).size(), 1u);

  // With a savepoint around each write, as a batch in which a write failed runs again (and the
  // savepoint's statements prepared on first use).
  const uint64_t isolated_before = conn->round_trips();
  {
    HelpdeskStore::Batch batch(store, true);
    for (int i = 0; i < kCalls; ++i) write_call("again-" + std::to_string(i));
    batch.commit();
  }
  EXPECT_GE(conn->round_trips() - isolated_before, 2u + 3u * 3u * kCalls);
}

// A PostgreSQL restart between writes costs the write in flight at most: the next one connects
// again, and a batch cut by it reports failure instead of a commit that did not happen.
TEST(PgHelpdeskStore, ConnectsAgainAfterTheServerRestarts) {
  auto& server = testsupport::shared_postgres();
  const StoreLocation location{{}, server.uri(testsupport::new_postgres_database("host_restart"))};
  auto store = open_helpdesk_store(location, [] { return int64_t{1000}; });
  CallMessageUpsert u;
  u.plugin_id = "p";
  u.external_key = "before";
  const int64_t before = store->upsert_call_message(u);
  {
    HelpdeskStore::Batch batch(*store);
    u.external_key = "in-the-cut-batch";
    store->upsert_call_message(u);
    server.stop();
    server.start();
    EXPECT_THROW(batch.commit(), std::exception);
  }
  u.external_key = "after";
  EXPECT_GT(store->upsert_call_message(u), before);
  EXPECT_TRUE(store->messages_by_key("in-the-cut-batch", "").empty());
  EXPECT_EQ(store->messages_by_key("before", "").size(), 1U);
}

INSTANTIATE_TEST_SUITE_P(Backends, HelpdeskStoreTest, ::testing::Values(Backend::sqlite, Backend::postgresql),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::sqlite ? std::string("SQLite") : std::string("PostgreSQL");
                         });

}  // namespace
}  // namespace hdp::host
