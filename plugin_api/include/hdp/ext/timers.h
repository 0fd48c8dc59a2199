/* hdp/ext/timers.h - one-shot and periodic timers on the host's main loop. */
#ifndef HDP_EXT_TIMERS_H
#define HDP_EXT_TIMERS_H

#include <stddef.h>
#include <stdint.h>

#include "../host.h"
#include "../status.h"
#include "../version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HDP_EXT_TIMERS "hdp.timers/1"

/* Runs on the main thread when the timer is due. Cancelling this or any other timer from inside
 * the callback is allowed. A one-shot timer's id is stale once its callback starts. */
typedef void (*hdp_timer_callback_t)(void* user_data, uint64_t timer_id);

typedef struct hdp_host_timers {
  /* sizeof(hdp_host_timers_t) as the host compiled it. */
  uint32_t struct_size;

  /* Arms a timer due delay_ms from now on the host's monotonic clock (a virtual clock under a
   * test host). period_ms == 0 makes a one-shot timer; otherwise it fires again every
   * period_ms until cancelled. delay_ms == 0 runs on the next loop turn (never inside this
   * call), also under a virtual clock without moving it. *out_timer_id receives an id that is never 0 and never reused.
   * OWNERSHIP: user_data is the plugin's; the host only passes it back.
   * [main-thread] */
  hdp_status_t (*register_timer)(const hdp_host_t* host, uint64_t delay_ms, uint64_t period_ms,
                                 hdp_timer_callback_t callback, void* user_data, uint64_t* out_timer_id);

  /* Cancels a timer. HDP_OK when it was armed: its callback will not run afterwards.
   * HDP_ERR_NOT_FOUND for an unknown, already cancelled or already fired one-shot id; calling
   * it again is harmless (idempotent).
   * [main-thread] */
  hdp_status_t (*cancel_timer)(const hdp_host_t* host, uint64_t timer_id);
} hdp_host_timers_t;

/* Version-1.0 sizes: the smallest struct_size a reader accepts (the end of the last 1.0 member,
 * without tail padding, so it is the same whichever minor compiled it). */
#define HDP_HOST_TIMERS_V1_SIZE HDP_V1_SIZE(hdp_host_timers_t, cancel_timer)

#ifdef __cplusplus
}
#endif

#endif /* HDP_EXT_TIMERS_H */
