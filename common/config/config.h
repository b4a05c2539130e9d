/* common/config/config.h — parse, validate and print Remora config documents (SPEC.md, "Config
 * documents"): the one library that remora-proxy, remora-control and meshctl all use.
 *
 * The model is proto/remora/v1/config.proto; documents are YAML (several per file, `---` between
 * them) or JSON (one object or an array of objects) with the same fields in camelCase. Every
 * message returned here follows protobuf-c's allocation conventions, so
 * protobuf_c_message_free_unpacked(&set->base, NULL) (or remora__v1__config_set__free_unpacked)
 * frees all of it.
 *
 * Typical use (control plane, meshctl):
 *
 *     rm_config_diags_t errs = {0}, warns = {0};
 *     Remora__V1__ConfigSet *set = NULL;
 *     if (rm_config_load(name, data, len, ctx, &set, &errs, &warns) < 0)
 *         rm_config_diags_print(&errs, stderr);      // nothing was returned
 *     ...
 *     rm_config_diags_free(&errs);
 *     rm_config_diags_free(&warns);
 *
 * Threads: every function here is reentrant and keeps no global state; call from any thread, as
 * long as one set / one diags list is not used by two threads at once.
 *
 * How documents are read (beyond SPEC.md):
 *  - JSON is recognised by its first non-blank byte ('{' or '['); a top-level JSON array is a list
 *    of documents, numbered from 1 like YAML documents.
 *  - YAML null (`vip:`, `~`, `null`, JSON null) means "field absent"; a null list item is an error.
 *  - Integers are plain decimal scalars: no quotes, sign, leading zeros, exponent or fraction.
 *    Strings take any scalar as its text (`version: 1.0` is "1.0"). Booleans are true/false.
 *  - Anchors, aliases and tags are rejected; nesting is limited to RM_CONFIG_MAX_DEPTH.
 *  - Positions point at the key of the offending field (a list item: the item itself); a missing
 *    field points at the mapping that should hold it. Paths look like
 *    `rules[1].destinations[0].weight` and `match.headers.x-user-group.exact`.
 *
 * Defaults filled in by validation (config.proto documents most of them): namespace "default";
 * a lone destination's weight 1 (with several destinations each weight is required); rule
 * timeout 15s; mirror percent 100; retries: attempts 2, backoff base 25ms and max 250ms (or base,
 * when base is larger), budget 20% and 10/s; circuit breaker limits 1024/1024/1024 and maxRetries
 * 3, outlier detection 5 and 3 consecutive errors, interval 10s, base ejection 30s, 10%. Header
 * names (match and stickyOn) are lower-cased. Listing retriableStatusCodes adds
 * "retriable-status-codes" to retryOn when it is missing (SPEC.md's example relies on that).
 * Regexes are checked by compiling them with PCRE2 in UTF mode.
 */
#ifndef REMORA_COMMON_CONFIG_CONFIG_H
#define REMORA_COMMON_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "remora/v1/config.pb-c.h"

/* Most diagnostics kept per list; the rest are only counted (rm_config_diags_t.dropped). */
#define RM_CONFIG_MAX_DIAGS 50

/* Largest input rm_config_parse accepts, in bytes (4 MiB). */
#define RM_CONFIG_MAX_INPUT ((size_t)4 << 20)

/* Deepest nesting of mappings and lists a document may have. */
#define RM_CONFIG_MAX_DEPTH 32

/*
 * One error or warning. Formats as "file:line:col: path: message"; parts that are unknown are
 * left out (line/col 0, path NULL). When a diagnostic has no position (the set did not come from
 * rm_config_parse), `doc` names the document instead ("Route default/reviews-rollout").
 * All strings are owned by the list the diag lives in.
 */
typedef struct rm_config_diag {
    char *file;    /* owned, or NULL */
    int line;      /* 1-based; 0 when unknown */
    int col;       /* 1-based; 0 when unknown */
    char *path;    /* owned, or NULL at document level: "rules[1].destinations[0].weight" */
    char *message; /* owned, never NULL: "must be a non-negative integer" */
    char *doc;     /* owned, or NULL: "Route default/reviews-rollout", used without a position */
} rm_config_diag_t;

/* A list of diagnostics. Zero-initialise ({0}) before first use; free with rm_config_diags_free. */
typedef struct rm_config_diags {
    rm_config_diag_t *items; /* owned array of `count` diags, in the order found */
    size_t count;
    size_t cap;     /* allocated length of items */
    size_t dropped; /* diagnostics past RM_CONFIG_MAX_DIAGS (or lost to ENOMEM), not stored */
} rm_config_diags_t;

/* A service that exists outside the set being validated (e.g. in the control plane's store). */
typedef struct rm_config_service_ref {
    const char *namespace_; /* borrowed; NULL means "default" */
    const char *name;       /* borrowed */
} rm_config_service_ref_t;

/* An endpoint known outside the set (registered sidecars, stored static endpoints). */
typedef struct rm_config_endpoint_ref {
    const char *namespace_; /* borrowed; NULL means "default" */
    const char *service;    /* borrowed */
    const char *version;    /* borrowed */
} rm_config_endpoint_ref_t;

/*
 * What validation may assume about the world outside the set. Everything is borrowed for the
 * duration of the call. A NULL context means "only the set itself": references must resolve
 * inside the set, and no endpoint warnings are given.
 */
typedef struct rm_config_context {
    const rm_config_service_ref_t *services; /* services that exist besides the set's own */
    size_t n_services;
    /*
     * Nonzero: `endpoints` (plus the static endpoints of the set's Services) is every endpoint
     * there is, so a destination with weight > 0 whose version has none gets a warning.
     * Zero: endpoints are unknown; no such warnings.
     */
    int endpoints_known;
    const rm_config_endpoint_ref_t *endpoints;
    size_t n_endpoints;
} rm_config_context_t;

/*
 * Decodes documents (no semantic validation beyond types and structure). `filename` is only used
 * in messages (may be NULL); `data` need not be NUL-terminated. On success returns 0 and stores a
 * new set in *out, owned by the caller; the set remembers where each field came from, so a later
 * rm_config_validate reports file:line:col (that memory is freed with the set). On failure returns
 * -EINVAL (errors appended to *errors; NULL discards them) or -ENOMEM, and *out is NULL: nothing
 * half-parsed is ever returned.
 */
int rm_config_parse(const char *filename, const char *data, size_t len, Remora__V1__ConfigSet **out,
                    rm_config_diags_t *errors);

/*
 * Validates every rule of SPEC.md and fills in the defaults documented in config.proto (namespace
 * "default", percentages, retry and circuit-breaker defaults, lower-cased header names). `set` is
 * borrowed and modified in place; `ctx` may be NULL (see rm_config_context_t); `warnings` may be
 * NULL. Returns 0 when there is no error (warnings do not count), -EINVAL when errors were
 * appended to *errors (NULL discards them; the set may then be partly defaulted: discard it), or
 * -ENOMEM. Validating a set again is harmless: defaults are only filled where absent.
 */
int rm_config_validate(Remora__V1__ConfigSet *set, const rm_config_context_t *ctx,
                       rm_config_diags_t *errors, rm_config_diags_t *warnings);

/*
 * rm_config_parse + rm_config_validate. On success returns 0 and *out is a valid, defaulted set
 * owned by the caller. On any error returns -EINVAL or -ENOMEM, *out is NULL and the decoded set
 * has been freed.
 */
int rm_config_load(const char *filename, const char *data, size_t len,
                   const rm_config_context_t *ctx, Remora__V1__ConfigSet **out,
                   rm_config_diags_t *errors, rm_config_diags_t *warnings);

/*
 * Reads `path` ("-" reads stdin) and runs rm_config_load on it, naming the file by `path` in
 * messages. Returns as rm_config_load does, or a negative errno when the file cannot be read
 * (with a diagnostic saying why). Blocks on I/O: not for an event-loop thread.
 */
int rm_config_load_file(const char *path, const rm_config_context_t *ctx,
                        Remora__V1__ConfigSet **out, rm_config_diags_t *errors,
                        rm_config_diags_t *warnings);

/*
 * Prints the set as YAML documents (`---` between them), Services first, then Routes, then
 * CircuitBreakers; `kind` first in each, camelCase names, durations as "250ms"/"2s". Returns a
 * NUL-terminated string the caller frees with free(), or NULL when out of memory (or when a
 * hand-built set holds a string that is not UTF-8). rm_config_load of the result gives back an
 * equal set; an empty set prints as "", which loading rejects as having no documents.
 */
char *rm_config_to_yaml(const Remora__V1__ConfigSet *set);

/*
 * The same documents as a JSON array (two-space indent; characters YAML cannot hold raw, such as
 * DEL and C1 controls, are \u-escaped). Caller frees with free(); NULL as for rm_config_to_yaml,
 * or for a uint64 above INT64_MAX (none in the config model). rm_config_load of the result gives
 * back an equal set.
 */
char *rm_config_to_json(const Remora__V1__ConfigSet *set);

/*
 * Formats one diagnostic into buf as snprintf does ("file:line:col: path: message"); returns the
 * length of the whole line without the NUL.
 */
int rm_config_diag_format(const rm_config_diag_t *diag, char *buf, size_t n);

/*
 * Prints every diagnostic of the list, one per line, plus "... and N more" when some were
 * dropped. `prefix` (may be NULL) goes at the start of each line, e.g. "warning: ".
 */
void rm_config_diags_print(const rm_config_diags_t *diags, FILE *out, const char *prefix);

/* Frees what the list owns and zeroes it, ready for reuse. NULL is a no-op. */
void rm_config_diags_free(rm_config_diags_t *diags);

#endif /* REMORA_COMMON_CONFIG_CONFIG_H */
