/* controlplane/core/snapshot.c — builds the snapshot every sidecar is sent: the config version,
 * a fresh nonce, the whole ConfigSet and the resolved endpoints (static Service endpoints, then
 * registered sidecars in connection order, draining ones marked).
 *
 * One snapshot serves every stream: scoping the config to what each sidecar needs can come later
 * (it would make the bytes per-sidecar); for now one pack per change keeps a push to 1,000
 * streams at one encode plus 1,000 reference-counted sends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/core/core-int.h"
#include "remora/v1/discovery.pb-c.h"

static size_t count_endpoints(const rm_control_t *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->config->n_services; i++)
        n += c->config->services[i]->n_endpoints;
    for (const rm_sidecar_t *sc = c->registry.head; sc != NULL; sc = sc->next)
        n += sc->has_endpoint ? 1 : 0;
    return n;
}

void rm__snapshot_build(rm_control_t *c)
{
    size_t n = count_endpoints(c), k = 0;
    Remora__V1__ResolvedEndpoint *eps = rm_xcalloc(n ? n : 1, sizeof(*eps));
    Remora__V1__ResolvedEndpoint **ptrs = rm_xcalloc_ptrs(n);

    /* Every string below is borrowed from the config or the registry for the pack. */
    for (size_t i = 0; i < c->config->n_services; i++) {
        const Remora__V1__Service *s = c->config->services[i];
        for (size_t j = 0; j < s->n_endpoints; j++) {
            const Remora__V1__Endpoint *e = s->endpoints[j];
            Remora__V1__ResolvedEndpoint *r = &eps[k];
            remora__v1__resolved_endpoint__init(r);
            r->service = s->name != NULL ? s->name : "";
            r->namespace_ = s->namespace_ != NULL ? s->namespace_ : "default";
            r->version = e->version != NULL ? e->version : "";
            r->address = e->address != NULL ? e->address : "";
            ptrs[k++] = r;
        }
    }
    for (rm_sidecar_t *sc = c->registry.head; sc != NULL; sc = sc->next) {
        if (!sc->has_endpoint)
            continue;
        Remora__V1__ResolvedEndpoint *r = &eps[k];
        remora__v1__resolved_endpoint__init(r);
        r->service = sc->service;
        r->namespace_ = sc->namespace_;
        r->version = sc->version;
        r->address = sc->address;
        r->pod = sc->pod;
        r->draining = sc->draining;
        ptrs[k++] = r;
    }

    rm_snapshot_t *sn = &c->snap;
    sn->gen++;
    sn->version = c->version;
    sn->n_endpoints = k;
    snprintf(sn->nonce, sizeof(sn->nonce), "%s-%llu", c->boot_id, (unsigned long long)sn->gen);

    Remora__V1__Snapshot snap = REMORA__V1__SNAPSHOT__INIT;
    snap.version = c->version;
    snap.nonce = sn->nonce;
    snap.config = c->config;
    snap.n_endpoints = k;
    snap.endpoints = ptrs;
    Remora__V1__DiscoveryResponse resp = REMORA__V1__DISCOVERY_RESPONSE__INIT;
    resp.snapshot = &snap;
    free(sn->data);
    sn->data = rm_pb_pack(&resp.base, &sn->len);
    free(ptrs);
    free(eps);
    c->dirty = 0;
    c->pushes++;
}
