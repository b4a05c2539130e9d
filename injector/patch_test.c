/* injector/patch_test.c — unit tests of the injection patch: the "add" applier, the pod patch at
 * template paths (as meshctl inject uses it on a Deployment), errors, and review status codes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "injector/patch.h"

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (j == NULL)
        fail_msg("bad test JSON: %s", e.text);
    return j;
}

static void assert_json_eq(json_t *got, const char *want_text)
{
    json_t *want = load(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
        fail_msg("got %s, want %s", g, want_text);
    }
    json_decref(want);
}

static void test_apply_add_semantics(void **state)
{
    (void)state;
    char err[256];
    json_t *doc = load("{\"a\":{\"b~c/d\":1},\"l\":[1,2]}");
    json_t *patch = load("[{\"op\":\"add\",\"path\":\"/a/x\",\"value\":{\"y\":true}},"
                         "{\"op\":\"add\",\"path\":\"/a/b~0c~1d\",\"value\":2},"
                         "{\"op\":\"add\",\"path\":\"/l/0\",\"value\":0},"
                         "{\"op\":\"add\",\"path\":\"/l/3\",\"value\":3},"
                         "{\"op\":\"add\",\"path\":\"/l/-\",\"value\":4}]");
    assert_int_equal(rm_inject_patch_apply(doc, patch, err, sizeof(err)), 0);
    assert_json_eq(doc, "{\"a\":{\"b~c/d\":2,\"x\":{\"y\":true}},\"l\":[0,1,2,3,4]}");
    json_decref(patch);
    json_decref(doc);
}

static void test_apply_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "[{\"op\":\"remove\",\"path\":\"/a\"}]",
        "[{\"op\":\"add\",\"path\":\"/l/9\",\"value\":1}]",
        "[{\"op\":\"add\",\"path\":\"/l/01\",\"value\":1}]",
        "[{\"op\":\"add\",\"path\":\"/missing/x\",\"value\":1}]",
        "[{\"op\":\"add\",\"path\":\"/a/~2\",\"value\":1}]",
        "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]",
        "[{\"op\":\"add\",\"path\":\"/a\"}]",
        "{}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        json_t *doc = load("{\"a\":{},\"l\":[1]}");
        json_t *patch = load(bad[i]);
        assert_int_equal(rm_inject_patch_apply(doc, patch, err, sizeof(err)), -1);
        assert_true(err[0] != '\0');
        json_decref(patch);
        json_decref(doc);
    }
}

static void test_deployment_template_paths(void **state)
{
    (void)state;
    rm_inject_opts_t o;
    json_t *dep = load("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
                       "\"spec\":{\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
                       "\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":\"nginx\"}]}}}}");
    json_t *tmpl = json_object_get(json_object_get(dep, "spec"), "template");
    json_t *patch = NULL;
    const char *reason = NULL;
    char err[256];
    rm_inject_opts_default(&o);
    assert_int_equal(rm_inject_pod_patch(json_object_get(tmpl, "metadata"),
                                         json_object_get(tmpl, "spec"), "/spec/template/metadata",
                                         "/spec/template/spec", &o, &patch, &reason, err,
                                         sizeof(err)),
                     1);
    assert_int_equal(rm_inject_patch_apply(dep, patch, err, sizeof(err)), 0);
    json_decref(patch);
    patch = NULL;
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(tmpl, "metadata"), "annotations"), "remora.io/status")),
        "injected");
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(tmpl, "spec"), "initContainers")), 2);
    /* A second pass leaves it alone. */
    assert_int_equal(rm_inject_pod_patch(json_object_get(tmpl, "metadata"),
                                         json_object_get(tmpl, "spec"), "/spec/template/metadata",
                                         "/spec/template/spec", &o, &patch, &reason, err,
                                         sizeof(err)),
                     0);
    assert_null(patch);
    assert_string_equal(reason, "already injected");
    json_decref(dep);
}

static int patch_of(const char *meta, const char *spec, char *err, size_t errlen)
{
    rm_inject_opts_t o;
    json_t *m = meta ? load(meta) : NULL, *s = spec ? load(spec) : NULL, *patch = NULL;
    const char *reason;
    int rc;
    rm_inject_opts_default(&o);
    rc = rm_inject_pod_patch(m, s, "/metadata", "/spec", &o, &patch, &reason, err, errlen);
    json_decref(patch);
    json_decref(m);
    json_decref(s);
    return rc;
}

static void test_pod_errors(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(patch_of(NULL, NULL, err, sizeof(err)), RM_INJECT_EBADPOD);
    assert_int_equal(patch_of(NULL, "{\"containers\":[]}", err, sizeof(err)), RM_INJECT_EBADPOD);
    assert_int_equal(patch_of("{\"annotations\":[]}", "{\"containers\":[{}]}", err, sizeof(err)),
                     RM_INJECT_EBADPOD);
    assert_int_equal(
        patch_of(NULL, "{\"containers\":[{}],\"initContainers\":{}}", err, sizeof(err)),
        RM_INJECT_EBADPOD);
    assert_int_equal(patch_of("{\"annotations\":{\"remora.io/exclude-outbound-ports\":\"1,,x\"}}",
                              "{\"containers\":[{}]}", err, sizeof(err)),
                     RM_INJECT_EDENY);
    assert_non_null(strstr(err, "remora.io/exclude-outbound-ports"));
    assert_int_equal(patch_of("{\"annotations\":{\"remora.io/proxy-memory\":\"Mi\"}}",
                              "{\"containers\":[{}]}", err, sizeof(err)),
                     RM_INJECT_EDENY);
    assert_int_equal(patch_of("{\"annotations\":{\"remora.io/proxy-cpu\":\"1.5\"}}",
                              "{\"containers\":[{}]}", err, sizeof(err)),
                     1);
    assert_int_equal(patch_of("{\"annotations\":{\"remora.io/drain-seconds\":\"99999\"}}",
                              "{\"containers\":[{}]}", err, sizeof(err)),
                     RM_INJECT_EDENY);
}

/* The env value `name` of a remora-proxy container found in `v` (a container, or an array of
 * them, as the patch adds either), or NULL. Borrowed from `v`. */
static const char *container_env(const json_t *v, const char *name)
{
    size_t i;
    json_t *x;
    if (json_is_array(v)) {
        json_array_foreach(v, i, x)
        {
            const char *r = container_env(x, name);
            if (r != NULL)
                return r;
        }
        return NULL;
    }
    const char *cname = json_string_value(json_object_get(v, "name"));
    if (cname == NULL || strcmp(cname, "remora-proxy") != 0)
        return NULL;
    json_array_foreach(json_object_get(v, "env"), i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "name")), name) == 0)
            return json_string_value(json_object_get(x, "value"));
    }
    return NULL;
}

/* The env value `name` of the proxy container in a pod patch, or NULL. */
static const char *proxy_env(const json_t *patch, const char *name)
{
    size_t i;
    json_t *op;
    json_array_foreach(patch, i, op)
    {
        const char *r = container_env(json_object_get(op, "value"), name);
        if (r != NULL)
            return r;
    }
    return NULL;
}

static void test_egress_annotation(void **state)
{
    (void)state;
    rm_inject_opts_t o;
    const char *reason;
    char err[256];
    json_t *patch = NULL;
    json_t *m = load("{\"annotations\":{\"remora.io/egress\":\" reviews, ratings.shop ,\"}}");
    json_t *s = load("{\"containers\":[{}]}");
    rm_inject_opts_default(&o);
    assert_int_equal(
        rm_inject_pod_patch(m, s, "/metadata", "/spec", &o, &patch, &reason, err, sizeof(err)), 1);
    assert_non_null(proxy_env(patch, "REMORA_SERVICE"));
    assert_string_equal(proxy_env(patch, "REMORA_EGRESS"), "reviews,ratings.shop");
    json_decref(patch);
    json_decref(m);
    /* No annotation: no variable, so the proxy receives every service. */
    patch = NULL;
    assert_int_equal(
        rm_inject_pod_patch(NULL, s, "/metadata", "/spec", &o, &patch, &reason, err, sizeof(err)),
        1);
    assert_null(proxy_env(patch, "REMORA_EGRESS"));
    json_decref(patch);
    json_decref(s);
    static const char *const bad[] = {"Reviews", "a b", "a..b", "-a", "a.b.c", ",", "a/b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char meta[128];
        snprintf(meta, sizeof(meta), "{\"annotations\":{\"remora.io/egress\":\"%s\"}}", bad[i]);
        err[0] = '\0';
        assert_int_equal(patch_of(meta, "{\"containers\":[{}]}", err, sizeof(err)),
                         RM_INJECT_EDENY);
        assert_non_null(strstr(err, "remora.io/egress"));
    }
}

/* The argument after `flag` of the remora-init container found in `v` (a container, or an array
 * of them), or NULL. Borrowed from `v`. */
static const char *container_init_arg(const json_t *v, const char *flag)
{
    size_t i;
    json_t *x;
    if (json_is_array(v)) {
        json_array_foreach(v, i, x)
        {
            const char *r = container_init_arg(x, flag);
            if (r != NULL)
                return r;
        }
        return NULL;
    }
    const char *cname = json_string_value(json_object_get(v, "name"));
    if (cname == NULL || strcmp(cname, "remora-init") != 0)
        return NULL;
    json_t *args = json_object_get(v, "args");
    json_array_foreach(args, i, x)
    {
        if (strcmp(json_string_value(x), flag) == 0)
            return json_string_value(json_array_get(args, i + 1));
    }
    return NULL;
}

static const char *init_arg(const json_t *patch, const char *flag)
{
    size_t i;
    json_t *op;
    json_array_foreach(patch, i, op)
    {
        const char *r = container_init_arg(json_object_get(op, "value"), flag);
        if (r != NULL)
            return r;
    }
    return NULL;
}

/* IPv4 and IPv6 CIDRs reach remora-init normalized, in order; 64 of the longest IPv6 ones fit
 * whole; a 65th, or a CIDR of neither family, denies the pod. */
static void test_cidr_annotation(void **state)
{
    (void)state;
    rm_inject_opts_t o;
    const char *reason;
    char err[256], meta[8192], want[4096];
    json_t *patch = NULL, *m, *s = load("{\"containers\":[{}]}");
    rm_inject_opts_default(&o);

    m = load("{\"annotations\":{\"remora.io/exclude-outbound-cidrs\":"
             "\"10.0.0.0/8, FD00:0::/8,2001:db8::1,1.2.3.4\"}}");
    assert_int_equal(
        rm_inject_pod_patch(m, s, "/metadata", "/spec", &o, &patch, &reason, err, sizeof(err)), 1);
    assert_string_equal(init_arg(patch, "--exclude-outbound-cidrs"),
                        "10.0.0.0/8,fd00::/8,2001:db8::1/128,1.2.3.4/32");
    json_decref(patch);
    json_decref(m);

    size_t off = 0, woff = 0;
    off += (size_t)snprintf(meta + off, sizeof(meta) - off,
                            "{\"annotations\":{\"remora.io/exclude-outbound-cidrs\":\"");
    for (int i = 0; i < 64; i++) {
        off += (size_t)snprintf(meta + off, sizeof(meta) - off,
                                "%s1111:2222:3333:4444:5555:6666:7777:%04x/128", i ? "," : "", i);
        woff += (size_t)snprintf(want + woff, sizeof(want) - woff,
                                 "%s1111:2222:3333:4444:5555:6666:7777:%x/128", i ? "," : "", i);
    }
    snprintf(meta + off, sizeof(meta) - off, "\"}}");
    m = load(meta);
    patch = NULL;
    assert_int_equal(
        rm_inject_pod_patch(m, s, "/metadata", "/spec", &o, &patch, &reason, err, sizeof(err)), 1);
    assert_string_equal(init_arg(patch, "--exclude-outbound-cidrs"), want);
    json_decref(patch);
    json_decref(m);

    snprintf(meta + off, sizeof(meta) - off, ",::1\"}}");
    assert_int_equal(patch_of(meta, "{\"containers\":[{}]}", err, sizeof(err)), RM_INJECT_EDENY);
    assert_non_null(strstr(err, "remora.io/exclude-outbound-cidrs"));
    static const char *const bad[] = {"fd00::/129", "fe80::1%eth0", "::ffff:10.0.0.0/104",
                                      "10.0.0.0/33", "[fd00::]/8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(meta, sizeof(meta),
                 "{\"annotations\":{\"remora.io/exclude-outbound-cidrs\":\"%s\"}}", bad[i]);
        err[0] = '\0';
        assert_int_equal(patch_of(meta, "{\"containers\":[{}]}", err, sizeof(err)),
                         RM_INJECT_EDENY);
        assert_non_null(strstr(err, "IPv4 or IPv6 CIDRs"));
    }
    json_decref(s);
}

static int review_status(const char *body)
{
    rm_inject_opts_t o;
    char *resp = NULL, err[256] = "";
    int status;
    rm_inject_opts_default(&o);
    status = rm_inject_review(body, strlen(body), &o, &resp, err, sizeof(err));
    if (status == 200)
        assert_non_null(resp);
    else
        assert_true(resp == NULL && err[0] != '\0');
    free(resp);
    return status;
}

static void test_review_status(void **state)
{
    (void)state;
    assert_int_equal(review_status(""), 400);
    assert_int_equal(review_status("null"), 400);
    assert_int_equal(review_status("{\"apiVersion\":\"admission.k8s.io/v1\"}"), 400);
    assert_int_equal(review_status("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":"
                                   "\"AdmissionReview\",\"request\":{\"uid\":\"u\",\"kind\":{"
                                   "\"kind\":\"ConfigMap\"},\"operation\":\"CREATE\"}}"),
                     200);
    assert_int_equal(review_status("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":"
                                   "\"AdmissionReview\",\"request\":{\"uid\":\"u\",\"kind\":{"
                                   "\"kind\":\"Pod\"},\"operation\":\"CREATE\",\"object\":{"
                                   "\"spec\":{\"containers\":[{\"name\":\"a\"}]}}}}"),
                     200);
    /* Duplicate keys are refused rather than silently resolved. */
    assert_int_equal(review_status("{\"kind\":\"AdmissionReview\",\"kind\":\"AdmissionReview\"}"),
                     400);
}

static void test_inject_object_kinds(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{\"kind\":\"Pod\",\"spec\":{\"containers\":[{\"name\":\"a\"}]}}",
        "{\"kind\":\"StatefulSet\",\"spec\":{\"template\":{\"spec\":{\"containers\":"
        "[{\"name\":\"a\"}]}}}}",
        "{\"kind\":\"CronJob\",\"spec\":{\"jobTemplate\":{\"spec\":{\"template\":{"
        "\"metadata\":{},\"spec\":{\"containers\":[{\"name\":\"a\"}]}}}}}}",
    };
    rm_inject_opts_t o;
    const char *reason;
    char err[256];
    rm_inject_opts_default(&o);
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_t *obj = load(docs[i]);
        assert_int_equal(rm_inject_object(obj, &o, &reason, err, sizeof(err)), 1);
        char *text = json_dumps(obj, 0);
        assert_non_null(strstr(text, "\"remora-proxy\""));
        assert_non_null(strstr(text, "\"remora.io/status\""));
        free(text);
        assert_int_equal(rm_inject_object(obj, &o, &reason, err, sizeof(err)), 0);
        assert_string_equal(reason, "already injected");
        json_decref(obj);
    }
    {
        json_t *cm = load("{\"kind\":\"ConfigMap\",\"data\":{}}");
        json_t *before = json_deep_copy(cm);
        assert_int_equal(rm_inject_object(cm, &o, &reason, err, sizeof(err)), 0);
        assert_true(json_equal(cm, before));
        json_decref(before);
        json_decref(cm);
    }
    {
        json_t *dep = load("{\"kind\":\"Deployment\",\"spec\":{}}");
        assert_int_equal(rm_inject_object(dep, &o, &reason, err, sizeof(err)), RM_INJECT_EBADPOD);
        assert_non_null(strstr(err, "pod template"));
        json_decref(dep);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_add_semantics),       cmocka_unit_test(test_apply_rejects),
        cmocka_unit_test(test_deployment_template_paths), cmocka_unit_test(test_pod_errors),
        cmocka_unit_test(test_egress_annotation),         cmocka_unit_test(test_review_status),
        cmocka_unit_test(test_inject_object_kinds),       cmocka_unit_test(test_cidr_annotation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
