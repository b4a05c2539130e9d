/* common/config/roundtrip_test.c — printing: rm_config_to_yaml / rm_config_to_json give text that
 * loads back into an equal set (compared packed, byte for byte) for every example, including
 * strings YAML would misread if printed carelessly; SPEC.md's example loads clean.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/config/config.h"
#include "common/config/test_util.h"
#include "common/config/testdata.h"

#define SPEC_EXAMPLE "examples/spec-example.yaml"

/* Strings that must survive printing: YAML keywords, numbers, indicators, quotes, blanks,
 * non-ASCII and control characters. Header values take any string. */
static const char tricky[] =
    "kind: Service\nname: s\nport: 80\n---\n"
    "kind: Route\nname: r\nservice: s\nrules:\n"
    "  - destinations: [{version: v1, weight: 1000000}]\n"
    "    match:\n"
    "      headers:\n"
    "        h01: {exact: \"null\"}\n"
    "        h02: {exact: \"~\"}\n"
    "        h03: {exact: \"\"}\n"
    "        h04: {exact: \"true\"}\n"
    "        h05: {exact: \"80\"}\n"
    "        h06: {exact: \"a: b\"}\n"
    "        h07: {exact: \"#x\"}\n"
    "        h08: {exact: \"- x\"}\n"
    "        h09: {exact: \" lead\"}\n"
    "        h10: {exact: \"trail \"}\n"
    "        h11: {exact: \"two\\nlines\"}\n"
    "        h12: {exact: \"tab\\there\"}\n"
    "        h13: {exact: \"caf\\u00e9 \\u65e5\\u672c \\U0001F600\"}\n"
    "        h14: {exact: \"say \\\"hi\\\" 'there'\"}\n"
    "        h15: {prefix: \"[x]\"}\n"
    "        h16: {suffix: \"{y}\"}\n"
    "        h17: {exact: \"*a &b !c %d @e `f |g >h ? ---\"}\n"
    "        h18: {exact: \"...\"}\n"
    "        h19: {exact: \"back\\\\slash\"}\n"
    "        h20: {exact: \"bell\\a\\x7f\"}\n"
    "        h21: {exact: \"NULL\"}\n"
    "        h22: {exact: \"0x1F\"}\n"
    "        h23: {exact: \"nel\\u0085 ls\\u2028 ps\\u2029 c1\\u0080 nc\\uffff\\ufffe "
    "bom\\ufeff\"}\n"
    "      query:\n"
    "        \"a b\": {exact: x}\n"
    "        \"null\": {present: true}\n"
    "        \"#\": {absent: true}\n"
    "        \"\\u00fc\": {exact: \":\"}\n"
    "    timeout: 90s\n"
    "    retries: {perTryTimeout: 1500ms, backoff: {base: 1ms, max: 1h}}\n";

/* load -> print -> load gives the same set, for YAML and JSON; printing is stable. */
static void round_trip(Remora__V1__ConfigSet *set)
{
    char *yaml = rm_config_to_yaml(set), *json = rm_config_to_json(set), *yaml2, *json2;
    Remora__V1__ConfigSet *a, *b;

    assert_non_null(yaml);
    assert_non_null(json);
    a = tu_load_ok(yaml);
    b = tu_load_ok(json);
    tu_assert_same(set, a);
    tu_assert_same(set, b);
    yaml2 = rm_config_to_yaml(a);
    json2 = rm_config_to_json(b);
    assert_string_equal(yaml, yaml2);
    assert_string_equal(json, json2);
    free(yaml);
    free(json);
    free(yaml2);
    free(json2);
    tu_free(a);
    tu_free(b);
}

static void test_spec_example_loads_clean(void **state)
{
    rm_config_diags_t errs = {0}, warns = {0};
    Remora__V1__ConfigSet *set = NULL;
    (void)state;
    assert_int_equal(rm_config_load_file(SPEC_EXAMPLE, NULL, &set, &errs, &warns), 0);
    assert_int_equal(errs.count, 0);
    assert_int_equal(warns.count, 0);
    assert_non_null(set);
    assert_int_equal(set->n_services, 1);
    assert_int_equal(set->n_routes, 1);
    assert_int_equal(set->n_circuit_breakers, 1);
    assert_int_equal(set->routes[0]->n_rules, 2);
    assert_int_equal(set->services[0]->n_endpoints, 3);
    assert_true(set->services[0]->endpoints[2]->sidecar);
    round_trip(set);
    tu_free(set);
}

/* With endpoints known, the example's own static endpoints cover the weighted versions v1 and
 * v2 (the mirror's v3 is not a destination): still no warnings. */
static void test_spec_example_with_endpoints(void **state)
{
    static const rm_config_endpoint_ref_t eps[] = {{NULL, "reviews", "v1"}};
    rm_config_context_t ctx = {.endpoints_known = 1, .endpoints = eps, .n_endpoints = 1};
    rm_config_diags_t errs = {0}, warns = {0};
    Remora__V1__ConfigSet *set = NULL;
    (void)state;
    assert_int_equal(rm_config_load_file(SPEC_EXAMPLE, &ctx, &set, &errs, &warns), 0);
    assert_int_equal(warns.count, 0);
    tu_free(set);
    rm_config_diags_free(&warns);
}

static void test_kitchen_round_trip(void **state)
{
    Remora__V1__ConfigSet *set = tu_load_ok(tu_kitchen_yaml);
    (void)state;
    round_trip(set);
    tu_free(set);
}

static void test_tricky_strings_round_trip(void **state)
{
    Remora__V1__ConfigSet *set = tu_load_ok(tricky);
    const Remora__V1__Match *m;
    (void)state;
    m = set->routes[0]->rules[0]->match;
    assert_string_equal(m->headers[0]->value->exact, "null");
    assert_string_equal(m->headers[2]->value->exact, "");
    assert_string_equal(m->headers[12]->value->exact, "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac "
                                                      "\xf0\x9f\x98\x80");
    round_trip(set);
    tu_free(set);
}

/* The printed form is part of the contract (meshctl get -o yaml/json): pin it. */
static void test_golden_output(void **state)
{
    static const char want_yaml[] = "kind: Service\n"
                                    "name: s\n"
                                    "namespace: default\n"
                                    "port: 80\n"
                                    "endpoints:\n"
                                    "- address: 10.0.0.1:80\n"
                                    "  version: v1\n"
                                    "  labels:\n"
                                    "    zone: \"null\"\n"
                                    "---\n"
                                    "kind: Route\n"
                                    "name: r\n"
                                    "namespace: default\n"
                                    "service: s\n"
                                    "rules:\n"
                                    "- destinations:\n"
                                    "  - version: v1\n"
                                    "    weight: 1\n"
                                    "  timeout: 2500ms\n";
    static const char want_json[] = "[\n"
                                    "  {\n"
                                    "    \"kind\": \"Service\",\n"
                                    "    \"name\": \"s\",\n"
                                    "    \"namespace\": \"default\",\n"
                                    "    \"port\": 80,\n"
                                    "    \"endpoints\": [\n"
                                    "      {\n"
                                    "        \"address\": \"10.0.0.1:80\",\n"
                                    "        \"version\": \"v1\",\n"
                                    "        \"labels\": {\n"
                                    "          \"zone\": \"null\"\n"
                                    "        }\n"
                                    "      }\n"
                                    "    ]\n"
                                    "  },\n"
                                    "  {\n"
                                    "    \"kind\": \"Route\",\n"
                                    "    \"name\": \"r\",\n"
                                    "    \"namespace\": \"default\",\n"
                                    "    \"service\": \"s\",\n"
                                    "    \"rules\": [\n"
                                    "      {\n"
                                    "        \"destinations\": [\n"
                                    "          {\n"
                                    "            \"version\": \"v1\",\n"
                                    "            \"weight\": 1\n"
                                    "          }\n"
                                    "        ],\n"
                                    "        \"timeout\": \"2500ms\"\n"
                                    "      }\n"
                                    "    ]\n"
                                    "  }\n"
                                    "]";
    Remora__V1__ConfigSet *set =
        tu_load_ok("kind: Route\nname: r\nservice: s\nrules: [{destinations: [{version: v1}], "
                   "timeout: 2.5s}]\n---\nkind: Service\nname: s\nport: 80\n"
                   "endpoints: [{address: 10.0.0.1:80, version: v1, labels: {zone: 'null'}}]\n");
    char *yaml = rm_config_to_yaml(set), *json = rm_config_to_json(set);
    (void)state;
    assert_string_equal(yaml, want_yaml);
    assert_string_equal(json, want_json);
    free(yaml);
    free(json);
    tu_free(set);
}

/* An endpoint's sidecar flag prints back as given: true, an explicit false, and nothing when
 * absent (so a document without it prints as before). */
static void test_endpoint_sidecar_output(void **state)
{
    static const char want_yaml[] = "kind: Service\n"
                                    "name: s\n"
                                    "namespace: default\n"
                                    "port: 80\n"
                                    "endpoints:\n"
                                    "- address: 10.0.0.1:15006\n"
                                    "  version: v1\n"
                                    "  sidecar: true\n"
                                    "- address: 10.0.0.2:80\n"
                                    "  version: v1\n"
                                    "  labels:\n"
                                    "    zone: a\n"
                                    "  sidecar: false\n"
                                    "- address: 10.0.0.3:80\n"
                                    "  version: v1\n";
    static const char want_json[] = "[\n"
                                    "  {\n"
                                    "    \"kind\": \"Service\",\n"
                                    "    \"name\": \"s\",\n"
                                    "    \"namespace\": \"default\",\n"
                                    "    \"port\": 80,\n"
                                    "    \"endpoints\": [\n"
                                    "      {\n"
                                    "        \"address\": \"10.0.0.1:15006\",\n"
                                    "        \"version\": \"v1\",\n"
                                    "        \"sidecar\": true\n"
                                    "      },\n"
                                    "      {\n"
                                    "        \"address\": \"10.0.0.2:80\",\n"
                                    "        \"version\": \"v1\",\n"
                                    "        \"labels\": {\n"
                                    "          \"zone\": \"a\"\n"
                                    "        },\n"
                                    "        \"sidecar\": false\n"
                                    "      },\n"
                                    "      {\n"
                                    "        \"address\": \"10.0.0.3:80\",\n"
                                    "        \"version\": \"v1\"\n"
                                    "      }\n"
                                    "    ]\n"
                                    "  }\n"
                                    "]";
    Remora__V1__ConfigSet *set =
        tu_load_ok("kind: Service\nname: s\nport: 80\nendpoints:\n"
                   "  - {address: 10.0.0.1:15006, version: v1, sidecar: true}\n"
                   "  - {sidecar: false, address: 10.0.0.2:80, version: v1, labels: {zone: a}}\n"
                   "  - {address: 10.0.0.3:80, version: v1}\n");
    char *yaml = rm_config_to_yaml(set), *json = rm_config_to_json(set);
    (void)state;
    assert_string_equal(yaml, want_yaml);
    assert_string_equal(json, want_json);
    round_trip(set);
    free(yaml);
    free(json);
    tu_free(set);
}

static void test_empty_set(void **state)
{
    Remora__V1__ConfigSet set = REMORA__V1__CONFIG_SET__INIT;
    char *yaml = rm_config_to_yaml(&set), *json = rm_config_to_json(&set);
    (void)state;
    assert_string_equal(yaml, "");
    assert_string_equal(json, "[]");
    free(yaml);
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_example_loads_clean),
        cmocka_unit_test(test_spec_example_with_endpoints),
        cmocka_unit_test(test_kitchen_round_trip),
        cmocka_unit_test(test_tricky_strings_round_trip),
        cmocka_unit_test(test_golden_output),
        cmocka_unit_test(test_endpoint_sidecar_output),
        cmocka_unit_test(test_empty_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
