/* controlplane/registry/registry.h — who is connected, what each sidecar has been sent and has
 * answered, and the endpoints sidecars registered.
 *
 * A sidecar entry is created when a discovery stream opens and filled by its Hello. Its endpoint
 * (service + address) is part of the mesh from the Hello on; a WITHDRAW marks it draining; when
 * the stream ends the entry stays, disconnected, for the endpoint grace so that a sidecar that
 * reconnects at once never flaps out of every client's endpoint list, then it is removed. A new
 * Hello from the same pod replaces a disconnected entry at once.
 *
 * Answer bookkeeping, per sidecar: `config_version` is the config version the sidecar serves (set
 * by ACK, by a NACK's "version I keep", or by Hello's last_config_version when it is one the
 * store knows), `nacked` says the newest answer was a NACK (of `nacked_version`, with `error`).
 * Versions in ACK/NACK are read from our own record of what we sent under that nonce, never
 * trusted from the sidecar.
 *
 * Registrations in the store (controlplane/core writes them; the registry only keeps the
 * bookkeeping). An entry's `stored` says what the store holds for it as last written; the core
 * compares it with what the entry is now and writes the difference, so the store is written when
 * a registration changes, never per snapshot. An entry freed while the store still holds its
 * registration goes to the `gone` list instead, for the core to remove and then free. Two more
 * kinds of entries come from the store rather than from a stream:
 *   - restored: after a restart, the registrations our previous life left (SQLite), listed as
 *     disconnected entries in their grace (`hold_ms`) — exactly as if their streams had just
 *     died — so a client that reconnects first never gets an empty endpoint list; a Hello from
 *     the same pod takes over (as for any disconnected entry) and the grace expires the rest;
 *   - remote: registrations other replicas hold (etcd), listed while their key lives; never
 *     expired or written here, replaced wholesale on each re-read of the store.
 *
 * Threads: none; the caller (the completion-queue thread) owns the registry.
 */
#ifndef REMORA_CONTROLPLANE_REGISTRY_REGISTRY_H
#define REMORA_CONTROLPLANE_REGISTRY_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "controlplane/statsagg/statsagg.h"
#include "remora/v1/discovery.pb-c.h"

/* Longest identity field kept (pod, namespace, service, version, proxy_version), in bytes. */
#define RM_REGISTRY_NAME_MAX 253
/* Longest address ("[v6]:port" with room to spare). */
#define RM_REGISTRY_ADDR_MAX 300
/* Longest NACK error kept; longer ones are cut. */
#define RM_REGISTRY_ERROR_MAX 4096
/* Longest nonce (ours are ~30 bytes). */
#define RM_REGISTRY_NONCE_MAX 64
/* Snapshots remembered per sidecar to resolve ACK/NACK nonces. */
#define RM_REGISTRY_SENT_RING 8

typedef enum rm_sidecar_state {
    RM_SIDECAR_SYNCED = 0, /* serves the current version */
    RM_SIDECAR_STALE = 1,  /* serves an older version (or has not answered yet) */
    RM_SIDECAR_NACKED = 2, /* rejected the newest snapshot it answered */
} rm_sidecar_state_t;

typedef struct rm_sidecar rm_sidecar_t;
struct rm_sidecar {
    uint64_t id;
    /* Identity from Hello: owned strings, never NULL after Hello ("" when not given). */
    char *pod, *namespace_, *service, *version, *address, *proxy_version;
    int hello;        /* Hello received */
    int connected;    /* the stream is open */
    int has_endpoint; /* registered: service and address given */
    int draining;     /* withdrawn: still listed, marked draining */
    int remote;       /* listed from the store: another replica's sidecar (see file comment) */
    int stored;       /* what the store holds for it: 0 nothing, 1 registered, 2 draining */
    uint64_t hold_ms; /* when not 0: this entry's grace instead of the registry's (restored) */
    uint64_t held_until_ms; /* restored: the wall-clock end of hold_ms, stored with it */
    uint64_t connected_ms, last_seen_ms, disconnected_ms; /* monotonic */

    uint64_t config_version; /* what it serves (see file comment) */
    int nacked;
    uint64_t nacked_version;
    char *error; /* owned, or NULL: the newest NACK's error */
    uint64_t acks, nacks;

    struct {
        uint64_t version;
        char nonce[RM_REGISTRY_NONCE_MAX];
    } sent[RM_REGISTRY_SENT_RING]; /* ring of what we sent */
    size_t sent_next;              /* next slot to write */

    rm_statsagg_history_t *stats; /* owned: its stats reports */

    /* What this sidecar receives (its Hello's egress list, resolved by controlplane/core): a
     * counted reference into the core's scope cache, taken at Hello and dropped when the stream
     * ends; NULL before Hello and after. The registry never reads or frees it. */
    struct rm_scope *scope;

    rm_sidecar_t *prev, *next; /* the registry's list, in connection order */
};

typedef struct rm_registry {
    rm_sidecar_t *head, *tail; /* owned list */
    size_t count;              /* entries, connected or in grace */
    size_t connected;          /* entries with an open stream */
    size_t remote;             /* remote entries (in count) */
    uint64_t next_id;
    rm_sidecar_t *gone;   /* owned list (through next): freed entries the store still holds */
    size_t max_endpoints; /* cap on local endpoints (rm_registry_local_endpoints); 0: none */
} rm_registry_t;

/* Initialises an empty registry (caller-owned storage). */
void rm_registry_init(rm_registry_t *reg);
/* Frees every entry. */
void rm_registry_free(rm_registry_t *reg);

/* A stream opened: returns a new connected entry (without identity yet), owned by the registry. */
rm_sidecar_t *rm_registry_connect(rm_registry_t *reg, uint64_t now_ms);

/*
 * Applies a Hello (borrowed) to `sc`. `current_version` is the store's current version (a
 * last_config_version above it is ignored). Fields are checked: printable ASCII without spaces,
 * at most RM_REGISTRY_NAME_MAX bytes (address RM_REGISTRY_ADDR_MAX, and host:port when given);
 * on a bad field returns -EINVAL and writes a one-line reason into err. The node's endpoint is
 * registered unless hello->not_ready (then an EndpointChange REGISTER adds it later); either
 * way an earlier entry of the same pod or address is dropped. A Hello that would register one
 * endpoint more than max_endpoints (one that replaces an earlier entry of its pod or address
 * adds none) changes nothing and returns -ENOSPC (err says so). Returns 1 when the set of
 * endpoints changed (an endpoint was registered or a stale entry was dropped), else 0.
 */
int rm_registry_hello(rm_registry_t *reg, rm_sidecar_t *sc, const Remora__V1__Hello *hello,
                      uint64_t current_version, uint64_t now_ms, char *err, size_t errlen);

/* Endpoints listed by local entries (connected or in their grace; remote entries are another
 * replica's): what max_endpoints bounds. O(entries). */
size_t rm_registry_local_endpoints(const rm_registry_t *reg);
/* Whether one more local endpoint would exceed max_endpoints (an EndpointChange REGISTER). */
int rm_registry_full(const rm_registry_t *reg);

/* Records that snapshot (version, nonce) was sent to sc. */
void rm_registry_sent(rm_sidecar_t *sc, uint64_t version, const char *nonce);

/* ACK/NACK of a nonce we sent. Returns 0, or -ENOENT when the nonce is not one we remember
 * (the answer is then ignored: it is stale or invented). */
int rm_registry_ack(rm_sidecar_t *sc, const char *nonce, uint64_t now_ms);
int rm_registry_nack(rm_sidecar_t *sc, uint64_t kept_version, const char *nonce, const char *error,
                     uint64_t now_ms);

/* WITHDRAW: marks the endpoint draining. Returns 1 when that changed anything. */
int rm_registry_withdraw(rm_sidecar_t *sc, uint64_t now_ms);

/* The stream ended. With an endpoint and grace_ms > 0 the entry waits for rm_registry_expire;
 * otherwise it is freed now (sc is then invalid). Returns 1 when the endpoints changed now. */
int rm_registry_disconnect(rm_registry_t *reg, rm_sidecar_t *sc, uint64_t now_ms,
                           uint64_t grace_ms);

/* Frees disconnected entries whose grace has passed. Returns how many endpoints went away. */
size_t rm_registry_expire(rm_registry_t *reg, uint64_t now_ms, uint64_t grace_ms);

/* When the next disconnected entry's grace ends (UINT64_MAX: none). */
uint64_t rm_registry_next_expiry(const rm_registry_t *reg, uint64_t grace_ms);

/*
 * Lists a registration read from the store (strings borrowed and copied; fields are trusted to
 * be what a Hello passed, as the store only holds what we wrote). `remote` 0: a restored entry of
 * ours, disconnected at now_ms with grace `hold_ms`, with `stored` 0 so that the core writes it
 * again under its own name (owner) and can later remove it; `remote` 1: another replica's. The
 * entry is owned by the registry; returns it.
 */
rm_sidecar_t *rm_registry_add_listed(rm_registry_t *reg, const char *pod, const char *ns,
                                     const char *service, const char *version, const char *address,
                                     int draining, int remote, uint64_t hold_ms, uint64_t now_ms);

/* Frees every remote entry (before listing the store's again). */
void rm_registry_drop_remote(rm_registry_t *reg);

/* Takes the `gone` list (entries linked through next, owned by the caller now; free each with
 * rm_registry_entry_free once its registration is removed from the store). */
rm_sidecar_t *rm_registry_take_gone(rm_registry_t *reg);
/* Puts an entry taken from `gone` back (its removal failed; it is retried later). */
void rm_registry_return_gone(rm_registry_t *reg, rm_sidecar_t *sc);
/* Frees one entry that is in no list. */
void rm_registry_entry_free(rm_sidecar_t *sc);

/* The state shown by ProxyStatus. */
rm_sidecar_state_t rm_sidecar_state(const rm_sidecar_t *sc, uint64_t current_version);
const char *rm_sidecar_state_name(rm_sidecar_state_t s);

/* Whether sc has answered `version`: ACKed it or newer, or NACKed it or newer. */
int rm_sidecar_answered(const rm_sidecar_t *sc, uint64_t version);

#endif /* REMORA_CONTROLPLANE_REGISTRY_REGISTRY_H */
