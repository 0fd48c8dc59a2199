#include "wavoip/store/open_store.hpp"

#include <sqlite_wal/background_checkpoint.hpp>

#include <filesystem>

#include "wavoip/store/pg_store.hpp"

namespace wavoip {

namespace {
constexpr std::size_t kPluginWriteBackCalls = 256;
}  // namespace

std::unique_ptr<Store> open_store(const Config& config, const std::string& data_dir) {
  if (is_postgresql_uri(config.database)) return std::make_unique<PgStore>(config.database);
  const std::string path = database_path(config, data_dir);
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  SqliteOptions options;
  options.synchronous = config.database_synchronous;
  // The plugin's file is its own (one process, one connection): the records deliveries change
  // are written back in groups, and a restart replays what a crash kept from them.
  options.write_back_calls = kPluginWriteBackCalls;
  options.background_checkpoint_pages = sqlite_wal::kDefaultPages;
  return std::make_unique<SqliteStore>(path, options);
}

std::string describe_database(const Config& config, const std::string& data_dir) {
  if (is_postgresql_uri(config.database)) return "PostgreSQL " + describe_postgresql_uri(config.database);
  return database_path(config, data_dir);
}

}  // namespace wavoip
