/* hdp/log.h - log levels used by hdp_host_t.log. */
#ifndef HDP_LOG_H
#define HDP_LOG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Crosses the ABI as int32_t. A host maps unknown values to the nearest known level. */
enum {
  HDP_LOG_TRACE = 0,
  HDP_LOG_DEBUG = 1,
  HDP_LOG_INFO = 2,
  HDP_LOG_WARNING = 3,
  HDP_LOG_ERROR = 4,
};

#ifdef __cplusplus
}
#endif

#endif /* HDP_LOG_H */
