/* probe_plugin.c - a plugin for testing hosts, driven over HTTP routes of its own.
 *
 * Plain C99 against the public headers only. It registers:
 *   POST /probe/defer   (exact; deferred_timeout_ms 5000; leaves the request unanswered)
 *   POST /probe/echo    (exact; max_body_bytes 1024; echoes the body)
 *   *    /probe         (prefix; the commands below, answered at once with JSON)
 *
 *   POST /probe/timer?delay_ms=N&period_ms=M[&cancel_self_after=K]   arm a timer
 *   POST /probe/cancel?id=N                    cancel_timer, reports the status
 *   GET  /probe/fired                          fire log: timer id and monotonic time (us)
 *   GET  /probe/deferred                       deferred ids pending and cancelled
 *   POST /probe/respond-late?id=N              respond() to a deferred id, reports the status
 *   POST /probe/message?key=K[&contact=C&inbox=I&call_status=S&duration_s=D&direction=N]
 *   POST /probe/recording?message_id=N&status=S[&reason=R]
 *   POST /probe/ops                            body: one operation per line, run in order in this
 *                                              one request (so in one loop turn):
 *        upsert key=K[&contact=C&call_status=S&duration_s=D&direction=N&recording=S&reason=R]
 *        status message_id=N&status=S[&reason=R]           (hdp.messages/2; no recording =
 *                                                           HDP_RECORDING_UNCHANGED)
 *        upsert1 ..., status1 ...                          (the same through hdp.messages/1)
 *        upsert3 ...&detail=T&retry=P, status3 ...         (the same through hdp.messages/3)
 *                                              answers what each call returned, and how many
 *                                              /2 callbacks ran inside the calls (must be 0)
 *   GET  /probe/message-results                /2 callbacks so far, in the order they ran
 *   POST /probe/block?ms=N                     holds the loop for N ms (loop lag)
 *   POST /probe/attach?message_id=N&key=K[&name=F&mime=M&times=T]  body -> a file in the data
 *                                              dir, attached T times (default 2) with key K
 *   GET  /probe/attach-results                 completions seen so far and jobs pending
 *   POST /probe/fd, /probe/fd-write?n=N, /probe/fd-close; GET /probe/fd-reads
 *                                              a pipe watched for READ; one byte read per
 *                                              callback, so N bytes need N callbacks
 *   POST /probe/thread; GET /probe/thread      request_main_thread_callback from a thread; GET
 *                                              also counts the requests served off the main thread
 *   POST /probe/route?path=P&method=M[&access=A&v1=1&whoami=1]
 *                                              register_route, reports the status; access is
 *                                              hdp_http_route_t.access; v1=1 registers with the
 *                                              1.0 struct_size (as a 1.0/1.1 plugin does);
 *                                              whoami=1 answers {"agent": name or null}
 *                                              instead of echoing the body
 *   GET  /probe/info                           configuration bytes and data directory
 *
 * With "ops-in-start" anywhere in its configuration, start() queues three hdp.messages/2 upserts
 * (keys start-1..3, recording WAITING), so that they are still pending when a --check host stops.
 *
 * Lifecycle events go to the host log as "probe: ..." lines; stop() checks that the host has
 * already cancelled everything and says so in one line. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hdp/hdp.h>

#define PROBE_EXPORT __attribute__((visibility("default")))

#define MAX_TIMERS 256
#define MAX_FIRED 4096
#define MAX_DEFERRED 256
#define MAX_RESULTS 256
#define MAX_MESSAGE_RESULTS 4096

typedef struct armed_timer {
  uint64_t id;
  uint64_t period_ms;
  uint64_t fired;
  uint64_t cancel_self_after; /* 0 = never */
} armed_timer_t;

typedef struct fired_timer {
  uint64_t id;
  int64_t at_us;
} fired_timer_t;

typedef struct attach_result {
  uint64_t job_id;
  int32_t status;
  uint64_t attachment_id;
  uint32_t already_attached;
} attach_result_t;

typedef struct message_result {
  uint64_t op_id;
  int32_t status;
  uint64_t message_id;
} message_result_t;

typedef struct probe {
  hdp_plugin_t plugin;
  const hdp_host_t* host;
  const hdp_host_timers_t* timers;
  const hdp_host_posix_fd_t* fds;
  const hdp_host_http_t* http;
  const hdp_host_messages_t* messages;
  const hdp_host_attachments_t* attachments;
  const hdp_host_messages2_t* messages2; /* NULL when the host does not offer hdp.messages/2 */
  const hdp_host_messages3_t* messages3; /* NULL when the host does not offer hdp.messages/3 */

  message_result_t message_results[MAX_MESSAGE_RESULTS];
  size_t message_result_count;
  size_t messages_pending;
  int in_messages2_call;
  unsigned callbacks_inside_call;
  int stopped;

  armed_timer_t armed[MAX_TIMERS];
  size_t armed_count;
  fired_timer_t fired[MAX_FIRED];
  size_t fired_count;

  uint64_t deferred[MAX_DEFERRED];
  size_t deferred_count;
  uint64_t cancelled[MAX_DEFERRED];
  size_t cancelled_count;

  attach_result_t results[MAX_RESULTS];
  size_t result_count;
  size_t attach_pending;

  int pipe_read;
  int pipe_write;
  int fd_watched;
  unsigned fd_reads;

  pthread_t thread;
  int thread_started;
  unsigned main_thread_callbacks;

  pthread_t main_thread;      /* the thread that created the plugin: the host's main thread */
  unsigned requests_off_main; /* HTTP requests the host handed over on another thread */
} probe_t;

/* --- small helpers ------------------------------------------------------------------------ */

static void plog(probe_t* p, int32_t level, const char* format, ...) {
  char line[1024];
  va_list args;
  va_start(args, format);
  vsnprintf(line, sizeof line, format, args);
  va_end(args);
  p->host->log(p->host, level, line);
}

typedef struct buf {
  char* data;
  size_t len;
  size_t cap;
} buf_t;

static void buf_printf(buf_t* b, const char* format, ...) {
  va_list args;
  int n;
  va_start(args, format);
  n = vsnprintf(NULL, 0, format, args);
  va_end(args);
  if (n < 0) return;
  if (b->len + (size_t)n + 1 > b->cap) {
    size_t cap = b->cap == 0 ? 256 : b->cap;
    char* grown;
    while (b->len + (size_t)n + 1 > cap) cap *= 2;
    grown = (char*)realloc(b->data, cap);
    if (grown == NULL) return;
    b->data = grown;
    b->cap = cap;
  }
  va_start(args, format);
  vsnprintf(b->data + b->len, b->cap - b->len, format, args);
  va_end(args);
  b->len += (size_t)n;
}

/* Copies the value of name from a raw query into out (NUL-terminated, %XX and '+' decoded). */
static int query_param(const hdp_http_request_t* r, const char* name, char* out, size_t out_size) {
  size_t name_len = strlen(name);
  size_t i = 0;
  while (i < r->query_len) {
    size_t end = i;
    while (end < r->query_len && r->query[end] != '&') ++end;
    if (end - i > name_len && strncmp(r->query + i, name, name_len) == 0 && r->query[i + name_len] == '=') {
      size_t k = i + name_len + 1;
      size_t o = 0;
      while (k < end && o + 1 < out_size) {
        char c = r->query[k];
        if (c == '+') {
          c = ' ';
        } else if (c == '%' && k + 2 < end) {
          char hex[3];
          hex[0] = r->query[k + 1];
          hex[1] = r->query[k + 2];
          hex[2] = '\0';
          c = (char)strtol(hex, NULL, 16);
          k += 2;
        }
        out[o++] = c;
        ++k;
      }
      out[o] = '\0';
      return 1;
    }
    i = end + 1;
  }
  if (out_size > 0) out[0] = '\0';
  return 0;
}

static uint64_t query_u64(const hdp_http_request_t* r, const char* name, uint64_t fallback) {
  char value[32];
  if (!query_param(r, name, value, sizeof value) || value[0] == '\0') return fallback;
  return (uint64_t)strtoull(value, NULL, 10);
}

static int path_is(const hdp_http_request_t* r, const char* path) {
  return r->path_len == strlen(path) && memcmp(r->path, path, r->path_len) == 0;
}

static hdp_status_t reply(probe_t* p, uint64_t request_id, uint16_t status, const char* content_type, const char* body,
                          size_t body_len) {
  hdp_http_response_t response;
  memset(&response, 0, sizeof response);
  response.struct_size = sizeof response;
  response.status = status;
  response.content_type = content_type;
  response.body = (const uint8_t*)body;
  response.body_len = body_len;
  return p->http->respond(p->host, request_id, &response);
}

static void reply_json(probe_t* p, uint64_t request_id, buf_t* b) {
  reply(p, request_id, 200, "application/json", b->data == NULL ? "" : b->data, b->len);
  free(b->data);
  b->data = NULL;
}

/* --- timers ------------------------------------------------------------------------------- */

static armed_timer_t* find_armed(probe_t* p, uint64_t id) {
  size_t i;
  for (i = 0; i < p->armed_count; ++i) {
    if (p->armed[i].id == id) return &p->armed[i];
  }
  return NULL;
}

static void forget_armed(probe_t* p, uint64_t id) {
  size_t i;
  for (i = 0; i < p->armed_count; ++i) {
    if (p->armed[i].id == id) {
      p->armed[i] = p->armed[--p->armed_count];
      return;
    }
  }
}

static void on_timer(void* user_data, uint64_t timer_id) {
  probe_t* p = (probe_t*)user_data;
  armed_timer_t* t = find_armed(p, timer_id);
  if (p->fired_count < MAX_FIRED) {
    p->fired[p->fired_count].id = timer_id;
    p->fired[p->fired_count].at_us = p->host->monotonic_clock_us(p->host);
    ++p->fired_count;
  }
  if (t == NULL) {
    plog(p, HDP_LOG_ERROR, "probe: timer %llu fired but is not armed", (unsigned long long)timer_id);
    return;
  }
  ++t->fired;
  if (t->period_ms == 0) {
    forget_armed(p, timer_id);
  } else if (t->cancel_self_after != 0 && t->fired >= t->cancel_self_after) {
    hdp_status_t s = p->timers->cancel_timer(p->host, timer_id);
    plog(p, HDP_LOG_INFO, "probe: timer %llu cancelled itself: %d", (unsigned long long)timer_id, (int)s);
    forget_armed(p, timer_id);
  }
}

/* --- deferred requests -------------------------------------------------------------------- */

static void forget_deferred(probe_t* p, uint64_t id) {
  size_t i;
  for (i = 0; i < p->deferred_count; ++i) {
    if (p->deferred[i] == id) {
      p->deferred[i] = p->deferred[--p->deferred_count];
      return;
    }
  }
}

/* Every route callback notes a call off the main thread (the ABI allows none). */
static void note_request_thread(probe_t* p) {
  if (!pthread_equal(pthread_self(), p->main_thread)) ++p->requests_off_main;
}

static void on_defer_request(void* user_data, const hdp_http_request_t* request) {
  probe_t* p = (probe_t*)user_data;
  note_request_thread(p);
  if (p->deferred_count < MAX_DEFERRED) p->deferred[p->deferred_count++] = request->request_id;
  plog(p, HDP_LOG_INFO, "probe: deferred request=%llu", (unsigned long long)request->request_id);
}

static void on_defer_cancel(void* user_data, uint64_t request_id) {
  probe_t* p = (probe_t*)user_data;
  forget_deferred(p, request_id);
  if (p->cancelled_count < MAX_DEFERRED) p->cancelled[p->cancelled_count++] = request_id;
  plog(p, HDP_LOG_INFO, "probe: on_cancel request=%llu", (unsigned long long)request_id);
}

/* {"agent":"name"} for the agent the host signed in (ABI 1.2), {"agent":null} otherwise. */
static void on_whoami_request(void* user_data, const hdp_http_request_t* request) {
  probe_t* p = (probe_t*)user_data;
  note_request_thread(p);
  buf_t b = {NULL, 0, 0};
  if (request->struct_size >= HDP_HTTP_REQUEST_V1_2_SIZE && request->agent_name != NULL) {
    buf_printf(&b, "{\"agent\":\"%.*s\"}", (int)request->agent_name_len, request->agent_name);
  } else {
    buf_printf(&b, "{\"agent\":null}");
  }
  reply_json(p, request->request_id, &b);
}

static void on_echo_request(void* user_data, const hdp_http_request_t* request) {
  probe_t* p = (probe_t*)user_data;
  note_request_thread(p);
  reply(p, request->request_id, 200, "application/octet-stream", (const char*)request->body, request->body_len);
}

/* --- attachments -------------------------------------------------------------------------- */

static void on_attached(void* user_data, const hdp_attachment_result_t* result) {
  probe_t* p = (probe_t*)user_data;
  if (p->attach_pending > 0) --p->attach_pending;
  if (p->result_count < MAX_RESULTS) {
    attach_result_t* r = &p->results[p->result_count++];
    r->job_id = result->job_id;
    r->status = result->status;
    r->attachment_id = result->attachment_id;
    r->already_attached = result->already_attached;
  }
  plog(p, HDP_LOG_INFO, "probe: attach job=%llu status=%d attachment=%llu already=%u",
       (unsigned long long)result->job_id, (int)result->status, (unsigned long long)result->attachment_id,
       (unsigned)result->already_attached);
}

/* --- fds ---------------------------------------------------------------------------------- */

static void on_fd(void* user_data, int fd, uint32_t flags) {
  probe_t* p = (probe_t*)user_data;
  char byte;
  if ((flags & HDP_FD_READ) != 0 && read(fd, &byte, 1) == 1) ++p->fd_reads;
}

/* --- main-thread callback from a thread of our own ------------------------------------------ */

static void on_main_thread(void* user_data) {
  probe_t* p = (probe_t*)user_data;
  ++p->main_thread_callbacks;
  plog(p, HDP_LOG_INFO, "probe: main-thread callback %u", p->main_thread_callbacks);
}

static void* thread_main(void* arg) {
  probe_t* p = (probe_t*)arg;
  p->host->request_main_thread_callback(p->host, on_main_thread, p);
  return NULL;
}

/* --- hdp.messages/2 ------------------------------------------------------------------------ */

static void on_message_written(void* user_data, const hdp_message_result_t* result) {
  probe_t* p = (probe_t*)user_data;
  if (p->stopped) plog(p, HDP_LOG_ERROR, "probe: message callback after stop");
  if (p->in_messages2_call) ++p->callbacks_inside_call;
  if (p->messages_pending > 0) --p->messages_pending;
  if (p->message_result_count < MAX_MESSAGE_RESULTS) {
    message_result_t* r = &p->message_results[p->message_result_count++];
    r->op_id = result->op_id;
    r->status = result->status;
    r->message_id = result->message_id;
  }
  plog(p, HDP_LOG_INFO, "probe: message op=%llu status=%d message=%llu", (unsigned long long)result->op_id,
       (int)result->status, (unsigned long long)result->message_id);
}

/* Runs one line of POST /probe/ops; params is a query string. Appends its answer to b. */
static void run_op(probe_t* p, const char* verb, size_t verb_len, const char* params, size_t params_len, buf_t* b) {
  hdp_http_request_t q;
  char key[300], contact[64], inbox[64], call_status[64], duration[32], reason[1100], detail[1100], retry[1100],
      rec[16];
  hdp_call_message_t m;
  uint64_t id = 0;
  hdp_status_t s = HDP_ERR_INVALID_ARGUMENT;
  int v2 = 0;
  memset(&q, 0, sizeof q);
  q.query = params;
  q.query_len = params_len;
  query_param(&q, "key", key, sizeof key);
  query_param(&q, "contact", contact, sizeof contact);
  query_param(&q, "inbox", inbox, sizeof inbox);
  memset(&m, 0, sizeof m);
  m.struct_size = sizeof m;
  m.external_key = key;
  m.inbox = inbox;
  m.contact = contact;
  m.direction = (int32_t)query_u64(&q, "direction", 0);
  m.call_status = query_param(&q, "call_status", call_status, sizeof call_status) ? call_status : NULL;
  m.duration_s = query_param(&q, "duration_s", duration, sizeof duration) ? (int64_t)strtoll(duration, NULL, 10) : -1;
  if (!query_param(&q, "reason", reason, sizeof reason)) reason[0] = '\0';
  if (!query_param(&q, "detail", detail, sizeof detail)) detail[0] = '\0';
  if (!query_param(&q, "retry", retry, sizeof retry)) retry[0] = '\0';
  p->in_messages2_call = 1;
  if (verb_len == 6 && memcmp(verb, "upsert", 6) == 0 && p->messages2 != NULL) {
    int32_t recording =
        query_param(&q, "recording", rec, sizeof rec) ? (int32_t)strtol(rec, NULL, 10) : HDP_RECORDING_UNCHANGED;
    s = p->messages2->upsert_call_message(p->host, &m, recording, reason, on_message_written, p, &id);
    v2 = 1;
  } else if (verb_len == 6 && memcmp(verb, "status", 6) == 0 && p->messages2 != NULL) {
    s = p->messages2->set_recording_status(p->host, query_u64(&q, "message_id", 0), (int32_t)query_u64(&q, "status", 0),
                                           reason, on_message_written, p, &id);
    v2 = 1;
  } else if (verb_len == 7 && memcmp(verb, "upsert3", 7) == 0 && p->messages3 != NULL) {
    int32_t recording =
        query_param(&q, "recording", rec, sizeof rec) ? (int32_t)strtol(rec, NULL, 10) : HDP_RECORDING_UNCHANGED;
    s = p->messages3->upsert_call_message(p->host, &m, recording, reason, detail, retry, on_message_written, p, &id);
    v2 = 1;
  } else if (verb_len == 7 && memcmp(verb, "status3", 7) == 0 && p->messages3 != NULL) {
    s = p->messages3->set_recording_status(p->host, query_u64(&q, "message_id", 0), (int32_t)query_u64(&q, "status", 0),
                                           reason, detail, retry, on_message_written, p, &id);
    v2 = 1;
  } else if (verb_len == 7 && memcmp(verb, "upsert1", 7) == 0) {
    s = p->messages->upsert_call_message(p->host, &m, &id);
  } else if (verb_len == 7 && memcmp(verb, "status1", 7) == 0) {
    s = p->messages->set_recording_status(p->host, query_u64(&q, "message_id", 0), (int32_t)query_u64(&q, "status", 0),
                                          reason);
  }
  p->in_messages2_call = 0;
  if (v2 && s == HDP_OK) ++p->messages_pending;
  buf_printf(b, "%s{\"status\":%d,\"%s\":%llu}", b->len == 0 || b->data[b->len - 1] == '[' ? "" : ",", (int)s,
             v2 ? "op" : "message_id", (unsigned long long)id);
}

static void command_ops(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  const char* text = (const char*)r->body;
  size_t at = 0;
  unsigned inside_before = p->callbacks_inside_call;
  buf_printf(&b, "{\"ops\":[");
  while (at < r->body_len) {
    size_t end = at, space;
    while (end < r->body_len && text[end] != '\n') ++end;
    space = at;
    while (space < end && text[space] != ' ') ++space;
    if (end > at) {
      run_op(p, text + at, space - at, space < end ? text + space + 1 : text + end, space < end ? end - space - 1 : 0,
             &b);
    }
    at = end + 1;
  }
  buf_printf(&b, "],\"results_during_call\":%u,\"callbacks_inside_calls\":%u}", (unsigned)p->message_result_count,
             p->callbacks_inside_call - inside_before);
  reply_json(p, r->request_id, &b);
}

static void command_message_results(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  size_t i;
  buf_printf(&b, "{\"offered\":%d,\"offered3\":%d,\"pending\":%u,\"callbacks_inside_calls\":%u,\"results\":[",
             p->messages2 != NULL, p->messages3 != NULL, (unsigned)p->messages_pending, p->callbacks_inside_call);
  for (i = 0; i < p->message_result_count; ++i) {
    const message_result_t* x = &p->message_results[i];
    buf_printf(&b, "%s{\"op\":%llu,\"status\":%d,\"message_id\":%llu}", i == 0 ? "" : ",", (unsigned long long)x->op_id,
               (int)x->status, (unsigned long long)x->message_id);
  }
  buf_printf(&b, "]}");
  reply_json(p, r->request_id, &b);
}

/* --- the command route -------------------------------------------------------------------- */

static void command_timer(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  uint64_t id = 0;
  uint64_t delay = query_u64(r, "delay_ms", 0);
  uint64_t period = query_u64(r, "period_ms", 0);
  hdp_status_t s = p->timers->register_timer(p->host, delay, period, on_timer, p, &id);
  if (s == HDP_OK && p->armed_count < MAX_TIMERS) {
    armed_timer_t* t = &p->armed[p->armed_count++];
    t->id = id;
    t->period_ms = period;
    t->fired = 0;
    t->cancel_self_after = query_u64(r, "cancel_self_after", 0);
  }
  buf_printf(&b, "{\"status\":%d,\"id\":%llu}", (int)s, (unsigned long long)id);
  reply_json(p, r->request_id, &b);
}

static void command_cancel(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  uint64_t id = query_u64(r, "id", 0);
  hdp_status_t s = p->timers->cancel_timer(p->host, id);
  if (s == HDP_OK) forget_armed(p, id);
  buf_printf(&b, "{\"status\":%d}", (int)s);
  reply_json(p, r->request_id, &b);
}

static void command_fired(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  size_t i;
  buf_printf(&b, "{\"now_us\":%lld,\"fired\":[", (long long)p->host->monotonic_clock_us(p->host));
  for (i = 0; i < p->fired_count; ++i) {
    buf_printf(&b, "%s{\"id\":%llu,\"at_us\":%lld}", i == 0 ? "" : ",", (unsigned long long)p->fired[i].id,
               (long long)p->fired[i].at_us);
  }
  buf_printf(&b, "]}");
  reply_json(p, r->request_id, &b);
}

static void command_deferred(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  size_t i;
  buf_printf(&b, "{\"pending\":[");
  for (i = 0; i < p->deferred_count; ++i) {
    buf_printf(&b, "%s%llu", i == 0 ? "" : ",", (unsigned long long)p->deferred[i]);
  }
  buf_printf(&b, "],\"cancelled\":[");
  for (i = 0; i < p->cancelled_count; ++i) {
    buf_printf(&b, "%s%llu", i == 0 ? "" : ",", (unsigned long long)p->cancelled[i]);
  }
  buf_printf(&b, "]}");
  reply_json(p, r->request_id, &b);
}

static void command_respond_late(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  uint64_t id = query_u64(r, "id", 0);
  static const char answer[] = "late answer";
  hdp_status_t s = reply(p, id, 200, "text/plain", answer, sizeof answer - 1);
  if (s == HDP_OK) forget_deferred(p, id);
  buf_printf(&b, "{\"status\":%d}", (int)s);
  reply_json(p, r->request_id, &b);
}

static void command_message(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  char key[300], contact[64], inbox[64], call_status[64], duration[32];
  hdp_call_message_t m;
  uint64_t message_id = 0;
  hdp_status_t s;
  int has_status, has_duration;
  query_param(r, "key", key, sizeof key);
  query_param(r, "contact", contact, sizeof contact);
  query_param(r, "inbox", inbox, sizeof inbox);
  has_status = query_param(r, "call_status", call_status, sizeof call_status);
  has_duration = query_param(r, "duration_s", duration, sizeof duration);
  memset(&m, 0, sizeof m);
  m.struct_size = sizeof m;
  m.external_key = key;
  m.inbox = inbox;
  m.contact = contact;
  m.direction = (int32_t)query_u64(r, "direction", 0);
  m.call_status = has_status ? call_status : NULL;
  m.duration_s = has_duration ? (int64_t)strtoll(duration, NULL, 10) : -1;
  s = p->messages->upsert_call_message(p->host, &m, &message_id);
  buf_printf(&b, "{\"status\":%d,\"message_id\":%llu}", (int)s, (unsigned long long)message_id);
  reply_json(p, r->request_id, &b);
}

static void command_recording(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  char reason[1100];
  int has_reason = query_param(r, "reason", reason, sizeof reason);
  hdp_status_t s = p->messages->set_recording_status(p->host, query_u64(r, "message_id", 0),
                                                     (int32_t)query_u64(r, "status", 0), has_reason ? reason : NULL);
  buf_printf(&b, "{\"status\":%d}", (int)s);
  reply_json(p, r->request_id, &b);
}

static void command_attach(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  char key[300], name[128], mime[64], path[1024];
  hdp_attachment_t a;
  uint64_t times = query_u64(r, "times", 2);
  uint64_t i;
  FILE* f;
  query_param(r, "key", key, sizeof key);
  if (!query_param(r, "name", name, sizeof name) || name[0] == '\0') strcpy(name, "recording.mp3");
  if (!query_param(r, "mime", mime, sizeof mime) || mime[0] == '\0') strcpy(mime, "audio/mpeg");
  snprintf(path, sizeof path, "%s/attach-%llu.bin", p->host->get_data_dir(p->host), (unsigned long long)r->request_id);
  f = fopen(path, "wb");
  if (f == NULL || fwrite(r->body, 1, r->body_len, f) != r->body_len) {
    if (f != NULL) fclose(f);
    reply(p, r->request_id, 500, "text/plain", "cannot write", 12);
    return;
  }
  fclose(f);
  memset(&a, 0, sizeof a);
  a.struct_size = sizeof a;
  a.message_id = query_u64(r, "message_id", 0);
  a.file_path = path;
  a.file_name = name;
  a.mime_type = mime;
  a.idempotency_key = key;
  buf_printf(&b, "{\"path\":\"%s\",\"jobs\":[", path);
  for (i = 0; i < times; ++i) {
    uint64_t job = 0;
    hdp_status_t s = p->attachments->attach_file(p->host, &a, on_attached, p, &job);
    if (s == HDP_OK) ++p->attach_pending;
    buf_printf(&b, "%s{\"status\":%d,\"job\":%llu}", i == 0 ? "" : ",", (int)s, (unsigned long long)job);
  }
  /* No completion may have arrived inside attach_file. */
  buf_printf(&b, "],\"results_during_call\":%u}", (unsigned)p->result_count);
  reply_json(p, r->request_id, &b);
}

static void command_attach_results(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  size_t i;
  buf_printf(&b, "{\"pending\":%u,\"results\":[", (unsigned)p->attach_pending);
  for (i = 0; i < p->result_count; ++i) {
    const attach_result_t* x = &p->results[i];
    buf_printf(&b, "%s{\"job\":%llu,\"status\":%d,\"attachment_id\":%llu,\"already_attached\":%u}", i == 0 ? "" : ",",
               (unsigned long long)x->job_id, (int)x->status, (unsigned long long)x->attachment_id,
               (unsigned)x->already_attached);
  }
  buf_printf(&b, "]}");
  reply_json(p, r->request_id, &b);
}

static void command_fd(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  int fds[2];
  hdp_status_t s = HDP_ERR_BAD_STATE;
  if (!p->fd_watched && pipe(fds) == 0) {
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    p->pipe_read = fds[0];
    p->pipe_write = fds[1];
    s = p->fds->register_fd(p->host, p->pipe_read, HDP_FD_READ, on_fd, p);
    p->fd_watched = s == HDP_OK;
  }
  buf_printf(&b, "{\"status\":%d,\"fd\":%d}", (int)s, p->pipe_read);
  reply_json(p, r->request_id, &b);
}

static void command_fd_write(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  uint64_t n = query_u64(r, "n", 1);
  uint64_t written = 0;
  while (written < n && p->pipe_write >= 0 && write(p->pipe_write, "x", 1) == 1) ++written;
  buf_printf(&b, "{\"written\":%llu}", (unsigned long long)written);
  reply_json(p, r->request_id, &b);
}

static void close_pipe(probe_t* p) {
  if (p->pipe_read >= 0) close(p->pipe_read);
  if (p->pipe_write >= 0) close(p->pipe_write);
  p->pipe_read = -1;
  p->pipe_write = -1;
}

static void command_fd_close(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  hdp_status_t s = p->fds->unregister_fd(p->host, p->pipe_read);
  p->fd_watched = 0;
  close_pipe(p);
  buf_printf(&b, "{\"status\":%d}", (int)s);
  reply_json(p, r->request_id, &b);
}

static void command_route(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  char path[256], method[16];
  hdp_http_route_t route;
  uint64_t id = 0;
  hdp_status_t s;
  query_param(r, "path", path, sizeof path);
  if (!query_param(r, "method", method, sizeof method) || method[0] == '\0') strcpy(method, "GET");
  memset(&route, 0, sizeof route);
  route.struct_size = query_u64(r, "v1", 0) != 0 ? (uint32_t)HDP_HTTP_ROUTE_V1_SIZE : (uint32_t)sizeof route;
  route.method = method;
  route.path = path;
  route.match = HDP_HTTP_MATCH_EXACT;
  route.on_request = query_u64(r, "whoami", 0) != 0 ? on_whoami_request : on_echo_request;
  route.user_data = p;
  /* Beyond a v1 struct_size the host must not read it; it is set anyway to prove that. */
  route.access = (uint32_t)query_u64(r, "access", HDP_HTTP_ACCESS_PUBLIC);
  s = p->http->register_route(p->host, &route, &id);
  buf_printf(&b, "{\"status\":%d,\"route_id\":%llu}", (int)s, (unsigned long long)id);
  reply_json(p, r->request_id, &b);
}

static void command_info(probe_t* p, const hdp_http_request_t* r) {
  buf_t b = {NULL, 0, 0};
  const uint8_t* config = NULL;
  size_t config_size = 0;
  size_t i;
  p->host->get_config(p->host, &config, &config_size);
  buf_printf(&b, "{\"data_dir\":\"%s\",\"config_size\":%u,\"config_hex\":\"", p->host->get_data_dir(p->host),
             (unsigned)config_size);
  for (i = 0; i < config_size; ++i) buf_printf(&b, "%02x", (unsigned)config[i]);
  buf_printf(&b, "\",\"peer\":\"%.*s\"}", (int)r->peer_address_len, r->peer_address);
  reply_json(p, r->request_id, &b);
}

static void on_command(void* user_data, const hdp_http_request_t* r) {
  probe_t* p = (probe_t*)user_data;
  buf_t b = {NULL, 0, 0};
  note_request_thread(p);
  if (path_is(r, "/probe/timer")) {
    command_timer(p, r);
  } else if (path_is(r, "/probe/cancel")) {
    command_cancel(p, r);
  } else if (path_is(r, "/probe/fired")) {
    command_fired(p, r);
  } else if (path_is(r, "/probe/deferred")) {
    command_deferred(p, r);
  } else if (path_is(r, "/probe/respond-late")) {
    command_respond_late(p, r);
  } else if (path_is(r, "/probe/message")) {
    command_message(p, r);
  } else if (path_is(r, "/probe/recording")) {
    command_recording(p, r);
  } else if (path_is(r, "/probe/ops")) {
    command_ops(p, r);
  } else if (path_is(r, "/probe/message-results")) {
    command_message_results(p, r);
  } else if (path_is(r, "/probe/block")) {
    struct timespec hold;
    hold.tv_sec = (time_t)(query_u64(r, "ms", 0) / 1000);
    hold.tv_nsec = (long)(query_u64(r, "ms", 0) % 1000) * 1000000L;
    while (nanosleep(&hold, &hold) != 0 && errno == EINTR) {
    }
    buf_printf(&b, "{\"blocked_ms\":%llu}", (unsigned long long)query_u64(r, "ms", 0));
    reply_json(p, r->request_id, &b);
  } else if (path_is(r, "/probe/attach")) {
    command_attach(p, r);
  } else if (path_is(r, "/probe/attach-results")) {
    command_attach_results(p, r);
  } else if (path_is(r, "/probe/fd")) {
    command_fd(p, r);
  } else if (path_is(r, "/probe/fd-write")) {
    command_fd_write(p, r);
  } else if (path_is(r, "/probe/fd-reads")) {
    buf_printf(&b, "{\"reads\":%u}", p->fd_reads);
    reply_json(p, r->request_id, &b);
  } else if (path_is(r, "/probe/fd-close")) {
    command_fd_close(p, r);
  } else if (path_is(r, "/probe/thread") && r->method_len == 4) {
    /* POST: start a thread that asks for a main-thread callback */
    hdp_status_t s = HDP_ERR_BAD_STATE;
    if (p->thread_started) {
      pthread_join(p->thread, NULL);
      p->thread_started = 0;
    }
    if (pthread_create(&p->thread, NULL, thread_main, p) == 0) {
      p->thread_started = 1;
      s = HDP_OK;
    }
    buf_printf(&b, "{\"status\":%d}", (int)s);
    reply_json(p, r->request_id, &b);
  } else if (path_is(r, "/probe/thread")) {
    buf_printf(&b, "{\"callbacks\":%u,\"requests_off_main\":%u}", p->main_thread_callbacks, p->requests_off_main);
    reply_json(p, r->request_id, &b);
  } else if (path_is(r, "/probe/route")) {
    command_route(p, r);
  } else if (path_is(r, "/probe/info")) {
    command_info(p, r);
  } else {
    reply(p, r->request_id, 404, "text/plain", "no such probe command", 21);
  }
}

/* --- lifecycle ---------------------------------------------------------------------------- */

static hdp_status_t probe_init(const hdp_plugin_t* plugin) {
  probe_t* p = (probe_t*)plugin->plugin_data;
  p->timers = (const hdp_host_timers_t*)p->host->get_extension(p->host, HDP_EXT_TIMERS);
  p->fds = (const hdp_host_posix_fd_t*)p->host->get_extension(p->host, HDP_EXT_POSIX_FD);
  p->http = (const hdp_host_http_t*)p->host->get_extension(p->host, HDP_EXT_HTTP);
  p->messages = (const hdp_host_messages_t*)p->host->get_extension(p->host, HDP_EXT_MESSAGES);
  p->attachments = (const hdp_host_attachments_t*)p->host->get_extension(p->host, HDP_EXT_ATTACHMENTS);
  p->messages2 = (const hdp_host_messages2_t*)p->host->get_extension(p->host, HDP_EXT_MESSAGES_V2);
  if (p->messages2 != NULL && p->messages2->struct_size < HDP_HOST_MESSAGES2_V1_SIZE) p->messages2 = NULL;
  p->messages3 = (const hdp_host_messages3_t*)p->host->get_extension(p->host, HDP_EXT_MESSAGES_V3);
  if (p->messages3 != NULL && p->messages3->struct_size < HDP_HOST_MESSAGES3_V1_SIZE) p->messages3 = NULL;
  if (p->timers == NULL || p->fds == NULL || p->http == NULL || p->messages == NULL || p->attachments == NULL ||
      p->timers->struct_size < HDP_HOST_TIMERS_V1_SIZE || p->fds->struct_size < HDP_HOST_POSIX_FD_V1_SIZE ||
      p->http->struct_size < HDP_HOST_HTTP_V1_SIZE || p->messages->struct_size < HDP_HOST_MESSAGES_V1_SIZE ||
      p->attachments->struct_size < HDP_HOST_ATTACHMENTS_V1_SIZE) {
    plog(p, HDP_LOG_ERROR, "probe: the host lacks an extension");
    return HDP_ERR_UNSUPPORTED;
  }
  {
    /* Registering is for start(): the host must refuse it here. */
    uint64_t id = 0;
    hdp_status_t s = p->timers->register_timer(p->host, 1, 0, on_timer, p, &id);
    plog(p, HDP_LOG_INFO, "probe: init register_timer=%d", (int)s);
  }
  return HDP_OK;
}

static hdp_status_t add_route(probe_t* p, const char* method, const char* path, uint32_t match, uint64_t max_body,
                              uint64_t deferred_timeout_ms, hdp_http_request_callback_t on_request,
                              hdp_http_cancel_callback_t on_cancel) {
  hdp_http_route_t route;
  uint64_t id = 0;
  memset(&route, 0, sizeof route);
  route.struct_size = sizeof route;
  route.method = method;
  route.path = path;
  route.match = match;
  route.max_body_bytes = max_body;
  route.deferred_timeout_ms = deferred_timeout_ms;
  route.on_request = on_request;
  route.on_cancel = on_cancel;
  route.user_data = p;
  return p->http->register_route(p->host, &route, &id);
}

static int config_mentions(probe_t* p, const char* needle) {
  const uint8_t* config = NULL;
  size_t size = 0, n = strlen(needle), i;
  p->host->get_config(p->host, &config, &size);
  for (i = 0; config != NULL && i + n <= size; ++i) {
    if (memcmp(config + i, needle, n) == 0) return 1;
  }
  return 0;
}

static hdp_status_t probe_start(const hdp_plugin_t* plugin) {
  probe_t* p = (probe_t*)plugin->plugin_data;
  hdp_status_t s;
  s = add_route(p, "POST", "/probe/defer", HDP_HTTP_MATCH_EXACT, 0, 5000, on_defer_request, on_defer_cancel);
  if (s == HDP_OK) {
    s = add_route(p, "POST", "/probe/echo", HDP_HTTP_MATCH_EXACT, 1024, 0, on_echo_request, NULL);
  }
  if (s == HDP_OK) s = add_route(p, "*", "/probe", HDP_HTTP_MATCH_PREFIX, 0, 0, on_command, NULL);
  if (s == HDP_OK && config_mentions(p, "ops-in-start")) {
    static const char ops[] =
        "upsert key=start-1&recording=1&reason=queued+in+start\n"
        "upsert key=start-2&recording=1&reason=queued+in+start\n"
        "upsert key=start-3&recording=1&reason=queued+in+start\n";
    buf_t b = {NULL, 0, 0};
    size_t at = 0;
    while (ops[at] != '\0') {
      size_t end = at;
      while (ops[end] != '\n') ++end;
      run_op(p, ops + at, 6, ops + at + 7, end - at - 7, &b);
      at = end + 1;
    }
    plog(p, HDP_LOG_INFO, "probe: queued in start: %s", b.data == NULL ? "" : b.data);
    free(b.data);
  }
  plog(p, HDP_LOG_INFO, "probe: start %d", (int)s);
  return s;
}

static void probe_stop(const hdp_plugin_t* plugin) {
  probe_t* p = (probe_t*)plugin->plugin_data;
  size_t still_armed = 0;
  size_t i;
  int fd_still_watched = 0;
  hdp_status_t main_thread;
  /* The host cancelled everything before calling stop: each of these must say NOT_FOUND. */
  for (i = 0; i < p->armed_count; ++i) {
    if (p->timers->cancel_timer(p->host, p->armed[i].id) == HDP_OK) ++still_armed;
  }
  if (p->fd_watched) fd_still_watched = p->fds->unregister_fd(p->host, p->pipe_read) == HDP_OK;
  main_thread = p->host->request_main_thread_callback(p->host, on_main_thread, p);
  if (p->thread_started) {
    pthread_join(p->thread, NULL);
    p->thread_started = 0;
  }
  close_pipe(p);
  plog(p, HDP_LOG_INFO,
       "probe: stop timers_still_armed=%u/%u fd_still_watched=%d deferred_pending=%u "
       "attach_pending=%u main_thread_callback=%d messages_pending=%u",
       (unsigned)still_armed, (unsigned)p->armed_count, fd_still_watched, (unsigned)p->deferred_count,
       (unsigned)p->attach_pending, (int)main_thread, (unsigned)p->messages_pending);
  p->stopped = 1;
}

static void probe_destroy(const hdp_plugin_t* plugin) {
  probe_t* p = (probe_t*)plugin->plugin_data;
  plog(p, HDP_LOG_INFO, "probe: destroy");
  if (p->thread_started) pthread_join(p->thread, NULL);
  close_pipe(p);
  free(p);
}

static const void* probe_get_extension(const hdp_plugin_t* plugin, const char* extension_id) {
  (void)plugin;
  (void)extension_id;
  return NULL;
}

static const hdp_plugin_t* probe_create(const hdp_host_t* host) {
  probe_t* p;
  if (host == NULL || host->struct_size < HDP_HOST_V1_SIZE) return NULL;
  p = (probe_t*)calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->host = host;
  p->main_thread = pthread_self();
  p->pipe_read = -1;
  p->pipe_write = -1;
  p->plugin.struct_size = sizeof p->plugin;
  p->plugin.plugin_data = p;
  p->plugin.init = probe_init;
  p->plugin.start = probe_start;
  p->plugin.stop = probe_stop;
  p->plugin.destroy = probe_destroy;
  p->plugin.get_extension = probe_get_extension;
  return &p->plugin;
}

static bool probe_entry_init(const char* plugin_path) {
  (void)plugin_path;
  return true;
}

static void probe_entry_deinit(void) {
  /* The host table is gone by now: write to stderr directly. */
  fputs("probe: deinit\n", stderr);
}

PROBE_EXPORT const hdp_plugin_entry_t hdp_plugin_entry_v1 = {
    HDP_VERSION_INIT,
    sizeof(hdp_plugin_entry_t),
    "org.hdp.test.probe",
    "Probe",
    "hdp tests",
    "1.0.0",
    "Drives a host's ABI over HTTP, for tests",
    probe_entry_init,
    probe_entry_deinit,
    probe_create,
};
