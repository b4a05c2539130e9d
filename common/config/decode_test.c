/* common/config/decode_test.c — decoding: every field of config.proto from YAML and from JSON,
 * scalars and nulls, maps, oneofs, multi-document files and JSON arrays.
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

#include "common/config/config.h"
#include "common/config/test_util.h"
#include "common/config/testdata.h"

static Remora__V1__ConfigSet *parse_ok(const char *text)
{
    rm_config_diags_t errs = {0};
    Remora__V1__ConfigSet *set = NULL;
    int rc = rm_config_parse("t.yaml", text, strlen(text), &set, &errs);
    if (rc != 0) {
        rm_config_diags_print(&errs, stderr, "  ");
        fail_msg("parse failed (rc %d)", rc);
    }
    assert_int_equal(errs.count, 0);
    return set;
}

static const Remora__V1__StringMatch *header(const Remora__V1__Match *m, const char *name)
{
    for (size_t i = 0; i < m->n_headers; i++) {
        if (strcmp(m->headers[i]->key, name) == 0)
            return m->headers[i]->value;
    }
    fail_msg("no header matcher %s", name);
    return NULL;
}

/* Checks every field of the kitchen-sink documents (after validation's defaults). */
static void check_kitchen(const Remora__V1__ConfigSet *set)
{
    const Remora__V1__Service *s;
    const Remora__V1__Route *r;
    const Remora__V1__Rule *rule;
    const Remora__V1__Match *m;
    const Remora__V1__RetryPolicy *rp;
    const Remora__V1__CircuitBreaker *cb;

    assert_int_equal(set->n_services, 2);
    assert_int_equal(set->n_routes, 1);
    assert_int_equal(set->n_circuit_breakers, 1);

    s = set->services[0];
    assert_string_equal(s->kind, "Service");
    assert_string_equal(s->name, "reviews");
    assert_string_equal(s->namespace_, "shop");
    assert_true(s->has_port);
    assert_int_equal(s->port, 9080);
    assert_int_equal(s->n_hosts, 2);
    assert_string_equal(s->hosts[0], "reviews.example");
    assert_string_equal(s->hosts[1], "reviews.shop.internal");
    assert_string_equal(s->vip, "fd00::20");
    assert_int_equal(s->n_endpoints, 2);
    assert_string_equal(s->endpoints[0]->address, "127.0.0.1:9001");
    assert_string_equal(s->endpoints[0]->version, "v1");
    assert_int_equal(s->endpoints[0]->n_labels, 0);
    assert_false(s->endpoints[0]->has_sidecar);
    assert_false(s->endpoints[0]->sidecar);
    assert_string_equal(s->endpoints[1]->address, "[::1]:9002");
    assert_string_equal(s->endpoints[1]->version, "v2");
    assert_int_equal(s->endpoints[1]->n_labels, 2);
    assert_string_equal(s->endpoints[1]->labels[0]->key, "zone");
    assert_string_equal(s->endpoints[1]->labels[0]->value, "a");
    assert_string_equal(s->endpoints[1]->labels[1]->key, "rack");
    assert_string_equal(s->endpoints[1]->labels[1]->value, "r1");
    assert_true(s->endpoints[1]->has_sidecar);
    assert_true(s->endpoints[1]->sidecar);

    r = set->routes[0];
    assert_string_equal(r->kind, "Route");
    assert_string_equal(r->name, "reviews-route");
    assert_string_equal(r->namespace_, "shop");
    assert_string_equal(r->service, "reviews");
    assert_int_equal(r->n_rules, 3);

    rule = r->rules[0];
    assert_string_equal(rule->name, "all-kinds");
    m = rule->match;
    assert_non_null(m);
    assert_int_equal(m->n_headers, 6);
    assert_int_equal(header(m, "x-exact")->kind_case, REMORA__V1__STRING_MATCH__KIND_EXACT);
    assert_string_equal(header(m, "x-exact")->exact, "e");
    assert_int_equal(header(m, "x-prefix")->kind_case, REMORA__V1__STRING_MATCH__KIND_PREFIX);
    assert_string_equal(header(m, "x-prefix")->prefix, "p");
    assert_int_equal(header(m, "x-suffix")->kind_case, REMORA__V1__STRING_MATCH__KIND_SUFFIX);
    assert_string_equal(header(m, "x-suffix")->suffix, "s");
    assert_int_equal(header(m, "x-regex")->kind_case, REMORA__V1__STRING_MATCH__KIND_REGEX);
    assert_string_equal(header(m, "x-regex")->regex, "^a+$");
    assert_int_equal(header(m, "x-present")->kind_case, REMORA__V1__STRING_MATCH__KIND_PRESENT);
    assert_true(header(m, "x-present")->present);
    assert_int_equal(header(m, "x-absent")->kind_case, REMORA__V1__STRING_MATCH__KIND_ABSENT);
    assert_true(header(m, "x-absent")->absent);
    assert_int_equal(m->n_cookies, 1);
    assert_string_equal(m->cookies[0]->key, "session");
    assert_string_equal(m->cookies[0]->value->exact, "abc");
    assert_int_equal(m->n_query, 1);
    assert_string_equal(m->query[0]->key, "debug");
    assert_true(m->query[0]->value->present);
    assert_int_equal(m->path->kind_case, REMORA__V1__PATH_MATCH__KIND_EXACT);
    assert_string_equal(m->path->exact, "/health");
    assert_string_equal(m->method, "POST");
    assert_int_equal(rule->n_destinations, 1);
    assert_string_equal(rule->destinations[0]->version, "v1");
    assert_true(rule->destinations[0]->has_weight);
    assert_int_equal(rule->destinations[0]->weight, 1);
    assert_int_equal(rule->sticky_on->key_case, REMORA__V1__STICKY_ON__KEY_COOKIE);
    assert_string_equal(rule->sticky_on->cookie, "uid");
    assert_null(rule->mirror->version);
    assert_string_equal(rule->mirror->service, "ratings");
    assert_int_equal(rule->timeout->millis, 2000);
    rp = rule->retries;
    assert_true(rp->has_attempts);
    assert_int_equal(rp->attempts, 0);
    assert_int_equal(rp->per_try_timeout->millis, 500);
    assert_int_equal(rp->n_retry_on, 2);
    assert_string_equal(rp->retry_on[0], "5xx");
    assert_string_equal(rp->retry_on[1], "retriable-status-codes");
    assert_int_equal(rp->n_retriable_status_codes, 2);
    assert_int_equal(rp->retriable_status_codes[0], 503);
    assert_int_equal(rp->retriable_status_codes[1], 409);
    assert_int_equal(rp->backoff->base_->millis, 10);
    assert_int_equal(rp->backoff->max->millis, 1000);
    assert_int_equal(rp->budget->percent, 50);
    assert_int_equal(rp->budget->min_per_second, 5);

    rule = r->rules[1];
    assert_null(rule->name);
    assert_int_equal(rule->match->path->kind_case, REMORA__V1__PATH_MATCH__KIND_REGEX);
    assert_string_equal(rule->match->path->regex, "^/v[0-9]+/");
    assert_string_equal(rule->destinations[0]->version, "v2");

    rule = r->rules[2];
    assert_int_equal(rule->match->path->kind_case, REMORA__V1__PATH_MATCH__KIND_PREFIX);
    assert_string_equal(rule->match->path->prefix, "/api");
    assert_int_equal(rule->n_destinations, 2);
    assert_int_equal(rule->destinations[0]->weight, 3);
    assert_int_equal(rule->destinations[1]->weight, 1);
    assert_int_equal(rule->sticky_on->key_case, REMORA__V1__STICKY_ON__KEY_HEADER);
    assert_string_equal(rule->sticky_on->header, "x-user"); /* lower-cased by validation */
    assert_string_equal(rule->mirror->version, "v2");
    assert_true(rule->mirror->has_percent);
    assert_int_equal(rule->mirror->percent, 0);

    cb = set->circuit_breakers[0];
    assert_string_equal(cb->kind, "CircuitBreaker");
    assert_string_equal(cb->name, "reviews-cb");
    assert_string_equal(cb->namespace_, "shop");
    assert_string_equal(cb->service, "reviews");
    assert_string_equal(cb->version, "v1");
    assert_int_equal(cb->limits->max_connections, 10);
    assert_int_equal(cb->limits->max_pending_requests, 20);
    assert_int_equal(cb->limits->max_requests, 30);
    assert_true(cb->limits->has_max_retries);
    assert_int_equal(cb->limits->max_retries, 0);
    assert_true(cb->outlier_detection->has_consecutive_5xx);
    assert_int_equal(cb->outlier_detection->consecutive_5xx, 0);
    assert_int_equal(cb->outlier_detection->consecutive_gateway_errors, 7);
    assert_int_equal(cb->outlier_detection->interval->millis, 60000);
    assert_int_equal(cb->outlier_detection->base_ejection_time->millis, 3600000);
    assert_int_equal(cb->outlier_detection->max_ejection_percent, 100);
}

static void test_every_field_yaml(void **state)
{
    Remora__V1__ConfigSet *set = tu_load_ok(tu_kitchen_yaml);
    (void)state;
    check_kitchen(set);
    tu_free(set);
}

static void test_every_field_json(void **state)
{
    Remora__V1__ConfigSet *set = tu_load_ok(tu_kitchen_json);
    (void)state;
    check_kitchen(set);
    tu_free(set);
}

/* The two spellings describe the same set, byte for byte once packed. */
static void test_yaml_and_json_agree(void **state)
{
    Remora__V1__ConfigSet *a = tu_load_ok(tu_kitchen_yaml), *b = tu_load_ok(tu_kitchen_json);
    (void)state;
    tu_assert_same(a, b);
    tu_free(a);
    tu_free(b);
}

/* rm_config_parse decodes only: no defaults, no reference checks. */
static void test_parse_does_not_validate(void **state)
{
    Remora__V1__ConfigSet *set = parse_ok("kind: Route\nname: r\nservice: nowhere\n");
    (void)state;
    assert_int_equal(set->n_routes, 1);
    assert_string_equal(set->routes[0]->kind, "Route");
    assert_null(set->routes[0]->namespace_);
    assert_int_equal(set->routes[0]->n_rules, 0);
    tu_free(set);
}

static void test_null_means_absent(void **state)
{
    Remora__V1__ConfigSet *set =
        parse_ok("kind: Service\nname: s\nvip:\nhosts: ~\nport: null\nendpoints: NULL\n");
    (void)state;
    assert_null(set->services[0]->vip);
    assert_int_equal(set->services[0]->n_hosts, 0);
    assert_false(set->services[0]->has_port);
    assert_int_equal(set->services[0]->n_endpoints, 0);
    tu_free(set);
}

/* A plain scalar into a string field is its text, whatever it looks like. */
static void test_plain_scalars_as_strings(void **state)
{
    Remora__V1__ConfigSet *set = parse_ok("kind: Service\nname: s\nvip: 80\n"
                                          "endpoints: [{address: '1.2.3.4:5', version: 1.0},\n"
                                          "            {version: true, labels: {n: 007}}]\n");
    (void)state;
    assert_string_equal(set->services[0]->vip, "80");
    assert_string_equal(set->services[0]->endpoints[0]->version, "1.0");
    assert_string_equal(set->services[0]->endpoints[1]->version, "true");
    assert_string_equal(set->services[0]->endpoints[1]->labels[0]->value, "007");
    tu_free(set);
}

static void test_block_scalars_and_escapes(void **state)
{
    Remora__V1__ConfigSet *set = parse_ok("kind: Route\nname: r\nrules:\n"
                                          "  - match:\n"
                                          "      headers:\n"
                                          "        x-a: {exact: \"tab\\there \\u00e9\"}\n"
                                          "        x-b:\n"
                                          "          regex: |-\n"
                                          "            ^a|b$\n");
    const Remora__V1__Match *m;
    (void)state;
    m = set->routes[0]->rules[0]->match;
    assert_string_equal(m->headers[0]->value->exact, "tab\there \xc3\xa9");
    assert_string_equal(m->headers[1]->value->regex, "^a|b$");
    tu_free(set);
}

static void test_integers(void **state)
{
    Remora__V1__ConfigSet *set = parse_ok(
        "kind: Service\nname: s\nport: 0\n---\nkind: Service\nname: t\nport: 4294967295\n");
    (void)state;
    assert_true(set->services[0]->has_port);
    assert_int_equal(set->services[0]->port, 0);
    assert_int_equal(set->services[1]->port, 4294967295u);
    tu_free(set);
}

static void test_booleans(void **state)
{
    Remora__V1__ConfigSet *set =
        parse_ok("kind: Route\nname: r\nrules: [{match: {headers: {a: {present: false}}}}]\n");
    (void)state;
    /* false is decoded as given; validation says it must be true. */
    assert_int_equal(set->routes[0]->rules[0]->match->headers[0]->value->kind_case,
                     REMORA__V1__STRING_MATCH__KIND_PRESENT);
    assert_false(set->routes[0]->rules[0]->match->headers[0]->value->present);
    tu_free(set);
}

/* An endpoint's `sidecar` flag: true, an explicit false (present, so it prints back) and absent,
 * in YAML and in JSON. */
static void test_endpoint_sidecar(void **state)
{
    Remora__V1__ConfigSet *set =
        parse_ok("kind: Service\nname: s\nendpoints:\n"
                 "  - {address: 10.0.0.1:15006, version: v1, sidecar: true}\n"
                 "  - {address: 10.0.0.2:80, version: v1, sidecar: false}\n"
                 "  - {address: 10.0.0.3:80, version: v1}\n");
    const Remora__V1__Service *s = set->services[0];
    (void)state;
    assert_int_equal(s->n_endpoints, 3);
    assert_true(s->endpoints[0]->has_sidecar);
    assert_true(s->endpoints[0]->sidecar);
    assert_true(s->endpoints[1]->has_sidecar);
    assert_false(s->endpoints[1]->sidecar);
    assert_false(s->endpoints[2]->has_sidecar);
    assert_false(s->endpoints[2]->sidecar);
    tu_free(set);

    set = parse_ok("{\"kind\": \"Service\", \"name\": \"s\", \"endpoints\": [\n"
                   "  {\"address\": \"10.0.0.1:15006\", \"version\": \"v1\", \"sidecar\": true}]}");
    assert_true(set->services[0]->endpoints[0]->has_sidecar);
    assert_true(set->services[0]->endpoints[0]->sidecar);
    tu_free(set);
}

static void test_multi_document_order(void **state)
{
    Remora__V1__ConfigSet *set = parse_ok("---\n# leading separator and comments are fine\n"
                                          "kind: CircuitBreaker\nname: c1\n"
                                          "---\nkind: Service\nname: s1\n"
                                          "---\nkind: Route\nname: r1\n"
                                          "---\nkind: Service\nname: s2\n"
                                          "...\n");
    (void)state;
    assert_int_equal(set->n_services, 2);
    assert_string_equal(set->services[0]->name, "s1");
    assert_string_equal(set->services[1]->name, "s2");
    assert_int_equal(set->n_routes, 1);
    assert_int_equal(set->n_circuit_breakers, 1);
    tu_free(set);
}

static void test_json_single_object_and_array(void **state)
{
    Remora__V1__ConfigSet *a = parse_ok("{\"kind\":\"Service\",\"name\":\"s\",\"port\":80}");
    Remora__V1__ConfigSet *b = parse_ok("  [\n{\"kind\":\"Service\",\"name\":\"s\",\"port\":80},"
                                        "{\"kind\":\"Service\",\"name\":\"t\"}]");
    (void)state;
    assert_int_equal(a->n_services, 1);
    assert_int_equal(a->services[0]->port, 80);
    assert_int_equal(b->n_services, 2);
    assert_string_equal(b->services[1]->name, "t");
    tu_free(a);
    tu_free(b);
}

static void test_json_tabs_everywhere(void **state)
{
    Remora__V1__ConfigSet *set =
        parse_ok("\t{\t\"kind\"\t:\t\"Service\",\n\t\t\"name\":\"s\",\n\t\"vip\":\"a\\tb\"\t}\t\n");
    (void)state;
    assert_string_equal(set->services[0]->vip, "a\tb");
    tu_free(set);
}

static void test_utf8_bom(void **state)
{
    Remora__V1__ConfigSet *set = parse_ok("\xef\xbb\xbfkind: Service\nname: s\n");
    (void)state;
    assert_int_equal(set->n_services, 1);
    tu_free(set);
}

/* The same positions a user sees come from rm_config_parse + rm_config_validate separately. */
static void test_parse_then_validate_keeps_positions(void **state)
{
    static const char text[] = "kind: Service\nname: s\nport: 80\n---\n"
                               "kind: Route\nname: r\nservice: s\nrules:\n"
                               "  - destinations:\n      - version: v1\n        weight: 0\n";
    rm_config_diags_t errs = {0};
    Remora__V1__ConfigSet *set = NULL;
    char line[512];
    (void)state;
    assert_int_equal(rm_config_parse("routes.yaml", text, strlen(text), &set, &errs), 0);
    assert_int_equal(rm_config_validate(set, NULL, &errs, NULL), -EINVAL);
    assert_int_equal(errs.count, 1);
    rm_config_diag_format(&errs.items[0], line, sizeof(line));
    assert_string_equal(line, "routes.yaml:9:5: rules[0].destinations: weights must not all be 0");
    assert_string_equal(errs.items[0].file, "routes.yaml");
    assert_int_equal(errs.items[0].line, 9);
    assert_int_equal(errs.items[0].col, 5);
    assert_string_equal(errs.items[0].path, "rules[0].destinations");
    assert_string_equal(errs.items[0].message, "weights must not all be 0");
    rm_config_diags_free(&errs);
    tu_free(set);
}

/* The source map rides on the set without changing what it packs to. */
static void test_source_map_is_invisible(void **state)
{
    Remora__V1__ConfigSet *set = tu_load_ok(tu_kitchen_yaml), *copy;
    size_t len = protobuf_c_message_get_packed_size(&set->base);
    uint8_t *buf = malloc(len);
    (void)state;
    assert_non_null(buf);
    protobuf_c_message_pack(&set->base, buf);
    copy = remora__v1__config_set__unpack(NULL, len, buf);
    assert_non_null(copy);
    assert_int_equal(copy->base.n_unknown_fields, 0);
    assert_null(copy->base.unknown_fields);
    assert_int_equal(set->base.n_unknown_fields, 0);
    assert_non_null(set->base.unknown_fields); /* the map, freed with the set (ASan checks) */
    tu_assert_same(set, copy);
    assert_true(protobuf_c_message_check(&set->base));
    free(buf);
    tu_free(copy);
    tu_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_field_yaml),
        cmocka_unit_test(test_every_field_json),
        cmocka_unit_test(test_yaml_and_json_agree),
        cmocka_unit_test(test_parse_does_not_validate),
        cmocka_unit_test(test_null_means_absent),
        cmocka_unit_test(test_plain_scalars_as_strings),
        cmocka_unit_test(test_block_scalars_and_escapes),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_endpoint_sidecar),
        cmocka_unit_test(test_multi_document_order),
        cmocka_unit_test(test_json_single_object_and_array),
        cmocka_unit_test(test_json_tabs_everywhere),
        cmocka_unit_test(test_utf8_bom),
        cmocka_unit_test(test_parse_then_validate_keeps_positions),
        cmocka_unit_test(test_source_map_is_invisible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
