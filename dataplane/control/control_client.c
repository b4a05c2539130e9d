/* dataplane/control/control_client.c — the discovery stream client (see control_client.h).
 *
 * gRPC core rules this file follows: at most one SEND_MESSAGE and one RECV_MESSAGE batch are in
 * flight at a time; every started batch produces exactly one completion with its tag, and the call
 * is only unref'd after all of them came back; the completion queue is drained before it is
 * destroyed.
 */
#include "dataplane/control/control_client.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/config/config.h"
#include "common/log/log.h"
#include "remora/v1/discovery.pb-c.h"

#define MAX_MESSAGE_BYTES ((size_t)16 * 1024 * 1024)
#define SEND_QUEUE_MAX    64

enum { TAG_META = 1, TAG_SEND, TAG_RECV, TAG_STATUS };

typedef struct send_item {
    uint8_t *data; /* owned packed DiscoveryRequest */
    size_t len;
    bool withdraw; /* an EndpointChange WITHDRAW: its delivery is what a drain waits for */
} send_item_t;

struct rm_control_client {
    rm_control_options_t opt;
    char *egress_buf; /* owned: the egress list, its commas turned into NULs */
    char **egress;    /* owned array of pointers into egress_buf */
    size_t n_egress;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool withdraw_requested;
    atomic_bool has_config;
    bool withdraw_sent;
    bool sending_withdraw;          /* the send in flight carries the WITHDRAW */
    atomic_bool withdraw_delivered; /* a WITHDRAW went out on an established stream */
    /* Whether this stream listed the endpoint live (Hello, or REGISTER after Hello not_ready). */
    bool listed;
    uint64_t good_version; /* the version in force (last ACKed) */
    double started_s;      /* when the counters were zero (process start), on now_s()'s clock */
    grpc_completion_queue *cq;
    grpc_channel *channel;
    grpc_call *call;
    /* per-stream state */
    int outstanding; /* batches started, completion not yet seen */
    bool send_busy;
    bool stream_done;
    send_item_t queue[SEND_QUEUE_MAX];
    size_t qhead, qlen;
    grpc_byte_buffer *send_buf, *recv_buf;
    grpc_metadata_array init_md, trailing_md;
    grpc_status_code status;
    grpc_slice status_details;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * When this process started, on now_s()'s clock: the moment every counter of the registry was
 * zero, which StatsReport.uptime_ms reports so the control plane can rate the first report.
 * /proc/self/stat's starttime (clock ticks after boot) against CLOCK_BOOTTIME; the two clocks
 * differ from CLOCK_MONOTONIC only by time suspended, which a server does not do. Without /proc,
 * `fallback` (the client's start, a little after the registry's): then counts made in between
 * would look a few milliseconds newer than they are, never older.
 */
static double process_start_s(double fallback)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL)
        return fallback;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: fields resume after the last
     * ')'; starttime is field 22, the 20th after it. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return fallback;
    p++;
    unsigned long long ticks = 0;
    for (int field = 3; field <= 22; field++) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return fallback;
        if (field == 22)
            ticks = strtoull(p, NULL, 10);
        while (*p != ' ' && *p != '\0')
            p++;
    }
    long hz = sysconf(_SC_CLK_TCK);
    struct timespec boot;
    if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &boot) != 0)
        return fallback;
    double age = (double)boot.tv_sec + (double)boot.tv_nsec / 1e9 - (double)ticks / (double)hz;
    if (age < 0 || age > (double)boot.tv_sec + 1.0)
        return fallback;
    double start = now_s() - age;
    return start < fallback ? start : fallback;
}

/* Queues a message; returns the queued item, or NULL when it was dropped. */
static send_item_t *queue_push(rm_control_client_t *c, const Remora__V1__DiscoveryRequest *req)
{
    if (c->qlen == SEND_QUEUE_MAX) {
        rm_log_warn("control: send queue full; dropping a message");
        return NULL;
    }
    size_t len = remora__v1__discovery_request__get_packed_size(req);
    uint8_t *data = malloc(len ? len : 1);
    if (data == NULL)
        return NULL;
    remora__v1__discovery_request__pack(req, data);
    send_item_t *it = &c->queue[(c->qhead + c->qlen) % SEND_QUEUE_MAX];
    *it = (send_item_t){data, len, false};
    c->qlen++;
    return it;
}

static void queue_clear(rm_control_client_t *c)
{
    while (c->qlen > 0) {
        free(c->queue[c->qhead].data);
        c->qhead = (c->qhead + 1) % SEND_QUEUE_MAX;
        c->qlen--;
    }
}

static void pump_send(rm_control_client_t *c)
{
    if (c->send_busy || c->qlen == 0 || c->call == NULL || c->stream_done)
        return;
    send_item_t it = c->queue[c->qhead];
    c->qhead = (c->qhead + 1) % SEND_QUEUE_MAX;
    c->qlen--;
    c->sending_withdraw = it.withdraw;
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)it.data, it.len);
    free(it.data);
    c->send_buf = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = c->send_buf;
    if (grpc_call_start_batch(c->call, &op, 1, (void *)(intptr_t)TAG_SEND, NULL) == GRPC_CALL_OK) {
        c->send_busy = true;
        c->outstanding++;
    } else {
        grpc_byte_buffer_destroy(c->send_buf);
        c->send_buf = NULL;
    }
}

static void start_recv(rm_control_client_t *c)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_buf;
    if (grpc_call_start_batch(c->call, &op, 1, (void *)(intptr_t)TAG_RECV, NULL) == GRPC_CALL_OK)
        c->outstanding++;
}

/* Whether this node has an endpoint for the control plane to list (a service and an address). */
static bool node_has_endpoint(const rm_control_client_t *c)
{
    return c->opt.service != NULL && c->opt.service[0] != '\0' && c->opt.address != NULL &&
           c->opt.address[0] != '\0';
}

static void send_hello(rm_control_client_t *c)
{
    Remora__V1__Node node = REMORA__V1__NODE__INIT;
    node.pod = (char *)c->opt.pod;
    node.namespace_ = (char *)c->opt.namespace_;
    node.service = (char *)c->opt.service;
    node.version = (char *)c->opt.version;
    node.address = (char *)c->opt.address;
    node.proxy_version = (char *)c->opt.proxy_version;
    node.egress = c->egress;
    node.n_egress = c->n_egress;
    Remora__V1__Hello hello = REMORA__V1__HELLO__INIT;
    hello.node = &node;
    hello.last_config_version = c->good_version;
    bool has_endpoint = node_has_endpoint(c);
    /* Not ready: the app is not up yet (REGISTER follows when it is), or the pod is draining and
     * this is a reconnect (listed live until the WITHDRAW right behind, it would draw traffic). */
    bool draining = atomic_load(&c->withdraw_requested);
    bool app_down = c->opt.app_up != NULL && !atomic_load(c->opt.app_up);
    hello.not_ready = has_endpoint && (draining || app_down);
    c->listed = has_endpoint && !hello.not_ready;
    Remora__V1__DiscoveryRequest req = REMORA__V1__DISCOVERY_REQUEST__INIT;
    req.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_HELLO;
    req.hello = &hello;
    queue_push(c, &req);
    if (c->withdraw_sent) /* a reconnect while draining: withdraw again on the new stream */
        c->withdraw_sent = false;
}

static void send_ack(rm_control_client_t *c, uint64_t version, const char *nonce)
{
    Remora__V1__Ack ack = REMORA__V1__ACK__INIT;
    ack.version = version;
    ack.nonce = (char *)nonce;
    Remora__V1__DiscoveryRequest req = REMORA__V1__DISCOVERY_REQUEST__INIT;
    req.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_ACK;
    req.ack = &ack;
    queue_push(c, &req);
}

static void send_nack(rm_control_client_t *c, const char *nonce, const char *error)
{
    Remora__V1__Nack nack = REMORA__V1__NACK__INIT;
    nack.version = c->good_version;
    nack.nonce = (char *)nonce;
    nack.error = (char *)error;
    Remora__V1__DiscoveryRequest req = REMORA__V1__DISCOVERY_REQUEST__INIT;
    req.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_NACK;
    req.nack = &nack;
    queue_push(c, &req);
}

static send_item_t *send_endpoint_change(rm_control_client_t *c,
                                         Remora__V1__EndpointChange__Kind kind)
{
    Remora__V1__EndpointChange ch = REMORA__V1__ENDPOINT_CHANGE__INIT;
    ch.kind = kind;
    Remora__V1__DiscoveryRequest req = REMORA__V1__DISCOVERY_REQUEST__INIT;
    req.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_ENDPOINT;
    req.endpoint = &ch;
    return queue_push(c, &req);
}

static void send_withdraw(rm_control_client_t *c)
{
    send_item_t *it = send_endpoint_change(c, REMORA__V1__ENDPOINT_CHANGE__KIND__WITHDRAW);
    if (it != NULL)
        it->withdraw = true;
    c->withdraw_sent = true;
}

/* A pod whose Hello said not_ready is listed once its app answers the probe; a listed pod whose
 * app refuses connections for a while (it died; Kubernetes restarts the container) is withdrawn
 * until it answers again, so clients stop sending requests that would only be refused and
 * retried. Refusals only: a probe that times out (a busy app, a full accept queue) keeps the
 * pod listed — withdrawing on any failed probe was tried, and a busy app lost its traffic.
 * Client thread. */
static void follow_app_readiness(rm_control_client_t *c)
{
    if (c->opt.app_up == NULL || !node_has_endpoint(c))
        return;
    if (c->listed) {
        if (c->opt.app_refused == NULL || !atomic_load(c->opt.app_refused))
            return;
        rm_log_warn("control: the app refuses connections: withdrawing %s until it answers",
                    c->opt.address);
        send_endpoint_change(c, REMORA__V1__ENDPOINT_CHANGE__KIND__WITHDRAW);
        c->listed = false;
        return;
    }
    if (!atomic_load(c->opt.app_up))
        return;
    rm_log_info("control: the app answers: listing %s", c->opt.address);
    send_endpoint_change(c, REMORA__V1__ENDPOINT_CHANGE__KIND__REGISTER);
    c->listed = true;
}

/* ---- stats report: the registry's series as cumulative counters and histograms ---- */

typedef struct report_builder {
    Remora__V1__StatsReport *rep;
    size_t cap_c, cap_h;
} report_builder_t;

static void *labels_build(const rm_stats_series_view_t *v, bool histogram, size_t *n)
{
    *n = v->nlabels;
    if (v->nlabels == 0)
        return NULL;
    void **arr = calloc(v->nlabels, sizeof(void *));
    for (size_t i = 0; arr != NULL && i < v->nlabels; i++) {
        if (histogram) {
            Remora__V1__Histogram__LabelsEntry *e = malloc(sizeof(*e));
            if (e == NULL)
                break;
            remora__v1__histogram__labels_entry__init(e);
            e->key = strdup(v->labels[i].name);
            e->value = strdup(v->labels[i].value);
            arr[i] = e;
        } else {
            Remora__V1__Counter__LabelsEntry *e = malloc(sizeof(*e));
            if (e == NULL)
                break;
            remora__v1__counter__labels_entry__init(e);
            e->key = strdup(v->labels[i].name);
            e->value = strdup(v->labels[i].value);
            arr[i] = e;
        }
    }
    return arr;
}

static int report_visit(const rm_stats_series_view_t *v, void *arg)
{
    report_builder_t *b = arg;
    Remora__V1__StatsReport *r = b->rep;
    if (v->kind == RM_STATS_COUNTER || v->kind == RM_STATS_GAUGE) {
        if (r->n_counters == b->cap_c) {
            size_t cap = b->cap_c ? b->cap_c * 2 : 32;
            void *p = realloc(r->counters, cap * sizeof(Remora__V1__Counter *));
            if (p == NULL)
                return -1;
            r->counters = p;
            b->cap_c = cap;
        }
        Remora__V1__Counter *ctr = malloc(sizeof(*ctr));
        if (ctr == NULL)
            return -1;
        remora__v1__counter__init(ctr);
        ctr->name = strdup(v->name);
        ctr->labels = labels_build(v, false, &ctr->n_labels);
        ctr->value =
            v->kind == RM_STATS_COUNTER ? v->counter : (uint64_t)(v->gauge < 0 ? 0 : v->gauge);
        r->counters[r->n_counters++] = ctr;
    } else {
        if (r->n_histograms == b->cap_h) {
            size_t cap = b->cap_h ? b->cap_h * 2 : 16;
            void *p = realloc(r->histograms, cap * sizeof(Remora__V1__Histogram *));
            if (p == NULL)
                return -1;
            r->histograms = p;
            b->cap_h = cap;
        }
        Remora__V1__Histogram *h = malloc(sizeof(*h));
        if (h == NULL)
            return -1;
        remora__v1__histogram__init(h);
        h->name = strdup(v->name);
        h->labels = labels_build(v, true, &h->n_labels);
        h->n_bounds = RM_HISTOGRAM_BUCKETS;
        h->bounds = malloc(sizeof(double) * RM_HISTOGRAM_BUCKETS);
        h->n_counts = RM_HISTOGRAM_BUCKETS + 1;
        h->counts = malloc(sizeof(uint64_t) * (RM_HISTOGRAM_BUCKETS + 1));
        if (h->bounds != NULL && h->counts != NULL) {
            memcpy(h->bounds, rm_histogram_bounds, sizeof(double) * RM_HISTOGRAM_BUCKETS);
            memcpy(h->counts, v->buckets, sizeof(uint64_t) * (RM_HISTOGRAM_BUCKETS + 1));
        } else {
            h->n_bounds = h->n_counts = 0;
        }
        h->sum = v->sum;
        h->count = v->count;
        r->histograms[r->n_histograms++] = h;
    }
    return 0;
}

static void send_stats(rm_control_client_t *c)
{
    if (c->opt.stats == NULL)
        return;
    Remora__V1__StatsReport *rep = malloc(sizeof(*rep));
    if (rep == NULL)
        return;
    remora__v1__stats_report__init(rep);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rep->timestamp_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    /* At least 1: 0 means "unknown" on the wire. The control plane puts our start at its
     * receipt time minus this, late by the report's transit (milliseconds against seconds). */
    double up = (now_s() - c->started_s) * 1000.0;
    rep->uptime_ms = up >= 1.0 ? (uint64_t)up : 1;
    report_builder_t b = {rep, 0, 0};
    rm_stats_visit(c->opt.stats, report_visit, &b);
    Remora__V1__DiscoveryRequest req = REMORA__V1__DISCOVERY_REQUEST__INIT;
    req.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_STATS;
    req.stats = rep;
    queue_push(c, &req);
    /* Everything in rep was malloc'd piece by piece, as protobuf-c's free expects. */
    remora__v1__stats_report__free_unpacked(rep, NULL);
}

/* ---- snapshots ---- */

static void handle_snapshot(rm_control_client_t *c, Remora__V1__Snapshot *snap)
{
    const char *nonce = snap->nonce ? snap->nonce : "";
    if (snap->config == NULL) {
        send_nack(c, nonce, "snapshot without config");
        return;
    }
    rm_config_diags_t errors = {0};
    char msg[2048] = "";
    if (rm_config_validate(snap->config, NULL, &errors, NULL) != 0) {
        size_t off = 0;
        for (size_t i = 0; i < errors.count && off < sizeof(msg) - 2; i++) {
            char line[512];
            rm_config_diag_format(&errors.items[i], line, sizeof(line));
            off += (size_t)snprintf(msg + off, sizeof(msg) - off, "%s%s", i ? "\n" : "", line);
        }
        rm_config_diags_free(&errors);
        rm_log_error("control: snapshot version %llu rejected: %s",
                     (unsigned long long)snap->version, msg);
        send_nack(c, nonce, msg[0] ? msg : "config rejected");
        return;
    }
    rm_config_diags_free(&errors);
    char err[512] = "";
    rm_snapshot_t *s = rm_snapshot_build(snap->config, snap->endpoints, snap->n_endpoints,
                                         c->opt.namespace_, snap->version, err, sizeof(err));
    if (s == NULL) {
        rm_log_error("control: snapshot version %llu rejected: %s",
                     (unsigned long long)snap->version, err);
        send_nack(c, nonce, err[0] ? err : "snapshot could not be compiled");
        return;
    }
    rm_snapshot_publish(s);
    c->good_version = snap->version;
    atomic_store(&c->has_config, true);
    if (c->opt.on_published != NULL)
        c->opt.on_published(c->opt.arg, snap->version);
    send_ack(c, snap->version, nonce);
}

static void handle_message(rm_control_client_t *c)
{
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, c->recv_buf))
        return;
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    size_t len = GRPC_SLICE_LENGTH(all);
    Remora__V1__DiscoveryResponse *resp =
        len <= MAX_MESSAGE_BYTES
            ? remora__v1__discovery_response__unpack(NULL, len, GRPC_SLICE_START_PTR(all))
            : NULL;
    grpc_slice_unref(all);
    if (resp == NULL) {
        rm_log_warn("control: malformed message from the control plane (%zu bytes)", len);
        send_nack(c, "", "malformed DiscoveryResponse");
        return;
    }
    if (resp->snapshot != NULL)
        handle_snapshot(c, resp->snapshot);
    remora__v1__discovery_response__free_unpacked(resp, NULL);
}

/* ---- one stream ---- */

static bool open_stream(rm_control_client_t *c)
{
    c->call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                       grpc_slice_from_static_string("/remora.v1.Discovery/Stream"),
                                       NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (c->call == NULL)
        return false;
    c->outstanding = 0;
    c->send_busy = false;
    c->stream_done = false;
    grpc_metadata_array_init(&c->init_md);
    grpc_metadata_array_init(&c->trailing_md);
    c->status_details = grpc_empty_slice();
    grpc_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    /* Wait for the channel instead of failing at once with its cached connect error: the
     * channel's own backoff (see rm_control_client_start) paces reconnects, and the stream goes
     * out the moment a connect succeeds. Without it, our retry delay stacked on gRPC's and
     * sidecars came back 7-12 s after the control plane did. */
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &c->init_md;
    if (grpc_call_start_batch(c->call, ops, 2, (void *)(intptr_t)TAG_META, NULL) == GRPC_CALL_OK)
        c->outstanding++;
    grpc_op st;
    memset(&st, 0, sizeof(st));
    st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    st.data.recv_status_on_client.trailing_metadata = &c->trailing_md;
    st.data.recv_status_on_client.status = &c->status;
    st.data.recv_status_on_client.status_details = &c->status_details;
    if (grpc_call_start_batch(c->call, &st, 1, (void *)(intptr_t)TAG_STATUS, NULL) == GRPC_CALL_OK)
        c->outstanding++;
    queue_clear(c);
    send_hello(c);
    pump_send(c);
    start_recv(c);
    return true;
}

static void close_stream(rm_control_client_t *c)
{
    if (c->call == NULL)
        return;
    grpc_call_cancel(c->call, NULL);
    while (c->outstanding > 0) {
        grpc_event ev = grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        c->outstanding--;
        if ((intptr_t)ev.tag == TAG_RECV && c->recv_buf != NULL) {
            grpc_byte_buffer_destroy(c->recv_buf);
            c->recv_buf = NULL;
        }
        if ((intptr_t)ev.tag == TAG_SEND && c->send_buf != NULL) {
            grpc_byte_buffer_destroy(c->send_buf);
            c->send_buf = NULL;
        }
    }
    grpc_metadata_array_destroy(&c->init_md);
    grpc_metadata_array_destroy(&c->trailing_md);
    grpc_slice_unref(c->status_details);
    grpc_call_unref(c->call);
    c->call = NULL;
}

/* Runs one stream until it ends or the client stops. Returns true when a snapshot arrived. */
static bool run_stream(rm_control_client_t *c)
{
    bool got_snapshot = false;
    if (!open_stream(c))
        return false;
    /* A report as soon as the stream is up, then every second for the first
     * RM_CONTROL_STATS_WARMUP_MS, then the steady interval: a new pod (or one reconnecting to a
     * restarted control plane) shows up in `meshctl stats`, with a rate, within about a second
     * of its first traffic. Nothing is reported while the stream waits for the channel: reports
     * are cumulative, and stale ones would only fill the send queue ahead of a Withdraw. */
    double interval = (double)c->opt.stats_interval_ms / 1000.0;
    double fast = interval < 1.0 ? interval : 1.0;
    bool up = false;
    double warm_until = 0, next_stats = 0;
    while (!atomic_load(&c->stop) && !c->stream_done) {
        grpc_event ev = grpc_completion_queue_next(
            c->cq,
            gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(100, GPR_TIMESPAN)),
            NULL);
        if (ev.type == GRPC_OP_COMPLETE) {
            c->outstanding--;
            if (!up && ev.success &&
                ((intptr_t)ev.tag == TAG_META ||
                 ((intptr_t)ev.tag == TAG_RECV && c->recv_buf != NULL))) {
                up = true; /* the control plane answered: the stream is established */
                next_stats = now_s();
                warm_until = next_stats + (double)RM_CONTROL_STATS_WARMUP_MS / 1000.0;
            }
            switch ((intptr_t)ev.tag) {
            case TAG_SEND:
                if (ev.success && c->sending_withdraw)
                    atomic_store(&c->withdraw_delivered, true);
                c->sending_withdraw = false;
                c->send_busy = false;
                grpc_byte_buffer_destroy(c->send_buf);
                c->send_buf = NULL;
                break;
            case TAG_RECV:
                if (c->recv_buf == NULL) {
                    c->stream_done = true; /* the server ended the stream */
                    break;
                }
                handle_message(c);
                got_snapshot = true;
                grpc_byte_buffer_destroy(c->recv_buf);
                c->recv_buf = NULL;
                start_recv(c);
                break;
            case TAG_STATUS: {
                char *details = grpc_slice_to_c_string(c->status_details);
                rm_log_warn("control: stream to %s ended: status %d %s", c->opt.target,
                            (int)c->status, details ? details : "");
                gpr_free(details);
                c->stream_done = true;
                break;
            }
            default:
                break;
            }
        }
        if (atomic_load(&c->withdraw_requested)) {
            if (!c->withdraw_sent)
                send_withdraw(c);
        } else {
            follow_app_readiness(c);
        }
        if (up && now_s() >= next_stats) {
            send_stats(c);
            next_stats = now_s() + (now_s() < warm_until ? fast : interval);
        }
        pump_send(c);
    }
    close_stream(c);
    return got_snapshot;
}

#define RESTREAM_MIN_S 0.1

static void *client_main(void *arg)
{
    rm_control_client_t *c = arg;
    /* Connects are paced by the channel (gRPC's connection backoff: 1 s initial, x1.6, +-20%
     * jitter, capped at RM_CONTROL_MAX_RECONNECT_MS), which a wait-for-ready stream waits on. This
     * loop's own delay only guards against a control plane that accepts streams and ends them at
     * once: it starts small, grows the same way, and resets once a snapshot arrived. */
    double backoff = RESTREAM_MIN_S;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    while (!atomic_load(&c->stop)) {
        if (run_stream(c))
            backoff = RESTREAM_MIN_S;
        if (atomic_load(&c->stop))
            break;
        double jitter = 1.0 + 0.2 * (2.0 * ((double)rand_r(&seed) / RAND_MAX) - 1.0);
        double wait = backoff * jitter;
        rm_log_info("control: reconnecting to %s in %.1fs (serving config version %llu)",
                    c->opt.target, wait, (unsigned long long)c->good_version);
        double until = now_s() + wait;
        while (!atomic_load(&c->stop) && now_s() < until)
            usleep(50000);
        double cap = RM_CONTROL_MAX_RECONNECT_MS / 1000.0;
        backoff = backoff * 1.6 > cap ? cap : backoff * 1.6;
    }
    return NULL;
}

/* ---- the egress list ---- */

static bool dns_label(const char *p, size_t n)
{
    if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
            return false;
    return true;
}

static bool egress_entry_ok(const char *p, size_t n)
{
    static const char *const suffixes[] = {".svc.cluster.local", ".svc"};
    for (size_t i = 0; i < 2; i++) {
        size_t sl = strlen(suffixes[i]);
        if (n > sl && memcmp(p + n - sl, suffixes[i], sl) == 0) {
            n -= sl;
            break;
        }
    }
    const char *dot = memchr(p, '.', n);
    if (dot == NULL)
        return dns_label(p, n);
    size_t n1 = (size_t)(dot - p);
    return dns_label(p, n1) && dns_label(dot + 1, n - n1 - 1);
}

/* Calls fn(entry, length, arg) for each trimmed non-empty entry; stops at fn's non-zero. */
static int egress_each(const char *list, int (*fn)(const char *, size_t, void *), void *arg)
{
    for (const char *p = list; p != NULL && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *q = p;
        while (n > 0 && (*q == ' ' || *q == '\t')) {
            q++;
            n--;
        }
        while (n > 0 && (q[n - 1] == ' ' || q[n - 1] == '\t'))
            n--;
        if (n > 0) {
            int rc = fn(q, n, arg);
            if (rc != 0)
                return rc;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

typedef struct egress_check {
    int count;
    char *err;
    size_t errlen;
} egress_check_t;

static int check_one(const char *p, size_t n, void *arg)
{
    egress_check_t *ck = arg;
    if (!egress_entry_ok(p, n)) {
        snprintf(ck->err, ck->errlen,
                 "\"%.*s\" is not a service name (name or name.namespace: lower-case letters, "
                 "digits, '-')",
                 (int)(n > 80 ? 80 : n), p);
        return -1;
    }
    if (++ck->count > RM_CONTROL_EGRESS_MAX) {
        snprintf(ck->err, ck->errlen, "more than %d services", RM_CONTROL_EGRESS_MAX);
        return -1;
    }
    return 0;
}

int rm_control_egress_check(const char *list, char *err, size_t errlen)
{
    egress_check_t ck = {0, err, errlen};
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    return egress_each(list, check_one, &ck) != 0 ? -1 : ck.count;
}

static int split_one(const char *p, size_t n, void *arg)
{
    rm_control_client_t *c = arg;
    char *dst = c->egress_buf + (p - c->opt.egress);
    dst[n] = '\0';
    c->egress[c->n_egress++] = dst;
    return 0;
}

/* Copies the list into egress_buf/egress (entries point into the copy). A list that does not
 * check is sent anyway, so the control plane's refusal shows in its log and in ours. */
static int egress_parse(rm_control_client_t *c)
{
    const char *list = c->opt.egress != NULL ? c->opt.egress : getenv("REMORA_EGRESS");
    if (list == NULL || *list == '\0')
        return 0;
    size_t len = strlen(list), max = 1;
    for (const char *p = list; *p; p++)
        max += *p == ',';
    c->egress_buf = malloc(len + 1);
    c->egress = calloc(max, sizeof(*c->egress));
    if (c->egress_buf == NULL || c->egress == NULL)
        return -1;
    memcpy(c->egress_buf, list, len + 1);
    c->opt.egress = list; /* split_one maps offsets in `list` to the copy */
    egress_each(list, split_one, c);
    c->opt.egress = c->egress_buf; /* never the environment's string, which setenv may free */
    return 0;
}

static void client_free(rm_control_client_t *c)
{
    free(c->egress);
    free(c->egress_buf);
    free(c);
}

rm_control_client_t *rm_control_client_start(const rm_control_options_t *opt)
{
    rm_control_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->opt = *opt;
    if (egress_parse(c) != 0) {
        client_free(c);
        return NULL;
    }
    if (c->opt.stats_interval_ms == 0)
        c->opt.stats_interval_ms = 5000;
    c->started_s = process_start_s(now_s());
    grpc_init();
    c->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_arg args[2];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = (int)MAX_MESSAGE_BYTES;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
    args[1].value.integer = RM_CONTROL_MAX_RECONNECT_MS;
    grpc_channel_args cargs = {2, args};
    c->channel = grpc_channel_create(c->opt.target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    if (c->channel == NULL || pthread_create(&c->thread, NULL, client_main, c) != 0) {
        if (c->channel != NULL)
            grpc_channel_destroy(c->channel);
        grpc_completion_queue_shutdown(c->cq);
        grpc_completion_queue_destroy(c->cq);
        client_free(c);
        return NULL;
    }
    return c;
}

void rm_control_client_withdraw(rm_control_client_t *c)
{
    if (c != NULL)
        atomic_store(&c->withdraw_requested, true);
}

bool rm_control_client_withdraw_delivered(const rm_control_client_t *c)
{
    if (c == NULL || !node_has_endpoint(c))
        return true; /* no endpoint of ours is listed anywhere */
    return atomic_load(&c->withdraw_delivered);
}

bool rm_control_client_has_config(const rm_control_client_t *c)
{
    return c != NULL && atomic_load(&c->has_config);
}

void rm_control_client_stop(rm_control_client_t *c)
{
    if (c == NULL)
        return;
    atomic_store(&c->stop, true);
    pthread_join(c->thread, NULL);
    queue_clear(c);
    grpc_channel_destroy(c->channel);
    grpc_completion_queue_shutdown(c->cq);
    while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(c->cq);
    client_free(c);
    grpc_shutdown();
}
