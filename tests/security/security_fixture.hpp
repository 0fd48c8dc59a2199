// Shared pieces of the security tests: the keys they configure, the production-like
// configuration (no development mode, an allow-listed https host that cannot resolve), and
// readers for the plugin's SQLite store.
#pragma once

#include "e2e_fixture.hpp"

#include <boost/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace security {

// Two keys: the first names an inbox, the second has every punctuation a key may have.
inline const std::string kKey = "corpus-key-0123456789abcdef";
inline const std::string kKeyInbox = "sales";
inline const std::string kKey2 = "second.key_ZYXW~VUTS-98765";

// https on a host under .invalid (RFC 2606: never resolves), so a download the plugin is allowed
// to start fails at name resolution and never leaves the machine.
inline const std::string kAllowedHost = "storage.wavoip.invalid";

// The webhook_keys array for kKey (with kKeyInbox) and kKey2 (default inbox).
boost::json::array both_keys();

// Production settings: development mode off, base_url and allowed_hosts on kAllowedHost.
boost::json::object production_config(const boost::json::array& keys);

// {key}, {key2} and the near misses of {key} used by the corpus and the auth tests.
std::map<std::string, std::string> key_placeholders();

// Every character of `text` as %XX.
std::string encode_every_byte(const std::string& text);

// The plugin's database under the host's data directory.
std::filesystem::path plugin_database(const std::filesystem::path& host_data_dir);

// The raw bodies of every row of `deliveries`, in insertion order.
std::vector<std::string> stored_delivery_bodies(const std::filesystem::path& database);

}  // namespace security
