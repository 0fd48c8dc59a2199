// The real hdp-stub-host with the probe plugin, over real HTTP: plugin timers under the virtual
// clock fire at exact virtual times, in due order; cancel is idempotent and final.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace hdp::test {
namespace {

using Fire = std::pair<int64_t, int64_t>;  // timer id, at (us)

class ProbeTimers : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(host.started()) << host.log(); }

  int64_t arm(uint64_t delay_ms, uint64_t period_ms = 0, uint64_t cancel_self_after = 0) {
    const auto r = http.post(host.url("/probe/timer?delay_ms=" + std::to_string(delay_ms) +
                                      "&period_ms=" + std::to_string(period_ms) +
                                      "&cancel_self_after=" + std::to_string(cancel_self_after)));
    EXPECT_EQ(json_int(r.json(), "status"), 0);
    return json_int(r.json(), "id");
  }
  int64_t cancel(int64_t id) {
    return json_int(http.post(host.url("/probe/cancel?id=" + std::to_string(id))).json(), "status");
  }
  int64_t advance(uint64_t ms) {
    const auto r = http.post(host.url("/__test/clock/advance?ms=" + std::to_string(ms)));
    EXPECT_EQ(r.status, 200);
    return json_int(r.json(), "monotonic_ms");
  }
  std::vector<Fire> fired() {
    std::vector<Fire> out;
    const auto v = http.get(host.url("/probe/fired")).json();
    for (const auto& f : v.at("fired").as_array()) {
      out.emplace_back(f.at("id").as_int64(), f.at("at_us").as_int64());
    }
    return out;
  }

  HostProcess host{probe_host()};
  HttpClient http;
};

TEST_F(ProbeTimers, OneShotFiresExactlyAtItsVirtualTime) {
  const int64_t id = arm(1000);
  EXPECT_EQ(advance(999), 999);
  EXPECT_TRUE(fired().empty());
  EXPECT_EQ(advance(1), 1000);
  EXPECT_EQ(fired(), (std::vector<Fire>{{id, 1'000'000}}));
  EXPECT_EQ(json_int(http.get(host.url("/__test/clock")).json(), "monotonic_ms"), 1000);
}

TEST_F(ProbeTimers, TimeStandsStillWithoutAdvance) {
  arm(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_TRUE(fired().empty());
  EXPECT_EQ(json_int(http.get(host.url("/__test/clock")).json(), "monotonic_ms"), 0);
}

TEST_F(ProbeTimers, SeveralTimersFireInDueOrder) {
  const int64_t c = arm(300);
  const int64_t a = arm(100);
  const int64_t b = arm(200);
  advance(1000);
  EXPECT_EQ(fired(), (std::vector<Fire>{{a, 100'000}, {b, 200'000}, {c, 300'000}}));
}

TEST_F(ProbeTimers, PeriodicTimerFiresEveryPeriod) {
  const int64_t p = arm(100, 250);
  advance(1000);
  EXPECT_EQ(fired(), (std::vector<Fire>{{p, 100'000}, {p, 350'000}, {p, 600'000}, {p, 850'000}}));
  advance(250);
  EXPECT_EQ(fired().back(), (Fire{p, 1'100'000}));
}

TEST_F(ProbeTimers, CancelIsIdempotentAndStaleIdsAreNotFound) {
  const int64_t id = arm(500);
  EXPECT_EQ(cancel(id), 0);
  EXPECT_EQ(cancel(id), -10);      // HDP_ERR_NOT_FOUND, harmless
  EXPECT_EQ(cancel(424242), -10);  // never armed
  advance(1000);
  EXPECT_TRUE(fired().empty());
  const int64_t once = arm(10);
  advance(10);
  EXPECT_EQ(cancel(once), -10);  // a fired one-shot is stale
}

TEST_F(ProbeTimers, NoCallbackAfterCancellingAPeriodicTimer) {
  const int64_t p = arm(100, 100);
  advance(250);
  EXPECT_EQ(fired().size(), 2U);
  EXPECT_EQ(cancel(p), 0);
  advance(1000);
  EXPECT_EQ(fired().size(), 2U);
}

TEST_F(ProbeTimers, ATimerMayCancelItselfFromItsCallback) {
  const int64_t p = arm(100, 100, /*cancel_self_after=*/3);
  advance(1000);
  EXPECT_EQ(fired(), (std::vector<Fire>{{p, 100'000}, {p, 200'000}, {p, 300'000}}));
  EXPECT_EQ(cancel(p), -10);
}

TEST(ProbeTimersVirtualWallClock, WallClockStartsWhereToldAndMovesWithAdvance) {
  HostProcess host(with_agent(probe_host({"--virtual-clock-start-ms", "1700000000000"})));
  ASSERT_TRUE(host.started()) << host.log();
  HttpClient http;
  ASSERT_EQ(sign_in(http, host).status, 200);
  EXPECT_EQ(json_int(http.get(host.url("/__test/clock")).json(), "wall_ms"), 1'700'000'000'000);
  EXPECT_EQ(json_int(http.post(host.url("/__test/clock/advance?ms=5")).json(), "wall_ms"), 1'700'000'000'005);
  // The helpdesk's timestamps come from the same clock.
  const int64_t id = json_int(http.post(host.url("/probe/message?key=t")).json(), "message_id");
  EXPECT_EQ(json_int(http.get(host.url("/api/messages/" + std::to_string(id))).json(), "created_at_ms"),
            1'700'000'000'005);
  EXPECT_EQ(http.post(host.url("/__test/clock/advance?ms=abc")).status, 400);
}

TEST(ProbeTimersRealClock, TestClockRoutesNeedTheVirtualClock) {
  HostProcess host(stub_host({"--plugin", probe_plugin_path()}));
  ASSERT_TRUE(host.started()) << host.log();
  HttpClient http;
  EXPECT_EQ(http.post(host.url("/__test/clock/advance?ms=5")).status, 404);
  // Real timers still fire.
  const auto r = http.post(host.url("/probe/timer?delay_ms=10"));
  EXPECT_EQ(json_int(r.json(), "status"), 0);
  EXPECT_TRUE(eventually([&] { return !http.get(host.url("/probe/fired")).json().at("fired").as_array().empty(); }));
}

}  // namespace
}  // namespace hdp::test
