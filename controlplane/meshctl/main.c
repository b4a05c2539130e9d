/* controlplane/meshctl/main.c — meshctl's entry point: global flags (--server / $MESH_SERVER,
 * --help, --version), the command table with each command's help, and "did you mean" for an
 * unknown command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/version.h"
#include "controlplane/meshctl/meshctl.h"

#define SERVER_HELP                                                                                \
    "  --server HOST:PORT   the control plane (default $MESH_SERVER, else " RM__DEFAULT_SERVER     \
    ")\n"                                                                                          \
    "  -h, --help           this help\n"

const rm__cmd_t rm__commands[] = {
    {"apply", "validate config documents and store them as a new version",
     "Usage: meshctl apply -f FILE|- [--wait] [--timeout D] [--dry-run]\n"
     "\n"
     "Reads YAML or JSON documents (Service, Route, CircuitBreaker; several per file), checks\n"
     "them locally (syntax, fields, types: errors name file:line:col), then sends them to the\n"
     "control plane, which validates them together with the stored config and stores a new\n"
     "version, all or nothing. Prints the version and, per document, created/updated/unchanged.\n"
     "\n"
     "  -f, --filename FILE  the documents; '-' reads stdin\n"
     "  -w, --wait           wait until every connected sidecar has ACKed the new version;\n"
     "                       prints each sidecar's answer (NACKs with their error)\n"
     "  --timeout D          how long --wait waits (default 30s)\n"
     "  --dry-run            validate and show what would change; store nothing\n" SERVER_HELP "\n"
     "Exit: 0 applied (and, with --wait, ACKed everywhere); 1 rejected, NACKed or wait timed out;\n"
     "2 control plane unreachable.\n"
     "\n"
     "Examples:\n"
     "  meshctl apply -f reviews.yaml\n"
     "  meshctl apply -f canary.yaml --wait --timeout 1m\n"
     "  cat route.json | meshctl apply -f - --dry-run\n",
     rm__cmd_apply},
    {"get", "show stored config: routes, services or circuitbreakers",
     "Usage: meshctl get routes|services|circuitbreakers [NAME] [-o table|yaml|json]\n"
     "                   [-n NAMESPACE] [--config-version N]\n"
     "\n"
     "  -o, --output FMT     table (default), yaml or json; yaml and json can be applied again\n"
     "  -n, --namespace NS   only this namespace\n"
     "  --config-version N   as stored in config version N (default: the current one)\n" SERVER_HELP
     "\n"
     "Examples:\n"
     "  meshctl get routes\n"
     "  meshctl get route reviews-rollout -o yaml\n"
     "  meshctl get services -o json > services.json\n",
     rm__cmd_get},
    {"delete", "delete one Service, Route or CircuitBreaker",
     "Usage: meshctl delete KIND NAME [-n NAMESPACE]\n"
     "\n"
     "KIND is route, service or circuitbreaker (plurals work too). The control plane refuses a\n"
     "delete that would leave the config invalid (e.g. a Service that a Route still uses).\n"
     "\n"
     "  -n, --namespace NS   the document's namespace (default \"default\")\n" SERVER_HELP "\n"
     "Examples:\n"
     "  meshctl delete route reviews-rollout\n"
     "  meshctl delete circuitbreaker reviews-limits -n shop\n",
     rm__cmd_delete},
    {"history", "list config versions, newest first",
     "Usage: meshctl history [--limit N] [-o table|json]\n"
     "\n"
     "  --limit N            at most N versions (default 50)\n"
     "  -o, --output FMT     table (default) or json\n" SERVER_HELP "\n"
     "Examples:\n"
     "  meshctl history\n"
     "  meshctl history --limit 5 -o json\n",
     rm__cmd_history},
    {"rollback", "make an earlier config version current again",
     "Usage: meshctl rollback [VERSION]\n"
     "\n"
     "Stores a new version whose config equals VERSION's (default: the version before the\n"
     "current one) and pushes it to every sidecar. History is never rewritten.\n"
     "\n" SERVER_HELP "\n"
     "Examples:\n"
     "  meshctl rollback\n"
     "  meshctl rollback 12\n",
     rm__cmd_rollback},
    {"stats", "traffic, success rates, retries and splits per service/version/route",
     "Usage: meshctl stats [SERVICE] [--route NAME] [-n NAMESPACE] [-o table|json]\n"
     "                     [--window D] [--watch] [--interval D] [--count N]\n"
     "\n"
     "One row per service, version and route: requests/s, actual success (per attempt),\n"
     "effective success (after retries), retries by reason, retries that succeeded, retries\n"
     "skipped by reason, shadowed requests and shadow drops, overflows, ejections, p50/p99\n"
     "latency, and the observed share of each version beside its configured weight.\n"
     "\n"
     "  --route NAME         only this route\n"
     "  -n, --namespace NS   only this namespace\n"
     "  -o, --output FMT     table (default) or json\n"
     "  --window D           rate window (default 10s)\n"
     "  -w, --watch          refresh: in place on a terminal, appended when piped\n"
     "  --interval D         time between refreshes (default 2s)\n"
     "  --count N            stop after N refreshes (default: until interrupted)\n" SERVER_HELP "\n"
     "Examples:\n"
     "  meshctl stats\n"
     "  meshctl stats reviews --route reviews-rollout --watch\n"
     "  meshctl stats -o json\n",
     rm__cmd_stats},
    {"proxy-status", "every connected sidecar and whether it runs the current config",
     "Usage: meshctl proxy-status [-o table|json]\n"
     "\n"
     "Per sidecar: pod, namespace, service, version, the config version it runs, and SYNCED\n"
     "(runs the current version), STALE (older, or not answered yet) or NACKED (rejected the\n"
     "config; the error is shown), and when it was last heard from.\n"
     "\n"
     "  -o, --output FMT     table (default) or json\n" SERVER_HELP "\n"
     "Examples:\n"
     "  meshctl proxy-status\n"
     "  meshctl proxy-status -o json\n",
     rm__cmd_proxy_status},
    {"inject", "add the sidecar to Kubernetes manifests offline (as the webhook does)",
     "Usage: meshctl inject -f MANIFEST [--sidecar-mode native|classic] [--control-plane H:P]\n"
     "\n"
     "Applies the admission webhook's injection offline to every Pod, Deployment, ReplicaSet,\n"
     "StatefulSet, DaemonSet, Job and CronJob of a multi-document manifest; other documents\n"
     "pass through. Prints the documents as JSON (valid YAML), '---' between them.\n"
     "\n"
     "  -f, --filename FILE    the manifest ('-' reads stdin)\n"
     "  --sidecar-mode MODE    native (Kubernetes 1.29+, default) or classic\n"
     "  --control-plane H:P    where the sidecars find remora-control\n"
     "\n"
     "Examples:\n"
     "  meshctl inject -f deploy/example-app.yaml | kubectl apply -f -\n"
     "  meshctl inject -f app.yaml --sidecar-mode classic\n",
     rm__cmd_inject},
};
const size_t rm__commands_count = sizeof(rm__commands) / sizeof(rm__commands[0]);

static void usage(FILE *out)
{
    fputs("Usage: meshctl [--server HOST:PORT] COMMAND [ARGS]\n"
          "\n"
          "The Remora mesh CLI: push routing config, watch rollouts and retry stats.\n"
          "\n"
          "Commands:\n",
          out);
    for (size_t i = 0; i < rm__commands_count; i++)
        fprintf(out, "  %-14s %s\n", rm__commands[i].name, rm__commands[i].summary);
    fputs("\n"
          "Global flags:\n" SERVER_HELP "  --version            print the version\n"
          "\n"
          "Exit codes: 0 success, 1 rejected input (with the reason), 2 cannot reach the control\n"
          "plane. 'meshctl COMMAND -h' shows a command's flags and examples.\n",
          out);
}

int main(int argc, char **argv)
{
    rm__cli_t cli = {.timeout_ms = RM__DEFAULT_TIMEOUT_MS};
    const char *env = getenv("MESH_SERVER");
    cli.server = env != NULL && *env ? env : RM__DEFAULT_SERVER;

    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return RM__EXIT_OK;
        } else if (strcmp(a, "--version") == 0) {
            printf("meshctl %s\n", RM_VERSION);
            return RM__EXIT_OK;
        } else if (strcmp(a, "--server") == 0 && i + 1 < argc) {
            cli.server = argv[++i];
        } else if (strncmp(a, "--server=", 9) == 0) {
            cli.server = a + 9;
        } else {
            static const char *const globals[] = {"--server", "--help", "--version", NULL};
            if (strcmp(a, "--server") == 0)
                fputs("meshctl: flag --server needs a value (HOST:PORT)\n", stderr);
            else
                rm__unknown("flag", a, globals);
            return RM__EXIT_REJECTED;
        }
    }
    if (i == argc) {
        usage(stderr);
        return RM__EXIT_REJECTED;
    }
    const char *name = argv[i];
    const rm__cmd_t *cmd = NULL;
    for (size_t k = 0; k < rm__commands_count; k++)
        if (strcmp(name, rm__commands[k].name) == 0)
            cmd = &rm__commands[k];
    if (cmd == NULL && strcmp(name, "help") == 0) {
        if (i + 1 < argc)
            for (size_t k = 0; k < rm__commands_count; k++)
                if (strcmp(argv[i + 1], rm__commands[k].name) == 0) {
                    fputs(rm__commands[k].help, stdout);
                    return RM__EXIT_OK;
                }
        usage(stdout);
        return RM__EXIT_OK;
    }
    if (cmd == NULL) {
        const char *names[sizeof(rm__commands) / sizeof(rm__commands[0]) + 1];
        for (size_t k = 0; k < rm__commands_count; k++)
            names[k] = rm__commands[k].name;
        names[rm__commands_count] = NULL;
        rm__unknown("command", name, names);
        return RM__EXIT_REJECTED;
    }
    int rc = cmd->run(&cli, cmd, argc - i - 1, argv + i + 1);
    rm__rpc_close(&cli);
    return rc;
}
