/* controlplane/meshctl/cmd_get.c — `meshctl get`: stored Services, Routes and CircuitBreakers as
 * a table (key facts per row) or as YAML/JSON that `meshctl apply` takes back unchanged.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config/config.h"
#include "common/duration.h"
#include "controlplane/meshctl/meshctl.h"
#include "remora/v1/admin.pb-c.h"

enum { O_OUTPUT, O_NAMESPACE, O_VERSION };

/* A growing string for table cells. */
typedef struct sb {
    char *buf;
    size_t len, cap;
} sb_t;

static void sb_add(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sb_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf ? b->buf + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n + 64;
        b->buf = rm__xrealloc(b->buf, b->cap);
    }
}

/* The text, or NULL (a "-" cell) when empty. */
static const char *sb_str(sb_t *b)
{
    return b->len > 0 ? b->buf : NULL;
}

static void sb_reset(sb_t *b)
{
    b->len = 0;
    if (b->buf)
        b->buf[0] = '\0';
}

static void services_table(const Remora__V1__ConfigSet *set)
{
    rm__table_t t;
    sb_t hosts = {0}, eps = {0};
    rm__table_init(&t, 6, "NAME", "NAMESPACE", "PORT", "VIP", "HOSTS", "ENDPOINTS");
    for (size_t i = 0; i < set->n_services; i++) {
        const Remora__V1__Service *s = set->services[i];
        char port[12];
        snprintf(port, sizeof(port), "%u", s->port);
        sb_reset(&hosts);
        sb_reset(&eps);
        for (size_t h = 0; h < s->n_hosts; h++)
            sb_add(&hosts, "%s%s", h ? "," : "", s->hosts[h]);
        for (size_t e = 0; e < s->n_endpoints; e++)
            sb_add(&eps, "%s%s=%s", e ? " " : "",
                   s->endpoints[e]->version ? s->endpoints[e]->version : "-",
                   s->endpoints[e]->address ? s->endpoints[e]->address : "");
        rm__table_row(&t, s->name, s->namespace_, port, s->vip, sb_str(&hosts), sb_str(&eps));
    }
    rm__table_print(&t, stdout);
    rm__table_free(&t);
    free(hosts.buf);
    free(eps.buf);
}

static void match_summary(const Remora__V1__Match *m, sb_t *b)
{
    if (m == NULL)
        return;
    int first = 1;
#define SEP() (first ? (first = 0, "") : " ")
    for (size_t i = 0; i < m->n_headers; i++)
        sb_add(b, "%sheader:%s", SEP(), m->headers[i]->key);
    for (size_t i = 0; i < m->n_cookies; i++)
        sb_add(b, "%scookie:%s", SEP(), m->cookies[i]->key);
    for (size_t i = 0; i < m->n_query; i++)
        sb_add(b, "%squery:%s", SEP(), m->query[i]->key);
    if (m->path != NULL) {
        const Remora__V1__PathMatch *p = m->path;
        const char *v = p->kind_case == REMORA__V1__PATH_MATCH__KIND_EXACT    ? p->exact
                        : p->kind_case == REMORA__V1__PATH_MATCH__KIND_PREFIX ? p->prefix
                                                                              : p->regex;
        sb_add(b, "%spath:%s", SEP(), v ? v : "");
    }
    if (m->method != NULL)
        sb_add(b, "%smethod:%s", SEP(), m->method);
#undef SEP
}

/* One row per rule: the route's name on its first row only, so rules read as a list. */
static void routes_table(const Remora__V1__ConfigSet *set)
{
    rm__table_t t;
    sb_t match = {0}, dest = {0}, extra = {0};
    rm__table_init(&t, 7, "NAME", "NAMESPACE", "SERVICE", "RULE", "MATCH", "DESTINATIONS",
                   "POLICY");
    for (size_t i = 0; i < set->n_routes; i++) {
        const Remora__V1__Route *r = set->routes[i];
        for (size_t k = 0; k < r->n_rules || (k == 0 && r->n_rules == 0); k++) {
            const Remora__V1__Rule *rule = r->n_rules ? r->rules[k] : NULL;
            char rname[160];
            sb_reset(&match);
            sb_reset(&dest);
            sb_reset(&extra);
            if (rule == NULL) {
                rm__table_row(&t, r->name, r->namespace_, r->service, "-", "-", "-", "-");
                break;
            }
            snprintf(rname, sizeof(rname), "%zu:%s", k + 1, rule->name ? rule->name : "");
            match_summary(rule->match, &match);
            for (size_t d = 0; d < rule->n_destinations; d++)
                sb_add(&dest, "%s%s=%u", d ? " " : "", rule->destinations[d]->version,
                       rule->destinations[d]->weight);
            if (rule->sticky_on != NULL)
                sb_add(&extra, "sticky:%s ",
                       rule->sticky_on->key_case == REMORA__V1__STICKY_ON__KEY_HEADER
                           ? rule->sticky_on->header
                           : rule->sticky_on->cookie);
            if (rule->mirror != NULL)
                sb_add(&extra, "mirror:%s@%u%% ",
                       rule->mirror->version ? rule->mirror->version : rule->mirror->service,
                       rule->mirror->percent);
            if (rule->timeout != NULL) {
                char buf[RM_DURATION_BUF];
                rm_duration_format(rule->timeout->millis, buf, sizeof(buf));
                sb_add(&extra, "timeout:%s ", buf);
            }
            if (rule->retries != NULL)
                sb_add(&extra, "retries:%u", rule->retries->attempts);
            if (extra.len > 0 && extra.buf[extra.len - 1] == ' ')
                extra.buf[--extra.len] = '\0';
            rm__table_row(&t, k == 0 ? r->name : "", k == 0 ? r->namespace_ : "",
                          k == 0 ? r->service : "", rname, match.len ? sb_str(&match) : "*",
                          sb_str(&dest), sb_str(&extra));
        }
    }
    rm__table_print(&t, stdout);
    rm__table_free(&t);
    free(match.buf);
    free(dest.buf);
    free(extra.buf);
}

static void cbs_table(const Remora__V1__ConfigSet *set)
{
    rm__table_t t;
    rm__table_init(&t, 6, "NAME", "NAMESPACE", "SERVICE", "VERSION",
                   "LIMITS (conn/pending/req/retries)",
                   "OUTLIERS (5xx/gateway/interval/ejection/max%)");
    for (size_t i = 0; i < set->n_circuit_breakers; i++) {
        const Remora__V1__CircuitBreaker *c = set->circuit_breakers[i];
        char lim[96] = "-", out[128] = "-";
        if (c->limits != NULL)
            snprintf(lim, sizeof(lim), "%u/%u/%u/%u", c->limits->max_connections,
                     c->limits->max_pending_requests, c->limits->max_requests,
                     c->limits->max_retries);
        if (c->outlier_detection != NULL) {
            const Remora__V1__OutlierDetection *o = c->outlier_detection;
            char iv[RM_DURATION_BUF] = "-", ej[RM_DURATION_BUF] = "-";
            if (o->interval != NULL)
                rm_duration_format(o->interval->millis, iv, sizeof(iv));
            if (o->base_ejection_time != NULL)
                rm_duration_format(o->base_ejection_time->millis, ej, sizeof(ej));
            snprintf(out, sizeof(out), "%u/%u/%s/%s/%u%%", o->consecutive_5xx,
                     o->consecutive_gateway_errors, iv, ej, o->max_ejection_percent);
        }
        rm__table_row(&t, c->name, c->namespace_, c->service, c->version ? c->version : "all", lim,
                      out);
    }
    rm__table_print(&t, stdout);
    rm__table_free(&t);
}

int rm__cmd_get(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv)
{
    static const rm__opt_spec_t spec[] = {
        {"output", 'o', 1}, {"namespace", 'n', 1}, {"config-version", 0, 1}, {NULL, 0, 0}};
    static const char *const formats[] = {"table", "yaml", "json", NULL};
    rm__args_t a;
    int rc = rm__args_parse(cli, cmd, spec, argc, argv, 2, &a);
    if (rc != 0)
        return rc == RM__ARGS_HELP ? RM__EXIT_OK : rc;
    if (a.npos == 0) {
        fputs("meshctl get: which kind? routes, services or circuitbreakers\n"
              "  see 'meshctl get -h'\n",
              stderr);
        return RM__EXIT_REJECTED;
    }
    const char *kind = rm__kind_parse(a.pos[0]);
    if (kind == NULL) {
        rm__unknown("kind", a.pos[0], rm__kind_words);
        return RM__EXIT_REJECTED;
    }
    int fmt = rm__output_parse(rm__arg(&a, O_OUTPUT), formats);
    if (fmt < 0)
        return RM__EXIT_REJECTED;
    Remora__V1__GetRequest req = REMORA__V1__GET_REQUEST__INIT;
    req.kind = (char *)kind;
    req.name = a.npos > 1 ? (char *)a.pos[1] : (char *)"";
    req.namespace_ = rm__arg(&a, O_NAMESPACE) ? (char *)rm__arg(&a, O_NAMESPACE) : (char *)"";
    if (rm__arg(&a, O_VERSION) != NULL) {
        char *end;
        req.version = strtoull(rm__arg(&a, O_VERSION), &end, 10);
        if (*end != '\0' || req.version == 0) {
            fprintf(stderr, "meshctl get: --config-version wants a version number, not \"%s\"\n",
                    rm__arg(&a, O_VERSION));
            return RM__EXIT_REJECTED;
        }
    }
    Remora__V1__GetResponse *resp = NULL;
    rc = rm__rpc(cli, "Get", &req.base, &remora__v1__get_response__descriptor, 0,
                 (ProtobufCMessage **)&resp);
    if (rc != 0)
        return rc;
    Remora__V1__ConfigSet empty = REMORA__V1__CONFIG_SET__INIT;
    const Remora__V1__ConfigSet *set = resp->config != NULL ? resp->config : &empty;
    size_t n = strcmp(kind, "services") == 0 ? set->n_services
               : strcmp(kind, "routes") == 0 ? set->n_routes
                                             : set->n_circuit_breakers;
    if (fmt == 0) {
        if (n == 0)
            printf("no %s in config version %llu\n", kind, (unsigned long long)resp->version);
        else if (strcmp(kind, "services") == 0)
            services_table(set);
        else if (strcmp(kind, "routes") == 0)
            routes_table(set);
        else
            cbs_table(set);
    } else {
        char *text = fmt == 1 ? rm_config_to_yaml(set) : rm_config_to_json(set);
        if (text == NULL) {
            fputs("meshctl get: cannot print the config (out of memory)\n", stderr);
            rc = RM__EXIT_REJECTED;
        } else {
            fputs(text, stdout);
            if (*text && text[strlen(text) - 1] != '\n')
                fputc('\n', stdout);
            free(text);
        }
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return rc;
}
