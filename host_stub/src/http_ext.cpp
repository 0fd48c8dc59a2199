// ext/http.h on top of Router.
#include "extensions.hpp"
#include "plugin_host_table.hpp"
#include "router.hpp"

namespace hdp::host {
namespace {

// A plugin may ask for large bodies, not unbounded ones: they are held in memory.
constexpr uint64_t kMaxRouteBodyBytes = 64ULL * 1024 * 1024;

hdp_status_t register_route(const hdp_host_t* host, const hdp_http_route_t* route, uint64_t* out_route_id) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  if (const hdp_status_t s = context->check_may_register("register_route"); s != HDP_OK) return s;
  if (route == nullptr || out_route_id == nullptr || route->struct_size < HDP_HTTP_ROUTE_V1_SIZE ||
      route->method == nullptr || route->path == nullptr || route->on_request == nullptr) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  if (route->max_body_bytes > kMaxRouteBodyBytes) return HDP_ERR_LIMIT;
  RouteSpec spec;
  spec.method = route->method;
  spec.path = route->path;
  spec.match = static_cast<RouteMatch>(route->match);
  spec.max_body_bytes = route->max_body_bytes;
  // A 1.0 or 1.1 plugin's route (struct_size short of access) is public, as every route was.
  const uint32_t access =
      route->struct_size >= HDP_HTTP_ROUTE_V1_2_SIZE ? route->access : static_cast<uint32_t>(HDP_HTTP_ACCESS_PUBLIC);
  switch (access) {
    case HDP_HTTP_ACCESS_PUBLIC:
      spec.access = RouteAccess::open;
      spec.on_internet_listener = true;
      break;
    case HDP_HTTP_ACCESS_AGENT_OR_PLUGIN: spec.access = RouteAccess::agent_or_plugin; break;
    case HDP_HTTP_ACCESS_AGENT: spec.access = RouteAccess::agent; break;
    default:
      // From a newer minor: the strictest meaning we know.
      context->log(LogLevel::warning, std::string("register_route ") + route->method + " " + route->path +
                                          ": unknown access " + std::to_string(access) +
                                          ", served to signed-in agents only");
      spec.access = RouteAccess::agent;
      break;
  }
  PluginRouteTarget target;
  target.owner = context->owner();
  target.owner_name = context->id();
  target.deferred_timeout_ms = route->deferred_timeout_ms;
  target.on_request = route->on_request;
  target.on_cancel = route->on_cancel;
  target.user_data = route->user_data;
  const hdp_status_t status =
      context->services().router.add_plugin_route(std::move(spec), std::move(target), out_route_id);
  if (status != HDP_OK) {
    context->log(LogLevel::warning,
                 std::string("register_route ") + route->method + " " + route->path + ": " + status_text(status));
  }
  return status;
}

hdp_status_t unregister_route(const hdp_host_t* host, uint64_t route_id) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  if (const hdp_status_t s = context->check_may_use("unregister_route"); s != HDP_OK) return s;
  return context->services().router.remove_route(context->owner(), route_id);
}

hdp_status_t respond(const hdp_host_t* host, uint64_t request_id, const hdp_http_response_t* response) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  if (const hdp_status_t s = context->check_may_use("respond"); s != HDP_OK) return s;
  return context->services().router.respond(context->owner(), request_id, response);
}

const hdp_host_http_t kHttp = {
    sizeof(hdp_host_http_t),
    register_route,
    unregister_route,
    respond,
};

}  // namespace

const hdp_host_http_t* http_extension() {
  return &kHttp;
}

}  // namespace hdp::host
