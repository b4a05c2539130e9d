/* controlplane/registry/registry.c — the sidecar registry: identities, endpoints, what was sent
 * and what was answered (see registry.h for the rules).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/registry/registry.h"
#include "controlplane/util/util.h"

void rm_registry_init(rm_registry_t *reg)
{
    memset(reg, 0, sizeof(*reg));
    reg->next_id = 1;
}

void rm_registry_entry_free(rm_sidecar_t *sc)
{
    free(sc->pod);
    free(sc->namespace_);
    free(sc->service);
    free(sc->version);
    free(sc->address);
    free(sc->proxy_version);
    free(sc->error);
    rm_statsagg_history_free(sc->stats);
    free(sc);
}

static void unlink_entry(rm_registry_t *reg, rm_sidecar_t *sc)
{
    if (sc->prev != NULL)
        sc->prev->next = sc->next;
    else
        reg->head = sc->next;
    if (sc->next != NULL)
        sc->next->prev = sc->prev;
    else
        reg->tail = sc->prev;
    reg->count--;
    if (sc->connected)
        reg->connected--;
    if (sc->remote)
        reg->remote--;
    sc->prev = sc->next = NULL;
}

/* Unlinks and frees sc, or keeps it on `gone` while the store holds its registration. */
static void retire(rm_registry_t *reg, rm_sidecar_t *sc)
{
    unlink_entry(reg, sc);
    if (!sc->remote && sc->stored) {
        rm_statsagg_history_free(sc->stats);
        sc->stats = NULL;
        sc->next = reg->gone;
        reg->gone = sc;
        return;
    }
    rm_registry_entry_free(sc);
}

static void link_tail(rm_registry_t *reg, rm_sidecar_t *sc)
{
    sc->prev = reg->tail;
    sc->next = NULL;
    if (reg->tail != NULL)
        reg->tail->next = sc;
    else
        reg->head = sc;
    reg->tail = sc;
    reg->count++;
}

rm_sidecar_t *rm_registry_add_listed(rm_registry_t *reg, const char *pod, const char *ns,
                                     const char *service, const char *version, const char *address,
                                     int draining, int remote, uint64_t hold_ms, uint64_t now_ms)
{
    rm_sidecar_t *sc = rm_xcalloc(1, sizeof(*sc));
    sc->id = reg->next_id++;
    sc->pod = rm_xstrdup(pod);
    sc->namespace_ = rm_xstrdup(ns);
    sc->service = rm_xstrdup(service);
    sc->version = rm_xstrdup(version);
    sc->address = rm_xstrdup(address);
    sc->proxy_version = rm_xstrdup("");
    sc->hello = 1;
    sc->has_endpoint = 1;
    sc->draining = draining ? 1 : 0;
    sc->connected_ms = sc->last_seen_ms = sc->disconnected_ms = now_ms;
    if (remote) {
        sc->remote = 1;
        reg->remote++;
    } else {
        sc->hold_ms = hold_ms; /* stored stays 0: the core writes it again as ours */
    }
    link_tail(reg, sc);
    return sc;
}

void rm_registry_drop_remote(rm_registry_t *reg)
{
    rm_sidecar_t *sc = reg->head;
    while (sc != NULL && reg->remote > 0) {
        rm_sidecar_t *next = sc->next;
        if (sc->remote) {
            unlink_entry(reg, sc);
            rm_registry_entry_free(sc);
        }
        sc = next;
    }
}

rm_sidecar_t *rm_registry_take_gone(rm_registry_t *reg)
{
    rm_sidecar_t *g = reg->gone;
    reg->gone = NULL;
    return g;
}

void rm_registry_return_gone(rm_registry_t *reg, rm_sidecar_t *sc)
{
    sc->next = reg->gone;
    reg->gone = sc;
}

void rm_registry_free(rm_registry_t *reg)
{
    rm_sidecar_t *sc = reg->head;
    while (sc != NULL) {
        rm_sidecar_t *next = sc->next;
        rm_registry_entry_free(sc);
        sc = next;
    }
    for (sc = reg->gone; sc != NULL;) {
        rm_sidecar_t *next = sc->next;
        rm_registry_entry_free(sc);
        sc = next;
    }
    memset(reg, 0, sizeof(*reg));
}

rm_sidecar_t *rm_registry_connect(rm_registry_t *reg, uint64_t now_ms)
{
    rm_sidecar_t *sc = rm_xcalloc(1, sizeof(*sc));
    sc->id = reg->next_id++;
    sc->connected = 1;
    sc->connected_ms = sc->last_seen_ms = now_ms;
    link_tail(reg, sc);
    reg->connected++;
    return sc;
}

/* Identity fields end up in every sidecar's snapshot and in meshctl's tables: printable ASCII
 * without spaces keeps both safe (Kubernetes names are DNS labels anyway). */
static int check_field(const char *what, const char *v, size_t max, char *err, size_t errlen)
{
    size_t len = strlen(v);
    if (len > max) {
        snprintf(err, errlen, "Hello: node.%s is %zu bytes long (at most %zu)", what, len, max);
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= 0x20 || c >= 0x7f) {
            snprintf(err, errlen,
                     "Hello: node.%s has a byte 0x%02x at offset %zu (printable ASCII only)", what,
                     c, i);
            return -EINVAL;
        }
    }
    return 0;
}

/* host:port, host non-empty ([v6] allowed), port 1..65535. */
static int check_address(const char *a, char *err, size_t errlen)
{
    const char *colon = strrchr(a, ':');
    if (colon == NULL || colon == a || colon[1] == '\0')
        goto bad;
    if (a[0] == '[' && colon[-1] != ']')
        goto bad;
    unsigned long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9' || p - colon > 5)
            goto bad;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port == 0 || port > 65535)
        goto bad;
    return 0;
bad:
    snprintf(err, errlen, "Hello: node.address \"%s\" is not HOST:PORT", a);
    return -EINVAL;
}

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

size_t rm_registry_local_endpoints(const rm_registry_t *reg)
{
    size_t n = 0;
    for (const rm_sidecar_t *o = reg->head; o != NULL; o = o->next)
        n += !o->remote && o->has_endpoint;
    return n;
}

int rm_registry_full(const rm_registry_t *reg)
{
    return reg->max_endpoints != 0 && rm_registry_local_endpoints(reg) >= reg->max_endpoints;
}

/* Whether earlier entry o is the same pod (ns/pod) as the Hello's node, or holds the address it
 * registers: the newest Hello replaces it (see rm_registry_hello). */
static int same_sidecar(const rm_sidecar_t *o, const char *pod, const char *ns, const char *address,
                        int owns_address)
{
    return o->hello && ((*pod && strcmp(o->pod, pod) == 0 && strcmp(o->namespace_, ns) == 0) ||
                        (owns_address && o->has_endpoint && strcmp(o->address, address) == 0));
}

int rm_registry_hello(rm_registry_t *reg, rm_sidecar_t *sc, const Remora__V1__Hello *hello,
                      uint64_t current_version, uint64_t now_ms, char *err, size_t errlen)
{
    static const Remora__V1__Node empty = REMORA__V1__NODE__INIT;
    const Remora__V1__Node *n = hello->node != NULL ? hello->node : &empty;
    const char *ns = *or_empty(n->namespace_) ? n->namespace_ : "default";
    int changed = 0;

    if (sc->hello) {
        snprintf(err, errlen, "Hello sent twice on one stream");
        return -EINVAL;
    }
    if (check_field("pod", or_empty(n->pod), RM_REGISTRY_NAME_MAX, err, errlen) < 0 ||
        check_field("namespace", ns, RM_REGISTRY_NAME_MAX, err, errlen) < 0 ||
        check_field("service", or_empty(n->service), RM_REGISTRY_NAME_MAX, err, errlen) < 0 ||
        check_field("version", or_empty(n->version), RM_REGISTRY_NAME_MAX, err, errlen) < 0 ||
        check_field("proxy_version", or_empty(n->proxy_version), RM_REGISTRY_NAME_MAX, err,
                    errlen) < 0 ||
        check_field("address", or_empty(n->address), RM_REGISTRY_ADDR_MAX, err, errlen) < 0)
        return -EINVAL;
    if (*or_empty(n->address) && check_address(n->address, err, errlen) < 0)
        return -EINVAL;

    /* The cap, before anything changes: an endpoint that replaces its pod's or address's
     * earlier entry adds none. */
    int owns = *or_empty(n->service) != '\0' && *or_empty(n->address) != '\0';
    if (owns && !hello->not_ready && reg->max_endpoints != 0) {
        size_t count = 0;
        int replaces = 0;
        for (const rm_sidecar_t *o = reg->head; o != NULL; o = o->next) {
            if (o->remote || o == sc)
                continue;
            count += o->has_endpoint;
            replaces |= o->has_endpoint && same_sidecar(o, or_empty(n->pod), ns, n->address, owns);
        }
        if (count >= reg->max_endpoints && !replaces) {
            snprintf(err, errlen, "%zu endpoints registered already (at most %zu)", count,
                     reg->max_endpoints);
            return -ENOSPC;
        }
    }

    sc->pod = rm_xstrdup(n->pod);
    sc->namespace_ = rm_xstrdup(ns);
    sc->service = rm_xstrdup(n->service);
    sc->version = rm_xstrdup(n->version);
    sc->address = rm_xstrdup(n->address);
    sc->proxy_version = rm_xstrdup(n->proxy_version);
    sc->hello = 1;
    sc->last_seen_ms = now_ms;
    if (hello->last_config_version <= current_version)
        sc->config_version = hello->last_config_version;
    /* A pod not ready (its app starting, or a reconnect during its drain) is listed once its
     * REGISTER arrives; the address is its own from now on, so an earlier life at that address
     * (a registration restored after a restart, say) goes below. */
    int owns_address = *sc->service != '\0' && *sc->address != '\0';
    sc->has_endpoint = owns_address && !hello->not_ready;
    changed = sc->has_endpoint;

    /* The same pod (or the same endpoint address) seen again is this sidecar's previous life:
     * a disconnected entry is dropped now instead of waiting out its grace, and a stream that
     * still looks connected (a half-dead connection not yet noticed) loses its endpoint, so one
     * address is never listed twice. The newest Hello wins. */
    rm_sidecar_t *o = reg->head;
    while (o != NULL) {
        rm_sidecar_t *next = o->next;
        if (o != sc && same_sidecar(o, sc->pod, sc->namespace_, sc->address, owns_address)) {
            changed |= o->has_endpoint;
            if (o->connected) {
                o->has_endpoint = 0;
                o->draining = 0;
            } else {
                retire(reg, o);
            }
        }
        o = next;
    }
    return changed;
}

void rm_registry_sent(rm_sidecar_t *sc, uint64_t version, const char *nonce)
{
    size_t i = sc->sent_next;
    sc->sent[i].version = version;
    snprintf(sc->sent[i].nonce, sizeof(sc->sent[i].nonce), "%s", nonce);
    sc->sent_next = (i + 1) % RM_REGISTRY_SENT_RING;
}

/* The version we sent under `nonce`, or -1. */
static int64_t sent_version(const rm_sidecar_t *sc, const char *nonce)
{
    if (nonce == NULL || *nonce == '\0')
        return -1;
    for (size_t i = 0; i < RM_REGISTRY_SENT_RING; i++)
        if (sc->sent[i].nonce[0] != '\0' && strcmp(sc->sent[i].nonce, nonce) == 0)
            return (int64_t)sc->sent[i].version;
    return -1;
}

int rm_registry_ack(rm_sidecar_t *sc, const char *nonce, uint64_t now_ms)
{
    int64_t v = sent_version(sc, nonce);
    sc->last_seen_ms = now_ms;
    if (v < 0)
        return -ENOENT;
    /* An ACK of an older snapshot that arrives late must not roll the record back. */
    if ((uint64_t)v >= sc->config_version) {
        sc->config_version = (uint64_t)v;
        sc->nacked = 0;
        free(sc->error);
        sc->error = NULL;
    }
    sc->acks++;
    return 0;
}

/* NACK errors are the validator's text; keep them printable and bounded, since they are shown in
 * meshctl's table and put into gRPC responses. */
static char *clean_error(const char *e)
{
    size_t len = strlen(e);
    int cut = len > RM_REGISTRY_ERROR_MAX;
    if (cut)
        len = RM_REGISTRY_ERROR_MAX;
    char *s = rm_xmalloc(len + 4);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)e[i];
        s[i] = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? '?' : (char)c;
    }
    memcpy(s + len, cut ? "..." : "", cut ? 4 : 1);
    return s;
}

int rm_registry_nack(rm_sidecar_t *sc, uint64_t kept_version, const char *nonce, const char *error,
                     uint64_t now_ms)
{
    int64_t v = sent_version(sc, nonce);
    sc->last_seen_ms = now_ms;
    if (v < 0)
        return -ENOENT;
    /* The kept version is only believed when it is one we could have sent. */
    if (kept_version <= (uint64_t)v)
        sc->config_version = kept_version;
    sc->nacked = 1;
    sc->nacked_version = (uint64_t)v;
    free(sc->error);
    sc->error = clean_error(error != NULL && *error ? error : "(no error given)");
    sc->nacks++;
    return 0;
}

int rm_registry_withdraw(rm_sidecar_t *sc, uint64_t now_ms)
{
    sc->last_seen_ms = now_ms;
    if (!sc->has_endpoint || sc->draining)
        return 0;
    sc->draining = 1;
    return 1;
}

int rm_registry_disconnect(rm_registry_t *reg, rm_sidecar_t *sc, uint64_t now_ms, uint64_t grace_ms)
{
    if (!sc->connected)
        return 0;
    sc->connected = 0;
    reg->connected--;
    sc->disconnected_ms = now_ms;
    if (sc->has_endpoint && grace_ms > 0)
        return 0;
    int changed = sc->has_endpoint;
    retire(reg, sc);
    return changed;
}

size_t rm_registry_expire(rm_registry_t *reg, uint64_t now_ms, uint64_t grace_ms)
{
    size_t gone = 0;
    if (reg->count == reg->connected + reg->remote)
        return 0; /* nobody is in their grace: the common case, checked after every event */
    rm_sidecar_t *sc = reg->head;
    while (sc != NULL) {
        rm_sidecar_t *next = sc->next;
        if (!sc->connected && !sc->remote &&
            now_ms >= sc->disconnected_ms + (sc->hold_ms ? sc->hold_ms : grace_ms)) {
            gone += sc->has_endpoint ? 1 : 0;
            retire(reg, sc);
        }
        sc = next;
    }
    return gone;
}

uint64_t rm_registry_next_expiry(const rm_registry_t *reg, uint64_t grace_ms)
{
    uint64_t next = UINT64_MAX;
    if (reg->count == reg->connected + reg->remote)
        return next;
    for (const rm_sidecar_t *sc = reg->head; sc != NULL; sc = sc->next) {
        uint64_t at = sc->disconnected_ms + (sc->hold_ms ? sc->hold_ms : grace_ms);
        if (!sc->connected && !sc->remote && at < next)
            next = at;
    }
    return next;
}

rm_sidecar_state_t rm_sidecar_state(const rm_sidecar_t *sc, uint64_t current_version)
{
    if (sc->nacked)
        return RM_SIDECAR_NACKED;
    return sc->config_version >= current_version ? RM_SIDECAR_SYNCED : RM_SIDECAR_STALE;
}

const char *rm_sidecar_state_name(rm_sidecar_state_t s)
{
    switch (s) {
    case RM_SIDECAR_SYNCED:
        return "SYNCED";
    case RM_SIDECAR_NACKED:
        return "NACKED";
    default:
        return "STALE";
    }
}

int rm_sidecar_answered(const rm_sidecar_t *sc, uint64_t version)
{
    return sc->config_version >= version || (sc->nacked && sc->nacked_version >= version);
}
