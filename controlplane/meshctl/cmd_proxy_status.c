/* controlplane/meshctl/cmd_proxy_status.c — `meshctl proxy-status`: every connected sidecar, what
 * it receives (its egress scope, or "all"), the config version it runs and whether that is the
 * current one (SYNCED / STALE / NACKED).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "controlplane/meshctl/meshctl.h"
#include "remora/v1/admin.pb-c.h"

enum { O_OUTPUT };

static void print_json(const Remora__V1__ProxyStatusResponse *r)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < r->n_sidecars; i++) {
        const Remora__V1__SidecarAck *s = r->sidecars[i];
        json_array_append_new(
            arr, json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:I,s:s}", "pod", s->pod, "namespace",
                           s->namespace_, "service", s->service, "version", s->version,
                           "config_version", (json_int_t)s->config_version, "state", s->state,
                           "error", s->error, "last_seen_ms", (json_int_t)s->last_seen_ms, "scope",
                           *s->scope ? s->scope : "all"));
    }
    json_t *root =
        json_pack("{s:I,s:o}", "current_version", (json_int_t)r->current_version, "sidecars", arr);
    json_dumpf(root, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(root);
}

int rm__cmd_proxy_status(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv)
{
    static const rm__opt_spec_t spec[] = {{"output", 'o', 1}, {NULL, 0, 0}};
    static const char *const formats[] = {"table", "json", NULL};
    rm__args_t a;
    int rc = rm__args_parse(cli, cmd, spec, argc, argv, 0, &a);
    if (rc != 0)
        return rc == RM__ARGS_HELP ? RM__EXIT_OK : rc;
    int fmt = rm__output_parse(rm__arg(&a, O_OUTPUT), formats);
    if (fmt < 0)
        return RM__EXIT_REJECTED;
    Remora__V1__ProxyStatusRequest req = REMORA__V1__PROXY_STATUS_REQUEST__INIT;
    Remora__V1__ProxyStatusResponse *resp = NULL;
    rc = rm__rpc(cli, "ProxyStatus", &req.base, &remora__v1__proxy_status_response__descriptor, 0,
                 (ProtobufCMessage **)&resp);
    if (rc != 0)
        return rc;
    if (fmt == 1) {
        print_json(resp);
    } else {
        printf("current config version %llu; %zu sidecar%s connected\n",
               (unsigned long long)resp->current_version, resp->n_sidecars,
               resp->n_sidecars == 1 ? "" : "s");
        if (resp->n_sidecars > 0) {
            rm__table_t t;
            rm__table_init(&t, 9, "POD", "NAMESPACE", "SERVICE", "VERSION", "SCOPE", "CONFIG",
                           "STATUS", "LAST SEEN", "ERROR");
            for (size_t i = 0; i < resp->n_sidecars; i++) {
                const Remora__V1__SidecarAck *s = resp->sidecars[i];
                char cv[24], seen[32];
                snprintf(cv, sizeof(cv), "%llu", (unsigned long long)s->config_version);
                rm__ago(s->last_seen_ms, seen, sizeof(seen));
                rm__table_row(&t, *s->pod ? s->pod : NULL, s->namespace_,
                              *s->service ? s->service : NULL, *s->version ? s->version : NULL,
                              *s->scope ? s->scope : "all", cv, s->state, seen,
                              *s->error ? s->error : "");
            }
            rm__table_print(&t, stdout);
            rm__table_free(&t);
        }
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return RM__EXIT_OK;
}
