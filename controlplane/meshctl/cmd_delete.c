/* controlplane/meshctl/cmd_delete.c — `meshctl delete KIND NAME`: removes one document and
 * stores the rest as a new version (the control plane refuses when the rest would be invalid).
 */
#include <stdio.h>
#include <string.h>

#include "controlplane/meshctl/meshctl.h"
#include "remora/v1/admin.pb-c.h"

enum { O_NAMESPACE };

int rm__cmd_delete(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv)
{
    static const rm__opt_spec_t spec[] = {{"namespace", 'n', 1}, {NULL, 0, 0}};
    rm__args_t a;
    int rc = rm__args_parse(cli, cmd, spec, argc, argv, 2, &a);
    if (rc != 0)
        return rc == RM__ARGS_HELP ? RM__EXIT_OK : rc;
    if (a.npos < 2) {
        fputs("meshctl delete: needs KIND and NAME, e.g. 'meshctl delete route reviews-rollout'\n",
              stderr);
        return RM__EXIT_REJECTED;
    }
    const char *kind = rm__kind_parse(a.pos[0]);
    if (kind == NULL) {
        rm__unknown("kind", a.pos[0], rm__kind_words);
        return RM__EXIT_REJECTED;
    }
    const char *ns = rm__arg(&a, O_NAMESPACE) ? rm__arg(&a, O_NAMESPACE) : "default";
    Remora__V1__DeleteRequest req = REMORA__V1__DELETE_REQUEST__INIT;
    req.kind = (char *)kind;
    req.name = (char *)a.pos[1];
    req.namespace_ = (char *)ns;
    Remora__V1__DeleteResponse *resp = NULL;
    rc = rm__rpc(cli, "Delete", &req.base, &remora__v1__delete_response__descriptor, 0,
                 (ProtobufCMessage **)&resp);
    if (rc != 0)
        return rc;
    /* "routes" -> "route" for the message. */
    printf("%.*s %s/%s deleted\nconfig version %llu\n", (int)strlen(kind) - 1, kind, ns, a.pos[1],
           (unsigned long long)resp->version);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return RM__EXIT_OK;
}
