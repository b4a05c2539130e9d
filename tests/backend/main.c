/* tests/backend/main.c — remora-test-backend: flags, then the server loop until drained. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/version.h"
#include "tests/backend/backend.h"

static const char usage[] =
    "usage: " RM__BACKEND_NAME " [flags]\n"
    "\n"
    "The app behind Remora's sidecars in tests, demos and benchmarks: an HTTP/1.1 server that\n"
    "answers every request with one JSON line naming itself, and whose latency, status and\n"
    "failures are set by flags or per request by x-backend-* headers.\n"
    "\n"
    "  --listen HOST:PORT      listen here (repeatable; default 127.0.0.1:8080; [::1]:PORT, "
    ":PORT)\n"
    "  --service NAME          service name in responses (default backend)\n"
    "  --version VER           service version in responses (default v1); also --service-version\n"
    "  --instance ID           instance id in responses (default HOSTNAME-PID)\n"
    "  --delay DURATION        latency before each response, e.g. 250ms, 2s (default 0)\n"
    "  --status CODE           status of each response, 200..599 (default 200)\n"
    "  --fail-rate PERCENT     answer --fail-status to exactly this share, every Nth request\n"
    "  --fail-status CODE      status for --fail-rate failures (default 503)\n"
    "  --body-bytes N          response body size (default: the JSON identity line)\n"
    "  --chunked               send response bodies chunked (HTTP/1.1 clients)\n"
    "  --close-after N         close each connection after N responses (0 = never, default)\n"
    "  --drain-seconds N       on SIGTERM/SIGINT stop accepting, finish in-flight requests with\n"
    "                          'connection: close', exit when idle or after N seconds (default 5)\n"
    "  --quiet                 no startup lines on stderr\n"
    "  --help, -h              this text\n"
    "  --version, -V           (with no value) print the program version\n"
    "\n"
    "Request headers that override the flags for one request:\n"
    "  x-backend-delay: 200ms         x-backend-status: 503        x-backend-body-bytes: 100000\n"
    "  x-backend-chunked: 1           x-backend-echo-headers: 1 (adds \"headers\" to the body)\n"
    "  x-backend-fault: reset | close | close-after-headers | reset-mid-body | hang | malformed |\n"
    "                   no-read\n"
    "Admin: GET /__backend/stats (counters, not counted itself), GET /__backend/ready (503 while\n"
    "draining).\n";

enum {
    OPT_LISTEN = 256,
    OPT_SERVICE,
    OPT_VERSION,
    OPT_SERVICE_VERSION,
    OPT_INSTANCE,
    OPT_DELAY,
    OPT_STATUS,
    OPT_FAIL_RATE,
    OPT_FAIL_STATUS,
    OPT_BODY_BYTES,
    OPT_CHUNKED,
    OPT_CLOSE_AFTER,
    OPT_DRAIN_SECONDS,
    OPT_QUIET,
};

static const struct option options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"service", required_argument, NULL, OPT_SERVICE},
    /* Optional so that a bare --version prints the program version as every Remora program's
     * does; "--version v2" (a value not starting with '-') sets the service version. */
    {"version", optional_argument, NULL, OPT_VERSION},
    {"service-version", required_argument, NULL, OPT_SERVICE_VERSION},
    {"instance", required_argument, NULL, OPT_INSTANCE},
    {"delay", required_argument, NULL, OPT_DELAY},
    {"status", required_argument, NULL, OPT_STATUS},
    {"fail-rate", required_argument, NULL, OPT_FAIL_RATE},
    {"fail-status", required_argument, NULL, OPT_FAIL_STATUS},
    {"body-bytes", required_argument, NULL, OPT_BODY_BYTES},
    {"chunked", no_argument, NULL, OPT_CHUNKED},
    {"close-after", required_argument, NULL, OPT_CLOSE_AFTER},
    {"drain-seconds", required_argument, NULL, OPT_DRAIN_SECONDS},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int bad_flag(const char *flag, const char *value, const char *want)
{
    fprintf(stderr, "%s: bad value '%s' for %s (want %s)\n", RM__BACKEND_NAME, value, flag, want);
    return 2;
}

static int parse_status(const char *s, int *out)
{
    uint64_t v;

    if (rm__u64_parse(s, strlen(s), 599, &v) < 0 || v < 200)
        return -1;
    *out = (int)v;
    return 0;
}

/* Lets the connection cap be the hard ulimit rather than the (often 1024) soft one. */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Parses argv into cfg. Returns -1 to go on, or the exit code (0 for --help/--version). */
static int parse_flags(int argc, char **argv, rm__config_t *cfg)
{
    int opt;
    uint64_t v;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":hV", options, NULL)) != -1) {
        /* getopt sets optarg for every flag that takes a value; "" only quiets the analyzer. */
        const char *a = optarg ? optarg : "";

        switch (opt) {
        case OPT_LISTEN:
            if (cfg->nlisten == RM__LISTEN_MAX) {
                fprintf(stderr, "%s: at most %d --listen flags\n", RM__BACKEND_NAME,
                        RM__LISTEN_MAX);
                return 2;
            }
            {
                char h[256], p[8];

                if (rm__hostport_split(a, h, sizeof(h), p, sizeof(p)) < 0)
                    return bad_flag("--listen", a, "HOST:PORT, [V6]:PORT or :PORT");
            }
            cfg->listen[cfg->nlisten++] = a;
            break;
        case OPT_SERVICE:
            cfg->service = a;
            break;
        case OPT_VERSION:
            a = optarg;
            if (a == NULL && optind < argc && argv[optind][0] != '-')
                a = argv[optind++];
            if (a == NULL) {
                printf("%s %s\n", RM__BACKEND_NAME, RM_VERSION);
                return 0;
            }
            cfg->version = a;
            break;
        case OPT_SERVICE_VERSION:
            cfg->version = a;
            break;
        case OPT_INSTANCE:
            cfg->instance = a;
            break;
        case OPT_DELAY:
            if (rm__duration_parse(a, strlen(a), &cfg->delay_us) < 0)
                return bad_flag("--delay", a, "a duration such as 250ms or 2s, at most 24h");
            break;
        case OPT_STATUS:
            if (parse_status(a, &cfg->status) < 0)
                return bad_flag("--status", a, "a status code 200..599");
            break;
        case OPT_FAIL_RATE:
            if (rm__percent_parse(a, &cfg->fail_rate_bp) < 0)
                return bad_flag("--fail-rate", a, "a percentage 0..100, e.g. 10 or 2.5");
            break;
        case OPT_FAIL_STATUS:
            if (parse_status(a, &cfg->fail_status) < 0)
                return bad_flag("--fail-status", a, "a status code 200..599");
            break;
        case OPT_BODY_BYTES:
            if (rm__u64_parse(a, strlen(a), RM__BODY_BYTES_MAX, &cfg->body_bytes) < 0)
                return bad_flag("--body-bytes", a, "a byte count 0..1099511627776");
            cfg->has_body_bytes = 1;
            break;
        case OPT_CHUNKED:
            cfg->chunked = 1;
            break;
        case OPT_CLOSE_AFTER:
            if (rm__u64_parse(a, strlen(a), 1000000000, &v) < 0)
                return bad_flag("--close-after", a, "a response count, 0 for never");
            cfg->close_after = (unsigned)v;
            break;
        case OPT_DRAIN_SECONDS:
            if (rm__u64_parse(a, strlen(a), 86400, &v) < 0)
                return bad_flag("--drain-seconds", a, "whole seconds 0..86400");
            cfg->drain_seconds = (unsigned)v;
            break;
        case OPT_QUIET:
            cfg->quiet = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case 'V':
            printf("%s %s\n", RM__BACKEND_NAME, RM_VERSION);
            return 0;
        case ':':
            fprintf(stderr, "%s: %s needs a value (see --help)\n", RM__BACKEND_NAME,
                    argv[optind - 1]);
            return 2;
        default:
            if (optopt > 0 && optopt < 256)
                fprintf(stderr, "%s: unknown flag '-%c' (see --help)\n", RM__BACKEND_NAME, optopt);
            else
                fprintf(stderr, "%s: unknown flag '%s' (see --help)\n", RM__BACKEND_NAME,
                        argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", RM__BACKEND_NAME,
                argv[optind]);
        return 2;
    }
    return -1;
}

int main(int argc, char **argv)
{
    static rm__server_t srv; /* big (the counters); static keeps it off the stack */
    rm__config_t *cfg = &srv.cfg;
    static char instance[300]; /* cfg->instance may point here */
    char hostname[256];
    struct ev_loop *loop;
    int rc;

    cfg->service = "backend";
    cfg->version = "v1";
    cfg->status = 200;
    cfg->fail_status = 503;
    cfg->drain_seconds = 5;
    rc = parse_flags(argc, argv, cfg);
    if (rc >= 0)
        return rc;
    if (cfg->nlisten == 0)
        cfg->listen[cfg->nlisten++] = "127.0.0.1:8080";
    if (cfg->instance == NULL) {
        if (gethostname(hostname, sizeof(hostname)) < 0)
            strcpy(hostname, "localhost");
        hostname[sizeof(hostname) - 1] = '\0';
        snprintf(instance, sizeof(instance), "%s-%ld", hostname, (long)getpid());
        cfg->instance = instance;
    }

    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    loop = ev_default_loop(EVFLAG_AUTO);
    if (loop == NULL) {
        fprintf(stderr, "%s: cannot start the event loop (libev)\n", RM__BACKEND_NAME);
        return 1;
    }
    if (rm__server_start(&srv, loop) < 0)
        return 1;
    ev_run(loop, 0);
    rm__server_stop(&srv);
    ev_loop_destroy(loop);
    return 0;
}
