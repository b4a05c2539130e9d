/* injector/init_main.c — remora-init: installs the pod's traffic redirection with iptables (nat).
 *
 * Two chains of our own, REMORA_INBOUND (from PREROUTING) and REMORA_OUTBOUND (from OUTPUT):
 * inbound TCP goes to the proxy's inbound port except the admin port and excluded ports;
 * outbound TCP goes to the proxy's outbound port except the proxy's own uid (or it would loop),
 * loopback, excluded ports and excluded CIDRs. Re-running is idempotent: our chains are created
 * when missing and flushed and rebuilt otherwise, and the jumps into them are added only when
 * `iptables -C` says they are absent. iptables is run by fork/exec with an argv built from
 * validated numbers and addresses; no shell ever sees the input.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cidr.h"
#include "common/version.h"

#define MAX_ITEMS 64
#define MAX_ARGS  24

static const char usage[] =
    "usage: remora-init [options]\n"
    "\n"
    "Installs Remora's iptables (nat) redirection in the current network namespace: outbound TCP\n"
    "to the proxy's outbound port, inbound TCP to its inbound port. Needs NET_ADMIN (and "
    "NET_RAW).\n"
    "Idempotent: running it again leaves the same rules.\n"
    "\n"
    "  --proxy-uid UID                 the proxy's uid, never redirected (default 1337)\n"
    "  --outbound-port PORT            default 15001\n"
    "  --inbound-port PORT             default 15006\n"
    "  --admin-port PORT               never intercepted inbound (default 15000)\n"
    "  --exclude-inbound-ports LIST    comma-separated ports delivered straight to the app\n"
    "  --exclude-outbound-ports LIST   comma-separated destination ports not redirected\n"
    "  --exclude-outbound-cidrs LIST   comma-separated IPv4 CIDRs not redirected\n"
    "  --iptables PATH                 the iptables program (default iptables, from PATH)\n"
    "  --dry-run                       print the iptables commands instead of running them\n"
    "  --help  --version\n";

typedef struct init_cfg {
    int proxy_uid, outbound_port, inbound_port, admin_port;
    int n_in, in_ports[MAX_ITEMS];
    int n_out, out_ports[MAX_ITEMS];
    int n_cidr;
    char cidrs[MAX_ITEMS][RM_CIDR4_BUF];
    const char *iptables; /* borrowed from argv */
    int dry_run;
} init_cfg_t;

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;
    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* Splits a comma list; items may be padded with spaces; empty items are skipped. */
static int split(const char *list, int (*fn)(const char *, void *), void *arg)
{
    char buf[64];
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && *p == ' ') {
            p++;
            n--;
        }
        while (n && p[n - 1] == ' ')
            n--;
        if (n >= sizeof(buf))
            return -1;
        if (n) {
            memcpy(buf, p, n);
            buf[n] = '\0';
            if (fn(buf, arg) < 0)
                return -1;
        }
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

typedef struct port_list {
    int *n, *ports;
} port_list_t;

static int add_port(const char *s, void *arg)
{
    port_list_t *l = arg;
    int port;
    if (parse_int(s, 1, 65535, &port) < 0 || *l->n == MAX_ITEMS)
        return -1;
    for (int i = 0; i < *l->n; i++) {
        if (l->ports[i] == port)
            return 0;
    }
    l->ports[(*l->n)++] = port;
    return 0;
}

/* The same strings the injector accepts in its annotation (common/cidr.h). */
static int add_cidr(const char *s, void *arg)
{
    init_cfg_t *c = arg;
    if (c->n_cidr == MAX_ITEMS || rm_cidr4_parse(s, c->cidrs[c->n_cidr], sizeof(c->cidrs[0])) < 0)
        return -1;
    c->n_cidr++;
    return 0;
}

static void print_argv(FILE *f, char *const *argv)
{
    for (int i = 0; argv[i]; i++)
        fprintf(f, "%s%s", i ? " " : "", argv[i]);
    fputc('\n', f);
}

/* Runs argv, capturing its stderr into errbuf. Returns the exit status, or -1 when it could not
 * run at all (errbuf then says why). */
static int run(char *const *argv, char *errbuf, size_t errlen)
{
    int pfd[2], status;
    size_t got = 0;
    pid_t pid;
    errbuf[0] = '\0';
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        snprintf(errbuf, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(errbuf, errlen, "fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(pfd[1], 2);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    for (;;) {
        ssize_t n = read(pfd[0], errbuf + got, errlen - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == errlen - 1) {
            char sink[256]; /* keep draining so the child never blocks on a full pipe */
            while (read(pfd[0], sink, sizeof(sink)) > 0)
                ;
            break;
        }
    }
    errbuf[got] = '\0';
    while (got > 0 && (errbuf[got - 1] == '\n' || errbuf[got - 1] == ' '))
        errbuf[--got] = '\0';
    close(pfd[0]);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            snprintf(errbuf, errlen, "waitpid: %s", strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    snprintf(errbuf, errlen, "killed by signal %d", WTERMSIG(status));
    return -1;
}

static int is_permission_error(const char *msg)
{
    return strstr(msg, "Permission denied") || strstr(msg, "Operation not permitted") ||
           strstr(msg, "you must be root");
}

/* Runs (or, in dry-run, prints) one command that must succeed. */
static int must(const init_cfg_t *c, char *const *argv)
{
    char err[2048];
    int rc;
    if (c->dry_run) {
        print_argv(stdout, argv);
        return 0;
    }
    rc = run(argv, err, sizeof(err));
    if (rc == 0)
        return 0;
    fprintf(stderr, "remora-init: failed: ");
    print_argv(stderr, argv);
    fprintf(stderr, "remora-init: %s%s(exit %d)\n", err, err[0] ? " " : "", rc);
    if (rc == 127 || rc < 0)
        fprintf(stderr, "remora-init: is iptables installed? (--iptables PATH)\n");
    else if (is_permission_error(err))
        fprintf(stderr, "remora-init: iptables was refused: this needs the NET_ADMIN and NET_RAW "
                        "capabilities in the pod's network namespace (securityContext.capabilities"
                        ".add: [NET_ADMIN, NET_RAW])\n");
    return -1;
}

/* Runs a probe command (-L, -C) whose failure only means "absent"; dry-run assumes absent.
 * Returns 1 present, 0 absent, -1 when the probe failed for lack of permission. */
static int probe(const init_cfg_t *c, char *const *argv)
{
    char err[2048];
    int rc;
    if (c->dry_run)
        return 0;
    rc = run(argv, err, sizeof(err));
    if (rc == 0)
        return 1;
    if (rc < 0 || rc == 127 || is_permission_error(err))
        return must(c, argv); /* reports the real reason */
    return 0;
}

#define ARGV(...) ((char *const[]){__VA_ARGS__, NULL})

static int setup_chain(const init_cfg_t *c, const char *chain)
{
    char *ipt = (char *)c->iptables;
    int present = probe(c, ARGV(ipt, "-w", "-t", "nat", "-n", "-L", (char *)chain));
    if (present < 0)
        return -1;
    if (present)
        return must(c, ARGV(ipt, "-w", "-t", "nat", "-F", (char *)chain));
    return must(c, ARGV(ipt, "-w", "-t", "nat", "-N", (char *)chain));
}

static int jump(const init_cfg_t *c, const char *from, const char *to)
{
    char *ipt = (char *)c->iptables;
    int present =
        probe(c, ARGV(ipt, "-w", "-t", "nat", "-C", (char *)from, "-p", "tcp", "-j", (char *)to));
    if (present < 0)
        return -1;
    if (present)
        return 0;
    return must(c, ARGV(ipt, "-w", "-t", "nat", "-A", (char *)from, "-p", "tcp", "-j", (char *)to));
}

static int install(const init_cfg_t *c)
{
    char *ipt = (char *)c->iptables;
    char n1[16], n2[16];

    if (setup_chain(c, "REMORA_INBOUND") < 0 || setup_chain(c, "REMORA_OUTBOUND") < 0)
        return -1;

    /* Inbound: the admin port (kubelet probes of the sidecar) and excluded ports reach their
     * listeners directly; every other TCP connection goes to the proxy's inbound listener. */
    snprintf(n1, sizeof(n1), "%d", c->admin_port);
    if (must(c, ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_INBOUND", "-p", "tcp", "--dport", n1,
                     "-j", "RETURN")) < 0)
        return -1;
    for (int i = 0; i < c->n_in; i++) {
        snprintf(n1, sizeof(n1), "%d", c->in_ports[i]);
        if (must(c, ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_INBOUND", "-p", "tcp", "--dport", n1,
                         "-j", "RETURN")) < 0)
            return -1;
    }
    snprintf(n2, sizeof(n2), "%d", c->inbound_port);
    if (must(c, ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_INBOUND", "-p", "tcp", "-j", "REDIRECT",
                     "--to-ports", n2)) < 0)
        return -1;

    /* Outbound: the proxy's own connections (its uid) must leave as they are or they would loop
     * back into it; loopback is the app talking to itself or the proxy delivering inbound. */
    snprintf(n1, sizeof(n1), "%d", c->proxy_uid);
    if (must(c, ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_OUTBOUND", "-m", "owner", "--uid-owner",
                     n1, "-j", "RETURN")) < 0 ||
        must(c, ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_OUTBOUND", "-o", "lo", "-j", "RETURN")) <
            0 ||
        must(c, ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_OUTBOUND", "-d", "127.0.0.0/8", "-j",
                     "RETURN")) < 0)
        return -1;
    for (int i = 0; i < c->n_out; i++) {
        snprintf(n1, sizeof(n1), "%d", c->out_ports[i]);
        if (must(c, ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_OUTBOUND", "-p", "tcp", "--dport",
                         n1, "-j", "RETURN")) < 0)
            return -1;
    }
    for (int i = 0; i < c->n_cidr; i++) {
        if (must(c, ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_OUTBOUND", "-d", (char *)c->cidrs[i],
                         "-j", "RETURN")) < 0)
            return -1;
    }
    snprintf(n2, sizeof(n2), "%d", c->outbound_port);
    if (must(c, ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_OUTBOUND", "-p", "tcp", "-j", "REDIRECT",
                     "--to-ports", n2)) < 0)
        return -1;

    if (jump(c, "PREROUTING", "REMORA_INBOUND") < 0 || jump(c, "OUTPUT", "REMORA_OUTBOUND") < 0)
        return -1;
    return 0;
}

enum {
    OPT_UID = 256,
    OPT_OUT,
    OPT_IN,
    OPT_ADMIN,
    OPT_EX_IN,
    OPT_EX_OUT,
    OPT_EX_CIDR,
    OPT_IPTABLES,
    OPT_DRY_RUN,
    OPT_HELP,
    OPT_VERSION,
};

static int bad_flag(const char *flag, const char *value, const char *why)
{
    fprintf(stderr, "remora-init: %s%s%s: %s (see --help)\n", flag, value ? " " : "",
            value ? value : "", why);
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"proxy-uid", required_argument, NULL, OPT_UID},
        {"outbound-port", required_argument, NULL, OPT_OUT},
        {"inbound-port", required_argument, NULL, OPT_IN},
        {"admin-port", required_argument, NULL, OPT_ADMIN},
        {"exclude-inbound-ports", required_argument, NULL, OPT_EX_IN},
        {"exclude-outbound-ports", required_argument, NULL, OPT_EX_OUT},
        {"exclude-outbound-cidrs", required_argument, NULL, OPT_EX_CIDR},
        {"iptables", required_argument, NULL, OPT_IPTABLES},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    static init_cfg_t c;
    port_list_t in = {&c.n_in, c.in_ports}, out = {&c.n_out, c.out_ports};
    int opt;

    c.proxy_uid = 1337;
    c.outbound_port = 15001;
    c.inbound_port = 15006;
    c.admin_port = 15000;
    c.iptables = "iptables";
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_UID:
            if (parse_int(optarg, 0, 2147483646, &c.proxy_uid) < 0)
                return bad_flag("--proxy-uid", optarg, "expected a uid");
            break;
        case OPT_OUT:
            if (parse_int(optarg, 1, 65535, &c.outbound_port) < 0)
                return bad_flag("--outbound-port", optarg, "expected a port 1-65535");
            break;
        case OPT_IN:
            if (parse_int(optarg, 1, 65535, &c.inbound_port) < 0)
                return bad_flag("--inbound-port", optarg, "expected a port 1-65535");
            break;
        case OPT_ADMIN:
            if (parse_int(optarg, 1, 65535, &c.admin_port) < 0)
                return bad_flag("--admin-port", optarg, "expected a port 1-65535");
            break;
        case OPT_EX_IN:
            if (split(optarg, add_port, &in) < 0)
                return bad_flag("--exclude-inbound-ports", optarg,
                                "expected comma-separated ports 1-65535");
            break;
        case OPT_EX_OUT:
            if (split(optarg, add_port, &out) < 0)
                return bad_flag("--exclude-outbound-ports", optarg,
                                "expected comma-separated ports 1-65535");
            break;
        case OPT_EX_CIDR:
            if (split(optarg, add_cidr, &c) < 0)
                return bad_flag("--exclude-outbound-cidrs", optarg,
                                "expected comma-separated IPv4 CIDRs like 10.0.0.0/8");
            break;
        case OPT_IPTABLES:
            c.iptables = optarg;
            break;
        case OPT_DRY_RUN:
            c.dry_run = 1;
            break;
        case OPT_HELP:
            fputs(usage, stdout);
            return 0;
        case OPT_VERSION:
            printf("remora-init %s\n", RM_VERSION);
            return 0;
        default:
            return bad_flag(argv[optind - 1], NULL, "unknown flag or missing value");
        }
    }
    if (optind < argc)
        return bad_flag(argv[optind], NULL, "unexpected argument");
    if (install(&c) < 0)
        return 1;
    if (!c.dry_run)
        fprintf(stderr, "remora-init: redirection installed (outbound -> %d, inbound -> %d)\n",
                c.outbound_port, c.inbound_port);
    return 0;
}
