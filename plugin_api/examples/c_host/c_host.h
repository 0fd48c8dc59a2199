/* c_host.h - what the files of hdp-c-host share: limits, the host's state, and the functions one
 * file calls in another. Read c_host.c first (the loop); each extension has its own file. */
#ifndef HDP_C_HOST_H
#define HDP_C_HOST_H

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

typedef struct ptr_vec {
  void** items;
  size_t len;
  size_t cap;
} ptr_vec_t;

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
  char* path;
  void* handle;
  const hdp_plugin_entry_t* entry;
  hdp_host_t host; /* this plugin's own table; host_data points back here */
  const hdp_plugin_t* plugin;
  plugin_state_t state;
  char* config;
  size_t config_len;
  char* data_dir;
  uint32_t timer_count;
} loaded_plugin_t;

/* ---- the host's state ------------------------------------------------------------------------ */

typedef struct host_timer {
  uint64_t id;
  loaded_plugin_t* owner;
  int64_t due_us;
  uint64_t period_ms;
  hdp_timer_callback_t callback;
  void* user_data;
  uint64_t armed_turn; /* fires only in a later turn than the one that armed it */
  bool dead;
} host_timer_t;

typedef struct fd_watch {
  loaded_plugin_t* owner;
  int fd;
  uint32_t flags;
  hdp_fd_callback_t callback;
  void* user_data;
  bool dead;
} fd_watch_t;

typedef struct http_route {
  uint64_t id;
  loaded_plugin_t* owner;
  char* method;
  char* path;
  uint32_t match;
  uint64_t max_body_bytes;
  uint64_t deferred_timeout_ms;
  hdp_http_request_callback_t on_request;
  hdp_http_cancel_callback_t on_cancel;
  void* user_data;
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
  char* in;
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
  loaded_plugin_t* owner;
  hdp_http_cancel_callback_t on_cancel;
  void* cancel_user_data;
  char* out;
  size_t out_len;
  size_t out_off;
} http_conn_t;

typedef struct call_message {
  uint64_t id;
  loaded_plugin_t* owner;
  char* external_key;
  char* inbox;
  char* contact;
  int32_t direction;
  char* call_status;
  int64_t duration_s;
  int32_t recording_status;
  char* reason;
  char* detail;     /* hdp.messages/3; "" after a /1 or /2 write */
  char* retry_path; /* hdp.messages/3; "" after a /1 or /2 write */
} call_message_t;

typedef struct stored_attachment {
  uint64_t id;
  loaded_plugin_t* owner;
  uint64_t message_id;
  char* idempotency_key;
  char* stored_path;
} stored_attachment_t;

typedef struct attach_job {
  uint64_t id;
  loaded_plugin_t* owner;
  uint64_t message_id;
  char* file_path;
  char* file_name;
  char* mime_type;
  char* idempotency_key;
  hdp_attachment_callback_t callback;
  void* user_data;
  bool dead;
} attach_job_t;

/* A hdp.messages/2 operation: the arguments copied, applied at the end of the turn (or earlier,
 * before a /1 call), then completed. */
typedef struct message_op {
  uint64_t id;
  loaded_plugin_t* owner;
  bool is_upsert;
  char* external_key;
  char* inbox;
  char* contact;
  char* call_status; /* NULL = unchanged */
  int32_t direction;
  int64_t duration_s;
  uint64_t message_id; /* set_recording_status: the target; both: the result */
  int32_t recording_status;
  char* reason;
  char* detail;     /* "" for a /2 operation */
  char* retry_path; /* "" for a /2 operation */
  hdp_message_callback_t callback;
  void* user_data;
  bool applied;
  hdp_status_t status;
  bool dead;
} message_op_t;

typedef struct main_thread_call {
  struct main_thread_call* next;
  loaded_plugin_t* owner;
  hdp_main_thread_callback_t callback;
  void* user_data;
} main_thread_call_t;

typedef struct host_options {
  const char* listen;
  const char* port_file;
  const char* data_dir;
  int64_t run_ms; /* < 0: run until a signal */
  const char* disabled_extensions[8];
  size_t disabled_count;
  const char* plugin_paths[32];
  const char* plugin_configs[32];
  size_t plugin_count;
} host_options_t;

typedef struct host {
  host_options_t options;
  char* data_dir;
  bool own_data_dir; /* made by us with mkdtemp; removed at exit */
  char* attachments_dir;
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
  main_thread_call_t* calls_head;
  main_thread_call_t* calls_tail;
  bool calls_closed;
} host_t;

extern host_t g_host;
extern volatile sig_atomic_t g_signalled;

/* util.c: small utilities and logging */
extern int32_t g_log_level;
bool vec_push(ptr_vec_t* vec, void* item);
void vec_sweep(ptr_vec_t* vec, bool (*is_dead)(const void*), void (*free_item)(void*));
char* str_dup(const char* text);
int64_t monotonic_us(void);
int64_t wall_us(void);
void set_nonblocking_cloexec(int fd);
bool mkdir_p(const char* path);
int remove_entry(const char* path, const struct stat* st, int type, struct FTW* ftw);
int32_t clamp_level(int32_t level);
void log_line(int32_t level, const char* source, const char* message);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void host_log(int32_t level, const char *fmt, ...);
loaded_plugin_t* plugin_of(const hdp_host_t* host);
bool may_register(const loaded_plugin_t* p);
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void plugin_log(const loaded_plugin_t *p, int32_t level, const char *fmt, ...);
void wake_loop(void);

/* core.c: the core host table (hdp_host_t), main-thread calls, get_extension */
void core_log(const hdp_host_t* host, int32_t level, const char* message);
bool core_log_enabled(const hdp_host_t* host, int32_t level);
int64_t core_wall_clock_us(const hdp_host_t* host);
int64_t core_monotonic_clock_us(const hdp_host_t* host);
hdp_status_t core_request_main_thread_callback(const hdp_host_t* host, hdp_main_thread_callback_t callback,
                                               void* user_data);
void core_get_config(const hdp_host_t* host, const uint8_t** out_data, size_t* out_size);
const char* core_get_data_dir(const hdp_host_t* host);
void run_main_thread_calls(bool close_queue);
const void* core_get_extension(const hdp_host_t* host, const char* extension_id);

/* timers.c: hdp.timers/1 */
extern const hdp_host_timers_t g_timers_ext;
void timer_kill(host_timer_t* timer);
void fire_due_timers(void);

/* posix_fd.c: hdp.posix-fd/1 */
extern const hdp_host_posix_fd_t g_posix_fd_ext;

/* http.c: hdp.http/1, routes and the HTTP/1.0 connections */
extern const hdp_host_http_t g_http_ext;
void conn_fail_pending(http_conn_t* conn, int status, const char* text);
void conn_on_readable(http_conn_t* conn);
void conn_on_writable(http_conn_t* conn);
void accept_connections(void);
void expire_connections(void);

/* messages.c: hdp.messages/1 and hdp.messages/2 */
extern const hdp_host_messages2_t g_messages2_ext;
extern const hdp_host_messages3_t g_messages3_ext;
extern const hdp_host_messages_t g_messages_ext;
bool key_ok(const char* key);
call_message_t* find_message(const loaded_plugin_t* p, uint64_t id);
void free_message_op(void* item);
bool message_op_is_dead(const void* item);
void apply_message_ops(void);
void complete_message_op(message_op_t* op);
void run_message_ops(void);
bool has_pending_message_ops(void);

/* attachments.c: hdp.attachments/1 and its jobs */
extern const hdp_host_attachments_t g_attachments_ext;
void free_job(void* item);
void complete_job(attach_job_t* job, hdp_status_t status, uint64_t attachment_id, uint32_t already_attached);
void run_jobs(void);
bool has_runnable_jobs(void);

/* plugins.c: loading, refusing, starting and stopping plugins */
void free_plugin(void* item);
bool load_plugin(const char* path, const char* config);
bool start_plugin(loaded_plugin_t* p);
void stop_plugins(void);

#endif /* HDP_C_HOST_H */
