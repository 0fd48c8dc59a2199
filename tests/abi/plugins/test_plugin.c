/* test_plugin.c - a minimal plugin with one defect chosen at compile time, for refusal tests.
 *
 * Every lifecycle call writes a marker line "test_plugin <id>: <call>" to stderr, so a test can
 * see which plugin code a host ran (and that it ran none before the entry checks passed).
 *
 *   TEST_PLUGIN_ID="..."          the entry id (default "org.hdp.test.minimal"); with
 *                                 TEST_PLUGIN_NULL_ID the entry's id is NULL and this only labels
 *                                 the markers
 *   TEST_PLUGIN_MAJOR=N           abi_version.major (default HDP_VERSION_MAJOR)
 *   TEST_PLUGIN_ENTRY_SIZE=N      entry struct_size (default sizeof)
 *   TEST_PLUGIN_ENTRY_INIT_FAILS  entry init returns false
 *   TEST_PLUGIN_CREATE_NULL       create_plugin returns NULL
 *   TEST_PLUGIN_NULL_CREATE       the entry's create_plugin pointer is NULL
 *   TEST_PLUGIN_INIT_FAILS        plugin init returns HDP_ERR_IO
 *   TEST_PLUGIN_START_FAILS       plugin start returns HDP_ERR_UNSUPPORTED
 *   TEST_PLUGIN_WRONG_SYMBOL      exports hdp_plugin_entry (no major) instead of
 * hdp_plugin_entry_v1 TEST_PLUGIN_TRUSTS_EXTENSIONS plugin init uses the timers extension without
 * checking for NULL, so it crashes in a host that does not offer it TEST_PLUGIN_WORKER_THREAD start
 * launches a thread that logs and asks for a main-thread callback (the thread-safe core functions);
 * stop joins it
 *   TEST_PLUGIN_ASKS_MESSAGES2_ONLY init asks for hdp.messages/2 and never for hdp.messages/1 (no
 * fallback for a 1.0/1.1 host) */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <hdp/hdp.h>

#define TEST_EXPORT __attribute__((visibility("default")))

#ifndef TEST_PLUGIN_ID
#define TEST_PLUGIN_ID "org.hdp.test.minimal"
#endif
#ifndef TEST_PLUGIN_MAJOR
#define TEST_PLUGIN_MAJOR HDP_VERSION_MAJOR
#endif
#ifndef TEST_PLUGIN_ENTRY_SIZE
#define TEST_PLUGIN_ENTRY_SIZE sizeof(hdp_plugin_entry_t)
#endif

static void marker(const char* call) {
  fprintf(stderr, "test_plugin %s: %s\n", TEST_PLUGIN_ID, call);
  fflush(stderr);
}

static hdp_status_t test_init(const hdp_plugin_t* plugin) {
  const hdp_host_t* host = (const hdp_host_t*)plugin->plugin_data;
  marker("plugin init");
  host->log(host, HDP_LOG_INFO, "test plugin init");
#if defined(TEST_PLUGIN_TRUSTS_EXTENSIONS)
  {
    const hdp_host_timers_t* timers = (const hdp_host_timers_t*)host->get_extension(host, HDP_EXT_TIMERS);
    return timers->struct_size >= HDP_HOST_TIMERS_V1_SIZE ? HDP_OK : HDP_ERR_UNSUPPORTED;
  }
#elif defined(TEST_PLUGIN_INIT_FAILS)
  return HDP_ERR_IO;
#elif defined(TEST_PLUGIN_ASKS_MESSAGES2_ONLY)
  (void)host->get_extension(host, HDP_EXT_MESSAGES_V2);
  return HDP_OK;
#else
  return HDP_OK;
#endif
}

#if defined(TEST_PLUGIN_WORKER_THREAD)
#include <pthread.h>

static pthread_t g_main_thread;
static pthread_t g_worker;
static bool g_worker_running;

static void test_on_main_thread(void* user_data) {
  (void)user_data;
  marker(pthread_equal(pthread_self(), g_main_thread) ? "main-thread callback ran on the main thread"
                                                      : "main-thread callback ran on ANOTHER thread");
}

static void* test_worker(void* arg) {
  const hdp_host_t* host = (const hdp_host_t*)arg;
  host->log(host, HDP_LOG_INFO, "hello from the worker thread");
  if (host->request_main_thread_callback(host, test_on_main_thread, NULL) != HDP_OK) {
    marker("request_main_thread_callback refused");
  }
  return NULL;
}
#endif

static hdp_status_t test_start(const hdp_plugin_t* plugin) {
  (void)plugin;
  marker("plugin start");
#if defined(TEST_PLUGIN_WORKER_THREAD)
  g_main_thread = pthread_self();
  g_worker_running = pthread_create(&g_worker, NULL, test_worker, plugin->plugin_data) == 0;
#endif
#if defined(TEST_PLUGIN_START_FAILS)
  return HDP_ERR_UNSUPPORTED;
#else
  return HDP_OK;
#endif
}

static void test_stop(const hdp_plugin_t* plugin) {
  (void)plugin;
#if defined(TEST_PLUGIN_WORKER_THREAD)
  if (g_worker_running) {
    pthread_join(g_worker, NULL); /* no thread of ours outlives stop */
    g_worker_running = false;
  }
#endif
  marker("plugin stop");
}

static void test_destroy(const hdp_plugin_t* plugin) {
  marker("plugin destroy");
  free((void*)(hdp_plugin_t*)plugin);
}

static bool test_entry_init(const char* plugin_path) {
  (void)plugin_path;
  marker("entry init");
#if defined(TEST_PLUGIN_ENTRY_INIT_FAILS)
  return false;
#else
  return true;
#endif
}

static void test_entry_deinit(void) {
  marker("entry deinit");
}

/* Unused when TEST_PLUGIN_NULL_CREATE leaves the entry's pointer NULL. */
__attribute__((unused)) static const hdp_plugin_t* test_create_plugin(const hdp_host_t* host) {
  hdp_plugin_t* plugin;
  marker("create_plugin");
  plugin = (hdp_plugin_t*)calloc(1, sizeof *plugin);
  if (plugin == NULL) {
    return NULL;
  }
  plugin->struct_size = (uint32_t)sizeof *plugin;
  plugin->plugin_data = (void*)(uintptr_t)host; /* only ever read back as const */
  plugin->init = test_init;
  plugin->start = test_start;
  plugin->stop = test_stop;
  plugin->destroy = test_destroy;
  plugin->get_extension = NULL; /* allowed: this plugin offers no extension */
#if defined(TEST_PLUGIN_CREATE_NULL)
  free(plugin);
  plugin = NULL;
#endif
  return plugin;
}

#if defined(TEST_PLUGIN_WRONG_SYMBOL)
#define TEST_ENTRY_NAME hdp_plugin_entry
#else
#define TEST_ENTRY_NAME hdp_plugin_entry_v1
#endif

TEST_EXPORT const hdp_plugin_entry_t TEST_ENTRY_NAME = {
    {TEST_PLUGIN_MAJOR, HDP_VERSION_MINOR, HDP_VERSION_PATCH},
    (uint32_t)(TEST_PLUGIN_ENTRY_SIZE),
#if defined(TEST_PLUGIN_NULL_ID)
    NULL,
#else
    TEST_PLUGIN_ID,
#endif
    "hdp test plugin",
    "hdp",
    "0.0.1",
    "a plugin with a chosen defect, for refusal tests",
    test_entry_init,
    test_entry_deinit,
#if defined(TEST_PLUGIN_NULL_CREATE)
    NULL,
#else
    test_create_plugin,
#endif
};
