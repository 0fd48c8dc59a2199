// The real hdp-stub-host's life: --help, --check, refusing bad plugins with one log line and
// status 2, configuration reaching the plugin, fd watches and main-thread callbacks, and a
// SIGTERM that shuts down in the ABI's order with work pending everywhere.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <ostream>
#include <sstream>
#include <string>

#include <boost/json/parse.hpp>

#include "test_support.hpp"

namespace hdp::test {
namespace {

using namespace std::chrono_literals;

// Position of the first stderr line containing needle (npos when absent).
size_t position(const std::string& log, const std::string& needle) {
  return log.find(needle);
}

HostOptions no_wait(std::vector<std::string> args) {
  HostOptions options = stub_host(std::move(args));
  options.wait_for_port = false;
  return options;
}

TEST(HostLifecycle, HelpExitsZero) {
  HostOptions options = no_wait({"--help"});
  options.add_defaults = false;
  HostProcess host(options);
  EXPECT_EQ(host.wait_exit(10s), 0);
  EXPECT_NE(host.stdout_text().find("--virtual-clock"), std::string::npos);
  EXPECT_NE(host.stdout_text().find("--port-file"), std::string::npos);
}

TEST(HostLifecycle, BadCommandLineExitsOne) {
  HostProcess host(no_wait({"--no-such-option"}));
  EXPECT_EQ(host.wait_exit(10s), 1);
  EXPECT_NE(host.log().find("unknown option"), std::string::npos);
}

TEST(HostLifecycle, CheckLoadsStartsStopsAndExits) {
  HostProcess host(no_wait({"--check", "--plugin", probe_plugin_path()}));
  EXPECT_EQ(host.wait_exit(20s), 0) << host.log();
  const std::string log = host.log();
  EXPECT_NE(position(log, "probe: start 0"), std::string::npos);
  EXPECT_LT(position(log, "probe: start 0"), position(log, "probe: stop"));
  EXPECT_LT(position(log, "probe: stop"), position(log, "probe: destroy"));
  EXPECT_LT(position(log, "probe: destroy"), position(log, "probe: deinit"));
  EXPECT_NE(position(log, "check passed: 1 plugin(s)"), std::string::npos);
  EXPECT_EQ(position(log, "listening on"), std::string::npos);
  // init may not register anything yet.
  EXPECT_NE(position(log, "probe: init register_timer=-20"), std::string::npos);
}

TEST(HostLifecycle, RefusesATextFileNamedSo) {
  TempDir dir;
  const std::string fake = (dir.path() / "x.so").string();
  std::ofstream(fake) << "not an ELF file\n";
  HostProcess host(no_wait({"--plugin", fake}));
  EXPECT_EQ(host.wait_exit(20s), 2);
  const auto lines = host.log_lines("refusing plugin");
  ASSERT_EQ(lines.size(), 1U) << host.log();
  EXPECT_NE(lines[0].find(fake), std::string::npos);
  EXPECT_NE(lines[0].find("not a loadable shared object"), std::string::npos);
  EXPECT_NE(lines[0].find(" ERROR [host] "), std::string::npos);
  EXPECT_EQ(host.log().find("listening on"), std::string::npos);
}

struct BadPluginCase {
  const char* variant;
  const char* reason;
};

void PrintTo(const BadPluginCase& c, std::ostream* out) {
  *out << c.variant;
}

class RefusedPlugin : public ::testing::TestWithParam<BadPluginCase> {};

TEST_P(RefusedPlugin, OneLogLineNamingFileAndReasonAndExitTwo) {
  const std::string path = bad_plugin_path(GetParam().variant);
  HostProcess host(no_wait({"--virtual-clock", "--plugin", path}));
  EXPECT_EQ(host.wait_exit(20s), 2) << host.log();
  const auto lines = host.log_lines("refusing plugin");
  ASSERT_EQ(lines.size(), 1U) << host.log();
  EXPECT_NE(lines[0].find(path), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(GetParam().reason), std::string::npos) << lines[0];
  EXPECT_EQ(host.log().find("listening on"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(BadPlugins, RefusedPlugin,
                         ::testing::Values(BadPluginCase{"no_symbol", "no hdp_plugin_entry_v1 symbol"},
                                           BadPluginCase{"other_major", "built against ABI 2.0"},
                                           BadPluginCase{"small_entry", "entry struct_size"},
                                           BadPluginCase{"null_id", "no plugin id"},
                                           BadPluginCase{"null_callback", "create_plugin is NULL"},
                                           BadPluginCase{"entry_init_false", "entry init refused"},
                                           BadPluginCase{"create_null", "create_plugin returned NULL"},
                                           BadPluginCase{"small_plugin", "plugin struct_size"},
                                           BadPluginCase{"init_fails", "plugin init failed: HDP_ERR_IO"},
                                           BadPluginCase{"start_fails", "plugin start failed: HDP_ERR_IO"}),
                         [](const ::testing::TestParamInfo<BadPluginCase>& info) {
                           return std::string(info.param.variant);
                         });

TEST(HostLifecycle, AFailedStartIsCleanedUpWithoutStop) {
  HostProcess host(no_wait({"--virtual-clock", "--plugin", bad_plugin_path("start_fails")}));
  EXPECT_EQ(host.wait_exit(20s), 2);
  const std::string log = host.log();
  EXPECT_EQ(position(log, "timer fired after a failed start"), std::string::npos);
  EXPECT_EQ(position(log, "bad: stop"), std::string::npos);
  EXPECT_LT(position(log, "bad: start"), position(log, "bad: destroy"));
  EXPECT_LT(position(log, "bad: destroy"), position(log, "bad: deinit"));
}

TEST(HostLifecycle, AnEntryInitRefusalGetsNoDeinit) {
  HostProcess host(no_wait({"--plugin", bad_plugin_path("entry_init_false")}));
  EXPECT_EQ(host.wait_exit(20s), 2);
  EXPECT_EQ(host.log().find("bad: deinit"), std::string::npos);
}

TEST(HostLifecycle, DuplicateIdIsRefusedAndTheFirstPluginShutsDown) {
  HostProcess host(no_wait({"--plugin", probe_plugin_path(), "--plugin", probe_plugin_path()}));
  EXPECT_EQ(host.wait_exit(20s), 2);
  const auto lines = host.log_lines("refusing plugin");
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_NE(lines[0].find("duplicate plugin id org.hdp.test.probe"), std::string::npos);
  EXPECT_NE(host.log().find("probe: destroy"), std::string::npos);
  EXPECT_NE(host.log().find("probe: deinit"), std::string::npos);
}

TEST(HostLifecycle, APluginFromANewerMinorWithLongerStructsLoads) {
  HostProcess host(no_wait({"--check", "--plugin", bad_plugin_path("newer_minor")}));
  EXPECT_EQ(host.wait_exit(20s), 0) << host.log();
  EXPECT_NE(host.log().find("bad: stop"), std::string::npos);
}

TEST(HostLifecycle, ConfigurationAndDataDirectoryReachThePlugin) {
  TempDir dir;
  const auto config = dir.path() / "host.json";
  std::ofstream(config) << R"({"plugins": [{"path": ")" << probe_plugin_path()
                        << R"(", "config": {"token": "abc"}}], "log_level": "debug"})";
  HostProcess host(stub_host({"--config", config.string()}));
  ASSERT_TRUE(host.started()) << host.log();
  HttpClient http;
  const auto info = http.get(host.url("/probe/info")).json();
  const std::string expected = R"({"token":"abc"})";
  std::string hex;
  for (const unsigned char c : expected) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", c);
    hex += b;
  }
  EXPECT_EQ(info.at("config_hex").as_string(), hex);
  const std::filesystem::path data_dir(std::string(info.at("data_dir").as_string()));
  EXPECT_TRUE(data_dir.is_absolute());
  EXPECT_TRUE(std::filesystem::is_directory(data_dir));
  EXPECT_EQ(data_dir.filename(), "org.hdp.test.probe");
  EXPECT_EQ(data_dir.parent_path().filename(), "plugins");
  const auto health = http.get(host.url("/healthz")).json();
  EXPECT_EQ(health.at("plugins").as_array()[0].at("id").as_string(), "org.hdp.test.probe");
  EXPECT_EQ(health.at("plugins").as_array()[0].at("version").as_string(), "1.0.0");
}

TEST(HostLifecycle, JsonLogLinesParse) {
  HostProcess host(probe_host({"--log-format", "json"}));
  ASSERT_TRUE(host.started());
  host.signal(SIGINT);
  EXPECT_EQ(host.wait_exit(20s), 0);
  std::istringstream in(host.log());
  size_t lines = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("probe: deinit", 0) == 0) continue;  // written by the plugin itself
    boost::json::error_code ec;
    const auto v = boost::json::parse(line, ec);
    ASSERT_FALSE(ec) << line;
    for (const char* key : {"ts", "level", "source", "msg"}) EXPECT_TRUE(v.as_object().contains(key)) << line;
    ++lines;
  }
  EXPECT_GT(lines, 3U);
  EXPECT_NE(host.log().find(R"("msg":"listening on http://127.0.0.1:)"), std::string::npos);
}

TEST(HostLifecycle, FdWatchIsLevelTriggeredOverTheLoop) {
  HostProcess host(probe_host());
  ASSERT_TRUE(host.started());
  HttpClient http;
  EXPECT_EQ(json_int(http.post(host.url("/probe/fd")).json(), "status"), 0);
  EXPECT_EQ(json_int(http.post(host.url("/probe/fd-write?n=5")).json(), "written"), 5);
  // One byte per callback: five callbacks although the pipe became readable once.
  EXPECT_TRUE(eventually([&] { return json_int(http.get(host.url("/probe/fd-reads")).json(), "reads") == 5; }));
  EXPECT_EQ(json_int(http.post(host.url("/probe/fd-close")).json(), "status"), 0);
}

TEST(HostLifecycle, MainThreadCallbackFromAPluginThread) {
  HostProcess host(probe_host());
  ASSERT_TRUE(host.started());
  HttpClient http;
  EXPECT_EQ(json_int(http.post(host.url("/probe/thread")).json(), "status"), 0);
  EXPECT_TRUE(eventually([&] { return json_int(http.get(host.url("/probe/thread")).json(), "callbacks") == 1; }));
}

TEST(HostLifecycle, SigtermWithWorkPendingShutsDownInAbiOrder) {
  // Attachment copies are held back so that a job is still pending at SIGTERM.
  HostProcess host(probe_host({"--test-attach-delay-ms", "60000"}));
  ASSERT_TRUE(host.started()) << host.log();
  HttpClient http;
  EXPECT_EQ(json_int(http.post(host.url("/probe/timer?delay_ms=100000")).json(), "status"), 0);
  EXPECT_EQ(json_int(http.post(host.url("/probe/timer?delay_ms=100&period_ms=100")).json(), "status"), 0);
  http.post(host.url("/__test/clock/advance?ms=250"));
  EXPECT_EQ(json_int(http.post(host.url("/probe/fd")).json(), "status"), 0);
  const int64_t message = json_int(http.post(host.url("/probe/message?key=call-1")).json(), "message_id");
  const auto attach =
      http.post(host.url("/probe/attach?message_id=" + std::to_string(message) + "&key=k&times=2"), "bytes").json();
  EXPECT_EQ(attach.at("jobs").as_array()[0].at("status").as_int64(), 0);
  auto deferred = std::async(std::launch::async, [url = host.url("/probe/defer")] {
    HttpClient client;
    return client.post(url, "", {}, 20s);
  });
  ASSERT_TRUE(
      eventually([&] { return json_ints(http.get(host.url("/probe/deferred")).json(), "pending").size() == 1; }));

  host.signal(SIGTERM);
  const HttpResponse answer = deferred.get();
  EXPECT_EQ(answer.status, 503);
  EXPECT_EQ(host.wait_exit(20s), 0) << host.log();

  const std::string log = host.log();
  const size_t stop = position(log, "probe: stop ");
  ASSERT_NE(stop, std::string::npos) << log;
  // Deferred request and attachment jobs were failed before stop...
  EXPECT_LT(position(log, "probe: on_cancel request="), stop);
  EXPECT_EQ(host.log_lines("status=-60").size(), 2U) << log;
  EXPECT_LT(position(log, "status=-60"), stop);
  // ...and the timers and the fd watch were already cancelled when stop looked.
  EXPECT_NE(position(log,
                     "probe: stop timers_still_armed=0/2 fd_still_watched=0 deferred_pending=0 "
                     "attach_pending=0 main_thread_callback=-20"),
            std::string::npos)
      << log;
  EXPECT_LT(position(log, "shutting down (SIGTERM)"), stop);
  EXPECT_LT(stop, position(log, "probe: destroy"));
  EXPECT_LT(position(log, "probe: destroy"), position(log, "probe: deinit"));
  EXPECT_NE(position(log, "[host] stopped"), std::string::npos);
  // No copy was left behind by the cancelled jobs.
  size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(host.data_dir() / "attachments")) {
    files += entry.is_regular_file() ? 1 : 0;
  }
  EXPECT_EQ(files, 0U);
}

}  // namespace
}  // namespace hdp::test
