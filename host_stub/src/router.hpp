// Routes HTTP requests to host handlers and plugin routes (ext/http.h): exact and prefix paths,
// a method or "*", the per-route body limit, and the deferred answers of plugin routes with
// their timeouts.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include <hdp/ext/http.h>
#include <hdp/status.h>

#include "http_types.hpp"

namespace hdp::host {

class Logger;
class TimerService;

enum class RouteMatch : uint32_t { exact = HDP_HTTP_MATCH_EXACT, prefix = HDP_HTTP_MATCH_PREFIX };

// Who may call a route. The first three are ext/http.h's HDP_HTTP_ACCESS_*; the host's own routes
// may also be operator routes (GET /metrics).
enum class RouteAccess : uint32_t {
  open = HDP_HTTP_ACCESS_PUBLIC,                      // anyone; the handler checks what it needs
  agent = HDP_HTTP_ACCESS_AGENT,                      // signed-in agents only
  agent_or_plugin = HDP_HTTP_ACCESS_AGENT_OR_PLUGIN,  // an agent, or whoever the plugin accepts
  operator_only = 0x100,                              // loopback, or the operator's bearer token
};

// Which listener a request came in on: the agents' (--listen) or the one facing the internet
// (--public-listen), which serves only routes marked for it.
enum class Listener { agents, internet };

// True when path is served by a route on route_path: equal, or (prefix) continuing it after a
// '/'. Paths compare as sent, still percent-encoded.
bool route_path_matches(std::string_view route_path, RouteMatch match, std::string_view path);

struct RouteSpec {
  std::string method;  // "GET", ... or "*"
  std::string path;    // starts with '/'
  RouteMatch match = RouteMatch::exact;
  uint64_t max_body_bytes = 0;  // 0: the router's default
  RouteAccess access = RouteAccess::agent;
  bool on_internet_listener = false;  // served on Listener::internet too
  bool sign_in_redirect = false;      // a page: refused agents are sent to GET /login
};

// Decides who may use a route that is not open (agent_auth.cpp). [main-thread]
class AccessGate {
 public:
  // nullopt lets the request through; otherwise the answer that refuses it.
  using Decide = std::function<void(std::optional<HttpResponse> refusal)>;

  virtual ~AccessGate() = default;
  // nullopt lets the request through, with request.agent_name (and agent_csrf_token) set when an
  // agent is signed in; otherwise the answer that refuses it.
  virtual std::optional<HttpResponse> admit(const RouteSpec& route, HttpRequest& request) = 0;
  // The same decision, given now or later (a session looked up in a database, off the loop):
  // decide runs exactly once, on the main thread, maybe inside this call. request stays alive
  // and is touched by nobody else until then; route only during this call. The router asks this.
  virtual void admit_later(const RouteSpec& route, HttpRequest& request, Decide decide) {
    decide(admit(route, request));
  }
};

// A host route that answers at once: for what needs no database (health, static pages, metrics).
using HostHandler = std::function<HttpResponse(const HttpRequest&)>;
// How a host route answers later: called once, on the main thread (a second answer, or one after
// the client went away, is dropped).
using HostReply = std::function<void(HttpResponse&& response)>;
// A host route that answers through reply, now or later (a database read on the host's reader).
using AsyncHostHandler = std::function<void(HttpRequest&& request, HostReply reply)>;

// A plugin route as registered through ext/http.h (copied).
struct PluginRouteTarget {
  uint64_t owner = 0;                // the plugin's owner id, never 0
  std::string owner_name;            // the plugin id, for log lines
  uint64_t deferred_timeout_ms = 0;  // 0: the router's default
  hdp_http_request_callback_t on_request = nullptr;
  hdp_http_cancel_callback_t on_cancel = nullptr;
  void* user_data = nullptr;
};

struct RouterLimits {
  uint64_t default_max_body_bytes = 1024 * 1024;
  uint64_t default_deferred_timeout_ms = 30000;
};

class Router {
 public:
  static constexpr uint64_t kHostOwner = 0;

  struct Route {
    uint64_t id = 0;
    uint64_t owner = kHostOwner;
    RouteSpec spec;
    HostHandler host_handler;             // host routes that answer at once
    AsyncHostHandler async_host_handler;  // host routes that answer later
    PluginRouteTarget plugin;             // plugin routes
  };

  struct Lookup {
    enum class Kind { found, not_found, method_not_allowed };
    Kind kind = Kind::not_found;
    const Route* route = nullptr;
    std::string allow;  // for 405: the methods accepted on this path
  };

  Router(TimerService& timers, Logger& log, RouterLimits limits = {});
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;
  ~Router();

  // HDP_ERR_ALREADY_EXISTS when the method and path are taken; HDP_ERR_INVALID_ARGUMENT for a
  // bad method or path. [main-thread]
  hdp_status_t add_host_route(RouteSpec spec, HostHandler handler, uint64_t* out_route_id = nullptr);
  hdp_status_t add_async_host_route(RouteSpec spec, AsyncHostHandler handler, uint64_t* out_route_id = nullptr);
  hdp_status_t add_plugin_route(RouteSpec spec, PluginRouteTarget target, uint64_t* out_route_id);
  // HDP_ERR_NOT_FOUND unless owner registered route_id. Deferred requests stay answerable.
  hdp_status_t remove_route(uint64_t owner, uint64_t route_id);
  void remove_owner_routes(uint64_t owner);

  // The most specific route served on listener accepting method: exact paths before prefixes,
  // longer prefixes first, a named method before "*". A GET route also takes HEAD (after a HEAD
  // route, before "*"); the HTTP layer drops the body. 405 when routes match the path but none
  // the method.
  Lookup lookup(std::string_view method, std::string_view path, Listener listener = Listener::agents) const;

  // The body limit for a request (its route's, or the default when nothing matches). Thread-safe:
  // the HTTP server's I/O threads ask it while the main thread may add or remove routes.
  uint64_t body_limit(std::string_view method, std::string_view path, Listener listener = Listener::agents) const;

  // Who decides on routes that are not open; without one, such routes refuse everyone (401).
  // gate must outlive the router. [main-thread]
  void set_access_gate(AccessGate* gate) { gate_ = gate; }

  // Serves one complete request; the answer goes to responder now or later. A route that is not
  // open waits for the gate's decision first; the route is looked up again then (it may have been
  // removed meanwhile: 404), and a client that went away meanwhile is not served. [main-thread]
  void dispatch(HttpRequest&& request, const std::shared_ptr<Responder>& responder,
                Listener listener = Listener::agents);

  // Answers a plugin's request (ext/http.h respond). [main-thread]
  hdp_status_t respond(uint64_t owner, uint64_t request_id, const hdp_http_response_t* response);

  // Answers every deferred request of owner with 503 and calls its on_cancel (shutdown).
  void fail_deferred(uint64_t owner);
  size_t deferred_count(uint64_t owner) const;
  size_t route_count() const { return routes_.size(); }

 private:
  struct Deferred {
    uint64_t owner = 0;
    std::string owner_name;
    std::string path;
    std::shared_ptr<Responder> responder;
    hdp_http_cancel_callback_t on_cancel = nullptr;
    void* user_data = nullptr;
    uint64_t timer_id = 0;
    bool in_on_request = true;
  };

  hdp_status_t add_route(Route route, uint64_t* out_route_id);
  // The request has passed the gate (or needs none): the route's handler or plugin serves it.
  void serve(const Route& route, HttpRequest&& request, const std::shared_ptr<Responder>& responder);
  void dispatch_to_plugin(const Route& route, HttpRequest&& request, const std::shared_ptr<Responder>& responder);
  // Ends a deferred request that the plugin will not answer: 503 if the client is still there,
  // then on_cancel.
  void abandon(uint64_t request_id, std::string_view why, bool client_gone);

  TimerService& timers_;
  Logger& log_;
  RouterLimits limits_;
  AccessGate* gate_ = nullptr;
  std::vector<Route> routes_;
  // Written on the main thread only, under a unique lock; read there without one, and by
  // body_limit under a shared lock from any thread.
  mutable std::shared_mutex routes_mutex_;
  std::map<uint64_t, Deferred> deferred_;
  uint64_t next_route_id_ = 1;
  uint64_t next_request_id_ = 1;
  // Expires with the router: a gate's late decision finds no router to continue in.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hdp::host
