/* controlplane/core/core_test.c — unit tests of the control logic without gRPC: push scheduling
 * (debounce, urgent withdraw), snapshots (endpoints merged, fresh nonces), the discovery message
 * rules, Apply's all-or-nothing union and positions, a store that refuses a write, and two
 * controls over one shared store (re-reading it, losing an append race cleanly).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log/log.h"
#include "controlplane/core/admin.h"
#include "controlplane/core/control.h"
#include "remora/v1/admin.pb-c.h"
#include "remora/v1/discovery.pb-c.h"

static const char services_yaml[] = "kind: Service\n"
                                    "name: reviews\n"
                                    "port: 9080\n"
                                    "endpoints:\n"
                                    "  - {address: 127.0.0.1:9001, version: v1}\n";

static const char route_yaml[] = "kind: Route\n"
                                 "name: r\n"
                                 "service: reviews\n"
                                 "rules:\n"
                                 "  - destinations:\n"
                                 "      - {version: v1, weight: 1}\n"
                                 "      - {version: v2, weight: 1}\n";

static rm_control_t *new_control(void)
{
    rm_store_t *st = NULL;
    rm_control_t *c = NULL;
    char err[256];
    rm_cp_options_t opt = {.debounce_ms = 20, .grace_ms = 2000};
    assert_int_equal(rm_store_open("mem:", &st, err, sizeof(err)), 0);
    assert_int_equal(rm_control_open(st, &opt, &c, err, sizeof(err)), 0);
    return c;
}

static void apply(rm_control_t *c, const char *src, const char *file, rm_admin_reply_t *reply)
{
    Remora__V1__ApplyRequest req = REMORA__V1__APPLY_REQUEST__INIT;
    req.source = (char *)src;
    req.filename = (char *)file;
    size_t len;
    uint8_t *bytes = rm_pb_pack(&req.base, &len);
    rm_admin_handle(c, RM_ADMIN_APPLY, bytes, len, 100, reply);
    free(bytes);
}

static int send_msg(rm_control_t *c, rm_sidecar_t *sc, const Remora__V1__DiscoveryRequest *m,
                    uint64_t now, rm_disc_result_t *res)
{
    size_t len;
    uint8_t *bytes = rm_pb_pack(&m->base, &len);
    int rc = rm_discovery_handle(c, sc, bytes, len, now, res);
    free(bytes);
    return rc;
}

static int hello(rm_control_t *c, rm_sidecar_t *sc, const char *pod, const char *svc,
                 const char *addr, uint64_t now, rm_disc_result_t *res)
{
    Remora__V1__Node node = REMORA__V1__NODE__INIT;
    node.pod = (char *)pod;
    node.service = (char *)svc;
    node.version = "v2";
    node.address = (char *)addr;
    Remora__V1__Hello h = REMORA__V1__HELLO__INIT;
    h.node = &node;
    Remora__V1__DiscoveryRequest m = REMORA__V1__DISCOVERY_REQUEST__INIT;
    m.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_HELLO;
    m.hello = &h;
    return send_msg(c, sc, &m, now, res);
}

static Remora__V1__Snapshot *unpack_snapshot(const rm_scope_snapshot_t *s,
                                             Remora__V1__DiscoveryResponse **owner)
{
    *owner = remora__v1__discovery_response__unpack(NULL, s->len, s->data);
    assert_non_null(*owner);
    return (*owner)->snapshot;
}

static void test_debounce_and_urgent(void **state)
{
    (void)state;
    rm_control_t *c = new_control();
    rm_control_push_done(c);
    rm_control_changed(c, 1000, 0);
    assert_int_equal(c->push_at, 1020);
    assert_false(rm_control_push_due(c, 1019));
    /* A later change never pushes the first one back. */
    rm_control_changed(c, 1015, 0);
    assert_int_equal(c->push_at, 1020);
    assert_true(rm_control_push_due(c, 1020));
    assert_int_equal(rm_control_next_deadline(c), 1020);
    /* An urgent change is due at once. */
    rm_control_changed(c, 1016, 1);
    assert_int_equal(c->push_at, 1016);
    rm_control_push_done(c);
    assert_false(rm_control_push_due(c, 5000));
    assert_int_equal(rm_control_next_deadline(c), UINT64_MAX);
    rm_control_close(c);
}

static void test_hello_snapshot_and_endpoints(void **state)
{
    (void)state;
    rm_control_t *c = new_control();
    rm_admin_reply_t reply;
    apply(c, services_yaml, "s.yaml", &reply);
    assert_int_equal(reply.code, RM_STATUS_OK);
    rm_admin_reply_free(&reply);

    rm_sidecar_t *a = rm_discovery_open(c, 100);
    rm_disc_result_t res;
    rm_control_push_done(c);
    assert_int_equal(hello(c, a, "a", "reviews", "10.0.0.2:15006", 200, &res), 0);
    assert_true(res.send_now);
    assert_true(rm_control_push_due(c, 220)); /* the registration is pushed to the others */

    const rm_scope_snapshot_t *s = rm_control_snapshot(c);
    uint64_t gen = s->gen;
    char nonce[RM_REGISTRY_NONCE_MAX];
    snprintf(nonce, sizeof(nonce), "%s", s->nonce);
    Remora__V1__DiscoveryResponse *own;
    Remora__V1__Snapshot *snap = unpack_snapshot(s, &own);
    assert_int_equal(snap->version, 1);
    assert_int_equal(snap->n_endpoints, 2);
    assert_string_equal(snap->endpoints[0]->address, "127.0.0.1:9001"); /* static first */
    assert_string_equal(snap->endpoints[1]->address, "10.0.0.2:15006");
    assert_string_equal(snap->endpoints[1]->pod, "a");
    assert_false(snap->endpoints[1]->draining);
    remora__v1__discovery_response__free_unpacked(own, NULL);

    /* Unchanged state: the same snapshot. A withdraw: a new one, due now, marked draining. */
    assert_int_equal(rm_control_snapshot(c)->gen, gen);
    Remora__V1__EndpointChange ch = REMORA__V1__ENDPOINT_CHANGE__INIT;
    ch.kind = REMORA__V1__ENDPOINT_CHANGE__KIND__WITHDRAW;
    Remora__V1__DiscoveryRequest m = REMORA__V1__DISCOVERY_REQUEST__INIT;
    m.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_ENDPOINT;
    m.endpoint = &ch;
    rm_control_push_done(c);
    assert_int_equal(send_msg(c, a, &m, 300, &res), 0);
    assert_true(rm_control_push_due(c, 300));
    s = rm_control_snapshot(c);
    assert_int_equal(s->gen, gen + 1);
    assert_string_not_equal(s->nonce, nonce);
    snap = unpack_snapshot(s, &own);
    assert_true(snap->endpoints[1]->draining);
    remora__v1__discovery_response__free_unpacked(own, NULL);

    /* Stream end: kept for the grace, then gone (and a push is scheduled). */
    rm_discovery_close(c, a, 400);
    assert_int_equal(c->registry.count, 1);
    assert_int_equal(rm_control_next_deadline(c), 300); /* the withdraw push is still due */
    rm_control_push_done(c);
    assert_int_equal(rm_control_next_deadline(c), 2400);
    rm_control_tick(c, 2399);
    assert_int_equal(c->registry.count, 1);
    rm_control_tick(c, 2400);
    assert_int_equal(c->registry.count, 0);
    assert_true(rm_control_push_due(c, 2420));
    snap = unpack_snapshot(rm_control_snapshot(c), &own);
    assert_int_equal(snap->n_endpoints, 1);
    remora__v1__discovery_response__free_unpacked(own, NULL);
    rm_control_close(c);
}

static int hello_egress(rm_control_t *c, rm_sidecar_t *sc, const char *pod, const char *ns,
                        const char *svc, const char *addr, char **egress, size_t n_egress,
                        rm_disc_result_t *res)
{
    Remora__V1__Node node = REMORA__V1__NODE__INIT;
    node.pod = (char *)pod;
    node.namespace_ = (char *)ns;
    node.service = (char *)svc;
    node.version = "v1";
    node.address = (char *)addr;
    node.egress = egress;
    node.n_egress = n_egress;
    Remora__V1__Hello h = REMORA__V1__HELLO__INIT;
    h.node = &node;
    Remora__V1__DiscoveryRequest m = REMORA__V1__DISCOVERY_REQUEST__INIT;
    m.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_HELLO;
    m.hello = &h;
    return send_msg(c, sc, &m, 100, res);
}

static int has_service(const Remora__V1__ConfigSet *set, const char *name)
{
    for (size_t i = 0; i < set->n_services; i++)
        if (strcmp(set->services[i]->name, name) == 0)
            return 1;
    return 0;
}

/* Which endpoints are Remora sidecars: every registered one (whole and scoped snapshots alike),
 * and a static one only when its document says `sidecar: true`. */
static void test_sidecar_endpoints_marked(void **state)
{
    (void)state;
    static const char svc[] = "kind: Service\n"
                              "name: reviews\n"
                              "port: 9080\n"
                              "endpoints:\n"
                              "  - {address: 127.0.0.1:9001, version: v1}\n"
                              "  - {address: 127.0.0.1:9002, version: v1, sidecar: false}\n"
                              "  - {address: 127.0.0.1:9003, version: v2, sidecar: true}\n";
    rm_control_t *c = new_control();
    rm_admin_reply_t reply;
    apply(c, svc, "s.yaml", &reply);
    assert_int_equal(reply.code, RM_STATUS_OK);
    rm_admin_reply_free(&reply);

    rm_disc_result_t res;
    char *egress[] = {"reviews"};
    rm_sidecar_t *a = rm_discovery_open(c, 100), *b = rm_discovery_open(c, 100);
    assert_int_equal(hello(c, a, "a", "reviews", "10.0.0.2:15006", 200, &res), 0);
    assert_int_equal(hello_egress(c, b, "b", NULL, "", "", egress, 1, &res), 0);

    const rm_scope_snapshot_t *scopes[] = {
        rm_control_snapshot(c),
        rm_control_sidecar_snapshot(c, b, RM_SNAP_PUSH),
    };
    assert_ptr_not_equal(scopes[0], scopes[1]);
    for (size_t i = 0; i < 2; i++) {
        Remora__V1__DiscoveryResponse *own;
        Remora__V1__Snapshot *snap = unpack_snapshot(scopes[i], &own);
        assert_int_equal(snap->n_endpoints, 4);
        assert_string_equal(snap->endpoints[0]->address, "127.0.0.1:9001");
        assert_false(snap->endpoints[0]->sidecar);
        assert_string_equal(snap->endpoints[1]->address, "127.0.0.1:9002");
        assert_false(snap->endpoints[1]->sidecar);
        assert_string_equal(snap->endpoints[2]->address, "127.0.0.1:9003");
        assert_true(snap->endpoints[2]->sidecar);
        assert_string_equal(snap->endpoints[3]->address, "10.0.0.2:15006");
        assert_string_equal(snap->endpoints[3]->pod, "a");
        assert_true(snap->endpoints[3]->sidecar);
        remora__v1__discovery_response__free_unpacked(own, NULL);
    }
    rm_discovery_close(c, a, 300);
    rm_discovery_close(c, b, 300);
    rm_control_close(c);
}

/* Scopes: a sidecar with an egress list gets its services, what their routes mirror to, their
 * routes and breakers and only their endpoints; sidecars with the same list share one snapshot;
 * endpoint churn elsewhere keeps the scope's snapshot; a config change moves every scope. */
static void test_scopes(void **state)
{
    (void)state;
    static const char three[] = "kind: Service\nname: a\nport: 80\n"
                                "endpoints: [{address: 127.0.0.1:9001, version: v1}]\n"
                                "---\nkind: Service\nname: b\nport: 80\n"
                                "endpoints: [{address: 127.0.0.1:9002, version: v1}]\n"
                                "---\nkind: Service\nname: c\nport: 80\n"
                                "endpoints: [{address: 127.0.0.1:9003, version: v1}]\n"
                                "---\nkind: Service\nname: a\nnamespace: other\nport: 80\n"
                                "---\nkind: Route\nname: ra\nservice: a\nrules:\n"
                                "  - destinations: [{version: v1}]\n    mirror: {service: b}\n"
                                "---\nkind: CircuitBreaker\nname: cbc\nservice: c\n"
                                "limits: {maxConnections: 5}\n";
    rm_control_t *c = new_control();
    rm_admin_reply_t reply;
    apply(c, three, "t.yaml", &reply);
    assert_int_equal(reply.code, RM_STATUS_OK);
    rm_admin_reply_free(&reply);

    rm_disc_result_t res;
    char *eg_a[] = {"a"}, *eg_a2[] = {"a.default.svc.cluster.local", "a"}, *eg_c[] = {"c"};
    rm_sidecar_t *s1 = rm_discovery_open(c, 100), *s2 = rm_discovery_open(c, 100);
    rm_sidecar_t *s3 = rm_discovery_open(c, 100), *s4 = rm_discovery_open(c, 100);
    assert_int_equal(hello_egress(c, s1, "p1", NULL, "x", "10.0.0.1:15006", eg_a, 1, &res), 0);
    assert_int_equal(hello_egress(c, s2, "p2", "", "b", "10.0.0.2:15006", eg_a2, 2, &res), 0);
    assert_int_equal(hello_egress(c, s3, "p3", NULL, "c", "10.0.0.3:15006", eg_c, 1, &res), 0);
    assert_int_equal(hello_egress(c, s4, "p4", NULL, "a", "10.0.0.4:15006", NULL, 0, &res), 0);
    assert_ptr_equal(s1->scope, s2->scope); /* one scope, one encode */
    assert_string_equal(rm_control_sidecar_scope(s1), "a.default");
    assert_string_equal(rm_control_sidecar_scope(s4), "all");
    assert_int_equal(c->n_scopes, 3);

    const rm_scope_snapshot_t *sa = rm_control_sidecar_snapshot(c, s1, RM_SNAP_PUSH);
    assert_ptr_equal(rm_control_sidecar_snapshot(c, s2, RM_SNAP_PUSH), sa);
    uint64_t gen_a = sa->gen;
    Remora__V1__DiscoveryResponse *own;
    Remora__V1__Snapshot *snap = unpack_snapshot(sa, &own);
    /* a and its mirror target b; not c, not other/a. */
    assert_int_equal(snap->config->n_services, 2);
    assert_true(has_service(snap->config, "a") && has_service(snap->config, "b"));
    assert_int_equal(snap->config->n_routes, 1);
    assert_int_equal(snap->config->n_circuit_breakers, 0);
    for (size_t i = 0; i < snap->n_endpoints; i++)
        assert_true(strcmp(snap->endpoints[i]->service, "a") == 0 ||
                    strcmp(snap->endpoints[i]->service, "b") == 0);
    assert_int_equal(snap->n_endpoints, 4); /* static a, b; registered p4 (a), p2 (b) */
    remora__v1__discovery_response__free_unpacked(own, NULL);

    snap = unpack_snapshot(rm_control_sidecar_snapshot(c, s3, RM_SNAP_PUSH), &own);
    assert_int_equal(snap->config->n_services, 1);
    assert_int_equal(snap->config->n_routes, 0);
    assert_int_equal(snap->config->n_circuit_breakers, 1);
    assert_int_equal(snap->n_endpoints, 2);
    remora__v1__discovery_response__free_unpacked(own, NULL);

    snap = unpack_snapshot(rm_control_sidecar_snapshot(c, s4, RM_SNAP_PUSH), &own);
    assert_int_equal(snap->config->n_services, 4);
    assert_int_equal(snap->n_endpoints, 7);
    remora__v1__discovery_response__free_unpacked(own, NULL);

    /* An endpoint of c comes and goes: the a-scope keeps its snapshot, the c-scope moves. */
    uint64_t gen_c = rm_control_sidecar_snapshot(c, s3, RM_SNAP_CURRENT)->gen;
    rm_sidecar_t *s5 = rm_discovery_open(c, 100);
    assert_int_equal(hello_egress(c, s5, "p5", NULL, "c", "10.0.0.5:15006", eg_c, 1, &res), 0);
    assert_int_equal(rm_control_sidecar_snapshot(c, s1, RM_SNAP_PUSH)->gen, gen_a);
    assert_true(rm_control_sidecar_snapshot(c, s3, RM_SNAP_PUSH)->gen > gen_c);
    /* A config change moves every scope (its ACK is what apply --wait waits for). */
    apply(c, "kind: Service\nname: c\nport: 81\n", "c.yaml", &reply);
    assert_int_equal(reply.code, RM_STATUS_OK);
    rm_admin_reply_free(&reply);
    sa = rm_control_sidecar_snapshot(c, s1, RM_SNAP_PUSH);
    assert_true(sa->gen > gen_a);
    assert_int_equal(sa->version, c->version);

    /* Bad lists end the stream; the last user of a scope frees it. */
    rm_sidecar_t *s6 = rm_discovery_open(c, 100);
    char *bad[] = {"A_B"};
    assert_int_equal(hello_egress(c, s6, "p6", NULL, "", "", bad, 1, &res), -1);
    assert_int_equal(res.code, RM_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(res.message, "egress"));
    rm_discovery_close(c, s6, 100);
    rm_discovery_close(c, s3, 100);
    rm_discovery_close(c, s5, 100);
    assert_int_equal(c->n_scopes, 2);
    rm_discovery_close(c, s1, 100);
    rm_discovery_close(c, s2, 100);
    rm_discovery_close(c, s4, 100);
    assert_int_equal(c->n_scopes, 1);
    rm_control_close(c);
}

static void test_discovery_rules(void **state)
{
    (void)state;
    rm_control_t *c = new_control();
    rm_sidecar_t *a = rm_discovery_open(c, 0);
    rm_disc_result_t res;
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};
    assert_int_equal(rm_discovery_handle(c, a, garbage, sizeof(garbage), 0, &res), -1);
    assert_int_equal(res.code, RM_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(res.message, "malformed"));
    assert_int_equal(rm_discovery_handle(c, a, garbage, 0, 0, &res), -1);
    assert_non_null(strstr(res.message, "empty"));

    Remora__V1__Ack ack = REMORA__V1__ACK__INIT;
    Remora__V1__DiscoveryRequest m = REMORA__V1__DISCOVERY_REQUEST__INIT;
    m.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_ACK;
    m.ack = &ack;
    assert_int_equal(send_msg(c, a, &m, 0, &res), -1);
    assert_non_null(strstr(res.message, "Hello"));

    assert_int_equal(hello(c, a, "a", "", "", 0, &res), 0);
    assert_int_equal(hello(c, a, "a", "", "", 0, &res), -1);
    assert_non_null(strstr(res.message, "twice"));

    /* REGISTER without an identity to register is refused. */
    rm_sidecar_t *b = rm_discovery_open(c, 0);
    assert_int_equal(hello(c, b, "b", "", "", 0, &res), 0);
    Remora__V1__EndpointChange ch = REMORA__V1__ENDPOINT_CHANGE__INIT;
    m.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_ENDPOINT;
    m.endpoint = &ch;
    assert_int_equal(send_msg(c, b, &m, 0, &res), -1);
    rm_discovery_close(c, a, 0);
    rm_discovery_close(c, b, 0);
    assert_int_equal(c->registry.count, 0);
    rm_control_close(c);
}

static void test_apply_union_positions_and_all_or_nothing(void **state)
{
    (void)state;
    rm_control_t *c = new_control();
    rm_admin_reply_t reply;
    apply(c, services_yaml, "s.yaml", &reply);
    rm_admin_reply_free(&reply);
    apply(c, route_yaml, "r.yaml", &reply); /* the Service comes from the store */
    assert_int_equal(reply.code, RM_STATUS_OK);
    Remora__V1__ApplyResponse *resp =
        remora__v1__apply_response__unpack(NULL, reply.len, reply.body);
    assert_int_equal(resp->version, 2);
    /* v2 has no endpoint: a warning at the position of the destination. */
    assert_int_equal(resp->n_warnings, 1);
    assert_non_null(strstr(resp->warnings[0], "r.yaml:7:"));
    remora__v1__apply_response__free_unpacked(resp, NULL);
    rm_admin_reply_free(&reply);

    /* Two documents, the second invalid: nothing applied, the error has file:line:col. */
    char bad[1024];
    snprintf(bad, sizeof(bad), "%s---\nkind: Route\nname: r2\nservice: ghost\nrules: []\n",
             services_yaml);
    apply(c, bad, "bad.yaml", &reply);
    assert_int_equal(reply.code, RM_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(reply.details, "bad.yaml:9:"));
    assert_non_null(strstr(reply.details, "ghost"));
    assert_null(reply.body);
    rm_admin_reply_free(&reply);
    assert_int_equal(c->version, 2);

    /* Unchanged documents keep the version. */
    apply(c, route_yaml, "r.yaml", &reply);
    resp = remora__v1__apply_response__unpack(NULL, reply.len, reply.body);
    assert_int_equal(resp->version, 2);
    assert_string_equal(resp->changes[0]->change, "unchanged");
    remora__v1__apply_response__free_unpacked(resp, NULL);
    rm_admin_reply_free(&reply);
    rm_control_close(c);
}

/* A store whose appends always fail, to prove a failed write changes nothing. */
static int broken_get(rm_store_t *s, uint64_t v, rm_store_record_t *out)
{
    (void)v;
    (void)out;
    snprintf(s->error, sizeof(s->error), "empty");
    return -ENOENT;
}

static int broken_append(rm_store_t *s, uint64_t e, const uint8_t *cfg, size_t len, const char *sum,
                         uint64_t t, uint64_t *out)
{
    (void)e, (void)cfg, (void)len, (void)sum, (void)t, (void)out;
    snprintf(s->error, sizeof(s->error), "disk on fire");
    return -EIO;
}

static void broken_close(rm_store_t *s)
{
    free(s);
}

static const rm_store_ops_t broken_ops = {
    .scheme = "broken", .get = broken_get, .append = broken_append, .close = broken_close};

static void test_store_failure_changes_nothing(void **state)
{
    (void)state;
    rm_store_t *st = calloc(1, sizeof(*st));
    st->ops = &broken_ops;
    rm_control_t *c = NULL;
    char err[256];
    assert_int_equal(rm_control_open(st, NULL, &c, err, sizeof(err)), 0);
    uint64_t gen = rm_control_snapshot(c)->gen;
    rm_admin_reply_t reply;
    apply(c, services_yaml, "s.yaml", &reply);
    assert_int_equal(reply.code, RM_STATUS_UNAVAILABLE);
    assert_non_null(strstr(reply.details, "disk on fire"));
    rm_admin_reply_free(&reply);
    assert_int_equal(c->version, 0);
    assert_int_equal(c->config->n_services, 0);
    assert_int_equal(rm_control_snapshot(c)->gen, gen);
    rm_control_close(c);
}

static void test_wait_completion_appends_acks(void **state)
{
    (void)state;
    rm_control_t *c = new_control();
    rm_admin_reply_t reply;
    apply(c, services_yaml, "s.yaml", &reply);
    rm_admin_reply_free(&reply);
    rm_sidecar_t *a = rm_discovery_open(c, 0);
    rm_disc_result_t res;
    hello(c, a, "a", "", "", 0, &res);
    rm_discovery_sent(c, a, rm_control_snapshot(c));

    Remora__V1__WaitForAckRequest w = REMORA__V1__WAIT_FOR_ACK_REQUEST__INIT;
    size_t len;
    uint8_t *bytes = rm_pb_pack(&w.base, &len);
    rm_admin_handle(c, RM_ADMIN_WAIT_FOR_ACK, bytes, len, 0, &reply);
    free(bytes);
    assert_true(reply.wait);
    assert_int_equal(reply.wait_version, 1);
    assert_int_equal(reply.wait_deadline_ms, RM_ADMIN_DEFAULT_WAIT_MS);
    assert_false(rm_admin_wait_ready(c, &reply));

    Remora__V1__Ack ack = REMORA__V1__ACK__INIT;
    ack.nonce = (char *)rm_control_snapshot(c)->nonce;
    Remora__V1__DiscoveryRequest m = REMORA__V1__DISCOVERY_REQUEST__INIT;
    m.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_ACK;
    m.ack = &ack;
    assert_int_equal(send_msg(c, a, &m, 5, &res), 0);
    assert_true(c->answers_changed);
    assert_true(rm_admin_wait_ready(c, &reply));
    rm_admin_wait_finish(c, RM_ADMIN_WAIT_FOR_ACK, &reply, 0, 5);
    Remora__V1__WaitForAckResponse *resp =
        remora__v1__wait_for_ack_response__unpack(NULL, reply.len, reply.body);
    assert_non_null(resp);
    assert_false(resp->timed_out);
    assert_int_equal(resp->n_acks, 1);
    assert_string_equal(resp->acks[0]->pod, "a");
    assert_string_equal(resp->acks[0]->state, "SYNCED");
    remora__v1__wait_for_ack_response__free_unpacked(resp, NULL);
    rm_admin_reply_free(&reply);
    rm_control_close(c);
}

/* ---- a store shared with another writer (what etcd is): two controls over one mem store ---- */

typedef struct shared_view {
    rm_store_t base;
    rm_store_t *inner; /* borrowed: the one mem store both views write */
} shared_view_t;

static int shared_changed_flag;

static int sv_get(rm_store_t *s, uint64_t v, rm_store_record_t *out)
{
    shared_view_t *sv = (shared_view_t *)s;
    int rc = rm_store_get(sv->inner, v, out);
    snprintf(s->error, sizeof(s->error), "%s", rm_store_error(sv->inner));
    return rc;
}

static int sv_append(rm_store_t *s, uint64_t e, const uint8_t *cfg, size_t len, const char *sum,
                     uint64_t t, uint64_t *out)
{
    shared_view_t *sv = (shared_view_t *)s;
    int rc = rm_store_append(sv->inner, e, cfg, len, sum, t, out);
    snprintf(s->error, sizeof(s->error), "%s", rm_store_error(sv->inner));
    return rc;
}

static int sv_history(rm_store_t *s, uint32_t limit, rm_store_record_t **out, size_t *n)
{
    return rm_store_history(((shared_view_t *)s)->inner, limit, out, n);
}

static void sv_close(rm_store_t *s)
{
    free(s);
}

static int sv_changed(rm_store_t *s)
{
    (void)s;
    int c = shared_changed_flag;
    shared_changed_flag = 0;
    return c;
}

static const rm_store_ops_t shared_ops = {.scheme = "shared",
                                          .get = sv_get,
                                          .append = sv_append,
                                          .history = sv_history,
                                          .close = sv_close,
                                          .changed = sv_changed};

static rm_control_t *shared_control(rm_store_t *inner)
{
    shared_view_t *sv = calloc(1, sizeof(*sv));
    assert_non_null(sv);
    sv->base.ops = &shared_ops;
    sv->inner = inner;
    rm_control_t *c = NULL;
    char err[256];
    assert_int_equal(rm_control_open(&sv->base, NULL, &c, err, sizeof(err)), 0);
    return c;
}

static void test_shared_store_sync_and_conflict(void **state)
{
    (void)state;
    rm_store_t *mem = NULL;
    assert_int_equal(rm_store_open("mem:", &mem, NULL, 0), 0);
    rm_control_t *a = shared_control(mem), *b = shared_control(mem);
    rm_control_t *plain = new_control();
    assert_int_equal(rm_control_sync_interval(a), RM_STORE_WATCH_POLL_MS);
    assert_int_equal(rm_control_sync_interval(plain), UINT64_MAX);
    rm_admin_reply_t reply;

    apply(a, services_yaml, "s.yaml", &reply);
    assert_int_equal(reply.code, RM_STATUS_OK);
    rm_admin_reply_free(&reply);
    /* No change announced: b does not read the store. */
    rm_control_push_done(b);
    assert_int_equal(rm_control_sync(b, 1000), 0);
    assert_int_equal(b->version, 0);
    /* Announced: b installs version 1 and schedules a push of it. */
    shared_changed_flag = 1;
    assert_int_equal(rm_control_sync(b, 1000), 1);
    assert_int_equal(b->version, 1);
    assert_int_equal(b->config->n_services, 1);
    assert_true(b->push_at != 0);
    assert_int_equal(rm_control_snapshot(b)->version, 1);
    /* Announced again with nothing newer: nothing happens. */
    shared_changed_flag = 1;
    assert_int_equal(rm_control_sync(b, 1001), 0);

    /* b writes version 2; a, still at 1, loses its race cleanly and nothing is stored ... */
    apply(b, route_yaml, "r.yaml", &reply);
    assert_int_equal(reply.code, RM_STATUS_OK);
    rm_admin_reply_free(&reply);
    apply(a, "kind: Service\nname: ratings\nport: 9090\n", "x.yaml", &reply);
    assert_int_equal(reply.code, RM_STATUS_ABORTED);
    assert_non_null(strstr(reply.details, "retry"));
    rm_admin_reply_free(&reply);
    assert_int_equal(a->version, 1);
    /* ... and re-reads the store at its next sync even without an announcement, so the retry
     * builds on b's version: the route b added survives (no lost update). */
    assert_int_equal(rm_control_sync(a, 2000), 1);
    assert_int_equal(a->version, 2);
    apply(a, "kind: Service\nname: ratings\nport: 9090\n", "x.yaml", &reply);
    assert_int_equal(reply.code, RM_STATUS_OK);
    rm_admin_reply_free(&reply);
    assert_int_equal(a->version, 3);
    assert_int_equal(a->config->n_services, 2);
    assert_int_equal(a->config->n_routes, 1);

    rm_control_close(plain);
    rm_control_close(a);
    rm_control_close(b);
    rm_store_close(mem);
}

static rm_control_t *open_with(const char *uri, const rm_cp_options_t *opt)
{
    rm_store_t *st = NULL;
    rm_control_t *c = NULL;
    char err[512];
    assert_int_equal(rm_store_open(uri, &st, err, sizeof(err)), 0);
    assert_int_equal(rm_control_open(st, opt, &c, err, sizeof(err)), 0);
    return c;
}

static void admin(rm_control_t *c, rm_admin_method_t m, const ProtobufCMessage *req,
                  rm_admin_reply_t *reply)
{
    size_t len;
    uint8_t *bytes = rm_pb_pack(req, &len);
    rm_admin_handle(c, m, bytes, len, 100, reply);
    free(bytes);
}

/* Version `i` of a config: the reviews Service on port 9000 + i. */
static void apply_nth(rm_control_t *c, int i)
{
    char src[128];
    snprintf(src, sizeof(src), "kind: Service\nname: reviews\nport: %d\n", 9000 + i);
    rm_admin_reply_t reply;
    apply(c, src, "n.yaml", &reply);
    assert_int_equal(reply.code, RM_STATUS_OK);
    rm_admin_reply_free(&reply);
}

/* --history N: the store keeps the last N versions; history, get --version and rollback work
 * within them, and a pruned version is a clear NOT_FOUND that says how far back one can go. A
 * restart with a lower N prunes at once. SQLite, the default store. */
static void test_history_retention(void **state)
{
    (void)state;
    const char *tmp = getenv("TEST_TMPDIR");
    char dir[512], uri[600];
    snprintf(dir, sizeof(dir), "%s/core_test_XXXXXX", tmp != NULL ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(uri, sizeof(uri), "sqlite:%s/remora.db", dir);
    rm_cp_options_t opt = {.debounce_ms = 20, .grace_ms = 2000, .history = 3};
    rm_control_t *c = open_with(uri, &opt);
    for (int i = 1; i <= 5; i++)
        apply_nth(c, i);
    assert_int_equal(c->version, 5);
    uint64_t oldest = 0;
    assert_int_equal(rm_store_oldest(c->store, &oldest), 0);
    assert_int_equal(oldest, 3);

    rm_admin_reply_t reply;
    Remora__V1__HistoryRequest hreq = REMORA__V1__HISTORY_REQUEST__INIT;
    admin(c, RM_ADMIN_HISTORY, &hreq.base, &reply);
    assert_int_equal(reply.code, RM_STATUS_OK);
    Remora__V1__HistoryResponse *h =
        remora__v1__history_response__unpack(NULL, reply.len, reply.body);
    assert_int_equal(h->n_entries, 3);
    assert_int_equal(h->entries[0]->version, 5);
    assert_int_equal(h->entries[2]->version, 3);
    remora__v1__history_response__free_unpacked(h, NULL);
    rm_admin_reply_free(&reply);

    /* Within what is kept: get --version and rollback. */
    Remora__V1__GetRequest greq = REMORA__V1__GET_REQUEST__INIT;
    greq.version = 3;
    admin(c, RM_ADMIN_GET, &greq.base, &reply);
    assert_int_equal(reply.code, RM_STATUS_OK);
    rm_admin_reply_free(&reply);
    Remora__V1__RollbackRequest rreq = REMORA__V1__ROLLBACK_REQUEST__INIT;
    rreq.to_version = 3;
    admin(c, RM_ADMIN_ROLLBACK, &rreq.base, &reply);
    assert_int_equal(reply.code, RM_STATUS_OK);
    rm_admin_reply_free(&reply);
    assert_int_equal(c->version, 6);
    assert_int_equal(c->config->services[0]->port, 9003);

    /* Version 3 went with version 6: a clear error, nothing changed. */
    admin(c, RM_ADMIN_ROLLBACK, &rreq.base, &reply);
    assert_int_equal(reply.code, RM_STATUS_NOT_FOUND);
    assert_non_null(strstr(reply.details, "version 3 is no longer kept"));
    assert_non_null(strstr(reply.details, "--history 3"));
    assert_non_null(strstr(reply.details, "the oldest now is 4"));
    rm_admin_reply_free(&reply);
    assert_int_equal(c->version, 6);
    greq.version = 1;
    admin(c, RM_ADMIN_GET, &greq.base, &reply);
    assert_int_equal(reply.code, RM_STATUS_NOT_FOUND);
    assert_non_null(strstr(reply.details, "version 1 is no longer kept"));
    rm_admin_reply_free(&reply);
    /* A version that never existed is not "no longer kept". */
    greq.version = 99;
    admin(c, RM_ADMIN_GET, &greq.base, &reply);
    assert_int_equal(reply.code, RM_STATUS_NOT_FOUND);
    assert_null(strstr(reply.details, "no longer kept"));
    rm_admin_reply_free(&reply);
    /* The default rollback (the previous version) is always kept with N >= 2. */
    Remora__V1__RollbackRequest prev = REMORA__V1__ROLLBACK_REQUEST__INIT;
    admin(c, RM_ADMIN_ROLLBACK, &prev.base, &reply);
    assert_int_equal(reply.code, RM_STATUS_OK);
    rm_admin_reply_free(&reply);
    assert_int_equal(c->version, 7);
    assert_int_equal(c->config->services[0]->port, 9005);
    rm_control_close(c);

    /* Restarted with --history 1: only the current version is left, and rollback says so. */
    opt.history = 1;
    c = open_with(uri, &opt);
    assert_int_equal(c->version, 7);
    assert_int_equal(rm_store_oldest(c->store, &oldest), 0);
    assert_int_equal(oldest, 7);
    admin(c, RM_ADMIN_ROLLBACK, &prev.base, &reply);
    assert_int_equal(reply.code, RM_STATUS_NOT_FOUND);
    assert_non_null(strstr(reply.details, "version 6 is no longer kept"));
    rm_admin_reply_free(&reply);
    rm_control_close(c);

    /* Without --history: the default. */
    c = open_with(uri, NULL);
    assert_int_equal(c->opt.history, RM_CONTROL_DEFAULT_HISTORY);
    rm_control_close(c);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int register_msg(rm_control_t *c, rm_sidecar_t *sc, rm_disc_result_t *res)
{
    Remora__V1__EndpointChange e = REMORA__V1__ENDPOINT_CHANGE__INIT;
    e.kind = REMORA__V1__ENDPOINT_CHANGE__KIND__REGISTER;
    Remora__V1__DiscoveryRequest m = REMORA__V1__DISCOVERY_REQUEST__INIT;
    m.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_ENDPOINT;
    m.endpoint = &e;
    return send_msg(c, sc, &m, 100, res);
}

static int hello_not_ready(rm_control_t *c, rm_sidecar_t *sc, const char *pod, const char *addr,
                           rm_disc_result_t *res)
{
    Remora__V1__Node node = REMORA__V1__NODE__INIT;
    node.pod = (char *)pod;
    node.service = "reviews";
    node.version = "v1";
    node.address = (char *)addr;
    Remora__V1__Hello h = REMORA__V1__HELLO__INIT;
    h.node = &node;
    h.not_ready = 1;
    Remora__V1__DiscoveryRequest m = REMORA__V1__DISCOVERY_REQUEST__INIT;
    m.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_HELLO;
    m.hello = &h;
    return send_msg(c, sc, &m, 100, res);
}

static void assert_refused(int rc, const rm_disc_result_t *res, const char *flag)
{
    assert_int_equal(rc, -1);
    assert_int_equal(res->code, RM_STATUS_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(res->message, flag));
}

/* Caps: past each one the caller that would exceed it is refused with RESOURCE_EXHAUSTED naming
 * the flag and counted; everyone already in keeps going; room made is room again. */
static void test_caps(void **state)
{
    (void)state;
    rm_cp_options_t opt = {.debounce_ms = 20,
                           .grace_ms = 2000,
                           .max_streams = 4,
                           .max_scopes = 1,
                           .max_registrations = 2,
                           .max_waiters = 1};
    rm_control_t *c = open_with("mem:", &opt);
    rm_admin_reply_t reply;
    apply(c, services_yaml, "s.yaml", &reply);
    rm_admin_reply_free(&reply);
    rm_disc_result_t res;

    /* Streams: the fifth is refused before it is anything; closing one makes room. */
    rm_sidecar_t *s[4];
    for (int i = 0; i < 4; i++)
        assert_non_null(s[i] = rm_discovery_open(c, 100));
    assert_null(rm_discovery_open(c, 100));
    assert_null(rm_discovery_open(c, 101));
    assert_int_equal(c->refused[RM_CAP_STREAMS], 2);
    assert_int_equal(c->registry.connected, 4);
    char msg[300];
    assert_non_null(strstr(rm_control_cap_message(c, RM_CAP_STREAMS, msg, sizeof(msg)),
                           "already serves 4 discovery streams (--max-streams 4)"));

    /* Registrations: two endpoints; a third is refused, nothing of it kept; the same pod again
     * (a reconnect, its old stream not noticed yet) replaces its entry and is let in. */
    assert_int_equal(hello(c, s[0], "p1", "reviews", "10.0.0.1:15006", 100, &res), 0);
    assert_int_equal(hello(c, s[1], "p2", "reviews", "10.0.0.2:15006", 100, &res), 0);
    assert_refused(hello(c, s[2], "p3", "reviews", "10.0.0.3:15006", 100, &res), &res,
                   "--max-registrations 2");
    assert_non_null(strstr(res.message, "already lists 2 endpoints of its own"));
    assert_false(s[2]->hello);
    assert_int_equal(c->refused[RM_CAP_REGISTRATIONS], 1);
    rm_discovery_close(c, s[2], 100);
    s[2] = rm_discovery_open(c, 100);
    assert_int_equal(hello(c, s[2], "p1", "reviews", "10.0.0.1:15006", 100, &res), 0);
    assert_true(s[2]->has_endpoint);
    assert_false(s[0]->has_endpoint);
    /* A sidecar without an endpoint is no registration. */
    assert_int_equal(hello(c, s[3], "client", "", "", 100, &res), 0);
    /* A not-ready Hello registers nothing yet; its REGISTER is what the cap refuses. */
    rm_discovery_close(c, s[0], 100);
    s[0] = rm_discovery_open(c, 100);
    assert_int_equal(hello_not_ready(c, s[0], "p4", "10.0.0.4:15006", &res), 0);
    assert_refused(register_msg(c, s[0], &res), &res, "--max-registrations 2");
    assert_false(s[0]->has_endpoint);
    /* An endpoint in its grace still counts; once expired, there is room. */
    rm_discovery_close(c, s[0], 100);
    rm_discovery_close(c, s[1], 100); /* p2 in its grace */
    s[0] = rm_discovery_open(c, 100);
    assert_refused(hello(c, s[0], "p5", "reviews", "10.0.0.5:15006", 200, &res), &res,
                   "--max-registrations 2");
    rm_discovery_close(c, s[0], 200);
    rm_control_tick(c, 100 + 2000);
    s[0] = rm_discovery_open(c, 2100);
    assert_int_equal(hello(c, s[0], "p5", "reviews", "10.0.0.5:15006", 2100, &res), 0);

    /* Scopes: one egress list besides "all"; sidecars sharing it are fine, a second is refused,
     * and once its last user left, another list takes its place. */
    char *eg_a[] = {"reviews"}, *eg_b[] = {"ratings"};
    s[1] = rm_discovery_open(c, 2100);
    assert_int_equal(hello_egress(c, s[1], "e1", NULL, "", "", eg_a, 1, &res), 0);
    rm_sidecar_t *e2 = s[3];
    rm_discovery_close(c, e2, 2100);
    s[3] = rm_discovery_open(c, 2100);
    assert_int_equal(hello_egress(c, s[3], "e2", NULL, "", "", eg_a, 1, &res), 0);
    rm_sidecar_t *e3 = rm_discovery_open(c, 2100);
    assert_null(e3); /* four streams open: s[0..3] */
    rm_discovery_close(c, s[2], 2100);
    e3 = rm_discovery_open(c, 2100);
    assert_refused(hello_egress(c, e3, "e3", NULL, "", "", eg_b, 1, &res), &res, "--max-scopes 1");
    assert_non_null(strstr(res.message, "already serves 1 distinct egress lists"));
    assert_int_equal(c->n_scopes, 2);
    assert_int_equal(c->refused[RM_CAP_SCOPES], 1);
    rm_discovery_close(c, e3, 2100);
    rm_discovery_close(c, s[1], 2100);
    rm_discovery_close(c, s[3], 2100);
    assert_int_equal(c->n_scopes, 1);
    e3 = rm_discovery_open(c, 2100);
    assert_int_equal(hello_egress(c, e3, "e3", NULL, "", "", eg_b, 1, &res), 0);

    /* Waiters: with one call parked, WaitForAck and Apply(wait) are refused before anything
     * happens (no new version); Apply without wait still works. */
    Remora__V1__WaitForAckRequest w = REMORA__V1__WAIT_FOR_ACK_REQUEST__INIT;
    admin(c, RM_ADMIN_WAIT_FOR_ACK, &w.base, &reply);
    assert_int_equal(reply.code, RM_STATUS_OK);
    assert_true(reply.wait);
    rm_admin_reply_free(&reply);
    rm_admin_wait_count(c, 1);
    admin(c, RM_ADMIN_WAIT_FOR_ACK, &w.base, &reply);
    assert_int_equal(reply.code, RM_STATUS_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(reply.details, "1 calls already wait"));
    assert_non_null(strstr(reply.details, "--max-waiters 1"));
    rm_admin_reply_free(&reply);
    uint64_t v = c->version;
    Remora__V1__ApplyRequest ar = REMORA__V1__APPLY_REQUEST__INIT;
    ar.source = (char *)route_yaml;
    ar.filename = "r.yaml";
    ar.wait = 1;
    admin(c, RM_ADMIN_APPLY, &ar.base, &reply);
    assert_int_equal(reply.code, RM_STATUS_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(reply.details, "nothing applied"));
    rm_admin_reply_free(&reply);
    assert_int_equal(c->version, v);
    ar.wait = 0;
    admin(c, RM_ADMIN_APPLY, &ar.base, &reply);
    assert_int_equal(reply.code, RM_STATUS_OK);
    rm_admin_reply_free(&reply);
    assert_int_equal(c->version, v + 1);
    assert_int_equal(c->refused[RM_CAP_WAITERS], 2);
    rm_admin_wait_count(c, -1);
    admin(c, RM_ADMIN_WAIT_FOR_ACK, &w.base, &reply);
    assert_int_equal(reply.code, RM_STATUS_OK);
    rm_admin_reply_free(&reply);
    rm_control_close(c);

    /* Without options: the defaults. */
    c = open_with("mem:", NULL);
    assert_int_equal(c->opt.max_streams, RM_CONTROL_DEFAULT_MAX_STREAMS);
    assert_int_equal(c->opt.max_scopes, RM_CONTROL_DEFAULT_MAX_SCOPES);
    assert_int_equal(c->opt.max_registrations, RM_CONTROL_DEFAULT_MAX_REGISTRATIONS);
    assert_int_equal(c->opt.max_waiters, RM_CONTROL_DEFAULT_MAX_WAITERS);
    rm_control_close(c);
}

int main(void)
{
    rm_log_init("core_test", RM_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_debounce_and_urgent),
        cmocka_unit_test(test_hello_snapshot_and_endpoints),
        cmocka_unit_test(test_sidecar_endpoints_marked),
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_discovery_rules),
        cmocka_unit_test(test_apply_union_positions_and_all_or_nothing),
        cmocka_unit_test(test_store_failure_changes_nothing),
        cmocka_unit_test(test_wait_completion_appends_acks),
        cmocka_unit_test(test_shared_store_sync_and_conflict),
        cmocka_unit_test(test_history_retention),
        cmocka_unit_test(test_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
