/* controlplane/core/config_ops.c — the Admin methods that read or change the config: Apply,
 * Delete, Rollback (each a new version in the store when something changes), Get and History.
 *
 * Every change goes through the same steps: build the complete new config, validate all of it
 * (with the registered endpoints as context), write it to the store as one record, then install
 * it in memory and schedule a push. A failure at any step leaves the store, the memory and the
 * sidecars exactly as they were.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/config/config.h"
#include "common/log/log.h"
#include "controlplane/core/core-int.h"

/* ---- the three document lists of a ConfigSet, generically ---- */

typedef enum doc_list {
    L_SVC = 0,
    L_ROUTE = 1,
    L_CB = 2,
    L_COUNT = 3,
} doc_list_t;

static const char *const kind_names[L_COUNT] = {"Service", "Route", "CircuitBreaker"};
static const char *const kind_lower[L_COUNT] = {"service", "route", "circuitbreaker"};

static size_t list_len(const Remora__V1__ConfigSet *s, doc_list_t l)
{
    return l == L_SVC ? s->n_services : l == L_ROUTE ? s->n_routes : s->n_circuit_breakers;
}

static ProtobufCMessage *list_get(const Remora__V1__ConfigSet *s, doc_list_t l, size_t i)
{
    if (l == L_SVC)
        return &s->services[i]->base;
    if (l == L_ROUTE)
        return &s->routes[i]->base;
    return &s->circuit_breakers[i]->base;
}

/* Appends m to the list (realloc of the pointer array: the arrays of sets we build, and those of
 * rm_config_parse, are plain malloc'd arrays). Ownership of m follows the set's. */
static void list_append(Remora__V1__ConfigSet *s, doc_list_t l, ProtobufCMessage *m)
{
    size_t n = list_len(s, l);
    void ***arr = l == L_SVC     ? (void ***)&s->services
                  : l == L_ROUTE ? (void ***)&s->routes
                                 : (void ***)&s->circuit_breakers;
    *arr = rm_xrealloc(*arr, (n + 1) * sizeof(void *));
    (*arr)[n] = m;
    if (l == L_SVC)
        s->n_services++;
    else if (l == L_ROUTE)
        s->n_routes++;
    else
        s->n_circuit_breakers++;
}

/* Frees only the pointer arrays of a set whose documents are borrowed. */
static void borrowed_set_free(Remora__V1__ConfigSet *s)
{
    free(s->services);
    free(s->routes);
    free(s->circuit_breakers);
}

static void doc_key(const ProtobufCMessage *m, doc_list_t l, const char **ns, const char **name)
{
    const char *n = NULL, *space = NULL;
    if (l == L_SVC) {
        const Remora__V1__Service *d = (const Remora__V1__Service *)m;
        n = d->name;
        space = d->namespace_;
    } else if (l == L_ROUTE) {
        const Remora__V1__Route *d = (const Remora__V1__Route *)m;
        n = d->name;
        space = d->namespace_;
    } else {
        const Remora__V1__CircuitBreaker *d = (const Remora__V1__CircuitBreaker *)m;
        n = d->name;
        space = d->namespace_;
    }
    *ns = space != NULL && *space ? space : "default";
    *name = n != NULL ? n : "";
}

/* Index of the document (ns, name) in the first `limit` entries of list l, or -1. */
static long find_doc(const Remora__V1__ConfigSet *s, doc_list_t l, size_t limit, const char *ns,
                     const char *name)
{
    for (size_t i = 0; i < limit; i++) {
        const char *dn, *dname;
        doc_key(list_get(s, l, i), l, &dn, &dname);
        if (strcmp(dn, ns) == 0 && strcmp(dname, name) == 0)
            return (long)i;
    }
    return -1;
}

static long find_same(const Remora__V1__ConfigSet *s, doc_list_t l, size_t limit,
                      const ProtobufCMessage *m)
{
    const char *ns, *name;
    doc_key(m, l, &ns, &name);
    return find_doc(s, l, limit, ns, name);
}

/* "services", "Route", "cb", ... -> list; -1 for anything else. */
static int parse_kind(const char *k)
{
    static const struct {
        const char *name;
        doc_list_t list;
    } kinds[] = {
        {"service", L_SVC},
        {"services", L_SVC},
        {"svc", L_SVC},
        {"route", L_ROUTE},
        {"routes", L_ROUTE},
        {"circuitbreaker", L_CB},
        {"circuitbreakers", L_CB},
        {"circuit-breaker", L_CB},
        {"circuit-breakers", L_CB},
        {"cb", L_CB},
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcasecmp(k, kinds[i].name) == 0)
            return (int)kinds[i].list;
    return -1;
}

/* ---- validation context and errors ---- */

typedef struct ctx_buf {
    rm_config_context_t ctx;
    rm_config_endpoint_ref_t *eps; /* owned array; strings borrowed from the registry */
} ctx_buf_t;

/* Registered, non-draining endpoints are what "a version has endpoints" means to the
 * validator's warnings (plus the static endpoints of the set itself). */
static void ctx_build(const rm_control_t *c, ctx_buf_t *b)
{
    size_t n = 0;
    for (const rm_sidecar_t *sc = c->registry.head; sc != NULL; sc = sc->next)
        n += sc->has_endpoint && !sc->draining;
    memset(b, 0, sizeof(*b));
    b->eps = rm_xcalloc(n ? n : 1, sizeof(*b->eps));
    n = 0;
    for (const rm_sidecar_t *sc = c->registry.head; sc != NULL; sc = sc->next) {
        if (!sc->has_endpoint || sc->draining)
            continue;
        b->eps[n].namespace_ = sc->namespace_;
        b->eps[n].service = sc->service;
        b->eps[n].version = sc->version;
        n++;
    }
    b->ctx.endpoints_known = 1;
    b->ctx.endpoints = b->eps;
    b->ctx.n_endpoints = n;
}

/* Every diagnostic as one line, until RM_ADMIN_MAX_DETAILS; then a count of the rest. */
static char *diag_lines(const char *intro, const rm_config_diags_t *d)
{
    rm_strbuf_t b = {0};
    size_t shown = 0;
    if (intro != NULL)
        rm_strbuf_printf(&b, "%s\n", intro);
    for (size_t i = 0; i < d->count; i++) {
        char line[1024];
        int n = rm_config_diag_format(&d->items[i], line, sizeof(line));
        if (n < 0)
            continue;
        if (b.len + strlen(line) + 1 > RM_ADMIN_MAX_DETAILS)
            break;
        rm_strbuf_printf(&b, "%s\n", line);
        shown++;
    }
    size_t more = d->count - shown + d->dropped;
    if (more > 0)
        rm_strbuf_printf(&b, "... and %zu more error%s\n", more, more == 1 ? "" : "s");
    if (b.len > 0 && b.buf[b.len - 1] == '\n')
        b.buf[--b.len] = '\0';
    return rm_strbuf_take(&b);
}

static void reply_diags(rm_admin_reply_t *reply, rm_status_t code, int rc, const char *intro,
                        const rm_config_diags_t *errs)
{
    if (rc == -ENOMEM) {
        rm__reply_status(reply, RM_STATUS_RESOURCE_EXHAUSTED, "out of memory validating config");
        return;
    }
    if (errs->count == 0 && errs->dropped == 0) {
        rm__reply_status(reply, code, "%s", intro != NULL ? intro : "config rejected");
        return;
    }
    rm__reply_status_take(reply, code, diag_lines(intro, errs));
}

void rm__history_prune(rm_control_t *c)
{
    if (c->version <= c->opt.history)
        return;
    uint64_t keep_from = c->version - c->opt.history + 1, pruned = 0;
    if (rm_store_prune(c->store, keep_from, &pruned) < 0) {
        rm_log_warn("config history: deleting versions below %llu failed: %s; retried after the "
                    "next version",
                    (unsigned long long)keep_from, rm_store_error(c->store));
        return;
    }
    if (pruned > 0)
        rm_log_info("config history: %llu version(s) below %llu deleted from the store (keeping "
                    "the last %llu, --history)",
                    (unsigned long long)pruned, (unsigned long long)keep_from,
                    (unsigned long long)c->opt.history);
}

/* The reply for a version the store does not have (rc from rm_store_get): one older than the
 * current was pruned (versions are dense), and the caller is told how far back it can go. */
static void reply_no_version(rm_control_t *c, uint64_t version, int rc, rm_admin_reply_t *reply)
{
    uint64_t oldest = 0;
    if (rc != -ENOENT) {
        rm__reply_status(reply, RM_STATUS_UNAVAILABLE, "%s", rm_store_error(c->store));
        return;
    }
    if (version < c->version && rm_store_oldest(c->store, &oldest) == 0 && oldest > version) {
        rm__reply_status(reply, RM_STATUS_NOT_FOUND,
                         "version %llu is no longer kept: the store keeps the last %llu config "
                         "versions (--history %llu), the oldest now is %llu (see meshctl history)",
                         (unsigned long long)version, (unsigned long long)c->opt.history,
                         (unsigned long long)c->opt.history, (unsigned long long)oldest);
        return;
    }
    rm__reply_status(reply, RM_STATUS_NOT_FOUND, "%s", rm_store_error(c->store));
}

/* Stores `set` (borrowed) as the next version and installs a copy. Returns 0, or fills the reply
 * with the store's failure and returns -1. */
static int commit(rm_control_t *c, const Remora__V1__ConfigSet *set, const char *summary,
                  uint64_t now_ms, rm_admin_reply_t *reply)
{
    size_t len;
    uint8_t *bytes = rm_pb_pack(&set->base, &len);
    uint64_t v = 0;
    int rc = rm_store_append(c->store, c->version, bytes, len, summary, rm_wall_ms(), &v);
    if (rc < 0) {
        if (rc == -EAGAIN) {
            rm__reply_status(reply, RM_STATUS_ABORTED,
                             "the config changed in the store meanwhile (%s); nothing changed, "
                             "retry",
                             rm_store_error(c->store));
            /* Another replica won: load its version at the next rm_control_sync (not here: the
             * caller's sets still borrow documents of c->config), so a retry builds on it. */
            c->resync = 1;
        } else
            rm__reply_status(reply, RM_STATUS_UNAVAILABLE,
                             "the store refused the new version (%s); nothing changed",
                             rm_store_error(c->store));
        rm_log_error("store append failed: %s", rm_store_error(c->store));
        free(bytes);
        return -1;
    }
    Remora__V1__ConfigSet *copy = remora__v1__config_set__unpack(NULL, len, bytes);
    free(bytes);
    if (copy == NULL) {
        /* Our own bytes always unpack; only memory can fail. */
        rm_log_error("out of memory installing version %llu; exiting", (unsigned long long)v);
        abort();
    }
    rm_control_install(c, v, copy, now_ms);
    rm_log_info("config version %llu: %s", (unsigned long long)v, summary);
    rm__history_prune(c);
    return 0;
}

/* ---- Apply ---- */

static Remora__V1__DocumentChange *new_change(doc_list_t l, const ProtobufCMessage *m,
                                              const char *what)
{
    const char *ns, *name;
    doc_key(m, l, &ns, &name);
    Remora__V1__DocumentChange *ch = rm_xmalloc(sizeof(*ch));
    remora__v1__document_change__init(ch);
    ch->kind = rm_xstrdup(kind_names[l]);
    ch->name = rm_xstrdup(name);
    ch->namespace_ = rm_xstrdup(ns);
    ch->change = rm_xstrdup(what);
    return ch;
}

void rm__admin_apply(rm_control_t *c, const Remora__V1__ApplyRequest *req, uint64_t now_ms,
                     rm_admin_reply_t *reply)
{
    const char *fname = req->filename != NULL && *req->filename ? req->filename : "<apply>";
    const char *src = req->source != NULL ? req->source : "";
    size_t len = strlen(src);
    rm_config_diags_t errs = {0}, warns = {0};
    Remora__V1__ConfigSet *u = NULL;
    Remora__V1__ApplyResponse *resp = NULL;
    ctx_buf_t cb = {0};
    rm_strbuf_t summary = {0};
    size_t napp[L_COUNT];
    int rc;

    if (len == 0) {
        rm__reply_status(reply, RM_STATUS_INVALID_ARGUMENT, "%s: no documents to apply", fname);
        return;
    }
    /* A wait that could not be parked is refused before anything is applied. */
    if (req->wait && !req->dry_run &&
        rm__wait_refused(c, now_ms, "; nothing applied (or apply without waiting)", reply))
        return;
    rc = rm_config_parse(fname, src, len, &u, &errs);
    if (rc < 0) {
        reply_diags(reply, RM_STATUS_INVALID_ARGUMENT, rc, NULL, &errs);
        goto out;
    }
    size_t total = 0;
    for (int l = 0; l < L_COUNT; l++)
        total += napp[l] = list_len(u, (doc_list_t)l);
    if (total == 0) {
        rm__reply_status(reply, RM_STATUS_INVALID_ARGUMENT, "%s: no documents to apply", fname);
        goto out;
    }

    /* The union: the applied documents stay first, at the indices the parser gave them, so the
     * source map still points errors at file:line:col; stored documents that are not replaced
     * follow (errors in those name the document instead). */
    for (int l = 0; l < L_COUNT; l++)
        for (size_t i = 0; i < list_len(c->config, (doc_list_t)l); i++) {
            const ProtobufCMessage *s = list_get(c->config, (doc_list_t)l, i);
            if (find_same(u, (doc_list_t)l, napp[l], s) < 0)
                list_append(u, (doc_list_t)l, rm_pb_copy(s));
        }
    ctx_build(c, &cb);
    rc = rm_config_validate(u, &cb.ctx, &errs, &warns);
    if (rc < 0) {
        reply_diags(reply, RM_STATUS_INVALID_ARGUMENT, rc, NULL, &errs);
        goto out;
    }

    resp = rm_xmalloc(sizeof(*resp));
    remora__v1__apply_response__init(resp);
    resp->changes = rm_xcalloc_ptrs(total);
    size_t changed = 0;
    rm_strbuf_printf(&summary, "apply %s:", fname);
    for (int l = 0; l < L_COUNT; l++)
        for (size_t i = 0; i < napp[l]; i++) {
            const ProtobufCMessage *a = list_get(u, (doc_list_t)l, i);
            long s = find_same(c->config, (doc_list_t)l, list_len(c->config, (doc_list_t)l), a);
            const char *what = s < 0 ? "created"
                               : rm_pb_equal(a, list_get(c->config, (doc_list_t)l, (size_t)s))
                                   ? "unchanged"
                                   : "updated";
            resp->changes[resp->n_changes++] = new_change((doc_list_t)l, a, what);
            if (strcmp(what, "unchanged") != 0) {
                const char *ns, *name;
                doc_key(a, (doc_list_t)l, &ns, &name);
                rm_strbuf_printf(&summary, "%s %s %s/%s %s", changed ? "," : "", kind_lower[l], ns,
                                 name, what);
                changed++;
            }
        }
    resp->version = c->version;

    if (changed > 0 && !req->dry_run) {
        /* The new config keeps the stored order, replaced documents in place, new ones last. */
        Remora__V1__ConfigSet fin = REMORA__V1__CONFIG_SET__INIT;
        for (int l = 0; l < L_COUNT; l++) {
            size_t ns = list_len(c->config, (doc_list_t)l);
            for (size_t i = 0; i < ns; i++) {
                ProtobufCMessage *s = list_get(c->config, (doc_list_t)l, i);
                long a = find_same(u, (doc_list_t)l, napp[l], s);
                list_append(&fin, (doc_list_t)l,
                            a >= 0 ? list_get(u, (doc_list_t)l, (size_t)a) : s);
            }
            for (size_t i = 0; i < napp[l]; i++) {
                ProtobufCMessage *a = list_get(u, (doc_list_t)l, i);
                if (find_same(c->config, (doc_list_t)l, ns, a) < 0)
                    list_append(&fin, (doc_list_t)l, a);
            }
        }
        rc = commit(c, &fin, summary.buf, now_ms, reply);
        borrowed_set_free(&fin);
        if (rc < 0)
            goto out;
        resp->version = c->version;
    }

    resp->warnings = rm_xcalloc_ptrs(warns.count + 1);
    for (size_t i = 0; i < warns.count; i++) {
        char line[1024];
        rm_config_diag_format(&warns.items[i], line, sizeof(line));
        resp->warnings[resp->n_warnings++] = rm_xstrdup(line);
    }
    if (warns.dropped > 0)
        resp->warnings[resp->n_warnings++] =
            rm_xasprintf("... and %zu more warnings", warns.dropped);
    if (changed == 0)
        rm_log_info("apply %s: unchanged (version %llu)", fname, (unsigned long long)c->version);
    rm__reply_body(reply, &resp->base);
    if (req->wait && !req->dry_run) {
        reply->wait = 1;
        reply->wait_version = resp->version;
        reply->wait_deadline_ms = now_ms + rm__wait_ms(req->wait_timeout);
    }
out:
    if (resp != NULL)
        remora__v1__apply_response__free_unpacked(resp, NULL);
    if (u != NULL)
        remora__v1__config_set__free_unpacked(u, NULL);
    free(cb.eps);
    free(summary.buf);
    rm_config_diags_free(&errs);
    rm_config_diags_free(&warns);
}

/* ---- Delete ---- */

void rm__admin_delete(rm_control_t *c, const Remora__V1__DeleteRequest *req, uint64_t now_ms,
                      rm_admin_reply_t *reply)
{
    int l = parse_kind(req->kind != NULL ? req->kind : "");
    const char *ns = req->namespace_ != NULL && *req->namespace_ ? req->namespace_ : "default";
    const char *name = req->name != NULL ? req->name : "";
    if (l < 0) {
        rm__reply_status(reply, RM_STATUS_INVALID_ARGUMENT,
                         "unknown kind \"%.64s\" (service, route or circuitbreaker)",
                         req->kind != NULL ? req->kind : "");
        return;
    }
    if (*name == '\0') {
        rm__reply_status(reply, RM_STATUS_INVALID_ARGUMENT, "delete needs a name");
        return;
    }
    long at = find_doc(c->config, (doc_list_t)l, list_len(c->config, (doc_list_t)l), ns, name);
    if (at < 0) {
        rm__reply_status(reply, RM_STATUS_NOT_FOUND, "%s %s/%.253s not found in version %llu",
                         kind_names[l], ns, name, (unsigned long long)c->version);
        return;
    }
    Remora__V1__ConfigSet fin = REMORA__V1__CONFIG_SET__INIT;
    for (int k = 0; k < L_COUNT; k++)
        for (size_t i = 0; i < list_len(c->config, (doc_list_t)k); i++)
            if (k != l || (long)i != at)
                list_append(&fin, (doc_list_t)k, list_get(c->config, (doc_list_t)k, i));

    /* What is left must still be valid: a Route must not lose its Service. */
    Remora__V1__ConfigSet *check = (Remora__V1__ConfigSet *)rm_pb_copy(&fin.base);
    rm_config_diags_t errs = {0};
    ctx_buf_t cb;
    ctx_build(c, &cb);
    int rc = rm_config_validate(check, &cb.ctx, &errs, NULL);
    free(cb.eps);
    remora__v1__config_set__free_unpacked(check, NULL);
    if (rc < 0) {
        char *intro = rm_xasprintf(
            "deleting %s %s/%s would leave the config invalid:", kind_names[l], ns, name);
        reply_diags(reply, RM_STATUS_FAILED_PRECONDITION, rc, intro, &errs);
        free(intro);
    } else {
        char *summary = rm_xasprintf("delete %s %s/%s", kind_lower[l], ns, name);
        if (commit(c, &fin, summary, now_ms, reply) == 0) {
            Remora__V1__DeleteResponse resp = REMORA__V1__DELETE_RESPONSE__INIT;
            resp.version = c->version;
            rm__reply_body(reply, &resp.base);
        }
        free(summary);
    }
    rm_config_diags_free(&errs);
    borrowed_set_free(&fin);
}

/* ---- Rollback ---- */

void rm__admin_rollback(rm_control_t *c, const Remora__V1__RollbackRequest *req, uint64_t now_ms,
                        rm_admin_reply_t *reply)
{
    if (c->version == 0) {
        rm__reply_status(reply, RM_STATUS_FAILED_PRECONDITION,
                         "nothing to roll back: the store holds no config yet");
        return;
    }
    uint64_t target = req->to_version ? req->to_version : c->version - 1;
    if (target == 0) {
        rm__reply_status(reply, RM_STATUS_FAILED_PRECONDITION,
                         "version %llu is the first; there is no earlier version",
                         (unsigned long long)c->version);
        return;
    }
    if (target >= c->version) {
        rm__reply_status(reply, RM_STATUS_INVALID_ARGUMENT,
                         "version %llu is not older than the current version %llu",
                         (unsigned long long)target, (unsigned long long)c->version);
        return;
    }
    rm_store_record_t rec;
    int rc = rm_store_get(c->store, target, &rec);
    if (rc < 0) {
        reply_no_version(c, target, rc, reply);
        return;
    }
    Remora__V1__ConfigSet *old = remora__v1__config_set__unpack(NULL, rec.config_len, rec.config);
    rm_store_record_free(&rec);
    if (old == NULL) {
        rm__reply_status(reply, RM_STATUS_INTERNAL,
                         "stored version %llu does not unpack (corrupt store?)",
                         (unsigned long long)target);
        return;
    }
    char *summary = rm_xasprintf("rollback to version %llu", (unsigned long long)target);
    if (commit(c, old, summary, now_ms, reply) == 0) {
        Remora__V1__RollbackResponse resp = REMORA__V1__ROLLBACK_RESPONSE__INIT;
        resp.version = c->version;
        resp.restored_from = target;
        rm__reply_body(reply, &resp.base);
    }
    free(summary);
    remora__v1__config_set__free_unpacked(old, NULL);
}

/* ---- Get and History ---- */

void rm__admin_get(rm_control_t *c, const Remora__V1__GetRequest *req, rm_admin_reply_t *reply)
{
    const char *kind = req->kind != NULL ? req->kind : "";
    int only = -1;
    if (*kind && strcasecmp(kind, "all") != 0) {
        only = parse_kind(kind);
        if (only < 0) {
            rm__reply_status(reply, RM_STATUS_INVALID_ARGUMENT,
                             "unknown kind \"%.64s\" (services, routes, circuitbreakers or all)",
                             kind);
            return;
        }
    }
    const Remora__V1__ConfigSet *src = c->config;
    Remora__V1__ConfigSet *old = NULL;
    uint64_t version = c->version;
    if (req->version != 0 && req->version != c->version) {
        rm_store_record_t rec;
        int rc = rm_store_get(c->store, req->version, &rec);
        if (rc < 0) {
            reply_no_version(c, req->version, rc, reply);
            return;
        }
        old = remora__v1__config_set__unpack(NULL, rec.config_len, rec.config);
        rm_store_record_free(&rec);
        if (old == NULL) {
            rm__reply_status(reply, RM_STATUS_INTERNAL, "stored version %llu does not unpack",
                             (unsigned long long)req->version);
            return;
        }
        src = old;
        version = req->version;
    }
    const char *want_name = req->name != NULL ? req->name : "";
    const char *want_ns = req->namespace_ != NULL ? req->namespace_ : "";
    Remora__V1__ConfigSet fin = REMORA__V1__CONFIG_SET__INIT;
    size_t found = 0;
    for (int l = 0; l < L_COUNT; l++) {
        if (only >= 0 && l != only)
            continue;
        for (size_t i = 0; i < list_len(src, (doc_list_t)l); i++) {
            ProtobufCMessage *m = list_get(src, (doc_list_t)l, i);
            const char *ns, *name;
            doc_key(m, (doc_list_t)l, &ns, &name);
            if ((*want_name && strcmp(name, want_name) != 0) ||
                (*want_ns && strcmp(ns, want_ns) != 0))
                continue;
            list_append(&fin, (doc_list_t)l, m);
            found++;
        }
    }
    if (*want_name && found == 0) {
        rm__reply_status(reply, RM_STATUS_NOT_FOUND,
                         "%s \"%.253s\"%s%.253s not found in version %llu",
                         only >= 0 ? kind_names[only] : "document", want_name,
                         *want_ns ? " in namespace " : "", want_ns, (unsigned long long)version);
    } else {
        Remora__V1__GetResponse resp = REMORA__V1__GET_RESPONSE__INIT;
        resp.version = version;
        resp.config = &fin;
        rm__reply_body(reply, &resp.base);
    }
    borrowed_set_free(&fin);
    if (old != NULL)
        remora__v1__config_set__free_unpacked(old, NULL);
}

void rm__admin_history(rm_control_t *c, const Remora__V1__HistoryRequest *req,
                       rm_admin_reply_t *reply)
{
    uint32_t limit = req->limit ? req->limit : 50;
    if (limit > 1000)
        limit = 1000;
    rm_store_record_t *recs = NULL;
    size_t n = 0;
    if (rm_store_history(c->store, limit, &recs, &n) < 0) {
        rm__reply_status(reply, RM_STATUS_UNAVAILABLE, "%s", rm_store_error(c->store));
        return;
    }
    Remora__V1__HistoryResponse resp = REMORA__V1__HISTORY_RESPONSE__INIT;
    Remora__V1__HistoryEntry *ents = rm_xcalloc(n ? n : 1, sizeof(*ents));
    resp.entries = rm_xcalloc_ptrs(n);
    for (size_t i = 0; i < n; i++) {
        remora__v1__history_entry__init(&ents[i]);
        ents[i].version = recs[i].version;
        ents[i].created_ms = recs[i].created_ms;
        ents[i].summary = recs[i].summary;
        resp.entries[resp.n_entries++] = &ents[i];
    }
    rm__reply_body(reply, &resp.base);
    free(resp.entries);
    free(ents);
    rm_store_records_free(recs, n);
}
