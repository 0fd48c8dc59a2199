/* example_plugin.c - the reference plugin of the hdp ABI, in plain C99.
 *
 * It touches every part of the ABI a real plugin uses, and nothing else:
 *   GET  /example/hello          200 "hello from example"
 *   POST /example/echo           the body back, byte for byte
 *   POST /example/tick?ms=N      arms a one-shot timer; the deferred answer is
 *                                {"fired_after_ms": N} measured on the host's monotonic clock
 *   GET  /example/stats          periodic timer ticks, bytes through the watched pipe, pending work
 *   POST /example/pipe           writes the body into a pipe whose read end is watched (posix-fd)
 *   POST /example/attach         upserts the message named by the body (its external key), writes
 *                                a small file into the data directory and attaches it with an
 *                                idempotency key; the deferred answer is the attachment result.
 *                                Message writes go through hdp.messages/2 (ABI 1.2: completed by a
 *                                callback, so the host can batch them) when the host offers it,
 *                                and through hdp.messages/1 otherwise.
 *
 * Every extension is optional: a missing one (NULL, or a table smaller than its version-1 size)
 * disables what needs it and is logged, so the plugin also runs in a host that offers nothing.
 *
 * Build variants (see CMakeLists.txt next to this file):
 *   default               built against the headers as they are (HDP_VERSION_INIT, sizeof)
 *   HDP_EXAMPLE_AS_V1_0   claims ABI 1.0.0 and exactly the version-1 struct sizes, and uses only
 *                         what 1.0 had (hdp.messages/1 even where /2 is offered)
 *   HDP_EXAMPLE_AS_V1_7   claims ABI 1.7.0 and larger entry and plugin structs, as a plugin built
 *                         against a future minor would; an older host must still load it */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdp/hdp.h>

#if defined(HDP_EXAMPLE_AS_V1_0) && defined(HDP_EXAMPLE_AS_V1_7)
#error "define at most one of HDP_EXAMPLE_AS_V1_0 and HDP_EXAMPLE_AS_V1_7"
#endif

#define EXAMPLE_ID "org.hdp.example"
#define EXAMPLE_PERIOD_MS 20u
#define EXAMPLE_MAX_TICK_MS 20000u
#define EXAMPLE_TICK_TIMEOUT_MS 25000u
#define EXAMPLE_MAX_KEY_LEN 200u
#define EXAMPLE_ROUTE_COUNT 6

/* ---- what this build claims ------------------------------------------------------------------ */

#if defined(HDP_EXAMPLE_AS_V1_7)
/* Stand-ins for members a 1.7 header would append. A 1.0 host never reads them because they lie
 * beyond HDP_*_V1_SIZE; their presence only makes struct_size larger, as a newer build's would. */
typedef struct example_entry {
  hdp_plugin_entry_t v1;
  const char* homepage;
  uint64_t future_flags;
} example_entry_t;

typedef struct example_plugin_table {
  hdp_plugin_t v1;
  const void* (*future_query)(const hdp_plugin_t* plugin, uint32_t what);
  uint64_t future_flags;
} example_plugin_table_t;

#define EXAMPLE_ABI_VERSION \
  { 1u, 7u, 0u }
#define EXAMPLE_ENTRY_SIZE ((uint32_t)sizeof(example_entry_t))
#define EXAMPLE_PLUGIN_SIZE ((uint32_t)sizeof(example_plugin_table_t))
#define EXAMPLE_BUILD "ABI 1.7 (larger structs)"
#else
typedef struct example_entry {
  hdp_plugin_entry_t v1;
} example_entry_t;

typedef struct example_plugin_table {
  hdp_plugin_t v1;
} example_plugin_table_t;

#if defined(HDP_EXAMPLE_AS_V1_0)
#define EXAMPLE_ABI_VERSION \
  { 1u, 0u, 0u }
#define EXAMPLE_ENTRY_SIZE ((uint32_t)HDP_PLUGIN_ENTRY_V1_SIZE)
#define EXAMPLE_PLUGIN_SIZE ((uint32_t)HDP_PLUGIN_V1_SIZE)
#define EXAMPLE_BUILD "ABI 1.0 (version-1 sizes)"
#else
#define EXAMPLE_ABI_VERSION HDP_VERSION_INIT
#define EXAMPLE_ENTRY_SIZE ((uint32_t)sizeof(hdp_plugin_entry_t))
#define EXAMPLE_PLUGIN_SIZE ((uint32_t)sizeof(hdp_plugin_t))
#define EXAMPLE_BUILD "ABI as built"
#endif
#endif

/* ---- state ----------------------------------------------------------------------------------- */

struct example;

/* A POST /example/tick waiting for its one-shot timer. */
typedef struct example_tick {
  struct example_tick* next;
  struct example* ex;
  uint64_t request_id;
  uint64_t timer_id;
  uint64_t delay_ms;
  int64_t started_us;
} example_tick_t;

/* A POST /example/attach waiting for its message (hdp.messages/2) and then its attachment job.
 * request_id is 0 once the host cancelled the request; the work still completes and the file is
 * still removed. job_id is 0 while the message is being written. */
typedef struct example_attach_job {
  struct example_attach_job* next;
  struct example* ex;
  uint64_t request_id;
  uint64_t job_id;
  uint64_t message_id;
  char key[EXAMPLE_MAX_KEY_LEN + 1];
  char file_path[4096];
} example_attach_job_t;

typedef struct example {
  /* First member: the host holds &table.v1. */
  example_plugin_table_t table;
  const hdp_host_t* host;

  /* Extensions; NULL when the host does not offer them (or offers a table that is too small). */
  const hdp_host_timers_t* timers;
  const hdp_host_posix_fd_t* posix_fd;
  const hdp_host_http_t* http;
  const hdp_host_messages_t* messages;
  /* hdp.messages/2 when the host offers it (preferred), else NULL and messages is used. */
  const hdp_host_messages2_t* messages2;
  /* hdp.messages/3 when the host offers it (preferred over /2: the detail goes apart), else NULL. */
  const hdp_host_messages3_t* messages3;
  const hdp_host_attachments_t* attachments;

  uint64_t route_ids[EXAMPLE_ROUTE_COUNT];
  size_t route_count;

  uint64_t periodic_timer_id;
  uint64_t periodic_ticks;

  int pipe_read_fd;
  int pipe_write_fd;
  bool pipe_watched;
  uint64_t pipe_bytes_written;
  uint64_t pipe_bytes_read;

  uint64_t attach_counter;
  example_tick_t* ticks;
  example_attach_job_t* jobs;
} example_t;

static unsigned g_entry_init_count;

/* ---- small helpers --------------------------------------------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
example_log(const example_t* ex, int32_t level, const char* fmt, ...) {
  char line[512];
  va_list args;
  if (ex->host->log_enabled != NULL && !ex->host->log_enabled(ex->host, level)) {
    return;
  }
  va_start(args, fmt);
  vsnprintf(line, sizeof line, fmt, args);
  va_end(args);
  ex->host->log(ex->host, level, line);
}

static example_t* example_from(const hdp_plugin_t* plugin) {
  return (example_t*)plugin->plugin_data;
}

/* Returns the host's extension table, or NULL when it is missing or smaller than its version-1
 * size. Every extension table starts with its uint32_t struct_size. */
static const void* example_find_extension(const example_t* ex, const char* id, size_t v1_size) {
  const void* table = ex->host->get_extension(ex->host, id);
  uint32_t size;
  if (table == NULL) {
    example_log(ex, HDP_LOG_INFO, "host does not offer %s; what needs it is disabled", id);
    return NULL;
  }
  size = *(const uint32_t*)table;
  if (size < v1_size) {
    example_log(ex, HDP_LOG_WARNING,
                "host offers %s with struct_size %" PRIu32 " below its version-1 size %zu; not using it", id, size,
                v1_size);
    return NULL;
  }
  return table;
}

static void example_respond(const example_t* ex, uint64_t request_id, uint16_t status, const char* content_type,
                            const void* body, size_t body_len) {
  hdp_http_response_t response;
  hdp_status_t st;
  memset(&response, 0, sizeof response);
  response.struct_size = (uint32_t)sizeof response;
  response.status = status;
  response.content_type = content_type;
  response.body = (const uint8_t*)body;
  response.body_len = body_len;
  st = ex->http->respond(ex->host, request_id, &response);
  if (st != HDP_OK) {
    example_log(ex, HDP_LOG_WARNING, "answering request %" PRIu64 " failed with status %" PRId32, request_id, st);
  }
}

static void example_respond_text(const example_t* ex, uint64_t request_id, uint16_t status, const char* text) {
  example_respond(ex, request_id, status, "text/plain; charset=utf-8", text, strlen(text));
}

static void example_respond_json(const example_t* ex, uint64_t request_id, uint16_t status, const char* json) {
  example_respond(ex, request_id, status, "application/json", json, strlen(json));
}

/* Finds name=value in a raw query string and parses value as a decimal number. */
static bool example_query_u64(const char* query, size_t query_len, const char* name, uint64_t* out_value) {
  size_t name_len = strlen(name);
  size_t pos = 0;
  while (pos < query_len) {
    size_t end = pos;
    while (end < query_len && query[end] != '&') {
      ++end;
    }
    if (end - pos > name_len && memcmp(query + pos, name, name_len) == 0 && query[pos + name_len] == '=') {
      size_t i = pos + name_len + 1;
      uint64_t value = 0;
      if (i == end) {
        return false;
      }
      for (; i < end; ++i) {
        if (query[i] < '0' || query[i] > '9' || value > (UINT64_MAX - 9u) / 10u) {
          return false;
        }
        value = value * 10u + (uint64_t)(query[i] - '0');
      }
      *out_value = value;
      return true;
    }
    pos = end + 1;
  }
  return false;
}

/* ---- GET /example/hello, POST /example/echo, GET /example/stats ------------------------------ */

static void example_on_hello(void* user_data, const hdp_http_request_t* request) {
  example_respond_text((const example_t*)user_data, request->request_id, 200, "hello from example");
}

static void example_on_echo(void* user_data, const hdp_http_request_t* request) {
  example_respond((const example_t*)user_data, request->request_id, 200, "application/octet-stream", request->body,
                  request->body_len);
}

static void example_on_stats(void* user_data, const hdp_http_request_t* request) {
  const example_t* ex = (const example_t*)user_data;
  char json[512];
  size_t pending_ticks = 0;
  size_t pending_attachments = 0;
  const example_tick_t* tick;
  const example_attach_job_t* job;
  for (tick = ex->ticks; tick != NULL; tick = tick->next) {
    ++pending_ticks;
  }
  for (job = ex->jobs; job != NULL; job = job->next) {
    ++pending_attachments;
  }
  snprintf(json, sizeof json,
           "{\"periodic_ticks\":%" PRIu64 ",\"pipe_bytes_written\":%" PRIu64 ",\"pipe_bytes_read\":%" PRIu64
           ",\"pending_ticks\":%zu,\"pending_attachments\":%zu}",
           ex->periodic_ticks, ex->pipe_bytes_written, ex->pipe_bytes_read, pending_ticks, pending_attachments);
  example_respond_json(ex, request->request_id, 200, json);
}

/* ---- timers: the periodic counter and POST /example/tick ------------------------------------- */

static void example_on_periodic(void* user_data, uint64_t timer_id) {
  example_t* ex = (example_t*)user_data;
  (void)timer_id;
  ++ex->periodic_ticks;
}

static void example_unlink_tick(example_t* ex, const example_tick_t* tick) {
  example_tick_t** link = &ex->ticks;
  while (*link != NULL && *link != tick) {
    link = &(*link)->next;
  }
  if (*link != NULL) {
    *link = tick->next;
  }
}

static void example_on_tick_timer(void* user_data, uint64_t timer_id) {
  example_tick_t* tick = (example_tick_t*)user_data;
  example_t* ex = tick->ex;
  int64_t elapsed_us = ex->host->monotonic_clock_us(ex->host) - tick->started_us;
  char json[128];
  (void)timer_id;
  snprintf(json, sizeof json, "{\"fired_after_ms\": %" PRId64 "}", elapsed_us / 1000);
  example_log(ex, HDP_LOG_DEBUG, "tick request %" PRIu64 " fired after %" PRId64 " us", tick->request_id, elapsed_us);
  example_unlink_tick(ex, tick);
  example_respond_json(ex, tick->request_id, 200, json);
  free(tick);
}

static void example_on_tick(void* user_data, const hdp_http_request_t* request) {
  example_t* ex = (example_t*)user_data;
  example_tick_t* tick;
  uint64_t delay_ms = 0;
  hdp_status_t st;
  if (ex->timers == NULL) {
    example_respond_text(ex, request->request_id, 501, "this host offers no timers");
    return;
  }
  if (!example_query_u64(request->query, request->query_len, "ms", &delay_ms) || delay_ms > EXAMPLE_MAX_TICK_MS) {
    example_respond_text(ex, request->request_id, 400, "expected ?ms=N with N in 0..20000");
    return;
  }
  tick = (example_tick_t*)calloc(1, sizeof *tick);
  if (tick == NULL) {
    example_respond_text(ex, request->request_id, 500, "out of memory");
    return;
  }
  tick->ex = ex;
  tick->request_id = request->request_id;
  tick->delay_ms = delay_ms;
  tick->started_us = ex->host->monotonic_clock_us(ex->host);
  st = ex->timers->register_timer(ex->host, delay_ms, 0, example_on_tick_timer, tick, &tick->timer_id);
  if (st != HDP_OK) {
    free(tick);
    example_log(ex, HDP_LOG_ERROR, "arming a %" PRIu64 " ms timer failed with status %" PRId32, delay_ms, st);
    example_respond_text(ex, request->request_id, 500, "could not arm the timer");
    return;
  }
  tick->next = ex->ticks;
  ex->ticks = tick;
}

static void example_on_tick_cancel(void* user_data, uint64_t request_id) {
  example_t* ex = (example_t*)user_data;
  example_tick_t* tick;
  for (tick = ex->ticks; tick != NULL; tick = tick->next) {
    if (tick->request_id == request_id) {
      /* NOT_FOUND is fine: the host may already have cancelled it while stopping. */
      (void)ex->timers->cancel_timer(ex->host, tick->timer_id);
      example_unlink_tick(ex, tick);
      example_log(ex, HDP_LOG_INFO, "tick request %" PRIu64 " cancelled by the host", request_id);
      free(tick);
      return;
    }
  }
}

/* ---- posix-fd: POST /example/pipe ------------------------------------------------------------ */

static void example_on_pipe_readable(void* user_data, int fd, uint32_t flags) {
  example_t* ex = (example_t*)user_data;
  unsigned char buffer[4096];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n > 0) {
      ex->pipe_bytes_read += (uint64_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    break; /* EAGAIN: drained; 0: cannot happen while we hold the write end */
  }
  if ((flags & HDP_FD_ERROR) != 0) {
    example_log(ex, HDP_LOG_WARNING, "the watched pipe reported an error; unwatching it");
    (void)ex->posix_fd->unregister_fd(ex->host, fd);
    ex->pipe_watched = false;
  }
}

static void example_on_pipe(void* user_data, const hdp_http_request_t* request) {
  example_t* ex = (example_t*)user_data;
  char text[96];
  ssize_t n;
  if (!ex->pipe_watched) {
    example_respond_text(ex, request->request_id, 501, "this host offers no fd watches");
    return;
  }
  if (request->body_len == 0) {
    example_respond_text(ex, request->request_id, 400, "expected a non-empty body");
    return;
  }
  do {
    n = write(ex->pipe_write_fd, request->body, request->body_len);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    example_respond_text(ex, request->request_id, 503, "the pipe is full, try again");
    return;
  }
  ex->pipe_bytes_written += (uint64_t)n;
  snprintf(text, sizeof text, "wrote %zd bytes", n);
  example_respond_text(ex, request->request_id, 200, text);
}

static bool example_open_pipe(example_t* ex) {
  int fds[2];
  int i;
  if (pipe(fds) != 0) {
    example_log(ex, HDP_LOG_ERROR, "pipe() failed: %s", strerror(errno));
    return false;
  }
  for (i = 0; i < 2; ++i) {
    int fl = fcntl(fds[i], F_GETFL);
    (void)fcntl(fds[i], F_SETFL, fl | O_NONBLOCK);
    (void)fcntl(fds[i], F_SETFD, FD_CLOEXEC);
  }
  ex->pipe_read_fd = fds[0];
  ex->pipe_write_fd = fds[1];
  return true;
}

static void example_close_pipe(example_t* ex) {
  if (ex->pipe_watched) {
    /* NOT_FOUND is fine: the host cancels our watches before stop. */
    (void)ex->posix_fd->unregister_fd(ex->host, ex->pipe_read_fd);
    ex->pipe_watched = false;
  }
  if (ex->pipe_read_fd >= 0) {
    close(ex->pipe_read_fd);
    ex->pipe_read_fd = -1;
  }
  if (ex->pipe_write_fd >= 0) {
    close(ex->pipe_write_fd);
    ex->pipe_write_fd = -1;
  }
}

/* ---- messages + attachments: POST /example/attach -------------------------------------------- */

static void example_unlink_job(example_t* ex, const example_attach_job_t* job) {
  example_attach_job_t** link = &ex->jobs;
  while (*link != NULL && *link != job) {
    link = &(*link)->next;
  }
  if (*link != NULL) {
    *link = job->next;
  }
}

static void example_on_status_written(void* user_data, const hdp_message_result_t* result) {
  const example_t* ex = (const example_t*)user_data;
  if (result->status != HDP_OK) {
    example_log(ex, HDP_LOG_WARNING, "recording status of message %" PRIu64 " not written: %" PRId32,
                result->message_id, result->status);
  }
}

/* Shows the attachment on the message: through /3 (the detail apart) or /2 when offered (completes
 * later), else /1. */
static void example_set_attached(example_t* ex, uint64_t message_id) {
  static const char reason[] = "example attachment stored";
  if (ex->messages3 != NULL) {
    uint64_t op_id = 0;
    hdp_status_t st = ex->messages3->set_recording_status(ex->host, message_id, HDP_RECORDING_ATTACHED, reason,
                                                          "stored by the host's attachments table", NULL,
                                                          example_on_status_written, ex, &op_id);
    if (st != HDP_OK) {
      example_log(ex, HDP_LOG_WARNING, "set_recording_status failed with status %" PRId32, st);
    }
    return;
  }
  if (ex->messages2 != NULL) {
    uint64_t op_id = 0;
    hdp_status_t st = ex->messages2->set_recording_status(ex->host, message_id, HDP_RECORDING_ATTACHED, reason,
                                                          example_on_status_written, ex, &op_id);
    if (st != HDP_OK) {
      example_log(ex, HDP_LOG_WARNING, "set_recording_status failed with status %" PRId32, st);
    }
    return;
  }
  (void)ex->messages->set_recording_status(ex->host, message_id, HDP_RECORDING_ATTACHED, reason);
}

static void example_on_attached(void* user_data, const hdp_attachment_result_t* result) {
  example_attach_job_t* job = (example_attach_job_t*)user_data;
  example_t* ex = job->ex;
  char json[256];
  hdp_status_t status = HDP_ERR_INTERNAL;
  uint64_t attachment_id = 0;
  uint32_t already_attached = 0;
  if (result != NULL && result->struct_size >= HDP_ATTACHMENT_RESULT_V1_SIZE) {
    status = result->status;
    attachment_id = result->attachment_id;
    already_attached = result->already_attached;
  }
  /* The host has copied the file (or failed); it is ours to delete now. */
  (void)unlink(job->file_path);
  if (status == HDP_OK) {
    example_set_attached(ex, job->message_id);
  }
  example_log(ex, HDP_LOG_INFO, "attachment job %" PRIu64 " finished: status %" PRId32 ", attachment %" PRIu64 "%s",
              job->job_id, status, attachment_id, already_attached ? " (already attached)" : "");
  if (job->request_id != 0) {
    snprintf(json, sizeof json,
             "{\"status\":%" PRId32 ",\"job_id\":%" PRIu64 ",\"message_id\":%" PRIu64 ",\"attachment_id\":%" PRIu64
             ",\"already_attached\":%" PRIu32 "}",
             status, job->job_id, job->message_id, attachment_id, already_attached);
    example_respond_json(ex, job->request_id, status == HDP_OK ? 200 : 500, json);
  }
  example_unlink_job(ex, job);
  free(job);
}

static bool example_write_file(const char* path, const char* text) {
  FILE* file = fopen(path, "wb");
  bool ok;
  if (file == NULL) {
    return false;
  }
  ok = fputs(text, file) >= 0;
  ok = (fclose(file) == 0) && ok;
  return ok;
}

/* Fails a job that has no attachment job yet: answers its request and forgets it. */
static void example_fail_job(example_t* ex, example_attach_job_t* job, const char* text) {
  if (job->request_id != 0) {
    example_respond_text(ex, job->request_id, 500, text);
  }
  example_unlink_job(ex, job);
  free(job);
}

/* The message exists (job->message_id): write the file and attach it. The job is in ex->jobs. */
static void example_start_attachment(example_attach_job_t* job) {
  example_t* ex = job->ex;
  char idempotency_key[EXAMPLE_MAX_KEY_LEN + 16];
  char content[EXAMPLE_MAX_KEY_LEN + 64];
  hdp_attachment_t attachment;
  hdp_status_t st;

  ++ex->attach_counter;
  snprintf(job->file_path, sizeof job->file_path, "%s/attach-%" PRIu64 ".txt", ex->host->get_data_dir(ex->host),
           ex->attach_counter);
  snprintf(content, sizeof content, "example attachment for %s\n", job->key);
  if (!example_write_file(job->file_path, content)) {
    example_log(ex, HDP_LOG_ERROR, "writing %s failed: %s", job->file_path, strerror(errno));
    example_fail_job(ex, job, "could not write the file");
    return;
  }

  snprintf(idempotency_key, sizeof idempotency_key, "example:%s", job->key);
  memset(&attachment, 0, sizeof attachment);
  attachment.struct_size = (uint32_t)sizeof attachment;
  attachment.message_id = job->message_id;
  attachment.file_path = job->file_path;
  attachment.file_name = "example-attachment.txt";
  attachment.mime_type = "text/plain";
  attachment.idempotency_key = idempotency_key;
  st = ex->attachments->attach_file(ex->host, &attachment, example_on_attached, job, &job->job_id);
  if (st != HDP_OK) {
    (void)unlink(job->file_path);
    example_log(ex, HDP_LOG_ERROR, "attach_file failed with status %" PRId32, st);
    example_fail_job(ex, job, "could not start the attachment");
  }
}

static void example_on_message_written(void* user_data, const hdp_message_result_t* result) {
  example_attach_job_t* job = (example_attach_job_t*)user_data;
  example_t* ex = job->ex;
  hdp_status_t status =
      result != NULL && result->struct_size >= HDP_MESSAGE_RESULT_V1_SIZE ? result->status : HDP_ERR_INTERNAL;
  if (status != HDP_OK) {
    example_log(ex, HDP_LOG_ERROR, "upserting message %s failed with status %" PRId32, job->key, status);
    example_fail_job(ex, job, "could not upsert the message");
    return;
  }
  job->message_id = result->message_id;
  example_start_attachment(job);
}

static void example_on_attach(void* user_data, const hdp_http_request_t* request) {
  example_t* ex = (example_t*)user_data;
  char key[EXAMPLE_MAX_KEY_LEN + 1];
  hdp_call_message_t message;
  example_attach_job_t* job;
  hdp_status_t st;
  size_t i;

  if ((ex->messages == NULL && ex->messages2 == NULL && ex->messages3 == NULL) || ex->attachments == NULL) {
    example_respond_text(ex, request->request_id, 501, "this host offers no messages or attachments");
    return;
  }
  if (request->body_len == 0 || request->body_len > EXAMPLE_MAX_KEY_LEN) {
    example_respond_text(ex, request->request_id, 400, "expected an external key of 1..200 bytes");
    return;
  }
  for (i = 0; i < request->body_len; ++i) {
    if (request->body[i] < 0x21 || request->body[i] > 0x7e) {
      example_respond_text(ex, request->request_id, 400, "the key must be printable ASCII");
      return;
    }
  }
  memcpy(key, request->body, request->body_len);
  key[request->body_len] = '\0';

  memset(&message, 0, sizeof message);
  message.struct_size = (uint32_t)sizeof message;
  message.external_key = key;
  message.inbox = NULL;
  message.contact = "";
  message.direction = HDP_CALL_DIRECTION_UNKNOWN;
  message.call_status = NULL;
  message.duration_s = -1;

  job = (example_attach_job_t*)calloc(1, sizeof *job);
  if (job == NULL) {
    example_respond_text(ex, request->request_id, 500, "out of memory");
    return;
  }
  job->ex = ex;
  job->request_id = request->request_id;
  snprintf(job->key, sizeof job->key, "%s", key);
  if (ex->messages3 != NULL || ex->messages2 != NULL) {
    /* The message is written later; the attachment starts from the callback. */
    uint64_t op_id = 0;
    st = ex->messages3 != NULL ? ex->messages3->upsert_call_message(ex->host, &message, HDP_RECORDING_DOWNLOADING,
                                                                    "example attachment on its way", NULL, NULL,
                                                                    example_on_message_written, job, &op_id)
                               : ex->messages2->upsert_call_message(ex->host, &message, HDP_RECORDING_DOWNLOADING,
                                                                    "example attachment on its way",
                                                                    example_on_message_written, job, &op_id);
    if (st != HDP_OK) {
      free(job);
      example_log(ex, HDP_LOG_ERROR, "upserting message %s failed with status %" PRId32, key, st);
      example_respond_text(ex, request->request_id, 500, "could not upsert the message");
      return;
    }
    job->next = ex->jobs;
    ex->jobs = job;
    return;
  }
  st = ex->messages->upsert_call_message(ex->host, &message, &job->message_id);
  if (st != HDP_OK) {
    free(job);
    example_log(ex, HDP_LOG_ERROR, "upserting message %s failed with status %" PRId32, key, st);
    example_respond_text(ex, request->request_id, 500, "could not upsert the message");
    return;
  }
  job->next = ex->jobs;
  ex->jobs = job;
  example_start_attachment(job);
}

static void example_on_attach_cancel(void* user_data, uint64_t request_id) {
  example_t* ex = (example_t*)user_data;
  example_attach_job_t* job;
  for (job = ex->jobs; job != NULL; job = job->next) {
    if (job->request_id == request_id) {
      job->request_id = 0; /* the job still completes; nobody waits for the answer */
    }
  }
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static hdp_status_t example_init(const hdp_plugin_t* plugin) {
  example_t* ex = example_from(plugin);
  const uint8_t* config = NULL;
  size_t config_size = 0;
  ex->host->get_config(ex->host, &config, &config_size);
  example_log(ex, HDP_LOG_INFO,
              "init: %s, host %s %s (ABI %" PRIu32 ".%" PRIu32 ", table %" PRIu32
              " bytes), config %zu bytes, data dir %s",
              EXAMPLE_BUILD, ex->host->name, ex->host->version, ex->host->abi_version.major,
              ex->host->abi_version.minor, ex->host->struct_size, config_size, ex->host->get_data_dir(ex->host));

  ex->timers = (const hdp_host_timers_t*)example_find_extension(ex, HDP_EXT_TIMERS, HDP_HOST_TIMERS_V1_SIZE);
  ex->posix_fd = (const hdp_host_posix_fd_t*)example_find_extension(ex, HDP_EXT_POSIX_FD, HDP_HOST_POSIX_FD_V1_SIZE);
  ex->http = (const hdp_host_http_t*)example_find_extension(ex, HDP_EXT_HTTP, HDP_HOST_HTTP_V1_SIZE);
  ex->messages = (const hdp_host_messages_t*)example_find_extension(ex, HDP_EXT_MESSAGES, HDP_HOST_MESSAGES_V1_SIZE);
  ex->attachments =
      (const hdp_host_attachments_t*)example_find_extension(ex, HDP_EXT_ATTACHMENTS, HDP_HOST_ATTACHMENTS_V1_SIZE);
#if !defined(HDP_EXAMPLE_AS_V1_0)
  /* Optional since ABI 1.2; without it (an older host) the /1 table does the same work. */
  ex->messages2 = (const hdp_host_messages2_t*)ex->host->get_extension(ex->host, HDP_EXT_MESSAGES_V2);
  if (ex->messages2 != NULL && ex->messages2->struct_size < HDP_HOST_MESSAGES2_V1_SIZE) {
    ex->messages2 = NULL;
  }
  /* Optional since ABI 1.3; a 1.2 host offers /2 only. */
  ex->messages3 = (const hdp_host_messages3_t*)ex->host->get_extension(ex->host, HDP_EXT_MESSAGES_V3);
  if (ex->messages3 != NULL && ex->messages3->struct_size < HDP_HOST_MESSAGES3_V1_SIZE) {
    ex->messages3 = NULL;
  }
#endif
  if (ex->messages != NULL || ex->messages2 != NULL || ex->messages3 != NULL) {
    example_log(ex, HDP_LOG_INFO, "writes messages through %s",
                ex->messages3 != NULL   ? HDP_EXT_MESSAGES_V3
                : ex->messages2 != NULL ? HDP_EXT_MESSAGES_V2
                                        : HDP_EXT_MESSAGES);
  }
#if defined(HDP_EXAMPLE_AS_V1_7)
  /* A newer plugin asks for what only newer hosts offer, and copes with NULL. */
  (void)example_find_extension(ex, "hdp.example-future/1", sizeof(uint32_t));
#endif
  return HDP_OK;
}

static void example_register_route(example_t* ex, const char* method, const char* path, uint64_t max_body_bytes,
                                   uint64_t deferred_timeout_ms, hdp_http_request_callback_t on_request,
                                   hdp_http_cancel_callback_t on_cancel) {
  hdp_http_route_t route;
  uint64_t route_id = 0;
  hdp_status_t st;
  memset(&route, 0, sizeof route);
  route.struct_size = (uint32_t)sizeof route;
  route.method = method;
  route.path = path;
  route.match = HDP_HTTP_MATCH_EXACT;
  route.max_body_bytes = max_body_bytes;
  route.deferred_timeout_ms = deferred_timeout_ms;
  route.on_request = on_request;
  route.on_cancel = on_cancel;
  route.user_data = ex;
  /* Since 1.2. Nothing here is secret, so anyone may call it; a route for the helpdesk's agents
   * would say HDP_HTTP_ACCESS_AGENT and read request->agent_name. Older hosts ignore it. */
  route.access = HDP_HTTP_ACCESS_PUBLIC;
  st = ex->http->register_route(ex->host, &route, &route_id);
  if (st != HDP_OK) {
    example_log(ex, HDP_LOG_ERROR, "registering %s %s failed with status %" PRId32, method, path, st);
    return;
  }
  ex->route_ids[ex->route_count++] = route_id;
}

static hdp_status_t example_start(const hdp_plugin_t* plugin) {
  example_t* ex = example_from(plugin);
  if (ex->http != NULL) {
    example_register_route(ex, "GET", "/example/hello", 0, 0, example_on_hello, NULL);
    example_register_route(ex, "POST", "/example/echo", 64u * 1024u, 0, example_on_echo, NULL);
    example_register_route(ex, "POST", "/example/tick", 0, EXAMPLE_TICK_TIMEOUT_MS, example_on_tick,
                           example_on_tick_cancel);
    example_register_route(ex, "GET", "/example/stats", 0, 0, example_on_stats, NULL);
    example_register_route(ex, "POST", "/example/pipe", 4096u, 0, example_on_pipe, NULL);
    example_register_route(ex, "POST", "/example/attach", 1024u, 0, example_on_attach, example_on_attach_cancel);
  }
  if (ex->timers != NULL) {
    hdp_status_t st = ex->timers->register_timer(ex->host, EXAMPLE_PERIOD_MS, EXAMPLE_PERIOD_MS, example_on_periodic,
                                                 ex, &ex->periodic_timer_id);
    if (st != HDP_OK) {
      example_log(ex, HDP_LOG_ERROR, "arming the periodic timer failed with status %" PRId32, st);
      return st;
    }
  }
  if (ex->posix_fd != NULL) {
    hdp_status_t st;
    if (!example_open_pipe(ex)) {
      return HDP_ERR_IO;
    }
    st = ex->posix_fd->register_fd(ex->host, ex->pipe_read_fd, HDP_FD_READ, example_on_pipe_readable, ex);
    if (st != HDP_OK) {
      example_log(ex, HDP_LOG_ERROR, "watching the pipe failed with status %" PRId32, st);
      example_close_pipe(ex);
      return st;
    }
    ex->pipe_watched = true;
  }
  example_log(ex, HDP_LOG_INFO, "start: %zu routes, periodic timer %s, pipe %s", ex->route_count,
              ex->periodic_timer_id != 0 ? "armed" : "off", ex->pipe_watched ? "watched" : "off");
  return HDP_OK;
}

static void example_stop(const hdp_plugin_t* plugin) {
  example_t* ex = example_from(plugin);
  size_t i;
  size_t leftover_ticks = 0;
  size_t leftover_jobs = 0;
  /* The host has cancelled our timers and watches and failed our pending work already; the
   * calls below are for hosts that did not, and their NOT_FOUND answers are expected. */
  if (ex->periodic_timer_id != 0) {
    (void)ex->timers->cancel_timer(ex->host, ex->periodic_timer_id);
    ex->periodic_timer_id = 0;
  }
  example_close_pipe(ex);
  for (i = 0; i < ex->route_count; ++i) {
    (void)ex->http->unregister_route(ex->host, ex->route_ids[i]);
  }
  ex->route_count = 0;
  while (ex->ticks != NULL) {
    example_tick_t* tick = ex->ticks;
    ex->ticks = tick->next;
    (void)ex->timers->cancel_timer(ex->host, tick->timer_id);
    free(tick);
    ++leftover_ticks;
  }
  while (ex->jobs != NULL) {
    example_attach_job_t* job = ex->jobs;
    ex->jobs = job->next;
    (void)unlink(job->file_path);
    free(job);
    ++leftover_jobs;
  }
  example_log(ex, HDP_LOG_INFO,
              "stop: %" PRIu64 " periodic ticks, %" PRIu64
              " pipe bytes read, %zu ticks and %zu attachment jobs left over",
              ex->periodic_ticks, ex->pipe_bytes_read, leftover_ticks, leftover_jobs);
}

static void example_destroy(const hdp_plugin_t* plugin) {
  example_t* ex = example_from(plugin);
  example_log(ex, HDP_LOG_INFO, "destroy");
  free(ex);
}

static const void* example_get_extension(const hdp_plugin_t* plugin, const char* extension_id) {
  (void)plugin;
  (void)extension_id;
  return NULL; /* this plugin offers no plugin-side extensions */
}

/* ---- entry ----------------------------------------------------------------------------------- */

static bool example_entry_init(const char* plugin_path) {
  (void)plugin_path;
  ++g_entry_init_count;
  return true;
}

static void example_entry_deinit(void) {
  --g_entry_init_count;
}

static const hdp_plugin_t* example_create_plugin(const hdp_host_t* host) {
  example_t* ex;
  if (g_entry_init_count == 0 || host == NULL || host->abi_version.major != HDP_VERSION_MAJOR ||
      host->struct_size < HDP_HOST_V1_SIZE) {
    return NULL;
  }
  ex = (example_t*)calloc(1, sizeof *ex);
  if (ex == NULL) {
    return NULL;
  }
  ex->host = host;
  ex->pipe_read_fd = -1;
  ex->pipe_write_fd = -1;
  ex->table.v1.struct_size = EXAMPLE_PLUGIN_SIZE;
  ex->table.v1.plugin_data = ex;
  ex->table.v1.init = example_init;
  ex->table.v1.start = example_start;
  ex->table.v1.stop = example_stop;
  ex->table.v1.destroy = example_destroy;
  ex->table.v1.get_extension = example_get_extension;
#if defined(HDP_EXAMPLE_AS_V1_7)
  ex->table.future_query = NULL;
  ex->table.future_flags = 0;
#endif
  example_log(ex, HDP_LOG_INFO, "created (%s, entry %" PRIu32 " bytes, plugin %" PRIu32 " bytes)", EXAMPLE_BUILD,
              EXAMPLE_ENTRY_SIZE, EXAMPLE_PLUGIN_SIZE);
  return &ex->table.v1;
}

HDP_EXPORT const example_entry_t hdp_plugin_entry_v1 = {
    {
        EXAMPLE_ABI_VERSION,
        EXAMPLE_ENTRY_SIZE,
        EXAMPLE_ID,
        "HDP example plugin",
        "hdp",
        "1.0.0",
        "Shows routes, timers, fd watches and attachments through the hdp C ABI",
        example_entry_init,
        example_entry_deinit,
        example_create_plugin,
    },
#if defined(HDP_EXAMPLE_AS_V1_7)
    "https://example.invalid/hdp-example",
    0,
#endif
};
