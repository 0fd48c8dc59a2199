// The one exported symbol and the C/C++ barrier: no exception crosses the ABI.
#include "host_api.hpp"
#include "recordings_plugin.hpp"

#include <hdp/hdp.h>

#include <curl/curl.h>

#include <memory>
#include <new>

namespace {

using wavoip::RecordingsPlugin;

struct PluginObject {
  hdp_plugin_t c{};
  std::unique_ptr<RecordingsPlugin> impl;
};

RecordingsPlugin* impl_of(const hdp_plugin_t* plugin) {
  return static_cast<PluginObject*>(plugin->plugin_data)->impl.get();
}

hdp_status_t plugin_init(const hdp_plugin_t* plugin) {
  RecordingsPlugin* self = impl_of(plugin);
  hdp_status_t status = HDP_ERR_INTERNAL;
  wavoip::without_exceptions(self->host(), "init", [&] { status = self->init(); });
  return status;
}

hdp_status_t plugin_start(const hdp_plugin_t* plugin) {
  RecordingsPlugin* self = impl_of(plugin);
  hdp_status_t status = HDP_ERR_INTERNAL;
  wavoip::without_exceptions(self->host(), "start", [&] { status = self->start(); });
  return status;
}

void plugin_stop(const hdp_plugin_t* plugin) {
  RecordingsPlugin* self = impl_of(plugin);
  wavoip::without_exceptions(self->host(), "stop", [&] { self->stop(); });
}

void plugin_destroy(const hdp_plugin_t* plugin) {
  delete static_cast<PluginObject*>(plugin->plugin_data);
}

const hdp_plugin_t* create_plugin(const hdp_host_t* host) {
  // The core members we call all lie inside the version-1 table.
  if (host == nullptr || host->struct_size < HDP_HOST_V1_SIZE || !hdp_version_is_compatible(host->abi_version)) {
    return nullptr;
  }
  try {
    auto object = std::make_unique<PluginObject>();
    object->impl = std::make_unique<RecordingsPlugin>(host);
    object->c.struct_size = sizeof(hdp_plugin_t);
    object->c.plugin_data = object.get();
    object->c.init = plugin_init;
    object->c.start = plugin_start;
    object->c.stop = plugin_stop;
    object->c.destroy = plugin_destroy;
    object->c.get_extension = nullptr;
    return &object.release()->c;
  } catch (...) {
    return nullptr;
  }
}

// libcurl's global state is set up once per load, before any plugin object exists.
bool entry_init(const char* /*plugin_path*/) {
  return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void entry_deinit() {
  curl_global_cleanup();
}

}  // namespace

extern "C" HDP_EXPORT const hdp_plugin_entry_t hdp_plugin_entry_v1 = {
    HDP_VERSION_INIT,
    sizeof(hdp_plugin_entry_t),
    "com.wavoip.recordings",
    "WaVoIP call recordings",
    "helpdesk-wavoip-recordings",
    WAVOIP_PLUGIN_VERSION,
    "Attaches WaVoIP call recordings to the call's conversation message",
    entry_init,
    entry_deinit,
    create_plugin,
};
