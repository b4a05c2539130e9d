/* dataplane/proxy/access_log.c — JSON access log lines, built with jansson (no hand-made JSON). */
#include "dataplane/proxy/access_log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int rm_access_log_open(rm_proxy_t *p, const char *path)
{
    if (path == NULL)
        return 0;
    if (strcmp(path, "-") == 0) {
        p->access_log = stdout;
        return 0;
    }
    p->access_log = fopen(path, "a");
    return p->access_log ? 0 : -errno;
}

void rm_access_log_write(const rm_exchange_t *ex, double seconds)
{
    rm_proxy_t *p = ex->session->worker->proxy;
    if (p->access_log == NULL)
        return;
    static const char *const dirs[] = {"outbound", "inbound", "admin"};
    json_t *o = json_object();
    if (o == NULL)
        return;
    json_object_set_new(o, "time", json_real((double)time(NULL)));
    json_object_set_new(o, "direction", json_string(dirs[ex->session->kind]));
    json_object_set_new(o, "request_id", json_string(ex->request_id));
    json_object_set_new(o, "method",
                        json_stringn(ex->req.method_name.ptr ? ex->req.method_name.ptr : "",
                                     ex->req.method_name.len));
    json_object_set_new(o, "service", json_string(ex->service_name));
    json_object_set_new(o, "route", json_string(ex->route_name));
    json_object_set_new(
        o, "rule",
        json_string(ex->svc != NULL && ex->decision.rule_name ? ex->decision.rule_name : ""));
    json_object_set_new(o, "version", json_string(ex->version_name));
    json_object_set_new(o, "endpoint", json_string(ex->endpoint_address));
    json_object_set_new(o, "attempts", json_integer(ex->attempts));
    json_object_set_new(o, "status", json_integer(ex->status));
    json_object_set_new(o, "duration_ms", json_real(seconds * 1000.0));
    json_object_set_new(o, "client", json_string(ex->session->peer_ip));
    char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (line == NULL)
        return;
    /* One fputs per line under stdio's lock: lines from several workers never interleave. */
    flockfile(p->access_log);
    fputs(line, p->access_log);
    fputc('\n', p->access_log);
    fflush(p->access_log);
    funlockfile(p->access_log);
    free(line);
}
