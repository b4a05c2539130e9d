/* dataplane/snapshot/snapshot_thread_test.c — publish/acquire/refresh from several threads at
 * once. Meant for ThreadSanitizer (bazel test --config=tsan) and ASan: a data race on the slot
 * or a use-after-free of a swapped-out snapshot is reported by the sanitizer; without one the
 * test still checks that every reader only ever moves forward in versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "dataplane/snapshot/snapshot.h"
#include "dataplane/snapshot/testutil.h"

#define PUBLISHES 300
#define READERS   3

static atomic_int done;

typedef struct reader {
    pthread_t tid;
    uint64_t refreshes;
    uint64_t requests;
    int backwards; /* a version older than one seen before: must stay 0 */
    int lookups_failed;
} reader_t;

static rm_snapshot_t *build(uint64_t version)
{
    Remora__V1__ConfigSet *set = tu_set_new();
    Remora__V1__Service *svc = tu_service(set, "reviews", NULL, 9080);
    tu_service_endpoint(svc, "127.0.0.1:9001", "v1");
    tu_match_header(tu_rule(tu_route(set, "r", NULL, "reviews"), "re"), "x", TU_REGEX, "a+b");
    Remora__V1__ResolvedEndpoint **eps;
    size_t n;
    rm_snapshot_t *s = NULL;
    if (rm_snapshot_endpoints_from_config(set, &eps, &n) == 0) {
        s = rm_snapshot_build(set, eps, n, NULL, version, NULL, 0);
        rm_snapshot_endpoints_free(eps, n);
    }
    tu_set_free(set);
    return s;
}

/* A worker loop in miniature: refresh the cached snapshot when the generation moves, and let
 * each "request" hold its own reference across a lookup, as the proxy's exchanges do. */
static void *reader_main(void *arg)
{
    reader_t *r = arg;
    rm_snapshot_t *cached = NULL;
    uint64_t gen = 0, last_version = 0;
    while (!atomic_load(&done)) {
        if (rm_snapshot_refresh(&cached, &gen))
            r->refreshes++;
        rm_snapshot_t *req = cached;
        if (req == NULL)
            continue;
        rm_snapshot_ref(req);
        uint64_t v = rm_snapshot_version(req);
        if (v < last_version)
            r->backwards++;
        last_version = v;
        const rm_service_t *svc = rm_snapshot_service_by_host(req, "reviews:9080", 12);
        if (svc == NULL || svc->nrules != 1 ||
            rm_snapshot_regex_match(&svc->rules[0].match.headers[0].re, "aab", 3) != 1)
            r->lookups_failed++;
        r->requests++;
        /* Occasionally also take a reference straight from the slot. */
        if ((r->requests & 15) == 0) {
            rm_snapshot_t *cur = rm_snapshot_acquire();
            if (cur != NULL && rm_snapshot_version(cur) < v)
                r->backwards++;
            rm_snapshot_unref(cur);
        }
        rm_snapshot_unref(req);
    }
    rm_snapshot_unref(cached);
    return NULL;
}

static void test_publish_acquire_threads(void **state)
{
    (void)state;
    reader_t readers[READERS];
    memset(readers, 0, sizeof(readers));
    atomic_store(&done, 0);
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&readers[i].tid, NULL, reader_main, &readers[i]), 0);
    for (uint64_t v = 1; v <= PUBLISHES; v++) {
        rm_snapshot_t *s = build(v);
        assert_non_null(s);
        rm_snapshot_publish(s);
    }
    atomic_store(&done, 1);
    for (int i = 0; i < READERS; i++) {
        assert_int_equal(pthread_join(readers[i].tid, NULL), 0);
        assert_int_equal(readers[i].backwards, 0);
        assert_int_equal(readers[i].lookups_failed, 0);
    }
    rm_snapshot_t *last = rm_snapshot_acquire();
    assert_non_null(last);
    assert_int_equal(rm_snapshot_version(last), PUBLISHES);
    rm_snapshot_unref(last);
    rm_snapshot_publish(NULL); /* frees the last one: nothing leaks */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_acquire_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
