/* dataplane/snapshot/snapshot-int.h — private to //dataplane/snapshot: the snapshot struct, its
 * arena and its lookup tables. Not installed in the library's public headers.
 */
#ifndef REMORA_DATAPLANE_SNAPSHOT_SNAPSHOT_INT_H
#define REMORA_DATAPLANE_SNAPSHOT_SNAPSHOT_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/snapshot/snapshot-t.h"

/* A bump allocator: the compiled snapshot is many small immutable objects that all die
 * together, so one list of blocks is freed at once instead of tracking each object. */
typedef struct rm__arena_block {
    struct rm__arena_block *next;
    size_t used;
    size_t cap;
    max_align_t data[];
} rm__arena_block_t;

typedef struct rm__arena {
    rm__arena_block_t *head; /* owned: the newest block first */
} rm__arena_t;

/* n zeroed bytes aligned for any type, or NULL on allocation failure. */
void *rm__arena_alloc(rm__arena_t *a, size_t n);
/* n zeroed elements of size sz, or NULL on failure or overflow; n may be 0 (returns non-NULL). */
void *rm__arena_calloc(rm__arena_t *a, size_t n, size_t sz);
/* A NUL-terminated copy of s[0..n), or NULL. */
char *rm__arena_strndup(rm__arena_t *a, const char *s, size_t n);
/* A lowercased (ASCII) NUL-terminated copy of s[0..n), or NULL. */
char *rm__arena_strlower(rm__arena_t *a, const char *s, size_t n);
/* Frees every block. The arena is empty and reusable afterwards. */
void rm__arena_free(rm__arena_t *a);

/* An open-addressing (linear probing) table from byte strings to services. Entries with equal
 * keys may repeat (a `hosts` name shared by two services); linear probing without deletion keeps
 * them in insertion order along the probe chain, which the host lookup relies on. */
typedef struct rm__hent {
    uint64_t hash; /* 0 marks an empty slot (hashes are forced non-zero) */
    const char *key;
    size_t len;
    const rm_service_t *svc;
} rm__hent_t;

typedef struct rm__htab {
    rm__hent_t *slots; /* arena-owned */
    size_t mask;       /* capacity - 1; capacity is a power of two, at least 2x the entries */
} rm__htab_t;

/* Sizes the table for up to n entries. Returns 0 or -1 (allocation). */
int rm__htab_init(rm__htab_t *t, rm__arena_t *a, size_t n);
/* Inserts; the caller sized the table (init's n counts every put). */
void rm__htab_put(rm__htab_t *t, uint64_t hash, const char *key, size_t len,
                  const rm_service_t *svc);
/* Hashes as the tables do: never 0. */
static inline uint64_t rm__htab_fix(uint64_t h)
{
    return h == 0 ? 1 : h;
}

/* A compiled pattern, kept on a list so the snapshot frees each one. */
typedef struct rm__regex_node {
    struct rm__regex_node *next;
    pcre2_code *code;
} rm__regex_node_t;

struct rm_snapshot {
    atomic_long refs;
    uint64_t version;
    const char *local_ns; /* arena */
    uint8_t *packed;      /* owned (malloc): cfg packed for /config_dump */
    size_t packed_len;
    Remora__V1__ConfigSet *cfg; /* owned: unpacked from packed; compiled tables borrow from it */
    rm__arena_t arena;          /* owns every compiled object below */
    rm_service_t *services;
    size_t nservices;
    rm__htab_t by_host;        /* lowercased host names (and vips) */
    rm__htab_t by_addr;        /* family(1) port(2, network order) address(4 or 16) */
    rm__htab_t by_name;        /* "namespace/name" */
    pcre2_match_context *mctx; /* owned */
    rm__regex_node_t *regexes; /* arena nodes; the codes are owned */
};

/* Frees s and everything it owns (snapshot.c); called by the last rm_snapshot_unref. */
void rm__snapshot_destroy(rm_snapshot_t *s);

/* Key bytes for by_addr from a sockaddr; returns length or 0 when the family
 * is not IPv4/IPv6. buf holds at least RM__ADDR_KEY_MAX bytes. */
#define RM__ADDR_KEY_MAX 19
size_t rm__addr_key(const struct sockaddr *sa, unsigned char *buf);

/* Hash of "ns/name" computed without building the string. */
uint64_t rm__name_hash(const char *ns, size_t nslen, const char *name, size_t namelen);

/* ASCII lowercase; locale-independent. */
static inline unsigned char rm__lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* FNV-1a 64 + mix over the ASCII-lowercased bytes: equals rm_hash64 of the lowercased string. */
uint64_t rm__hash_lower(const char *s, size_t n);

#endif /* REMORA_DATAPLANE_SNAPSHOT_SNAPSHOT_INT_H */
