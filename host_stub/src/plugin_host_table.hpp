// One hdp_host_t per plugin: its host_data points at the PluginContext that holds the plugin's
// id, configuration bytes, data directory and lifecycle state, so every host function knows
// which plugin is calling. The context also drives the plugin through its lifecycle
// (plugin.h) and refuses calls that are illegal in the current state.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <hdp/hdp.h>

#include "log.hpp"
#include "plugin_loader.hpp"

namespace hdp::host {

class AttachmentJobs;
class BatchedWrites;
class Clock;
class EventLoop;
class FdWatches;
class HelpdeskStore;
class HostMetrics;
class MetricsRegistry;
class Router;
class TimerService;

// What the host offers every plugin. All references outlive the plugin contexts.
struct HostServices {
  Logger& log;
  Clock& clock;
  EventLoop& loop;
  TimerService& timers;
  FdWatches& fds;
  Router& router;
  HelpdeskStore& store;
  AttachmentJobs& attachments;
  // hdp.messages/2 operations and attachment rows, one transaction per loop turn.
  BatchedWrites& writes;
  // ext/metrics.h is offered only when set.
  MetricsRegistry* metrics = nullptr;
  // The host's own families (message writes), when set.
  HostMetrics* host_metrics = nullptr;
  // Tests only: extension ids answered with NULL.
  std::vector<std::string> disabled_extensions;
};

enum class PluginState { loaded, created, initialized, starting, started, stopping, stopped, destroyed };

class PluginContext {
 public:
  // owner: a unique non-zero id under which the plugin's timers, fds, routes and jobs are kept.
  // data_dir is created by the host (see prepare_data_dir).
  PluginContext(HostServices& services, uint64_t owner, LoadedPlugin loaded, std::string config,
                std::filesystem::path data_dir);
  PluginContext(const PluginContext&) = delete;
  PluginContext& operator=(const PluginContext&) = delete;
  ~PluginContext() = default;

  // The context behind a host table, or nullptr for a table that is not one of ours.
  static PluginContext* from(const hdp_host_t* host);

  const hdp_host_t* host() const { return &host_; }
  uint64_t owner() const { return owner_; }
  const std::string& id() const { return loaded_.id; }
  const LoadedPlugin& loaded() const { return loaded_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  PluginState state() const { return state_.load(); }
  HostServices& services() { return services_; }

  // --- lifecycle (plugin.h); each returns the refusal reason, after undoing what it did -----
  // entry.init, create_plugin, plugin checks, plugin.init.
  std::optional<std::string> create_and_init();
  // plugin.start; on failure the plugin's registrations are cancelled, then destroy + deinit.
  std::optional<std::string> start();
  // Shutdown, step 1: no new registrations; cancel timers and fds, drop routes, fail deferred
  // responses (503 + on_cancel), commit the queued hdp.messages/2 operations, then complete them
  // and the attachment jobs with HDP_ERR_CANCELLED.
  void cancel_everything();
  // Shutdown, step 2: plugin.stop.
  void stop();
  // Shutdown, step 3: plugin.destroy then entry.deinit.
  void destroy_and_deinit();

  // --- checks used by every host function ---------------------------------------------------
  // Main thread and a started plugin (or one inside start). Logs what was wrong.
  hdp_status_t check_may_register(const char* function);
  // Main thread and at least created; after stop the resources are gone and lookups give
  // HDP_ERR_NOT_FOUND.
  hdp_status_t check_may_use(const char* function);
  bool check_main_thread(const char* function);

  void log(LogLevel level, std::string_view message);

 private:
  static const void* get_extension(const hdp_host_t* host, const char* extension_id);
  static void log_fn(const hdp_host_t* host, int32_t level, const char* message);
  static bool log_enabled_fn(const hdp_host_t* host, int32_t level);
  static int64_t wall_clock_us_fn(const hdp_host_t* host);
  static int64_t monotonic_clock_us_fn(const hdp_host_t* host);
  static hdp_status_t request_main_thread_callback_fn(const hdp_host_t* host, hdp_main_thread_callback_t callback,
                                                      void* user_data);
  static void get_config_fn(const hdp_host_t* host, const uint8_t** out_data, size_t* out_size);
  static const char* get_data_dir_fn(const hdp_host_t* host);

  void cancel_registrations();

  HostServices& services_;
  const uint64_t owner_;
  const LoadedPlugin loaded_;
  const std::string config_;
  const std::filesystem::path data_dir_;
  const std::string data_dir_text_;
  hdp_host_t host_{};
  const hdp_plugin_t* plugin_ = nullptr;
  std::atomic<PluginState> state_{PluginState::loaded};
};

// Creates <data_root>/plugins/<id>/ and returns its absolute path.
std::filesystem::path prepare_data_dir(const std::filesystem::path& data_root, std::string_view id);

const char* host_name();
const char* host_version();

}  // namespace hdp::host
