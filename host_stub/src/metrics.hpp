// The host's metrics: one registry for the host's own families and for those the plugins register
// through ext/metrics.h, rendered as the Prometheus text exposition format (version 0.0.4) on
// GET /metrics. Everything here runs on the main thread; nothing is locked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <hdp/status.h>

namespace hdp::host {

class Responder;
class Router;
struct HttpRequest;

enum class MetricType { counter, gauge, histogram };

// A family as registered (already copied out of the C struct).
struct MetricSpec {
  MetricType type = MetricType::counter;
  std::string name;
  std::string help;
  std::vector<std::string> label_names;
  // Histograms: finite, strictly increasing upper bounds without +Inf; empty = the defaults.
  std::vector<double> buckets;
};

// The Prometheus client libraries' default buckets (seconds).
const std::vector<double>& default_histogram_buckets();

// --- the exposition format's pieces (pure; unit-tested) ---------------------------------------
// [a-zA-Z_:][a-zA-Z0-9_:]* (colons only for the host: plugins get [a-zA-Z_][a-zA-Z0-9_]*).
bool is_metric_name(std::string_view name, bool allow_colon = false);
// [a-zA-Z_][a-zA-Z0-9_]*
bool is_label_name(std::string_view name);
bool is_valid_utf8(std::string_view text);
// Label value: backslash, double quote and line feed escaped as \\, \" and \n.
std::string escape_label_value(std::string_view value);
// HELP text: backslash and line feed escaped as \\ and \n.
std::string escape_help(std::string_view help);
// A sample value as Go's ParseFloat reads it: "+Inf", "-Inf", "NaN", or the shortest text that
// reads back as the same double ("1", "0.25", "1e+06").
std::string format_metric_value(double value);

class MetricsRegistry {
 public:
  struct Limits {
    size_t max_families_per_owner = 256;
    size_t max_series_per_family_per_owner = 1000;
    size_t max_labels = 8;
    size_t max_buckets = 64;
    size_t max_name_bytes = 128;
    size_t max_label_name_bytes = 64;
    size_t max_label_value_bytes = 256;
    size_t max_help_bytes = 1024;
  };

  static constexpr uint64_t kHostOwner = 0;
  // The label the host adds to every series of a plugin: its id.
  static constexpr std::string_view kPluginLabel = "plugin";

  explicit MetricsRegistry(Limits limits);
  MetricsRegistry() : MetricsRegistry(Limits{}) {}
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // owner kHostOwner registers a host family (names must start with "hdp_"); any other owner is
  // a plugin whose series carry plugin="<owner_label>" (names must not start with "hdp_").
  // The statuses of ext/metrics.h register_metric. *out_id is never 0.
  hdp_status_t register_family(uint64_t owner, std::string_view owner_label, const MetricSpec& spec, uint64_t* out_id);

  // The statuses of ext/metrics.h: HDP_ERR_NOT_FOUND unless owner registered id,
  // HDP_ERR_INVALID_ARGUMENT for another type, a wrong label count, a bad value or label value,
  // HDP_ERR_LIMIT when a new series would pass the limit.
  hdp_status_t counter_add(uint64_t owner, uint64_t id, std::span<const std::string_view> labels, double delta);
  hdp_status_t gauge_set(uint64_t owner, uint64_t id, std::span<const std::string_view> labels, double value);
  hdp_status_t gauge_add(uint64_t owner, uint64_t id, std::span<const std::string_view> labels, double delta);
  hdp_status_t observe(uint64_t owner, uint64_t id, std::span<const std::string_view> labels, double value);

  // The whole registry in the text exposition format 0.0.4: families sorted by name, each with
  // its # HELP and # TYPE lines, series sorted by label values.
  std::string render() const;

  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  struct Series {
    double value = 0;                     // counter, gauge
    std::vector<uint64_t> bucket_counts;  // histogram: per bucket (not cumulative), +Inf last
    double sum = 0;
    uint64_t count = 0;
  };
  struct Family {
    MetricSpec spec;  // buckets filled in for histograms
    bool plugin_family = false;
    // Key: the label values, the plugin id first for plugin families.
    std::map<std::vector<std::string>, Series> series;
    std::map<uint64_t, size_t> series_per_owner;
  };
  struct Handle {
    uint64_t owner = 0;
    std::string owner_label;
    std::string family;
  };

  // The series for an update, created if new; nullptr with *status set otherwise.
  Series* series_for(uint64_t owner, uint64_t id, MetricType type, std::span<const std::string_view> labels,
                     hdp_status_t* status);
  // series_for, after the update's value was checked: a value that is not value_ok is
  // HDP_ERR_INVALID_ARGUMENT for a known id, HDP_ERR_NOT_FOUND for an unknown one.
  Series* series_to_update(uint64_t owner, uint64_t id, MetricType type, std::span<const std::string_view> labels,
                           bool value_ok, hdp_status_t* status);
  hdp_status_t validate(bool host_family, const MetricSpec& spec) const;

  Limits limits_;
  std::map<std::string, Family> families_;  // by name; sorted for rendering
  std::unordered_map<uint64_t, Handle> handles_;
  std::set<std::pair<uint64_t, std::string>> owner_names_;
  std::map<uint64_t, size_t> families_per_owner_;
  uint64_t next_id_ = 1;
};

// The host's own families.
class HostMetrics {
 public:
  explicit HostMetrics(MetricsRegistry& registry);

  MetricsRegistry& registry() { return registry_; }

  // One answered request. method is bounded to the usual verbs ("other" otherwise); route is the
  // path of the route that served it ("unmatched" when none did).
  void count_request(std::string_view method, std::string_view route, unsigned status);
  // One request the HTTP layer refused before routing it (reason: refusal_name of http_server.hpp).
  void count_refused(std::string_view reason);
  void set_plugins_loaded(size_t count);
  // One message written for a plugin: operation is "upsert_call_message" or
  // "set_recording_status" (hdp.messages/1, each its own transaction), or the same with "_async"
  // (hdp.messages/2, batched).
  void count_message_write(std::string_view operation);
  // One commit of the host's store: how many writes it made durable at once.
  void observe_store_batch(size_t writes);
  // How late the loop ran something that was due, in seconds.
  void observe_loop_lag(double seconds);

 private:
  MetricsRegistry& registry_;
  uint64_t requests_ = 0;
  uint64_t refused_ = 0;
  uint64_t message_writes_ = 0;
  uint64_t store_batch_ = 0;
  uint64_t loop_lag_ = 0;
  uint64_t plugins_loaded_ = 0;
  uint64_t info_ = 0;
};

// GET /metrics on router, rendering registry. [main-thread]
void register_metrics_route(Router& router, const MetricsRegistry& registry);

// Wraps responder so that its answer is counted under the request's method, the route the router
// would serve it with, and the answer's status. An answer that never leaves (the client went
// away first) is not counted.
std::shared_ptr<Responder> counting_responder(HostMetrics& metrics, const Router& router, const HttpRequest& request,
                                              const std::shared_ptr<Responder>& responder);

}  // namespace hdp::host
