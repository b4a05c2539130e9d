/* tests/fuzz/etcd/etcd_fuzz.c — libFuzzer driver for what remora-control reads from etcd: the
 * replies of Range (every key-value decoded as a config record, with and without the config) and
 * the messages of the Watch stream, as controlplane/store/store_etcd.c handles them. etcd is a
 * trusted peer, but a damaged value or a foreign writer under our prefix must be refused, never
 * read out of bounds.
 *
 * Input: the first byte picks what the rest is: 0 a packed RangeResponse, 1 a packed
 * WatchResponse, 2 a raw record (the next byte is the key's length, then key, then value).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/store/store.h"
#include "etcdpb/rpc.pb-c.h"

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
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0] % 3;
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
    } else if (size >= 1) {
        size_t klen = data[0];
        if (klen > size - 1)
            klen = size - 1;
        /* Copies into exact-size buffers so ASan catches any read past either end. */
        uint8_t *key = malloc(klen ? klen : 1);
        uint8_t *val = malloc(size - 1 - klen ? size - 1 - klen : 1);
        memcpy(key, data + 1, klen);
        memcpy(val, data + 1 + klen, size - 1 - klen);
        Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
        kv.key.data = key;
        kv.key.len = klen;
        kv.value.data = val;
        kv.value.len = size - 1 - klen;
        Mvccpb__KeyValue *kvs[1] = {&kv};
        decode_kvs(kvs, 1);
        free(key);
        free(val);
    }
    return 0;
}
