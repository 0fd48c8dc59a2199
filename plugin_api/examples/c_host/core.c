/* core.c - the core host table each plugin gets (hdp_host_t: log, clocks, main-thread callbacks,
 * configuration, data directory) and get_extension, which hands out the extension tables. */
#include "c_host.h"

/* ---- core table ------------------------------------------------------------------------------ */

void core_log(const hdp_host_t* host, int32_t level, const char* message) {
  const loaded_plugin_t* p = plugin_of(host);
  log_line(level, p->entry->id, message != NULL ? message : "(null)");
}

bool core_log_enabled(const hdp_host_t* host, int32_t level) {
  (void)host;
  return clamp_level(level) >= g_log_level;
}

int64_t core_wall_clock_us(const hdp_host_t* host) {
  (void)host;
  return wall_us();
}

int64_t core_monotonic_clock_us(const hdp_host_t* host) {
  (void)host;
  return monotonic_us();
}

hdp_status_t core_request_main_thread_callback(const hdp_host_t* host, hdp_main_thread_callback_t callback,
                                               void* user_data) {
  main_thread_call_t* call;
  hdp_status_t status = HDP_OK;
  if (callback == NULL) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  call = (main_thread_call_t*)calloc(1, sizeof *call);
  if (call == NULL) {
    return HDP_ERR_NO_MEMORY;
  }
  call->owner = plugin_of(host);
  call->callback = callback;
  call->user_data = user_data;
  pthread_mutex_lock(&g_host.calls_mutex);
  if (g_host.calls_closed) {
    status = HDP_ERR_BAD_STATE;
  } else if (g_host.calls_tail != NULL) {
    g_host.calls_tail->next = call;
    g_host.calls_tail = call;
  } else {
    g_host.calls_head = g_host.calls_tail = call;
  }
  pthread_mutex_unlock(&g_host.calls_mutex);
  if (status != HDP_OK) {
    free(call);
    return status;
  }
  wake_loop();
  return HDP_OK;
}

void core_get_config(const hdp_host_t* host, const uint8_t** out_data, size_t* out_size) {
  const loaded_plugin_t* p = plugin_of(host);
  if (out_data != NULL) {
    *out_data = (const uint8_t*)p->config;
  }
  if (out_size != NULL) {
    *out_size = p->config_len;
  }
}

const char* core_get_data_dir(const hdp_host_t* host) {
  return plugin_of(host)->data_dir;
}

/* Runs the queued main-thread callbacks. With close_queue, later requests get BAD_STATE. */
void run_main_thread_calls(bool close_queue) {
  main_thread_call_t* call;
  pthread_mutex_lock(&g_host.calls_mutex);
  call = g_host.calls_head;
  g_host.calls_head = g_host.calls_tail = NULL;
  if (close_queue) {
    g_host.calls_closed = true;
  }
  pthread_mutex_unlock(&g_host.calls_mutex);
  while (call != NULL) {
    main_thread_call_t* next = call->next;
    if (call->owner->state == PLUGIN_STARTED || call->owner->state == PLUGIN_INITIALIZED) {
      call->callback(call->user_data);
    }
    free(call);
    call = next;
  }
}

/* ---- extensions ------------------------------------------------------------------------------ */

static bool extension_disabled(const char* id) {
  size_t i;
  for (i = 0; i < g_host.options.disabled_count; ++i) {
    if (strcmp(g_host.options.disabled_extensions[i], id) == 0) {
      return true;
    }
  }
  return false;
}

const void* core_get_extension(const hdp_host_t* host, const char* extension_id) {
  const void* table = NULL;
  (void)host;
  if (extension_id == NULL || extension_disabled(extension_id)) {
    return NULL;
  }
  if (strcmp(extension_id, HDP_EXT_TIMERS) == 0) {
    table = &g_timers_ext;
  } else if (strcmp(extension_id, HDP_EXT_POSIX_FD) == 0) {
    table = &g_posix_fd_ext;
  } else if (strcmp(extension_id, HDP_EXT_HTTP) == 0) {
    table = &g_http_ext;
  } else if (strcmp(extension_id, HDP_EXT_MESSAGES) == 0) {
    table = &g_messages_ext;
  } else if (strcmp(extension_id, HDP_EXT_MESSAGES_V2) == 0) {
    table = &g_messages2_ext;
  } else if (strcmp(extension_id, HDP_EXT_MESSAGES_V3) == 0) {
    table = &g_messages3_ext;
  } else if (strcmp(extension_id, HDP_EXT_ATTACHMENTS) == 0) {
    table = &g_attachments_ext;
  }
  return table;
}
