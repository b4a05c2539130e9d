/* dataplane/proxy/config_source.c — the file config source, signals and shutdown (main thread).
 *
 * Reload: SIGHUP, or an ev_stat watcher noticing the file changed. A reload parses and validates
 * the whole file; only a config that passes is compiled and published, so a bad edit is logged
 * (with file:line:col for every error), counted in remora_config_rejected_total, and the previous
 * config stays in force.
 */
#include "dataplane/proxy/config_source.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config/config.h"
#include "common/log/log.h"
#include "common/version.h"
#include "dataplane/control/control_client.h"
#include "dataplane/snapshot/hash.h"
#include "dataplane/proxy/metrics.h"
#include "dataplane/proxy/worker.h"

typedef struct config_source {
    rm_proxy_t *proxy;
    struct ev_loop *loop;
    ev_signal sighup, sigterm, sigint;
    ev_stat file_watch;
    ev_timer withdraw_poll; /* while draining: is the withdrawal with the control plane yet? */
    uint64_t version;       /* bumped on every successful load of the file */
    rm_control_client_t *control; /* --control-plane: the discovery stream client */
    bool judged;                  /* a file was loaded (or refused) before */
    uint64_t last_hash;           /* rm_hash64 of that file's bytes */
    int last_rc;                  /* and its verdict */
    char address[80]; /* this pod's inbound address, registered with the control plane */
} config_source_t;

static config_source_t source;

static void notify_workers(rm_proxy_t *p)
{
    if (p->workers == NULL)
        return;
    for (int i = 0; i < p->opt.workers; i++)
        if (p->workers[i].loop != NULL)
            rm_worker_notify(&p->workers[i]);
}

/* The whole file, malloc'd, or NULL (then rm_config_load_file reports why). Main thread only:
 * blocking reads are fine here. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0 || n > RM_CONFIG_MAX_INPUT)
            break;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf != NULL && n > RM_CONFIG_MAX_INPUT) {
        free(buf);
        return NULL; /* let rm_config_load_file say it is too large */
    }
    *len = n;
    return buf;
}

/* Loads, validates, compiles and publishes the file. Returns 0, or -1 with the reasons logged. */
static int load_file(config_source_t *cs)
{
    rm_proxy_t *p = cs->proxy;
    Remora__V1__ConfigSet *set = NULL;
    rm_config_diags_t errors, warnings;
    memset(&errors, 0, sizeof(errors));
    memset(&warnings, 0, sizeof(warnings));
    /* SIGHUP and the file watcher often both fire for one edit: a file identical to the one
     * last judged gets the same verdict, without logging or counting it twice. */
    size_t len = 0;
    char *data = read_file(p->opt.config_path, &len);
    uint64_t hash = data ? rm_hash64(data, len) | 1 : 0; /* never 0: 0 means "not read" */
    if (data != NULL && cs->judged && hash == cs->last_hash) {
        free(data);
        return cs->last_rc;
    }
    int rc = data ? rm_config_load(p->opt.config_path, data, len, NULL, &set, &errors, &warnings)
                  : rm_config_load_file(p->opt.config_path, NULL, &set, &errors, &warnings);
    free(data);
    if (hash != 0) {
        cs->judged = true;
        cs->last_hash = hash;
        cs->last_rc = rc == 0 && set != NULL ? 0 : -1; /* refined below if the build fails */
    }
    char line[1024];
    for (size_t i = 0; i < warnings.count; i++) {
        rm_config_diag_format(&warnings.items[i], line, sizeof(line));
        rm_log_warn("config warning: %s", line);
    }
    if (rc != 0 || set == NULL) {
        for (size_t i = 0; i < errors.count; i++) {
            rm_config_diag_format(&errors.items[i], line, sizeof(line));
            rm_log_error("config rejected: %s", line);
        }
        if (errors.count == 0)
            rm_log_error("config rejected: %s: cannot be loaded", p->opt.config_path);
        rm_config_diags_free(&errors);
        rm_config_diags_free(&warnings);
        rm_metrics_config(p, 0, true);
        return -1;
    }
    rm_config_diags_free(&errors);
    rm_config_diags_free(&warnings);

    Remora__V1__ResolvedEndpoint **eps = NULL;
    size_t neps = 0;
    char err[512] = "";
    rm_snapshot_t *snap = NULL;
    if (rm_snapshot_endpoints_from_config(set, &eps, &neps) == 0)
        snap =
            rm_snapshot_build(set, eps, neps, p->opt.namespace, cs->version + 1, err, sizeof(err));
    rm_snapshot_endpoints_free(eps, neps);
    protobuf_c_message_free_unpacked(&set->base, NULL);
    if (snap == NULL) {
        cs->last_rc = -1;
        rm_log_error("config rejected: %s: %s", p->opt.config_path, err[0] ? err : "out of memory");
        rm_metrics_config(p, 0, true);
        return -1;
    }
    /* SIGHUP and the file watcher may both fire for one edit, and an editor may save without
     * changing anything: an identical config is not a new version. */
    rm_snapshot_t *cur = rm_snapshot_acquire();
    if (cur != NULL) {
        size_t a = 0, b = 0;
        const uint8_t *pa = rm_snapshot_packed(cur, &a), *pb = rm_snapshot_packed(snap, &b);
        bool same = a == b && memcmp(pa, pb, a) == 0;
        rm_snapshot_unref(cur);
        if (same) {
            rm_snapshot_unref(snap);
            rm_log_debug("config unchanged: %s", p->opt.config_path);
            return 0;
        }
    }
    cs->version++;
    atomic_store(&p->config_version, cs->version);
    rm_snapshot_publish(snap);
    notify_workers(p);
    atomic_store(&p->ready, true);
    rm_metrics_config(p, cs->version, false);
    rm_log_info("config version %llu loaded from %s", (unsigned long long)cs->version,
                p->opt.config_path);
    return 0;
}

/* The control-plane client published a snapshot (client thread). */
static void control_published(void *arg, uint64_t version)
{
    config_source_t *cs = arg;
    atomic_store(&cs->proxy->config_version, version);
    rm_metrics_config(cs->proxy, version, false);
    atomic_store(&cs->proxy->ready, true);
    notify_workers(cs->proxy);
}

static void sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    load_file(&source);
}

static void file_changed_cb(struct ev_loop *loop, ev_stat *w, int revents)
{
    (void)loop;
    (void)revents;
    if (w->attr.st_nlink == 0)
        return; /* removed (an editor's rename dance): wait for the new file */
    load_file(&source);
}

static void sigterm_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    if (atomic_load(&source.proxy->draining) && w->signum == SIGINT) {
        rm_log_warn("second interrupt: exiting now");
        exit(1);
    }
    rm_proxy_source_begin_drain(source.proxy);
}

/* Publishes whether the control plane has the withdrawal, for the draining workers, until it
 * does (main thread: the control client is asked here, never from a worker). */
static void withdraw_poll_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    bool delivered = rm_control_client_withdraw_delivered(source.control);
    atomic_store(&source.proxy->withdraw_delivered, delivered);
    if (delivered)
        ev_timer_stop(loop, t);
}

/* A worker exited, or the drain began (from any thread): the main loop's wake-up. */
static void main_wakeup_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)w;
    (void)revents;
    rm_proxy_t *p = source.proxy;
    if (atomic_load(&p->draining) && !atomic_load(&p->withdraw_delivered) &&
        !ev_is_active(&source.withdraw_poll)) {
        ev_timer_start(loop, &source.withdraw_poll);
        withdraw_poll_cb(loop, &source.withdraw_poll, 0);
    }
    if (atomic_load(&p->running_workers) == 0)
        ev_break(loop, EVBREAK_ALL);
}

int rm_proxy_source_init(rm_proxy_t *p, struct ev_loop *main_loop)
{
    config_source_t *cs = &source;
    cs->proxy = p;
    cs->loop = main_loop;
    ev_signal_init(&cs->sigterm, sigterm_cb, SIGTERM);
    ev_signal_start(main_loop, &cs->sigterm);
    ev_signal_init(&cs->sigint, sigterm_cb, SIGINT);
    ev_signal_start(main_loop, &cs->sigint);
    p->main_loop = main_loop;
    ev_async_init(&p->main_wakeup, main_wakeup_cb);
    ev_async_start(main_loop, &p->main_wakeup);
    ev_timer_init(&cs->withdraw_poll, withdraw_poll_cb, 0.05, 0.05);
    if (p->opt.config_path != NULL) {
        if (load_file(cs) != 0)
            return -1;
        ev_signal_init(&cs->sighup, sighup_cb, SIGHUP);
        ev_signal_start(main_loop, &cs->sighup);
        ev_stat_init(&cs->file_watch, file_changed_cb, p->opt.config_path, 0.5);
        ev_stat_start(main_loop, &cs->file_watch);
    } else {
        const char *host = p->opt.pod_ip[0]                             ? p->opt.pod_ip
                           : strcmp(p->opt.listen_host, "0.0.0.0") != 0 ? p->opt.listen_host
                                                                        : "127.0.0.1";
        if (p->opt.inbound_port > 0 && p->opt.service[0] != '\0')
            snprintf(cs->address, sizeof(cs->address), strchr(host, ':') ? "[%s]:%d" : "%s:%d",
                     host, p->opt.inbound_port);
        rm_control_options_t co = {.target = p->opt.control_plane,
                                   .pod = p->opt.pod,
                                   .namespace_ = p->opt.namespace,
                                   .service = p->opt.service,
                                   .version = p->opt.version,
                                   .egress = p->opt.egress != NULL ? p->opt.egress : "",
                                   .address = cs->address,
                                   .proxy_version = RM_VERSION,
                                   .stats = p->stats,
                                   .app_up = p->opt.app_port > 0 ? &p->app_up : NULL,
                                   .app_refused = p->opt.app_port > 0 ? &p->app_refused : NULL,
                                   .on_published = control_published,
                                   .arg = cs};
        cs->control = rm_control_client_start(&co);
        if (cs->control == NULL) {
            rm_log_error("cannot start the control-plane client for %s", p->opt.control_plane);
            return -1;
        }
        rm_log_info("config from control plane %s (endpoint %s)", p->opt.control_plane,
                    cs->address[0] ? cs->address : "none: client only");
    }
    return 0;
}

void rm_proxy_source_begin_drain(rm_proxy_t *p)
{
    bool was = atomic_exchange(&p->draining, true);
    if (was)
        return;
    p->drain_started = ev_time();
    /* Clients learn through the control plane that this endpoint is going away, at once. */
    rm_control_client_withdraw(source.control);
    rm_log_info("draining: /ready fails now; accepting for %llums more, deadline %llums",
                (unsigned long long)p->opt.drain_grace_ms,
                (unsigned long long)p->opt.drain_deadline_ms);
    ev_async_send(source.loop, &p->main_wakeup); /* starts publishing withdraw_delivered */
    notify_workers(p);
}

char *rm_proxy_source_dump_json(rm_proxy_t *p, const rm_snapshot_t *snap, size_t *len)
{
    (void)p;
    json_t *root = json_object();
    if (root == NULL)
        return NULL;
    json_object_set_new(root, "version",
                        json_integer(snap ? (json_int_t)rm_snapshot_version(snap) : 0));
    json_t *docs = NULL;
    if (snap != NULL) {
        char *text = rm_config_to_json(rm_snapshot_config(snap));
        if (text != NULL)
            docs = json_loads(text, 0, NULL);
        free(text);
    }
    json_object_set_new(root, "config", docs ? docs : json_array());
    char *out = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (out != NULL && len != NULL)
        *len = strlen(out);
    return out;
}

void rm_proxy_source_free(rm_proxy_t *p)
{
    (void)p;
    rm_control_client_stop(source.control);
    source.control = NULL;
    rm_snapshot_publish(NULL);
}
