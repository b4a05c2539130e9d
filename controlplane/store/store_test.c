/* controlplane/store/store_test.c — unit tests of the config store: the SQLite store (in a temp
 * directory, reopened to prove durability), the in-memory store and the etcd store (against a
 * real etcd started here on loopback, when /usr/bin/etcd exists) run the same contract checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "controlplane/store/store-int.h"
#include "etcdpb/rpc.pb-c.h"

static char tmpdir[PATH_MAX];

static int make_tmpdir(void **state)
{
    (void)state;
    const char *base = getenv("TEST_TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/storetestXXXXXX", base ? base : "/tmp");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void sqlite_uri(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "sqlite:%s/%s", tmpdir, name);
}

/* The contract every implementation must keep, starting from an empty store. */
static void check_contract(rm_store_t *s)
{
    rm_store_record_t r;
    uint64_t v = 0;

    assert_int_equal(rm_store_get(s, 0, &r), -ENOENT);
    assert_int_equal(rm_store_get(s, 1, &r), -ENOENT);

    assert_int_equal(rm_store_append(s, 0, (const uint8_t *)"abc", 3, "first", 1000, &v), 0);
    assert_int_equal(v, 1);
    /* Someone else's view of "latest" is stale: refused, nothing written. */
    assert_int_equal(rm_store_append(s, 0, (const uint8_t *)"zzz", 3, "stale", 1001, &v), -EAGAIN);
    assert_non_null(strstr(rm_store_error(s), "latest version is 1"));
    assert_int_equal(rm_store_append(s, 1, (const uint8_t *)"", 0, "empty config", 2000, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(rm_store_append(s, 2, (const uint8_t *)"\0\1\2", 3, "binary", 3000, &v), 0);
    assert_int_equal(v, 3);

    assert_int_equal(rm_store_get(s, 0, &r), 0);
    assert_int_equal(r.version, 3);
    assert_int_equal(r.created_ms, 3000);
    assert_string_equal(r.summary, "binary");
    assert_int_equal(r.config_len, 3);
    assert_memory_equal(r.config, "\0\1\2", 3);
    rm_store_record_free(&r);

    assert_int_equal(rm_store_get(s, 1, &r), 0);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.config_len, 3);
    assert_memory_equal(r.config, "abc", 3);
    assert_string_equal(r.summary, "first");
    rm_store_record_free(&r);

    assert_int_equal(rm_store_get(s, 2, &r), 0);
    assert_int_equal(r.config_len, 0);
    assert_non_null(r.config);
    rm_store_record_free(&r);

    assert_int_equal(rm_store_get(s, 4, &r), -ENOENT);

    rm_store_record_t *h = NULL;
    size_t n = 0;
    assert_int_equal(rm_store_history(s, 2, &h, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(h[0].version, 3);
    assert_int_equal(h[1].version, 2);
    assert_string_equal(h[1].summary, "empty config");
    assert_null(h[0].config);
    rm_store_records_free(h, n);

    assert_int_equal(rm_store_history(s, 100, &h, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(h[2].version, 1);
    rm_store_records_free(h, n);

    assert_int_equal(rm_store_history(s, 0, &h, &n), 0);
    assert_int_equal(n, 0);
    assert_null(h);
}

/* Retention, on a store whose latest version is `latest` (>= 3) and that never pruned: prune
 * deletes records and history below keep_from and nothing else, again and again; appends go on
 * from the latest. */
static void check_prune(rm_store_t *s, uint64_t latest)
{
    uint64_t oldest = 99, pruned = 99, v = 0;
    rm_store_record_t r;
    assert_int_equal(rm_store_oldest(s, &oldest), 0);
    assert_int_equal(oldest, 1);
    assert_int_equal(rm_store_prune(s, latest - 1, &pruned), 0);
    assert_int_equal(pruned, latest - 2);
    assert_int_equal(rm_store_oldest(s, &oldest), 0);
    assert_int_equal(oldest, latest - 1);
    assert_int_equal(rm_store_get(s, 1, &r), -ENOENT);
    assert_int_equal(rm_store_get(s, latest - 2, &r), -ENOENT);
    assert_int_equal(rm_store_get(s, latest - 1, &r), 0);
    assert_int_equal(r.version, latest - 1);
    rm_store_record_free(&r);
    assert_int_equal(rm_store_get(s, 0, &r), 0);
    assert_int_equal(r.version, latest);
    rm_store_record_free(&r);
    rm_store_record_t *h = NULL;
    size_t n = 0;
    assert_int_equal(rm_store_history(s, 100, &h, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(h[0].version, latest);
    assert_int_equal(h[1].version, latest - 1);
    rm_store_records_free(h, n);
    /* Idempotent, and a keep_from at or below the oldest deletes nothing. */
    assert_int_equal(rm_store_prune(s, latest - 1, &pruned), 0);
    assert_int_equal(pruned, 0);
    assert_int_equal(rm_store_prune(s, 1, &pruned), 0);
    assert_int_equal(pruned, 0);
    assert_int_equal(rm_store_prune(s, 1, NULL), 0);
    /* Appends go on from the latest (a shared store compares against it). */
    assert_int_equal(rm_store_append(s, latest, (const uint8_t *)"n", 1, "next", 5000, &v), 0);
    assert_int_equal(v, latest + 1);
    assert_int_equal(rm_store_prune(s, latest + 1, &pruned), 0);
    assert_int_equal(pruned, 2);
    assert_int_equal(rm_store_oldest(s, &oldest), 0);
    assert_int_equal(oldest, latest + 1);
    assert_int_equal(rm_store_history(s, 100, &h, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].version, latest + 1);
    rm_store_records_free(h, n);
}

static void test_mem_contract(void **state)
{
    (void)state;
    rm_store_t *s = NULL;
    assert_int_equal(rm_store_open("mem:", &s, NULL, 0), 0);
    uint64_t oldest = 99;
    assert_int_equal(rm_store_oldest(s, &oldest), 0);
    assert_int_equal(oldest, 0);
    check_contract(s);
    check_prune(s, 3);
    rm_store_close(s);
}

static void test_sqlite_contract_and_reopen(void **state)
{
    (void)state;
    char uri[PATH_MAX + 32], err[256];
    rm_store_t *s = NULL;
    /* A nested directory that does not exist yet is created. */
    sqlite_uri(uri, sizeof(uri), "a/b/remora.db");
    assert_int_equal(rm_store_open(uri, &s, err, sizeof(err)), 0);
    check_contract(s);
    rm_store_close(s);

    /* Everything is still there after a reopen, and appends continue from the last version. */
    assert_int_equal(rm_store_open(uri, &s, err, sizeof(err)), 0);
    rm_store_record_t r;
    assert_int_equal(rm_store_get(s, 0, &r), 0);
    assert_int_equal(r.version, 3);
    rm_store_record_free(&r);
    uint64_t v = 0;
    assert_int_equal(rm_store_append(s, 3, (const uint8_t *)"x", 1, "after reopen", 4000, &v), 0);
    assert_int_equal(v, 4);
    check_prune(s, 4);
    rm_store_close(s);

    /* What was pruned stays pruned across a reopen; the rest reads. */
    assert_int_equal(rm_store_open(uri, &s, err, sizeof(err)), 0);
    uint64_t oldest = 0;
    assert_int_equal(rm_store_oldest(s, &oldest), 0);
    assert_int_equal(oldest, 5);
    assert_int_equal(rm_store_get(s, 4, &r), -ENOENT);
    assert_int_equal(rm_store_get(s, 0, &r), 0);
    assert_int_equal(r.version, 5);
    rm_store_record_free(&r);
    rm_store_close(s);
}

/* Endpoint registrations: put replaces by key ("ns/pod", or "ns/@address" without a pod), list is
 * in key order, remove deletes only the record as given (another owner's rewrite survives). */
static void check_endpoints(rm_store_t *s)
{
    rm_store_endpoint_t a = {.pod = "p1",
                             .namespace_ = "default",
                             .service = "reviews",
                             .version = "v1",
                             .address = "10.0.0.1:9080",
                             .owner = "A"};
    rm_store_endpoint_t b = {.pod = "",
                             .namespace_ = "default",
                             .service = "ratings",
                             .version = "",
                             .address = "10.0.0.2:9080",
                             .owner = "A"};
    rm_store_endpoint_t *eps = NULL;
    size_t n = 1;
    assert_int_equal(rm_store_ep_list(s, &eps, &n), 0);
    assert_int_equal(n, 0);
    assert_null(eps);
    /* In one batch (one transaction / Txn where the store has them), then alone. */
    assert_int_equal(rm_store_ep_batch(s, 0), 0);
    assert_int_equal(rm_store_ep_put(s, &a), 0);
    assert_int_equal(rm_store_ep_put(s, &b), 0);
    assert_int_equal(rm_store_ep_batch(s, 1), 0);
    a.draining = 1;
    assert_int_equal(rm_store_ep_put(s, &a), 0); /* replaces */
    assert_int_equal(rm_store_ep_list(s, &eps, &n), 0);
    assert_int_equal(n, 2);
    /* "default/@10..." sorts before "default/p1" */
    assert_string_equal(eps[0].address, "10.0.0.2:9080");
    assert_string_equal(eps[0].pod, "");
    assert_string_equal(eps[1].pod, "p1");
    assert_int_equal(eps[1].draining, 1);
    assert_string_equal(eps[1].owner, "A");
    rm_store_endpoints_free(eps, n);

    /* Another replica rewrote p1: removing our (older) record leaves theirs. */
    rm_store_endpoint_t theirs = a;
    theirs.owner = "B";
    theirs.draining = 0;
    assert_int_equal(rm_store_ep_put(s, &theirs), 0);
    assert_int_equal(rm_store_ep_remove(s, &a), 0);
    assert_int_equal(rm_store_ep_list(s, &eps, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(eps[1].owner, "B");
    rm_store_endpoints_free(eps, n);
    assert_int_equal(rm_store_ep_remove(s, &theirs), 0);
    assert_int_equal(rm_store_ep_remove(s, &theirs), 0); /* absent: still success */
    assert_int_equal(rm_store_ep_list(s, &eps, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(eps[0].service, "ratings");
    rm_store_endpoints_free(eps, n);
}

static void test_mem_endpoints(void **state)
{
    (void)state;
    rm_store_t *s = NULL;
    assert_int_equal(rm_store_open("mem:", &s, NULL, 0), 0);
    check_endpoints(s);
    rm_store_close(s);
}

static void test_sqlite_endpoints_survive_reopen(void **state)
{
    (void)state;
    char uri[PATH_MAX + 32], err[256];
    rm_store_t *s = NULL;
    sqlite_uri(uri, sizeof(uri), "eps/remora.db");
    assert_int_equal(rm_store_open(uri, &s, err, sizeof(err)), 0);
    check_endpoints(s);
    rm_store_close(s);
    assert_int_equal(rm_store_open(uri, &s, err, sizeof(err)), 0);
    rm_store_endpoint_t *eps = NULL;
    size_t n = 0;
    assert_int_equal(rm_store_ep_list(s, &eps, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(eps[0].address, "10.0.0.2:9080");
    assert_int_equal(eps[0].held_until_ms, 0);
    /* A restored registration's deadline survives the next restart. */
    eps[0].held_until_ms = 1800000000000ull;
    assert_int_equal(rm_store_ep_put(s, &eps[0]), 0);
    rm_store_endpoints_free(eps, n);
    rm_store_close(s);
    assert_int_equal(rm_store_open(uri, &s, err, sizeof(err)), 0);
    assert_int_equal(rm_store_ep_list(s, &eps, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(eps[0].held_until_ms, 1800000000000ull);
    rm_store_endpoints_free(eps, n);
    rm_store_close(s);
}

/* A database from before registrations carried held_until_ms gains the column; its rows read 0. */
static void test_sqlite_registrations_table_upgraded(void **state)
{
    (void)state;
    char uri[PATH_MAX + 64], path[PATH_MAX + 32], err[256];
    snprintf(path, sizeof(path), "%s/before-held.db", tmpdir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE remora_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                     "INSERT INTO remora_meta VALUES('schema', '1');"
                     "CREATE TABLE endpoint_registrations(key TEXT PRIMARY KEY,"
                     " pod TEXT NOT NULL, namespace TEXT NOT NULL, service TEXT NOT NULL,"
                     " version TEXT NOT NULL, address TEXT NOT NULL, draining INTEGER NOT NULL,"
                     " owner TEXT NOT NULL, updated_ms INTEGER NOT NULL);"
                     "INSERT INTO endpoint_registrations VALUES('default/p1', 'p1', 'default',"
                     " 'reviews', 'v1', '10.0.0.1:9080', 0, 'A', 1);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    rm_store_t *s = NULL;
    snprintf(uri, sizeof(uri), "sqlite:%s", path);
    assert_int_equal(rm_store_open(uri, &s, err, sizeof(err)), 0);
    rm_store_endpoint_t *eps = NULL;
    size_t n = 0;
    assert_int_equal(rm_store_ep_list(s, &eps, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(eps[0].pod, "p1");
    assert_int_equal(eps[0].held_until_ms, 0);
    eps[0].held_until_ms = 42;
    assert_int_equal(rm_store_ep_put(s, &eps[0]), 0);
    rm_store_endpoints_free(eps, n);
    assert_int_equal(rm_store_ep_list(s, &eps, &n), 0);
    assert_int_equal(eps[0].held_until_ms, 42);
    rm_store_endpoints_free(eps, n);
    rm_store_close(s);
}

static void test_endpoint_value_format(void **state)
{
    (void)state;
    rm_store_endpoint_t a = {.pod = "p1",
                             .namespace_ = "ns",
                             .service = "reviews",
                             .version = "v1",
                             .address = "[::1]:80",
                             .owner = "0123",
                             .draining = 1};
    char *v = rm__store_ep_encode(&a);
    assert_non_null(v);
    assert_string_equal(v, "RME1\np1\nns\nreviews\nv1\n[::1]:80\n1\n0123\n");
    rm_store_endpoint_t d;
    assert_int_equal(rm__store_ep_decode((const uint8_t *)v, strlen(v), &d), 0);
    assert_string_equal(d.address, "[::1]:80");
    assert_int_equal(d.draining, 1);
    rm_store_endpoint_free(&d);
    /* Every strict prefix, and a few damaged copies, are refused without a leak. */
    for (size_t i = 0; i < strlen(v); i++)
        assert_int_equal(rm__store_ep_decode((const uint8_t *)v, i, &d), -EINVAL);
    static const char *bad[] = {
        "RME2\np1\nns\nreviews\nv1\na:1\n0\no\n",      /* magic */
        "RME1\np1\nns\n\nv1\na:1\n0\no\n",             /* no service */
        "RME1\np1\nns\nreviews\nv1\n\n0\no\n",         /* no address */
        "RME1\np1\nns\nreviews\nv1\na:1\n2\no\n",      /* draining not 0/1 */
        "RME1\np 1\nns\nreviews\nv1\na:1\n0\no\n",     /* a space */
        "RME1\np1\nns\nreviews\nv1\na:1\n0\no\nx\n",   /* a field too many */
        "RME1\np1\nns\nreviews\nv1\na:1\n0\no\ntrail", /* trailing bytes */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rm__store_ep_decode((const uint8_t *)bad[i], strlen(bad[i]), &d), -EINVAL);
    free(v);
}

static void test_sqlite_is_wal(void **state)
{
    (void)state;
    char uri[PATH_MAX + 64], path[PATH_MAX + 32];
    rm_store_t *s = NULL;
    sqlite_uri(uri, sizeof(uri), "wal.db");
    assert_int_equal(rm_store_open(uri, &s, NULL, 0), 0);
    rm_store_close(s);
    snprintf(path, sizeof(path), "%s/wal.db", tmpdir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    sqlite3_close(db);
}

static void test_sqlite_foreign_schema_refused(void **state)
{
    (void)state;
    char uri[PATH_MAX + 64], path[PATH_MAX + 32], err[256];
    snprintf(path, sizeof(path), "%s/future.db", tmpdir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE remora_meta(key TEXT PRIMARY KEY, value TEXT);"
                                  "INSERT INTO remora_meta VALUES('schema', '99');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    rm_store_t *s = NULL;
    snprintf(uri, sizeof(uri), "sqlite:%s", path);
    assert_true(rm_store_open(uri, &s, err, sizeof(err)) < 0);
    assert_null(s);
    assert_non_null(strstr(err, "schema"));
}

static void test_sqlite_unopenable(void **state)
{
    (void)state;
    char uri[PATH_MAX + 64], path[PATH_MAX + 32], err[256];
    rm_store_t *s = NULL;
    /* A regular file where the directory should be. */
    snprintf(path, sizeof(path), "%s/plainfile", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(uri, sizeof(uri), "sqlite:%s/plainfile/x.db", tmpdir);
    assert_true(rm_store_open(uri, &s, err, sizeof(err)) < 0);
    assert_null(s);
    assert_non_null(strstr(err, "plainfile"));
}

static void test_uris(void **state)
{
    (void)state;
    char err[256];
    rm_store_t *s = NULL;
    assert_int_equal(rm_store_open("etcd://nohostport", &s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "HOST:PORT"));
    assert_int_equal(rm_store_open("etcd://127.0.0.1:x", &s, err, sizeof(err)), -EINVAL);
    /* Nothing listens on port 1: a clear error, in bounded time (the call's deadline), no hang. */
    assert_true(rm_store_open("etcd://127.0.0.1:1", &s, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "etcd 127.0.0.1:1 unavailable"));
    assert_null(s);
    assert_int_equal(rm_store_open("postgres://x", &s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "postgres://x"));
    assert_int_equal(rm_store_open("sqlite:", &s, err, sizeof(err)), -EINVAL);
    assert_int_equal(rm_store_open("", &s, err, sizeof(err)), -EINVAL);
    assert_null(s);
}

static void test_summary_is_cut(void **state)
{
    (void)state;
    rm_store_t *s = NULL;
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, 'x', 4999);
    big[4999] = '\0';
    assert_int_equal(rm_store_open("mem:", &s, NULL, 0), 0);
    uint64_t v;
    assert_int_equal(rm_store_append(s, 0, (const uint8_t *)"a", 1, big, 1, &v), 0);
    rm_store_record_t r;
    assert_int_equal(rm_store_get(s, 1, &r), 0);
    assert_int_equal(strlen(r.summary), RM_STORE_SUMMARY_MAX);
    assert_string_equal(r.summary + RM_STORE_SUMMARY_MAX - 3, "...");
    rm_store_record_free(&r);
    rm_store_close(s);
    free(big);
}

/* The etcd value format, decoded from bytes built here by hand (the encoder's mirror). */
/* Lease replies as etcd packs them: a live lease, one etcd no longer has, a refused grant, and
 * bytes that are no reply at all. */
static void test_etcd_lease_parse(void **state)
{
    (void)state;
    uint8_t buf[64];
    int64_t id, ttl;
    Etcdserverpb__LeaseGrantResponse g = ETCDSERVERPB__LEASE_GRANT_RESPONSE__INIT;
    g.id = 0x694d8e3b1c2a0004;
    g.ttl = 10;
    size_t n = etcdserverpb__lease_grant_response__pack(&g, buf);
    assert_int_equal(rm__store_etcd_lease_parse(buf, n, 0, &id, &ttl), 0);
    assert_true(id == 0x694d8e3b1c2a0004 && ttl == 10);
    g.error = "etcdserver: too many requests";
    n = etcdserverpb__lease_grant_response__pack(&g, buf);
    assert_int_equal(rm__store_etcd_lease_parse(buf, n, 0, &id, &ttl), -ENOENT);

    Etcdserverpb__LeaseKeepAliveResponse k = ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
    k.id = 7;
    k.ttl = 9;
    n = etcdserverpb__lease_keep_alive_response__pack(&k, buf);
    assert_int_equal(rm__store_etcd_lease_parse(buf, n, 1, &id, &ttl), 0);
    assert_true(id == 7 && ttl == 9);
    k.ttl = 0; /* etcd's answer for an expired or revoked lease */
    n = etcdserverpb__lease_keep_alive_response__pack(&k, buf);
    assert_int_equal(rm__store_etcd_lease_parse(buf, n, 1, &id, &ttl), -ENOENT);
    k.ttl = -1;
    n = etcdserverpb__lease_keep_alive_response__pack(&k, buf);
    assert_int_equal(rm__store_etcd_lease_parse(buf, n, 1, &id, &ttl), -ENOENT);
    /* Field 2 (ID) with a length-delimited wire type: not this message. */
    static const uint8_t bad[] = {0x12, 0x05, 'x'};
    assert_int_equal(rm__store_etcd_lease_parse(bad, sizeof(bad), 1, &id, &ttl), -EINVAL);
    assert_int_equal(rm__store_etcd_lease_parse(bad, sizeof(bad), 0, &id, &ttl), -EINVAL);
}

static void test_etcd_decode(void **state)
{
    (void)state;
    static const char key[] = "/remora/v1/versions/00000000000000000042";
    uint8_t val[64] = "RMV1";
    size_t n = 4;
    memset(val + n, 0, 7);
    val[n + 7] = 9; /* created_ms = 9 */
    n += 8;
    memset(val + n, 0, 3);
    val[n + 3] = 2; /* summary "hi" */
    n += 4;
    memcpy(val + n, "hiCFG", 5);
    n += 5;
    rm_store_record_t r;
    assert_int_equal(rm__store_etcd_decode((const uint8_t *)key, strlen(key), val, n, 1, &r), 0);
    assert_int_equal(r.version, 42);
    assert_int_equal(r.created_ms, 9);
    assert_string_equal(r.summary, "hi");
    assert_int_equal(r.config_len, 3);
    assert_memory_equal(r.config, "CFG", 3);
    rm_store_record_free(&r);
    assert_int_equal(rm__store_etcd_decode((const uint8_t *)key, strlen(key), val, n, 0, &r), 0);
    assert_null(r.config);
    rm_store_record_free(&r);
    /* Every cut of the value, a bad magic, a summary longer than the value, a bad key. */
    for (size_t cut = 0; cut < 4 + 8 + 4 + 2; cut++)
        assert_int_equal(rm__store_etcd_decode((const uint8_t *)key, strlen(key), val, cut, 1, &r),
                         -EINVAL);
    val[0] = 'X';
    assert_int_equal(rm__store_etcd_decode((const uint8_t *)key, strlen(key), val, n, 1, &r),
                     -EINVAL);
    val[0] = 'R';
    val[15] = 200;
    assert_int_equal(rm__store_etcd_decode((const uint8_t *)key, strlen(key), val, n, 1, &r),
                     -EINVAL);
    val[15] = 2;
    assert_int_equal(
        rm__store_etcd_decode((const uint8_t *)"/remora/v1/versions/x", 21, val, n, 1, &r),
        -EINVAL);
    assert_int_equal(
        rm__store_etcd_decode((const uint8_t *)"99999999999999999999", 20, val, n, 1, &r), -EINVAL);
}

/* ---- against a real etcd ---- */

#define ETCD_BIN "/usr/bin/etcd"

/* A port the kernel says is free now (etcd binds it a moment later; good enough for a test). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t start_etcd(int client, int peer)
{
    char curl[64], purl[64], cluster[80], data[PATH_MAX + 16], log[PATH_MAX + 16];
    snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", client);
    snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", peer);
    snprintf(cluster, sizeof(cluster), "t=%s", purl);
    snprintf(data, sizeof(data), "%s/etcd-data", tmpdir);
    snprintf(log, sizeof(log), "%s/etcd.log", tmpdir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(ETCD_BIN, "etcd", "--name", "t", "--data-dir", data, "--listen-client-urls", curl,
              "--advertise-client-urls", curl, "--listen-peer-urls", purl,
              "--initial-advertise-peer-urls", purl, "--initial-cluster", cluster, "--log-level",
              "warn", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop_etcd(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Opens the etcd store, giving a starting etcd up to ~30 s (each open waits up to 5 s). */
static rm_store_t *open_etcd(const char *uri)
{
    rm_store_t *s = NULL;
    char err[256];
    for (int i = 0; i < 6 && s == NULL; i++)
        if (rm_store_open(uri, &s, err, sizeof(err)) < 0)
            print_message("etcd not ready yet: %s\n", err);
    assert_non_null(s);
    return s;
}

static void test_etcd_contract_watch_and_outage(void **state)
{
    (void)state;
    if (access(ETCD_BIN, X_OK) != 0)
        skip();
    int client = free_port(), peer = free_port();
    pid_t etcd = start_etcd(client, peer);
    char uri[128];
    snprintf(uri, sizeof(uri), "etcd://127.0.0.1:%d/storetest", client);
    rm_store_t *s = open_etcd(uri);
    rm_store_t *other = open_etcd(uri);
    assert_true(rm_store_is_shared(s));
    check_contract(s);

    /* The second store (another replica) hears of version 4 through its watch. No timing is
     * asserted: the loop only bounds how long a broken watch would hang the test. */
    uint64_t v = 0;
    assert_int_equal(rm_store_append(s, 3, (const uint8_t *)"four", 4, "fourth", 4000, &v), 0);
    assert_int_equal(v, 4);
    int seen = 0;
    for (int i = 0; i < 2000 && !seen; i++) {
        seen = rm_store_changed(other);
        if (!seen)
            sleep_ms(10);
    }
    assert_true(seen);
    rm_store_record_t r;
    assert_int_equal(rm_store_get(other, 0, &r), 0);
    assert_int_equal(r.version, 4);
    assert_memory_equal(r.config, "four", 4);
    rm_store_record_free(&r);
    /* Its stale append loses and names the winner's version. */
    assert_int_equal(rm_store_append(other, 3, (const uint8_t *)"x", 1, "stale", 1, &v), -EAGAIN);
    assert_non_null(strstr(rm_store_error(other), "latest version is 4"));

    /* Registrations: the same contract over etcd (lease, conditional delete by value), and the
     * other replica's watch reports them. */
    while (rm_store_ep_changed(other))
        ;
    check_endpoints(s);
    seen = 0;
    for (int i = 0; i < 2000 && !seen; i++) {
        seen = rm_store_ep_changed(other);
        if (!seen)
            sleep_ms(10);
    }
    assert_true(seen);
    rm_store_endpoint_t *eps = NULL;
    size_t n = 0;
    assert_int_equal(rm_store_ep_list(other, &eps, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(eps[0].service, "ratings");
    rm_store_endpoints_free(eps, n);
    assert_int_equal(rm_store_ep_keepalive(s, 0), 0); /* not due yet, or renewed: never lost */
    /* Past TTL/3 a keepalive is due and really sent: etcd renews the lease (1 would mean the
     * reply named no lease), and a put on that lease still succeeds. */
    sleep_ms(RM_STORE_LEASE_TTL_S * 1000 / 3 + 300);
    assert_int_equal(rm_store_ep_keepalive(s, 0), 0);
    rm_store_endpoint_t again = {.pod = "p2",
                                 .namespace_ = "ns",
                                 .service = "ratings",
                                 .address = "10.0.0.9:80",
                                 .owner = "boot-a"};
    assert_int_equal(rm_store_ep_put(s, &again), 0);
    assert_int_equal(rm_store_ep_remove(s, &again), 0);

    /* Retention over etcd: both key kinds go below keep_from; the other replica reads the same,
     * and its append still compares against the (kept) latest. */
    check_prune(s, 4);
    uint64_t oldest = 0;
    assert_int_equal(rm_store_oldest(other, &oldest), 0);
    assert_int_equal(oldest, 5);
    assert_int_equal(rm_store_get(other, 3, &r), -ENOENT);
    assert_int_equal(rm_store_append(other, 5, (const uint8_t *)"six", 3, "sixth", 6000, &v), 0);
    assert_int_equal(v, 6);
    /* The store that wrote them closes without removing them: the lease (10 s) keeps them. */

    /* etcd gone: every call fails with the clear reason, in bounded time; close never hangs. */
    stop_etcd(etcd);
    assert_int_equal(rm_store_append(s, 6, (const uint8_t *)"x", 1, "down", 1, &v), -EHOSTUNREACH);
    assert_non_null(strstr(rm_store_error(s), "unavailable"));
    assert_int_equal(rm_store_get(other, 0, &r), -EHOSTUNREACH);
    char want[64];
    snprintf(want, sizeof(want), "etcd 127.0.0.1:%d unavailable", client);
    assert_non_null(strstr(rm_store_error(other), want));
    rm_store_close(s);
    rm_store_close(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mem_contract),
        cmocka_unit_test(test_sqlite_contract_and_reopen),
        cmocka_unit_test(test_mem_endpoints),
        cmocka_unit_test(test_sqlite_endpoints_survive_reopen),
        cmocka_unit_test(test_endpoint_value_format),
        cmocka_unit_test(test_sqlite_is_wal),
        cmocka_unit_test(test_sqlite_foreign_schema_refused),
        cmocka_unit_test(test_sqlite_registrations_table_upgraded),
        cmocka_unit_test(test_sqlite_unopenable),
        cmocka_unit_test(test_uris),
        cmocka_unit_test(test_summary_is_cut),
        cmocka_unit_test(test_etcd_lease_parse),
        cmocka_unit_test(test_etcd_decode),
        cmocka_unit_test(test_etcd_contract_watch_and_outage),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
