/* injector/init_main.c — remora-init: installs the pod's traffic redirection with iptables and
 * ip6tables (nat).
 *
 * Two chains of our own per family, REMORA_INBOUND (from PREROUTING) and REMORA_OUTBOUND (from
 * OUTPUT): inbound TCP goes to the proxy's inbound port except the admin port and excluded ports;
 * outbound TCP goes to the proxy's outbound port except the proxy's own uid (or it would loop),
 * loopback, excluded ports and excluded CIDRs (IPv4 ones in iptables, IPv6 ones in ip6tables).
 * The IPv6 rules mirror the IPv4 ones, so a dual-stack pod's IPv6 traffic cannot bypass the proxy.
 * Re-running is idempotent: our chains are created when missing and flushed and rebuilt
 * otherwise, and the jumps into them are added only when `iptables -C` says they are absent.
 * iptables is run by fork/exec with an argv built from validated numbers and addresses; no shell
 * ever sees the input.
 *
 * IPv6 is optional where it cannot matter: when it is disabled in the namespace, or when
 * ip6tables is missing or fails in a namespace without a global IPv6 address (a single-stack
 * pod), one line says so and the IPv4 rules stand alone. A pod that has a global IPv6 address
 * and cannot get its ip6tables rules fails, as it does when iptables fails.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cidr.h"
#include "common/version.h"

#define MAX_ITEMS 64
#define MAX_ARGS  24

static const char usage[] =
    "usage: remora-init [options]\n"
    "\n"
    "Installs Remora's iptables and ip6tables (nat) redirection in the current network namespace:\n"
    "outbound TCP to the proxy's outbound port, inbound TCP to its inbound port. Needs NET_ADMIN\n"
    "(and NET_RAW). Idempotent: running it again leaves the same rules. Without IPv6 in the\n"
    "namespace (disabled, or no global address and no working ip6tables) it installs IPv4 rules\n"
    "only and says so.\n"
    "\n"
    "  --proxy-uid UID                 the proxy's uid, never redirected (default 1337)\n"
    "  --outbound-port PORT            default 15001\n"
    "  --inbound-port PORT             default 15006\n"
    "  --admin-port PORT               never intercepted inbound (default 15000)\n"
    "  --exclude-inbound-ports LIST    comma-separated ports delivered straight to the app\n"
    "  --exclude-outbound-ports LIST   comma-separated destination ports not redirected\n"
    "  --exclude-outbound-cidrs LIST   comma-separated IPv4 and IPv6 CIDRs not redirected\n"
    "  --iptables PATH                 the iptables program (default iptables, from PATH)\n"
    "  --ip6tables PATH                the ip6tables program (default ip6tables, from PATH)\n"
    "  --dry-run                       print the iptables commands instead of running them\n"
    "  --help  --version\n";

typedef struct init_cfg {
    int proxy_uid, outbound_port, inbound_port, admin_port;
    int n_in, in_ports[MAX_ITEMS];
    int n_out, out_ports[MAX_ITEMS];
    int n_cidr4, n_cidr6; /* together at most MAX_ITEMS */
    char cidrs4[MAX_ITEMS][RM_CIDR4_BUF];
    char cidrs6[MAX_ITEMS][RM_CIDR6_BUF];
    const char *iptables, *ip6tables; /* borrowed from argv, or literals */
    int dry_run;
} init_cfg_t;

/* What differs between the two rule sets. */
typedef struct family {
    const char *name;     /* "iptables" or "ip6tables", for messages */
    const char *tool;     /* the program to run; borrowed from init_cfg_t */
    const char *flag;     /* the flag that names it, for hints */
    const char *loopback; /* the loopback range, never redirected */
    int n_cidr;
    const char *cidrs[MAX_ITEMS]; /* excluded CIDRs of this family; borrowed from init_cfg_t */
} family_t;

/* The first command that failed: what ran, what it said, its exit status (-1: could not run). */
typedef struct failure {
    char cmd[512];
    char err[2048];
    int rc;
} failure_t;

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

/* The same strings the injector accepts in its annotation (common/cidr.h); each goes to the
 * rule set of its family. */
static int add_cidr(const char *s, void *arg)
{
    init_cfg_t *c = arg;
    char out[RM_CIDR_BUF];
    int family = rm_cidr_parse(s, out, sizeof(out));
    if (family < 0 || c->n_cidr4 + c->n_cidr6 == MAX_ITEMS)
        return -1;
    /* The parser wrote at most RM_CIDR4_BUF bytes for an IPv4 CIDR, NUL included. */
    if (family == 4)
        memcpy(c->cidrs4[c->n_cidr4++], out, strlen(out) + 1);
    else
        memcpy(c->cidrs6[c->n_cidr6++], out, strlen(out) + 1);
    return 0;
}

static void format_argv(char *buf, size_t n, char *const *argv)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; argv[i] && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? " " : "", argv[i]);
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

/* Says why a family's rules could not be installed, in full: the command, what it said, and a
 * hint when the cause is a common one. */
static void report_failure(const family_t *f, const failure_t *fail)
{
    fprintf(stderr, "remora-init: failed: %s\n", fail->cmd);
    fprintf(stderr, "remora-init: %s%s(exit %d)\n", fail->err, fail->err[0] ? " " : "", fail->rc);
    if (fail->rc == 127 || fail->rc < 0)
        fprintf(stderr, "remora-init: is %s installed? (%s PATH)\n", f->name, f->flag);
    else if (is_permission_error(fail->err))
        fprintf(stderr,
                "remora-init: %s was refused: this needs the NET_ADMIN and NET_RAW "
                "capabilities in the pod's network namespace (securityContext.capabilities"
                ".add: [NET_ADMIN, NET_RAW])\n",
                f->name);
}

/* Runs (or, in dry-run, prints) one command that must succeed. On failure records it in *fail
 * (the first one only) and returns -1; the caller decides how to report it. */
static int must(const init_cfg_t *c, failure_t *fail, char *const *argv)
{
    char err[sizeof(fail->err)];
    int rc;
    if (c->dry_run) {
        format_argv(err, sizeof(err), argv);
        puts(err);
        return 0;
    }
    rc = run(argv, err, sizeof(err));
    if (rc == 0)
        return 0;
    format_argv(fail->cmd, sizeof(fail->cmd), argv);
    memcpy(fail->err, err, sizeof(err));
    fail->rc = rc;
    return -1;
}

/* Runs a probe command (-L, -C) whose failure only means "absent"; dry-run assumes absent.
 * Returns 1 present, 0 absent, -1 when the probe could not run or was refused for lack of
 * permission (recorded in *fail). */
static int probe(const init_cfg_t *c, failure_t *fail, char *const *argv)
{
    char err[sizeof(fail->err)];
    int rc;
    if (c->dry_run)
        return 0;
    rc = run(argv, err, sizeof(err));
    if (rc == 0)
        return 1;
    if (rc < 0 || rc == 127 || is_permission_error(err)) {
        format_argv(fail->cmd, sizeof(fail->cmd), argv);
        memcpy(fail->err, err, sizeof(err));
        fail->rc = rc;
        return -1;
    }
    return 0;
}

#define ARGV(...) ((char *const[]){__VA_ARGS__, NULL})

static int setup_chain(const init_cfg_t *c, const family_t *f, failure_t *fail, const char *chain)
{
    char *ipt = (char *)f->tool;
    int present = probe(c, fail, ARGV(ipt, "-w", "-t", "nat", "-n", "-L", (char *)chain));
    if (present < 0)
        return -1;
    if (present)
        return must(c, fail, ARGV(ipt, "-w", "-t", "nat", "-F", (char *)chain));
    return must(c, fail, ARGV(ipt, "-w", "-t", "nat", "-N", (char *)chain));
}

static int jump(const init_cfg_t *c, const family_t *f, failure_t *fail, const char *from,
                const char *to)
{
    char *ipt = (char *)f->tool;
    int present = probe(
        c, fail, ARGV(ipt, "-w", "-t", "nat", "-C", (char *)from, "-p", "tcp", "-j", (char *)to));
    if (present < 0)
        return -1;
    if (present)
        return 0;
    return must(c, fail,
                ARGV(ipt, "-w", "-t", "nat", "-A", (char *)from, "-p", "tcp", "-j", (char *)to));
}

/* One family's rules; the same for both but for the loopback range and the CIDRs. Stops at the
 * first failure, recorded in *fail. */
static int install(const init_cfg_t *c, const family_t *f, failure_t *fail)
{
    char *ipt = (char *)f->tool;
    char n1[16], n2[16];

    if (setup_chain(c, f, fail, "REMORA_INBOUND") < 0 ||
        setup_chain(c, f, fail, "REMORA_OUTBOUND") < 0)
        return -1;

    /* Inbound: the admin port (kubelet probes of the sidecar) and excluded ports reach their
     * listeners directly; every other TCP connection goes to the proxy's inbound listener. */
    snprintf(n1, sizeof(n1), "%d", c->admin_port);
    if (must(c, fail,
             ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_INBOUND", "-p", "tcp", "--dport", n1, "-j",
                  "RETURN")) < 0)
        return -1;
    for (int i = 0; i < c->n_in; i++) {
        snprintf(n1, sizeof(n1), "%d", c->in_ports[i]);
        if (must(c, fail,
                 ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_INBOUND", "-p", "tcp", "--dport", n1,
                      "-j", "RETURN")) < 0)
            return -1;
    }
    snprintf(n2, sizeof(n2), "%d", c->inbound_port);
    if (must(c, fail,
             ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_INBOUND", "-p", "tcp", "-j", "REDIRECT",
                  "--to-ports", n2)) < 0)
        return -1;

    /* Outbound: the proxy's own connections (its uid) must leave as they are or they would loop
     * back into it; loopback is the app talking to itself or the proxy delivering inbound. */
    snprintf(n1, sizeof(n1), "%d", c->proxy_uid);
    if (must(c, fail,
             ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_OUTBOUND", "-m", "owner", "--uid-owner", n1,
                  "-j", "RETURN")) < 0 ||
        must(c, fail,
             ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_OUTBOUND", "-o", "lo", "-j", "RETURN")) <
            0 ||
        must(c, fail,
             ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_OUTBOUND", "-d", (char *)f->loopback, "-j",
                  "RETURN")) < 0)
        return -1;
    for (int i = 0; i < c->n_out; i++) {
        snprintf(n1, sizeof(n1), "%d", c->out_ports[i]);
        if (must(c, fail,
                 ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_OUTBOUND", "-p", "tcp", "--dport", n1,
                      "-j", "RETURN")) < 0)
            return -1;
    }
    for (int i = 0; i < f->n_cidr; i++) {
        if (must(c, fail,
                 ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_OUTBOUND", "-d", (char *)f->cidrs[i],
                      "-j", "RETURN")) < 0)
            return -1;
    }
    snprintf(n2, sizeof(n2), "%d", c->outbound_port);
    if (must(c, fail,
             ARGV(ipt, "-w", "-t", "nat", "-A", "REMORA_OUTBOUND", "-p", "tcp", "-j", "REDIRECT",
                  "--to-ports", n2)) < 0)
        return -1;

    if (jump(c, f, fail, "PREROUTING", "REMORA_INBOUND") < 0 ||
        jump(c, f, fail, "OUTPUT", "REMORA_OUTBOUND") < 0)
        return -1;
    return 0;
}

/* Whether IPv6 can carry traffic in this network namespace (the /proc/sys/net files are the
 * reader's namespace's). 0 when it is disabled or the kernel has none, with the reason in why;
 * 1 otherwise, including when the setting cannot be read (then ip6tables decides). */
static int ipv6_enabled(char *why, size_t n)
{
    char v[8] = "";
    FILE *f = fopen("/proc/sys/net/ipv6/conf/all/disable_ipv6", "r");
    if (f == NULL) {
        if (errno != ENOENT)
            return 1;
        snprintf(why, n, "this kernel has no IPv6 (no /proc/sys/net/ipv6)");
        return 0;
    }
    if (fgets(v, sizeof(v), f) == NULL)
        v[0] = '\0';
    fclose(f);
    if (v[0] == '1') {
        snprintf(why, n,
                 "IPv6 is disabled in this network namespace "
                 "(net.ipv6.conf.all.disable_ipv6 = 1)");
        return 0;
    }
    return 1;
}

/* Finds an IPv6 address other pods or the outside can reach (any scope but host and link:
 * global and unique-local alike), from /proc/net/if_inet6, which lists the reader's namespace.
 * Returns 1 with it written into addr, 0 when there is none (a single-stack pod: only ::1 and
 * link-local addresses) or no IPv6 in the kernel. When the file exists but cannot be read,
 * assumes there is one (1, addr "?"): a failure to secure IPv6 is then reported as fatal rather
 * than waved through. */
static int global_ipv6_address(char *addr, size_t n)
{
    char hex[33], line[256];
    unsigned ifindex, plen, scope, flags;
    FILE *f = fopen("/proc/net/if_inet6", "r");
    if (f == NULL) {
        int absent = errno == ENOENT; /* a kernel without IPv6 */
        snprintf(addr, n, "?");
        return absent ? 0 : 1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        struct in6_addr a;
        if (sscanf(line, "%32s %x %x %x %x", hex, &ifindex, &plen, &scope, &flags) != 5 ||
            strlen(hex) != 32)
            continue;
        if (scope == 0x10 || scope == 0x20) /* IPV6_ADDR_LOOPBACK, IPV6_ADDR_LINKLOCAL */
            continue;
        for (size_t i = 0; i < 16; i++) {
            char byte[3] = {hex[2 * i], hex[2 * i + 1], '\0'};
            a.s6_addr[i] = (unsigned char)strtoul(byte, NULL, 16);
        }
        if (inet_ntop(AF_INET6, &a, addr, (socklen_t)n) == NULL)
            snprintf(addr, n, "?");
        fclose(f);
        return 1;
    }
    fclose(f);
    return 0;
}

/* The first line of a command's message, for a one-line notice. */
static const char *first_line(char *msg)
{
    msg[strcspn(msg, "\n")] = '\0';
    return msg;
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
    OPT_IP6TABLES,
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
        {"ip6tables", required_argument, NULL, OPT_IP6TABLES},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    static init_cfg_t c;
    static family_t v4 = {.name = "iptables", .flag = "--iptables", .loopback = "127.0.0.0/8"};
    static family_t v6 = {.name = "ip6tables", .flag = "--ip6tables", .loopback = "::1/128"};
    static failure_t fail;
    port_list_t in = {&c.n_in, c.in_ports}, out = {&c.n_out, c.out_ports};
    char why[256], addr[64];
    int opt, ipv6;

    c.proxy_uid = 1337;
    c.outbound_port = 15001;
    c.inbound_port = 15006;
    c.admin_port = 15000;
    c.iptables = "iptables";
    c.ip6tables = "ip6tables";
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
                                "expected comma-separated IPv4 or IPv6 CIDRs like 10.0.0.0/8 or "
                                "fd00::/8");
            break;
        case OPT_IPTABLES:
            c.iptables = optarg;
            break;
        case OPT_IP6TABLES:
            c.ip6tables = optarg;
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
    v4.tool = c.iptables;
    v4.n_cidr = c.n_cidr4;
    for (int i = 0; i < c.n_cidr4; i++)
        v4.cidrs[i] = c.cidrs4[i];
    v6.tool = c.ip6tables;
    v6.n_cidr = c.n_cidr6;
    for (int i = 0; i < c.n_cidr6; i++)
        v6.cidrs[i] = c.cidrs6[i];

    if (install(&c, &v4, &fail) < 0) {
        report_failure(&v4, &fail);
        return 1;
    }
    ipv6 = ipv6_enabled(why, sizeof(why));
    if (!ipv6) {
        fprintf(stderr, "remora-init: %s: installing IPv4 rules only\n", why);
    } else if (install(&c, &v6, &fail) < 0) {
        /* Without a global IPv6 address only link-local IPv6 can leave or enter the pod (no
         * Service and no other pod's address), so IPv4 rules are what a single-stack pod needs;
         * with one, its IPv6 traffic would bypass the proxy. */
        if (!global_ipv6_address(addr, sizeof(addr))) {
            fprintf(stderr,
                    "remora-init: IPv6 rules not installed (%s: %s); this network namespace has "
                    "no global IPv6 address, so IPv4 rules only\n",
                    fail.cmd, fail.err[0] ? first_line(fail.err) : "failed");
            ipv6 = 0;
        } else {
            report_failure(&v6, &fail);
            fprintf(stderr,
                    "remora-init: this pod has the IPv6 address %s: without ip6tables rules its "
                    "IPv6 traffic would bypass the proxy\n",
                    addr);
            return 1;
        }
    }
    if (!c.dry_run)
        fprintf(stderr, "remora-init: redirection installed (outbound -> %d, inbound -> %d; %s)\n",
                c.outbound_port, c.inbound_port, ipv6 ? "IPv4 and IPv6" : "IPv4 only");
    return 0;
}
