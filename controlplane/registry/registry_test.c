/* controlplane/registry/registry_test.c — unit tests of the sidecar registry: Hello checks,
 * endpoint registration, ACK/NACK by nonce, states, withdraw, grace and reconnects.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "controlplane/registry/registry.h"

static int hello(rm_registry_t *reg, rm_sidecar_t *sc, const char *pod, const char *svc,
                 const char *addr, uint64_t last, uint64_t now)
{
    Remora__V1__Node node = REMORA__V1__NODE__INIT;
    Remora__V1__Hello h = REMORA__V1__HELLO__INIT;
    node.pod = (char *)pod;
    node.service = (char *)svc;
    node.version = "v1";
    node.address = (char *)addr;
    h.node = &node;
    h.last_config_version = last;
    char err[256] = "";
    return rm_registry_hello(reg, sc, &h, 5, now, err, sizeof(err));
}

static void test_hello_registers_endpoint(void **state)
{
    (void)state;
    rm_registry_t reg;
    rm_registry_init(&reg);
    rm_sidecar_t *a = rm_registry_connect(&reg, 0);
    assert_int_equal(hello(&reg, a, "a-1", "reviews", "10.0.0.1:15006", 0, 1), 1);
    assert_string_equal(a->namespace_, "default");
    assert_true(a->has_endpoint);
    rm_sidecar_t *b = rm_registry_connect(&reg, 0);
    /* A client-only sidecar: no endpoint, no change to the endpoint set. */
    assert_int_equal(hello(&reg, b, "b-1", "", "", 0, 1), 0);
    assert_false(b->has_endpoint);
    /* A second Hello on one stream is refused. */
    assert_int_equal(hello(&reg, b, "b-1", "", "", 0, 1), -EINVAL);
    assert_int_equal(reg.count, 2);
    rm_registry_free(&reg);
}

static void test_hello_rejects_bad_fields(void **state)
{
    (void)state;
    rm_registry_t reg;
    rm_registry_init(&reg);
    rm_sidecar_t *a = rm_registry_connect(&reg, 0);
    assert_int_equal(hello(&reg, a, "bad pod", "s", "1.2.3.4:80", 0, 0), -EINVAL);
    assert_int_equal(hello(&reg, a, "p", "s", "1.2.3.4", 0, 0), -EINVAL);
    assert_int_equal(hello(&reg, a, "p", "s", "1.2.3.4:0", 0, 0), -EINVAL);
    assert_int_equal(hello(&reg, a, "p", "s", "1.2.3.4:65536", 0, 0), -EINVAL);
    assert_int_equal(hello(&reg, a, "p", "s", ":80", 0, 0), -EINVAL);
    assert_int_equal(hello(&reg, a, "p", "s\x01", "1.2.3.4:80", 0, 0), -EINVAL);
    assert_int_equal(hello(&reg, a, "p", "s", "[::1]:8080", 0, 0), 1);
    rm_registry_free(&reg);
}

static void test_ack_nack_by_nonce(void **state)
{
    (void)state;
    rm_registry_t reg;
    rm_registry_init(&reg);
    rm_sidecar_t *a = rm_registry_connect(&reg, 0);
    hello(&reg, a, "a", "", "", 99, 0); /* claims a version the store never had: ignored */
    assert_int_equal(a->config_version, 0);
    assert_int_equal(rm_sidecar_state(a, 5), RM_SIDECAR_STALE);

    rm_registry_sent(a, 5, "n5");
    assert_int_equal(rm_registry_ack(a, "nope", 1), -ENOENT);
    assert_false(rm_sidecar_answered(a, 5));
    assert_int_equal(rm_registry_ack(a, "n5", 1), 0);
    assert_int_equal(a->config_version, 5);
    assert_int_equal(rm_sidecar_state(a, 5), RM_SIDECAR_SYNCED);
    assert_true(rm_sidecar_answered(a, 5));
    assert_int_equal(rm_sidecar_state(a, 6), RM_SIDECAR_STALE);

    rm_registry_sent(a, 6, "n6");
    assert_int_equal(rm_registry_nack(a, 5, "n6", "bad\x01route", 2), 0);
    assert_int_equal(rm_sidecar_state(a, 6), RM_SIDECAR_NACKED);
    assert_string_equal(a->error, "bad?route");
    assert_true(rm_sidecar_answered(a, 6));
    assert_false(rm_sidecar_answered(a, 7));
    assert_int_equal(a->config_version, 5);

    /* A late ACK of the older snapshot does not clear the NACK or roll back. */
    rm_registry_sent(a, 4, "n4");
    assert_int_equal(rm_registry_ack(a, "n4", 3), 0);
    assert_int_equal(a->config_version, 5);
    assert_int_equal(rm_sidecar_state(a, 6), RM_SIDECAR_NACKED);

    rm_registry_sent(a, 7, "n7");
    assert_int_equal(rm_registry_ack(a, "n7", 4), 0);
    assert_int_equal(rm_sidecar_state(a, 7), RM_SIDECAR_SYNCED);
    assert_null(a->error);

    /* The ring forgets old nonces. */
    for (int i = 0; i < RM_REGISTRY_SENT_RING; i++)
        rm_registry_sent(a, 8, "n8");
    assert_int_equal(rm_registry_ack(a, "n7", 5), -ENOENT);
    rm_registry_free(&reg);
}

static void test_withdraw_grace_and_reconnect(void **state)
{
    (void)state;
    rm_registry_t reg;
    rm_registry_init(&reg);
    rm_sidecar_t *a = rm_registry_connect(&reg, 0);
    hello(&reg, a, "a", "reviews", "10.0.0.1:1", 0, 0);
    assert_int_equal(rm_registry_withdraw(a, 1), 1);
    assert_int_equal(rm_registry_withdraw(a, 1), 0);
    assert_true(a->draining);

    assert_int_equal(rm_registry_disconnect(&reg, a, 100, 2000), 0);
    assert_int_equal(reg.connected, 0);
    assert_int_equal(reg.count, 1);
    assert_int_equal(rm_registry_next_expiry(&reg, 2000), 2100);
    assert_int_equal(rm_registry_expire(&reg, 2099, 2000), 0);
    assert_int_equal(rm_registry_expire(&reg, 2100, 2000), 1);
    assert_int_equal(reg.count, 0);
    assert_int_equal(rm_registry_next_expiry(&reg, 2000), UINT64_MAX);

    /* Reconnect inside the grace: the old entry goes at once. */
    rm_sidecar_t *b = rm_registry_connect(&reg, 0);
    hello(&reg, b, "b", "reviews", "10.0.0.2:1", 0, 0);
    rm_registry_disconnect(&reg, b, 10, 2000);
    rm_sidecar_t *b2 = rm_registry_connect(&reg, 20);
    assert_int_equal(hello(&reg, b2, "b", "reviews", "10.0.0.2:1", 0, 20), 1);
    assert_int_equal(reg.count, 1);
    assert_ptr_equal(reg.head, b2);

    /* The same pod again while its old stream still looks alive: the new one takes the
     * endpoint, the old one keeps its stream but lists nothing. */
    rm_sidecar_t *b3 = rm_registry_connect(&reg, 25);
    assert_int_equal(hello(&reg, b3, "b", "reviews", "10.0.0.2:1", 0, 25), 1);
    assert_int_equal(reg.count, 2);
    assert_false(b2->has_endpoint);
    assert_true(b3->has_endpoint);
    assert_int_equal(rm_registry_disconnect(&reg, b3, 26, 0), 1);

    /* Without an endpoint, or without grace, an entry goes at once. */
    rm_sidecar_t *c = rm_registry_connect(&reg, 0);
    hello(&reg, c, "c", "", "", 0, 0);
    assert_int_equal(rm_registry_disconnect(&reg, c, 30, 2000), 0);
    assert_int_equal(reg.count, 1);
    assert_int_equal(rm_registry_disconnect(&reg, b2, 30, 0), 0);
    assert_int_equal(reg.count, 0);
    rm_registry_free(&reg);
}

/* Entries listed from the store: remote ones never expire and are replaced wholesale; restored
 * ones wait out their own grace (hold_ms); an entry the store holds goes to `gone` when freed. */
static void test_listed_entries_and_gone(void **state)
{
    (void)state;
    rm_registry_t reg;
    rm_registry_init(&reg);
    rm_sidecar_t *r =
        rm_registry_add_listed(&reg, "p1", "default", "reviews", "v1", "10.0.0.1:1", 0, 1, 0, 0);
    rm_sidecar_t *o = rm_registry_add_listed(&reg, "p2", "default", "reviews", "v1", "10.0.0.2:1",
                                             1, 0, 30000, 100);
    assert_true(r->remote && r->has_endpoint && !r->connected);
    assert_true(!o->remote && o->draining && o->stored == 0);
    assert_int_equal(reg.count, 2);
    assert_int_equal(reg.remote, 1);
    /* Only the restored entry has a deadline, its own. */
    assert_int_equal(rm_registry_next_expiry(&reg, 2000), 30100);
    assert_int_equal(rm_registry_expire(&reg, 30099, 2000), 0);
    o->stored = 2; /* the core wrote it */
    assert_int_equal(rm_registry_expire(&reg, 30100, 2000), 1);
    assert_int_equal(reg.count, 1);
    rm_sidecar_t *g = rm_registry_take_gone(&reg);
    assert_ptr_equal(g, o);
    assert_null(g->next);
    assert_null(rm_registry_take_gone(&reg));
    rm_registry_entry_free(g);

    /* A Hello of the remote entry's pod: the remote entry is dropped (not kept on gone). */
    rm_sidecar_t *a = rm_registry_connect(&reg, 0);
    assert_int_equal(hello(&reg, a, "p1", "reviews", "10.0.0.1:1", 0, 1), 1);
    assert_int_equal(reg.count, 1);
    assert_int_equal(reg.remote, 0);
    assert_null(reg.gone);

    rm_registry_add_listed(&reg, "p3", "default", "reviews", "v1", "10.0.0.3:1", 0, 1, 0, 0);
    assert_int_equal(rm_registry_expire(&reg, UINT64_MAX / 2, 2000), 0);
    rm_registry_drop_remote(&reg);
    assert_int_equal(reg.count, 1);
    assert_int_equal(reg.remote, 0);

    /* A stored entry whose stream ends without grace goes to gone; free() frees gone too. */
    a->stored = 1;
    assert_int_equal(rm_registry_disconnect(&reg, a, 5, 0), 1);
    assert_int_equal(reg.count, 0);
    assert_non_null(reg.gone);
    rm_registry_free(&reg);
}

/* max_endpoints: local endpoints only (connected or in their grace); a Hello that replaces its
 * pod's or address's entry adds none; a refused Hello changes nothing. */
static void test_max_endpoints(void **state)
{
    (void)state;
    rm_registry_t reg;
    rm_registry_init(&reg);
    reg.max_endpoints = 2;
    rm_registry_add_listed(&reg, "r1", "default", "reviews", "v1", "10.9.0.1:15006", 0, 1, 0, 0);
    rm_sidecar_t *a = rm_registry_connect(&reg, 0), *b = rm_registry_connect(&reg, 0);
    rm_sidecar_t *c = rm_registry_connect(&reg, 0);
    assert_int_equal(hello(&reg, a, "a", "reviews", "10.0.0.1:15006", 0, 1), 1);
    assert_int_equal(hello(&reg, b, "b", "reviews", "10.0.0.2:15006", 0, 1), 1);
    assert_int_equal(rm_registry_local_endpoints(&reg), 2); /* the remote one is not ours */
    assert_true(rm_registry_full(&reg));
    assert_int_equal(hello(&reg, c, "c", "reviews", "10.0.0.3:15006", 0, 1), -ENOSPC);
    assert_false(c->hello);
    assert_int_equal(reg.count, 4);
    /* A client without an endpoint is fine. */
    assert_int_equal(hello(&reg, c, "c", "", "", 0, 1), 0);
    /* b's pod again, on a new stream: replaces b. Then b's address under another pod name. */
    rm_sidecar_t *b2 = rm_registry_connect(&reg, 0);
    assert_int_equal(hello(&reg, b2, "b", "reviews", "10.0.0.2:15006", 0, 2), 1);
    assert_false(b->has_endpoint);
    rm_sidecar_t *b3 = rm_registry_connect(&reg, 0);
    assert_int_equal(hello(&reg, b3, "b-new", "reviews", "10.0.0.2:15006", 0, 3), 1);
    assert_false(b2->has_endpoint);
    assert_int_equal(rm_registry_local_endpoints(&reg), 2);
    /* In its grace, a still counts; expired, it does not. */
    assert_int_equal(rm_registry_disconnect(&reg, a, 10, 1000), 0);
    rm_sidecar_t *d = rm_registry_connect(&reg, 10);
    assert_int_equal(hello(&reg, d, "d", "reviews", "10.0.0.4:15006", 0, 10), -ENOSPC);
    rm_registry_expire(&reg, 1010, 1000);
    assert_int_equal(hello(&reg, d, "d", "reviews", "10.0.0.4:15006", 0, 1010), 1);
    assert_int_equal(rm_registry_local_endpoints(&reg), 2);
    rm_registry_free(&reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_registers_endpoint),
        cmocka_unit_test(test_hello_rejects_bad_fields),
        cmocka_unit_test(test_ack_nack_by_nonce),
        cmocka_unit_test(test_withdraw_grace_and_reconnect),
        cmocka_unit_test(test_listed_entries_and_gone),
        cmocka_unit_test(test_max_endpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
