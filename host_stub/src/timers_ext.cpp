// ext/timers.h on top of TimerService.
#include "extensions.hpp"
#include "plugin_host_table.hpp"
#include "timers.hpp"

namespace hdp::host {
namespace {

hdp_status_t register_timer(const hdp_host_t* host, uint64_t delay_ms, uint64_t period_ms,
                            hdp_timer_callback_t callback, void* user_data, uint64_t* out_timer_id) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  if (const hdp_status_t s = context->check_may_register("register_timer"); s != HDP_OK) return s;
  if (callback == nullptr || out_timer_id == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  *out_timer_id =
      context->services().timers.arm(context->owner(), delay_ms, period_ms,
                                     [callback, user_data](uint64_t timer_id) { callback(user_data, timer_id); });
  return HDP_OK;
}

hdp_status_t cancel_timer(const hdp_host_t* host, uint64_t timer_id) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  if (const hdp_status_t s = context->check_may_use("cancel_timer"); s != HDP_OK) return s;
  return context->services().timers.cancel(context->owner(), timer_id) ? HDP_OK : HDP_ERR_NOT_FOUND;
}

const hdp_host_timers_t kTimers = {
    sizeof(hdp_host_timers_t),
    register_timer,
    cancel_timer,
};

}  // namespace

const hdp_host_timers_t* timers_extension() {
  return &kTimers;
}

}  // namespace hdp::host
