/* controlplane/store/store_sqlite.c — the embedded default store: one SQLite database in WAL mode.
 *
 * Schema (version 1):
 *   remora_meta(key TEXT PRIMARY KEY, value TEXT)          -- "schema" -> "1"
 *   config_versions(version INTEGER PRIMARY KEY, created_ms INTEGER, summary TEXT, config BLOB)
 * The current config is the row with the highest version. Appends run in a BEGIN IMMEDIATE
 * transaction, so the "is the latest still what I validated against?" check and the insert are
 * atomic even if a second process opened the same file.
 *
 * Why WAL with synchronous=FULL: readers (a second remora-control, sqlite3 on the command line)
 * never block the writer, and an apply that was answered "version N" survives a power cut.
 * Writes are rare (one per apply), so the extra fsync costs nothing that matters.
 *
 * Retention: prune deletes the oldest rows (remora-control --history). SQLite keeps the freed
 * pages in the file and reuses them for the next versions, so the file stops growing at about
 * the size of the versions kept rather than shrinking (no VACUUM on the server thread).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <sqlite3.h>

#include "controlplane/store/store-int.h"

#define SCHEMA_VERSION "1"

typedef struct sqlite_store {
    rm_store_t base;
    sqlite3 *db;              /* owned */
    sqlite3_stmt *get_one;    /* owned: one version */
    sqlite3_stmt *get_latest; /* owned: the highest version */
    sqlite3_stmt *max_ver;    /* owned */
    sqlite3_stmt *insert;     /* owned */
    sqlite3_stmt *history;    /* owned */
    sqlite3_stmt *prune;      /* owned: delete versions below ? */
    sqlite3_stmt *min_ver;    /* owned: the oldest version kept */
    sqlite3_stmt *ep_put;     /* owned: insert or replace one registration */
    sqlite3_stmt *ep_del;     /* owned: delete one key while it is still the same record */
    sqlite3_stmt *ep_all;     /* owned: every registration in key order */
} sqlite_store_t;

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS remora_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS config_versions("
    " version INTEGER PRIMARY KEY,"
    " created_ms INTEGER NOT NULL,"
    " summary TEXT NOT NULL,"
    " config BLOB NOT NULL);"
    /* Endpoint registrations (store.h): rows of the sidecars this control plane had when it
     * stopped, listed again in their grace after a restart. Added beside schema 1: a database
     * from before simply gains the table. */
    "CREATE TABLE IF NOT EXISTS endpoint_registrations("
    " key TEXT PRIMARY KEY,"
    " pod TEXT NOT NULL, namespace TEXT NOT NULL, service TEXT NOT NULL,"
    " version TEXT NOT NULL, address TEXT NOT NULL, draining INTEGER NOT NULL,"
    " owner TEXT NOT NULL, updated_ms INTEGER NOT NULL,"
    " held_until_ms INTEGER NOT NULL DEFAULT 0);"
    "INSERT OR IGNORE INTO remora_meta(key, value) VALUES('schema', '" SCHEMA_VERSION "');";

/* mkdir -p of the directory that holds `path`. Returns 0 or -errno. */
static int make_parent_dirs(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    char *slash = strrchr(buf, '/');
    if (slash == NULL || slash == buf)
        return 0;
    *slash = '\0';
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int fill_record(sqlite_store_t *st, sqlite3_stmt *q, rm_store_record_t *out, int with_cfg)
{
    out->version = (uint64_t)sqlite3_column_int64(q, 0);
    out->created_ms = (uint64_t)sqlite3_column_int64(q, 1);
    const unsigned char *sum = sqlite3_column_text(q, 2);
    out->summary = strdup(sum != NULL ? (const char *)sum : "");
    if (out->summary == NULL)
        goto nomem;
    if (with_cfg) {
        const void *blob = sqlite3_column_blob(q, 3);
        int n = sqlite3_column_bytes(q, 3);
        out->config_len = n > 0 ? (size_t)n : 0;
        /* malloc(1) for an empty config keeps "config != NULL" meaning "was read". */
        out->config = malloc(out->config_len ? out->config_len : 1);
        if (out->config == NULL)
            goto nomem;
        if (out->config_len)
            memcpy(out->config, blob, out->config_len);
    }
    return 0;
nomem:
    rm_store_record_free(out);
    rm__store_fail(&st->base, "out of memory reading version from the store");
    return -ENOMEM;
}

static int sq_get(rm_store_t *s, uint64_t version, rm_store_record_t *out)
{
    sqlite_store_t *st = (sqlite_store_t *)s;
    sqlite3_stmt *q = version == 0 ? st->get_latest : st->get_one;
    int rc;
    memset(out, 0, sizeof(*out));
    if (version != 0)
        sqlite3_bind_int64(q, 1, (sqlite3_int64)version);
    rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(q);
        if (version == 0)
            rm__store_fail(s, "the store holds no config yet");
        else
            rm__store_fail(s, "no config version %llu", (unsigned long long)version);
        return -ENOENT;
    }
    if (rc != SQLITE_ROW) {
        rm__store_fail(s, "reading the store: %s", sqlite3_errmsg(st->db));
        sqlite3_reset(q);
        return -EIO;
    }
    rc = fill_record(st, q, out, 1);
    sqlite3_reset(q);
    return rc;
}

static int exec_simple(sqlite_store_t *st, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        rm__store_fail(&st->base, "store: %s: %s", sql, msg != NULL ? msg : "error");
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

static int sq_append(rm_store_t *s, uint64_t expect_version, const uint8_t *config, size_t len,
                     const char *summary, uint64_t created_ms, uint64_t *out_version)
{
    sqlite_store_t *st = (sqlite_store_t *)s;
    int rc = -EIO;
    char *sum = rm__store_summary_dup(summary);
    if (sum == NULL) {
        rm__store_fail(s, "out of memory");
        return -ENOMEM;
    }
    if (len > INT_MAX) {
        rm__store_fail(s, "config of %zu bytes is too large for the store", len);
        free(sum);
        return -EFBIG;
    }
    if (exec_simple(st, "BEGIN IMMEDIATE") < 0) {
        free(sum);
        return -EIO;
    }
    if (sqlite3_step(st->max_ver) != SQLITE_ROW) {
        rm__store_fail(s, "reading the latest version: %s", sqlite3_errmsg(st->db));
        goto rollback;
    }
    uint64_t latest = (uint64_t)sqlite3_column_int64(st->max_ver, 0);
    sqlite3_reset(st->max_ver);
    if (latest != expect_version) {
        rm__store_fail(s, "the store moved on: latest version is %llu, expected %llu",
                       (unsigned long long)latest, (unsigned long long)expect_version);
        rc = -EAGAIN;
        goto rollback;
    }
    uint64_t next = latest + 1;
    sqlite3_bind_int64(st->insert, 1, (sqlite3_int64)next);
    sqlite3_bind_int64(st->insert, 2, (sqlite3_int64)created_ms);
    sqlite3_bind_text(st->insert, 3, sum, -1, SQLITE_STATIC);
    /* A zero-length blob must still be non-NULL for the NOT NULL constraint. */
    sqlite3_bind_blob(st->insert, 4, len ? (const void *)config : (const void *)"", (int)len,
                      SQLITE_STATIC);
    if (sqlite3_step(st->insert) != SQLITE_DONE) {
        rm__store_fail(s, "writing version %llu: %s", (unsigned long long)next,
                       sqlite3_errmsg(st->db));
        sqlite3_reset(st->insert);
        goto rollback;
    }
    sqlite3_reset(st->insert);
    sqlite3_clear_bindings(st->insert);
    if (exec_simple(st, "COMMIT") < 0)
        goto rollback;
    free(sum);
    *out_version = next;
    return 0;
rollback:
    sqlite3_reset(st->max_ver);
    sqlite3_clear_bindings(st->insert);
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    free(sum);
    return rc;
}

static int sq_history(rm_store_t *s, uint32_t limit, rm_store_record_t **out, size_t *n)
{
    sqlite_store_t *st = (sqlite_store_t *)s;
    rm_store_record_t *arr = NULL;
    size_t count = 0, cap = 0;
    int rc;
    *out = NULL;
    *n = 0;
    sqlite3_bind_int64(st->history, 1, (sqlite3_int64)limit);
    while ((rc = sqlite3_step(st->history)) == SQLITE_ROW) {
        if (count == cap) {
            size_t nc = cap ? cap * 2 : 16;
            rm_store_record_t *na = realloc(arr, nc * sizeof(*na));
            if (na == NULL) {
                rm__store_fail(s, "out of memory listing history");
                rc = -ENOMEM;
                goto fail;
            }
            arr = na;
            cap = nc;
        }
        memset(&arr[count], 0, sizeof(arr[count]));
        if (fill_record(st, st->history, &arr[count], 0) < 0) {
            rc = -ENOMEM;
            goto fail;
        }
        count++;
    }
    if (rc != SQLITE_DONE) {
        rm__store_fail(s, "listing history: %s", sqlite3_errmsg(st->db));
        rc = -EIO;
        goto fail;
    }
    sqlite3_reset(st->history);
    *out = arr;
    *n = count;
    return 0;
fail:
    sqlite3_reset(st->history);
    rm_store_records_free(arr, count);
    return rc;
}

static int sq_prune(rm_store_t *s, uint64_t keep_from, uint64_t *pruned)
{
    sqlite_store_t *st = (sqlite_store_t *)s;
    sqlite3_bind_int64(st->prune, 1, (sqlite3_int64)keep_from);
    int rc = sqlite3_step(st->prune);
    sqlite3_reset(st->prune);
    sqlite3_clear_bindings(st->prune);
    if (rc != SQLITE_DONE) {
        rm__store_fail(s, "deleting versions below %llu: %s", (unsigned long long)keep_from,
                       sqlite3_errmsg(st->db));
        return -EIO;
    }
    if (pruned != NULL)
        *pruned = (uint64_t)sqlite3_changes(st->db);
    return 0;
}

static int sq_oldest(rm_store_t *s, uint64_t *out)
{
    sqlite_store_t *st = (sqlite_store_t *)s;
    *out = 0;
    if (sqlite3_step(st->min_ver) != SQLITE_ROW) {
        rm__store_fail(s, "reading the oldest version: %s", sqlite3_errmsg(st->db));
        sqlite3_reset(st->min_ver);
        return -EIO;
    }
    *out = (uint64_t)sqlite3_column_int64(st->min_ver, 0);
    sqlite3_reset(st->min_ver);
    return 0;
}

static void sq_close(rm_store_t *s)
{
    sqlite_store_t *st = (sqlite_store_t *)s;
    sqlite3_finalize(st->get_one);
    sqlite3_finalize(st->get_latest);
    sqlite3_finalize(st->max_ver);
    sqlite3_finalize(st->insert);
    sqlite3_finalize(st->history);
    sqlite3_finalize(st->prune);
    sqlite3_finalize(st->min_ver);
    sqlite3_finalize(st->ep_put);
    sqlite3_finalize(st->ep_del);
    sqlite3_finalize(st->ep_all);
    sqlite3_close(st->db);
    free(st);
}

static const char *nz(const char *s)
{
    return s != NULL ? s : "";
}

/* Binds pod..owner of e as parameters first..first+6 (draining as an integer). */
static void bind_ep(sqlite3_stmt *q, int first, const rm_store_endpoint_t *e)
{
    sqlite3_bind_text(q, first, nz(e->pod), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, first + 1, nz(e->namespace_), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, first + 2, nz(e->service), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, first + 3, nz(e->version), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, first + 4, nz(e->address), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, first + 5, e->draining ? 1 : 0);
    sqlite3_bind_text(q, first + 6, nz(e->owner), -1, SQLITE_TRANSIENT);
}

static int step_done(sqlite_store_t *st, sqlite3_stmt *q, const char *what)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (rc != SQLITE_DONE) {
        rm__store_fail(&st->base, "%s: %s", what, sqlite3_errmsg(st->db));
        return -EIO;
    }
    return 0;
}

static int sq_ep_put(rm_store_t *s, const rm_store_endpoint_t *e)
{
    sqlite_store_t *st = (sqlite_store_t *)s;
    char key[RM_STORE_EP_KEY_MAX];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rm_store_endpoint_key(e, key, sizeof(key));
    sqlite3_bind_text(st->ep_put, 1, key, -1, SQLITE_TRANSIENT);
    bind_ep(st->ep_put, 2, e);
    sqlite3_bind_int64(st->ep_put, 9,
                       (sqlite3_int64)ts.tv_sec * 1000 + (sqlite3_int64)(ts.tv_nsec / 1000000));
    sqlite3_bind_int64(st->ep_put, 10, (sqlite3_int64)e->held_until_ms);
    return step_done(st, st->ep_put, "storing an endpoint registration");
}

static int sq_ep_remove(rm_store_t *s, const rm_store_endpoint_t *e)
{
    sqlite_store_t *st = (sqlite_store_t *)s;
    char key[RM_STORE_EP_KEY_MAX];
    rm_store_endpoint_key(e, key, sizeof(key));
    sqlite3_bind_text(st->ep_del, 1, key, -1, SQLITE_TRANSIENT);
    bind_ep(st->ep_del, 2, e);
    return step_done(st, st->ep_del, "removing an endpoint registration");
}

static char *col_dup(sqlite3_stmt *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    return strdup(t != NULL ? (const char *)t : "");
}

static int sq_ep_list(rm_store_t *s, rm_store_endpoint_t **out, size_t *n)
{
    sqlite_store_t *st = (sqlite_store_t *)s;
    rm_store_endpoint_t *arr = NULL;
    size_t k = 0, cap = 0;
    int rc;
    *out = NULL;
    *n = 0;
    while ((rc = sqlite3_step(st->ep_all)) == SQLITE_ROW) {
        if (k == cap) {
            size_t nc = cap ? cap * 2 : 16;
            rm_store_endpoint_t *na = realloc(arr, nc * sizeof(*na));
            if (na == NULL)
                goto nomem;
            arr = na;
            cap = nc;
        }
        rm_store_endpoint_t *e = &arr[k];
        memset(e, 0, sizeof(*e));
        e->pod = col_dup(st->ep_all, 0);
        e->namespace_ = col_dup(st->ep_all, 1);
        e->service = col_dup(st->ep_all, 2);
        e->version = col_dup(st->ep_all, 3);
        e->address = col_dup(st->ep_all, 4);
        e->draining = sqlite3_column_int(st->ep_all, 5) != 0;
        e->owner = col_dup(st->ep_all, 6);
        sqlite3_int64 held = sqlite3_column_int64(st->ep_all, 7);
        e->held_until_ms = held > 0 ? (uint64_t)held : 0;
        k++;
        if (!e->pod || !e->namespace_ || !e->service || !e->version || !e->address || !e->owner)
            goto nomem;
    }
    sqlite3_reset(st->ep_all);
    if (rc != SQLITE_DONE) {
        rm__store_fail(s, "listing endpoint registrations: %s", sqlite3_errmsg(st->db));
        rm_store_endpoints_free(arr, k);
        return -EIO;
    }
    if (k == 0) {
        free(arr);
        arr = NULL;
    }
    *out = arr;
    *n = k;
    return 0;
nomem:
    sqlite3_reset(st->ep_all);
    rm_store_endpoints_free(arr, k);
    rm__store_fail(s, "out of memory");
    return -ENOMEM;
}

static int sq_ep_batch(rm_store_t *s, int end)
{
    sqlite_store_t *st = (sqlite_store_t *)s;
    if (!end)
        return exec_simple(st, "BEGIN IMMEDIATE");
    if (exec_simple(st, "COMMIT") == 0)
        return 0;
    char *msg = NULL;
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, &msg); /* keep the COMMIT's reason */
    sqlite3_free(msg);
    return -EIO;
}

static const rm_store_ops_t sqlite_ops = {
    .scheme = "sqlite",
    .get = sq_get,
    .append = sq_append,
    .history = sq_history,
    .close = sq_close,
    .prune = sq_prune,
    .oldest = sq_oldest,
    .ep_put = sq_ep_put,
    .ep_remove = sq_ep_remove,
    .ep_list = sq_ep_list,
    .ep_batch = sq_ep_batch,
};

static int prepare(sqlite_store_t *st, const char *sql, sqlite3_stmt **q)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, q, NULL) != SQLITE_OK) {
        rm__store_fail(&st->base, "preparing \"%s\": %s", sql, sqlite3_errmsg(st->db));
        return -EIO;
    }
    return 0;
}

static int check_schema(sqlite_store_t *st)
{
    sqlite3_stmt *q = NULL;
    int rc = prepare(st, "SELECT value FROM remora_meta WHERE key = 'schema'", &q);
    if (rc < 0)
        return rc;
    rc = -EIO;
    if (sqlite3_step(q) == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(q, 0);
        if (v != NULL && strcmp((const char *)v, SCHEMA_VERSION) == 0)
            rc = 0;
        else
            rm__store_fail(&st->base, "store schema \"%s\" is not the one this build knows (%s)",
                           v != NULL ? (const char *)v : "", SCHEMA_VERSION);
    } else {
        rm__store_fail(&st->base, "store has no schema marker: %s", sqlite3_errmsg(st->db));
    }
    sqlite3_finalize(q);
    return rc;
}

/* A database written before registrations carried held_until_ms gains the column (0: the
 * sidecar was seen in that life). */
static int add_held_until_column(sqlite_store_t *st)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(st->db, "SELECT held_until_ms FROM endpoint_registrations LIMIT 0", -1,
                           &q, NULL) == SQLITE_OK) {
        sqlite3_finalize(q);
        return 0;
    }
    return exec_simple(st, "ALTER TABLE endpoint_registrations "
                           "ADD COLUMN held_until_ms INTEGER NOT NULL DEFAULT 0");
}

int rm__store_sqlite_open(const char *path, rm_store_t **out, char *err, size_t errlen)
{
    sqlite_store_t *st = calloc(1, sizeof(*st));
    int rc;
    *out = NULL;
    if (st == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    st->base.ops = &sqlite_ops;
    rc = make_parent_dirs(path);
    if (rc < 0) {
        rm__store_fail(&st->base, "cannot create the directory of %s: %s", path, strerror(-rc));
        goto fail;
    }
    rc = -EIO;
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rm__store_fail(&st->base, "cannot open %s: %s", path,
                       st->db != NULL ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 5000);
    /* journal_mode answers with a row, so it goes through a statement, not exec's NULL callback
     * (which would work too, but we want to check that WAL was really granted). */
    {
        sqlite3_stmt *q = NULL;
        if (prepare(st, "PRAGMA journal_mode=WAL", &q) < 0)
            goto fail;
        int ok = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0) != NULL &&
                 strcmp((const char *)sqlite3_column_text(q, 0), "wal") == 0;
        if (!ok)
            rm__store_fail(&st->base, "cannot put %s in WAL mode: %s", path,
                           sqlite3_errmsg(st->db));
        sqlite3_finalize(q);
        if (!ok)
            goto fail;
    }
    if (exec_simple(st, "PRAGMA synchronous=FULL") < 0 || exec_simple(st, schema_sql) < 0 ||
        check_schema(st) < 0 || add_held_until_column(st) < 0)
        goto fail;
    if (prepare(
            st,
            "SELECT version, created_ms, summary, config FROM config_versions WHERE version = ?",
            &st->get_one) < 0 ||
        prepare(st,
                "SELECT version, created_ms, summary, config FROM config_versions "
                "ORDER BY version DESC LIMIT 1",
                &st->get_latest) < 0 ||
        prepare(st, "SELECT COALESCE(MAX(version), 0) FROM config_versions", &st->max_ver) < 0 ||
        prepare(st,
                "INSERT INTO config_versions(version, created_ms, summary, config) "
                "VALUES(?, ?, ?, ?)",
                &st->insert) < 0 ||
        prepare(st,
                "SELECT version, created_ms, summary FROM config_versions "
                "ORDER BY version DESC LIMIT ?",
                &st->history) < 0 ||
        prepare(st, "DELETE FROM config_versions WHERE version < ?", &st->prune) < 0 ||
        prepare(st, "SELECT COALESCE(MIN(version), 0) FROM config_versions", &st->min_ver) < 0 ||
        prepare(st,
                "INSERT OR REPLACE INTO endpoint_registrations(key, pod, namespace, service, "
                "version, address, draining, owner, updated_ms, held_until_ms) "
                "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &st->ep_put) < 0 ||
        prepare(st,
                "DELETE FROM endpoint_registrations WHERE key = ? AND pod = ? AND namespace = ? "
                "AND service = ? AND version = ? AND address = ? AND draining = ? AND owner = ?",
                &st->ep_del) < 0 ||
        prepare(st,
                "SELECT pod, namespace, service, version, address, draining, owner, "
                "held_until_ms FROM endpoint_registrations ORDER BY key",
                &st->ep_all) < 0)
        goto fail;
    *out = &st->base;
    return 0;
fail:
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", st->base.error);
    sq_close(&st->base);
    return rc;
}
