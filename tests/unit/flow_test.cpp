// What the recording flow proves: every transition of the table in flow.hpp, including
// out-of-order and duplicate deliveries, forward-only states, the 4-hour give-up with a reason
// an agent understands, and reopening a failed recording.

#include "wavoip/core/flow.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace wavoip {
namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;
constexpr TimeMs kSec = 1000;
const std::string kId = "A1B2C3D4E5F60718293A4B5C6D7E8F90";

Config test_config() {
  Config c;
  c.poll.jitter = 0;  // exact times in assertions
  return c;
}

template <class T>
std::vector<T> all_of(const FlowResult& r) {
  std::vector<T> out;
  for (const Action& a : r.actions) {
    if (const T* t = std::get_if<T>(&a)) out.push_back(*t);
  }
  return out;
}

template <class T>
bool has(const FlowResult& r) {
  return !all_of<T>(r).empty();
}

template <class T>
T only(const FlowResult& r) {
  const auto v = all_of<T>(r);
  EXPECT_EQ(v.size(), 1u);
  return v.empty() ? T{} : v.front();
}

bool logged(const FlowResult& r, std::string_view needle) {
  for (const LogLine& l : all_of<LogLine>(r)) {
    if (l.text.find(needle) != std::string::npos) return true;
  }
  return false;
}

CallEvent call(const std::string& status, const std::string& direction = "INCOMING") {
  CallEvent ev;
  ev.action = EventAction::update;
  ev.call_id = kId;
  ev.caller = "5511999990000";
  ev.receiver = "5511888880000";
  if (!status.empty()) ev.status = Coded<CallStatus>{call_status_from_text(status), status};
  if (!direction.empty()) ev.direction = Coded<CallDirection>{call_direction_from_text(direction), direction};
  return ev;
}

RecordEvent record(const std::string& status, std::optional<std::string> url = std::nullopt) {
  RecordEvent ev;
  ev.action = EventAction::update;
  ev.call_id = kId;
  ev.record_status = Coded<RecordStatus>{record_status_from_text(status), status};
  ev.record_url = std::move(url);
  return ev;
}

FetchOutcome not_ready(int status = 404) {
  return FetchOutcome{FetchKind::not_ready, status, "", "", "", 0};
}

FetchOutcome ready_file() {
  return FetchOutcome{FetchKind::ready_file, 200, "audio/mpeg", "/data/rec/" + kId + ".mp3", "audio/mpeg", 48000};
}

// Drives one call through a sequence of inputs, keeping the record as the store would.
class FlowTest : public ::testing::Test {
 protected:
  FlowResult apply(const FlowInput& input, TimeMs now) {
    FlowResult r = step(rec, input, now, config);
    rec = r.record;
    return r;
  }

  // A call that ended at kT0 with nothing else known: waiting, first poll at +60 s.
  void ended_call() { apply(call("ENDED"), kT0); }

  void in_state(RecordingState s) {
    ended_call();
    if (s == RecordingState::waiting) return;
    apply(record("READY"), kT0 + 10 * kSec);
    if (s == RecordingState::fetching) return;
    apply(ready_file(), kT0 + 11 * kSec);
    if (s == RecordingState::attaching) return;
    apply(AttachOutcome{true, "att-1", ""}, kT0 + 12 * kSec);
    ASSERT_EQ(rec.recording, RecordingState::attached);
  }

  Config config = test_config();
  CallRecord rec = new_call_record(kId);
};

// ---- CALL events ----

TEST_F(FlowTest, FirstCallEventUpsertsTheMessageWithTheCallerAsContact) {
  const FlowResult r = apply(call("ACTIVE"), kT0);
  ASSERT_FALSE(r.actions.empty());
  const auto* up = std::get_if<UpsertMessage>(&r.actions.front());
  ASSERT_NE(up, nullptr) << "the message is created before anything else";
  EXPECT_EQ(up->call_id, kId);
  EXPECT_EQ(up->contact, "5511999990000");
  EXPECT_EQ(up->direction, CallDirection::incoming);
  EXPECT_EQ(up->call_status, "ACTIVE");
  EXPECT_EQ(rec.recording, RecordingState::none);
  EXPECT_TRUE(rec.answered);
  EXPECT_FALSE(rec.ended());
  EXPECT_FALSE(has<SchedulePoll>(r));
  EXPECT_EQ(rec.created_at, kT0);
  EXPECT_EQ(rec.updated_at, kT0);
}

TEST_F(FlowTest, OutgoingCallContactIsTheReceiver) {
  const FlowResult r = apply(call("OUTGOING_CALLING", "OUTCOMING"), kT0);
  EXPECT_EQ(only<UpsertMessage>(r).contact, "5511888880000");
  EXPECT_EQ(rec.contact(), "5511888880000");
}

TEST_F(FlowTest, InboxOfTheRecordTravelsWithTheMessage) {
  rec.inbox = "sales";
  EXPECT_EQ(only<UpsertMessage>(apply(call("ACTIVE"), kT0)).inbox, "sales");
}

TEST_F(FlowTest, SeedCallExampleWithRecordingStatusSchedulesASafetyNetPoll) {
  CallEvent ev = call("ACTIVE");
  ev.duration_s = 45;
  ev.record_status = Coded<RecordStatus>{RecordStatus::recording, "RECORDING"};
  const FlowResult r = apply(ev, kT0);
  EXPECT_EQ(rec.recording, RecordingState::waiting);
  EXPECT_EQ(only<SchedulePoll>(r).at, kT0 + 60 * kSec);
  EXPECT_EQ(rec.deadline_at, kT0 + 14400 * kSec);
  EXPECT_EQ(only<SetRecordingStatus>(r).reason, "WaVoIP is recording the call");
}

TEST_F(FlowTest, CallEndSchedulesTheFirstPoll) {
  const FlowResult r = apply(call("ENDED"), kT0);
  EXPECT_EQ(rec.ended_at, kT0);
  EXPECT_EQ(rec.recording, RecordingState::waiting);
  EXPECT_EQ(rec.next_attempt_at, kT0 + 60 * kSec);
  EXPECT_EQ(rec.deadline_at, kT0 + kSec * 4 * 3600);
  EXPECT_EQ(rec.attempt, 0u);
  EXPECT_EQ(only<SchedulePoll>(r).at, kT0 + 60 * kSec);
  const SetRecordingStatus s = only<SetRecordingStatus>(r);
  EXPECT_EQ(s.status, RecordingState::waiting);
  EXPECT_EQ(s.reason, "Waiting for WaVoIP to finish the recording");
}

TEST_F(FlowTest, EveryEndStatusOfAnAnsweredCallEndsItAndPolls) {
  for (const char* status : {"ENDED", "REJECTED", "NOT_ANSWERED", "FAILED", "HANDLED_REMOTELY", "CONNECTION_LOST"}) {
    rec = new_call_record(kId);
    apply(call("ACTIVE"), kT0);
    const FlowResult r = apply(call(status), kT0 + 30 * kSec);
    EXPECT_EQ(rec.ended_at, kT0 + 30 * kSec) << status;
    EXPECT_EQ(rec.recording, RecordingState::waiting) << status;
    EXPECT_EQ(only<SchedulePoll>(r).at, kT0 + 90 * kSec) << status;
  }
}

TEST_F(FlowTest, NonEndStatusesDoNotEndTheCall) {
  for (const char* status : {"NONE", "INCOMING_RING", "OUTGOING_RING", "OUTGOING_CALLING", "CONNECTING", "ACTIVE",
                             "REMOTE_CALL_IN_PROGRESS", "CALLING"}) {
    rec = new_call_record(kId);
    const FlowResult r = apply(call(status), kT0);
    EXPECT_FALSE(rec.ended()) << status;
    EXPECT_FALSE(has<SchedulePoll>(r)) << status;
    EXPECT_EQ(rec.call_status, status);
  }
}

TEST_F(FlowTest, UnansweredCallsSayWhyThereIsNoRecordingInsteadOfPolling) {
  const std::pair<const char*, const char*> cases[] = {
      {"REJECTED", "The call was rejected"},
      {"NOT_ANSWERED", "The call was not answered"},
      {"HANDLED_REMOTELY", "The call was answered on another device"},
  };
  for (const auto& [status, reason] : cases) {
    rec = new_call_record(kId);
    const FlowResult r = apply(call(status), kT0);
    EXPECT_TRUE(rec.ended()) << status;
    EXPECT_EQ(rec.recording, RecordingState::none) << status;
    EXPECT_FALSE(rec.next_attempt_at) << status;
    EXPECT_FALSE(has<SchedulePoll>(r)) << status;
    EXPECT_EQ(only<SetRecordingStatus>(r).reason, reason);
  }
}

TEST_F(FlowTest, UnansweredCallsArePolledWhenConfigured) {
  config.poll.unanswered_calls = true;
  for (const char* status : {"REJECTED", "NOT_ANSWERED", "HANDLED_REMOTELY"}) {
    rec = new_call_record(kId);
    const FlowResult r = apply(call(status), kT0);
    EXPECT_EQ(rec.recording, RecordingState::waiting) << status;
    EXPECT_EQ(only<SchedulePoll>(r).at, kT0 + 60 * kSec) << status;
    EXPECT_EQ(only<SetRecordingStatus>(r).reason, "Waiting for WaVoIP to finish the recording") << status;
  }
}

TEST_F(FlowTest, PositiveDurationCountsAsAnswered) {
  CallEvent ev = call("REJECTED");
  ev.duration_s = 12;
  apply(ev, kT0);
  EXPECT_EQ(rec.recording, RecordingState::waiting);
}

TEST_F(FlowTest, ReadyStillWinsAfterAnUnansweredEnd) {
  apply(call("NOT_ANSWERED"), kT0);
  const FlowResult r = apply(record("READY"), kT0 + 60 * kSec);
  EXPECT_EQ(rec.recording, RecordingState::fetching);
  EXPECT_TRUE(has<StartFetch>(r));
}

TEST_F(FlowTest, LateActiveAfterTheEndChangesNothing) {
  ended_call();
  const CallRecord before = rec;
  const FlowResult r = apply(call("ACTIVE"), kT0 + 5 * kSec);
  EXPECT_EQ(rec.call_status, "ENDED");
  EXPECT_EQ(rec.ended_at, kT0);
  EXPECT_TRUE(r.actions.empty());
  EXPECT_EQ(rec, before);
}

TEST_F(FlowTest, SecondEndStatusKeepsTheFirstEnd) {
  ended_call();
  apply(call("CONNECTION_LOST"), kT0 + 5 * kSec);
  EXPECT_EQ(rec.call_status, "ENDED");
  EXPECT_EQ(rec.ended_at, kT0);
  EXPECT_EQ(rec.next_attempt_at, kT0 + 60 * kSec);
}

TEST_F(FlowTest, DuplicateDeliveriesProduceNoActionsAndNoChange) {
  apply(call("ENDED"), kT0);
  const CallRecord before = rec;
  const FlowResult again = apply(call("ENDED"), kT0 + 3 * kSec);
  EXPECT_TRUE(again.actions.empty());
  EXPECT_EQ(rec, before) << "not even updated_at moves";

  apply(record("MIXING"), kT0 + 4 * kSec);
  const CallRecord mixing = rec;
  EXPECT_TRUE(apply(record("MIXING"), kT0 + 5 * kSec).actions.empty());
  EXPECT_EQ(rec, mixing);
}

TEST_F(FlowTest, MessageIsUpdatedOnlyWhenWhatItShowsChanges) {
  apply(call("ACTIVE"), kT0);
  CallEvent same = call("");
  same.direction.reset();
  EXPECT_FALSE(has<UpsertMessage>(apply(same, kT0 + kSec)));
  CallEvent longer = same;
  longer.duration_s = 30;
  EXPECT_EQ(only<UpsertMessage>(apply(longer, kT0 + 2 * kSec)).duration_s, 30);
  CallEvent shorter = same;
  shorter.duration_s = 10;  // an older delivery arriving late
  EXPECT_FALSE(has<UpsertMessage>(apply(shorter, kT0 + 3 * kSec)));
  EXPECT_EQ(rec.duration_s, 30);
}

TEST_F(FlowTest, EventForAnotherCallIsIgnored) {
  CallEvent ev = call("ENDED");
  ev.call_id = "SOMEONE-ELSE";
  const FlowResult r = apply(ev, kT0);
  EXPECT_EQ(rec.recording, RecordingState::none);
  EXPECT_FALSE(rec.ended());
  EXPECT_TRUE(logged(r, "SOMEONE-ELSE"));
  EXPECT_FALSE(has<UpsertMessage>(r));
}

// ---- RECORD events ----

TEST_F(FlowTest, RecordBeforeAnyCallCreatesTheCallWithUnknownContact) {
  const FlowResult r = apply(record("RECORDING"), kT0);
  const auto* up = std::get_if<UpsertMessage>(&r.actions.front());
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->contact, "");
  EXPECT_EQ(up->direction, CallDirection::unknown);
  EXPECT_EQ(rec.recording, RecordingState::waiting);
  EXPECT_EQ(only<SchedulePoll>(r).at, kT0 + 60 * kSec);
  EXPECT_TRUE(rec.message_requested);
}

TEST_F(FlowTest, MixingWhileWaitingKeepsTheArmedPollAndUpdatesTheReason) {
  ended_call();
  const FlowResult r = apply(record("MIXING"), kT0 + 5 * kSec);
  EXPECT_FALSE(has<SchedulePoll>(r));
  EXPECT_EQ(rec.next_attempt_at, kT0 + 60 * kSec);
  EXPECT_EQ(only<SetRecordingStatus>(r).reason, "WaVoIP is processing the recording");
}

TEST_F(FlowTest, SafetyNetPollIsReanchoredWhenTheCallEnds) {
  apply(record("RECORDING"), kT0);
  EXPECT_EQ(rec.next_attempt_at, kT0 + 60 * kSec);
  const FlowResult r = apply(call("ENDED"), kT0 + 600 * kSec);
  EXPECT_EQ(only<SchedulePoll>(r).at, kT0 + 660 * kSec);
  EXPECT_EQ(rec.deadline_at, kT0 + 600 * kSec + 14400 * kSec);
}

TEST_F(FlowTest, ReadyFetchesAtOnceFromTheAllowedRecordUrl) {
  ended_call();
  const FlowResult r = apply(record("READY", "https://storage.wavoip.com/" + kId + "?v=1"), kT0 + 20 * kSec);
  EXPECT_EQ(rec.recording, RecordingState::fetching);
  EXPECT_FALSE(rec.next_attempt_at);
  EXPECT_EQ(only<CancelPoll>(r).call_id, kId);
  EXPECT_EQ(only<StartFetch>(r).url, "https://storage.wavoip.com/" + kId + "?v=1");
  EXPECT_EQ(only<SetRecordingStatus>(r).status, RecordingState::fetching);
  EXPECT_TRUE(logged(r, "[WaVoIP Webhook] Recording READY for call " + kId));
}

TEST_F(FlowTest, ReadyWithAForeignRecordUrlFetchesTheBuiltUrl) {
  ended_call();
  const FlowResult r = apply(record("READY", "http://169.254.169.254/latest/meta-data"), kT0 + 20 * kSec);
  EXPECT_EQ(only<StartFetch>(r).url, "https://storage.wavoip.com/" + kId);
  EXPECT_TRUE(logged(r, "refused"));
}

TEST_F(FlowTest, ReadyBeforeTheCallEndedFetchesAndTheEndChangesNothing) {
  const FlowResult r = apply(record("READY"), kT0);
  EXPECT_EQ(rec.recording, RecordingState::fetching);
  EXPECT_EQ(rec.deadline_at, kT0 + 14400 * kSec);
  EXPECT_FALSE(has<CancelPoll>(r)) << "nothing was armed";
  const FlowResult end = apply(call("ENDED"), kT0 + 5 * kSec);
  EXPECT_EQ(rec.recording, RecordingState::fetching);
  EXPECT_EQ(rec.ended_at, kT0 + 5 * kSec);
  EXPECT_FALSE(has<SchedulePoll>(end));
  EXPECT_FALSE(has<StartFetch>(end));
}

TEST_F(FlowTest, DuplicateReadyDoesNotFetchTwice) {
  for (RecordingState s : {RecordingState::fetching, RecordingState::attaching, RecordingState::attached}) {
    rec = new_call_record(kId);
    in_state(s);
    const CallRecord before = rec;
    const FlowResult r = apply(record("READY"), kT0 + 100 * kSec);
    EXPECT_FALSE(has<StartFetch>(r)) << to_string(s);
    EXPECT_EQ(rec, before) << to_string(s);
  }
}

TEST_F(FlowTest, StatesOnlyMoveForward) {
  // A late RECORDING/MIXING/DISABLED/EMPTY after READY changes nothing, nor on final states.
  for (RecordingState s : {RecordingState::fetching, RecordingState::attaching, RecordingState::attached}) {
    for (const char* late : {"RECORDING", "MIXING", "DISABLED", "EMPTY_RECORDING"}) {
      rec = new_call_record(kId);
      in_state(s);
      const CallRecord before = rec;
      const FlowResult r = apply(record(late), kT0 + 100 * kSec);
      EXPECT_EQ(rec, before) << to_string(s) << " + " << late;
      EXPECT_TRUE(r.actions.empty()) << to_string(s) << " + " << late;
    }
  }
}

TEST_F(FlowTest, DisabledIsFinalWithAReason) {
  ended_call();
  const FlowResult r = apply(record("DISABLED"), kT0 + 5 * kSec);
  EXPECT_EQ(rec.recording, RecordingState::disabled);
  EXPECT_TRUE(has<CancelPoll>(r));
  EXPECT_FALSE(rec.next_attempt_at);
  EXPECT_EQ(only<SetRecordingStatus>(r).reason, "Recording is disabled for this WaVoIP device");
  for (const char* late : {"READY", "RECORDING", "MIXING", "EMPTY_RECORDING"}) {
    const CallRecord before = rec;
    EXPECT_FALSE(has<StartFetch>(apply(record(late), kT0 + 10 * kSec))) << late;
    EXPECT_EQ(rec, before) << late;
  }
  EXPECT_FALSE(has<StartFetch>(apply(ManualRetry{}, kT0 + 20 * kSec)));
  EXPECT_FALSE(has<StartFetch>(apply(PollDue{}, kT0 + 3600 * kSec)));
  EXPECT_TRUE(is_final(rec.recording));
}

TEST_F(FlowTest, EmptyRecordingIsFinalWithAReason) {
  apply(record("EMPTY_RECORDING"), kT0);
  EXPECT_EQ(rec.recording, RecordingState::empty);
  EXPECT_FALSE(rec.next_attempt_at);
  EXPECT_EQ(rec.reason, "Call too short: WaVoIP made no recording");
  apply(record("READY"), kT0 + kSec);
  EXPECT_EQ(rec.recording, RecordingState::empty);
  apply(call("ENDED"), kT0 + 2 * kSec);
  EXPECT_EQ(rec.recording, RecordingState::empty);
  EXPECT_FALSE(rec.next_attempt_at) << "no poll for a call known to have no recording";
}

TEST_F(FlowTest, UnknownRecordStatusIsLoggedAndIgnored) {
  ended_call();
  const CallRecord before = rec;
  const FlowResult r = apply(record("PAUSED"), kT0 + kSec);
  EXPECT_EQ(rec, before);
  EXPECT_TRUE(logged(r, "PAUSED"));
}

// ---- polling and downloads ----

TEST_F(FlowTest, DuePollStartsTheDownloadFromTheBuiltUrl) {
  ended_call();
  EXPECT_TRUE(apply(PollDue{}, kT0 + 59 * kSec).actions.empty()) << "a timer that fires early does nothing";
  const FlowResult r = apply(PollDue{}, kT0 + 60 * kSec);
  EXPECT_EQ(rec.recording, RecordingState::fetching);
  EXPECT_EQ(only<StartFetch>(r).url, "https://storage.wavoip.com/" + kId);
  EXPECT_FALSE(has<CancelPoll>(r)) << "the poll that fired is consumed, not cancelled";
  EXPECT_FALSE(rec.next_attempt_at);
}

TEST_F(FlowTest, CallIdIsPercentEncodedInTheBuiltUrl) {
  rec = new_call_record("abc:1");
  CallEvent ev = call("ENDED");
  ev.call_id = "abc:1";
  apply(ev, kT0);
  EXPECT_EQ(only<StartFetch>(apply(PollDue{}, kT0 + 60 * kSec)).url, "https://storage.wavoip.com/abc%3A1");
}

TEST_F(FlowTest, NotReadySchedulesTheNextPollByBackoff) {
  ended_call();
  apply(PollDue{}, kT0 + 60 * kSec);
  const FlowResult r = apply(not_ready(404), kT0 + 61 * kSec);
  EXPECT_EQ(rec.recording, RecordingState::waiting);
  EXPECT_EQ(rec.attempt, 1u);
  EXPECT_EQ(rec.last_result, "HTTP 404");
  EXPECT_EQ(only<SchedulePoll>(r).at, kT0 + 91 * kSec);
  EXPECT_EQ(only<SetRecordingStatus>(r).reason, "Waiting for WaVoIP to finish the recording");
  EXPECT_EQ(only<SetRecordingStatus>(r).detail, "HTTP 404");
}

// The reason and its technical detail travel apart: a new answer with the same reason is still a
// visible change, and a status that names no answer clears the detail.
TEST_F(FlowTest, TheDetailIsAFieldOfItsOwn) {
  ended_call();
  apply(PollDue{}, kT0 + 60 * kSec);
  apply(not_ready(404), kT0 + 61 * kSec);
  const TimeMs due = *rec.next_attempt_at;
  apply(PollDue{}, due);
  const FlowResult r = apply(not_ready(403), due);
  EXPECT_EQ(only<SetRecordingStatus>(r).reason, "Waiting for WaVoIP to finish the recording");
  EXPECT_EQ(only<SetRecordingStatus>(r).detail, "HTTP 403");
  const FlowResult mixing = apply(record("MIXING"), kT0 + 200 * kSec);
  EXPECT_EQ(only<SetRecordingStatus>(mixing).reason, "WaVoIP is processing the recording");
  EXPECT_EQ(only<SetRecordingStatus>(mixing).detail, "");
  EXPECT_EQ(rec.reason_detail, "");
}

TEST_F(FlowTest, TransientErrorRetriesWithBackoff) {
  ended_call();
  apply(PollDue{}, kT0 + 60 * kSec);
  const FlowResult r =
      apply(FetchOutcome{FetchKind::transient_error, 0, "connection timed out", "", "", 0}, kT0 + 70 * kSec);
  EXPECT_EQ(rec.recording, RecordingState::waiting);
  EXPECT_EQ(only<SchedulePoll>(r).at, kT0 + 100 * kSec);
  EXPECT_EQ(rec.reason, "Download failed, will retry");
  EXPECT_EQ(rec.reason_detail, "connection timed out");
}

TEST_F(FlowTest, NoRecordingAfterFourHoursFailsWithTheReason) {
  ended_call();
  std::vector<TimeMs> fetch_times;
  for (int guard = 0; rec.recording == RecordingState::waiting && guard < 100; ++guard) {
    const TimeMs due = *rec.next_attempt_at;
    fetch_times.push_back((due - kT0) / kSec);
    ASSERT_TRUE(has<StartFetch>(apply(PollDue{}, due)));
    apply(not_ready(404), due);
  }
  EXPECT_EQ(fetch_times,
            (std::vector<TimeMs>{60, 90, 150, 270, 510, 990, 1950, 3750, 5550, 7350, 9150, 10950, 12750, 14400}));
  EXPECT_EQ(rec.recording, RecordingState::failed);
  EXPECT_FALSE(rec.next_attempt_at);
  EXPECT_EQ(rec.reason, "No recording after 4 h 0 min (14 attempts)");
  EXPECT_EQ(rec.reason_detail, "HTTP 404");
}

TEST_F(FlowTest, GiveUpReasonUsesTheConfiguredWindow) {
  config.poll.first_delay_s = 10;
  config.poll.deadline_s = 10;
  ended_call();
  apply(PollDue{}, kT0 + 10 * kSec);
  const FlowResult r = apply(FetchOutcome{FetchKind::transient_error, 503, "", "", "", 0}, kT0 + 11 * kSec);
  EXPECT_EQ(only<SetRecordingStatus>(r).reason, "No recording after 10 s (1 attempt)");
  EXPECT_EQ(only<SetRecordingStatus>(r).detail, "HTTP 503");
  EXPECT_TRUE(logged(r, "recording failed for call " + kId));
}

TEST_F(FlowTest, PermanentErrorFailsAtOnce) {
  ended_call();
  apply(PollDue{}, kT0 + 60 * kSec);
  const FlowResult r = apply(FetchOutcome{FetchKind::permanent_error, 410, "", "", "", 0}, kT0 + 61 * kSec);
  EXPECT_EQ(rec.recording, RecordingState::failed);
  EXPECT_FALSE(has<SchedulePoll>(r));
  EXPECT_EQ(rec.reason, "WaVoIP no longer has this recording");
  EXPECT_EQ(rec.reason_detail, "HTTP 410");
}

TEST_F(FlowTest, ReadyAfterFailedReopensWithAFreshWindow) {
  ended_call();
  apply(PollDue{}, kT0 + 60 * kSec);
  apply(FetchOutcome{FetchKind::permanent_error, 410, "", "", "", 0}, kT0 + 61 * kSec);
  const TimeMs later = kT0 + kSec * 5 * 3600;
  const FlowResult r = apply(record("READY"), later);
  EXPECT_EQ(rec.recording, RecordingState::fetching);
  EXPECT_TRUE(has<StartFetch>(r));
  EXPECT_EQ(rec.attempt, 0u);
  EXPECT_EQ(rec.deadline_at, later + 14400 * kSec);
  // A not-ready answer now polls again instead of failing on the old deadline.
  apply(not_ready(), later + kSec);
  EXPECT_EQ(rec.recording, RecordingState::waiting);
}

TEST_F(FlowTest, LateMixingDoesNotReopenFailed) {
  ended_call();
  apply(PollDue{}, kT0 + 60 * kSec);
  apply(FetchOutcome{FetchKind::permanent_error, 400, "", "", "", 0}, kT0 + 61 * kSec);
  const CallRecord before = rec;
  EXPECT_TRUE(apply(record("MIXING"), kT0 + 62 * kSec).actions.empty());
  EXPECT_EQ(rec, before);
}

TEST_F(FlowTest, DisabledAfterFailedGivesTheBetterReason) {
  ended_call();
  apply(PollDue{}, kT0 + 60 * kSec);
  apply(FetchOutcome{FetchKind::permanent_error, 410, "", "", "", 0}, kT0 + 61 * kSec);
  apply(record("DISABLED"), kT0 + 62 * kSec);
  EXPECT_EQ(rec.recording, RecordingState::disabled);
}

TEST_F(FlowTest, ManualRetryReopensFailed) {
  ended_call();
  apply(PollDue{}, kT0 + 60 * kSec);
  apply(FetchOutcome{FetchKind::permanent_error, 410, "", "", "", 0}, kT0 + 61 * kSec);
  const FlowResult r = apply(ManualRetry{}, kT0 + 100 * kSec);
  EXPECT_EQ(rec.recording, RecordingState::fetching);
  EXPECT_TRUE(has<StartFetch>(r));
  EXPECT_EQ(rec.deadline_at, kT0 + 100 * kSec + 14400 * kSec);
}

TEST_F(FlowTest, ManualRetryWhileWaitingFetchesNow) {
  ended_call();
  const FlowResult r = apply(ManualRetry{}, kT0 + 5 * kSec);
  EXPECT_EQ(rec.recording, RecordingState::fetching);
  EXPECT_TRUE(has<CancelPoll>(r));
  EXPECT_TRUE(has<StartFetch>(r));
}

TEST_F(FlowTest, ManualRetryDoesNothingOnceAttached) {
  in_state(RecordingState::attached);
  const CallRecord before = rec;
  const FlowResult r = apply(ManualRetry{}, kT0 + 100 * kSec);
  EXPECT_FALSE(has<StartFetch>(r));
  EXPECT_EQ(rec, before);
}

TEST_F(FlowTest, ReadyFileIsAttachedAndTheSeedLineLogged) {
  in_state(RecordingState::fetching);
  const FlowResult r = apply(ready_file(), kT0 + 11 * kSec);
  EXPECT_EQ(rec.recording, RecordingState::attaching);
  const Attach a = only<Attach>(r);
  EXPECT_EQ(a.call_id, kId);
  EXPECT_EQ(a.file_path, "/data/rec/" + kId + ".mp3");
  EXPECT_EQ(a.content_type, "audio/mpeg");
  EXPECT_EQ(a.bytes, 48000u);
  const FlowResult done = apply(AttachOutcome{true, "att-1", ""}, kT0 + 12 * kSec);
  EXPECT_EQ(rec.recording, RecordingState::attached);
  EXPECT_EQ(only<SetRecordingStatus>(done).status, RecordingState::attached);
  EXPECT_TRUE(logged(done, "[WaVoIP Recording Webhook] \u2705 Recording attached successfully"));
  EXPECT_TRUE(is_final(rec.recording));
}

TEST_F(FlowTest, SecondAttachOutcomeIsIgnored) {
  in_state(RecordingState::attached);
  const CallRecord before = rec;
  const FlowResult r = apply(AttachOutcome{true, "att-2", ""}, kT0 + 20 * kSec);
  EXPECT_FALSE(has<SetRecordingStatus>(r));
  EXPECT_EQ(rec, before);
}

TEST_F(FlowTest, FailedAttachRetriesLater) {
  in_state(RecordingState::attaching);
  const FlowResult r = apply(AttachOutcome{false, "", "host busy"}, kT0 + 13 * kSec);
  EXPECT_EQ(rec.recording, RecordingState::waiting);
  EXPECT_TRUE(has<SchedulePoll>(r));
  EXPECT_EQ(rec.last_result, "attach failed: host busy");
}

TEST_F(FlowTest, FetchOutcomeOutsideFetchingIsIgnored) {
  ended_call();
  const CallRecord before = rec;
  const FlowResult r = apply(ready_file(), kT0 + kSec);
  EXPECT_EQ(rec, before);
  EXPECT_FALSE(has<Attach>(r));
  EXPECT_TRUE(logged(r, "ignoring a download result"));
}

TEST_F(FlowTest, ResumeRepeatsOnlyTheWorkInFlight) {
  in_state(RecordingState::fetching);
  CallRecord before = rec;
  FlowResult r = apply(Resume{}, kT0 + 3600 * kSec);
  EXPECT_EQ(only<StartFetch>(r).url, "https://storage.wavoip.com/" + kId);
  EXPECT_EQ(rec, before);

  rec = new_call_record(kId);
  in_state(RecordingState::attaching);
  r = apply(Resume{}, kT0 + 3600 * kSec);
  EXPECT_EQ(only<Attach>(r).file_path, "/data/rec/" + kId + ".mp3");

  rec = new_call_record(kId);
  in_state(RecordingState::waiting);
  EXPECT_TRUE(apply(Resume{}, kT0 + 3600 * kSec).actions.empty());
}

TEST_F(FlowTest, ResumeWithoutTheFileDownloadsAgain) {
  in_state(RecordingState::attaching);
  FlowResult r = apply(Resume{false}, kT0 + 3600 * kSec);
  EXPECT_EQ(only<StartFetch>(r).url, "https://storage.wavoip.com/" + kId);
  EXPECT_EQ(rec.recording, RecordingState::fetching);
  EXPECT_EQ(rec.recording_file, "");
  EXPECT_TRUE(logged(r, "downloading again"));

  rec = new_call_record(kId);
  in_state(RecordingState::fetching);
  EXPECT_EQ(only<StartFetch>(apply(Resume{false}, kT0 + 3600 * kSec)).url, "https://storage.wavoip.com/" + kId)
      << "a download needs no file";
}

TEST(FlowNames, StatesRoundTripThroughText) {
  for (RecordingState s :
       {RecordingState::none, RecordingState::waiting, RecordingState::fetching, RecordingState::attaching,
        RecordingState::attached, RecordingState::empty, RecordingState::disabled, RecordingState::failed}) {
    EXPECT_EQ(recording_state_from_text(to_string(s)), s);
  }
  EXPECT_FALSE(recording_state_from_text("done"));
}

TEST(FlowNames, SpansReadLikeAnAgentWouldSayThem) {
  EXPECT_EQ(format_span(14400), "4 h 0 min");
  EXPECT_EQ(format_span(5400), "1 h 30 min");
  EXPECT_EQ(format_span(300), "5 min");
  EXPECT_EQ(format_span(45), "45 s");
}

}  // namespace
}  // namespace wavoip
