/* common/config/test_util.c — see test_util.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config/test_util.h"

static const char *name_for(const char *text)
{
    const char *p = text;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return (*p == '{' || *p == '[') ? "t.json" : "t.yaml";
}

int tu_load_as(const char *file, const char *text, const rm_config_context_t *ctx,
               Remora__V1__ConfigSet **set, rm_config_diags_t *errors, rm_config_diags_t *warnings)
{
    return rm_config_load(file, text, strlen(text), ctx, set, errors, warnings);
}

char *tu_dump(const rm_config_diags_t *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return strdup("(out of memory)");
    rm_config_diags_print(d, f, "  ");
    fclose(f);
    return buf;
}

/* cmocka truncates long messages, and fail_msg does not return: the list goes to stderr. */
static void report(const rm_config_diags_t *d, const char *what)
{
    char *dump = tu_dump(d);
    fprintf(stderr, "all %s:\n%s", what, dump);
    free(dump);
}

Remora__V1__ConfigSet *tu_load_ok_ctx(const char *text, const rm_config_context_t *ctx,
                                      rm_config_diags_t *warnings)
{
    rm_config_diags_t errs = {0};
    Remora__V1__ConfigSet *set = NULL;
    int rc = tu_load_as(name_for(text), text, ctx, &set, &errs, warnings);
    if (rc != 0 || errs.count != 0) {
        report(&errs, "errors");
        fail_msg("load failed (rc %d)", rc);
    }
    assert_non_null(set);
    rm_config_diags_free(&errs);
    return set;
}

Remora__V1__ConfigSet *tu_load_ok(const char *text)
{
    rm_config_diags_t warns = {0};
    Remora__V1__ConfigSet *set = tu_load_ok_ctx(text, NULL, &warns);
    if (warns.count != 0) {
        report(&warns, "warnings");
        fail_msg("unexpected warnings");
    }
    return set;
}

static void compare(const rm_config_diags_t *got, const char *const *want, const char *what)
{
    size_t n = 0;
    while (want[n] != NULL)
        n++;
    for (size_t i = 0; i < n || i < got->count; i++) {
        char line[2048] = "(none)";
        if (i < got->count)
            rm_config_diag_format(&got->items[i], line, sizeof(line));
        if (i >= n || i >= got->count || strcmp(line, want[i]) != 0) {
            report(got, what);
            fail_msg("%s #%zu:\n  got:  %s\n  want: %s", what, i, line, i < n ? want[i] : "(none)");
        }
    }
}

void tu_expect_errors_ctx(const char *text, const rm_config_context_t *ctx, const char *const *want)
{
    rm_config_diags_t errs = {0}, warns = {0};
    Remora__V1__ConfigSet *set = (Remora__V1__ConfigSet *)(uintptr_t)1;
    int rc = tu_load_as(name_for(text), text, ctx, &set, &errs, &warns);
    assert_true(rc < 0);
    assert_null(set); /* nothing half-parsed is ever returned */
    compare(&errs, want, "errors");
    rm_config_diags_free(&errs);
    rm_config_diags_free(&warns);
}

void tu_expect_errors(const char *text, const char *const *want)
{
    tu_expect_errors_ctx(text, NULL, want);
}

void tu_expect_error(const char *text, const char *want)
{
    const char *list[] = {want, NULL};
    tu_expect_errors(text, list);
}

void tu_expect_warnings(const char *text, const rm_config_context_t *ctx, const char *const *want)
{
    rm_config_diags_t warns = {0};
    Remora__V1__ConfigSet *set = tu_load_ok_ctx(text, ctx, &warns);
    compare(&warns, want, "warnings");
    rm_config_diags_free(&warns);
    tu_free(set);
}

void tu_assert_same(const Remora__V1__ConfigSet *a, const Remora__V1__ConfigSet *b)
{
    size_t la = protobuf_c_message_get_packed_size(&a->base);
    size_t lb = protobuf_c_message_get_packed_size(&b->base);
    uint8_t *pa = malloc(la ? la : 1), *pb = malloc(lb ? lb : 1);
    assert_non_null(pa);
    assert_non_null(pb);
    protobuf_c_message_pack(&a->base, pa);
    protobuf_c_message_pack(&b->base, pb);
    assert_int_equal(la, lb);
    assert_memory_equal(pa, pb, la);
    free(pa);
    free(pb);
}

void tu_free(Remora__V1__ConfigSet *set)
{
    if (set != NULL)
        protobuf_c_message_free_unpacked(&set->base, NULL);
}
