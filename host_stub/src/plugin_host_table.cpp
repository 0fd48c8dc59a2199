#include "plugin_host_table.hpp"

#include <algorithm>
#include <cstring>
#include <system_error>
#include <utility>

#include "attachment_jobs.hpp"
#include "batched_writes.hpp"
#include "clock.hpp"
#include "event_loop.hpp"
#include "extensions.hpp"
#include "fd_watches.hpp"
#include "router.hpp"
#include "timers.hpp"

namespace hdp::host {

const char* host_name() {
  return "hdp-stub-host";
}
const char* host_version() {
  return "0.1.0";
}

std::string status_text(hdp_status_t status) {
  const char* name = "unknown status";
  switch (status) {
    case HDP_OK: name = "HDP_OK"; break;
    case HDP_ERR_INVALID_ARGUMENT: name = "HDP_ERR_INVALID_ARGUMENT"; break;
    case HDP_ERR_NOT_FOUND: name = "HDP_ERR_NOT_FOUND"; break;
    case HDP_ERR_ALREADY_EXISTS: name = "HDP_ERR_ALREADY_EXISTS"; break;
    case HDP_ERR_BAD_STATE: name = "HDP_ERR_BAD_STATE"; break;
    case HDP_ERR_UNSUPPORTED: name = "HDP_ERR_UNSUPPORTED"; break;
    case HDP_ERR_LIMIT: name = "HDP_ERR_LIMIT"; break;
    case HDP_ERR_IO: name = "HDP_ERR_IO"; break;
    case HDP_ERR_CANCELLED: name = "HDP_ERR_CANCELLED"; break;
    case HDP_ERR_TIMEOUT: name = "HDP_ERR_TIMEOUT"; break;
    case HDP_ERR_NO_MEMORY: name = "HDP_ERR_NO_MEMORY"; break;
    case HDP_ERR_INTERNAL: name = "HDP_ERR_INTERNAL"; break;
    default: break;
  }
  return std::string(name) + " (" + std::to_string(status) + ")";
}

std::filesystem::path prepare_data_dir(const std::filesystem::path& data_root, std::string_view id) {
  const std::filesystem::path dir =
      (std::filesystem::absolute(data_root) / "plugins" / std::string(id)).lexically_normal();
  std::filesystem::create_directories(dir);
  return dir;
}

PluginContext::PluginContext(HostServices& services, uint64_t owner, LoadedPlugin loaded, std::string config,
                             std::filesystem::path data_dir)
    : services_(services),
      owner_(owner),
      loaded_(std::move(loaded)),
      config_(std::move(config)),
      data_dir_(std::move(data_dir)),
      data_dir_text_(data_dir_.string()) {
  host_.abi_version = hdp_version_t HDP_VERSION_INIT;
  host_.struct_size = sizeof(hdp_host_t);
  host_.name = host_name();
  host_.vendor = "helpdesk-wavoip";
  host_.version = host_version();
  host_.host_data = this;
  host_.get_extension = &PluginContext::get_extension;
  host_.log = &PluginContext::log_fn;
  host_.log_enabled = &PluginContext::log_enabled_fn;
  host_.wall_clock_us = &PluginContext::wall_clock_us_fn;
  host_.monotonic_clock_us = &PluginContext::monotonic_clock_us_fn;
  host_.request_main_thread_callback = &PluginContext::request_main_thread_callback_fn;
  host_.get_config = &PluginContext::get_config_fn;
  host_.get_data_dir = &PluginContext::get_data_dir_fn;
}

PluginContext* PluginContext::from(const hdp_host_t* host) {
  if (host == nullptr || host->host_data == nullptr) return nullptr;
  auto* context = static_cast<PluginContext*>(host->host_data);
  return &context->host_ == host ? context : nullptr;
}

void PluginContext::log(LogLevel level, std::string_view message) {
  services_.log.log(level, loaded_.id, message);
}

bool PluginContext::check_main_thread(const char* function) {
  if (services_.loop.in_main_thread()) return true;
  services_.log.error(std::string("plugin ") + loaded_.id + " called " + function +
                      " off the main thread; refused with HDP_ERR_BAD_STATE");
  return false;
}

hdp_status_t PluginContext::check_may_register(const char* function) {
  if (!check_main_thread(function)) return HDP_ERR_BAD_STATE;
  const PluginState state = state_.load();
  if (state == PluginState::starting || state == PluginState::started) return HDP_OK;
  services_.log.debug(std::string("plugin ") + loaded_.id + " called " + function +
                      " outside start..stop: HDP_ERR_BAD_STATE");
  return HDP_ERR_BAD_STATE;
}

hdp_status_t PluginContext::check_may_use(const char* function) {
  if (!check_main_thread(function)) return HDP_ERR_BAD_STATE;
  const PluginState state = state_.load();
  if (state == PluginState::starting || state == PluginState::started || state == PluginState::stopping ||
      state == PluginState::stopped) {
    return HDP_OK;
  }
  services_.log.debug(std::string("plugin ") + loaded_.id + " called " + function +
                      " before start or after destroy: HDP_ERR_BAD_STATE");
  return HDP_ERR_BAD_STATE;
}

std::optional<std::string> PluginContext::create_and_init() {
  const hdp_plugin_entry_t* entry = loaded_.entry;
  if (!entry->init(loaded_.path.c_str())) {
    state_ = PluginState::destroyed;
    return "entry init refused to load";
  }
  plugin_ = entry->create_plugin(&host_);
  if (plugin_ == nullptr) {
    entry->deinit();
    state_ = PluginState::destroyed;
    return "create_plugin returned NULL";
  }
  if (plugin_->struct_size < HDP_PLUGIN_V1_SIZE) {
    // Not even destroy lies inside the struct: the object is abandoned.
    const uint32_t size = plugin_->struct_size;
    plugin_ = nullptr;
    entry->deinit();
    state_ = PluginState::destroyed;
    return "plugin struct_size " + std::to_string(size) + " is below the version-1 size " +
           std::to_string(HDP_PLUGIN_V1_SIZE);
  }
  if (plugin_->init == nullptr || plugin_->start == nullptr || plugin_->stop == nullptr ||
      plugin_->destroy == nullptr) {
    if (plugin_->destroy != nullptr) plugin_->destroy(plugin_);
    plugin_ = nullptr;
    entry->deinit();
    state_ = PluginState::destroyed;
    return "the plugin object's init, start, stop or destroy is NULL";
  }
  state_ = PluginState::created;
  const hdp_status_t status = plugin_->init(plugin_);
  if (status != HDP_OK) {
    services_.loop.drop_queued(owner_);
    destroy_and_deinit();
    return "plugin init failed: " + status_text(status);
  }
  state_ = PluginState::initialized;
  return std::nullopt;
}

std::optional<std::string> PluginContext::start() {
  state_ = PluginState::starting;
  const hdp_status_t status = plugin_->start(plugin_);
  if (status == HDP_OK) {
    state_ = PluginState::started;
    return std::nullopt;
  }
  state_ = PluginState::stopping;
  cancel_registrations();
  services_.loop.drop_queued(owner_);
  destroy_and_deinit();
  return "plugin start failed: " + status_text(status);
}

void PluginContext::cancel_registrations() {
  services_.timers.cancel_owner(owner_);
  services_.fds.remove_owner(owner_);
  services_.router.remove_owner_routes(owner_);
  services_.router.fail_deferred(owner_);
  // Queued writes are committed rather than dropped; their completions (and those of attachment
  // rows already copied) run now, before stop, as cancellations.
  services_.writes.finish_owner(owner_);
  services_.attachments.cancel_owner(owner_);
}

void PluginContext::cancel_everything() {
  if (state_ != PluginState::started) return;
  state_ = PluginState::stopping;
  cancel_registrations();
}

void PluginContext::stop() {
  if (state_ != PluginState::stopping) return;
  plugin_->stop(plugin_);
  state_ = PluginState::stopped;
  // Whatever the plugin registered from inside stop (it should not) goes too.
  services_.timers.cancel_owner(owner_);
  services_.fds.remove_owner(owner_);
}

void PluginContext::destroy_and_deinit() {
  if (plugin_ != nullptr) {
    plugin_->destroy(plugin_);
    plugin_ = nullptr;
  }
  if (state_ != PluginState::destroyed) loaded_.entry->deinit();
  state_ = PluginState::destroyed;
}

// --- the core host table --------------------------------------------------------------------

const void* PluginContext::get_extension(const hdp_host_t* host, const char* extension_id) {
  if (from(host) == nullptr || extension_id == nullptr) return nullptr;
  const std::vector<std::string>& disabled = from(host)->services().disabled_extensions;
  if (std::find(disabled.begin(), disabled.end(), extension_id) != disabled.end()) return nullptr;
  if (std::strcmp(extension_id, HDP_EXT_TIMERS) == 0) return timers_extension();
  if (std::strcmp(extension_id, HDP_EXT_POSIX_FD) == 0) return posix_fd_extension();
  if (std::strcmp(extension_id, HDP_EXT_HTTP) == 0) return http_extension();
  if (std::strcmp(extension_id, HDP_EXT_MESSAGES) == 0) return messages_extension();
  if (std::strcmp(extension_id, HDP_EXT_MESSAGES_V2) == 0) return messages2_extension();
  if (std::strcmp(extension_id, HDP_EXT_MESSAGES_V3) == 0) return messages3_extension();
  if (std::strcmp(extension_id, HDP_EXT_ATTACHMENTS) == 0) return attachments_extension();
  if (std::strcmp(extension_id, HDP_EXT_METRICS) == 0) {
    return from(host)->services().metrics != nullptr ? metrics_extension() : nullptr;
  }
  return nullptr;
}

void PluginContext::log_fn(const hdp_host_t* host, int32_t level, const char* message) {
  PluginContext* context = from(host);
  if (context == nullptr || message == nullptr) return;
  context->log(clamp_log_level(level), message);
}

bool PluginContext::log_enabled_fn(const hdp_host_t* host, int32_t level) {
  PluginContext* context = from(host);
  return context != nullptr && context->services_.log.enabled(clamp_log_level(level));
}

int64_t PluginContext::wall_clock_us_fn(const hdp_host_t* host) {
  PluginContext* context = from(host);
  return context == nullptr ? 0 : context->services_.clock.wall_us();
}

int64_t PluginContext::monotonic_clock_us_fn(const hdp_host_t* host) {
  PluginContext* context = from(host);
  return context == nullptr ? 0 : context->services_.clock.monotonic_us();
}

hdp_status_t PluginContext::request_main_thread_callback_fn(const hdp_host_t* host, hdp_main_thread_callback_t callback,
                                                            void* user_data) {
  PluginContext* context = from(host);
  if (context == nullptr || callback == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  const PluginState state = context->state_.load();
  if (state == PluginState::stopping || state == PluginState::stopped || state == PluginState::destroyed) {
    return HDP_ERR_BAD_STATE;
  }
  const bool queued = context->services_.loop.post_from_any_thread(context->owner_, [context, callback, user_data] {
    if (context->state_.load() != PluginState::destroyed) callback(user_data);
  });
  return queued ? HDP_OK : HDP_ERR_BAD_STATE;
}

void PluginContext::get_config_fn(const hdp_host_t* host, const uint8_t** out_data, size_t* out_size) {
  PluginContext* context = from(host);
  static constexpr uint8_t kEmpty[1] = {0};
  if (out_data != nullptr) {
    *out_data = context == nullptr ? kEmpty : reinterpret_cast<const uint8_t*>(context->config_.data());
  }
  if (out_size != nullptr) *out_size = context == nullptr ? 0 : context->config_.size();
}

const char* PluginContext::get_data_dir_fn(const hdp_host_t* host) {
  PluginContext* context = from(host);
  return context == nullptr ? "" : context->data_dir_text_.c_str();
}

}  // namespace hdp::host
