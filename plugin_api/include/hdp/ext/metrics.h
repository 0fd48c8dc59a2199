/* hdp/ext/metrics.h - counters, gauges and histograms that the host exposes for the plugin.
 *
 * The plugin registers a metric family once (type, name, help, label names and, for a histogram,
 * its bucket bounds) and receives an id; it then updates one series of that family by id and
 * label values. The host keeps the values and renders them wherever it exposes metrics (for
 * example the Prometheus text format, with a label naming the plugin added to every series).
 * Updates only touch memory: they never block and never fail for I/O reasons.
 *
 * Optional: a host without this extension returns NULL from get_extension, and a plugin must work
 * without it (every update becomes a no-op). Added in ABI 1.1.0. */
#ifndef HDP_EXT_METRICS_H
#define HDP_EXT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "../host.h"
#include "../status.h"
#include "../version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HDP_EXT_METRICS "hdp.metrics/1"

/* Metric types; they cross the ABI as uint32_t. 0 is not a type, so a zeroed struct is refused. */
enum {
  HDP_METRIC_COUNTER = 1,   /* only goes up: counter_add with a delta >= 0 */
  HDP_METRIC_GAUGE = 2,     /* goes up and down: gauge_set, gauge_add */
  HDP_METRIC_HISTOGRAM = 3, /* histogram_observe: counts per bucket, sum and count */
};

/* A metric family as the plugin registers it.
 * OWNERSHIP: borrowed for the register_metric call; the host copies everything it keeps. */
typedef struct hdp_metric_family {
  uint32_t struct_size;
  /* HDP_METRIC_* */
  uint32_t type;
  /* [a-zA-Z_][a-zA-Z0-9_]*, at most 128 bytes, NUL-terminated. Names starting with "hdp_" are the
   * host's. By convention a counter ends in "_total" and a unit is spelled out as a suffix
   * ("_seconds", "_bytes"). Names are per plugin: the host tells plugins apart itself. */
  const char* name;
  /* What it counts, one line of UTF-8 (at most 1024 bytes); NULL or "" for none. */
  const char* help;
  /* label_count names, each [a-zA-Z_][a-zA-Z0-9_]*, at most 64 bytes, distinct, not starting
   * with "__" and neither "le" nor "plugin" (the host's). At most 8; NULL when label_count is 0. */
  const char* const* label_names;
  size_t label_count;
  /* Histograms only (ignored otherwise): the buckets' upper bounds, finite and strictly
   * increasing, at most 64; a last "+Inf" bucket is always added by the host. NULL and 0 ask
   * for the host's default bounds (0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10). */
  const double* buckets;
  size_t bucket_count;
} hdp_metric_family_t;

typedef struct hdp_host_metrics {
  /* sizeof(hdp_host_metrics_t) as the host compiled it. */
  uint32_t struct_size;

  /* Registers a metric family. On HDP_OK *out_metric_id (never 0, never reused) names it.
   * HDP_ERR_INVALID_ARGUMENT for a name, label or bucket list that breaks the rules above;
   * HDP_ERR_ALREADY_EXISTS when this plugin already registered the name, or when the host cannot
   * show it next to a metric of the same name (of another plugin with another type, other label
   * names or other buckets); HDP_ERR_LIMIT past the host's number of families per plugin.
   * Legal from the plugin's init until its stop returns (HDP_ERR_BAD_STATE otherwise).
   * OWNERSHIP: family and everything it points to borrowed for the call.
   * [main-thread] */
  hdp_status_t (*register_metric)(const hdp_host_t* host, const hdp_metric_family_t* family, uint64_t* out_metric_id);

  /* The updates below address one series: label_values holds label_count NUL-terminated UTF-8
   * strings (at most 256 bytes each) in the order of the family's label names, and label_count
   * must equal the family's (label_values may be NULL when it is 0). A series comes into being
   * at its first update. They return HDP_ERR_NOT_FOUND for an id this plugin did not register,
   * HDP_ERR_INVALID_ARGUMENT for a family of another type, a wrong label_count, a NULL or
   * too long value, or a value the function refuses; HDP_ERR_LIMIT when the family already has
   * as many series as the host keeps (the update is dropped). Legal from the plugin's init
   * until its stop returns.
   * OWNERSHIP: label_values and the strings borrowed for the call. */

  /* Adds delta (finite, >= 0) to a counter.
   * [main-thread] */
  hdp_status_t (*counter_add)(const hdp_host_t* host, uint64_t metric_id, const char* const* label_values,
                              size_t label_count, double delta);

  /* Sets a gauge to value (not NaN).
   * [main-thread] */
  hdp_status_t (*gauge_set)(const hdp_host_t* host, uint64_t metric_id, const char* const* label_values,
                            size_t label_count, double value);

  /* Adds delta (finite, may be negative) to a gauge.
   * [main-thread] */
  hdp_status_t (*gauge_add)(const hdp_host_t* host, uint64_t metric_id, const char* const* label_values,
                            size_t label_count, double delta);

  /* Records one observation (not NaN) in a histogram: every bucket whose bound is >= value, the
   * sum and the count.
   * [main-thread] */
  hdp_status_t (*histogram_observe)(const hdp_host_t* host, uint64_t metric_id, const char* const* label_values,
                                    size_t label_count, double value);
} hdp_host_metrics_t;

/* Version-1 sizes of this extension (it first shipped with ABI 1.1.0): the smallest struct_size a
 * reader accepts (the end of the last first-version member, without tail padding, so it is the
 * same whichever minor compiled it). */
#define HDP_METRIC_FAMILY_V1_SIZE HDP_V1_SIZE(hdp_metric_family_t, bucket_count)
#define HDP_HOST_METRICS_V1_SIZE HDP_V1_SIZE(hdp_host_metrics_t, histogram_observe)

#ifdef __cplusplus
}
#endif

#endif /* HDP_EXT_METRICS_H */
