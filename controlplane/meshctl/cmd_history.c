/* controlplane/meshctl/cmd_history.c — `meshctl history`: stored config versions, newest first,
 * with when and what changed.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "controlplane/meshctl/meshctl.h"
#include "remora/v1/admin.pb-c.h"

enum { O_LIMIT, O_OUTPUT };

int rm__cmd_history(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv)
{
    static const rm__opt_spec_t spec[] = {{"limit", 0, 1}, {"output", 'o', 1}, {NULL, 0, 0}};
    static const char *const formats[] = {"table", "json", NULL};
    rm__args_t a;
    int rc = rm__args_parse(cli, cmd, spec, argc, argv, 0, &a);
    if (rc != 0)
        return rc == RM__ARGS_HELP ? RM__EXIT_OK : rc;
    int fmt = rm__output_parse(rm__arg(&a, O_OUTPUT), formats);
    if (fmt < 0)
        return RM__EXIT_REJECTED;
    Remora__V1__HistoryRequest req = REMORA__V1__HISTORY_REQUEST__INIT;
    if (rm__arg(&a, O_LIMIT) != NULL) {
        char *end;
        unsigned long v = strtoul(rm__arg(&a, O_LIMIT), &end, 10);
        if (*end != '\0' || v == 0 || v > 100000) {
            fprintf(stderr,
                    "meshctl history: --limit wants a number from 1 to 100000, not \"%s\"\n",
                    rm__arg(&a, O_LIMIT));
            return RM__EXIT_REJECTED;
        }
        req.limit = (uint32_t)v;
    }
    Remora__V1__HistoryResponse *resp = NULL;
    rc = rm__rpc(cli, "History", &req.base, &remora__v1__history_response__descriptor, 0,
                 (ProtobufCMessage **)&resp);
    if (rc != 0)
        return rc;
    if (fmt == 1) {
        json_t *arr = json_array();
        for (size_t i = 0; i < resp->n_entries; i++) {
            const Remora__V1__HistoryEntry *e = resp->entries[i];
            json_array_append_new(arr,
                                  json_pack("{s:I,s:I,s:s,s:b}", "version", (json_int_t)e->version,
                                            "created_ms", (json_int_t)e->created_ms, "summary",
                                            e->summary, "current", i == 0));
        }
        json_dumpf(arr, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(arr);
    } else if (resp->n_entries == 0) {
        printf("no config versions yet\n");
    } else {
        rm__table_t t;
        rm__table_init(&t, 3, "VERSION", "CREATED (UTC)", "CHANGE");
        for (size_t i = 0; i < resp->n_entries; i++) {
            const Remora__V1__HistoryEntry *e = resp->entries[i];
            char v[40], when[32];
            snprintf(v, sizeof(v), "%llu%s", (unsigned long long)e->version, i == 0 ? " *" : "");
            rm__wall_time(e->created_ms, when, sizeof(when));
            rm__table_row(&t, v, when, *e->summary ? e->summary : NULL);
        }
        rm__table_print(&t, stdout);
        rm__table_free(&t);
        printf("(* current)\n");
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return RM__EXIT_OK;
}
