/* tests/fuzz/config/config_fuzz.c — libFuzzer driver for //common/config: arbitrary bytes through
 * rm_config_load, and every set that loads printed with rm_config_to_yaml / rm_config_to_json.
 *
 * Properties checked (abort() on violation, so libFuzzer keeps the input):
 *  1. all or nothing: success returns a set and no errors; failure returns no set and at least
 *     one error that formats to a non-empty line;
 *  2. round trip: a loaded set prints as YAML and as JSON, both load again without errors, and
 *     pack to the same bytes as the original.
 * The first input byte picks a validation context (none, known services, known endpoints), so
 * context-dependent rules and warnings are exercised too.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config/config.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "config_fuzz: check failed at line %d: %s\n", __LINE__, #cond);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const rm_config_service_ref_t services[] = {{NULL, "reviews"}, {"prod", "api"}};
static const rm_config_endpoint_ref_t endpoints[] = {{NULL, "reviews", "v1"},
                                                     {"prod", "api", "v2"}};

static const rm_config_context_t *pick_context(uint8_t b, rm_config_context_t *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    switch (b % 3) {
    case 0:
        return NULL;
    case 1:
        ctx->services = services;
        ctx->n_services = 2;
        return ctx;
    default:
        ctx->services = services;
        ctx->n_services = 2;
        ctx->endpoints_known = 1;
        ctx->endpoints = endpoints;
        ctx->n_endpoints = 2;
        return ctx;
    }
}

static void check_diags(const rm_config_diags_t *d)
{
    for (size_t i = 0; i < d->count; i++) {
        char line[256];
        CHECK(d->items[i].message != NULL);
        CHECK(rm_config_diag_format(&d->items[i], line, sizeof(line)) > 0);
    }
}

static uint8_t *pack(const Remora__V1__ConfigSet *set, size_t *len)
{
    uint8_t *buf;
    *len = protobuf_c_message_get_packed_size(&set->base);
    buf = malloc(*len ? *len : 1);
    CHECK(buf != NULL);
    protobuf_c_message_pack(&set->base, buf);
    return buf;
}

/* Loads printed text again and compares it with the original set. */
static void reload_same(const char *text, const char *name, const rm_config_context_t *ctx,
                        const uint8_t *want, size_t want_len)
{
    rm_config_diags_t errs = {0}, warns = {0};
    Remora__V1__ConfigSet *again = NULL;
    uint8_t *got;
    size_t got_len;
    int rc = rm_config_load(name, text, strlen(text), ctx, &again, &errs, &warns);

    if (rc != 0) {
        fprintf(stderr, "config_fuzz: printed %s does not load:\n", name);
        rm_config_diags_print(&errs, stderr, "  ");
        fprintf(stderr, "--- text ---\n%s\n", text);
    }
    CHECK(rc == 0);
    got = pack(again, &got_len);
    CHECK(got_len == want_len && memcmp(got, want, want_len) == 0);
    free(got);
    protobuf_c_message_free_unpacked(&again->base, NULL);
    rm_config_diags_free(&errs);
    rm_config_diags_free(&warns);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rm_config_diags_t errs = {0}, warns = {0};
    rm_config_context_t ctxbuf;
    const rm_config_context_t *ctx = pick_context(size ? data[0] : 0, &ctxbuf);
    Remora__V1__ConfigSet *set = NULL;
    int rc;

    /* The context byte is also part of the document: a leading byte rarely matters to YAML. */
    rc = rm_config_load("fuzz.yaml", (const char *)data, size, ctx, &set, &errs, &warns);
    check_diags(&errs);
    check_diags(&warns);
    if (rc == 0) {
        char *yaml, *json;
        uint8_t *packed;
        size_t len;
        CHECK(set != NULL);
        CHECK(errs.count == 0 && errs.dropped == 0);
        packed = pack(set, &len);
        yaml = rm_config_to_yaml(set);
        json = rm_config_to_json(set);
        CHECK(yaml != NULL && json != NULL);
        reload_same(yaml, "printed.yaml", ctx, packed, len);
        reload_same(json, "printed.json", ctx, packed, len);
        free(yaml);
        free(json);
        free(packed);
        protobuf_c_message_free_unpacked(&set->base, NULL);
    } else {
        CHECK(set == NULL);
        CHECK(rc == -EINVAL || rc == -ENOMEM);
        CHECK(rc == -ENOMEM || errs.count > 0);
    }
    rm_config_diags_free(&errs);
    rm_config_diags_free(&warns);
    return 0;
}
