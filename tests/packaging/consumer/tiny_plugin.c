/* The smallest plugin built against the installed package: metadata, a lifecycle that does
 * nothing, and a metric when the host offers hdp.metrics/1. Only hdp_plugin_entry_v1 may be
 * exported; tiny_plugin_helper is not static on purpose, the version script hides it. */
#include <hdp/hdp.h>

#include <stddef.h>

static const hdp_host_t* g_host;

int tiny_plugin_helper(void);
int tiny_plugin_helper(void) {
  return 42;
}

static hdp_status_t tiny_init(const hdp_plugin_t* plugin) {
  (void)plugin;
  return tiny_plugin_helper() == 42 ? HDP_OK : HDP_ERR_INTERNAL;
}

static hdp_status_t tiny_start(const hdp_plugin_t* plugin) {
  const hdp_host_metrics_t* metrics;
  (void)plugin;
  metrics = (const hdp_host_metrics_t*)g_host->get_extension(g_host, HDP_EXT_METRICS);
  if (metrics != NULL && metrics->struct_size >= HDP_HOST_METRICS_V1_SIZE) {
    hdp_metric_family_t family = {0};
    uint64_t id = 0;
    family.struct_size = (uint32_t)sizeof family;
    family.type = HDP_METRIC_COUNTER;
    family.name = "tiny_starts_total";
    family.help = "Times the tiny plugin started";
    if (metrics->register_metric(g_host, &family, &id) == HDP_OK) {
      metrics->counter_add(g_host, id, NULL, 0, 1.0);
    }
  }
  return HDP_OK;
}

static void tiny_stop(const hdp_plugin_t* plugin) {
  (void)plugin;
}
static void tiny_destroy(const hdp_plugin_t* plugin) {
  (void)plugin;
  g_host = NULL;
}

static const hdp_plugin_t g_plugin = {
    sizeof(hdp_plugin_t), NULL, tiny_init, tiny_start, tiny_stop, tiny_destroy, NULL,
};

static bool tiny_entry_init(const char* path) {
  (void)path;
  return true;
}
static void tiny_entry_deinit(void) {}
static const hdp_plugin_t* tiny_create(const hdp_host_t* host) {
  g_host = host;
  return &g_plugin;
}

HDP_EXPORT const hdp_plugin_entry_t hdp_plugin_entry_v1 = {
    HDP_VERSION_INIT,
    sizeof(hdp_plugin_entry_t),
    "org.example.tiny",
    "Tiny",
    "example",
    "1.0.0",
    "built against the installed hdp-plugin-api-dev package",
    tiny_entry_init,
    tiny_entry_deinit,
    tiny_create,
};
