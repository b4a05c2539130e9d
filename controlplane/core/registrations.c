/* controlplane/core/registrations.c — endpoint registrations kept in the store, so that they
 * outlive a stream, a restart and a replica (the registry keeps the bookkeeping, see
 * registry.h; the store the records, see store.h).
 *
 * Writing. Every change goes through rm_control_changed, which marks registrations dirty; the
 * next rm_control_tick (run after every event) compares each local entry's `stored` state with
 * what it is now and writes only the difference: removals first (entries on the registry's
 * `gone` list, and connected entries whose endpoint a newer Hello took over), then puts. So a
 * key that changes hands within one pass (the same pod reconnecting) is removed and rewritten in
 * that order, and the store is written when a registration changes, never per snapshot. A failed
 * write keeps the rest dirty and is retried once a second (the endpoint keeps being served from
 * memory meanwhile). Writes start at least RM_CONTROL_REG_BATCH_MS apart (rm__reg_due): in a
 * flood of Hellos or withdraws everything that changed meanwhile goes in the next transaction,
 * so the server thread spends one fsync per 50 ms on registrations, whatever the flood's size.
 * A withdraw waits for that at most (its push to this replica's sidecars does not wait at all).
 *
 * Reading. At open, a store only we write (SQLite, mem) holds our previous life's
 * registrations: they are listed as disconnected entries in their grace (restore_grace_ms), so a
 * client that reconnects before its servers gets their endpoints, never an empty list. A shared
 * store (etcd) holds other replicas' registrations too: they are listed as remote entries, read
 * again whenever the store's watch reports a registration event, and never expired here (their
 * owner's lease does that). A remote record for a pod or address that has a local entry is
 * skipped: the sidecar's own stream is the fresher truth.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log/log.h"
#include "controlplane/core/core-int.h"

/* How long a failed store write or read waits before the next attempt. */
#define RM_REG_RETRY_MS 1000u

static uint64_t restore_grace(const rm_control_t *c)
{
    uint64_t g =
        c->opt.restore_grace_ms ? c->opt.restore_grace_ms : RM_CONTROL_DEFAULT_RESTORE_GRACE_MS;
    return g > c->opt.grace_ms ? g : c->opt.grace_ms;
}

static rm_store_endpoint_t record_of(const rm_control_t *c, const rm_sidecar_t *sc, int state)
{
    rm_store_endpoint_t e = {
        .pod = sc->pod,
        .namespace_ = sc->namespace_,
        .service = sc->service,
        .version = sc->version,
        .address = sc->address,
        .owner = (char *)c->boot_id,
        .draining = state == 2,
        .held_until_ms = sc->hold_ms != 0 ? sc->held_until_ms : 0,
    };
    return e;
}

/* What the store should hold for a local entry: 0 nothing, 1 registered, 2 draining. */
static int wanted(const rm_sidecar_t *sc)
{
    if (!sc->hello || !sc->has_endpoint)
        return 0;
    return sc->draining ? 2 : 1;
}

static void write_failed(rm_control_t *c, uint64_t now_ms, const char *what)
{
    if (!c->ep_failing)
        rm_log_warn("endpoint registrations: %s failed: %s; endpoints are served from memory, "
                    "retrying every %ums",
                    what, rm_store_error(c->store), RM_REG_RETRY_MS);
    c->ep_failing = 1;
    c->ep_dirty = 1;
    c->ep_retry_at = now_ms + RM_REG_RETRY_MS;
}

uint64_t rm__reg_due(const rm_control_t *c)
{
    if (!c->ep_dirty)
        return UINT64_MAX;
    uint64_t at = c->ep_flush_at;
    if (c->ep_failing && c->ep_retry_at > at)
        at = c->ep_retry_at;
    if (c->ep_wrote_at != 0 && c->ep_wrote_at + RM_CONTROL_REG_BATCH_MS > at)
        at = c->ep_wrote_at + RM_CONTROL_REG_BATCH_MS;
    return at;
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void rm__reg_flush(rm_control_t *c, uint64_t now_ms)
{
    int rc = rm_store_ep_keepalive(c->store, now_ms);
    if (rc == 1) {
        /* The lease expired: every registration of ours is gone from etcd. Write them all. */
        for (rm_sidecar_t *sc = c->registry.head; sc != NULL; sc = sc->next)
            if (!sc->remote)
                sc->stored = 0;
        c->ep_dirty = 1;
    }
    if (!c->ep_dirty || now_ms < c->ep_retry_at || now_ms < c->ep_flush_at ||
        (c->ep_wrote_at != 0 && now_ms < c->ep_wrote_at + RM_CONTROL_REG_BATCH_MS))
        return;
    c->ep_dirty = 0;
    c->ep_flush_at = 0;
    uint64_t t0 = mono_us();
    int failed = 0;
    size_t wrote = 0;
    if (rm_store_ep_batch(c->store, 0) < 0) {
        write_failed(c, now_ms, "starting a transaction");
        return;
    }

    rm_sidecar_t *g = rm_registry_take_gone(&c->registry);
    while (g != NULL) {
        rm_sidecar_t *next = g->next;
        rm_store_endpoint_t e = record_of(c, g, g->stored);
        if (!failed && rm_store_ep_remove(c->store, &e) == 0) {
            wrote++;
            rm_registry_entry_free(g);
        } else {
            if (!failed)
                write_failed(c, now_ms, "removing a registration");
            failed = 1;
            rm_registry_return_gone(&c->registry, g);
        }
        g = next;
    }
    for (rm_sidecar_t *sc = c->registry.head; sc != NULL && !failed; sc = sc->next) {
        if (sc->remote || sc->stored == 0 || wanted(sc) != 0)
            continue;
        rm_store_endpoint_t e = record_of(c, sc, sc->stored);
        if (rm_store_ep_remove(c->store, &e) < 0) {
            write_failed(c, now_ms, "removing a registration");
            failed = 1;
            break;
        }
        sc->stored = 0;
        wrote++;
    }
    for (rm_sidecar_t *sc = c->registry.head; sc != NULL && !failed; sc = sc->next) {
        int want = wanted(sc);
        if (sc->remote || want == 0 || sc->stored == want)
            continue;
        rm_store_endpoint_t e = record_of(c, sc, want);
        if (rm_store_ep_put(c->store, &e) < 0) {
            write_failed(c, now_ms, "storing a registration");
            failed = 1;
            break;
        }
        sc->stored = want;
        wrote++;
    }
    if (rm_store_ep_batch(c->store, 1) < 0) {
        /* Nothing of this pass was kept: write every registration again next time. Entries
         * freed above are lost to the store; a restart restores them, and they expire then. */
        for (rm_sidecar_t *sc = c->registry.head; sc != NULL; sc = sc->next)
            if (!sc->remote)
                sc->stored = 0;
        if (!failed)
            write_failed(c, now_ms, "committing registrations");
        failed = 1;
        wrote = 0;
    }
    if (!failed && c->ep_failing) {
        rm_log_info("endpoint registrations: the store takes writes again");
        c->ep_failing = 0;
    }
    if (!failed && wrote > 0) {
        /* Only a transaction that wrote something holds the next one back: a flush that found
         * nothing to write (a config push marks registrations dirty too) costs no fsync. */
        c->ep_wrote_at = now_ms;
        c->ep_writes++;
        rm_log_debug("endpoint registrations: %zu change(s) written in one transaction in %.1f ms",
                     wrote, (double)(mono_us() - t0) / 1000.0);
    }
    /* A conditional removal that found someone else's record writes nothing and so announces
     * nothing: read the store again to list that record now that ours is gone. */
    if (wrote > 0 && rm_store_is_shared(c->store))
        c->ep_resync = 1;
}

/* Whether a local entry (connected, or in its grace) already stands for record e. */
static int local_has(const rm_control_t *c, const rm_store_endpoint_t *e)
{
    for (const rm_sidecar_t *sc = c->registry.head; sc != NULL; sc = sc->next) {
        if (sc->remote || !sc->hello || !sc->has_endpoint)
            continue;
        if ((*e->pod && strcmp(sc->pod, e->pod) == 0 &&
             strcmp(sc->namespace_, e->namespace_) == 0) ||
            strcmp(sc->address, e->address) == 0)
            return 1;
    }
    return 0;
}

static int same_as(const rm_sidecar_t *sc, const rm_store_endpoint_t *e)
{
    return strcmp(sc->pod, e->pod) == 0 && strcmp(sc->namespace_, e->namespace_) == 0 &&
           strcmp(sc->service, e->service) == 0 && strcmp(sc->version, e->version) == 0 &&
           strcmp(sc->address, e->address) == 0 && sc->draining == e->draining;
}

/* Whether address `a` is listed draining among the current remote entries. */
static int remote_draining(const rm_control_t *c, const char *a)
{
    for (const rm_sidecar_t *sc = c->registry.head; sc != NULL; sc = sc->next)
        if (sc->remote && sc->draining && strcmp(sc->address, a) == 0)
            return 1;
    return 0;
}

int rm__reg_sync(rm_control_t *c, uint64_t now_ms)
{
    if (!rm_store_is_shared(c->store))
        return 0;
    if (rm_store_ep_changed(c->store))
        c->ep_resync = 1;
    if (!c->ep_resync || now_ms < c->ep_resync_at)
        return 0;
    rm_store_endpoint_t *recs = NULL;
    size_t n = 0;
    if (rm_store_ep_list(c->store, &recs, &n) < 0) {
        rm_log_debug("listing endpoint registrations: %s; retrying in %ums",
                     rm_store_error(c->store), RM_REG_RETRY_MS);
        c->ep_resync_at = now_ms + RM_REG_RETRY_MS;
        return 0;
    }
    c->ep_resync = 0;
    c->ep_resync_at = 0;

    /* Keep the records that are other replicas' and not standing in for a local entry, then
     * compare them, in order, with the remote entries listed now. */
    size_t keep = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(recs[i].owner, c->boot_id) == 0 || local_has(c, &recs[i])) {
            rm_store_endpoint_free(&recs[i]);
            continue;
        }
        if (keep != i) {
            recs[keep] = recs[i];
            memset(&recs[i], 0, sizeof(recs[i]));
        }
        keep++;
    }
    int same = keep == c->registry.remote;
    const rm_sidecar_t *sc = c->registry.head;
    for (size_t i = 0; same && i < keep; i++) {
        while (sc != NULL && !sc->remote)
            sc = sc->next;
        same = sc != NULL && same_as(sc, &recs[i]);
        if (sc != NULL)
            sc = sc->next;
    }
    int urgent = 0;
    if (!same) {
        /* A newly draining endpoint must leave every client at once, as on the replica that
         * received the withdraw; anything else waits out the usual debounce. */
        for (size_t i = 0; i < keep; i++)
            if (recs[i].draining && !remote_draining(c, recs[i].address))
                urgent = 1;
        rm_registry_drop_remote(&c->registry);
        for (size_t i = 0; i < keep; i++)
            rm_registry_add_listed(&c->registry, recs[i].pod, recs[i].namespace_, recs[i].service,
                                   recs[i].version, recs[i].address, recs[i].draining, 1, 0,
                                   now_ms);
        rm_log_debug("endpoint registrations of other replicas: %zu listed", keep);
        rm_control_changed(c, now_ms, urgent);
    }
    rm_store_endpoints_free(recs, n);
    return !same;
}

void rm__reg_open(rm_control_t *c, uint64_t now_ms)
{
    if (rm_store_is_shared(c->store)) {
        c->ep_resync = 1;
        rm__reg_sync(c, now_ms);
        if (c->registry.remote > 0)
            rm_log_info("%zu endpoint registration(s) of other replicas (or of this replica "
                        "before a restart, until their lease expires) listed from the store",
                        c->registry.remote);
        return;
    }
    rm_store_endpoint_t *recs = NULL;
    size_t n = 0;
    if (rm_store_ep_list(c->store, &recs, &n) < 0) {
        rm_log_warn("cannot list the stored endpoint registrations: %s; starting with none",
                    rm_store_error(c->store));
        return;
    }
    uint64_t grace = restore_grace(c), wall = rm_wall_ms();
    size_t listed = 0, expired = 0;
    for (size_t i = 0; i < n; i++) {
        /* A registration already restored in an earlier life keeps that life's deadline. */
        uint64_t hold = grace, until = recs[i].held_until_ms;
        if (until != 0 && until <= wall) {
            expired += rm_store_ep_remove(c->store, &recs[i]) == 0;
            continue;
        }
        if (until != 0 && until - wall < hold)
            hold = until - wall;
        rm_sidecar_t *sc = rm_registry_add_listed(&c->registry, recs[i].pod, recs[i].namespace_,
                                                  recs[i].service, recs[i].version, recs[i].address,
                                                  recs[i].draining, 0, hold, now_ms);
        sc->held_until_ms = wall + hold;
        listed++;
    }
    if (expired > 0)
        rm_log_info("%zu stored endpoint registration(s) dropped: restored before and not back "
                    "within their grace",
                    expired);
    if (listed > 0) {
        rm_log_info("%zu endpoint registration(s) restored from the store: listed for up to "
                    "%llums while their sidecars reconnect",
                    listed, (unsigned long long)grace);
        c->ep_dirty = 1; /* written again as ours (see rm_registry_add_listed) */
    }
    rm_store_endpoints_free(recs, n);
}
