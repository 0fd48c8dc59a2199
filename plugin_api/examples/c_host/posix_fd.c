/* posix_fd.c - hdp.posix-fd/1: fd watches, polled by the loop. */
#include "c_host.h"

/* ---- posix fds ------------------------------------------------------------------------------- */

static const uint32_t g_fd_known_flags = HDP_FD_READ | HDP_FD_WRITE | HDP_FD_ERROR;

static fd_watch_t* find_watch(const loaded_plugin_t* p, int fd) {
  size_t i;
  for (i = 0; i < g_host.fd_watches.len; ++i) {
    fd_watch_t* watch = (fd_watch_t*)g_host.fd_watches.items[i];
    if (!watch->dead && watch->owner == p && watch->fd == fd) {
      return watch;
    }
  }
  return NULL;
}

static hdp_status_t fd_register(const hdp_host_t* host, int fd, uint32_t flags, hdp_fd_callback_t callback,
                                void* user_data) {
  loaded_plugin_t* p = plugin_of(host);
  fd_watch_t* watch;
  if (fd < 0 || callback == NULL) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  if (!may_register(p)) {
    return HDP_ERR_BAD_STATE;
  }
  if (find_watch(p, fd) != NULL) {
    return HDP_ERR_ALREADY_EXISTS;
  }
  watch = (fd_watch_t*)calloc(1, sizeof *watch);
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

static hdp_status_t fd_modify(const hdp_host_t* host, int fd, uint32_t flags) {
  fd_watch_t* watch = find_watch(plugin_of(host), fd);
  if (watch == NULL) {
    return HDP_ERR_NOT_FOUND;
  }
  watch->flags = flags & g_fd_known_flags;
  return HDP_OK;
}

static hdp_status_t fd_unregister(const hdp_host_t* host, int fd) {
  fd_watch_t* watch = find_watch(plugin_of(host), fd);
  if (watch == NULL) {
    return HDP_ERR_NOT_FOUND;
  }
  watch->dead = true;
  return HDP_OK;
}

const hdp_host_posix_fd_t g_posix_fd_ext = {
    (uint32_t)sizeof(hdp_host_posix_fd_t),
    fd_register,
    fd_modify,
    fd_unregister,
};
