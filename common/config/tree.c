/* common/config/tree.c — reads YAML (and JSON, as YAML flow syntax) with libyaml's event parser
 * into a small node tree that remembers each node's line and column and whether a scalar was
 * quoted. Everything the decoder must not see is rejected here: syntax errors, anchors and
 * aliases, tags, nesting deeper than RM_CONFIG_MAX_DEPTH, inputs over RM_CONFIG_MAX_INPUT.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/config/internal.h"

/* ---- arena: nodes and strings live until the tree is freed, so one free releases them ---- */

#define ARENA_CHUNK 65536

typedef struct arena_chunk arena_chunk_t;
struct arena_chunk {
    arena_chunk_t *next;
    size_t used;
    size_t size;
    _Alignas(16) unsigned char data[];
};

struct rm__arena {
    arena_chunk_t *head;
};

static void *arena_alloc(rm__arena_t *a, size_t size)
{
    arena_chunk_t *c = a->head;
    size = (size + 15) & ~(size_t)15;
    if (c == NULL || c->size - c->used < size) {
        size_t cap = size > ARENA_CHUNK / 4 ? size : ARENA_CHUNK;
        c = malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->size = cap;
        c->used = 0;
        /* A big one-off block goes behind the head so the head's free space is not wasted. */
        if (cap != ARENA_CHUNK && a->head != NULL) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    c->used += size;
    return c->data + c->used - size;
}

static void arena_free(rm__arena_t *a)
{
    if (a == NULL)
        return;
    while (a->head != NULL) {
        arena_chunk_t *next = a->head->next;
        free(a->head);
        a->head = next;
    }
    free(a);
}

/* ---- building ---- */

/* An open mapping or sequence whose children are still arriving. */
typedef struct frame {
    rm__node_t *node;
    rm__node_t **items; /* malloc'd while open; copied into the arena when the node closes */
    size_t n, cap;
} frame_t;

typedef struct builder {
    rm__tree_t *tree;
    const char *file;
    rm_config_diags_t *errors;
    frame_t stack[RM_CONFIG_MAX_DEPTH + 1];
    size_t depth;
    size_t docs_cap;
    int doc_line, doc_col; /* start of the YAML document being read */
    int doc_explicit;      /* it began with "---" */
    int doc_count;         /* documents seen so far (JSON array elements count each) */
} builder_t;

int rm__node_is_null(const rm__node_t *n)
{
    if (n->kind != RM__NODE_SCALAR || n->quoted)
        return 0;
    return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
           strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

static int push_item(frame_t *f, rm__node_t *child)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        rm__node_t **items = realloc(f->items, cap * sizeof(void *));
        if (items == NULL)
            return -ENOMEM;
        f->items = items;
        f->cap = cap;
    }
    f->items[f->n++] = child;
    return 0;
}

static int add_doc(builder_t *b, rm__node_t *root, int line, int col)
{
    rm__tree_t *t = b->tree;
    if (t->n_docs == b->docs_cap) {
        size_t cap = b->docs_cap ? b->docs_cap * 2 : 4;
        rm__doc_t *docs = realloc(t->docs, cap * sizeof(*docs));
        if (docs == NULL)
            return -ENOMEM;
        t->docs = docs;
        b->docs_cap = cap;
    }
    t->docs[t->n_docs].root = root;
    t->docs[t->n_docs].number = ++b->doc_count;
    t->docs[t->n_docs].line = line;
    t->docs[t->n_docs].col = col;
    t->n_docs++;
    return 0;
}

/* A finished node goes to its parent, or becomes a document when it is a root. */
static int attach(builder_t *b, rm__node_t *node)
{
    if (b->depth > 0)
        return push_item(&b->stack[b->depth - 1], node);
    /* SPEC: JSON is one object or an array of objects; each element is its own document. */
    if (b->tree->json && node->kind == RM__NODE_SEQUENCE) {
        for (size_t i = 0; i < node->n_items; i++) {
            rm__node_t *item = node->items[i];
            if (add_doc(b, item, item->line, item->col) < 0)
                return -ENOMEM;
        }
        return 0;
    }
    /* A document is located by its first node; only an empty one has nothing but its "---". */
    if (b->doc_explicit && rm__node_is_null(node))
        return add_doc(b, node, b->doc_line, b->doc_col);
    return add_doc(b, node, node->line, node->col);
}

static rm__node_t *new_node(builder_t *b, rm__node_kind_t kind, yaml_mark_t mark)
{
    rm__node_t *n = arena_alloc(b->tree->arena, sizeof(*n));
    if (n == NULL)
        return NULL;
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    return n;
}

/* Anchors, aliases and tags would make one node mean two things or change its type; we keep
 * documents plain so every field has exactly one place. */
static int check_node_props(builder_t *b, const yaml_char_t *anchor, const yaml_char_t *tag,
                            yaml_mark_t mark)
{
    if (anchor != NULL) {
        rm__diag_add(b->errors, b->file, (int)mark.line + 1, (int)mark.column + 1, NULL, NULL,
                     "anchors and aliases are not supported");
        return -EINVAL;
    }
    if (tag != NULL) {
        char q[RM__QUOTE_BUF];
        rm__quote((const char *)tag, strlen((const char *)tag), q, sizeof(q));
        rm__diag_add(b->errors, b->file, (int)mark.line + 1, (int)mark.column + 1, NULL, NULL,
                     "YAML tags are not supported (found \"%s\")", q);
        return -EINVAL;
    }
    return 0;
}

static int on_scalar(builder_t *b, yaml_event_t *e)
{
    rm__node_t *n;
    char *text;
    int rc = check_node_props(b, e->data.scalar.anchor, e->data.scalar.tag, e->start_mark);
    if (rc < 0)
        return rc;
    n = new_node(b, RM__NODE_SCALAR, e->start_mark);
    text = arena_alloc(b->tree->arena, e->data.scalar.length + 1);
    if (n == NULL || text == NULL)
        return -ENOMEM;
    memcpy(text, e->data.scalar.value, e->data.scalar.length);
    text[e->data.scalar.length] = '\0';
    n->text = text;
    n->len = e->data.scalar.length;
    n->quoted = e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    return attach(b, n);
}

static int on_open(builder_t *b, rm__node_kind_t kind, const yaml_char_t *anchor,
                   const yaml_char_t *tag, yaml_mark_t mark)
{
    rm__node_t *n;
    int rc = check_node_props(b, anchor, tag, mark);
    if (rc < 0)
        return rc;
    if (b->depth >= RM_CONFIG_MAX_DEPTH) {
        rm__diag_add(b->errors, b->file, (int)mark.line + 1, (int)mark.column + 1, NULL, NULL,
                     "nesting is deeper than %d levels", RM_CONFIG_MAX_DEPTH);
        return -EINVAL;
    }
    n = new_node(b, kind, mark);
    if (n == NULL)
        return -ENOMEM;
    memset(&b->stack[b->depth], 0, sizeof(b->stack[0]));
    b->stack[b->depth++].node = n;
    return 0;
}

static int on_close(builder_t *b)
{
    frame_t *f = &b->stack[--b->depth];
    rm__node_t *n = f->node;
    if (f->n > 0) {
        n->items = arena_alloc(b->tree->arena, f->n * sizeof(void *));
        if (n->items == NULL) {
            free(f->items);
            return -ENOMEM;
        }
        memcpy(n->items, f->items, f->n * sizeof(void *));
        n->n_items = f->n;
    }
    free(f->items);
    f->items = NULL;
    return attach(b, n);
}

/* libyaml marks only the byte offset of reader errors (bad UTF-8, control characters). */
static void offset_to_pos(const char *data, size_t len, size_t off, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (data[i] == '\n') {
            l++;
            c = 1;
        } else if ((data[i] & 0xc0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static int parser_error(builder_t *b, yaml_parser_t *p, const char *data, size_t len)
{
    const char *what = b->tree->json ? "JSON" : "YAML";
    const char *problem = p->problem ? p->problem : "unknown problem";
    int line, col;

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return -ENOMEM;
    case YAML_READER_ERROR:
        offset_to_pos(data, len, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            rm__diag_add(b->errors, b->file, line, col, NULL, NULL, "invalid input: %s (0x%02x)",
                         problem, (unsigned)p->problem_value & 0xff);
        else
            rm__diag_add(b->errors, b->file, line, col, NULL, NULL, "invalid input: %s", problem);
        return -EINVAL;
    default:
        line = (int)p->problem_mark.line + 1;
        col = (int)p->problem_mark.column + 1;
        if (p->context != NULL)
            rm__diag_add(b->errors, b->file, line, col, NULL, NULL,
                         "%s syntax error: %s (%s at line %d, column %d)", what, problem,
                         p->context, (int)p->context_mark.line + 1,
                         (int)p->context_mark.column + 1);
        else
            rm__diag_add(b->errors, b->file, line, col, NULL, NULL, "%s syntax error: %s", what,
                         problem);
        return -EINVAL;
    }
}

/*
 * JSON is YAML flow syntax, but libyaml may refuse a tab where YAML wants indentation. Tabs
 * outside strings are only whitespace in JSON, so each becomes one space: columns stay the same.
 * Returns a malloc'd copy, or NULL when out of memory.
 */
static char *detab_json(const char *data, size_t len)
{
    char *copy = malloc(len ? len : 1);
    int in_string = 0;
    if (copy == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (in_string) {
            if (c == '\\' && i + 1 < len) {
                copy[i++] = c;
                c = data[i];
            } else if (c == '"') {
                in_string = 0;
            }
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '\t') {
            c = ' ';
        }
        copy[i] = c;
    }
    return copy;
}

static int looks_like_json(const char *data, size_t len)
{
    size_t i = 0;
    if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    for (; i < len; i++) {
        char c = data[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        return c == '{' || c == '[';
    }
    return 0;
}

static int run_parser(builder_t *b, const char *data, size_t len)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    int rc = 0, done = 0;

    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    while (!done && rc == 0) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = parser_error(b, &parser, data, len);
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            b->doc_line = (int)ev.start_mark.line + 1;
            b->doc_col = (int)ev.start_mark.column + 1;
            b->doc_explicit = !ev.data.document_start.implicit;
            break;
        case YAML_ALIAS_EVENT:
            rm__diag_add(b->errors, b->file, (int)ev.start_mark.line + 1,
                         (int)ev.start_mark.column + 1, NULL, NULL,
                         "anchors and aliases are not supported");
            rc = -EINVAL;
            break;
        case YAML_SCALAR_EVENT:
            rc = on_scalar(b, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = on_open(b, RM__NODE_SEQUENCE, ev.data.sequence_start.anchor,
                         ev.data.sequence_start.tag, ev.start_mark);
            break;
        case YAML_MAPPING_START_EVENT:
            rc = on_open(b, RM__NODE_MAPPING, ev.data.mapping_start.anchor,
                         ev.data.mapping_start.tag, ev.start_mark);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (b->depth > 0)
                rc = on_close(b);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    while (b->depth > 0)
        free(b->stack[--b->depth].items);
    return rc;
}

int rm__tree_load(rm__tree_t *tree, const char *file, const char *data, size_t len,
                  rm_config_diags_t *errors)
{
    builder_t b;
    char *detabbed = NULL;
    int rc;

    memset(&b, 0, sizeof(b));
    b.tree = tree;
    b.file = file;
    b.errors = errors;
    if (len > RM_CONFIG_MAX_INPUT) {
        rm__diag_add(errors, file, 0, 0, NULL, NULL,
                     "input is %zu bytes, more than the limit of 4 MiB (%zu bytes)", len,
                     RM_CONFIG_MAX_INPUT);
        return -EINVAL;
    }
    tree->arena = calloc(1, sizeof(*tree->arena));
    if (tree->arena == NULL)
        return -ENOMEM;
    tree->json = looks_like_json(data, len);
    if (tree->json) {
        detabbed = detab_json(data, len);
        if (detabbed == NULL)
            return -ENOMEM;
        data = detabbed;
    }
    rc = run_parser(&b, data, len);
    free(detabbed);
    if (rc == 0 && tree->n_docs == 0) {
        rm__diag_add(errors, file, 0, 0, NULL, NULL,
                     "contains no documents (expected at least one with kind Service, Route or "
                     "CircuitBreaker)");
        rc = -EINVAL;
    }
    return rc;
}

void rm__tree_free(rm__tree_t *tree)
{
    if (tree == NULL)
        return;
    free(tree->docs);
    arena_free(tree->arena);
    memset(tree, 0, sizeof(*tree));
}
