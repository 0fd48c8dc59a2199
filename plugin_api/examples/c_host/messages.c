/* messages.c - hdp.messages/1 (written at once) and hdp.messages/2 and /3 (applied at the end of
 * the loop turn, completed in start order), in memory. */
#include "c_host.h"

/* ---- messages -------------------------------------------------------------------------------- */

bool key_ok(const char* key) {
  return key != NULL && key[0] != '\0' && strlen(key) <= MAX_KEY_BYTES;
}

/* NULL, "", or a path of the plugin's own: starts with one '/' (not "//" nor "/\\": another site
 * to a browser), no spaces or control characters. */
static bool retry_path_ok(const char* path) {
  size_t i;
  if (path == NULL || path[0] == '\0') {
    return true;
  }
  if (path[0] != '/' || path[1] == '/' || path[1] == '\\' || strlen(path) > MAX_REASON_BYTES) {
    return false;
  }
  for (i = 0; path[i] != '\0'; ++i) {
    if ((unsigned char)path[i] <= 0x20 || path[i] == 0x7f) {
      return false;
    }
  }
  return true;
}

/* The message of an upsert (/1, /2 and /3): a v1 struct at least, with a valid external key. */
static bool call_message_ok(const hdp_call_message_t* message) {
  return message != NULL && message->struct_size >= HDP_CALL_MESSAGE_V1_SIZE && key_ok(message->external_key);
}

/* The texts a status carries (/1, /2 and /3; NULL: not given): reason and detail within
 * MAX_REASON_BYTES, retry_path one of the plugin's own paths. */
static bool status_texts_ok(const char* reason, const char* detail, const char* retry_path) {
  return (reason == NULL || strlen(reason) <= MAX_REASON_BYTES) &&
         (detail == NULL || strlen(detail) <= MAX_REASON_BYTES) && retry_path_ok(retry_path);
}

call_message_t* find_message(const loaded_plugin_t* p, uint64_t id) {
  size_t i;
  for (i = 0; i < g_host.messages.len; ++i) {
    call_message_t* m = (call_message_t*)g_host.messages.items[i];
    if (m->id == id && m->owner == p) {
      return m;
    }
  }
  return NULL;
}

static bool replace_string(char** field, const char* value) {
  char* copy = str_dup(value);
  if (copy == NULL) {
    return false;
  }
  free(*field);
  *field = copy;
  return true;
}

/* The write of an upsert, arguments already checked. */
static hdp_status_t upsert_now(loaded_plugin_t* p, const hdp_call_message_t* message, uint64_t* out_message_id) {
  call_message_t* m = NULL;
  size_t i;
  for (i = 0; i < g_host.messages.len; ++i) {
    call_message_t* candidate = (call_message_t*)g_host.messages.items[i];
    if (candidate->owner == p && strcmp(candidate->external_key, message->external_key) == 0) {
      m = candidate;
      break;
    }
  }
  if (m == NULL) {
    m = (call_message_t*)calloc(1, sizeof *m);
    if (m == NULL) {
      return HDP_ERR_NO_MEMORY;
    }
    m->external_key = str_dup(message->external_key);
    m->inbox = str_dup(message->inbox != NULL ? message->inbox : "");
    m->contact = str_dup("");
    m->call_status = str_dup("");
    m->reason = str_dup("");
    m->detail = str_dup("");
    m->retry_path = str_dup("");
    if (m->external_key == NULL || m->inbox == NULL || m->contact == NULL || m->call_status == NULL ||
        m->reason == NULL || m->detail == NULL || m->retry_path == NULL || !vec_push(&g_host.messages, m)) {
      free(m->external_key);
      free(m->inbox);
      free(m->contact);
      free(m->call_status);
      free(m->reason);
      free(m->detail);
      free(m->retry_path);
      free(m);
      return HDP_ERR_NO_MEMORY;
    }
    m->id = ++g_host.next_message_id;
    m->owner = p;
    m->duration_s = -1;
    plugin_log(p, HDP_LOG_DEBUG, "message %" PRIu64 " created for %s", m->id, m->external_key);
  }
  /* Unknown directions are tolerated and, like UNKNOWN, leave the stored value. */
  if (message->direction == HDP_CALL_DIRECTION_INCOMING || message->direction == HDP_CALL_DIRECTION_OUTGOING) {
    m->direction = message->direction;
  }
  if (message->duration_s >= 0) {
    m->duration_s = message->duration_s;
  }
  if ((message->contact != NULL && message->contact[0] != '\0' && !replace_string(&m->contact, message->contact)) ||
      (message->call_status != NULL && !replace_string(&m->call_status, message->call_status))) {
    return HDP_ERR_NO_MEMORY;
  }
  *out_message_id = m->id;
  return HDP_OK;
}

static hdp_status_t messages_upsert(const hdp_host_t* host, const hdp_call_message_t* message,
                                    uint64_t* out_message_id) {
  loaded_plugin_t* p = plugin_of(host);
  if (!call_message_ok(message) || out_message_id == NULL) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  if (!may_register(p)) {
    return HDP_ERR_BAD_STATE;
  }
  apply_message_ops(); /* a /1 call lands after the /2 operations started before it */
  return upsert_now(p, message, out_message_id);
}

/* The write of a status, arguments already checked; detail and retry_path NULL (a /1 or /2 write)
 * empty them. */
static hdp_status_t set_status_now(loaded_plugin_t* p, uint64_t message_id, int32_t recording_status,
                                   const char* reason, const char* detail, const char* retry_path) {
  call_message_t* m = find_message(p, message_id);
  if (m == NULL) {
    return HDP_ERR_NOT_FOUND;
  }
  if (!replace_string(&m->reason, reason != NULL ? reason : "") ||
      !replace_string(&m->detail, detail != NULL ? detail : "") ||
      !replace_string(&m->retry_path, retry_path != NULL ? retry_path : "")) {
    return HDP_ERR_NO_MEMORY;
  }
  m->recording_status = recording_status; /* unknown values are stored as given */
  if (m->detail[0] != '\0') {
    plugin_log(p, HDP_LOG_DEBUG, "message %" PRIu64 " recording status %" PRId32 " (%s) detail (%s)", m->id,
               recording_status, m->reason, m->detail);
  } else {
    plugin_log(p, HDP_LOG_DEBUG, "message %" PRIu64 " recording status %" PRId32 " (%s)", m->id, recording_status,
               m->reason);
  }
  return HDP_OK;
}

static hdp_status_t messages_set_recording_status(const hdp_host_t* host, uint64_t message_id, int32_t recording_status,
                                                  const char* reason) {
  loaded_plugin_t* p = plugin_of(host);
  if (!status_texts_ok(reason, NULL, NULL)) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  if (!may_register(p)) {
    return HDP_ERR_BAD_STATE;
  }
  apply_message_ops();
  return set_status_now(p, message_id, recording_status, reason, NULL, NULL);
}

const hdp_host_messages_t g_messages_ext = {
    (uint32_t)sizeof(hdp_host_messages_t),
    messages_upsert,
    messages_set_recording_status,
};

/* ---- hdp.messages/2 -------------------------------------------------------------------------- */

void free_message_op(void* item) {
  message_op_t* op = (message_op_t*)item;
  free(op->external_key);
  free(op->inbox);
  free(op->contact);
  free(op->call_status);
  free(op->reason);
  free(op->detail);
  free(op->retry_path);
  free(op);
}

bool message_op_is_dead(const void* item) {
  return ((const message_op_t*)item)->dead;
}

/* Queues op (its strings copied by the caller) and names it; NO_MEMORY frees it. */
static hdp_status_t queue_message_op(loaded_plugin_t* p, message_op_t* op, hdp_message_callback_t callback,
                                     void* user_data, uint64_t* out_op_id) {
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

/* The upsert of /2 and /3 (detail and retry_path NULL for /2). */
static hdp_status_t queue_upsert(const hdp_host_t* host, const hdp_call_message_t* message, int32_t recording_status,
                                 const char* reason, const char* detail, const char* retry_path,
                                 hdp_message_callback_t callback, void* user_data, uint64_t* out_op_id) {
  loaded_plugin_t* p = plugin_of(host);
  message_op_t* op;
  if (!call_message_ok(message) || callback == NULL || out_op_id == NULL ||
      !status_texts_ok(reason, detail, retry_path)) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  if (!may_register(p)) {
    return HDP_ERR_BAD_STATE;
  }
  op = (message_op_t*)calloc(1, sizeof *op);
  if (op == NULL) {
    return HDP_ERR_NO_MEMORY;
  }
  op->is_upsert = true;
  op->external_key = str_dup(message->external_key);
  op->inbox = str_dup(message->inbox != NULL ? message->inbox : "");
  op->contact = str_dup(message->contact != NULL ? message->contact : "");
  op->call_status = message->call_status != NULL ? str_dup(message->call_status) : NULL;
  op->reason = str_dup(reason != NULL ? reason : "");
  op->detail = str_dup(detail != NULL ? detail : "");
  op->retry_path = str_dup(retry_path != NULL ? retry_path : "");
  op->direction = message->direction;
  op->duration_s = message->duration_s;
  op->recording_status = recording_status;
  if (op->external_key == NULL || op->inbox == NULL || op->contact == NULL || op->reason == NULL ||
      op->detail == NULL || op->retry_path == NULL || (message->call_status != NULL && op->call_status == NULL)) {
    free_message_op(op);
    return HDP_ERR_NO_MEMORY;
  }
  return queue_message_op(p, op, callback, user_data, out_op_id);
}

/* The set_recording_status of /2 and /3 (detail and retry_path NULL for /2). */
static hdp_status_t queue_set_status(const hdp_host_t* host, uint64_t message_id, int32_t recording_status,
                                     const char* reason, const char* detail, const char* retry_path,
                                     hdp_message_callback_t callback, void* user_data, uint64_t* out_op_id) {
  loaded_plugin_t* p = plugin_of(host);
  message_op_t* op;
  if (callback == NULL || out_op_id == NULL || !status_texts_ok(reason, detail, retry_path)) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  if (!may_register(p)) {
    return HDP_ERR_BAD_STATE;
  }
  op = (message_op_t*)calloc(1, sizeof *op);
  if (op == NULL) {
    return HDP_ERR_NO_MEMORY;
  }
  op->message_id = message_id;
  op->recording_status = recording_status;
  op->reason = str_dup(reason != NULL ? reason : "");
  op->detail = str_dup(detail != NULL ? detail : "");
  op->retry_path = str_dup(retry_path != NULL ? retry_path : "");
  if (op->reason == NULL || op->detail == NULL || op->retry_path == NULL) {
    free_message_op(op);
    return HDP_ERR_NO_MEMORY;
  }
  return queue_message_op(p, op, callback, user_data, out_op_id);
}

static hdp_status_t messages2_upsert(const hdp_host_t* host, const hdp_call_message_t* message,
                                     int32_t recording_status, const char* reason, hdp_message_callback_t callback,
                                     void* user_data, uint64_t* out_op_id) {
  return queue_upsert(host, message, recording_status, reason, NULL, NULL, callback, user_data, out_op_id);
}

static hdp_status_t messages2_set_recording_status(const hdp_host_t* host, uint64_t message_id,
                                                   int32_t recording_status, const char* reason,
                                                   hdp_message_callback_t callback, void* user_data,
                                                   uint64_t* out_op_id) {
  return queue_set_status(host, message_id, recording_status, reason, NULL, NULL, callback, user_data, out_op_id);
}

const hdp_host_messages2_t g_messages2_ext = {
    (uint32_t)sizeof(hdp_host_messages2_t),
    messages2_upsert,
    messages2_set_recording_status,
};

/* ---- hdp.messages/3: /2 with the detail apart ------------------------------------------------ */

const hdp_host_messages3_t g_messages3_ext = {
    (uint32_t)sizeof(hdp_host_messages3_t),
    queue_upsert,
    queue_set_status,
};

/* Applies every queued operation not applied yet, in start order; completions come later. */
void apply_message_ops(void) {
  size_t i;
  for (i = 0; i < g_host.message_ops.len; ++i) {
    message_op_t* op = (message_op_t*)g_host.message_ops.items[i];
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
        op->status =
            set_status_now(op->owner, op->message_id, op->recording_status, op->reason, op->detail, op->retry_path);
      }
    } else {
      op->status =
          set_status_now(op->owner, op->message_id, op->recording_status, op->reason, op->detail, op->retry_path);
    }
  }
}

void complete_message_op(message_op_t* op) {
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
void run_message_ops(void) {
  size_t count = g_host.message_ops.len;
  size_t i;
  apply_message_ops();
  for (i = 0; i < count; ++i) {
    message_op_t* op = (message_op_t*)g_host.message_ops.items[i];
    if (!op->dead && op->applied) {
      complete_message_op(op);
    }
  }
}

bool has_pending_message_ops(void) {
  size_t i;
  for (i = 0; i < g_host.message_ops.len; ++i) {
    if (!((const message_op_t*)g_host.message_ops.items[i])->dead) {
      return true;
    }
  }
  return false;
}
