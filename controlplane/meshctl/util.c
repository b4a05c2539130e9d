/* controlplane/meshctl/util.c — meshctl's small helpers: abort-on-OOM allocation, "did you mean"
 * suggestions by edit distance, kind names, text tables and time formatting.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <errno.h>
#include "controlplane/meshctl/meshctl.h"

/* The CLI has nothing sensible to do without memory (STYLE.md allows aborting here). */
static void oom(void)
{
    fputs("meshctl: out of memory\n", stderr);
    abort();
}

void *rm__xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom();
    return p;
}

void *rm__xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom();
    return p;
}

void *rm__xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL)
        oom();
    return p;
}

char *rm__xstrdup(const char *s)
{
    char *d = strdup(s != NULL ? s : "");
    if (d == NULL)
        oom();
    return d;
}

char *rm__xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int rc = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (rc < 0)
        oom();
    return s;
}

/* ---- suggestions ---- */

size_t rm__cli_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = rm__xcalloc(lb + 1, sizeof(*row));
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}

const char *rm__cli_suggest(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; candidates[i] != NULL; i++) {
        size_t d = rm__cli_edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    /* A typo changes a few characters; a third of the word (at least 2) is still plausible. */
    size_t limit = strlen(word) / 3;
    if (limit < 2)
        limit = 2;
    return best != NULL && best_d <= limit ? best : NULL;
}

void rm__unknown(const char *what, const char *word, const char *const *candidates)
{
    const char *s = rm__cli_suggest(word, candidates);
    fprintf(stderr, "meshctl: unknown %s \"%s\"", what, word);
    if (s != NULL)
        fprintf(stderr, "; did you mean \"%s\"?", s);
    fputs("\n  valid: ", stderr);
    for (size_t i = 0; candidates[i] != NULL; i++)
        fprintf(stderr, "%s%s", i ? ", " : "", candidates[i]);
    fputc('\n', stderr);
}

const char *const rm__kind_words[] = {"services", "routes", "circuitbreakers", NULL};

const char *rm__kind_parse(const char *word)
{
    static const struct {
        const char *word, *kind;
    } map[] = {
        {"services", "services"},
        {"service", "services"},
        {"svc", "services"},
        {"routes", "routes"},
        {"route", "routes"},
        {"circuitbreakers", "circuitbreakers"},
        {"circuitbreaker", "circuitbreakers"},
        {"circuit-breakers", "circuitbreakers"},
        {"circuit-breaker", "circuitbreakers"},
        {"cb", "circuitbreakers"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcasecmp(word, map[i].word) == 0)
            return map[i].kind;
    return NULL;
}

/* ---- tables ---- */

static void table_push(rm__table_t *t, va_list ap)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = rm__xrealloc(t->cells, t->cap * t->ncols * sizeof(*t->cells));
    }
    for (size_t c = 0; c < t->ncols; c++) {
        const char *s = va_arg(ap, const char *);
        t->cells[t->nrows * t->ncols + c] = rm__xstrdup(s != NULL ? s : "-");
    }
    t->nrows++;
}

void rm__table_init(rm__table_t *t, size_t ncols, ...)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    va_list ap;
    va_start(ap, ncols);
    table_push(t, ap);
    va_end(ap);
}

void rm__table_row(rm__table_t *t, ...)
{
    va_list ap;
    va_start(ap, t);
    table_push(t, ap);
    va_end(ap);
}

void rm__table_print(const rm__table_t *t, FILE *out)
{
    size_t *w = rm__xcalloc(t->ncols, sizeof(*w));
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t l = strlen(t->cells[r * t->ncols + c]);
            if (l > w[c])
                w[c] = l;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        /* No trailing blanks: pad only up to the row's last non-empty cell. */
        size_t last = t->ncols;
        while (last > 1 && t->cells[r * t->ncols + last - 1][0] == '\0')
            last--;
        for (size_t c = 0; c < last; c++) {
            const char *s = t->cells[r * t->ncols + c];
            if (c + 1 == last)
                fprintf(out, "%s", s);
            else
                fprintf(out, "%-*s  ", (int)w[c], s);
        }
        fputc('\n', out);
    }
    free(w);
}

void rm__table_free(rm__table_t *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* ---- time ---- */

void rm__ago(uint64_t ms, char *buf, size_t n)
{
    if (ms == 0) {
        snprintf(buf, n, "-");
        return;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t now = (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
    uint64_t s = now > ms ? (now - ms) / 1000u : 0;
    if (s < 120)
        snprintf(buf, n, "%llus ago", (unsigned long long)s);
    else if (s < 7200)
        snprintf(buf, n, "%llum ago", (unsigned long long)(s / 60));
    else
        snprintf(buf, n, "%lluh ago", (unsigned long long)(s / 3600));
}

void rm__wall_time(uint64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000u);
    struct tm tm;
    if (ms == 0 || gmtime_r(&t, &tm) == NULL || strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(buf, n, "-");
}

/* Reads all of `path` ("-": stdin) into a new buffer; prints why on failure. */
char *rm__read_all(const char *cmd, const char *path, size_t max, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "meshctl %s: cannot open %s: %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    size_t cap = 8192, n = 0;
    char *buf = rm__xmalloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                fprintf(stderr, "meshctl %s: %s: larger than %zu bytes\n", cmd, path, max);
                goto fail;
            }
            cap *= 2;
            buf = rm__xrealloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                fprintf(stderr, "meshctl %s: cannot read %s: %s\n", cmd, path, strerror(errno));
                goto fail;
            }
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    *len = n;
    return buf;
fail:
    if (f != stdin)
        fclose(f);
    free(buf);
    return NULL;
}
