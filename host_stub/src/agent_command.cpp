#include "agent_command.hpp"

#include <chrono>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>

#include <sodium.h>

#include "agent_store.hpp"
#include "pg_connection.hpp"

namespace hdp::host {
namespace {

constexpr const char* kUsage =
    "usage: hdp-stub-host agent add NAME --data-dir DIR   (password on standard input)\n"
    "       hdp-stub-host agent remove NAME --data-dir DIR\n"
    "       hdp-stub-host agent list --data-dir DIR\n"
    "       (--database postgresql://... instead of --data-dir: the agents of that database)\n";

// One line of in, without its line end; nullopt when it is longer than the limit or absent.
std::optional<std::string> read_password(std::FILE* in) {
  std::string line;
  int c = 0;
  while ((c = std::fgetc(in)) != EOF && c != '\n') {
    if (line.size() > kMaxPasswordBytes) return std::nullopt;
    line.push_back(static_cast<char>(c));
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty() && c == EOF) return std::nullopt;
  return line;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int run_agent_command(std::span<const std::string_view> args, std::FILE* in, std::FILE* out, std::FILE* err) {
  std::string_view verb;
  std::string_view name;
  std::optional<std::filesystem::path> data_dir;
  std::string database;  // postgresql://...: the agents shared by several hosts
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--data-dir" && i + 1 < args.size() && !args[i + 1].empty()) {
      data_dir = std::filesystem::path(std::string(args[++i]));
    } else if (a.starts_with("--data-dir=") && a.size() > 11) {
      data_dir = std::filesystem::path(std::string(a.substr(11)));
    } else if (a == "--database" && i + 1 < args.size() && is_postgresql_uri(args[i + 1])) {
      database = std::string(args[++i]);
    } else if (a.starts_with("--database=") && is_postgresql_uri(a.substr(11))) {
      database = std::string(a.substr(11));
    } else if (a.starts_with("--")) {
      std::fprintf(err, "unknown or incomplete option \"%.*s\"\n%s", static_cast<int>(a.size()), a.data(), kUsage);
      return 1;
    } else if (verb.empty()) {
      verb = a;
    } else if (name.empty()) {
      name = a;
    } else {
      std::fputs(kUsage, err);
      return 1;
    }
  }
  const bool needs_name = verb == "add" || verb == "remove";
  if ((!needs_name && verb != "list") || needs_name == name.empty() || (!data_dir && database.empty())) {
    std::fputs(kUsage, err);
    return 1;
  }
  if (needs_name && !is_valid_agent_name(name)) {
    std::fputs("the name must have 1 to 64 characters of A-Z a-z 0-9 . _ @ - and not start with -\n", err);
    return 1;
  }
  try {
    StoreLocation location{{}, database};
    if (database.empty()) {
      std::filesystem::create_directories(*data_dir);
      location.sqlite_file = *data_dir / "helpdesk.sqlite3";
    }
    AgentStore agents(location);
    if (verb == "list") {
      for (const AgentRow& row : agents.list()) std::fprintf(out, "%s\n", row.name.c_str());
      return 0;
    }
    if (verb == "remove") {
      if (!agents.remove(name)) {
        std::fprintf(err, "no agent \"%.*s\"\n", static_cast<int>(name.size()), name.data());
        return 1;
      }
      std::fprintf(out, "removed agent \"%.*s\"; their sessions end at their next request\n",
                   static_cast<int>(name.size()), name.data());
      return 0;
    }
    auto password = read_password(in);
    if (!password) {
      std::fprintf(err, "expected the password on standard input: one line of %zu to %zu bytes\n", kMinPasswordBytes,
                   kMaxPasswordBytes);
      return 1;
    }
    const AgentStore::AddResult result = agents.add(name, *password, now_ms());
    sodium_memzero(password->data(), password->size());
    switch (result) {
      case AgentStore::AddResult::added:
        std::fprintf(out, "added agent \"%.*s\"\n", static_cast<int>(name.size()), name.data());
        return 0;
      case AgentStore::AddResult::exists:
        std::fprintf(err, "an agent \"%.*s\" exists already; remove it first to set a new password\n",
                     static_cast<int>(name.size()), name.data());
        return 1;
      case AgentStore::AddResult::bad_password:
        std::fprintf(err, "the password must have %zu to %zu bytes\n", kMinPasswordBytes, kMaxPasswordBytes);
        return 1;
      case AgentStore::AddResult::bad_name: break;
    }
    std::fputs("the name is not valid\n", err);
    return 1;
  } catch (const std::exception& e) {
    const std::string where =
        database.empty() ? "the data directory " + data_dir->string() : describe_postgresql_uri(database);
    std::fprintf(err, "cannot use %s: %s\n", where.c_str(), e.what());
    return 1;
  }
}

}  // namespace hdp::host
