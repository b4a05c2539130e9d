/* controlplane/meshctl/cmd_rollback.c — `meshctl rollback [VERSION]`: stores a new version equal
 * to an earlier one (default: the one before the current), which the control plane pushes.
 */
#include <stdio.h>
#include <stdlib.h>

#include "controlplane/meshctl/meshctl.h"
#include "remora/v1/admin.pb-c.h"

int rm__cmd_rollback(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv)
{
    static const rm__opt_spec_t spec[] = {{NULL, 0, 0}};
    rm__args_t a;
    int rc = rm__args_parse(cli, cmd, spec, argc, argv, 1, &a);
    if (rc != 0)
        return rc == RM__ARGS_HELP ? RM__EXIT_OK : rc;
    Remora__V1__RollbackRequest req = REMORA__V1__ROLLBACK_REQUEST__INIT;
    if (a.npos == 1) {
        char *end;
        req.to_version = strtoull(a.pos[0], &end, 10);
        if (*end != '\0' || req.to_version == 0) {
            fprintf(stderr,
                    "meshctl rollback: VERSION must be a version number (see 'meshctl history'), "
                    "not \"%s\"\n",
                    a.pos[0]);
            return RM__EXIT_REJECTED;
        }
    }
    Remora__V1__RollbackResponse *resp = NULL;
    rc = rm__rpc(cli, "Rollback", &req.base, &remora__v1__rollback_response__descriptor, 0,
                 (ProtobufCMessage **)&resp);
    if (rc != 0)
        return rc;
    printf("rolled back to the config of version %llu\nconfig version %llu\n",
           (unsigned long long)resp->restored_from, (unsigned long long)resp->version);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return RM__EXIT_OK;
}
