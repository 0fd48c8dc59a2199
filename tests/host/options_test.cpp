// The command line and configuration file of host_stub/README.md.
#include <gtest/gtest.h>

#include <fstream>
#include <string_view>
#include <vector>

#include "options.hpp"
#include "test_support.hpp"

namespace hdp::host {
namespace {

ParsedOptions parse(std::vector<std::string_view> args) {
  return parse_command_line(args);
}

TEST(Options, Defaults) {
  const auto parsed = parse({});
  ASSERT_FALSE(parsed.error);
  EXPECT_EQ(parsed.options.listen_host, "127.0.0.1");
  EXPECT_EQ(parsed.options.listen_port, 8080);
  EXPECT_EQ(parsed.options.data_dir, "./hdp-data");
  EXPECT_FALSE(parsed.options.virtual_clock);
  EXPECT_EQ(parsed.options.log_level, LogLevel::info);
  EXPECT_EQ(parsed.options.log_format, LogFormat::text);
}

TEST(Options, LoopLagIntervalAndDisabledExtensions) {
  EXPECT_EQ(parse({}).options.loop_lag_interval_ms, 100U);
  EXPECT_TRUE(parse({}).options.disabled_extensions.empty());
  const auto parsed = parse({"--loop-lag-interval-ms", "25", "--test-disable-extension", "hdp.messages/2",
                             "--test-disable-extension=hdp.metrics/1"});
  ASSERT_FALSE(parsed.error) << *parsed.error;
  EXPECT_EQ(parsed.options.loop_lag_interval_ms, 25U);
  EXPECT_EQ(parsed.options.disabled_extensions, (std::vector<std::string>{"hdp.messages/2", "hdp.metrics/1"}));
  EXPECT_TRUE(parse({"--loop-lag-interval-ms", "0"}).error);
  EXPECT_TRUE(parse({"--test-disable-extension", ""}).error);
}

TEST(Options, DatabaseAndAttachmentsDirectory) {
  EXPECT_TRUE(parse({}).options.database.empty());
  EXPECT_FALSE(parse({}).options.attachments_dir);
  const auto parsed =
      parse({"--database", "postgresql://hdp:pw@db:5432/helpdesk", "--attachments-dir=/srv/shared/attachments"});
  ASSERT_FALSE(parsed.error) << *parsed.error;
  EXPECT_EQ(parsed.options.database, "postgresql://hdp:pw@db:5432/helpdesk");
  EXPECT_EQ(parsed.options.attachments_dir, "/srv/shared/attachments");
  EXPECT_FALSE(parse({"--database", "postgresql:///helpdesk?host=/run/postgresql"}).error);
  EXPECT_TRUE(parse({"--database", "/var/lib/helpdesk.sqlite3"}).error);  // only PostgreSQL URIs
  EXPECT_TRUE(parse({"--attachments-dir", ""}).error);
  HostOptions from_file;
  EXPECT_FALSE(apply_config_json(R"({"database":"postgres://h/db","attachments_dir":"/a"})", from_file));
  EXPECT_EQ(from_file.database, "postgres://h/db");
  EXPECT_TRUE(apply_config_json(R"({"database":"helpdesk.sqlite3"})", from_file));
}

TEST(Options, EveryOption) {
  const auto parsed = parse({"--listen",
                             "[::1]:0",
                             "--port-file",
                             "/tmp/p",
                             "--data-dir=/d",
                             "--plugin",
                             "/a.so",
                             "--plugin-config-json",
                             R"({"k":1})",
                             "--plugin",
                             "/b.so",
                             "--virtual-clock",
                             "--virtual-clock-start-ms",
                             "1000",
                             "--check",
                             "--log-level",
                             "debug",
                             "--log-format",
                             "json",
                             "--header-timeout-ms",
                             "1500",
                             "--idle-timeout-ms=900",
                             "--max-connections",
                             "4",
                             "--test-attach-delay-ms",
                             "5"});
  ASSERT_FALSE(parsed.error) << *parsed.error;
  const HostOptions& o = parsed.options;
  EXPECT_EQ(o.listen_host, "::1");
  EXPECT_EQ(o.listen_port, 0);
  EXPECT_EQ(o.port_file, "/tmp/p");
  EXPECT_EQ(o.data_dir, "/d");
  ASSERT_EQ(o.plugins.size(), 2U);
  EXPECT_EQ(o.plugins[0].path, "/a.so");
  EXPECT_EQ(o.plugins[0].config, R"({"k":1})");
  EXPECT_EQ(o.plugins[1].config, "");
  EXPECT_TRUE(o.virtual_clock);
  EXPECT_EQ(o.virtual_clock_start_ms, 1000);
  EXPECT_TRUE(o.check);
  EXPECT_EQ(o.log_level, LogLevel::debug);
  EXPECT_EQ(o.log_format, LogFormat::json);
  EXPECT_EQ(o.header_timeout_ms, 1500U);
  EXPECT_EQ(o.idle_timeout_ms, 900U);
  EXPECT_EQ(o.max_connections, 4U);
  EXPECT_EQ(o.test_attach_delay_ms, 5U);
}

TEST(Options, Mistakes) {
  EXPECT_TRUE(parse({"--bogus"}).error);
  EXPECT_TRUE(parse({"--listen"}).error);
  EXPECT_TRUE(parse({"--listen", "8080"}).error);
  EXPECT_TRUE(parse({"--listen", "host:99999"}).error);
  EXPECT_TRUE(parse({"--plugin-config-json", "{}"}).error);  // no plugin before it
  EXPECT_TRUE(parse({"--plugin", "/a.so", "--plugin-config-json", "{not json"}).error);
  EXPECT_TRUE(parse({"--log-level", "loud"}).error);
  EXPECT_TRUE(parse({"--virtual-clock-start-ms", "5"}).error);  // needs --virtual-clock
  EXPECT_TRUE(parse({"--config", "/nonexistent/config.json"}).error);
}

TEST(Options, ConfigFileAndCommandLineWins) {
  test::TempDir dir;
  const auto config = dir.path() / "host.json";
  std::ofstream(config) << R"({"listen": "0.0.0.0:9000", "data_dir": "/from-file",
    "plugins": [{"path": "/p.so", "config": {"secret": "s", "n": [1, 2]}}]})";
  const std::string config_path = config.string();
  const auto parsed = parse({"--data-dir", "/from-cli", "--config", config_path, "--plugin", "/q.so"});
  ASSERT_FALSE(parsed.error) << *parsed.error;
  EXPECT_EQ(parsed.options.listen_host, "0.0.0.0");
  EXPECT_EQ(parsed.options.listen_port, 9000);
  EXPECT_EQ(parsed.options.data_dir, "/from-cli");
  ASSERT_EQ(parsed.options.plugins.size(), 2U);
  EXPECT_EQ(parsed.options.plugins[0].path, "/p.so");
  EXPECT_EQ(parsed.options.plugins[0].config, R"({"secret":"s","n":[1,2]})");
  EXPECT_EQ(parsed.options.plugins[1].path, "/q.so");
}

TEST(Options, ConfigFileMistakes) {
  HostOptions o;
  EXPECT_TRUE(apply_config_json("[]", o));
  EXPECT_TRUE(apply_config_json(R"({"unknown": 1})", o));
  EXPECT_TRUE(apply_config_json(R"({"listen": 5})", o));
  EXPECT_TRUE(apply_config_json(R"({"plugins": [{"config": {}}]})", o));
  EXPECT_FALSE(apply_config_json(R"({"max_connections": 3})", o));
  EXPECT_EQ(o.max_connections, 3U);
}

TEST(Options, HttpThreadsFromTheCommandLineOrTheFileAndBounded) {
  EXPECT_EQ(parse({}).options.http_threads, 0U) << "the main loop serves the connections unless asked";
  const auto parsed = parse({"--http-threads", "2"});
  ASSERT_FALSE(parsed.error) << *parsed.error;
  EXPECT_EQ(parsed.options.http_threads, 2U);
  HostOptions o;
  EXPECT_FALSE(apply_config_json(R"({"http_threads": 3})", o));
  EXPECT_EQ(o.http_threads, 3U);
  EXPECT_FALSE(parse({"--http-threads", "64"}).error);
  EXPECT_TRUE(parse({"--http-threads", "65"}).error);
  EXPECT_TRUE(parse({"--http-threads", "-1"}).error);
  EXPECT_TRUE(parse({"--http-threads"}).error);
}

TEST(Options, TheTwoListenersTheCookieAndTheMetricsToken) {
  const auto parsed = parse({"--public-listen", "0.0.0.0:8081", "--public-port-file", "/tmp/pp", "--served-over-https",
                             "--metrics-token-file=/etc/token"});
  ASSERT_FALSE(parsed.error) << *parsed.error;
  EXPECT_EQ(parsed.options.public_listen_host, "0.0.0.0");
  EXPECT_EQ(parsed.options.public_listen_port, 8081);
  EXPECT_EQ(parsed.options.public_port_file, "/tmp/pp");
  EXPECT_TRUE(parsed.options.served_over_https);
  EXPECT_EQ(parsed.options.metrics_token_file, "/etc/token");
  EXPECT_FALSE(parse({}).options.public_listen_host) << "no public listener unless asked for";
  EXPECT_FALSE(parse({}).options.served_over_https);

  EXPECT_TRUE(parse({"--public-listen"}).error);
  EXPECT_TRUE(parse({"--public-listen", "8081"}).error);
  EXPECT_TRUE(parse({"--public-port-file", "/tmp/pp"}).error) << "needs --public-listen";
  EXPECT_TRUE(parse({"--metrics-token-file"}).error);

  HostOptions o;
  EXPECT_FALSE(apply_config_json(
      R"({"public_listen": "127.0.0.1:8081", "served_over_https": true, "metrics_token_file": "/t"})", o));
  EXPECT_EQ(o.public_listen_host, "127.0.0.1");
  EXPECT_EQ(o.public_listen_port, 8081);
  EXPECT_TRUE(o.served_over_https);
  EXPECT_EQ(o.metrics_token_file, "/t");
  EXPECT_TRUE(apply_config_json(R"({"public_listen": "nowhere"})", o));
  EXPECT_TRUE(apply_config_json(R"({"served_over_https": "yes"})", o));
  EXPECT_TRUE(apply_config_json(R"({"metrics_token_file": ""})", o));
}

TEST(Options, ListenAddresses) {
  EXPECT_EQ(parse_listen_address("127.0.0.1:80")->host, "127.0.0.1");
  EXPECT_EQ(parse_listen_address("localhost:0")->port, 0);
  EXPECT_EQ(parse_listen_address("[::]:8080")->host, "::");
  EXPECT_FALSE(parse_listen_address("::1:80"));
  EXPECT_FALSE(parse_listen_address(":80"));
  EXPECT_FALSE(parse_listen_address("[::1]"));
}

}  // namespace
}  // namespace hdp::host
