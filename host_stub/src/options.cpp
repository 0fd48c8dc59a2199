#include "options.hpp"

#include "pg_connection.hpp"

#include <charconv>
#include <fstream>
#include <sstream>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace hdp::host {
namespace json = boost::json;
namespace {

std::optional<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

template <class Int>
std::optional<Int> parse_int(std::string_view text) {
  Int value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::string> check_json(std::string_view text, std::string_view what) {
  json::error_code ec;
  (void)json::parse(text, ec);
  if (ec) return std::string(what) + " is not valid JSON: " + ec.message();
  return std::nullopt;
}

}  // namespace

std::optional<ListenAddress> parse_listen_address(std::string_view text) {
  ListenAddress out;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    out.host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) return std::nullopt;
    out.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  const auto port = parse_int<uint16_t>(port_text);
  if (out.host.empty() || !port) return std::nullopt;
  out.port = *port;
  return out;
}

std::optional<std::string> apply_config_json(std::string_view json_text, HostOptions& options) {
  json::error_code ec;
  const json::value root = json::parse(json_text, ec);
  if (ec) return "configuration is not valid JSON: " + ec.message();
  if (!root.is_object()) return std::string("configuration must be a JSON object");
  for (const auto& member : root.as_object()) {
    // Named references, not structured bindings: older compilers cannot capture those.
    const std::string_view key = member.key();
    const json::value& value = member.value();
    auto need_string = [&](std::string& out) -> std::optional<std::string> {
      if (!value.is_string()) return "\"" + std::string(key) + "\" must be a string";
      out = value.as_string().c_str();
      return std::nullopt;
    };
    auto need_uint = [&](uint64_t& out) -> std::optional<std::string> {
      if (!value.is_number()) return "\"" + std::string(key) + "\" must be a number";
      json::error_code nec;
      const auto n = value.to_number<uint64_t>(nec);
      if (nec) return "\"" + std::string(key) + "\" must be a non-negative integer";
      out = n;
      return std::nullopt;
    };
    std::string text;
    if (key == "listen") {
      if (auto e = need_string(text)) return e;
      const auto address = parse_listen_address(text);
      if (!address) return "\"listen\" must look like ADDR:PORT, got \"" + text + "\"";
      options.listen_host = address->host;
      options.listen_port = address->port;
    } else if (key == "public_listen") {
      if (auto e = need_string(text)) return e;
      const auto address = parse_listen_address(text);
      if (!address) return "\"public_listen\" must look like ADDR:PORT, got \"" + text + "\"";
      options.public_listen_host = address->host;
      options.public_listen_port = address->port;
    } else if (key == "metrics_token_file") {
      if (auto e = need_string(text)) return e;
      if (text.empty()) return std::string("\"metrics_token_file\" must name a file");
      options.metrics_token_file = text;
    } else if (key == "served_over_https") {
      if (!value.is_bool()) return std::string("\"served_over_https\" must be true or false");
      options.served_over_https = value.as_bool();
    } else if (key == "data_dir") {
      if (auto e = need_string(text)) return e;
      options.data_dir = text;
    } else if (key == "database") {
      if (auto e = need_string(text)) return e;
      if (!is_postgresql_uri(text)) return std::string("\"database\" must be a postgresql:// URI");
      options.database = text;
    } else if (key == "attachments_dir") {
      if (auto e = need_string(text)) return e;
      if (text.empty()) return std::string("\"attachments_dir\" must name a directory");
      options.attachments_dir = text;
    } else if (key == "log_level") {
      if (auto e = need_string(text)) return e;
      const auto level = parse_log_level(text);
      if (!level) return "unknown log_level \"" + text + "\"";
      options.log_level = *level;
    } else if (key == "log_format") {
      if (auto e = need_string(text)) return e;
      const auto format = parse_log_format(text);
      if (!format) return "unknown log_format \"" + text + "\"";
      options.log_format = *format;
    } else if (key == "header_timeout_ms") {
      if (auto e = need_uint(options.header_timeout_ms)) return e;
    } else if (key == "idle_timeout_ms") {
      if (auto e = need_uint(options.idle_timeout_ms)) return e;
    } else if (key == "max_connections") {
      if (auto e = need_uint(options.max_connections)) return e;
    } else if (key == "http_threads") {
      if (auto e = need_uint(options.http_threads)) return e;
    } else if (key == "plugins") {
      if (!value.is_array()) return std::string("\"plugins\" must be an array");
      for (const json::value& item : value.as_array()) {
        if (!item.is_object() || !item.as_object().contains("path") || !item.as_object().at("path").is_string()) {
          return std::string("each plugin needs a \"path\" string");
        }
        PluginOptions plugin;
        plugin.path = item.as_object().at("path").as_string().c_str();
        if (const auto* config = item.as_object().if_contains("config")) {
          plugin.config = json::serialize(*config);
        }
        options.plugins.push_back(std::move(plugin));
      }
    } else {
      return "unknown configuration key \"" + std::string(key) + "\"";
    }
  }
  return std::nullopt;
}

ParsedOptions parse_command_line(std::span<const std::string_view> args) {
  ParsedOptions parsed;
  HostOptions& o = parsed.options;
  auto fail = [&parsed](std::string error) {
    parsed.error = std::move(error);
    return parsed;
  };

  // "--name value" or "--name=value"
  struct Arg {
    std::string_view name;
    std::optional<std::string_view> inline_value;
  };
  auto split = [](std::string_view a) {
    const size_t eq = a.find('=');
    if (a.starts_with("--") && eq != std::string_view::npos) return Arg{a.substr(0, eq), a.substr(eq + 1)};
    return Arg{a, std::nullopt};
  };

  // The configuration file first, so that every other option wins over it.
  for (size_t i = 0; i < args.size(); ++i) {
    const Arg arg = split(args[i]);
    if (arg.name != "--config") continue;
    std::string_view value;
    if (arg.inline_value) {
      value = *arg.inline_value;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return fail("--config needs a value");
    }
    const auto text = read_file(std::string(value));
    if (!text) return fail("cannot read configuration file " + std::string(value));
    if (auto error = apply_config_json(*text, o)) return fail(std::string(value) + ": " + *error);
  }

  const size_t plugins_from_config = o.plugins.size();
  for (size_t i = 0; i < args.size(); ++i) {
    const Arg arg = split(args[i]);
    const std::string_view name = arg.name;
    auto value = [&]() -> std::optional<std::string_view> {
      if (arg.inline_value) return arg.inline_value;
      if (i + 1 < args.size()) return args[++i];
      return std::nullopt;
    };
    auto need = [&](std::string_view& out) {
      const auto v = value();
      if (!v) return false;
      out = *v;
      return true;
    };
    auto need_uint = [&](uint64_t& out) -> std::optional<std::string> {
      std::string_view v;
      if (!need(v)) return std::string(name) + " needs a value";
      const auto n = parse_int<uint64_t>(v);
      if (!n) return std::string(name) + " needs a non-negative integer, got \"" + std::string(v) + "\"";
      out = *n;
      return std::nullopt;
    };
    std::string_view v;
    if (name == "--help" || name == "-h") {
      o.help = true;
    } else if (name == "--config") {
      if (!arg.inline_value) ++i;  // applied above
    } else if (name == "--listen") {
      if (!need(v)) return fail("--listen needs ADDR:PORT");
      const auto address = parse_listen_address(v);
      if (!address) return fail("--listen needs ADDR:PORT, got \"" + std::string(v) + "\"");
      o.listen_host = address->host;
      o.listen_port = address->port;
    } else if (name == "--public-listen") {
      if (!need(v)) return fail("--public-listen needs ADDR:PORT");
      const auto address = parse_listen_address(v);
      if (!address) return fail("--public-listen needs ADDR:PORT, got \"" + std::string(v) + "\"");
      o.public_listen_host = address->host;
      o.public_listen_port = address->port;
    } else if (name == "--public-port-file") {
      if (!need(v) || v.empty()) return fail("--public-port-file needs a file");
      o.public_port_file = std::string(v);
    } else if (name == "--metrics-token-file") {
      if (!need(v) || v.empty()) return fail("--metrics-token-file needs a file");
      o.metrics_token_file = std::string(v);
    } else if (name == "--served-over-https") {
      o.served_over_https = true;
    } else if (name == "--port-file") {
      if (!need(v)) return fail("--port-file needs a file");
      o.port_file = std::string(v);
    } else if (name == "--data-dir") {
      if (!need(v) || v.empty()) return fail("--data-dir needs a directory");
      o.data_dir = std::string(v);
    } else if (name == "--database") {
      if (!need(v) || !is_postgresql_uri(v)) return fail("--database needs a postgresql:// URI");
      o.database = std::string(v);
    } else if (name == "--attachments-dir") {
      if (!need(v) || v.empty()) return fail("--attachments-dir needs a directory");
      o.attachments_dir = std::string(v);
    } else if (name == "--plugin") {
      if (!need(v) || v.empty()) return fail("--plugin needs a path");
      o.plugins.push_back(PluginOptions{std::string(v), {}});
    } else if (name == "--plugin-config" || name == "--plugin-config-json") {
      if (o.plugins.size() == plugins_from_config) {
        return fail(std::string(name) + " must follow the --plugin it configures");
      }
      if (!need(v)) return fail(std::string(name) + " needs a value");
      std::string text(v);
      if (name == "--plugin-config") {
        const auto file = read_file(text);
        if (!file) return fail("cannot read plugin configuration file " + text);
        if (auto error = check_json(*file, text)) return fail(*error);
        text = *file;
      } else if (auto error = check_json(text, "--plugin-config-json")) {
        return fail(*error);
      }
      o.plugins.back().config = std::move(text);
    } else if (name == "--virtual-clock") {
      o.virtual_clock = true;
    } else if (name == "--virtual-clock-start-ms") {
      if (!need(v)) return fail("--virtual-clock-start-ms needs a value");
      const auto n = parse_int<int64_t>(v);
      if (!n) return fail("--virtual-clock-start-ms needs an integer, got \"" + std::string(v) + "\"");
      o.virtual_clock_start_ms = *n;
    } else if (name == "--check") {
      o.check = true;
    } else if (name == "--log-level") {
      if (!need(v)) return fail("--log-level needs a value");
      const auto level = parse_log_level(v);
      if (!level) return fail("unknown log level \"" + std::string(v) + "\"");
      o.log_level = *level;
    } else if (name == "--log-format") {
      if (!need(v)) return fail("--log-format needs a value");
      const auto format = parse_log_format(v);
      if (!format) return fail("unknown log format \"" + std::string(v) + "\"");
      o.log_format = *format;
    } else if (name == "--header-timeout-ms") {
      if (auto e = need_uint(o.header_timeout_ms)) return fail(*e);
    } else if (name == "--idle-timeout-ms") {
      if (auto e = need_uint(o.idle_timeout_ms)) return fail(*e);
    } else if (name == "--max-connections") {
      if (auto e = need_uint(o.max_connections)) return fail(*e);
    } else if (name == "--http-threads") {
      if (auto e = need_uint(o.http_threads)) return fail(*e);
    } else if (name == "--loop-lag-interval-ms") {
      if (auto e = need_uint(o.loop_lag_interval_ms)) return fail(*e);
    } else if (name == "--test-attach-delay-ms") {
      if (auto e = need_uint(o.test_attach_delay_ms)) return fail(*e);
    } else if (name == "--test-disable-extension") {
      if (!need(v) || v.empty()) return fail("--test-disable-extension needs an extension id");
      o.disabled_extensions.emplace_back(v);
    } else {
      return fail("unknown option \"" + std::string(args[i]) + "\" (see --help)");
    }
  }
  if (o.public_port_file && !o.public_listen_host) {
    return fail("--public-port-file needs --public-listen");
  }
  if (o.virtual_clock_start_ms && !o.virtual_clock) {
    return fail("--virtual-clock-start-ms needs --virtual-clock");
  }
  if (o.header_timeout_ms == 0 || o.idle_timeout_ms == 0 || o.max_connections == 0 || o.loop_lag_interval_ms == 0) {
    return fail("timeouts, intervals and --max-connections must be positive");
  }
  if (o.http_threads > kMaxHttpThreads) {
    return fail("--http-threads must be at most " + std::to_string(kMaxHttpThreads));
  }
  return parsed;
}

std::string usage_text() {
  return R"(hdp-stub-host - a small helpdesk host for plugins of the hdp C ABI

Usage: hdp-stub-host [options]
       hdp-stub-host agent add|remove|list [NAME] --data-dir DIR | --database URI
  --config FILE            JSON configuration file (see below); command-line options win
  --listen ADDR:PORT       the agents' side: inbox, API, sign-in (default 127.0.0.1:8080;
                           port 0 picks a free one)
  --public-listen ADDR:PORT  the side that faces the internet: only plugin routes declared
                           public (webhooks) and /healthz
  --port-file FILE         write the port actually bound to FILE once listening (for scripts)
  --public-port-file FILE  the same for --public-listen
  --served-over-https      agents reach the host over HTTPS: the session cookie gets Secure
  --metrics-token-file FILE  GET /metrics from elsewhere than loopback needs
                           "Authorization: Bearer <the file's content>"
  --data-dir DIR           database, attachment files and plugin data (default ./hdp-data)
  --database URI           keep conversations, messages, attachment records, agents and
                           sign-in sessions in PostgreSQL (postgresql://user:pw@host:port/db,
                           or postgresql:///db?host=/socket/dir), shared by several hosts,
                           instead of <data-dir>/helpdesk.sqlite3
  --attachments-dir DIR    attachment files go here (a directory every host shares;
                           default <data-dir>/attachments)
  --plugin PATH            load the plugin shared object at PATH (repeatable)
  --plugin-config FILE     configuration (JSON) for the plugin named just before
  --plugin-config-json S   the same, inline
  --virtual-clock          tests only: time stands still until POST /__test/clock/advance
  --virtual-clock-start-ms N  wall-clock start of the virtual clock (default: real now)
  --check                  load, init, start, stop every plugin and exit (0 = all loaded)
  --log-level LEVEL        trace|debug|info|warning|error (default info)
  --log-format FORMAT      text|json (default text)
  --help                   this text

HTTP limits:
  --header-timeout-ms N    drop a connection whose request header is not complete in N ms
                           (default 10000)
  --idle-timeout-ms N      close a kept-alive connection idle for N ms (default 30000)
  --max-connections N      connections served at once; more are closed (default 512)
  --http-threads N         threads that read and write the connections; requests are still
                           served on the main loop (default 0: the main loop does it all)
  --loop-lag-interval-ms N how often the loop-lag probe (hdp_loop_lag_seconds) fires
                           (default 100)

Tests only:
  --test-attach-delay-ms N hold every attachment copy back N ms (a job stays pending)
  --test-disable-extension ID  answer NULL for extension ID, as an older host would
                           (repeatable; e.g. hdp.messages/2)

Agents (the password is read from standard input, one line):
  agent add NAME --data-dir DIR     agent remove NAME --data-dir DIR     agent list --data-dir DIR
  (or --database URI instead of --data-dir: the agents of the PostgreSQL database)
Configuration file:
  {"listen": "127.0.0.1:8080", "public_listen": "127.0.0.1:8081", "data_dir": "./hdp-data",
   "plugins": [{"path": "/usr/lib/hdp/plugins/wavoip_recordings.so", "config": {}}]}
  Plugins from the file load first, then those named with --plugin.

Exit status: 0 after a clean shutdown (SIGINT/SIGTERM) or a passed --check, 1 when the host
cannot start (bad configuration, port in use, storage), 2 when a plugin is refused.
)";
}

}  // namespace hdp::host
