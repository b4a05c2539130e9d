/* tests/fuzz/discovery/discovery_fuzz.c — libFuzzer driver for remora-control's handler logic
 * (controlplane/core) without a network: discovery-stream messages from several fake sidecars,
 * and Admin requests (Apply above all), all as raw protobuf bytes, over an in-memory store that
 * starts each input with one valid config version.
 *
 * Input: one selector byte, then
 *   selector 0..127: a discovery session, records of
 *       [flags][len lo][len hi][len bytes of DiscoveryRequest]
 *     flags bits 0-1: which of 3 sidecars sends it (streams open lazily);
 *           bit 2: end that sidecar's stream after the message;
 *           bit 3: let 3 s pass afterwards (endpoint grace expiry, pushes);
 *           bit 4: run an Admin ProxyStatus + Stats afterwards;
 *   selector 128..255: one Admin call, method = selector % 8, the rest is the request.
 *
 * Checked (abort on failure): every reply is either OK with a response that unpacks as its type,
 * or an error with a message; every snapshot built unpacks as a DiscoveryResponse with the
 * version and nonce recorded; a successful change is in the store as the latest version; the
 * registry's counts stay consistent.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log/log.h"
#include "controlplane/core/admin.h"
#include "controlplane/core/control.h"
#include "remora/v1/admin.pb-c.h"
#include "remora/v1/discovery.pb-c.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define SIDECARS 3

static const char seed_yaml[] = "kind: Service\n"
                                "name: reviews\n"
                                "port: 9080\n"
                                "endpoints:\n"
                                "  - {address: 127.0.0.1:9001, version: v1}\n"
                                "---\n"
                                "kind: Route\n"
                                "name: reviews-rollout\n"
                                "service: reviews\n"
                                "rules:\n"
                                "  - destinations:\n"
                                "      - {version: v1, weight: 90}\n"
                                "      - {version: v2, weight: 10}\n";

static uint8_t *seed_cfg;
static size_t seed_len;

static const ProtobufCMessageDescriptor *const response_types[RM_ADMIN_METHOD_COUNT] = {
    &remora__v1__apply_response__descriptor,        &remora__v1__get_response__descriptor,
    &remora__v1__delete_response__descriptor,       &remora__v1__history_response__descriptor,
    &remora__v1__rollback_response__descriptor,     &remora__v1__stats_response__descriptor,
    &remora__v1__proxy_status_response__descriptor, &remora__v1__wait_for_ack_response__descriptor,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    rm_log_init("discovery_fuzz", RM_LOG_OFF);
    /* The seed config goes through the real Apply once; every input then starts from its
     * stored bytes, which is much cheaper than parsing YAML per input. */
    rm_store_t *st = NULL;
    rm_control_t *c = NULL;
    char err[256];
    CHECK(rm_store_open("mem:", &st, err, sizeof(err)) == 0);
    CHECK(rm_control_open(st, NULL, &c, err, sizeof(err)) == 0);
    Remora__V1__ApplyRequest req = REMORA__V1__APPLY_REQUEST__INIT;
    req.source = (char *)seed_yaml;
    req.filename = "seed.yaml";
    size_t len;
    uint8_t *bytes = rm_pb_pack(&req.base, &len);
    rm_admin_reply_t reply;
    rm_admin_handle(c, RM_ADMIN_APPLY, bytes, len, 1, &reply);
    CHECK(reply.code == RM_STATUS_OK && c->version == 1);
    rm_admin_reply_free(&reply);
    free(bytes);
    seed_cfg = rm_pb_pack(&c->config->base, &seed_len);
    rm_control_close(c);
    return 0;
}

static void check_snapshot_of(rm_control_t *c, const rm_scope_snapshot_t *s)
{
    Remora__V1__DiscoveryResponse *r =
        remora__v1__discovery_response__unpack(NULL, s->len, s->data);
    CHECK(r != NULL && r->snapshot != NULL);
    CHECK(r->snapshot->version == c->version);
    CHECK(strcmp(r->snapshot->nonce, s->nonce) == 0);
    CHECK(r->snapshot->n_endpoints == s->n_endpoints);
    remora__v1__discovery_response__free_unpacked(r, NULL);
}

static void check_snapshot(rm_control_t *c)
{
    check_snapshot_of(c, rm_control_snapshot(c));
}

static void check_registry(const rm_registry_t *reg)
{
    size_t n = 0, connected = 0;
    for (const rm_sidecar_t *sc = reg->head; sc != NULL; sc = sc->next) {
        n++;
        connected += sc->connected;
        CHECK(!sc->has_endpoint || (sc->hello && *sc->service && *sc->address));
    }
    CHECK(n == reg->count && connected == reg->connected);
}

static void admin_call(rm_control_t *c, rm_admin_method_t m, const uint8_t *data, size_t len,
                       uint64_t now)
{
    uint64_t before = c->version;
    rm_admin_reply_t reply;
    rm_admin_handle(c, m, data, len, now, &reply);
    if (reply.code == RM_STATUS_OK) {
        CHECK(reply.body != NULL);
        if (reply.wait) {
            CHECK(m == RM_ADMIN_APPLY || m == RM_ADMIN_WAIT_FOR_ACK);
            (void)rm_admin_wait_ready(c, &reply);
            rm_admin_wait_finish(c, m, &reply, 1, now);
        }
        ProtobufCMessage *resp =
            protobuf_c_message_unpack(response_types[m], NULL, reply.len, reply.body);
        CHECK(resp != NULL);
        protobuf_c_message_free_unpacked(resp, NULL);
    } else {
        CHECK(reply.details != NULL && reply.body == NULL);
        CHECK(c->version == before); /* a failed call never changes the config */
    }
    if (c->version != before) {
        CHECK(c->version == before + 1);
        rm_store_record_t rec;
        CHECK(rm_store_get(c->store, 0, &rec) == 0);
        CHECK(rec.version == c->version);
        Remora__V1__ConfigSet *set =
            remora__v1__config_set__unpack(NULL, rec.config_len, rec.config);
        CHECK(set != NULL);
        remora__v1__config_set__free_unpacked(set, NULL);
        rm_store_record_free(&rec);
        check_snapshot(c);
    }
    rm_admin_reply_free(&reply);
}

static void discovery_session(rm_control_t *c, const uint8_t *data, size_t size)
{
    rm_sidecar_t *sc[SIDECARS] = {NULL, NULL, NULL};
    uint64_t now = 1000;
    size_t i = 0;
    static const uint8_t empty[1];
    while (i + 3 <= size) {
        uint8_t flags = data[i];
        size_t len = (size_t)data[i + 1] | ((size_t)data[i + 2] << 8);
        i += 3;
        if (len > size - i)
            len = size - i;
        int k = flags & 3;
        if (k >= SIDECARS)
            k = SIDECARS - 1;
        if (sc[k] == NULL)
            sc[k] = rm_discovery_open(c, now);
        if (sc[k] == NULL) {
            /* Past --max-streams (a capped control): refused before it is anything. */
            CHECK(c->refused[RM_CAP_STREAMS] > 0 && c->registry.connected >= c->opt.max_streams);
            i += len;
            continue;
        }
        rm_disc_result_t res;
        int rc = rm_discovery_handle(c, sc[k], len ? data + i : empty, len, now, &res);
        i += len;
        if (rc < 0) {
            CHECK(res.code != RM_STATUS_OK && res.message[0] != '\0');
            rm_discovery_close(c, sc[k], now);
            sc[k] = NULL;
        } else {
            CHECK(res.code == RM_STATUS_OK);
            if (res.send_now) {
                const rm_scope_snapshot_t *hs = rm_control_snapshot_for_hello(c);
                check_snapshot_of(c, hs);
                rm_discovery_sent(c, sc[k], hs);
            }
            if (flags & 4) {
                rm_discovery_close(c, sc[k], now);
                sc[k] = NULL;
            }
        }
        if (flags & 8)
            now += 3000;
        rm_control_tick(c, now);
        if (rm_control_push_due(c, now)) {
            check_snapshot(c);
            for (int j = 0; j < SIDECARS; j++)
                if (sc[j] != NULL && sc[j]->hello)
                    rm_discovery_sent(c, sc[j], rm_control_snapshot(c));
            rm_control_push_done(c);
        }
        if (flags & 16) {
            admin_call(c, RM_ADMIN_PROXY_STATUS, empty, 0, now);
            admin_call(c, RM_ADMIN_STATS, empty, 0, now);
        }
        check_registry(&c->registry);
    }
    for (int j = 0; j < SIDECARS; j++)
        if (sc[j] != NULL)
            rm_discovery_close(c, sc[j], now);
    rm_control_tick(c, now + 10000);
    CHECK(c->registry.count == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    rm_store_t *st = NULL;
    rm_control_t *c = NULL;
    char err[256];
    uint64_t v;
    CHECK(rm_store_open("mem:", &st, err, sizeof(err)) == 0);
    CHECK(rm_store_append(st, 0, seed_cfg, seed_len, "seed", 1, &v) == 0);
    /* Inputs with bit 6 set run under tiny caps, so the refusals are explored too. */
    rm_cp_options_t capped = {.debounce_ms = RM_CONTROL_DEFAULT_DEBOUNCE_MS,
                              .grace_ms = RM_CONTROL_DEFAULT_GRACE_MS,
                              .history = 2,
                              .max_streams = 2,
                              .max_scopes = 1,
                              .max_registrations = 1,
                              .max_waiters = 1};
    CHECK(rm_control_open(st, (data[0] & 64) ? &capped : NULL, &c, err, sizeof(err)) == 0);
    if (data[0] < 128)
        discovery_session(c, data + 1, size - 1);
    else
        admin_call(c, (rm_admin_method_t)(data[0] % RM_ADMIN_METHOD_COUNT), data + 1, size - 1,
                   1000);
    rm_control_close(c);
    return 0;
}
