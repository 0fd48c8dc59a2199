/* attachments.c - hdp.attachments/1: jobs that copy the file under <data dir>/attachments/ and
 * complete on a later loop turn. */
#include "c_host.h"

/* ---- attachments ----------------------------------------------------------------------------- */

void free_job(void* item) {
  attach_job_t* job = (attach_job_t*)item;
  free(job->file_path);
  free(job->file_name);
  free(job->mime_type);
  free(job->idempotency_key);
  free(job);
}

static hdp_status_t attachments_attach_file(const hdp_host_t* host, const hdp_attachment_t* attachment,
                                            hdp_attachment_callback_t callback, void* user_data, uint64_t* out_job_id) {
  loaded_plugin_t* p = plugin_of(host);
  attach_job_t* job;
  if (attachment == NULL || callback == NULL || out_job_id == NULL ||
      attachment->struct_size < HDP_ATTACHMENT_V1_SIZE || attachment->file_path == NULL ||
      attachment->file_path[0] != '/' || attachment->file_name == NULL || attachment->file_name[0] == '\0' ||
      strchr(attachment->file_name, '/') != NULL || strcmp(attachment->file_name, "..") == 0 ||
      strlen(attachment->file_name) > 200 || attachment->mime_type == NULL || !key_ok(attachment->idempotency_key)) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  if (!may_register(p)) {
    return HDP_ERR_BAD_STATE;
  }
  job = (attach_job_t*)calloc(1, sizeof *job);
  if (job == NULL) {
    return HDP_ERR_NO_MEMORY;
  }
  job->file_path = str_dup(attachment->file_path);
  job->file_name = str_dup(attachment->file_name);
  job->mime_type = str_dup(attachment->mime_type);
  job->idempotency_key = str_dup(attachment->idempotency_key);
  if (job->file_path == NULL || job->file_name == NULL || job->mime_type == NULL || job->idempotency_key == NULL ||
      !vec_push(&g_host.jobs, job)) {
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

const hdp_host_attachments_t g_attachments_ext = {
    (uint32_t)sizeof(hdp_host_attachments_t),
    attachments_attach_file,
};

static bool copy_file(const char* from, const char* to) {
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

void complete_job(attach_job_t* job, hdp_status_t status, uint64_t attachment_id, uint32_t already_attached) {
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

static void run_job(attach_job_t* job) {
  loaded_plugin_t* p = job->owner;
  stored_attachment_t* stored;
  char path[4096];
  size_t i;
  if (find_message(p, job->message_id) == NULL) {
    complete_job(job, HDP_ERR_NOT_FOUND, 0, 0);
    return;
  }
  for (i = 0; i < g_host.attachments.len; ++i) {
    stored = (stored_attachment_t*)g_host.attachments.items[i];
    if (stored->owner == p && strcmp(stored->idempotency_key, job->idempotency_key) == 0) {
      complete_job(job, HDP_OK, stored->id, 1);
      return;
    }
  }
  stored = (stored_attachment_t*)calloc(1, sizeof *stored);
  if (stored == NULL) {
    complete_job(job, HDP_ERR_NO_MEMORY, 0, 0);
    return;
  }
  stored->id = g_host.next_attachment_id + 1;
  snprintf(path, sizeof path, "%s/%" PRIu64 "-%s", g_host.attachments_dir, stored->id, job->file_name);
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
  if (stored->idempotency_key == NULL || stored->stored_path == NULL || !vec_push(&g_host.attachments, stored)) {
    (void)unlink(path);
    free(stored->idempotency_key);
    free(stored->stored_path);
    free(stored);
    complete_job(job, HDP_ERR_NO_MEMORY, 0, 0);
    return;
  }
  g_host.next_attachment_id = stored->id;
  plugin_log(p, HDP_LOG_DEBUG, "attachment %" PRIu64 " stored at %s for message %" PRIu64, stored->id, path,
             stored->message_id);
  complete_job(job, HDP_OK, stored->id, 0);
}

/* Runs the jobs queued before this turn; a job queued by a completion callback waits a turn. */
void run_jobs(void) {
  size_t count = g_host.jobs.len;
  size_t i;
  for (i = 0; i < count; ++i) {
    attach_job_t* job = (attach_job_t*)g_host.jobs.items[i];
    if (!job->dead && job->owner->state == PLUGIN_STARTED) {
      run_job(job);
    }
  }
}

bool has_runnable_jobs(void) {
  size_t i;
  for (i = 0; i < g_host.jobs.len; ++i) {
    const attach_job_t* job = (const attach_job_t*)g_host.jobs.items[i];
    if (!job->dead && job->owner->state == PLUGIN_STARTED) {
      return true;
    }
  }
  return false;
}
