/* common/config/errors_test.c — every decoding error class, asserted as the exact line a user
 * sees ("file:line:col: path: message"): syntax, kinds, unknown fields, types, ranges,
 * duplicates, oneofs, anchors, nesting, size, empty inputs, and the 50-error cap.
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

/* A valid Service to put in front of documents under test. */
#define SVC "kind: Service\nname: s\nport: 80\n"

static void test_kind_errors(void **state)
{
    (void)state;
    tu_expect_error("kind: Rout\nname: r\n",
                    "t.yaml:1:1: kind: unknown kind \"Rout\" (did you mean \"Route\"?)");
    tu_expect_error("kind: service\nname: r\n",
                    "t.yaml:1:1: kind: unknown kind \"service\" (did you mean \"Service\"?)");
    tu_expect_error("kind: Gateway\nname: r\n", "t.yaml:1:1: kind: unknown kind \"Gateway\" (must "
                                                "be one of Service, Route, CircuitBreaker)");
    tu_expect_error("name: r\nport: 80\n",
                    "t.yaml:1:1: kind: is required (one of Service, Route, CircuitBreaker)");
    tu_expect_error(SVC "---\nname: r\n",
                    "t.yaml:5:1: kind: is required (one of Service, Route, CircuitBreaker)");
    tu_expect_error("name: r\nkind:\n",
                    "t.yaml:2:1: kind: is required (one of Service, Route, CircuitBreaker)");
    tu_expect_error("kind: [Route]\n", "t.yaml:1:1: kind: must be a string (one of Service, "
                                       "Route, CircuitBreaker), not a list");
}

static void test_unknown_fields(void **state)
{
    (void)state;
    tu_expect_error("kind: Service\nnme: s\nport: 80\n",
                    "t.yaml:2:1: unknown field \"nme\" (did you mean \"name\"?)");
    tu_expect_error(SVC "---\nkind: Route\nname: r\nservice: s\nrules:\n  - destinations:\n"
                        "      - version: v1\n        weigth: 5\n",
                    "t.yaml:11:9: rules[0].destinations[0]: unknown field \"weigth\" (did you "
                    "mean \"weight\"?)");
    /* snake_case from the proto is a near miss of the document name. */
    tu_expect_error(SVC "---\nkind: Route\nname: r\nservice: s\nrules:\n"
                        "  - destinations: [{version: v1}]\n    retries: {per_try_timeout: 1s}\n",
                    "t.yaml:10:15: rules[0].retries: unknown field \"per_try_timeout\" (did you "
                    "mean \"perTryTimeout\"?)");
    tu_expect_error("kind: Service\nname: s\nport: 80\nzzz: 1\n",
                    "t.yaml:4:1: unknown field \"zzz\" (expected one of: kind, name, namespace, "
                    "port, hosts, vip, endpoints)");
    tu_expect_error("kind: Service\nname: s\nendpoints: [{address: 1.2.3.4:80, sidcar: true}]\n",
                    "t.yaml:3:35: endpoints[0]: unknown field \"sidcar\" (did you mean "
                    "\"sidecar\"?)");
    tu_expect_error("kind: Service\nname: s\nendpoints: [{address: 1.2.3.4:80, zzz: 1}]\n",
                    "t.yaml:3:35: endpoints[0]: unknown field \"zzz\" (expected one of: "
                    "address, version, labels, sidecar)");
    /* The proto's base_ is spelled base in documents; base_ is not accepted. */
    tu_expect_error(SVC "---\nkind: Route\nname: r\nservice: s\nrules:\n"
                        "  - destinations: [{version: v1}]\n    retries: {backoff: {base_: 1s}}\n",
                    "t.yaml:10:25: rules[0].retries.backoff: unknown field \"base_\" (did you "
                    "mean \"base\"?)");
}

static void test_wrong_types(void **state)
{
    static const char *const want[] = {
        "t.yaml:2:1: name: must be a string, not a mapping",
        "t.yaml:3:1: port: must be a non-negative integer, not a list",
        "t.yaml:4:1: hosts: must be a list, not a scalar",
        "t.yaml:5:13: endpoints[0]: must be a mapping, not a scalar",
        "t.yaml:6:1: vip: must be a string, not a list",
        NULL,
    };
    (void)state;
    tu_expect_errors("kind: Service\nname: {a: b}\nport: [80]\nhosts: reviews\n"
                     "endpoints: [1.2.3.4]\nvip: []\n",
                     want);
    tu_expect_error("kind: Route\nname: r\nrules: {a: 1}\n",
                    "t.yaml:3:1: rules: must be a list, not a mapping");
    tu_expect_error("kind: Route\nname: r\nrules: [{match: {headers: [a]}}]\n",
                    "t.yaml:3:18: rules[0].match.headers: must be a mapping, not a list");
    tu_expect_error("kind: Route\nname: r\nrules: [{match: {headers: {a: {present: yes}}}}]\n",
                    "t.yaml:3:32: rules[0].match.headers.a.present: must be true or false");
    tu_expect_error("kind: Route\nname: r\nrules: [{match: {headers: {a: {present: \"true\"}}}}]\n",
                    "t.yaml:3:32: rules[0].match.headers.a.present: must be true or false");
    /* An endpoint's sidecar flag is a bool like any other: no yes/1/"true", no list. */
    tu_expect_error("kind: Service\nname: s\nendpoints:\n  - address: 1.2.3.4:80\n"
                    "    sidecar: yes\n",
                    "t.yaml:5:5: endpoints[0].sidecar: must be true or false");
    tu_expect_error("kind: Service\nname: s\nendpoints: [{address: 1.2.3.4:80, sidecar: 1}]\n",
                    "t.yaml:3:35: endpoints[0].sidecar: must be true or false");
    tu_expect_error("kind: Service\nname: s\nendpoints: [{sidecar: \"true\"}]\n",
                    "t.yaml:3:14: endpoints[0].sidecar: must be true or false");
    tu_expect_error("kind: Service\nname: s\nendpoints: [{sidecar: [true]}]\n",
                    "t.yaml:3:14: endpoints[0].sidecar: must be true or false, not a list");
    tu_expect_error("[{\"kind\": \"Service\", \"name\": \"s\",\n"
                    "  \"endpoints\": [{\"address\": \"1.2.3.4:80\", \"sidecar\": \"yes\"}]}]\n",
                    "t.json:2:43: endpoints[0].sidecar: must be true or false");
    tu_expect_error("kind: Route\nname: r\nrules: [{timeout: {millis: 5}}]\n",
                    "t.yaml:3:10: rules[0].timeout: must be a duration such as \"250ms\", \"2s\" "
                    "or \"1m\", not a mapping");
    tu_expect_error("kind: Route\nname: r\nrules: [{destinations: [~]}]\n",
                    "t.yaml:3:25: rules[0].destinations[0]: must not be null (must be a mapping)");
    tu_expect_error("kind: Service\nname: s\nendpoints: [{labels: {[a]: b}}]\n",
                    "t.yaml:3:23: endpoints[0].labels: keys must be strings, not a list");
    tu_expect_error("kind: Service\nname: s\n[a]: b\n",
                    "t.yaml:3:1: keys must be field names, not a list");
}

static void test_durations(void **state)
{
    (void)state;
    tu_expect_error("kind: Route\nname: r\nrules: [{timeout: 10}]\n",
                    "t.yaml:3:10: rules[0].timeout: duration \"10\" is missing a unit (use ms, s, "
                    "m or h)");
    tu_expect_error("kind: Route\nname: r\nrules: [{timeout: 10us}]\n",
                    "t.yaml:3:10: rules[0].timeout: duration \"10us\" has an unknown unit (use "
                    "ms, s, m or h)");
    tu_expect_error("kind: Route\nname: r\nrules: [{timeout: -1s}]\n",
                    "t.yaml:3:10: rules[0].timeout: duration \"-1s\" must not be negative");
    tu_expect_error("kind: Route\nname: r\nrules: [{timeout: 1.5ms}]\n",
                    "t.yaml:3:10: rules[0].timeout: duration \"1.5ms\" is finer than a "
                    "millisecond");
    tu_expect_error("kind: Route\nname: r\nrules: [{timeout: 99999999999999999999h}]\n",
                    "t.yaml:3:10: rules[0].timeout: duration \"99999999999999999999h\" is too "
                    "large");
    tu_expect_error("kind: Route\nname: r\nrules: [{timeout: \"\"}]\n",
                    "t.yaml:3:10: rules[0].timeout: duration \"\" is empty");
    tu_expect_error("kind: Route\nname: r\nrules: [{timeout: 1s 2s}]\n",
                    "t.yaml:3:10: rules[0].timeout: duration \"1s 2s\" is not a number followed "
                    "by a unit (like 250ms, 1.5s, 2m)");
}

static void test_integers(void **state)
{
    (void)state;
    tu_expect_error(SVC "---\nkind: Route\nname: r\nservice: s\nrules:\n  - name: a\n"
                        "  - destinations:\n      - version: v1\n      - version: v2\n"
                        "        weight: -5\n",
                    "t.yaml:13:9: rules[1].destinations[1].weight: must be a non-negative integer");
    tu_expect_error("kind: Service\nname: s\nport: 4294967296\n",
                    "t.yaml:3:1: port: out of range (max 4294967295)");
    tu_expect_error("kind: Service\nname: s\nport: \"80\"\n",
                    "t.yaml:3:1: port: must be a non-negative integer, not a quoted string");
    tu_expect_error("kind: Service\nname: s\nport: 8.0\n",
                    "t.yaml:3:1: port: must be a non-negative integer");
    tu_expect_error("kind: Service\nname: s\nport: 0x50\n",
                    "t.yaml:3:1: port: must be a non-negative integer");
    tu_expect_error("kind: Service\nname: s\nport: 080\n",
                    "t.yaml:3:1: port: must be a non-negative integer without leading zeros");
    tu_expect_error("{\"kind\": \"Service\", \"name\": \"s\", \"port\": 1e3}",
                    "t.json:1:34: port: must be a non-negative integer");
    tu_expect_error("kind: Route\nname: r\nrules: [{retries: {retriableStatusCodes: [500, -1]}}]\n",
                    "t.yaml:3:48: rules[0].retries.retriableStatusCodes[1]: must be a "
                    "non-negative integer");
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    tu_expect_error("kind: Service\nname: s\nport: 80\nname: t\n",
                    "t.yaml:4:1: duplicate key \"name\" (first at line 2, column 1)");
    tu_expect_error("kind: Service\nname: s\nendpoints:\n  - labels:\n      zone: a\n"
                    "      rack: b\n      zone: c\n",
                    "t.yaml:7:7: endpoints[0].labels: duplicate key \"zone\" (first at line 5, "
                    "column 7)");
    tu_expect_error("{\"kind\": \"Service\", \"name\": \"s\",\n \"name\": \"t\"}",
                    "t.json:2:2: duplicate key \"name\" (first at line 1, column 21)");
}

static void test_oneof_conflicts(void **state)
{
    (void)state;
    tu_expect_error(
        "kind: Route\nname: r\nrules:\n  - match:\n      headers:\n"
        "        x-a: {exact: a, prefix: b}\n",
        "t.yaml:6:25: rules[0].match.headers.x-a.prefix: \"exact\" and \"prefix\" are both "
        "set; set only one of exact, prefix, suffix, regex, present, absent");
    tu_expect_error(
        "kind: Route\nname: r\nrules:\n  - match:\n      path:\n        regex: a\n"
        "        exact: /a\n",
        "t.yaml:7:9: rules[0].match.path.exact: \"regex\" and \"exact\" are both set; set "
        "only one of exact, prefix, regex");
    tu_expect_error(
        "kind: Route\nname: r\nrules: [{stickyOn: {header: a, cookie: b}}]\n",
        "t.yaml:3:32: rules[0].stickyOn.cookie: \"header\" and \"cookie\" are both set; set "
        "only one of header, cookie");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    tu_expect_error("kind: Service\nname: s\n  port: 80\n",
                    "t.yaml:3:7: YAML syntax error: mapping values are not allowed in this "
                    "context");
    tu_expect_error("kind: Service\nhosts: [a, b\n",
                    "t.yaml:3:1: YAML syntax error: did not find expected ',' or ']' (while "
                    "parsing a flow sequence at line 2, column 8)");
    tu_expect_error("kind: \"Service\n",
                    "t.yaml:2:1: YAML syntax error: found unexpected end of stream (while "
                    "scanning a quoted scalar at line 1, column 7)");
    tu_expect_error("{\"kind\": \"Service\",\n \"name\": \"s\"\n \"port\": 80}",
                    "t.json:3:2: JSON syntax error: did not find expected ',' or '}' (while "
                    "parsing a flow mapping at line 1, column 1)");
    tu_expect_error("kind: Service\nname: \x01\n",
                    "t.yaml:2:7: invalid input: control characters are not allowed (0x01)");
    tu_expect_error("kind: Service\nname: \xff\n",
                    "t.yaml:2:7: invalid input: invalid leading UTF-8 octet (0xff)");
}

static void test_anchors_aliases_tags(void **state)
{
    (void)state;
    tu_expect_error("kind: Service\nname: &n s\n", "t.yaml:2:7: anchors and aliases are not "
                                                   "supported");
    tu_expect_error("kind: Service\nhosts: &h\n  - a\nvip: *h\n",
                    "t.yaml:2:8: anchors and aliases are not supported");
    tu_expect_error("kind: Service\nname: s\nvip: *x\n",
                    "t.yaml:3:6: anchors and aliases are not supported");
    tu_expect_error("kind: Service\nname: !!str s\n",
                    "t.yaml:2:7: YAML tags are not supported (found \"tag:yaml.org,2002:str\")");
}

static void test_nesting_limit(void **state)
{
    char text[256], want[128];
    (void)state;
    /* 31 levels under the document's own mapping: the 33rd open bracket is one too many. */
    snprintf(text, sizeof(text), "kind: Service\nname: %.32s\n",
             "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
    snprintf(want, sizeof(want), "t.yaml:2:%d: nesting is deeper than 32 levels", 7 + 31);
    tu_expect_error(text, want);
}

static void test_input_too_large(void **state)
{
    size_t len = RM_CONFIG_MAX_INPUT + 1;
    char *big = malloc(len);
    rm_config_diags_t errs = {0};
    Remora__V1__ConfigSet *set = NULL;
    char line[256];
    (void)state;
    assert_non_null(big);
    memset(big, '#', len);
    assert_int_equal(rm_config_parse("big.yaml", big, len, &set, &errs), -EINVAL);
    assert_null(set);
    assert_int_equal(errs.count, 1);
    rm_config_diag_format(&errs.items[0], line, sizeof(line));
    assert_string_equal(line, "big.yaml: input is 4194305 bytes, more than the limit of 4 MiB "
                              "(4194304 bytes)");
    rm_config_diags_free(&errs);
    /* Exactly at the limit is fine (all comments: "no documents" is the only complaint). */
    assert_int_equal(rm_config_parse("big.yaml", big, len - 1, &set, &errs), -EINVAL);
    rm_config_diag_format(&errs.items[0], line, sizeof(line));
    assert_string_equal(line, "big.yaml: contains no documents (expected at least one with kind "
                              "Service, Route or CircuitBreaker)");
    rm_config_diags_free(&errs);
    free(big);
}

static void test_empty_inputs(void **state)
{
    static const char none[] = "t.yaml: contains no documents (expected at least one with kind "
                               "Service, Route or CircuitBreaker)";
    (void)state;
    tu_expect_error("", none);
    tu_expect_error("   \n\n", none);
    tu_expect_error("# only a comment\n", none);
    tu_expect_error("[]", "t.json: contains no documents (expected at least one with kind Service, "
                          "Route or CircuitBreaker)");
    tu_expect_error(SVC "---\n---\n" SVC, "t.yaml:4:1: document 2 is empty");
    tu_expect_error(SVC "---\n# nothing here\n", "t.yaml:4:1: document 2 is empty");
    tu_expect_error("- kind: Service\n", "t.yaml:1:1: document 1 must be a mapping with a kind, "
                                         "not a list");
    tu_expect_error("[{\"kind\": \"Service\", \"name\": \"s\", \"port\": 80}, 5]",
                    "t.json:1:48: document 2 must be a mapping with a kind, not a scalar");
    tu_expect_error("[{\"kind\": \"Service\", \"name\": \"s\", \"port\": 80}, null]",
                    "t.json:1:48: document 2 is empty");
}

static void test_bad_strings(void **state)
{
    (void)state;
    tu_expect_error("kind: Service\nname: \"a\\0b\"\n",
                    "t.yaml:2:1: name: must not contain NUL characters");
    /* libyaml itself refuses escapes that are not characters. */
    tu_expect_error("kind: Service\nname: \"\\ud800\"\n",
                    "t.yaml:2:10: YAML syntax error: found invalid Unicode character escape code "
                    "(while parsing a quoted scalar at line 2, column 7)");
}

/* Errors in several documents are all reported, each at its own line. */
static void test_errors_collected_across_documents(void **state)
{
    static const char *const want[] = {
        "t.yaml:3:1: port: must be a non-negative integer",
        "t.yaml:5:1: unknown field \"prot\" (did you mean \"port\"?)",
        "t.yaml:8:1: kind: unknown kind \"Rute\" (did you mean \"Route\"?)",
        NULL,
    };
    (void)state;
    tu_expect_errors("kind: Service\nname: s\nport: x\n---\nprot: 1\nkind: Service\n---\n"
                     "kind: Rute\n",
                     want);
}

/* More than RM_CONFIG_MAX_DIAGS errors: the first 50 are kept, the rest counted. */
static void test_error_cap(void **state)
{
    char *text = malloc((size_t)64 * 1024), *p = text;
    rm_config_diags_t errs = {0};
    Remora__V1__ConfigSet *set = NULL;
    char *out = NULL;
    size_t outlen = 0;
    FILE *f;
    (void)state;
    assert_non_null(text);
    p += sprintf(p, "kind: Service\n");
    for (int i = 0; i < 70; i++)
        p += sprintf(p, "bad%d: 1\n", i);
    assert_int_equal(rm_config_load("t.yaml", text, strlen(text), NULL, &set, &errs, NULL),
                     -EINVAL);
    assert_null(set);
    assert_int_equal(errs.count, RM_CONFIG_MAX_DIAGS);
    assert_int_equal(errs.dropped, 20);
    f = open_memstream(&out, &outlen);
    assert_non_null(f);
    rm_config_diags_print(&errs, f, "error: ");
    fclose(f);
    assert_non_null(strstr(out, "error: t.yaml:2:1: unknown field \"bad0\" (expected one of: "));
    assert_non_null(strstr(out, "\nerror: ... and 20 more\n"));
    free(out);
    free(text);
    rm_config_diags_free(&errs);
}

static void test_diag_format_parts(void **state)
{
    rm_config_diag_t d = {0};
    char buf[256];
    (void)state;
    d.message = "m";
    rm_config_diag_format(&d, buf, sizeof(buf));
    assert_string_equal(buf, "m");
    d.path = "a.b";
    rm_config_diag_format(&d, buf, sizeof(buf));
    assert_string_equal(buf, "a.b: m");
    d.doc = "Route default/r";
    rm_config_diag_format(&d, buf, sizeof(buf));
    assert_string_equal(buf, "Route default/r: a.b: m");
    d.file = "f.yaml";
    rm_config_diag_format(&d, buf, sizeof(buf));
    assert_string_equal(buf, "f.yaml: Route default/r: a.b: m");
    d.line = 3;
    d.col = 4;
    rm_config_diag_format(&d, buf, sizeof(buf));
    assert_string_equal(buf, "f.yaml:3:4: a.b: m"); /* a position makes the doc label moot */
    d.file = NULL;
    rm_config_diag_format(&d, buf, sizeof(buf));
    assert_string_equal(buf, "3:4: a.b: m");
    assert_int_equal(rm_config_diag_format(&d, buf, 4), (int)strlen("3:4: a.b: m"));
    assert_string_equal(buf, "3:4");
}

static void test_load_file_errors(void **state)
{
    rm_config_diags_t errs = {0};
    Remora__V1__ConfigSet *set = NULL;
    char line[256];
    (void)state;
    assert_int_equal(rm_config_load_file("/nonexistent/x.yaml", NULL, &set, &errs, NULL), -ENOENT);
    assert_null(set);
    rm_config_diag_format(&errs.items[0], line, sizeof(line));
    assert_string_equal(line, "/nonexistent/x.yaml: cannot open: No such file or directory");
    rm_config_diags_free(&errs);
    assert_int_equal(rm_config_load_file("/", NULL, &set, &errs, NULL), -EISDIR);
    rm_config_diag_format(&errs.items[0], line, sizeof(line));
    assert_string_equal(line, "/: cannot read: Is a directory");
    rm_config_diags_free(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_errors),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_oneof_conflicts),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_anchors_aliases_tags),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_input_too_large),
        cmocka_unit_test(test_empty_inputs),
        cmocka_unit_test(test_bad_strings),
        cmocka_unit_test(test_errors_collected_across_documents),
        cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_diag_format_parts),
        cmocka_unit_test(test_load_file_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
