/* hdp/ext/attachments.h - attach a file to a message, asynchronously and idempotently. */
#ifndef HDP_EXT_ATTACHMENTS_H
#define HDP_EXT_ATTACHMENTS_H

#include <stddef.h>
#include <stdint.h>

#include "../host.h"
#include "../status.h"
#include "../version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HDP_EXT_ATTACHMENTS "hdp.attachments/1"

typedef struct hdp_attachment {
  uint32_t struct_size;
  uint64_t message_id;
  /* Absolute path of a readable regular file. The host copies (or links) it before reporting
   * completion; the plugin may delete it once the completion callback has run.
   * NUL-terminated; borrowed for the call. */
  const char* file_path;
  /* The name shown to the agent, built by the plugin (no path separators). NUL-terminated. */
  const char* file_name;
  /* "audio/mpeg", ... NUL-terminated. */
  const char* mime_type;
  /* At most one attachment exists per (plugin, key): attaching again with a key already
   * attached completes with HDP_OK, the existing attachment id and already_attached = 1.
   * NUL-terminated, at most 255 bytes. */
  const char* idempotency_key;
} hdp_attachment_t;

typedef struct hdp_attachment_result {
  uint32_t struct_size;
  uint64_t job_id;
  /* HDP_OK, or why it failed (HDP_ERR_IO, HDP_ERR_NOT_FOUND for the message,
   * HDP_ERR_CANCELLED when the host is stopping, ...). */
  hdp_status_t status;
  /* The attachment's id when status is HDP_OK. */
  uint64_t attachment_id;
  /* 1 when the key was already attached and nothing new was stored. */
  uint32_t already_attached;
  /* Must be 0. Fills what would be tail padding, so a member added in a later minor never
   * lands on bytes a 1.0 writer left uninitialised. */
  uint32_t reserved;
} hdp_attachment_result_t;

/* Runs on the main thread, exactly once per accepted job, never inside attach_file itself.
 * OWNERSHIP: result is borrowed for the call. */
typedef void (*hdp_attachment_callback_t)(void* user_data, const hdp_attachment_result_t* result);

typedef struct hdp_host_attachments {
  /* sizeof(hdp_host_attachments_t) as the host compiled it. */
  uint32_t struct_size;

  /* Starts attaching a file. On HDP_OK, *out_job_id (never 0, never reused) names the job and
   * callback will run exactly once; on any other status it will not run.
   * OWNERSHIP: attachment and its strings borrowed for the call; user_data passed back.
   * [main-thread] */
  hdp_status_t (*attach_file)(const hdp_host_t* host, const hdp_attachment_t* attachment,
                              hdp_attachment_callback_t callback, void* user_data, uint64_t* out_job_id);
} hdp_host_attachments_t;

/* Version-1.0 sizes: the smallest struct_size a reader accepts (the end of the last 1.0 member,
 * without tail padding, so it is the same whichever minor compiled it). */
#define HDP_ATTACHMENT_V1_SIZE HDP_V1_SIZE(hdp_attachment_t, idempotency_key)
#define HDP_ATTACHMENT_RESULT_V1_SIZE HDP_V1_SIZE(hdp_attachment_result_t, reserved)
#define HDP_HOST_ATTACHMENTS_V1_SIZE HDP_V1_SIZE(hdp_host_attachments_t, attach_file)

#ifdef __cplusplus
}
#endif

#endif /* HDP_EXT_ATTACHMENTS_H */
