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
   const char *external_key;
   /* The inbox the conversation belongs to; NULL or "" for the host's default inbox. */
   const char *inbox;
   /* The contact's phone number, digits only; NULL or "" when not known yet (a later upsert
    * may fill it in). */
   const char *contact;
   /* HDP_CALL_DIRECTION_* */
   int32_t direction;
   /* The call's status as the provider says it ("ACTIVE", "ENDED", ...); NULL = unchanged. */
   const char *call_status;
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
   hdp_status_t (*upsert_call_message)(const hdp_host_t *host, const hdp_call_message_t *message,
                                       uint64_t *out_message_id);

   /* Sets what the agent sees about the recording: an HDP_RECORDING_* value and a reason in
    * plain words (NUL-terminated UTF-8, may be NULL or "" when none is needed, at most 1024
    * bytes). HDP_ERR_NOT_FOUND for an unknown message id.
    * OWNERSHIP: reason borrowed for the call.
    * [main-thread] */
   hdp_status_t (*set_recording_status)(const hdp_host_t *host, uint64_t message_id,
                                        int32_t recording_status, const char *reason);
} hdp_host_messages_t;

/* Version-1.0 sizes: the smallest struct_size a reader accepts (the end of the last 1.0 member,
 * without tail padding, so it is the same whichever minor compiled it). */
#ifdef __cplusplus
#define HDP_CALL_MESSAGE_V1_SIZE (offsetof(hdp_call_message_t, duration_s) + sizeof(hdp_call_message_t::duration_s))
#define HDP_HOST_MESSAGES_V1_SIZE (offsetof(hdp_host_messages_t, set_recording_status) + sizeof(hdp_host_messages_t::set_recording_status))
#else
#define HDP_CALL_MESSAGE_V1_SIZE (offsetof(hdp_call_message_t, duration_s) + sizeof(((const hdp_call_message_t *)0)->duration_s))
#define HDP_HOST_MESSAGES_V1_SIZE (offsetof(hdp_host_messages_t, set_recording_status) + sizeof(((const hdp_host_messages_t *)0)->set_recording_status))
#endif

#ifdef __cplusplus
}
#endif

#endif /* HDP_EXT_MESSAGES_H */
