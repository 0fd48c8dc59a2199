/* hdp/status.h - the one status type of the ABI.
 *
 * 0 is success; failures are negative and never renumbered. Gaps are left for future codes; a
 * caller treats any unknown negative value as a generic failure. */
#ifndef HDP_STATUS_H
#define HDP_STATUS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t hdp_status_t;

#define HDP_OK 0
/* An argument was NULL, empty, out of range, or a struct_size was below the version-1 size. */
#define HDP_ERR_INVALID_ARGUMENT (-1)
/* The id (timer, fd, request, route, message, job) is unknown, stale or already finished. */
#define HDP_ERR_NOT_FOUND (-10)
/* The thing already exists (a route on the same method and path, an fd already watched). */
#define HDP_ERR_ALREADY_EXISTS (-11)
/* The call is not legal in the current lifecycle state (see plugin.h). */
#define HDP_ERR_BAD_STATE (-20)
/* The host or plugin does not offer this. */
#define HDP_ERR_UNSUPPORTED (-30)
/* A limit was hit (too many timers, body too large, ...). */
#define HDP_ERR_LIMIT (-40)
/* Storage or file-system failure. */
#define HDP_ERR_IO (-50)
/* The operation was cancelled, typically because the host is shutting down. */
#define HDP_ERR_CANCELLED (-60)
/* The operation did not complete in time. */
#define HDP_ERR_TIMEOUT (-70)
/* Out of memory. */
#define HDP_ERR_NO_MEMORY (-80)
/* Anything else; details went to the log. */
#define HDP_ERR_INTERNAL (-100)

#ifdef __cplusplus
}
#endif

#endif /* HDP_STATUS_H */
