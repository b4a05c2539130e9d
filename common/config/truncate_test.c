/* common/config/truncate_test.c — robustness: every prefix of valid documents (YAML and JSON),
 * and every one-byte corruption of them, either loads or fails with at least one error; never a
 * crash, leak or half-built set. Each input sits in a buffer of exactly its length, so ASan
 * (bazel test --config=asan //common/...) catches any read past the end.
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

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Loads exactly len bytes; checks the all-or-nothing contract. Returns 1 if it loaded. */
static int load_exact(const char *data, size_t len)
{
    char *copy = malloc(len ? len : 1);
    rm_config_diags_t errs = {0}, warns = {0};
    Remora__V1__ConfigSet *set = (Remora__V1__ConfigSet *)(uintptr_t)1;
    int rc, ok;

    assert_non_null(copy);
    memcpy(copy, data, len);
    rc = rm_config_load("cut.yaml", copy, len, NULL, &set, &errs, &warns);
    ok = rc == 0;
    if (ok) {
        char *y = rm_config_to_yaml(set), *j = rm_config_to_json(set);
        assert_non_null(set);
        assert_int_equal(errs.count, 0);
        assert_non_null(y);
        assert_non_null(j);
        free(y);
        free(j);
        protobuf_c_message_free_unpacked(&set->base, NULL);
    } else {
        assert_int_equal(rc, -EINVAL);
        assert_null(set);
        assert_true(errs.count > 0); /* every rejection explains itself */
        for (size_t i = 0; i < errs.count; i++) {
            char line[2048];
            assert_non_null(errs.items[i].message);
            assert_true(rm_config_diag_format(&errs.items[i], line, sizeof(line)) > 0);
        }
    }
    rm_config_diags_free(&errs);
    rm_config_diags_free(&warns);
    free(copy);
    return ok;
}

static void every_prefix(const char *data, size_t len)
{
    size_t loaded = 0;
    for (size_t cut = 0; cut <= len; cut++)
        loaded += (size_t)load_exact(data, cut);
    assert_true(load_exact(data, len)); /* the whole text is valid */
    assert_true(loaded >= 1);
}

static void every_corruption(const char *data, size_t len)
{
    static const char bytes[] = {'\0', ':', '[', '{', '-', '"', '\t', '\n', '&', '\xff'};
    char *copy = malloc(len);
    assert_non_null(copy);
    for (size_t i = 0; i < len; i++) {
        for (size_t b = 0; b < sizeof(bytes); b++) {
            memcpy(copy, data, len);
            copy[i] = bytes[b];
            load_exact(copy, len);
        }
    }
    free(copy);
}

static void test_spec_example_yaml(void **state)
{
    size_t len;
    char *text = read_file("examples/spec-example.yaml", &len);
    (void)state;
    every_prefix(text, len);
    every_corruption(text, len);
    free(text);
}

static void test_spec_example_json(void **state)
{
    size_t len;
    char *text = read_file("examples/spec-example.yaml", &len), *json;
    Remora__V1__ConfigSet *set = tu_load_ok(text);
    (void)state;
    json = rm_config_to_json(set);
    assert_non_null(json);
    every_prefix(json, strlen(json));
    every_corruption(json, strlen(json));
    free(json);
    free(text);
    tu_free(set);
}

static void test_kitchen_sink(void **state)
{
    (void)state;
    every_prefix(tu_kitchen_yaml, strlen(tu_kitchen_yaml));
    every_prefix(tu_kitchen_json, strlen(tu_kitchen_json));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_example_yaml),
        cmocka_unit_test(test_spec_example_json),
        cmocka_unit_test(test_kitchen_sink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
