/* controlplane/loadtest/load.c — remora-control-load: opens N real discovery streams against
 * remora-control and ACKs like sidecars, then measures how long an apply takes to reach all of
 * them (issue 5, "Speed"):
 *
 *   apply -> last snapshot received   (client clock, the moment the last stream has the version)
 *   apply -> every ACK recorded       (Apply with wait=true: the server answers once it has
 *                                      every stream's ACK)
 *   floor                             writing the same snapshot bytes to N idle loopback TCP
 *                                      sockets in the same run, one write() each
 *
 * and remora-control's memory with N streams (when it started the control plane itself).
 *
 * One thread, one completion queue, a handful of channels (separate TCP connections, so that
 * the server's HTTP/2 flow control is not one pipe). Every stream is a small state machine with
 * its own tags, like the server's.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "controlplane/grpcutil/unary.h"
#include "controlplane/util/util.h"
#include "remora/v1/admin.pb-c.h"
#include "remora/v1/discovery.pb-c.h"

#define container_of(p, t, m) ((t *)((char *)(p)-offsetof(t, m)))

typedef struct tag tag_t;
typedef void (*tag_fn)(tag_t *t, int ok);
struct tag {
    tag_fn fn;
};

typedef struct stream {
    tag_t start_tag, recv_tag, send_tag, status_tag;
    grpc_call *call;
    grpc_metadata_array md_in, md_trail;
    grpc_byte_buffer *recv_buf, *send_buf;
    grpc_status_code status;
    grpc_slice details;
    uint64_t version;     /* newest version received */
    char nonce[64];       /* its nonce, to ACK */
    int sending, ack_due; /* one send at a time; an ACK waiting for it */
    int ended;
    int index;
} stream_t;

static grpc_completion_queue *cq;
static stream_t *streams;
static int n_streams;
static int n_ready;             /* streams that received a first snapshot */
static uint64_t target_version; /* what the current round waits for */
static int n_have_target;
static double t_last_snapshot;
static size_t last_snapshot_len;
static int n_ended;
/* --services N: streams are pods of svc-0..svc-N-1, each calling the next service (egress), so
 * the control plane keeps N scopes and each snapshot carries about n_streams/N endpoints. 0: one
 * service, no egress (every stream receives everything). */
static int n_services;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static grpc_byte_buffer *bb_of(const ProtobufCMessage *m)
{
    size_t len;
    uint8_t *buf = rm_pb_pack(m, &len);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    free(buf);
    return bb;
}

static uint8_t *bb_read(grpc_byte_buffer *bb, size_t *len)
{
    grpc_byte_buffer_reader r;
    grpc_byte_buffer_reader_init(&r, bb);
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    *len = GRPC_SLICE_LENGTH(s);
    uint8_t *out = rm_xmalloc(*len);
    memcpy(out, GRPC_SLICE_START_PTR(s), *len);
    grpc_slice_unref(s);
    return out;
}

static void batch(grpc_call *call, const grpc_op *ops, size_t n, tag_t *tag)
{
    grpc_call_error e = grpc_call_start_batch(call, ops, n, tag, NULL);
    if (e != GRPC_CALL_OK) {
        fprintf(stderr, "remora-control-load: start_batch: %s\n", grpc_call_error_to_string(e));
        exit(1);
    }
}

static void start_recv(stream_t *s)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv_buf;
    batch(s->call, &op, 1, &s->recv_tag);
}

static void send_ack(stream_t *s)
{
    Remora__V1__Ack ack = REMORA__V1__ACK__INIT;
    ack.version = s->version;
    ack.nonce = s->nonce;
    Remora__V1__DiscoveryRequest req = REMORA__V1__DISCOVERY_REQUEST__INIT;
    req.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_ACK;
    req.ack = &ack;
    s->send_buf = bb_of(&req.base);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = s->send_buf;
    s->sending = 1;
    s->ack_due = 0;
    batch(s->call, &op, 1, &s->send_tag);
}

static void on_send(tag_t *t, int ok)
{
    stream_t *s = container_of(t, stream_t, send_tag);
    grpc_byte_buffer_destroy(s->send_buf);
    s->send_buf = NULL;
    s->sending = 0;
    if (ok && s->ack_due && !s->ended)
        send_ack(s);
}

/* Reads a varint at *p; returns 0 or -1 past the end. */
static int varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/*
 * Finds Snapshot.version and Snapshot.nonce in a packed DiscoveryResponse without unpacking the
 * config and the endpoints: a sidecar would decode and compile all of it, but here the client's
 * own CPU (on the same two cores as the server) must not be what the benchmark measures.
 */
static int scan_snapshot(const uint8_t *data, size_t len, uint64_t *version, char *nonce,
                         size_t nlen)
{
    const uint8_t *p = data, *end = data + len;
    uint64_t key, n;
    nonce[0] = '\0';
    /* DiscoveryResponse: field 1, length-delimited */
    if (varint(&p, end, &key) < 0 || key != ((1 << 3) | 2) || varint(&p, end, &n) < 0 ||
        n > (uint64_t)(end - p))
        return -1;
    end = p + n;
    while (p < end) {
        if (varint(&p, end, &key) < 0)
            return -1;
        uint64_t field = key >> 3, wt = key & 7;
        if (wt == 0) {
            if (varint(&p, end, &n) < 0)
                return -1;
            if (field == 1)
                *version = n;
        } else if (wt == 2) {
            if (varint(&p, end, &n) < 0 || n > (uint64_t)(end - p))
                return -1;
            if (field == 2)
                snprintf(nonce, nlen, "%.*s", (int)n, (const char *)p);
            p += n;
        } else {
            return -1;
        }
        if (field >= 2 && nonce[0])
            return 0; /* version and nonce come first (protobuf-c packs in field order) */
    }
    return nonce[0] ? 0 : -1;
}

static void on_recv(tag_t *t, int ok)
{
    stream_t *s = container_of(t, stream_t, recv_tag);
    if (!ok || s->recv_buf == NULL)
        return; /* the stream is over; the status tag says how */
    size_t len;
    uint8_t *data = bb_read(s->recv_buf, &len);
    grpc_byte_buffer_destroy(s->recv_buf);
    s->recv_buf = NULL;
    uint64_t v = 0;
    char nonce[64];
    if (scan_snapshot(data, len, &v, nonce, sizeof(nonce)) < 0) {
        fprintf(stderr, "remora-control-load: stream %d: bad snapshot\n", s->index);
        exit(1);
    }
    free(data);
    if (s->version == 0 && !s->nonce[0])
        n_ready++;
    uint64_t before = s->version;
    s->version = v;
    snprintf(s->nonce, sizeof(s->nonce), "%s", nonce);
    last_snapshot_len = len;
    if (target_version && before < target_version && s->version >= target_version) {
        n_have_target++;
        if (n_have_target == n_streams)
            t_last_snapshot = now_s();
    }
    s->ack_due = 1;
    if (!s->sending)
        send_ack(s);
    start_recv(s);
}

static void on_start(tag_t *t, int ok)
{
    (void)t;
    (void)ok;
}

static void on_status(tag_t *t, int ok)
{
    stream_t *s = container_of(t, stream_t, status_tag);
    (void)ok;
    s->ended = 1;
    n_ended++;
    if (s->status != GRPC_STATUS_OK && s->status != GRPC_STATUS_CANCELLED) {
        char *d = grpc_slice_to_c_string(s->details);
        fprintf(stderr, "remora-control-load: stream %d ended: status %d: %s\n", s->index,
                (int)s->status, d);
        gpr_free(d);
    }
}

static void stream_open(stream_t *s, grpc_channel *ch, int i)
{
    s->index = i;
    s->start_tag.fn = on_start;
    s->recv_tag.fn = on_recv;
    s->send_tag.fn = on_send;
    s->status_tag.fn = on_status;
    grpc_metadata_array_init(&s->md_in);
    grpc_metadata_array_init(&s->md_trail);
    s->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                       grpc_slice_from_static_string("/remora.v1.Discovery/Stream"),
                                       NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    char pod[32], addr[32];
    snprintf(pod, sizeof(pod), "load-%05d", i);
    snprintf(addr, sizeof(addr), "10.%d.%d.%d:15006", 100 + i / 65536, (i / 256) % 256, i % 256);
    Remora__V1__Node node = REMORA__V1__NODE__INIT;
    node.pod = pod;
    node.namespace_ = "default";
    node.service = "reviews";
    node.version = i % 2 ? "v1" : "v2";
    node.address = addr;
    node.proxy_version = "load";
    char svc[32], callee[32], *egress[1] = {callee};
    if (n_services > 0) {
        snprintf(svc, sizeof(svc), "svc-%d", i % n_services);
        snprintf(callee, sizeof(callee), "svc-%d", (i + 1) % n_services);
        node.service = svc;
        node.egress = egress;
        node.n_egress = 1;
    }
    Remora__V1__Hello hello = REMORA__V1__HELLO__INIT;
    hello.node = &node;
    Remora__V1__DiscoveryRequest req = REMORA__V1__DISCOVERY_REQUEST__INIT;
    req.msg_case = REMORA__V1__DISCOVERY_REQUEST__MSG_HELLO;
    req.hello = &hello;
    s->send_buf = bb_of(&req.base);

    grpc_op ops[3];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->send_buf;
    ops[2].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[2].data.recv_initial_metadata.recv_initial_metadata = &s->md_in;
    s->sending = 1;
    batch(s->call, ops, 3, &s->send_tag);

    grpc_op st;
    memset(&st, 0, sizeof(st));
    st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    st.data.recv_status_on_client.trailing_metadata = &s->md_trail;
    st.data.recv_status_on_client.status = &s->status;
    st.data.recv_status_on_client.status_details = &s->details;
    batch(s->call, &st, 1, &s->status_tag);
    start_recv(s);
}

/* ---- a unary Admin call, run to completion on the shared queue ---- */

typedef struct unary {
    tag_t tag;
    int done;
} unary_t;

static void on_unary(tag_t *t, int ok)
{
    (void)ok;
    container_of(t, unary_t, tag)->done = 1;
}

static void pump(double timeout_s);

/* Returns the response bytes (caller frees) or exits on a failed call. The call runs on the
 * shared queue, so the streams keep being served while it is in flight. */
static uint8_t *admin_call(grpc_channel *ch, const char *method, const ProtobufCMessage *req,
                           size_t *len)
{
    unary_t u = {.tag.fn = on_unary};
    rm_unary_t call;
    rm_unary_result_t res;
    if (rm_unary_start(&call, ch, cq, method, req, gpr_inf_future(GPR_CLOCK_REALTIME), &u.tag) ==
        0) {
        while (!u.done)
            pump(1.0);
    }
    rm_unary_finish(&call, NULL, &res);
    if (res.rc != 0) {
        fprintf(stderr, "remora-control-load: %s: status %d: %s\n", method, (int)res.status,
                res.details);
        exit(1);
    }
    uint8_t *bytes = res.bytes;
    *len = res.len;
    res.bytes = NULL; /* the caller's now */
    rm_unary_result_free(&res);
    return bytes;
}

static void pump(double timeout_s)
{
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                   gpr_time_from_millis((int64_t)(timeout_s * 1000), GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(cq, dl, NULL);
    if (ev.type == GRPC_OP_COMPLETE)
        ((tag_t *)ev.tag)->fn(ev.tag, ev.success);
}

/* ---- the floor: the same bytes to N idle loopback sockets ---- */

static double floor_write(int n, size_t bytes)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4096) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) < 0) {
        perror("remora-control-load: floor listener");
        exit(1);
    }
    int *cfd = rm_xcalloc((size_t)n, sizeof(int)), *sfd = rm_xcalloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) {
        cfd[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (cfd[i] < 0 || connect(cfd[i], (struct sockaddr *)&a, sizeof(a)) < 0 ||
            (sfd[i] = accept(lfd, NULL, NULL)) < 0) {
            perror("remora-control-load: floor sockets");
            exit(1);
        }
    }
    char *buf = rm_xcalloc(1, bytes ? bytes : 1);
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        size_t off = 0;
        while (off < bytes) {
            ssize_t w = write(sfd[i], buf + off, bytes - off);
            if (w <= 0) {
                perror("remora-control-load: floor write");
                exit(1);
            }
            off += (size_t)w;
        }
    }
    double dt = now_s() - t0;
    for (int i = 0; i < n; i++) {
        close(cfd[i]);
        close(sfd[i]);
    }
    close(lfd);
    free(cfd);
    free(sfd);
    free(buf);
    return dt;
}

/* ---- spawning the control plane ---- */

static pid_t child_pid = -1;

/* Whatever way we exit, the control plane we started goes with us. */
static void kill_child(void)
{
    if (child_pid > 0) {
        kill(child_pid, SIGTERM);
        waitpid(child_pid, NULL, 0);
        child_pid = -1;
    }
}

static pid_t spawn(const char *bin, const char *target, const char *dir)
{
    char store[4200];
    snprintf(store, sizeof(store), "sqlite:%s/remora.db", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 2);
        execl(bin, bin, "--listen", target, "--store", store, "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void rss_of(pid_t pid, long *rss_kb, long *anon_kb)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    *rss_kb = *anon_kb = -1;
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f)) {
        sscanf(line, "VmRSS: %ld", rss_kb);
        sscanf(line, "RssAnon: %ld", anon_kb);
    }
    fclose(f);
}

static const char usage[] =
    "usage: remora-control-load (--target HOST:PORT | --spawn PATH-TO-remora-control)\n"
    "                           [--streams N (1000)] [--rounds K (5)] [--channels C (8)]\n"
    "                           [--services S (0)]: S>0: pods of S services, each scoped to the\n"
    "                           next one with Node.egress (S scopes, ~N/S endpoints each)\n";

int main(int argc, char **argv)
{
    const char *target = NULL, *spawn_bin = NULL;
    int rounds = 5, channels = 8;
    n_streams = 1000;
    static const struct option opts[] = {
        {"target", required_argument, NULL, 't'},   {"spawn", required_argument, NULL, 's'},
        {"streams", required_argument, NULL, 'n'},  {"rounds", required_argument, NULL, 'r'},
        {"channels", required_argument, NULL, 'c'}, {"services", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            target = optarg;
            break;
        case 's':
            spawn_bin = optarg;
            break;
        case 'n':
            n_streams = atoi(optarg);
            break;
        case 'r':
            rounds = atoi(optarg);
            break;
        case 'c':
            channels = atoi(optarg);
            break;
        case 'S':
            n_services = atoi(optarg);
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if ((target == NULL) == (spawn_bin == NULL) || n_streams < 1 || rounds < 1 || channels < 1 ||
        n_services < 0) {
        fputs(usage, stderr);
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);

    char tbuf[64], dir[] = "/tmp/remora-load-XXXXXX";
    pid_t child = -1;
    if (spawn_bin != NULL) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            getsockname(s, (struct sockaddr *)&a, &al) < 0) {
            perror("remora-control-load: picking a port");
            return 1;
        }
        close(s);
        snprintf(tbuf, sizeof(tbuf), "127.0.0.1:%d", ntohs(a.sin_port));
        target = tbuf;
        if (mkdtemp(dir) == NULL) {
            perror("mkdtemp");
            return 1;
        }
        child = child_pid = spawn(spawn_bin, target, dir);
        atexit(kill_child);
    }

    grpc_init();
    cq = grpc_completion_queue_create_for_next(NULL);
    grpc_channel **chs = rm_xcalloc_ptrs((size_t)channels + 1);
    for (int i = 0; i <= channels; i++) {
        /* A local subchannel pool per channel: separate TCP connections. */
        grpc_arg arg = {.type = GRPC_ARG_INTEGER,
                        .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
                        .value.integer = 1};
        grpc_channel_args args = {.num_args = 1, .args = &arg};
        grpc_channel_credentials *cr = grpc_insecure_credentials_create();
        chs[i] = grpc_channel_create(target, cr, &args);
        grpc_channel_credentials_release(cr);
    }
    grpc_channel *admin = chs[channels];

    /* An initial config, so that snapshots carry a realistic ConfigSet. */
    const char *base = "kind: Service\nname: reviews\nport: 9080\n---\n"
                       "kind: Route\nname: reviews-rollout\nservice: reviews\nrules:\n"
                       "  - destinations: [{version: v1, weight: 90}, {version: v2, weight: 10}]\n";
    rm_strbuf_t src0 = {0};
    rm_strbuf_printf(&src0, "%s", base);
    for (int k = 0; k < n_services; k++)
        rm_strbuf_printf(&src0, "---\nkind: Service\nname: svc-%d\nport: 80\n", k);
    char *base_src = rm_strbuf_take(&src0);
    Remora__V1__ApplyRequest ar = REMORA__V1__APPLY_REQUEST__INIT;
    ar.source = base_src;
    ar.filename = "load.yaml";
    size_t len;
    double t_wait = now_s();
    for (;;) {
        /* the spawned control plane may still be starting */
        grpc_connectivity_state st = grpc_channel_check_connectivity_state(admin, 1);
        if (st == GRPC_CHANNEL_READY)
            break;
        if (now_s() - t_wait > 20) {
            fprintf(stderr, "remora-control-load: cannot reach %s\n", target);
            return 1;
        }
        pump(0.05);
    }
    free(admin_call(admin, "/remora.v1.Admin/Apply", &ar.base, &len));
    free(base_src);

    streams = rm_xcalloc((size_t)n_streams, sizeof(*streams));
    double t0 = now_s();
    for (int i = 0; i < n_streams; i++)
        stream_open(&streams[i], chs[i % channels], i);
    while (n_ready < n_streams) {
        pump(1.0);
        if (now_s() - t0 > 120) {
            fprintf(stderr, "remora-control-load: only %d of %d streams got a snapshot\n", n_ready,
                    n_streams);
            return 1;
        }
    }
    double t_connect = now_s() - t0;
    /* Let the registrations' pushes settle: every stream ACKs the last one. */
    double settle = now_s();
    while (now_s() - settle < 0.5)
        pump(0.05);
    long rss = -1, anon = -1;
    if (child > 0)
        rss_of(child, &rss, &anon);

    printf("streams: %d over %d connections; all connected with a snapshot in %.0f ms\n", n_streams,
           channels, t_connect * 1000);
    double sum_snap = 0, sum_ack = 0, worst_ack = 0;
    for (int r = 0; r < rounds; r++) {
        char src[512];
        snprintf(src, sizeof(src),
                 "kind: Route\nname: reviews-rollout\nservice: reviews\nrules:\n"
                 "  - destinations: [{version: v1, weight: %d}, {version: v2, weight: %d}]\n",
                 80 - r, 20 + r);
        Remora__V1__ApplyRequest req = REMORA__V1__APPLY_REQUEST__INIT;
        Remora__V1__Duration to = REMORA__V1__DURATION__INIT;
        to.has_millis = 1;
        to.millis = 60000;
        req.source = src;
        req.filename = "load.yaml";
        req.wait = 1;
        req.wait_timeout = &to;
        n_have_target = 0;
        /* the new version is the current one plus one: read it from the streams */
        target_version = streams[0].version + 1;
        double ts = now_s();
        uint8_t *resp = admin_call(admin, "/remora.v1.Admin/Apply", &req.base, &len);
        double t_ack = now_s() - ts;
        Remora__V1__ApplyResponse *ap = remora__v1__apply_response__unpack(NULL, len, resp);
        free(resp);
        if (ap == NULL || ap->wait_timed_out || ap->n_acks != (size_t)n_streams ||
            ap->version != target_version) {
            fprintf(stderr, "remora-control-load: round %d: version %llu, %zu acks, timed out %d\n",
                    r, ap ? (unsigned long long)ap->version : 0ULL, ap ? ap->n_acks : 0,
                    ap ? ap->wait_timed_out : -1);
            return 1;
        }
        remora__v1__apply_response__free_unpacked(ap, NULL);
        while (n_have_target < n_streams)
            pump(1.0);
        double t_snap = t_last_snapshot - ts;
        printf("round %d: version %llu: apply -> last snapshot received %.1f ms, "
               "apply -> every ACK recorded %.1f ms\n",
               r + 1, (unsigned long long)target_version, t_snap * 1000, t_ack * 1000);
        sum_snap += t_snap;
        sum_ack += t_ack;
        if (t_ack > worst_ack)
            worst_ack = t_ack;
    }
    double fl = floor_write(n_streams, last_snapshot_len);
    printf("snapshot: %zu bytes; floor (write them to %d idle loopback sockets): %.2f ms\n",
           last_snapshot_len, n_streams, fl * 1000);
    printf("mean over %d rounds: last snapshot %.1f ms, every ACK %.1f ms (worst %.1f ms); "
           "ACK time / floor = %.1f\n",
           rounds, sum_snap / rounds * 1000, sum_ack / rounds * 1000, worst_ack * 1000,
           fl > 0 ? (sum_ack / rounds) / fl : 0);
    if (child > 0)
        printf("remora-control memory with %d streams: VmRSS %ld KiB, RssAnon %ld KiB\n", n_streams,
               rss, anon);

    for (int i = 0; i < n_streams; i++)
        grpc_call_cancel(streams[i].call, NULL);
    double tc = now_s();
    while (n_ended < n_streams && now_s() - tc < 10)
        pump(0.1);
    for (int i = 0; i < n_streams; i++) {
        stream_t *st = &streams[i];
        grpc_call_unref(st->call);
        grpc_metadata_array_destroy(&st->md_in);
        grpc_metadata_array_destroy(&st->md_trail);
        grpc_slice_unref(st->details);
    }
    free(streams);
    for (int i = 0; i <= channels; i++)
        grpc_channel_destroy(chs[i]);
    free(chs);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    grpc_shutdown();
    if (child > 0) {
        kill_child();
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "remora-control-load: could not remove %s\n", dir);
    }
    return 0;
}
