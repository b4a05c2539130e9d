/* common/config/decode.c — turns the node tree into protobuf-c messages GENERICALLY, by walking
 * ProtobufCMessageDescriptor / ProtobufCFieldDescriptor, so a field added to config.proto is
 * accepted in documents at once. Structure and types are checked here (unknown fields, wrong
 * types, duplicate keys, oneof conflicts); meaning is checked by validate.c.
 *
 * Memory follows protobuf-c's conventions so protobuf_c_message_free_unpacked frees everything:
 * strings, repeated arrays and sub-messages are malloc'd, sub-messages initialised with their
 * descriptor's message_init. Every allocation is linked into its parent at once, so an error at
 * any point leaves a tree that the same call frees.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/config/internal.h"

typedef struct dec {
    const char *file;
    rm_config_diags_t *errors;
    rm__smb_t *smb;
    rm__path_t path;
    int failed; /* some error was reported */
    int nomem;
} dec_t;

/* Reports an error at a node's position and the current path (plus `field` when given). */
static void errorf(dec_t *d, const rm__node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errorf(dec_t *d, const rm__node_t *at, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    d->failed = 1;
    if (rm__diags_full(d->errors)) {
        d->errors->dropped++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (rm__diag_add(d->errors, d->file, at ? at->line : 0, at ? at->col : 0, NULL,
                     rm__path_str(&d->path), "%s", msg) < 0)
        d->nomem = 1;
}

static void record(dec_t *d, const rm__node_t *at)
{
    if (rm__smb_add(d->smb, rm__path_str(&d->path), at->line, at->col) < 0)
        d->nomem = 1;
}

static const char *node_noun(const rm__node_t *n)
{
    switch (n->kind) {
    case RM__NODE_MAPPING:
        return "a mapping";
    case RM__NODE_SEQUENCE:
        return "a list";
    default:
        return rm__node_is_null(n) ? "null" : "a scalar";
    }
}

/* Pointers are stored with memcpy: the member's real type is char * or Remora__V1__X *. */
static void put_ptr(void *base, size_t off, void *value)
{
    memcpy((char *)base + off, &value, sizeof(value));
}

static void *get_ptr(const void *base, size_t off)
{
    void *value;
    memcpy(&value, (const char *)base + off, sizeof(value));
    return value;
}

static void put_u32(void *base, size_t off, uint32_t v)
{
    memcpy((char *)base + off, &v, sizeof(v));
}

/* Valid UTF-8 without overlongs or surrogates: what jansson will accept when printing. */
static int utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* ---- scalars ---- */

static const char *type_expectation(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FIXED64:
        return "must be a non-negative integer";
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_SFIXED64:
        return "must be an integer";
    case PROTOBUF_C_TYPE_BOOL:
        return "must be true or false";
    case PROTOBUF_C_TYPE_STRING:
        return "must be a string";
    case PROTOBUF_C_TYPE_ENUM:
        return "must be one of the allowed names";
    case PROTOBUF_C_TYPE_MESSAGE:
        if (rm__is_duration(f->descriptor))
            return "must be a duration such as \"250ms\", \"2s\" or \"1m\"";
        return "must be a mapping";
    default:
        return "has a type the config decoder does not support";
    }
}

/* Decimal digits, no sign, no leading zeros (YAML 1.1 would read 010 as octal). */
static int parse_unsigned(dec_t *d, const rm__node_t *n, const rm__node_t *at, uint64_t max,
                          uint64_t *out)
{
    uint64_t v = 0;
    const char *s = n->text;
    size_t i = 0;

    if (n->quoted) {
        errorf(d, at, "must be a non-negative integer, not a quoted string");
        return -1;
    }
    if (n->len == 0 || (s[0] == '-' && n->len > 1)) {
        errorf(d, at, "must be a non-negative integer");
        return -1;
    }
    for (i = 0; i < n->len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            errorf(d, at, "must be a non-negative integer");
            return -1;
        }
    }
    if (n->len > 1 && s[0] == '0') {
        errorf(d, at, "must be a non-negative integer without leading zeros");
        return -1;
    }
    for (i = 0; i < n->len; i++) {
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v) || v > max) {
            errorf(d, at, "out of range (max %" PRIu64 ")", max);
            return -1;
        }
    }
    *out = v;
    return 0;
}

static int parse_signed(dec_t *d, const rm__node_t *n, const rm__node_t *at, int64_t min,
                        int64_t max, int64_t *out)
{
    const char *s = n->text;
    int neg = n->len > 0 && s[0] == '-';
    uint64_t mag = 0, lim = neg ? (uint64_t)(-(min + 1)) + 1 : (uint64_t)max;

    if (n->quoted) {
        errorf(d, at, "must be an integer, not a quoted string");
        return -1;
    }
    if (n->len == (size_t)neg || (n->len > (size_t)neg + 1 && s[neg] == '0')) {
        errorf(d, at, "must be an integer");
        return -1;
    }
    for (size_t i = (size_t)neg; i < n->len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            errorf(d, at, "must be an integer");
            return -1;
        }
        if (__builtin_mul_overflow(mag, 10, &mag) ||
            __builtin_add_overflow(mag, (uint64_t)(s[i] - '0'), &mag) || mag > lim) {
            errorf(d, at, "out of range (min %" PRId64 ", max %" PRId64 ")", min, max);
            return -1;
        }
    }
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

static char *decode_string(dec_t *d, const rm__node_t *n, const rm__node_t *at)
{
    char *s;
    if (memchr(n->text, '\0', n->len) != NULL) {
        errorf(d, at, "must not contain NUL characters");
        return NULL;
    }
    if (!utf8_valid((const unsigned char *)n->text, n->len)) {
        errorf(d, at, "must be valid UTF-8");
        return NULL;
    }
    s = malloc(n->len + 1);
    if (s == NULL) {
        d->nomem = 1;
        return NULL;
    }
    memcpy(s, n->text, n->len + 1);
    return s;
}

static ProtobufCMessage *new_message(dec_t *d, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = malloc(desc->sizeof_message);
    if (m == NULL) {
        d->nomem = 1;
        return NULL;
    }
    desc->message_init(m);
    return m;
}

static int decode_message(dec_t *d, const ProtobufCMessageDescriptor *desc, ProtobufCMessage *msg,
                          const rm__node_t *node);

static int decode_duration(dec_t *d, const rm__node_t *n, const rm__node_t *at,
                           ProtobufCMessage **out)
{
    Remora__V1__Duration *dur;
    uint64_t ms;
    int rc;

    if (memchr(n->text, '\0', n->len) != NULL) {
        errorf(d, at, "must be a duration such as \"250ms\", \"2s\" or \"1m\"");
        return -1;
    }
    rc = rm_duration_parse(n->text, &ms);
    if (rc < 0) {
        char q[RM__QUOTE_BUF];
        rm__quote(n->text, n->len, q, sizeof(q));
        errorf(d, at, "duration \"%s\" %s", q, rm_duration_strerror(rc));
        return -1;
    }
    dur = (Remora__V1__Duration *)new_message(d, &remora__v1__duration__descriptor);
    if (dur == NULL)
        return -1;
    dur->has_millis = 1;
    dur->millis = ms;
    *out = &dur->base;
    return 0;
}

/*
 * Decodes one value of field f's type from node n into dst (a member, or an array element).
 * Strings and messages are stored as pointers, owned by the parent from here on.
 */
static int decode_value(dec_t *d, const ProtobufCFieldDescriptor *f, const rm__node_t *n,
                        const rm__node_t *at, void *dst)
{
    uint64_t u;
    int64_t s;

    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const ProtobufCMessageDescriptor *md = f->descriptor;
        ProtobufCMessage *m = NULL;
        if (rm__is_duration(md)) {
            if (n->kind != RM__NODE_SCALAR) {
                errorf(d, at, "%s, not %s", type_expectation(f), node_noun(n));
                return -1;
            }
            if (decode_duration(d, n, at, &m) < 0)
                return -1;
            put_ptr(dst, 0, m);
            return 0;
        }
        if (n->kind != RM__NODE_MAPPING) {
            errorf(d, at, "must be a mapping, not %s", node_noun(n));
            return -1;
        }
        m = new_message(d, md);
        if (m == NULL)
            return -1;
        put_ptr(dst, 0, m);
        return decode_message(d, md, m, n);
    }
    if (n->kind != RM__NODE_SCALAR) {
        errorf(d, at, "%s, not %s", type_expectation(f), node_noun(n));
        return -1;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        char *str = decode_string(d, n, at);
        if (str == NULL)
            return -1;
        put_ptr(dst, 0, str);
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean b;
        if (n->quoted || (strcmp(n->text, "true") != 0 && strcmp(n->text, "false") != 0)) {
            errorf(d, at, "must be true or false");
            return -1;
        }
        b = n->text[0] == 't';
        memcpy(dst, &b, sizeof(b));
        return 0;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (parse_unsigned(d, n, at, UINT32_MAX, &u) < 0)
            return -1;
        put_u32(dst, 0, (uint32_t)u);
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (parse_unsigned(d, n, at, UINT64_MAX, &u) < 0)
            return -1;
        memcpy(dst, &u, sizeof(u));
        return 0;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int32_t v;
        if (parse_signed(d, n, at, INT32_MIN, INT32_MAX, &s) < 0)
            return -1;
        v = (int32_t)s;
        memcpy(dst, &v, sizeof(v));
        return 0;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (parse_signed(d, n, at, INT64_MIN, INT64_MAX, &s) < 0)
            return -1;
        memcpy(dst, &s, sizeof(s));
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        for (unsigned i = 0; i < ed->n_values; i++) {
            if (strlen(ed->values[i].name) == n->len &&
                memcmp(ed->values[i].name, n->text, n->len) == 0) {
                int32_t v = ed->values[i].value;
                memcpy(dst, &v, sizeof(v));
                return 0;
            }
        }
        errorf(d, at, "must be one of the names of %s", ed->name);
        return -1;
    }
    default:
        errorf(d, at, "%s", type_expectation(f));
        return -1;
    }
}

/* ---- repeated fields and maps ---- */

/* Grows a repeated field's array to hold one more element; the count is bumped by the caller
 * once the element is filled, so the array never shows an uninitialised element. */
static void *grow_array(dec_t *d, void *msg, const ProtobufCFieldDescriptor *f, size_t elem)
{
    size_t n;
    char *arr = get_ptr(msg, f->offset);
    memcpy(&n, (char *)msg + f->quantifier_offset, sizeof(n));
    /* Powers of two: capacity follows from the count. */
    if (n == 0 || (n & (n - 1)) == 0) {
        char *na = realloc(arr, (n ? n * 2 : 1) * elem);
        if (na == NULL) {
            d->nomem = 1;
            return NULL;
        }
        arr = na;
        put_ptr(msg, f->offset, arr);
    }
    memset(arr + n * elem, 0, elem);
    return arr + n * elem;
}

static void bump_count(void *msg, const ProtobufCFieldDescriptor *f)
{
    size_t n;
    memcpy(&n, (char *)msg + f->quantifier_offset, sizeof(n));
    n++;
    memcpy((char *)msg + f->quantifier_offset, &n, sizeof(n));
}

typedef struct key_ref {
    const rm__node_t *node;
    size_t index; /* pair index in the mapping */
} key_ref_t;

static int compare_keys(const void *a, const void *b)
{
    const key_ref_t *p = a, *q = b;
    const rm__node_t *x = p->node, *y = q->node;
    size_t l = x->len < y->len ? x->len : y->len;
    int c;

    /* Non-scalar keys (reported elsewhere) sort apart and never count as duplicates. */
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    c = x->kind == RM__NODE_SCALAR && l > 0 ? memcmp(x->text, y->text, l) : 0;
    if (c != 0)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return p->index < q->index ? -1 : (p->index > q->index);
}

static int same_scalar_key(const rm__node_t *x, const rm__node_t *y)
{
    return x->kind == RM__NODE_SCALAR && y->kind == RM__NODE_SCALAR && x->len == y->len &&
           memcmp(x->text, y->text, x->len) == 0;
}

/*
 * For each key that repeats an earlier key of the same mapping, first[i] = that earlier key.
 * Sorting makes a mapping of many keys cost n log n, not n^2. Returns NULL when there are no
 * duplicates (or no memory: then duplicates go unreported, and d->nomem fails the decode).
 */
static const rm__node_t **find_duplicate_keys(dec_t *d, const rm__node_t *map)
{
    size_t n = map->n_items / 2, group = 0;
    key_ref_t *sorted;
    const rm__node_t **first;
    int any = 0;

    if (n < 2)
        return NULL;
    sorted = malloc(n * sizeof(*sorted));
    first = calloc(n, sizeof(void *));
    if (sorted == NULL || first == NULL) {
        d->nomem = 1;
        free(sorted);
        free(first);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = (key_ref_t){map->items[2 * i], i};
    qsort(sorted, n, sizeof(*sorted), compare_keys);
    for (size_t i = 1; i < n; i++) {
        if (!same_scalar_key(sorted[group].node, sorted[i].node)) {
            group = i;
            continue;
        }
        first[sorted[i].index] = sorted[group].node;
        any = 1;
    }
    free(sorted);
    if (!any) {
        free(first);
        return NULL;
    }
    return first;
}

static int decode_map(dec_t *d, void *msg, const ProtobufCFieldDescriptor *f,
                      const rm__node_t *node, const rm__node_t *at)
{
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
    const rm__node_t **dups;
    int rc = 0;

    if (node->kind != RM__NODE_MAPPING) {
        errorf(d, at, "must be a mapping, not %s", node_noun(node));
        return -1;
    }
    dups = find_duplicate_keys(d, node);
    for (size_t i = 0; i + 1 < node->n_items; i += 2) {
        const rm__node_t *k = node->items[i], *v = node->items[i + 1];
        ProtobufCMessage *entry;
        void *slot;
        size_t mark;

        if (k->kind != RM__NODE_SCALAR) {
            errorf(d, k, "keys must be strings, not %s", node_noun(k));
            rc = -1;
            continue;
        }
        mark = rm__path_key(&d->path, k->text, k->len);
        record(d, k);
        if (dups != NULL && dups[i / 2] != NULL) {
            char q[RM__QUOTE_BUF];
            rm__quote(k->text, k->len, q, sizeof(q));
            rm__path_pop(&d->path, mark);
            errorf(d, k, "duplicate key \"%s\" (first at line %d, column %d)", q, dups[i / 2]->line,
                   dups[i / 2]->col);
            rc = -1;
            continue;
        }
        slot = grow_array(d, msg, f, sizeof(void *));
        entry = slot ? new_message(d, ed) : NULL;
        if (entry == NULL) {
            rm__path_pop(&d->path, mark);
            rc = -1;
            break;
        }
        put_ptr(slot, 0, entry);
        bump_count(msg, f);
        if (decode_value(d, kf, k, k, (char *)entry + kf->offset) < 0)
            rc = -1;
        else if (kf->label == PROTOBUF_C_LABEL_OPTIONAL && kf->type != PROTOBUF_C_TYPE_STRING &&
                 kf->type != PROTOBUF_C_TYPE_MESSAGE)
            put_u32(entry, kf->quantifier_offset, 1);
        if (!rm__node_is_null(v)) {
            if (decode_value(d, vf, v, k, (char *)entry + vf->offset) < 0)
                rc = -1;
            else if (vf->label == PROTOBUF_C_LABEL_OPTIONAL && vf->type != PROTOBUF_C_TYPE_STRING &&
                     vf->type != PROTOBUF_C_TYPE_MESSAGE)
                put_u32(entry, vf->quantifier_offset, 1);
        }
        rm__path_pop(&d->path, mark);
        if (d->nomem)
            break;
    }
    free(dups);
    return rc;
}

static int decode_repeated(dec_t *d, void *msg, const ProtobufCFieldDescriptor *f,
                           const rm__node_t *node, const rm__node_t *at)
{
    size_t elem = rm__field_elem_size(f);
    int rc = 0;

    if (f->type == PROTOBUF_C_TYPE_MESSAGE && rm__is_map_entry(f->descriptor))
        return decode_map(d, msg, f, node, at);
    if (node->kind != RM__NODE_SEQUENCE) {
        errorf(d, at, "must be a list, not %s", node_noun(node));
        return -1;
    }
    if (elem == 0) {
        errorf(d, at, "%s", type_expectation(f));
        return -1;
    }
    for (size_t i = 0; i < node->n_items; i++) {
        const rm__node_t *item = node->items[i];
        size_t mark = rm__path_index(&d->path, i);
        void *slot;
        record(d, item);
        if (rm__node_is_null(item)) {
            errorf(d, item, "must not be null (%s)", type_expectation(f));
            rc = -1;
        } else if ((slot = grow_array(d, msg, f, elem)) == NULL) {
            rc = -1;
        } else if (decode_value(d, f, item, item, slot) == 0) {
            bump_count(msg, f);
        } else {
            /* A message element was linked into the slot before failing: keep it counted so
             * free_unpacked releases it. */
            if (f->type == PROTOBUF_C_TYPE_MESSAGE && get_ptr(slot, 0) != NULL)
                bump_count(msg, f);
            rc = -1;
        }
        rm__path_pop(&d->path, mark);
        if (d->nomem)
            return -1;
    }
    return rc;
}

/* ---- messages ---- */

static void unknown_field(dec_t *d, const ProtobufCMessageDescriptor *desc, const rm__node_t *k)
{
    const char *names[64 + 1];
    char jn[64][RM__NAME_BUF], q[RM__QUOTE_BUF], list[1024] = "";
    unsigned n = desc->n_fields < 64 ? desc->n_fields : 64;
    const char *hint;

    if (rm__diags_full(d->errors)) {
        d->failed = 1;
        d->errors->dropped++;
        return;
    }
    for (unsigned i = 0, o = 0; i < n; i++) {
        rm__json_name(desc->fields[i].name, jn[i], sizeof(jn[i]));
        names[i] = jn[i];
        if (o + strlen(jn[i]) + 3 < sizeof(list))
            o += (unsigned)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", jn[i]);
    }
    names[n] = NULL;
    rm__quote(k->text, k->len, q, sizeof(q));
    hint = rm__suggest(k->text, k->len, names);
    if (hint != NULL)
        errorf(d, k, "unknown field \"%s\" (did you mean \"%s\"?)", q, hint);
    else
        errorf(d, k, "unknown field \"%s\" (expected one of: %s)", q, list);
}

/* The other member of f's oneof that is already set, if any. */
static const ProtobufCFieldDescriptor *oneof_rival(const ProtobufCMessageDescriptor *desc,
                                                   const ProtobufCMessage *msg,
                                                   const ProtobufCFieldDescriptor *f)
{
    uint32_t cur;
    if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return NULL;
    memcpy(&cur, (const char *)msg + f->quantifier_offset, sizeof(cur));
    if (cur == 0 || cur == f->id)
        return NULL;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        if (desc->fields[i].id == cur && desc->fields[i].quantifier_offset == f->quantifier_offset)
            return &desc->fields[i];
    }
    return NULL;
}

static void oneof_members(const ProtobufCMessageDescriptor *desc, const ProtobufCFieldDescriptor *f,
                          char *buf, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *g = &desc->fields[i];
        char jn[RM__NAME_BUF];
        if (!(g->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
            g->quantifier_offset != f->quantifier_offset)
            continue;
        rm__json_name(g->name, jn, sizeof(jn));
        if (o + strlen(jn) + 3 >= n)
            break;
        o += (size_t)snprintf(buf + o, n - o, "%s%s", o ? ", " : "", jn);
    }
}

static int decode_field(dec_t *d, const ProtobufCMessageDescriptor *desc, ProtobufCMessage *msg,
                        const ProtobufCFieldDescriptor *f, const rm__node_t *k, const rm__node_t *v)
{
    const ProtobufCFieldDescriptor *rival;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return decode_repeated(d, msg, f, v, k);
    rival = oneof_rival(desc, msg, f);
    if (rival != NULL) {
        char a[RM__NAME_BUF], b[RM__NAME_BUF], members[512];
        rm__json_name(rival->name, a, sizeof(a));
        rm__json_name(f->name, b, sizeof(b));
        oneof_members(desc, f, members, sizeof(members));
        errorf(d, k, "\"%s\" and \"%s\" are both set; set only one of %s", a, b, members);
        return -1;
    }
    if (decode_value(d, f, v, k, (char *)msg + f->offset) < 0) {
        /* A sub-message is linked before its fields are decoded; a oneof member only counts
         * (and is freed) when its case is set, so set it even on failure. */
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && f->type == PROTOBUF_C_TYPE_MESSAGE &&
            get_ptr(msg, f->offset) != NULL)
            put_u32(msg, f->quantifier_offset, f->id);
        return -1;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        put_u32(msg, f->quantifier_offset, f->id);
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
             f->type != PROTOBUF_C_TYPE_MESSAGE)
        put_u32(msg, f->quantifier_offset, 1);
    return 0;
}

static int decode_message(dec_t *d, const ProtobufCMessageDescriptor *desc, ProtobufCMessage *msg,
                          const rm__node_t *node)
{
    const rm__node_t *seen[64] = {0};
    int rc = 0;

    if (desc->n_fields > 64) {
        errorf(d, node, "message %s has too many fields for the config decoder", desc->name);
        return -1;
    }
    for (size_t i = 0; i + 1 < node->n_items; i += 2) {
        const rm__node_t *k = node->items[i], *v = node->items[i + 1];
        const ProtobufCFieldDescriptor *f;
        size_t idx, mark;

        if (k->kind != RM__NODE_SCALAR) {
            errorf(d, k, "keys must be field names, not %s", node_noun(k));
            rc = -1;
            continue;
        }
        f = rm__field_by_json_name(desc, k->text, k->len);
        if (f == NULL) {
            unknown_field(d, desc, k);
            rc = -1;
            continue;
        }
        idx = (size_t)(f - desc->fields);
        if (seen[idx] != NULL) {
            char jn[RM__NAME_BUF];
            rm__json_name(f->name, jn, sizeof(jn));
            errorf(d, k, "duplicate key \"%s\" (first at line %d, column %d)", jn, seen[idx]->line,
                   seen[idx]->col);
            rc = -1;
            continue;
        }
        seen[idx] = k;
        {
            char jn[RM__NAME_BUF];
            rm__json_name(f->name, jn, sizeof(jn));
            mark = rm__path_field(&d->path, jn);
        }
        record(d, k);
        /* YAML null (`vip:`, `vip: ~`, JSON null) means the field is absent. */
        if (!rm__node_is_null(v) && decode_field(d, desc, msg, f, k, v) < 0)
            rc = -1;
        rm__path_pop(&d->path, mark);
        if (d->nomem)
            return -1;
    }
    return rc;
}

/* ---- documents ---- */

/* Finds the document's `kind`: 0 with *out set, or -1 with the error reported. */
static int document_kind(dec_t *d, const rm__doc_t *doc, rm__list_t *out)
{
    const rm__node_t *root = doc->root, *kv = NULL, *kk = NULL;
    char q[RM__QUOTE_BUF];
    const char *hint;

    for (size_t i = 0; i + 1 < root->n_items; i += 2) {
        const rm__node_t *k = root->items[i];
        if (k->kind == RM__NODE_SCALAR && k->len == 4 && memcmp(k->text, "kind", 4) == 0) {
            kk = k;
            kv = root->items[i + 1];
            break;
        }
    }
    rm__path_field(&d->path, "kind");
    if (kv == NULL || rm__node_is_null(kv)) {
        const rm__node_t at = {.line = kk ? kk->line : doc->line, .col = kk ? kk->col : doc->col};
        errorf(d, &at, "is required (one of Service, Route, CircuitBreaker)");
        goto fail;
    }
    if (kv->kind != RM__NODE_SCALAR) {
        errorf(d, kk, "must be a string (one of Service, Route, CircuitBreaker), not %s",
               node_noun(kv));
        goto fail;
    }
    for (int l = 0; l < RM__LIST_COUNT; l++) {
        if (strlen(rm__kind_names[l]) == kv->len &&
            memcmp(rm__kind_names[l], kv->text, kv->len) == 0) {
            *out = (rm__list_t)l;
            rm__path_pop(&d->path, 0);
            return 0;
        }
    }
    rm__quote(kv->text, kv->len, q, sizeof(q));
    hint = rm__suggest(kv->text, kv->len, rm__kind_names);
    if (hint != NULL)
        errorf(d, kk, "unknown kind \"%s\" (did you mean \"%s\"?)", q, hint);
    else
        errorf(d, kk, "unknown kind \"%s\" (must be one of Service, Route, CircuitBreaker)", q);
fail:
    rm__path_pop(&d->path, 0);
    return -1;
}

static void decode_document(dec_t *d, const rm__doc_t *doc, Remora__V1__ConfigSet *set)
{
    const rm__node_t *root = doc->root;
    const rm__node_t at = {.line = doc->line, .col = doc->col};
    const ProtobufCMessageDescriptor *desc;
    ProtobufCMessage *msg;
    rm__list_t list;

    if (rm__node_is_null(root)) {
        errorf(d, &at, "document %d is empty", doc->number);
        return;
    }
    if (root->kind != RM__NODE_MAPPING) {
        errorf(d, &at, "document %d must be a mapping with a kind, not %s", doc->number,
               node_noun(root));
        return;
    }
    if (document_kind(d, doc, &list) < 0)
        return;
    desc = rm__kind_descriptor(list);
    msg = new_message(d, desc);
    if (msg == NULL)
        return;
    if (rm__list_append(set, list, msg) < 0) {
        protobuf_c_message_free_unpacked(msg, NULL);
        d->nomem = 1;
        return;
    }
    if (rm__smb_doc(d->smb, list, rm__list_len(set, list) - 1, doc->line, doc->col) < 0) {
        d->nomem = 1;
        return;
    }
    if (decode_message(d, desc, msg, root) < 0)
        d->failed = 1;
}

int rm__decode(const rm__tree_t *tree, const char *file, Remora__V1__ConfigSet **out,
               rm_config_diags_t *errors)
{
    dec_t d = {.file = file, .errors = errors};
    Remora__V1__ConfigSet *set = malloc(sizeof(*set));
    int rc = 0;

    *out = NULL;
    d.smb = rm__smb_new(file);
    if (set == NULL || d.smb == NULL) {
        free(set);
        rm__smb_free(d.smb);
        return -ENOMEM;
    }
    remora__v1__config_set__init(set);
    for (size_t i = 0; i < tree->n_docs && !d.nomem; i++)
        decode_document(&d, &tree->docs[i], set);
    if (d.nomem || d.path.nomem)
        rc = -ENOMEM;
    else if (d.failed)
        rc = -EINVAL;
    else
        rc = rm__smb_attach(d.smb, set);
    rm__smb_free(d.smb);
    rm__path_free(&d.path);
    if (rc < 0) {
        protobuf_c_message_free_unpacked(&set->base, NULL);
        return rc;
    }
    *out = set;
    return 0;
}
