/* timers.c - hdp.timers/1: one-shot and periodic timers, fired by the loop. */
#include "c_host.h"

/* ---- timers ---------------------------------------------------------------------------------- */

static hdp_status_t timers_register(const hdp_host_t* host, uint64_t delay_ms, uint64_t period_ms,
                                    hdp_timer_callback_t callback, void* user_data, uint64_t* out_timer_id) {
  loaded_plugin_t* p = plugin_of(host);
  host_timer_t* timer;
  const uint64_t max_ms = (uint64_t)INT64_MAX / 4000u; /* keeps due_us far from overflow */
  if (callback == NULL || out_timer_id == NULL || delay_ms > max_ms || period_ms > max_ms) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  if (!may_register(p)) {
    return HDP_ERR_BAD_STATE;
  }
  if (p->timer_count >= MAX_TIMERS_PER_PLUGIN) {
    return HDP_ERR_LIMIT;
  }
  timer = (host_timer_t*)calloc(1, sizeof *timer);
  if (timer == NULL || !vec_push(&g_host.timers, timer)) {
    free(timer);
    return HDP_ERR_NO_MEMORY;
  }
  timer->id = ++g_host.next_timer_id;
  timer->owner = p;
  timer->due_us = monotonic_us() + (int64_t)delay_ms * 1000;
  timer->period_ms = period_ms;
  timer->callback = callback;
  timer->user_data = user_data;
  timer->armed_turn = g_host.turn;
  ++p->timer_count;
  *out_timer_id = timer->id;
  return HDP_OK;
}

void timer_kill(host_timer_t* timer) {
  timer->dead = true;
  --timer->owner->timer_count;
}

static hdp_status_t timers_cancel(const hdp_host_t* host, uint64_t timer_id) {
  loaded_plugin_t* p = plugin_of(host);
  size_t i;
  for (i = 0; i < g_host.timers.len; ++i) {
    host_timer_t* timer = (host_timer_t*)g_host.timers.items[i];
    if (!timer->dead && timer->id == timer_id && timer->owner == p) {
      timer_kill(timer);
      return HDP_OK;
    }
  }
  return HDP_ERR_NOT_FOUND;
}

const hdp_host_timers_t g_timers_ext = {
    (uint32_t)sizeof(hdp_host_timers_t),
    timers_register,
    timers_cancel,
};

/* Fires every timer due now, earliest first, each at most once per turn. */
void fire_due_timers(void) {
  int64_t now = monotonic_us();
  ++g_host.turn;
  for (;;) {
    host_timer_t* due = NULL;
    size_t i;
    for (i = 0; i < g_host.timers.len; ++i) {
      host_timer_t* timer = (host_timer_t*)g_host.timers.items[i];
      if (!timer->dead && timer->armed_turn < g_host.turn && timer->due_us <= now &&
          (due == NULL || timer->due_us < due->due_us)) {
        due = timer;
      }
    }
    if (due == NULL) {
      return;
    }
    if (due->period_ms == 0) {
      timer_kill(due); /* a one-shot id is stale once its callback starts */
    } else {
      due->due_us += (int64_t)due->period_ms * 1000;
      if (due->due_us <= now) {
        due->due_us = now + (int64_t)due->period_ms * 1000; /* fell behind: skip, no burst */
      }
      due->armed_turn = g_host.turn;
    }
    due->callback(due->user_data, due->id);
  }
}
