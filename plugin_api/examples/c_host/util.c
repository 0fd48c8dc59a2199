/* util.c - small utilities (vectors, strings, clocks, directories) and the log of hdp-c-host. */
#include "c_host.h"

/* ---- small utilities ------------------------------------------------------------------------- */

bool vec_push(ptr_vec_t* vec, void* item) {
  if (vec->len == vec->cap) {
    size_t cap = vec->cap == 0 ? 8 : vec->cap * 2;
    void** items = (void**)realloc(vec->items, cap * sizeof *items);
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
void vec_sweep(ptr_vec_t* vec, bool (*is_dead)(const void*), void (*free_item)(void*)) {
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

static char* str_dup_n(const char* text, size_t len) {
  char* copy = (char*)malloc(len + 1);
  if (copy != NULL) {
    if (len != 0) {
      memcpy(copy, text, len);
    }
    copy[len] = '\0';
  }
  return copy;
}

char* str_dup(const char* text) {
  return str_dup_n(text, strlen(text));
}

int64_t monotonic_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void set_nonblocking_cloexec(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) {
    (void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  }
  (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
}

bool mkdir_p(const char* path) {
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

int remove_entry(const char* path, const struct stat* st, int type, struct FTW* ftw) {
  (void)st;
  (void)type;
  (void)ftw;
  return remove(path);
}

/* ---- logging --------------------------------------------------------------------------------- */

int32_t g_log_level = HDP_LOG_INFO;

static const char* level_name(int32_t level) {
  switch (level) {
    case HDP_LOG_TRACE: return "trace";
    case HDP_LOG_DEBUG: return "debug";
    case HDP_LOG_INFO: return "info";
    case HDP_LOG_WARNING: return "warning";
    default: return "error";
  }
}

/* Unknown levels map to the nearest known one (log.h). */
int32_t clamp_level(int32_t level) {
  if (level < HDP_LOG_TRACE) {
    return HDP_LOG_TRACE;
  }
  return level > HDP_LOG_ERROR ? HDP_LOG_ERROR : level;
}

/* One line, written with one call so that lines from plugin threads never interleave. */
void log_line(int32_t level, const char* source, const char* message) {
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
void
host_log(int32_t level, const char *fmt, ...) {
  char message[1536];
  va_list args;
  va_start(args, fmt);
  vsnprintf(message, sizeof message, fmt, args);
  va_end(args);
  log_line(level, "host", message);
}

/* ---- plugins --------------------------------------------------------------------------------- */

loaded_plugin_t* plugin_of(const hdp_host_t* host) {
  return (loaded_plugin_t*)host->host_data;
}

bool may_register(const loaded_plugin_t* p) {
  return p->state == PLUGIN_STARTING || p->state == PLUGIN_STARTED;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void
plugin_log(const loaded_plugin_t *p, int32_t level, const char *fmt, ...) {
  char message[1536];
  va_list args;
  va_start(args, fmt);
  vsnprintf(message, sizeof message, fmt, args);
  va_end(args);
  log_line(level, p->entry != NULL && p->entry->id != NULL ? p->entry->id : "plugin", message);
}

void wake_loop(void) {
  const char byte = 1;
  ssize_t n = write(g_host.wake_pipe[1], &byte, 1);
  (void)n; /* a full pipe already wakes the loop */
}
