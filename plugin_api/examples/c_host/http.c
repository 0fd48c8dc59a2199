/* http.c - hdp.http/1: route registration, answers (immediate or deferred), and a tiny HTTP/1.0
 * server (one request per connection) driven by the loop. */
#include "c_host.h"

/* ---- http: routes and responses -------------------------------------------------------------- */

static bool valid_token(const char* text) {
  const char* c;
  if (text == NULL || *text == '\0') {
    return false;
  }
  for (c = text; *c != '\0'; ++c) {
    if (*c <= ' ' || *c >= 127 || strchr("()<>@,;:\\\"/[]?={}", *c) != NULL) {
      return false;
    }
  }
  return true;
}

static hdp_status_t http_register_route(const hdp_host_t* host, const hdp_http_route_t* route, uint64_t* out_route_id) {
  loaded_plugin_t* p = plugin_of(host);
  http_route_t* copy;
  size_t i;
  if (route == NULL || out_route_id == NULL || route->struct_size < HDP_HTTP_ROUTE_V1_SIZE ||
      route->on_request == NULL || route->path == NULL || route->path[0] != '/' ||
      (strcmp(route->method != NULL ? route->method : "", "*") != 0 && !valid_token(route->method)) ||
      (route->match != HDP_HTTP_MATCH_EXACT && route->match != HDP_HTTP_MATCH_PREFIX)) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  if (!may_register(p)) {
    return HDP_ERR_BAD_STATE;
  }
  for (i = 0; i < g_host.routes.len; ++i) {
    const http_route_t* other = (const http_route_t*)g_host.routes.items[i];
    if (!other->dead && strcmp(other->method, route->method) == 0 && strcmp(other->path, route->path) == 0) {
      return HDP_ERR_ALREADY_EXISTS;
    }
  }
  copy = (http_route_t*)calloc(1, sizeof *copy);
  if (copy == NULL) {
    return HDP_ERR_NO_MEMORY;
  }
  copy->method = str_dup(route->method);
  copy->path = str_dup(route->path);
  if (copy->method == NULL || copy->path == NULL || !vec_push(&g_host.routes, copy)) {
    free(copy->method);
    free(copy->path);
    free(copy);
    return HDP_ERR_NO_MEMORY;
  }
  copy->id = ++g_host.next_route_id;
  copy->owner = p;
  copy->match = route->match;
  copy->max_body_bytes = route->max_body_bytes != 0 ? route->max_body_bytes : HTTP_DEFAULT_BODY_LIMIT;
  if (copy->max_body_bytes > HTTP_ABSOLUTE_BODY_LIMIT) {
    copy->max_body_bytes = HTTP_ABSOLUTE_BODY_LIMIT;
  }
  copy->deferred_timeout_ms = route->deferred_timeout_ms != 0 ? route->deferred_timeout_ms : HTTP_DEFAULT_DEFERRED_MS;
  copy->on_request = route->on_request;
  copy->on_cancel = route->on_cancel;
  copy->user_data = route->user_data;
  /* Before 1.2 (shorter struct_size) every route was public; an unknown value is the strictest. */
  copy->access = route->struct_size >= HDP_HTTP_ROUTE_V1_2_SIZE ? route->access : HDP_HTTP_ACCESS_PUBLIC;
  if (copy->access != HDP_HTTP_ACCESS_PUBLIC && copy->access != HDP_HTTP_ACCESS_AGENT_OR_PLUGIN) {
    copy->access = HDP_HTTP_ACCESS_AGENT;
  }
  *out_route_id = copy->id;
  plugin_log(p, HDP_LOG_DEBUG, "route %" PRIu64 ": %s %s%s", copy->id, copy->method, copy->path,
             copy->match == HDP_HTTP_MATCH_PREFIX ? " (prefix)" : "");
  return HDP_OK;
}

static hdp_status_t http_unregister_route(const hdp_host_t* host, uint64_t route_id) {
  loaded_plugin_t* p = plugin_of(host);
  size_t i;
  for (i = 0; i < g_host.routes.len; ++i) {
    http_route_t* route = (http_route_t*)g_host.routes.items[i];
    if (!route->dead && route->id == route_id && route->owner == p) {
      route->dead = true;
      return HDP_OK;
    }
  }
  return HDP_ERR_NOT_FOUND;
}

static const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

static bool header_text_ok(const char* text, size_t len) {
  size_t i;
  for (i = 0; i < len; ++i) {
    if (text[i] == '\r' || text[i] == '\n' || text[i] == '\0') {
      return false;
    }
  }
  return true;
}

static bool header_reserved(const char* name, size_t len) {
  static const char* const reserved[] = {"content-length", "connection", "date", "transfer-encoding"};
  size_t i;
  size_t j;
  for (i = 0; i < sizeof reserved / sizeof reserved[0]; ++i) {
    if (strlen(reserved[i]) == len) {
      for (j = 0; j < len; ++j) {
        char c = name[j];
        if (c >= 'A' && c <= 'Z') {
          c = (char)(c - 'A' + 'a');
        }
        if (c != reserved[i][j]) {
          break;
        }
      }
      if (j == len) {
        return true;
      }
    }
  }
  return false;
}

/* Queues a complete HTTP/1.0 response on the connection (the host copies everything). */
static bool conn_queue_response(http_conn_t* conn, int status, const char* content_type,
                                const hdp_http_header_t* headers, size_t header_count, const uint8_t* body,
                                size_t body_len) {
  char head[1024];
  char date[64];
  time_t now = time(NULL);
  struct tm tm_utc;
  size_t extra = 0;
  size_t i;
  int head_len;
  char* out;
  size_t pos;
  gmtime_r(&now, &tm_utc);
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm_utc);
  if (content_type == NULL && body_len != 0) {
    content_type = "application/octet-stream";
  }
  head_len = snprintf(head, sizeof head,
                      "HTTP/1.0 %d %s\r\nServer: " HOST_NAME
                      "\r\nDate: %s\r\nConnection: close\r\n"
                      "Content-Length: %zu\r\n%s%s%s",
                      status, reason_phrase(status), date, body_len, content_type != NULL ? "Content-Type: " : "",
                      content_type != NULL ? content_type : "", content_type != NULL ? "\r\n" : "");
  if (head_len < 0 || (size_t)head_len >= sizeof head) {
    return false;
  }
  for (i = 0; i < header_count; ++i) {
    extra += headers[i].name_len + headers[i].value_len + 4;
  }
  out = (char*)malloc((size_t)head_len + extra + 2 + body_len);
  if (out == NULL) {
    return false;
  }
  memcpy(out, head, (size_t)head_len);
  pos = (size_t)head_len;
  for (i = 0; i < header_count; ++i) {
    memcpy(out + pos, headers[i].name, headers[i].name_len);
    pos += headers[i].name_len;
    memcpy(out + pos, ": ", 2);
    pos += 2;
    memcpy(out + pos, headers[i].value, headers[i].value_len);
    pos += headers[i].value_len;
    memcpy(out + pos, "\r\n", 2);
    pos += 2;
  }
  memcpy(out + pos, "\r\n", 2);
  pos += 2;
  if (body_len != 0) {
    memcpy(out + pos, body, body_len);
    pos += body_len;
  }
  free(conn->out);
  conn->out = out;
  conn->out_len = pos;
  conn->out_off = 0;
  conn->state = CONN_WRITE;
  conn->deadline_us = monotonic_us() + (int64_t)HTTP_IO_TIMEOUT_MS * 1000;
  conn->request_id = 0;
  conn->owner = NULL;
  conn->on_cancel = NULL;
  return true;
}

static void conn_queue_text(http_conn_t* conn, int status, const char* text) {
  if (!conn_queue_response(conn, status, "text/plain; charset=utf-8", NULL, 0, (const uint8_t*)text, strlen(text))) {
    conn->state = CONN_DEAD;
  }
}

static void access_log(const http_conn_t* conn, int status) {
  host_log(HDP_LOG_DEBUG, "%.*s %.*s -> %d", (int)conn->method.len, conn->in + conn->method.off, (int)conn->path.len,
           conn->in + conn->path.off, status);
}

static http_conn_t* find_pending(const loaded_plugin_t* p, uint64_t request_id) {
  size_t i;
  if (request_id == 0) {
    return NULL;
  }
  for (i = 0; i < g_host.conns.len; ++i) {
    http_conn_t* conn = (http_conn_t*)g_host.conns.items[i];
    if (conn->state == CONN_WAIT_PLUGIN && conn->request_id == request_id && conn->owner == p) {
      return conn;
    }
  }
  return NULL;
}

static hdp_status_t http_respond(const hdp_host_t* host, uint64_t request_id, const hdp_http_response_t* response) {
  loaded_plugin_t* p = plugin_of(host);
  http_conn_t* conn = find_pending(p, request_id);
  size_t i;
  if (conn == NULL) {
    return HDP_ERR_NOT_FOUND;
  }
  if (response == NULL || response->struct_size < HDP_HTTP_RESPONSE_V1_SIZE || response->status < 100 ||
      response->status > 599 || (response->body == NULL && response->body_len != 0) ||
      (response->headers == NULL && response->header_count != 0) ||
      (response->content_type != NULL && !header_text_ok(response->content_type, strlen(response->content_type)))) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < response->header_count; ++i) {
    const hdp_http_header_t* h = &response->headers[i];
    char name[128];
    if (h->name == NULL || h->name_len == 0 || h->name_len >= sizeof name || (h->value == NULL && h->value_len != 0) ||
        !header_text_ok(h->value, h->value_len) || header_reserved(h->name, h->name_len)) {
      return HDP_ERR_INVALID_ARGUMENT;
    }
    memcpy(name, h->name, h->name_len);
    name[h->name_len] = '\0';
    if (!valid_token(name)) {
      return HDP_ERR_INVALID_ARGUMENT;
    }
  }
  access_log(conn, response->status);
  if (!conn_queue_response(conn, response->status, response->content_type, response->headers, response->header_count,
                           response->body, response->body_len)) {
    return HDP_ERR_NO_MEMORY;
  }
  return HDP_OK;
}

const hdp_host_http_t g_http_ext = {
    (uint32_t)sizeof(hdp_host_http_t),
    http_register_route,
    http_unregister_route,
    http_respond,
};

/* The best live route for the request: exact beats prefix, a longer prefix beats a shorter one. */
static http_route_t* match_route(const char* method, size_t method_len, const char* path, size_t path_len) {
  http_route_t* best = NULL;
  size_t best_score = 0;
  size_t i;
  for (i = 0; i < g_host.routes.len; ++i) {
    http_route_t* route = (http_route_t*)g_host.routes.items[i];
    size_t route_len;
    size_t score;
    if (route->dead || route->owner->state != PLUGIN_STARTED) {
      continue;
    }
    if (strcmp(route->method, "*") != 0 &&
        (strlen(route->method) != method_len || memcmp(route->method, method, method_len) != 0)) {
      continue;
    }
    route_len = strlen(route->path);
    if (route_len == path_len && memcmp(route->path, path, path_len) == 0) {
      score = 2 * route_len + 2;
    } else if (route->match == HDP_HTTP_MATCH_PREFIX && route_len < path_len &&
               memcmp(route->path, path, route_len) == 0 &&
               (path[route_len] == '/' || route->path[route_len - 1] == '/')) {
      score = 2 * route_len + 1;
    } else {
      continue;
    }
    if (best == NULL || score > best_score) {
      best = route;
      best_score = score;
    }
  }
  return best;
}

/* ---- http: connections ----------------------------------------------------------------------- */

static bool span_eq_ci(const http_conn_t* conn, span_t span, const char* text) {
  size_t i;
  if (span.len != strlen(text)) {
    return false;
  }
  for (i = 0; i < span.len; ++i) {
    char c = conn->in[span.off + i];
    if (c >= 'A' && c <= 'Z') {
      c = (char)(c - 'A' + 'a');
    }
    if (c != text[i]) {
      return false;
    }
  }
  return true;
}

/* Parses the request line and headers in in[0..head_len). Returns an HTTP status on error, 0 on
 * success. */
static int parse_head(http_conn_t* conn) {
  const char* buf = conn->in;
  size_t end = conn->head_len - 2; /* the final empty line's CRLF */
  size_t pos = 0;
  size_t line_end;
  size_t sp1;
  size_t sp2;
  size_t i;
  bool have_length = false;

  for (line_end = 0; line_end + 1 < end && !(buf[line_end] == '\r' && buf[line_end + 1] == '\n'); ++line_end) {
  }
  for (sp1 = 0; sp1 < line_end && buf[sp1] != ' '; ++sp1) {
  }
  for (sp2 = sp1 + 1; sp2 < line_end && buf[sp2] != ' '; ++sp2) {
  }
  if (sp1 == 0 || sp1 >= line_end || sp2 >= line_end || sp2 == sp1 + 1 || buf[sp1 + 1] != '/' ||
      line_end - sp2 - 1 != 8 || memcmp(buf + sp2 + 1, "HTTP/1.", 7) != 0) {
    return 400;
  }
  conn->method.off = 0;
  conn->method.len = sp1;
  conn->path.off = sp1 + 1;
  conn->path.len = sp2 - sp1 - 1;
  conn->query.off = sp2;
  conn->query.len = 0;
  for (i = conn->path.off; i < sp2; ++i) {
    if (buf[i] == '?') {
      conn->path.len = i - conn->path.off;
      conn->query.off = i + 1;
      conn->query.len = sp2 - i - 1;
      break;
    }
  }

  conn->header_count = 0;
  conn->content_length = 0;
  pos = line_end + 2;
  while (pos < end) {
    size_t colon;
    size_t value_start;
    size_t value_end;
    for (line_end = pos; line_end + 1 < end && !(buf[line_end] == '\r' && buf[line_end + 1] == '\n'); ++line_end) {
    }
    for (colon = pos; colon < line_end && buf[colon] != ':'; ++colon) {
    }
    if (colon == pos || colon >= line_end) {
      return 400;
    }
    if (conn->header_count == HTTP_MAX_HEADERS) {
      return 431;
    }
    value_start = colon + 1;
    while (value_start < line_end && (buf[value_start] == ' ' || buf[value_start] == '\t')) {
      ++value_start;
    }
    value_end = line_end;
    while (value_end > value_start && (buf[value_end - 1] == ' ' || buf[value_end - 1] == '\t')) {
      --value_end;
    }
    conn->header_names[conn->header_count].off = pos;
    conn->header_names[conn->header_count].len = colon - pos;
    conn->header_values[conn->header_count].off = value_start;
    conn->header_values[conn->header_count].len = value_end - value_start;
    if (span_eq_ci(conn, conn->header_names[conn->header_count], "transfer-encoding")) {
      return 501;
    }
    if (span_eq_ci(conn, conn->header_names[conn->header_count], "content-length")) {
      uint64_t value = 0;
      if (have_length || value_end == value_start) {
        return 400;
      }
      for (i = value_start; i < value_end; ++i) {
        if (buf[i] < '0' || buf[i] > '9' || value > HTTP_ABSOLUTE_BODY_LIMIT) {
          return value > HTTP_ABSOLUTE_BODY_LIMIT ? 413 : 400;
        }
        value = value * 10u + (uint64_t)(buf[i] - '0');
      }
      if (value > HTTP_ABSOLUTE_BODY_LIMIT) {
        return 413;
      }
      conn->content_length = (size_t)value;
      have_length = true;
    }
    ++conn->header_count;
    pos = line_end + 2;
  }
  return 0;
}

/* Hands a complete request to its route's plugin. */
static void dispatch(http_conn_t* conn, http_route_t* route) {
  hdp_http_header_t headers[HTTP_MAX_HEADERS];
  hdp_http_request_t request;
  size_t i;
  for (i = 0; i < conn->header_count; ++i) {
    headers[i].name = conn->in + conn->header_names[i].off;
    headers[i].name_len = conn->header_names[i].len;
    headers[i].value = conn->in + conn->header_values[i].off;
    headers[i].value_len = conn->header_values[i].len;
  }
  memset(&request, 0, sizeof request);
  request.struct_size = (uint32_t)sizeof request;
  request.request_id = ++g_host.next_request_id;
  request.method = conn->in + conn->method.off;
  request.method_len = conn->method.len;
  request.path = conn->in + conn->path.off;
  request.path_len = conn->path.len;
  request.query = conn->in + conn->query.off;
  request.query_len = conn->query.len;
  request.headers = headers;
  request.header_count = conn->header_count;
  request.body = (const uint8_t*)conn->in + conn->head_len;
  request.body_len = conn->content_length;
  request.peer_address = conn->peer;
  request.peer_address_len = strlen(conn->peer);

  conn->state = CONN_WAIT_PLUGIN;
  conn->request_id = request.request_id;
  conn->owner = route->owner;
  conn->on_cancel = route->on_cancel;
  conn->cancel_user_data = route->user_data;
  conn->deadline_us = monotonic_us() + (int64_t)route->deferred_timeout_ms * 1000;
  route->on_request(route->user_data, &request);
}

/* The head is complete: route it, enforce the body limit, then read the body or dispatch. */
static void on_head(http_conn_t* conn) {
  int error = parse_head(conn);
  http_route_t* route;
  if (error != 0) {
    conn_queue_text(conn, error, reason_phrase(error));
    return;
  }
  route = match_route(conn->in + conn->method.off, conn->method.len, conn->in + conn->path.off, conn->path.len);
  if (route == NULL) {
    access_log(conn, 404);
    conn_queue_text(conn, 404, "no route");
    return;
  }
  if (conn->content_length > route->max_body_bytes) {
    access_log(conn, 413);
    conn_queue_text(conn, 413, "body too large for this route");
    return;
  }
  conn->state = CONN_READ_BODY;
}

void conn_fail_pending(http_conn_t* conn, int status, const char* text) {
  uint64_t request_id = conn->request_id;
  hdp_http_cancel_callback_t on_cancel = conn->on_cancel;
  void* user_data = conn->cancel_user_data;
  if (status != 0) {
    conn_queue_text(conn, status, text); /* makes the request id stale first */
  } else {
    conn->state = CONN_DEAD;
  }
  if (on_cancel != NULL) {
    on_cancel(user_data, request_id);
  }
}

void conn_on_readable(http_conn_t* conn) {
  char scratch[4096];
  for (;;) {
    ssize_t n;
    if (conn->state == CONN_WAIT_PLUGIN || conn->state == CONN_DRAIN) {
      n = recv(conn->fd, scratch, sizeof scratch, 0);
      if (n > 0) {
        continue; /* nothing more is expected; discard */
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return;
      }
      if (conn->state == CONN_WAIT_PLUGIN) {
        host_log(HDP_LOG_DEBUG, "client of request %" PRIu64 " went away", conn->request_id);
        conn_fail_pending(conn, 0, NULL);
      } else {
        conn->state = CONN_DEAD;
      }
      return;
    }
    if (conn->state != CONN_READ_HEAD && conn->state != CONN_READ_BODY) {
      return;
    }
    if (conn->in_len == conn->in_cap) {
      size_t want = conn->state == CONN_READ_HEAD ? HTTP_MAX_HEAD_BYTES : conn->head_len + conn->content_length;
      char* grown;
      if (want <= conn->in_cap) {
        want = conn->in_cap + 1;
      }
      grown = (char*)realloc(conn->in, want);
      if (grown == NULL) {
        conn->state = CONN_DEAD;
        return;
      }
      conn->in = grown;
      conn->in_cap = want;
    }
    n = recv(conn->fd, conn->in + conn->in_len, conn->in_cap - conn->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      return;
    }
    if (n <= 0) {
      conn->state = CONN_DEAD;
      return;
    }
    conn->in_len += (size_t)n;
    if (conn->state == CONN_READ_HEAD) {
      size_t i;
      size_t start = conn->in_len > (size_t)n + 3 ? conn->in_len - (size_t)n - 3 : 0;
      for (i = start; i + 3 < conn->in_len; ++i) {
        if (memcmp(conn->in + i, "\r\n\r\n", 4) == 0) {
          conn->head_len = i + 4;
          break;
        }
      }
      if (conn->head_len == 0) {
        if (conn->in_len >= HTTP_MAX_HEAD_BYTES) {
          conn_queue_text(conn, 431, "request head too large");
          return;
        }
        continue;
      }
      on_head(conn);
    }
    if (conn->state == CONN_READ_BODY && conn->in_len >= conn->head_len + conn->content_length) {
      http_route_t* route =
          match_route(conn->in + conn->method.off, conn->method.len, conn->in + conn->path.off, conn->path.len);
      if (route == NULL) {
        conn_queue_text(conn, 404, "no route");
      } else if (route->access == HDP_HTTP_ACCESS_AGENT) {
        host_log(HDP_LOG_WARNING, "refused %s: an agent route, and this host signs no agent in", route->path);
        conn_queue_text(conn, 401, "this host signs no agent in");
      } else {
        dispatch(conn, route); /* agent_name stays NULL: the plugin decides */
      }
      return;
    }
  }
}

void conn_on_writable(http_conn_t* conn) {
  while (conn->state == CONN_WRITE && conn->out_off < conn->out_len) {
    ssize_t n = send(conn->fd, conn->out + conn->out_off, conn->out_len - conn->out_off, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      return;
    }
    if (n <= 0) {
      conn->state = CONN_DEAD;
      return;
    }
    conn->out_off += (size_t)n;
  }
  if (conn->state == CONN_WRITE) {
    /* Closing with unread input would reset the connection and could lose the answer; shut
     * our side and let the client finish. */
    (void)shutdown(conn->fd, SHUT_WR);
    conn->state = CONN_DRAIN;
    conn->deadline_us = monotonic_us() + (int64_t)HTTP_DRAIN_MS * 1000;
  }
}

void accept_connections(void) {
  for (;;) {
    struct sockaddr_storage addr;
    socklen_t addr_len = sizeof addr;
    http_conn_t* conn;
    int fd = accept(g_host.listen_fd, (struct sockaddr*)&addr, &addr_len);
    if (fd < 0) {
      return;
    }
    if (g_host.conns.len >= HTTP_MAX_CONNECTIONS) {
      close(fd);
      continue;
    }
    set_nonblocking_cloexec(fd);
    conn = (http_conn_t*)calloc(1, sizeof *conn);
    if (conn == NULL || !vec_push(&g_host.conns, conn)) {
      free(conn);
      close(fd);
      continue;
    }
    conn->fd = fd;
    conn->state = CONN_READ_HEAD;
    conn->deadline_us = monotonic_us() + (int64_t)HTTP_IO_TIMEOUT_MS * 1000;
    if (addr.ss_family == AF_INET) {
      inet_ntop(AF_INET, &((struct sockaddr_in*)&addr)->sin_addr, conn->peer, sizeof conn->peer);
    } else if (addr.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &((struct sockaddr_in6*)&addr)->sin6_addr, conn->peer, sizeof conn->peer);
    }
  }
}

/* Deadlines: deferred answers get 503 + on_cancel; stalled reads, writes and drains are closed. */
void expire_connections(void) {
  int64_t now = monotonic_us();
  size_t i;
  for (i = 0; i < g_host.conns.len; ++i) {
    http_conn_t* conn = (http_conn_t*)g_host.conns.items[i];
    if (conn->state == CONN_DEAD || conn->deadline_us > now) {
      continue;
    }
    if (conn->state == CONN_WAIT_PLUGIN) {
      host_log(HDP_LOG_WARNING, "request %" PRIu64 " got no answer in time; answering 503", conn->request_id);
      conn_fail_pending(conn, 503, "the plugin did not answer in time");
    } else if (conn->state == CONN_READ_HEAD || conn->state == CONN_READ_BODY) {
      conn_queue_text(conn, 408, "request timeout");
    } else {
      conn->state = CONN_DEAD;
    }
  }
}
