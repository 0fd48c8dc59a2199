#include "wavoip/core/config.hpp"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <set>
#include <utility>

namespace wavoip {
namespace {

namespace json = boost::json;

// Thrown only inside this file and turned into a ConfigError value by parse_config, so that
// each reader below can stop at the first bad key without threading results through.
struct Invalid {
  std::string key;
  std::string message;
};

[[noreturn]] void invalid(const std::string& key, const std::string& what) {
  throw Invalid{key, "config key '" + key + "': " + what};
}

std::string describe_kind(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "a boolean";
    case json::kind::int64:
    case json::kind::uint64: return "an integer";
    case json::kind::double_: return "a fractional number";
    case json::kind::string: return "a string";
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
  }
  return "something else";
}

std::int64_t read_int(const json::value& v, const std::string& key, std::int64_t min, std::int64_t max) {
  const std::string range = "between " + std::to_string(min) + " and " + std::to_string(max);
  // Boost.JSON stores integers above INT64_MAX as uint64: always out of range here.
  if (v.is_uint64()) invalid(key, "must be " + range);
  if (!v.is_int64()) invalid(key, "must be an integer, got " + describe_kind(v));
  const std::int64_t n = v.get_int64();
  if (n < min || n > max) invalid(key, "must be " + range + ", got " + std::to_string(n));
  return n;
}

std::string read_string(const json::value& v, const std::string& key) {
  if (!v.is_string()) invalid(key, "must be a string, got " + describe_kind(v));
  return std::string(v.get_string().data(), v.get_string().size());
}

bool read_bool(const json::value& v, const std::string& key) {
  if (!v.is_bool()) invalid(key, "must be true or false, got " + describe_kind(v));
  return v.get_bool();
}

const json::object& read_object(const json::value& v, const std::string& key) {
  if (!v.is_object()) invalid(key, "must be an object, got " + describe_kind(v));
  return v.get_object();
}

const json::array& read_array(const json::value& v, const std::string& key) {
  if (!v.is_array()) invalid(key, "must be an array, got " + describe_kind(v));
  return v.get_array();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c); });
  return s;
}

// A setting that is one of two words, in any case.
template <typename Mode>
Mode read_choice(const json::value& v, const std::string& key, Mode first, const char* first_word, Mode second,
                 const char* second_word) {
  const std::string word = lower(read_string(v, key));
  if (word == first_word) return first;
  if (word == second_word) return second;
  invalid(key, std::string("must be \"") + first_word + "\" or \"" + second_word + "\"");
}

bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  return std::all_of(host.begin(), host.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'; });
}

bool is_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '~' || c == '-';
}

void read_poll(const json::object& obj, PollSettings& poll) {
  constexpr std::int64_t kThirtyDays = 30LL * 24 * 3600;
  for (const auto& [k, v] : obj) {
    const std::string key = "poll." + std::string(k.data(), k.size());
    if (k == "first_delay_s")
      poll.first_delay_s = read_int(v, key, 0, kThirtyDays);
    else if (k == "initial_backoff_s")
      poll.initial_backoff_s = read_int(v, key, 1, kThirtyDays);
    else if (k == "max_backoff_s")
      poll.max_backoff_s = read_int(v, key, 1, kThirtyDays);
    else if (k == "deadline_s")
      poll.deadline_s = read_int(v, key, 1, kThirtyDays);
    else if (k == "jitter") {
      if (!v.is_number()) invalid(key, "must be a number, got " + describe_kind(v));
      double j = v.to_number<double>();
      if (!(j >= 0.0 && j < 1.0)) invalid(key, "must be at least 0 and below 1");
      poll.jitter = j;
    } else if (k == "unanswered_calls") {
      poll.unanswered_calls = read_bool(v, key);
    } else if (k == "seed") {
      if (v.is_uint64())
        poll.seed = v.get_uint64();
      else if (v.is_int64() && v.get_int64() >= 0)
        poll.seed = static_cast<std::uint64_t>(v.get_int64());
      else
        invalid(key, "must be a non-negative integer, got " + describe_kind(v));
    } else {
      invalid(key, "unknown key");
    }
  }
  if (poll.max_backoff_s < poll.initial_backoff_s) {
    invalid("poll.max_backoff_s", "must not be smaller than poll.initial_backoff_s");
  }
  if (poll.first_delay_s > poll.deadline_s) invalid("poll.first_delay_s", "must not be larger than poll.deadline_s");
}

std::vector<WebhookKey> read_webhook_keys(const json::value& v) {
  std::vector<WebhookKey> keys;
  std::set<std::string> seen;
  const json::array& arr = read_array(v, "webhook_keys");
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const std::string at = "webhook_keys[" + std::to_string(i) + "]";
    const json::object& obj = read_object(arr[i], at);
    WebhookKey wk;
    bool has_key = false;
    for (const auto& [k, value] : obj) {
      const std::string key = at + "." + std::string(k.data(), k.size());
      if (k == "key") {
        wk.key = read_string(value, key);
        has_key = true;
      } else if (k == "inbox") {
        wk.inbox = read_string(value, key);
        // The host's limits for an inbox name.
        if (wk.inbox.size() > 255 || std::any_of(wk.inbox.begin(), wk.inbox.end(), [](char c) {
              return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
            })) {
          invalid(key, "must have at most 255 bytes and no control characters");
        }
      } else {
        invalid(key, "unknown key");
      }
    }
    // The key is a bearer secret that may travel in the URL path: long and URL-safe.
    if (!has_key) invalid(at + ".key", "is required");
    if (wk.key.size() < 16) invalid(at + ".key", "must have at least 16 characters");
    if (!std::all_of(wk.key.begin(), wk.key.end(), is_key_char)) {
      invalid(at + ".key", "may only contain A-Z a-z 0-9 . _ ~ -");
    }
    if (!seen.insert(wk.key).second) invalid(at + ".key", "is listed twice");
    keys.push_back(std::move(wk));
  }
  return keys;
}

Config read_config(const json::object& root) {
  Config c;
  for (const auto& [k, v] : root) {
    const std::string key(k.data(), k.size());
    if (key == "base_url") {
      c.base_url = read_string(v, key);
      // The call id is appended to it: a query or fragment would swallow the id.
      if (c.base_url.find_first_of("?#") != std::string::npos) invalid(key, "must not have a query or fragment");
      if (c.base_url.empty() || c.base_url.back() != '/') c.base_url.push_back('/');
    } else if (key == "allowed_hosts") {
      c.allowed_hosts.clear();
      for (const json::value& h : read_array(v, key)) {
        std::string host = lower(read_string(h, key));
        if (!is_host_name(host)) invalid(key, "entries must be plain host names such as \"storage.wavoip.com\"");
        c.allowed_hosts.push_back(std::move(host));
      }
    } else if (key == "allow_insecure_loopback") {
      c.allow_insecure_loopback = read_bool(v, key);
    } else if (key == "database") {
      c.database = read_string(v, key);
    } else if (key == "database_synchronous") {
      c.database_synchronous = read_choice(v, key, SyncMode::normal, "normal", SyncMode::full, "full");
    } else if (key == "store_writer") {
      c.store_writer = read_choice(v, key, StoreWriterMode::thread, "thread", StoreWriterMode::loop, "loop");
    } else if (key == "downloads") {
      c.downloads = read_choice(v, key, DownloadsMode::thread, "thread", DownloadsMode::loop, "loop");
    } else if (key == "max_body_bytes") {
      c.max_body_bytes = static_cast<std::size_t>(read_int(v, key, 1024, 16LL * 1024 * 1024));
    } else if (key == "max_json_depth") {
      c.max_json_depth = static_cast<std::size_t>(read_int(v, key, 1, 512));
    } else if (key == "max_recording_bytes") {
      c.max_recording_bytes = static_cast<std::uint64_t>(read_int(v, key, 1, std::int64_t{1} << 40));
    } else if (key == "connect_timeout_ms") {
      c.connect_timeout_ms = read_int(v, key, 1, 600000);
    } else if (key == "low_speed_limit_bytes") {
      c.low_speed_limit_bytes = read_int(v, key, 1, std::int64_t{1} << 30);
    } else if (key == "low_speed_time_s") {
      c.low_speed_time_s = read_int(v, key, 1, 3600);
    } else if (key == "max_redirects") {
      c.max_redirects = static_cast<int>(read_int(v, key, 0, 20));
    } else if (key == "max_concurrent_downloads") {
      c.max_concurrent_downloads = static_cast<int>(read_int(v, key, 1, 1024));
    } else if (key == "claim_lease_ms") {
      c.claim_lease_ms = read_int(v, key, 1000, 86400000);
    } else if (key == "node_id") {
      c.node_id = read_string(v, key);
      const bool printable =
          std::all_of(c.node_id.begin(), c.node_id.end(), [](unsigned char ch) { return ch > 0x20 && ch < 0x7f; });
      if (c.node_id.empty() || c.node_id.size() > 128 || !printable) {
        invalid(key, "must be 1 to 128 printable ASCII characters without spaces");
      }
    } else if (key == "poll") {
      read_poll(read_object(v, key), c.poll);
    } else if (key == "webhook_keys") {
      c.webhook_keys = read_webhook_keys(v);
    } else {
      invalid(key, "unknown key");
    }
  }
  // The recordings the plugin builds itself must pass its own download policy.
  if (auto why = url_refusal(c.base_url, c.url_policy())) {
    invalid("base_url", "is not allowed (" + *why + "); use https on a host listed in allowed_hosts");
  }
  return c;
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; });
}

}  // namespace

ParseLimits Config::parse_limits() const {
  ParseLimits limits;
  limits.max_depth = max_json_depth;
  return limits;
}

UrlPolicy Config::url_policy() const {
  return UrlPolicy{allowed_hosts, allow_insecure_loopback};
}

Expected<Config, ConfigError> parse_config(std::string_view json_text) {
  if (is_blank(json_text)) return Config{};
  json::parse_options options;
  options.allow_comments = true;
  options.allow_trailing_commas = true;
  boost::system::error_code ec;
  json::value root =
      json::parse(json::string_view(json_text.data(), json_text.size()), ec, json::storage_ptr(), options);
  if (ec) return Unexpected{ConfigError{"", "configuration is not valid JSON: " + ec.message()}};
  if (!root.is_object()) return Unexpected{ConfigError{"", "configuration must be a JSON object"}};
  try {
    return read_config(root.get_object());
  } catch (const Invalid& e) {
    return Unexpected{ConfigError{e.key, e.message}};
  }
}

std::string database_path(const Config& config, std::string_view data_dir) {
  std::string dir(data_dir);
  if (!dir.empty() && dir.back() != '/') dir.push_back('/');
  if (config.database.empty()) return dir + "wavoip.sqlite";
  if (config.database.front() == '/') return config.database;
  return dir + config.database;
}

}  // namespace wavoip
