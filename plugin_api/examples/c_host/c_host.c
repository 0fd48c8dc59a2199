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
 * whatever the plugin registers or cancels from inside a callback.
 *
 * This file holds the loop, setup and main. One file per extension: timers.c (hdp.timers/1),
 * posix_fd.c (hdp.posix-fd/1), http.c (hdp.http/1 and the connections), messages.c
 * (hdp.messages/1 and /2), attachments.c (hdp.attachments/1); core.c is the core host table and
 * get_extension, plugins.c loads, refuses, starts and stops plugins, util.c has the small
 * utilities and the log; c_host.h holds the state they share. */
#include "c_host.h"

host_t g_host;
volatile sig_atomic_t g_signalled;

/* ---- the loop -------------------------------------------------------------------------------- */

static bool conn_is_dead(const void* item) {
  return ((const http_conn_t*)item)->state == CONN_DEAD;
}

static void free_conn(void* item) {
  http_conn_t* conn = (http_conn_t*)item;
  close(conn->fd);
  free(conn->in);
  free(conn->out);
  free(conn);
}

static bool timer_is_dead(const void* item) {
  return ((const host_timer_t*)item)->dead;
}

static bool watch_is_dead(const void* item) {
  return ((const fd_watch_t*)item)->dead;
}

static bool route_is_dead(const void* item) {
  return ((const http_route_t*)item)->dead;
}

static void free_route(void* item) {
  http_route_t* route = (http_route_t*)item;
  free(route->method);
  free(route->path);
  free(route);
}

static bool job_is_dead(const void* item) {
  return ((const attach_job_t*)item)->dead;
}

static void sweep(void) {
  vec_sweep(&g_host.conns, conn_is_dead, free_conn);
  vec_sweep(&g_host.timers, timer_is_dead, free);
  vec_sweep(&g_host.fd_watches, watch_is_dead, free);
  vec_sweep(&g_host.routes, route_is_dead, free_route);
  vec_sweep(&g_host.jobs, job_is_dead, free_job);
  vec_sweep(&g_host.message_ops, message_op_is_dead, free_message_op);
}

static void dispatch_fd_events(const struct pollfd* pfds, fd_watch_t* const* watches, size_t count) {
  size_t i;
  for (i = 0; i < count; ++i) {
    fd_watch_t* watch = watches[i];
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
    const host_timer_t* timer = (const host_timer_t*)g_host.timers.items[i];
    if (!timer->dead && timer->due_us < next) {
      next = timer->due_us;
    }
  }
  for (i = 0; i < g_host.conns.len; ++i) {
    const http_conn_t* conn = (const http_conn_t*)g_host.conns.items[i];
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
  int64_t run_deadline_us = g_host.options.run_ms >= 0 ? monotonic_us() + g_host.options.run_ms * 1000 : -1;
  struct pollfd* pfds = NULL;
  void** owners = NULL;
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
      struct pollfd* grown_pfds = (struct pollfd*)realloc(pfds, want * sizeof *pfds);
      void** grown_owners;
      if (grown_pfds == NULL) {
        exit_code = 1;
        break;
      }
      pfds = grown_pfds;
      grown_owners = (void**)realloc(owners, want * sizeof *owners);
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
      http_conn_t* conn = (http_conn_t*)g_host.conns.items[i];
      pfds[count].fd = conn->fd;
      pfds[count].events = conn->state == CONN_WRITE ? POLLOUT : POLLIN;
      owners[count++] = conn;
    }
    watch_start = count;
    for (i = 0; i < g_host.fd_watches.len; ++i) {
      fd_watch_t* watch = (fd_watch_t*)g_host.fd_watches.items[i];
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
        http_conn_t* conn = (http_conn_t*)owners[i];
        if (pfds[i].revents == 0) {
          continue;
        }
        if (conn->state == CONN_WRITE) {
          conn_on_writable(conn);
        } else {
          conn_on_readable(conn);
        }
      }
      dispatch_fd_events(pfds + watch_start, (fd_watch_t* const*)(owners + watch_start), count - watch_start);
    }
    /* A response queued by a callback in this turn goes out without another poll round. */
    for (i = 0; i < g_host.conns.len; ++i) {
      http_conn_t* conn = (http_conn_t*)g_host.conns.items[i];
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
      http_conn_t* conn = (http_conn_t*)g_host.conns.items[i];
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
    ((http_conn_t*)g_host.conns.items[i])->state = CONN_DEAD;
  }
}

/* ---- setup and teardown ---------------------------------------------------------------------- */

static void on_signal(int signo) {
  (void)signo;
  g_signalled = 1;
  wake_loop();
}

static int open_listener(const char* listen_spec) {
  char host_part[256];
  const char* colon = strrchr(listen_spec, ':');
  const char* port_part;
  struct addrinfo hints;
  struct addrinfo* result = NULL;
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

static bool write_port_file(const char* path, int listen_fd) {
  struct sockaddr_storage addr;
  socklen_t len = sizeof addr;
  char tmp[4096];
  unsigned port;
  FILE* file;
  if (getsockname(listen_fd, (struct sockaddr*)&addr, &len) != 0) {
    return false;
  }
  port = addr.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6*)&addr)->sin6_port)
                                    : ntohs(((struct sockaddr_in*)&addr)->sin_port);
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

static void free_message(void* item) {
  call_message_t* m = (call_message_t*)item;
  free(m->external_key);
  free(m->inbox);
  free(m->contact);
  free(m->call_status);
  free(m->reason);
  free(m->detail);
  free(m->retry_path);
  free(m);
}

static void free_attachment(void* item) {
  stored_attachment_t* a = (stored_attachment_t*)item;
  free(a->idempotency_key);
  free(a->stored_path);
  free(a);
}

static bool always_dead(const void* item) {
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

static void usage(FILE* out) {
  fputs(
      "usage: hdp-c-host [--listen ADDR:PORT] [--port-file F] [--data-dir D] [--run-ms N]\n"
      "                  [--log-level trace|debug|info|warning|error]\n"
      "                  [--disable-extension ID]... --plugin P [--plugin-config-json S] ...\n",
      out);
}

static bool parse_args(int argc, char** argv, host_options_t* options) {
  int i;
  options->listen = "127.0.0.1:0";
  options->run_ms = -1;
  for (i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : NULL;
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
      char* end = NULL;
      long long ms = strtoll(value, &end, 10);
      if (end == value || *end != '\0' || ms < 0 || ms > 86400000LL) {
        fprintf(stderr, HOST_NAME ": --run-ms expects 0..86400000\n");
        return false;
      }
      options->run_ms = (int64_t)ms;
    } else if (strcmp(arg, "--log-level") == 0) {
      static const char* const names[] = {"trace", "debug", "info", "warning", "error"};
      int32_t level;
      for (level = 0; level < 5 && strcmp(names[level], value) != 0; ++level) {
      }
      if (level == 5) {
        fprintf(stderr, HOST_NAME ": unknown --log-level %s\n", value);
        return false;
      }
      g_log_level = level;
    } else if (strcmp(arg, "--disable-extension") == 0) {
      if (options->disabled_count == sizeof options->disabled_extensions / sizeof(char*)) {
        return false;
      }
      options->disabled_extensions[options->disabled_count++] = value;
    } else if (strcmp(arg, "--plugin") == 0) {
      if (options->plugin_count == sizeof options->plugin_paths / sizeof(char*)) {
        return false;
      }
      options->plugin_paths[options->plugin_count++] = value;
    } else if (strcmp(arg, "--plugin-config-json") == 0) {
      if (options->plugin_count == 0) {
        fprintf(stderr, HOST_NAME ": --plugin-config-json follows the --plugin it configures\n");
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
      host_log(HDP_LOG_ERROR, "cannot use data dir %s: %s", g_host.options.data_dir, strerror(errno));
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

int main(int argc, char** argv) {
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
    if (!start_plugin((loaded_plugin_t*)g_host.plugins.items[i])) {
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
