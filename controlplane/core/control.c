/* controlplane/core/control.c — the control state's life cycle and push scheduling. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/log/log.h"
#include "controlplane/core/core-int.h"

static void make_boot_id(char out[17])
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        /* Without entropy, time and pid still differ between restarts, which is all a nonce
         * prefix needs. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
    }
    snprintf(out, 17, "%016llx", (unsigned long long)r);
}

int rm_control_open(rm_store_t *store, const rm_cp_options_t *opt, rm_control_t **out, char *err,
                    size_t errlen)
{
    rm_control_t *c = rm_xcalloc(1, sizeof(*c));
    rm_store_record_t rec;
    *out = NULL;
    c->store = store;
    c->opt.debounce_ms = opt != NULL ? opt->debounce_ms : RM_CONTROL_DEFAULT_DEBOUNCE_MS;
    c->opt.grace_ms = opt != NULL ? opt->grace_ms : RM_CONTROL_DEFAULT_GRACE_MS;
    c->opt.restore_grace_ms = opt != NULL ? opt->restore_grace_ms : 0;
    c->opt.history = opt != NULL && opt->history != 0 ? opt->history : RM_CONTROL_DEFAULT_HISTORY;
    c->opt.max_streams =
        opt != NULL && opt->max_streams != 0 ? opt->max_streams : RM_CONTROL_DEFAULT_MAX_STREAMS;
    c->opt.max_scopes =
        opt != NULL && opt->max_scopes != 0 ? opt->max_scopes : RM_CONTROL_DEFAULT_MAX_SCOPES;
    c->opt.max_registrations = opt != NULL && opt->max_registrations != 0
                                   ? opt->max_registrations
                                   : RM_CONTROL_DEFAULT_MAX_REGISTRATIONS;
    c->opt.max_waiters =
        opt != NULL && opt->max_waiters != 0 ? opt->max_waiters : RM_CONTROL_DEFAULT_MAX_WAITERS;
    rm_registry_init(&c->registry);
    c->registry.max_endpoints = c->opt.max_registrations;
    rm__scope_init(c);
    make_boot_id(c->boot_id);

    int rc = rm_store_get(store, 0, &rec);
    if (rc == -ENOENT) {
        c->config = rm_xmalloc(sizeof(*c->config));
        remora__v1__config_set__init(c->config);
    } else if (rc < 0) {
        snprintf(err, errlen, "reading the store: %s", rm_store_error(store));
        goto fail;
    } else {
        c->config = remora__v1__config_set__unpack(NULL, rec.config_len, rec.config);
        if (c->config == NULL) {
            snprintf(err, errlen, "config version %llu in the store does not unpack (corrupt?)",
                     (unsigned long long)rec.version);
            rm_store_record_free(&rec);
            rc = -EINVAL;
            goto fail;
        }
        c->version = rec.version;
        rm_store_record_free(&rec);
    }
    c->changes = 1;       /* every scope starts dirty */
    rm__history_prune(c); /* a lower --history than the last run's takes effect now */
    rm__reg_open(c, rm_mono_ms());
    *out = c;
    return 0;
fail:
    rm_control_close(c);
    return rc;
}

void rm_control_close(rm_control_t *c)
{
    if (c == NULL)
        return;
    /* A clean stop writes what the last debounce had not written yet, so the next start
     * restores every registration (streams just closed by the shutdown are in their grace:
     * still registered). */
    if (c->ep_dirty) {
        c->ep_flush_at = c->ep_retry_at = c->ep_wrote_at = 0;
        rm__reg_flush(c, rm_mono_ms());
    }
    rm_registry_free(&c->registry);
    if (c->config != NULL)
        remora__v1__config_set__free_unpacked(c->config, NULL);
    rm__scope_free_all(c);
    rm__snapshot_index_free(c);
    rm_store_close(c->store);
    free(c);
}

const char *rm_control_cap_message(const rm_control_t *c, rm_cap_t cap, char *buf, size_t n)
{
    switch (cap) {
    case RM_CAP_STREAMS:
        snprintf(buf, n,
                 "remora-control already serves %zu discovery streams (--max-streams %llu); "
                 "retry later or connect to another replica",
                 c->registry.connected, (unsigned long long)c->opt.max_streams);
        break;
    case RM_CAP_SCOPES:
        snprintf(buf, n,
                 "remora-control already serves %zu distinct egress lists (--max-scopes %llu); "
                 "send an egress list other sidecars send, or none",
                 c->n_scopes - 1, (unsigned long long)c->opt.max_scopes);
        break;
    case RM_CAP_REGISTRATIONS:
        snprintf(buf, n,
                 "remora-control already lists %zu endpoints of its own (--max-registrations "
                 "%llu); retry later or connect to another replica",
                 rm_registry_local_endpoints(&c->registry),
                 (unsigned long long)c->opt.max_registrations);
        break;
    default:
        snprintf(buf, n,
                 "%llu calls already wait for sidecars to answer (--max-waiters %llu); retry "
                 "later",
                 (unsigned long long)c->waiters, (unsigned long long)c->opt.max_waiters);
        break;
    }
    return buf;
}

void rm__cap_refused(rm_control_t *c, rm_cap_t cap, uint64_t now_ms)
{
    c->refused[cap]++;
    if (now_ms < c->refused_log_at[cap])
        return;
    c->refused_log_at[cap] = now_ms + RM_CONTROL_CAP_LOG_MS;
    char msg[300];
    rm_log_warn("limit reached: %s; %llu refused since start (logged at most every %us)",
                rm_control_cap_message(c, cap, msg, sizeof(msg)),
                (unsigned long long)c->refused[cap], RM_CONTROL_CAP_LOG_MS / 1000);
}

void rm_control_changed(rm_control_t *c, uint64_t now_ms, int urgent)
{
    c->changes++;
    uint64_t at = urgent ? now_ms : now_ms + c->opt.debounce_ms;
    /* Registrations are written on the push's schedule: a withdraw at once (another replica's
     * clients must see it drain now), anything else batched over the debounce; and never two
     * writes within RM_CONTROL_REG_BATCH_MS (rm__reg_due), so a connect or withdraw storm costs
     * one store transaction per 50 ms, not one per sidecar. rm__reg_flush writes only what
     * differs. */
    c->ep_dirty = 1;
    if (c->ep_flush_at == 0 || at < c->ep_flush_at)
        c->ep_flush_at = at ? at : 1;
    /* Never later than already scheduled: the first change bounds the wait. */
    if (c->push_at == 0 || at < c->push_at)
        c->push_at = at ? at : 1;
}

/* The scope's snapshot, rebuilt as `when` allows (see rm_snap_when_t). */
static const rm_scope_snapshot_t *scope_snapshot(rm_control_t *c, rm_scope_t *s,
                                                 rm_snap_when_t when)
{
    int build = 0;
    if (when == RM_SNAP_PUSH)
        build = s->snap.gen == 0 || s->built != c->changes;
    else if (when == RM_SNAP_HELLO)
        build = s->snap.gen == 0 || s->snap.version != c->version;
    if (build)
        rm__snapshot_build(c, s);
    return &s->snap;
}

const rm_scope_snapshot_t *rm_control_snapshot(rm_control_t *c)
{
    return scope_snapshot(c, c->all, RM_SNAP_PUSH);
}

const rm_scope_snapshot_t *rm_control_snapshot_for_hello(rm_control_t *c)
{
    return scope_snapshot(c, c->all, RM_SNAP_HELLO);
}

const rm_scope_snapshot_t *rm_control_sidecar_snapshot(rm_control_t *c, rm_sidecar_t *sc,
                                                       rm_snap_when_t when)
{
    return scope_snapshot(c, sc != NULL && sc->scope != NULL ? sc->scope : c->all, when);
}

int rm_control_push_due(const rm_control_t *c, uint64_t now_ms)
{
    return c->push_at != 0 && now_ms >= c->push_at;
}

void rm_control_push_done(rm_control_t *c)
{
    c->push_at = 0;
}

void rm_control_tick(rm_control_t *c, uint64_t now_ms)
{
    size_t gone = rm_registry_expire(&c->registry, now_ms, c->opt.grace_ms);
    if (gone > 0) {
        rm_log_info("%zu endpoint(s) removed after the %llums grace", gone,
                    (unsigned long long)c->opt.grace_ms);
        rm_control_changed(c, now_ms, 0);
    }
    rm__reg_flush(c, now_ms);
}

uint64_t rm_control_next_deadline(const rm_control_t *c)
{
    uint64_t next = rm_registry_next_expiry(&c->registry, c->opt.grace_ms);
    /* A flush due at ep_flush_at needs no wake-up of its own: it is scheduled exactly as the
     * push (both in rm_control_changed), and the server's tick runs before the push. A retry,
     * or a write held back by the batch interval, does. */
    uint64_t reg = rm__reg_due(c);
    if (reg != UINT64_MAX && reg > c->ep_flush_at && reg < next)
        next = reg;
    if (c->push_at != 0 && c->push_at < next)
        next = c->push_at;
    return next;
}

void rm_control_install(rm_control_t *c, uint64_t version, Remora__V1__ConfigSet *set,
                        uint64_t now_ms)
{
    remora__v1__config_set__free_unpacked(c->config, NULL);
    c->config = set;
    c->version = version;
    rm_control_changed(c, now_ms, 0);
}

/* How long a failed re-read of a shared store waits before the next attempt. */
#define RM_CONTROL_RESYNC_RETRY_MS 1000u

int rm_control_sync(rm_control_t *c, uint64_t now_ms)
{
    rm__reg_sync(c, now_ms);
    if (rm_store_changed(c->store))
        c->resync = 1;
    if (!c->resync || now_ms < c->resync_at)
        return 0;
    rm_store_record_t rec;
    int rc = rm_store_get(c->store, 0, &rec);
    if (rc == -ENOENT) {
        c->resync = 0;
        return 0;
    }
    if (rc < 0) {
        rm_log_debug("re-reading the store: %s; retrying in %ums", rm_store_error(c->store),
                     RM_CONTROL_RESYNC_RETRY_MS);
        c->resync_at = now_ms + RM_CONTROL_RESYNC_RETRY_MS;
        return 0;
    }
    c->resync = 0;
    c->resync_at = 0;
    if (rec.version <= c->version) {
        rm_store_record_free(&rec);
        return 0;
    }
    Remora__V1__ConfigSet *set = remora__v1__config_set__unpack(NULL, rec.config_len, rec.config);
    if (set == NULL) {
        /* Another replica validated it before storing; bytes that no longer unpack mean a
         * damaged or foreign record. Keep serving what we have rather than nothing. */
        rm_log_error("config version %llu in the store does not unpack; keeping version %llu",
                     (unsigned long long)rec.version, (unsigned long long)c->version);
        rm_store_record_free(&rec);
        return 0;
    }
    rm_log_info("config version %llu from the store (written by another replica): %s",
                (unsigned long long)rec.version, rec.summary);
    rm_control_install(c, rec.version, set, now_ms);
    rm_store_record_free(&rec);
    return 1;
}

uint64_t rm_control_sync_interval(const rm_control_t *c)
{
    return rm_store_is_shared(c->store) ? RM_STORE_WATCH_POLL_MS : UINT64_MAX;
}
