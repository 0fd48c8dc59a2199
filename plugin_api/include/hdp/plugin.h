/* hdp/plugin.h - the plugin object and its lifecycle.
 *
 * Lifecycle, driven by the host, all on the main thread, one call at a time:
 *
 *   dlopen -> entry.init(path) -> entry.create_plugin(host) -> plugin.init -> plugin.start
 *          -> ... callbacks ...
 *          -> [host: stop new requests, cancel the plugin's timers and fd watches, fail its
 *              pending deferred responses, attachment jobs and hdp.messages/2 operations]
 *          -> plugin.stop
 *          -> plugin.destroy -> entry.deinit            (no dlclose by default)
 *
 * State        | legal plugin calls from the host     | host functions the plugin may call
 * -------------|--------------------------------------|-----------------------------------------
 * created      | init, destroy                        | core table: log, clocks, config, data dir,
 *              |                                      |   get_extension
 * initialized  | start, destroy                       | as above
 * started      | stop; extension callbacks            | everything
 * stopping     | cancellation callbacks only          | core table; registrations return
 *  (host has   |  (on_cancel, attachment and message |   HDP_ERR_BAD_STATE, cancels and
 *  begun       |   results with HDP_ERR_CANCELLED),  |   unregisters return HDP_ERR_NOT_FOUND
 *  shutdown)   |   then stop                         |
 * stopped      | destroy                              | core table only; extension calls return
 *              |                                      |   HDP_ERR_BAD_STATE or HDP_ERR_NOT_FOUND
 *
 * A failed init or start is followed by destroy (and, after a failed start, no stop). Main-thread
 * callbacks accepted before the host began stopping still run, before stop. The plugin
 * joins any thread it started before stop returns and keeps no cleanup in static destructors. */
#ifndef HDP_PLUGIN_H
#define HDP_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hdp_plugin hdp_plugin_t;

struct hdp_plugin {
  /* sizeof(hdp_plugin_t) as the plugin compiled it. */
  uint32_t struct_size;

  /* Reserved for the plugin. The host never reads or writes it. */
  void* plugin_data;

  /* Prepares the plugin: reads its configuration, opens its storage. Must not register routes,
   * timers or fds yet. A non-OK status refuses the plugin; the host logs it and calls destroy.
   * [main-thread] */
  hdp_status_t (*init)(const hdp_plugin_t* plugin);

  /* Registers routes, timers and fd watches and resumes pending work. A non-OK status refuses the
   * plugin; the host cancels whatever it registered and calls destroy.
   * [main-thread] */
  hdp_status_t (*start)(const hdp_plugin_t* plugin);

  /* The host has already cancelled the plugin's timers and fd watches and failed its pending
   * operations. The plugin releases what it holds; no callback reaches it afterwards.
   * [main-thread] */
  void (*stop)(const hdp_plugin_t* plugin);

  /* Frees the plugin object. The pointer is invalid afterwards.
   * [main-thread] */
  void (*destroy)(const hdp_plugin_t* plugin);

  /* Returns the plugin's table for extension_id, or NULL. Version 1.0 defines no plugin-side
   * extension; the member exists so later minors can add some. May itself be NULL.
   * OWNERSHIP: the returned table is the plugin's, valid until destroy.
   * [main-thread] */
  const void* (*get_extension)(const hdp_plugin_t* plugin, const char* extension_id);
};

/* Version-1.0 sizes: the smallest struct_size a reader accepts (the end of the last 1.0 member,
 * without tail padding, so it is the same whichever minor compiled it). */
#define HDP_PLUGIN_V1_SIZE HDP_V1_SIZE(hdp_plugin_t, get_extension)

#ifdef __cplusplus
}
#endif

#endif /* HDP_PLUGIN_H */
