/* controlplane/meshctl/cmd_stats.c — `meshctl stats`: the control plane's aggregated traffic
 * per service/version/route as a table or JSON, once or refreshed (--watch).
 *
 * The table keeps one row per (service, version, route) so a canary reads top to bottom:
 * observed share beside configured weight, actual (per attempt) beside effective (after
 * retries) success, and why retries happened or were skipped.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "controlplane/meshctl/meshctl.h"
#include "remora/v1/admin.pb-c.h"

enum { O_ROUTE, O_NAMESPACE, O_OUTPUT, O_WINDOW, O_WATCH, O_INTERVAL, O_COUNT };

static uint64_t counts_total(Remora__V1__RetryCount **c, size_t n)
{
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += c[i]->total;
    return t;
}

/* "4 (connect-failure=3 reset=1)", or "0". */
static void counts_cell(Remora__V1__RetryCount **c, size_t n, char *buf, size_t len)
{
    size_t off = (size_t)snprintf(buf, len, "%llu", (unsigned long long)counts_total(c, n));
    int any = 0;
    for (size_t i = 0; i < n && off < len; i++) {
        if (c[i]->total == 0)
            continue;
        off += (size_t)snprintf(buf + off, len - off, "%s%s=%llu", any ? " " : " (", c[i]->reason,
                                (unsigned long long)c[i]->total);
        any = 1;
    }
    if (any && off < len)
        snprintf(buf + off, len - off, ")");
}

static void pct(double v, char *buf, size_t n)
{
    snprintf(buf, n, "%.2f%%", v * 100.0);
}

static void latency(double s, char *buf, size_t n)
{
    if (s <= 0)
        snprintf(buf, n, "-");
    else if (s < 1.0)
        snprintf(buf, n, "%.1fms", s * 1000.0);
    else
        snprintf(buf, n, "%.2fs", s);
}

static void print_table(const Remora__V1__StatsResponse *r)
{
    if (r->n_rows == 0) {
        printf("no traffic reported yet\n");
        return;
    }
    bool any_idle = false;
    rm__table_t t;
    rm__table_init(&t, 17, "SERVICE", "VERSION", "ROUTE", "RPS", "REQUESTS", "SUCCESS", "EFFECTIVE",
                   "RETRIES", "RETRY-OK", "SKIPPED", "REDIRECTED", "SHADOW", "SHADOW-DROP",
                   "OVERFLOW", "EJECT", "P50/P99", "SHARE/WEIGHT");
    for (size_t i = 0; i < r->n_rows; i++) {
        const Remora__V1__VersionStats *v = r->rows[i];
        char svc[300], rps[32], req[24], act[16], eff[16], retr[256], rok[24], skip[256], red[24],
            sh[24], shd[24], ov[24], ej[24], p50[16], p99[16], lat[40], obs[16], cfg[16], share[40];
        if (v->namespace_ && *v->namespace_ && strcmp(v->namespace_, "default") != 0)
            snprintf(svc, sizeof(svc), "%s.%s", v->service, v->namespace_);
        else
            snprintf(svc, sizeof(svc), "%s", v->service);
        /* Idle in the window but not in total: the success rates and percentiles on this row
         * are over all time (see controlplane/README.md, stats); the star says so. */
        bool idle = v->requests_per_second == 0 && v->requests_total > 0;
        any_idle = any_idle || idle;
        snprintf(rps, sizeof(rps), "%.1f%s", v->requests_per_second, idle ? "*" : "");
        snprintf(req, sizeof(req), "%llu", (unsigned long long)v->requests_total);
        pct(v->actual_success_rate, act, sizeof(act));
        pct(v->effective_success_rate, eff, sizeof(eff));
        counts_cell(v->retries, v->n_retries, retr, sizeof(retr));
        snprintf(rok, sizeof(rok), "%llu", (unsigned long long)v->retry_successes);
        counts_cell(v->retries_skipped, v->n_retries_skipped, skip, sizeof(skip));
        snprintf(red, sizeof(red), "%llu", (unsigned long long)v->drain_redirects);
        snprintf(sh, sizeof(sh), "%llu", (unsigned long long)v->shadowed);
        snprintf(shd, sizeof(shd), "%llu", (unsigned long long)v->shadow_dropped);
        snprintf(ov, sizeof(ov), "%llu", (unsigned long long)v->overflows);
        snprintf(ej, sizeof(ej), "%llu", (unsigned long long)v->ejections);
        latency(v->p50_seconds, p50, sizeof(p50));
        latency(v->p99_seconds, p99, sizeof(p99));
        snprintf(lat, sizeof(lat), "%s/%s", p50, p99);
        pct(v->observed_share, obs, sizeof(obs));
        if (v->configured_share > 0)
            pct(v->configured_share, cfg, sizeof(cfg));
        else
            snprintf(cfg, sizeof(cfg), "-");
        snprintf(share, sizeof(share), "%s / %s", obs, cfg);
        rm__table_row(&t, svc, *v->version ? v->version : NULL, *v->route ? v->route : NULL, rps,
                      req, act, eff, retr, rok, skip, red, sh, shd, ov, ej, lat, share);
    }
    rm__table_print(&t, stdout);
    rm__table_free(&t);
    printf("SUCCESS is per attempt, EFFECTIVE after retries; rates over the last %.0fs\n",
           (double)r->window_ms / 1000.0);
    if (any_idle)
        printf("* no requests in the window: that row's SUCCESS, EFFECTIVE and P50/P99 are over "
               "all time\n");
}

static json_t *counts_json(Remora__V1__RetryCount **c, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, c[i]->reason, json_integer((json_int_t)c[i]->total));
    return o;
}

static void print_json(const Remora__V1__StatsResponse *r, int compact)
{
    json_t *rows = json_array();
    for (size_t i = 0; i < r->n_rows; i++) {
        const Remora__V1__VersionStats *v = r->rows[i];
        json_t *o = json_pack(
            "{s:s,s:s,s:s,s:s,s:f,s:I,s:f,s:f,s:o,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:f}",
            "service", v->service, "namespace", v->namespace_, "version", v->version, "route",
            v->route, "requests_per_second", v->requests_per_second, "requests_total",
            (json_int_t)v->requests_total, "actual_success_rate", v->actual_success_rate,
            "effective_success_rate", v->effective_success_rate, "retries",
            counts_json(v->retries, v->n_retries), "retry_successes",
            (json_int_t)v->retry_successes, "retries_skipped",
            counts_json(v->retries_skipped, v->n_retries_skipped), "drain_redirects",
            (json_int_t)v->drain_redirects, "shadowed", (json_int_t)v->shadowed, "shadow_dropped",
            (json_int_t)v->shadow_dropped, "overflows", (json_int_t)v->overflows, "ejections",
            (json_int_t)v->ejections, "p50_seconds", v->p50_seconds, "p99_seconds", v->p99_seconds,
            "observed_share", v->observed_share, "configured_share", v->configured_share);
        json_array_append_new(rows, o);
    }
    json_t *root = json_pack("{s:I,s:o}", "window_ms", (json_int_t)r->window_ms, "rows", rows);
    json_dumpf(root, stdout, compact ? JSON_COMPACT : JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(root);
}

int rm__cmd_stats(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv)
{
    static const rm__opt_spec_t spec[] = {
        {"route", 0, 1},   {"namespace", 'n', 1}, {"output", 'o', 1}, {"window", 0, 1},
        {"watch", 'w', 0}, {"interval", 0, 1},    {"count", 0, 1},    {NULL, 0, 0}};
    static const char *const formats[] = {"table", "json", NULL};
    rm__args_t a;
    int rc = rm__args_parse(cli, cmd, spec, argc, argv, 1, &a);
    if (rc != 0)
        return rc == RM__ARGS_HELP ? RM__EXIT_OK : rc;
    int fmt = rm__output_parse(rm__arg(&a, O_OUTPUT), formats);
    if (fmt < 0)
        return RM__EXIT_REJECTED;
    uint64_t window = 0, interval = 2000;
    if (rm__arg(&a, O_WINDOW) && rm__duration_arg("--window", rm__arg(&a, O_WINDOW), &window) < 0)
        return RM__EXIT_REJECTED;
    if (rm__arg(&a, O_INTERVAL) &&
        (rm__duration_arg("--interval", rm__arg(&a, O_INTERVAL), &interval) < 0))
        return RM__EXIT_REJECTED;
    if (interval < 100)
        interval = 100;
    long count = rm__arg(&a, O_WATCH) ? 0 : 1; /* 0: until interrupted */
    if (rm__arg(&a, O_COUNT) != NULL) {
        char *end;
        count = strtol(rm__arg(&a, O_COUNT), &end, 10);
        if (*end != '\0' || count <= 0) {
            fprintf(stderr, "meshctl stats: --count wants a positive number, not \"%s\"\n",
                    rm__arg(&a, O_COUNT));
            return RM__EXIT_REJECTED;
        }
    }
    int watch = rm__arg(&a, O_WATCH) != NULL;
    int tty = isatty(STDOUT_FILENO);

    Remora__V1__Duration wd = REMORA__V1__DURATION__INIT;
    Remora__V1__StatsRequest req = REMORA__V1__STATS_REQUEST__INIT;
    req.service = a.npos ? (char *)a.pos[0] : (char *)"";
    req.route = rm__arg(&a, O_ROUTE) ? (char *)rm__arg(&a, O_ROUTE) : (char *)"";
    req.namespace_ = rm__arg(&a, O_NAMESPACE) ? (char *)rm__arg(&a, O_NAMESPACE) : (char *)"";
    if (window > 0) {
        wd.has_millis = 1;
        wd.millis = window;
        req.window = &wd;
    }
    for (long i = 0; count == 0 || i < count; i++) {
        if (i > 0) {
            struct timespec ts = {(time_t)(interval / 1000u), (long)(interval % 1000u) * 1000000L};
            nanosleep(&ts, NULL);
        }
        Remora__V1__StatsResponse *resp = NULL;
        rc = rm__rpc(cli, "Stats", &req.base, &remora__v1__stats_response__descriptor, 0,
                     (ProtobufCMessage **)&resp);
        if (rc != 0)
            return rc;
        if (watch) {
            struct timeval tv;
            gettimeofday(&tv, NULL);
            char when[32];
            rm__wall_time((uint64_t)tv.tv_sec * 1000u + 1, when, sizeof(when));
            /* On a terminal, redraw in place; piped, append so the output is a log. */
            if (tty)
                printf("\033[H\033[2J");
            if (fmt == 0)
                printf("%s--- %s UTC (every %llums)\n", tty ? "" : (i ? "\n" : ""), when,
                       (unsigned long long)interval);
        }
        if (fmt == 1)
            print_json(resp, watch && !tty);
        else
            print_table(resp);
        fflush(stdout);
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
    return RM__EXIT_OK;
}
