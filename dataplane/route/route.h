/* dataplane/route/route.h — deciding where a request goes: rule matching, weighted and sticky
 * version choice, mirror sampling, and power-of-two-choices endpoint picking.
 *
 * Pure functions over an immutable snapshot: no allocation, no locks, no strlen on the request
 * path, safe on any thread. Randomness comes from the caller (random64), so the worker owns its
 * RNG and tests are deterministic.
 *
 * Matching semantics (SPEC.md "Config documents"; Envoy/Istio behave the same way):
 * - Rules are tried in order (all Routes of a service, in document order); the first whose match
 *   holds wins. All conditions of one match must hold; an empty match holds for every request.
 * - Headers: names compare case-insensitively (ASCII), values case-sensitively. A header that
 *   occurs several times matches when ANY of its values satisfies the condition; `present`
 *   holds when it occurs at all, `absent` when it never does. Values are not split at commas.
 * - Cookies: read from every `Cookie` header ("a=1; b=2"), pairs split at ';' with surrounding
 *   spaces and tabs trimmed; pairs without '=' are ignored; names case-sensitive; values taken
 *   as sent (quotes kept). A cookie name sent several times matches when any value does.
 * - Query: split at '&'; names and values percent-decoded (%XX, '+' as space; a malformed %
 *   escape stays literal) before comparing; a parameter without '=' is present with an empty
 *   value; repeated parameters: any value matching counts.
 * - Path: exact, prefix (plain string prefix: "/api" matches "/api/x" and "/apix") or regex,
 *   on the raw path without the query (no decoding or normalisation).
 * - Method: exact and case-sensitive.
 * - Regexes match the whole value (compiled with PCRE2_ANCHORED | PCRE2_ENDANCHORED) under the
 *   snapshot's match limits; hitting a limit counts as no match.
 */
#ifndef REMORA_DATAPLANE_ROUTE_ROUTE_H
#define REMORA_DATAPLANE_ROUTE_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "dataplane/route/route-t.h"

/*
 * Decides rule, version and mirroring for one request to svc.
 *
 * Version choice: with weights w_i over the rule's destinations (document order) and sum S, the
 * choice is the destination whose cumulative range [w_0+..+w_{i-1}, w_0+..+w_i) contains
 * x % S; weight-0 destinations are never chosen. x is random64, or, when the rule has stickyOn
 * and the request carries a non-empty key (the first such header, or the first such cookie),
 * rm_hash64(key) (dataplane/snapshot/hash.h: FNV-1a 64 + fmix64), so every sidecar sends one
 * user to one version. S is at most 2^32 times the destination count, so x % S is biased by less
 * than S / 2^64 (< 2^-24 for any sane config), far below binomial noise.
 * Because the ranges are contiguous, raising a canary's weight while keeping S moves only the
 * users whose hash falls in the moved range; the others keep their version.
 * Mirror: sampled with probability percent/100 from a value derived from random64 by a mixing
 * function, independent of the version choice in practice.
 *
 * No rule matching: the service's default rule applies — every version weighted by its count of
 * ready (non-draining) endpoints, as a Kubernetes Service spreads over its pods — and the return
 * value is RM_ROUTE_NO_RULE (out is fully filled). A rule without destinations spreads the same
 * way.
 *
 * Returns 0 or RM_ROUTE_NO_RULE with out filled; RM_ROUTE_NO_VERSION when the chosen version has
 * no ready endpoint or every weight is 0 (out is still filled: rule, version when there is one,
 * mirror, so stats can name them; the proxy answers 503 "no healthy upstream");
 * RM_ROUTE_EINVAL for NULL arguments. Borrowed: svc, req (only read during the call); out's
 * pointers borrow from svc's snapshot. Any thread.
 */
int rm_route_decide(const rm_service_t *svc, const rm_request_view_t *req, uint64_t random64,
                    rm_route_decision_t *out);

/*
 * Picks an endpoint of svc->versions[version_index] by power of two choices: two random
 * candidates, the one with the lower load() wins (the first on a tie).
 *
 * Never picks an endpoint that is draining. Otherwise, in order of preference: one whose key is
 * not in exclude_keys (the endpoints a retry already tried) and for which load() is >= 0; for a
 * retry (nexclude > 0) whose untried endpoints are all ejected (load() < 0), one of those; one
 * in exclude_keys that is not ejected (a retry with a single endpoint left). A first attempt
 * never takes an ejected endpoint. load may be NULL (every endpoint counts as load 0 and none
 * as ejected).
 *
 * Each candidate is found by starting at a random index and stepping forward past unusable
 * endpoints, so an endpoint right after an unusable one is slightly more likely to be a
 * candidate; with every endpoint usable the candidates are uniform and distinct. load() is called
 * on the endpoints stepped over and on the candidates (usually exactly twice).
 *
 * random64 should be independent of the one given to rm_route_decide (draw a new value).
 * Returns 0 with *out set (borrowed from svc's snapshot), RM_ROUTE_NO_ENDPOINT when nothing is
 * usable, RM_ROUTE_EINVAL for NULL arguments or a bad index. Any thread (load is called on the
 * caller's thread).
 */
int rm_route_pick_endpoint(const rm_service_t *svc, size_t version_index, uint64_t random64,
                           int (*load)(void *ctx, const rm_endpoint_ref_t *ep), void *ctx,
                           const uint64_t *exclude_keys, size_t nexclude,
                           const rm_endpoint_ref_t **out);

/* Whether every condition of m holds for req (the matching rules above). Any thread. */
bool rm_route_match(const rm_match_t *m, const rm_request_view_t *req);

/* The configured weight of version_index in rule (the sum when several destinations name it;
 * endpoint counts for the default rule). 0 when it is not a destination. For stats, beside the
 * observed share. Any thread. */
uint64_t rm_route_version_weight(const rm_rule_t *rule, size_t version_index);

/* The sum of rule's weights. Any thread. */
uint64_t rm_route_weight_sum(const rm_rule_t *rule);

/* version_index's configured share of rule's traffic in [0, 1] (0 when the sum is 0). */
double rm_route_version_share(const rm_rule_t *rule, size_t version_index);

/* Splits an origin-form request target "/p?q" into path "/p" and query "q" (query_len 0 and
 * query pointing at the end when there is no '?'). Any thread. */
void rm_route_split_target(const char *target, size_t len, const char **path, size_t *path_len,
                           const char **query, size_t *query_len);

/* The value of the first header named name (lowercase, name_len bytes), or NULL. Any thread. */
const char *rm_route_header_value(const rm_request_view_t *req, const char *name, size_t name_len,
                                  size_t *value_len);

/* The value of the first cookie named name (case-sensitive) across the Cookie headers, or NULL.
 * Any thread. */
const char *rm_route_cookie_value(const rm_request_view_t *req, const char *name, size_t name_len,
                                  size_t *value_len);

#endif /* REMORA_DATAPLANE_ROUTE_ROUTE_H */
