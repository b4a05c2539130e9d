/* controlplane/core/registrations_test.c — endpoint registrations in the store, without gRPC:
 * what a Hello, a withdraw and a stream's end write; a restart that lists the previous life's
 * registrations in their grace (a Hello takes over, the rest expire); and two controls over one
 * shared store (each lists the other's registrations, a withdraw reaches the other as draining
 * and urgently, a fresh registration is never deleted by the other, and a key rewritten by the
 * replica a sidecar moved to survives the old replica's grace expiry).
 *
 * The store is an in-memory store behind a thin view whose close leaves the memory alive: a
 * second control opened on it is the first one restarted (or a second replica, with the view's
 * "shared" ops).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/core/control.h"
#include "remora/v1/discovery.pb-c.h"

typedef struct view {
    rm_store_t base;
    rm_store_t *inner; /* borrowed: outlives the control */
} view_t;

static rm_store_t *inner_of(rm_store_t *s)
{
    return ((view_t *)s)->inner;
}

static int v_get(rm_store_t *s, uint64_t v, rm_store_record_t *out)
{
    return rm_store_get(inner_of(s), v, out);
}

static int v_append(rm_store_t *s, uint64_t e, const uint8_t *cfg, size_t len, const char *sum,
                    uint64_t t, uint64_t *out)
{
    return rm_store_append(inner_of(s), e, cfg, len, sum, t, out);
}

static int v_history(rm_store_t *s, uint32_t limit, rm_store_record_t **out, size_t *n)
{
    return rm_store_history(inner_of(s), limit, out, n);
}

static void v_close(rm_store_t *s)
{
    free(s);
}

static int v_put(rm_store_t *s, const rm_store_endpoint_t *e)
{
    return rm_store_ep_put(inner_of(s), e);
}

static int v_remove(rm_store_t *s, const rm_store_endpoint_t *e)
{
    return rm_store_ep_remove(inner_of(s), e);
}

static int v_list(rm_store_t *s, rm_store_endpoint_t **out, size_t *n)
{
    return rm_store_ep_list(inner_of(s), out, n);
}

static int v_changed(rm_store_t *s)
{
    (void)s;
    return 0; /* no config changes in these tests */
}

static int v_ep_changed(rm_store_t *s)
{
    (void)s;
    return 1; /* a watch that always has news: every sync lists again */
}

/* Transactions committed through the view (registration batches). */
static int commits;

static int v_batch(rm_store_t *s, int end)
{
    commits += end;
    return rm_store_ep_batch(inner_of(s), end);
}

static const rm_store_ops_t counting_ops = {
    .scheme = "counting-view",
    .get = v_get,
    .append = v_append,
    .history = v_history,
    .close = v_close,
    .ep_put = v_put,
    .ep_remove = v_remove,
    .ep_list = v_list,
    .ep_batch = v_batch,
};

static const rm_store_ops_t local_ops = {
    .scheme = "view",
    .get = v_get,
    .append = v_append,
    .history = v_history,
    .close = v_close,
    .ep_put = v_put,
    .ep_remove = v_remove,
    .ep_list = v_list,
};

static const rm_store_ops_t shared_ops = {
    .scheme = "shared-view",
    .get = v_get,
    .append = v_append,
    .history = v_history,
    .close = v_close,
    .ep_put = v_put,
    .ep_remove = v_remove,
    .ep_list = v_list,
    .changed = v_changed,
    .ep_changed = v_ep_changed,
};

static rm_control_t *open_on(rm_store_t *inner, int shared)
{
    view_t *v = calloc(1, sizeof(*v));
    assert_non_null(v);
    v->base.ops = shared ? &shared_ops : &local_ops;
    v->inner = inner;
    rm_cp_options_t opt = {.debounce_ms = 20, .grace_ms = 2000};
    rm_control_t *c = NULL;
    char err[256];
    assert_int_equal(rm_control_open(&v->base, &opt, &c, err, sizeof(err)), 0);
    return c;
}

static rm_store_t *new_inner(void)
{
    rm_store_t *s = NULL;
    char err[128];
    assert_int_equal(rm_store_open("mem:", &s, err, sizeof(err)), 0);
    return s;
}

static int send_msg(rm_control_t *c, rm_sidecar_t *sc, const Remora__V1__DiscoveryRequest *m,
                    uint64_t now)
{
    rm_disc_result_t res;
    size_t len;
    uint8_t *bytes = rm_pb_pack(&m->base, &len);
    int rc = rm_discovery_handle(c, sc, bytes, len, now, &res);
    free(bytes);
    return rc;
}

/* A stream that says Hello as pod `pod` of reviews/v1 at `addr`. */
static rm_sidecar_t *connect_pod(rm_control_t *c, const char *pod, const char *addr, uint64_t now)
{
    rm_sidecar_t *sc = rm_discovery_open(c, now);
    Remora__V1__Node node = REMORA__V1__NODE__INIT;
    node.pod = (char *)pod;
    node.service = "reviews";
    node.version = "v1";
    node.address = (char *)addr;
    Remora__V1__Hello h = REMORA__V1__HELLO__INIT;
    h.node = &node;
    Remora__V1__DiscoveryRequest m = REMORA__V1__DISCOVERY_REQUEST__INIT;
    m.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_HELLO;
    m.hello = &h;
    assert_int_equal(send_msg(c, sc, &m, now), 0);
    return sc;
}

static void withdraw(rm_control_t *c, rm_sidecar_t *sc, uint64_t now)
{
    Remora__V1__EndpointChange e = REMORA__V1__ENDPOINT_CHANGE__INIT;
    e.kind = REMORA__V1__ENDPOINT_CHANGE__KIND__WITHDRAW;
    Remora__V1__DiscoveryRequest m = REMORA__V1__DISCOVERY_REQUEST__INIT;
    m.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_ENDPOINT;
    m.endpoint = &e;
    assert_int_equal(send_msg(c, sc, &m, now), 0);
}

/* The whole snapshot's registered endpoint at `addr`: -1 absent, else its draining flag. */
static int listed(rm_control_t *c, const char *addr)
{
    const rm_scope_snapshot_t *s = rm_control_snapshot(c);
    Remora__V1__DiscoveryResponse *r =
        remora__v1__discovery_response__unpack(NULL, s->len, s->data);
    assert_non_null(r);
    int found = -1, count = 0;
    for (size_t i = 0; i < r->snapshot->n_endpoints; i++)
        if (strcmp(r->snapshot->endpoints[i]->address, addr) == 0) {
            found = r->snapshot->endpoints[i]->draining;
            count++;
        }
    remora__v1__discovery_response__free_unpacked(r, NULL);
    assert_true(count <= 1); /* one address is never listed twice */
    return found;
}

/* What the store holds for `pod`: -1 nothing, else draining; the owner is copied to owner. */
static int stored(rm_store_t *inner, const char *pod, char *owner, size_t n)
{
    rm_store_endpoint_t *eps = NULL;
    size_t k = 0;
    int found = -1;
    assert_int_equal(rm_store_ep_list(inner, &eps, &k), 0);
    for (size_t i = 0; i < k; i++)
        if (strcmp(eps[i].pod, pod) == 0) {
            found = eps[i].draining;
            if (owner != NULL)
                snprintf(owner, n, "%s", eps[i].owner);
        }
    rm_store_endpoints_free(eps, k);
    return found;
}

static void test_hello_withdraw_and_expiry_are_stored(void **state)
{
    (void)state;
    rm_store_t *inner = new_inner();
    rm_control_t *c = open_on(inner, 0);
    uint64_t t = rm_mono_ms();
    char owner[64];
    rm_sidecar_t *sc = connect_pod(c, "p1", "10.0.0.1:9080", t);
    /* Written by a tick once the debounce has passed, not by the Hello (a connect storm is
     * one transaction per debounce). */
    rm_control_tick(c, t + 19);
    assert_int_equal(stored(inner, "p1", NULL, 0), -1);
    rm_control_tick(c, t + 20);
    assert_int_equal(stored(inner, "p1", owner, sizeof(owner)), 0);
    assert_string_equal(owner, c->boot_id);
    /* Nothing changed: the next ticks write nothing (a removed record would stay removed). */
    rm_store_endpoint_t e = {.pod = "p1",
                             .namespace_ = "default",
                             .service = "reviews",
                             .version = "v1",
                             .address = "10.0.0.1:9080",
                             .owner = c->boot_id};
    assert_int_equal(rm_store_ep_remove(inner, &e), 0);
    rm_control_tick(c, t + 21);
    assert_int_equal(stored(inner, "p1", NULL, 0), -1);
    assert_int_equal(rm_store_ep_put(inner, &e), 0);

    /* A withdraw is written without the debounce, as soon as the batch interval allows: the
     * last write was at t + 20, so at t + 70. Its push to our own sidecars is due at once. */
    withdraw(c, sc, t + 22);
    assert_true(rm_control_push_due(c, t + 22));
    rm_control_tick(c, t + 22);
    assert_int_equal(stored(inner, "p1", NULL, 0), 0);
    rm_control_push_done(c); /* the server's push; the held-back write wakes the loop itself */
    assert_int_equal(rm_control_next_deadline(c), t + 20 + RM_CONTROL_REG_BATCH_MS);
    rm_control_tick(c, t + 69);
    assert_int_equal(stored(inner, "p1", NULL, 0), 0);
    rm_control_tick(c, t + 70);
    assert_int_equal(stored(inner, "p1", NULL, 0), 1);
    assert_int_equal(listed(c, "10.0.0.1:9080"), 1);

    /* The stream ends: listed (and stored) for the grace, then removed from both. */
    rm_discovery_close(c, sc, t + 30);
    rm_control_tick(c, t + 60);
    assert_int_equal(stored(inner, "p1", NULL, 0), 1);
    rm_control_tick(c, t + 2029);
    assert_int_equal(stored(inner, "p1", NULL, 0), 1);
    rm_control_tick(c, t + 2030); /* expired: the removal is due after the debounce */
    rm_control_tick(c, t + 2050);
    assert_int_equal(stored(inner, "p1", NULL, 0), -1);
    assert_int_equal(listed(c, "10.0.0.1:9080"), -1);
    rm_control_close(c);
    rm_store_close(inner);
}

static void test_restart_restores_in_grace(void **state)
{
    (void)state;
    rm_store_t *inner = new_inner();
    rm_control_t *c = open_on(inner, 0);
    uint64_t t = rm_mono_ms();
    rm_sidecar_t *a = connect_pod(c, "p1", "10.0.0.1:9080", t);
    rm_sidecar_t *b = connect_pod(c, "p2", "10.0.0.2:9080", t);
    withdraw(c, b, t);
    rm_control_tick(c, t + 20);
    (void)a;
    rm_control_close(c); /* a crash: nothing is removed from the store */

    c = open_on(inner, 0);
    t = rm_mono_ms();
    /* Before any stream is back, a client's snapshot lists both, the withdrawn one draining. */
    assert_int_equal(c->registry.count, 2);
    assert_int_equal(c->registry.connected, 0);
    assert_int_equal(listed(c, "10.0.0.1:9080"), 0);
    assert_int_equal(listed(c, "10.0.0.2:9080"), 1);
    /* Written again as ours, so that this life can remove them. */
    rm_control_tick(c, t);
    char owner[64];
    assert_int_equal(stored(inner, "p1", owner, sizeof(owner)), 0);
    assert_string_equal(owner, c->boot_id);
    /* Past the stream grace they are still listed: the restore grace is longer. */
    rm_control_tick(c, t + 2000 + 100);
    assert_int_equal(listed(c, "10.0.0.1:9080"), 0);

    /* p1 comes back: its Hello takes over the restored entry (one entry, one record). */
    rm_sidecar_t *a2 = connect_pod(c, "p1", "10.0.0.1:9080", t + 3000);
    rm_control_tick(c, t + 3020);
    assert_int_equal(c->registry.count, 2);
    assert_int_equal(listed(c, "10.0.0.1:9080"), 0);
    assert_int_equal(stored(inner, "p1", NULL, 0), 0);

    /* p2 never comes back: gone when the restore grace ends, from the list and the store. */
    uint64_t until = rm_control_next_deadline(c);
    assert_true(until > t + 2000 && until <= t + RM_CONTROL_DEFAULT_RESTORE_GRACE_MS);
    rm_control_tick(c, t + RM_CONTROL_DEFAULT_RESTORE_GRACE_MS);
    rm_control_tick(c, t + RM_CONTROL_DEFAULT_RESTORE_GRACE_MS + 20);
    assert_int_equal(listed(c, "10.0.0.2:9080"), -1);
    assert_int_equal(stored(inner, "p2", NULL, 0), -1);
    assert_int_equal(listed(c, "10.0.0.1:9080"), 0); /* connected: stays */
    assert_int_equal(stored(inner, "p1", NULL, 0), 0);
    (void)a2;
    rm_control_close(c);
    rm_store_close(inner);
}

/* The stored held_until_ms of `pod` (0 when not held or not stored). */
static uint64_t held_until(rm_store_t *inner, const char *pod)
{
    rm_store_endpoint_t *eps = NULL;
    size_t k = 0;
    uint64_t until = 0;
    assert_int_equal(rm_store_ep_list(inner, &eps, &k), 0);
    for (size_t i = 0; i < k; i++)
        if (strcmp(eps[i].pod, pod) == 0)
            until = eps[i].held_until_ms;
    rm_store_endpoints_free(eps, k);
    return until;
}

static void put_record(rm_store_t *inner, const char *pod, const char *addr, uint64_t held_until_ms)
{
    rm_store_endpoint_t e = {.pod = (char *)pod,
                             .namespace_ = (char *)"default",
                             .service = (char *)"reviews",
                             .version = (char *)"v1",
                             .address = (char *)addr,
                             .owner = (char *)"an-earlier-life",
                             .held_until_ms = held_until_ms};
    assert_int_equal(rm_store_ep_put(inner, &e), 0);
}

/* Restarts in a row must not keep a pod that never came back listed forever: a registration
 * restored once is written back with the end of its hold, and the next life honours it. */
static void test_restored_hold_survives_restarts(void **state)
{
    (void)state;
    rm_store_t *inner = new_inner();
    uint64_t wall = rm_wall_ms();
    put_record(inner, "gone", "10.0.0.1:9080", wall - 1000); /* its hold ran out before */
    put_record(inner, "late", "10.0.0.2:9080", wall + 5000); /* 5 s of its hold left */
    put_record(inner, "live", "10.0.0.3:9080", 0);           /* connected when we died */

    rm_control_t *c = open_on(inner, 0);
    uint64_t t = rm_mono_ms();
    assert_int_equal(listed(c, "10.0.0.1:9080"), -1);
    assert_int_equal(stored(inner, "gone", NULL, 0), -1);
    assert_int_equal(listed(c, "10.0.0.2:9080"), 0);
    assert_int_equal(listed(c, "10.0.0.3:9080"), 0);

    /* Written back as ours, each with the end of its hold: the older deadline is kept. */
    rm_control_tick(c, t);
    uint64_t late = held_until(inner, "late"), live = held_until(inner, "live");
    assert_true(late >= wall + 4000 && late <= wall + 5000);
    assert_true(live >= wall + RM_CONTROL_DEFAULT_RESTORE_GRACE_MS - 1000 &&
                live <= rm_wall_ms() + RM_CONTROL_DEFAULT_RESTORE_GRACE_MS);

    /* A second restart right away: "late" still ends at its first deadline. */
    rm_control_close(c);
    c = open_on(inner, 0);
    t = rm_mono_ms();
    assert_int_equal(listed(c, "10.0.0.2:9080"), 0);
    rm_control_tick(c, t);
    assert_int_equal(held_until(inner, "late"), late);
    rm_control_tick(c, t + 5000);
    rm_control_tick(c, t + 5050);
    assert_int_equal(listed(c, "10.0.0.2:9080"), -1);
    assert_int_equal(stored(inner, "late", NULL, 0), -1);
    assert_int_equal(listed(c, "10.0.0.3:9080"), 0);
    rm_control_close(c);
    rm_store_close(inner);
}

/* A clean stop writes what the debounce still held, so the next start restores it. */
static void test_clean_stop_writes_pending(void **state)
{
    (void)state;
    rm_store_t *inner = new_inner();
    rm_control_t *c = open_on(inner, 0);
    uint64_t t = rm_mono_ms();
    rm_sidecar_t *sc = connect_pod(c, "p1", "10.0.0.1:9080", t);
    rm_discovery_close(c, sc, t + 1); /* the shutdown cancels every stream */
    assert_int_equal(stored(inner, "p1", NULL, 0), -1);
    rm_control_close(c);
    assert_int_equal(stored(inner, "p1", NULL, 0), 0);
    c = open_on(inner, 0);
    assert_int_equal(listed(c, "10.0.0.1:9080"), 0);
    rm_control_close(c);
    rm_store_close(inner);
}

static void test_replicas_share_registrations(void **state)
{
    (void)state;
    rm_store_t *inner = new_inner();
    rm_control_t *a = open_on(inner, 1);
    rm_control_t *b = open_on(inner, 1);
    uint64_t t = rm_mono_ms();
    rm_sidecar_t *sc = connect_pod(a, "p1", "10.0.0.1:9080", t);
    rm_control_tick(a, t + 20);
    rm_control_push_done(b);
    rm_control_sync(b, t);
    assert_int_equal(b->registry.remote, 1);
    assert_int_equal(listed(b, "10.0.0.1:9080"), 0);
    assert_true(b->push_at > t); /* a new endpoint: the debounced push */
    /* Listing again without a change changes nothing. */
    uint64_t changes = b->changes;
    rm_control_sync(b, t);
    assert_int_equal(b->changes, changes);

    /* A withdraw on A (written once A's batch interval since its write at t + 20 is over):
     * draining on B, pushed at once. */
    withdraw(a, sc, t + 30);
    rm_control_tick(a, t + 30);
    assert_int_equal(stored(inner, "p1", NULL, 0), 0);
    rm_control_tick(a, t + 70);
    assert_int_equal(stored(inner, "p1", NULL, 0), 1);
    rm_control_push_done(b);
    rm_control_sync(b, t + 70);
    assert_int_equal(listed(b, "10.0.0.1:9080"), 1);
    assert_true(rm_control_push_due(b, t + 70));

    /* B never expires or deletes a remote registration, however long it waits. */
    rm_control_tick(b, t + (uint64_t)3600 * 1000);
    rm_control_sync(b, t + (uint64_t)3600 * 1000);
    assert_int_equal(stored(inner, "p1", NULL, 0), 1);
    assert_int_equal(listed(b, "10.0.0.1:9080"), 1);

    /* The sidecar moves to B (its stream on A died): B's Hello takes the key over; A's grace
     * ends later, and A's conditional removal leaves B's record alone. */
    rm_discovery_close(a, sc, t + 72);
    rm_sidecar_t *sb = connect_pod(b, "p1", "10.0.0.1:9080", t + 3);
    rm_control_tick(b, t + 23);
    char owner[64];
    assert_int_equal(stored(inner, "p1", owner, sizeof(owner)), 0);
    assert_string_equal(owner, b->boot_id);
    rm_control_tick(a, t + 2072);
    rm_control_tick(a, t + 2092);
    rm_control_sync(a, t + 2092);
    assert_int_equal(stored(inner, "p1", owner, sizeof(owner)), 0);
    assert_string_equal(owner, b->boot_id);
    assert_int_equal(listed(a, "10.0.0.1:9080"), 0); /* listed on A as B's */
    assert_int_equal(a->registry.remote, 1);

    /* B's stream ends without a withdraw: after B's grace the record goes, and A lists none. */
    rm_discovery_close(b, sb, t + 10);
    rm_control_tick(b, t + 2010);
    rm_control_tick(b, t + 2030);
    assert_int_equal(stored(inner, "p1", NULL, 0), -1);
    rm_control_sync(a, t + 2010);
    assert_int_equal(a->registry.remote, 0);
    assert_int_equal(listed(a, "10.0.0.1:9080"), -1);
    rm_control_close(a);
    rm_control_close(b);
    rm_store_close(inner);
}

/* Floods: 500 Hellos, then 500 withdraws, spread over 100 ms with a tick after each (as the
 * server does after every event). Each flood costs a transaction per RM_CONTROL_REG_BATCH_MS,
 * not one per sidecar — before, every withdraw was written at once, alone: 500 fsyncs on the
 * server thread. Everything ends up stored, and a withdraw's push is still due at once. */
static void test_floods_are_batched(void **state)
{
    (void)state;
    enum { N = 500, SPREAD_MS = 100 };
    rm_store_t *inner = new_inner();
    view_t *v = calloc(1, sizeof(*v));
    assert_non_null(v);
    v->base.ops = &counting_ops;
    v->inner = inner;
    rm_cp_options_t opt = {.debounce_ms = 20, .grace_ms = 2000};
    rm_control_t *c = NULL;
    char err[256], pod[32], addr[32];
    assert_int_equal(rm_control_open(&v->base, &opt, &c, err, sizeof(err)), 0);
    static rm_sidecar_t *sc[N];
    uint64_t t = rm_mono_ms();

    commits = 0;
    for (int i = 0; i < N; i++) {
        uint64_t now = t + (uint64_t)i * SPREAD_MS / N;
        snprintf(pod, sizeof(pod), "p%d", i);
        snprintf(addr, sizeof(addr), "10.7.%d.%d:9080", i / 250, i % 250 + 1);
        sc[i] = connect_pod(c, pod, addr, now);
        rm_control_tick(c, now);
    }
    for (uint64_t now = t + SPREAD_MS; now <= t + SPREAD_MS + 100; now++)
        rm_control_tick(c, now);
    assert_true(commits >= 2 && commits <= (int)(SPREAD_MS / RM_CONTROL_REG_BATCH_MS) + 2);
    rm_store_endpoint_t *eps = NULL;
    size_t n = 0;
    assert_int_equal(rm_store_ep_list(inner, &eps, &n), 0);
    assert_int_equal(n, N);
    rm_store_endpoints_free(eps, n);

    t += 1000;
    commits = 0;
    for (int i = 0; i < N; i++) {
        uint64_t now = t + (uint64_t)i * SPREAD_MS / N;
        rm_control_push_done(c);
        withdraw(c, sc[i], now);
        assert_true(rm_control_push_due(c, now)); /* pushed at once, written batched */
        rm_control_tick(c, now);
    }
    for (uint64_t now = t + SPREAD_MS; now <= t + SPREAD_MS + 100; now++)
        rm_control_tick(c, now);
    assert_true(commits >= 2 && commits <= (int)(SPREAD_MS / RM_CONTROL_REG_BATCH_MS) + 2);
    for (int i = 0; i < N; i += 97) {
        snprintf(pod, sizeof(pod), "p%d", i);
        assert_int_equal(stored(inner, pod, NULL, 0), 1);
    }
    rm_control_close(c);
    rm_store_close(inner);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_withdraw_and_expiry_are_stored),
        cmocka_unit_test(test_restart_restores_in_grace),
        cmocka_unit_test(test_restored_hold_survives_restarts),
        cmocka_unit_test(test_clean_stop_writes_pending),
        cmocka_unit_test(test_replicas_share_registrations),
        cmocka_unit_test(test_floods_are_batched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
