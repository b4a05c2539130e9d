/* tests/fuzz/etcd/etcd_fuzz.c — libFuzzer driver for what remora-control reads from etcd, as
 * controlplane/store/store_etcd.c handles it: Range replies (every key-value decoded as a config
 * record, with and without the config, and as an endpoint registration), Watch stream messages,
 * Txn replies (what a failed append and a conditional delete get back), LeaseGrant and
 * LeaseKeepAlive replies, and raw registration values. etcd is a trusted peer, but a damaged
 * value or a foreign writer under our prefix must be refused, never read out of bounds.
 *
 * Input: the first byte picks what the rest is (mod 7): 0 a packed RangeResponse, 1 a packed
 * WatchResponse, 2 a raw config record (the next byte is the key's length, then key, then
 * value), 3 a packed LeaseGrantResponse, 4 a packed LeaseKeepAliveResponse, 5 a raw
 * registration value, 6 a packed TxnResponse.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/store/store-int.h"
#include "etcdpb/rpc.pb-c.h"

/* A copy in an exact-size buffer, so ASan catches any read past either end. */
static uint8_t *exact_copy(const uint8_t *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    if (c != NULL && n)
        memcpy(c, p, n);
    return c;
}

/* What et_ep_list does with a value; a value that decodes must encode back to the same bytes,
 * since ep_remove deletes a key only while etcd holds exactly our encoding. */
static void decode_ep(const uint8_t *val, size_t len)
{
    rm_store_endpoint_t e;
    uint8_t *v = exact_copy(val, len);
    if (v == NULL)
        return;
    if (rm__store_ep_decode(v, len, &e) == 0) {
        char *again = rm__store_ep_encode(&e);
        if (again != NULL && (strlen(again) != len || memcmp(again, v, len) != 0))
            __builtin_trap();
        free(again);
    }
    rm_store_endpoint_free(&e);
    free(v);
}

static void decode_kvs(Mvccpb__KeyValue **kvs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rm_store_record_t r;
        for (int cfg = 0; cfg < 2; cfg++) {
            if (rm__store_etcd_decode(kvs[i]->key.data, kvs[i]->key.len, kvs[i]->value.data,
                                      kvs[i]->value.len, cfg, &r) == 0) {
                /* What the core does next: the summary is a C string, the config bytes are
                 * config_len long. */
                volatile size_t sl = strlen(r.summary);
                (void)sl;
                if (cfg && r.config_len > 0) {
                    volatile uint8_t last = r.config[r.config_len - 1];
                    (void)last;
                }
            }
            rm_store_record_free(&r);
        }
        decode_ep(kvs[i]->value.data, kvs[i]->value.len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0] % 7;
    data++;
    size--;
    if (mode == 0) {
        Etcdserverpb__RangeResponse *r = etcdserverpb__range_response__unpack(NULL, size, data);
        if (r != NULL) {
            decode_kvs(r->kvs, r->n_kvs);
            etcdserverpb__range_response__free_unpacked(r, NULL);
        }
    } else if (mode == 1) {
        rm__etcd_watch_t w;
        if (rm__store_etcd_watch_parse(data, size, &w) == 0) {
            volatile size_t rl = strlen(w.reason);
            (void)rl;
        }
    } else if (mode == 2 && size >= 1) {
        size_t klen = data[0];
        if (klen > size - 1)
            klen = size - 1;
        uint8_t *key = exact_copy(data + 1, klen);
        uint8_t *val = exact_copy(data + 1 + klen, size - 1 - klen);
        if (key != NULL && val != NULL) {
            Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
            kv.key.data = key;
            kv.key.len = klen;
            kv.value.data = val;
            kv.value.len = size - 1 - klen;
            Mvccpb__KeyValue *kvs[1] = {&kv};
            decode_kvs(kvs, 1);
        }
        free(key);
        free(val);
    } else if (mode == 3 || mode == 4) {
        int64_t id, ttl;
        uint8_t *p = exact_copy(data, size);
        if (p != NULL && rm__store_etcd_lease_parse(p, size, mode == 4, &id, &ttl) == 0 &&
            (id == 0 || ttl <= 0))
            __builtin_trap(); /* "a live lease" must mean one the store can keep alive */
        free(p);
    } else if (mode == 5) {
        decode_ep(data, size);
    } else if (mode == 6) {
        Etcdserverpb__TxnResponse *t = etcdserverpb__txn_response__unpack(NULL, size, data);
        if (t == NULL)
            return 0;
        for (size_t i = 0; i < t->n_responses; i++) {
            const Etcdserverpb__ResponseOp *op = t->responses[i];
            if (op->response_case == ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE &&
                op->response_range != NULL)
                decode_kvs(op->response_range->kvs, op->response_range->n_kvs);
            else if (op->response_case ==
                         ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE &&
                     op->response_delete_range != NULL)
                decode_kvs(op->response_delete_range->prev_kvs,
                           op->response_delete_range->n_prev_kvs);
        }
        etcdserverpb__txn_response__free_unpacked(t, NULL);
    }
    return 0;
}
