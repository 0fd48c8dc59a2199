#include "metrics.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <utility>

#include <hdp/version.h>

#include "http_types.hpp"
#include "plugin_host_table.hpp"
#include "router.hpp"

namespace hdp::host {

// --- the exposition format's pieces -----------------------------------------------------------

const std::vector<double>& default_histogram_buckets() {
  static const std::vector<double> buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return buckets;
}

namespace {

bool is_alpha_or_underscore(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

const char* type_name(MetricType type) {
  switch (type) {
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::histogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

bool is_metric_name(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  auto first_ok = [&](char c) { return is_alpha_or_underscore(c) || (allow_colon && c == ':'); };
  if (!first_ok(name.front())) return false;
  return std::all_of(name.begin() + 1, name.end(), [&](char c) { return first_ok(c) || is_digit(c); });
}

bool is_label_name(std::string_view name) {
  if (name.empty() || !is_alpha_or_underscore(name.front())) return false;
  return std::all_of(name.begin() + 1, name.end(), [](char c) { return is_alpha_or_underscore(c) || is_digit(c); });
}

bool is_valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t length = 0;
    uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) {
      length = 2;
      code = c & 0x1fU;
    } else if (c >= 0xe0 && c <= 0xef) {
      length = 3;
      code = c & 0x0fU;
    } else if (c >= 0xf0 && c <= 0xf4) {
      length = 4;
      code = c & 0x07U;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0U) != 0x80U) return false;
      code = (code << 6U) | (cc & 0x3fU);
    }
    // Overlong forms, surrogates and values past U+10FFFF.
    if ((length == 3 && code < 0x800) || (length == 4 && (code < 0x10000 || code > 0x10ffff)) ||
        (code >= 0xd800 && code <= 0xdfff)) {
      return false;
    }
    i += length;
  }
  return true;
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  std::array<char, 64> buffer{};
  const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  if (ec != std::errc()) return "NaN";
  return std::string(buffer.data(), end);
}

// --- the registry -------------------------------------------------------------------------------

MetricsRegistry::MetricsRegistry(Limits limits) : limits_(limits) {}

hdp_status_t MetricsRegistry::validate(bool host_family, const MetricSpec& spec) const {
  const bool reserved = spec.name.starts_with("hdp_");
  if (spec.name.size() > limits_.max_name_bytes || !is_metric_name(spec.name, host_family) || reserved != host_family) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  if (spec.help.size() > limits_.max_help_bytes || !is_valid_utf8(spec.help)) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  if (spec.label_names.size() > limits_.max_labels) return HDP_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < spec.label_names.size(); ++i) {
    const std::string& label = spec.label_names[i];
    if (label.size() > limits_.max_label_name_bytes || !is_label_name(label) || label.starts_with("__") ||
        label == "le" || label == kPluginLabel) {
      return HDP_ERR_INVALID_ARGUMENT;
    }
    for (size_t k = 0; k < i; ++k) {
      if (spec.label_names[k] == label) return HDP_ERR_INVALID_ARGUMENT;
    }
  }
  if (spec.type == MetricType::histogram) {
    if (spec.buckets.size() > limits_.max_buckets) return HDP_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < spec.buckets.size(); ++i) {
      if (!std::isfinite(spec.buckets[i])) return HDP_ERR_INVALID_ARGUMENT;
      if (i > 0 && !(spec.buckets[i - 1] < spec.buckets[i])) return HDP_ERR_INVALID_ARGUMENT;
    }
  }
  return HDP_OK;
}

hdp_status_t MetricsRegistry::register_family(uint64_t owner, std::string_view owner_label, const MetricSpec& spec_in,
                                              uint64_t* out_id) {
  if (out_id == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  const bool host_family = owner == kHostOwner;
  if (const hdp_status_t s = validate(host_family, spec_in); s != HDP_OK) return s;
  MetricSpec spec = spec_in;
  if (spec.type == MetricType::histogram) {
    if (spec.buckets.empty()) spec.buckets = default_histogram_buckets();
  } else {
    spec.buckets.clear();
  }
  if (owner_names_.contains({owner, spec.name})) return HDP_ERR_ALREADY_EXISTS;
  if (families_per_owner_[owner] >= limits_.max_families_per_owner) return HDP_ERR_LIMIT;

  // The names a histogram's samples use may not meet another family's.
  static constexpr std::array<std::string_view, 3> kSuffixes = {"_bucket", "_sum", "_count"};
  for (const auto& [name, family] : families_) {
    if (name == spec.name) continue;
    for (const std::string_view suffix : kSuffixes) {
      if (family.spec.type == MetricType::histogram && spec.name == name + std::string(suffix)) {
        return HDP_ERR_ALREADY_EXISTS;
      }
      if (spec.type == MetricType::histogram && name == spec.name + std::string(suffix)) {
        return HDP_ERR_ALREADY_EXISTS;
      }
    }
  }

  auto existing = families_.find(spec.name);
  if (existing != families_.end()) {
    // Another plugin's family of that name: shared only if it reads the same.
    const Family& family = existing->second;
    if (host_family || !family.plugin_family || family.spec.type != spec.type ||
        family.spec.label_names != spec.label_names || family.spec.buckets != spec.buckets) {
      return HDP_ERR_ALREADY_EXISTS;
    }
  } else {
    Family family;
    family.spec = spec;
    family.plugin_family = !host_family;
    existing = families_.emplace(spec.name, std::move(family)).first;
  }

  const uint64_t id = next_id_++;
  handles_.emplace(id, Handle{owner, std::string(owner_label), spec.name});
  owner_names_.insert({owner, spec.name});
  ++families_per_owner_[owner];
  *out_id = id;

  // A family without labels has exactly one series: shown (at zero) from the start.
  if (spec.label_names.empty()) {
    hdp_status_t ignored = HDP_OK;
    series_for(owner, id, spec.type, {}, &ignored);
  }
  return HDP_OK;
}

MetricsRegistry::Series* MetricsRegistry::series_for(uint64_t owner, uint64_t id, MetricType type,
                                                     std::span<const std::string_view> labels, hdp_status_t* status) {
  const auto handle = handles_.find(id);
  if (handle == handles_.end() || handle->second.owner != owner) {
    *status = HDP_ERR_NOT_FOUND;
    return nullptr;
  }
  Family& family = families_.at(handle->second.family);
  if (family.spec.type != type || labels.size() != family.spec.label_names.size()) {
    *status = HDP_ERR_INVALID_ARGUMENT;
    return nullptr;
  }
  std::vector<std::string> key;
  key.reserve(labels.size() + 1);
  if (family.plugin_family) key.push_back(handle->second.owner_label);
  for (const std::string_view value : labels) {
    if (value.size() > limits_.max_label_value_bytes || !is_valid_utf8(value)) {
      *status = HDP_ERR_INVALID_ARGUMENT;
      return nullptr;
    }
    key.emplace_back(value);
  }
  auto found = family.series.find(key);
  if (found != family.series.end()) return &found->second;
  size_t& count = family.series_per_owner[owner];
  if (count >= limits_.max_series_per_family_per_owner) {
    *status = HDP_ERR_LIMIT;
    return nullptr;
  }
  ++count;
  Series series;
  if (type == MetricType::histogram) series.bucket_counts.assign(family.spec.buckets.size() + 1, 0);
  return &family.series.emplace(std::move(key), std::move(series)).first->second;
}

MetricsRegistry::Series* MetricsRegistry::series_to_update(uint64_t owner, uint64_t id, MetricType type,
                                                           std::span<const std::string_view> labels, bool value_ok,
                                                           hdp_status_t* status) {
  if (!value_ok) {
    *status = handles_.contains(id) ? HDP_ERR_INVALID_ARGUMENT : HDP_ERR_NOT_FOUND;
    return nullptr;
  }
  return series_for(owner, id, type, labels, status);
}

hdp_status_t MetricsRegistry::counter_add(uint64_t owner, uint64_t id, std::span<const std::string_view> labels,
                                          double delta) {
  hdp_status_t status = HDP_OK;
  Series* series =
      series_to_update(owner, id, MetricType::counter, labels, std::isfinite(delta) && delta >= 0, &status);
  if (series == nullptr) return status;
  series->value += delta;
  return HDP_OK;
}

hdp_status_t MetricsRegistry::gauge_set(uint64_t owner, uint64_t id, std::span<const std::string_view> labels,
                                        double value) {
  hdp_status_t status = HDP_OK;
  Series* series = series_to_update(owner, id, MetricType::gauge, labels, !std::isnan(value), &status);
  if (series == nullptr) return status;
  series->value = value;
  return HDP_OK;
}

hdp_status_t MetricsRegistry::gauge_add(uint64_t owner, uint64_t id, std::span<const std::string_view> labels,
                                        double delta) {
  hdp_status_t status = HDP_OK;
  Series* series = series_to_update(owner, id, MetricType::gauge, labels, std::isfinite(delta), &status);
  if (series == nullptr) return status;
  series->value += delta;
  return HDP_OK;
}

hdp_status_t MetricsRegistry::observe(uint64_t owner, uint64_t id, std::span<const std::string_view> labels,
                                      double value) {
  hdp_status_t status = HDP_OK;
  Series* series = series_to_update(owner, id, MetricType::histogram, labels, !std::isnan(value), &status);
  if (series == nullptr) return status;
  const Family& family = families_.at(handles_.at(id).family);
  const auto& bounds = family.spec.buckets;
  const size_t index = static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
  ++series->bucket_counts[index];  // index == bounds.size() is the +Inf bucket
  series->sum += value;
  ++series->count;
  return HDP_OK;
}

namespace {

// `{a="x",b="y"}` (with extra appended last), or "" when there is no label at all.
std::string label_text(const std::vector<std::string>& names, const std::vector<std::string>& values,
                       std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    out += escape_label_value(values[i]);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out += ',';
    out += extra_name;
    out += "=\"";
    out += escape_label_value(extra_value);
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace

std::string MetricsRegistry::render() const {
  std::string out;
  for (const auto& [name, family] : families_) {
    if (!family.spec.help.empty()) out += "# HELP " + name + " " + escape_help(family.spec.help) + "\n";
    out += "# TYPE " + name + " " + type_name(family.spec.type) + "\n";
    std::vector<std::string> names;
    if (family.plugin_family) names.emplace_back(kPluginLabel);
    names.insert(names.end(), family.spec.label_names.begin(), family.spec.label_names.end());
    for (const auto& [values, series] : family.series) {
      if (family.spec.type != MetricType::histogram) {
        out += name + label_text(names, values) + " " + format_metric_value(series.value) + "\n";
        continue;
      }
      uint64_t cumulative = 0;
      for (size_t i = 0; i < series.bucket_counts.size(); ++i) {
        cumulative += series.bucket_counts[i];
        const std::string le = i < family.spec.buckets.size() ? format_metric_value(family.spec.buckets[i]) : "+Inf";
        out += name + "_bucket" + label_text(names, values, "le", le) + " " + std::to_string(cumulative) + "\n";
      }
      const std::string labels = label_text(names, values);
      out += name + "_sum" + labels + " " + format_metric_value(series.sum) + "\n";
      out += name + "_count" + labels + " " + std::to_string(series.count) + "\n";
    }
  }
  return out;
}

// --- the host's own families --------------------------------------------------------------------

HostMetrics::HostMetrics(MetricsRegistry& registry) : registry_(registry) {
  MetricSpec requests{MetricType::counter,
                      "hdp_host_http_requests_total",
                      "HTTP requests answered by the host, by method, route and status code",
                      {"method", "route", "status"},
                      {}};
  MetricSpec refused{MetricType::counter,
                     "hdp_host_http_refused_total",
                     "HTTP requests refused before any route saw them, by reason: body_too_large (413), "
                     "header_too_large (431), bad_request (400), header_timeout and body_timeout (closed)",
                     {"reason"},
                     {}};
  MetricSpec plugins{MetricType::gauge, "hdp_host_plugins_loaded", "Plugins loaded and started", {}, {}};
  MetricSpec info{MetricType::gauge,
                  "hdp_host_info",
                  "Always 1; the labels name the host's version and the plugin ABI version it speaks",
                  {"version", "abi_version"},
                  {}};
  MetricSpec writes{MetricType::counter,
                    "hdp_host_message_writes_total",
                    "Call messages written for plugins, by operation: hdp.messages/1 calls (each its own "
                    "transaction) and hdp.messages/2 operations (*_async, batched per loop turn)",
                    {"operation"},
                    {}};
  MetricSpec batch{MetricType::histogram,
                   "hdp_host_store_batch_writes",
                   "Writes made durable by one commit of the host's store (a hdp.messages/1 call is one; "
                   "a loop turn's hdp.messages/2 operations and attachment rows share one)",
                   {},
                   {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}};
  MetricSpec lag{MetricType::histogram,
                 "hdp_loop_lag_seconds",
                 "How late the host's loop ran a probe timer that was due (time the loop was busy elsewhere)",
                 {},
                 {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  registry_.register_family(MetricsRegistry::kHostOwner, "host", requests, &requests_);
  registry_.register_family(MetricsRegistry::kHostOwner, "host", refused, &refused_);
  registry_.register_family(MetricsRegistry::kHostOwner, "host", writes, &message_writes_);
  registry_.register_family(MetricsRegistry::kHostOwner, "host", batch, &store_batch_);
  registry_.register_family(MetricsRegistry::kHostOwner, "host", lag, &loop_lag_);
  registry_.register_family(MetricsRegistry::kHostOwner, "host", plugins, &plugins_loaded_);
  registry_.register_family(MetricsRegistry::kHostOwner, "host", info, &info_);
  const std::string abi = std::to_string(HDP_VERSION_MAJOR) + "." + std::to_string(HDP_VERSION_MINOR) + "." +
                          std::to_string(HDP_VERSION_PATCH);
  const std::array<std::string_view, 2> info_labels = {host_version(), abi};
  registry_.gauge_set(MetricsRegistry::kHostOwner, info_, info_labels, 1);
}

void HostMetrics::count_request(std::string_view method, std::string_view route, unsigned status) {
  static constexpr std::array<std::string_view, 7> kMethods = {"GET",    "HEAD",  "POST",   "PUT",
                                                               "DELETE", "PATCH", "OPTIONS"};
  const bool known = std::find(kMethods.begin(), kMethods.end(), method) != kMethods.end();
  const std::string status_text = std::to_string(status);
  const std::array<std::string_view, 3> labels = {known ? method : std::string_view("other"), route, status_text};
  registry_.counter_add(MetricsRegistry::kHostOwner, requests_, labels, 1);
}

void HostMetrics::count_refused(std::string_view reason) {
  const std::array<std::string_view, 1> labels = {reason};
  registry_.counter_add(MetricsRegistry::kHostOwner, refused_, labels, 1);
}

void HostMetrics::count_message_write(std::string_view operation) {
  const std::array<std::string_view, 1> labels = {operation};
  registry_.counter_add(MetricsRegistry::kHostOwner, message_writes_, labels, 1);
}

void HostMetrics::observe_store_batch(size_t writes) {
  registry_.observe(MetricsRegistry::kHostOwner, store_batch_, {}, static_cast<double>(writes));
}

void HostMetrics::observe_loop_lag(double seconds) {
  registry_.observe(MetricsRegistry::kHostOwner, loop_lag_, {}, seconds);
}

void HostMetrics::set_plugins_loaded(size_t count) {
  registry_.gauge_set(MetricsRegistry::kHostOwner, plugins_loaded_, {}, static_cast<double>(count));
}

void register_metrics_route(Router& router, const MetricsRegistry& registry) {
  router.add_host_route(RouteSpec{"GET", "/metrics", RouteMatch::exact, 0, RouteAccess::operator_only},
                        [&registry](const HttpRequest&) {
                          HttpResponse response;
                          response.content_type = std::string(MetricsRegistry::kContentType);
                          response.body = registry.render();
                          return response;
                        });
}

std::shared_ptr<Responder> counting_responder(HostMetrics& metrics, const Router& router, const HttpRequest& request,
                                              const std::shared_ptr<Responder>& responder) {
  const Router::Lookup found = router.lookup(request.method, request.path);
  std::string route = found.kind == Router::Lookup::Kind::found && found.route != nullptr ? found.route->spec.path
                                                                                          : std::string("unmatched");
  auto counted = std::make_shared<Responder>(
      [&metrics, method = request.method, route = std::move(route), inner = responder](HttpResponse&& response) {
        const unsigned status = response.status;
        if (inner->respond(std::move(response))) metrics.count_request(method, route, status);
      });
  // The server tells the outer responder when the client leaves; whoever holds the wrapper (the
  // router, for a deferred answer) hears it from the wrapper.
  responder->on_gone([weak = std::weak_ptr<Responder>(counted)] {
    if (auto alive = weak.lock()) alive->client_gone();
  });
  return counted;
}

}  // namespace hdp::host
