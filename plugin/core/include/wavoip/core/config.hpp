#pragma once
// The plugin's configuration: one JSON object given by the host. Empty text means "all
// defaults". Unknown keys are errors (a typo must not silently fall back to a default), and
// so are wrong types and out-of-range values; the error names the key.
//
// Comments (// and /* */) and trailing commas are accepted, for hand-edited files.
//
// Keys (type, default): meaning.
// - base_url (string, "https://storage.wavoip.com/"): recording URL = base_url + url-encoded call
//   id; must pass the URL policy below.
// - allowed_hosts (array of string, ["storage.wavoip.com"]): hosts a webhook's record_url may point
//   to (https, port 443).
// - allow_insecure_loopback (bool, false): dev mode: also allow http(s) to localhost, 127.0.0.0/8
//   and ::1 (the simulator).
// - database (string, ""): SQLite file; "" = <data_dir>/wavoip.sqlite, relative = under
//   <data_dir>; or a PostgreSQL URI (postgresql://user:password@host:port/dbname,
//   postgresql:///dbname?host=/socket/dir), see open_store.hpp.
// - database_synchronous (string, "normal"): "normal" (WAL default) or "full" (also survive power
//   loss).
// - store_writer (string, "thread"): "thread": a plugin thread writes the store in batches, off
//   the host's loop; "loop": the jobs of each loop turn are written at its end, on the loop.
// - downloads (string, "thread"): "thread": the downloads and polls run on a plugin thread of
//   their own; "loop": on the host's loop, through its fd watches and timers.
// - max_body_bytes (integer, 65536): largest webhook body accepted (1024 .. 16 MiB).
// - max_json_depth (integer, 32): deepest JSON nesting accepted (1 .. 512).
// - max_recording_bytes (integer, 209715200 = 200 MiB): largest recording downloaded.
// - connect_timeout_ms (integer, 10000): TCP+TLS connect timeout (1 .. 600000).
// - low_speed_limit_bytes (integer, 1024): abort a download slower than this many bytes/s ...
// - low_speed_time_s (integer, 30): ... for this many seconds (1 .. 3600).
// - max_redirects (integer, 3): redirects followed, each re-checked (0 .. 20).
// - max_concurrent_downloads (integer, 64): downloads and polls running at once (1 .. 1024).
// - claim_lease_ms (integer, 120000): how long a node's claim on a call's download or attachment
//   holds without renewal (1000 .. 86400000); renewed every third of it.
// - node_id (string, "" = random at start): the owner name of this node's claims, for log lines
//   (1 .. 128 printable ASCII).
// - poll.first_delay_s (integer, 60): first poll after the call ended.
// - poll.initial_backoff_s (integer, 30): first wait between polls, doubled each time (>= 1).
// - poll.max_backoff_s (integer, 1800): cap of one wait (>= initial_backoff_s).
// - poll.deadline_s (integer, 14400 = 4 h): give up this long after the call ended (1 .. 30 days,
//   >= first_delay_s).
// - poll.jitter (number, 0.2): each wait is scaled by a factor in [1-jitter, 1+jitter], never
//   above max_backoff_s; 0 <= jitter < 1.
// - poll.seed (integer, none): fixes the jitter pattern (tests); non-negative.
// - poll.unanswered_calls (boolean, false): also poll calls that never connected (rejected, not
//   answered, answered elsewhere).
// - webhook_keys (array of object, []): [{"key": "...", "inbox": "..."}]; key: >= 16 chars of
//   [A-Za-z0-9._~-], unique; inbox optional (<= 255 bytes, no control chars).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "wavoip/core/backoff.hpp"
#include "wavoip/core/expected.hpp"
#include "wavoip/core/payload.hpp"
#include "wavoip/core/recording_url.hpp"

namespace wavoip {

// One accepted webhook secret; calls delivered with it belong to `inbox` ("" = host default).
struct WebhookKey {
  std::string key;
  std::string inbox;
  bool operator==(const WebhookKey&) const = default;
};

enum class SyncMode { normal, full };
enum class StoreWriterMode { thread, loop };
enum class DownloadsMode { thread, loop };

struct Config {
  std::string base_url = "https://storage.wavoip.com/";          // always ends with '/'
  std::vector<std::string> allowed_hosts{"storage.wavoip.com"};  // lower case
  bool allow_insecure_loopback = false;
  std::string database;
  SyncMode database_synchronous = SyncMode::normal;
  StoreWriterMode store_writer = StoreWriterMode::thread;
  DownloadsMode downloads = DownloadsMode::thread;
  std::size_t max_body_bytes = 65536;
  std::size_t max_json_depth = 32;
  std::uint64_t max_recording_bytes = 209715200;
  std::int64_t connect_timeout_ms = 10000;
  std::int64_t low_speed_limit_bytes = 1024;
  std::int64_t low_speed_time_s = 30;
  int max_redirects = 3;
  int max_concurrent_downloads = 64;
  std::int64_t claim_lease_ms = 120000;
  std::string node_id;
  PollSettings poll;
  std::vector<WebhookKey> webhook_keys;

  // Views of the settings in the shape other parts take.
  ParseLimits parse_limits() const;
  UrlPolicy url_policy() const;
  BackoffPolicy backoff_policy() const { return BackoffPolicy(poll); }
};

struct ConfigError {
  std::string key;      // e.g. "poll.jitter"; "" when the text is not a JSON object
  std::string message;  // full sentence naming the key, for the operator
};

// Parses and validates the configuration text.
Expected<Config, ConfigError> parse_config(std::string_view json_text);

// The SQLite file to open: `database` if absolute, else resolved under `data_dir` (not for a
// PostgreSQL URI: open_store tells them apart).
std::string database_path(const Config& config, std::string_view data_dir);

}  // namespace wavoip
