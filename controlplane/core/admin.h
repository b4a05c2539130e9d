/* controlplane/core/admin.h — the Admin API (admin.proto) without gRPC: each method takes the
 * request's wire bytes and produces a status, a message for the status, and the response's wire
 * bytes. Apply with wait and WaitForAck answer later: the reply says so, and the server parks the
 * call until rm_admin_wait_ready or the deadline, then calls rm_admin_wait_finish.
 *
 * Apply semantics: the documents are parsed; the union of the stored config and the applied
 * documents (an applied document replaces the stored one with the same kind/namespace/name) is
 * validated with the registered endpoints as context; on any error nothing changes and the reply
 * is INVALID_ARGUMENT with every error line ("file:line:col: path: message") in the message. When
 * anything changed, the union is stored as a new version (one SQLite write, on the calling
 * thread: see controlplane/server/server.c for why that is acceptable) and pushed.
 *
 * Threads: the thread that owns the rm_control_t.
 */
#ifndef REMORA_CONTROLPLANE_CORE_ADMIN_H
#define REMORA_CONTROLPLANE_CORE_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "controlplane/core/control.h"

typedef enum rm_admin_method {
    RM_ADMIN_APPLY = 0,
    RM_ADMIN_GET,
    RM_ADMIN_DELETE,
    RM_ADMIN_HISTORY,
    RM_ADMIN_ROLLBACK,
    RM_ADMIN_STATS,
    RM_ADMIN_PROXY_STATUS,
    RM_ADMIN_WAIT_FOR_ACK,
    RM_ADMIN_METHOD_COUNT,
} rm_admin_method_t;

/* Default and longest wait for Apply(wait) and WaitForAck. */
#define RM_ADMIN_DEFAULT_WAIT_MS 30000u
#define RM_ADMIN_MAX_WAIT_MS     600000u
/* Longest status message; error lines past it are summarised as "... and N more". */
#define RM_ADMIN_MAX_DETAILS 4000u

/* "/remora.v1.Admin/Apply" and so on: the gRPC method path. */
const char *rm_admin_method_path(rm_admin_method_t m);

typedef struct rm_admin_reply {
    rm_status_t code;
    char *details; /* owned, or NULL: the status message */
    uint8_t *body; /* owned packed response (when code is OK) */
    size_t len;
    int wait;                  /* answer only when ready or at the deadline */
    uint64_t wait_version;     /* the version every connected sidecar must answer */
    uint64_t wait_deadline_ms; /* monotonic */
} rm_admin_reply_t;

/* Handles one call: `data` (len bytes, borrowed) is the request in wire form. Fills *reply
 * (zeroed first; the caller frees it with rm_admin_reply_free). */
void rm_admin_handle(rm_control_t *c, rm_admin_method_t m, const uint8_t *data, size_t len,
                     uint64_t now_ms, rm_admin_reply_t *reply);

/* The server parked a waiting reply (+1) or let one go (-1): what max_waiters bounds. A wait
 * past it (Apply with wait, WaitForAck) is answered RESOURCE_EXHAUSTED before anything is done. */
void rm_admin_wait_count(rm_control_t *c, int delta);

/* For a waiting reply: whether every connected sidecar has answered reply->wait_version. */
int rm_admin_wait_ready(const rm_control_t *c, const rm_admin_reply_t *reply);

/* Completes a waiting reply of method m: adds every connected sidecar's answer and the timeout
 * flag to reply->body, clears reply->wait. */
void rm_admin_wait_finish(rm_control_t *c, rm_admin_method_t m, rm_admin_reply_t *reply,
                          int timed_out, uint64_t now_ms);

void rm_admin_reply_free(rm_admin_reply_t *reply);

#endif /* REMORA_CONTROLPLANE_CORE_ADMIN_H */
