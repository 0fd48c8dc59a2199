/* hdp/ext/http.h - HTTP routes served by the host for the plugin.
 *
 * The host owns the HTTP server: parsing, TLS, keep-alive, header limits, timeouts. The plugin
 * registers a method and path; the host enforces the route's body limit (answering 413 itself)
 * and calls on_request with a borrowed view of the request. The plugin answers exactly once with
 * respond(), either inside on_request (immediate) or later by request id (deferred). A deferred
 * request that gets no answer within the route's timeout is answered 503 by the host, which then
 * calls on_cancel; a respond() after that returns HDP_ERR_NOT_FOUND. */
#ifndef HDP_EXT_HTTP_H
#define HDP_EXT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "../host.h"
#include "../status.h"
#include "../version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HDP_EXT_HTTP "hdp.http/1"

/* Route matching; crosses the ABI as uint32_t. */
enum {
  HDP_HTTP_MATCH_EXACT = 0,  /* the path equals the route's path */
  HDP_HTTP_MATCH_PREFIX = 1, /* the path equals it or continues it after a '/' */
};

/* Who may call a route (since 1.2); crosses the ABI as uint32_t in hdp_http_route_t.access. A
 * route registered with a struct_size that does not reach access (a 1.0 or 1.1 plugin) is
 * HDP_HTTP_ACCESS_PUBLIC, which is what every route meant before 1.2. A host treats a value it
 * does not know as HDP_HTTP_ACCESS_AGENT, the strictest. */
enum {
  /* Anyone who reaches the host; the plugin authenticates the caller itself (a webhook with its
   * own key). The only routes a host may serve on a listener that faces the internet.
   * agent_name is always NULL. */
  HDP_HTTP_ACCESS_PUBLIC = 0,
  /* Signed-in agents only: the host refuses any other caller (401) before dispatch, checks its
   * cross-site request forgery defence on methods other than GET and HEAD, and passes the
   * agent's name in agent_name. Never served on an internet-facing listener. */
  HDP_HTTP_ACCESS_AGENT = 1,
  /* A signed-in agent (checked as for HDP_HTTP_ACCESS_AGENT, agent_name set) or a caller the
   * plugin authenticates itself (agent_name NULL): for operator routes that scripts call with
   * the plugin's own key. Never served on an internet-facing listener. */
  HDP_HTTP_ACCESS_AGENT_OR_PLUGIN = 2,
};

/* One header. Strings are not NUL-terminated; use the lengths. */
typedef struct hdp_http_header {
  const char* name;
  size_t name_len;
  const char* value;
  size_t value_len;
} hdp_http_header_t;

/* The request, as the host received it.
 * OWNERSHIP: every pointer is the host's and valid only during on_request; the plugin copies what
 * it keeps. Strings are not NUL-terminated; use the lengths. */
typedef struct hdp_http_request {
  uint32_t struct_size;
  /* The id to answer with; never 0, never reused. */
  uint64_t request_id;
  /* "GET", "POST", ... */
  const char* method;
  size_t method_len;
  /* The target's path, still percent-encoded, without the query. */
  const char* path;
  size_t path_len;
  /* The raw query string without the '?', empty when absent. */
  const char* query;
  size_t query_len;
  const hdp_http_header_t* headers;
  size_t header_count;
  /* The raw body bytes (not NUL-terminated, may contain NULs), at most the route's limit. */
  const uint8_t* body;
  size_t body_len;
  /* The peer's address as text, "127.0.0.1" or "::1" (no port). */
  const char* peer_address;
  size_t peer_address_len;
  /* Since 1.2 (check struct_size): the name of the signed-in agent the host authenticated for a
   * route of HDP_HTTP_ACCESS_AGENT or HDP_HTTP_ACCESS_AGENT_OR_PLUGIN; NULL with length 0 when
   * the host authenticated no one (always on a public route). */
  const char* agent_name;
  size_t agent_name_len;
} hdp_http_request_t;

/* The answer. OWNERSHIP: borrowed for the respond() call; the host copies everything. */
typedef struct hdp_http_response {
  uint32_t struct_size;
  /* A final status, 200..599; anything else is refused with HDP_ERR_INVALID_ARGUMENT. */
  uint16_t status;
  /* NUL-terminated; NULL means "application/octet-stream" when there is a body. */
  const char* content_type;
  /* Extra headers; the host sets Content-Length, Connection and Date itself. */
  const hdp_http_header_t* headers;
  size_t header_count;
  const uint8_t* body;
  size_t body_len;
} hdp_http_response_t;

/* Runs on the main thread for each request that matches the route and fits its body limit. */
typedef void (*hdp_http_request_callback_t)(void* user_data, const hdp_http_request_t* request);

/* Runs on the main thread when a deferred request will not be answered by the plugin anymore
 * (timeout, client gone, host stopping). The request id is stale from then on. */
typedef void (*hdp_http_cancel_callback_t)(void* user_data, uint64_t request_id);

typedef struct hdp_http_route {
  uint32_t struct_size;
  /* "POST", "GET", ... or "*" for any method. NUL-terminated; copied by the host. A host may
   * also pass HEAD requests (method "HEAD") to a GET route and send the answer without its body. */
  const char* method;
  /* Absolute path such as "/webhooks/wavoip". NUL-terminated; copied by the host. */
  const char* path;
  /* HDP_HTTP_MATCH_* */
  uint32_t match;
  /* Largest accepted body; larger ones are answered 413 by the host without calling the
   * plugin. 0 means the host's default. */
  uint64_t max_body_bytes;
  /* How long a deferred answer may take before the host answers 503 and calls on_cancel,
   * measured on the host's monotonic clock (virtual under a test host). 0 means the host's
   * default (30 s). */
  uint64_t deferred_timeout_ms;
  hdp_http_request_callback_t on_request;
  /* May be NULL. */
  hdp_http_cancel_callback_t on_cancel;
  /* OWNERSHIP: the plugin's; passed back to both callbacks. */
  void* user_data;
  /* Since 1.2: HDP_HTTP_ACCESS_*. A host older than 1.2 ignores it and serves the route to
   * anyone, so a plugin that needs HDP_HTTP_ACCESS_AGENT checks agent_name, which such a host
   * never sets (HDP_HTTP_REQUEST_V1_2_SIZE). */
  uint32_t access;
  /* Since 1.2: 0; keeps the struct free of tail padding. */
  uint32_t reserved;
} hdp_http_route_t;

typedef struct hdp_host_http {
  /* sizeof(hdp_host_http_t) as the host compiled it. */
  uint32_t struct_size;

  /* Adds a route. HDP_ERR_ALREADY_EXISTS when the method and path are taken (by any plugin).
   * OWNERSHIP: route is borrowed for the call; the host copies it. *out_route_id is never 0.
   * [main-thread] */
  hdp_status_t (*register_route)(const hdp_host_t* host, const hdp_http_route_t* route, uint64_t* out_route_id);

  /* Removes a route; requests already deferred on it stay answerable. HDP_ERR_NOT_FOUND for an
   * unknown id.
   * [main-thread] */
  hdp_status_t (*unregister_route)(const hdp_host_t* host, uint64_t route_id);

  /* Answers a request, once. HDP_ERR_NOT_FOUND when request_id is unknown, already answered,
   * timed out or cancelled. OWNERSHIP: response is borrowed for the call; the host copies it.
   * [main-thread] */
  hdp_status_t (*respond)(const hdp_host_t* host, uint64_t request_id, const hdp_http_response_t* response);
} hdp_host_http_t;

/* Version-1.0 sizes: the smallest struct_size a reader accepts (the end of the last 1.0 member,
 * without tail padding, so it is the same whichever minor compiled it). The V1_2 sizes end at the
 * last member added in 1.2: a struct_size at least that large carries access or agent_name. */
#define HDP_HTTP_REQUEST_V1_SIZE HDP_V1_SIZE(hdp_http_request_t, peer_address_len)
#define HDP_HTTP_RESPONSE_V1_SIZE HDP_V1_SIZE(hdp_http_response_t, body_len)
#define HDP_HTTP_ROUTE_V1_SIZE HDP_V1_SIZE(hdp_http_route_t, user_data)
#define HDP_HOST_HTTP_V1_SIZE HDP_V1_SIZE(hdp_host_http_t, respond)
#define HDP_HTTP_REQUEST_V1_2_SIZE HDP_V1_SIZE(hdp_http_request_t, agent_name_len)
#define HDP_HTTP_ROUTE_V1_2_SIZE HDP_V1_SIZE(hdp_http_route_t, reserved)

#ifdef __cplusplus
}
#endif

#endif /* HDP_EXT_HTTP_H */
