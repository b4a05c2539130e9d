/* common/config/srcmap.c — the source map: for each decoded field of each document, the path
 * ("rules[1].destinations[0].weight") and the line and column it was written at, so that
 * rm_config_validate can say file:line:col for sets that came from rm_config_parse.
 *
 * Where it lives. The public API hands out plain Remora__V1__ConfigSet pointers, freed with
 * protobuf_c_message_free_unpacked, and rm_config_validate(set, ...) must still find the
 * positions. So the map is flattened into ONE malloc'd block hung on the set's
 * `base.unknown_fields` pointer with `base.n_unknown_fields == 0`:
 *   - protobuf-c frees `unknown_fields` whenever it is non-NULL (protobuf_c_message_free_unpacked),
 *     so the map dies with the set and nothing leaks (the ASan tests check this);
 *   - pack, get_packed_size and check only walk the first n_unknown_fields entries, i.e. none, so
 *     the map never reaches the wire, the store or a comparison of packed sets;
 *   - a copy made by pack + unpack simply has no map (validation then names documents instead).
 * The block starts with a magic string, and only a set whose n_unknown_fields is 0 with a
 * non-NULL pointer (which protobuf-c never produces itself) is read as a map.
 *
 * Documents are found by (list, index) in the set and fields by path, never by pointer, so a
 * caller that appends documents or replaces sub-messages cannot make us read stale memory; at
 * worst a position is that of the field that used to be there.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/config/internal.h"

#define MAGIC "RMSRCMP1"

/* More entries than this (a pathological input) are not recorded: positions fall back to the
 * enclosing field, and memory stays proportional to something sane. */
#define MAX_ENTRIES (1u << 20)

typedef struct map_doc {
    uint32_t list;
    uint32_t index;
    uint32_t first; /* first entry */
    uint32_t count;
    int32_t line;
    int32_t col;
} map_doc_t;

typedef struct map_ent {
    uint32_t path; /* offset into the string pool */
    int32_t line;
    int32_t col;
} map_ent_t;

/* The flattened block: header, docs, entries, then NUL-terminated strings. */
typedef struct map_hdr {
    char magic[8];
    uint64_t size;
    uint32_t n_docs;
    uint32_t n_ents;
    uint32_t file; /* pool offset of the file name; UINT32_MAX if none */
    uint32_t pool; /* offset of the pool from the block start */
} map_hdr_t;

struct rm__srcmap {
    map_hdr_t hdr; /* only ever used through a pointer to the block */
};

struct rm__smb {
    char *file;
    map_doc_t *docs;
    size_t n_docs, cap_docs;
    map_ent_t *ents;
    size_t n_ents, cap_ents;
    char *pool;
    size_t pool_len, pool_cap;
};

static int reserve(void **p, size_t *cap, size_t need, size_t elem)
{
    size_t c = *cap ? *cap : 16;
    void *np;
    if (need <= *cap)
        return 0;
    while (c < need)
        c *= 2;
    np = realloc(*p, c * elem);
    if (np == NULL)
        return -ENOMEM;
    *p = np;
    *cap = c;
    return 0;
}

rm__smb_t *rm__smb_new(const char *file)
{
    rm__smb_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    if (file != NULL && (b->file = strdup(file)) == NULL) {
        free(b);
        return NULL;
    }
    return b;
}

void rm__smb_free(rm__smb_t *b)
{
    if (b == NULL)
        return;
    free(b->file);
    free(b->docs);
    free(b->ents);
    free(b->pool);
    free(b);
}

int rm__smb_doc(rm__smb_t *b, rm__list_t list, size_t index, int line, int col)
{
    map_doc_t *d;
    void *p = b->docs;
    if (reserve(&p, &b->cap_docs, b->n_docs + 1, sizeof(*b->docs)) < 0)
        return -ENOMEM;
    b->docs = p;
    d = &b->docs[b->n_docs++];
    d->list = (uint32_t)list;
    d->index = (uint32_t)index;
    d->first = (uint32_t)b->n_ents;
    d->count = 0;
    d->line = line;
    d->col = col;
    return 0;
}

int rm__smb_add(rm__smb_t *b, const char *path, int line, int col)
{
    size_t len;
    void *p;
    map_ent_t *e;

    if (b->n_docs == 0)
        return 0;
    if (path == NULL) {
        b->docs[b->n_docs - 1].line = line;
        b->docs[b->n_docs - 1].col = col;
        return 0;
    }
    if (b->n_ents >= MAX_ENTRIES)
        return 0;
    len = strlen(path) + 1;
    p = b->ents;
    if (reserve(&p, &b->cap_ents, b->n_ents + 1, sizeof(*b->ents)) < 0)
        return -ENOMEM;
    b->ents = p;
    p = b->pool;
    if (reserve(&p, &b->pool_cap, b->pool_len + len, 1) < 0)
        return -ENOMEM;
    b->pool = p;
    e = &b->ents[b->n_ents++];
    e->path = (uint32_t)b->pool_len;
    e->line = line;
    e->col = col;
    memcpy(b->pool + b->pool_len, path, len);
    b->pool_len += len;
    b->docs[b->n_docs - 1].count++;
    return 0;
}

int rm__smb_attach(rm__smb_t *b, Remora__V1__ConfigSet *set)
{
    size_t flen = b->file ? strlen(b->file) + 1 : 0;
    size_t docs_off = sizeof(map_hdr_t);
    size_t ents_off = docs_off + b->n_docs * sizeof(map_doc_t);
    size_t pool_off = ents_off + b->n_ents * sizeof(map_ent_t);
    size_t size = pool_off + b->pool_len + flen;
    char *block;
    map_hdr_t hdr;

    if (size > UINT32_MAX)
        return -ENOMEM; /* cannot happen with a 4 MiB input; offsets are 32-bit */
    block = malloc(size);
    if (block == NULL)
        return -ENOMEM;
    memcpy(hdr.magic, MAGIC, 8);
    hdr.size = size;
    hdr.n_docs = (uint32_t)b->n_docs;
    hdr.n_ents = (uint32_t)b->n_ents;
    hdr.file = b->file ? (uint32_t)b->pool_len : UINT32_MAX;
    hdr.pool = (uint32_t)pool_off;
    memcpy(block, &hdr, sizeof(hdr));
    if (b->n_docs)
        memcpy(block + docs_off, b->docs, b->n_docs * sizeof(map_doc_t));
    if (b->n_ents)
        memcpy(block + ents_off, b->ents, b->n_ents * sizeof(map_ent_t));
    if (b->pool_len)
        memcpy(block + pool_off, b->pool, b->pool_len);
    if (flen)
        memcpy(block + pool_off + b->pool_len, b->file, flen);
    set->base.n_unknown_fields = 0;
    set->base.unknown_fields = (ProtobufCMessageUnknownField *)(void *)block;
    return 0;
}

const rm__srcmap_t *rm__srcmap_get(const Remora__V1__ConfigSet *set)
{
    const void *block = set->base.unknown_fields;
    if (set->base.n_unknown_fields != 0 || block == NULL)
        return NULL;
    if (memcmp(block, MAGIC, 8) != 0)
        return NULL;
    return block;
}

static const char *pool(const rm__srcmap_t *m)
{
    return (const char *)m + m->hdr.pool;
}

const char *rm__srcmap_file(const rm__srcmap_t *m)
{
    return m->hdr.file == UINT32_MAX ? NULL : pool(m) + m->hdr.file;
}

int rm__srcmap_find(const rm__srcmap_t *m, rm__list_t list, size_t index, const char *path,
                    int *line, int *col)
{
    const map_doc_t *docs = (const map_doc_t *)(const void *)((const char *)m + sizeof(map_hdr_t));
    const map_ent_t *ents = (const map_ent_t *)(const void *)(docs + m->hdr.n_docs);
    const map_doc_t *doc = NULL;
    char *p = NULL;
    size_t len;

    for (uint32_t i = 0; i < m->hdr.n_docs; i++) {
        if (docs[i].list == (uint32_t)list && docs[i].index == index) {
            doc = &docs[i];
            break;
        }
    }
    if (doc == NULL)
        return -1;
    *line = doc->line;
    *col = doc->col;
    if (path == NULL || *path == '\0')
        return 0;
    len = strlen(path);
    p = malloc(len + 1);
    if (p == NULL)
        return 0; /* the document's position is still right */
    memcpy(p, path, len + 1);
    /* The path itself, else the nearest enclosing one that was written. */
    while (len > 0) {
        for (uint32_t i = doc->first; i < doc->first + doc->count; i++) {
            if (strcmp(pool(m) + ents[i].path, p) == 0) {
                *line = ents[i].line;
                *col = ents[i].col;
                free(p);
                return 0;
            }
        }
        while (len > 0 && p[len - 1] != '.' && p[len - 1] != '[')
            len--;
        if (len > 0)
            len--;
        p[len] = '\0';
    }
    free(p);
    return 0;
}
