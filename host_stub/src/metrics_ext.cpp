// ext/metrics.h on top of MetricsRegistry: copies what the plugin registers, and checks the
// calling plugin, its state and the thread before anything reaches the registry.
#include <array>
#include <cstring>
#include <string_view>
#include <vector>

#include "extensions.hpp"
#include "metrics.hpp"
#include "plugin_host_table.hpp"

namespace hdp::host {
namespace {

constexpr size_t kMaxLabels = 8;

// The registry of the calling plugin's host, or nullptr with *status set: unknown table, another
// thread, or outside init..stop.
MetricsRegistry* registry_for(const hdp_host_t* host, const char* function, PluginContext** out, hdp_status_t* status) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr || context->services().metrics == nullptr) {
    *status = HDP_ERR_INVALID_ARGUMENT;
    return nullptr;
  }
  if (!context->check_main_thread(function)) {
    *status = HDP_ERR_BAD_STATE;
    return nullptr;
  }
  switch (context->state()) {
    case PluginState::created:
    case PluginState::initialized:
    case PluginState::starting:
    case PluginState::started:
    case PluginState::stopping: break;
    default: *status = HDP_ERR_BAD_STATE; return nullptr;
  }
  *out = context;
  return context->services().metrics;
}

hdp_status_t register_metric(const hdp_host_t* host, const hdp_metric_family_t* family, uint64_t* out_metric_id) {
  PluginContext* context = nullptr;
  hdp_status_t status = HDP_OK;
  MetricsRegistry* registry = registry_for(host, "register_metric", &context, &status);
  if (registry == nullptr) return status;
  if (family == nullptr || out_metric_id == nullptr || family->struct_size < HDP_METRIC_FAMILY_V1_SIZE ||
      family->name == nullptr || family->label_count > kMaxLabels ||
      (family->label_count != 0 && family->label_names == nullptr)) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  MetricSpec spec;
  switch (family->type) {
    case HDP_METRIC_COUNTER: spec.type = MetricType::counter; break;
    case HDP_METRIC_GAUGE: spec.type = MetricType::gauge; break;
    case HDP_METRIC_HISTOGRAM: spec.type = MetricType::histogram; break;
    default: return HDP_ERR_INVALID_ARGUMENT;
  }
  spec.name = family->name;
  if (family->help != nullptr) spec.help = family->help;
  for (size_t i = 0; i < family->label_count; ++i) {
    if (family->label_names[i] == nullptr) return HDP_ERR_INVALID_ARGUMENT;
    spec.label_names.emplace_back(family->label_names[i]);
  }
  if (spec.type == MetricType::histogram && family->bucket_count != 0) {
    if (family->buckets == nullptr || family->bucket_count > 64) return HDP_ERR_INVALID_ARGUMENT;
    spec.buckets.assign(family->buckets, family->buckets + family->bucket_count);
  }
  status = registry->register_family(context->owner(), context->id(), spec, out_metric_id);
  if (status != HDP_OK) {
    context->log(LogLevel::warning,
                 "register_metric " + std::string(spec.name.substr(0, 128)) + " refused: " + status_text(status));
  }
  return status;
}

// Borrowed views of the label values; false when one is NULL or there are too many.
bool label_views(const char* const* values, size_t count, std::array<std::string_view, kMaxLabels>& out) {
  if (count > kMaxLabels || (count != 0 && values == nullptr)) return false;
  for (size_t i = 0; i < count; ++i) {
    if (values[i] == nullptr) return false;
    out[i] = values[i];
  }
  return true;
}

template <typename Update>
hdp_status_t update(const hdp_host_t* host, const char* function, const char* const* values, size_t count,
                    Update&& apply) {
  PluginContext* context = nullptr;
  hdp_status_t status = HDP_OK;
  MetricsRegistry* registry = registry_for(host, function, &context, &status);
  if (registry == nullptr) return status;
  std::array<std::string_view, kMaxLabels> views{};
  if (!label_views(values, count, views)) return HDP_ERR_INVALID_ARGUMENT;
  return apply(*registry, context->owner(), std::span<const std::string_view>(views.data(), count));
}

hdp_status_t counter_add(const hdp_host_t* host, uint64_t metric_id, const char* const* label_values,
                         size_t label_count, double delta) {
  return update(host, "counter_add", label_values, label_count,
                [&](MetricsRegistry& r, uint64_t owner, std::span<const std::string_view> labels) {
                  return r.counter_add(owner, metric_id, labels, delta);
                });
}

hdp_status_t gauge_set(const hdp_host_t* host, uint64_t metric_id, const char* const* label_values, size_t label_count,
                       double value) {
  return update(host, "gauge_set", label_values, label_count,
                [&](MetricsRegistry& r, uint64_t owner, std::span<const std::string_view> labels) {
                  return r.gauge_set(owner, metric_id, labels, value);
                });
}

hdp_status_t gauge_add(const hdp_host_t* host, uint64_t metric_id, const char* const* label_values, size_t label_count,
                       double delta) {
  return update(host, "gauge_add", label_values, label_count,
                [&](MetricsRegistry& r, uint64_t owner, std::span<const std::string_view> labels) {
                  return r.gauge_add(owner, metric_id, labels, delta);
                });
}

hdp_status_t histogram_observe(const hdp_host_t* host, uint64_t metric_id, const char* const* label_values,
                               size_t label_count, double value) {
  return update(host, "histogram_observe", label_values, label_count,
                [&](MetricsRegistry& r, uint64_t owner, std::span<const std::string_view> labels) {
                  return r.observe(owner, metric_id, labels, value);
                });
}

const hdp_host_metrics_t kMetrics = {
    sizeof(hdp_host_metrics_t), register_metric, counter_add, gauge_set, gauge_add, histogram_observe,
};

}  // namespace

const hdp_host_metrics_t* metrics_extension() {
  return &kMetrics;
}

}  // namespace hdp::host
