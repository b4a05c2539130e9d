/* controlplane/meshctl/meshctl.h — what the files of meshctl share: the command table, the
 * option parser, the gRPC unary client, tables and small helpers. Nothing here is a library for
 * other programs; every symbol is internal (rm__) to the meshctl binary.
 *
 * Threads: meshctl is single-threaded; every function here runs on the main thread.
 * Memory: the CLI may abort on a failed allocation (STYLE.md), so helpers use rm__x* allocators.
 */
#ifndef REMORA_CONTROLPLANE_MESHCTL_MESHCTL_H
#define REMORA_CONTROLPLANE_MESHCTL_MESHCTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

/* Exit codes of SPEC.md ("meshctl"). */
#define RM__EXIT_OK          0
#define RM__EXIT_REJECTED    1 /* bad input, refused by the control plane, NACKed */
#define RM__EXIT_UNREACHABLE 2 /* the control plane could not be reached */

#define RM__DEFAULT_SERVER     "127.0.0.1:15010"
#define RM__DEFAULT_TIMEOUT_MS 10000u

typedef struct rm__cli rm__cli_t;

/* One subcommand: `run` gets the arguments after the command name and returns an exit code. */
typedef struct rm__cmd {
    const char *name;
    const char *summary; /* one line for `meshctl --help` */
    const char *help;    /* the whole `meshctl CMD -h` text: usage, flags, examples */
    int (*run)(rm__cli_t *cli, const struct rm__cmd *cmd, int argc, char **argv);
} rm__cmd_t;

/* Global state of one meshctl run. */
struct rm__cli {
    const char *server;  /* borrowed (argv, environment or the default) */
    uint64_t timeout_ms; /* deadline of one RPC unless a command asks for longer */
    void *channel;       /* owned grpc_channel *, created on first use */
    void *cq;            /* owned grpc_completion_queue *, created on first use */
};

/* ---- options (args.c) ---- */

#define RM__MAX_OPTS 16
#define RM__MAX_POS  8

typedef struct rm__opt_spec {
    const char *name; /* long name without "--" */
    char short_name;  /* 0 when none */
    int has_arg;
} rm__opt_spec_t;

typedef struct rm__args {
    const char *value[RM__MAX_OPTS]; /* borrowed from argv; "1" for a flag without argument */
    const char *pos[RM__MAX_POS];    /* positional arguments, borrowed from argv */
    int npos;
} rm__args_t;

/* What rm__args_parse returns besides an exit code: help was printed, exit 0. */
#define RM__ARGS_HELP (-1)

/*
 * Parses a command's argv (after the command name) against `spec` (terminated by a NULL name),
 * handling -h/--help and the global --server anywhere. Accepts "--name value", "--name=value",
 * "-x value" and "-xvalue". Returns 0; RM__ARGS_HELP after printing cmd->help; or
 * RM__EXIT_REJECTED after naming the bad flag (with the nearest valid one) on stderr.
 * `maxpos` bounds the positional arguments.
 */
int rm__args_parse(rm__cli_t *cli, const rm__cmd_t *cmd, const rm__opt_spec_t *spec, int argc,
                   char **argv, int maxpos, rm__args_t *out);

/* The value of option `i` of the spec, or NULL when not given. */
static inline const char *rm__arg(const rm__args_t *a, int i)
{
    return a->value[i];
}

/* Output formats of -o. Returns 0 and the index into `allowed` (NULL-terminated), or prints
 * the error with a suggestion and returns -1. NULL `value` picks allowed[0]. */
int rm__output_parse(const char *value, const char *const *allowed);

/* Parses a duration flag ("250ms", "2s") into *ms; prints an error naming `flag` on failure and
 * returns -1. */
int rm__duration_arg(const char *flag, const char *value, uint64_t *ms);

/* ---- the gRPC client (client.c) ---- */

/*
 * Calls "/remora.v1.Admin/<method>" with `req` (borrowed) and a deadline of `timeout_ms` (0: the
 * CLI's default). On success returns 0 and *out is a new message of type `rdesc` that the caller
 * frees with protobuf_c_message_free_unpacked. On failure prints why on stderr and returns the
 * exit code: RM__EXIT_UNREACHABLE ("cannot reach the control plane at ADDR: ...") for
 * UNAVAILABLE and DEADLINE_EXCEEDED, RM__EXIT_REJECTED with the server's details (every line,
 * each prefixed "error: ") for everything else.
 */
int rm__rpc(rm__cli_t *cli, const char *method, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *rdesc, uint64_t timeout_ms, ProtobufCMessage **out);

/* Releases the channel and queue and shuts gRPC down (no-op when never used). */
void rm__rpc_close(rm__cli_t *cli);

/* ---- tables and helpers (util.c) ---- */

/* Reads all of `path` ("-": stdin), at most `max` bytes, into a new buffer (caller frees); on
 * failure prints "meshctl CMD: ..." and returns NULL. */
char *rm__read_all(const char *cmd, const char *path, size_t max, size_t *len);

void *rm__xmalloc(size_t n);
void *rm__xcalloc(size_t n, size_t size);
void *rm__xrealloc(void *p, size_t n);
char *rm__xstrdup(const char *s);
char *rm__xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Levenshtein distance ignoring case. */
size_t rm__cli_edit_distance(const char *a, const char *b);

/* The candidate (NULL-terminated list) nearest to `word`, or NULL when none is a plausible typo. */
const char *rm__cli_suggest(const char *word, const char *const *candidates);

/* Prints "meshctl: unknown WHAT \"word\"" plus "; did you mean \"x\"?" when one is near, and the
 * list of valid values, on stderr. */
void rm__unknown(const char *what, const char *word, const char *const *candidates);

/* Canonical kind ("services", "routes", "circuitbreakers") of any accepted spelling, else NULL. */
const char *rm__kind_parse(const char *word);
extern const char *const rm__kind_words[]; /* for suggestions, NULL-terminated */

/* A text table: cells are copied; printed with columns padded to the widest cell. */
typedef struct rm__table {
    size_t ncols;
    size_t nrows; /* including the header row */
    size_t cap;
    char **cells; /* owned: nrows * ncols owned strings */
} rm__table_t;

void rm__table_init(rm__table_t *t, size_t ncols, ...); /* header cells follow ncols */
void rm__table_row(rm__table_t *t, ...); /* exactly ncols const char * cells; NULL prints "-" */
void rm__table_print(const rm__table_t *t, FILE *out);
void rm__table_free(rm__table_t *t);

/* "3s ago", "2m ago", "-" for 0; `ms` is a wall-clock time in milliseconds. */
void rm__ago(uint64_t ms, char *buf, size_t n);

/* "2026-11-21 23:59:01" (UTC) for a wall-clock time in milliseconds. */
void rm__wall_time(uint64_t ms, char *buf, size_t n);

/* ---- apply --dry-run (apply_diff.c) ---- */

struct Remora__V1__ConfigSet;
struct Remora__V1__DocumentChange;

/*
 * Prints, for each created or updated document of `changes`, a line diff of the stored document
 * (one Get of the current config) against the same document in `local`. `local` is the parsed
 * set (borrowed; defaults are filled in place). Returns 0 or an exit code of rm__rpc.
 */
int rm__apply_diff(rm__cli_t *cli, struct Remora__V1__ConfigSet *local,
                   struct Remora__V1__DocumentChange **changes, size_t n_changes);

/* ---- the commands (one file each) ---- */

int rm__cmd_apply(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv);
int rm__cmd_get(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv);
int rm__cmd_delete(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv);
int rm__cmd_history(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv);
int rm__cmd_rollback(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv);
int rm__cmd_stats(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv);
int rm__cmd_proxy_status(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv);
int rm__cmd_inject(rm__cli_t *cli, const rm__cmd_t *cmd, int argc, char **argv);

/* Table of rm__cmd_t, defined in main.c; rm__commands_count entries. */
extern const rm__cmd_t rm__commands[];
extern const size_t rm__commands_count;

#endif /* REMORA_CONTROLPLANE_MESHCTL_MESHCTL_H */
