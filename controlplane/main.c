/* controlplane/main.c — remora-control: flags, signals, start-up and shutdown around the gRPC
 * server (controlplane/server) and the control state (controlplane/core).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>

#include "common/duration.h"
#include "common/log/log.h"
#include "common/version.h"
#include "controlplane/core/control.h"
#include "controlplane/server/server.h"
#include "controlplane/store/store.h"

#define PROG "remora-control"

static const char usage[] =
    "usage: remora-control [options]\n"
    "\n"
    "The Remora control plane: stores config versions, pushes snapshots to sidecars over gRPC,\n"
    "keeps the endpoint registry, and aggregates the sidecars' stats for meshctl.\n"
    "\n"
    "  --listen HOST:PORT     gRPC address (default 127.0.0.1:15010)\n"
    "  --store URI            sqlite:PATH (default sqlite:./remora-data/remora.db);\n"
    "                         etcd://HOST:PORT[/PREFIX] keeps versions in etcd (keys under\n"
    "                         PREFIX, default /remora/v1/), so several replicas serve one mesh\n"
    "  --endpoint-grace D     how long a dead stream's endpoint stays listed (default 2s)\n"
    "  --restore-grace D      after a restart, how long registrations restored from the store\n"
    "                         stay listed while their sidecars reconnect (default 30s; never\n"
    "                         shorter than --endpoint-grace, so 0s means that long)\n"
    "  --debounce D           longest a change waits before it is pushed (default 20ms)\n"
    "  --history N            config versions kept in the store (default 100); older ones are\n"
    "                         deleted, so rollback and get --config-version reach N back\n"
    "  --max-streams N        discovery streams open at once (default 10000)\n"
    "  --max-scopes N         distinct sidecar egress lists (default 1000)\n"
    "  --max-registrations N  endpoints registered by this replica's sidecars, connected or\n"
    "                         in their grace (default 20000)\n"
    "  --max-waiters N        Admin calls waiting for ACKs: apply --wait, WaitForAck (default\n"
    "                         100)\n"
    "                         Past a --max-* cap the caller gets RESOURCE_EXHAUSTED; the rest\n"
    "                         are unaffected.\n"
    "  --log-level L          debug | info | warn | error | off (default info)\n"
    "  --help                 this text\n"
    "  --version              print the version\n"
    "\n"
    "Durations are written like 250ms, 2s, 1m.\n";

enum {
    OPT_LISTEN = 256,
    OPT_STORE,
    OPT_GRACE,
    OPT_RESTORE_GRACE,
    OPT_DEBOUNCE,
    OPT_HISTORY,
    OPT_MAX_STREAMS,
    OPT_MAX_SCOPES,
    OPT_MAX_REGISTRATIONS,
    OPT_MAX_WAITERS,
    OPT_LOG_LEVEL,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"store", required_argument, NULL, OPT_STORE},
    {"endpoint-grace", required_argument, NULL, OPT_GRACE},
    {"restore-grace", required_argument, NULL, OPT_RESTORE_GRACE},
    {"debounce", required_argument, NULL, OPT_DEBOUNCE},
    {"history", required_argument, NULL, OPT_HISTORY},
    {"max-streams", required_argument, NULL, OPT_MAX_STREAMS},
    {"max-scopes", required_argument, NULL, OPT_MAX_SCOPES},
    {"max-registrations", required_argument, NULL, OPT_MAX_REGISTRATIONS},
    {"max-waiters", required_argument, NULL, OPT_MAX_WAITERS},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int bad_flag(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, " (see --help)\n");
    return 2;
}

static int parse_duration_flag(const char *flag, const char *v, uint64_t max_ms, uint64_t *out)
{
    int rc = rm_duration_parse(v, out);
    if (rc < 0) {
        fprintf(stderr, PROG ": %s \"%s\": %s (see --help)\n", flag, v, rm_duration_strerror(rc));
        return 2;
    }
    if (*out > max_ms) {
        char buf[RM_DURATION_BUF];
        rm_duration_format(max_ms, buf, sizeof(buf));
        fprintf(stderr, PROG ": %s \"%s\": at most %s (see --help)\n", flag, v, buf);
        return 2;
    }
    return 0;
}

/* A whole number from min to max, in decimal. */
static int parse_count_flag(const char *flag, const char *v, uint64_t min, uint64_t max,
                            uint64_t *out)
{
    uint64_t n = 0;
    const char *p = v;
    if (*p == '\0')
        goto bad;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || n > max)
            goto bad;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    if (n < min || n > max)
        goto bad;
    *out = n;
    return 0;
bad:
    fprintf(stderr, PROG ": %s \"%s\": a whole number from %llu to %llu (see --help)\n", flag, v,
            (unsigned long long)min, (unsigned long long)max);
    return 2;
}

/* "HOST:PORT" with a non-empty host and a numeric port 0..65535. */
static int valid_listen(const char *a)
{
    const char *colon = strrchr(a, ':');
    if (colon == NULL || colon == a || colon[1] == '\0' || strlen(colon + 1) > 5)
        return 0;
    long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        port = port * 10 + (*p - '0');
    }
    return port <= 65535;
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:15010";
    const char *store_uri = RM_STORE_DEFAULT_URI;
    rm_cp_options_t opt = {
        .debounce_ms = RM_CONTROL_DEFAULT_DEBOUNCE_MS,
        .grace_ms = RM_CONTROL_DEFAULT_GRACE_MS,
        .history = RM_CONTROL_DEFAULT_HISTORY,
    };
    rm_log_level_t level = RM_LOG_INFO;
    int c, rc;

    opterr = 0; /* we print our own one-line errors */
    while ((c = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_LISTEN:
            if (!valid_listen(optarg))
                return bad_flag("--listen \"%s\" is not HOST:PORT%s", optarg, "");
            listen = optarg;
            break;
        case OPT_STORE:
            store_uri = optarg;
            if (strncmp(optarg, "sqlite:", 7) != 0 && strncmp(optarg, "etcd://", 7) != 0)
                return bad_flag("--store \"%s\": use sqlite:PATH or etcd://HOST:PORT%s", optarg,
                                "");
            if (strncmp(optarg, "etcd://", 7) == 0 && strchr(optarg + 7, ':') == NULL)
                return bad_flag("--store \"%s\": use etcd://HOST:PORT[/PREFIX]%s", optarg, "");
            if (strcmp(optarg, "sqlite:") == 0)
                return bad_flag("--store \"%s\": sqlite needs a path (sqlite:PATH)%s", optarg, "");
            break;
        case OPT_GRACE:
            if ((rc = parse_duration_flag("--endpoint-grace", optarg, 3600000, &opt.grace_ms)))
                return rc;
            break;
        case OPT_RESTORE_GRACE:
            if ((rc = parse_duration_flag("--restore-grace", optarg, 3600000,
                                          &opt.restore_grace_ms)))
                return rc;
            /* The core reads 0 as "the default" and raises anything shorter than the endpoint
             * grace to it; 1 ms asks for exactly that floor. */
            if (opt.restore_grace_ms == 0)
                opt.restore_grace_ms = 1;
            break;
        case OPT_DEBOUNCE:
            if ((rc = parse_duration_flag("--debounce", optarg, 60000, &opt.debounce_ms)))
                return rc;
            break;
        case OPT_HISTORY:
            if ((rc = parse_count_flag("--history", optarg, 1, 1000000, &opt.history)))
                return rc;
            break;
        case OPT_MAX_STREAMS:
            if ((rc = parse_count_flag("--max-streams", optarg, 1, 1000000, &opt.max_streams)))
                return rc;
            break;
        case OPT_MAX_SCOPES:
            if ((rc = parse_count_flag("--max-scopes", optarg, 1, 1000000, &opt.max_scopes)))
                return rc;
            break;
        case OPT_MAX_REGISTRATIONS:
            if ((rc = parse_count_flag("--max-registrations", optarg, 1, 1000000,
                                       &opt.max_registrations)))
                return rc;
            break;
        case OPT_MAX_WAITERS:
            if ((rc = parse_count_flag("--max-waiters", optarg, 1, 1000000, &opt.max_waiters)))
                return rc;
            break;
        case OPT_LOG_LEVEL:
            if (rm_log_level_parse(optarg, &level) < 0)
                return bad_flag("--log-level \"%s\": use debug, info, warn, error or off%s", optarg,
                                "");
            break;
        case OPT_HELP:
            fputs(usage, stdout);
            return 0;
        case OPT_VERSION:
            printf(PROG " %s (gRPC core %s)\n", RM_VERSION, grpc_version_string());
            return 0;
        case ':':
            return bad_flag("%s needs a value%s", argv[optind - 1], "");
        default:
            return bad_flag("unknown flag \"%s\"%s", argv[optind - 1], "");
        }
    }
    if (optind < argc)
        return bad_flag("unexpected argument \"%s\"%s", argv[optind], "");

    rm_log_init(PROG, level);
    char err[512];
    rm_store_t *store = NULL;
    rc = rm_store_open(store_uri, &store, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, PROG ": store %s: %s\n", store_uri, err);
        return 1;
    }
    rm_control_t *ctl = NULL;
    if (rm_control_open(store, &opt, &ctl, err, sizeof(err)) < 0) {
        fprintf(stderr, PROG ": store %s: %s\n", store_uri, err);
        return 1;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    rm_server_t *srv = rm_server_new(listen, ctl, err, sizeof(err));
    if (srv == NULL) {
        fprintf(stderr, PROG ": %s\n", err);
        rm_control_close(ctl);
        return 1;
    }
    const char *colon = strrchr(listen, ':');
    uint64_t restore_ms =
        opt.restore_grace_ms ? opt.restore_grace_ms : RM_CONTROL_DEFAULT_RESTORE_GRACE_MS;
    if (restore_ms < opt.grace_ms)
        restore_ms = opt.grace_ms; /* as the core does (controlplane/core/registrations.c) */
    rm_log_info(PROG " %s listening on %.*s:%d; store %s at version %llu; debounce %llums, "
                     "endpoint grace %llums, restore grace %llums; keeping %llu versions; at most "
                     "%llu streams, %llu scopes, %llu registrations, %llu waiters",
                RM_VERSION, (int)(colon - listen), listen, rm_server_port(srv), store_uri,
                (unsigned long long)ctl->version, (unsigned long long)opt.debounce_ms,
                (unsigned long long)opt.grace_ms, (unsigned long long)restore_ms,
                (unsigned long long)ctl->opt.history, (unsigned long long)ctl->opt.max_streams,
                (unsigned long long)ctl->opt.max_scopes,
                (unsigned long long)ctl->opt.max_registrations,
                (unsigned long long)ctl->opt.max_waiters);
    rm_server_run(srv, &stop_flag);
    rm_server_free(srv);
    const uint64_t *r = ctl->refused;
    if (r[RM_CAP_STREAMS] + r[RM_CAP_SCOPES] + r[RM_CAP_REGISTRATIONS] + r[RM_CAP_WAITERS] > 0)
        rm_log_info("refused over the caps since start: %llu stream(s) (--max-streams), %llu "
                    "Hello(s) (--max-scopes), %llu registration(s) (--max-registrations), %llu "
                    "wait(s) (--max-waiters)",
                    (unsigned long long)r[RM_CAP_STREAMS], (unsigned long long)r[RM_CAP_SCOPES],
                    (unsigned long long)r[RM_CAP_REGISTRATIONS],
                    (unsigned long long)r[RM_CAP_WAITERS]);
    rm_control_close(ctl);
    rm_log_info("stopped");
    return 0;
}
