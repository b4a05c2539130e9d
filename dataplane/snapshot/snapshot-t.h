/* dataplane/snapshot/snapshot-t.h — types of the compiled, immutable config snapshot.
 *
 * A snapshot is the sidecar's whole view of the mesh at one config version: services, their
 * routes compiled for matching (regexes compiled, names lowercased, lengths precomputed), their
 * versions and endpoints, circuit-breaker settings, and lookup tables. Everything here is built
 * once by rm_snapshot_build and never written again, so any number of threads read it without
 * locks. Every pointer in these structs is borrowed from the snapshot that holds it and stays
 * valid while the caller holds a reference to that snapshot (rm_snapshot_ref/unref).
 *
 * Types only (functions are in snapshot.h), so that other -t.h files can include this one.
 */
#ifndef REMORA_DATAPLANE_SNAPSHOT_SNAPSHOT_T_H
#define REMORA_DATAPLANE_SNAPSHOT_SNAPSHOT_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <pcre2.h>

#include "remora/v1/config.pb-c.h"
#include "remora/v1/discovery.pb-c.h"

/* Opaque: the snapshot itself (refcounted; see snapshot.h). */
typedef struct rm_snapshot rm_snapshot_t;

struct rm_service;

/* One upstream endpoint of a service version. */
typedef struct rm_endpoint_ref {
    const char *address; /* "10.0.0.5:15006" or "[fd00::5]:15006", as discovery gave it */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *version; /* "" for an endpoint without a version */
    const char *pod;     /* "" for a static endpoint */
    bool draining;       /* withdrawn: never picked for new requests */
    /* A Remora sidecar's inbound port: a registered endpoint, or a static one configured with
     * `sidecar: true` (SPEC.md). Only such an endpoint gets the mesh's own x-remora-* headers,
     * and only its x-remora-error replies are acted on; a plain endpoint's never are. */
    bool sidecar;
    /* rm_hash64(address): stable across snapshots and sidecars, so the proxy keys its runtime
     * state (pools, active counts, ejection) by it and that state survives snapshot swaps. */
    uint64_t key;
} rm_endpoint_ref_t;

/* Limits and outlier detection in force for a service or one of its versions. Every field is
 * filled: absent settings take the documented defaults (SPEC.md, config.proto). */
typedef struct rm_circuit_breaker {
    const char *name; /* the CircuitBreaker document, or NULL for built-in defaults */
    uint32_t max_connections;
    uint32_t max_pending_requests;
    uint32_t max_requests;
    uint32_t max_retries;
    uint32_t consecutive_5xx;            /* 0: disabled */
    uint32_t consecutive_gateway_errors; /* 0: disabled */
    uint64_t interval_ms;
    uint64_t base_ejection_time_ms;
    uint32_t max_ejection_percent;
} rm_circuit_breaker_t;

/* One version of a service: its endpoints, a contiguous slice of the service's array. */
typedef struct rm_version {
    const char *name; /* "" groups the endpoints that have no version */
    size_t name_len;
    size_t index; /* position in rm_service_t.versions */
    const rm_endpoint_ref_t *endpoints;
    size_t nendpoints;
    size_t nready;                  /* endpoints not draining */
    const rm_circuit_breaker_t *cb; /* this version's CircuitBreaker, else the service's */
    uint64_t limits_key; /* rm_snapshot_limits_key(namespace, service, name): its own counters */
} rm_version_t;

/* A compiled PCRE2 pattern with the limits it runs under. */
typedef struct rm_regex {
    pcre2_code *code;                /* owned by the snapshot */
    const pcre2_match_context *mctx; /* owned by the snapshot: match, depth and heap limits */
    const char *pattern;             /* as configured, for messages */
} rm_regex_t;

typedef enum rm_match_kind {
    RM_MATCH_NONE = 0, /* (path only) no condition */
    RM_MATCH_EXACT,
    RM_MATCH_PREFIX,
    RM_MATCH_SUFFIX, /* headers, cookies, query only */
    RM_MATCH_REGEX,
    RM_MATCH_PRESENT, /* headers, cookies, query only */
    RM_MATCH_ABSENT,  /* headers, cookies, query only */
} rm_match_kind_t;

/* One condition on a header, cookie or query parameter. */
typedef struct rm_kv_match {
    const char *name; /* header names are stored lowercased; cookie and query names as written */
    size_t name_len;
    rm_match_kind_t kind;
    const char *value; /* EXACT, PREFIX, SUFFIX: the operand */
    size_t value_len;
    rm_regex_t re; /* REGEX */
} rm_kv_match_t;

/* The condition on the request path (without the query). kind RM_MATCH_NONE: any path. */
typedef struct rm_path_match {
    rm_match_kind_t kind; /* NONE, EXACT, PREFIX or REGEX */
    const char *value;
    size_t value_len;
    rm_regex_t re;
} rm_path_match_t;

/* A rule's match: every condition must hold. An empty match holds for every request. */
typedef struct rm_match {
    const rm_kv_match_t *headers;
    size_t nheaders;
    const rm_kv_match_t *cookies;
    size_t ncookies;
    const rm_kv_match_t *query;
    size_t nquery;
    rm_path_match_t path;
    const char *method; /* NULL: any method; else compared exactly (methods are case-sensitive) */
    size_t method_len;
} rm_match_t;

/* One destination of a rule. */
typedef struct rm_destination {
    size_t version_index; /* into the service's versions */
    uint32_t weight;
} rm_destination_t;

typedef enum rm_sticky_kind {
    RM_STICKY_NONE = 0,
    RM_STICKY_HEADER,
    RM_STICKY_COOKIE,
} rm_sticky_kind_t;

typedef struct rm_sticky {
    rm_sticky_kind_t kind;
    const char *name; /* header name lowercased; cookie name as written */
    size_t name_len;
} rm_sticky_t;

/* Shadow traffic of a rule. Exactly one of version_index (a version of the rule's own service)
 * or "the target service's own routes pick" (version_index == SIZE_MAX) applies. */
typedef struct rm_mirror {
    uint32_t percent;                 /* 0..100 */
    const struct rm_service *service; /* the service the copy goes to (maybe the rule's own) */
    size_t version_index;             /* in service->versions, or SIZE_MAX */
    const char *version;              /* that version's name, or NULL */
} rm_mirror_t;

/* retry_on flags. */
#define RM_RETRY_ON_CONNECT_FAILURE (1u << 0)
#define RM_RETRY_ON_RESET           (1u << 1)
#define RM_RETRY_ON_GATEWAY_ERROR   (1u << 2) /* 502, 503, 504 */
#define RM_RETRY_ON_5XX             (1u << 3)
#define RM_RETRY_ON_RETRIABLE_CODES (1u << 4) /* retriable_status_codes */

/* A rule's retry policy, every field filled. A rule without `retries`, or with an empty
 * `retryOn`, gets attempts 2 and retry_on connect-failure|reset (the proxy still applies the
 * idempotency rules of SPEC.md to `reset`), so the zero-error rolling update holds for routes
 * that never mention retries. */
typedef struct rm_retry_policy {
    uint32_t attempts;           /* retries after the first try */
    uint64_t per_try_timeout_ms; /* 0: none (the rule timeout bounds the whole) */
    unsigned retry_on;           /* RM_RETRY_ON_* */
    const uint32_t *retriable_status_codes;
    size_t nretriable_status_codes;
    uint64_t backoff_base_ms;
    uint64_t backoff_max_ms;
    uint32_t budget_percent;
    uint32_t budget_min_per_second;
} rm_retry_policy_t;

/* One compiled routing rule. */
typedef struct rm_rule {
    const char *name;       /* the rule's name, "" when unnamed or for the default rule */
    const char *route_name; /* the Route document it came from, "" for the default rule */
    size_t index;           /* position in the service's rules; nrules for the default rule */
    const Remora__V1__Rule *proto; /* the rule as configured (snapshot's copy); NULL: default */
    rm_match_t match;
    /* Destinations in document order. For a rule without destinations and for the default
     * rule these are every version weighted by its count of ready endpoints ("spread"). */
    const rm_destination_t *destinations;
    size_t ndestinations;
    uint64_t weight_sum; /* 0: no version can be chosen (RM_ROUTE_NO_VERSION) */
    bool spread;         /* destinations are the endpoint spread described above */
    rm_sticky_t sticky;
    const rm_mirror_t *mirror;      /* NULL: no shadow traffic */
    uint64_t timeout_ms;            /* whole request, retries included; default 15000 */
    const rm_retry_policy_t *retry; /* never NULL */
} rm_rule_t;

/* A destination service. */
typedef struct rm_service {
    const char *name;
    const char *namespace_;
    size_t index; /* 0..rm_snapshot_service_count()-1: for per-service counter arrays */
    uint16_t port;
    const Remora__V1__Service *proto; /* the Service as configured (snapshot's copy) */
    const char *vip;                  /* NULL when the service has no cluster IP */
    struct sockaddr_storage vip_addr; /* vip:port, when vip is set */
    socklen_t vip_len;
    /* Rules of every Route for this service, concatenated in document order. */
    const rm_rule_t *rules;
    size_t nrules;
    const rm_rule_t *default_rule; /* what applies when no rule matches; never NULL */
    /* Versions in order of first appearance: endpoints (discovery order), then versions named
     * only by destinations or mirrors (they have no endpoints). */
    const rm_version_t *versions;
    size_t nversions;
    const rm_endpoint_ref_t *endpoints; /* all, grouped by version */
    size_t nendpoints;
    const rm_circuit_breaker_t *cb; /* the service-wide CircuitBreaker, or defaults */
    /* Keys of the data path's process-wide per-service tables, computed once here instead of
     * hashing the names on every request: */
    uint64_t key;        /* rm_hash64(name) | 1: retry budgets */
    uint64_t limits_key; /* rm_snapshot_limits_key(namespace, name, ""): service-wide limits */
} rm_service_t;

#endif /* REMORA_DATAPLANE_SNAPSHOT_SNAPSHOT_T_H */
