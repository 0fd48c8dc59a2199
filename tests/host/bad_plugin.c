/* bad_plugin.c - plugins a host must refuse (or, for NEWER_MINOR, accept), one per build.
 *
 * Built once per BAD_VARIANT; each variant breaks one rule of entry.h / plugin.h:
 *   NO_SYMBOL          exports no hdp_plugin_entry_v1
 *   OTHER_MAJOR        abi_version 2.0.0
 *   SMALL_ENTRY        entry struct_size below HDP_PLUGIN_ENTRY_V1_SIZE
 *   NULL_ID            id NULL
 *   NULL_CALLBACK      create_plugin NULL
 *   ENTRY_INIT_FALSE   entry init returns false
 *   CREATE_NULL        create_plugin returns NULL
 *   SMALL_PLUGIN       plugin struct_size below HDP_PLUGIN_V1_SIZE
 *   INIT_FAILS         plugin init returns HDP_ERR_IO
 *   START_FAILS        plugin start arms a timer, registers a route, then returns HDP_ERR_IO
 *   NEWER_MINOR        a well-behaved plugin from "ABI 1.7" with longer structs: accepted */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdp/hdp.h>

#define BAD_EXPORT __attribute__((visibility("default")))

#define NO_SYMBOL 1
#define OTHER_MAJOR 2
#define SMALL_ENTRY 3
#define NULL_ID 4
#define NULL_CALLBACK 5
#define ENTRY_INIT_FALSE 6
#define CREATE_NULL 7
#define SMALL_PLUGIN 8
#define INIT_FAILS 9
#define START_FAILS 10
#define NEWER_MINOR 11

#ifndef BAD_VARIANT
#error "define BAD_VARIANT"
#endif

/* A plugin object as a newer minor might lay it out: the 1.0 members, then more. */
typedef struct bad_plugin {
  hdp_plugin_t plugin;
  uint64_t newer_member;
  const hdp_host_t* host;
} bad_plugin_t;

static void say(const hdp_host_t* host, const char* what) {
  host->log(host, HDP_LOG_INFO, what);
}

static hdp_status_t bad_init(const hdp_plugin_t* plugin) {
  bad_plugin_t* p = (bad_plugin_t*)plugin->plugin_data;
  say(p->host, "bad: init");
  return BAD_VARIANT == INIT_FAILS ? HDP_ERR_IO : HDP_OK;
}

static void on_timer(void* user_data, uint64_t timer_id) {
  bad_plugin_t* p = (bad_plugin_t*)user_data;
  (void)timer_id;
  say(p->host, "bad: timer fired after a failed start");
}

static void on_request(void* user_data, const hdp_http_request_t* request) {
  (void)user_data;
  (void)request;
}

static hdp_status_t bad_start(const hdp_plugin_t* plugin) {
  bad_plugin_t* p = (bad_plugin_t*)plugin->plugin_data;
  say(p->host, "bad: start");
  if (BAD_VARIANT == START_FAILS) {
    const hdp_host_timers_t* timers = (const hdp_host_timers_t*)p->host->get_extension(p->host, HDP_EXT_TIMERS);
    const hdp_host_http_t* http = (const hdp_host_http_t*)p->host->get_extension(p->host, HDP_EXT_HTTP);
    uint64_t id = 0;
    hdp_http_route_t route;
    if (timers != NULL) timers->register_timer(p->host, 0, 0, on_timer, p, &id);
    memset(&route, 0, sizeof route);
    route.struct_size = sizeof route;
    route.method = "GET";
    route.path = "/bad";
    route.on_request = on_request;
    route.user_data = p;
    if (http != NULL) http->register_route(p->host, &route, &id);
    return HDP_ERR_IO;
  }
  return HDP_OK;
}

static void bad_stop(const hdp_plugin_t* plugin) {
  bad_plugin_t* p = (bad_plugin_t*)plugin->plugin_data;
  say(p->host, "bad: stop");
}

static void bad_destroy(const hdp_plugin_t* plugin) {
  bad_plugin_t* p = (bad_plugin_t*)plugin->plugin_data;
  say(p->host, "bad: destroy");
  free(p);
}

static const hdp_plugin_t* bad_create(const hdp_host_t* host) {
  bad_plugin_t* p;
  if (BAD_VARIANT == CREATE_NULL) return NULL;
  p = (bad_plugin_t*)calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->host = host;
  p->plugin.struct_size = BAD_VARIANT == SMALL_PLUGIN ? 8u : (uint32_t)sizeof *p;
  p->plugin.plugin_data = p;
  p->plugin.init = bad_init;
  p->plugin.start = bad_start;
  p->plugin.stop = bad_stop;
  p->plugin.destroy = bad_destroy;
  p->plugin.get_extension = NULL;
  if (BAD_VARIANT == SMALL_PLUGIN) {
    /* The host may not call destroy on a struct that claims not to have it: free later. */
    static bad_plugin_t* leaked;
    free(leaked);
    leaked = p;
  }
  return &p->plugin;
}

static bool bad_entry_init(const char* path) {
  (void)path;
  (void)&bad_create; /* unused when the entry leaves create_plugin NULL */
  return BAD_VARIANT != ENTRY_INIT_FALSE;
}

static void bad_entry_deinit(void) {
  fputs("bad: deinit\n", stderr);
}

/* An entry as a newer minor might lay it out. */
typedef struct bad_entry {
  hdp_plugin_entry_t entry;
  const char* newer_member;
} bad_entry_t;

#if BAD_VARIANT == NO_SYMBOL
BAD_EXPORT const hdp_plugin_entry_t hdp_plugin_entry_v0 = {
#else
BAD_EXPORT const bad_entry_t hdp_plugin_entry_v1 = {{
#endif
#if BAD_VARIANT == OTHER_MAJOR
    {2, 0, 0},
#elif BAD_VARIANT == NEWER_MINOR
                                                        {1, 7, 0},
#else
HDP_VERSION_INIT,
#endif
#if BAD_VARIANT == SMALL_ENTRY
    (uint32_t)offsetof(hdp_plugin_entry_t, init),
#elif BAD_VARIANT == NEWER_MINOR
                                                        sizeof(bad_entry_t),
#else
    sizeof(hdp_plugin_entry_t),
#endif
#if BAD_VARIANT == NULL_ID
    NULL,
#else
                                                        "org.hdp.test.bad",
#endif
    "Bad",
    "hdp tests",
    "0.0.1",
    "Breaks one rule",
    bad_entry_init,
    bad_entry_deinit,
#if BAD_VARIANT == NULL_CALLBACK
    NULL,
#else
                                                        bad_create,
#endif
#if BAD_VARIANT == NO_SYMBOL
};
#else
                                                    },
                                                    "a member from a newer minor"};
#endif
