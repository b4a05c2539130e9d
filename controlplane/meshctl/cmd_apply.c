/* controlplane/meshctl/cmd_apply.c — `meshctl apply`: local parse, Apply, and --wait's progress.
 *
 * Validation split: meshctl only *parses* locally (rm_config_parse: syntax, unknown fields,
 * types, each with file:line:col), so a broken file is rejected without a network round trip.
 * Semantic validation (references, duplicates, weights) needs the stored config and the
 * registered endpoints, so it is the control plane's: Apply validates the union of the stored
 * config and the documents, and its errors still carry file:line:col. Validating semantically
 * here as well would only duplicate that, with a context that may be stale by the time it lands.
 *
 * --wait does not use Apply's own wait (which answers only at the end): it applies, then polls
 * WaitForAck in short slices so it can print progress while sidecars answer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/config/config.h"
#include "controlplane/meshctl/meshctl.h"
#include "remora/v1/admin.pb-c.h"

enum { O_FILE, O_WAIT, O_TIMEOUT, O_DRY_RUN };

#define DEFAULT_WAIT_MS 30000u
#define POLL_MS         500u

static const char *kind_lower(const char *kind)
{
    if (kind == NULL)
        return "document";
    if (strcmp(kind, "Service") == 0)
        return "service";
    if (strcmp(kind, "Route") == 0)
        return "route";
    if (strcmp(kind, "CircuitBreaker") == 0)
        return "circuitbreaker";
    return kind;
}

static void print_acks(Remora__V1__SidecarAck **acks, size_t n)
{
    rm__table_t t;
    rm__table_init(&t, 6, "  POD", "SERVICE", "VERSION", "CONFIG", "ANSWER", "ERROR");
    for (size_t i = 0; i < n; i++) {
        const Remora__V1__SidecarAck *a = acks[i];
        char pod[300], cv[24];
        snprintf(pod, sizeof(pod), "  %s", a->pod && *a->pod ? a->pod : "-");
        snprintf(cv, sizeof(cv), "%llu", (unsigned long long)a->config_version);
        const char *ans = strcmp(a->state, "NACKED") == 0   ? "NACK"
                          : strcmp(a->state, "SYNCED") == 0 ? "ACK"
                                                            : "no answer";
        rm__table_row(&t, pod, *a->service ? a->service : NULL, *a->version ? a->version : NULL, cv,
                      ans, a->error);
    }
    rm__table_print(&t, stdout);
    rm__table_free(&t);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits for every connected sidecar to answer `version`; prints progress and the answers. */
static int wait_acks(rm__cli_t *cli, uint64_t version, uint64_t wait_ms)
{
    int tty = isatty(STDOUT_FILENO);
    uint64_t start = mono_ms();
    char last[160] = "";
    for (;;) {
        uint64_t elapsed = mono_ms() - start;
        uint64_t slice = wait_ms > elapsed ? wait_ms - elapsed : 0;
        if (slice > POLL_MS)
            slice = POLL_MS;
        Remora__V1__Duration d = REMORA__V1__DURATION__INIT;
        d.has_millis = 1;
        d.millis = slice ? slice : 1;
        Remora__V1__WaitForAckRequest req = REMORA__V1__WAIT_FOR_ACK_REQUEST__INIT;
        req.version = version;
        req.timeout = &d;
        Remora__V1__WaitForAckResponse *resp = NULL;
        int rc =
            rm__rpc(cli, "WaitForAck", &req.base, &remora__v1__wait_for_ack_response__descriptor,
                    slice + cli->timeout_ms, (ProtobufCMessage **)&resp);
        if (rc != 0)
            return rc;
        size_t acked = 0, nacked = 0;
        for (size_t i = 0; i < resp->n_acks; i++) {
            acked += strcmp(resp->acks[i]->state, "SYNCED") == 0;
            nacked += strcmp(resp->acks[i]->state, "NACKED") == 0;
        }
        int done = !resp->timed_out;
        int out_of_time = !done && mono_ms() - start >= wait_ms;
        char line[160];
        snprintf(line, sizeof(line),
                 "waiting for %zu sidecar%s to answer version %llu: %zu ACKed, %zu NACKed",
                 resp->n_acks, resp->n_acks == 1 ? "" : "s", (unsigned long long)version, acked,
                 nacked);
        /* In place on a terminal; a new line only when something changed when piped. */
        if (tty)
            printf("\r%s\033[K%s", line, done || out_of_time ? "\n" : "");
        else if (strcmp(line, last) != 0)
            printf("%s\n", line);
        fflush(stdout);
        snprintf(last, sizeof(last), "%s", line);
        if (done || out_of_time) {
            if (resp->n_acks == 0)
                printf("no sidecars connected; nothing to wait for\n");
            else
                print_acks(resp->acks, resp->n_acks);
            if (nacked > 0)
                fprintf(stderr, "meshctl apply: version %llu was NACKed by %zu sidecar%s\n",
                        (unsigned long long)version, nacked, nacked == 1 ? "" : "s");
            else if (out_of_time)
                fprintf(stderr,
                        "meshctl apply: timed out: %zu sidecar%s did not answer version %llu\n",
                        resp->n_acks - acked, resp->n_acks - acked == 1 ? "" : "s",
                        (unsigned long long)version);
            rc = nacked > 0 || out_of_time ? RM__EXIT_REJECTED : RM__EXIT_OK;
            protobuf_c_message_free_unpacked(&resp->base, NULL);
            return rc;
        }
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
}

int rm__cmd_apply(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv)
{
    static const rm__opt_spec_t spec[] = {
        {"filename", 'f', 1}, {"wait", 'w', 0}, {"timeout", 0, 1}, {"dry-run", 0, 0}, {NULL, 0, 0}};
    rm__args_t a;
    int rc = rm__args_parse(cli, cmd, spec, argc, argv, 0, &a);
    if (rc != 0)
        return rc == RM__ARGS_HELP ? RM__EXIT_OK : rc;
    const char *path = rm__arg(&a, O_FILE);
    if (path == NULL) {
        fputs("meshctl apply: -f FILE is required ('-' reads stdin)\n  see 'meshctl apply -h'\n",
              stderr);
        return RM__EXIT_REJECTED;
    }
    uint64_t wait_ms = DEFAULT_WAIT_MS;
    if (rm__arg(&a, O_TIMEOUT) != NULL &&
        rm__duration_arg("--timeout", rm__arg(&a, O_TIMEOUT), &wait_ms) < 0)
        return RM__EXIT_REJECTED;
    int wait = rm__arg(&a, O_WAIT) != NULL, dry = rm__arg(&a, O_DRY_RUN) != NULL;
    const char *fname = strcmp(path, "-") == 0 ? "<stdin>" : path;

    size_t len = 0;
    char *src = rm__read_all("apply", path, RM_CONFIG_MAX_INPUT, &len);
    if (src == NULL)
        return RM__EXIT_REJECTED;

    rm_config_diags_t errs = {0};
    Remora__V1__ConfigSet *set = NULL;
    Remora__V1__ApplyResponse *resp = NULL;
    if (rm_config_parse(fname, src, len, &set, &errs) < 0) {
        rm_config_diags_print(&errs, stderr, "error: ");
        rc = RM__EXIT_REJECTED;
        goto out;
    }

    /* The source string must be NUL-terminated for protobuf-c; documents hold no NUL that the
     * parser accepted, so sending the bytes as a C string loses nothing. */
    src = rm__xrealloc(src, len + 1);
    src[len] = '\0';
    if (memchr(src, '\0', len) != NULL) {
        fprintf(stderr, "error: %s: contains a NUL byte\n", fname);
        rc = RM__EXIT_REJECTED;
        goto out;
    }
    Remora__V1__ApplyRequest req = REMORA__V1__APPLY_REQUEST__INIT;
    req.source = src;
    req.filename = (char *)fname;
    req.dry_run = dry;
    rc = rm__rpc(cli, "Apply", &req.base, &remora__v1__apply_response__descriptor, 0,
                 (ProtobufCMessage **)&resp);
    if (rc != 0)
        goto out;

    size_t changed = 0;
    for (size_t i = 0; i < resp->n_changes; i++)
        changed += strcmp(resp->changes[i]->change, "unchanged") != 0;
    if (dry)
        printf("dry run: nothing stored; config version %llu stays in force\n",
               (unsigned long long)resp->version);
    else if (changed == 0)
        printf("config version %llu (unchanged)\n", (unsigned long long)resp->version);
    else
        printf("config version %llu\n", (unsigned long long)resp->version);
    for (size_t i = 0; i < resp->n_changes; i++) {
        const Remora__V1__DocumentChange *c = resp->changes[i];
        printf("%s %s/%s %s%s\n", kind_lower(c->kind), c->namespace_, c->name,
               dry && strcmp(c->change, "unchanged") != 0 ? "would be " : "", c->change);
    }
    if (dry && changed > 0) {
        rc = rm__apply_diff(cli, set, resp->changes, resp->n_changes);
        if (rc != 0)
            goto out;
    }
    for (size_t i = 0; i < resp->n_warnings; i++)
        fprintf(stderr, "warning: %s\n", resp->warnings[i]);
    fflush(stdout);
    if (wait && !dry)
        rc = wait_acks(cli, resp->version, wait_ms);

out:
    if (resp != NULL)
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    if (set != NULL)
        remora__v1__config_set__free_unpacked(set, NULL);
    rm_config_diags_free(&errs);
    free(src);
    return rc;
}
