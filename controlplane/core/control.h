/* controlplane/core/control.h — remora-control's state and logic, without any networking: the
 * config in force (backed by the store), the sidecar registry, the snapshot every sidecar is sent,
 * when to push it, and what each discovery-stream message does.
 *
 * The gRPC server (controlplane/server) owns one rm_control_t and calls in from its
 * completion-queue thread; the fuzz driver and the tests call the same functions directly. That
 * split is the point: everything a hostile or buggy peer can reach is here, testable without a
 * socket.
 *
 * Pushes. Any change (a new config version, an endpoint registered, removed or draining) marks
 * every snapshot dirty and schedules a push at most `debounce_ms` after the first change
 * (rm_control_changed); a withdraw schedules it for now, because a draining endpoint must leave
 * every client at once. The server asks rm_control_push_due, and sends every stream its scope's
 * snapshot (rm_control_sidecar_snapshot, rebuilt once per scope) unless it already has it. A
 * stream that says Hello gets its scope's current snapshot at once, without waiting.
 *
 * Scopes (issue 5). A sidecar's Hello may list the services it calls (Node.egress); it then
 * receives only those Services, the Services their Routes mirror to (so the sidecar's validator
 * never meets a reference it cannot resolve), their Routes and CircuitBreakers, and only their
 * endpoints. Sidecars with the same list (normalized: "name.namespace", sorted, unique) share
 * one rm_scope_t and so one encoded snapshot: 1,000 sidecars in one scope cost one encode per
 * push. The scope with the empty list ("all") is today's whole snapshot and always exists. A
 * rebuild whose content (config version and endpoint list) equals the previous one keeps the old
 * snapshot, so endpoint churn outside a scope never pushes to it; a new config version is always
 * pushed to every scope (its ACK is what `apply --wait` waits for).
 *
 * Threads: an rm_control_t and everything it owns belong to one thread at a time.
 */
#ifndef REMORA_CONTROLPLANE_CORE_CONTROL_H
#define REMORA_CONTROLPLANE_CORE_CONTROL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "controlplane/registry/registry.h"
#include "controlplane/store/store.h"
#include "controlplane/util/util.h"
#include "remora/v1/config.pb-c.h"

#define RM_CONTROL_DEFAULT_DEBOUNCE_MS 20u
#define RM_CONTROL_DEFAULT_GRACE_MS    2000u
/* How long registrations restored after a restart stay listed while their sidecars are not
 * back. Longer than one stream's grace because every sidecar reconnects on its own backoff
 * (1 s, x1.6, jittered): one that could not reach us for a few seconds comes back seconds
 * after the restart, and until then its clients must keep its endpoint. */
#define RM_CONTROL_DEFAULT_RESTORE_GRACE_MS 30000u
/* Config versions kept in the store (--history): a version is up to 4 MiB, so 100 of them fit a
 * 1 GiB volume with room for SQLite's WAL and free pages; rollback reaches that far back. */
#define RM_CONTROL_DEFAULT_HISTORY 100u

/* Caps (issue 18 item 12): what one peer, or a crowd of them, may make remora-control hold. Past
 * a cap the caller that would exceed it gets RESOURCE_EXHAUSTED with the flag's name; everyone
 * already in is unaffected; the refusal is counted (rm_control_t.refused) and logged at most
 * every RM_CONTROL_CAP_LOG_MS per cap. Defaults sit well above the largest tested mesh (1,000
 * sidecars in the README) and well below what would exhaust the process:
 *   streams        discovery streams open at once (1,000 measured at 36.6 MB anonymous)
 *   scopes         distinct egress lists (a key of up to 1,024 x 253 bytes and a snapshot each;
 *                  1,000 distinct scopes were measured to converge in ~50 ms)
 *   registrations  endpoints this replica lists as its own, connected or in their grace
 *                  (restored ones included; other replicas' are bounded by their own cap);
 *                  twice the streams so a rolling restart of a full mesh has room for the old
 *                  pods' grace
 *   waiters        Admin calls parked until sidecars answer (Apply wait, WaitForAck): each
 *                  ACK re-checks them all */
#define RM_CONTROL_DEFAULT_MAX_STREAMS       10000u
#define RM_CONTROL_DEFAULT_MAX_SCOPES        1000u
#define RM_CONTROL_DEFAULT_MAX_REGISTRATIONS 20000u
#define RM_CONTROL_DEFAULT_MAX_WAITERS       100u
#define RM_CONTROL_CAP_LOG_MS                10000u

/* Registration writes (registrations.c) start at least this far apart: every change that comes
 * in between waits for the next one, so a Hello or withdraw flood costs one store transaction
 * (one fsync with SQLite, one etcd round trip per 100 puts) per 50 ms, however many sidecars. */
#define RM_CONTROL_REG_BATCH_MS 50u

typedef enum rm_cap {
    RM_CAP_STREAMS = 0,
    RM_CAP_SCOPES,
    RM_CAP_REGISTRATIONS,
    RM_CAP_WAITERS,
    RM_CAP_COUNT,
} rm_cap_t;

/* remora-control's options (the sidecar's control client has its own, in dataplane/control). */
typedef struct rm_cp_options {
    uint64_t debounce_ms;      /* longest a change waits before it is pushed */
    uint64_t grace_ms;         /* how long a dead stream's endpoint stays listed */
    uint64_t restore_grace_ms; /* restored registrations (0: the default); at least grace_ms */
    uint64_t history;          /* config versions kept in the store (0: the default) */
    uint64_t max_streams;      /* caps (above); 0: the default */
    uint64_t max_scopes;
    uint64_t max_registrations;
    uint64_t max_waiters;
} rm_cp_options_t;

/*
 * Packed snapshot bytes with an atomic reference count, so the server can hand them to gRPC
 * without a copy (gRPC drops its references on its own threads, hence atomic). Immutable once
 * built.
 */
typedef struct rm_snapshot_bytes {
    atomic_size_t refs;
    size_t len;
    uint8_t data[];
} rm_snapshot_bytes_t;

/* Takes a reference (any thread). */
void rm_snapshot_bytes_ref(rm_snapshot_bytes_t *b);
/* Drops a reference, freeing on the last (any thread). NULL is a no-op. */
void rm_snapshot_bytes_unref(rm_snapshot_bytes_t *b);

/* The snapshot as sent: one packed DiscoveryResponse shared by every stream of one scope. (The
 * sidecar's decoded, validated snapshot is dataplane/snapshot's rm_snapshot_t.) */
typedef struct rm_scope_snapshot {
    uint64_t gen; /* unique per build across all scopes, grows; 0: never built */
    uint64_t version;
    char nonce[RM_REGISTRY_NONCE_MAX];
    rm_snapshot_bytes_t *bytes; /* owned reference; NULL before the first build */
    const uint8_t *data;        /* bytes->data: packed remora.v1.DiscoveryResponse */
    size_t len;
    size_t n_endpoints;
} rm_scope_snapshot_t;

/* Longest egress list a Hello may carry, and longest entry. */
#define RM_SCOPE_MAX_ENTRIES 1024
#define RM_SCOPE_MAX_ENTRY   253

/* One distinct egress list and its snapshot (scope.c). */
typedef struct rm_scope rm_scope_t;
struct rm_scope {
    char *key;    /* owned: "name.ns,..." sorted and unique; "" for everything */
    char **items; /* owned: the key's entries, sorted (n_items == 0: everything) */
    size_t n_items;
    size_t refs; /* connected sidecars in this scope (the "all" scope is never freed) */
    rm_scope_snapshot_t snap; /* owned */
    uint64_t built;           /* c->changes when snap was last (re)considered */
    uint64_t content; /* hash of the endpoint list of snap (with its version: its content) */
    rm_scope_t *next; /* the control's list */
};

typedef struct rm_control {
    rm_store_t *store; /* owned */
    rm_cp_options_t opt;

    uint64_t version;              /* current config version; 0 when the store is empty */
    Remora__V1__ConfigSet *config; /* owned, never NULL; defaulted and valid */

    rm_registry_t registry;

    rm_scope_t *scopes; /* owned list of scopes, the "all" scope first */
    rm_scope_t *all;    /* the empty egress list: everything (borrowed from the list) */
    size_t n_scopes;
    uint64_t changes;             /* grows per change; a scope built at an older count is dirty */
    uint64_t gen;                 /* the last snapshot generation handed out */
    struct rm__snap_index *index; /* owned: snapshot.c's lookup tables for scoped builds */
    uint64_t push_at;             /* monotonic ms when a push to all streams is due; 0: none due */
    int answers_changed;          /* an ACK/NACK/disconnect happened since the server last looked */
    char boot_id[17];             /* random hex, makes nonces unique across restarts */
    uint64_t pushes;              /* snapshots encoded, all scopes (for logs and tests) */
    int resync;         /* re-read the store's latest version (shared stores: rm_control_sync) */
    uint64_t resync_at; /* monotonic ms of the next attempt after a failed re-read; 0: now */

    /* Endpoint registrations in the store (registrations.c). */
    int ep_dirty;          /* something may differ from what the store holds */
    uint64_t ep_flush_at;  /* monotonic ms when the dirty registrations are written; 0: none */
    uint64_t ep_wrote_at;  /* monotonic ms of the last write (RM_CONTROL_REG_BATCH_MS); 0: none */
    uint64_t ep_writes;    /* store transactions of registrations (for logs and tests) */
    uint64_t ep_retry_at;  /* monotonic ms of the next write attempt after a failure */
    int ep_failing;        /* writes are failing (logged once) */
    int ep_resync;         /* shared store: list other replicas' registrations again */
    uint64_t ep_resync_at; /* monotonic ms of the next attempt after a failed list */

    /* Caps: what was refused since start, per cap, and when each may be logged next. */
    uint64_t refused[RM_CAP_COUNT];
    uint64_t refused_log_at[RM_CAP_COUNT];
    uint64_t waiters; /* Admin calls the server holds parked (rm_admin_wait_count) */
} rm_control_t;

/*
 * Creates the state over `store` (ownership passes to the control object, also on failure) and
 * loads the newest config version from it. `opt` may be NULL (defaults). Returns 0 and *out, or a
 * negative code with a one-line reason in err (a stored config that no longer unpacks, a store
 * that cannot be read).
 */
int rm_control_open(rm_store_t *store, const rm_cp_options_t *opt, rm_control_t **out, char *err,
                    size_t errlen);
/* Frees everything, closing the store. NULL is a no-op. */
void rm_control_close(rm_control_t *c);

/* Marks the snapshot dirty and schedules a push: now when `urgent`, else at most debounce_ms
 * after the first unpushed change. */
void rm_control_changed(rm_control_t *c, uint64_t now_ms, int urgent);

/* The current whole ("all" scope) snapshot, rebuilt first when dirty. Borrowed until the next
 * call that may rebuild it. */
const rm_scope_snapshot_t *rm_control_snapshot(rm_control_t *c);

/*
 * The whole snapshot for a stream that just said Hello: the current one when it already carries
 * the current config version, even if registrations since made its endpoint list stale (the push
 * already scheduled for those brings the newcomer up to date within the debounce); rebuilt only
 * when the config version moved. Why: in a connect storm of N sidecars, rebuilding per Hello
 * would encode N snapshots of up to N endpoints each — quadratic work and memory for nothing.
 */
const rm_scope_snapshot_t *rm_control_snapshot_for_hello(rm_control_t *c);

typedef enum rm_snap_when {
    RM_SNAP_CURRENT = 0, /* as built; never rebuilds (a send completed: catch up only) */
    RM_SNAP_PUSH = 1,    /* rebuilt when dirty (the debounced push) */
    RM_SNAP_HELLO = 2,   /* rebuilt only when never built or the config version moved (above) */
} rm_snap_when_t;

/*
 * The snapshot of sc's scope (the whole one for a sidecar without an egress list, or before
 * Hello). Borrowed until the next call that may rebuild it; gen 0 when never built. Owner
 * thread.
 */
const rm_scope_snapshot_t *rm_control_sidecar_snapshot(rm_control_t *c, rm_sidecar_t *sc,
                                                       rm_snap_when_t when);

/* What sc receives, for ProxyStatus: its scope's key, or "all". Borrowed. */
const char *rm_control_sidecar_scope(const rm_sidecar_t *sc);

/* Whether a push to every stream is due at now_ms; the server then calls rm_control_snapshot,
 * sends, and rm_control_push_done. */
int rm_control_push_due(const rm_control_t *c, uint64_t now_ms);
void rm_control_push_done(rm_control_t *c);

/* Expires registry entries whose grace ended (scheduling a push when endpoints went away), then
 * writes changed endpoint registrations to the store (registrations.c). */
void rm_control_tick(rm_control_t *c, uint64_t now_ms);

/* The earliest time rm_control_tick or a push has work to do (UINT64_MAX: nothing pending),
 * registration writes held back by RM_CONTROL_REG_BATCH_MS included. */
uint64_t rm_control_next_deadline(const rm_control_t *c);

/* Installs a new current config (takes ownership of `set`, a valid defaulted set) at `version`
 * and schedules a push. Used by the config operations. */
void rm_control_install(rm_control_t *c, uint64_t version, Remora__V1__ConfigSet *set,
                        uint64_t now_ms);

/*
 * For stores other replicas write too (etcd): asks the store whether someone else may have
 * appended (rm_store_changed) and, when so — or when a conflict on append asked for it — re-reads
 * the latest version; a newer one is installed and pushed like a local apply. A failed read is
 * retried at most once a second (etcd down: the last config keeps being served; the store's
 * watcher logs the outage once). Blocks only for that one read. Returns 1 when a new version was
 * installed, else 0. Also re-reads other replicas' endpoint registrations when the store
 * announced a change (registrations.c). The server calls it after every event; owner thread.
 */
int rm_control_sync(rm_control_t *c, uint64_t now_ms);

/* How long the server may sleep before the next rm_control_sync (UINT64_MAX: not needed). */
uint64_t rm_control_sync_interval(const rm_control_t *c);

/* ---- the discovery stream ---- */

/* What the server must do after a message. */
typedef struct rm_disc_result {
    rm_status_t code; /* non-OK: end the stream with this status and `message` */
    char message[512];
    int send_now; /* send the current snapshot to this stream now (after Hello) */
} rm_disc_result_t;

/* A stream opened: a new registry entry, owned by the registry; NULL when max_streams streams
 * are open already (counted as refused): the server ends the new stream with
 * RESOURCE_EXHAUSTED and a message from rm_control_cap_message. */
rm_sidecar_t *rm_discovery_open(rm_control_t *c, uint64_t now_ms);

/* Why `cap` refuses its callers now, in one line naming its flag (for status messages and the
 * log): written into buf (n bytes), which is returned. */
const char *rm_control_cap_message(const rm_control_t *c, rm_cap_t cap, char *buf, size_t n);

/*
 * Handles one DiscoveryRequest in its wire form (`data`, `len` bytes, borrowed) from the stream of
 * `sc`. Returns 0 to keep the stream, or -1 when res->code says how to end it (malformed
 * protobuf, no Hello first, a bad Hello, a second Hello). Never keeps a pointer into `data`.
 */
int rm_discovery_handle(rm_control_t *c, rm_sidecar_t *sc, const uint8_t *data, size_t len,
                        uint64_t now_ms, rm_disc_result_t *res);

/* The server is sending `snap` to `sc` (so ACK/NACK of its nonce can be resolved). */
void rm_discovery_sent(rm_control_t *c, rm_sidecar_t *sc, const rm_scope_snapshot_t *snap);

/* The stream of sc ended; sc must not be used afterwards. */
void rm_discovery_close(rm_control_t *c, rm_sidecar_t *sc, uint64_t now_ms);

#endif /* REMORA_CONTROLPLANE_CORE_CONTROL_H */
