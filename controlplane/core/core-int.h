/* controlplane/core/core-int.h — what the files of controlplane/core share and nobody else sees. */
#ifndef REMORA_CONTROLPLANE_CORE_CORE_INT_H
#define REMORA_CONTROLPLANE_CORE_CORE_INT_H

#include "controlplane/core/admin.h"
#include "controlplane/core/control.h"
#include "remora/v1/admin.pb-c.h"

/* snapshot.c: rebuilds sc's snapshot from the config and the registry (keeping the old one when
 * its content did not change); marks it built at c->changes. */
void rm__snapshot_build(rm_control_t *c, rm_scope_t *sc);
/* snapshot.c: frees a snapshot's bytes. */
void rm__snapshot_clear(rm_scope_snapshot_t *s);
/* snapshot.c: frees c->index (rm_control_close). */
void rm__snapshot_index_free(rm_control_t *c);

/* control.c: counts a refusal by `cap` and logs it (at most every RM_CONTROL_CAP_LOG_MS). */
void rm__cap_refused(rm_control_t *c, rm_cap_t cap, uint64_t now_ms);

/* scope.c: the scope cache. */
/* Creates the "all" scope (rm_control_open). */
void rm__scope_init(rm_control_t *c);
/* Frees every scope (rm_control_close). */
void rm__scope_free_all(rm_control_t *c);
/* The scope for a Hello's egress list (`ns`: the sidecar's namespace), found or created, with a
 * reference taken. NULL with a one-line reason in err and the status in *code when the list is
 * malformed (INVALID_ARGUMENT) or would be a new scope past max_scopes (RESOURCE_EXHAUSTED). */
rm_scope_t *rm__scope_acquire(rm_control_t *c, char *const *egress, size_t n, const char *ns,
                              rm_status_t *code, char *err, size_t errlen);
/* Drops a reference; a scope nobody uses is freed (never the "all" scope). */
void rm__scope_release(rm_control_t *c, rm_scope_t *s);

/* registrations.c: endpoint registrations in the store. */
/* Lists the stored registrations at open (restored in grace, or other replicas'). */
void rm__reg_open(rm_control_t *c, uint64_t now_ms);
/* Writes what changed since the last flush (and keeps an etcd lease alive), when due. */
void rm__reg_flush(rm_control_t *c, uint64_t now_ms);
/* When the dirty registrations are due to be written (UINT64_MAX: nothing to write). */
uint64_t rm__reg_due(const rm_control_t *c);
/* Shared stores: re-reads other replicas' registrations when the store says they changed.
 * Returns 1 when the listed set changed. */
int rm__reg_sync(rm_control_t *c, uint64_t now_ms);

/* config_ops.c: deletes the versions older than the last opt.history from the store (after a
 * new version, and at open); a failure is logged and retried with the next version. */
void rm__history_prune(rm_control_t *c);

/* config_ops.c: the config-changing and config-reading methods. */
void rm__admin_apply(rm_control_t *c, const Remora__V1__ApplyRequest *req, uint64_t now_ms,
                     rm_admin_reply_t *reply);
void rm__admin_delete(rm_control_t *c, const Remora__V1__DeleteRequest *req, uint64_t now_ms,
                      rm_admin_reply_t *reply);
void rm__admin_rollback(rm_control_t *c, const Remora__V1__RollbackRequest *req, uint64_t now_ms,
                        rm_admin_reply_t *reply);
void rm__admin_get(rm_control_t *c, const Remora__V1__GetRequest *req, rm_admin_reply_t *reply);
void rm__admin_history(rm_control_t *c, const Remora__V1__HistoryRequest *req,
                       rm_admin_reply_t *reply);

/* admin.c helpers. */
void rm__reply_status(rm_admin_reply_t *reply, rm_status_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Takes ownership of a details string built elsewhere. */
void rm__reply_status_take(rm_admin_reply_t *reply, rm_status_t code, char *details);
void rm__reply_body(rm_admin_reply_t *reply, const ProtobufCMessage *msg);
/* admin.c: whether a request that would wait must be refused (max_waiters calls are parked);
 * then the reply says so (RESOURCE_EXHAUSTED; `what` is added, e.g. "; nothing applied") and
 * the refusal is counted. */
int rm__wait_refused(rm_control_t *c, uint64_t now_ms, const char *what, rm_admin_reply_t *reply);
/* The wait a request asked for: timeout in ms from a Duration (NULL/unset: default), capped. */
uint64_t rm__wait_ms(const Remora__V1__Duration *d);

#endif /* REMORA_CONTROLPLANE_CORE_CORE_INT_H */
