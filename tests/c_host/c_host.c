/* c_host.c - a minimal hdp host in plain C99 + POSIX, to prove the ABI needs nothing from C++.
 *
 * One poll() loop on the main thread serves everything: a tiny HTTP/1.0 server on a loopback
 * socket (one request per connection), the plugins' timers and fd watches, attachment jobs and
 * request_main_thread_callback (the only thread-safe entry, woken through a pipe). Messages and
 * attachments live in memory; attached files are copied under <data dir>/attachments/.
 * hdp.messages/2 operations are applied at the end of the loop turn, all of a turn together, and
 * complete in start order (a /1 call first applies the /2 operations queued before it; at stop
 * the queued ones are applied, then completed with HDP_ERR_CANCELLED);
 * --disable-extension hdp.messages/2 makes it a 1.1 host for that table.
 *
 *   hdp-c-host [--listen ADDR:PORT] [--port-file F] [--data-dir D] [--run-ms N]
 *              [--log-level trace|debug|info|warning|error] [--disable-extension ID]...
 *              --plugin P [--plugin-config-json S] [--plugin P2 ...]
 *
 * Exit status: 0 after a clean shutdown (SIGTERM, SIGINT or --run-ms), 2 when a plugin is refused
 * (one log line "refused plugin <path>: <reason>", nothing served), 1 on usage or system errors.
 *
 * Discipline for everything a callback can touch: items are never freed during a loop turn; they
 * are marked dead and swept at the top of the next turn, so pointers held by the turn stay valid
 * whatever the plugin registers or cancels from inside a callback. */
#define _XOPEN_SOURCE 700

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <hdp/hdp.h>

#define HOST_NAME "hdp-c-host"
#define HOST_VERSION "1.0.0"

#define HTTP_MAX_HEAD_BYTES (16u * 1024u)
#define HTTP_MAX_HEADERS 64u
#define HTTP_DEFAULT_BODY_LIMIT (1024u * 1024u)
#define HTTP_ABSOLUTE_BODY_LIMIT (64u * 1024u * 1024u)
#define HTTP_DEFAULT_DEFERRED_MS 30000u
#define HTTP_IO_TIMEOUT_MS 10000
#define HTTP_DRAIN_MS 1000
#define HTTP_MAX_CONNECTIONS 256u
#define MAX_TIMERS_PER_PLUGIN 4096u
#define MAX_KEY_BYTES 255u
#define MAX_REASON_BYTES 1024u

/* ---- small utilities ------------------------------------------------------------------------- */

typedef struct ptr_vec {
   void **items;
   size_t len;
   size_t cap;
} ptr_vec_t;

static bool vec_push(ptr_vec_t *vec, void *item) {
   if (vec->len == vec->cap) {
      size_t cap = vec->cap == 0 ? 8 : vec->cap * 2;
      void **items = (void **)realloc(vec->items, cap * sizeof *items);
      if (items == NULL) {
         return false;
      }
      vec->items = items;
      vec->cap = cap;
   }
   vec->items[vec->len++] = item;
   return true;
}

/* Removes (and frees with free_item) every item for which is_dead is true, keeping the order. */
static void vec_sweep(ptr_vec_t *vec, bool (*is_dead)(const void *), void (*free_item)(void *)) {
   size_t out = 0;
   size_t i;
   for (i = 0; i < vec->len; ++i) {
      if (is_dead(vec->items[i])) {
         free_item(vec->items[i]);
      } else {
         vec->items[out++] = vec->items[i];
      }
   }
   vec->len = out;
}

static char *str_dup_n(const char *text, size_t len) {
   char *copy = (char *)malloc(len + 1);
   if (copy != NULL) {
      if (len != 0) {
         memcpy(copy, text, len);
      }
      copy[len] = '\0';
   }
   return copy;
}

static char *str_dup(const char *text) {
   return str_dup_n(text, strlen(text));
}

static int64_t monotonic_us(void) {
   struct timespec ts;
   clock_gettime(CLOCK_MONOTONIC, &ts);
   return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_us(void) {
   struct timespec ts;
   clock_gettime(CLOCK_REALTIME, &ts);
   return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void set_nonblocking_cloexec(int fd) {
   int flags = fcntl(fd, F_GETFL);
   if (flags >= 0) {
      (void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
   }
   (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static bool mkdir_p(const char *path) {
   char buffer[4096];
   size_t len = strlen(path);
   size_t i;
   if (len == 0 || len >= sizeof buffer) {
      return false;
   }
   memcpy(buffer, path, len + 1);
   for (i = 1; i <= len; ++i) {
      if (buffer[i] == '/' || buffer[i] == '\0') {
         char saved = buffer[i];
         buffer[i] = '\0';
         if (mkdir(buffer, 0700) != 0 && errno != EEXIST) {
            return false;
         }
         buffer[i] = saved;
      }
   }
   return true;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
   (void)st;
   (void)type;
   (void)ftw;
   return remove(path);
}

/* ---- logging --------------------------------------------------------------------------------- */

static int32_t g_log_level = HDP_LOG_INFO;

static const char *level_name(int32_t level) {
   switch (level) {
   case HDP_LOG_TRACE: return "trace";
   case HDP_LOG_DEBUG: return "debug";
   case HDP_LOG_INFO: return "info";
   case HDP_LOG_WARNING: return "warning";
   default: return "error";
   }
}

/* Unknown levels map to the nearest known one (log.h). */
static int32_t clamp_level(int32_t level) {
   if (level < HDP_LOG_TRACE) {
      return HDP_LOG_TRACE;
   }
   return level > HDP_LOG_ERROR ? HDP_LOG_ERROR : level;
}

/* One line, written with one call so that lines from plugin threads never interleave. */
static void log_line(int32_t level, const char *source, const char *message) {
   char line[2048];
   level = clamp_level(level);
   if (level < g_log_level) {
      return;
   }
   snprintf(line, sizeof line, HOST_NAME ": %s [%s] %s\n", level_name(level), source, message);
   fputs(line, stderr);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
host_log(int32_t level, const char *fmt, ...) {
   char message[1536];
   va_list args;
   va_start(args, fmt);
   vsnprintf(message, sizeof message, fmt, args);
   va_end(args);
   log_line(level, "host", message);
}

/* ---- plugins --------------------------------------------------------------------------------- */

typedef enum plugin_state {
   PLUGIN_LOADED,      /* entry checked, entry.init not yet run */
   PLUGIN_ENTRY_READY, /* entry.init returned true */
   PLUGIN_CREATED,     /* create_plugin returned an object */
   PLUGIN_INITIALIZED,
   PLUGIN_STARTING, /* inside start: registering is allowed */
   PLUGIN_STARTED,
   PLUGIN_STOPPING, /* the host is cancelling its work; extension calls are refused */
   PLUGIN_STOPPED,
   PLUGIN_DESTROYED,
} plugin_state_t;

typedef struct loaded_plugin {
   char *path;
   void *handle;
   const hdp_plugin_entry_t *entry;
   hdp_host_t host; /* this plugin's own table; host_data points back here */
   const hdp_plugin_t *plugin;
   plugin_state_t state;
   char *config;
   size_t config_len;
   char *data_dir;
   uint32_t timer_count;
} loaded_plugin_t;

static loaded_plugin_t *plugin_of(const hdp_host_t *host) {
   return (loaded_plugin_t *)host->host_data;
}

static bool may_register(const loaded_plugin_t *p) {
   return p->state == PLUGIN_STARTING || p->state == PLUGIN_STARTED;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
plugin_log(const loaded_plugin_t *p, int32_t level, const char *fmt, ...) {
   char message[1536];
   va_list args;
   va_start(args, fmt);
   vsnprintf(message, sizeof message, fmt, args);
   va_end(args);
   log_line(level, p->entry != NULL && p->entry->id != NULL ? p->entry->id : "plugin", message);
}

/* ---- the host's state ------------------------------------------------------------------------ */

typedef struct host_timer {
   uint64_t id;
   loaded_plugin_t *owner;
   int64_t due_us;
   uint64_t period_ms;
   hdp_timer_callback_t callback;
   void *user_data;
   uint64_t armed_turn; /* fires only in a later turn than the one that armed it */
   bool dead;
} host_timer_t;

typedef struct fd_watch {
   loaded_plugin_t *owner;
   int fd;
   uint32_t flags;
   hdp_fd_callback_t callback;
   void *user_data;
   bool dead;
} fd_watch_t;

typedef struct http_route {
   uint64_t id;
   loaded_plugin_t *owner;
   char *method;
   char *path;
   uint32_t match;
   uint64_t max_body_bytes;
   uint64_t deferred_timeout_ms;
   hdp_http_request_callback_t on_request;
   hdp_http_cancel_callback_t on_cancel;
   void *user_data;
   /* HDP_HTTP_ACCESS_*; this host signs no agent in, so agent-only routes refuse everyone. */
   uint32_t access;
   bool dead;
} http_route_t;

typedef enum conn_state {
   CONN_READ_HEAD,
   CONN_READ_BODY,
   CONN_WAIT_PLUGIN, /* dispatched; waiting for respond() */
   CONN_WRITE,
   CONN_DRAIN, /* response sent and write side shut; discarding input until EOF */
   CONN_DEAD,
} conn_state_t;

typedef struct span {
   size_t off;
   size_t len;
} span_t;

typedef struct http_conn {
   int fd;
   conn_state_t state;
   int64_t deadline_us;
   char peer[INET6_ADDRSTRLEN];
   char *in;
   size_t in_len;
   size_t in_cap;
   size_t head_len;
   size_t content_length;
   span_t method;
   span_t path;
   span_t query;
   span_t header_names[HTTP_MAX_HEADERS];
   span_t header_values[HTTP_MAX_HEADERS];
   size_t header_count;
   /* Set while a plugin owes the answer (CONN_WAIT_PLUGIN). */
   uint64_t request_id;
   loaded_plugin_t *owner;
   hdp_http_cancel_callback_t on_cancel;
   void *cancel_user_data;
   char *out;
   size_t out_len;
   size_t out_off;
} http_conn_t;

typedef struct call_message {
   uint64_t id;
   loaded_plugin_t *owner;
   char *external_key;
   char *inbox;
   char *contact;
   int32_t direction;
   char *call_status;
   int64_t duration_s;
   int32_t recording_status;
   char *reason;
} call_message_t;

typedef struct stored_attachment {
   uint64_t id;
   loaded_plugin_t *owner;
   uint64_t message_id;
   char *idempotency_key;
   char *stored_path;
} stored_attachment_t;

typedef struct attach_job {
   uint64_t id;
   loaded_plugin_t *owner;
   uint64_t message_id;
   char *file_path;
   char *file_name;
   char *mime_type;
   char *idempotency_key;
   hdp_attachment_callback_t callback;
   void *user_data;
   bool dead;
} attach_job_t;

/* A hdp.messages/2 operation: the arguments copied, applied at the end of the turn (or earlier,
 * before a /1 call), then completed. */
typedef struct message_op {
   uint64_t id;
   loaded_plugin_t *owner;
   bool is_upsert;
   char *external_key;
   char *inbox;
   char *contact;
   char *call_status; /* NULL = unchanged */
   int32_t direction;
   int64_t duration_s;
   uint64_t message_id; /* set_recording_status: the target; both: the result */
   int32_t recording_status;
   char *reason;
   hdp_message_callback_t callback;
   void *user_data;
   bool applied;
   hdp_status_t status;
   bool dead;
} message_op_t;

typedef struct main_thread_call {
   struct main_thread_call *next;
   loaded_plugin_t *owner;
   hdp_main_thread_callback_t callback;
   void *user_data;
} main_thread_call_t;

typedef struct host_options {
   const char *listen;
   const char *port_file;
   const char *data_dir;
   int64_t run_ms; /* < 0: run until a signal */
   const char *disabled_extensions[8];
   size_t disabled_count;
   const char *plugin_paths[32];
   const char *plugin_configs[32];
   size_t plugin_count;
} host_options_t;

typedef struct host {
   host_options_t options;
   char *data_dir;
   bool own_data_dir; /* made by us with mkdtemp; removed at exit */
   char *attachments_dir;
   int wake_pipe[2];
   int listen_fd;
   uint64_t turn;
   uint64_t next_timer_id;
   uint64_t next_route_id;
   uint64_t next_request_id;
   uint64_t next_message_id;
   uint64_t next_attachment_id;
   uint64_t next_job_id;
   uint64_t next_message_op_id;
   ptr_vec_t plugins;
   ptr_vec_t timers;
   ptr_vec_t fd_watches;
   ptr_vec_t routes;
   ptr_vec_t conns;
   ptr_vec_t messages;
   ptr_vec_t attachments;
   ptr_vec_t jobs;
   ptr_vec_t message_ops;
   pthread_mutex_t calls_mutex;
   main_thread_call_t *calls_head;
   main_thread_call_t *calls_tail;
   bool calls_closed;
} host_t;

static host_t g_host;
static volatile sig_atomic_t g_signalled;

static void wake_loop(void) {
   const char byte = 1;
   ssize_t n = write(g_host.wake_pipe[1], &byte, 1);
   (void)n; /* a full pipe already wakes the loop */
}

/* ---- core table ------------------------------------------------------------------------------ */

static const void *core_get_extension(const hdp_host_t *host, const char *extension_id);

static void core_log(const hdp_host_t *host, int32_t level, const char *message) {
   const loaded_plugin_t *p = plugin_of(host);
   log_line(level, p->entry->id, message != NULL ? message : "(null)");
}

static bool core_log_enabled(const hdp_host_t *host, int32_t level) {
   (void)host;
   return clamp_level(level) >= g_log_level;
}

static int64_t core_wall_clock_us(const hdp_host_t *host) {
   (void)host;
   return wall_us();
}

static int64_t core_monotonic_clock_us(const hdp_host_t *host) {
   (void)host;
   return monotonic_us();
}

static hdp_status_t core_request_main_thread_callback(const hdp_host_t *host,
                                                      hdp_main_thread_callback_t callback,
                                                      void *user_data) {
   main_thread_call_t *call;
   hdp_status_t status = HDP_OK;
   if (callback == NULL) {
      return HDP_ERR_INVALID_ARGUMENT;
   }
   call = (main_thread_call_t *)calloc(1, sizeof *call);
   if (call == NULL) {
      return HDP_ERR_NO_MEMORY;
   }
   call->owner = plugin_of(host);
   call->callback = callback;
   call->user_data = user_data;
   pthread_mutex_lock(&g_host.calls_mutex);
   if (g_host.calls_closed) {
      status = HDP_ERR_BAD_STATE;
   } else if (g_host.calls_tail != NULL) {
      g_host.calls_tail->next = call;
      g_host.calls_tail = call;
   } else {
      g_host.calls_head = g_host.calls_tail = call;
   }
   pthread_mutex_unlock(&g_host.calls_mutex);
   if (status != HDP_OK) {
      free(call);
      return status;
   }
   wake_loop();
   return HDP_OK;
}

static void core_get_config(const hdp_host_t *host, const uint8_t **out_data, size_t *out_size) {
   const loaded_plugin_t *p = plugin_of(host);
   if (out_data != NULL) {
      *out_data = (const uint8_t *)p->config;
   }
   if (out_size != NULL) {
      *out_size = p->config_len;
   }
}

static const char *core_get_data_dir(const hdp_host_t *host) {
   return plugin_of(host)->data_dir;
}

/* Runs the queued main-thread callbacks. With close_queue, later requests get BAD_STATE. */
static void run_main_thread_calls(bool close_queue) {
   main_thread_call_t *call;
   pthread_mutex_lock(&g_host.calls_mutex);
   call = g_host.calls_head;
   g_host.calls_head = g_host.calls_tail = NULL;
   if (close_queue) {
      g_host.calls_closed = true;
   }
   pthread_mutex_unlock(&g_host.calls_mutex);
   while (call != NULL) {
      main_thread_call_t *next = call->next;
      if (call->owner->state == PLUGIN_STARTED || call->owner->state == PLUGIN_INITIALIZED) {
         call->callback(call->user_data);
      }
      free(call);
      call = next;
   }
}

/* ---- timers ---------------------------------------------------------------------------------- */

static hdp_status_t timers_register(const hdp_host_t *host, uint64_t delay_ms, uint64_t period_ms,
                                    hdp_timer_callback_t callback, void *user_data,
                                    uint64_t *out_timer_id) {
   loaded_plugin_t *p = plugin_of(host);
   host_timer_t *timer;
   const uint64_t max_ms = (uint64_t)INT64_MAX / 4000u; /* keeps due_us far from overflow */
   if (callback == NULL || out_timer_id == NULL || delay_ms > max_ms || period_ms > max_ms) {
      return HDP_ERR_INVALID_ARGUMENT;
   }
   if (!may_register(p)) {
      return HDP_ERR_BAD_STATE;
   }
   if (p->timer_count >= MAX_TIMERS_PER_PLUGIN) {
      return HDP_ERR_LIMIT;
   }
   timer = (host_timer_t *)calloc(1, sizeof *timer);
   if (timer == NULL || !vec_push(&g_host.timers, timer)) {
      free(timer);
      return HDP_ERR_NO_MEMORY;
   }
   timer->id = ++g_host.next_timer_id;
   timer->owner = p;
   timer->due_us = monotonic_us() + (int64_t)delay_ms * 1000;
   timer->period_ms = period_ms;
   timer->callback = callback;
   timer->user_data = user_data;
   timer->armed_turn = g_host.turn;
   ++p->timer_count;
   *out_timer_id = timer->id;
   return HDP_OK;
}

static void timer_kill(host_timer_t *timer) {
   timer->dead = true;
   --timer->owner->timer_count;
}

static hdp_status_t timers_cancel(const hdp_host_t *host, uint64_t timer_id) {
   loaded_plugin_t *p = plugin_of(host);
   size_t i;
   for (i = 0; i < g_host.timers.len; ++i) {
      host_timer_t *timer = (host_timer_t *)g_host.timers.items[i];
      if (!timer->dead && timer->id == timer_id && timer->owner == p) {
         timer_kill(timer);
         return HDP_OK;
      }
   }
   return HDP_ERR_NOT_FOUND;
}

static const hdp_host_timers_t g_timers_ext = {
    (uint32_t)sizeof(hdp_host_timers_t),
    timers_register,
    timers_cancel,
};

/* Fires every timer due now, earliest first, each at most once per turn. */
static void fire_due_timers(void) {
   int64_t now = monotonic_us();
   ++g_host.turn;
   for (;;) {
      host_timer_t *due = NULL;
      size_t i;
      for (i = 0; i < g_host.timers.len; ++i) {
         host_timer_t *timer = (host_timer_t *)g_host.timers.items[i];
         if (!timer->dead && timer->armed_turn < g_host.turn && timer->due_us <= now &&
             (due == NULL || timer->due_us < due->due_us)) {
            due = timer;
         }
      }
      if (due == NULL) {
         return;
      }
      if (due->period_ms == 0) {
         timer_kill(due); /* a one-shot id is stale once its callback starts */
      } else {
         due->due_us += (int64_t)due->period_ms * 1000;
         if (due->due_us <= now) {
            due->due_us = now + (int64_t)due->period_ms * 1000; /* fell behind: skip, no burst */
         }
         due->armed_turn = g_host.turn;
      }
      due->callback(due->user_data, due->id);
   }
}

/* ---- posix fds ------------------------------------------------------------------------------- */

static const uint32_t g_fd_known_flags = HDP_FD_READ | HDP_FD_WRITE | HDP_FD_ERROR;

static fd_watch_t *find_watch(const loaded_plugin_t *p, int fd) {
   size_t i;
   for (i = 0; i < g_host.fd_watches.len; ++i) {
      fd_watch_t *watch = (fd_watch_t *)g_host.fd_watches.items[i];
      if (!watch->dead && watch->owner == p && watch->fd == fd) {
         return watch;
      }
   }
   return NULL;
}

static hdp_status_t fd_register(const hdp_host_t *host, int fd, uint32_t flags,
                                hdp_fd_callback_t callback, void *user_data) {
   loaded_plugin_t *p = plugin_of(host);
   fd_watch_t *watch;
   if (fd < 0 || callback == NULL) {
      return HDP_ERR_INVALID_ARGUMENT;
   }
   if (!may_register(p)) {
      return HDP_ERR_BAD_STATE;
   }
   if (find_watch(p, fd) != NULL) {
      return HDP_ERR_ALREADY_EXISTS;
   }
   watch = (fd_watch_t *)calloc(1, sizeof *watch);
   if (watch == NULL || !vec_push(&g_host.fd_watches, watch)) {
      free(watch);
      return HDP_ERR_NO_MEMORY;
   }
   watch->owner = p;
   watch->fd = fd;
   watch->flags = flags & g_fd_known_flags; /* unknown bits are tolerated and ignored */
   watch->callback = callback;
   watch->user_data = user_data;
   return HDP_OK;
}

static hdp_status_t fd_modify(const hdp_host_t *host, int fd, uint32_t flags) {
   fd_watch_t *watch = find_watch(plugin_of(host), fd);
   if (watch == NULL) {
      return HDP_ERR_NOT_FOUND;
   }
   watch->flags = flags & g_fd_known_flags;
   return HDP_OK;
}

static hdp_status_t fd_unregister(const hdp_host_t *host, int fd) {
   fd_watch_t *watch = find_watch(plugin_of(host), fd);
   if (watch == NULL) {
      return HDP_ERR_NOT_FOUND;
   }
   watch->dead = true;
   return HDP_OK;
}

static const hdp_host_posix_fd_t g_posix_fd_ext = {
    (uint32_t)sizeof(hdp_host_posix_fd_t),
    fd_register,
    fd_modify,
    fd_unregister,
};

/* ---- http: routes and responses -------------------------------------------------------------- */

static bool valid_token(const char *text) {
   const char *c;
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

static hdp_status_t http_register_route(const hdp_host_t *host, const hdp_http_route_t *route,
                                        uint64_t *out_route_id) {
   loaded_plugin_t *p = plugin_of(host);
   http_route_t *copy;
   size_t i;
   if (route == NULL || out_route_id == NULL || route->struct_size < HDP_HTTP_ROUTE_V1_SIZE ||
       route->on_request == NULL || route->path == NULL || route->path[0] != '/' ||
       (strcmp(route->method != NULL ? route->method : "", "*") != 0 &&
        !valid_token(route->method)) ||
       (route->match != HDP_HTTP_MATCH_EXACT && route->match != HDP_HTTP_MATCH_PREFIX)) {
      return HDP_ERR_INVALID_ARGUMENT;
   }
   if (!may_register(p)) {
      return HDP_ERR_BAD_STATE;
   }
   for (i = 0; i < g_host.routes.len; ++i) {
      const http_route_t *other = (const http_route_t *)g_host.routes.items[i];
      if (!other->dead && strcmp(other->method, route->method) == 0 &&
          strcmp(other->path, route->path) == 0) {
         return HDP_ERR_ALREADY_EXISTS;
      }
   }
   copy = (http_route_t *)calloc(1, sizeof *copy);
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
   copy->max_body_bytes =
       route->max_body_bytes != 0 ? route->max_body_bytes : HTTP_DEFAULT_BODY_LIMIT;
   if (copy->max_body_bytes > HTTP_ABSOLUTE_BODY_LIMIT) {
      copy->max_body_bytes = HTTP_ABSOLUTE_BODY_LIMIT;
   }
   copy->deferred_timeout_ms =
       route->deferred_timeout_ms != 0 ? route->deferred_timeout_ms : HTTP_DEFAULT_DEFERRED_MS;
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

static hdp_status_t http_unregister_route(const hdp_host_t *host, uint64_t route_id) {
   loaded_plugin_t *p = plugin_of(host);
   size_t i;
   for (i = 0; i < g_host.routes.len; ++i) {
      http_route_t *route = (http_route_t *)g_host.routes.items[i];
      if (!route->dead && route->id == route_id && route->owner == p) {
         route->dead = true;
         return HDP_OK;
      }
   }
   return HDP_ERR_NOT_FOUND;
}

static const char *reason_phrase(int status) {
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

static bool header_text_ok(const char *text, size_t len) {
   size_t i;
   for (i = 0; i < len; ++i) {
      if (text[i] == '\r' || text[i] == '\n' || text[i] == '\0') {
         return false;
      }
   }
   return true;
}

static bool header_reserved(const char *name, size_t len) {
   static const char *const reserved[] = {"content-length", "connection", "date",
                                          "transfer-encoding"};
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
static bool conn_queue_response(http_conn_t *conn, int status, const char *content_type,
                                const hdp_http_header_t *headers, size_t header_count,
                                const uint8_t *body, size_t body_len) {
   char head[1024];
   char date[64];
   time_t now = time(NULL);
   struct tm tm_utc;
   size_t extra = 0;
   size_t i;
   int head_len;
   char *out;
   size_t pos;
   gmtime_r(&now, &tm_utc);
   strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm_utc);
   if (content_type == NULL && body_len != 0) {
      content_type = "application/octet-stream";
   }
   head_len = snprintf(
       head, sizeof head,
       "HTTP/1.0 %d %s\r\nServer: " HOST_NAME "\r\nDate: %s\r\nConnection: close\r\n"
       "Content-Length: %zu\r\n%s%s%s",
       status, reason_phrase(status), date, body_len, content_type != NULL ? "Content-Type: " : "",
       content_type != NULL ? content_type : "", content_type != NULL ? "\r\n" : "");
   if (head_len < 0 || (size_t)head_len >= sizeof head) {
      return false;
   }
   for (i = 0; i < header_count; ++i) {
      extra += headers[i].name_len + headers[i].value_len + 4;
   }
   out = (char *)malloc((size_t)head_len + extra + 2 + body_len);
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

static void conn_queue_text(http_conn_t *conn, int status, const char *text) {
   if (!conn_queue_response(conn, status, "text/plain; charset=utf-8", NULL, 0,
                            (const uint8_t *)text, strlen(text))) {
      conn->state = CONN_DEAD;
   }
}

static void access_log(const http_conn_t *conn, int status) {
   host_log(HDP_LOG_DEBUG, "%.*s %.*s -> %d", (int)conn->method.len, conn->in + conn->method.off,
            (int)conn->path.len, conn->in + conn->path.off, status);
}

static http_conn_t *find_pending(const loaded_plugin_t *p, uint64_t request_id) {
   size_t i;
   if (request_id == 0) {
      return NULL;
   }
   for (i = 0; i < g_host.conns.len; ++i) {
      http_conn_t *conn = (http_conn_t *)g_host.conns.items[i];
      if (conn->state == CONN_WAIT_PLUGIN && conn->request_id == request_id && conn->owner == p) {
         return conn;
      }
   }
   return NULL;
}

static hdp_status_t http_respond(const hdp_host_t *host, uint64_t request_id,
                                 const hdp_http_response_t *response) {
   loaded_plugin_t *p = plugin_of(host);
   http_conn_t *conn = find_pending(p, request_id);
   size_t i;
   if (conn == NULL) {
      return HDP_ERR_NOT_FOUND;
   }
   if (response == NULL || response->struct_size < HDP_HTTP_RESPONSE_V1_SIZE ||
       response->status < 100 || response->status > 599 ||
       (response->body == NULL && response->body_len != 0) ||
       (response->headers == NULL && response->header_count != 0) ||
       (response->content_type != NULL &&
        !header_text_ok(response->content_type, strlen(response->content_type)))) {
      return HDP_ERR_INVALID_ARGUMENT;
   }
   for (i = 0; i < response->header_count; ++i) {
      const hdp_http_header_t *h = &response->headers[i];
      char name[128];
      if (h->name == NULL || h->name_len == 0 || h->name_len >= sizeof name ||
          (h->value == NULL && h->value_len != 0) || !header_text_ok(h->value, h->value_len) ||
          header_reserved(h->name, h->name_len)) {
         return HDP_ERR_INVALID_ARGUMENT;
      }
      memcpy(name, h->name, h->name_len);
      name[h->name_len] = '\0';
      if (!valid_token(name)) {
         return HDP_ERR_INVALID_ARGUMENT;
      }
   }
   access_log(conn, response->status);
   if (!conn_queue_response(conn, response->status, response->content_type, response->headers,
                            response->header_count, response->body, response->body_len)) {
      return HDP_ERR_NO_MEMORY;
   }
   return HDP_OK;
}

static const hdp_host_http_t g_http_ext = {
    (uint32_t)sizeof(hdp_host_http_t),
    http_register_route,
    http_unregister_route,
    http_respond,
};

/* The best live route for the request: exact beats prefix, a longer prefix beats a shorter one. */
static http_route_t *match_route(const char *method, size_t method_len, const char *path,
                                 size_t path_len) {
   http_route_t *best = NULL;
   size_t best_score = 0;
   size_t i;
   for (i = 0; i < g_host.routes.len; ++i) {
      http_route_t *route = (http_route_t *)g_host.routes.items[i];
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

static bool span_eq_ci(const http_conn_t *conn, span_t span, const char *text) {
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
static int parse_head(http_conn_t *conn) {
   const char *buf = conn->in;
   size_t end = conn->head_len - 2; /* the final empty line's CRLF */
   size_t pos = 0;
   size_t line_end;
   size_t sp1;
   size_t sp2;
   size_t i;
   bool have_length = false;

   for (line_end = 0; line_end + 1 < end && !(buf[line_end] == '\r' && buf[line_end + 1] == '\n');
        ++line_end) {
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
      for (line_end = pos;
           line_end + 1 < end && !(buf[line_end] == '\r' && buf[line_end + 1] == '\n');
           ++line_end) {
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
static void dispatch(http_conn_t *conn, http_route_t *route) {
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
   request.body = (const uint8_t *)conn->in + conn->head_len;
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
static void on_head(http_conn_t *conn) {
   int error = parse_head(conn);
   http_route_t *route;
   if (error != 0) {
      conn_queue_text(conn, error, reason_phrase(error));
      return;
   }
   route = match_route(conn->in + conn->method.off, conn->method.len, conn->in + conn->path.off,
                       conn->path.len);
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

static void conn_fail_pending(http_conn_t *conn, int status, const char *text) {
   uint64_t request_id = conn->request_id;
   hdp_http_cancel_callback_t on_cancel = conn->on_cancel;
   void *user_data = conn->cancel_user_data;
   if (status != 0) {
      conn_queue_text(conn, status, text); /* makes the request id stale first */
   } else {
      conn->state = CONN_DEAD;
   }
   if (on_cancel != NULL) {
      on_cancel(user_data, request_id);
   }
}

static void conn_on_readable(http_conn_t *conn) {
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
         size_t want = conn->state == CONN_READ_HEAD ? HTTP_MAX_HEAD_BYTES
                                                     : conn->head_len + conn->content_length;
         char *grown;
         if (want <= conn->in_cap) {
            want = conn->in_cap + 1;
         }
         grown = (char *)realloc(conn->in, want);
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
         http_route_t *route = match_route(conn->in + conn->method.off, conn->method.len,
                                           conn->in + conn->path.off, conn->path.len);
         if (route == NULL) {
            conn_queue_text(conn, 404, "no route");
         } else if (route->access == HDP_HTTP_ACCESS_AGENT) {
            host_log(HDP_LOG_WARNING, "refused %s: an agent route, and this host signs no agent in",
                     route->path);
            conn_queue_text(conn, 401, "this host signs no agent in");
         } else {
            dispatch(conn, route); /* agent_name stays NULL: the plugin decides */
         }
         return;
      }
   }
}

static void conn_on_writable(http_conn_t *conn) {
   while (conn->state == CONN_WRITE && conn->out_off < conn->out_len) {
      ssize_t n =
          send(conn->fd, conn->out + conn->out_off, conn->out_len - conn->out_off, MSG_NOSIGNAL);
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

static void accept_connections(void) {
   for (;;) {
      struct sockaddr_storage addr;
      socklen_t addr_len = sizeof addr;
      http_conn_t *conn;
      int fd = accept(g_host.listen_fd, (struct sockaddr *)&addr, &addr_len);
      if (fd < 0) {
         return;
      }
      if (g_host.conns.len >= HTTP_MAX_CONNECTIONS) {
         close(fd);
         continue;
      }
      set_nonblocking_cloexec(fd);
      conn = (http_conn_t *)calloc(1, sizeof *conn);
      if (conn == NULL || !vec_push(&g_host.conns, conn)) {
         free(conn);
         close(fd);
         continue;
      }
      conn->fd = fd;
      conn->state = CONN_READ_HEAD;
      conn->deadline_us = monotonic_us() + (int64_t)HTTP_IO_TIMEOUT_MS * 1000;
      if (addr.ss_family == AF_INET) {
         inet_ntop(AF_INET, &((struct sockaddr_in *)&addr)->sin_addr, conn->peer,
                   sizeof conn->peer);
      } else if (addr.ss_family == AF_INET6) {
         inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&addr)->sin6_addr, conn->peer,
                   sizeof conn->peer);
      }
   }
}

/* Deadlines: deferred answers get 503 + on_cancel; stalled reads, writes and drains are closed. */
static void expire_connections(void) {
   int64_t now = monotonic_us();
   size_t i;
   for (i = 0; i < g_host.conns.len; ++i) {
      http_conn_t *conn = (http_conn_t *)g_host.conns.items[i];
      if (conn->state == CONN_DEAD || conn->deadline_us > now) {
         continue;
      }
      if (conn->state == CONN_WAIT_PLUGIN) {
         host_log(HDP_LOG_WARNING, "request %" PRIu64 " got no answer in time; answering 503",
                  conn->request_id);
         conn_fail_pending(conn, 503, "the plugin did not answer in time");
      } else if (conn->state == CONN_READ_HEAD || conn->state == CONN_READ_BODY) {
         conn_queue_text(conn, 408, "request timeout");
      } else {
         conn->state = CONN_DEAD;
      }
   }
}

/* ---- messages -------------------------------------------------------------------------------- */

static bool key_ok(const char *key) {
   return key != NULL && key[0] != '\0' && strlen(key) <= MAX_KEY_BYTES;
}

static call_message_t *find_message(const loaded_plugin_t *p, uint64_t id) {
   size_t i;
   for (i = 0; i < g_host.messages.len; ++i) {
      call_message_t *m = (call_message_t *)g_host.messages.items[i];
      if (m->id == id && m->owner == p) {
         return m;
      }
   }
   return NULL;
}

static bool replace_string(char **field, const char *value) {
   char *copy = str_dup(value);
   if (copy == NULL) {
      return false;
   }
   free(*field);
   *field = copy;
   return true;
}

static void apply_message_ops(void);

/* The write of an upsert, arguments already checked. */
static hdp_status_t upsert_now(loaded_plugin_t *p, const hdp_call_message_t *message,
                               uint64_t *out_message_id) {
   call_message_t *m = NULL;
   size_t i;
   for (i = 0; i < g_host.messages.len; ++i) {
      call_message_t *candidate = (call_message_t *)g_host.messages.items[i];
      if (candidate->owner == p && strcmp(candidate->external_key, message->external_key) == 0) {
         m = candidate;
         break;
      }
   }
   if (m == NULL) {
      m = (call_message_t *)calloc(1, sizeof *m);
      if (m == NULL) {
         return HDP_ERR_NO_MEMORY;
      }
      m->external_key = str_dup(message->external_key);
      m->inbox = str_dup(message->inbox != NULL ? message->inbox : "");
      m->contact = str_dup("");
      m->call_status = str_dup("");
      m->reason = str_dup("");
      if (m->external_key == NULL || m->inbox == NULL || m->contact == NULL ||
          m->call_status == NULL || m->reason == NULL || !vec_push(&g_host.messages, m)) {
         free(m->external_key);
         free(m->inbox);
         free(m->contact);
         free(m->call_status);
         free(m->reason);
         free(m);
         return HDP_ERR_NO_MEMORY;
      }
      m->id = ++g_host.next_message_id;
      m->owner = p;
      m->duration_s = -1;
      plugin_log(p, HDP_LOG_DEBUG, "message %" PRIu64 " created for %s", m->id, m->external_key);
   }
   /* Unknown directions are tolerated and, like UNKNOWN, leave the stored value. */
   if (message->direction == HDP_CALL_DIRECTION_INCOMING ||
       message->direction == HDP_CALL_DIRECTION_OUTGOING) {
      m->direction = message->direction;
   }
   if (message->duration_s >= 0) {
      m->duration_s = message->duration_s;
   }
   if ((message->contact != NULL && message->contact[0] != '\0' &&
        !replace_string(&m->contact, message->contact)) ||
       (message->call_status != NULL && !replace_string(&m->call_status, message->call_status))) {
      return HDP_ERR_NO_MEMORY;
   }
   *out_message_id = m->id;
   return HDP_OK;
}

static hdp_status_t messages_upsert(const hdp_host_t *host, const hdp_call_message_t *message,
                                    uint64_t *out_message_id) {
   loaded_plugin_t *p = plugin_of(host);
   if (message == NULL || out_message_id == NULL ||
       message->struct_size < HDP_CALL_MESSAGE_V1_SIZE || !key_ok(message->external_key)) {
      return HDP_ERR_INVALID_ARGUMENT;
   }
   if (!may_register(p)) {
      return HDP_ERR_BAD_STATE;
   }
   apply_message_ops(); /* a /1 call lands after the /2 operations started before it */
   return upsert_now(p, message, out_message_id);
}

/* The write of a status, arguments already checked. */
static hdp_status_t set_status_now(loaded_plugin_t *p, uint64_t message_id,
                                   int32_t recording_status, const char *reason) {
   call_message_t *m = find_message(p, message_id);
   if (m == NULL) {
      return HDP_ERR_NOT_FOUND;
   }
   if (!replace_string(&m->reason, reason != NULL ? reason : "")) {
      return HDP_ERR_NO_MEMORY;
   }
   m->recording_status = recording_status; /* unknown values are stored as given */
   plugin_log(p, HDP_LOG_DEBUG, "message %" PRIu64 " recording status %" PRId32 " (%s)", m->id,
              recording_status, m->reason);
   return HDP_OK;
}

static hdp_status_t messages_set_recording_status(const hdp_host_t *host, uint64_t message_id,
                                                  int32_t recording_status, const char *reason) {
   loaded_plugin_t *p = plugin_of(host);
   if (reason != NULL && strlen(reason) > MAX_REASON_BYTES) {
      return HDP_ERR_INVALID_ARGUMENT;
   }
   if (!may_register(p)) {
      return HDP_ERR_BAD_STATE;
   }
   apply_message_ops();
   return set_status_now(p, message_id, recording_status, reason);
}

static const hdp_host_messages_t g_messages_ext = {
    (uint32_t)sizeof(hdp_host_messages_t),
    messages_upsert,
    messages_set_recording_status,
};

/* ---- hdp.messages/2 -------------------------------------------------------------------------- */

static void free_message_op(void *item) {
   message_op_t *op = (message_op_t *)item;
   free(op->external_key);
   free(op->inbox);
   free(op->contact);
   free(op->call_status);
   free(op->reason);
   free(op);
}

static bool message_op_is_dead(const void *item) {
   return ((const message_op_t *)item)->dead;
}

/* Queues op (its strings copied by the caller) and names it; NO_MEMORY frees it. */
static hdp_status_t queue_message_op(loaded_plugin_t *p, message_op_t *op,
                                     hdp_message_callback_t callback, void *user_data,
                                     uint64_t *out_op_id) {
   if (!vec_push(&g_host.message_ops, op)) {
      free_message_op(op);
      return HDP_ERR_NO_MEMORY;
   }
   op->id = ++g_host.next_message_op_id;
   op->owner = p;
   op->callback = callback;
   op->user_data = user_data;
   *out_op_id = op->id;
   return HDP_OK;
}

static hdp_status_t messages2_upsert(const hdp_host_t *host, const hdp_call_message_t *message,
                                     int32_t recording_status, const char *reason,
                                     hdp_message_callback_t callback, void *user_data,
                                     uint64_t *out_op_id) {
   loaded_plugin_t *p = plugin_of(host);
   message_op_t *op;
   if (message == NULL || callback == NULL || out_op_id == NULL ||
       message->struct_size < HDP_CALL_MESSAGE_V1_SIZE || !key_ok(message->external_key) ||
       (reason != NULL && strlen(reason) > MAX_REASON_BYTES)) {
      return HDP_ERR_INVALID_ARGUMENT;
   }
   if (!may_register(p)) {
      return HDP_ERR_BAD_STATE;
   }
   op = (message_op_t *)calloc(1, sizeof *op);
   if (op == NULL) {
      return HDP_ERR_NO_MEMORY;
   }
   op->is_upsert = true;
   op->external_key = str_dup(message->external_key);
   op->inbox = str_dup(message->inbox != NULL ? message->inbox : "");
   op->contact = str_dup(message->contact != NULL ? message->contact : "");
   op->call_status = message->call_status != NULL ? str_dup(message->call_status) : NULL;
   op->reason = str_dup(reason != NULL ? reason : "");
   op->direction = message->direction;
   op->duration_s = message->duration_s;
   op->recording_status = recording_status;
   if (op->external_key == NULL || op->inbox == NULL || op->contact == NULL || op->reason == NULL ||
       (message->call_status != NULL && op->call_status == NULL)) {
      free_message_op(op);
      return HDP_ERR_NO_MEMORY;
   }
   return queue_message_op(p, op, callback, user_data, out_op_id);
}

static hdp_status_t messages2_set_recording_status(const hdp_host_t *host, uint64_t message_id,
                                                   int32_t recording_status, const char *reason,
                                                   hdp_message_callback_t callback,
                                                   void *user_data, uint64_t *out_op_id) {
   loaded_plugin_t *p = plugin_of(host);
   message_op_t *op;
   if (callback == NULL || out_op_id == NULL ||
       (reason != NULL && strlen(reason) > MAX_REASON_BYTES)) {
      return HDP_ERR_INVALID_ARGUMENT;
   }
   if (!may_register(p)) {
      return HDP_ERR_BAD_STATE;
   }
   op = (message_op_t *)calloc(1, sizeof *op);
   if (op == NULL) {
      return HDP_ERR_NO_MEMORY;
   }
   op->message_id = message_id;
   op->recording_status = recording_status;
   op->reason = str_dup(reason != NULL ? reason : "");
   if (op->reason == NULL) {
      free_message_op(op);
      return HDP_ERR_NO_MEMORY;
   }
   return queue_message_op(p, op, callback, user_data, out_op_id);
}

static const hdp_host_messages2_t g_messages2_ext = {
    (uint32_t)sizeof(hdp_host_messages2_t),
    messages2_upsert,
    messages2_set_recording_status,
};

/* Applies every queued operation not applied yet, in start order; completions come later. */
static void apply_message_ops(void) {
   size_t i;
   for (i = 0; i < g_host.message_ops.len; ++i) {
      message_op_t *op = (message_op_t *)g_host.message_ops.items[i];
      if (op->dead || op->applied) {
         continue;
      }
      op->applied = true;
      if (op->is_upsert) {
         hdp_call_message_t m;
         memset(&m, 0, sizeof m);
         m.struct_size = (uint32_t)sizeof m;
         m.external_key = op->external_key;
         m.inbox = op->inbox;
         m.contact = op->contact;
         m.direction = op->direction;
         m.call_status = op->call_status;
         m.duration_s = op->duration_s;
         op->status = upsert_now(op->owner, &m, &op->message_id);
         if (op->status == HDP_OK && op->recording_status != HDP_RECORDING_UNCHANGED) {
            op->status = set_status_now(op->owner, op->message_id, op->recording_status, op->reason);
         }
      } else {
         op->status = set_status_now(op->owner, op->message_id, op->recording_status, op->reason);
      }
   }
}

static void complete_message_op(message_op_t *op) {
   hdp_message_result_t result;
   memset(&result, 0, sizeof result);
   result.struct_size = (uint32_t)sizeof result;
   result.status = op->status;
   result.op_id = op->id;
   result.message_id = op->status == HDP_OK ? op->message_id : 0;
   op->dead = true;
   op->callback(op->user_data, &result);
}

/* End of a turn: applies the operations queued before it, then completes them in start order; an
 * operation queued by a completion waits for the next turn. */
static void run_message_ops(void) {
   size_t count = g_host.message_ops.len;
   size_t i;
   apply_message_ops();
   for (i = 0; i < count; ++i) {
      message_op_t *op = (message_op_t *)g_host.message_ops.items[i];
      if (!op->dead && op->applied) {
         complete_message_op(op);
      }
   }
}

static bool has_pending_message_ops(void) {
   size_t i;
   for (i = 0; i < g_host.message_ops.len; ++i) {
      if (!((const message_op_t *)g_host.message_ops.items[i])->dead) {
         return true;
      }
   }
   return false;
}

/* ---- attachments ----------------------------------------------------------------------------- */

static void free_job(void *item) {
   attach_job_t *job = (attach_job_t *)item;
   free(job->file_path);
   free(job->file_name);
   free(job->mime_type);
   free(job->idempotency_key);
   free(job);
}

static hdp_status_t attachments_attach_file(const hdp_host_t *host,
                                            const hdp_attachment_t *attachment,
                                            hdp_attachment_callback_t callback, void *user_data,
                                            uint64_t *out_job_id) {
   loaded_plugin_t *p = plugin_of(host);
   attach_job_t *job;
   if (attachment == NULL || callback == NULL || out_job_id == NULL ||
       attachment->struct_size < HDP_ATTACHMENT_V1_SIZE || attachment->file_path == NULL ||
       attachment->file_path[0] != '/' || attachment->file_name == NULL ||
       attachment->file_name[0] == '\0' || strchr(attachment->file_name, '/') != NULL ||
       strcmp(attachment->file_name, "..") == 0 || strlen(attachment->file_name) > 200 ||
       attachment->mime_type == NULL || !key_ok(attachment->idempotency_key)) {
      return HDP_ERR_INVALID_ARGUMENT;
   }
   if (!may_register(p)) {
      return HDP_ERR_BAD_STATE;
   }
   job = (attach_job_t *)calloc(1, sizeof *job);
   if (job == NULL) {
      return HDP_ERR_NO_MEMORY;
   }
   job->file_path = str_dup(attachment->file_path);
   job->file_name = str_dup(attachment->file_name);
   job->mime_type = str_dup(attachment->mime_type);
   job->idempotency_key = str_dup(attachment->idempotency_key);
   if (job->file_path == NULL || job->file_name == NULL || job->mime_type == NULL ||
       job->idempotency_key == NULL || !vec_push(&g_host.jobs, job)) {
      free_job(job);
      return HDP_ERR_NO_MEMORY;
   }
   job->id = ++g_host.next_job_id;
   job->owner = p;
   job->message_id = attachment->message_id;
   job->callback = callback;
   job->user_data = user_data;
   *out_job_id = job->id;
   return HDP_OK;
}

static const hdp_host_attachments_t g_attachments_ext = {
    (uint32_t)sizeof(hdp_host_attachments_t),
    attachments_attach_file,
};

static bool copy_file(const char *from, const char *to) {
   char buffer[65536];
   struct stat st;
   bool ok = true;
   int in = open(from, O_RDONLY | O_CLOEXEC);
   int out;
   if (in < 0) {
      return false;
   }
   if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
      close(in);
      return false;
   }
   out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
   if (out < 0) {
      close(in);
      return false;
   }
   for (;;) {
      ssize_t n = read(in, buffer, sizeof buffer);
      ssize_t written = 0;
      if (n < 0 && errno == EINTR) {
         continue;
      }
      if (n <= 0) {
         ok = n == 0;
         break;
      }
      while (written < n) {
         ssize_t w = write(out, buffer + written, (size_t)(n - written));
         if (w < 0 && errno == EINTR) {
            continue;
         }
         if (w <= 0) {
            ok = false;
            break;
         }
         written += w;
      }
      if (!ok) {
         break;
      }
   }
   close(in);
   if (close(out) != 0) {
      ok = false;
   }
   if (!ok) {
      (void)unlink(to);
   }
   return ok;
}

static void complete_job(attach_job_t *job, hdp_status_t status, uint64_t attachment_id,
                         uint32_t already_attached) {
   hdp_attachment_result_t result;
   memset(&result, 0, sizeof result);
   result.struct_size = (uint32_t)sizeof result;
   result.job_id = job->id;
   result.status = status;
   result.attachment_id = attachment_id;
   result.already_attached = already_attached;
   job->dead = true;
   job->callback(job->user_data, &result);
}

static void run_job(attach_job_t *job) {
   loaded_plugin_t *p = job->owner;
   stored_attachment_t *stored;
   char path[4096];
   size_t i;
   if (find_message(p, job->message_id) == NULL) {
      complete_job(job, HDP_ERR_NOT_FOUND, 0, 0);
      return;
   }
   for (i = 0; i < g_host.attachments.len; ++i) {
      stored = (stored_attachment_t *)g_host.attachments.items[i];
      if (stored->owner == p && strcmp(stored->idempotency_key, job->idempotency_key) == 0) {
         complete_job(job, HDP_OK, stored->id, 1);
         return;
      }
   }
   stored = (stored_attachment_t *)calloc(1, sizeof *stored);
   if (stored == NULL) {
      complete_job(job, HDP_ERR_NO_MEMORY, 0, 0);
      return;
   }
   stored->id = g_host.next_attachment_id + 1;
   snprintf(path, sizeof path, "%s/%" PRIu64 "-%s", g_host.attachments_dir, stored->id,
            job->file_name);
   if (!copy_file(job->file_path, path)) {
      plugin_log(p, HDP_LOG_WARNING, "attaching %s failed: %s", job->file_path, strerror(errno));
      free(stored);
      complete_job(job, HDP_ERR_IO, 0, 0);
      return;
   }
   stored->owner = p;
   stored->message_id = job->message_id;
   stored->idempotency_key = str_dup(job->idempotency_key);
   stored->stored_path = str_dup(path);
   if (stored->idempotency_key == NULL || stored->stored_path == NULL ||
       !vec_push(&g_host.attachments, stored)) {
      (void)unlink(path);
      free(stored->idempotency_key);
      free(stored->stored_path);
      free(stored);
      complete_job(job, HDP_ERR_NO_MEMORY, 0, 0);
      return;
   }
   g_host.next_attachment_id = stored->id;
   plugin_log(p, HDP_LOG_DEBUG, "attachment %" PRIu64 " stored at %s for message %" PRIu64,
              stored->id, path, stored->message_id);
   complete_job(job, HDP_OK, stored->id, 0);
}

/* Runs the jobs queued before this turn; a job queued by a completion callback waits a turn. */
static void run_jobs(void) {
   size_t count = g_host.jobs.len;
   size_t i;
   for (i = 0; i < count; ++i) {
      attach_job_t *job = (attach_job_t *)g_host.jobs.items[i];
      if (!job->dead && job->owner->state == PLUGIN_STARTED) {
         run_job(job);
      }
   }
}

static bool has_runnable_jobs(void) {
   size_t i;
   for (i = 0; i < g_host.jobs.len; ++i) {
      const attach_job_t *job = (const attach_job_t *)g_host.jobs.items[i];
      if (!job->dead && job->owner->state == PLUGIN_STARTED) {
         return true;
      }
   }
   return false;
}

/* ---- extensions ------------------------------------------------------------------------------ */

static bool extension_disabled(const char *id) {
   size_t i;
   for (i = 0; i < g_host.options.disabled_count; ++i) {
      if (strcmp(g_host.options.disabled_extensions[i], id) == 0) {
         return true;
      }
   }
   return false;
}

static const void *core_get_extension(const hdp_host_t *host, const char *extension_id) {
   const void *table = NULL;
   (void)host;
   if (extension_id == NULL || extension_disabled(extension_id)) {
      return NULL;
   }
   if (strcmp(extension_id, HDP_EXT_TIMERS) == 0) {
      table = &g_timers_ext;
   } else if (strcmp(extension_id, HDP_EXT_POSIX_FD) == 0) {
      table = &g_posix_fd_ext;
   } else if (strcmp(extension_id, HDP_EXT_HTTP) == 0) {
      table = &g_http_ext;
   } else if (strcmp(extension_id, HDP_EXT_MESSAGES) == 0) {
      table = &g_messages_ext;
   } else if (strcmp(extension_id, HDP_EXT_MESSAGES_V2) == 0) {
      table = &g_messages2_ext;
   } else if (strcmp(extension_id, HDP_EXT_ATTACHMENTS) == 0) {
      table = &g_attachments_ext;
   }
   return table;
}

/* ---- loading and refusing -------------------------------------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
refuse(const char *path, const char *fmt, ...) {
   char reason[1024];
   va_list args;
   va_start(args, fmt);
   vsnprintf(reason, sizeof reason, fmt, args);
   va_end(args);
   host_log(HDP_LOG_ERROR, "refused plugin %s: %s", path, reason);
}

static const char *status_name(hdp_status_t status) {
   switch (status) {
   case HDP_OK: return "HDP_OK";
   case HDP_ERR_INVALID_ARGUMENT: return "HDP_ERR_INVALID_ARGUMENT";
   case HDP_ERR_NOT_FOUND: return "HDP_ERR_NOT_FOUND";
   case HDP_ERR_ALREADY_EXISTS: return "HDP_ERR_ALREADY_EXISTS";
   case HDP_ERR_BAD_STATE: return "HDP_ERR_BAD_STATE";
   case HDP_ERR_UNSUPPORTED: return "HDP_ERR_UNSUPPORTED";
   case HDP_ERR_LIMIT: return "HDP_ERR_LIMIT";
   case HDP_ERR_IO: return "HDP_ERR_IO";
   case HDP_ERR_CANCELLED: return "HDP_ERR_CANCELLED";
   case HDP_ERR_TIMEOUT: return "HDP_ERR_TIMEOUT";
   case HDP_ERR_NO_MEMORY: return "HDP_ERR_NO_MEMORY";
   case HDP_ERR_INTERNAL: return "HDP_ERR_INTERNAL";
   default: return "an unknown failure";
   }
}

/* The id names a directory under <data dir>/plugins/, so it must be a plain file name. */
static bool id_usable(const char *id) {
   const char *c;
   if (id[0] == '\0' || strcmp(id, ".") == 0 || strcmp(id, "..") == 0 || strlen(id) > 200) {
      return false;
   }
   for (c = id; *c != '\0'; ++c) {
      if (*c == '/' || (unsigned char)*c < 0x20) {
         return false;
      }
   }
   return true;
}

/* Every check that needs no plugin code; returns the refusal reason or NULL. */
static const char *check_entry(const hdp_plugin_entry_t *entry, char *reason, size_t reason_size) {
   size_t i;
   if (entry->abi_version.major != HDP_VERSION_MAJOR) {
      snprintf(reason, reason_size,
               "ABI major %" PRIu32 " (%" PRIu32 ".%" PRIu32 ".%" PRIu32
               "), this host speaks major %d",
               entry->abi_version.major, entry->abi_version.major, entry->abi_version.minor,
               entry->abi_version.patch, HDP_VERSION_MAJOR);
      return reason;
   }
   if (entry->struct_size < HDP_PLUGIN_ENTRY_V1_SIZE) {
      snprintf(reason, reason_size, "entry struct_size %" PRIu32 " is below the version-1 size %zu",
               entry->struct_size, (size_t)HDP_PLUGIN_ENTRY_V1_SIZE);
      return reason;
   }
   if (entry->id == NULL || !id_usable(entry->id)) {
      snprintf(reason, reason_size, "entry id is missing or not a usable name");
      return reason;
   }
   if (entry->name == NULL || entry->vendor == NULL || entry->version == NULL ||
       entry->description == NULL) {
      snprintf(reason, reason_size, "entry %s is NULL",
               entry->name == NULL      ? "name"
               : entry->vendor == NULL  ? "vendor"
               : entry->version == NULL ? "version"
                                        : "description");
      return reason;
   }
   if (entry->init == NULL || entry->deinit == NULL || entry->create_plugin == NULL) {
      snprintf(reason, reason_size, "entry %s is NULL",
               entry->init == NULL     ? "init"
               : entry->deinit == NULL ? "deinit"
                                       : "create_plugin");
      return reason;
   }
   for (i = 0; i < g_host.plugins.len; ++i) {
      const loaded_plugin_t *other = (const loaded_plugin_t *)g_host.plugins.items[i];
      if (strcmp(other->entry->id, entry->id) == 0) {
         snprintf(reason, reason_size, "duplicate plugin id %s (already loaded from %s)", entry->id,
                  other->path);
         return reason;
      }
   }
   return NULL;
}

static void free_plugin(void *item) {
   loaded_plugin_t *p = (loaded_plugin_t *)item;
   free(p->path);
   free(p->config);
   free(p->data_dir);
   free(p);
}

/* Loads, checks, runs entry.init, create_plugin and plugin.init. On refusal, undoes what ran
 * (destroy, deinit) and returns false; the handle stays open (no dlclose by default). */
static bool load_plugin(const char *path, const char *config) {
   char reason[1024];
   char data_dir[4096];
   loaded_plugin_t *p;
   void *handle;
   void *symbol;
   const hdp_plugin_entry_t *entry;
   const hdp_plugin_t *plugin;
   hdp_status_t status;

   handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
   if (handle == NULL) {
      const char *error = dlerror();
      refuse(path, "not a loadable shared object (%s)", error != NULL ? error : "dlopen failed");
      return false;
   }
   symbol = dlsym(handle, HDP_ENTRY_SYMBOL);
   if (symbol == NULL) {
      refuse(path, "no symbol " HDP_ENTRY_SYMBOL);
      return false;
   }
   entry = (const hdp_plugin_entry_t *)symbol;
   if (check_entry(entry, reason, sizeof reason) != NULL) {
      refuse(path, "%s", reason);
      return false;
   }

   p = (loaded_plugin_t *)calloc(1, sizeof *p);
   if (p == NULL) {
      refuse(path, "out of memory");
      return false;
   }
   snprintf(data_dir, sizeof data_dir, "%s/plugins/%s", g_host.data_dir, entry->id);
   p->path = str_dup(path);
   p->config = str_dup(config != NULL ? config : "");
   p->data_dir = str_dup(data_dir);
   if (p->path == NULL || p->config == NULL || p->data_dir == NULL ||
       !vec_push(&g_host.plugins, p)) {
      free_plugin(p);
      refuse(path, "out of memory");
      return false;
   }
   p->config_len = strlen(p->config);
   p->handle = handle;
   p->entry = entry;
   p->state = PLUGIN_LOADED;
   if (!mkdir_p(p->data_dir)) {
      refuse(path, "cannot create its data directory %s: %s", p->data_dir, strerror(errno));
      return false;
   }
   if (entry->abi_version.minor != HDP_VERSION_MINOR) {
      plugin_log(p, HDP_LOG_INFO,
                 "built against ABI %" PRIu32 ".%" PRIu32 ".%" PRIu32
                 ", host speaks %d.%d.%d: only what both know is used",
                 entry->abi_version.major, entry->abi_version.minor, entry->abi_version.patch,
                 HDP_VERSION_MAJOR, HDP_VERSION_MINOR, HDP_VERSION_PATCH);
   }

   p->host.abi_version.major = HDP_VERSION_MAJOR;
   p->host.abi_version.minor = HDP_VERSION_MINOR;
   p->host.abi_version.patch = HDP_VERSION_PATCH;
   p->host.struct_size = (uint32_t)sizeof p->host;
   p->host.name = HOST_NAME;
   p->host.vendor = "hdp";
   p->host.version = HOST_VERSION;
   p->host.host_data = p;
   p->host.get_extension = core_get_extension;
   p->host.log = core_log;
   p->host.log_enabled = core_log_enabled;
   p->host.wall_clock_us = core_wall_clock_us;
   p->host.monotonic_clock_us = core_monotonic_clock_us;
   p->host.request_main_thread_callback = core_request_main_thread_callback;
   p->host.get_config = core_get_config;
   p->host.get_data_dir = core_get_data_dir;

   if (!entry->init(path)) {
      refuse(path, "entry init returned false");
      return false;
   }
   p->state = PLUGIN_ENTRY_READY;
   plugin = entry->create_plugin(&p->host);
   if (plugin == NULL) {
      entry->deinit();
      refuse(path, "create_plugin returned NULL");
      return false;
   }
   if (plugin->struct_size < HDP_PLUGIN_V1_SIZE) {
      /* Nothing in a table this small can be trusted, not even destroy. */
      entry->deinit();
      refuse(path, "plugin struct_size %" PRIu32 " is below the version-1 size %zu",
             plugin->struct_size, (size_t)HDP_PLUGIN_V1_SIZE);
      return false;
   }
   p->plugin = plugin;
   p->state = PLUGIN_CREATED;
   if (plugin->init == NULL || plugin->start == NULL || plugin->stop == NULL ||
       plugin->destroy == NULL) {
      if (plugin->destroy != NULL) {
         plugin->destroy(plugin);
      }
      entry->deinit();
      p->state = PLUGIN_DESTROYED;
      refuse(path, "plugin %s is NULL",
             plugin->init == NULL    ? "init"
             : plugin->start == NULL ? "start"
             : plugin->stop == NULL  ? "stop"
                                     : "destroy");
      return false;
   }
   status = plugin->init(plugin);
   if (status != HDP_OK) {
      plugin->destroy(plugin);
      entry->deinit();
      p->state = PLUGIN_DESTROYED;
      refuse(path, "plugin init failed with status %" PRId32 " (%s)", status, status_name(status));
      return false;
   }
   p->state = PLUGIN_INITIALIZED;
   host_log(HDP_LOG_INFO, "loaded %s %s (%s) from %s", entry->id, entry->version, entry->name,
            path);
   return true;
}

/* Cancels everything the plugin registered and fails its pending work, in the ABI's order:
 * routes and new requests first, then timers and fd watches, then pending answers, then jobs. */
static void cancel_plugin_work(loaded_plugin_t *p) {
   size_t i;
   for (i = 0; i < g_host.routes.len; ++i) {
      http_route_t *route = (http_route_t *)g_host.routes.items[i];
      if (route->owner == p) {
         route->dead = true;
      }
   }
   for (i = 0; i < g_host.timers.len; ++i) {
      host_timer_t *timer = (host_timer_t *)g_host.timers.items[i];
      if (!timer->dead && timer->owner == p) {
         timer_kill(timer);
      }
   }
   for (i = 0; i < g_host.fd_watches.len; ++i) {
      fd_watch_t *watch = (fd_watch_t *)g_host.fd_watches.items[i];
      if (watch->owner == p) {
         watch->dead = true;
      }
   }
   for (i = 0; i < g_host.conns.len; ++i) {
      http_conn_t *conn = (http_conn_t *)g_host.conns.items[i];
      if (conn->state == CONN_WAIT_PLUGIN && conn->owner == p) {
         conn_fail_pending(conn, 503, "the host is shutting down");
      }
   }
   /* Queued message operations are applied, not dropped, then cancelled before stop: a stopping
    * plugin hears only cancellations. */
   apply_message_ops();
   for (i = 0; i < g_host.message_ops.len; ++i) {
      message_op_t *op = (message_op_t *)g_host.message_ops.items[i];
      if (!op->dead && op->owner == p) {
         op->status = HDP_ERR_CANCELLED;
         complete_message_op(op);
      }
   }
   for (i = 0; i < g_host.jobs.len; ++i) {
      attach_job_t *job = (attach_job_t *)g_host.jobs.items[i];
      if (!job->dead && job->owner == p) {
         complete_job(job, HDP_ERR_CANCELLED, 0, 0);
      }
   }
}

static void destroy_plugin(loaded_plugin_t *p) {
   if (p->plugin != NULL && p->state != PLUGIN_DESTROYED) {
      p->plugin->destroy(p->plugin);
      p->entry->deinit();
      p->state = PLUGIN_DESTROYED;
   }
}

static bool start_plugin(loaded_plugin_t *p) {
   hdp_status_t status;
   p->state = PLUGIN_STARTING;
   status = p->plugin->start(p->plugin);
   if (status != HDP_OK) {
      p->state = PLUGIN_STOPPING;
      cancel_plugin_work(p);
      destroy_plugin(p); /* a failed start gets no stop */
      refuse(p->path, "plugin start failed with status %" PRId32 " (%s)", status,
             status_name(status));
      return false;
   }
   p->state = PLUGIN_STARTED;
   return true;
}

/* The ABI's shutdown: stop new requests, cancel timers and fds, fail pending work, stop, destroy,
 * deinit; plugins in reverse load order. */
static void stop_plugins(void) {
   size_t i = g_host.plugins.len;
   run_main_thread_calls(true);
   if (g_host.listen_fd >= 0) {
      close(g_host.listen_fd);
      g_host.listen_fd = -1;
   }
   while (i-- > 0) {
      loaded_plugin_t *p = (loaded_plugin_t *)g_host.plugins.items[i];
      if (p->state == PLUGIN_STARTED) {
         p->state = PLUGIN_STOPPING;
         cancel_plugin_work(p);
         p->plugin->stop(p->plugin);
         p->state = PLUGIN_STOPPED;
      }
      destroy_plugin(p);
   }
}

/* ---- the loop -------------------------------------------------------------------------------- */

static bool conn_is_dead(const void *item) {
   return ((const http_conn_t *)item)->state == CONN_DEAD;
}

static void free_conn(void *item) {
   http_conn_t *conn = (http_conn_t *)item;
   close(conn->fd);
   free(conn->in);
   free(conn->out);
   free(conn);
}

static bool timer_is_dead(const void *item) {
   return ((const host_timer_t *)item)->dead;
}

static bool watch_is_dead(const void *item) {
   return ((const fd_watch_t *)item)->dead;
}

static bool route_is_dead(const void *item) {
   return ((const http_route_t *)item)->dead;
}

static void free_route(void *item) {
   http_route_t *route = (http_route_t *)item;
   free(route->method);
   free(route->path);
   free(route);
}

static bool job_is_dead(const void *item) {
   return ((const attach_job_t *)item)->dead;
}

static void sweep(void) {
   vec_sweep(&g_host.conns, conn_is_dead, free_conn);
   vec_sweep(&g_host.timers, timer_is_dead, free);
   vec_sweep(&g_host.fd_watches, watch_is_dead, free);
   vec_sweep(&g_host.routes, route_is_dead, free_route);
   vec_sweep(&g_host.jobs, job_is_dead, free_job);
   vec_sweep(&g_host.message_ops, message_op_is_dead, free_message_op);
}

static void dispatch_fd_events(const struct pollfd *pfds, fd_watch_t *const *watches,
                               size_t count) {
   size_t i;
   for (i = 0; i < count; ++i) {
      fd_watch_t *watch = watches[i];
      uint32_t flags = 0;
      if (pfds[i].revents == 0 || watch->dead) {
         continue;
      }
      if ((pfds[i].revents & (POLLIN | POLLHUP)) != 0) {
         flags |= HDP_FD_READ;
      }
      if ((pfds[i].revents & POLLOUT) != 0) {
         flags |= HDP_FD_WRITE;
      }
      if ((pfds[i].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
         flags |= HDP_FD_ERROR;
      }
      flags &= watch->flags | HDP_FD_ERROR; /* interest may have changed during this turn */
      if (flags != 0) {
         watch->callback(watch->user_data, watch->fd, flags);
      }
   }
}

static int poll_timeout_ms(int64_t run_deadline_us) {
   int64_t now = monotonic_us();
   int64_t next = now + 60 * 1000000;
   size_t i;
   if (has_runnable_jobs() || has_pending_message_ops()) {
      return 0;
   }
   for (i = 0; i < g_host.timers.len; ++i) {
      const host_timer_t *timer = (const host_timer_t *)g_host.timers.items[i];
      if (!timer->dead && timer->due_us < next) {
         next = timer->due_us;
      }
   }
   for (i = 0; i < g_host.conns.len; ++i) {
      const http_conn_t *conn = (const http_conn_t *)g_host.conns.items[i];
      if (conn->state != CONN_DEAD && conn->deadline_us < next) {
         next = conn->deadline_us;
      }
   }
   if (run_deadline_us >= 0 && run_deadline_us < next) {
      next = run_deadline_us;
   }
   if (next <= now) {
      return 0;
   }
   return (int)((next - now + 999) / 1000);
}

static int run_loop(void) {
   int64_t run_deadline_us =
       g_host.options.run_ms >= 0 ? monotonic_us() + g_host.options.run_ms * 1000 : -1;
   struct pollfd *pfds = NULL;
   void **owners = NULL;
   size_t capacity = 0;
   int exit_code = 0;

   while (!g_signalled) {
      size_t count = 2;
      size_t conn_start;
      size_t watch_start;
      size_t i;
      int ready;

      sweep();
      if (run_deadline_us >= 0 && monotonic_us() >= run_deadline_us) {
         host_log(HDP_LOG_INFO, "--run-ms elapsed");
         break;
      }
      if (capacity < 2 + g_host.conns.len + g_host.fd_watches.len) {
         size_t want = 2 + g_host.conns.len + g_host.fd_watches.len + 16;
         struct pollfd *grown_pfds = (struct pollfd *)realloc(pfds, want * sizeof *pfds);
         void **grown_owners;
         if (grown_pfds == NULL) {
            exit_code = 1;
            break;
         }
         pfds = grown_pfds;
         grown_owners = (void **)realloc(owners, want * sizeof *owners);
         if (grown_owners == NULL) {
            exit_code = 1;
            break;
         }
         owners = grown_owners;
         capacity = want;
      }
      pfds[0].fd = g_host.wake_pipe[0];
      pfds[0].events = POLLIN;
      pfds[1].fd = g_host.listen_fd;
      pfds[1].events = POLLIN;
      conn_start = count;
      for (i = 0; i < g_host.conns.len; ++i) {
         http_conn_t *conn = (http_conn_t *)g_host.conns.items[i];
         pfds[count].fd = conn->fd;
         pfds[count].events = conn->state == CONN_WRITE ? POLLOUT : POLLIN;
         owners[count++] = conn;
      }
      watch_start = count;
      for (i = 0; i < g_host.fd_watches.len; ++i) {
         fd_watch_t *watch = (fd_watch_t *)g_host.fd_watches.items[i];
         /* A paused watch (flags 0) is left out so that a hung-up fd cannot spin the loop. */
         pfds[count].fd = watch->flags != 0 ? watch->fd : -1;
         pfds[count].events = (short)(((watch->flags & HDP_FD_READ) != 0 ? POLLIN : 0) |
                                      ((watch->flags & HDP_FD_WRITE) != 0 ? POLLOUT : 0));
         owners[count++] = watch;
      }
      for (i = 0; i < count; ++i) {
         pfds[i].revents = 0;
      }

      ready = poll(pfds, (nfds_t)count, poll_timeout_ms(run_deadline_us));
      if (ready < 0 && errno != EINTR) {
         host_log(HDP_LOG_ERROR, "poll failed: %s", strerror(errno));
         exit_code = 1;
         break;
      }
      if (ready > 0 && (pfds[0].revents & POLLIN) != 0) {
         char drain[256];
         while (read(g_host.wake_pipe[0], drain, sizeof drain) > 0) {
         }
      }
      if (g_signalled) {
         break;
      }
      run_main_thread_calls(false);
      if (ready > 0) {
         if ((pfds[1].revents & POLLIN) != 0) {
            accept_connections();
         }
         for (i = conn_start; i < watch_start; ++i) {
            http_conn_t *conn = (http_conn_t *)owners[i];
            if (pfds[i].revents == 0) {
               continue;
            }
            if (conn->state == CONN_WRITE) {
               conn_on_writable(conn);
            } else {
               conn_on_readable(conn);
            }
         }
         dispatch_fd_events(pfds + watch_start, (fd_watch_t *const *)(owners + watch_start),
                            count - watch_start);
      }
      /* A response queued by a callback in this turn goes out without another poll round. */
      for (i = 0; i < g_host.conns.len; ++i) {
         http_conn_t *conn = (http_conn_t *)g_host.conns.items[i];
         if (conn->state == CONN_WRITE && conn->out_off == 0) {
            conn_on_writable(conn);
         }
      }
      fire_due_timers();
      run_jobs();
      run_message_ops();
      expire_connections();
   }
   if (g_signalled) {
      host_log(HDP_LOG_INFO, "signal received; shutting down");
   }
   free(pfds);
   free(owners);
   return exit_code;
}

/* Sends what is queued (the 503s of the shutdown) for up to a second, then closes everything. */
static void flush_connections(void) {
   int64_t deadline = monotonic_us() + 1000000;
   for (;;) {
      bool writing = false;
      size_t i;
      for (i = 0; i < g_host.conns.len; ++i) {
         http_conn_t *conn = (http_conn_t *)g_host.conns.items[i];
         if (conn->state == CONN_WRITE) {
            struct pollfd pfd;
            pfd.fd = conn->fd;
            pfd.events = POLLOUT;
            pfd.revents = 0;
            if (poll(&pfd, 1, 10) > 0) {
               conn_on_writable(conn);
            }
            writing = writing || conn->state == CONN_WRITE;
         }
      }
      if (!writing || monotonic_us() >= deadline) {
         break;
      }
   }
   for (size_t i = 0; i < g_host.conns.len; ++i) {
      ((http_conn_t *)g_host.conns.items[i])->state = CONN_DEAD;
   }
}

/* ---- setup and teardown ---------------------------------------------------------------------- */

static void on_signal(int signo) {
   (void)signo;
   g_signalled = 1;
   wake_loop();
}

static int open_listener(const char *listen_spec) {
   char host_part[256];
   const char *colon = strrchr(listen_spec, ':');
   const char *port_part;
   struct addrinfo hints;
   struct addrinfo *result = NULL;
   size_t host_len;
   int fd = -1;
   int one = 1;
   if (colon == NULL || (size_t)(colon - listen_spec) >= sizeof host_part) {
      host_log(HDP_LOG_ERROR, "--listen expects ADDR:PORT, got %s", listen_spec);
      return -1;
   }
   host_len = (size_t)(colon - listen_spec);
   if (host_len >= 2 && listen_spec[0] == '[' && listen_spec[host_len - 1] == ']') {
      memcpy(host_part, listen_spec + 1, host_len - 2);
      host_part[host_len - 2] = '\0';
   } else {
      memcpy(host_part, listen_spec, host_len);
      host_part[host_len] = '\0';
   }
   port_part = colon + 1;
   memset(&hints, 0, sizeof hints);
   hints.ai_family = AF_UNSPEC;
   hints.ai_socktype = SOCK_STREAM;
   hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
   if (getaddrinfo(host_part, port_part, &hints, &result) != 0 || result == NULL) {
      host_log(HDP_LOG_ERROR, "cannot parse --listen %s", listen_spec);
      return -1;
   }
   fd = socket(result->ai_family, result->ai_socktype, result->ai_protocol);
   if (fd >= 0) {
      (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (bind(fd, result->ai_addr, result->ai_addrlen) != 0 || listen(fd, 64) != 0) {
         host_log(HDP_LOG_ERROR, "cannot listen on %s: %s", listen_spec, strerror(errno));
         close(fd);
         fd = -1;
      } else {
         set_nonblocking_cloexec(fd);
      }
   }
   freeaddrinfo(result);
   return fd;
}

static bool write_port_file(const char *path, int listen_fd) {
   struct sockaddr_storage addr;
   socklen_t len = sizeof addr;
   char tmp[4096];
   unsigned port;
   FILE *file;
   if (getsockname(listen_fd, (struct sockaddr *)&addr, &len) != 0) {
      return false;
   }
   port = addr.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&addr)->sin6_port)
                                     : ntohs(((struct sockaddr_in *)&addr)->sin_port);
   host_log(HDP_LOG_INFO, "listening on port %u", port);
   if (path == NULL) {
      return true;
   }
   snprintf(tmp, sizeof tmp, "%s.tmp", path);
   file = fopen(tmp, "w");
   if (file == NULL) {
      return false;
   }
   fprintf(file, "%u\n", port);
   if (fclose(file) != 0) {
      return false;
   }
   return rename(tmp, path) == 0; /* readers never see a half-written file */
}

static void free_message(void *item) {
   call_message_t *m = (call_message_t *)item;
   free(m->external_key);
   free(m->inbox);
   free(m->contact);
   free(m->call_status);
   free(m->reason);
   free(m);
}

static void free_attachment(void *item) {
   stored_attachment_t *a = (stored_attachment_t *)item;
   free(a->idempotency_key);
   free(a->stored_path);
   free(a);
}

static bool always_dead(const void *item) {
   (void)item;
   return true;
}

static void free_everything(void) {
   vec_sweep(&g_host.conns, always_dead, free_conn);
   vec_sweep(&g_host.timers, always_dead, free);
   vec_sweep(&g_host.fd_watches, always_dead, free);
   vec_sweep(&g_host.routes, always_dead, free_route);
   vec_sweep(&g_host.jobs, always_dead, free_job);
   vec_sweep(&g_host.message_ops, always_dead, free_message_op);
   vec_sweep(&g_host.messages, always_dead, free_message);
   vec_sweep(&g_host.attachments, always_dead, free_attachment);
   vec_sweep(&g_host.plugins, always_dead, free_plugin);
   free(g_host.conns.items);
   free(g_host.timers.items);
   free(g_host.fd_watches.items);
   free(g_host.routes.items);
   free(g_host.jobs.items);
   free(g_host.message_ops.items);
   free(g_host.messages.items);
   free(g_host.attachments.items);
   free(g_host.plugins.items);
   run_main_thread_calls(true); /* frees anything queued after the loop ended */
   if (g_host.own_data_dir) {
      (void)nftw(g_host.data_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
   }
   free(g_host.data_dir);
   free(g_host.attachments_dir);
   close(g_host.wake_pipe[0]);
   close(g_host.wake_pipe[1]);
}

static void usage(FILE *out) {
   fputs("usage: hdp-c-host [--listen ADDR:PORT] [--port-file F] [--data-dir D] [--run-ms N]\n"
         "                  [--log-level trace|debug|info|warning|error]\n"
         "                  [--disable-extension ID]... --plugin P [--plugin-config-json S] ...\n",
         out);
}

static bool parse_args(int argc, char **argv, host_options_t *options) {
   int i;
   options->listen = "127.0.0.1:0";
   options->run_ms = -1;
   for (i = 1; i < argc; ++i) {
      const char *arg = argv[i];
      const char *value = i + 1 < argc ? argv[i + 1] : NULL;
      if (strcmp(arg, "--help") == 0) {
         usage(stdout);
         exit(0);
      }
      if (value == NULL) {
         fprintf(stderr, HOST_NAME ": %s needs a value\n", arg);
         return false;
      }
      ++i;
      if (strcmp(arg, "--listen") == 0) {
         options->listen = value;
      } else if (strcmp(arg, "--port-file") == 0) {
         options->port_file = value;
      } else if (strcmp(arg, "--data-dir") == 0) {
         options->data_dir = value;
      } else if (strcmp(arg, "--run-ms") == 0) {
         char *end = NULL;
         long long ms = strtoll(value, &end, 10);
         if (end == value || *end != '\0' || ms < 0 || ms > 86400000LL) {
            fprintf(stderr, HOST_NAME ": --run-ms expects 0..86400000\n");
            return false;
         }
         options->run_ms = (int64_t)ms;
      } else if (strcmp(arg, "--log-level") == 0) {
         static const char *const names[] = {"trace", "debug", "info", "warning", "error"};
         int32_t level;
         for (level = 0; level < 5 && strcmp(names[level], value) != 0; ++level) {
         }
         if (level == 5) {
            fprintf(stderr, HOST_NAME ": unknown --log-level %s\n", value);
            return false;
         }
         g_log_level = level;
      } else if (strcmp(arg, "--disable-extension") == 0) {
         if (options->disabled_count == sizeof options->disabled_extensions / sizeof(char *)) {
            return false;
         }
         options->disabled_extensions[options->disabled_count++] = value;
      } else if (strcmp(arg, "--plugin") == 0) {
         if (options->plugin_count == sizeof options->plugin_paths / sizeof(char *)) {
            return false;
         }
         options->plugin_paths[options->plugin_count++] = value;
      } else if (strcmp(arg, "--plugin-config-json") == 0) {
         if (options->plugin_count == 0) {
            fprintf(stderr,
                    HOST_NAME ": --plugin-config-json follows the --plugin it configures\n");
            return false;
         }
         options->plugin_configs[options->plugin_count - 1] = value;
      } else {
         fprintf(stderr, HOST_NAME ": unknown option %s\n", arg);
         return false;
      }
   }
   return true;
}

static bool setup_data_dir(void) {
   char path[4096];
   if (g_host.options.data_dir != NULL) {
      if (!mkdir_p(g_host.options.data_dir) || realpath(g_host.options.data_dir, path) == NULL) {
         host_log(HDP_LOG_ERROR, "cannot use data dir %s: %s", g_host.options.data_dir,
                  strerror(errno));
         return false;
      }
   } else {
      char tmpl[] = "/tmp/hdp-c-host.XXXXXX";
      if (mkdtemp(tmpl) == NULL) {
         host_log(HDP_LOG_ERROR, "cannot create a temporary data dir: %s", strerror(errno));
         return false;
      }
      memcpy(path, tmpl, sizeof tmpl);
      g_host.own_data_dir = true;
   }
   g_host.data_dir = str_dup(path);
   snprintf(path, sizeof path, "%s/attachments", g_host.data_dir);
   g_host.attachments_dir = str_dup(path);
   if (g_host.data_dir == NULL || g_host.attachments_dir == NULL || !mkdir_p(path)) {
      host_log(HDP_LOG_ERROR, "cannot create %s", path);
      return false;
   }
   return true;
}

int main(int argc, char **argv) {
   struct sigaction action;
   int exit_code = 0;
   size_t i;

   g_host.listen_fd = -1;
   g_host.wake_pipe[0] = g_host.wake_pipe[1] = -1;
   if (!parse_args(argc, argv, &g_host.options)) {
      usage(stderr);
      return 1;
   }
   if (pthread_mutex_init(&g_host.calls_mutex, NULL) != 0 || pipe(g_host.wake_pipe) != 0) {
      host_log(HDP_LOG_ERROR, "cannot set up the loop: %s", strerror(errno));
      return 1;
   }
   set_nonblocking_cloexec(g_host.wake_pipe[0]);
   set_nonblocking_cloexec(g_host.wake_pipe[1]);
   memset(&action, 0, sizeof action);
   action.sa_handler = on_signal;
   sigemptyset(&action.sa_mask);
   sigaction(SIGTERM, &action, NULL);
   sigaction(SIGINT, &action, NULL);
   action.sa_handler = SIG_IGN;
   sigaction(SIGPIPE, &action, NULL);

   if (!setup_data_dir()) {
      free_everything();
      return 1;
   }

   /* Every plugin is loaded and initialized, then every plugin is started; any refusal stops the
    * ones already running and exits 2 before anything is served. */
   for (i = 0; i < g_host.options.plugin_count && exit_code == 0; ++i) {
      if (!load_plugin(g_host.options.plugin_paths[i], g_host.options.plugin_configs[i])) {
         exit_code = 2;
      }
   }
   for (i = 0; i < g_host.plugins.len && exit_code == 0; ++i) {
      if (!start_plugin((loaded_plugin_t *)g_host.plugins.items[i])) {
         exit_code = 2;
      }
   }
   if (exit_code == 0) {
      g_host.listen_fd = open_listener(g_host.options.listen);
      if (g_host.listen_fd < 0) {
         exit_code = 1;
      } else if (!write_port_file(g_host.options.port_file, g_host.listen_fd)) {
         host_log(HDP_LOG_ERROR, "cannot write the port file %s", g_host.options.port_file);
         exit_code = 1;
      }
   }
   if (exit_code == 0) {
      exit_code = run_loop();
   }
   stop_plugins();
   flush_connections();
   host_log(HDP_LOG_INFO, "exiting with status %d", exit_code);
   free_everything();
   pthread_mutex_destroy(&g_host.calls_mutex);
   return exit_code;
}
