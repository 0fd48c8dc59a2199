#include "plugin_loader.hpp"

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace hdp::host {
namespace {

LoadRefusal refuse(std::string reason) {
  return LoadRefusal{std::move(reason)};
}

}  // namespace

bool is_valid_plugin_id(std::string_view id) {
  if (id.empty() || id.size() > 128 || id.front() == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '_';
  });
}

LoadResult check_entry(const hdp_plugin_entry_t* entry, std::string_view path,
                       std::span<const std::string> loaded_ids) {
  if (entry == nullptr) return refuse(std::string(HDP_ENTRY_SYMBOL) + " is NULL");
  // abi_version and struct_size are the two members every major and minor has.
  if (entry->abi_version.major != HDP_VERSION_MAJOR) {
    return refuse("built against ABI " + std::to_string(entry->abi_version.major) + "." +
                  std::to_string(entry->abi_version.minor) + ", this host speaks major " +
                  std::to_string(HDP_VERSION_MAJOR));
  }
  if (entry->struct_size < HDP_PLUGIN_ENTRY_V1_SIZE) {
    return refuse("entry struct_size " + std::to_string(entry->struct_size) + " is below the version-1 size " +
                  std::to_string(HDP_PLUGIN_ENTRY_V1_SIZE));
  }
  if (entry->id == nullptr || entry->id[0] == '\0') return refuse("the entry has no plugin id");
  const std::string id(entry->id);
  if (!is_valid_plugin_id(id)) {
    return refuse("plugin id \"" + id + "\" is not valid (letters, digits, '.', '-', '_')");
  }
  if (entry->name == nullptr || entry->vendor == nullptr || entry->version == nullptr ||
      entry->description == nullptr) {
    return refuse("plugin " + id + ": name, vendor, version or description is NULL");
  }
  if (entry->init == nullptr || entry->deinit == nullptr || entry->create_plugin == nullptr) {
    return refuse("plugin " + id + ": init, deinit or create_plugin is NULL");
  }
  if (std::find(loaded_ids.begin(), loaded_ids.end(), id) != loaded_ids.end()) {
    return refuse("duplicate plugin id " + id + " (already loaded)");
  }
  LoadedPlugin loaded;
  loaded.path = std::string(path);
  loaded.entry = entry;
  loaded.id = id;
  loaded.name = entry->name;
  loaded.vendor = entry->vendor;
  loaded.version = entry->version;
  loaded.description = entry->description;
  return loaded;
}

LoadResult load_plugin(const std::string& path, std::span<const std::string> loaded_ids) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return refuse(std::string("cannot read: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return refuse("not a regular file");
  ::dlerror();
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return refuse(std::string("not a loadable shared object (") + (why != nullptr ? why : "dlopen failed") + ")");
  }
  // Refused libraries stay loaded too: their constructors have run, unloading is not safe.
  ::dlerror();
  void* symbol = ::dlsym(handle, HDP_ENTRY_SYMBOL);
  if (symbol == nullptr) return refuse(std::string("no ") + HDP_ENTRY_SYMBOL + " symbol");
  LoadResult result = check_entry(static_cast<const hdp_plugin_entry_t*>(symbol), path, loaded_ids);
  if (auto* loaded = std::get_if<LoadedPlugin>(&result)) loaded->handle = handle;
  return result;
}

}  // namespace hdp::host
