#include "router.hpp"

#include <algorithm>
#include <exception>
#include <utility>

#include "log.hpp"
#include "timers.hpp"

namespace hdp::host {
namespace {

bool is_token_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u <= 0x20 || u >= 0x7f) return false;
  return std::string_view("\"(),/:;<=>?@[\\]{}").find(c) == std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

bool is_header_value(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

// The host sets these itself (ext/http.h).
bool is_host_managed_header(std::string_view name) {
  return iequals(name, "Content-Length") || iequals(name, "Connection") || iequals(name, "Date") ||
         iequals(name, "Transfer-Encoding") || iequals(name, "Keep-Alive") || iequals(name, "Upgrade");
}

}  // namespace

bool route_path_matches(std::string_view route_path, RouteMatch match, std::string_view path) {
  if (path == route_path) return true;
  if (match != RouteMatch::prefix || !path.starts_with(route_path)) return false;
  return route_path.ends_with('/') || path[route_path.size()] == '/';
}

Router::Router(TimerService& timers, Logger& log, RouterLimits limits) : timers_(timers), log_(log), limits_(limits) {}

Router::~Router() {
  for (auto& [id, deferred] : deferred_) {
    if (deferred.timer_id != 0) timers_.cancel(deferred.timer_id);
  }
}

hdp_status_t Router::add_host_route(RouteSpec spec, HostHandler handler, uint64_t* out_route_id) {
  if (!handler) return HDP_ERR_INVALID_ARGUMENT;
  Route route;
  route.owner = kHostOwner;
  route.spec = std::move(spec);
  route.host_handler = std::move(handler);
  return add_route(std::move(route), out_route_id);
}

hdp_status_t Router::add_async_host_route(RouteSpec spec, AsyncHostHandler handler, uint64_t* out_route_id) {
  if (!handler) return HDP_ERR_INVALID_ARGUMENT;
  Route route;
  route.owner = kHostOwner;
  route.spec = std::move(spec);
  route.async_host_handler = std::move(handler);
  return add_route(std::move(route), out_route_id);
}

hdp_status_t Router::add_plugin_route(RouteSpec spec, PluginRouteTarget target, uint64_t* out_route_id) {
  if (target.owner == kHostOwner || target.on_request == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  Route route;
  route.owner = target.owner;
  route.spec = std::move(spec);
  route.plugin = std::move(target);
  return add_route(std::move(route), out_route_id);
}

hdp_status_t Router::add_route(Route route, uint64_t* out_route_id) {
  const RouteSpec& spec = route.spec;
  if (spec.method != "*" && !is_token(spec.method)) return HDP_ERR_INVALID_ARGUMENT;
  if (spec.path.empty() || spec.path.front() != '/' || std::any_of(spec.path.begin(), spec.path.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f || c == '?' || c == '#';
      })) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  if (spec.match != RouteMatch::exact && spec.match != RouteMatch::prefix) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  const std::unique_lock lock(routes_mutex_);
  for (const Route& existing : routes_) {
    if (existing.spec.method == spec.method && existing.spec.path == spec.path) {
      return HDP_ERR_ALREADY_EXISTS;
    }
  }
  route.id = next_route_id_++;
  if (out_route_id != nullptr) *out_route_id = route.id;
  routes_.push_back(std::move(route));
  return HDP_OK;
}

hdp_status_t Router::remove_route(uint64_t owner, uint64_t route_id) {
  const std::unique_lock lock(routes_mutex_);
  const auto it = std::find_if(routes_.begin(), routes_.end(),
                               [&](const Route& r) { return r.id == route_id && r.owner == owner; });
  if (it == routes_.end()) return HDP_ERR_NOT_FOUND;
  routes_.erase(it);
  return HDP_OK;
}

void Router::remove_owner_routes(uint64_t owner) {
  const std::unique_lock lock(routes_mutex_);
  std::erase_if(routes_, [owner](const Route& r) { return r.owner == owner; });
}

Router::Lookup Router::lookup(std::string_view method, std::string_view path, Listener listener) const {
  std::vector<const Route*> candidates;
  for (const Route& route : routes_) {
    if (listener == Listener::internet && !route.spec.on_internet_listener) continue;
    if (route_path_matches(route.spec.path, route.spec.match, path)) candidates.push_back(&route);
  }
  Lookup result;
  if (candidates.empty()) return result;
  // How a route takes the method: named, GET for a HEAD (answered without its body), or "*".
  enum Fit { named, get_for_head, any, none };
  auto fit = [method](const Route* route) {
    if (route->spec.method == method) return named;
    if (method == "HEAD" && route->spec.method == "GET") return get_for_head;
    return route->spec.method == "*" ? any : none;
  };
  std::stable_sort(candidates.begin(), candidates.end(), [&fit](const Route* a, const Route* b) {
    const bool a_exact = a->spec.match == RouteMatch::exact;
    const bool b_exact = b->spec.match == RouteMatch::exact;
    if (a_exact != b_exact) return a_exact;
    if (a->spec.path.size() != b->spec.path.size()) return a->spec.path.size() > b->spec.path.size();
    return fit(a) < fit(b);
  });
  for (const Route* route : candidates) {
    if (fit(route) != none) {
      result.kind = Lookup::Kind::found;
      result.route = route;
      return result;
    }
  }
  result.kind = Lookup::Kind::method_not_allowed;
  std::vector<std::string> methods;
  for (const Route* route : candidates) methods.push_back(route->spec.method);
  std::sort(methods.begin(), methods.end());
  methods.erase(std::unique(methods.begin(), methods.end()), methods.end());
  for (const auto& m : methods) {
    if (!result.allow.empty()) result.allow += ", ";
    result.allow += m;
  }
  return result;
}

uint64_t Router::body_limit(std::string_view method, std::string_view path, Listener listener) const {
  const std::shared_lock lock(routes_mutex_);
  const Lookup found = lookup(method, path, listener);
  if (found.kind == Lookup::Kind::found && found.route->spec.max_body_bytes != 0) {
    return found.route->spec.max_body_bytes;
  }
  return limits_.default_max_body_bytes;
}

void Router::dispatch(HttpRequest&& request, const std::shared_ptr<Responder>& responder, Listener listener) {
  const Lookup found = lookup(request.method, request.path, listener);
  if (found.kind == Lookup::Kind::not_found) {
    responder->respond(HttpResponse::error(404, "not found"));
    return;
  }
  if (found.kind == Lookup::Kind::method_not_allowed) {
    HttpResponse response = HttpResponse::error(405, "method not allowed");
    response.headers.emplace_back("Allow", found.allow);
    responder->respond(std::move(response));
    return;
  }
  request.agent_name.clear();  // only the gate sets them
  request.agent_csrf_token.clear();
  if (found.route->spec.access == RouteAccess::open) {
    serve(*found.route, std::move(request), responder);
    return;
  }
  if (gate_ == nullptr) {
    log_.warning("refused " + request.method + " " + found.route->spec.path + " from " + request.peer_address +
                 ": no access gate for a route that is not open");
    responder->respond(HttpResponse::error(401, "sign in first"));
    return;
  }
  // The request waits here while the gate decides (maybe on another thread, for a session in the
  // database); it is the gate's to read and mark until then.
  auto held = std::make_shared<HttpRequest>(std::move(request));
  gate_->admit_later(found.route->spec, *held,
                     [this, alive = std::weak_ptr<bool>(alive_), held, responder, route_id = found.route->id,
                      route_path = found.route->spec.path](std::optional<HttpResponse> refusal) {
                       if (alive.expired()) return;
                       if (refusal) {
                         responder->respond(std::move(*refusal));
                         return;
                       }
                       if (responder->gone()) {
                         // The client left while the gate decided: nobody to serve. The route's path,
                         // not the request's (a plugin's may carry a secret).
                         log_.info("not serving " + held->method + " " + route_path + " from " + held->peer_address +
                                   ": the client went away while its session was checked");
                         return;
                       }
                       const auto it = std::find_if(routes_.begin(), routes_.end(),
                                                    [route_id](const Route& r) { return r.id == route_id; });
                       if (it == routes_.end()) {
                         responder->respond(HttpResponse::error(404, "not found"));  // removed meanwhile
                         return;
                       }
                       serve(*it, std::move(*held), responder);
                     });
}

void Router::serve(const Route& found, HttpRequest&& request, const std::shared_ptr<Responder>& responder) {
  if (found.owner != kHostOwner) {
    // Copy: the plugin may add or remove routes from inside on_request.
    const Route route = found;
    dispatch_to_plugin(route, std::move(request), responder);
    return;
  }
  if (found.async_host_handler) {
    // Copies: the handler may add or remove routes, and keeps the request.
    const AsyncHostHandler handler = found.async_host_handler;
    const std::string what = request.method + " " + request.path;
    try {
      handler(std::move(request), [responder](HttpResponse&& response) { responder->respond(std::move(response)); });
    } catch (const std::exception& e) {
      log_.error("internal error on " + what + ": " + e.what());
      responder->respond(HttpResponse::error(500, "internal error"));  // dropped if it answered already
    }
    return;
  }
  const HostHandler handler = found.host_handler;
  HttpResponse response;
  try {
    response = handler(request);
  } catch (const std::exception& e) {
    log_.error("internal error on " + request.method + " " + request.path + ": " + e.what());
    response = HttpResponse::error(500, "internal error");
  }
  responder->respond(std::move(response));
}

void Router::dispatch_to_plugin(const Route& route, HttpRequest&& request,
                                const std::shared_ptr<Responder>& responder) {
  const uint64_t request_id = next_request_id_++;
  Deferred pending;
  pending.owner = route.owner;
  pending.owner_name = route.plugin.owner_name;
  pending.path = request.path;
  pending.responder = responder;
  pending.on_cancel = route.plugin.on_cancel;
  pending.user_data = route.plugin.user_data;
  deferred_.emplace(request_id, std::move(pending));

  std::vector<hdp_http_header_t> headers;
  headers.reserve(request.headers.size());
  for (const auto& [name, value] : request.headers) {
    headers.push_back(hdp_http_header_t{name.data(), name.size(), value.data(), value.size()});
  }
  hdp_http_request_t view{};
  view.struct_size = sizeof(hdp_http_request_t);
  view.request_id = request_id;
  view.method = request.method.data();
  view.method_len = request.method.size();
  view.path = request.path.data();
  view.path_len = request.path.size();
  view.query = request.query.data();
  view.query_len = request.query.size();
  view.headers = headers.data();
  view.header_count = headers.size();
  view.body = reinterpret_cast<const uint8_t*>(request.body.data());
  view.body_len = request.body.size();
  view.peer_address = request.peer_address.data();
  view.peer_address_len = request.peer_address.size();
  if (!request.agent_name.empty()) {
    view.agent_name = request.agent_name.data();
    view.agent_name_len = request.agent_name.size();
  }

  route.plugin.on_request(route.plugin.user_data, &view);

  const auto it = deferred_.find(request_id);
  if (it == deferred_.end()) return;  // answered inside on_request
  // Deferred: answered later by id, or 503 + on_cancel on timeout or when the client goes.
  it->second.in_on_request = false;
  const uint64_t timeout_ms =
      route.plugin.deferred_timeout_ms != 0 ? route.plugin.deferred_timeout_ms : limits_.default_deferred_timeout_ms;
  it->second.timer_id =
      timers_.arm(kHostOwner, timeout_ms, 0, [this, request_id](uint64_t) { abandon(request_id, "timed out", false); });
  responder->on_gone([this, request_id] { abandon(request_id, "client went away", true); });
}

hdp_status_t Router::respond(uint64_t owner, uint64_t request_id, const hdp_http_response_t* response) {
  if (response == nullptr || response->struct_size < HDP_HTTP_RESPONSE_V1_SIZE) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  // 1xx are interim responses in HTTP/1.1 and cannot be the answer.
  if (response->status < 200 || response->status > 599) return HDP_ERR_INVALID_ARGUMENT;
  if (response->body == nullptr && response->body_len != 0) return HDP_ERR_INVALID_ARGUMENT;
  if (response->headers == nullptr && response->header_count != 0) return HDP_ERR_INVALID_ARGUMENT;
  HttpResponse answer;
  answer.status = response->status;
  for (size_t i = 0; i < response->header_count; ++i) {
    const hdp_http_header_t& h = response->headers[i];
    if ((h.name == nullptr && h.name_len != 0) || (h.value == nullptr && h.value_len != 0)) {
      return HDP_ERR_INVALID_ARGUMENT;
    }
    const std::string_view name(h.name == nullptr ? "" : h.name, h.name_len);
    const std::string_view value(h.value == nullptr ? "" : h.value, h.value_len);
    if (!is_token(name) || !is_header_value(value)) return HDP_ERR_INVALID_ARGUMENT;
    if (is_host_managed_header(name)) continue;
    if (iequals(name, "Content-Type")) {
      answer.content_type = value;
      continue;
    }
    answer.headers.emplace_back(name, value);
  }
  if (response->content_type != nullptr) {
    const std::string_view type(response->content_type);
    if (!is_header_value(type)) return HDP_ERR_INVALID_ARGUMENT;
    answer.content_type = type;
  }
  if (response->body_len != 0) {
    answer.body.assign(reinterpret_cast<const char*>(response->body), response->body_len);
    if (answer.content_type.empty()) answer.content_type = "application/octet-stream";
  }

  const auto it = deferred_.find(request_id);
  if (it == deferred_.end() || it->second.owner != owner) return HDP_ERR_NOT_FOUND;
  Deferred deferred = std::move(it->second);
  deferred_.erase(it);
  if (deferred.timer_id != 0) timers_.cancel(deferred.timer_id);
  deferred.responder->respond(std::move(answer));
  return HDP_OK;
}

void Router::abandon(uint64_t request_id, std::string_view why, bool client_gone) {
  const auto it = deferred_.find(request_id);
  if (it == deferred_.end()) return;
  Deferred deferred = std::move(it->second);
  deferred_.erase(it);
  if (deferred.timer_id != 0) timers_.cancel(deferred.timer_id);
  log_.log(client_gone ? LogLevel::info : LogLevel::warning, "host",
           "deferred request " + std::to_string(request_id) + " on " + deferred.path + " of " + deferred.owner_name +
               " " + std::string(why) + (client_gone ? "; cancelled" : "; answered 503"));
  if (!client_gone) {
    deferred.responder->respond(HttpResponse::try_again("the plugin did not answer in time"));
  }
  if (deferred.on_cancel != nullptr) deferred.on_cancel(deferred.user_data, request_id);
}

void Router::fail_deferred(uint64_t owner) {
  std::vector<uint64_t> ids;
  for (const auto& [id, deferred] : deferred_) {
    if (deferred.owner == owner && !deferred.in_on_request) ids.push_back(id);
  }
  for (const uint64_t id : ids) {
    const auto it = deferred_.find(id);
    if (it == deferred_.end()) continue;
    Deferred deferred = std::move(it->second);
    deferred_.erase(it);
    if (deferred.timer_id != 0) timers_.cancel(deferred.timer_id);
    HttpResponse unavailable = HttpResponse::error(503, "the host is shutting down");
    deferred.responder->respond(std::move(unavailable));
    if (deferred.on_cancel != nullptr) deferred.on_cancel(deferred.user_data, id);
  }
}

size_t Router::deferred_count(uint64_t owner) const {
  return static_cast<size_t>(
      std::count_if(deferred_.begin(), deferred_.end(), [owner](const auto& kv) { return kv.second.owner == owner; }));
}

}  // namespace hdp::host
