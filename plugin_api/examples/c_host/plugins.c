/* plugins.c - loading a plugin (dlopen, the entry's checks, one refusal line), starting it, and
 * stopping every plugin (cancelling its work first). */
#include "c_host.h"

/* ---- loading and refusing -------------------------------------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
refuse(const char* path, const char* fmt, ...) {
  char reason[1024];
  va_list args;
  va_start(args, fmt);
  vsnprintf(reason, sizeof reason, fmt, args);
  va_end(args);
  host_log(HDP_LOG_ERROR, "refused plugin %s: %s", path, reason);
}

static const char* status_name(hdp_status_t status) {
  switch (status) {
    case HDP_OK: return "HDP_OK";
    case HDP_ERR_INVALID_ARGUMENT: return "HDP_ERR_INVALID_ARGUMENT";
    case HDP_ERR_NOT_FOUND: return "HDP_ERR_NOT_FOUND";
    case HDP_ERR_ALREADY_EXISTS: return "HDP_ERR_ALREADY_EXISTS";
    case HDP_ERR_BAD_STATE: return "HDP_ERR_BAD_STATE";
    case HDP_ERR_UNSUPPORTED: return "HDP_ERR_UNSUPPORTED";
    case HDP_ERR_LIMIT: return "HDP_ERR_LIMIT";
    case HDP_ERR_IO: return "HDP_ERR_IO";
    case HDP_ERR_CANCELLED: return "HDP_ERR_CANCELLED";
    case HDP_ERR_TIMEOUT: return "HDP_ERR_TIMEOUT";
    case HDP_ERR_NO_MEMORY: return "HDP_ERR_NO_MEMORY";
    case HDP_ERR_INTERNAL: return "HDP_ERR_INTERNAL";
    default: return "an unknown failure";
  }
}

/* The id names a directory under <data dir>/plugins/, so it must be a plain file name. */
static bool id_usable(const char* id) {
  const char* c;
  if (id[0] == '\0' || strcmp(id, ".") == 0 || strcmp(id, "..") == 0 || strlen(id) > 200) {
    return false;
  }
  for (c = id; *c != '\0'; ++c) {
    if (*c == '/' || (unsigned char)*c < 0x20) {
      return false;
    }
  }
  return true;
}

/* Every check that needs no plugin code; returns the refusal reason or NULL. */
static const char* check_entry(const hdp_plugin_entry_t* entry, char* reason, size_t reason_size) {
  size_t i;
  if (entry->abi_version.major != HDP_VERSION_MAJOR) {
    snprintf(reason, reason_size,
             "ABI major %" PRIu32 " (%" PRIu32 ".%" PRIu32 ".%" PRIu32 "), this host speaks major %d",
             entry->abi_version.major, entry->abi_version.major, entry->abi_version.minor, entry->abi_version.patch,
             HDP_VERSION_MAJOR);
    return reason;
  }
  if (entry->struct_size < HDP_PLUGIN_ENTRY_V1_SIZE) {
    snprintf(reason, reason_size, "entry struct_size %" PRIu32 " is below the version-1 size %zu", entry->struct_size,
             (size_t)HDP_PLUGIN_ENTRY_V1_SIZE);
    return reason;
  }
  if (entry->id == NULL || !id_usable(entry->id)) {
    snprintf(reason, reason_size, "entry id is missing or not a usable name");
    return reason;
  }
  if (entry->name == NULL || entry->vendor == NULL || entry->version == NULL || entry->description == NULL) {
    snprintf(reason, reason_size, "entry %s is NULL",
             entry->name == NULL      ? "name"
             : entry->vendor == NULL  ? "vendor"
             : entry->version == NULL ? "version"
                                      : "description");
    return reason;
  }
  if (entry->init == NULL || entry->deinit == NULL || entry->create_plugin == NULL) {
    snprintf(reason, reason_size, "entry %s is NULL",
             entry->init == NULL     ? "init"
             : entry->deinit == NULL ? "deinit"
                                     : "create_plugin");
    return reason;
  }
  for (i = 0; i < g_host.plugins.len; ++i) {
    const loaded_plugin_t* other = (const loaded_plugin_t*)g_host.plugins.items[i];
    if (strcmp(other->entry->id, entry->id) == 0) {
      snprintf(reason, reason_size, "duplicate plugin id %s (already loaded from %s)", entry->id, other->path);
      return reason;
    }
  }
  return NULL;
}

void free_plugin(void* item) {
  loaded_plugin_t* p = (loaded_plugin_t*)item;
  free(p->path);
  free(p->config);
  free(p->data_dir);
  free(p);
}

/* Loads, checks, runs entry.init, create_plugin and plugin.init. On refusal, undoes what ran
 * (destroy, deinit) and returns false; the handle stays open (no dlclose by default). */
bool load_plugin(const char* path, const char* config) {
  char reason[1024];
  char data_dir[4096];
  loaded_plugin_t* p;
  void* handle;
  void* symbol;
  const hdp_plugin_entry_t* entry;
  const hdp_plugin_t* plugin;
  hdp_status_t status;

  handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    const char* error = dlerror();
    refuse(path, "not a loadable shared object (%s)", error != NULL ? error : "dlopen failed");
    return false;
  }
  symbol = dlsym(handle, HDP_ENTRY_SYMBOL);
  if (symbol == NULL) {
    refuse(path, "no symbol " HDP_ENTRY_SYMBOL);
    return false;
  }
  entry = (const hdp_plugin_entry_t*)symbol;
  if (check_entry(entry, reason, sizeof reason) != NULL) {
    refuse(path, "%s", reason);
    return false;
  }

  p = (loaded_plugin_t*)calloc(1, sizeof *p);
  if (p == NULL) {
    refuse(path, "out of memory");
    return false;
  }
  snprintf(data_dir, sizeof data_dir, "%s/plugins/%s", g_host.data_dir, entry->id);
  p->path = str_dup(path);
  p->config = str_dup(config != NULL ? config : "");
  p->data_dir = str_dup(data_dir);
  if (p->path == NULL || p->config == NULL || p->data_dir == NULL || !vec_push(&g_host.plugins, p)) {
    free_plugin(p);
    refuse(path, "out of memory");
    return false;
  }
  p->config_len = strlen(p->config);
  p->handle = handle;
  p->entry = entry;
  p->state = PLUGIN_LOADED;
  if (!mkdir_p(p->data_dir)) {
    refuse(path, "cannot create its data directory %s: %s", p->data_dir, strerror(errno));
    return false;
  }
  if (entry->abi_version.minor != HDP_VERSION_MINOR) {
    plugin_log(p, HDP_LOG_INFO,
               "built against ABI %" PRIu32 ".%" PRIu32 ".%" PRIu32
               ", host speaks %d.%d.%d: only what both know is used",
               entry->abi_version.major, entry->abi_version.minor, entry->abi_version.patch, HDP_VERSION_MAJOR,
               HDP_VERSION_MINOR, HDP_VERSION_PATCH);
  }

  p->host.abi_version.major = HDP_VERSION_MAJOR;
  p->host.abi_version.minor = HDP_VERSION_MINOR;
  p->host.abi_version.patch = HDP_VERSION_PATCH;
  p->host.struct_size = (uint32_t)sizeof p->host;
  p->host.name = HOST_NAME;
  p->host.vendor = "hdp";
  p->host.version = HOST_VERSION;
  p->host.host_data = p;
  p->host.get_extension = core_get_extension;
  p->host.log = core_log;
  p->host.log_enabled = core_log_enabled;
  p->host.wall_clock_us = core_wall_clock_us;
  p->host.monotonic_clock_us = core_monotonic_clock_us;
  p->host.request_main_thread_callback = core_request_main_thread_callback;
  p->host.get_config = core_get_config;
  p->host.get_data_dir = core_get_data_dir;

  if (!entry->init(path)) {
    refuse(path, "entry init returned false");
    return false;
  }
  p->state = PLUGIN_ENTRY_READY;
  plugin = entry->create_plugin(&p->host);
  if (plugin == NULL) {
    entry->deinit();
    refuse(path, "create_plugin returned NULL");
    return false;
  }
  if (plugin->struct_size < HDP_PLUGIN_V1_SIZE) {
    /* Nothing in a table this small can be trusted, not even destroy. */
    entry->deinit();
    refuse(path, "plugin struct_size %" PRIu32 " is below the version-1 size %zu", plugin->struct_size,
           (size_t)HDP_PLUGIN_V1_SIZE);
    return false;
  }
  p->plugin = plugin;
  p->state = PLUGIN_CREATED;
  if (plugin->init == NULL || plugin->start == NULL || plugin->stop == NULL || plugin->destroy == NULL) {
    if (plugin->destroy != NULL) {
      plugin->destroy(plugin);
    }
    entry->deinit();
    p->state = PLUGIN_DESTROYED;
    refuse(path, "plugin %s is NULL",
           plugin->init == NULL    ? "init"
           : plugin->start == NULL ? "start"
           : plugin->stop == NULL  ? "stop"
                                   : "destroy");
    return false;
  }
  status = plugin->init(plugin);
  if (status != HDP_OK) {
    plugin->destroy(plugin);
    entry->deinit();
    p->state = PLUGIN_DESTROYED;
    refuse(path, "plugin init failed with status %" PRId32 " (%s)", status, status_name(status));
    return false;
  }
  p->state = PLUGIN_INITIALIZED;
  host_log(HDP_LOG_INFO, "loaded %s %s (%s) from %s", entry->id, entry->version, entry->name, path);
  return true;
}

/* Cancels everything the plugin registered and fails its pending work, in the ABI's order:
 * routes and new requests first, then timers and fd watches, then pending answers, then jobs. */
static void cancel_plugin_work(loaded_plugin_t* p) {
  size_t i;
  for (i = 0; i < g_host.routes.len; ++i) {
    http_route_t* route = (http_route_t*)g_host.routes.items[i];
    if (route->owner == p) {
      route->dead = true;
    }
  }
  for (i = 0; i < g_host.timers.len; ++i) {
    host_timer_t* timer = (host_timer_t*)g_host.timers.items[i];
    if (!timer->dead && timer->owner == p) {
      timer_kill(timer);
    }
  }
  for (i = 0; i < g_host.fd_watches.len; ++i) {
    fd_watch_t* watch = (fd_watch_t*)g_host.fd_watches.items[i];
    if (watch->owner == p) {
      watch->dead = true;
    }
  }
  for (i = 0; i < g_host.conns.len; ++i) {
    http_conn_t* conn = (http_conn_t*)g_host.conns.items[i];
    if (conn->state == CONN_WAIT_PLUGIN && conn->owner == p) {
      conn_fail_pending(conn, 503, "the host is shutting down");
    }
  }
  /* Queued message operations are applied, not dropped, then cancelled before stop: a stopping
   * plugin hears only cancellations. */
  apply_message_ops();
  for (i = 0; i < g_host.message_ops.len; ++i) {
    message_op_t* op = (message_op_t*)g_host.message_ops.items[i];
    if (!op->dead && op->owner == p) {
      op->status = HDP_ERR_CANCELLED;
      complete_message_op(op);
    }
  }
  for (i = 0; i < g_host.jobs.len; ++i) {
    attach_job_t* job = (attach_job_t*)g_host.jobs.items[i];
    if (!job->dead && job->owner == p) {
      complete_job(job, HDP_ERR_CANCELLED, 0, 0);
    }
  }
}

static void destroy_plugin(loaded_plugin_t* p) {
  if (p->plugin != NULL && p->state != PLUGIN_DESTROYED) {
    p->plugin->destroy(p->plugin);
    p->entry->deinit();
    p->state = PLUGIN_DESTROYED;
  }
}

bool start_plugin(loaded_plugin_t* p) {
  hdp_status_t status;
  p->state = PLUGIN_STARTING;
  status = p->plugin->start(p->plugin);
  if (status != HDP_OK) {
    p->state = PLUGIN_STOPPING;
    cancel_plugin_work(p);
    destroy_plugin(p); /* a failed start gets no stop */
    refuse(p->path, "plugin start failed with status %" PRId32 " (%s)", status, status_name(status));
    return false;
  }
  p->state = PLUGIN_STARTED;
  return true;
}

/* The ABI's shutdown: stop new requests, cancel timers and fds, fail pending work, stop, destroy,
 * deinit; plugins in reverse load order. */
void stop_plugins(void) {
  size_t i = g_host.plugins.len;
  run_main_thread_calls(true);
  if (g_host.listen_fd >= 0) {
    close(g_host.listen_fd);
    g_host.listen_fd = -1;
  }
  while (i-- > 0) {
    loaded_plugin_t* p = (loaded_plugin_t*)g_host.plugins.items[i];
    if (p->state == PLUGIN_STARTED) {
      p->state = PLUGIN_STOPPING;
      cancel_plugin_work(p);
      p->plugin->stop(p->plugin);
      p->state = PLUGIN_STOPPED;
    }
    destroy_plugin(p);
  }
}
