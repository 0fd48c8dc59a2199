/* hdp/ext/messages.h - the helpdesk's messages for calls.
 *
 * A call shows up as one message in a conversation with the contact. The plugin names the call by
 * an external key of its own ("wavoip:<call id>"); the host creates the message the first time
 * it sees the key and finds the same message every time after, whatever the order of events. */
#ifndef HDP_EXT_MESSAGES_H
#define HDP_EXT_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

#include "../host.h"
#include "../status.h"
#include "../version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HDP_EXT_MESSAGES "hdp.messages/1"

/* Call direction; crosses the ABI as int32_t. */
enum {
  HDP_CALL_DIRECTION_UNKNOWN = 0,
  HDP_CALL_DIRECTION_INCOMING = 1,
  HDP_CALL_DIRECTION_OUTGOING = 2,
};

/* What the agent sees about the call's recording; crosses the ABI as int32_t. Hosts show an
 * unknown value like HDP_RECORDING_NONE plus the reason text. */
enum {
  HDP_RECORDING_NONE = 0,        /* nothing known yet */
  HDP_RECORDING_WAITING = 1,     /* WaVoIP is still recording or processing */
  HDP_RECORDING_DOWNLOADING = 2, /* being fetched */
  HDP_RECORDING_ATTACHED = 3,    /* playable from the message's attachment */
  HDP_RECORDING_FAILED = 4,      /* gave up; the reason says why and what to do */
  HDP_RECORDING_DISABLED = 5,    /* recording is switched off for the device */
  HDP_RECORDING_EMPTY = 6,       /* the call was too short to record */
};

typedef struct hdp_call_message {
  uint32_t struct_size;
  /* Idempotency key of the call, unique per plugin. NUL-terminated, at most 255 bytes. */
  const char* external_key;
  /* The inbox the conversation belongs to; NULL or "" for the host's default inbox. */
  const char* inbox;
  /* The contact's phone number, digits only; NULL or "" when not known yet (a later upsert
   * may fill it in). */
  const char* contact;
  /* HDP_CALL_DIRECTION_* */
  int32_t direction;
  /* The call's status as the provider says it ("ACTIVE", "ENDED", ...); NULL = unchanged. */
  const char* call_status;
  /* Duration in seconds; negative = unknown/unchanged. */
  int64_t duration_s;
} hdp_call_message_t;

typedef struct hdp_host_messages {
  /* sizeof(hdp_host_messages_t) as the host compiled it. */
  uint32_t struct_size;

  /* Creates the call's message, or finds it by external_key and updates the fields given
   * (empty contact, NULL status, negative duration and UNKNOWN direction leave the stored values
   * as they are). *out_message_id is stable for the key and never 0.
   * OWNERSHIP: message and its strings are borrowed for the call.
   * [main-thread] */
  hdp_status_t (*upsert_call_message)(const hdp_host_t* host, const hdp_call_message_t* message,
                                      uint64_t* out_message_id);

  /* Sets what the agent sees about the recording: an HDP_RECORDING_* value and a reason in
   * plain words (NUL-terminated UTF-8, may be NULL or "" when none is needed, at most 1024
   * bytes). HDP_ERR_NOT_FOUND for an unknown message id.
   * OWNERSHIP: reason borrowed for the call.
   * [main-thread] */
  hdp_status_t (*set_recording_status)(const hdp_host_t* host, uint64_t message_id, int32_t recording_status,
                                       const char* reason);
} hdp_host_messages_t;

/* ---- hdp.messages/2 (ABI 1.2): the same writes, completed later --------------------------------
 *
 * hdp.messages/1 answers when the write is done, so a host must finish it (commit a transaction,
 * wait for a remote store) inside the call, on its loop. hdp.messages/2 takes the write and
 * answers through a callback once the write is durable, so a host may batch the writes of a loop
 * turn into one transaction, run them on a writer thread, or send them over the network.
 *
 * Rules for every call of this table:
 *  - On HDP_OK, *out_op_id (never 0, never reused) names the operation and `callback` runs
 *    exactly once, on the main thread, never inside the call that started it. On any other status
 *    nothing was queued and the callback will not run.
 *  - The operations of one plugin take effect and complete in the order they were started: a
 *    status set after an upsert of the same key sees the message that upsert made, and a later
 *    status of a message wins over an earlier one.
 *  - The callback reports HDP_OK only once the write is durable (a crash after it loses nothing).
 *    HDP_ERR_CANCELLED when the host is stopping: the write may or may not have happened.
 *  - A host that serves hdp.messages/2 also serves hdp.messages/1; mixing the two tables is
 *    allowed, and a /1 call takes effect after every /2 operation started before it.
 *  - Validation is the same as in /1 and is done before the call returns (HDP_ERR_INVALID_ARGUMENT
 *    at once); an unknown message id is reported through the callback (HDP_ERR_NOT_FOUND). */

#define HDP_EXT_MESSAGES_V2 "hdp.messages/2"

/* recording_status value of upsert_call_message: leave what the message shows as it is. */
#define HDP_RECORDING_UNCHANGED (-1)

typedef struct hdp_message_result {
  uint32_t struct_size;
  /* HDP_OK, HDP_ERR_NOT_FOUND (set_recording_status: no such message), HDP_ERR_IO,
   * HDP_ERR_CANCELLED (the host is stopping), ... */
  hdp_status_t status;
  /* The operation's id, as *out_op_id gave it. */
  uint64_t op_id;
  /* The call's message when status is HDP_OK: the id it was created or found with (stable for the
   * external key, never 0), or the id that set_recording_status was given. */
  uint64_t message_id;
} hdp_message_result_t;

/* Runs on the main thread, exactly once per accepted operation, never inside the call that
 * started it. OWNERSHIP: result is borrowed for the call. */
typedef void (*hdp_message_callback_t)(void* user_data, const hdp_message_result_t* result);

typedef struct hdp_host_messages2 {
  /* sizeof(hdp_host_messages2_t) as the host compiled it. */
  uint32_t struct_size;

  /* Creates the call's message or finds it by external_key and updates the fields given, as in
   * /1; then, unless recording_status is HDP_RECORDING_UNCHANGED, sets what the message shows
   * about the recording (an HDP_RECORDING_* value and reason, as set_recording_status). One
   * operation: a new call's message appears with its recording status, never without it.
   * OWNERSHIP: message, its strings and reason borrowed for the call; user_data passed back.
   * [main-thread] */
  hdp_status_t (*upsert_call_message)(const hdp_host_t* host, const hdp_call_message_t* message,
                                      int32_t recording_status, const char* reason, hdp_message_callback_t callback,
                                      void* user_data, uint64_t* out_op_id);

  /* Sets what the agent sees about the recording of a message, as /1 does.
   * OWNERSHIP: reason borrowed for the call; user_data passed back.
   * [main-thread] */
  hdp_status_t (*set_recording_status)(const hdp_host_t* host, uint64_t message_id, int32_t recording_status,
                                       const char* reason, hdp_message_callback_t callback, void* user_data,
                                       uint64_t* out_op_id);
} hdp_host_messages2_t;

/* ---- hdp.messages/3 (ABI 1.3): the /2 writes with the technical detail apart ------------------
 *
 * /1 and /2 take one reason text, so a plugin with a reason for people ("Not ready yet") and a
 * technical detail ("HTTP 404") must join them, and a host that shows them apart would parse the
 * text back. /3 takes both: the host keeps them apart and shows the detail as it chooses (smaller,
 * on a line of its own). Everything else is /2's rules, word for word (completion by callback, in
 * start order, durable on HDP_OK). A host that serves /3 also serves /2 and /1; a plugin that finds
 * no /3 (a 1.2 host) falls back to /2 with the two texts joined. A write through /1 or /2 leaves
 * the message with an empty detail.
 *
 * Each status write also says where an agent's "try again" goes, if anywhere: retry_path, the path
 * and query of one of the plugin's own HTTP routes (e.g. "/x/retry?id=42"), which the host's agent
 * UI may POST to with the agent's session; NULL or "" for none. The host's page needs to know
 * nothing of the plugin's keys or routes. It lasts until the next status write of the message. */

#define HDP_EXT_MESSAGES_V3 "hdp.messages/3"

typedef struct hdp_host_messages3 {
  /* sizeof(hdp_host_messages3_t) as the host compiled it. */
  uint32_t struct_size;

  /* /2's upsert_call_message; unless recording_status is HDP_RECORDING_UNCHANGED, the message
   * shows reason and detail (each NUL-terminated UTF-8, NULL or "" for none, at most 1024 bytes)
   * and retry_path (see above: starts with one '/', not "//" nor "/\\", at most 1024 bytes, no
   * spaces or control characters; NULL or "" for none). Anything else: HDP_ERR_INVALID_ARGUMENT.
   * OWNERSHIP: message, its strings, reason, detail and retry_path borrowed for the call;
   * user_data passed back.
   * [main-thread] */
  hdp_status_t (*upsert_call_message)(const hdp_host_t* host, const hdp_call_message_t* message,
                                      int32_t recording_status, const char* reason, const char* detail,
                                      const char* retry_path, hdp_message_callback_t callback, void* user_data,
                                      uint64_t* out_op_id);

  /* /2's set_recording_status, with the technical detail apart from the reason and the retry path
   * (same limits as in upsert_call_message).
   * OWNERSHIP: reason, detail and retry_path borrowed for the call; user_data passed back.
   * [main-thread] */
  hdp_status_t (*set_recording_status)(const hdp_host_t* host, uint64_t message_id, int32_t recording_status,
                                       const char* reason, const char* detail, const char* retry_path,
                                       hdp_message_callback_t callback, void* user_data, uint64_t* out_op_id);
} hdp_host_messages3_t;

/* Version-1 sizes: the smallest struct_size a reader accepts (the end of the last member the struct
 * first shipped with, without tail padding, so it is the same whichever minor compiled it). The
 * /2 structs first shipped in 1.2.0, the /3 table in 1.3.0. */
#define HDP_CALL_MESSAGE_V1_SIZE HDP_V1_SIZE(hdp_call_message_t, duration_s)
#define HDP_HOST_MESSAGES_V1_SIZE HDP_V1_SIZE(hdp_host_messages_t, set_recording_status)
#define HDP_MESSAGE_RESULT_V1_SIZE HDP_V1_SIZE(hdp_message_result_t, message_id)
#define HDP_HOST_MESSAGES2_V1_SIZE HDP_V1_SIZE(hdp_host_messages2_t, set_recording_status)
#define HDP_HOST_MESSAGES3_V1_SIZE HDP_V1_SIZE(hdp_host_messages3_t, set_recording_status)

#ifdef __cplusplus
}
#endif

#endif /* HDP_EXT_MESSAGES_H */
