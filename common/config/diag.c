/* common/config/diag.c — diagnostics ("file:line:col: path: message"), field paths, quoting of
 * user text inside messages, and did-you-mean suggestions.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config/internal.h"

/* ---- diagnostics ---- */

int rm__diags_full(const rm_config_diags_t *d)
{
    return d->count >= RM_CONFIG_MAX_DIAGS;
}

static char *dup_or_null(const char *s, int *failed)
{
    char *c;
    if (s == NULL)
        return NULL;
    c = strdup(s);
    if (c == NULL)
        *failed = 1;
    return c;
}

int rm__diag_add(rm_config_diags_t *d, const char *file, int line, int col, const char *doc,
                 const char *path, const char *fmt, ...)
{
    rm_config_diag_t diag = {0};
    int failed = 0;
    va_list ap;

    if (rm__diags_full(d)) {
        d->dropped++;
        return 0;
    }
    if (d->count == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        rm_config_diag_t *items;
        if (cap > RM_CONFIG_MAX_DIAGS)
            cap = RM_CONFIG_MAX_DIAGS;
        items = realloc(d->items, cap * sizeof(*items));
        if (items == NULL)
            goto nomem;
        d->items = items;
        d->cap = cap;
    }
    va_start(ap, fmt);
    if (vasprintf(&diag.message, fmt, ap) < 0)
        diag.message = NULL;
    va_end(ap);
    if (diag.message == NULL)
        goto nomem;
    diag.file = dup_or_null(file, &failed);
    diag.path = (path != NULL && *path != '\0') ? dup_or_null(path, &failed) : NULL;
    diag.doc = dup_or_null(doc, &failed);
    if (failed)
        goto nomem;
    diag.line = line > 0 ? line : 0;
    diag.col = line > 0 && col > 0 ? col : 0;
    d->items[d->count++] = diag;
    return 0;

nomem:
    free(diag.message);
    free(diag.file);
    free(diag.path);
    free(diag.doc);
    d->dropped++;
    return -ENOMEM;
}

int rm_config_diag_format(const rm_config_diag_t *diag, char *buf, size_t n)
{
    char pos[64] = "";
    const char *file = diag->file;

    if (diag->line > 0 && diag->col > 0)
        snprintf(pos, sizeof(pos), "%d:%d", diag->line, diag->col);
    else if (diag->line > 0)
        snprintf(pos, sizeof(pos), "%d", diag->line);
    return snprintf(buf, n, "%s%s%s%s%s%s%s%s%s", file ? file : "", file && *pos ? ":" : "", pos,
                    file || *pos ? ": " : "", !*pos && diag->doc ? diag->doc : "",
                    !*pos && diag->doc ? ": " : "", diag->path ? diag->path : "",
                    diag->path ? ": " : "", diag->message ? diag->message : "");
}

void rm_config_diags_print(const rm_config_diags_t *diags, FILE *out, const char *prefix)
{
    if (diags == NULL)
        return;
    for (size_t i = 0; i < diags->count; i++) {
        char small[512], *line = small;
        int len = rm_config_diag_format(&diags->items[i], small, sizeof(small));
        if (len < 0)
            continue;
        if ((size_t)len >= sizeof(small)) {
            line = malloc((size_t)len + 1);
            if (line == NULL)
                line = small; /* print it truncated rather than not at all */
            else
                rm_config_diag_format(&diags->items[i], line, (size_t)len + 1);
        }
        fprintf(out, "%s%s\n", prefix ? prefix : "", line);
        if (line != small)
            free(line);
    }
    if (diags->dropped > 0)
        fprintf(out, "%s... and %zu more\n", prefix ? prefix : "", diags->dropped);
}

void rm_config_diags_free(rm_config_diags_t *diags)
{
    if (diags == NULL)
        return;
    for (size_t i = 0; i < diags->count; i++) {
        free(diags->items[i].file);
        free(diags->items[i].path);
        free(diags->items[i].message);
        free(diags->items[i].doc);
    }
    free(diags->items);
    memset(diags, 0, sizeof(*diags));
}

/* ---- quoting ---- */

/*
 * Copies at most `max` source bytes of text into buf, escaping control bytes as \xNN (and '"' and
 * '\' when quote is set) so that whatever a user (or a fuzzer) wrote prints as one safe line.
 */
static void escape_into(const char *text, size_t len, char *buf, size_t n, size_t max, int quote)
{
    size_t o = 0, i;
    if (n == 0)
        return;
    for (i = 0; i < len && i < max; i++) {
        unsigned char c = (unsigned char)text[i];
        char tmp[5];
        size_t k;
        if (c < 0x20 || c == 0x7f)
            snprintf(tmp, sizeof(tmp), "\\x%02x", c);
        else if (quote && (c == '"' || c == '\\'))
            snprintf(tmp, sizeof(tmp), "\\%c", c);
        else
            snprintf(tmp, sizeof(tmp), "%c", c);
        k = strlen(tmp);
        if (o + k + 4 > n) /* keep room for "..." and the NUL */
            break;
        memcpy(buf + o, tmp, k);
        o += k;
    }
    if (i < len && o + 4 <= n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
}

void rm__quote(const char *text, size_t len, char *buf, size_t n)
{
    escape_into(text, len, buf, n, 60, 1);
}

/* ---- suggestions ---- */

#define SUGGEST_MAX 64

static char fold(char c)
{
    return (char)tolower((unsigned char)c);
}

/* Drops '_' and '-' and lower-cases, so per_try_timeout and perTryTimeout compare equal. */
static size_t normalize(const char *s, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o < SUGGEST_MAX; i++) {
        if (s[i] != '_' && s[i] != '-')
            out[o++] = fold(s[i]);
    }
    return o;
}

/* Optimal string alignment distance: a swap of two neighbours ("weigth") costs one. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t d[SUGGEST_MAX + 1][SUGGEST_MAX + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1, best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *rm__suggest(const char *word, size_t len, const char *const *candidates)
{
    char w[SUGGEST_MAX], c[SUGGEST_MAX];
    size_t lw, best_d = (size_t)-1;
    const char *best = NULL;

    if (len == 0 || len > SUGGEST_MAX)
        return NULL;
    lw = normalize(word, len, w);
    for (size_t i = 0; candidates[i] != NULL; i++) {
        size_t lc = normalize(candidates[i], strlen(candidates[i]), c);
        size_t dist = edit_distance(w, lw, c, lc);
        /*
         * About one typo per four letters ("Rout" -> Route, "nme" -> name), at most three; names
         * of one or two letters only match up to case, or "z" would suggest "s".
         */
        size_t limit = (strlen(candidates[i]) + 2) / 4;
        if (limit > 3)
            limit = 3;
        if (dist <= limit && dist < best_d) {
            best_d = dist;
            best = candidates[i];
        }
    }
    return best;
}

/* ---- paths ---- */

static void path_append(rm__path_t *p, const char *s, size_t len)
{
    if (p->len + len + 1 > p->cap) {
        size_t cap = p->cap ? p->cap : 64;
        char *buf;
        while (cap < p->len + len + 1)
            cap *= 2;
        buf = realloc(p->buf, cap);
        if (buf == NULL) {
            p->nomem = 1;
            return;
        }
        p->buf = buf;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, len);
    p->len += len;
    p->buf[p->len] = '\0';
}

size_t rm__path_field(rm__path_t *p, const char *name)
{
    size_t mark = p->len;
    if (p->len > 0)
        path_append(p, ".", 1);
    path_append(p, name, strlen(name));
    return mark;
}

size_t rm__path_index(rm__path_t *p, size_t index)
{
    size_t mark = p->len;
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "[%zu]", index);
    path_append(p, tmp, (size_t)n);
    return mark;
}

size_t rm__path_key(rm__path_t *p, const char *key, size_t len)
{
    size_t mark = p->len;
    char tmp[RM__QUOTE_BUF];
    /* Keys are user text of any length; a path only needs enough to recognise the entry. */
    escape_into(key, len, tmp, sizeof(tmp), 100, 0);
    if (p->len > 0)
        path_append(p, ".", 1);
    path_append(p, tmp, strlen(tmp));
    return mark;
}

void rm__path_pop(rm__path_t *p, size_t mark)
{
    if (mark < p->len) {
        p->len = mark;
        p->buf[mark] = '\0';
    }
}

const char *rm__path_str(const rm__path_t *p)
{
    return p->len > 0 ? p->buf : NULL;
}

void rm__path_free(rm__path_t *p)
{
    free(p->buf);
    memset(p, 0, sizeof(*p));
}
