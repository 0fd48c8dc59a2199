/* hdp/version.h - ABI version and the compatibility rule.
 *
 * A plugin and a host are compatible when their MAJOR numbers are equal. Minor versions only add:
 * new extensions (found by string id) and new fields at the end of structs (guarded by
 * struct_size). Either side may be the newer one. */
#ifndef HDP_VERSION_H
#define HDP_VERSION_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HDP_VERSION_MAJOR 1
#define HDP_VERSION_MINOR 2
#define HDP_VERSION_PATCH 0

typedef struct hdp_version {
   uint32_t major;
   uint32_t minor;
   uint32_t patch;
} hdp_version_t;

#define HDP_VERSION_INIT {HDP_VERSION_MAJOR, HDP_VERSION_MINOR, HDP_VERSION_PATCH}

/* True when code built against `other` can run with code built against this header. */
static inline bool hdp_version_is_compatible(hdp_version_t other) {
   return other.major == HDP_VERSION_MAJOR;
}

#ifdef __cplusplus
}
#endif

#endif /* HDP_VERSION_H */
