/* dataplane/snapshot/snapshot.h — build, share and query the immutable config snapshot.
 *
 * Life of a snapshot: the config thread (gRPC client, or start-up when running from a file)
 * builds one with rm_snapshot_build and hands it to rm_snapshot_publish. Worker loops notice the
 * new generation (rm_snapshot_generation, after an ev_async wake-up), take a reference with
 * rm_snapshot_acquire (or rm_snapshot_refresh), and each request takes its own reference to the
 * snapshot it started with, so a config update never changes a request in flight. The last
 * rm_snapshot_unref frees it, on whichever thread that happens.
 *
 * Lookups return pointers borrowed from the snapshot, valid while the caller holds a reference.
 * A snapshot is never modified after build, so every function here is safe on any thread.
 */
#ifndef REMORA_DATAPLANE_SNAPSHOT_SNAPSHOT_H
#define REMORA_DATAPLANE_SNAPSHOT_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dataplane/snapshot/snapshot-t.h"

/* Limits every route regex runs under (PCRE2 match, depth and heap limits). A match that hits a
 * limit counts as no match, so no pattern can stall the event loop. */
#define RM_SNAPSHOT_REGEX_MATCH_LIMIT    100000u
#define RM_SNAPSHOT_REGEX_DEPTH_LIMIT    1000u
#define RM_SNAPSHOT_REGEX_HEAP_LIMIT_KIB 256u

/*
 * Compiles a snapshot from a validated config and the resolved endpoints.
 *
 * cfg: a ConfigSet that passed common/config validation (checked again where cheap; anything
 * inconsistent is reported, never trusted). eps/neps: the endpoints to use (discovery's list, or
 * rm_snapshot_endpoints_from_config's); endpoints of services cfg does not define are ignored,
 * an endpoint address listed twice for one service is kept once (draining if either copy is, a
 * Remora sidecar if either copy is).
 * local_namespace: the proxy's own namespace, used for bare `name` hosts; NULL or "" means
 * "default". version: the config version, reported by rm_snapshot_version and /config_dump.
 *
 * Takes deep copies of everything (a packed copy of cfg for /config_dump and an unpacked copy the
 * compiled tables point into): the caller keeps ownership of cfg and eps and may free them as
 * soon as this returns. Returns a snapshot holding one reference (the caller's), or NULL with a
 * one-line message in err (errlen bytes, may be NULL/0) naming the service, route or endpoint
 * at fault. Any thread; does not touch the published slot.
 */
rm_snapshot_t *rm_snapshot_build(const Remora__V1__ConfigSet *cfg,
                                 Remora__V1__ResolvedEndpoint *const *eps, size_t neps,
                                 const char *local_namespace, uint64_t version, char *err,
                                 size_t errlen);

/*
 * The endpoint list of a config used without a control plane: every Service's static
 * `endpoints`, in document order, with service, namespace (default "default"), version,
 * address and sidecar (the document's `sidecar: true`) filled and pod empty. On success returns 0
 * and stores a malloc'ed array of *nout malloc'ed messages in *out (the caller owns them; free with
 * rm_snapshot_endpoints_free). Returns -1 on allocation failure (*out NULL, *nout 0). Any thread.
 */
int rm_snapshot_endpoints_from_config(const Remora__V1__ConfigSet *cfg,
                                      Remora__V1__ResolvedEndpoint ***out, size_t *nout);

/* Frees what rm_snapshot_endpoints_from_config returned. NULL is fine. Any thread. */
void rm_snapshot_endpoints_free(Remora__V1__ResolvedEndpoint **eps, size_t n);

/* Adds a reference. The caller must already hold one (directly or through the published slot
 * via rm_snapshot_acquire). NULL is ignored. Any thread. */
void rm_snapshot_ref(rm_snapshot_t *s);

/* Drops a reference; the last one frees the snapshot and everything it owns, on the calling
 * thread. NULL is ignored. Any thread. */
void rm_snapshot_unref(rm_snapshot_t *s);

/*
 * Makes s the current snapshot. Takes over one reference the caller holds (s may be NULL to
 * clear the slot, e.g. at shutdown); the previously current snapshot loses the slot's reference
 * (requests still holding it keep it alive). Bumps the generation. Does not wake workers: the
 * caller sends their ev_async afterwards. Any thread; publishers are serialized internally.
 */
void rm_snapshot_publish(rm_snapshot_t *s);

/* The current snapshot with a new reference the caller must drop, or NULL when nothing was
 * published. Takes a mutex briefly; a worker calls it when the generation changed, not per
 * request. Any thread. */
rm_snapshot_t *rm_snapshot_acquire(void);

/* A counter bumped by every rm_snapshot_publish (starts at 0). A worker caches the generation
 * of the snapshot it holds and calls rm_snapshot_acquire only when this differs. One atomic
 * load: cheap enough per request. Any thread. */
uint64_t rm_snapshot_generation(void);

/*
 * The whole worker-side pattern: if the generation moved since *gen, replaces *cached (dropping
 * its reference) with the current snapshot and updates *gen. Returns 1 when *cached changed,
 * 0 otherwise. *cached may be NULL at first. The thread that owns *cached and *gen.
 */
int rm_snapshot_refresh(rm_snapshot_t **cached, uint64_t *gen);

/* The config version given to rm_snapshot_build. Any thread. */
uint64_t rm_snapshot_version(const rm_snapshot_t *s);

/* The namespace given to rm_snapshot_build ("default" when none was). Any thread. */
const char *rm_snapshot_local_namespace(const rm_snapshot_t *s);

/* The snapshot's own unpacked copy of the config (borrowed). Any thread. */
const Remora__V1__ConfigSet *rm_snapshot_config(const rm_snapshot_t *s);

/* The config packed with protobuf_c_message_pack, for /config_dump (borrowed; *len set). */
const uint8_t *rm_snapshot_packed(const rm_snapshot_t *s, size_t *len);

/* Number of services; rm_service_t.index runs over 0..count-1. Any thread. */
size_t rm_snapshot_service_count(const rm_snapshot_t *s);

/* The service with that index, or NULL when out of range. Any thread. */
const rm_service_t *rm_snapshot_service_at(const rm_snapshot_t *s, size_t index);

/*
 * The service a Host header or :authority names, or NULL. Accepts host[:port], [ipv6][:port],
 * with or without a trailing dot, compared case-insensitively (ASCII). Names that match a
 * service: name (only for services in the local namespace), name.ns, name.ns.svc,
 * name.ns.svc.cluster.local, every entry of its `hosts`, and its vip.
 * Port: when given it must be the service's port; port 80 also matches any service, as a Host
 * without a port does (a plain http://name/ URL is port 80 even though the service listens on
 * its own port). When several services claim the same name (a shared `hosts` entry), the one
 * whose port equals the given port wins, else the first in document order.
 * No allocation, no strlen. Any thread.
 */
const rm_service_t *rm_snapshot_service_by_host(const rm_snapshot_t *s, const char *host,
                                                size_t len);

/* The service whose vip:port is addr (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts
 * as IPv4), or NULL. For transparent traffic: addr is the original destination. Any thread. */
const rm_service_t *rm_snapshot_service_by_addr(const rm_snapshot_t *s,
                                                const struct sockaddr *addr);

/* The service with that namespace (NULL or "" means "default") and name, exactly, or NULL.
 * Any thread. */
const rm_service_t *rm_snapshot_service_by_name(const rm_snapshot_t *s, const char *ns,
                                                const char *name);

/* The version of svc with that name, or NULL. Linear: for control paths, not per request. */
const rm_version_t *rm_snapshot_version_by_name(const rm_service_t *svc, const char *name);

/* The key of a circuit breaker's counters: rm_hash_mix64 of FNV-1a over "namespace/service/
 * version" (version "" for the service-wide ones), never 0. Pure: any thread. */
uint64_t rm_snapshot_limits_key(const char *namespace_, const char *service, const char *version);

/*
 * Whether the whole of subject[0..len) matches re (the pattern is compiled anchored at both
 * ends). Returns 1 on a match, 0 on no match and also when a limit was hit or the per-thread
 * match data could not be allocated (the first regex match on a thread allocates it once; it is
 * freed when the thread exits). Any thread.
 */
int rm_snapshot_regex_match(const rm_regex_t *re, const char *subject, size_t len);

#endif /* REMORA_DATAPLANE_SNAPSHOT_SNAPSHOT_H */
