/* dataplane/route/route-t.h — types for routing decisions: the request as the router sees it and
 * the decision it returns. Functions are in route.h.
 */
#ifndef REMORA_DATAPLANE_ROUTE_ROUTE_T_H
#define REMORA_DATAPLANE_ROUTE_ROUTE_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/snapshot/snapshot-t.h"

/* Return codes. 0 is success. */
#define RM_ROUTE_NO_RULE     1    /* no rule matched: the default rule decided (see route.h) */
#define RM_ROUTE_EINVAL      (-1) /* NULL argument or index out of range */
#define RM_ROUTE_NO_VERSION  (-2) /* the chosen version has no ready endpoint: answer 503 */
#define RM_ROUTE_NO_ENDPOINT (-3) /* every endpoint is draining or ejected: answer 503 */

/* Query parameter values are percent-decoded into a stack buffer of this size for matching;
 * a value that decodes longer matches no value condition (present/absent still work). */
#define RM_ROUTE_QUERY_VALUE_MAX 2048

/* One header field line. Both slices borrow from the request buffer; the value has its
 * surrounding whitespace already trimmed (the HTTP/1 parser does this). */
typedef struct rm_header_view {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} rm_header_view_t;

/* A request as routing reads it: slices into the caller's buffers, nothing owned, nothing
 * copied. path excludes the query; query excludes the '?' (a leading '?' is tolerated);
 * rm_route_split_target splits an origin-form target. The brief sketched a method enum field
 * too; routing matches the method by its text only (methods are case-sensitive tokens), so the
 * enum, which lives with the HTTP/1 parser, is not needed here. */
typedef struct rm_request_view {
    const char *method;
    size_t method_len;
    const char *path;
    size_t path_len;
    const char *query;
    size_t query_len;
    const rm_header_view_t *headers;
    size_t nheaders;
} rm_request_view_t;

/* Where a request goes. Every pointer borrows from the snapshot of the service passed to
 * rm_route_decide: keep that snapshot referenced while the decision is used. */
typedef struct rm_route_decision {
    const rm_rule_t *rule;              /* the matched rule, or svc->default_rule; never NULL */
    size_t rule_index;                  /* rule->index (svc->nrules for the default rule) */
    const char *rule_name;              /* rule->name ("" when unnamed or default) */
    const char *route_name;             /* the Route document ("" for the default rule) */
    uint64_t timeout_ms;                /* rule->timeout_ms */
    const rm_retry_policy_t *retry;     /* rule->retry; never NULL */
    size_t version_index;               /* in svc->versions; SIZE_MAX when no version could be
                                           chosen (every weight 0) */
    const char *version;                /* that version's name, or NULL */
    bool sticky;                        /* chosen by hashing the stickyOn key, not at random */
    bool mirror;                        /* this request is shadowed: send a copy to the target */
    const rm_mirror_t *mirror_policy;   /* rule->mirror (NULL when the rule has none) */
    const rm_service_t *mirror_service; /* when mirror: the service the copy goes to */
    size_t mirror_version_index;        /* when mirror: its version, or SIZE_MAX when the
                                           target service's own routes decide */
    const char *mirror_version;         /* that version's name, or NULL */
} rm_route_decision_t;

/* Load callback for rm_route_pick_endpoint: the endpoint's active request count, or a negative
 * value when the endpoint is ejected (outlier detection) and must not be picked. */
typedef int (*rm_route_load_cb)(void *ctx, const rm_endpoint_ref_t *ep);

#endif /* REMORA_DATAPLANE_ROUTE_ROUTE_T_H */
