#include "security_fixture.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <algorithm>
#include <cctype>

namespace security {

namespace json = boost::json;

json::array both_keys() {
  return json::array{json::object{{"key", kKey}, {"inbox", kKeyInbox}}, json::object{{"key", kKey2}}};
}

json::object production_config(const json::array& keys) {
  json::object config{{"base_url", "https://" + kAllowedHost + "/"},
                      {"allowed_hosts", json::array{json::value(kAllowedHost)}},
                      {"allow_insecure_loopback", false}};
  if (!keys.empty()) config["webhook_keys"] = keys;
  return config;
}

std::string encode_every_byte(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    out += '%';
    out += kHex[c >> 4];
    out += kHex[c & 0x0f];
  }
  return out;
}

std::map<std::string, std::string> key_placeholders() {
  std::string near_first = kKey;
  near_first.front() = near_first.front() == 'x' ? 'y' : 'x';
  std::string near_last = kKey;
  near_last.back() = near_last.back() == 'x' ? 'y' : 'x';
  std::string upper = kKey;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return {{"key", kKey},
          {"key2", kKey2},
          {"key_prefix", kKey.substr(0, kKey.size() - 1)},
          {"key_longer", kKey + "x"},
          {"key_near_first", near_first},
          {"key_near_last", near_last},
          {"key_upper", upper},
          {"key_encoded", encode_every_byte(kKey)}};
}

std::filesystem::path plugin_database(const std::filesystem::path& host_data_dir) {
  return host_data_dir / "plugins" / "com.wavoip.recordings" / "wavoip.sqlite";
}

std::vector<std::string> stored_delivery_bodies(const std::filesystem::path& database) {
  SQLite::Database db(database.string(), SQLite::OPEN_READONLY);
  SQLite::Statement query(db, "SELECT body FROM deliveries ORDER BY id");
  std::vector<std::string> bodies;
  while (query.executeStep()) {
    const SQLite::Column column = query.getColumn(0);
    bodies.emplace_back(static_cast<const char*>(column.getBlob()), static_cast<size_t>(column.getBytes()));
  }
  return bodies;
}

}  // namespace security
