// The host's command line and configuration file (host_stub/README.md). Pure: parsing only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "log.hpp"

namespace hdp::host {

struct PluginOptions {
  std::string path;
  std::string config;  // the plugin's configuration bytes (JSON text); may be empty
};

// More I/O threads than this serve no machine the host runs on, and a typo must not start thousands.
constexpr uint64_t kMaxHttpThreads = 64;

struct HostOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  std::optional<std::filesystem::path> port_file;
  // The listener that faces the internet: public plugin routes (webhooks) and /healthz only.
  std::optional<std::string> public_listen_host;
  uint16_t public_listen_port = 0;
  std::optional<std::filesystem::path> public_port_file;
  // GET /metrics from elsewhere than loopback needs "Authorization: Bearer <the file's text>".
  std::optional<std::filesystem::path> metrics_token_file;
  // The agents reach the host over HTTPS (a reverse proxy): the session cookie gets Secure.
  bool served_over_https = false;
  std::filesystem::path data_dir = "./hdp-data";
  // Conversations, messages, attachment records, agents and sessions in PostgreSQL
  // ("postgresql://..."), shared by several hosts; empty: <data_dir>/helpdesk.sqlite3.
  std::string database;
  // Where attachment files go (a directory every node shares); empty: <data_dir>/attachments.
  std::optional<std::filesystem::path> attachments_dir;
  std::vector<PluginOptions> plugins;
  bool virtual_clock = false;
  std::optional<int64_t> virtual_clock_start_ms;
  bool check = false;
  bool help = false;
  LogLevel log_level = LogLevel::info;
  LogFormat log_format = LogFormat::text;
  // HTTP limits (see HttpServerLimits)
  uint64_t header_timeout_ms = 10000;
  uint64_t idle_timeout_ms = 30000;
  uint64_t max_connections = 512;
  // Threads that read and write the connections (HttpServerLimits::io_threads); 0: the main loop.
  uint64_t http_threads = 0;
  // How often the loop-lag probe fires (hdp_loop_lag_seconds).
  uint64_t loop_lag_interval_ms = 100;
  // Tests only: each attachment copy waits this long first (so a job is pending at shutdown).
  uint64_t test_attach_delay_ms = 0;
  // Tests only: extension ids the host answers NULL for, as an older host would.
  std::vector<std::string> disabled_extensions;
};

// args excludes the program name. Reads --config files and the plugin config files it names.
// Returns the error text for a bad command line.
struct ParsedOptions {
  HostOptions options;
  std::optional<std::string> error;
};
ParsedOptions parse_command_line(std::span<const std::string_view> args);

// Applies a configuration file's JSON text on top of options.
std::optional<std::string> apply_config_json(std::string_view json_text, HostOptions& options);

// "127.0.0.1:8080", "[::1]:0", "localhost:80"; nullopt when malformed.
struct ListenAddress {
  std::string host;
  uint16_t port = 0;
};
std::optional<ListenAddress> parse_listen_address(std::string_view text);

std::string usage_text();

}  // namespace hdp::host
