// The polling fallback end to end, under the stub host's virtual clock: the real host binary,
// the built plugin .so, real downloads from a local storage server over loopback. Time only moves
// when a test advances it, so the whole 4-hour schedule runs in about a second and every poll is
// checked at its exact virtual millisecond.
//
// How a poll's time is observed: the plugin logs "Downloading the recording of call <id>" inside
// the timer callback, i.e. inside the host's handling of POST /__test/clock/advance. So after
// advancing to `at - 1` the count is unchanged and after advancing to `at` it went up by one,
// with no waiting involved. The download itself uses a real socket: before the next advance the
// test waits until the plugin logged its outcome (the callback that handles it runs on the
// host's one loop, so the next request is served after it).
#include "e2e_fixture.hpp"
#include "prometheus_text.hpp"  // tests/support

#include <wavoip/core/backoff.hpp>
#include <wavoip/core/config.hpp>
#include <wavoip/core/flow.hpp>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <variant>
#include <vector>

namespace {

namespace json = boost::json;
using e2e::audio;
using e2e::call_ended;
using e2e::call_event;
using e2e::record_event;
using e2e::recording_bytes;
using testsupport::eventually;
using wavoip::test::ScriptedResponse;

constexpr long long kStartMs = 1'800'000'000'000;  // the virtual wall clock when the host starts
constexpr long long kSec = 1000;
using e2e::kPluginId;

ScriptedResponse answer(int status, const std::string& content_type, const std::string& body) {
  ScriptedResponse r;
  r.status = status;
  r.content_type = content_type;
  r.body = body;
  return r;
}

// The attempt times the policy gives a call that ended at `ended_at` and never finds its file,
// each download taking no virtual time (as under the virtual clock).
std::vector<long long> expected_schedule(const wavoip::PollSettings& settings, long long ended_at,
                                         const std::string& call_id) {
  const wavoip::BackoffPolicy policy(settings);
  const long long deadline = policy.deadline_for(ended_at);
  std::vector<long long> times{policy.first_poll_at(ended_at, call_id)};
  for (std::uint32_t attempt = 1;; ++attempt) {
    auto next = policy.next_attempt_at(attempt, times.back(), deadline, call_id);
    if (!next) break;
    times.push_back(*next);
  }
  return times;
}

class Polling : public e2e::PluginHost {
 protected:
  void start_virtual(json::object poll = {{"jitter", 0}}, json::object overrides = {}) {
    overrides["poll"] = std::move(poll);
    start_host(overrides, true, kStartMs);
  }

  // The host's /metrics, read with the strict Prometheus text reader.
  promtext::Exposition host_metrics() {
    const promtext::ParseResult parsed = promtext::parse(testsupport::http_get(host_->base_url() + "/metrics").body);
    if (const auto* error = std::get_if<std::string>(&parsed)) {
      ADD_FAILURE() << "GET /metrics is not Prometheus text: " << *error;
      return {};
    }
    return std::get<promtext::Exposition>(parsed);
  }
  // hdp_host_message_writes_total{operation="..."} from the host's /metrics (0 when absent).
  double message_writes(const std::string& operation) {
    return host_metrics().value("hdp_host_message_writes_total", {{"operation", operation}}).value_or(0);
  }
  // Every message write of the host, whatever the operation: with hdp.messages/2 one upsert
  // carries the status, with /1 a status is its own write.
  double all_writes() {
    const promtext::Exposition metrics = host_metrics();
    const promtext::Family* family = metrics.family("hdp_host_message_writes_total");
    double sum = 0;
    if (family != nullptr) {
      for (const promtext::Sample& sample : family->samples) sum += sample.value;
    }
    return sum;
  }
  double status_writes() { return all_writes(); }

  size_t polls_started(const std::string& id) {
    return count_in_log("[WaVoIP] Downloading the recording of call " + id + "\n");
  }
  size_t polls_answered(const std::string& id) { return count_in_log("[WaVoIP] Download of call " + id + ": "); }

  std::string reason(const std::string& id) {
    auto m = message(id);
    return m ? std::string(m->at("recording_reason").as_string()) : "(no message)";
  }
  // The technical detail, shown apart from the reason (hdp.messages/3).
  std::string detail(const std::string& id) {
    auto m = message(id);
    return m ? std::string(m->at("recording_detail").as_string()) : "(no message)";
  }

  // Proves that poll number `n` (0-based) of `id` happens exactly at `at`: not 1 ms before,
  // and at `at`; then waits until the plugin has handled the storage's answer.
  void expect_poll_at(const std::string& id, long long at, size_t n) {
    ASSERT_NO_FATAL_FAILURE(advance_to(at - 1));
    ASSERT_EQ(polls_started(id), n) << "poll " << n << " came before " << (at - kStartMs) << " ms";
    ASSERT_NO_FATAL_FAILURE(advance_to(at));
    ASSERT_EQ(polls_started(id), n + 1) << "poll " << n << " did not come at " << (at - kStartMs) << " ms";
    ASSERT_TRUE(eventually([&] { return polls_answered(id) == n + 1; })) << "poll " << n << " got no answer";
  }

  // The call ends now (virtual) after being answered: the polling window opens.
  void end_call(const std::string& id) {
    ASSERT_EQ(post_webhook(call_event(id, "UPDATE", "ACTIVE")).status, 202);
    ASSERT_EQ(post_webhook(call_ended(id, 42)).status, 202);
    ASSERT_TRUE(wait_for_status(id, "waiting")) << recording_status(id);
  }
};

TEST(PollSchedule, DefaultsAreTheDocumentedTable) {
  wavoip::PollSettings defaults;
  defaults.jitter = 0;
  const std::vector<long long> offsets_s = {60,   90,   150,  270,  510,   990,   1950,
                                            3750, 5550, 7350, 9150, 10950, 12750, 14400};
  std::vector<long long> expected;
  for (long long s : offsets_s) expected.push_back(kStartMs + s * kSec);
  EXPECT_EQ(expected_schedule(defaults, kStartMs, "any"), expected);
  // The configured default keeps 20 % jitter on every wait.
  EXPECT_EQ(wavoip::PollSettings{}.jitter, 0.2);
}

TEST(PollSchedule, JitteredWaitsStayUnderTheCapAndTheLastPollIsAtTheDeadline) {
  wavoip::PollSettings settings;  // the defaults: 20 % jitter
  settings.seed = 99;
  bool some_wait_at_cap = false;
  for (int call = 0; call < 300; ++call) {
    const std::string id = "CAP" + std::to_string(call);
    const std::vector<long long> times = expected_schedule(settings, kStartMs, id);
    ASSERT_GE(times.size(), 10u) << id;
    EXPECT_GE(times.front(), kStartMs + 48 * kSec) << id;
    EXPECT_LE(times.front(), kStartMs + 72 * kSec) << id;
    for (size_t i = 1; i < times.size(); ++i) {
      ASSERT_LE(times[i] - times[i - 1], 1800 * kSec) << id << " attempt " << i;
      some_wait_at_cap = some_wait_at_cap || times[i] - times[i - 1] == 1800 * kSec;
    }
    EXPECT_EQ(times.back(), kStartMs + 4 * 3600 * kSec) << id;
  }
  EXPECT_TRUE(some_wait_at_cap);
}

TEST_F(Polling, TheFourHourScheduleRunsAtThePolicysTimesAndFailsAtTheDeadlineNotBefore) {
  start_virtual({{"jitter", 0}});
  const std::string id = "SCHED0001";
  ASSERT_EQ(wall_ms(), kStartMs);
  ASSERT_NO_FATAL_FAILURE(end_call(id));
  EXPECT_EQ(reason(id), "Waiting for WaVoIP to finish the recording");
  EXPECT_EQ(plugin_timers(), 1) << "one poll timer for the call";

  wavoip::PollSettings settings;
  settings.jitter = 0;
  const std::vector<long long> times = expected_schedule(settings, kStartMs, id);
  ASSERT_EQ(times.size(), 14u);
  ASSERT_EQ(times.back(), kStartMs + 4 * 3600 * kSec);

  for (size_t n = 0; n < times.size(); ++n) {
    if (n + 1 == times.size()) {
      // The last minute before the deadline: still waiting, never failed early.
      ASSERT_NO_FATAL_FAILURE(advance_to(times[n] - 1));
      EXPECT_EQ(recording_status(id), "waiting");
    }
    ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, times[n], n));
    if (n + 1 < times.size()) {
      ASSERT_TRUE(wait_for_status(id, "waiting"));
      EXPECT_EQ(reason(id), "Waiting for WaVoIP to finish the recording");
      EXPECT_EQ(detail(id), "Last answer from the recording server: HTTP 404");
    }
  }
  ASSERT_TRUE(wait_for_status(id, "failed")) << recording_status(id);
  EXPECT_EQ(reason(id), "No recording after 4 h 0 min (14 attempts)");
  EXPECT_EQ(detail(id), "Last answer from the recording server: HTTP 404");
  EXPECT_EQ(count_in_log("recording failed for call " + id + ": No recording after 4 h 0 min"), 1u);
  EXPECT_EQ(storage_->hits("/" + id), 14u);
  EXPECT_TRUE(eventually([&] { return plugin_timers() == 0; })) << "no timer after giving up";

  // Nothing more happens, however long we wait.
  ASSERT_TRUE(host_->advance_ms(24 * 3600 * kSec));
  EXPECT_EQ(polls_started(id), 14u);

  // A READY after the failure reopens the call and attaches.
  const std::string body = recording_bytes(30000, 'r');
  storage_->set_response("/" + id, audio(body));
  ASSERT_EQ(post_webhook(record_event(id, "READY")).status, 202);
  ASSERT_TRUE(wait_for_status(id, "attached")) << recording_status(id) << ": " << reason(id);
  EXPECT_EQ(attachment_count(id), 1u);
  EXPECT_EQ(attachment_file(id).body, body);
}

TEST_F(Polling, SeededJitterGivesExactlyThePolicysTimes) {
  const json::object poll{{"jitter", 0.25}, {"seed", 42}};
  start_virtual(poll);
  const std::string id = "JITTER0001";
  ASSERT_NO_FATAL_FAILURE(end_call(id));

  wavoip::PollSettings settings;
  settings.jitter = 0.25;
  settings.seed = 42;
  const std::vector<long long> times = expected_schedule(settings, kStartMs, id);
  wavoip::PollSettings plain;
  plain.jitter = 0;
  ASSERT_NE(times, expected_schedule(plain, kStartMs, id)) << "the jitter must move the polls";

  for (size_t n = 0; n < times.size(); ++n) ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, times[n], n));
  ASSERT_TRUE(wait_for_status(id, "failed"));
  EXPECT_NE(reason(id).find("(" + std::to_string(times.size()) + " attempts)"), std::string::npos) << reason(id);
}

TEST_F(Polling, NotReadyThenTransientAnswersAreRetriedUntilTheAudioIsAttached) {
  start_virtual({{"jitter", 0}});
  const std::string id = "SEQ0001";
  const std::string path = "/" + id;
  const std::string body = recording_bytes(50000, 's');
  ScriptedResponse reset = audio(body);
  reset.reset_after_bytes = 2000;
  reset.chunk_bytes = 1000;
  ScriptedResponse truncated = audio(body);
  truncated.close_after_bytes = 3000;

  const int not_found = 3;
  struct Step {
    ScriptedResponse response;
    std::string reason_after;
    std::string detail_after;  // its start
  };
  const std::string last = "Last answer from the recording server: ";
  std::vector<Step> steps;
  for (int i = 0; i < not_found; ++i) {
    steps.push_back(
        {answer(404, "text/plain", "not found"), "Waiting for WaVoIP to finish the recording", last + "HTTP 404"});
  }
  steps.push_back({answer(200, "application/json", R"({"status":"RECORDING"})"),
                   "Waiting for WaVoIP to finish the recording",
                   last + "HTTP 200 (recording not ready yet (status RECORDING))"});
  steps.push_back({answer(403, "application/xml", "<Error><Code>AccessDenied</Code></Error>"),
                   "Waiting for WaVoIP to finish the recording", last + "HTTP 403 (access denied)"});
  steps.push_back({answer(500, "text/plain", "oops"), "WaVoIP's server had a problem, will retry",
                   last + "HTTP 500 (server error)"});
  steps.push_back({reset, "Download failed, will retry", last + "HTTP 200 ("});
  steps.push_back({truncated, "Download failed, will retry", last + "HTTP 200 ("});

  ASSERT_NO_FATAL_FAILURE(end_call(id));
  wavoip::PollSettings settings;
  settings.jitter = 0;
  const std::vector<long long> times = expected_schedule(settings, kStartMs, id);
  for (size_t n = 0; n < steps.size(); ++n) {
    storage_->set_response(path, steps[n].response);
    ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, times[n], n));
    ASSERT_TRUE(wait_for_status(id, "waiting")) << "after answer " << n << ": " << recording_status(id);
    EXPECT_EQ(reason(id), steps[n].reason_after) << "after answer " << n;
    EXPECT_EQ(detail(id).rfind(steps[n].detail_after, 0), 0u) << "after answer " << n << ": " << detail(id);
  }
  storage_->set_response(path, audio(body));
  ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, times[steps.size()], steps.size()));
  ASSERT_TRUE(wait_for_status(id, "attached")) << recording_status(id) << ": " << reason(id);
  EXPECT_EQ(storage_->hits(path), steps.size() + 1);
  EXPECT_EQ(attachment_count(id), 1u);
  EXPECT_EQ(attachment_file(id).body, body);
  EXPECT_EQ(reason(id), "");
  EXPECT_EQ(detail(id), "");
  EXPECT_TRUE(eventually([&] { return plugin_timers() == 0; }));
}

TEST_F(Polling, GoneIsPermanentAndTheOperatorCanRetryOnDemand) {
  start_virtual({{"jitter", 0}});
  const std::string id = "GONE0001";
  storage_->set_response("/" + id, answer(410, "text/plain", "gone"));
  ASSERT_NO_FATAL_FAILURE(end_call(id));
  ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, kStartMs + 60 * kSec, 0));
  ASSERT_TRUE(wait_for_status(id, "failed"));
  EXPECT_EQ(reason(id), "WaVoIP no longer has this recording");
  EXPECT_EQ(detail(id), "Last answer from the recording server: HTTP 410 (recording removed)");
  // The host's page learns where "Try again" goes from the plugin, not from the call's key.
  EXPECT_EQ(std::string(message(id)->at("retry_url").as_string()), "/wavoip/recordings/retry?call_id=" + id);
  ASSERT_TRUE(host_->advance_ms(5 * 3600 * kSec));
  EXPECT_EQ(polls_started(id), 1u) << "a permanent answer stops the polling";

  // Unknown calls and a missing call id are refused; the known call is fetched again at once.
  auto unknown = testsupport::http_request("POST", host_->base_url() + "/wavoip/recordings/retry?call_id=nope", "");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  auto missing = testsupport::http_request("POST", host_->base_url() + "/wavoip/recordings/retry", "");
  EXPECT_EQ(missing.status, 400) << missing.body;
  const std::string body = recording_bytes(7000, 'g');
  storage_->set_response("/" + id, audio(body));
  auto retry = testsupport::http_request("POST", host_->base_url() + "/wavoip/recordings/retry?call_id=" + id, "");
  EXPECT_EQ(retry.status, 202) << retry.body;
  ASSERT_TRUE(wait_for_status(id, "attached")) << reason(id);
  EXPECT_EQ(attachment_file(id).body, body);
  EXPECT_TRUE(message(id)->at("retry_url").is_null());
}

TEST_F(Polling, WithWebhookKeysTheRetryRouteWantsAKey) {
  const std::string key = "retry-key-0123456789";
  start_virtual({{"jitter", 0}, {"deadline_s", 60}, {"first_delay_s", 60}},
                {{"webhook_keys", json::array{json::object{{"key", key}}}}});
  const std::string id = "KEYED0001";
  ASSERT_EQ(post_webhook(call_ended(id, 10), "/webhooks/wavoip/" + key).status, 202);
  ASSERT_TRUE(wait_for_status(id, "waiting"));
  ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, kStartMs + 60 * kSec, 0));
  ASSERT_TRUE(wait_for_status(id, "failed"));
  EXPECT_EQ(reason(id), "No recording after 1 min (1 attempt)");
  EXPECT_EQ(detail(id), "Last answer from the recording server: HTTP 404");

  const std::string url = host_->base_url() + "/wavoip/recordings/retry?call_id=" + id;
  EXPECT_EQ(testsupport::http_request("POST", url, "").status, 401);
  EXPECT_EQ(testsupport::http_request("POST", url + "&token=wrong-key-0123456789", "").status, 401);
  storage_->set_response("/" + id, audio("abc"));
  EXPECT_EQ(testsupport::http_request("POST", url, "", {"X-Webhook-Token: " + key}).status, 202);
  ASSERT_TRUE(wait_for_status(id, "attached")) << reason(id);
}

// The README's promise: a 2xx that is not audio means "not ready, poll again", also when its
// Content-Length is above max_recording_bytes (the cap is for recordings).
TEST_F(Polling, LargeNonAudioAnswerIsPolledAgainNotFailed) {
  start_virtual({{"jitter", 0}}, {{"max_recording_bytes", 20000}});
  const std::string id = "BIGPAGE01";
  storage_->set_response("/" + id, answer(200, "text/html", std::string(30000, 'x')));
  ASSERT_NO_FATAL_FAILURE(end_call(id));
  ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, kStartMs + 60 * kSec, 0));
  EXPECT_EQ(recording_status(id), "waiting");
  EXPECT_NE(detail(id).find("recording not ready yet (server sent text/html, not audio)"), std::string::npos)
      << detail(id);
  storage_->set_response("/" + id, audio(recording_bytes(9000, 'r')));
  ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, kStartMs + 90 * kSec, 1));
  ASSERT_TRUE(wait_for_status(id, "attached")) << reason(id);
}

TEST_F(Polling, ReadyCancelsTheScheduleAndFetchesAtOnce) {
  start_virtual({{"jitter", 0}});
  const std::string id = "READY0001";
  ASSERT_NO_FATAL_FAILURE(end_call(id));
  EXPECT_EQ(plugin_timers(), 1);
  const std::string body = recording_bytes(9000, 'q');
  storage_->set_response("/" + id, audio(body));
  ASSERT_NO_FATAL_FAILURE(advance_to(kStartMs + 10 * kSec));
  ASSERT_EQ(post_webhook(record_event(id, "READY")).status, 202);
  ASSERT_TRUE(wait_for_status(id, "attached"));
  // CancelPoll cleared the due time, so the earliest due moved on: no timer, no later poll.
  EXPECT_TRUE(eventually([&] { return plugin_timers() == 0; }));
  ASSERT_TRUE(host_->advance_ms(5 * 3600 * kSec));
  EXPECT_EQ(storage_->hits("/" + id), 1u);
  EXPECT_EQ(attachment_count(id), 1u);
}

TEST_F(Polling, APollThatFindsNothingIsNotShownAsADownloadAndRewritesNothing) {
  start_virtual({{"jitter", 0}});
  const std::string id = "QUIET0001";
  ASSERT_NO_FATAL_FAILURE(end_call(id));
  const double before = status_writes();
  ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, kStartMs + 60 * kSec, 0));
  // The 404 changed the reason (it names the last answer): one write, no "downloading" and back.
  ASSERT_TRUE(eventually([&] { return detail(id).find("HTTP 404") != std::string::npos; })) << detail(id);
  EXPECT_EQ(status_writes(), before + 1);
  ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, kStartMs + 90 * kSec, 1));
  ASSERT_TRUE(eventually([&] { return plugin_timers() == 1; }));
  // The same answer again: what the agent sees did not change, so the host is not written.
  EXPECT_EQ(status_writes(), before + 1);
  EXPECT_EQ(recording_status(id), "waiting");
  // The normal wait for WaVoIP: an info line each time, no warning for the operator.
  EXPECT_EQ(count_in_log("INFO  [com.wavoip.recordings] [WaVoIP] Download of call " + id + ": not_ready"), 2u);
  EXPECT_EQ(count_in_log("WARN  [com.wavoip.recordings] [WaVoIP] Download of call " + id), 0u);
}

// A step whose change the host already shows needs no mark "behind the host": left in place,
// every quiet poll would leave one, and the next start would show every such call again.
TEST_F(Polling, APollThatChangesNothingShownLeavesNoMarkToShowItAgainAfterARestart) {
  start_virtual({{"jitter", 0}});
  const std::string id = "QUIET0002";
  ASSERT_NO_FATAL_FAILURE(end_call(id));
  ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, kStartMs + 60 * kSec, 0));
  ASSERT_TRUE(eventually([&] { return detail(id).find("HTTP 404") != std::string::npos; })) << detail(id);
  ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, kStartMs + 90 * kSec, 1));
  ASSERT_TRUE(eventually([&] { return plugin_timers() == 1; }));
  const std::string db_path = (dir_->path() / "host" / "plugins" / kPluginId / "wavoip.sqlite").string();
  const auto marks = [&] {
    SQLite::Database db(db_path, SQLite::OPEN_READONLY);
    SQLite::Statement count(db, "SELECT count(*) FROM host_sync WHERE call_id = ?1");
    count.bind(1, id);
    count.executeStep();
    return count.getColumn(0).getInt();
  };
  EXPECT_TRUE(eventually([&] { return marks() == 0; })) << "the quiet poll's mark is still there";
  ASSERT_EQ(host_->stop(), 0);
  EXPECT_EQ(marks(), 0);
  restart_host();
  ASSERT_TRUE(eventually([&] { return plugin_timers() == 1; }));
  EXPECT_EQ(all_writes(), 0) << "the restart showed the call again";
}

TEST_F(Polling, ADownloadStillRunningASecondLaterIsShownAsDownloading) {
  start_virtual({{"jitter", 0}});
  const std::string id = "SLOW0001";
  ASSERT_NO_FATAL_FAILURE(end_call(id));
  ScriptedResponse slow = audio(recording_bytes(40000, 's'));
  slow.chunk_bytes = 4000;
  slow.chunk_delay = std::chrono::milliseconds(200);  // about 2 s of real time
  storage_->set_response("/" + id, slow);
  ASSERT_EQ(post_webhook(record_event(id, "READY")).status, 202);
  ASSERT_TRUE(eventually([&] { return storage_->hits("/" + id) == 1; }));
  // Virtual time has not moved: the download is not shown yet.
  EXPECT_EQ(recording_status(id), "waiting");
  ASSERT_TRUE(host_->advance_ms(1000));
  ASSERT_TRUE(eventually([&] { return recording_status(id) == "downloading"; })) << recording_status(id);
  ASSERT_TRUE(wait_for_status(id, "attached"));
  EXPECT_EQ(attachment_count(id), 1u);
}

TEST_F(Polling, AfterARestartThePolledCallKeepsItsMessageAndCostsOneWriteAtMost) {
  start_virtual({{"jitter", 0}});
  const std::string id = "AGAIN0001";
  ASSERT_NO_FATAL_FAILURE(end_call(id));
  ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, kStartMs + 60 * kSec, 0));
  ASSERT_TRUE(eventually([&] { return detail(id).find("HTTP 404") != std::string::npos; })) << detail(id);
  const int64_t message_id = message(id)->at("id").as_int64();
  ASSERT_EQ(host_->stop(), 0);
  restart_host();  // the clock starts again at kStartMs; the host's counters at zero
  ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, kStartMs + 90 * kSec, 1));
  ASSERT_TRUE(eventually([&] { return plugin_timers() == 1; }));
  // One write at most, since this process cannot know what the host showed: with hdp.messages/2
  // an upsert by the call's key that carries the status, with /1 a status set on the message id
  // kept with the call. Never a second message.
  EXPECT_LE(all_writes(), 1);
  EXPECT_EQ(message(id)->at("id").as_int64(), message_id);
  EXPECT_EQ(recording_status(id), "waiting");
}

TEST_F(Polling, DisabledAndEmptyRecordingCancelTheSchedule) {
  start_virtual({{"jitter", 0}});
  ASSERT_NO_FATAL_FAILURE(end_call("DIS0001"));
  ASSERT_NO_FATAL_FAILURE(end_call("EMP0001"));
  EXPECT_EQ(plugin_timers(), 1) << "two waiting calls, still one timer";
  ASSERT_EQ(post_webhook(record_event("DIS0001", "DISABLED")).status, 202);
  ASSERT_EQ(post_webhook(record_event("EMP0001", "EMPTY_RECORDING")).status, 202);
  ASSERT_TRUE(wait_for_status("DIS0001", "disabled"));
  ASSERT_TRUE(wait_for_status("EMP0001", "empty"));
  EXPECT_EQ(reason("DIS0001"), "Recording is disabled for this WaVoIP device");
  EXPECT_EQ(reason("EMP0001"), "Call too short: WaVoIP made no recording");
  EXPECT_TRUE(eventually([&] { return plugin_timers() == 0; }));
  ASSERT_TRUE(host_->advance_ms(5 * 3600 * kSec));
  EXPECT_EQ(storage_->hits(), 0u);
}

TEST_F(Polling, RecordingAndMixingWithoutReadyArmTheSafetyNet) {
  start_virtual({{"jitter", 0}});
  const std::string id = "NET0001";
  const std::string body = recording_bytes(4000, 'n');
  storage_->set_response("/" + id, audio(body));
  // No CALL event and no READY will ever come: only RECORDING, then MIXING.
  ASSERT_EQ(post_webhook(record_event(id, "RECORDING")).status, 202);
  ASSERT_TRUE(wait_for_status(id, "waiting"));
  EXPECT_EQ(reason(id), "WaVoIP is recording the call");
  ASSERT_NO_FATAL_FAILURE(advance_to(kStartMs + 20 * kSec));
  ASSERT_EQ(post_webhook(record_event(id, "MIXING")).status, 202);
  ASSERT_TRUE(eventually([&] { return reason(id) == "WaVoIP is processing the recording"; }));
  // The safety-net poll stays anchored where it was armed (60 s after RECORDING).
  ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, kStartMs + 60 * kSec, 0));
  ASSERT_TRUE(wait_for_status(id, "attached"));
  EXPECT_EQ(attachment_file(id).body, body);
}

TEST_F(Polling, TheCallsEndReanchorsASafetyNetThatHasNotPolledYet) {
  start_virtual({{"jitter", 0}});
  const std::string id = "ANCHOR0001";
  ASSERT_EQ(post_webhook(record_event(id, "RECORDING")).status, 202);
  ASSERT_TRUE(wait_for_status(id, "waiting"));
  ASSERT_NO_FATAL_FAILURE(advance_to(kStartMs + 45 * kSec));
  ASSERT_EQ(post_webhook(call_ended(id, 45)).status, 202);
  ASSERT_TRUE(eventually([&] { return message(id) && message(id)->at("call_status") == "ENDED"; }));
  // Not at 60 s (when RECORDING came) but 60 s after the end.
  ASSERT_NO_FATAL_FAILURE(advance_to(kStartMs + 60 * kSec));
  EXPECT_EQ(polls_started(id), 0u);
  ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, kStartMs + 105 * kSec, 0));
}

TEST_F(Polling, EveryEndedCallIsPolledWhateverItsDuration) {
  start_virtual({{"jitter", 0}});
  // ENDED with duration 0, and calls that failed or lost the connection without ever being
  // ACTIVE: WaVoIP may still have recorded something, so each one is polled.
  ASSERT_EQ(post_webhook(call_ended("END0", 0)).status, 202);
  ASSERT_EQ(post_webhook(call_event("FAIL0", "UPDATE", "FAILED")).status, 202);
  ASSERT_EQ(post_webhook(call_event("LOST0", "UPDATE", "CONNECTION_LOST")).status, 202);
  for (const char* id : {"END0", "FAIL0", "LOST0"}) {
    ASSERT_TRUE(wait_for_status(id, "waiting")) << id;
    storage_->set_response(std::string("/") + id, audio(std::string("audio of ") + id));
  }
  ASSERT_NO_FATAL_FAILURE(advance_to(kStartMs + 60 * kSec));
  for (const char* id : {"END0", "FAIL0", "LOST0"}) {
    EXPECT_EQ(polls_started(id), 1u) << id;
    EXPECT_TRUE(wait_for_status(id, "attached")) << id;
  }
}

TEST_F(Polling, NeverAnsweredCallsSayWhyAndAreNotPolledUntilSomethingSaysOtherwise) {
  start_virtual({{"jitter", 0}});
  ASSERT_EQ(post_webhook(call_event("REJ0", "UPDATE", "REJECTED")).status, 202);
  ASSERT_EQ(post_webhook(call_event("NA0", "UPDATE", "NOT_ANSWERED", "INCOMING", 0)).status, 202);
  ASSERT_EQ(post_webhook(call_event("LATE0", "UPDATE", "REJECTED")).status, 202);
  ASSERT_TRUE(eventually([&] { return reason("REJ0") == "The call was rejected"; })) << reason("REJ0");
  ASSERT_TRUE(eventually([&] { return reason("NA0") == "The call was not answered"; }));
  EXPECT_EQ(recording_status("REJ0"), "none");
  EXPECT_EQ(plugin_timers(), 0);

  // A late delivery with a positive duration says LATE0 was connected after all: polled from its
  // end (60 s after it), with the usual schedule.
  ASSERT_NO_FATAL_FAILURE(advance_to(kStartMs + 30 * kSec));
  ASSERT_EQ(post_webhook(call_ended("LATE0", 25)).status, 202);
  ASSERT_TRUE(wait_for_status("LATE0", "waiting"));
  storage_->set_response("/LATE0", audio("late audio"));
  ASSERT_NO_FATAL_FAILURE(expect_poll_at("LATE0", kStartMs + 60 * kSec, 0));
  ASSERT_TRUE(wait_for_status("LATE0", "attached"));

  ASSERT_TRUE(host_->advance_ms(5 * 3600 * kSec));
  EXPECT_EQ(storage_->hits("/REJ0") + storage_->hits("/NA0"), 0u);
  EXPECT_EQ(recording_status("NA0"), "none");
  // And a READY still wins.
  storage_->set_response("/REJ0", audio("surprise"));
  ASSERT_EQ(post_webhook(record_event("REJ0", "READY")).status, 202);
  ASSERT_TRUE(wait_for_status("REJ0", "attached"));
}

TEST_F(Polling, WithUnansweredCallsOnAMissedCallIsPolledLikeAnyOther) {
  start_virtual({{"jitter", 0}, {"unanswered_calls", true}});
  const std::string id = "MISSED0001";
  const std::string body = recording_bytes(3000, 'm');
  storage_->set_response("/" + id, audio(body));
  ASSERT_EQ(post_webhook(call_event(id, "UPDATE", "NOT_ANSWERED")).status, 202);
  ASSERT_TRUE(wait_for_status(id, "waiting")) << recording_status(id);
  ASSERT_NO_FATAL_FAILURE(expect_poll_at(id, kStartMs + 60 * kSec, 0));
  ASSERT_TRUE(wait_for_status(id, "attached"));
  EXPECT_EQ(attachment_file(id).body, body);
}

TEST_F(Polling, ManyWaitingCallsShareOneTimerAndEachIsPolledOnTime) {
  start_virtual({{"jitter", 0}});
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back("MANY" + std::to_string(i) + "X");
    ASSERT_NO_FATAL_FAILURE(advance_to(kStartMs + i * 7 * kSec));
    ASSERT_NO_FATAL_FAILURE(end_call(ids.back()));
    EXPECT_EQ(plugin_timers(), 1);
  }
  for (int i = 0; i < 6; ++i) {
    ASSERT_NO_FATAL_FAILURE(expect_poll_at(ids[static_cast<size_t>(i)], kStartMs + (60 + i * 7) * kSec, 0));
    EXPECT_EQ(plugin_timers(), 1);
  }
}

// A due time left on a call that is not waiting (an older version, a hand edit) is consumed on
// the first timer run; before the fix the plugin re-armed a zero-delay timer for it forever.
TEST_F(Polling, ADueTimeOnACallThatIsNotWaitingIsConsumedNotSpunOn) {
  start_virtual({{"jitter", 0}});
  ASSERT_EQ(host_->stop(), 0);
  const std::string db_path = (dir_->path() / "host" / "plugins" / kPluginId / "wavoip.sqlite").string();
  {
    SQLite::Database db(db_path, SQLite::OPEN_READWRITE);
    db.exec(
        "INSERT INTO calls (call_id, recording, reason, next_attempt_at, deadline_at, ended_at, created_at,"
        " updated_at, message_requested) VALUES ('STALE1', 'attached', '', " +
        std::to_string(kStartMs - 10 * kSec) + ", " + std::to_string(kStartMs + 3600 * kSec) + ", " +
        std::to_string(kStartMs - 100 * kSec) + ", 1, 1, 1)");
    db.exec(
        "INSERT INTO calls (call_id, recording, reason, next_attempt_at, deadline_at, ended_at, created_at,"
        " updated_at, message_requested) VALUES ('LIVE1', 'waiting', 'Waiting', " +
        std::to_string(kStartMs + 30 * kSec) + ", " + std::to_string(kStartMs + 3600 * kSec) + ", " +
        std::to_string(kStartMs - 100 * kSec) + ", 1, 1, 1)");
  }
  restart_host();
  // The stale row was due at start; the only timer left is the one for LIVE1.
  ASSERT_TRUE(eventually([&] { return count_in_log("dropped a stale poll of call STALE1 in state attached") == 1; }));
  EXPECT_TRUE(eventually([&] { return plugin_timers() == 1; })) << plugin_timers();
  ASSERT_NO_FATAL_FAILURE(expect_poll_at("LIVE1", kStartMs + 30 * kSec, 0));
  EXPECT_EQ(polls_started("STALE1"), 0u);
  ASSERT_EQ(host_->stop(), 0);
  SQLite::Database db(db_path, SQLite::OPEN_READONLY);
  EXPECT_TRUE(db.execAndGet("SELECT next_attempt_at FROM calls WHERE call_id = 'STALE1'").isNull());
  EXPECT_EQ(db.execAndGet("SELECT recording FROM calls WHERE call_id = 'STALE1'").getString(), "attached");
}

}  // namespace
