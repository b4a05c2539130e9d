/* dataplane/proxy/main.c — remora-proxy: flags, start-up, signals, and shutdown.
 *
 * The main thread owns the config source (a file, or the control plane), signals and the drain
 * decision; worker threads own the data path. See proxy-t.h for the map.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/duration.h"
#include "common/log/log.h"
#include "common/version.h"
#include "dataplane/control/control_client.h"
#include "dataplane/proxy/access_log.h"
#include "dataplane/proxy/admin.h"
#include "dataplane/proxy/config_source.h"
#include "dataplane/proxy/metrics.h"
#include "dataplane/proxy/worker.h"

static const char usage[] =
    "usage: remora-proxy (--config FILE | --control-plane HOST:PORT) [options]\n"
    "\n"
    "The Remora sidecar: an HTTP/1.1 proxy with canary weighting, A/B matching and drain.\n"
    "\n"
    "Config source (one of):\n"
    "  --config FILE             routes from a file of Service/Route/CircuitBreaker documents;\n"
    "                            reloaded on SIGHUP and when the file changes\n"
    "  --control-plane HOST:PORT config pushed by remora-control ($REMORA_CONTROL_PLANE)\n"
    "Identity (defaults from the environment the injector sets):\n"
    "  --service NAME ($REMORA_SERVICE)   --version VER ($REMORA_VERSION)\n"
    "  --pod NAME ($POD_NAME)   --namespace NS ($POD_NAMESPACE, default \"default\")\n"
    "  --pod-ip IP ($POD_IP)    --app-port PORT ($REMORA_APP_PORT): the local app for inbound\n"
    "  --egress LIST             the services this sidecar calls, comma-separated, each NAME (in\n"
    "                            its namespace) or NAME.NAMESPACE ($REMORA_EGRESS); the control\n"
    "                            plane then sends only their config and endpoints (default: all)\n"
    "Listeners:\n"
    "  --outbound-port PORT (15001)  --inbound-port PORT (15006)  --admin-port PORT (15000)\n"
    "  --bind ADDR               address the listeners bind (default 0.0.0.0)\n"
    "  --workers N               event-loop threads (default 1)\n"
    "Timeouts (durations like 250ms, 2s, 1m):\n"
    "  --connect-timeout D (1s)  --request-timeout D (15s)  --header-timeout D (10s)\n"
    "  --idle-timeout D (60s)    --upstream-idle-timeout D (30s)\n"
    "Drain (SIGTERM or POST /drain):\n"
    "  --drain-seconds N         deadline for in-flight requests ($REMORA_DRAIN_SECONDS, 25)\n"
    "  --drain-grace D           keep accepting while endpoint removal propagates (2s)\n"
    "Other:\n"
    "  --max-connections N (10000)  --access-log PATH|-  --log-level debug|info|warn|error\n"
    "  --help  --version\n";

enum {
    OPT_CONFIG = 256,
    OPT_CONTROL_PLANE,
    OPT_SERVICE,
    OPT_VERSION_NAME,
    OPT_POD,
    OPT_NAMESPACE,
    OPT_POD_IP,
    OPT_APP_PORT,
    OPT_OUTBOUND_PORT,
    OPT_INBOUND_PORT,
    OPT_ADMIN_PORT,
    OPT_BIND,
    OPT_WORKERS,
    OPT_CONNECT_TIMEOUT,
    OPT_REQUEST_TIMEOUT,
    OPT_HEADER_TIMEOUT,
    OPT_IDLE_TIMEOUT,
    OPT_UPSTREAM_IDLE_TIMEOUT,
    OPT_DRAIN_SECONDS,
    OPT_DRAIN_GRACE,
    OPT_MAX_CONNECTIONS,
    OPT_ACCESS_LOG,
    OPT_LOG_LEVEL,
    OPT_EGRESS,
    OPT_HELP,
    OPT_PRINT_VERSION,
};

static const struct option long_options[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"control-plane", required_argument, NULL, OPT_CONTROL_PLANE},
    {"service", required_argument, NULL, OPT_SERVICE},
    {"version", optional_argument, NULL, OPT_VERSION_NAME},
    {"pod", required_argument, NULL, OPT_POD},
    {"namespace", required_argument, NULL, OPT_NAMESPACE},
    {"pod-ip", required_argument, NULL, OPT_POD_IP},
    {"app-port", required_argument, NULL, OPT_APP_PORT},
    {"outbound-port", required_argument, NULL, OPT_OUTBOUND_PORT},
    {"inbound-port", required_argument, NULL, OPT_INBOUND_PORT},
    {"admin-port", required_argument, NULL, OPT_ADMIN_PORT},
    {"bind", required_argument, NULL, OPT_BIND},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT},
    {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"upstream-idle-timeout", required_argument, NULL, OPT_UPSTREAM_IDLE_TIMEOUT},
    {"drain-seconds", required_argument, NULL, OPT_DRAIN_SECONDS},
    {"drain-grace", required_argument, NULL, OPT_DRAIN_GRACE},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"egress", required_argument, NULL, OPT_EGRESS},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int bad_flag(const char *flag, const char *value, const char *why)
{
    fprintf(stderr, "remora-proxy: %s %s: %s (see --help)\n", flag, value ? value : "", why);
    return 2;
}

static int parse_port(const char *flag, const char *v, int *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 0 || n > 65535)
        return bad_flag(flag, v, "must be a port number 0..65535");
    *out = (int)n;
    return 0;
}

static int parse_count(const char *flag, const char *v, long lo, long hi, long *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < lo || n > hi) {
        char why[64];
        snprintf(why, sizeof(why), "must be an integer %ld..%ld", lo, hi);
        return bad_flag(flag, v, why);
    }
    *out = n;
    return 0;
}

static int parse_duration_flag(const char *flag, const char *v, uint64_t *out)
{
    if (rm_duration_parse(v, out) != 0 || *out == 0)
        return bad_flag(flag, v, "must be a positive duration like 250ms, 2s or 1m");
    return 0;
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : def;
}

static void defaults(rm_proxy_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->control_plane = env_or("REMORA_CONTROL_PLANE", NULL);
    o->service = env_or("REMORA_SERVICE", "");
    o->version = env_or("REMORA_VERSION", "");
    o->pod = env_or("POD_NAME", "");
    o->namespace = env_or("POD_NAMESPACE", "default");
    o->pod_ip = env_or("POD_IP", "");
    o->egress = getenv("REMORA_EGRESS");
    o->app_port = atoi(env_or("REMORA_APP_PORT", "0"));
    o->listen_host = "0.0.0.0";
    o->outbound_port = 15001;
    o->inbound_port = 15006;
    o->admin_port = 15000;
    o->workers = 1;
    o->connect_timeout_ms = 1000;
    o->request_timeout_ms = 15000;
    o->header_timeout_ms = 10000;
    o->idle_timeout_ms = 60000;
    o->upstream_idle_timeout_ms = 30000;
    o->drain_grace_ms = 2000;
    o->drain_deadline_ms = (uint64_t)atoi(env_or("REMORA_DRAIN_SECONDS", "25")) * 1000;
    o->max_head_bytes = (size_t)64 * 1024;
    o->max_headers = 100;
    o->buffer_limit = (size_t)128 * 1024;
    o->retry_body_limit = (size_t)64 * 1024;
    o->max_connections = 10000;
}

static int parse_flags(int argc, char **argv, rm_proxy_options_t *o, rm_log_level_t *level)
{
    int c;
    long n;
    int rc = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1 && rc == 0) {
        const char *flag = argv[optind - 1];
        switch (c) {
        case OPT_CONFIG:
            o->config_path = optarg;
            break;
        case OPT_CONTROL_PLANE:
            o->control_plane = optarg;
            break;
        case OPT_SERVICE:
            o->service = optarg;
            break;
        case OPT_VERSION_NAME:
            /* --version is both the identity flag (--version v2) and, bare, the build version. */
            if (optarg == NULL && optind < argc && argv[optind][0] != '-')
                optarg = argv[optind++];
            if (optarg == NULL) {
                printf("remora-proxy %s\n", RM_VERSION);
                exit(0);
            }
            o->version = optarg;
            break;
        case OPT_POD:
            o->pod = optarg;
            break;
        case OPT_NAMESPACE:
            o->namespace = optarg;
            break;
        case OPT_POD_IP:
            o->pod_ip = optarg;
            break;
        case OPT_APP_PORT:
            rc = parse_port(flag, optarg, &o->app_port);
            break;
        case OPT_OUTBOUND_PORT:
            rc = parse_port(flag, optarg, &o->outbound_port);
            break;
        case OPT_INBOUND_PORT:
            rc = parse_port(flag, optarg, &o->inbound_port);
            break;
        case OPT_ADMIN_PORT:
            rc = parse_port(flag, optarg, &o->admin_port);
            break;
        case OPT_BIND:
            o->listen_host = optarg;
            break;
        case OPT_WORKERS:
            if ((rc = parse_count(flag, optarg, 1, 64, &n)) == 0)
                o->workers = (int)n;
            break;
        case OPT_CONNECT_TIMEOUT:
            rc = parse_duration_flag(flag, optarg, &o->connect_timeout_ms);
            break;
        case OPT_REQUEST_TIMEOUT:
            rc = parse_duration_flag(flag, optarg, &o->request_timeout_ms);
            break;
        case OPT_HEADER_TIMEOUT:
            rc = parse_duration_flag(flag, optarg, &o->header_timeout_ms);
            break;
        case OPT_IDLE_TIMEOUT:
            rc = parse_duration_flag(flag, optarg, &o->idle_timeout_ms);
            break;
        case OPT_UPSTREAM_IDLE_TIMEOUT:
            rc = parse_duration_flag(flag, optarg, &o->upstream_idle_timeout_ms);
            break;
        case OPT_DRAIN_SECONDS:
            if ((rc = parse_count(flag, optarg, 0, 86400, &n)) == 0)
                o->drain_deadline_ms = (uint64_t)n * 1000;
            break;
        case OPT_DRAIN_GRACE:
            if (rm_duration_parse(optarg, &o->drain_grace_ms) != 0)
                rc = bad_flag(flag, optarg, "must be a duration like 0s, 500ms or 2s");
            break;
        case OPT_MAX_CONNECTIONS:
            if ((rc = parse_count(flag, optarg, 1, 10000000, &n)) == 0)
                o->max_connections = (int)n;
            break;
        case OPT_ACCESS_LOG:
            o->access_log = optarg;
            break;
        case OPT_LOG_LEVEL:
            if (rm_log_level_parse(optarg, level) != 0)
                rc = bad_flag(flag, optarg, "must be debug, info, warn or error");
            break;
        case OPT_EGRESS:
            o->egress = optarg; /* overrides $REMORA_EGRESS (the injector's variable) */
            break;
        case OPT_HELP:
        case 'h':
            fputs(usage, stdout);
            exit(0);
        case ':':
            rc = bad_flag(argv[optind - 1], NULL, "needs a value");
            break;
        default:
            rc = bad_flag(argv[optind - 1], NULL, "unknown flag");
            break;
        }
    }
    if (rc != 0)
        return rc;
    if (optind < argc)
        return bad_flag(argv[optind], NULL, "unexpected argument");
    if ((o->config_path == NULL) == (o->control_plane == NULL))
        return bad_flag("--config/--control-plane", NULL, "give exactly one config source");
    char why[160];
    if (o->egress != NULL && rm_control_egress_check(o->egress, why, sizeof(why)) < 0)
        return bad_flag("--egress ($REMORA_EGRESS)", o->egress, why);
    return 0;
}

int main(int argc, char **argv)
{
    static rm_proxy_t proxy;
    rm_log_level_t level = RM_LOG_INFO;
    defaults(&proxy.opt);
    int rc = parse_flags(argc, argv, &proxy.opt, &level);
    if (rc != 0)
        return rc;
    rm_log_init("remora-proxy", level);
    signal(SIGPIPE, SIG_IGN);

    proxy.stats = rm_stats_registry_new();
    if (proxy.stats == NULL)
        return 1;
    rm_metrics_declare(proxy.stats);
    if (rm_access_log_open(&proxy, proxy.opt.access_log) != 0) {
        fprintf(stderr, "remora-proxy: --access-log %s: %s\n", proxy.opt.access_log,
                strerror(errno));
        return 2;
    }

    struct ev_loop *main_loop = ev_default_loop(0);
    if (rm_proxy_source_init(&proxy, main_loop) != 0)
        return 1; /* a bad config file at start-up is fatal: the reason is already logged */

    proxy.workers = calloc((size_t)proxy.opt.workers, sizeof(*proxy.workers));
    if (proxy.workers == NULL)
        return 1;
    for (int i = 0; i < proxy.opt.workers; i++) {
        if (rm_worker_init(&proxy.workers[i], &proxy, i) != 0)
            return 1;
    }
    rm_admin_start_app_probe(&proxy.workers[0]);
    atomic_store(&proxy.running_workers, proxy.opt.workers);
    for (int i = 0; i < proxy.opt.workers; i++) {
        if (rm_worker_start(&proxy.workers[i]) != 0) {
            rm_log_error("cannot start worker %d", i);
            return 1;
        }
    }
    rm_log_info("listening: outbound %s:%d, inbound %s:%d, admin %s:%d; %d worker(s)",
                proxy.opt.listen_host, proxy.opt.outbound_port, proxy.opt.listen_host,
                proxy.opt.inbound_port, proxy.opt.listen_host, proxy.opt.admin_port,
                proxy.opt.workers);

    ev_run(main_loop, 0); /* returns once every worker finished draining */

    for (int i = 0; i < proxy.opt.workers; i++)
        rm_worker_join(&proxy.workers[i]);
    rm_proxy_source_free(&proxy);
    free(proxy.workers);
    rm_stats_registry_free(proxy.stats);
    rm_log_info("drained; exiting");
    return 0;
}
