/* controlplane/core/scope.c — the scope cache: one rm_scope_t per distinct egress list, shared
 * by every sidecar that sent that list, so the encoded snapshot of a scope is built once per
 * change however many sidecars receive it.
 *
 * A Hello's egress entries are "name" (in the sidecar's namespace), "name.ns", or the DNS forms
 * "name.ns.svc" and "name.ns.svc.cluster.local". They are normalized to "name.ns", sorted and
 * made unique; the joined list is the scope's key. Two sidecars in different namespaces that both
 * say "reviews" therefore get different scopes, as they should.
 *
 * The list of scopes is linked and searched linearly at Hello: there are as many scopes as
 * distinct lists (a handful in a real mesh, at most one per sidecar), and a Hello is rare next to
 * pushes, which walk streams, not scopes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/core/core-int.h"

static rm_scope_t *scope_new(rm_control_t *c, char *key, char **items, size_t n)
{
    rm_scope_t *s = rm_xcalloc(1, sizeof(*s));
    s->key = key;
    s->items = items;
    s->n_items = n;
    s->next = c->scopes;
    c->scopes = s;
    c->n_scopes++;
    return s;
}

static void scope_free(rm_scope_t *s)
{
    for (size_t i = 0; i < s->n_items; i++)
        free(s->items[i]);
    free(s->items);
    free(s->key);
    rm__snapshot_clear(&s->snap);
    free(s);
}

void rm__scope_init(rm_control_t *c)
{
    c->all = scope_new(c, rm_xstrdup(""), NULL, 0);
}

void rm__scope_free_all(rm_control_t *c)
{
    rm_scope_t *s = c->scopes;
    while (s != NULL) {
        rm_scope_t *next = s->next;
        scope_free(s);
        s = next;
    }
    c->scopes = NULL;
    c->all = NULL;
    c->n_scopes = 0;
}

/* A DNS label: 1-63 of [a-z0-9-], not starting or ending with '-'. */
static int dns_label(const char *p, size_t n)
{
    if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return 0;
    }
    return 1;
}

/* One egress entry as "name.ns" (malloc'd), or NULL when it is not one of the accepted forms. */
static char *normalize(const char *e, const char *ns)
{
    size_t len = strlen(e);
    if (len == 0 || len > RM_SCOPE_MAX_ENTRY)
        return NULL;
    /* The DNS suffixes Kubernetes names carry add nothing: drop them. */
    static const char *const suffixes[] = {".svc.cluster.local", ".svc"};
    for (size_t i = 0; i < 2; i++) {
        size_t sl = strlen(suffixes[i]);
        if (len > sl && strcmp(e + len - sl, suffixes[i]) == 0) {
            len -= sl;
            break;
        }
    }
    const char *dot = memchr(e, '.', len);
    if (dot == NULL)
        return dns_label(e, len) ? rm_xasprintf("%.*s.%s", (int)len, e, ns) : NULL;
    size_t n1 = (size_t)(dot - e), n2 = len - n1 - 1;
    if (!dns_label(e, n1) || !dns_label(dot + 1, n2))
        return NULL;
    return rm_xasprintf("%.*s", (int)len, e);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

rm_scope_t *rm__scope_acquire(rm_control_t *c, char *const *egress, size_t n, const char *ns,
                              rm_status_t *code, char *err, size_t errlen)
{
    *code = RM_STATUS_INVALID_ARGUMENT;
    if (n > RM_SCOPE_MAX_ENTRIES) {
        snprintf(err, errlen, "Hello: node.egress has %zu entries (at most %d)", n,
                 RM_SCOPE_MAX_ENTRIES);
        return NULL;
    }
    if (n == 0) {
        c->all->refs++;
        return c->all;
    }
    char **items = rm_xcalloc_ptrs(n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char *it = normalize(egress[i] != NULL ? egress[i] : "", ns);
        if (it == NULL) {
            snprintf(
                err, errlen,
                "Hello: node.egress[%zu] \"%.80s\" is not a service name (name, name.namespace "
                "or name.namespace.svc.cluster.local; lower-case letters, digits, '-')",
                i, egress[i] != NULL ? egress[i] : "");
            for (size_t j = 0; j < k; j++)
                free(items[j]);
            free(items);
            return NULL;
        }
        items[k++] = it;
    }
    qsort(items, k, sizeof(*items), cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < k; i++) {
        if (u > 0 && strcmp(items[u - 1], items[i]) == 0)
            free(items[i]);
        else
            items[u++] = items[i];
    }
    rm_strbuf_t key = {0};
    for (size_t i = 0; i < u; i++)
        rm_strbuf_printf(&key, "%s%s", i ? "," : "", items[i]);
    char *keys = rm_strbuf_take(&key);
    for (rm_scope_t *s = c->scopes; s != NULL; s = s->next) {
        if (strcmp(s->key, keys) == 0) {
            for (size_t i = 0; i < u; i++)
                free(items[i]);
            free(items);
            free(keys);
            s->refs++;
            return s;
        }
    }
    /* A new scope; the "all" scope is not one of the max_scopes. */
    if (c->n_scopes - 1 >= c->opt.max_scopes) {
        for (size_t i = 0; i < u; i++)
            free(items[i]);
        free(items);
        free(keys);
        *code = RM_STATUS_RESOURCE_EXHAUSTED;
        snprintf(err, errlen, "too many distinct egress lists");
        return NULL;
    }
    rm_scope_t *s = scope_new(c, keys, items, u);
    s->refs = 1;
    return s;
}

void rm__scope_release(rm_control_t *c, rm_scope_t *s)
{
    if (s == NULL)
        return;
    if (s->refs > 0)
        s->refs--;
    if (s->refs > 0 || s == c->all)
        return;
    for (rm_scope_t **pp = &c->scopes; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            c->n_scopes--;
            scope_free(s);
            return;
        }
    }
}

const char *rm_control_sidecar_scope(const rm_sidecar_t *sc)
{
    return sc->scope != NULL && sc->scope->n_items > 0 ? sc->scope->key : "all";
}
