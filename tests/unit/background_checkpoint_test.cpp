// SqliteOptions::background_checkpoint_pages: the WAL is copied into the database file by a
// thread of the store's own, the writer's commits do not do it, and the WAL stays bounded when
// the writer never pauses.
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "sqlite_files.hpp"  // tests/support
#include "temp_dir.hpp"
#include "wavoip/core/flow.hpp"
#include "wavoip/core/payload.hpp"
#include "wavoip/store/store.hpp"

namespace wavoip {
namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;
constexpr std::uintmax_t kPage = testsupport::kSqlitePage;

// A RECORD delivery about twice a page long (the body is stored whole).
std::string padded_body(int n) {
  return R"({"type":"RECORD","action":"UPDATE","whatsapp_call_id":"call-)" + std::to_string(n) +
         R"(","record_status":"RECORDING","padding":")" + std::string(2 * kPage, 'x') + R"("})";
}

class BackgroundCheckpointTest : public ::testing::Test {
 protected:
  std::string db_path() const { return (dir_.path() / "wavoip.sqlite").string(); }

  void deliver(Store& store, int n) {
    const std::string body = padded_body(n);
    ParseResult parsed = parse_event(body);
    if (!parsed) throw std::runtime_error("test body does not parse");
    const Event event = *parsed;
    store.record_delivery_and_apply(body, event, "support", kT0 + n, [&](const CallRecord& r) {
      return step_delivery(r, event, "support", kT0 + n, config_);
    });
  }

  testsupport::TempDir dir_{"wavoip-checkpoint"};
  Config config_;
};

TEST_F(BackgroundCheckpointTest, TheWalIsCopiedIntoTheFileWithoutTheWriter) {
  SqliteOptions options;
  options.background_checkpoint_pages = 20;
  SqliteStore store(db_path(), options);
  const std::uintmax_t before = testsupport::file_size_or_zero(db_path());
  // About 60 pages: three times the threshold, far below SQLite's own 1,000.
  for (int n = 0; n < 20; ++n) deliver(store, n);
  ASSERT_GE(testsupport::wal_frames(db_path()), 40u);
  // The writer is idle from here on: only the store's thread can copy the WAL into the file.
  EXPECT_TRUE(testsupport::file_grows_past(db_path(), before + 20 * kPage, std::chrono::seconds(20)))
      << "the database file stayed at " << testsupport::file_size_or_zero(db_path()) << " bytes";
}

TEST_F(BackgroundCheckpointTest, TheWalStaysBoundedUnderAWriterThatNeverPauses) {
  SqliteOptions options;
  options.background_checkpoint_pages = 20;
  options.wal_cap_pages = 100;
  {
    SqliteStore store(db_path(), options);
    std::uintmax_t most = 0;
    // About 1,800 pages, one transaction each delivery, no pause in between.
    for (int n = 0; n < 600; ++n) {
      deliver(store, n);
      most = std::max(most, testsupport::wal_frames(db_path()));
    }
    // The WAL restarts from its beginning once a checkpoint copied all of it: its file never holds
    // much more than the cap plus the transaction that crossed it.
    EXPECT_LE(most, 100u + 20u);
  }
  SQLite::Database check(db_path(), SQLite::OPEN_READONLY);
  EXPECT_EQ(check.execAndGet("PRAGMA integrity_check").getString(), "ok");
  EXPECT_EQ(check.execAndGet("SELECT COUNT(*) FROM deliveries").getInt64(), 600);
}

TEST_F(BackgroundCheckpointTest, EveryDeliveryIsThereAfterAReopen) {
  SqliteOptions options;
  options.background_checkpoint_pages = 10;
  {
    SqliteStore store(db_path(), options);
    for (int n = 0; n < 200; ++n) deliver(store, n);
  }
  SqliteStore reopened(db_path(), options);
  EXPECT_EQ(reopened.delivery_count(), 200);
  SQLite::Database check(db_path(), SQLite::OPEN_READONLY);
  EXPECT_EQ(check.execAndGet("PRAGMA integrity_check").getString(), "ok");
}

}  // namespace
}  // namespace wavoip
