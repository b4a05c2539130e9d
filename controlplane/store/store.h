/* controlplane/store/store.h — the versioned config store behind remora-control: an interface
 * (a struct of function pointers) with SQLite, in-memory and etcd implementations, so callers
 * never know which one they hold.
 *
 * The model is an append-only log of versions. Version numbers start at 1 and grow by one; each
 * record holds the whole ConfigSet packed (protobuf bytes), the time it was created and a one-line
 * summary of what changed. The current config is the record with the highest version. History
 * and rollback are reads of older records; a rollback appends a copy of an older record. The
 * owner keeps the log bounded by pruning its oldest records (remora-control --history N keeps
 * the last N): the versions kept are always one dense range ending at the latest.
 *
 * Why a compare-and-append (expect_version) instead of a plain append: with several control-plane
 * replicas on one shared store (etcd), two applies may race; the loser must see -EAGAIN, reload
 * and retry or fail, rather than silently stack its change on a config it never validated.
 *
 * Threads: a store object is used by one thread at a time (remora-control uses it from its
 * completion-queue thread only). Calls block on disk I/O (SQLite) — see server.c for why that is
 * acceptable there.
 */
#ifndef REMORA_CONTROLPLANE_STORE_STORE_H
#define REMORA_CONTROLPLANE_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

/* The default location when no --store flag is given (relative to the working directory). */
#define RM_STORE_DEFAULT_URI "sqlite:./remora-data/remora.db"

/* Longest summary kept per version, in bytes; longer summaries are cut with "...". */
#define RM_STORE_SUMMARY_MAX 1024

/* One version. Every pointer is owned by the record; free with rm_store_record_free. */
typedef struct rm_store_record {
    uint64_t version;
    uint64_t created_ms; /* wall clock, milliseconds since the Unix epoch */
    char *summary;       /* owned, NUL-terminated, never NULL in a filled record */
    uint8_t *config;     /* owned packed remora.v1.ConfigSet; NULL in history listings */
    size_t config_len;
} rm_store_record_t;

typedef struct rm_store rm_store_t;

/*
 * One endpoint registration: a sidecar that said Hello with a service and an address, as kept in
 * the store so that it outlives the stream and the process that received it (a restarted
 * remora-control lists it again before the sidecar is back; another replica on the same etcd
 * lists it for its own clients). Identity fields are what the registry checked in Hello:
 * printable ASCII without spaces or newlines. The key is "<namespace>/<pod>", or
 * "<namespace>/@<address>" for a sidecar without a pod name: one registration per pod.
 *
 * `owner` names the remora-control process that holds the sidecar's stream (its boot id). With
 * etcd the record is attached to that process's lease: when the process dies its registrations
 * expire with the lease, and no other replica deletes them while the lease is fresh.
 *
 * `held_until_ms` (wall clock, ms since the epoch; 0 for a sidecar seen in this life) marks a
 * registration restored after a restart whose sidecar had not come back when it was written: the
 * next restart lists it only until then, so restarts in a row cannot keep a dead pod listed.
 * Stores only one process writes (SQLite, mem) keep it; etcd's records expire with their lease.
 *
 * Strings are owned by the record in lists (rm_store_endpoints_free) and borrowed when a record
 * is passed in.
 */
typedef struct rm_store_endpoint {
    char *pod, *namespace_, *service, *version, *address, *owner;
    int draining;
    uint64_t held_until_ms;
} rm_store_endpoint_t;

/* Longest registration key ("ns/pod" or "ns/@address"), with its NUL. */
#define RM_STORE_EP_KEY_MAX 600

/*
 * What an implementation provides. Every function returns 0 or a negative errno-style code and,
 * on failure, writes a human-readable reason into store->error.
 */
typedef struct rm_store_ops {
    const char *scheme; /* "sqlite", "mem", "etcd" */

    /* Reads `version` (0: the latest) into *out (zeroed first). -ENOENT when there is no such
     * version (or no version at all). */
    int (*get)(rm_store_t *s, uint64_t version, rm_store_record_t *out);

    /* Appends a new version if the latest version is still `expect_version` (0: the store is
     * empty); -EAGAIN otherwise. `config` (len bytes) and `summary` are copied. On success writes
     * the new version number to *out_version. */
    int (*append)(rm_store_t *s, uint64_t expect_version, const uint8_t *config, size_t len,
                  const char *summary, uint64_t created_ms, uint64_t *out_version);

    /* Lists at most `limit` versions, newest first, without their config bytes. *out is a new
     * array of *n records owned by the caller (rm_store_records_free); NULL when *n is 0. */
    int (*history)(rm_store_t *s, uint32_t limit, rm_store_record_t **out, size_t *n);

    /* Frees the store (flushes and closes files). */
    void (*close)(rm_store_t *s);

    /*
     * Retention (optional; a store without it keeps every version). `prune` deletes every
     * version below `keep_from` — records and history entries alike — and writes how many
     * versions went to *pruned (may be NULL). Idempotent: versions already gone, or a keep_from
     * at or below the oldest, delete nothing. Callers never prune the latest version (the
     * compare-and-append of a shared store compares against it). `oldest` writes the oldest
     * version still kept (0: none) to *out.
     */
    int (*prune)(rm_store_t *s, uint64_t keep_from, uint64_t *pruned);
    int (*oldest)(rm_store_t *s, uint64_t *out);

    /*
     * Optional; NULL for stores only this process writes (SQLite, mem). Non-blocking and cheap:
     * returns 1 when another writer may have appended a version since the last call that
     * returned 1 (or the store's change feed was re-established, so a change may have been
     * missed), else 0. The caller then re-reads the latest version with get(0).
     *
     * Why a flag the owner polls rather than a callback: the store is used by one thread (the
     * server's completion-queue thread), and gRPC core's C API has no public way to wake a
     * completion queue from another thread (grpc_alarm is C++ only). The etcd store's watcher
     * thread bumps an atomic counter per event; the server loop caps its wait at
     * RM_STORE_WATCH_POLL_MS while the store has this op, so a version written by another
     * replica is installed within that plus the push debounce. An idle loop pays one atomic load
     * per wake-up.
     */
    int (*changed)(rm_store_t *s);

    /* ---- endpoint registrations (see rm_store_endpoint_t); owner thread, blocking ---- */

    /* Creates or replaces the registration under e's key (e borrowed). With etcd the key is
     * attached to this process's lease (granted on first use). */
    int (*ep_put)(rm_store_t *s, const rm_store_endpoint_t *e);
    /* Deletes e's key only while it still holds exactly e (same owner, same fields): a sidecar
     * that moved to another replica, which rewrote the key, keeps its registration. Not
     * finding it is success. */
    int (*ep_remove)(rm_store_t *s, const rm_store_endpoint_t *e);
    /* Every registration, in key order. *out is a new array of *n records owned by the caller
     * (rm_store_endpoints_free); NULL when *n is 0. Records that do not decode are skipped. */
    int (*ep_list)(rm_store_t *s, rm_store_endpoint_t **out, size_t *n);
    /* Optional: brackets a batch of ep_put/ep_remove (`end` 0: begin, 1: commit) so that a flush
     * of many registrations costs one transaction — one fsync with SQLite — not one each. A
     * failed commit returns a negative code and nothing of the batch is kept. */
    int (*ep_batch)(rm_store_t *s, int end);
    /* Optional (shared stores): like `changed`, for registrations written or deleted by anyone
     * (this process included) since the last call that returned 1. */
    int (*ep_changed)(rm_store_t *s);
    /* Optional (etcd): keeps this process's lease alive; cheap when not due (every
     * RM_STORE_LEASE_TTL_S / 3 seconds). Returns 1 when the lease had expired (etcd was
     * unreachable for longer than its TTL): every registration of this process is gone and must
     * be put again; 0 otherwise, or a negative code when etcd did not answer. */
    int (*ep_keepalive)(rm_store_t *s, uint64_t now_ms);
} rm_store_ops_t;

/* The TTL of a replica's etcd lease: how long the registrations of a replica that died stay
 * listed (its sidecars reconnect to another replica and register there meanwhile). */
#define RM_STORE_LEASE_TTL_S 10

/* How often the owner of a store with a `changed` op should poll it, in milliseconds. */
#define RM_STORE_WATCH_POLL_MS 10u

/* The part every implementation starts with. Implementations embed it as their first member. */
struct rm_store {
    const rm_store_ops_t *ops; /* borrowed, static */
    char error[256];           /* the last failure's reason */
};

/*
 * Opens the store named by `uri`: "sqlite:PATH" (the parent directory is created when missing;
 * the database is put in WAL mode), "mem:" (in memory, for tests and fuzzing),
 * "etcd://HOST:PORT[/PREFIX]" (etcd's v3 API; keys under PREFIX, default /remora/v1/; etcd must
 * answer one read within a few seconds, and a watcher thread is started — see store_etcd.c). On
 * success returns 0 and stores a new store in *out, owned by the caller (rm_store_close). On
 * failure returns a negative code, *out is NULL and `err` (errlen bytes, may be NULL) says why in
 * one line. Any thread.
 */
int rm_store_open(const char *uri, rm_store_t **out, char *err, size_t errlen);

/* Thin wrappers over the ops, so callers never see the table. Same contracts as above. */
int rm_store_get(rm_store_t *s, uint64_t version, rm_store_record_t *out);
int rm_store_append(rm_store_t *s, uint64_t expect_version, const uint8_t *config, size_t len,
                    const char *summary, uint64_t created_ms, uint64_t *out_version);
int rm_store_history(rm_store_t *s, uint32_t limit, rm_store_record_t **out, size_t *n);
/* The retention ops; a store without them keeps everything: prune deletes nothing (0 pruned)
 * and oldest says 1 when the store holds a version (0 when empty). */
int rm_store_prune(rm_store_t *s, uint64_t keep_from, uint64_t *pruned);
int rm_store_oldest(rm_store_t *s, uint64_t *out);
/* The `changed` op; 0 for stores without one. Owner thread. */
int rm_store_changed(rm_store_t *s);
/* Whether the store has a `changed` op worth polling (is shared with other writers). */
int rm_store_is_shared(const rm_store_t *s);
/* NULL is a no-op. */
void rm_store_close(rm_store_t *s);

/* Endpoint registrations: the ops above (every store here has put/remove/list; a test double
 * without them keeps none: writes succeed, lists are empty). Owner thread. */
int rm_store_ep_put(rm_store_t *s, const rm_store_endpoint_t *e);
int rm_store_ep_remove(rm_store_t *s, const rm_store_endpoint_t *e);
int rm_store_ep_list(rm_store_t *s, rm_store_endpoint_t **out, size_t *n);
/* 0 for stores without the op. */
int rm_store_ep_batch(rm_store_t *s, int end);
int rm_store_ep_changed(rm_store_t *s);
int rm_store_ep_keepalive(rm_store_t *s, uint64_t now_ms);
/* Writes e's key ("ns/pod" or "ns/@address") into out (n bytes). Any thread. */
void rm_store_endpoint_key(const rm_store_endpoint_t *e, char *out, size_t n);
/* Frees what a record owns and zeroes it; NULL is a no-op. */
void rm_store_endpoint_free(rm_store_endpoint_t *e);
/* Frees an array from ep_list and its records. */
void rm_store_endpoints_free(rm_store_endpoint_t *e, size_t n);
/* The last failure's reason; never NULL. Borrowed until the next call on the store. */
const char *rm_store_error(const rm_store_t *s);

/* Frees what a record owns and zeroes it. NULL is a no-op. */
void rm_store_record_free(rm_store_record_t *r);
/* Frees an array from history() and its records. */
void rm_store_records_free(rm_store_record_t *r, size_t n);

#endif /* REMORA_CONTROLPLANE_STORE_STORE_H */
