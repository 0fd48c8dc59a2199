/* hdp/version.h - ABI version and the compatibility rule.
 *
 * A plugin and a host are compatible when their MAJOR numbers are equal. Minor versions only add:
 * new extensions (found by string id) and new fields at the end of structs (guarded by
 * struct_size). Either side may be the newer one. */
#ifndef HDP_VERSION_H
#define HDP_VERSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HDP_VERSION_MAJOR 1
#define HDP_VERSION_MINOR 3
#define HDP_VERSION_PATCH 0

typedef struct hdp_version {
  uint32_t major;
  uint32_t minor;
  uint32_t patch;
} hdp_version_t;

#define HDP_VERSION_INIT \
  { HDP_VERSION_MAJOR, HDP_VERSION_MINOR, HDP_VERSION_PATCH }

/* The size of `type` up to the end of `member`, without the tail padding that follows it: the
 * smallest struct_size a reader accepts for the version that ended at `member` (each header's
 * HDP_*_V1_SIZE), the same whichever minor compiled it. C++ names the member through the type
 * instead of casting a null pointer. */
#ifdef __cplusplus
#define HDP_V1_SIZE(type, member) (offsetof(type, member) + sizeof(type::member))
#else
#define HDP_V1_SIZE(type, member) (offsetof(type, member) + sizeof(((const type*)0)->member))
#endif

/* True when code built against `other` can run with code built against this header. */
static inline bool hdp_version_is_compatible(hdp_version_t other) {
  return other.major == HDP_VERSION_MAJOR;
}

#ifdef __cplusplus
}
#endif

#endif /* HDP_VERSION_H */
