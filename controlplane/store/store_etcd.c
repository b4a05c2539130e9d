/* controlplane/store/store_etcd.c — the shared store: the same append-only log of versions kept
 * in etcd (v3 gRPC API, spoken with gRPC core and the hand-written protos of //proto/etcd), so
 * several remora-control replicas serve one mesh from one etcd.
 *
 * Key layout under the prefix (default "/remora/v1/", or the path of etcd://HOST:PORT/PATH):
 *   <prefix>versions/<20-digit version>  the whole record: header, summary, packed ConfigSet
 *   <prefix>history/<20-digit version>   the same header and summary without the config, so
 *                                        `meshctl history` never downloads every config
 *   <prefix>endpoints/<ns>/<pod>         an endpoint registration (see "endpoint registrations"
 *                                        below), attached to its replica's lease
 * Zero-padded decimal keys sort like the numbers, so "the latest" is one Range sorted by key,
 * descending, limit 1, and pruning the versions below N is one Txn of two DeleteRanges
 * ([versions/, versions/<N>) and the same of history/). etcd frees the space of deleted keys
 * only when its history is compacted (--auto-compaction-retention). A value is RECORD_MAGIC,
 * created_ms (8 bytes, big-endian), the summary's length (4 bytes, big-endian), the summary, then
 * the config bytes (the rest).
 *
 * Append is one Txn: "versions/<expect+1> does not exist" (and, unless the store is empty,
 * "versions/<expect> exists") then put both keys. Versions only ever grow by one, so the first
 * compare is exactly "the latest is still expect"; the Txn makes check and write atomic across
 * replicas. A replica that loses the race gets -EAGAIN.
 *
 * Calls are blocking: each unary call runs on a private pluck completion queue with a deadline
 * of RM_ETCD_CALL_MS, and the channel fails fast (no wait-for-ready) while etcd is unreachable,
 * so an apply against a stopped etcd answers within a bounded time with "etcd HOST:PORT
 * unavailable: ...". Reconnect backoff is capped at 1 s so a restarted etcd is used again soon.
 *
 * Watching. A watcher thread keeps one Watch stream on <prefix>endpoints/ .. <prefix>history/
 * (registrations and version announcements; two counters, one per kind) open on its own
 * completion queue (gRPC channels may be shared between threads; queues and calls are not).
 * Each event, and each time the watch is (re)created, bumps an atomic counter; the owner thread
 * polls it through the `changed` op (see store.h for why polling) and re-reads the latest version
 * when it moved. Re-creating the watch counts as a change because versions appended while the
 * stream was down produced events nobody received: a fresh read after the watch exists cannot
 * miss anything (anything older is in the read, anything newer arrives as an event). The
 * watcher logs "unavailable" once when the stream breaks and "reachable again" once when it is
 * re-created, retrying every RM_ETCD_RETRY_MS in between.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "common/log/log.h"
#include "controlplane/grpcutil/unary.h"
#include "controlplane/store/store-int.h"
#include "etcdpb/rpc.pb-c.h"

#define RM_ETCD_CALL_MS     3000 /* longest one unary call may take */
#define RM_ETCD_RETRY_MS    250  /* pause between two attempts to re-create the watch */
#define RM_ETCD_TICK_MS     50   /* how often the watcher looks at the stop flag */
#define RM_ETCD_OPEN_MS     5000 /* how long opening the store waits for etcd to answer */
#define RM_ETCD_DEFAULT_PFX "/remora/v1/"
#define RECORD_MAGIC        "RMV1"
#define RECORD_HEADER       (4 + 8 + 4)
#define KEY_MAX             512

typedef struct etcd_store {
    rm_store_t base;
    char target[256];          /* "HOST:PORT", for messages */
    char prefix[KEY_MAX / 2];  /* ends with '/' */
    grpc_channel *ch;          /* owned; shared with the watcher thread */
    grpc_completion_queue *cq; /* owned: pluck queue of the owner thread's unary calls */

    pthread_t watcher;
    int watcher_started;
    atomic_int stop;             /* owner -> watcher: leave */
    atomic_uint_fast64_t gen;    /* watcher -> owner: bumped per event and per watch (re)creation */
    uint_fast64_t seen_gen;      /* owner thread only: gen at the last `changed` that said yes */
    atomic_uint_fast64_t ep_gen; /* watcher -> owner: bumped per registration event */
    uint_fast64_t seen_ep_gen;   /* owner thread only */
    int64_t lease;               /* owner thread only: this replica's lease; 0: none yet */
    int batching;                /* owner thread only: inside ep_batch: puts are collected */
    char **batch;                /* owner thread only: owned key, value, key, value, ... */
    size_t n_batch, cap_batch;   /* strings in batch */
    uint64_t keepalive_at;       /* owner thread only: monotonic ms of the next keepalive */
} etcd_store_t;

/* ---- records and keys (pure; the fuzz driver calls these through rm__store_etcd_decode) ---- */

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The value of a version key: header, summary, and config when `config` is not NULL. */
static uint8_t *record_encode(uint64_t created_ms, const char *summary, const uint8_t *config,
                              size_t len, size_t *out_len)
{
    size_t slen = strlen(summary);
    size_t n = RECORD_HEADER + slen + (config != NULL ? len : 0);
    uint8_t *v = malloc(n ? n : 1);
    if (v == NULL)
        return NULL;
    /* A binary record: the magic and the summary go in without their NULs. */
    memcpy(v, RECORD_MAGIC, 4); // NOLINT(bugprone-not-null-terminated-result)
    put_be(v + 4, created_ms, 8);
    put_be(v + 12, slen, 4);
    memcpy(v + RECORD_HEADER, summary, slen); // NOLINT(bugprone-not-null-terminated-result)
    if (config != NULL && len > 0)
        memcpy(v + RECORD_HEADER + slen, config, len);
    *out_len = n;
    return v;
}

/* The version number at the end of a key ("<prefix>versions/00000000000000000042"), or 0 when
 * the key is not of that shape. */
static uint64_t key_version(const uint8_t *key, size_t len)
{
    if (len < 20)
        return 0;
    uint64_t v = 0;
    for (size_t i = len - 20; i < len; i++) {
        if (key[i] < '0' || key[i] > '9')
            return 0;
        uint64_t d = (uint64_t)(key[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    return v;
}

int rm__store_etcd_decode(const uint8_t *key, size_t key_len, const uint8_t *val, size_t len,
                          int with_cfg, rm_store_record_t *out)
{
    memset(out, 0, sizeof(*out));
    out->version = key_version(key, key_len);
    if (out->version == 0)
        return -EINVAL;
    if (len < RECORD_HEADER || memcmp(val, RECORD_MAGIC, 4) != 0)
        return -EINVAL;
    uint64_t slen = get_be(val + 12, 4);
    if (slen > len - RECORD_HEADER)
        return -EINVAL;
    out->created_ms = get_be(val + 4, 8);
    out->summary = malloc(slen + 1);
    if (out->summary == NULL)
        return -ENOMEM;
    memcpy(out->summary, val + RECORD_HEADER, slen);
    out->summary[slen] = '\0';
    if (with_cfg) {
        size_t clen = len - RECORD_HEADER - (size_t)slen;
        /* malloc(1) for an empty config keeps "config != NULL" meaning "was read" (as SQLite). */
        out->config = malloc(clen ? clen : 1);
        if (out->config == NULL) {
            rm_store_record_free(out);
            return -ENOMEM;
        }
        if (clen)
            memcpy(out->config, val + RECORD_HEADER + slen, clen);
        out->config_len = clen;
    }
    return 0;
}

static void make_key(const etcd_store_t *st, const char *kind, uint64_t version, char *out,
                     size_t n)
{
    snprintf(out, n, "%s%s/%020" PRIu64, st->prefix, kind, version);
}

/* [from, to) of every key under <prefix><kind>/: '/' + 1 is '0'. */
static void make_range(const etcd_store_t *st, const char *kind, char *from, char *to, size_t n)
{
    snprintf(from, n, "%s%s/", st->prefix, kind);
    snprintf(to, n, "%s%s0", st->prefix, kind);
}

static ProtobufCBinaryData bin(const char *s)
{
    ProtobufCBinaryData b = {strlen(s), (uint8_t *)s};
    return b;
}

/* ---- one unary call (controlplane/grpcutil), its outcome as a store error ---- */

static gpr_timespec deadline_in(int64_t ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* A status's details as a NUL-terminated string, cut to fit (the watcher's log line). */
static void status_text(grpc_slice details, char *out, size_t n)
{
    size_t len = GRPC_SLICE_LENGTH(details);
    if (len >= n)
        len = n - 1;
    memcpy(out, GRPC_SLICE_START_PTR(details), len);
    out[len] = '\0';
}

/*
 * Sends `req` to `method` ("/etcdserverpb.KV/Range") with a deadline of timeout_ms and fills
 * *res: the reply unpacked with `desc`, or its raw bytes when desc is NULL (for a reply that a
 * parser shared with the fuzz driver unpacks). Also right for a bidirectional stream used one
 * message each way (LeaseKeepAlive: etcd answers each request and ends the stream once ours is
 * half-closed), since the one batch sends, half-closes and reads one reply. Returns 0;
 * -EHOSTUNREACH when etcd cannot be reached or did not answer in time; -EIO for any other
 * failure; each with the reason in store->error. The caller frees *res (rm_unary_result_free)
 * either way. Owner thread, st->cq.
 */
static int call(etcd_store_t *st, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *desc, uint64_t timeout_ms, rm_unary_result_t *res)
{
    switch (rm_unary_call(st->ch, st->cq, method, req, desc, timeout_ms, res)) {
    case 0:
        return 0;
    case RM_UNARY_ESTATUS:
        if (res->status == GRPC_STATUS_UNAVAILABLE ||
            res->status == GRPC_STATUS_DEADLINE_EXCEEDED) {
            rm__store_fail(&st->base, "etcd %s unavailable: %.200s", st->target,
                           *res->details ? res->details : "no answer in time");
            return -EHOSTUNREACH;
        }
        rm__store_fail(&st->base, "etcd %s: %s failed: %.200s (gRPC status %d)", st->target, method,
                       *res->details ? res->details : "no details", (int)res->status);
        return -EIO;
    default: /* could not start; no reply, or one that does not unpack */
        rm__store_fail(&st->base, "etcd %s: %s: %s", st->target, method, res->details);
        return -EIO;
    }
}

/* call() with the reply unpacked into *resp (caller frees with protobuf_c_message_free_unpacked;
 * NULL on failure) and the default deadline, RM_ETCD_CALL_MS. */
static int unary(etcd_store_t *st, const char *method, const ProtobufCMessage *req,
                 const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp)
{
    rm_unary_result_t res;
    int rc = call(st, method, req, desc, RM_ETCD_CALL_MS, &res);
    *resp = NULL;
    if (rc == 0 && res.reply == NULL) {
        rm__store_fail(&st->base, "etcd %s: %s: an answer without a reply message", st->target,
                       method);
        rc = -EIO;
    }
    if (rc == 0) {
        *resp = res.reply;
        res.reply = NULL; /* the caller's now: never NULL on success */
    }
    rm_unary_result_free(&res);
    return rc;
}

/* Range [key, range_end) (range_end NULL: the one key), newest key first when `desc`. */
static int range(etcd_store_t *st, const char *key, const char *range_end, int64_t limit, int desc,
                 Etcdserverpb__RangeResponse **out)
{
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key = bin(key);
    if (range_end != NULL)
        req.range_end = bin(range_end);
    req.limit = limit;
    if (desc) {
        req.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
        req.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY;
    }
    return unary(st, "/etcdserverpb.KV/Range", &req.base, &etcdserverpb__range_response__descriptor,
                 (ProtobufCMessage **)out);
}

/* ---- the ops ---- */

static int et_get(rm_store_t *s, uint64_t version, rm_store_record_t *out)
{
    etcd_store_t *st = (etcd_store_t *)s;
    Etcdserverpb__RangeResponse *resp = NULL;
    char from[KEY_MAX], to[KEY_MAX];
    int rc;
    memset(out, 0, sizeof(*out));
    if (version == 0) {
        make_range(st, "versions", from, to, sizeof(from));
        rc = range(st, from, to, 1, 1, &resp);
    } else {
        make_key(st, "versions", version, from, sizeof(from));
        rc = range(st, from, NULL, 1, 0, &resp);
    }
    if (rc < 0)
        return rc;
    if (resp->n_kvs == 0) {
        if (version == 0)
            rm__store_fail(s, "the store holds no config yet");
        else
            rm__store_fail(s, "no config version %" PRIu64, version);
        rc = -ENOENT;
        goto out;
    }
    const Mvccpb__KeyValue *kv = resp->kvs[0];
    rc = rm__store_etcd_decode(kv->key.data, kv->key.len, kv->value.data, kv->value.len, 1, out);
    if (rc < 0)
        rm__store_fail(s, "etcd %s: key %.*s does not hold a remora config record", st->target,
                       (int)(kv->key.len < 200 ? kv->key.len : 200), (const char *)kv->key.data);
out:
    etcdserverpb__range_response__free_unpacked(resp, NULL);
    return rc;
}

static int et_append(rm_store_t *s, uint64_t expect_version, const uint8_t *config, size_t len,
                     const char *summary, uint64_t created_ms, uint64_t *out_version)
{
    etcd_store_t *st = (etcd_store_t *)s;
    char next_key[KEY_MAX], cur_key[KEY_MAX], hist_key[KEY_MAX];
    uint64_t v = expect_version + 1;
    int rc = -ENOMEM;
    char *sum = rm__store_summary_dup(summary);
    size_t rec_len = 0, hist_len = 0;
    uint8_t *rec = NULL, *hist = NULL;
    if (sum == NULL)
        goto nomem;
    rec = record_encode(created_ms, sum, config, len, &rec_len);
    hist = record_encode(created_ms, sum, NULL, 0, &hist_len);
    if (rec == NULL || hist == NULL)
        goto nomem;
    make_key(st, "versions", v, next_key, sizeof(next_key));
    make_key(st, "versions", expect_version, cur_key, sizeof(cur_key));
    make_key(st, "history", v, hist_key, sizeof(hist_key));

    /* A key that never existed has create_revision 0. */
    Etcdserverpb__Compare cmp[2] = {ETCDSERVERPB__COMPARE__INIT, ETCDSERVERPB__COMPARE__INIT};
    Etcdserverpb__Compare *cmps[2] = {&cmp[0], &cmp[1]};
    cmp[0].result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
    cmp[0].target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
    cmp[0].key = bin(next_key);
    cmp[0].target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
    cmp[0].create_revision = 0;
    cmp[1].result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__GREATER;
    cmp[1].target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
    cmp[1].key = bin(cur_key);
    cmp[1].target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
    cmp[1].create_revision = 0;

    Etcdserverpb__PutRequest put[2] = {ETCDSERVERPB__PUT_REQUEST__INIT,
                                       ETCDSERVERPB__PUT_REQUEST__INIT};
    put[0].key = bin(next_key);
    put[0].value.data = rec;
    put[0].value.len = rec_len;
    put[1].key = bin(hist_key);
    put[1].value.data = hist;
    put[1].value.len = hist_len;
    Etcdserverpb__RequestOp op[2] = {ETCDSERVERPB__REQUEST_OP__INIT,
                                     ETCDSERVERPB__REQUEST_OP__INIT};
    Etcdserverpb__RequestOp *ops[2] = {&op[0], &op[1]};
    for (int i = 0; i < 2; i++) {
        op[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
        op[i].request_put = &put[i];
    }

    /* When the compare fails, the same round trip reads the latest key, for the message. */
    char from[KEY_MAX], to[KEY_MAX];
    make_range(st, "versions", from, to, sizeof(from));
    Etcdserverpb__RangeRequest latest = ETCDSERVERPB__RANGE_REQUEST__INIT;
    latest.key = bin(from);
    latest.range_end = bin(to);
    latest.limit = 1;
    latest.keys_only = 1;
    latest.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
    latest.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY;
    Etcdserverpb__RequestOp fail_op = ETCDSERVERPB__REQUEST_OP__INIT;
    Etcdserverpb__RequestOp *fail_ops[1] = {&fail_op};
    fail_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
    fail_op.request_range = &latest;

    Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
    txn.compare = cmps;
    txn.n_compare = expect_version == 0 ? 1 : 2;
    txn.success = ops;
    txn.n_success = 2;
    txn.failure = fail_ops;
    txn.n_failure = 1;
    Etcdserverpb__TxnResponse *resp = NULL;
    rc = unary(st, "/etcdserverpb.KV/Txn", &txn.base, &etcdserverpb__txn_response__descriptor,
               (ProtobufCMessage **)&resp);
    if (rc < 0 || resp == NULL) /* unary() gives a reply on success; the check is for the reader */
        goto out;
    if (!resp->succeeded) {
        uint64_t now = 0;
        if (resp->n_responses == 1 && resp->responses[0]->response_range != NULL &&
            resp->responses[0]->response_range->n_kvs == 1) {
            const Mvccpb__KeyValue *kv = resp->responses[0]->response_range->kvs[0];
            now = key_version(kv->key.data, kv->key.len);
        }
        rm__store_fail(s,
                       "another replica wrote to etcd %s first: the latest version is %" PRIu64
                       ", not %" PRIu64,
                       st->target, now, expect_version);
        rc = -EAGAIN;
    } else {
        *out_version = v;
        rc = 0;
    }
    etcdserverpb__txn_response__free_unpacked(resp, NULL);
    goto out;
nomem:
    rm__store_fail(s, "out of memory");
out:
    free(sum);
    free(rec);
    free(hist);
    return rc;
}

static int et_history(rm_store_t *s, uint32_t limit, rm_store_record_t **out, size_t *n)
{
    etcd_store_t *st = (etcd_store_t *)s;
    Etcdserverpb__RangeResponse *resp = NULL;
    char from[KEY_MAX], to[KEY_MAX];
    *out = NULL;
    *n = 0;
    if (limit == 0) /* etcd reads limit 0 as "no limit" */
        return 0;
    make_range(st, "history", from, to, sizeof(from));
    int rc = range(st, from, to, limit, 1, &resp);
    if (rc < 0 || resp == NULL) /* range() gives a reply on success */
        return rc;
    if (resp->n_kvs == 0)
        goto out;
    rm_store_record_t *recs = calloc(resp->n_kvs, sizeof(*recs));
    if (recs == NULL) {
        rm__store_fail(s, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < resp->n_kvs && k < limit; i++) {
        const Mvccpb__KeyValue *kv = resp->kvs[i];
        /* A foreign or damaged key is skipped, not fatal: the rest of the history still reads. */
        int drc = rm__store_etcd_decode(kv->key.data, kv->key.len, kv->value.data, kv->value.len, 0,
                                        &recs[k]);
        if (drc == -ENOMEM) {
            rm_store_records_free(recs, k);
            rm__store_fail(s, "out of memory");
            rc = -ENOMEM;
            goto out;
        }
        if (drc == 0)
            k++;
    }
    if (k == 0) {
        free(recs);
        recs = NULL;
    }
    *out = recs;
    *n = k;
out:
    etcdserverpb__range_response__free_unpacked(resp, NULL);
    return rc;
}

static int et_prune(rm_store_t *s, uint64_t keep_from, uint64_t *pruned)
{
    etcd_store_t *st = (etcd_store_t *)s;
    char from[2][KEY_MAX], to[2][KEY_MAX], unused[KEY_MAX];
    static const char *const kinds[2] = {"versions", "history"};
    Etcdserverpb__DeleteRangeRequest del[2] = {ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT,
                                               ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT};
    Etcdserverpb__RequestOp op[2] = {ETCDSERVERPB__REQUEST_OP__INIT,
                                     ETCDSERVERPB__REQUEST_OP__INIT};
    Etcdserverpb__RequestOp *ops[2] = {&op[0], &op[1]};
    for (int i = 0; i < 2; i++) {
        make_range(st, kinds[i], from[i], unused, KEY_MAX);
        make_key(st, kinds[i], keep_from, to[i], KEY_MAX);
        del[i].key = bin(from[i]);
        del[i].range_end = bin(to[i]);
        op[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
        op[i].request_delete_range = &del[i];
    }
    Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
    txn.success = ops;
    txn.n_success = 2;
    Etcdserverpb__TxnResponse *resp = NULL;
    int rc = unary(st, "/etcdserverpb.KV/Txn", &txn.base, &etcdserverpb__txn_response__descriptor,
                   (ProtobufCMessage **)&resp);
    if (rc < 0 || resp == NULL) /* unary() gives a reply on success */
        return rc;
    if (pruned != NULL && resp->n_responses > 0 && resp->responses[0]->response_delete_range)
        *pruned = (uint64_t)resp->responses[0]->response_delete_range->deleted;
    etcdserverpb__txn_response__free_unpacked(resp, NULL);
    return 0;
}

static int et_oldest(rm_store_t *s, uint64_t *out)
{
    etcd_store_t *st = (etcd_store_t *)s;
    Etcdserverpb__RangeResponse *resp = NULL;
    char from[KEY_MAX], to[KEY_MAX];
    *out = 0;
    make_range(st, "history", from, to, sizeof(from));
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key = bin(from);
    req.range_end = bin(to);
    req.limit = 1;
    req.keys_only = 1;
    req.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
    req.sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY;
    int rc = unary(st, "/etcdserverpb.KV/Range", &req.base,
                   &etcdserverpb__range_response__descriptor, (ProtobufCMessage **)&resp);
    if (rc < 0 || resp == NULL)
        return rc;
    if (resp->n_kvs > 0)
        *out = key_version(resp->kvs[0]->key.data, resp->kvs[0]->key.len);
    etcdserverpb__range_response__free_unpacked(resp, NULL);
    return 0;
}

static int et_changed(rm_store_t *s)
{
    etcd_store_t *st = (etcd_store_t *)s;
    /* Acquire pairs with the watcher's release: nothing else is published through gen, so this
     * only makes the read current, but costs nothing on x86. */
    uint_fast64_t g = atomic_load_explicit(&st->gen, memory_order_acquire);
    if (g == st->seen_gen)
        return 0;
    st->seen_gen = g;
    return 1;
}

/* ---- the watcher thread ---- */

typedef enum wtag {
    WT_START = 1,
    WT_RECV = 2,
    WT_STATUS = 3,
} wtag_t;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Handles one WatchResponse. Returns 0 to keep reading, -1 to end the stream (etcd cancelled the
 * watch, e.g. after a compaction: the caller watches again from now and re-reads). */
int rm__store_etcd_watch_parse(const uint8_t *data, size_t len, rm__etcd_watch_t *out)
{
    memset(out, 0, sizeof(*out));
    Etcdserverpb__WatchResponse *w = etcdserverpb__watch_response__unpack(NULL, len, data);
    if (w == NULL)
        return -EINVAL;
    out->created = w->created;
    out->canceled = w->canceled;
    if (w->cancel_reason != NULL)
        snprintf(out->reason, sizeof(out->reason), "%s", w->cancel_reason);
    for (size_t i = 0; i < w->n_events; i++) {
        const Mvccpb__Event *e = w->events[i];
        if (e->kv == NULL)
            continue;
        /* The watch covers <prefix>endpoints/ .. <prefix>history/: a history key is a version,
         * anything else a registration (put, replaced, deleted or expired with its lease). */
        const uint8_t *k = e->kv->key.data;
        size_t kl = e->kv->key.len;
        uint64_t v = key_version(k, kl);
        if (v > 0 && kl >= 28 && memcmp(k + kl - 28, "history/", 8) == 0) {
            if (e->type == MVCCPB__EVENT__EVENT_TYPE__PUT && v > out->newest)
                out->newest = v;
        } else {
            out->endpoints++;
        }
    }
    etcdserverpb__watch_response__free_unpacked(w, NULL);
    return 0;
}

/* Handles one WatchResponse. Returns 0 to keep reading, -1 to end the stream (etcd cancelled the
 * watch, e.g. after a compaction, or sent garbage: the caller watches again from now, which also
 * makes the owner re-read). */
static int watch_message(etcd_store_t *st, const uint8_t *data, size_t len, int *up)
{
    rm__etcd_watch_t w;
    if (rm__store_etcd_watch_parse(data, len, &w) < 0) {
        rm_log_warn("etcd %s: malformed watch response (%zu bytes); watching again", st->target,
                    len);
        return -1;
    }
    if (w.created || w.endpoints > 0)
        atomic_fetch_add_explicit(&st->ep_gen, 1, memory_order_release);
    if (w.created) {
        if (*up == 0)
            rm_log_info("etcd %s reachable again: watching %shistory/; changes apply again",
                        st->target, st->prefix);
        else
            rm_log_debug("etcd %s: watching %shistory/", st->target, st->prefix);
        *up = 1;
        atomic_fetch_add_explicit(&st->gen, 1, memory_order_release);
    }
    if (w.newest > 0) {
        rm_log_debug("etcd %s: version %" PRIu64 " announced", st->target, w.newest);
        atomic_fetch_add_explicit(&st->gen, 1, memory_order_release);
    }
    if (w.canceled) {
        rm_log_warn("etcd %s cancelled the watch (%s); watching again", st->target,
                    *w.reason ? w.reason : "no reason given");
        return -1;
    }
    return 0;
}

/* One Watch stream from creation to its end (error, etcd gone, cancel, or stop). */
static void watch_once(etcd_store_t *st, grpc_completion_queue *cq, int *up)
{
    /* One watch over [<prefix>endpoints/, <prefix>history0): registrations and version
     * announcements (nothing of ours sorts between them), never the big versions/ values. */
    char from[KEY_MAX], to[KEY_MAX], unused[KEY_MAX];
    make_range(st, "endpoints", from, unused, sizeof(from));
    make_range(st, "history", unused, to, sizeof(to));
    Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    cr.key = bin(from);
    cr.range_end = bin(to);
    Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
    wr.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    wr.create_request = &cr;
    size_t len = etcdserverpb__watch_request__get_packed_size(&wr);
    uint8_t buf[2 * KEY_MAX + 64];
    etcdserverpb__watch_request__pack(&wr, buf);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);

    grpc_call *call =
        grpc_channel_create_call(st->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                 grpc_slice_from_static_string("/etcdserverpb.Watch/Watch"), NULL,
                                 gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_metadata_array md_in, trailers;
    grpc_metadata_array_init(&md_in);
    grpc_metadata_array_init(&trailers);
    grpc_byte_buffer *recv = NULL;
    grpc_status_code status = GRPC_STATUS_OK;
    grpc_slice details = grpc_empty_slice();
    int outstanding = 0, cancelled = 0, failed = 0;

    grpc_op ops[3];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[2].data.recv_initial_metadata.recv_initial_metadata = &md_in;
    if (grpc_call_start_batch(call, ops, 3, (void *)(intptr_t)WT_START, NULL) == GRPC_CALL_OK)
        outstanding++;
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &trailers;
    ops[0].data.recv_status_on_client.status = &status;
    ops[0].data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(call, ops, 1, (void *)(intptr_t)WT_STATUS, NULL) == GRPC_CALL_OK)
        outstanding++;
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_MESSAGE;
    ops[0].data.recv_message.recv_message = &recv;
    if (grpc_call_start_batch(call, ops, 1, (void *)(intptr_t)WT_RECV, NULL) == GRPC_CALL_OK)
        outstanding++;

    while (outstanding > 0) {
        grpc_event ev = grpc_completion_queue_next(cq, deadline_in(RM_ETCD_TICK_MS), NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            if (atomic_load_explicit(&st->stop, memory_order_relaxed) && !cancelled) {
                grpc_call_cancel(call, NULL);
                cancelled = 1;
            }
            continue;
        }
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        outstanding--;
        wtag_t t = (wtag_t)(intptr_t)ev.tag;
        if (t != WT_RECV)
            continue;
        if (recv == NULL)
            continue; /* the stream ended; the status batch says why */
        grpc_byte_buffer_reader r;
        int keep = 0;
        if (grpc_byte_buffer_reader_init(&r, recv)) {
            grpc_slice all = grpc_byte_buffer_reader_readall(&r);
            grpc_byte_buffer_reader_destroy(&r);
            keep = watch_message(st, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), up) == 0;
            grpc_slice_unref(all);
        }
        grpc_byte_buffer_destroy(recv);
        recv = NULL;
        if (!keep && !cancelled) {
            grpc_call_cancel(call, NULL);
            cancelled = 1;
            failed = 1;
        }
        if (cancelled)
            continue;
        memset(ops, 0, sizeof(ops));
        ops[0].op = GRPC_OP_RECV_MESSAGE;
        ops[0].data.recv_message.recv_message = &recv;
        if (grpc_call_start_batch(call, ops, 1, (void *)(intptr_t)WT_RECV, NULL) == GRPC_CALL_OK)
            outstanding++;
    }
    if (!atomic_load_explicit(&st->stop, memory_order_relaxed) && !failed && *up != 0) {
        char why[200];
        status_text(details, why, sizeof(why));
        rm_log_warn("etcd %s unavailable: %s (gRPC status %d); serving the last config to this "
                    "replica's sidecars, changes fail until etcd returns",
                    st->target, *why ? why : "watch ended", (int)status);
        *up = 0;
    }
    if (recv != NULL)
        grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_metadata_array_destroy(&md_in);
    grpc_metadata_array_destroy(&trailers);
    grpc_slice_unref(details);
    grpc_call_unref(call);
}

static void *watcher_main(void *arg)
{
    etcd_store_t *st = arg;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    int up = -1; /* -1: never connected yet, 0: down (logged), 1: watching */
    while (!atomic_load_explicit(&st->stop, memory_order_relaxed)) {
        watch_once(st, cq, &up);
        for (int waited = 0;
             waited < RM_ETCD_RETRY_MS && !atomic_load_explicit(&st->stop, memory_order_relaxed);
             waited += RM_ETCD_TICK_MS)
            sleep_ms(RM_ETCD_TICK_MS);
    }
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    return NULL;
}

static void batch_clear(etcd_store_t *st);

static void et_close(rm_store_t *s)
{
    etcd_store_t *st = (etcd_store_t *)s;
    batch_clear(st);
    if (st->watcher_started) {
        atomic_store(&st->stop, 1);
        pthread_join(st->watcher, NULL);
    }
    if (st->ch != NULL)
        grpc_channel_destroy(st->ch);
    if (st->cq != NULL) {
        grpc_completion_queue_shutdown(st->cq);
        while (grpc_completion_queue_pluck(st->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                   .type != GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(st->cq);
    }
    free(st);
    grpc_shutdown();
}

/* ---- endpoint registrations ----
 *
 * Keys: <prefix>endpoints/<ns>/<pod> (or <ns>/@<address>), values rm__store_ep_encode's text,
 * each attached to this process's lease. Why a lease rather than a TTL refreshed by Put: etcd v3
 * has no per-key TTL, and one lease per replica costs one keepalive per replica every few
 * seconds however many sidecars it serves, where refreshing by Put would write every
 * registration every few seconds. When the replica dies, etcd deletes all its keys when the
 * lease runs out (RM_STORE_LEASE_TTL_S); no other replica has to decide that it is dead.
 *
 * Every message is a //proto/etcd type packed and unpacked by protobuf-c, like the rest of this
 * file; lease replies arrive as bytes and are read by rm__store_etcd_lease_parse, which the fuzz
 * driver calls too. */

/* How long a lease call may take: short, because it runs on the server's loop. */
#define RM_ETCD_LEASE_CALL_MS 1000

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int rm__store_etcd_lease_parse(const uint8_t *data, size_t len, int keepalive, int64_t *id,
                               int64_t *ttl)
{
    int rc = 0;
    *id = *ttl = 0;
    if (keepalive) {
        Etcdserverpb__LeaseKeepAliveResponse *r =
            etcdserverpb__lease_keep_alive_response__unpack(NULL, len, data);
        if (r == NULL)
            return -EINVAL;
        *id = r->id;
        *ttl = r->ttl;
        etcdserverpb__lease_keep_alive_response__free_unpacked(r, NULL);
    } else {
        Etcdserverpb__LeaseGrantResponse *r =
            etcdserverpb__lease_grant_response__unpack(NULL, len, data);
        if (r == NULL)
            return -EINVAL;
        *id = r->id;
        *ttl = r->ttl;
        if (r->error != NULL && *r->error != '\0')
            rc = -ENOENT; /* etcd says why it granted none */
        etcdserverpb__lease_grant_response__free_unpacked(r, NULL);
    }
    /* etcd answers a keepalive for a lease it no longer has with TTL 0 (or -1). */
    if (*id == 0 || *ttl <= 0)
        rc = -ENOENT;
    return rc;
}

/* LeaseGrant {TTL} -> {ID, TTL}: this replica's lease, kept alive from now on. */
static int lease_grant(etcd_store_t *st)
{
    Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    req.ttl = RM_STORE_LEASE_TTL_S;
    rm_unary_result_t res;
    int64_t id = 0, ttl = 0;
    int rc =
        call(st, "/etcdserverpb.Lease/LeaseGrant", &req.base, NULL, RM_ETCD_LEASE_CALL_MS, &res);
    if (rc == 0 && rm__store_etcd_lease_parse(res.bytes, res.len, 0, &id, &ttl) < 0) {
        rm__store_fail(&st->base, "etcd %s: LeaseGrant gave no lease", st->target);
        rc = -EIO;
    }
    rm_unary_result_free(&res);
    if (rc < 0)
        return rc;
    st->lease = id;
    st->keepalive_at = mono_ms() + (uint64_t)ttl * 1000 / 3;
    rm_log_debug("etcd %s: lease %" PRIx64 " (%" PRId64 " s) for this replica's registrations",
                 st->target, (uint64_t)id, ttl);
    return 0;
}

static int et_ep_keepalive(rm_store_t *s, uint64_t now_ms)
{
    etcd_store_t *st = (etcd_store_t *)s;
    (void)now_ms; /* the lease's own clock: mono_ms(), as lease_grant set it */
    uint64_t now = mono_ms();
    if (st->lease == 0 || now < st->keepalive_at)
        return 0;
    Etcdserverpb__LeaseKeepAliveRequest req = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
    req.id = st->lease;
    rm_unary_result_t res;
    int64_t id = 0, ttl = 0;
    int rc = call(st, "/etcdserverpb.Lease/LeaseKeepAlive", &req.base, NULL, RM_ETCD_LEASE_CALL_MS,
                  &res);
    if (rc == 0)
        rc = rm__store_etcd_lease_parse(res.bytes, res.len, 1, &id, &ttl);
    rm_unary_result_free(&res);
    if (rc == -ENOENT || rc == -EINVAL) {
        /* A reply that does not unpack is treated like one without the lease, as before: a new
         * lease and every registration put again is safe, keeping a lease we cannot see is not. */
        rm_log_warn("etcd %s: this replica's lease expired; registering its sidecars again",
                    st->target);
        st->lease = 0;
        return 1;
    }
    if (rc < 0) {
        st->keepalive_at = now + 1000; /* etcd away: try again soon, the lease may still live */
        return rc;
    }
    st->keepalive_at = now + (uint64_t)ttl * 1000 / 3;
    return 0;
}

static void ep_key(const etcd_store_t *st, const rm_store_endpoint_t *e, char *out, size_t n)
{
    char k[RM_STORE_EP_KEY_MAX];
    rm_store_endpoint_key(e, k, sizeof(k));
    snprintf(out, n, "%sendpoints/%s", st->prefix, k);
}

static void batch_clear(etcd_store_t *st)
{
    for (size_t i = 0; i < st->n_batch; i++)
        free(st->batch[i]);
    free(st->batch);
    st->batch = NULL;
    st->n_batch = st->cap_batch = 0;
}

/* Puts of one batch as Txns without compares (always applied), at most RM_ETCD_TXN_OPS each
 * (etcd's default --max-txn-ops is 128). */
#define RM_ETCD_TXN_OPS 100

static int batch_send(etcd_store_t *st)
{
    int rc = 0;
    size_t pairs = st->n_batch / 2;
    if (pairs > 0 && st->lease == 0 && (rc = lease_grant(st)) < 0)
        return rc;
    Etcdserverpb__PutRequest put[RM_ETCD_TXN_OPS];
    Etcdserverpb__RequestOp op[RM_ETCD_TXN_OPS];
    Etcdserverpb__RequestOp *ops[RM_ETCD_TXN_OPS];
    for (size_t from = 0; from < pairs && rc == 0; from += RM_ETCD_TXN_OPS) {
        size_t n = pairs - from < RM_ETCD_TXN_OPS ? pairs - from : RM_ETCD_TXN_OPS;
        for (size_t i = 0; i < n; i++) {
            etcdserverpb__put_request__init(&put[i]);
            put[i].key = bin(st->batch[2 * (from + i)]);
            put[i].value = bin(st->batch[2 * (from + i) + 1]);
            put[i].lease = st->lease;
            etcdserverpb__request_op__init(&op[i]);
            op[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
            op[i].request_put = &put[i];
            ops[i] = &op[i];
        }
        Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
        txn.success = ops;
        txn.n_success = n;
        Etcdserverpb__TxnResponse *resp = NULL;
        rc = unary(st, "/etcdserverpb.KV/Txn", &txn.base, &etcdserverpb__txn_response__descriptor,
                   (ProtobufCMessage **)&resp);
        if (rc == 0)
            etcdserverpb__txn_response__free_unpacked(resp, NULL);
        else if (strstr(st->base.error, "lease not found") != NULL)
            st->lease = 0; /* expired while etcd was away: the retry grants a new one */
    }
    return rc;
}

static int et_ep_batch(rm_store_t *s, int end)
{
    etcd_store_t *st = (etcd_store_t *)s;
    if (!end) {
        batch_clear(st);
        st->batching = 1;
        return 0;
    }
    st->batching = 0;
    int rc = batch_send(st);
    batch_clear(st);
    return rc;
}

static int et_ep_put(rm_store_t *s, const rm_store_endpoint_t *e)
{
    etcd_store_t *st = (etcd_store_t *)s;
    char key[KEY_MAX + RM_STORE_EP_KEY_MAX];
    int rc;
    char *val = rm__store_ep_encode(e);
    if (val == NULL) {
        rm__store_fail(s, "out of memory");
        return -ENOMEM;
    }
    ep_key(st, e, key, sizeof(key));
    if (st->batching) {
        /* Removals are sent at once and puts at the commit: the caller removes first, so the
         * order it wrote in is the order etcd applies. */
        if (st->n_batch + 2 > st->cap_batch) {
            size_t nc = st->cap_batch ? st->cap_batch * 2 : 32;
            char **nb = realloc(st->batch, nc * sizeof(*nb));
            if (nb == NULL)
                goto nomem;
            st->batch = nb;
            st->cap_batch = nc;
        }
        char *k = strdup(key);
        if (k == NULL)
            goto nomem;
        st->batch[st->n_batch++] = k;
        st->batch[st->n_batch++] = val;
        return 0;
    }
    if (st->lease == 0 && (rc = lease_grant(st)) < 0) {
        free(val);
        return rc;
    }
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    req.key = bin(key);
    req.value = bin(val);
    req.lease = st->lease;
    Etcdserverpb__PutResponse *resp = NULL;
    rc = unary(st, "/etcdserverpb.KV/Put", &req.base, &etcdserverpb__put_response__descriptor,
               (ProtobufCMessage **)&resp);
    free(val);
    if (rc == 0)
        etcdserverpb__put_response__free_unpacked(resp, NULL);
    else if (strstr(st->base.error, "lease not found") != NULL)
        st->lease = 0; /* expired while etcd was away: the next attempt grants a new one */
    return rc;
nomem:
    free(val);
    rm__store_fail(s, "out of memory");
    return -ENOMEM;
}

/* Txn { compare: value(key) == ours } success: [DeleteRange {key}]. Not succeeded means the key
 * holds someone else's record now (or nothing), which is what we want to keep. */
static int et_ep_remove(rm_store_t *s, const rm_store_endpoint_t *e)
{
    etcd_store_t *st = (etcd_store_t *)s;
    char key[KEY_MAX + RM_STORE_EP_KEY_MAX];
    char *val = rm__store_ep_encode(e);
    if (val == NULL) {
        rm__store_fail(s, "out of memory");
        return -ENOMEM;
    }
    ep_key(st, e, key, sizeof(key));
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
    Etcdserverpb__Compare *cmps[1] = {&cmp};
    cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
    cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE;
    cmp.key = bin(key);
    cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
    cmp.value = bin(val);
    Etcdserverpb__DeleteRangeRequest del = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    del.key = bin(key);
    Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
    Etcdserverpb__RequestOp *ops[1] = {&op};
    op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
    op.request_delete_range = &del;
    Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
    txn.compare = cmps;
    txn.n_compare = 1;
    txn.success = ops;
    txn.n_success = 1;
    Etcdserverpb__TxnResponse *resp = NULL;
    int rc = unary(st, "/etcdserverpb.KV/Txn", &txn.base, &etcdserverpb__txn_response__descriptor,
                   (ProtobufCMessage **)&resp);
    if (rc == 0)
        etcdserverpb__txn_response__free_unpacked(resp, NULL);
    free(val);
    return rc;
}

static int et_ep_list(rm_store_t *s, rm_store_endpoint_t **out, size_t *n)
{
    etcd_store_t *st = (etcd_store_t *)s;
    Etcdserverpb__RangeResponse *resp = NULL;
    char from[KEY_MAX], to[KEY_MAX];
    *out = NULL;
    *n = 0;
    make_range(st, "endpoints", from, to, sizeof(from));
    int rc = range(st, from, to, 0, 0, &resp);
    if (rc < 0)
        return rc;
    rm_store_endpoint_t *arr = resp->n_kvs ? calloc(resp->n_kvs, sizeof(*arr)) : NULL;
    size_t k = 0;
    if (resp->n_kvs && arr == NULL)
        goto nomem;
    for (size_t i = 0; i < resp->n_kvs; i++) {
        const Mvccpb__KeyValue *kv = resp->kvs[i];
        int drc = rm__store_ep_decode(kv->value.data, kv->value.len, &arr[k]);
        if (drc == -ENOMEM) {
            rm_store_endpoints_free(arr, k);
            goto nomem;
        }
        if (drc == 0)
            k++; /* a foreign or damaged value is skipped, not fatal */
    }
    if (k == 0) {
        free(arr);
        arr = NULL;
    }
    *out = arr;
    *n = k;
    etcdserverpb__range_response__free_unpacked(resp, NULL);
    return 0;
nomem:
    etcdserverpb__range_response__free_unpacked(resp, NULL);
    rm__store_fail(s, "out of memory");
    return -ENOMEM;
}

static int et_ep_changed(rm_store_t *s)
{
    etcd_store_t *st = (etcd_store_t *)s;
    uint_fast64_t g = atomic_load_explicit(&st->ep_gen, memory_order_acquire);
    if (g == st->seen_ep_gen)
        return 0;
    st->seen_ep_gen = g;
    return 1;
}

static const rm_store_ops_t etcd_ops = {
    .scheme = "etcd",
    .get = et_get,
    .append = et_append,
    .history = et_history,
    .prune = et_prune,
    .oldest = et_oldest,
    .close = et_close,
    .changed = et_changed,
    .ep_put = et_ep_put,
    .ep_remove = et_ep_remove,
    .ep_list = et_ep_list,
    .ep_batch = et_ep_batch,
    .ep_changed = et_ep_changed,
    .ep_keepalive = et_ep_keepalive,
};

/* "HOST:PORT[/PREFIX]" -> target and prefix (ending with '/'). */
static int parse_address(const char *addr, etcd_store_t *st, char *err, size_t errlen)
{
    const char *slash = strchr(addr, '/');
    size_t hlen = slash != NULL ? (size_t)(slash - addr) : strlen(addr);
    const char *colon = memchr(addr, ':', hlen);
    if (hlen == 0 || hlen >= sizeof(st->target) || colon == NULL || colon == addr ||
        colon + 1 == addr + hlen) {
        snprintf(err, errlen, "etcd store needs etcd://HOST:PORT[/PREFIX], not etcd://%s", addr);
        return -EINVAL;
    }
    for (const char *p = colon + 1; p < addr + hlen; p++)
        if (*p < '0' || *p > '9') {
            snprintf(err, errlen, "etcd://%s: the port is not a number", addr);
            return -EINVAL;
        }
    memcpy(st->target, addr, hlen);
    st->target[hlen] = '\0';
    if (slash == NULL || slash[1] == '\0') {
        snprintf(st->prefix, sizeof(st->prefix), "%s", RM_ETCD_DEFAULT_PFX);
        return 0;
    }
    size_t plen = strlen(slash);
    if (plen + 2 > sizeof(st->prefix)) {
        snprintf(err, errlen, "etcd://%s: the key prefix is too long", addr);
        return -EINVAL;
    }
    memcpy(st->prefix, slash, plen);
    if (st->prefix[plen - 1] != '/')
        st->prefix[plen++] = '/';
    st->prefix[plen] = '\0';
    return 0;
}

int rm__store_etcd_open(const char *addr, rm_store_t **out, char *err, size_t errlen)
{
    char dummy[8];
    if (err == NULL) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    *out = NULL;
    etcd_store_t *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = parse_address(addr, st, err, errlen);
    if (rc < 0) {
        free(st);
        return rc;
    }
    grpc_init();
    st->base.ops = &etcd_ops;
    /* Reconnect quickly after an etcd restart (gRPC's default backoff grows to two minutes);
     * replies up to 64 MiB so a long history of big configs still reads; keepalive pings so a
     * watch on a host that vanished without a FIN is noticed (within ~15 s) instead of looking
     * healthy forever (10 s is above etcd's default --grpc-keepalive-min-time of 5 s). */
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
         .value.integer = 100},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, .value.integer = 100},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, .value.integer = 1000},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = 64 << 20},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIME_MS, .value.integer = 10000},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS, .value.integer = 5000},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA,
         .value.integer = 0},
    };
    grpc_channel_args cargs = {.num_args = sizeof(args) / sizeof(args[0]), .args = args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    st->ch = grpc_channel_create(st->target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    st->cq = grpc_completion_queue_create_for_pluck(NULL);

    /* One read proves etcd answers and the prefix holds nothing foreign, before we serve. A
     * freshly started etcd accepts connections before it serves (until its raft member is
     * ready), so an unreachable etcd is retried for a few seconds before we give up. */
    rm_store_record_t rec;
    for (int waited = 0;; waited += RM_ETCD_RETRY_MS) {
        rc = et_get(&st->base, 0, &rec);
        if (rc != -EHOSTUNREACH || waited >= RM_ETCD_OPEN_MS)
            break;
        sleep_ms(RM_ETCD_RETRY_MS);
    }
    if (rc < 0 && rc != -ENOENT) {
        snprintf(err, errlen, "%s", st->base.error);
        et_close(&st->base);
        return rc;
    }
    rm_store_record_free(&rec);
    if (pthread_create(&st->watcher, NULL, watcher_main, st) != 0) {
        snprintf(err, errlen, "cannot start the etcd watcher thread");
        et_close(&st->base);
        return -EAGAIN;
    }
    st->watcher_started = 1;
    *out = &st->base;
    return 0;
}
