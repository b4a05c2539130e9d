/* common/config/validate_route.c — the rules for Route documents: matches, weighted
 * destinations, sticky keys, mirrors, timeouts and retry policies, plus their defaults and the
 * warnings meshctl shows (a weighted version with no endpoint, a per-try timeout that leaves no
 * room for a retry).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "common/duration.h"
#include "common/config/internal.h"

#define MAX_WEIGHT_SUM                1000000u
#define DEFAULT_TIMEOUT_MS            15000u
#define DEFAULT_ATTEMPTS              2u
#define MAX_ATTEMPTS                  10u
#define DEFAULT_BACKOFF_BASE_MS       25u
#define DEFAULT_BACKOFF_MAX_MS        250u
#define DEFAULT_BUDGET_PERCENT        20u
#define DEFAULT_BUDGET_MIN_PER_SECOND 10u

static const char *const methods[] = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                      "CONNECT", "OPTIONS", "TRACE", "PATCH", NULL};

static const char *const retry_conditions[] = {
    "connect-failure", "reset", "gateway-error", "5xx", "retriable-status-codes", NULL};

static const char *fmt_ms(uint64_t ms, char *buf)
{
    rm_duration_format(ms, buf, RM_DURATION_BUF);
    return buf;
}

static uint64_t ms_of(const Remora__V1__Duration *d)
{
    return d != NULL && d->has_millis ? d->millis : 0;
}

/* Compiles like the data plane will (UTF-8), so a regex that passes here also loads there. */
static void check_regex(rm__vctx_t *v, const char *field, const char *re)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C, &err, &off, NULL);
    PCRE2_UCHAR msg[256];

    if (code != NULL) {
        pcre2_code_free(code);
        return;
    }
    if (pcre2_get_error_message(err, msg, sizeof(msg)) < 0)
        snprintf((char *)msg, sizeof(msg), "unknown error");
    rm__verr(v, 0, field, "invalid regex: %s (at offset %zu)", (const char *)msg, (size_t)off);
}

static void validate_string_match(rm__vctx_t *v, const Remora__V1__StringMatch *m)
{
    if (m == NULL) {
        rm__verr(v, 0, NULL, "must set one of exact, prefix, suffix, regex, present, absent");
        return;
    }
    switch (m->kind_case) {
    case REMORA__V1__STRING_MATCH__KIND_REGEX:
        check_regex(v, "regex", m->regex);
        break;
    case REMORA__V1__STRING_MATCH__KIND_PRESENT:
        if (!m->present)
            rm__verr(v, 0, "present",
                     "must be true when given (to require that it is missing, use absent: true)");
        break;
    case REMORA__V1__STRING_MATCH__KIND_ABSENT:
        if (!m->absent)
            rm__verr(v, 0, "absent",
                     "must be true when given (to require that it is there, use present: true)");
        break;
    case REMORA__V1__STRING_MATCH__KIND__NOT_SET:
        rm__verr(v, 0, NULL, "must set one of exact, prefix, suffix, regex, present, absent");
        break;
    default:
        break;
    }
}

/*
 * headers, cookies and query share one shape: a map of name -> StringMatch. Header names are
 * case-insensitive, so they are lower-cased in the model (after checking, so the source map still
 * finds the name as written).
 */
static void validate_match_map(rm__vctx_t *v, const char *field, size_t n,
                               Remora__V1__Match__HeadersEntry **entries, int token, int lower)
{
    size_t mark = rm__path_field(&v->path, field), *dups;
    const char **keys;
    char q[RM__QUOTE_BUF];

    for (size_t i = 0; i < n; i++) {
        Remora__V1__Match__HeadersEntry *e = entries[i];
        size_t m2;
        if (e->key == NULL || *e->key == '\0') {
            rm__verr(v, 0, NULL, "names must not be empty");
            continue;
        }
        m2 = rm__path_key(&v->path, e->key, strlen(e->key));
        if (token && !rm__is_token(e->key)) {
            rm__quote(e->key, strlen(e->key), q, sizeof(q));
            rm__verr(v, 0, NULL,
                     "\"%s\" is not a valid name (letters, digits and !#$%%&'*+-.^_`|~ only)", q);
        }
        validate_string_match(v, e->value);
        rm__path_pop(&v->path, m2);
        if (lower) {
            for (char *c = e->key; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        }
    }
    /* Case-insensitive names that differ only in case name one header twice. */
    keys = lower ? calloc(n ? n : 1, sizeof(*keys)) : NULL;
    if (lower && keys == NULL)
        v->nomem = 1;
    if (keys != NULL) {
        for (size_t i = 0; i < n; i++)
            keys[i] = entries[i]->key;
        dups = rm__v_first_dups(v, keys, n);
        for (size_t i = 0; dups != NULL && i < n; i++) {
            size_t m2;
            if (dups[i] == SIZE_MAX)
                continue;
            m2 = rm__path_key(&v->path, keys[i], strlen(keys[i]));
            rm__quote(keys[i], strlen(keys[i]), q, sizeof(q));
            rm__verr(v, 0, NULL, "duplicate header name \"%s\" (header names ignore case)", q);
            rm__path_pop(&v->path, m2);
        }
        free(dups);
        free(keys);
    }
    rm__path_pop(&v->path, mark);
}

static void validate_match(rm__vctx_t *v, Remora__V1__Match *m)
{
    size_t mark = rm__path_field(&v->path, "match");

    /* The three entry types are distinct C types of one layout (key, value); protobuf-c
     * generates them from the same map<string, StringMatch>. */
    _Static_assert(
        sizeof(Remora__V1__Match__HeadersEntry) == sizeof(Remora__V1__Match__CookiesEntry) &&
            sizeof(Remora__V1__Match__HeadersEntry) == sizeof(Remora__V1__Match__QueryEntry),
        "map entries share a layout");
    validate_match_map(v, "headers", m->n_headers, m->headers, 1, 1);
    validate_match_map(v, "cookies", m->n_cookies, (Remora__V1__Match__HeadersEntry **)m->cookies,
                       1, 0);
    validate_match_map(v, "query", m->n_query, (Remora__V1__Match__HeadersEntry **)m->query, 0, 0);
    if (m->path != NULL) {
        const Remora__V1__PathMatch *p = m->path;
        size_t m2 = rm__path_field(&v->path, "path");
        switch (p->kind_case) {
        case REMORA__V1__PATH_MATCH__KIND_EXACT:
            if (p->exact[0] != '/')
                rm__verr(v, 0, "exact", "must start with \"/\"");
            break;
        case REMORA__V1__PATH_MATCH__KIND_PREFIX:
            if (p->prefix[0] != '/')
                rm__verr(v, 0, "prefix", "must start with \"/\"");
            break;
        case REMORA__V1__PATH_MATCH__KIND_REGEX:
            check_regex(v, "regex", p->regex);
            break;
        default:
            rm__verr(v, 0, NULL, "must set one of exact, prefix, regex");
            break;
        }
        rm__path_pop(&v->path, m2);
    }
    if (m->method != NULL) {
        int ok = 0;
        for (size_t i = 0; methods[i] != NULL; i++)
            ok |= strcmp(methods[i], m->method) == 0;
        if (!ok) {
            char q[RM__QUOTE_BUF];
            rm__quote(m->method, strlen(m->method), q, sizeof(q));
            rm__verr(v, 0, "method",
                     "must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH "
                     "(upper case), not \"%s\"",
                     q);
        }
    }
    rm__path_pop(&v->path, mark);
}

static void validate_destinations(rm__vctx_t *v, const Remora__V1__Route *route,
                                  Remora__V1__Rule *rule)
{
    uint64_t sum = 0;
    int all_weighted = 1;
    size_t mark = rm__path_field(&v->path, "destinations"), *dups;
    const char **versions;

    if (rule->n_destinations == 0) {
        rm__verr(v, 0, NULL, "must have at least one destination");
        rm__path_pop(&v->path, mark);
        return;
    }
    versions = calloc(rule->n_destinations, sizeof(*versions));
    if (versions == NULL) {
        v->nomem = 1;
        rm__path_pop(&v->path, mark);
        return;
    }
    for (size_t i = 0; i < rule->n_destinations; i++)
        versions[i] = rule->destinations[i]->version;
    dups = rm__v_first_dups(v, versions, rule->n_destinations);
    for (size_t i = 0; i < rule->n_destinations; i++) {
        Remora__V1__Destination *d = rule->destinations[i];
        size_t m2 = rm__path_index(&v->path, i);
        if (rm__v_version(v, "version", d->version, 1) == 0 && dups != NULL && dups[i] != SIZE_MAX)
            rm__verr(v, 0, "version", "duplicate version \"%s\" (also destinations[%zu])",
                     d->version, dups[i]);
        if (!d->has_weight) {
            /* One destination takes all traffic; with several, a share must be explicit. */
            if (rule->n_destinations == 1) {
                d->has_weight = 1;
                d->weight = 1;
            } else {
                rm__verr(v, 0, "weight", "is required when a rule has several destinations");
                all_weighted = 0;
            }
        }
        sum += d->weight;
        if (d->weight > 0 && d->version != NULL && route->service != NULL && v->eps != NULL &&
            rm__v_service_exists(v, v->doc_ns, route->service) &&
            !rm__v_endpoint_exists(v, v->doc_ns, route->service, d->version))
            rm__verr(v, 1, "version",
                     "no endpoint of service \"%s\" has version \"%s\"; its share of traffic "
                     "will get 503 no healthy upstream",
                     route->service, d->version);
        rm__path_pop(&v->path, m2);
    }
    free(dups);
    free(versions);
    if (all_weighted && sum == 0)
        rm__verr(v, 0, NULL, "weights must not all be 0");
    else if (sum > MAX_WEIGHT_SUM)
        rm__verr(v, 0, NULL, "weights add up to %llu; the sum must be at most %u",
                 (unsigned long long)sum, MAX_WEIGHT_SUM);
    rm__path_pop(&v->path, mark);
}

static void validate_sticky(rm__vctx_t *v, Remora__V1__StickyOn *s)
{
    size_t mark = rm__path_field(&v->path, "stickyOn");
    const char *field = s->key_case == REMORA__V1__STICKY_ON__KEY_HEADER ? "header" : "cookie";
    char *key = s->key_case == REMORA__V1__STICKY_ON__KEY_HEADER ? s->header : s->cookie;

    if (s->key_case == REMORA__V1__STICKY_ON__KEY__NOT_SET) {
        rm__verr(v, 0, NULL, "must set one of header, cookie");
    } else if (key == NULL || *key == '\0') {
        rm__verr(v, 0, field, "must not be empty");
    } else if (!rm__is_token(key)) {
        char q[RM__QUOTE_BUF];
        rm__quote(key, strlen(key), q, sizeof(q));
        rm__verr(v, 0, field,
                 "\"%s\" is not a valid name (letters, digits and !#$%%&'*+-.^_`|~ only)", q);
    } else if (s->key_case == REMORA__V1__STICKY_ON__KEY_HEADER) {
        for (char *c = key; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    rm__path_pop(&v->path, mark);
}

static void validate_mirror(rm__vctx_t *v, Remora__V1__Mirror *m)
{
    size_t mark = rm__path_field(&v->path, "mirror");
    if (m->version != NULL && m->service != NULL)
        rm__verr(v, 0, "service", "\"version\" and \"service\" are both set; set only one");
    else if (m->version == NULL && m->service == NULL)
        rm__verr(v, 0, NULL, "must set one of version, service");
    rm__v_version(v, "version", m->version, 0);
    if (m->service != NULL && rm__v_name(v, "service", m->service, 1) == 0 &&
        !rm__v_service_exists(v, v->doc_ns, m->service))
        rm__v_unknown_service(v, "service", m->service);
    if (m->has_percent) {
        rm__v_range(v, "percent", m->percent, 0, 100);
    } else {
        m->has_percent = 1;
        m->percent = 100;
    }
    rm__path_pop(&v->path, mark);
}

static void validate_retry_on(rm__vctx_t *v, const Remora__V1__RetryPolicy *r)
{
    size_t *dups = rm__v_first_dups(v, (const char *const *)r->retry_on, r->n_retry_on);
    for (size_t i = 0; i < r->n_retry_on; i++) {
        const char *c = r->retry_on[i], *hint;
        size_t mark = rm__path_field(&v->path, "retryOn");
        int known = 0;
        char q[RM__QUOTE_BUF];
        rm__path_index(&v->path, i);
        for (size_t k = 0; retry_conditions[k] != NULL; k++)
            known |= strcmp(retry_conditions[k], c) == 0;
        rm__quote(c, strlen(c), q, sizeof(q));
        if (!known) {
            hint = rm__suggest(c, strlen(c), retry_conditions);
            if (hint != NULL)
                rm__verr(v, 0, NULL, "unknown retry condition \"%s\" (did you mean \"%s\"?)", q,
                         hint);
            else
                rm__verr(v, 0, NULL,
                         "unknown retry condition \"%s\" (must be one of connect-failure, reset, "
                         "gateway-error, 5xx, retriable-status-codes)",
                         q);
        } else if (dups != NULL && dups[i] != SIZE_MAX) {
            rm__verr(v, 0, NULL, "duplicate retry condition \"%s\" (also retryOn[%zu])", q,
                     dups[i]);
        }
        rm__path_pop(&v->path, mark);
    }
    free(dups);
}

static int has_condition(const Remora__V1__RetryPolicy *r, const char *c)
{
    for (size_t i = 0; i < r->n_retry_on; i++) {
        if (strcmp(r->retry_on[i], c) == 0)
            return 1;
    }
    return 0;
}

static void validate_retries(rm__vctx_t *v, Remora__V1__RetryPolicy *r, uint64_t timeout_ms)
{
    size_t mark = rm__path_field(&v->path, "retries");
    size_t seen[500]; /* first index of each status code 100..599 */
    char a[RM_DURATION_BUF], b[RM_DURATION_BUF];

    if (r->has_attempts) {
        rm__v_range(v, "attempts", r->attempts, 0, MAX_ATTEMPTS);
    } else {
        r->has_attempts = 1;
        r->attempts = DEFAULT_ATTEMPTS;
    }
    if (rm__v_duration_positive(v, "perTryTimeout", r->per_try_timeout) == 0 &&
        r->per_try_timeout != NULL && ms_of(r->per_try_timeout) >= timeout_ms)
        rm__verr(v, 1, "perTryTimeout",
                 "perTryTimeout (%s) is not shorter than the rule's timeout (%s), so a retry "
                 "never has time to run",
                 fmt_ms(ms_of(r->per_try_timeout), a), fmt_ms(timeout_ms, b));
    validate_retry_on(v, r);
    for (size_t c = 0; c < 500; c++)
        seen[c] = SIZE_MAX;
    for (size_t i = 0; i < r->n_retriable_status_codes; i++) {
        uint32_t code = r->retriable_status_codes[i];
        size_t m2 = rm__path_field(&v->path, "retriableStatusCodes");
        rm__path_index(&v->path, i);
        if (rm__v_range(v, NULL, code, 100, 599) == 0) {
            if (seen[code - 100] != SIZE_MAX)
                rm__verr(v, 0, NULL, "duplicate status code %u (also retriableStatusCodes[%zu])",
                         code, seen[code - 100]);
            else
                seen[code - 100] = i;
        }
        rm__path_pop(&v->path, m2);
    }
    if (r->n_retriable_status_codes > 0 && !has_condition(r, "retriable-status-codes")) {
        /*
         * Listing codes says "retry these"; SPEC.md's own example lists 409 without naming the
         * condition, so listing codes turns the condition on (filled in like a default) rather
         * than being an error or silently unused.
         */
        char **on = realloc(r->retry_on, (r->n_retry_on + 1) * sizeof(*on));
        if (on == NULL) {
            v->nomem = 1;
            goto out;
        }
        r->retry_on = on;
        on[r->n_retry_on] = rm__v_strdup(v, "retriable-status-codes");
        if (on[r->n_retry_on] != NULL)
            r->n_retry_on++;
    } else if (r->n_retriable_status_codes == 0 && has_condition(r, "retriable-status-codes")) {
        rm__verr(v, 1, "retryOn",
                 "\"retriable-status-codes\" is listed but retriableStatusCodes is empty, so it "
                 "never matches");
    }

    if (r->backoff == NULL) {
        r->backoff = malloc(sizeof(*r->backoff));
        if (r->backoff == NULL) {
            v->nomem = 1;
            goto out;
        }
        remora__v1__backoff__init(r->backoff);
    }
    {
        Remora__V1__Backoff *bo = r->backoff;
        size_t m2 = rm__path_field(&v->path, "backoff");
        int base_ok = rm__v_duration_positive(v, "base", bo->base_) == 0;
        rm__v_default_duration(v, &bo->base_, DEFAULT_BACKOFF_BASE_MS);
        /* An explicit base above the default max raises the default max with it. */
        rm__v_default_duration(v, &bo->max,
                               ms_of(bo->base_) > DEFAULT_BACKOFF_MAX_MS ? ms_of(bo->base_)
                                                                         : DEFAULT_BACKOFF_MAX_MS);
        if (base_ok && bo->max != NULL && bo->base_ != NULL && ms_of(bo->max) < ms_of(bo->base_))
            rm__verr(v, 0, "max", "must be at least base (%s), not %s", fmt_ms(ms_of(bo->base_), a),
                     fmt_ms(ms_of(bo->max), b));
        rm__path_pop(&v->path, m2);
    }

    if (r->budget == NULL) {
        r->budget = malloc(sizeof(*r->budget));
        if (r->budget == NULL) {
            v->nomem = 1;
            goto out;
        }
        remora__v1__retry_budget__init(r->budget);
    }
    {
        Remora__V1__RetryBudget *bu = r->budget;
        size_t m2 = rm__path_field(&v->path, "budget");
        if (bu->has_percent) {
            rm__v_range(v, "percent", bu->percent, 0, 100);
        } else {
            bu->has_percent = 1;
            bu->percent = DEFAULT_BUDGET_PERCENT;
        }
        if (!bu->has_min_per_second) {
            bu->has_min_per_second = 1;
            bu->min_per_second = DEFAULT_BUDGET_MIN_PER_SECOND;
        }
        rm__path_pop(&v->path, m2);
    }
out:
    rm__path_pop(&v->path, mark);
}

static void validate_rule(rm__vctx_t *v, const Remora__V1__Route *route, size_t index,
                          const size_t *name_dups)
{
    Remora__V1__Rule *rule = route->rules[index];

    if (rule->name != NULL) {
        if (*rule->name == '\0') {
            rm__verr(v, 0, "name", "must not be empty (leave it out instead)");
        } else {
            if (name_dups != NULL && name_dups[index] != SIZE_MAX) {
                char q[RM__QUOTE_BUF];
                rm__quote(rule->name, strlen(rule->name), q, sizeof(q));
                rm__verr(v, 0, "name", "duplicate rule name \"%s\" (also rules[%zu])", q,
                         name_dups[index]);
            }
        }
    }
    if (rule->match != NULL)
        validate_match(v, rule->match);
    validate_destinations(v, route, rule);
    if (rule->sticky_on != NULL)
        validate_sticky(v, rule->sticky_on);
    if (rule->mirror != NULL)
        validate_mirror(v, rule->mirror);
    rm__v_duration_positive(v, "timeout", rule->timeout);
    rm__v_default_duration(v, &rule->timeout, DEFAULT_TIMEOUT_MS);
    if (rule->retries != NULL)
        validate_retries(v, rule->retries, ms_of(rule->timeout));
}

void rm__validate_route(rm__vctx_t *v, Remora__V1__Route *route)
{
    const char **names;
    size_t *name_dups;

    if (route->service == NULL)
        rm__verr(v, 0, "service", "is required");
    else if (rm__v_name(v, "service", route->service, 1) == 0 &&
             !rm__v_service_exists(v, v->doc_ns, route->service))
        rm__v_unknown_service(v, "service", route->service);
    if (route->n_rules == 0) {
        rm__verr(v, 0, "rules", "must have at least one rule");
        return;
    }
    names = calloc(route->n_rules, sizeof(*names));
    if (names == NULL) {
        v->nomem = 1;
        return;
    }
    for (size_t i = 0; i < route->n_rules; i++)
        names[i] = route->rules[i]->name;
    name_dups = rm__v_first_dups(v, names, route->n_rules);
    for (size_t i = 0; i < route->n_rules; i++) {
        size_t mark = rm__path_field(&v->path, "rules");
        rm__path_index(&v->path, i);
        validate_rule(v, route, i, name_dups);
        rm__path_pop(&v->path, mark);
    }
    free(name_dups);
    free(names);
}
