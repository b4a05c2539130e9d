/* dataplane/route/match.c — whether a request satisfies a compiled match: headers, cookies,
 * query parameters, path and method. Runs per request: no allocation, no strlen; cookies and
 * query parameters are parsed in place as they are needed.
 */
#include <string.h>

#include "dataplane/route/route.h"
#include "dataplane/snapshot/snapshot.h"

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* s (any case) equals lc (already lowercase), both n bytes. */
static bool eq_nocase(const char *s, const char *lc, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != (unsigned char)lc[i])
            return false;
    return true;
}

static bool value_matches(const rm_kv_match_t *m, const char *v, size_t n)
{
    switch (m->kind) {
    case RM_MATCH_EXACT:
        return n == m->value_len && (n == 0 || memcmp(v, m->value, n) == 0);
    case RM_MATCH_PREFIX:
        return n >= m->value_len && (m->value_len == 0 || memcmp(v, m->value, m->value_len) == 0);
    case RM_MATCH_SUFFIX:
        return n >= m->value_len &&
               (m->value_len == 0 || memcmp(v + n - m->value_len, m->value, m->value_len) == 0);
    case RM_MATCH_REGEX:
        return rm_snapshot_regex_match(&m->re, v, n) == 1;
    case RM_MATCH_PRESENT:
        return true;
    default:
        return false;
    }
}

/* The verdict once the name was seen (found) or not, for the kinds that ignore values, and for
 * value kinds when no occurrence matched. */
static bool verdict_without_match(const rm_kv_match_t *m, bool found)
{
    if (m->kind == RM_MATCH_ABSENT)
        return !found;
    if (m->kind == RM_MATCH_PRESENT)
        return found;
    return false;
}

/* ---- headers ---------------------------------------------------------------------------- */

static bool header_holds(const rm_kv_match_t *m, const rm_request_view_t *req)
{
    bool found = false;
    for (size_t i = 0; i < req->nheaders; i++) {
        const rm_header_view_t *h = &req->headers[i];
        if (h->name_len != m->name_len || !eq_nocase(h->name, m->name, m->name_len))
            continue;
        found = true;
        if (m->kind == RM_MATCH_ABSENT)
            return false;
        if (value_matches(m, h->value, h->value_len))
            return true;
    }
    return verdict_without_match(m, found);
}

const char *rm_route_header_value(const rm_request_view_t *req, const char *name, size_t name_len,
                                  size_t *value_len)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        const rm_header_view_t *h = &req->headers[i];
        if (h->name_len == name_len && eq_nocase(h->name, name, name_len)) {
            *value_len = h->value_len;
            return h->value != NULL ? h->value : "";
        }
    }
    return NULL;
}

/* ---- cookies ---------------------------------------------------------------------------- */

/* Walks every name=value pair of every Cookie header. */
typedef struct cookie_iter {
    const rm_request_view_t *req;
    size_t next_header; /* the header after the one being split */
    const char *p;      /* rest of the current header's value */
    const char *end;
} cookie_iter_t;

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool cookie_next(cookie_iter_t *it, const char **name, size_t *nlen, const char **val,
                        size_t *vlen)
{
    for (;;) {
        while (it->p == NULL || it->p >= it->end) {
            /* Next Cookie header. */
            const rm_request_view_t *req = it->req;
            for (;;) {
                if (it->next_header >= req->nheaders)
                    return false;
                const rm_header_view_t *h = &req->headers[it->next_header++];
                if (h->name_len == 6 && eq_nocase(h->name, "cookie", 6) && h->value_len > 0) {
                    it->p = h->value;
                    it->end = h->value + h->value_len;
                    break;
                }
            }
        }
        const char *seg = it->p;
        const char *semi = memchr(seg, ';', (size_t)(it->end - seg));
        const char *segend = semi != NULL ? semi : it->end;
        it->p = semi != NULL ? semi + 1 : it->end;
        while (seg < segend && is_ows(*seg))
            seg++;
        while (segend > seg && is_ows(segend[-1]))
            segend--;
        const char *eq = memchr(seg, '=', (size_t)(segend - seg));
        if (eq == NULL)
            continue; /* "flag" without '=': not a name=value pair */
        const char *ne = eq;
        while (ne > seg && is_ows(ne[-1]))
            ne--;
        const char *vs = eq + 1;
        while (vs < segend && is_ows(*vs))
            vs++;
        if (ne == seg)
            continue; /* "=value": no name */
        *name = seg;
        *nlen = (size_t)(ne - seg);
        *val = vs;
        *vlen = (size_t)(segend - vs);
        return true;
    }
}

static bool cookie_holds(const rm_kv_match_t *m, const rm_request_view_t *req)
{
    cookie_iter_t it = {.req = req};
    const char *n, *v;
    size_t nl, vl;
    bool found = false;
    while (cookie_next(&it, &n, &nl, &v, &vl)) {
        if (nl != m->name_len || memcmp(n, m->name, nl) != 0)
            continue;
        found = true;
        if (m->kind == RM_MATCH_ABSENT)
            return false;
        if (value_matches(m, v, vl))
            return true;
    }
    return verdict_without_match(m, found);
}

const char *rm_route_cookie_value(const rm_request_view_t *req, const char *name, size_t name_len,
                                  size_t *value_len)
{
    cookie_iter_t it = {.req = req};
    const char *n, *v;
    size_t nl, vl;
    while (cookie_next(&it, &n, &nl, &v, &vl)) {
        if (nl == name_len && memcmp(n, name, nl) == 0) {
            *value_len = vl;
            return v;
        }
    }
    return NULL;
}

/* ---- query ------------------------------------------------------------------------------ */

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes one byte of application/x-www-form-urlencoded text at raw[*i], advancing *i. */
static unsigned char qdecode_byte(const char *raw, size_t n, size_t *i)
{
    unsigned char c = (unsigned char)raw[*i];
    if (c == '+') {
        (*i)++;
        return ' ';
    }
    if (c == '%' && n - *i >= 3) { /* both hex digits inside the slice */
        int hi = hexval((unsigned char)raw[*i + 1]), lo = hexval((unsigned char)raw[*i + 2]);
        if (hi >= 0 && lo >= 0) {
            *i += 3;
            return (unsigned char)(hi << 4 | lo);
        }
    }
    (*i)++;
    return c;
}

/* decode(raw) == want, without a buffer. */
static bool qdecode_eq(const char *raw, size_t n, const char *want, size_t wlen)
{
    size_t i = 0, k = 0;
    while (i < n) {
        if (k == wlen)
            return false;
        if (qdecode_byte(raw, n, &i) != (unsigned char)want[k++])
            return false;
    }
    return k == wlen;
}

/* Decodes raw into out (cap bytes). Returns the length, or SIZE_MAX when it does not fit. */
static size_t qdecode(const char *raw, size_t n, char *out, size_t cap)
{
    size_t i = 0, k = 0;
    while (i < n) {
        if (k == cap)
            return SIZE_MAX;
        out[k++] = (char)qdecode_byte(raw, n, &i);
    }
    return k;
}

static bool query_holds(const rm_kv_match_t *m, const rm_request_view_t *req)
{
    const char *q = req->query;
    size_t qlen = req->query_len;
    if (q == NULL) { /* no query: pointer arithmetic on NULL is undefined even by 0 */
        q = "";
        qlen = 0;
    }
    if (qlen > 0 && q[0] == '?') {
        q++;
        qlen--;
    }
    bool found = false;
    const char *p = q, *end = q + qlen;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp != NULL ? amp : end;
        const char *seg = p;
        p = amp != NULL ? amp + 1 : end;
        if (seg == pe)
            continue; /* "a=1&&b=2" */
        const char *eq = memchr(seg, '=', (size_t)(pe - seg));
        const char *ne = eq != NULL ? eq : pe;
        if (!qdecode_eq(seg, (size_t)(ne - seg), m->name, m->name_len))
            continue;
        found = true;
        if (m->kind == RM_MATCH_ABSENT)
            return false;
        if (m->kind == RM_MATCH_PRESENT)
            return true;
        const char *vs = eq != NULL ? eq + 1 : pe;
        char buf[RM_ROUTE_QUERY_VALUE_MAX];
        size_t vl = qdecode(vs, (size_t)(pe - vs), buf, sizeof(buf));
        if (vl != SIZE_MAX && value_matches(m, buf, vl))
            return true;
    }
    return verdict_without_match(m, found);
}

/* ---- path, method, whole match ---------------------------------------------------------- */

static bool path_holds(const rm_path_match_t *m, const rm_request_view_t *req)
{
    const char *p = req->path != NULL ? req->path : "";
    size_t n = req->path_len;
    switch (m->kind) {
    case RM_MATCH_NONE:
        return true;
    case RM_MATCH_EXACT:
        return n == m->value_len && (n == 0 || memcmp(p, m->value, n) == 0);
    case RM_MATCH_PREFIX:
        return n >= m->value_len && (m->value_len == 0 || memcmp(p, m->value, m->value_len) == 0);
    case RM_MATCH_REGEX:
        return rm_snapshot_regex_match(&m->re, p, n) == 1;
    default:
        return false;
    }
}

bool rm_route_match(const rm_match_t *m, const rm_request_view_t *req)
{
    /* Cheapest conditions first: method and path are one comparison each. */
    if (m->method != NULL &&
        (req->method_len != m->method_len || memcmp(req->method, m->method, m->method_len) != 0))
        return false;
    if (!path_holds(&m->path, req))
        return false;
    for (size_t i = 0; i < m->nheaders; i++)
        if (!header_holds(&m->headers[i], req))
            return false;
    for (size_t i = 0; i < m->nquery; i++)
        if (!query_holds(&m->query[i], req))
            return false;
    for (size_t i = 0; i < m->ncookies; i++)
        if (!cookie_holds(&m->cookies[i], req))
            return false;
    return true;
}

void rm_route_split_target(const char *target, size_t len, const char **path, size_t *path_len,
                           const char **query, size_t *query_len)
{
    const char *q = target != NULL ? memchr(target, '?', len) : NULL;
    *path = target;
    if (q == NULL) {
        *path_len = len;
        *query = target != NULL ? target + len : NULL;
        *query_len = 0;
        return;
    }
    *path_len = (size_t)(q - target);
    *query = q + 1;
    *query_len = len - *path_len - 1;
}
