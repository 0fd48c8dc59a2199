// What configuration parsing proves: empty text means the documented defaults, every key is
// read, and typos, wrong types and out-of-range values are refused with the key named.

#include "wavoip/core/config.hpp"

#include <gtest/gtest.h>

namespace wavoip {
namespace {

Config ok(std::string_view text) {
  auto r = parse_config(text);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  return r ? *r : Config{};
}

ConfigError bad(std::string_view text) {
  auto r = parse_config(text);
  EXPECT_FALSE(r.has_value()) << "accepted: " << text;
  return r ? ConfigError{} : r.error();
}

// The key must be named both in the field and in the operator's message.
void expect_rejects(std::string_view text, const std::string& key) {
  const ConfigError e = bad(text);
  EXPECT_EQ(e.key, key) << text;
  EXPECT_NE(e.message.find("'" + key + "'"), std::string::npos) << e.message;
}

TEST(ConfigDefaults, EmptyTextGivesDocumentedDefaults) {
  for (std::string_view text : {"", "  \n\t", "{}"}) {
    const Config c = ok(text);
    EXPECT_EQ(c.base_url, "https://storage.wavoip.com/");
    EXPECT_EQ(c.allowed_hosts, std::vector<std::string>{"storage.wavoip.com"});
    EXPECT_FALSE(c.allow_insecure_loopback);
    EXPECT_EQ(c.database, "");
    EXPECT_EQ(c.database_synchronous, SyncMode::normal);
    EXPECT_EQ(c.store_writer, StoreWriterMode::thread);
    EXPECT_EQ(c.downloads, DownloadsMode::thread);
    EXPECT_EQ(c.max_body_bytes, 65536u);
    EXPECT_EQ(c.max_json_depth, 32u);
    EXPECT_EQ(c.max_recording_bytes, 209715200u);
    EXPECT_EQ(c.connect_timeout_ms, 10000);
    EXPECT_EQ(c.low_speed_limit_bytes, 1024);
    EXPECT_EQ(c.low_speed_time_s, 30);
    EXPECT_EQ(c.max_redirects, 3);
    EXPECT_EQ(c.max_concurrent_downloads, 64);
    EXPECT_EQ(c.claim_lease_ms, 120000);
    EXPECT_EQ(c.node_id, "") << "random at start";
    EXPECT_EQ(c.poll.first_delay_s, 60);
    EXPECT_EQ(c.poll.initial_backoff_s, 30);
    EXPECT_EQ(c.poll.max_backoff_s, 1800);
    EXPECT_EQ(c.poll.deadline_s, 14400);
    EXPECT_DOUBLE_EQ(c.poll.jitter, 0.2);
    EXPECT_FALSE(c.poll.seed);
    EXPECT_FALSE(c.poll.unanswered_calls);
    EXPECT_TRUE(c.webhook_keys.empty());
  }
}

TEST(ConfigKeys, EveryKeyIsRead) {
  const Config c = ok(R"({
    // comments and trailing commas are allowed in hand-edited files
    "base_url": "https://rec.example.com/calls",
    "allowed_hosts": ["Rec.Example.com", "storage.wavoip.com"],
    "allow_insecure_loopback": true,
    "database": "state/wavoip.db",
    "database_synchronous": "FULL",
    "store_writer": "Loop",
    "downloads": "loop",
    "max_body_bytes": 131072,
    "max_json_depth": 16,
    "max_recording_bytes": 1048576,
    "connect_timeout_ms": 2500,
    "low_speed_limit_bytes": 10,
    "low_speed_time_s": 5,
    "max_redirects": 0,
    "max_concurrent_downloads": 2,
    "claim_lease_ms": 5000,
    "node_id": "helpdesk-b",
    "poll": {"first_delay_s": 5, "initial_backoff_s": 2, "max_backoff_s": 10, "deadline_s": 100,
             "jitter": 0, "seed": 18446744073709551615, "unanswered_calls": true},
    "webhook_keys": [{"key": "0123456789abcdef", "inbox": "sales"}, {"key": "fedcba9876543210-x"}],
  })");
  EXPECT_EQ(c.base_url, "https://rec.example.com/calls/");  // trailing slash added
  EXPECT_EQ(c.allowed_hosts, (std::vector<std::string>{"rec.example.com", "storage.wavoip.com"}));
  EXPECT_TRUE(c.allow_insecure_loopback);
  EXPECT_EQ(c.database, "state/wavoip.db");
  EXPECT_EQ(c.database_synchronous, SyncMode::full);
  EXPECT_EQ(c.store_writer, StoreWriterMode::loop);
  EXPECT_EQ(c.downloads, DownloadsMode::loop);
  EXPECT_EQ(c.max_body_bytes, 131072u);
  EXPECT_EQ(c.max_json_depth, 16u);
  EXPECT_EQ(c.parse_limits().max_depth, 16u);
  EXPECT_EQ(c.max_recording_bytes, 1048576u);
  EXPECT_EQ(c.connect_timeout_ms, 2500);
  EXPECT_EQ(c.low_speed_limit_bytes, 10);
  EXPECT_EQ(c.low_speed_time_s, 5);
  EXPECT_EQ(c.max_redirects, 0);
  EXPECT_EQ(c.max_concurrent_downloads, 2);
  EXPECT_EQ(c.claim_lease_ms, 5000);
  EXPECT_EQ(c.node_id, "helpdesk-b");
  EXPECT_EQ(c.poll.first_delay_s, 5);
  EXPECT_EQ(c.poll.initial_backoff_s, 2);
  EXPECT_EQ(c.poll.max_backoff_s, 10);
  EXPECT_EQ(c.poll.deadline_s, 100);
  EXPECT_DOUBLE_EQ(c.poll.jitter, 0.0);
  EXPECT_EQ(c.poll.seed, 18446744073709551615ULL);
  EXPECT_TRUE(c.poll.unanswered_calls);
  ASSERT_EQ(c.webhook_keys.size(), 2u);
  EXPECT_EQ(c.webhook_keys[0], (WebhookKey{"0123456789abcdef", "sales"}));
  EXPECT_EQ(c.webhook_keys[1], (WebhookKey{"fedcba9876543210-x", ""}));
  EXPECT_EQ(c.backoff_policy().settings(), c.poll);
  EXPECT_TRUE(c.url_policy().allow_insecure_loopback);
}

TEST(ConfigTypos, UnknownKeysAreRejected) {
  expect_rejects(R"({"max_body_byte": 1})", "max_body_byte");
  expect_rejects(R"({"poll": {"first_delay": 1}})", "poll.first_delay");
  expect_rejects(R"({"webhook_keys": [{"key": "0123456789abcdef", "inboxx": "a"}]})", "webhook_keys[0].inboxx");
}

TEST(ConfigTypes, WrongTypesAreRejected) {
  expect_rejects(R"({"max_redirects": "3"})", "max_redirects");
  expect_rejects(R"({"max_redirects": 3.5})", "max_redirects");
  expect_rejects(R"({"allow_insecure_loopback": 1})", "allow_insecure_loopback");
  expect_rejects(R"({"base_url": null})", "base_url");
  expect_rejects(R"({"allowed_hosts": "storage.wavoip.com"})", "allowed_hosts");
  expect_rejects(R"({"allowed_hosts": [1]})", "allowed_hosts");
  expect_rejects(R"({"poll": 60})", "poll");
  expect_rejects(R"({"poll": {"jitter": "0.2"}})", "poll.jitter");
  expect_rejects(R"({"poll": {"seed": -1}})", "poll.seed");
  expect_rejects(R"({"poll": {"seed": 1.5}})", "poll.seed");
  expect_rejects(R"({"webhook_keys": {"key": "0123456789abcdef"}})", "webhook_keys");
  expect_rejects(R"({"webhook_keys": ["0123456789abcdef"]})", "webhook_keys[0]");
  expect_rejects(R"({"database_synchronous": "extra"})", "database_synchronous");
  expect_rejects(R"({"store_writer": "threads"})", "store_writer");
  expect_rejects(R"({"downloads": "host"})", "downloads");
  expect_rejects(R"({"downloads": true})", "downloads");
}

TEST(ConfigRanges, OutOfRangeValuesAreRejected) {
  expect_rejects(R"({"max_concurrent_downloads": 0})", "max_concurrent_downloads");
  expect_rejects(R"({"claim_lease_ms": 999})", "claim_lease_ms");
  expect_rejects(R"({"claim_lease_ms": 86400001})", "claim_lease_ms");
  expect_rejects(R"({"node_id": ""})", "node_id");
  expect_rejects(R"({"node_id": "two words"})", "node_id");
  expect_rejects(R"({"node_id": "n\u00e9"})", "node_id");
  expect_rejects(R"({"node_id": 7})", "node_id");
  expect_rejects(R"({"max_body_bytes": 18446744073709551615})", "max_body_bytes");
  expect_rejects(R"({"max_body_bytes": 100})", "max_body_bytes");
  expect_rejects(R"({"max_json_depth": 0})", "max_json_depth");
  expect_rejects(R"({"max_redirects": -1})", "max_redirects");
  expect_rejects(R"({"connect_timeout_ms": 0})", "connect_timeout_ms");
  expect_rejects(R"({"poll": {"jitter": 1}})", "poll.jitter");
  expect_rejects(R"({"poll": {"jitter": -0.1}})", "poll.jitter");
  expect_rejects(R"({"poll": {"unanswered_calls": "yes"}})", "poll.unanswered_calls");
  expect_rejects(R"({"poll": {"initial_backoff_s": 0}})", "poll.initial_backoff_s");
  expect_rejects(R"({"poll": {"initial_backoff_s": 60, "max_backoff_s": 30}})", "poll.max_backoff_s");
  expect_rejects(R"({"poll": {"first_delay_s": 600, "deadline_s": 300}})", "poll.first_delay_s");
}

TEST(ConfigWebhookKeys, KeysMustBeLongUrlSafeAndUnique) {
  expect_rejects(R"({"webhook_keys": [{"key": "short"}]})", "webhook_keys[0].key");
  expect_rejects(R"({"webhook_keys": [{"inbox": "sales"}]})", "webhook_keys[0].key");
  expect_rejects(R"({"webhook_keys": [{"key": "0123456789abcdef/x"}]})", "webhook_keys[0].key");
  expect_rejects(R"({"webhook_keys": [{"key": "0123456789abcdef"}, {"key": "0123456789abcdef"}]})",
                 "webhook_keys[1].key");
}

TEST(ConfigBaseUrl, MustPassTheDownloadPolicy) {
  expect_rejects(R"({"base_url": "http://storage.wavoip.com/"})", "base_url");
  expect_rejects(R"({"base_url": "https://other.example.com/"})", "base_url");
  expect_rejects(R"({"base_url": "not a url"})", "base_url");
  expect_rejects(R"({"base_url": "http://127.0.0.1:8081/rec/"})", "base_url");
  expect_rejects(R"({"base_url": "https://storage.wavoip.com/?id="})", "base_url");
  expect_rejects(R"({"base_url": "https://storage.wavoip.com/#"})", "base_url");
  // The simulator setup: loopback over http, allowed only in the dev mode.
  EXPECT_EQ(ok(R"({"base_url": "http://127.0.0.1:8081/rec", "allow_insecure_loopback": true})").base_url,
            "http://127.0.0.1:8081/rec/");
}

TEST(ConfigErrors, NotJsonOrNotAnObject) {
  const ConfigError e = bad("{ nope");
  EXPECT_EQ(e.key, "");
  EXPECT_NE(e.message.find("not valid JSON"), std::string::npos);
  EXPECT_NE(bad("[1]").message.find("JSON object"), std::string::npos);
}

TEST(ConfigDatabasePath, ResolvedUnderTheDataDir) {
  Config c;
  EXPECT_EQ(database_path(c, "/var/lib/helpdesk/wavoip"), "/var/lib/helpdesk/wavoip/wavoip.sqlite");
  EXPECT_EQ(database_path(c, "/data/"), "/data/wavoip.sqlite");
  c.database = "db/state.sqlite";
  EXPECT_EQ(database_path(c, "/data"), "/data/db/state.sqlite");
  c.database = "/srv/wavoip.sqlite";
  EXPECT_EQ(database_path(c, "/data"), "/srv/wavoip.sqlite");
}

}  // namespace
}  // namespace wavoip
