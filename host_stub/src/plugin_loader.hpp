// Finds a plugin's entry without running any of its code beyond the loader: dlopen(RTLD_NOW |
// RTLD_LOCAL), dlsym(HDP_ENTRY_SYMBOL), then the checks of entry.h (major version, struct_size,
// metadata, mandatory callbacks, unique id). The library is never dlclose()d.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <variant>

#include <hdp/entry.h>

namespace hdp::host {

struct LoadedPlugin {
  std::string path;
  void* handle = nullptr;
  const hdp_plugin_entry_t* entry = nullptr;
  // Copied from the entry.
  std::string id;
  std::string name;
  std::string vendor;
  std::string version;
  std::string description;
};

struct LoadRefusal {
  std::string reason;  // one line, without the file name
};

using LoadResult = std::variant<LoadedPlugin, LoadRefusal>;

// A plugin id is also a directory name: letters, digits, '.', '-', '_', not starting with '.'.
bool is_valid_plugin_id(std::string_view id);

// Checks an entry as read from a plugin (pure; also used on hand-made entries in tests).
// loaded_ids are the ids already loaded.
LoadResult check_entry(const hdp_plugin_entry_t* entry, std::string_view path, std::span<const std::string> loaded_ids);

// dlopen + dlsym + check_entry.
LoadResult load_plugin(const std::string& path, std::span<const std::string> loaded_ids);

}  // namespace hdp::host
