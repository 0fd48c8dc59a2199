/* hdp/host.h - the core host table, handed to the plugin at creation.
 *
 * Each plugin instance gets its own hdp_host_t: the log is tagged with the plugin's id, and the
 * configuration bytes and data directory are the plugin's own. Everything beyond this table is an
 * extension found with get_extension() (see ext/). The table is frozen for major version 1; new
 * members are only ever appended, so a plugin reads a member only if it lies inside struct_size. */
#ifndef HDP_HOST_H
#define HDP_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "status.h"
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*hdp_main_thread_callback_t)(void* user_data);

typedef struct hdp_host hdp_host_t;

struct hdp_host {
  /* The ABI version the host was built against. */
  hdp_version_t abi_version;

  /* sizeof(hdp_host_t) as the host compiled it. Members beyond it do not exist. */
  uint32_t struct_size;

  /* Host identity, NUL-terminated UTF-8. OWNERSHIP: host; valid until the plugin is destroyed. */
  const char* name;
  const char* vendor;
  const char* version;

  /* Reserved for the host. The plugin never reads or writes it. */
  void* host_data;

  /* Returns the host's table for extension_id (e.g. HDP_EXT_TIMERS), or NULL when the host does
   * not offer it. The plugin must check for NULL and check the returned table's struct_size.
   * OWNERSHIP: the id is borrowed for the call; the table is the host's, valid until destroy.
   * [main-thread] */
  const void* (*get_extension)(const hdp_host_t* host, const char* extension_id);

  /* Writes one log line. level is an HDP_LOG_* value; message is NUL-terminated UTF-8 without a
   * trailing newline. OWNERSHIP: message borrowed for the call.
   * [thread-safe] */
  void (*log)(const hdp_host_t* host, int32_t level, const char* message);

  /* True when a line at this level would be written; lets the plugin skip formatting.
   * [thread-safe] */
  bool (*log_enabled)(const hdp_host_t* host, int32_t level);

  /* Wall-clock time in microseconds since the Unix epoch. Under a test host this is a virtual
   * clock that only moves when the test moves it; the plugin takes time only from here.
   * [thread-safe] */
  int64_t (*wall_clock_us)(const hdp_host_t* host);

  /* Monotonic time in microseconds from an arbitrary origin; virtual under a test host.
   * Timer delays (ext/timers.h) are measured on this clock.
   * [thread-safe] */
  int64_t (*monotonic_clock_us)(const hdp_host_t* host);

  /* Asks the host to call callback(user_data) soon on the main thread. This is the only way for
   * a thread of the plugin's own to get back onto the loop. Returns HDP_ERR_BAD_STATE once the
   * host is stopping (the callback will then never run).
   * [thread-safe] */
  hdp_status_t (*request_main_thread_callback)(const hdp_host_t* host, hdp_main_thread_callback_t callback,
                                               void* user_data);

  /* The plugin's configuration as raw bytes (JSON by convention; may be empty, never NULL).
   * OWNERSHIP: host; *out_data stays valid and unchanged until the plugin is destroyed.
   * [main-thread] */
  void (*get_config)(const hdp_host_t* host, const uint8_t** out_data, size_t* out_size);

  /* Absolute path of a directory that exists, belongs to this plugin alone, and survives
   * restarts (NUL-terminated). OWNERSHIP: host; valid until the plugin is destroyed.
   * [main-thread] */
  const char* (*get_data_dir)(const hdp_host_t* host);
};

/* Version-1.0 sizes: the smallest struct_size a reader accepts (the end of the last 1.0 member,
 * without tail padding, so it is the same whichever minor compiled it). */
#define HDP_HOST_V1_SIZE HDP_V1_SIZE(hdp_host_t, get_data_dir)

#ifdef __cplusplus
}
#endif

#endif /* HDP_HOST_H */
