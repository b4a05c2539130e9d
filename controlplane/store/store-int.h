/* controlplane/store/store-int.h — private to //controlplane/store: what store.c and the
 * implementations share (opening each kind, failure reasons, the registration value format) and
 * the etcd codecs. Included by the store's own .c files, store_test.c and the etcd fuzz driver
 * (tests/fuzz/etcd), nobody else.
 */
#ifndef REMORA_CONTROLPLANE_STORE_STORE_INT_H
#define REMORA_CONTROLPLANE_STORE_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "controlplane/store/store.h"

/* The implementations, for store.c (rm_store_open). */
int rm__store_sqlite_open(const char *path, rm_store_t **out, char *err, size_t errlen);
int rm__store_mem_open(rm_store_t **out);
/* `addr` is what follows "etcd://". */
int rm__store_etcd_open(const char *addr, rm_store_t **out, char *err, size_t errlen);
/* store_etcd.c: one stored etcd value (`val`, len bytes) under `key` into *out (zeroed first;
 * config only when with_cfg). 0, -EINVAL for a key or value not written by us, -ENOMEM. For the
 * fuzz driver and tests; any thread. */
int rm__store_etcd_decode(const uint8_t *key, size_t key_len, const uint8_t *val, size_t len,
                          int with_cfg, rm_store_record_t *out);
/* store_etcd.c: what one Watch stream message says. */
typedef struct rm__etcd_watch {
    int created;      /* the watch now exists */
    int canceled;     /* etcd ended the watch */
    uint64_t newest;  /* highest version among PUT events on version keys; 0: none */
    size_t endpoints; /* events on registration keys (put or delete) */
    char reason[128]; /* etcd's cancel reason, cut */
} rm__etcd_watch_t;
/* Parses a packed etcdserverpb.WatchResponse (borrowed) into *out. 0, or -EINVAL when it does
 * not unpack. For the watcher and the fuzz driver; any thread. */
int rm__store_etcd_watch_parse(const uint8_t *data, size_t len, rm__etcd_watch_t *out);
/* store_etcd.c: a packed LeaseKeepAliveResponse (keepalive 1) or LeaseGrantResponse (0) —
 * `data`, len bytes, borrowed — into the lease's *id and *ttl (seconds). 0 when it names a live
 * lease; -ENOENT when it names none (ID 0, TTL <= 0 as etcd answers for a lease it no longer
 * has, or a grant's error set); -EINVAL when it does not unpack. For the store and the fuzz
 * driver; any thread. */
int rm__store_etcd_lease_parse(const uint8_t *data, size_t len, int keepalive, int64_t *id,
                               int64_t *ttl);
/* store.c: the value format of a registration (etcd): "RME1\n" then pod, namespace, service,
 * version, address, draining ("0"/"1") and owner, each ending in '\n'. Deterministic, so etcd
 * can compare a stored value with what we wrote. Returns a malloc'd string or NULL (no memory).
 * Any thread. */
char *rm__store_ep_encode(const rm_store_endpoint_t *e);
/* Decodes such a value (`len` bytes, borrowed) into *out (zeroed first, owned strings). 0,
 * -EINVAL for a value not written by us (wrong magic, field count, empty service or address, a
 * byte outside printable ASCII), -ENOMEM. For the etcd store, tests and fuzzing; any thread. */
int rm__store_ep_decode(const uint8_t *val, size_t len, rm_store_endpoint_t *out);
/* Writes a printf-style reason into s->error. */
void rm__store_fail(rm_store_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Copies summary cut to RM_STORE_SUMMARY_MAX bytes (malloc'd), or NULL when out of memory. */
char *rm__store_summary_dup(const char *summary);

#endif /* REMORA_CONTROLPLANE_STORE_STORE_INT_H */
