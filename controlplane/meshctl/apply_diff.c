/* controlplane/meshctl/apply_diff.c — what `meshctl apply --dry-run` shows for each document the
 * control plane would create or update: a line diff of the stored document against the new one,
 * both printed as YAML by common/config.
 *
 * The new documents are validated locally (only to fill in the defaults the stored ones carry,
 * such as namespace and retry settings, so that the diff shows real changes rather than
 * defaults); the context is the current config's Services, read with one Get.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config/config.h"
#include "controlplane/meshctl/meshctl.h"
#include "remora/v1/admin.pb-c.h"

#define MAX_DIFF_LINES 4000

typedef struct lines {
    char **v; /* borrowed pointers into one owned buffer */
    size_t n;
    char *buf; /* owned */
} lines_t;

static void lines_split(char *text, lines_t *l)
{
    memset(l, 0, sizeof(*l));
    l->buf = text;
    if (text == NULL)
        return;
    size_t cap = 0;
    for (char *p = text; *p != '\0';) {
        char *nl = strchr(p, '\n');
        if (nl != NULL)
            *nl = '\0';
        if (!(strcmp(p, "---") == 0)) {
            if (l->n == cap) {
                cap = cap ? cap * 2 : 64;
                l->v = rm__xrealloc(l->v, cap * sizeof(*l->v));
            }
            l->v[l->n++] = p;
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
}

static void lines_free(lines_t *l)
{
    free(l->v);
    free(l->buf);
}

/* Prints a unified-style diff (every line, "-"/"+"/" " prefixed) from the LCS of a and b. */
static void print_diff(const lines_t *a, const lines_t *b)
{
    if (a->n > MAX_DIFF_LINES || b->n > MAX_DIFF_LINES) {
        printf("  (document too large to diff: %zu and %zu lines)\n", a->n, b->n);
        return;
    }
    size_t w = b->n + 1;
    unsigned *lcs = rm__xcalloc((a->n + 1) * w, sizeof(*lcs));
    for (size_t i = a->n; i-- > 0;)
        for (size_t j = b->n; j-- > 0;)
            lcs[i * w + j] = strcmp(a->v[i], b->v[j]) == 0
                                 ? lcs[(i + 1) * w + j + 1] + 1
                                 : (lcs[(i + 1) * w + j] > lcs[i * w + j + 1] ? lcs[(i + 1) * w + j]
                                                                              : lcs[i * w + j + 1]);
    size_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        if (i < a->n && j < b->n && strcmp(a->v[i], b->v[j]) == 0) {
            printf("    %s\n", a->v[i]);
            i++, j++;
        } else if (i < a->n && (j == b->n || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])) {
            printf("  - %s\n", a->v[i++]); /* removals first, as diff(1) prints them */
        } else {
            printf("  + %s\n", b->v[j++]);
        }
    }
    free(lcs);
}

typedef enum { K_SVC, K_ROUTE, K_CB } kind_t;

static int kind_of(const char *kind)
{
    if (strcmp(kind, "Service") == 0)
        return K_SVC;
    if (strcmp(kind, "Route") == 0)
        return K_ROUTE;
    if (strcmp(kind, "CircuitBreaker") == 0)
        return K_CB;
    return -1;
}

/* The YAML of the document kind/ns/name in `set`, or NULL when absent. */
static char *doc_yaml(const Remora__V1__ConfigSet *set, int kind, const char *ns, const char *name)
{
    Remora__V1__ConfigSet one = REMORA__V1__CONFIG_SET__INIT;
    if (set == NULL)
        return NULL;
#define FIND(n_field, arr)                                                                         \
    for (size_t i = 0; i < set->n_field; i++) {                                                    \
        const char *dns = set->arr[i]->namespace_ ? set->arr[i]->namespace_ : "default";           \
        if (set->arr[i]->name && strcmp(set->arr[i]->name, name) == 0 && strcmp(dns, ns) == 0) {   \
            one.n_field = 1;                                                                       \
            one.arr = &set->arr[i];                                                                \
            return rm_config_to_yaml(&one);                                                        \
        }                                                                                          \
    }
    if (kind == K_SVC) {
        FIND(n_services, services)
    } else if (kind == K_ROUTE) {
        FIND(n_routes, routes)
    } else {
        FIND(n_circuit_breakers, circuit_breakers)
    }
#undef FIND
    return NULL;
}

int rm__apply_diff(rm__cli_t *cli, Remora__V1__ConfigSet *local,
                   Remora__V1__DocumentChange **changes, size_t n_changes)
{
    Remora__V1__GetRequest req = REMORA__V1__GET_REQUEST__INIT;
    req.kind = (char *)"";
    req.name = (char *)"";
    req.namespace_ = (char *)"";
    Remora__V1__GetResponse *cur = NULL;
    int rc = rm__rpc(cli, "Get", &req.base, &remora__v1__get_response__descriptor, 0,
                     (ProtobufCMessage **)&cur);
    if (rc != 0)
        return rc;
    const Remora__V1__ConfigSet *stored = cur->config;

    /* Defaults only; errors cannot happen here that the server did not already accept, and if
     * they do the diff merely shows undefaulted fields. */
    size_t nsvc = stored != NULL ? stored->n_services : 0;
    rm_config_service_ref_t *refs = rm__xcalloc(nsvc, sizeof(*refs));
    for (size_t i = 0; i < nsvc; i++) {
        refs[i].namespace_ = stored->services[i]->namespace_;
        refs[i].name = stored->services[i]->name;
    }
    rm_config_context_t ctx = {.services = refs, .n_services = nsvc};
    rm_config_validate(local, &ctx, NULL, NULL);

    for (size_t i = 0; i < n_changes; i++) {
        const Remora__V1__DocumentChange *c = changes[i];
        int k = kind_of(c->kind);
        if (k < 0 || strcmp(c->change, "unchanged") == 0)
            continue;
        lines_t a, b;
        lines_split(doc_yaml(stored, k, c->namespace_, c->name), &a);
        lines_split(doc_yaml(local, k, c->namespace_, c->name), &b);
        printf("%s %s/%s:\n", c->kind, c->namespace_, c->name);
        print_diff(&a, &b);
        lines_free(&a);
        lines_free(&b);
    }
    free(refs);
    protobuf_c_message_free_unpacked(&cur->base, NULL);
    return RM__EXIT_OK;
}
