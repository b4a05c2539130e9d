/* common/config/internal.h — what the files of common/config share and nobody else sees: the
 * YAML node tree, diagnostics helpers, paths, the schema helpers over protobuf-c descriptors and
 * the source map.
 */
#ifndef REMORA_COMMON_CONFIG_INTERNAL_H
#define REMORA_COMMON_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "common/config/config.h"

/* ---- diagnostics (diag.c) ---- */

/*
 * Appends a diagnostic; every string is copied. file/path/doc may be NULL; line/col 0 = unknown.
 * When the list is full (RM_CONFIG_MAX_DIAGS) or memory runs out the diag is only counted in
 * `dropped`. Returns 0, or -ENOMEM (the caller carries on: losing a message is not fatal).
 */
int rm__diag_add(rm_config_diags_t *d, const char *file, int line, int col, const char *doc,
                 const char *path, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Nonzero when the next rm__diag_add would only be counted: callers skip costly messages. */
int rm__diags_full(const rm_config_diags_t *d);

/*
 * Writes `text` (len bytes, may hold any bytes) for a message: at most 60 characters, with
 * non-printable bytes as \xNN and "..." when cut. Always NUL-terminates buf (n >= 1).
 */
void rm__quote(const char *text, size_t len, char *buf, size_t n);
#define RM__QUOTE_BUF 256

/*
 * Returns the candidate closest to `word` by edit distance (ignoring case, '_' and '-'), or
 * NULL when none is close enough to be a plausible typo. candidates is NULL-terminated.
 */
const char *rm__suggest(const char *word, size_t len, const char *const *candidates);

/* ---- paths (diag.c) ---- */

/* A growing "rules[1].destinations[0].weight"; len is the mark to restore after a push. */
typedef struct rm__path {
    char *buf; /* owned, NUL-terminated, or NULL while empty */
    size_t len;
    size_t cap;
    int nomem; /* an append failed; the path is then truncated but still valid */
} rm__path_t;

/* Each push returns the previous length, to pass to rm__path_pop. */
size_t rm__path_field(rm__path_t *p, const char *name);
size_t rm__path_index(rm__path_t *p, size_t index);
size_t rm__path_key(rm__path_t *p, const char *key, size_t len); /* map key: ".key", shortened */
void rm__path_pop(rm__path_t *p, size_t mark);
const char *rm__path_str(const rm__path_t *p); /* NULL when empty (document level) */
void rm__path_free(rm__path_t *p);

/* ---- the YAML node tree (tree.c) ---- */

typedef enum rm__node_kind {
    RM__NODE_SCALAR = 0,
    RM__NODE_MAPPING = 1,
    RM__NODE_SEQUENCE = 2,
} rm__node_kind_t;

typedef struct rm__node rm__node_t;
struct rm__node {
    rm__node_kind_t kind;
    int line;           /* 1-based */
    int col;            /* 1-based */
    int quoted;         /* scalar written quoted or as a block scalar: a string, never a number */
    const char *text;   /* scalar: NUL-terminated (may also hold NULs inside; see len) */
    size_t len;         /* scalar: bytes in text */
    rm__node_t **items; /* sequence: the items; mapping: key, value, key, value, ... */
    size_t n_items;     /* sequence: item count; mapping: twice the pair count */
};

/* One config document: a YAML document, or one element of a top-level JSON array. */
typedef struct rm__doc {
    rm__node_t *root; /* never NULL; an empty document is an empty plain scalar */
    int number;       /* 1-based, as users count them in messages */
    int line;         /* where the document starts, 1-based */
    int col;
} rm__doc_t;

typedef struct rm__arena rm__arena_t;

typedef struct rm__tree {
    rm__doc_t *docs; /* owned */
    size_t n_docs;
    int json;           /* the input looked like JSON */
    rm__arena_t *arena; /* owns every node and string */
} rm__tree_t;

/*
 * Reads YAML or JSON into a tree (zeroed *tree beforehand). Returns 0; -EINVAL with errors
 * appended (syntax, anchors, nesting, size, no documents); or -ENOMEM. The tree must be freed
 * with rm__tree_free whatever the result.
 */
int rm__tree_load(rm__tree_t *tree, const char *file, const char *data, size_t len,
                  rm_config_diags_t *errors);
void rm__tree_free(rm__tree_t *tree);

/* A plain "", "~", "null", "Null" or "NULL": YAML's null, which means "absent" for a field. */
int rm__node_is_null(const rm__node_t *n);

/* ---- schema helpers over protobuf-c descriptors (schema.c) ---- */

/* Longest camelCase name any field can have. */
#define RM__NAME_BUF 64

/* The document name of a field: camelCase, a trailing '_' dropped (per_try_timeout ->
 * perTryTimeout, consecutive_5xx -> consecutive5xx, base_ -> base). */
void rm__json_name(const char *proto_name, char *buf, size_t n);

/* Finds a field by its document name (len bytes, need not be NUL-terminated); NULL if none. */
const ProtobufCFieldDescriptor *rm__field_by_json_name(const ProtobufCMessageDescriptor *desc,
                                                       const char *name, size_t len);

/* A message with exactly the fields `key` and `value`: the entry type of a proto map. */
int rm__is_map_entry(const ProtobufCMessageDescriptor *desc);

/* remora.v1.Duration, written as a string in documents. */
int rm__is_duration(const ProtobufCMessageDescriptor *desc);

/* Bytes one element of a repeated field of this type takes; 0 for unsupported types. */
size_t rm__field_elem_size(const ProtobufCFieldDescriptor *f);

/* Whether a singular field is set (has_x, non-NULL pointer, or its oneof case). */
int rm__field_is_set(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f);

/* The document kinds, in ConfigSet order. */
typedef enum rm__list {
    RM__LIST_SERVICES = 0,
    RM__LIST_ROUTES = 1,
    RM__LIST_CIRCUIT_BREAKERS = 2,
    RM__LIST_COUNT = 3,
} rm__list_t;

extern const char *const rm__kind_names[RM__LIST_COUNT + 1]; /* NULL-terminated */
const ProtobufCMessageDescriptor *rm__kind_descriptor(rm__list_t list);

/* The documents of one kind in a set, typed generically. */
size_t rm__list_len(const Remora__V1__ConfigSet *set, rm__list_t list);
ProtobufCMessage *rm__list_get(const Remora__V1__ConfigSet *set, rm__list_t list, size_t i);
/* Appends a document (ownership passes to the set). Returns 0 or -ENOMEM (msg not taken). */
int rm__list_append(Remora__V1__ConfigSet *set, rm__list_t list, ProtobufCMessage *msg);

/* ---- source map (srcmap.c): where each decoded field came from ---- */

/*
 * Built while decoding, then flattened into one allocation hung on the set (see srcmap.c for why
 * that is safe), so it lives and dies with the set.
 */
typedef struct rm__smb rm__smb_t;

rm__smb_t *rm__smb_new(const char *file);
void rm__smb_free(rm__smb_t *b);
/* Starts the entries of a document: list/index say where it sits in the set. */
int rm__smb_doc(rm__smb_t *b, rm__list_t list, size_t index, int line, int col);
/* Records the position of `path` (NULL = the document itself) in the current document. */
int rm__smb_add(rm__smb_t *b, const char *path, int line, int col);
/* Moves the map onto the set. Returns 0 or -ENOMEM (the set is then left without a map). */
int rm__smb_attach(rm__smb_t *b, Remora__V1__ConfigSet *set);

typedef struct rm__srcmap rm__srcmap_t;

/* The map attached to `set` by rm_config_parse, or NULL. */
const rm__srcmap_t *rm__srcmap_get(const Remora__V1__ConfigSet *set);
const char *rm__srcmap_file(const rm__srcmap_t *m);
/*
 * Position of `path` in a document; when the path itself was not written (absent or defaulted),
 * the nearest enclosing path that was, and at worst the document's start. Returns 0 when found,
 * -1 when the map does not know the document.
 */
int rm__srcmap_find(const rm__srcmap_t *m, rm__list_t list, size_t index, const char *path,
                    int *line, int *col);

/* ---- decoding (decode.c) ---- */

/* Decodes a tree into a new set with its source map. Returns 0, -EINVAL or -ENOMEM; on failure
 * *out is NULL. */
int rm__decode(const rm__tree_t *tree, const char *file, Remora__V1__ConfigSet **out,
               rm_config_diags_t *errors);

/* ---- validation (validate.c, validate_route.c) ---- */

typedef struct rm__svc_key {
    const char *ns;   /* borrowed */
    const char *name; /* borrowed */
    int line;         /* where it was defined, 0 for context services */
    size_t index;     /* index in set->services; SIZE_MAX for context services */
} rm__svc_key_t;

typedef struct rm__ep_key {
    const char *ns;
    const char *service;
    const char *version;
} rm__ep_key_t;

/* State of one rm_config_validate call, shared by the per-kind validators. */
typedef struct rm__vctx {
    Remora__V1__ConfigSet *set;
    const rm_config_context_t *ctx;
    const rm__srcmap_t *map;
    rm_config_diags_t *errors;
    rm_config_diags_t *warnings; /* may be NULL */
    rm__path_t path;             /* inside the current document */
    rm__list_t list;             /* the current document */
    size_t index;
    const char *doc_ns;   /* namespace of the current document (after defaulting) */
    const char *doc_name; /* its name, may be NULL */
    rm__svc_key_t *svcs;  /* sorted by (ns, name): every service a reference may name */
    size_t n_svcs;
    rm__ep_key_t *eps; /* sorted: every known endpoint, when ctx->endpoints_known */
    size_t n_eps;
    int nomem;
} rm__vctx_t;

/*
 * Reports an error (warn = 0) or warning (warn = 1) at the current path plus `field` (NULL: the
 * current path itself), positioned from the source map when there is one.
 */
void rm__verr(rm__vctx_t *v, int warn, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Field helpers shared by the validators; each reports its own error and returns -1 on one. */
int rm__v_name(rm__vctx_t *v, const char *field, const char *value, int required);
int rm__v_version(rm__vctx_t *v, const char *field, const char *value, int required);
int rm__v_range(rm__vctx_t *v, const char *field, uint32_t value, uint32_t lo, uint32_t hi);
int rm__v_duration_positive(rm__vctx_t *v, const char *field, const Remora__V1__Duration *d);
/* Makes *dst a Duration of `ms` when absent. Returns 0 or -ENOMEM. */
int rm__v_default_duration(rm__vctx_t *v, Remora__V1__Duration **dst, uint64_t ms);
char *rm__v_strdup(rm__vctx_t *v, const char *s);
/* The service (ns, name) exists in the set or the context. */
int rm__v_service_exists(const rm__vctx_t *v, const char *ns, const char *name);
/* Reports `unknown service "x" in namespace "ns"` with a did-you-mean. */
void rm__v_unknown_service(rm__vctx_t *v, const char *field, const char *name);
/* Whether some known endpoint is (ns, service, version). */
int rm__v_endpoint_exists(const rm__vctx_t *v, const char *ns, const char *service,
                          const char *version);
/*
 * For n strings (NULL entries are skipped), a malloc'd array whose element i is the index of the
 * earliest equal string before i, or SIZE_MAX. NULL (with v->nomem set) when out of memory.
 */
size_t *rm__v_first_dups(rm__vctx_t *v, const char *const *strs, size_t n);
/* RFC 9110 token (header and cookie names). */
int rm__is_token(const char *s);

void rm__validate_route(rm__vctx_t *v, Remora__V1__Route *route);

#endif /* REMORA_COMMON_CONFIG_INTERNAL_H */
