/* hdp/entry.h - the one symbol a plugin exports.
 *
 * A plugin shared object exports exactly one dynamic symbol: the data object
 * `hdp_plugin_entry_v1` (HDP_ENTRY_SYMBOL), which begins with an hdp_plugin_entry_t (a plugin
 * built against a newer minor exports a larger struct with the same beginning). Everything else
 * is hidden; HDP_EXPORT marks the one symbol.
 * The major version is in the symbol's name, so a host looks up the name of the major it speaks.
 *
 * The host loads with dlopen(RTLD_NOW | RTLD_LOCAL), reads abi_version and struct_size, refuses a
 * different major, a struct_size below HDP_PLUGIN_ENTRY_V1_SIZE, a missing id, or an id already
 * loaded, each with one log line, and calls no entry function before those checks pass (dlopen
 * itself runs the library's static constructors, so a plugin keeps those trivial). */
#ifndef HDP_ENTRY_H
#define HDP_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host.h"
#include "plugin.h"
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HDP_ENTRY_SYMBOL "hdp_plugin_entry_v1"

/* Put before the definition of hdp_plugin_entry_v1 in a plugin built with hidden visibility. */
#if defined(__GNUC__) || defined(__clang__)
#define HDP_EXPORT __attribute__((visibility("default")))
#else
#define HDP_EXPORT
#endif

typedef struct hdp_plugin_entry {
  /* The ABI version the plugin was built against. Set to HDP_VERSION_INIT. */
  hdp_version_t abi_version;

  /* sizeof(hdp_plugin_entry_t) as the plugin compiled it. */
  uint32_t struct_size;

  /* Metadata, readable without running plugin code. NUL-terminated UTF-8, static storage.
   * id is mandatory and unique among loaded plugins, reverse-DNS style ("com.example.wavoip");
   * the others may be empty strings but not NULL. */
  const char* id;
  const char* name;
  const char* vendor;
  const char* version;
  const char* description;

  /* Called once after dlopen, before anything else. plugin_path is the .so's path (borrowed).
   * Returns false to refuse loading; the host then logs and never calls create_plugin or deinit.
   * [main-thread] */
  bool (*init)(const char* plugin_path);

  /* Called once after a successful init, when the host is done with the module: after the last
   * plugin object is destroyed, and also when create_plugin returned NULL or the plugin object
   * was refused. Not called when init returned false.
   * [main-thread] */
  void (*deinit)(void);

  /* Creates the plugin object bound to this host table. Returns NULL on failure. A returned
   * object whose struct_size is below HDP_PLUGIN_V1_SIZE is refused and, since its destroy
   * cannot be trusted, leaked.
   * OWNERSHIP: host is the host's and stays valid until plugin->destroy returns; the returned
   * object is the plugin's, freed by plugin->destroy.
   * [main-thread] */
  const hdp_plugin_t* (*create_plugin)(const hdp_host_t* host);
} hdp_plugin_entry_t;

/* Version-1.0 sizes: the smallest struct_size a reader accepts (the end of the last 1.0 member,
 * without tail padding, so it is the same whichever minor compiled it). */
#define HDP_PLUGIN_ENTRY_V1_SIZE HDP_V1_SIZE(hdp_plugin_entry_t, create_plugin)

#ifdef __cplusplus
}
#endif

#endif /* HDP_ENTRY_H */
