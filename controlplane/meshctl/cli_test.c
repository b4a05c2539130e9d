/* controlplane/meshctl/cli_test.c — unit tests of meshctl's offline pieces: edit distance and
 * suggestions, kind names, the option parser (forms, --server anywhere, errors) and tables.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/meshctl/meshctl.h"

static void test_edit_distance(void **state)
{
    (void)state;
    assert_int_equal(rm__cli_edit_distance("", ""), 0);
    assert_int_equal(rm__cli_edit_distance("apply", "apply"), 0);
    assert_int_equal(rm__cli_edit_distance("aply", "apply"), 1);
    assert_int_equal(rm__cli_edit_distance("APPLY", "apply"), 0);
    assert_int_equal(rm__cli_edit_distance("kitten", "sitting"), 3);
    assert_int_equal(rm__cli_edit_distance("", "abc"), 3);
}

static void test_suggest(void **state)
{
    (void)state;
    static const char *const cmds[] = {"apply", "get", "delete", "proxy-status", NULL};
    assert_string_equal(rm__cli_suggest("aplly", cmds), "apply");
    assert_string_equal(rm__cli_suggest("proxystatus", cmds), "proxy-status");
    assert_string_equal(rm__cli_suggest("gte", cmds), "get");
    assert_null(rm__cli_suggest("frobnicate", cmds));
}

static void test_kinds(void **state)
{
    (void)state;
    assert_string_equal(rm__kind_parse("route"), "routes");
    assert_string_equal(rm__kind_parse("SVC"), "services");
    assert_string_equal(rm__kind_parse("cb"), "circuitbreakers");
    assert_string_equal(rm__kind_parse("circuit-breaker"), "circuitbreakers");
    assert_null(rm__kind_parse("rutes"));
}

static const rm__cmd_t cmd = {"get", "", "HELP TEXT\n", NULL};
static const rm__opt_spec_t spec[] = {
    {"output", 'o', 1}, {"watch", 'w', 0}, {"namespace", 'n', 1}, {NULL, 0, 0}};

static int parse(rm__cli_t *cli, rm__args_t *a, int maxpos, ...)
{
    char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, maxpos);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
        argv[argc++] = (char *)s;
    va_end(ap);
    return rm__args_parse(cli, &cmd, spec, argc, argv, maxpos, a);
}

static void test_args_forms(void **state)
{
    (void)state;
    rm__cli_t cli = {.server = "default"};
    rm__args_t a;
    assert_int_equal(parse(&cli, &a, 2, "routes", "-o", "json", "--watch", "name", NULL), 0);
    assert_int_equal(a.npos, 2);
    assert_string_equal(a.pos[0], "routes");
    assert_string_equal(a.pos[1], "name");
    assert_string_equal(rm__arg(&a, 0), "json");
    assert_non_null(rm__arg(&a, 1));
    assert_null(rm__arg(&a, 2));
    assert_int_equal(parse(&cli, &a, 2, "--output=yaml", "-nshop", NULL), 0);
    assert_string_equal(rm__arg(&a, 0), "yaml");
    assert_string_equal(rm__arg(&a, 2), "shop");
    /* --server anywhere, both forms; "-" is a value; "--" ends the flags. */
    assert_int_equal(parse(&cli, &a, 2, "--server", "h:1", "-", NULL), 0);
    assert_string_equal(cli.server, "h:1");
    assert_string_equal(a.pos[0], "-");
    assert_int_equal(parse(&cli, &a, 2, "--server=h:2", "--", "-o", NULL), 0);
    assert_string_equal(cli.server, "h:2");
    assert_string_equal(a.pos[0], "-o");
}

static void test_args_errors(void **state)
{
    (void)state;
    rm__cli_t cli = {.server = "default"};
    rm__args_t a;
    assert_int_equal(parse(&cli, &a, 2, "--outptu", "json", NULL), RM__EXIT_REJECTED);
    assert_int_equal(parse(&cli, &a, 2, "-o", NULL), RM__EXIT_REJECTED);
    assert_int_equal(parse(&cli, &a, 2, "--watch=1", NULL), RM__EXIT_REJECTED);
    assert_int_equal(parse(&cli, &a, 1, "a", "b", NULL), RM__EXIT_REJECTED);
    assert_int_equal(parse(&cli, &a, 2, "-wx", NULL), RM__EXIT_REJECTED);
    assert_int_equal(parse(&cli, &a, 2, "-x", NULL), RM__EXIT_REJECTED);
    assert_int_equal(parse(&cli, &a, 2, "--server", NULL), RM__EXIT_REJECTED);
    assert_int_equal(parse(&cli, &a, 2, "x", "-h", NULL), RM__ARGS_HELP);
    assert_int_equal(parse(&cli, &a, 2, "--help", NULL), RM__ARGS_HELP);
}

static void test_output_and_duration(void **state)
{
    (void)state;
    static const char *const fmts[] = {"table", "json", NULL};
    assert_int_equal(rm__output_parse(NULL, fmts), 0);
    assert_int_equal(rm__output_parse("json", fmts), 1);
    assert_int_equal(rm__output_parse("jsno", fmts), -1);
    uint64_t ms = 0;
    assert_int_equal(rm__duration_arg("--timeout", "1m30s", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(rm__duration_arg("--timeout", "soon", &ms), -1);
}

static void test_table(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rm__table_t t;
    rm__table_init(&t, 3, "NAME", "PORT", "NOTE");
    rm__table_row(&t, "reviews", "9080", NULL);
    rm__table_row(&t, "r", "1", "");
    rm__table_print(&t, f);
    rm__table_free(&t);
    fclose(f);
    /* Padded to the widest cell, NULL as "-", no trailing blanks after an empty last cell. */
    assert_string_equal(buf, "NAME     PORT  NOTE\n"
                             "reviews  9080  -\n"
                             "r        1\n");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edit_distance), cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_kinds),         cmocka_unit_test(test_args_forms),
        cmocka_unit_test(test_args_errors),   cmocka_unit_test(test_output_and_duration),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
