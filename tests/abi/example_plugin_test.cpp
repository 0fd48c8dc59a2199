// example_plugin_test.cpp - the same example plugin works in every host this build has.
//
// Each test starts a real host process with plugin_api/examples' hdp_example_plugin.so and drives
// it over real HTTP: routes, a one-shot timer answering a deferred request, a periodic timer, a
// watched pipe, messages + attachments, and the shutdown order. Host-specific checks (the C
// host's body limit, --run-ms, missing extensions) are at the end.
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "hosts.hpp"
#include "test_paths.h"

namespace hdp::test {
namespace {

using namespace std::chrono_literals;

std::string HostName(const testing::TestParamInfo<HostKind>& info) {
  return info.param.name;
}

class ExamplePluginTest : public testing::TestWithParam<HostKind> {
 protected:
  void StartHost(const std::string& plugin = HDP_TEST_EXAMPLE_PLUGIN, const std::vector<std::string>& extra_args = {}) {
    host_ = std::make_unique<HostProcess>(
        HostOptionsFor(GetParam(), dir_.path(), std::vector<std::string>{plugin}, extra_args));
    ASSERT_TRUE(host_->wait_until_serving()) << host_->log();
  }

  RawResponse Get(const std::string& target) { return Http(host_->port(), "GET", target); }
  RawResponse Post(const std::string& target, std::string_view body = {}) {
    return Http(host_->port(), "POST", target, body);
  }

  // Polls GET /example/stats until `name` satisfies `done`; returns the last value seen.
  long long WaitForStat(const std::string& name, const std::function<bool(long long)>& done,
                        std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    long long value = -1;
    do {
      auto stats = Get("/example/stats");
      if (stats.status == 200) {
        value = JsonNumber(stats.body, name).value_or(-1);
        if (done(value)) {
          break;
        }
      }
      std::this_thread::sleep_for(10ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return value;
  }

  TempDir dir_;
  std::unique_ptr<HostProcess> host_;
};

TEST_P(ExamplePluginTest, HelloAnswersText) {
  StartHost();
  auto response = Get("/example/hello");
  EXPECT_EQ(response.status, 200) << response.error;
  EXPECT_EQ(response.body, "hello from example");
  EXPECT_EQ(response.header("Content-Type").value_or("").rfind("text/plain", 0), 0u);
}

TEST_P(ExamplePluginTest, EchoReturnsTheBodyByteForByte) {
  StartHost();
  std::string body;
  for (int i = 0; i < 1024; ++i) {
    body.push_back(static_cast<char>(i % 256));  // NULs and high bytes included
  }
  auto response = Post("/example/echo", body);
  EXPECT_EQ(response.status, 200) << response.error;
  EXPECT_EQ(response.body, body);
}

TEST_P(ExamplePluginTest, TickAnswersWhenTheOneShotTimerFires) {
  StartHost();
  const auto started = std::chrono::steady_clock::now();
  auto response = Post("/example/tick?ms=150");
  const auto elapsed = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(response.status, 200) << response.error << response.body;
  auto fired_after_ms = JsonNumber(response.body, "fired_after_ms");
  ASSERT_TRUE(fired_after_ms) << response.body;
  EXPECT_GE(*fired_after_ms, 150);  // measured on the host's monotonic clock
  EXPECT_LT(*fired_after_ms, 5000);
  EXPECT_GE(elapsed, 150ms);
}

TEST_P(ExamplePluginTest, TickRejectsAMissingDelay) {
  StartHost();
  EXPECT_EQ(Post("/example/tick").status, 400);
  EXPECT_EQ(Post("/example/tick?ms=abc").status, 400);
}

TEST_P(ExamplePluginTest, PeriodicTimerKeepsTicking) {
  StartHost();
  EXPECT_GE(WaitForStat("periodic_ticks", [](long long ticks) { return ticks >= 3; }), 3);
}

TEST_P(ExamplePluginTest, PipeBytesReachTheFdCallback) {
  StartHost();
  auto response = Post("/example/pipe", "0123456789");
  ASSERT_EQ(response.status, 200) << response.error << response.body;
  EXPECT_EQ(response.body, "wrote 10 bytes");
  EXPECT_EQ(WaitForStat("pipe_bytes_read", [](long long n) { return n >= 10; }), 10);
  Post("/example/pipe", "abc");
  EXPECT_EQ(WaitForStat("pipe_bytes_read", [](long long n) { return n >= 13; }), 13);
}

TEST_P(ExamplePluginTest, AttachStoresTheFileOnceAndIsIdempotent) {
  StartHost();
  auto first = Post("/example/attach", "call-42");
  ASSERT_EQ(first.status, 200) << first.error << first.body;
  EXPECT_EQ(JsonNumber(first.body, "status"), 0);
  EXPECT_EQ(JsonNumber(first.body, "already_attached"), 0);
  auto attachment_id = JsonNumber(first.body, "attachment_id");
  auto message_id = JsonNumber(first.body, "message_id");
  ASSERT_TRUE(attachment_id && *attachment_id > 0) << first.body;
  ASSERT_TRUE(message_id && *message_id > 0) << first.body;

  auto again = Post("/example/attach", "call-42");
  ASSERT_EQ(again.status, 200) << again.error << again.body;
  EXPECT_EQ(JsonNumber(again.body, "already_attached"), 1);
  EXPECT_EQ(JsonNumber(again.body, "attachment_id"), attachment_id);
  EXPECT_EQ(JsonNumber(again.body, "message_id"), message_id);
  EXPECT_NE(JsonNumber(again.body, "job_id"), JsonNumber(first.body, "job_id"));

  auto other = Post("/example/attach", "call-43");
  ASSERT_EQ(other.status, 200) << other.error << other.body;
  EXPECT_NE(JsonNumber(other.body, "message_id"), message_id);
  EXPECT_NE(JsonNumber(other.body, "attachment_id"), attachment_id);

  // The plugin deleted its own copy once each job completed.
  const auto plugin_dir = host_->data_dir() / "plugins" / "org.hdp.example";
  ASSERT_TRUE(std::filesystem::is_directory(plugin_dir));
  for (const auto& entry : std::filesystem::directory_iterator(plugin_dir)) {
    ADD_FAILURE() << "left over: " << entry.path();
  }
}

TEST_P(ExamplePluginTest, WritesMessagesThroughMessages3WhenOffered) {
  StartHost();
  auto first = Post("/example/attach", "call-v3");
  ASSERT_EQ(first.status, 200) << first.error << first.body;
  EXPECT_GT(JsonNumber(first.body, "message_id").value_or(0), 0);
  // The status with its detail apart is written after the attachment: the host takes it (no
  // warning from the plugin's completion callback).
  std::this_thread::sleep_for(200ms);
  const std::string log = host_->log();
  EXPECT_EQ(lines_containing(log, "not written").size(), 0u) << log;
  EXPECT_EQ(lines_containing(log, "set_recording_status failed").size(), 0u) << log;
  EXPECT_EQ(lines_containing(log, "writes messages through hdp.messages/3").size(), 1u) << log;
  EXPECT_EQ(lines_containing(log, "writes messages through hdp.messages/2").size(), 0u) << log;
}

// A 1.2 host: no /3, the example falls back to /2.
TEST_P(ExamplePluginTest, FallsBackToMessages2InAHostWithoutMessages3) {
  const std::string flag = GetParam().name == "c_host" ? "--disable-extension" : "--test-disable-extension";
  StartHost(HDP_TEST_EXAMPLE_PLUGIN, {flag, "hdp.messages/3"});
  auto first = Post("/example/attach", "call-v2");
  ASSERT_EQ(first.status, 200) << first.error << first.body;
  EXPECT_GT(JsonNumber(first.body, "message_id").value_or(0), 0);
  const std::string log = host_->log();
  EXPECT_EQ(lines_containing(log, "writes messages through hdp.messages/2").size(), 1u) << log;
  EXPECT_EQ(lines_containing(log, "writes messages through hdp.messages/3").size(), 0u) << log;
}

// A 1.0 or 1.1 host: neither /2 nor /3.
TEST_P(ExamplePluginTest, FallsBackToMessages1InAHostWithoutMessages2) {
  const std::string flag = GetParam().name == "c_host" ? "--disable-extension" : "--test-disable-extension";
  StartHost(HDP_TEST_EXAMPLE_PLUGIN, {flag, "hdp.messages/2", flag, "hdp.messages/3"});
  auto first = Post("/example/attach", "call-v1");
  ASSERT_EQ(first.status, 200) << first.error << first.body;
  EXPECT_EQ(JsonNumber(first.body, "already_attached"), 0);
  auto again = Post("/example/attach", "call-v1");
  ASSERT_EQ(again.status, 200) << again.error << again.body;
  EXPECT_EQ(JsonNumber(again.body, "already_attached"), 1);
  EXPECT_EQ(JsonNumber(again.body, "message_id"), JsonNumber(first.body, "message_id"));
  const std::string log = host_->log();
  EXPECT_EQ(lines_containing(log, "writes messages through hdp.messages/1").size(), 1u) << log;
  EXPECT_EQ(lines_containing(log, "writes messages through hdp.messages/2").size(), 0u) << log;
  EXPECT_EQ(lines_containing(log, "writes messages through hdp.messages/3").size(), 0u) << log;
}

TEST_P(ExamplePluginTest, UnknownPathIsNotFound) {
  StartHost();
  EXPECT_EQ(Get("/example/nope").status, 404);
}

TEST_P(ExamplePluginTest, ShutdownFailsPendingWorkBeforeStopThenDestroys) {
  StartHost();
  const int port = host_->port();
  auto pending =
      std::async(std::launch::async, [port] { return Http(port, "POST", "/example/tick?ms=15000", {}, 20s); });
  ASSERT_EQ(WaitForStat("pending_ticks", [](long long n) { return n == 1; }), 1);

  EXPECT_EQ(host_->terminate(), 0);
  auto response = pending.get();
  if (GetParam().name == "c_host") {
    EXPECT_EQ(response.status, 503) << response.error;
  } else {
    EXPECT_TRUE(response.status >= 500 || response.status == 0) << response.status;
  }

  // The host failed the deferred request (on_cancel) before stop, so stop found nothing left.
  const std::string log = host_->log();
  const auto cancelled = log.find("cancelled by the host");
  const auto stop = log.find("stop: ");
  const auto destroy = log.find("destroy");
  ASSERT_NE(cancelled, std::string::npos) << log;
  ASSERT_NE(stop, std::string::npos) << log;
  ASSERT_NE(destroy, std::string::npos) << log;
  EXPECT_LT(cancelled, stop) << log;
  EXPECT_LT(stop, destroy) << log;
  EXPECT_NE(log.find("0 ticks and 0 attachment jobs left over"), std::string::npos) << log;
}

INSTANTIATE_TEST_SUITE_P(Hosts, ExamplePluginTest, testing::ValuesIn(AvailableHosts()), HostName);

// ---- the C host's own contract checks
// ------------------------------------------------------------

class CHostTest : public testing::Test {
 protected:
  HostKind c_host_{"c_host", HDP_TEST_C_HOST};
  TempDir dir_;
};

TEST_F(CHostTest, BodyOverTheRouteLimitIs413) {
  HostProcess host(HostOptionsFor(c_host_, dir_.path(), {HDP_TEST_EXAMPLE_PLUGIN}));
  ASSERT_TRUE(host.wait_until_serving()) << host.log();
  auto response = Http(host.port(), "POST", "/example/echo", std::string(100 * 1024, 'x'));
  EXPECT_EQ(response.status, 413) << response.error;
  EXPECT_EQ(Http(host.port(), "POST", "/example/echo", std::string(60 * 1024, 'x')).status, 200);
}

TEST_F(CHostTest, AttachmentFileIsCopiedIntoTheHostsStore) {
  HostProcess host(HostOptionsFor(c_host_, dir_.path(), {HDP_TEST_EXAMPLE_PLUGIN}));
  ASSERT_TRUE(host.wait_until_serving()) << host.log();
  auto response = Http(host.port(), "POST", "/example/attach", "call-7");
  ASSERT_EQ(response.status, 200) << response.error << response.body;
  auto id = JsonNumber(response.body, "attachment_id");
  ASSERT_TRUE(id);
  std::ifstream stored(host.data_dir() / "attachments" / (std::to_string(*id) + "-example-attachment.txt"));
  std::stringstream content;
  content << stored.rdbuf();
  EXPECT_EQ(content.str(), "example attachment for call-7\n");
}

TEST_F(CHostTest, RunMsExitsCleanlyInTheAbiOrder) {
  HostProcess host(HostOptionsFor(c_host_, dir_.path(), {HDP_TEST_EXAMPLE_PLUGIN}, {"--run-ms", "150"}));
  ASSERT_TRUE(host.wait_until_serving()) << host.log();
  EXPECT_EQ(host.wait_exit(10s), 0);
  const std::string log = host.log();
  const auto order = {log.find("created"), log.find("init:"), log.find("start:"), log.find("stop:"),
                      log.find("destroy")};
  size_t previous = 0;
  for (size_t position : order) {
    ASSERT_NE(position, std::string::npos) << log;
    EXPECT_GE(position, previous) << log;
    previous = position;
  }
}

TEST_F(CHostTest, MissingAttachmentsExtensionAnswers501) {
  HostProcess host(
      HostOptionsFor(c_host_, dir_.path(), {HDP_TEST_EXAMPLE_PLUGIN}, {"--disable-extension", "hdp.attachments/1"}));
  ASSERT_TRUE(host.wait_until_serving()) << host.log();
  EXPECT_EQ(Http(host.port(), "POST", "/example/attach", "call-1").status, 501);
  EXPECT_EQ(Http(host.port(), "GET", "/example/hello").status, 200);
  EXPECT_EQ(lines_containing(host.log(), "host does not offer hdp.attachments/1").size(), 1u);
}

TEST_F(CHostTest, PluginRunsInAHostOfferingNoExtension) {
  HostProcess host(
      HostOptionsFor(c_host_, dir_.path(), {HDP_TEST_EXAMPLE_PLUGIN},
                     {"--run-ms", "100", "--disable-extension", "hdp.http/1", "--disable-extension", "hdp.timers/1",
                      "--disable-extension", "hdp.posix-fd/1", "--disable-extension", "hdp.messages/1",
                      "--disable-extension", "hdp.messages/2", "--disable-extension", "hdp.attachments/1"}));
  EXPECT_EQ(host.wait_exit(10s), 0) << host.log();
  const std::string log = host.log();
  EXPECT_NE(log.find("start: 0 routes, periodic timer off, pipe off"), std::string::npos) << log;
  EXPECT_NE(log.find("destroy"), std::string::npos) << log;
}

}  // namespace
}  // namespace hdp::test
