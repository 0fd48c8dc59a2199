/* hdp/ext/posix_fd.h - level-triggered POSIX file descriptor watches on the main loop.
 *
 * Enough to drive libcurl's multi interface, or any other non-blocking socket, without a thread:
 * while a watched fd is readable (or writable) and that interest is set, the callback runs again
 * on every loop turn. The host never reads, writes or closes the fd. */
#ifndef HDP_EXT_POSIX_FD_H
#define HDP_EXT_POSIX_FD_H

#include <stddef.h>
#include <stdint.h>

#include "../host.h"
#include "../status.h"
#include "../version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HDP_EXT_POSIX_FD "hdp.posix-fd/1"

/* Interest and event flags; they cross the ABI as uint32_t. */
enum {
  HDP_FD_READ = 1u << 0,
  HDP_FD_WRITE = 1u << 1,
  HDP_FD_ERROR = 1u << 2,
};

/* Runs on the main thread with the flags that are ready now (HDP_FD_ERROR may be set without
 * being asked for). Modifying or unregistering this or any fd from inside is allowed. */
typedef void (*hdp_fd_callback_t)(void* user_data, int fd, uint32_t flags);

typedef struct hdp_host_posix_fd {
  /* sizeof(hdp_host_posix_fd_t) as the host compiled it. */
  uint32_t struct_size;

  /* Starts watching fd for the HDP_FD_* flags. HDP_ERR_ALREADY_EXISTS if this plugin already
   * watches fd (use modify_fd). OWNERSHIP: the fd stays the plugin's; user_data is passed back.
   * [main-thread] */
  hdp_status_t (*register_fd)(const hdp_host_t* host, int fd, uint32_t flags, hdp_fd_callback_t callback,
                              void* user_data);

  /* Changes the interest of a watched fd (flags may be 0 to pause it). HDP_ERR_NOT_FOUND if
   * the fd is not watched.
   * [main-thread] */
  hdp_status_t (*modify_fd)(const hdp_host_t* host, int fd, uint32_t flags);

  /* Stops watching fd; no callback for it runs afterwards. Call it before closing the fd.
   * HDP_ERR_NOT_FOUND if the fd is not watched; that is harmless, and is what a plugin gets in
   * stop(), since the host has already dropped its watches then.
   * [main-thread] */
  hdp_status_t (*unregister_fd)(const hdp_host_t* host, int fd);
} hdp_host_posix_fd_t;

/* Version-1.0 sizes: the smallest struct_size a reader accepts (the end of the last 1.0 member,
 * without tail padding, so it is the same whichever minor compiled it). */
#define HDP_HOST_POSIX_FD_V1_SIZE HDP_V1_SIZE(hdp_host_posix_fd_t, unregister_fd)

#ifdef __cplusplus
}
#endif

#endif /* HDP_EXT_POSIX_FD_H */
