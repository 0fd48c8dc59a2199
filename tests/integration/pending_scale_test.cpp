// 100,000 calls waiting for their recording: after a restart the plugin arms ONE host timer (for
// the earliest due poll), its memory does not grow with the number of pending calls, and a burst
// of due polls is worked off a few downloads at a time. The plugin's store is filled directly
// (schema in plugin/core/src/store.cpp) while the host is stopped; timers are counted by the
// stub host's GET /__test/timers, so nothing reaches into the plugin.
#include "e2e_fixture.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <cstdio>
#include <fstream>
#include <iostream>

namespace {

namespace json = boost::json;
using testsupport::eventually;
using wavoip::test::ScriptedResponse;

constexpr long long kStartMs = 1'800'000'000'000;
constexpr long long kSec = 1000;
using e2e::kPluginId;
constexpr int kPending = 100000;
constexpr int kInFlight = 40;         // left "fetching" by the previous run
constexpr long long kSpacingMs = 10;  // call i is due at first + i * kSpacingMs
constexpr long long kFirstDueMs = kStartMs + 60 * kSec;

std::string pending_id(int i) {
  char id[16];
  std::snprintf(id, sizeof id, "P%07d", i);
  return id;
}

// A line of /proc/<pid>/status ("VmRSS", "VmHWM") in kB, -1 if unknown.
long status_kb(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

class PendingScale : public e2e::PluginHost {
 protected:
  size_t started(const std::string& id) {
    return count_in_log("[WaVoIP] Downloading the recording of call " + id + "\n");
  }

  std::string db_path() const { return (dir_->path() / "host" / "plugins" / kPluginId / "wavoip.sqlite").string(); }

  // kPending waiting calls due from kFirstDueMs on, kInFlight left mid-download.
  void fill_store() {
    SQLite::Database db(db_path(), SQLite::OPEN_READWRITE);
    SQLite::Transaction tx(db);
    SQLite::Statement insert(
        db,
        "INSERT INTO calls (call_id, direction, caller, receiver, call_status, answered, duration_s, ended_at,"
        " recording, reason, attempt, next_attempt_at, deadline_at, message_requested, created_at, updated_at)"
        " VALUES (?1, 'INCOMING', '5511999990001', '5511888880002', 'ENDED', 1, 30, ?2, ?3, ?4, 0, ?5, ?6, 1,"
        " ?2, ?2)");
    for (int i = 0; i < kPending + kInFlight; ++i) {
      const bool in_flight = i >= kPending;
      insert.reset();
      insert.bind(1, in_flight ? "F" + pending_id(i) : pending_id(i));
      insert.bind(2, static_cast<int64_t>(kStartMs - 60 * kSec));
      insert.bind(3, in_flight ? "fetching" : "waiting");
      insert.bind(4, in_flight ? "Downloading the recording" : "Waiting for WaVoIP to finish the recording");
      if (in_flight) {
        insert.bind(5);
      } else {
        insert.bind(5, static_cast<int64_t>(kFirstDueMs + i * kSpacingMs));
      }
      insert.bind(6, static_cast<int64_t>(kStartMs + 4 * 3600 * kSec));
      insert.exec();
    }
    tx.commit();
  }
};

TEST_F(PendingScale, AHundredThousandPendingCallsResumeWithOneTimerAndBoundedMemory) {
  ScriptedResponse ready;
  ready.body = e2e::recording_bytes(20000);
  for (int i = kPending; i < kPending + kInFlight; ++i) storage_->set_response("/F" + pending_id(i), ready);

  // Baseline: the host with the plugin and an empty store (which this run creates).
  start_host({{"poll", json::object{{"jitter", 0}}}}, true, kStartMs);
  const long baseline_rss = status_kb(host_->pid(), "VmRSS");
  const long baseline_peak = status_kb(host_->pid(), "VmHWM");
  ASSERT_EQ(host_->stop(), 0);

  auto ms_since = [](std::chrono::steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  };
  const auto fill_started = std::chrono::steady_clock::now();
  fill_store();
  const long long fill_ms = ms_since(fill_started);

  const auto restart_started = std::chrono::steady_clock::now();
  restart_host();
  const long long restart_ms = ms_since(restart_started);
  const std::string resumed =
      "[WaVoIP] Resumed: " + std::to_string(kInFlight) + " download(s) or attachment(s) restarted";
  EXPECT_EQ(count_in_log(resumed), 1u) << host_->log().substr(0, 4000);
  EXPECT_EQ(count_in_log(std::to_string(kPending + kInFlight) + " call(s) still waiting for a recording"), 1u);

  // The interrupted downloads finish (at most max_concurrent_downloads at a time)...
  ASSERT_TRUE(
      eventually([&] { return storage_->hits() == static_cast<uint64_t>(kInFlight); }, std::chrono::seconds(60)));
  ASSERT_TRUE(
      eventually([&] { return count_in_log("Recording attached successfully") == static_cast<size_t>(kInFlight); }));
  // ...and then the plugin has one timer armed, for 100,000 waiting calls.
  ASSERT_TRUE(eventually([&] { return plugin_timers() == 1; })) << plugin_timers();
  const long resumed_rss = status_kb(host_->pid(), "VmRSS");
  const long resumed_peak = status_kb(host_->pid(), "VmHWM");

  // That timer is the earliest due poll's: nothing 1 ms before it, the first call at it.
  ASSERT_NO_FATAL_FAILURE(advance_to(kFirstDueMs - 1));
  EXPECT_EQ(started(pending_id(0)), 0u);
  ASSERT_NO_FATAL_FAILURE(advance_to(kFirstDueMs));
  EXPECT_EQ(started(pending_id(0)), 1u);
  EXPECT_EQ(started(pending_id(1)), 0u);
  ASSERT_TRUE(eventually([&] { return storage_->hits() == static_cast<uint64_t>(kInFlight + 1); }));

  // A burst: the next 1,000 calls fall due in one advance. They are polled a few at a time
  // (max_concurrent_downloads); the others stay due in the store, not in memory.
  constexpr int kBurst = 1000;
  const auto burst_started = std::chrono::steady_clock::now();
  ASSERT_NO_FATAL_FAILURE(advance_to(kFirstDueMs + kBurst * kSpacingMs));
  ASSERT_TRUE(eventually([&] { return storage_->hits() == static_cast<uint64_t>(kInFlight + 1 + kBurst); },
                         std::chrono::seconds(120)))
      << storage_->hits();
  const long long burst_ms = ms_since(burst_started);
  ASSERT_TRUE(eventually([&] { return count_in_log("[WaVoIP] Download of call P") == static_cast<size_t>(kBurst + 1); },
                         std::chrono::seconds(30)));
  EXPECT_EQ(started(pending_id(kBurst + 1)), 0u) << "a call that is not due yet was polled";
  EXPECT_TRUE(eventually([&] { return plugin_timers() == 1; })) << plugin_timers();
  const long burst_rss = status_kb(host_->pid(), "VmRSS");
  const long burst_peak = status_kb(host_->pid(), "VmHWM");

  std::cout << "[ figures    ] store filled with " << kPending << " waiting + " << kInFlight << " fetching calls in "
            << fill_ms << " ms; restart until serving: " << restart_ms << " ms\n"
            << "[ figures    ] host RSS kB: empty store " << baseline_rss << " (peak " << baseline_peak
            << "), after resume " << resumed_rss << " (peak " << resumed_peak << "), after " << kBurst << " polls "
            << burst_rss << " (peak " << burst_peak << ")\n"
            << "[ figures    ] " << kBurst << " due polls answered 404 in " << burst_ms << " ms\n";
#ifndef WAVOIP_TEST_SANITIZED
  // The whole host, plugin included, stays within 100 MB of an empty store's footprint.
  EXPECT_LT(burst_peak, baseline_peak + 100 * 1024);
#endif
  ASSERT_EQ(host_->stop(), 0);
  SQLite::Database db(db_path(), SQLite::OPEN_READONLY);
  // The polled calls were rescheduled (404: not ready yet), the others kept their due time.
  EXPECT_EQ(db.execAndGet("SELECT COUNT(*) FROM calls WHERE recording = 'waiting' AND attempt = 1").getInt64(),
            kBurst + 1);
  EXPECT_EQ(db.execAndGet("SELECT COUNT(*) FROM calls WHERE recording = 'waiting'").getInt64(), kPending);
}

}  // namespace
