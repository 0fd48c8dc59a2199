// The plugin's side of hdp.metrics/1 (plugin/src/metrics.*) against the in-process fake host: with the
// extension every event lands on the right family and labels, the READY-to-attached time comes
// from the host's monotonic clock; without it (or with a table too small to use) nothing is
// called and nothing breaks.
#include "metrics.hpp"

#include "fake_host.hpp"  // tests/support

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace {

using testsupport::MetricUpdate;

// The in-process host (tests/support) with hdp.metrics/1 and nothing else; a test may take the
// extension away or shrink its table.
struct FakeHost : testsupport::FakeHost {
  FakeHost() {
    offer_core_extensions = false;
    offer_metrics = true;
    wall_clock_us = 0;
  }
};

TEST(PluginMetrics, RegistersEveryFamilyWithItsTypeAndLabels) {
  FakeHost fake;
  wavoip::HostApi api(fake.host());
  wavoip::PluginMetrics metrics(api);
  EXPECT_TRUE(metrics.enabled());
  const std::vector<std::string> expected = {
      "wavoip_webhook_deliveries_total type=1 labels=type,status buckets=0",
      "wavoip_fetch_attempts_total type=1 labels= buckets=0",
      "wavoip_fetch_outcomes_total type=1 labels=kind buckets=0",
      "wavoip_attachments_total type=1 labels=result buckets=0",
      "wavoip_recordings_failed_total type=1 labels= buckets=0",
      "wavoip_pending_polls type=2 labels= buckets=0",
      "wavoip_ready_to_attached_seconds type=3 labels= buckets=11",
      "wavoip_webhook_commit_batch_size type=3 labels= buckets=9",
  };
  EXPECT_EQ(fake.registered, expected);
  EXPECT_TRUE(fake.log.empty());
}

TEST(PluginMetrics, EventsLandOnTheirFamilyAndLabels) {
  FakeHost fake;
  wavoip::HostApi api(fake.host());
  wavoip::PluginMetrics metrics(api);
  metrics.delivery("RECORD", 202);
  metrics.delivery("SOMETHING_NEW", 202);  // sender-chosen types fold into "other"
  metrics.delivery("", 401);               // refused before parsing
  metrics.fetch_started();
  metrics.fetch_outcome("not_ready");
  metrics.attachment(true);
  metrics.attachment(false);
  metrics.recording_failed("c9");
  metrics.pending_polls(3);
  ASSERT_EQ(fake.updates.size(), 9u);
  auto is = [&](size_t i, const char* call, const char* family, std::vector<std::string> labels, double value) {
    const MetricUpdate& u = fake.updates[i];
    EXPECT_EQ(u.call, call) << i;
    EXPECT_EQ(u.family, family) << i;
    EXPECT_EQ(u.labels, labels) << i;
    EXPECT_EQ(u.value, value) << i;
  };
  is(0, "counter_add", "wavoip_webhook_deliveries_total", {"RECORD", "202"}, 1);
  is(1, "counter_add", "wavoip_webhook_deliveries_total", {"other", "202"}, 1);
  is(2, "counter_add", "wavoip_webhook_deliveries_total", {"none", "401"}, 1);
  is(3, "counter_add", "wavoip_fetch_attempts_total", {}, 1);
  is(4, "counter_add", "wavoip_fetch_outcomes_total", {"not_ready"}, 1);
  is(5, "counter_add", "wavoip_attachments_total", {"ok"}, 1);
  is(6, "counter_add", "wavoip_attachments_total", {"failed"}, 1);
  is(7, "counter_add", "wavoip_recordings_failed_total", {}, 1);
  is(8, "gauge_set", "wavoip_pending_polls", {}, 3);
}

TEST(PluginMetrics, ReadyToAttachedIsTimedOnTheMonotonicClockFromTheFirstReady) {
  FakeHost fake;
  wavoip::HostApi api(fake.host());
  wavoip::PluginMetrics metrics(api);
  fake.monotonic_us = 10'000'000;
  metrics.ready_received("c1");
  fake.monotonic_us = 12'000'000;
  metrics.ready_received("c1");  // a duplicate READY does not restart the clock
  EXPECT_EQ(metrics.timed_calls(), 1u);
  fake.monotonic_us = 13'500'000;
  metrics.attached("c1");
  metrics.attached("c1");  // observed once
  metrics.attached("never-ready");
  ASSERT_EQ(fake.updates.size(), 1u);
  EXPECT_EQ(fake.updates[0].call, "histogram_observe");
  EXPECT_EQ(fake.updates[0].family, "wavoip_ready_to_attached_seconds");
  EXPECT_DOUBLE_EQ(fake.updates[0].value, 3.5);
  EXPECT_EQ(metrics.timed_calls(), 0u);
}

TEST(PluginMetrics, AFailedCallIsForgottenAndTheNumberOfTimedCallsIsBounded) {
  FakeHost fake;
  wavoip::HostApi api(fake.host());
  wavoip::PluginMetrics metrics(api);
  metrics.ready_received("c1");
  metrics.recording_failed("c1");
  metrics.attached("c1");
  ASSERT_EQ(fake.updates.size(), 1u);  // only the failure counter
  EXPECT_EQ(fake.updates[0].family, "wavoip_recordings_failed_total");

  for (size_t i = 0; i < wavoip::PluginMetrics::kMaxTimedCalls + 5; ++i)
    metrics.ready_received("call" + std::to_string(i));
  EXPECT_EQ(metrics.timed_calls(), wavoip::PluginMetrics::kMaxTimedCalls);
}

TEST(PluginMetrics, AFamilyTheHostRefusesStaysEmptyAndTheOthersWork) {
  FakeHost fake;
  fake.refuse_name = "wavoip_attachments_total";
  wavoip::HostApi api(fake.host());
  wavoip::PluginMetrics metrics(api);
  ASSERT_EQ(fake.log.size(), 1u);
  EXPECT_NE(fake.log[0].find("wavoip_attachments_total"), std::string::npos);
  metrics.attachment(true);
  metrics.fetch_started();
  ASSERT_EQ(fake.updates.size(), 1u);
  EXPECT_EQ(fake.updates[0].family, "wavoip_fetch_attempts_total");
}

TEST(PluginMetrics, WithoutTheExtensionEverythingIsANoOp) {
  FakeHost fake;
  fake.offer_metrics = false;
  wavoip::HostApi api(fake.host());
  EXPECT_EQ(api.metrics(), nullptr);
  EXPECT_TRUE(api.missing_extensions().find(HDP_EXT_METRICS) == std::string::npos)
      << "metrics are optional: " << api.missing_extensions();
  wavoip::PluginMetrics metrics(api);
  EXPECT_FALSE(metrics.enabled());
  metrics.delivery("RECORD", 202);
  metrics.fetch_started();
  metrics.fetch_outcome("ready_file");
  metrics.attachment(true);
  metrics.recording_failed("c1");
  metrics.pending_polls(1);
  metrics.ready_received("c1");
  metrics.attached("c1");
  EXPECT_EQ(metrics.timed_calls(), 0u);
  EXPECT_TRUE(fake.registered.empty());
  EXPECT_TRUE(fake.updates.empty());
  EXPECT_TRUE(fake.log.empty());
}

TEST(PluginMetrics, ATableSmallerThanItsFirstVersionCountsAsAbsent) {
  FakeHost fake;
  fake.metrics.struct_size = HDP_HOST_METRICS_V1_SIZE - sizeof(void*);
  wavoip::HostApi api(fake.host());
  EXPECT_EQ(api.metrics(), nullptr);
  wavoip::PluginMetrics metrics(api);
  EXPECT_FALSE(metrics.enabled());
  metrics.fetch_started();
  EXPECT_TRUE(fake.registered.empty());
  EXPECT_TRUE(fake.updates.empty());
}

}  // namespace
